// Self-attention's row kernels on the CPU (the matmuls around them run in NumPy's BLAS).
// Shapes: s, p, dp, ds are `rows` contiguous rows of n values; out may be the same buffer as an input
// (in place), never a partial overlap. The caller has checked every shape and dtype.
#pragma once

namespace pyddpm {

// p = softmax(scale * s) along each row.
template <typename T>
void softmax_rows_cpu(const T* s, T* p, long rows, long n, T scale);

// ds = scale * p * (dp - rowsum(dp * p)): the gradient of softmax_rows w.r.t. s.
template <typename T>
void softmax_backward_rows_cpu(const T* p, const T* dp, T* ds, long rows, long n, T scale);

}  // namespace pyddpm
