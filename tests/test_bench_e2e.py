"""The end-to-end benchmark's PyTorch reference is pyddpm's U-Net, and its FLOP count is the network's.

PyTorch is optional (a benchmark-only dependency): the tests that need it skip without it.
"""

import numpy as np
import pytest

from benchmarks.e2e.configs import CONFIGS
from benchmarks.e2e.floor import forward_flops
from pyddpm.ops.backend import available

torch = pytest.importorskip("torch", reason="PyTorch (optional, benchmarks only) is not installed")

from benchmarks.e2e.check import check_agreement, perturb  # noqa: E402
from benchmarks.e2e.pyddpm_runner import PyddpmRunner  # noqa: E402
from benchmarks.e2e.torch_runner import TorchRunner  # noqa: E402
from benchmarks.e2e.torch_unet import TorchUNet, from_pyddpm  # noqa: E402


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_parameters_by_name_and_shape(name):
    model = CONFIGS[name].build()
    reference = TorchUNet(**model.config)
    ours = {n: p.shape for n, p in model.named_parameters()}
    theirs = {n: tuple(p.shape) for n, p in reference.named_parameters()}
    assert model.num_parameters() == sum(p.numel() for p in reference.parameters())
    assert ours.keys() == theirs.keys()
    for n, shape in ours.items():  # dense weights are (in, out) in pyddpm, (out, in) in PyTorch
        assert shape == theirs[n] or (len(shape) == 2 and shape[::-1] == theirs[n]), n


def test_forward_loss_gradients_and_reverse_step_agree_on_config_a():
    backends = [b for b in ("numpy", "cpu") if available(b)]
    check_agreement(CONFIGS["A"], ["torch", *backends], batch=2)


def test_the_check_catches_one_wrong_weight(monkeypatch):
    import benchmarks.e2e.torch_unet

    def off_by_one_weight(model):
        reference = from_pyddpm(model)
        with torch.no_grad():
            reference.mid[1].qkv.weight[0, 0] += 0.05  # one weight of the middle attention block
        return reference
    monkeypatch.setattr(benchmarks.e2e.torch_unet, "from_pyddpm", off_by_one_weight)
    with pytest.raises(AssertionError, match="A numpy vs torch"):
        check_agreement(CONFIGS["A"], ["torch", "numpy"], batch=2)


def test_timed_training_steps_make_the_same_update():
    """pyddpm's Trainer step and the PyTorch step, from the same weights on the same batch: the same loss,
    then (after clip, Adam, EMA) the same loss again and the same EMA model. Losses and outputs, not raw
    parameters, are compared: a gradient that is float32 noise (zero in exact arithmetic) gets Adam's
    full first step in a random direction, one the loss does not depend on."""
    config = CONFIGS["A"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, *config.image_shape()), dtype=np.uint8)
    ours = PyddpmRunner(config, "numpy", images)
    perturb(ours.model, rng)
    ours.ema_model.load_state_dict(ours.model.state_dict())
    theirs = TorchRunner(config, images, init_from=ours)
    x0, noise = (rng.uniform(-1, 1, (4, *config.image_shape())).astype(np.float32) for _ in range(2))
    t = np.array([0, 10, 500, 999])
    ours.trainer.batch = lambda: (x0, t, noise, np.ones(len(t)))  # uniform t: every weight is 1
    theirs.batch = lambda: (torch.from_numpy(x0), torch.from_numpy(t), torch.from_numpy(noise))
    for _ in range(2):
        np.testing.assert_allclose(ours.train_step(), theirs.train_step(), rtol=1e-4)
    with torch.no_grad():
        expected = theirs.ema_model(torch.from_numpy(x0), torch.from_numpy(t)).numpy()
    got = ours.ema_model(x0, t).data
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_flop_count_matches_pytorchs_counter():
    from torch.utils.flop_counter import FlopCounterMode
    for name in ("A", "B"):
        config = CONFIGS[name]
        reference = TorchUNet(**config.unet_kwargs()).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            reference(torch.zeros(2, *config.image_shape()), torch.tensor([0, 1]))
        assert forward_flops(**config.unet_kwargs(), batch=2) == counter.get_total_flops()
