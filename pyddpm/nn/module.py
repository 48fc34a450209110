"""Module and Parameter: named parameters, state dicts, train/eval mode. The PyTorch idea, minimal.

A Module finds its parameters and sub-modules by walking its attributes in the order they were set
(lists of modules count too), so names are stable: "down.0.conv1.weight". A state dict maps those names
to arrays; loading one checks every name, shape and dtype and says which one is wrong.
"""

import numpy as np

from pyddpm.autograd import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimiser updates in place (``p.data[...] = ...``)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def children(self):
        """(name, module) for each direct sub-module, in attribute order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def modules(self):
        yield self
        for _, child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix=""):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Cast every parameter in place (float64 for gradient checks, float32 to train)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
        return self

    def to(self, xp):
        """Move every parameter to array library ``xp`` (numpy or cupy), in place; a no-op where it is."""
        for p in self.parameters():
            p.data = xp.asarray(p.data)
        return self

    def state_dict(self):
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters; every name must be present with the right shape."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"state dict does not fit the model: missing {missing[:5]}"
                             f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                             f"{'...' if len(unexpected) > 5 else ''}")
        for name, p in params.items():
            value = state[name]
            if value.shape != p.shape:
                raise ValueError(f"state dict: {name} has shape {value.shape}, the model needs {p.shape}")
            if not np.issubdtype(value.dtype, np.floating):
                raise ValueError(f"state dict: {name} has dtype {value.dtype}, expected floating point")
            p.data[...] = p.xp.asarray(value)  # in place: the parameter stays where it lives (host or GPU)
