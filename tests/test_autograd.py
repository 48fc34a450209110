"""Every autograd op the U-Net uses, gradient-checked in float64 against central finite differences."""

import numpy as np
import pytest

from gradcheck import check_grads
from kernels import force_winograd
from pyddpm import autograd as ag
from pyddpm.autograd import Tensor, no_grad

rng = np.random.default_rng(1234)


def randn(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
                                lambda a, b: a / (b * b + 1.0)])
def test_binary_ops_broadcast(op):
    check_grads(op, randn(3, 1, 4), randn(2, 4))


def test_ops_with_arrays_on_either_side():
    a = randn(3, 4)
    check_grads(lambda x: 2.0 - x * a + a / (x * x + 1.0) - (a - x) / 3.0, randn(3, 4))


def test_unary_and_reductions():
    check_grads(lambda x: (-x) ** 3, randn(2, 3))
    check_grads(lambda x: (x * 0.3).exp(), randn(2, 3))
    check_grads(lambda x: (x * x + 0.5).log(), randn(2, 3))
    check_grads(lambda x: x.sum(axis=1), randn(2, 3, 4))
    check_grads(lambda x: x.sum(axis=(0, 2), keepdims=True), randn(2, 3, 4))
    check_grads(lambda x: x.mean(axis=(1, 2)), randn(2, 3, 4))
    check_grads(lambda x: x.mean(), randn(2, 3, 4))


def test_shape_ops():
    check_grads(lambda x: x.reshape(4, 6) * np.arange(24.0).reshape(4, 6), randn(2, 3, 4))
    check_grads(lambda x: x.transpose(2, 0, 1) * np.arange(24.0).reshape(4, 2, 3), randn(2, 3, 4))
    check_grads(lambda a, b: ag.concat([a, b], axis=1), randn(2, 3, 2), randn(2, 1, 2))
    check_grads(ag.upsample_nearest2x, randn(2, 3, 3, 5))
    check_grads(lambda x: x[1] * 2.0 + x[0, 1:2], randn(2, 3, 4))


def test_matmul_and_linear():
    check_grads(lambda a, b: a @ b, randn(3, 5), randn(5, 2))
    check_grads(ag.linear, randn(3, 5), randn(5, 2), randn(2))


# (k, stride, padding, bias, fast): every path of conv2d: pointwise, same-size rows, general im2col.
CONV_CASES = [(3, 1, 1, True, True), (3, 1, 1, True, False), (1, 1, 0, True, True), (3, 2, 1, True, True),
              (3, 1, 1, False, True), (3, 2, 1, False, True), (5, 1, 2, True, True), (3, 1, 0, True, True)]


@pytest.mark.parametrize("k,stride,padding,bias,fast", CONV_CASES)
def test_conv2d(k, stride, padding, bias, fast):
    x, w = randn(2, 3, 5, 6), randn(4, 3, k, k)
    if bias:
        check_grads(lambda x, w, b: ag.conv2d(x, w, b, stride, padding, fast=fast), x, w, randn(4))
    else:
        check_grads(lambda x, w: ag.conv2d(x, w, None, stride, padding, fast=fast), x, w)


@pytest.mark.parametrize("k,stride,padding,bias,fast", CONV_CASES)
def test_conv2d_matches_direct_sum(k, stride, padding, bias, fast):
    """Each path equals the definition: out[b,o,i,j] = sum_{c,u,v} w[o,c,u,v] x_pad[b,c,s*i+u,s*j+v] + b[o]."""
    x, w, b = randn(2, 3, 5, 6), randn(4, 3, k, k), randn(4)
    out = ag.conv2d(x, w, b if bias else None, stride, padding, fast=fast).data
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = (5 + 2 * padding - k) // stride + 1, (6 + 2 * padding - k) // stride + 1
    ref = np.zeros((2, 4, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, stride * i:stride * i + k, stride * j:stride * j + k]
            ref[:, :, i, j] = np.einsum("bcuv,ocuv->bo", patch, w) + (b if bias else 0.0)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.fixture(params=["one pass", "steps"])
def winograd_conv(monkeypatch, request):
    """The list of Winograd paths conv2d takes, each forced in turn (the test asserts it is not empty)."""
    calls = force_winograd(monkeypatch, one_pass=request.param == "one pass")
    yield calls
    assert set(calls) <= {request.param}


@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (1, 2, 1, 1), (1, 1, 4, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_winograd(winograd_conv, shape, bias):
    x, w = randn(*shape), randn(4, shape[1], 3, 3)
    if bias:
        check_grads(lambda x, w, b: ag.conv2d(x, w, b, 1, 1), x, w, randn(4))
    else:
        check_grads(lambda x, w: ag.conv2d(x, w, None, 1, 1), x, w)
    assert winograd_conv


def test_conv2d_winograd_matches_the_row_layout(winograd_conv):
    x, w, b = randn(2, 3, 7, 5), randn(4, 3, 3, 3), randn(4)
    out = ag.conv2d(x, w, b, 1, 1).data
    assert winograd_conv
    np.testing.assert_allclose(out, ag.conv2d(x, w, b, 1, 1, fast=False).data, rtol=1e-12, atol=1e-12)


def test_conv2d_takes_winograd_where_it_pays(monkeypatch):
    from pyddpm.autograd import conv
    from pyddpm.ops import backend
    if not backend.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .): no Winograd kernels")
    backend.set_backend("cpu")
    path = conv._winograd_path
    one_pass = "one pass" if conv.one_pass_available("cpu", 32) else "steps"  # a build without the SIMD tile
    assert path((32, 1, 16, 16), 32, 3, 1, 1) == one_pass  # any channels, from 128 tiles and 2 samples
    assert path((2, 3, 16, 16), 64, 3, 1, 1) == one_pass and path((8, 64, 8, 8), 3, 3, 1, 1) == one_pass
    assert path((1, 128, 32, 32), 128, 3, 1, 1) == "steps"  # one sample: the backward would get one thread
    assert path((8, 128, 4, 4), 128, 3, 1, 1) == "steps"  # 32 tiles, h 64
    assert path((4, 16, 8, 8), 16, 3, 1, 1) == "steps"  # 64 tiles, h 8
    assert path((4, 128, 4, 4), 128, 3, 1, 1) is None  # 16 tiles
    assert path((4, 3, 8, 8), 64, 3, 1, 1) is None  # 64 tiles, h < 8
    if conv.one_pass_available("cpu", 32):
        assert path((2, 16, 16, 130), 16, 3, 1, 1) == "steps"  # wider than one pass takes
    assert path((16, 64, 32, 32), 64, 3, 2, 1) is None and path((16, 64, 32, 32), 64, 1, 1, 0) is None
    backend.set_backend("numpy")  # the reference backend keeps the plain im2col path
    assert path((16, 64, 32, 32), 64, 3, 1, 1) is None


@pytest.mark.parametrize("groups,silu", [(2, False), (2, True), (4, True), (1, False)])
def test_group_norm(groups, silu):
    # An offset signal: the statistics must not lose the variance to cancellation.
    x = randn(2, 4, 3, 3) * 2.0 + 5.0
    check_grads(lambda x, g, b: ag.group_norm(x, g, b, groups, silu=silu), x, randn(4), randn(4))


def test_group_norm_normalises_each_group():
    x = randn(3, 6, 4, 5) * 3.0 + 7.0
    y = ag.group_norm(x, np.ones(6), np.zeros(6), 3).data.reshape(3, 3, -1)
    np.testing.assert_allclose(y.mean(axis=2), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=2), 1.0, rtol=1e-4)  # eps = 1e-6 against a variance of ~9


def test_attention():
    check_grads(ag.attention, randn(2, 2, 5, 3), randn(2, 2, 5, 3), randn(2, 2, 5, 3))


def test_attention_matches_softmax_definition():
    q, k, v = randn(1, 1, 7, 4), randn(1, 1, 7, 4), randn(1, 1, 7, 4)
    s = q[0, 0] @ k[0, 0].T / 2.0
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ag.attention(q, k, v).data[0, 0], p @ v[0, 0], rtol=1e-12)


def test_silu_and_dropout():
    check_grads(ag.silu, randn(3, 4) * 3.0)
    # The same generator state gives the same mask in every call, so finite differences see a fixed mask.
    check_grads(lambda x: ag.dropout(x, 0.3, np.random.default_rng(7)), randn(4, 5))
    kept = ag.dropout(np.ones((200, 200)), 0.25, np.random.default_rng(0)).data
    assert abs((kept == 0).mean() - 0.25) < 0.01 and np.allclose(kept[kept != 0], 1 / 0.75)


def test_discretized_gaussian_log_likelihood_grad():
    x = rng.integers(0, 256, size=(2, 3)) / 127.5 - 1.0
    x[0, 0], x[1, 2] = -1.0, 1.0  # both open edge bins
    log_scales = rng.uniform(-3, 0, size=(2, 3))
    check_grads(lambda m: ag.discretized_gaussian_log_likelihood(x, m, log_scales), x + randn(2, 3) * 0.05,
                rtol=1e-4, atol=1e-6)
    # A learned variance: the log-scales are the network's output too, per element and per sample.
    check_grads(lambda m, s: ag.discretized_gaussian_log_likelihood(x, m, s), x + randn(2, 3) * 0.05, log_scales,
                rtol=1e-4, atol=1e-6)
    check_grads(lambda s: ag.discretized_gaussian_log_likelihood(x, x + 0.02, s), log_scales[:, :1],
                rtol=1e-4, atol=1e-6)


def test_normal_kl_grad_in_every_argument():
    """The bound's Gaussian KL with Tensor means and log-variances (a learned reverse variance)."""
    from pyddpm.likelihood import normal_kl
    check_grads(normal_kl, randn(2, 3), randn(2, 3) * 0.5, randn(2, 3), randn(2, 3) * 0.5)
    logvar1 = randn(2, 3) * 0.5
    check_grads(lambda m, v: normal_kl(m, logvar1, 0.0, v), randn(2, 3), randn(2, 1))


def test_cross_entropy_grad():
    """Batch 1 and 5, K = 3 and 10, logits of very different sizes (the log-sum-exp must not overflow)."""
    rng = np.random.default_rng(3)
    for B, K in ((1, 3), (5, 10)):
        labels = rng.integers(0, K, B)
        check_grads(lambda z: ag.cross_entropy(z, labels), rng.normal(0, 3, (B, K)))


def test_cross_entropy_is_minus_log_softmax_of_the_label():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    got = ag.cross_entropy(z, np.array([0, 2])).data
    want = [0.0, -np.log(np.exp(3.0) / np.exp([1.0, 2.0, 3.0]).sum())]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        ag.cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="int labels"):
        ag.cross_entropy(z, np.array([0.0, 1.0]))


def test_backward_accumulates_shared_inputs_and_frees_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * x + x  # x used twice
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)
    with pytest.raises(RuntimeError):
        y.sum().backward()  # the graph below y was freed by the first backward: y is now a leaf


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._backward is None
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_backward_needs_scalar_or_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()


def test_python_numbers_keep_the_tensor_dtype():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = (0.5 * x - 1.0) / 3.0 + 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
