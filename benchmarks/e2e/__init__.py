"""End-to-end benchmarks of the U-Net against a PyTorch reference (issue 5); see bench.py."""
