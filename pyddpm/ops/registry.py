"""The kernel table: (kernel, backend) -> implementation, and the one path every kernel call takes.

A kernel module registers each entry point once, with its argument check and one implementation per
backend, and its public function (which carries the signature, the defaults and the docstring) hands
every call to ``dispatch``:

    register("q_sample", check_q_sample, numpy=q_sample_reference, cpu=extension_call("q_sample"),
             cuda=_q_sample_cuda)

    def q_sample(x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, backend=None):
        return dispatch("q_sample", backend, x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod)

``dispatch`` resolves the backend (the call's backend= argument, else the run's), runs the check (the same
on every backend, before any memory is touched: a bad argument raises the same TypeError or ValueError
everywhere), then the backend's implementation. The check and the implementations take the entry point's
arguments positionally, after ``backend`` for the check; a check returns None, or the whole argument tuple
with some arguments put in the form the implementations take (a per-sample array as (B,), a scale as a
float).
"""

from typing import Callable, NamedTuple, Optional

from pyddpm.ops.backend import extension, resolve


class Kernel(NamedTuple):
    check: Callable
    implementations: dict  # backend -> function


TABLE = {}  # kernel name -> Kernel


def register(name, check, numpy, cpu: Optional[Callable] = None, cuda: Optional[Callable] = None):
    """Enter kernel ``name`` in the table. cpu left out: pyddpm._cpu's function of the same name, called with
    the checked arguments as they are (extension_call); cuda left out: refused at call time."""
    if name in TABLE:
        raise ValueError(f"kernel {name!r} is registered twice")
    cpu = extension_call(name) if cpu is None else cpu
    implementations = {b: f for b, f in (("numpy", numpy), ("cpu", cpu), ("cuda", cuda)) if f is not None}
    TABLE[name] = Kernel(check, implementations)


def dispatch(name, backend, *args):
    """Check the arguments, then run kernel ``name`` on ``backend`` (None: the run's backend)."""
    backend = resolve(backend)
    kernel = TABLE[name]
    checked = kernel.check(backend, *args)
    implementation = kernel.implementations.get(backend)
    if implementation is None:
        raise ValueError(f"{name}: there is no {backend} implementation")
    return implementation(*(args if checked is None else checked))


def extension_call(name, backend="cpu"):
    """An implementation that passes the arguments to ``name`` in the backend's extension as they are."""
    def call(*args):
        return getattr(extension(backend), name)(*args)
    call.__name__ = call.__qualname__ = f"{backend}_{name}"
    return call
