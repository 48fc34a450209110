"""python -m pyddpm.sample with every sampler, its strips, and the checks of its new flags (exit code 2 and a
message naming the flag, before any sampling)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from pyddpm import sample as sample_cli
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.train import preset_config, train

T = 20  # the tiny preset's timesteps


def main(*argv):
    return sample_cli.main([str(a) for a in argv])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_writes_a_grid_and_its_samples(tiny_run, tmp_path, sampler):
    out, npz = tmp_path / "s.png", tmp_path / "s.npz"
    assert main("--ckpt", tiny_run, "--sampler", sampler, "--steps", 3, "--n", 3, "--out", out, "--npz", npz) == 0
    images = np.load(npz)["images"]
    assert images.shape == (3, 1, 16, 16) and images.dtype == np.uint8 and images.std() > 0
    assert Image.open(out).size[0] > 16


def test_ddim_eta_changes_the_samples_and_eta_1_is_not_eta_0(tiny_run, tmp_path):
    runs = [sample_cli.sample(tiny_run, 2, sampler="ddim", steps=T, eta=eta, progress=False) for eta in (0.0, 1.0)]
    assert not np.array_equal(*runs)


def test_the_default_is_alg2_with_t_steps(tiny_run):
    # The strided sampler at K = T is Alg. 2 bit for bit (tests/test_samplers.py), so the default is unchanged.
    assert np.array_equal(sample_cli.sample(tiny_run, 2, progress=False),
                          sample_cli.sample(tiny_run, 2, sampler="ancestral", steps=T, progress=False))


def test_trajectory_strip_has_two_rows_per_image(tiny_run, tmp_path):
    out = tmp_path / "t.png"
    assert main("--ckpt", tiny_run, "--sampler", "ddim", "--steps", 5, "--n", 2, "--trajectory", "--out", out) == 0
    width, height = Image.open(out).size
    # 5 steps give 5 columns; tiles are 16 px scaled by 4 with 1 px of padding.
    assert (width, height) == (5 * 65 + 1, 4 * 65 + 1)


def test_interpolation_strip(tiny_run, tmp_path):
    out = tmp_path / "i.png"
    assert main("--ckpt", tiny_run, "--interpolate", 10, "--n", 2, "--out", out) == 0
    assert Image.open(out).size == (11 * 65 + 1, 2 * 65 + 1)


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps must be an integer in 1..20"),
    (["--steps", "21"], "--steps must be an integer in 1..20"),
    (["--sampler", "ddim", "--eta", "-0.5"], "--eta must be a number >= 0"),
    (["--sampler", "ddim", "--eta", "nan"], "--eta must be a number >= 0"),
    (["--sampler", "ode", "--eta", "1"], "--eta applies to --sampler ddim only"),
    (["--interpolate", "20"], "--interpolate must be a timestep index in 0..19"),
    (["--interpolate", "-1"], "--interpolate must be a timestep index in 0..19"),
    (["--interpolate", "5", "--sampler", "ddim"], "--interpolate decodes with Alg. 2"),
    (["--interpolate", "5", "--trajectory"], "pick one"),
    (["--trajectory", "--npz", "x.npz"], "--npz writes samples"),
])
def test_bad_flags_are_refused_by_name(tiny_run, tmp_path, capsys, argv, message):
    assert main("--ckpt", tiny_run, "--out", tmp_path / "s.png", *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_a_sampler_that_does_not_exist_is_refused(tiny_run, capsys):
    with pytest.raises(SystemExit) as e:
        main("--ckpt", tiny_run, "--sampler", "euler")
    assert e.value.code == 2
    assert "invalid choice: 'euler'" in capsys.readouterr().err


def test_interpolate_on_a_run_without_test_data(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / f"{k}.png")
    run = tmp_path / "run"
    train(preset_config("tiny", data=str(folder), out=str(run), steps=2, ckpt_every=2, sample_every=0, n_samples=1),
          log=lambda *_: None)
    shutil.rmtree(folder)
    assert main("--ckpt", run, "--interpolate", "5", "--n", 1, "--out", tmp_path / "i.png") == 2
    err = capsys.readouterr().err
    assert "--interpolate needs the run's test images" in err and str(folder) in err
