"""The row layout of the stride-1 "same" convolutions (3x3, padding 1), the im2col of conv2d's fast path (the
NumPy references and the dispatch to the kernels: csrc/kernels/im2col.cuh, csrc/cpu/im2col.cpp,
csrc/cuda/im2col.cu; the general im2col is pyddpm/ops/im2col.py).

Flatten each padded image row-major, with row length Wp = W + 2*padding. The input under kernel tap
(ky, kx) for output position p = i*Wp + j is then simply flat[p + ky*Wp + kx]: one contiguous slice of
length H*Wp per tap instead of H*W tiny strided pieces. The price is 2*padding junk columns per output
row (positions j >= W), computed and thrown away: 12% more matmul work at W = 16, 25% at W = 8.
Columns are laid out (C*k*k, B*H*Wp) so that the whole batch is one large matmul.

Every function takes backend="numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend)
and checks its arguments first, on every backend: float32 or float64 arrays (cuda: float32), non-empty,
C-contiguous on cpu and cuda (numpy takes any strides); the fast backends return exactly the reference's
layouts.
"""

from pyddpm.arrays import array_module
from pyddpm.ops import checks
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register


def im2col_rows(x, k, padding, backend=None):
    """Returns cols (C*k*k, B*H*Wp), Wp = W + 2*padding, for x (B, C, H, W) and a stride-1 "same" conv
    (2*padding == k - 1, so Ho = H, Wo = W): the row layout of the module docstring."""
    return dispatch("im2col_rows", backend, x, k, padding)


def col2im_rows(dcols, x_shape, k, padding, backend=None):
    """The adjoint of im2col_rows: dcols (C*k*k, B*H*Wp) -> image gradient of shape x_shape (B, C, H, W)."""
    return dispatch("col2im_rows", backend, dcols, x_shape, k, padding)


def rows_to_nchw(y, B, H, W, padding, backend=None):
    """A matmul result y (C_out, B*H*Wp) in row layout -> (B, C_out, H, W), dropping the junk columns."""
    return dispatch("rows_to_nchw", backend, y, B, H, W, padding)


def nchw_to_rows(g, padding, backend=None):
    """g (B, C, H, W) -> (C, B*H*Wp) in row layout with zeros in the junk columns (rows_to_nchw's adjoint)."""
    return dispatch("nchw_to_rows", backend, g, padding)


# --- The checks each function above makes first, on every backend ------------------------------------------
# Sizes positive integers, padding >= 0; each returns the arguments with the integers as ints.

def check_im2col_rows(backend, x, k, padding):
    """x (B, C, H, W); k >= 1 and padding >= 0 with 2*padding == k - 1."""
    fn = "im2col_rows"
    k, padding = _same(fn, k, padding)
    checks.image(fn, backend, "x", x)
    checks.contiguous(fn, backend, {"x": x})
    return x, k, padding


def check_col2im_rows(backend, dcols, x_shape, k, padding):
    """x_shape (B, C, H, W), k and padding as im2col_rows'; dcols (C*k*k, B*H*Wp)."""
    fn = "col2im_rows"
    k, padding = _same(fn, k, padding)
    B, C, H, W = x_shape = checks.image_shape(fn, "x_shape", x_shape)
    checks.float_array(fn, backend, "dcols", dcols)
    checks.shape(fn, "dcols", dcols, (C * k * k, B * H * (W + 2 * padding)))
    checks.contiguous(fn, backend, {"dcols": dcols})
    return dcols, x_shape, k, padding


def check_rows_to_nchw(backend, y, B, H, W, padding):
    """B, H, W >= 1, padding >= 0; y (C_out, B*H*Wp) with C_out >= 1."""
    fn = "rows_to_nchw"
    B, H, W = (checks.integer(fn, name, n, 1) for name, n in (("B", B), ("H", H), ("W", W)))
    padding = checks.integer(fn, "padding", padding, 0)
    checks.float_array(fn, backend, "y", y)
    checks.shape(fn, "y", y, (-1, B * H * (W + 2 * padding)))
    if y.shape[0] < 1:
        raise ValueError(f"{fn}: y must have at least one row (C_out >= 1), got shape {y.shape}")
    checks.contiguous(fn, backend, {"y": y})
    return y, B, H, W, padding


def check_nchw_to_rows(backend, g, padding):
    """g (B, C, H, W); padding >= 0."""
    fn = "nchw_to_rows"
    padding = checks.integer(fn, "padding", padding, 0)
    checks.image(fn, backend, "g", g)
    checks.contiguous(fn, backend, {"g": g})
    return g, padding


def _same(fn, k, padding):
    """(k, padding) of the row layout: k >= 1, padding >= 0 and 'same' padding (2*padding == k - 1)."""
    k, padding = checks.integer(fn, "k", k, 1), checks.integer(fn, "padding", padding, 0)
    if 2 * padding != k - 1:
        raise ValueError(f"{fn}: the row layout needs 'same' padding (2*padding == k - 1), got k {k}, "
                         f"padding {padding}")
    return k, padding


def im2col_rows_reference(x, k, padding):
    """The NumPy reference of im2col_rows."""
    xp = array_module(x)
    B, C, H, W = x.shape
    Wp = W + 2 * padding
    # One extra zero row at the bottom: the last taps' slices run k-1 elements past the padded image.
    xpad = xp.pad(x, ((0, 0), (0, 0), (padding, padding + 1), (padding, padding)))
    flat = xpad.reshape(B, C, -1).transpose(1, 0, 2)  # (C, B, (H + 2p + 1) * Wp), a view
    L = H * Wp
    cols = xp.empty((C, k * k, B, L), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            o = ky * Wp + kx
            cols[:, ky * k + kx] = flat[:, :, o:o + L]
    return cols.reshape(C * k * k, B * L)


def col2im_rows_reference(dcols, x_shape, k, padding):
    """The NumPy reference of col2im_rows.

    The junk columns of dcols must hold the gradient of junk outputs, i.e. zero (see rows_to_nchw)."""
    xp = array_module(dcols)
    B, C, H, W = x_shape
    Wp = W + 2 * padding
    L = H * Wp
    dcols = dcols.reshape(C, k * k, B, L)
    flat = xp.zeros((C, B, (H + 2 * padding + 1) * Wp), dtype=dcols.dtype)
    for ky in range(k):
        for kx in range(k):
            o = ky * Wp + kx
            flat[:, :, o:o + L] += dcols[:, ky * k + kx]
    img = flat.reshape(C, B, H + 2 * padding + 1, Wp)[:, :, padding:padding + H, padding:padding + W]
    return xp.ascontiguousarray(img.transpose(1, 0, 2, 3))


def rows_to_nchw_reference(y, B, H, W, padding):
    """The NumPy reference of rows_to_nchw."""
    xp = array_module(y)
    Wp = W + 2 * padding
    return xp.ascontiguousarray(y.reshape(-1, B, H, Wp)[:, :, :, :W].transpose(1, 0, 2, 3))


def nchw_to_rows_reference(g, padding):
    """The NumPy reference of nchw_to_rows."""
    xp = array_module(g)
    B, C, H, W = g.shape
    out = xp.zeros((C, B, H, W + 2 * padding), dtype=g.dtype)
    out[:, :, :, :W] = g.transpose(1, 0, 2, 3)
    return out.reshape(C, -1)


# --- The cuda backend: float32 CuPy arrays, checked by cuda_args.launch, outputs allocated here ----------

def _im2col_rows_cuda(x, k, padding):
    B, C, H, W = x.shape  # "same" padding: Ho = H, Wo = W always fit
    cols = empty((C * k * k, B * H * (W + 2 * padding)))
    launch("im2col_rows", Arg("x", x, x.shape), cols.data.ptr, B, C, H, W, k, padding)
    return cols


def _col2im_rows_cuda(dcols, x_shape, k, padding):
    B, C, H, W = x_shape
    x = empty(x_shape)
    launch("col2im_rows", Arg("dcols", dcols, (C * k * k, B * H * (W + 2 * padding))), x.data.ptr,
           B, C, H, W, k, padding)
    return x


def _rows_to_nchw_cuda(y, B, H, W, padding):
    out = empty((B, y.shape[0], H, W))
    launch("rows_to_nchw", Arg("y", y, (-1, B * H * (W + 2 * padding))), out.data.ptr, B, y.shape[0], H, W, padding)
    return out


def _nchw_to_rows_cuda(g, padding):
    B, C, H, W = g.shape
    out = empty((C, B * H * (W + 2 * padding)))
    launch("nchw_to_rows", Arg("g", g, g.shape), out.data.ptr, B, C, H, W, padding)
    return out


register("im2col_rows", check_im2col_rows, numpy=im2col_rows_reference, cuda=_im2col_rows_cuda)
register("col2im_rows", check_col2im_rows, numpy=col2im_rows_reference, cuda=_col2im_rows_cuda)
register("rows_to_nchw", check_rows_to_nchw, numpy=rows_to_nchw_reference, cuda=_rows_to_nchw_cuda)
register("nchw_to_rows", check_nchw_to_rows, numpy=nchw_to_rows_reference, cuda=_nchw_to_rows_cuda)
