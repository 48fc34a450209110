"""Training Table 2's settings: the importance-sampled timesteps (Nichol & Dhariwal Eq. 17), a learned-variance
run end to end, its exact resume, and the command line refusing settings that do not go together."""

import json

import numpy as np
import pytest

from pyddpm import evaluate as evaluate_cli
from pyddpm import sample as sample_cli
from pyddpm.checkpoint import load_checkpoint
from pyddpm.diffusion.timestep_sampler import HISTORY, UNIFORM_SHARE, ImportanceTimesteps
from pyddpm.train import preset_config, train
from pyddpm.train import __main__ as train_cli

quiet = dict(log=lambda *_: None)


def warmed(T, rng):
    sampler = ImportanceTimesteps(T)
    for _ in range(HISTORY + 3):  # more than HISTORY values per t: the oldest must be dropped
        sampler.update(np.arange(T), rng.exponential(1.0, T) * np.linspace(5.0, 0.0, T))
    return sampler


def test_importance_probabilities_follow_the_direct_formula():
    rng = np.random.default_rng(0)
    T = 7
    sampler = ImportanceTimesteps(T)
    sampler.update(np.arange(T - 1), np.ones(T - 1) * 9.0)
    np.testing.assert_array_equal(sampler.probabilities(), np.full(T, 1 / T))  # t = T-1 has no value yet
    sampler = warmed(T, rng)
    expected = np.empty(T)
    for t in range(T):
        last = sampler.history[t]
        expected[t] = np.sqrt(np.mean([v * v for v in last]))
    expected = (1 - UNIFORM_SHARE) * expected / expected.sum() + UNIFORM_SHARE / T
    np.testing.assert_allclose(sampler.probabilities(), expected, rtol=1e-12)
    assert sampler.probabilities()[-1] > 0  # every L_{T-1} recorded was 0: still drawn now and then
    assert np.isclose(sampler.probabilities().sum(), 1.0)


def test_importance_keeps_the_last_values_and_stays_unbiased():
    sampler = ImportanceTimesteps(3)
    for k in range(HISTORY + 4):
        sampler.update(np.array([1]), np.array([float(k)]))
    np.testing.assert_array_equal(sampler.history[1], np.arange(4, HISTORY + 4))
    rng = np.random.default_rng(1)
    sampler = warmed(5, rng)
    losses = rng.uniform(0.1, 3.0, 5)  # E_{t~p}[L_t / (T p_t)] is the uniform mean, exactly
    p = sampler.probabilities()
    np.testing.assert_allclose((p * losses / (5 * p)).sum(), losses.mean(), rtol=1e-12)
    t, weights = sampler.sample(np.random.default_rng(2), 200_000)
    np.testing.assert_allclose(weights, 1 / (5 * p[t]))
    np.testing.assert_allclose(np.bincount(t, minlength=5) / len(t), p, atol=4e-3)


def tiny(out, **kw):
    return preset_config("tiny", out=str(out), sample_every=0, n_samples=2, **kw)


def test_importance_sampled_run_resumes_exactly(tmp_path):
    flags = dict(loss_type="kl", var_type="learned-range", t_sampling="importance", timesteps=4, batch_size=16)
    train(tiny(tmp_path / "a", steps=8, ckpt_every=8, **flags), **quiet)
    train(tiny(tmp_path / "b", steps=5, ckpt_every=5, **flags), **quiet)
    train(tiny(tmp_path / "b", steps=8, ckpt_every=8, **flags), resume=True, **quiet)
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    assert a["timesteps/counts"].min() == HISTORY  # warmed up: the later steps drew from p, not uniformly
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_learned_variance_run_trains_samples_and_evaluates(tmp_path):
    out = tmp_path / "run"
    assert train_cli.main(["--preset", "tiny", "--out", str(out), "--var-type", "learned-range", "--loss-type",
                           "hybrid", "--steps", "3", "--sample-every", "0", "--n-samples", "2"]) == 0
    arrays, meta = load_checkpoint(out)
    assert arrays["ema/conv_out.weight"].shape[0] == 2  # one data channel: mean and variance
    for sampler in (["--sampler", "ancestral", "--steps", "5"], ["--sampler", "ddim", "--steps", "5"]):
        assert sample_cli.main(["--ckpt", str(out), "--n", "2", "--out", str(tmp_path / "s.png"), *sampler]) == 0
    assert evaluate_cli.main(["--ckpt", str(out), "--n", "2"]) == 0
    result = json.loads((out / "eval_test.json").read_text())
    assert np.isfinite(result["total_bpd"]) and result["total_bpd"] > 0


@pytest.mark.parametrize("flags, message", [
    (["--var-type", "learned"], "needs --loss-type kl or hybrid"),
    (["--loss-type", "hybrid"], "trains a learned variance"),
    (["--x0-weight", "snr"], "--mean-type x0 with --loss-type simple"),
    (["--t-sampling", "importance"], "--loss-type kl"),
    (["--hybrid-lambda", "0.01"], "--loss-type hybrid only"),
    (["--hybrid-lambda", "-1", "--loss-type", "hybrid", "--var-type", "learned"], "finite number > 0"),
    (["--mean-type", "velocity"], "--mean-type must be one of"),
    (["--model", "vae", "--mean-type", "x0"], "--model vae has no diffusion"),
])
def test_settings_that_do_not_go_together_exit_2(tmp_path, capsys, flags, message):
    assert train_cli.main(["--preset", "tiny", "--out", str(tmp_path / "run"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_changed_model(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert train_cli.main(["--preset", "tiny", "--out", out, "--steps", "2", "--sample-every", "0"]) == 0
    capsys.readouterr()
    assert train_cli.main(["--out", out, "--resume", "--var-type", "learned", "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "--var-type learned" in err and "trained with --var-type fixedlarge" in err
    assert train_cli.main(["--out", out, "--resume", "--var-type", "fixedlarge", "--steps", "3"]) == 0
