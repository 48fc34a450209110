"""One microbenchmark per fused kernel: each module's cases(small) and, run as a module, its table."""
