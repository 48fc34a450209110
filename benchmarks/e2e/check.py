"""Check before timing: every implementation computes the same numbers as the reference.

The reference is the PyTorch model when "torch" is among the implementations, else pyddpm's numpy
backend. On one configuration's U-Net with every weight perturbed (the official init leaves the output
conv and each residual branch's last conv at ~1e-10, which would let a wrong network pass), in eval mode
(no dropout), at a small batch, with the same x_0, t and noise, each implementation gives:
  - x_t (Eq. 4), the network output and the L_simple loss (Eq. 14),
  - every parameter's gradient of that loss,
  - one reverse step (Alg. 2) from its own model output.
Raises AssertionError (from harness.check_close) naming what differs.
"""

import numpy as np

from benchmarks.harness import check_close
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.backend import set_backend

RTOL = 1e-4       # float32 through a deep network: the implementations sum in different orders
GRAD_RTOL = 1e-3  # gradients pass through the network twice
# Some gradients are zero in exact arithmetic (a bias just before a GroupNorm with one channel per group:
# the norm removes it) and float32 noise in practice; they are compared at this fraction of the largest
# gradient entry of the whole model.
GRAD_ATOL = 1e-5


def perturb(model, rng):
    """Add noise of about the init's size to every parameter (in place), so every path carries signal."""
    for p in model.parameters():
        fan_in = p.shape[0] if p.ndim == 2 else int(np.prod(p.shape[1:]))  # dense (in, out); conv (out, in, k, k)
        scale = 0.1 if p.ndim == 1 else 1.0 / np.sqrt(fan_in)
        p.data = (p.data + scale * rng.standard_normal(p.shape)).astype(np.float32)


def check_agreement(config, impls=("torch", "numpy", "cpu"), batch=2, seed=0):
    """Compare each implementation with the reference (the first of ``impls``: torch, else numpy)."""
    rng = np.random.default_rng(seed)
    model = config.build(seed=seed)
    perturb(model, rng)
    model.eval()
    diffusion = GaussianDiffusion(make_beta_schedule("linear", 1000))
    shape = (batch, *config.image_shape())
    inputs = (rng.uniform(-1, 1, shape).astype(np.float32), rng.integers(0, 1000, batch),
              rng.standard_normal(shape).astype(np.float32))

    results = {impl: (_torch_pass(model, diffusion, *inputs) if impl == "torch" else
                      _pyddpm_pass(model, diffusion, impl, *inputs)) for impl in impls}
    ref = results[impls[0]]
    grad_scale = max(np.abs(g).max() for g in ref["grads"].values())
    for impl in impls[1:]:
        got, what = results[impl], f"{config.name} {impl} vs {impls[0]}"
        check_close(f"{what}: x_t", ref["xt"], got["xt"], RTOL, RTOL)
        check_close(f"{what}: output", ref["out"], got["out"], RTOL, RTOL * np.abs(ref["out"]).max())
        check_close(f"{what}: loss", ref["loss"], got["loss"], RTOL, 0.0)
        for name, g in ref["grads"].items():
            check_close(f"{what}: grad {name}", g, got["grads"][name], GRAD_RTOL, GRAD_ATOL * grad_scale)
        check_close(f"{what}: reverse step", ref["step"], got["step"], RTOL, RTOL)


def _pyddpm_pass(model, diffusion, backend, x0, t, noise):
    set_backend(backend)
    xt = diffusion.q_sample(x0, t, noise)
    out = model(xt, t)
    loss = ((out - noise) ** 2).mean()
    model.zero_grad()
    loss.backward()
    return dict(xt=xt, out=out.data, loss=loss.item(), grads={n: p.grad for n, p in model.named_parameters()},
                step=diffusion.p_sample(out.data, xt, t, noise)["sample"])


def _torch_pass(model, diffusion, x0, t, noise):
    import torch

    from benchmarks.e2e.torch_runner import Tables, q_sample, reverse_step
    from benchmarks.e2e.torch_unet import from_pyddpm
    reference = from_pyddpm(model).eval()
    tables, t, noise = Tables.from_diffusion(diffusion), torch.from_numpy(t), torch.from_numpy(noise)
    xt = q_sample(tables, torch.from_numpy(x0), t, noise)
    out = reference(xt, t)
    loss = ((out - noise) ** 2).mean()
    loss.backward()
    # Dense weights (the only 2-D parameters) are (out, in) in PyTorch and (in, out) in pyddpm.
    grads = {n: (p.grad.T if p.ndim == 2 else p.grad).numpy() for n, p in reference.named_parameters()}
    step = reverse_step(tables, out.detach(), xt, t, noise)
    return dict(xt=xt.numpy(), out=out.detach().numpy(), loss=loss.item(), grads=grads, step=step.numpy())
