"""Training end to end on the tiny preset: train -> sample -> evaluate, exact resume, Ctrl-C, bad input."""

import json
import os
import signal

import numpy as np
import pytest
from PIL import Image

from pyddpm import evaluate as evaluate_cli
from pyddpm import sample as sample_cli
from pyddpm.checkpoint import load_checkpoint
from pyddpm.nn import Parameter
from pyddpm.nn.optim import EMA, Adam, adam_ema_step, clip_grad_norm
from pyddpm.train import Trainer, TrainingError, preset_config, train
from pyddpm.train import __main__ as train_cli


def tiny(tmp_path, **kw):
    return preset_config("tiny", out=str(tmp_path / "run"), **kw)


def test_train_sample_evaluate_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli.main(["--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{"):])
    assert summary["steps"] == 6 and summary["last_grid"].endswith("step0000006.png")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6] and all(np.isfinite(r["loss"]) for r in log)
    grids = sorted((out / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step0000003.png", "step0000006.png"]
    assert Image.open(grids[-1]).size[0] >= 64

    assert sample_cli.main(["--ckpt", str(out), "--n", "3", "--out", str(tmp_path / "s.png"),
                            "--npz", str(tmp_path / "s.npz")]) == 0
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (3, 1, 16, 16) and images.dtype == np.uint8 and images.std() > 0

    assert evaluate_cli.main(["--ckpt", str(out), "--n", "3", "--batch-size", "2"]) == 0
    result = json.loads((out / "eval_test.json").read_text())
    assert result["n"] == 3 and np.isfinite(result["total_bpd"]) and result["total_bpd"] > 0
    np.testing.assert_allclose(result["total_bpd"],
                               result["prior_bpd"] + result["decoder_bpd"] + result["kl_bpd"], rtol=1e-9)


def test_training_reduces_the_loss(tmp_path):
    cfg = tiny(tmp_path, steps=60, batch_size=16, lr=2e-3, warmup=5, log_every=10, ckpt_every=60,
               sample_every=0, n_samples=1, timesteps=10)
    train(cfg, log=lambda *_: None)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]


def test_resume_is_exact(tmp_path):
    quiet = dict(log=lambda *_: None)
    straight = tiny(tmp_path / "a", steps=6, sample_every=0, ckpt_every=6, n_samples=1, hflip=True)
    train(straight, **quiet)
    first = tiny(tmp_path / "b", steps=4, sample_every=0, ckpt_every=4, n_samples=1, hflip=True)
    train(first, **quiet)
    second = tiny(tmp_path / "b", steps=6, sample_every=0, ckpt_every=3, n_samples=1, hflip=True)
    train(second, resume=True, **quiet)
    a, meta_a = load_checkpoint(tmp_path / "a" / "run")
    b, meta_b = load_checkpoint(tmp_path / "b" / "run")
    assert meta_a["step"] == meta_b["step"] == 6 and meta_a["rng_state"] == meta_b["rng_state"]
    for name in a:  # model, EMA and Adam state, bit for bit
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    log_a = (tmp_path / "a" / "run" / "log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss"] for x in log_a] == [json.loads(x)["loss"] for x in log_b]


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal, even where this process was started with SIGINT
    ignored (a shell's background job): Python then never installs its handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    cfg = tiny(tmp_path, steps=50, sample_every=0, ckpt_every=1000, n_samples=1)
    trainer = Trainer(cfg, log=lambda *_: None)
    real_step = trainer.train_step

    def step_then_interrupt(after_update=None):
        result = real_step(after_update)
        if trainer.step == 4:
            os.kill(os.getpid(), signal.SIGINT)  # arrives between steps, like a user's Ctrl-C
        return result
    trainer.train_step = step_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    _, meta = load_checkpoint(tmp_path / "run")
    assert meta["step"] == 4


@pytest.mark.usefixtures("ctrl_c_raises")
def test_interrupt_during_update_is_applied_whole(tmp_path):
    """A Ctrl-C inside the optimizer update waits until the update (and the step count) is complete."""
    cfg = tiny(tmp_path, steps=50, sample_every=0, ckpt_every=1000, n_samples=1)
    trainer = Trainer(cfg, log=lambda *_: None)
    real_advance = trainer.ema.advance  # called mid-update by the plain and the fused path alike

    def advance_with_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        return real_advance()
    trainer.ema.advance = advance_with_interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    _, meta = load_checkpoint(tmp_path / "run")
    assert meta["step"] == 1 and meta["ema_updates"] == 1 and meta["adam_t"] == 1


def test_existing_run_needs_resume_and_bad_data_is_reported(tmp_path, capsys):
    cfg = tiny(tmp_path, steps=2, sample_every=0, ckpt_every=2, n_samples=1)
    train(cfg, log=lambda *_: None)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, log=lambda *_: None)
    assert train_cli.main(["--preset", "tiny", "--out", str(tmp_path / "x"), "--data",
                           str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert train_cli.main(["--preset", "tiny", "--out", str(tmp_path / "y"), "--resume"]) == 2


def test_corrupt_checkpoint_is_reported(tmp_path, capsys):
    cfg = tiny(tmp_path, steps=2, sample_every=0, ckpt_every=2, n_samples=1)
    train(cfg, log=lambda *_: None)
    npz = next((tmp_path / "run").glob("*.npz"))
    npz.write_bytes(npz.read_bytes()[:-100])
    assert sample_cli.main(["--ckpt", str(tmp_path / "run"), "--n", "1", "--out", str(tmp_path / "s.png")]) == 2
    assert npz.name in capsys.readouterr().err


def test_nan_loss_stops_without_saving(tmp_path):
    cfg = tiny(tmp_path, steps=5, sample_every=0, ckpt_every=1, n_samples=1)
    trainer = Trainer(cfg, log=lambda *_: None)
    trainer.model.conv_out.weight.data[...] = np.nan
    with pytest.raises(TrainingError, match="nan"):
        trainer.run()
    assert not (tmp_path / "run" / "checkpoint.json").exists()


def test_adam_matches_the_textbook_update():
    p = Parameter(np.array([1.0, -2.0]))
    opt = Adam([p], lr=0.1)
    m = v = np.zeros(2)
    x = p.data.copy()
    for step in range(1, 4):
        g = np.array([0.5, -1.5]) * step
        p.grad = g.copy()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - 0.1 * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    np.testing.assert_allclose(p.data, x, rtol=1e-12)


def test_clip_and_ema():
    a, b = Parameter(np.array([3.0])), Parameter(np.array([4.0]))
    a.grad, b.grad = np.array([3.0]), np.array([4.0])
    assert clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [0.6, 0.8], rtol=1e-5)
    p, e = Parameter(np.array([1.0])), Parameter(np.array([0.0]))
    ema = EMA([p], [e], decay=0.9999)
    ema.update()  # first decay is min(0.9999, 1/10) = 0.1
    np.testing.assert_allclose(e.data, [0.9])
    ema.update()  # then min(0.9999, 2/11)
    np.testing.assert_allclose(e.data, [0.9 * 2 / 11 + 9 / 11])


@pytest.mark.skipif(not __import__("pyddpm.ops.backend", fromlist=["available"]).available("cpu"),
                    reason="pyddpm._cpu is not built (pip install -e .)")
def test_fused_update_is_the_plain_update(tmp_path):
    """adam_ema_step on the cpu backend (one fused pass per tensor) gives the numbers of Adam.step then
    EMA.update bit for bit, on the tiny U-Net's real gradients, with a parameter that has no gradient (its
    EMA is still updated) and the same step and update counts after."""
    trainer = Trainer(tiny(tmp_path, backend="cpu", lr=1e-3, warmup=0), log=lambda *_: None)
    for _ in range(2):
        trainer.train_step()  # moments and EMA away from their initial values
    x0, t, noise, _ = trainer.batch()
    trainer.model.zero_grad()
    trainer.diffusion.training_losses(trainer.model, x0, t, noise)["loss"].mean().backward()
    trainer.params[0].grad = None
    opt, ema = trainer.opt, trainer.ema
    state = [p.data for p in opt.params] + opt.m + opt.v + [e.data for e in ema.ema_params]
    before = [a.copy() for a in state]
    adam_ema_step(opt, ema, lr=1e-3, backend="cpu")
    fused, counts = [a.copy() for a in state], (opt.t, ema.num_updates)
    for a, b in zip(state, before):
        a[...] = b
    opt.t, ema.num_updates = opt.t - 1, ema.num_updates - 1
    adam_ema_step(opt, ema, lr=1e-3, backend="numpy")
    assert (opt.t, ema.num_updates) == counts == (3, 3)
    assert sum(not np.array_equal(a, b) for a, b in zip(state, before)) == len(state) - 3  # p[0] and its m, v stay
    for i, (a, b) in enumerate(zip(fused, state)):
        np.testing.assert_array_equal(a, b, err_msg=f"state array {i}")


@pytest.mark.skipif(not __import__("pyddpm.ops.backend", fromlist=["available"]).available("cpu"),
                    reason="pyddpm._cpu is not built (pip install -e .)")
def test_cpu_backend_training_matches_numpy(tmp_path):
    """Several steps on the fused CPU kernels follow the NumPy reference run: the same losses to 1e-4
    (relative) and the same weights to 2e-5 (Adam's steps are ~lr = 2e-4, so this is a tenth of one)."""
    runs = {}
    for backend in ("numpy", "cpu"):
        cfg = tiny(tmp_path / backend, steps=6, sample_every=0, ckpt_every=6, log_every=1, n_samples=1,
                   backend=backend)
        train(cfg, log=lambda *_: None)
        log = [json.loads(line)["loss"] for line in (tmp_path / backend / "run" / "log.jsonl").read_text().splitlines()]
        runs[backend] = (log, load_checkpoint(tmp_path / backend / "run")[0])
    np.testing.assert_allclose(runs["cpu"][0], runs["numpy"][0], rtol=1e-4)
    for name, value in runs["numpy"][1].items():
        if name.startswith("model/"):
            np.testing.assert_allclose(runs["cpu"][1][name], value, atol=2e-5, err_msg=name)
