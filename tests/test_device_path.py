"""The GPU path's promise, checked without a GPU: the training loop and the sampling loop never read a value
of the model's array library back on the host between the log lines.

On a GPU such a read (float(loss), `if norm > clip`, .item()) waits for every queued kernel and copies to
the host. Here the run's array library is swapped for a stand-in whose arrays are NumPy arrays that refuse
to become Python numbers; the loops must still run. The stand-in covers the loop code (loss, clipping,
Adam, EMA, the reverse step), not the inside of every op, which the CuPy arrays themselves keep on the
GPU (an op that made a NumPy array there would fail on CuPy's inputs); tests/gpu/ runs the real thing.
"""

import types

import numpy as np
import pytest

import pyddpm.train.loop as loop
from pyddpm.autograd import no_grad
from pyddpm.train import Trainer, preset_config
from pyddpm.train.builders import model_fn_arrays


class HostRead(AssertionError):
    pass


class DeviceOnly(np.ndarray):
    """A NumPy array that, like a CuPy one inside a step, must not be turned into a host number."""

    def _refuse(self, *args, **kwargs):
        raise HostRead("a device array was read on the host inside a step")

    __float__ = __int__ = __bool__ = item = tolist = _refuse


def device_library():
    """numpy, except that new arrays made from host data are DeviceOnly (as cupy.asarray makes device ones)."""
    lib = types.ModuleType("device_stand_in")
    lib.__getattr__ = lambda name: getattr(np, name)
    lib.asarray = lambda a, dtype=None: np.array(a, dtype=dtype).view(DeviceOnly)
    lib.array = lib.asarray
    return lib


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "array_library", device_library)
    cfg = preset_config("tiny", out=str(tmp_path / "run"), backend="numpy", steps=3, batch_size=4,
                        sample_every=0, log_every=2, ckpt_every=3, timesteps=20)
    return Trainer(cfg, log=lambda *_: None)


def test_a_training_step_reads_nothing_back(trainer):
    assert all(isinstance(p.data, DeviceOnly) for p in trainer.params)
    loss, grad_norm = trainer.train_step()
    assert isinstance(loss, DeviceOnly) and isinstance(grad_norm, DeviceOnly)
    assert all(isinstance(p.data, DeviceOnly) for p in trainer.params), "the update left the device"
    assert all(isinstance(m, DeviceOnly) for m in trainer.opt.m)
    with pytest.raises(HostRead):  # the stand-in does catch a read: the old per-step float(loss)
        float(loss)


def test_the_log_line_and_checkpoint_read_the_steps_once(trainer):
    result = trainer.run()
    assert result["steps"] == 3 and np.isfinite(result["final_loss"])
    assert not trainer.pending


def test_a_sampling_loop_reads_nothing_back(trainer):
    calls = []

    def model_fn(x, t):  # the network's output as a device array: the loop must not read it on the host
        calls.append(t[0])
        return model_fn_arrays(trainer.ema_model)(x, t).view(DeviceOnly)
    with no_grad():
        x = trainer.diffusion.p_sample_loop(model_fn, (2, *trainer.image_shape), np.random.default_rng(0),
                                            progress=False, xp=trainer.xp)
    assert calls == list(range(trainer.diffusion.num_timesteps - 1, -1, -1))
    assert x.shape == (2, *trainer.image_shape) and np.isfinite(np.asarray(x)).all()
