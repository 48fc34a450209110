// GroupNorm with an optional fused SiLU: the per-element math (reference: pyddpm/ops/group_norm.py).
//
// For x (B, C, H, W) in G groups, one group of one sample is n = (C/G)*H*W contiguous values (NCHW).
// Forward per element, with the group's mean and rstd = 1/sqrt(var + eps) (var by two passes):
//     z = (x - mean) * rstd * gamma[c] + beta[c] = x * a + b,   a = rstd * gamma[c],  b = beta[c] - mean * a
//     y = silu ? z * sigmoid(z) : z
// Backward per element, with xhat = (x - mean) * rstd and dz = dy * dsilu(z) (or dy):
//     dxhat = dz * gamma[c]
//     dx = rstd * (dxhat - mean_group(dxhat) - xhat * mean_group(dxhat * xhat))
//     dgamma[c] += dz * xhat,  dbeta[c] += dz  (summed over batch and positions)
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace gn {

// y for one element, given the channel's folded scale a and shift b.
template <typename T>
PYDDPM_HD T forward(T x, T a, T b, bool silu) {
    const T z = x * a + b;
    return silu ? z * sigmoid(z) : z;
}

// dL/dz for one element: through the SiLU, d/dz [z s(z)] = s (1 + z (1 - s)).
template <typename T>
PYDDPM_HD T dz(T dy, T xhat, T gamma, T beta, bool silu) {
    if (!silu) return dy;
    const T z = xhat * gamma + beta;
    const T s = sigmoid(z);
    return dy * s * (T(1) + z * (T(1) - s));
}

// dx for one element from the group's means of dxhat and dxhat * xhat.
template <typename T>
PYDDPM_HD T dx(T dxhat, T xhat, T rstd, T mean_dxhat, T mean_dxhat_xhat) {
    return rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
}

}  // namespace gn
}  // namespace pyddpm
