// im2col / col2im CPU drivers (layouts: csrc/kernels/im2col.cuh). All arrays contiguous; the caller has
// checked every shape and that the output size is positive. Batched: x (B, C, H, W), cols (B, C*k*k, Ho*Wo).
// Row layout (stride 1, 2*padding == k - 1): cols (C, k*k, B*H*Wp), y (C_out, B*H*Wp), Wp = W + 2*padding.
#pragma once

namespace pyddpm {

template <typename T>
void im2col_cpu(const T* x, T* cols, long B, long C, long H, long W, long k, long stride, long padding);

template <typename T>
void col2im_cpu(const T* cols, T* x, long B, long C, long H, long W, long k, long stride, long padding);

template <typename T>
void im2col_rows_cpu(const T* x, T* cols, long B, long C, long H, long W, long k, long padding);

template <typename T>
void col2im_rows_cpu(const T* cols, T* x, long B, long C, long H, long W, long k, long padding);

template <typename T>
void rows_to_nchw_cpu(const T* y, T* out, long B, long C, long H, long W, long padding);

template <typename T>
void nchw_to_rows_cpu(const T* g, T* out, long B, long C, long H, long W, long padding);

}  // namespace pyddpm
