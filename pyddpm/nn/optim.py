"""Adam, global-norm gradient clipping, linear warm-up and the EMA of the weights (App. B, Ho et al. 2020).

All updates are in place on the parameters' arrays, so no step allocates a second copy of the model.
Adam.step and EMA.update are the plain path (NumPy, the numpy backend's); adam_ema_step does both in one
fused pass per tensor on the cpu and cuda backends, with the same numbers.
"""

import math

from pyddpm.arrays import array_module
from pyddpm.ops.adam_ema import adam_ema
from pyddpm.ops.backend import resolve


def clip_grad_norm(params, max_norm):
    """Scale all gradients together so their global L2 norm is at most max_norm; return the norm before.

    The norm stays a 0-d array on the gradients' array library and the scale is applied unconditionally
    (min(1, max_norm / norm), exactly 1.0 when no clipping is needed), so a step on the GPU never waits for
    a number to come back to the host.
    """
    grads = [p.grad for p in params if p.grad is not None]
    xp = array_module(*grads)
    # Each tensor's sum of squares as a (1, n) @ (n, 1) BLAS product (no temporary, and a 0-d array, not a
    # host scalar, on every array library), summed in float64.
    rows = [g.reshape(1, -1) for g in grads]
    total = xp.sqrt(sum((r @ r.T).astype(xp.float64) for r in rows)).reshape(())
    if max_norm is not None:
        scale = xp.minimum(1.0, max_norm / (total + 1e-6))
        for g in grads:
            g *= scale.astype(g.dtype)
    return total


def warmup_lr(step, base_lr, warmup):
    """Linear warm-up from ~0 to base_lr over `warmup` steps (step counts from 1), then constant."""
    return base_lr * min(step / warmup, 1.0) if warmup > 0 else base_lr


class Adam:
    """Adam (Kingma & Ba) with bias correction; the official run's beta1 = 0.9, beta2 = 0.999, eps = 1e-8."""

    def __init__(self, params, lr=2e-4, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = [p.xp.zeros_like(p.data) for p in self.params]
        self.v = [p.xp.zeros_like(p.data) for p in self.params]
        self.t = 0

    def advance(self, lr=None):
        """Count one more step t; return its (step_size, eps_hat), both bias corrections folded in."""
        lr = self.lr if lr is None else lr
        self.t += 1
        # Fold both bias corrections into one scalar step size: lr * sqrt(1 - b2^t) / (1 - b1^t).
        step_size = lr * math.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)
        eps_hat = self.eps * math.sqrt(1.0 - self.beta2 ** self.t)
        return step_size, eps_hat

    def step(self, lr=None):
        step_size, eps_hat = self.advance(lr)
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            p.data -= (step_size * m / (p.xp.sqrt(v) + eps_hat)).astype(p.dtype, copy=False)


class EMA:
    """Exponential moving average of parameters: ema <- d * ema + (1 - d) * param.

    The decay warms up as d_n = min(decay, (1 + n) / (10 + n)) after n updates, so a short run's EMA model
    follows the trained weights instead of staying at the random initialisation.
    """

    def __init__(self, params, ema_params, decay=0.9999):
        self.params, self.ema_params, self.decay = list(params), list(ema_params), decay
        self.num_updates = 0

    def advance(self):
        """Count one more update; return its decay."""
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        self.num_updates += 1
        return d

    def update(self):
        d = self.advance()
        for p, e in zip(self.params, self.ema_params):
            average(e, p, d)


def average(e, p, d):
    """e <- d e + (1 - d) p, in place on the EMA parameter e."""
    e.data *= e.dtype.type(d)
    e.data += e.dtype.type(1.0 - d) * p.data


def adam_ema_step(opt, ema, lr=None, backend=None):
    """opt.step(lr) then ema.update(), for an EMA of opt's parameters (in the same order).

    On the cpu and cuda backends each parameter with a gradient takes one fused pass (pyddpm.ops.adam_ema)
    that gives the plain path's numbers bit for bit (tests/test_train.py); on numpy it is the plain path.
    """
    if resolve(backend) == "numpy":
        opt.step(lr)
        ema.update()
        return
    if len(opt.params) != len(ema.params) or any(a is not b for a, b in zip(opt.params, ema.params)):
        raise ValueError("adam_ema_step: the EMA must average the optimiser's parameters, in its order")
    step_size, eps_hat = opt.advance(lr)
    d = ema.advance()
    for p, m, v, e in zip(opt.params, opt.m, opt.v, ema.ema_params):
        if p.grad is None:
            average(e, p, d)
            continue
        g = p.xp.ascontiguousarray(p.grad)  # the kernels take contiguous arrays; a backward may give a view
        adam_ema(p.data, g, m, v, e.data, step_size, eps_hat, opt.beta1, opt.beta2, d, backend=backend)
