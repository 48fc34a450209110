"""The tape: a Tensor that remembers how it was made, and reverse-mode backward over that record.

Each op builds its result with ``Tensor.from_op(data, parents, backward)``, where ``backward(g)`` maps
the gradient of the result to one gradient per parent (None where a parent needs none). ``backward()``
on a scalar walks the graph in reverse topological order and accumulates gradients into the leaves
(parameters and inputs created with ``requires_grad=True``); intermediate gradients are dropped as soon as
they have been passed on, so memory stays at the forward activations. Same idea as micrograd's engine,
vectorised over arrays.
"""

import contextlib

from pyddpm.arrays import array_module

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Run the block without recording a tape (sampling, evaluation, EMA updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Tensor:
    """An xp array (numpy or cupy) plus what backward needs: its parents and a gradient rule."""

    # ndarray <op> Tensor must call Tensor's reflected method, not broadcast the Tensor as an object.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            raise TypeError("Tensor(data): data is already a Tensor; use it directly")
        xp = array_module(data)
        self.data = data if isinstance(data, xp.ndarray) else xp.asarray(data)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()
        self._backward = None

    @classmethod
    def from_op(cls, data, parents, backward):
        """The result of an op. Records the tape only when a parent needs a gradient."""
        out = cls(data)
        if _grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward = backward
        return out

    # --- array-like surface -------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    @property
    def xp(self):
        """The array library (numpy or cupy) holding this tensor's data."""
        return array_module(self.data)

    def __repr__(self):
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{flag})"

    def item(self):
        return self.data.item()

    # --- backward ------------------------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``. ``grad`` defaults to 1 for a scalar."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (built under no_grad?)")
        xp = array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar, got shape {self.shape}")
            grad = xp.ones_like(self.data)
        grads = {id(self): xp.asarray(grad, dtype=self.data.dtype)}
        for node in _reverse_topological(self):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:  # a leaf
                node.grad = g if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(f"gradient shape {pg.shape} != tensor shape {parent.shape}")
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            # The graph is used once: free the saved activations as we go.
            node._parents, node._backward = (), _freed


def _freed(_):
    raise RuntimeError("backward() through the same graph twice: its saved arrays were freed by the "
                       "first backward; run the forward again")


def _reverse_topological(root):
    """Nodes that require grad, each after every node that uses it (iterative DFS; graphs are deep)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in seen)
    return reversed(order)


def as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)
