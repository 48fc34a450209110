"""Fused Adam step + EMA: the exact CUDA kernel of csrc/cuda/adam_ema.cu, run under the CPU emulation of
CUDA, against the NumPy oracle (pyddpm/ops/adam_ema.py).

One 256-thread block per 1024-element piece. Sizes: one element, a partial block (70), two blocks with a
partial second (1100), three full blocks (3072). Three steps with Adam's scalars at t = 1, 2, 3 and the
EMA's warm-up decay. Bit for bit: the kernel rounds each product on its own (mul_rn; the emulation build
has -ffp-contract=off) and sqrt and the division are correctly rounded, the order of the reference's.
"""

import math

import numpy as np
import pytest

from emulation import covers
from pyddpm.ops.adam_ema import adam_ema_reference

SIZES = [1, 70, 1100, 3072]
BETA1, BETA2, EPS, LR = 0.9, 0.999, 1e-8, 2e-4


def scalars(t):
    step_size = LR * math.sqrt(1.0 - BETA2 ** t) / (1.0 - BETA1 ** t)
    return step_size, EPS * math.sqrt(1.0 - BETA2 ** t), BETA1, BETA2, min(0.9999, (1.0 + t) / (10.0 + t))


@covers("adam_ema_kernel")
@pytest.mark.parametrize("n", SIZES)
def test_adam_ema_matches_reference(emu, order, n):
    rng = np.random.default_rng(n)
    p, m, ema = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    v = (rng.random(n) + 0.01).astype(np.float32) * 1e-4
    got = [a.copy() for a in (p, m, v, ema)]
    for t in (1, 2, 3):
        g = (rng.standard_normal(n) * t + 0.1).astype(np.float32)
        emu.adam_ema_cuda(got[0], g, got[1], got[2], got[3], n, *scalars(t), None)
        adam_ema_reference(p, g, m, v, ema, *scalars(t))
    for name, a, b in zip(("p", "m", "v", "ema"), got, (p, m, v, ema)):
        np.testing.assert_array_equal(a, b, err_msg=name)
