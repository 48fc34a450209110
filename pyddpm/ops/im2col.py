"""im2col / col2im: turn a k x k convolution into one matrix multiply (the NumPy references and the
dispatch to the kernels: csrc/kernels/im2col.cuh, csrc/cpu/im2col.cpp, csrc/cuda/im2col.cu).

im2col copies each k x k window of the zero-padded input into a column, so that
    conv(x, w)[b] = w.reshape(C_out, C*k*k) @ cols[b]
col2im is its adjoint: it scatter-adds columns back into the image (the input gradient of a conv).
Shapes: x (B, C, H, W); cols (B, C*k*k, Ho*Wo) with Ho = (H + 2*padding - k) // stride + 1 (same for Wo).
Row order of cols is (c, ky, kx), matching w.reshape(C_out, C*k*k) for w of shape (C_out, C, k, k).
These are the copies behind every convolution of the noise-prediction network eps_theta(x_t, t) (Eq. 14,
Ho et al. 2020). The row layout of the stride-1 "same" convolutions: pyddpm/ops/im2col_rows.py.

Every function takes backend="numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend)
and checks its arguments first, on every backend (the check_* functions below): float32 or float64 arrays
(cuda: float32), non-empty, C-contiguous on cpu and cuda (numpy takes any strides); the fast backends
return exactly the reference's layouts.
"""

from pyddpm.arrays import array_module
from pyddpm.ops import checks
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register


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


def _geometry(fn, H, W, k, stride, padding):
    """(k, stride, padding, Ho, Wo), checked: k, stride >= 1, padding >= 0, the window fitting the image."""
    k, stride = checks.integer(fn, "k", k, 1), checks.integer(fn, "stride", stride, 1)
    padding = checks.integer(fn, "padding", padding, 0)
    if H + 2 * padding < k or W + 2 * padding < k:
        raise ValueError(f"{fn}: an image of {H} x {W} is too small for kernel {k} with padding {padding}")
    return k, stride, padding, (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1


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


# --- The cuda backend: float32 CuPy arrays, checked by cuda_args.launch, outputs allocated here ----------

def _im2col_cuda(x, k, stride, padding):
    B, C, H, W = x.shape
    cols = empty((B, C * k * k, output_size(H, k, stride, padding) * output_size(W, k, stride, padding)))
    launch("im2col", Arg("x", x, x.shape), cols.data.ptr, B, C, H, W, k, stride, padding)
    return cols


def _col2im_cuda(cols, x_shape, k, stride, padding):
    B, C, H, W = x_shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    x = empty(x_shape)
    launch("col2im", Arg("cols", cols, (B, C * k * k, Ho * Wo)), x.data.ptr, B, C, H, W, k, stride, padding)
    return x


register("im2col", check_im2col, numpy=im2col_reference, cuda=_im2col_cuda)
register("col2im", check_col2im, numpy=col2im_reference, cuda=_col2im_cuda)
