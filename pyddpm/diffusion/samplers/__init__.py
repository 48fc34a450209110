"""Every way to sample one trained model: the chain (ancestral, DDIM), the score (Langevin, annealed Langevin),
the reverse SDE (Euler-Maruyama, predictor-corrector) and the probability-flow ODE (Heun).

Each sampler is a function (model_fn, diffusion, shape, rng, steps, *, clip_denoised, progress, dtype, xp,
callback, ...) -> x_0, where model_fn(x, t) is the trained network's output (eps, x_0 or the reverse mean, the
diffusion's mean_type, and a learned variance's channels after them) at int64 chain indices t (B,). Only
ancestral sampling has a variance to learn (Alg. 2's sigma_t); the others take the mean part of the output and
their own noise scales. Every update goes through one fused kernel
(pyddpm.ops.sampler_step); what differs is its coefficients. Each is written in terms of the model's x_0
estimate, so clip_denoised (clip it to [-1, 1], as the official sampler does) applies to every sampler: the
score-based ones then follow the score of the clipped estimate. The score and the SDE they discretise:
pyddpm/diffusion/score.py.
"""

from pyddpm.diffusion.samplers.ancestral import ancestral, interpolate
from pyddpm.diffusion.samplers.ddim import ddim
from pyddpm.diffusion.samplers.langevin import annealed_langevin, langevin
from pyddpm.diffusion.samplers.ode import ode
from pyddpm.diffusion.samplers.sde import euler_maruyama, predictor_corrector
from pyddpm.diffusion.samplers.steps import respaced, strided_indices

# The names the command line takes (python -m pyddpm.sample --sampler NAME).
SAMPLERS = {"ancestral": ancestral, "ddim": ddim, "langevin": langevin, "annealed-langevin": annealed_langevin,
            "sde": euler_maruyama, "pc": predictor_corrector, "ode": ode}

__all__ = ["SAMPLERS", "ancestral", "annealed_langevin", "ddim", "euler_maruyama", "interpolate", "langevin", "ode",
           "predictor_corrector", "respaced", "strided_indices"]
