"""The probability-flow likelihood of a tiny_run U-Net: its vector-Jacobian product through the autograd, and
python -m pyddpm.evaluate --ode-bpd."""

import json

import numpy as np
import pytest

from pyddpm import evaluate as evaluate_cli
from pyddpm.models import UNet
from pyddpm.models.unet import PRESETS
from pyddpm.train.builders import model_vjp_arrays


def test_the_unets_vector_jacobian_product_matches_finite_differences():
    model = UNet(**PRESETS["tiny"]).astype(np.float64).eval()
    rng = np.random.default_rng(0)
    x, v, u = (rng.standard_normal((2, 1, 16, 16)) for _ in range(3))
    t = np.array([3, 700])
    out, vjp = model_vjp_arrays(model)(x, t, v)
    np.testing.assert_allclose(out, model(x, t).data, rtol=1e-12)
    h = 1e-6
    directional = (((model(x + h * u, t).data - model(x - h * u, t).data) / (2 * h)) * v).sum()
    np.testing.assert_allclose((vjp * u).sum(), directional, rtol=1e-6)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_evaluate_reports_the_ode_likelihood_beside_the_bound(tiny_run, tmp_path, capsys):
    outs = []
    for batch in (3, 2):
        out = tmp_path / f"e{batch}.json"
        assert evaluate_cli.main(["--ckpt", str(tiny_run), "--n", "3", "--batch-size", str(batch), "--ode-bpd", "5",
                                  "--out", str(out)]) == 0
        outs.append(json.loads(out.read_text()))
    assert "probability-flow ODE" in capsys.readouterr().out
    first = outs[0]
    assert first["ode_steps"] == 5 and first["ode_n"] == 3 and np.isfinite(first["ode_bpd"]) and first["ode_bpd"] > 0
    assert first["ode_bpd"] == pytest.approx(outs[1]["ode_bpd"], rel=1e-5)  # image i's noise is its own


@pytest.mark.parametrize("argv, message", [(["--ode-bpd", "0"], "--ode-bpd must be an integer in 1..20"),
                                           (["--ode-bpd", "21"], "--ode-bpd must be an integer in 1..20"),
                                           (["--ode-bpd", "5", "--skip-bpd", "--samples", "4"], "--ode-bpd")])
def test_bad_ode_steps_are_refused_by_name(tiny_run, tmp_path, capsys, argv, message):
    assert evaluate_cli.main(["--ckpt", str(tiny_run), "--out", str(tmp_path / "e.json"), *argv]) == 2
    assert message in capsys.readouterr().err
