"""Check before timing: pyddpm (each backend) and the PyTorch reference compute the same numbers.

On one configuration's U-Net with every weight perturbed (the official init leaves the output conv and
each residual branch's last conv at ~1e-10, which would let a wrong network pass), copied into the
PyTorch model, in eval mode (no dropout), at a small batch, with the same x_0, t and noise:
  - x_t (Eq. 4), the network output and the L_simple loss (Eq. 14),
  - every parameter's gradient of that loss,
  - one reverse step (Alg. 2) from the same model output.
Raises AssertionError (from harness.check_close) naming what differs.
"""

import numpy as np
import torch

from e2e.torch_runner import Tables, q_sample, reverse_step
from e2e.torch_unet import from_pyddpm
from harness import check_close
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.backend import set_backend

RTOL = 1e-4       # float32 through a deep network: the two sides sum in different orders
GRAD_RTOL = 1e-3  # gradients pass through the network twice
# Some gradients are zero in exact arithmetic (a bias just before a GroupNorm with one channel per group:
# the norm removes it) and float32 noise in practice; they are compared at this fraction of the largest
# gradient entry of the whole model.
GRAD_ATOL = 1e-5


def perturb(model, rng):
    """Add noise of about the init's size to every parameter (in place), so every path carries signal."""
    for name, p in model.named_parameters():
        fan_in = p.shape[0] if p.ndim == 2 else int(np.prod(p.shape[1:]))  # dense (in, out); conv (out, in, k, k)
        scale = 0.1 if p.ndim == 1 else 1.0 / np.sqrt(fan_in)
        p.data = (p.data + scale * rng.standard_normal(p.shape)).astype(np.float32)


def check_agreement(config, backends=("numpy", "cpu"), batch=2, seed=0):
    """Compare pyddpm on each backend with the PyTorch model; raises AssertionError on any difference."""
    rng = np.random.default_rng(seed)
    model = config.build(seed=seed)
    perturb(model, rng)
    model.eval()
    reference = from_pyddpm(model).eval()
    diffusion = GaussianDiffusion(make_beta_schedule("linear", 1000))
    shape = (batch, *config.image_shape())
    x0 = rng.uniform(-1, 1, shape).astype(np.float32)
    t = rng.integers(0, 1000, batch)
    noise = rng.standard_normal(shape).astype(np.float32)

    tables, t_ref, noise_ref = Tables.from_diffusion(diffusion), torch.from_numpy(t), torch.from_numpy(noise)
    xt_ref = q_sample(tables, torch.from_numpy(x0), t_ref, noise_ref)
    out_ref = reference(xt_ref, t_ref)
    loss_ref = ((out_ref - noise_ref) ** 2).mean()
    loss_ref.backward()
    grads_ref = {n: p.grad.numpy() for n, p in reference.named_parameters()}
    grad_scale = max(np.abs(g).max() for g in grads_ref.values())
    step_ref = reverse_step(tables, out_ref.detach(), xt_ref, t_ref, noise_ref).numpy()
    xt_ref, out_ref = xt_ref.numpy(), out_ref.detach().numpy()

    for backend in backends:
        set_backend(backend)
        xt = diffusion.q_sample(x0, t, noise)
        check_close(f"{config.name} {backend} q_sample", xt_ref, xt, RTOL, RTOL)
        out = model(xt, t)
        loss = ((out - noise) ** 2).mean()
        model.zero_grad()
        loss.backward()
        scale = np.abs(out_ref).max()
        check_close(f"{config.name} {backend} output", out_ref, out.data, RTOL, RTOL * scale)
        check_close(f"{config.name} {backend} loss", loss_ref.item(), loss.item(), RTOL, 0.0)
        for name, p in model.named_parameters():
            g_ref = grads_ref[name].T if p.ndim == 2 else grads_ref[name]  # dense weights: (out, in) in torch
            check_close(f"{config.name} {backend} grad {name}", g_ref, p.grad, GRAD_RTOL, GRAD_ATOL * grad_scale)
        step = diffusion.p_sample(out.data, xt, t, noise)["sample"]
        check_close(f"{config.name} {backend} reverse step", step_ref, step, RTOL, RTOL)

