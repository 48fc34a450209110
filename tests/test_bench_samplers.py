"""python -m benchmarks.samplers on a tiny run: one row per (sampler, K <= T), written as it goes."""

import json

import numpy as np

from benchmarks import samplers as bench_samplers
from pyddpm.data.digits import make_digits
from pyddpm.train import preset_config, train


def test_the_sampler_table_scores_each_sampler_at_each_k_up_to_t(tmp_path, capsys):
    run = tmp_path / "run"
    train(preset_config("tiny", out=str(run), steps=2, ckpt_every=2, sample_every=0, n_samples=1),
          log=lambda *_: None)
    images, labels = make_digits(300, seed=3)
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    out = tmp_path / "table.json"
    bench_samplers.main(["--ckpt", str(run), "--n", "6", "--out", str(out), "--only", "ddim", "ode",
                         "--data", f"npz:{tmp_path / 'd.npz'}", "--cache-dir", str(tmp_path / "cache")])
    rows = json.loads(out.read_text())["rows"]
    # The tiny run has T = 20: K in {10, 20}; ode's Heun takes 2K - 1 model calls.
    assert [(r["sampler"].split()[0], r["K"], r["model_calls"]) for r in rows] == [
        ("ddim", 10, 10), ("ddim", 20, 20), ("ode", 10, 19), ("ode", 20, 39)]
    assert all(np.isfinite(r["fd"]) and r["seconds"] > 0 and 0 <= r["precision"] <= 1 for r in rows)
    assert capsys.readouterr().out.count("| ddim eta=0 |") == 2
