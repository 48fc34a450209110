"""The optimiser update of one training step: Adam.step then EMA.update (the plain NumPy path) against the
fused adam_ema kernel on the cpu backend (adam_ema_step), over a U-Net preset's parameters.

    python -m benchmarks.adam_ema [--presets digits cifar10] [--repeats 15]

Both paths first take one step from the same state and must agree bit for bit; then they are timed
interleaved on one shared state (each call is a real step: t and the EMA's update count advance).
"""

import argparse

import numpy as np

from benchmarks.harness import format_row, time_interleaved
from pyddpm.models.unet import UNet
from pyddpm.nn import Parameter
from pyddpm.nn.optim import EMA, Adam, adam_ema_step


def optimiser(preset, rng):
    params = UNet.from_preset(preset).parameters()
    for p in params:
        p.grad = (rng.standard_normal(p.shape) * 1e-2).astype(np.float32)
    ema = EMA(params, [Parameter(p.data.copy()) for p in params])
    return Adam(params), ema


def check(opt, ema):
    state = [p.data for p in opt.params] + opt.m + opt.v + [e.data for e in ema.ema_params]
    before = [a.copy() for a in state]
    adam_ema_step(opt, ema, backend="cpu")
    fused = [a.copy() for a in state]
    for a, b in zip(state, before):
        a[...] = b
    opt.t, ema.num_updates = opt.t - 1, ema.num_updates - 1
    adam_ema_step(opt, ema, backend="numpy")
    if not all(np.array_equal(a, b) for a, b in zip(fused, state)):
        raise AssertionError("the fused update differs from Adam.step + EMA.update")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["digits", "cifar10"])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for preset in args.presets:
        opt, ema = optimiser(preset, rng)
        check(opt, ema)
        n = sum(p.data.size for p in opt.params)
        results = time_interleaved({"numpy": lambda: adam_ema_step(opt, ema, backend="numpy"),
                                    "cpu": lambda: adam_ema_step(opt, ema, backend="cpu")}, repeats=args.repeats)
        print(format_row(f"Adam+EMA {preset} ({n:,} params, {len(opt.params)} tensors)", results), flush=True)


if __name__ == "__main__":
    main()
