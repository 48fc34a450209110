"""Elementwise arithmetic, reductions and reshapes: each op is a forward line and its gradient rule.

Binary ops broadcast like numpy; ``unbroadcast`` sums a gradient back down to an operand's shape.
These are installed as Tensor's operators at the bottom of the file.
"""

from pyddpm.autograd.tensor import Tensor, as_tensor


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched to reach it from ``shape``."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


def _pair(a, b):
    """Both operands as Tensors. A Python number takes the other operand's dtype, as numpy's own scalars
    do: float32 * 0.5 stays float32 instead of becoming a 0-d float64 array that promotes the result."""
    if isinstance(a, (int, float)):
        b = as_tensor(b)
        return Tensor(b.xp.asarray(a, dtype=b.dtype)), b
    a = as_tensor(a)
    if isinstance(b, (int, float)):
        return a, Tensor(a.xp.asarray(b, dtype=a.dtype))
    return a, as_tensor(b)


def add(a, b):
    a, b = _pair(a, b)
    return Tensor.from_op(a.data + b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a, b):
    a, b = _pair(a, b)
    return Tensor.from_op(a.data - b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a, b):
    a, b = _pair(a, b)
    return Tensor.from_op(a.data * b.data, (a, b),
                          lambda g: (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                                     unbroadcast(g * a.data, b.shape) if b.requires_grad else None))


def div(a, b):
    a, b = _pair(a, b)
    out = a.data / b.data
    return Tensor.from_op(out, (a, b),
                          lambda g: (unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                                     unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None))


def neg(a):
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,))


def power(a, p):
    """a ** p for a Python scalar exponent p."""
    if isinstance(p, Tensor):
        raise TypeError("Tensor ** Tensor is not supported; the exponent must be a Python number")
    return Tensor.from_op(a.data ** p, (a,), lambda g: (g * p * a.data ** (p - 1),))


def exp(a):
    out = a.xp.exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,))


def log(a):
    return Tensor.from_op(a.xp.log(a.data), (a,), lambda g: (g / a.data,))


def _expand(g, shape, axis, keepdims):
    """Undo a reduction's dropped axes so ``g`` broadcasts against the input of shape ``shape``."""
    if axis is None or keepdims:
        return g.reshape((1,) * len(shape)) if axis is None and not keepdims else g
    axes = (axis,) if isinstance(axis, int) else axis
    axes = sorted(ax % len(shape) for ax in axes)
    for ax in axes:
        g = g.reshape(g.shape[:ax] + (1,) + g.shape[ax:])
    return g


def sum_(a, axis=None, keepdims=False):
    def backward(g):
        return (a.xp.broadcast_to(_expand(g, a.shape, axis, keepdims), a.shape).copy(),)
    return Tensor.from_op(a.data.sum(axis=axis, keepdims=keepdims), (a,), backward)


def mean(a, axis=None, keepdims=False):
    out = a.data.mean(axis=axis, keepdims=keepdims)
    count = a.data.size // max(out.size, 1)

    def backward(g):
        return (a.xp.broadcast_to(_expand(g, a.shape, axis, keepdims) / count, a.shape).copy(),)
    return Tensor.from_op(out, (a,), backward)


def reshape(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor.from_op(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def transpose(a, *axes):
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    axes = tuple(axes) if axes else tuple(reversed(range(a.ndim)))
    inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
    return Tensor.from_op(a.data.transpose(axes), (a,), lambda g: (g.transpose(inverse),))


def getitem(a, index):
    """a[index] for basic indexing (ints and slices); the gradient lands in the selected entries."""
    def backward(g):
        full = a.xp.zeros(a.shape, dtype=g.dtype)
        full[index] = g
        return (full,)
    return Tensor.from_op(a.data[index], (a,), backward)


def matmul(a, b):
    """a @ b for 2-D a, b (the dense layers)."""
    a, b = as_tensor(a), as_tensor(b)
    return Tensor.from_op(a.data @ b.data, (a, b),
                          lambda g: (g @ b.data.T if a.requires_grad else None,
                                     a.data.T @ g if b.requires_grad else None))


def concat(tensors, axis=1):
    """Concatenate along ``axis`` (the U-Net's skip connections join on channels)."""
    tensors = [as_tensor(t) for t in tensors]
    xp = tensors[0].xp
    bounds = [0]
    for t in tensors:
        bounds.append(bounds[-1] + t.shape[axis])

    def backward(g):
        index = [slice(None)] * g.ndim
        grads = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            index[axis] = slice(lo, hi)
            grads.append(g[tuple(index)])
        return tuple(grads)
    return Tensor.from_op(xp.concatenate([t.data for t in tensors], axis=axis), tensors, backward)


Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__neg__ = neg
Tensor.__pow__ = power
Tensor.__matmul__ = matmul
Tensor.__getitem__ = getitem
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.exp = exp
Tensor.log = log
Tensor.sum = sum_
Tensor.mean = mean
Tensor.reshape = reshape
Tensor.transpose = transpose
