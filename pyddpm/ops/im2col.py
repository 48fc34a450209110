"""im2col / col2im: turn a k x k convolution into one matrix multiply (the NumPy references and the
dispatch to the kernels: csrc/kernels/im2col.cuh, csrc/cpu/im2col.cpp, csrc/cuda/im2col.cu).

im2col copies each k x k window of the zero-padded input into a column, so that
    conv(x, w)[b] = w.reshape(C_out, C*k*k) @ cols[b]
col2im is its adjoint: it scatter-adds columns back into the image (the input gradient of a conv).
Shapes: x (B, C, H, W); cols (B, C*k*k, Ho*Wo) with Ho = (H + 2*padding - k) // stride + 1 (same for Wo).
Row order of cols is (c, ky, kx), matching w.reshape(C_out, C*k*k) for w of shape (C_out, C, k, k).
These are the copies behind every convolution of the noise-prediction network eps_theta(x_t, t) (Eq. 14,
Ho et al. 2020).

Every function takes backend="numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend)
and checks its arguments first, on every backend (the check_* functions below): float32 or float64 arrays
(cuda: float32), non-empty, C-contiguous on cpu and cuda (numpy takes any strides); the fast backends
return exactly the reference's layouts.
"""

import numpy as np

from pyddpm.arrays import array_module
from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.cuda_args import device_ptr, stream_ptr
from pyddpm.ops.registry import dispatch, extension_call, register


def output_size(size, k, stride, padding):
    out = (size + 2 * padding - k) // stride + 1
    if out < 1:
        raise ValueError(f"conv: input size {size} is too small for kernel {k}, stride {stride}, "
                         f"padding {padding}")
    return out


def im2col(x, k, stride=1, padding=0, backend=None):
    """Returns cols (B, C*k*k, Ho*Wo) for x (B, C, H, W)."""
    return dispatch("im2col", backend, x, k, stride, padding)


def col2im(cols, x_shape, k, stride=1, padding=0, backend=None):
    """The adjoint of im2col: sums cols (B, C*k*k, Ho*Wo) into an image of shape x_shape (B, C, H, W)."""
    return dispatch("col2im", backend, cols, x_shape, k, stride, padding)


def im2col_rows(x, k, padding, backend=None):
    """Returns cols (C*k*k, B*H*Wp), Wp = W + 2*padding, for x (B, C, H, W) and a stride-1 "same" conv
    (2*padding == k - 1, so Ho = H, Wo = W): the row layout described below."""
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
# Arrays float32 or float64 (cuda: float32), non-empty, C-contiguous on cpu and cuda; sizes positive
# integers, padding >= 0; each returns the arguments with the integers as ints.

def check_im2col(backend, x, k, stride, padding):
    """x (B, C, H, W); k, stride >= 1, padding >= 0, the window fitting the padded image."""
    fn = "im2col"
    _, _, H, W = checks.image(fn, backend, "x", x)
    k, stride, padding = _geometry(fn, H, W, k, stride, padding)[:3]
    checks.contiguous(fn, backend, {"x": x})
    return x, k, stride, padding


def check_col2im(backend, cols, x_shape, k, stride, padding):
    """x_shape (B, C, H, W) and the geometry as im2col's; cols (B, C*k*k, Ho*Wo)."""
    fn = "col2im"
    B, C, H, W = x_shape = checks.image_shape(fn, "x_shape", x_shape)
    k, stride, padding, Ho, Wo = _geometry(fn, H, W, k, stride, padding)
    checks.float_array(fn, backend, "cols", cols)
    checks.shape(fn, "cols", cols, (B, C * k * k, Ho * Wo))
    checks.contiguous(fn, backend, {"cols": cols})
    return cols, x_shape, k, stride, padding


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


def _geometry(fn, H, W, k, stride, padding):
    """(k, stride, padding, Ho, Wo), checked: k, stride >= 1, padding >= 0, the window fitting the image."""
    k, stride = checks.integer(fn, "k", k, 1), checks.integer(fn, "stride", stride, 1)
    padding = checks.integer(fn, "padding", padding, 0)
    if H + 2 * padding < k or W + 2 * padding < k:
        raise ValueError(f"{fn}: an image of {H} x {W} is too small for kernel {k} with padding {padding}")
    return k, stride, padding, (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1


def _same(fn, k, padding):
    """(k, padding) of the row layout: k >= 1, padding >= 0 and 'same' padding (2*padding == k - 1)."""
    k, padding = checks.integer(fn, "k", k, 1), checks.integer(fn, "padding", padding, 0)
    if 2 * padding != k - 1:
        raise ValueError(f"{fn}: the row layout needs 'same' padding (2*padding == k - 1), got k {k}, "
                         f"padding {padding}")
    return k, padding


def im2col_reference(x, k, stride=1, padding=0):
    """The NumPy reference of im2col."""
    xp = array_module(x)
    B, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if padding:
        x = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = xp.empty((B, C, k, k, Ho, Wo), dtype=x.dtype)
    # k*k strided copies, each with a contiguous inner row: faster than one 6-D transposed copy.
    for ky in range(k):
        for kx in range(k):
            cols[:, :, ky, kx] = x[:, :, ky:ky + stride * Ho:stride, kx:kx + stride * Wo:stride]
    return cols.reshape(B, C * k * k, Ho * Wo)


def col2im_reference(cols, x_shape, k, stride=1, padding=0):
    """The NumPy reference of col2im: a scatter-add of the k*k taps, in the order ky, then kx."""
    xp = array_module(cols)
    B, C, H, W = x_shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    cols = cols.reshape(B, C, k, k, Ho, Wo)
    out = xp.zeros((B, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for ky in range(k):
        for kx in range(k):
            out[:, :, ky:ky + stride * Ho:stride, kx:kx + stride * Wo:stride] += cols[:, :, ky, kx]
    return xp.ascontiguousarray(out[:, :, padding:padding + H, padding:padding + W]) if padding else out


# --- The fast path for stride-1 "same" convolutions (3x3, padding 1): rows of the flattened image ------
#
# Flatten each padded image row-major, with row length Wp = W + 2*padding. The input under kernel tap
# (ky, kx) for output position p = i*Wp + j is then simply flat[p + ky*Wp + kx]: one contiguous slice of
# length H*Wp per tap instead of H*W tiny strided pieces. The price is 2*padding junk columns per output
# row (positions j >= W), computed and thrown away: 12% more matmul work at W = 16, 25% at W = 8.
# Columns are laid out (C*k*k, B*H*Wp) so that the whole batch is one large matmul.

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


# --- The cuda backend: float32 CuPy arrays, checked here, outputs allocated here ---------------------------

_F32 = np.float32


def _im2col_cuda(x, k, stride, padding):
    import cupy

    B, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    cols = cupy.empty((B, C * k * k, Ho * Wo), _F32)
    extension("cuda").im2col(device_ptr("im2col", "x", x, _F32, (-1, -1, -1, -1)), cols.data.ptr,
                             B, C, H, W, k, stride, padding, stream_ptr())
    return cols


def _col2im_cuda(cols, x_shape, k, stride, padding):
    import cupy

    B, C, H, W = x_shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    x = cupy.empty(x_shape, _F32)
    extension("cuda").col2im(device_ptr("col2im", "cols", cols, _F32, (B, C * k * k, Ho * Wo)), x.data.ptr,
                             B, C, H, W, k, stride, padding, stream_ptr())
    return x


def _im2col_rows_cuda(x, k, padding):
    import cupy

    B, C, H, W = x.shape  # "same" padding: Ho = H, Wo = W always fit
    cols = cupy.empty((C * k * k, B * H * (W + 2 * padding)), _F32)
    extension("cuda").im2col_rows(device_ptr("im2col_rows", "x", x, _F32, (-1, -1, -1, -1)), cols.data.ptr,
                                  B, C, H, W, k, padding, stream_ptr())
    return cols


def _col2im_rows_cuda(dcols, x_shape, k, padding):
    import cupy

    B, C, H, W = x_shape
    x = cupy.empty(x_shape, _F32)
    extension("cuda").col2im_rows(
        device_ptr("col2im_rows", "dcols", dcols, _F32, (C * k * k, B * H * (W + 2 * padding))), x.data.ptr,
        B, C, H, W, k, padding, stream_ptr())
    return x


def _rows_to_nchw_cuda(y, B, H, W, padding):
    import cupy

    ptr = device_ptr("rows_to_nchw", "y", y, _F32, (-1, B * H * (W + 2 * padding)))
    out = cupy.empty((B, y.shape[0], H, W), _F32)
    extension("cuda").rows_to_nchw(ptr, out.data.ptr, B, y.shape[0], H, W, padding, stream_ptr())
    return out


def _nchw_to_rows_cuda(g, padding):
    import cupy

    B, C, H, W = g.shape
    ptr = device_ptr("nchw_to_rows", "g", g, _F32, (-1, -1, -1, -1))
    out = cupy.empty((C, B * H * (W + 2 * padding)), _F32)
    extension("cuda").nchw_to_rows(ptr, out.data.ptr, B, C, H, W, padding, stream_ptr())
    return out

register("im2col", check_im2col, numpy=im2col_reference, cpu=extension_call("im2col"),
         cuda=_im2col_cuda)
register("col2im", check_col2im, numpy=col2im_reference, cpu=extension_call("col2im"),
         cuda=_col2im_cuda)
register("im2col_rows", check_im2col_rows, numpy=im2col_rows_reference, cpu=extension_call("im2col_rows"),
         cuda=_im2col_rows_cuda)
register("col2im_rows", check_col2im_rows, numpy=col2im_rows_reference, cpu=extension_call("col2im_rows"),
         cuda=_col2im_rows_cuda)
register("rows_to_nchw", check_rows_to_nchw, numpy=rows_to_nchw_reference, cpu=extension_call("rows_to_nchw"),
         cuda=_rows_to_nchw_cuda)
register("nchw_to_rows", check_nchw_to_rows, numpy=nchw_to_rows_reference, cpu=extension_call("nchw_to_rows"),
         cuda=_nchw_to_rows_cuda)
