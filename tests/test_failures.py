"""Bad input and interruptions, as a careful user meets them: each case asserts the exact error type or exit
code and that the message names the argument or flag. Kernel entry points: tests/test_kernel_fuzz.py and
tests/test_cpu_failures.py."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pyddpm import evaluate as evaluate_cli
from pyddpm import sample as sample_cli
from pyddpm import sampling, strips
from pyddpm.checkpoint import load_checkpoint, save_checkpoint
from pyddpm.data import DataError, load_data
from pyddpm.data.mnist import read_idx
from pyddpm.train import Trainer, TrainingError, preset_config, train
from pyddpm.train import __main__ as train_cli
from pyddpm.train.config import ConfigError

QUIET = dict(log=lambda *_: None)


def tiny(out, **kw):
    return preset_config("tiny", out=str(out), **{"sample_every": 0, "n_samples": 1, **kw})


def cli(capsys, *argv):
    """Run the training command line; returns (exit code, stderr)."""
    code = train_cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    train(tiny(out, steps=2, ckpt_every=2), **QUIET)
    return out


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt even where the process was started with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# --- 1. a run folder belongs to one run ----------------------------------------------------------------------


def test_a_folder_with_another_runs_files_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "checkpoint-best.npz").write_text("x")
    (out / "log.jsonl").write_text('{"step": 99}\n')
    code, err = cli(capsys, "--preset", "tiny", "--out", out, "--steps", 3)
    assert code == 2 and "--force" in err and "log.jsonl" in err
    assert (out / "checkpoint-best.npz").read_text() == "x"
    assert (out / "log.jsonl").read_text() == '{"step": 99}\n'
    assert not (out / "checkpoint.json").exists()


def test_force_trains_beside_other_files_and_deletes_none(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    foreign = {"checkpoint-best.npz": "x", "checkpoint-0123456789abcdef.npz": "another run's",
               "notes.txt": "mine", "log.jsonl": '{"step": 99}\n'}
    for name, text in foreign.items():
        (out / name).write_text(text)
    code, _ = cli(capsys, "--preset", "tiny", "--out", out, "--steps", 4, "--ckpt-every", 1, "--force")
    assert code == 0
    for name, text in foreign.items():
        kept = out / (name + ".old" if name == "log.jsonl" else name)
        assert kept.read_text() == text, name
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [2, 4]
    assert load_checkpoint(out)[1]["step"] == 4


def test_an_existing_run_is_not_started_over(tmp_path, trained, capsys):
    code, err = cli(capsys, "--preset", "tiny", "--out", trained, "--force")
    assert code == 2 and "--resume" in err


def test_two_runs_on_one_folder(tmp_path, capsys):
    """The second run refuses to start while the first holds the folder, and names the first's PID."""
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pyddpm.train.run_folder import RunLock; "
                               f"lock = RunLock({str(out)!r}); print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = cli(capsys, "--preset", "tiny", "--out", out)
        assert code == 2 and f"PID {holder.pid}" in err
        assert sorted(p.name for p in out.iterdir()) == [".pyddpm.lock"]
    finally:
        holder.communicate("")
    code, _ = cli(capsys, "--preset", "tiny", "--out", out, "--steps", 2)  # free once the holder is gone
    assert code == 0


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, err = cli(capsys, "--preset", "tiny", "--out", tmp_path / "f")
    assert code == 2 and "--out" in err and "is a file" in err


# --- 3. resume after an interruption anywhere is the exact run ---------------------------------------------


def run_straight_and_interrupted(tmp_path, monkeypatch, interrupt_at, where):
    """Train 9 steps straight, and again with a SIGINT sent from inside step ``interrupt_at`` (in the
    forward pass, or in the update), then resumed. Returns the two run folders."""
    kw = dict(steps=9, log_every=2, ckpt_every=4, hflip=True, model=dict(name="tiny", dropout=0.1))
    straight = tmp_path / "straight"
    train(tiny(straight, **kw), **QUIET)

    stopped = tmp_path / "stopped"
    trainer = Trainer(tiny(stopped, **kw), **QUIET)
    if where == "forward":
        target, name = trainer.diffusion, "q_sample"  # after the step's batch, t and noise are drawn
    else:
        target, name = trainer.ema, "advance"  # inside the update
    real = getattr(target, name)

    def interrupting(*args):
        if trainer.step + 1 == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # raised in this thread as soon as the call returns
        return real(*args)
    monkeypatch.setattr(target, name, interrupting)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    monkeypatch.undo()
    saved = load_checkpoint(stopped)[1]["step"]
    assert saved == (interrupt_at - 1 if where == "forward" else interrupt_at)
    train(tiny(stopped, **kw), resume=True, **QUIET)
    return straight, stopped


@pytest.mark.usefixtures("ctrl_c_raises")
@pytest.mark.parametrize("interrupt_at, where", [(6, "forward"), (3, "update"), (5, "forward")])
def test_resume_after_an_interrupt_is_bit_exact(tmp_path, monkeypatch, interrupt_at, where):
    straight, stopped = run_straight_and_interrupted(tmp_path, monkeypatch, interrupt_at, where)
    a, meta_a = load_checkpoint(straight)
    b, meta_b = load_checkpoint(stopped)
    assert meta_a["step"] == meta_b["step"] == 9 and meta_a["rng_state"] == meta_b["rng_state"]
    for name in a:  # model, EMA and Adam state, bit for bit
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    fields = ("step", "loss", "grad_norm", "lr")
    log = [[{k: json.loads(line)[k] for k in fields} for line in (run / "log.jsonl").read_text().splitlines()]
           for run in (straight, stopped)]
    assert log[0] == log[1]


@pytest.mark.usefixtures("ctrl_c_raises")
def test_a_sample_grid_cut_short_is_drawn_on_resume(tmp_path, monkeypatch):
    kw = dict(steps=4, log_every=2, ckpt_every=4, sample_every=3, n_samples=2)
    train(tiny(tmp_path / "straight", **kw), **QUIET)
    trainer = Trainer(tiny(tmp_path / "stopped", **kw), **QUIET)
    real = trainer.diffusion.p_sample_loop

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(trainer.diffusion, "p_sample_loop", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "stopped")[1]["grid_due"] is True
    train(tiny(tmp_path / "stopped", **kw), resume=True, **QUIET)
    for name in ("step0000003.png", "step0000004.png"):
        grids = [(tmp_path / run / "samples" / name).read_bytes() for run in ("straight", "stopped")]
        assert grids[0] == grids[1], name


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_kill_saves_a_checkpoint_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pyddpm.train", "--preset", "tiny", "--out", str(out),
                             "--steps", "100000", "--log-every", "1", "--ckpt-every", "100000", "--backend", "numpy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((out / "log.jsonl").exists() and (out / "log.jsonl").read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    printed, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at step" in printed
    assert load_checkpoint(out)[1]["step"] >= 2


# --- 4. settings that make no sense are refused before any work ---------------------------------------------


@pytest.mark.parametrize("flag, value", [
    ("--grad-clip", "-1"), ("--grad-clip", "0"), ("--grad-clip", "nan"), ("--lr", "-1e-3"), ("--lr", "0"),
    ("--lr", "inf"), ("--ema-decay", "2"), ("--ema-decay", "-1"), ("--steps", "0"), ("--log-every", "0"),
    ("--ckpt-every", "0"), ("--n-samples", "0"), ("--batch-size", "0"), ("--timesteps", "1"),
    ("--warmup", "-1"), ("--seed", "-1"), ("--sample-every", "-1"), ("--schedule", "cubic"),
    ("--mean-type", "v"), ("--backend", "tpu")])
def test_a_flag_out_of_range_is_refused_naming_it(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    code, err = cli(capsys, "--preset", "tiny", "--out", out, f"{flag}={value}")  # = : argparse takes -1 as a value
    assert code == 2 and flag in err, err
    assert not out.exists()  # refused before the folder was even made


@pytest.mark.parametrize("field, value", [("lr", -1e-3), ("ema_decay", -1.0), ("grad_clip", 0.0), ("steps", 2.5),
                                          ("batch_size", True), ("hflip", "yes")])
def test_the_python_api_checks_the_same(tmp_path, field, value):
    with pytest.raises(ConfigError, match="--" + field.replace("_", "-")):
        train(tiny(tmp_path / "run", **{field: value}), **QUIET)
    with pytest.raises(ConfigError, match="--" + field.replace("_", "-")):
        Trainer(tiny(tmp_path / "run", **{field: value}), **QUIET)


def test_resume_to_fewer_steps_is_refused_and_to_as_many_says_so(tmp_path, trained, capsys):
    code, err = cli(capsys, "--out", trained, "--resume", "--steps", 1)
    assert code == 2 and "--steps 1" in err and "(2)" in err
    said = []
    train(tiny(trained, steps=2, ckpt_every=2), resume=True, log=said.append)
    assert any("nothing to do" in line for line in said)


# --- 5. non-finite state never becomes the newest checkpoint ------------------------------------------------


def test_nan_loss_before_any_checkpoint_says_none_was_written(tmp_path):
    trainer = Trainer(tiny(tmp_path / "run", steps=4, ckpt_every=4), **QUIET)
    trainer.model.conv_out.weight.data[...] = np.nan
    with pytest.raises(TrainingError, match="step 1: .*no checkpoint was written"):
        trainer.run()
    assert not (tmp_path / "run" / "checkpoint.json").exists()


def test_inf_weights_are_not_saved_and_the_finite_checkpoint_stays(tmp_path):
    trainer = Trainer(tiny(tmp_path / "run", steps=6, ckpt_every=2), **QUIET)
    real_step = trainer.train_step

    def step_then_blow_up(after_update=None):
        result = real_step(after_update)
        if trainer.step == 3:
            trainer.ema_model.conv_out.weight.data[0] = np.inf  # what an absurd learning rate leads to
        return result
    trainer.train_step = step_then_blow_up
    with pytest.raises(TrainingError, match=r"step 4: ema/conv_out.weight hold inf or NaN.*step 2"):
        trainer.run()
    assert load_checkpoint(tmp_path / "run")[1]["step"] == 2


@pytest.fixture
def diverged(tmp_path, trained):
    """A checkpoint like `trained` whose EMA weights hold inf (as written by an older pyddpm)."""
    arrays, meta = load_checkpoint(trained)
    name = next(k for k in arrays if k.startswith("ema/") and arrays[k].ndim > 1)
    arrays[name][...] = np.inf
    save_checkpoint(tmp_path / "diverged", arrays, meta)
    return tmp_path / "diverged"


def test_sampling_or_evaluating_inf_weights_is_refused(tmp_path, diverged, capsys):
    assert sample_cli.main(["--ckpt", str(diverged), "--n", "1", "--out", str(tmp_path / "s.png")]) == 2
    assert "inf or NaN" in capsys.readouterr().err and not (tmp_path / "s.png").exists()
    assert evaluate_cli.main(["--ckpt", str(diverged), "--n", "1"]) == 2
    assert "inf or NaN" in capsys.readouterr().err


# --- 6. outputs checked before the work, and memory ----------------------------------------------------------


def test_sample_and_evaluate_refuse_a_folder_as_out_before_working(tmp_path, trained, capsys, monkeypatch):
    for module in (sampling, strips):
        monkeypatch.setattr(module, "load_trained", lambda *a: pytest.fail("sampled before checking --out"))
    monkeypatch.setattr(evaluate_cli, "load_trained", lambda *a: pytest.fail("evaluated before checking --out"))
    assert sample_cli.main(["--ckpt", str(trained), "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    assert sample_cli.main(["--ckpt", str(trained), "--npz", str(tmp_path / "f" / "s.npz")]) == 2
    assert "--npz" in capsys.readouterr().err
    assert evaluate_cli.main(["--ckpt", str(trained), "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [(["--n", "0"], "--n"), (["--batch-size", "0"], "--batch-size"),
                                        (["--seed", "-1"], "--seed")])
def test_sample_and_evaluate_counts_name_the_flag(trained, capsys, argv, flag):
    for main in (sample_cli.main, evaluate_cli.main):
        assert main(["--ckpt", str(trained), *argv]) == 2
        assert flag in capsys.readouterr().err


def test_a_batch_too_large_for_memory_is_a_message(tmp_path, trained, capsys):
    n = str(10 ** 12)
    assert sample_cli.main(["--ckpt", str(trained), "--n", n, "--batch-size", n,
                            "--out", str(tmp_path / "s.png")]) == 2
    assert "out of memory" in capsys.readouterr().err
    code, err = cli(capsys, "--preset", "tiny", "--out", tmp_path / "run", "--batch-size", n)
    assert code == 2 and "out of memory" in err


# --- 8. small things ---------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_images_at_any_batch_size(trained):
    one = sample_cli.sample(trained, 3, seed=5, batch_size=1, progress=False)
    three = sample_cli.sample(trained, 3, seed=5, batch_size=3, progress=False)
    assert one.std() > 0
    assert np.abs(one.astype(int) - three.astype(int)).max() <= 1  # float rounding of a batched matmul
    other = sample_cli.sample(trained, 3, seed=6, batch_size=3, progress=False)
    assert np.abs(other.astype(int) - three.astype(int)).max() > 1


def test_evaluation_does_not_depend_on_the_batch_size(trained):
    a = evaluate_cli.evaluate(trained, n=3, batch_size=1, progress=False)
    b = evaluate_cli.evaluate(trained, n=3, batch_size=3, progress=False)
    np.testing.assert_allclose(a["total_bpd"], b["total_bpd"], rtol=1e-5)


def test_random_bytes_as_npz_are_not_called_pickled(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(DataError, match="not an .npz archive") as e:
        load_data(str(path))
    assert "pickle" not in str(e.value)


def test_mnist_sizes_that_overflow_are_caught(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    dims = (2 ** 31, 2 ** 31, 4)  # the product is 2^64: zero in 64-bit arithmetic
    path.write_bytes(bytes([0, 0, 8, 3]) + np.array(dims, dtype=">u4").tobytes())
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_data_errors_name_the_file(tmp_path, capsys):
    code, err = cli(capsys, "--preset", "tiny", "--out", tmp_path / "run", "--data", tmp_path / "none.npz")
    assert code == 2 and "none.npz" in err
    assert not Path(tmp_path / "run" / "checkpoint.json").exists()
