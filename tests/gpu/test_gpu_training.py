"""The CuPy path end to end: train, sample and evaluate with --backend cuda, against the cpu backend.

The same seed draws the same batches, noise and dropout masks on the host for both backends, so the GPU
run's losses must follow the CPU run's (float32 sums in another order: close, not equal).
"""

import json

import numpy as np

from pyddpm import evaluate as evaluate_cli
from pyddpm import sample as sample_cli
from pyddpm.ops.backend import available, set_backend
from pyddpm.train import Trainer, preset_config, train


def test_the_model_and_optimiser_live_on_the_gpu_and_follow_the_cpu_run(tmp_path):
    import cupy
    runs = {}
    for backend in ("cuda", "cpu") if available("cpu") else ("cuda", "numpy"):
        trainer = Trainer(preset_config("tiny", out=str(tmp_path / backend), backend=backend, steps=4),
                          log=lambda *_: None)
        runs[backend] = [float(trainer.train_step()[0]) for _ in range(4)]
        if backend == "cuda":
            assert all(isinstance(p.data, cupy.ndarray) for p in trainer.params)
            assert all(isinstance(m, cupy.ndarray) for m in trainer.opt.m + trainer.opt.v)
    gpu, host = runs.values()
    np.testing.assert_allclose(gpu, host, rtol=1e-3)


def test_train_sample_evaluate_on_the_gpu(tmp_path, capsys):
    run = tmp_path / "run"
    result = train(preset_config("tiny", out=str(run), backend="cuda"), log=lambda *_: None)
    assert result["steps"] == 6 and np.isfinite(result["final_loss"])
    set_backend("cuda")
    assert sample_cli.main(["--ckpt", str(run), "--n", "3", "--out", str(tmp_path / "s.png"),
                            "--backend", "cuda"]) == 0
    assert evaluate_cli.main(["--ckpt", str(run), "--n", "2", "--backend", "cuda",
                              "--out", str(tmp_path / "e.json")]) == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert np.isfinite(scores["total_bpd"]) and scores["total_bpd"] > 0
