"""python -m benchmarks: one table, with PyTorch and without it (a fresh machine has no PyTorch)."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]  # where python -m benchmarks runs: a source checkout


def run_bench(args, tmp_path, hide_torch=False):
    env = None
    if hide_torch:  # an unimportable torch package ahead of the installed one: as if none were installed
        (tmp_path / "torch").mkdir()
        (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def table_rows(out, label):
    return [line.split("|")[2].strip() for line in out.splitlines() if line.startswith(f"| {label}")]


def test_without_torch_it_says_what_it_skipped(tmp_path):
    out = run_bench(["--small", "--kernels", "q_sample", "--e2e", "none", "--repeats", "2"], tmp_path, True)
    assert "skipped: every PyTorch comparison" in out
    impls = table_rows(out, "q_sample")
    assert impls[0] == "numpy" and impls[-1] == "copy" and "torch" not in impls


def test_with_torch_every_side_is_in_one_table(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed (an optional benchmark-only dependency)")
    out = run_bench(["--small", "--kernels", "group_norm", "--e2e", "A", "--what", "sample", "--repeats", "1",
                     "--no-memory"], tmp_path)
    assert "skipped" not in out
    assert set(table_rows(out, "group_norm+silu fwd+bwd")) >= {"numpy", "torch", "copy"}
    assert table_rows(out, "A sample step")[0] == "torch"
