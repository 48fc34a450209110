// Self-attention's row kernels: the per-element math (reference: pyddpm/ops/attention.py).
//
// The matmuls are cuBLAS's on the GPU and csrc/cpu/micro_gemm.h's on the CPU; between them, one row of
// the (B, heads, N, N) score matrix at a time, with x = S[row] = (q k^T)[row] (unscaled) and a scale (d^-0.5 in DDPM):
//     forward:   m = max_j scale*x_j,  e_j = exp(scale*x_j - m),  P_j = e_j / sum_j e_j
//     backward:  dS_j = scale * P_j * (dP_j - sum_i dP_i P_i)     (dP = dout v^T; the gradient w.r.t. x)
// Subtracting the row maximum keeps exp in range: softmax is shift-invariant, and every e_j <= 1.
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace attn {

// exp with the float path vectorisable on the host (exp_f32); double is the CPU test path.
PYDDPM_HD float row_exp(float x) { return exp_f32(x); }
PYDDPM_HD double row_exp(double x) { return exp(x); }

// The unnormalised probability of one score, given the row's maximum m of scale * x.
template <typename T>
PYDDPM_HD T softmax_numerator(T x, T scale, T m) {
    return row_exp(scale * x - m);
}

// The gradient w.r.t. one unscaled score, given the row's sum_i dP_i P_i.
template <typename T>
PYDDPM_HD T softmax_grad(T p, T dp, T dot, T scale) {
    return scale * p * (dp - dot);
}

}  // namespace attn
}  // namespace pyddpm
