// Self-attention on the CPU: the fused forward and backward (one (batch, head) matrix per thread, its
// matmuls by csrc/cpu/micro_gemm.h) and the two row kernels they share with the CUDA path's drivers.
// The caller has checked every shape and dtype.
#pragma once

#include "cpu/micro_gemm.h"

namespace pyddpm {

// A (B, heads, N, d) array read through its strides, counted in elements (q, k, v may be views).
template <typename T>
struct View4 {
    const T* data;
    long stride[4];
    gemm::Matrix<T> matrix(long b, long h) const {
        return {data + b * stride[0] + h * stride[1], stride[2], stride[3]};
    }
};

// out = softmax(scale * q k^T) v, and P = softmax(scale * q k^T), per (batch, head). Shapes: q, k, v
// (B, H, N, d); out (B, H, N, d) and p (B, H, N, N) C-contiguous.
template <typename T>
void attention_cpu(View4<T> q, View4<T> k, View4<T> v, long B, long H, long N, long d, T scale, T* out, T* p);

// dq, dk, dv (B, H, N, d) C-contiguous, given dout (B, H, N, d) and the forward's P (C-contiguous).
template <typename T>
void attention_backward_cpu(View4<T> dout, View4<T> q, View4<T> k, View4<T> v, const T* p, long B, long H, long N,
                            long d, T scale, T* dq, T* dk, T* dv);

// p = softmax(scale * s) along each of `rows` contiguous rows of n values; p may be s.
template <typename T>
void softmax_rows_cpu(const T* s, T* p, long rows, long n, T scale);

// ds = scale * p * (dp - rowsum(dp * p)): the gradient of softmax_rows w.r.t. s; ds may be p or dp.
template <typename T>
void softmax_backward_rows_cpu(const T* p, const T* dp, T* ds, long rows, long n, T scale);

}  // namespace pyddpm
