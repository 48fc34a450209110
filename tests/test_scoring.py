"""``python -m pyddpm.evaluate --samples`` end to end on a tiny run, and its refusals (exit code 2, a message
naming the problem). The feature classifier is trained on a small labelled .npz of built-in digits passed
as --data, so each test takes about a second; the cache lives in tmp_path."""

import json
import re
import sys

import numpy as np
import pytest
from PIL import Image

from pyddpm import evaluate as evaluate_cli
from pyddpm.data.digits import make_digits
from pyddpm.train import preset_config, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run folder, data spec): a tiny run on digits and a 400-image labelled npz of digits."""
    root = tmp_path_factory.mktemp("scoring")
    out = root / "run"
    train(preset_config("tiny", out=str(out), steps=2, ckpt_every=2, sample_every=0, n_samples=1),
          log=lambda *_: None)
    images, labels = make_digits(400, seed=11)
    np.savez(root / "digits400.npz", images=images, labels=labels)
    return out, f"npz:{root / 'digits400.npz'}"


def evaluate(capsys, tmp_path, *argv):
    code = evaluate_cli.main([str(a) for a in argv] + ["--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_samples_are_scored_written_and_drawn(run, tmp_path, capsys):
    ckpt, data = run
    out = tmp_path / "eval.json"
    code, stdout, err = evaluate(capsys, tmp_path, "--ckpt", ckpt, "--data", data, "--samples", 12, "--skip-bpd",
                                 "--out", out, "--grid", tmp_path / "grid.png")
    assert code == 0, err
    result = json.loads(out.read_text())
    rows = result["sample_metrics"]["rows"]
    assert set(rows) == {"samples", "real train", "gaussian noise"} and result["step"] == 2
    assert set(rows["samples"]) == {"fd", "precision", "recall", "confidence", "class_entropy"}
    assert rows["real train"]["fd"] < rows["gaussian noise"]["fd"]
    assert result["sample_metrics"]["n_samples"] == 12 and 0 <= result["sample_metrics"]["classifier"][
        "test_accuracy"] <= 1
    assert "real train" in stdout and "gaussian noise" in stdout and "test accuracy" in stdout
    history = (ckpt / "eval_history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["sample_metrics"] == result["sample_metrics"]
    grid = Image.open(tmp_path / "grid.png")
    assert grid.width > 2 * grid.height * 0.9 and np.asarray(grid).std() > 10  # two grids side by side


def test_a_samples_npz_is_scored_and_bits_per_dim_come_with_their_terms(run, tmp_path, capsys):
    ckpt, data = run
    samples = tmp_path / "s.npz"
    np.savez(samples, images=make_digits(10, seed=3)[0])
    out = tmp_path / "eval.json"
    code, stdout, err = evaluate(capsys, tmp_path, "--ckpt", ckpt, "--data", data, "--samples-npz", samples,
                                 "--n", 3, "--out", out, "--grid", tmp_path / "g.png")
    assert code == 0, err
    result = json.loads(out.read_text())
    assert len(result["terms_bpd"]) == result["timesteps"]
    assert sum(result["terms_bpd"]) + result["prior_bpd"] == pytest.approx(result["total_bpd"], rel=1e-6)
    assert result["sample_metrics"]["n_samples"] == 10 and "bits/dim on 3 test images" in stdout


@pytest.mark.parametrize("images, message", [
    (np.zeros((5, 1, 8, 8), np.uint8), r"\(1, 8, 8\) \(C, H, W\)"),
    (np.zeros((5, 3, 16, 16), np.uint8), r"\(3, 16, 16\) \(C, H, W\)"),
    (np.zeros((5, 1, 16, 16), np.float32), "uint8"),
    (np.zeros((0, 1, 16, 16), np.uint8), "N >= 2"),
])
def test_samples_of_the_wrong_kind_exit_2(run, tmp_path, capsys, images, message):
    ckpt, data = run
    np.savez(tmp_path / "bad.npz", images=images)
    code, _, err = evaluate(capsys, tmp_path, "--ckpt", ckpt, "--data", data, "--samples-npz", tmp_path / "bad.npz",
                            "--skip-bpd", "--out", tmp_path / "e.json", "--grid", tmp_path / "g.png")
    assert code == 2
    assert "error: " in err and re.search(message, err), err
    assert not (tmp_path / "e.json").exists()


def test_a_missing_or_keyless_npz_and_bad_flags_exit_2(run, tmp_path, capsys):
    ckpt, data = run
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.save(tmp_path / "one.npy", np.zeros((4, 1, 16, 16), np.uint8))
    common = ["--ckpt", ckpt, "--data", data, "--skip-bpd", "--out", tmp_path / "e.json"]
    cases = [(["--samples-npz", tmp_path / "none.npz"], "no such file"),
             (["--samples-npz", tmp_path / "other.npz"], "no array named 'images'"),
             (["--samples-npz", tmp_path / "junk.npz"], "not a readable .npz"),
             (["--samples-npz", tmp_path / "one.npy"], "not an .npz archive"),
             (["--samples", 0], "--samples must be an integer >= 1"),
             (["--samples", 1], "at least 2"),
             (["--samples", 4, "--samples-npz", tmp_path / "other.npz"], "not both")]
    for extra, message in cases:
        code, _, err = evaluate(capsys, tmp_path, *common, *extra)
        assert code == 2 and message in err, (extra, err)
    code, _, err = evaluate(capsys, tmp_path, "--ckpt", ckpt, "--skip-bpd")
    assert code == 2 and "nothing to do" in err


def test_fid_inception_without_torch_fidelity_says_so_before_sampling(run, tmp_path, capsys, monkeypatch):
    ckpt, data = run
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as if not installed
    monkeypatch.setattr("pyddpm.scoring.sample", lambda *a, **k: pytest.fail("sampled before the check"))
    code, _, err = evaluate(capsys, tmp_path, "--ckpt", ckpt, "--data", data, "--samples", 4, "--skip-bpd",
                            "--fid", "inception", "--out", tmp_path / "e.json")
    assert code == 2 and "torch-fidelity" in err and len(err.strip().splitlines()) == 1
