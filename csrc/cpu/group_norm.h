// GroupNorm (+ SiLU) CPU drivers. Shapes: x, y, dy, dx (B, C, HW) contiguous; gamma, beta, dgamma, dbeta
// (C,); mean, rstd (B, G). The caller has checked every shape, dtype and C % G == 0.
#pragma once

namespace pyddpm {

template <typename T>
void group_norm_forward_cpu(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, long B,
                            long C, long HW, long G, bool silu, double eps);

template <typename T>
void group_norm_backward_cpu(const T* dy, const T* x, const T* gamma, const T* beta, const T* mean,
                             const T* rstd, T* dx, T* dgamma, T* dbeta, long B, long C, long HW, long G,
                             bool silu);

}  // namespace pyddpm
