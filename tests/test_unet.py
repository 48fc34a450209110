"""The U-Net: the paper's parameter count, shapes, and a whole-network gradient check in float64."""

import numpy as np
import pytest

from gradcheck import check_grads
from kernels import force_winograd
from pyddpm.autograd import Tensor
from pyddpm.models import UNet
from pyddpm.nn import timestep_embedding


def test_cifar10_preset_has_the_papers_parameter_count():
    # Ho et al. 2020, App. B: 35.7M; the official diffusion_tf CIFAR-10 model has exactly this many.
    assert UNet.from_preset("cifar10").num_parameters() == 35_746_307


def test_output_shape_and_zero_initialised_output_layer():
    model = UNet.from_preset("tiny")
    x = np.random.default_rng(0).standard_normal((3, 1, 16, 16)).astype(np.float32)
    out = model(x, np.array([0, 5, 999]))
    assert out.shape == x.shape and out.dtype == np.float32
    # conv_out starts at scale 1e-10 (the official init_scale=0), so the first outputs are ~0.
    assert np.abs(out.data).max() < 1e-3


def test_whole_network_gradient_in_float64():
    """Backward through every block (resblocks, attention, down/upsampling, skips) matches finite differences."""
    model = UNet(image_size=8, in_ch=1, ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                 dropout=0.0).astype(np.float64)
    rng = np.random.default_rng(3)
    for p in model.parameters():  # leave the ~zero init: otherwise gradients below conv_out vanish
        p.data = p.data + 0.1 * rng.standard_normal(p.shape)
    x = rng.standard_normal((2, 1, 8, 8))
    t = np.array([3, 17])
    check_grads(lambda x: model(x, t), x, rtol=1e-4, atol=1e-7)
    # A parameter deep inside (the first residual block's first conv) gets the right gradient too.
    w, weights, idx, h = model.down[0].conv1.weight, rng.standard_normal(x.shape), (1, 0, 2, 1), 1e-6

    def loss():
        return (model(Tensor(x), t) * weights).sum()
    model.zero_grad()
    loss().backward()
    analytic = w.grad[idx]
    w.data[idx] += h
    up = loss().item()
    w.data[idx] -= 2 * h
    down = loss().item()
    np.testing.assert_allclose(analytic, (up - down) / (2 * h), rtol=1e-4)


def test_state_dict_round_trip_and_mismatch_errors():
    a, b = UNet.from_preset("tiny", seed=1), UNet.from_preset("tiny", seed=2)
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.data, pb.data)
    state = dict(a.state_dict())
    state.pop("conv_in.weight")
    with pytest.raises(ValueError, match="conv_in.weight"):
        b.load_state_dict(state)
    state = dict(a.state_dict(), **{"conv_in.weight": np.zeros((1, 1, 3, 3), np.float32)})
    with pytest.raises(ValueError, match="shape"):
        b.load_state_dict(state)


def test_bad_inputs_raise():
    model = UNet.from_preset("tiny")
    with pytest.raises(ValueError, match="x must be"):
        model(np.zeros((2, 3, 16, 16), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="t must be"):
        model(np.ones((2, 1, 16, 16), np.float32), np.array([0]))
    with pytest.raises(ValueError, match="divisible"):
        UNet(image_size=10, ch_mult=(1, 2, 2))


def test_timestep_embedding_matches_the_formula():
    emb = timestep_embedding(np.array([0, 7]), 8)
    freqs = np.exp(-np.log(10000.0) / 3 * np.arange(4))
    np.testing.assert_allclose(emb[1], np.concatenate([np.sin(7 * freqs), np.cos(7 * freqs)]), rtol=1e-6)
    np.testing.assert_array_equal(emb[0], [0, 0, 0, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("one_pass", [True, False])
def test_winograd_network_matches_the_reference_backend(monkeypatch, one_pass):
    """The whole U-Net, forward and every parameter's gradient, with its 3x3 convolutions through Winograd
    on the cpu backend (forced at every size, in one pass or as three steps), against the numpy backend's
    im2col, in float64."""
    from pyddpm.ops import backend
    if not backend.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .): no Winograd kernels")
    model = UNet(image_size=8, in_ch=3, ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                 dropout=0.0).astype(np.float64)
    rng = np.random.default_rng(4)
    for p in model.parameters():
        p.data = p.data + 0.1 * rng.standard_normal(p.shape)
    x, t, weights = rng.standard_normal((3, 3, 8, 8)), np.array([3, 17, 500]), rng.standard_normal((3, 3, 8, 8))

    def run():
        model.zero_grad()
        out = model(Tensor(x), t)
        (out * weights).sum().backward()
        return out.data, [p.grad.copy() for p in model.parameters()]
    ref_out, ref_grads = run()
    calls = force_winograd(monkeypatch, one_pass)
    out, grads = run()
    # every 3x3 stride-1 conv (the input conv, the resblocks', the upsampling's), on the path asked for
    assert len(calls) >= 8 and set(calls) == {"one pass" if one_pass else "steps"}
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(g, ref, rtol=1e-9, atol=1e-11)
