"""The floor of a step: the network's FLOPs over the machine's measured float32 matmul rate.

    python -m benchmarks.e2e.floor          # FLOPs and floor of every configuration

FLOPs count the multiply-adds of the U-Net's forward pass as 2 per multiply-add: every convolution
(2 Cin Cout k^2 Ho Wo per image), every dense layer (2 in out), and the two attention matmuls
(q k^T and P v: 2 N^2 C each, N = H W). Normalisation, activations, softmax and the elementwise rest are
left out: on these sizes they are a few percent of the FLOPs. A training step is counted as 3 forwards
(the backward computes two products per forward product: the input's gradient and the weight's) and a
sampling step as one. The rate is np.matmul of two 1024 x 1024 float32 matrices (the BLAS pyddpm uses),
the best of several; no step can beat FLOPs / rate, and the U-Net's smaller, oddly shaped matmuls run
below that rate, so the floor is a lower bound, not a target.
"""

import time

import numpy as np

from benchmarks.e2e.configs import CONFIGS

TRAIN_FORWARDS = 3  # forward + backward (grad of inputs and of weights)


def forward_flops(image_size, in_ch, ch, ch_mult, num_res_blocks, attn_resolutions, out_ch=None, batch=1,
                  **_):
    """FLOPs of one U-Net forward at ``batch`` (the UNet constructor's arguments; others are ignored).

    Walks the same blocks in the same order as pyddpm/models/unet.py builds them.
    """
    temb_ch = 4 * ch

    def conv(cin, cout, k, res):
        return 2 * cin * cout * k * k * res * res

    def resblock(cin, cout, res):
        return (conv(cin, cout, 3, res) + 2 * temb_ch * cout + conv(cout, cout, 3, res)
                + (conv(cin, cout, 1, res) if cin != cout else 0))

    def attention(c, res):
        n = res * res
        return conv(c, 3 * c, 1, res) + 2 * (2 * n * n * c) + conv(c, c, 1, res)

    total = 2 * ch * temb_ch + 2 * temb_ch * temb_ch + conv(in_ch, ch, 3, image_size)
    skips, cur, res = [ch], ch, image_size
    for level, mult in enumerate(ch_mult):
        for _ in range(num_res_blocks):
            total += resblock(cur, ch * mult, res)
            cur = ch * mult
            total += attention(cur, res) if res in attn_resolutions else 0
            skips.append(cur)
        if level != len(ch_mult) - 1:
            res //= 2
            total += conv(cur, cur, 3, res)  # stride 2: output at the lower resolution
            skips.append(cur)
    total += 2 * resblock(cur, cur, res) + attention(cur, res)
    for level, mult in reversed(list(enumerate(ch_mult))):
        for _ in range(num_res_blocks + 1):
            total += resblock(cur + skips.pop(), ch * mult, res)
            cur = ch * mult
            total += attention(cur, res) if res in attn_resolutions else 0
        if level != 0:
            res *= 2
            total += conv(cur, cur, 3, res)
    total += conv(cur, out_ch or in_ch, 3, image_size)
    return batch * total


def step_flops(config, what):
    """FLOPs of one "train" or "sample" step of a configuration at its batch size."""
    forwards = TRAIN_FORWARDS if what == "train" else 1
    return forwards * forward_flops(**config.unet_kwargs(), batch=config.batch(what))


def matmul_gflops(n=1024, repeats=20):
    """The measured float32 matmul rate (GFLOP/s) from the fastest of ``repeats`` np.matmul of two n x n
    matrices: the floor is a lower bound, so it takes the machine's best rate, which another process
    taking a core for a moment cannot lower (a median can fall several-fold on a shared machine)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    np.matmul(a, b)  # warm-up: threads started, pages touched
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times) / 1e9


def main():
    rate = matmul_gflops()
    print(f"float32 matmul rate (np.matmul 1024^3, best of 20): {rate:.1f} GFLOP/s")
    print(f"{'config':<8}{'step':<8}{'batch':>6}{'GFLOP':>10}{'floor ms':>10}")
    for name, config in CONFIGS.items():
        for what in ("train", "sample"):
            flops = step_flops(config, what)
            print(f"{name:<8}{what:<8}{config.batch(what):>6}{flops / 1e9:>10.2f}{flops / rate / 1e6:>10.1f}")


if __name__ == "__main__":
    main()
