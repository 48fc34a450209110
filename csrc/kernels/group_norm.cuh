// GroupNorm with an optional fused SiLU: the per-element math (reference: pyddpm/ops/group_norm.py).
//
// For x (B, C, H, W) in G groups, one group of one sample is n = (C/G)*H*W contiguous values (NCHW).
// Forward per element, with the group's mean and rstd = 1/sqrt(var + eps) (var by two passes):
//     z = (x - mean) * a + beta[c],   a = rstd * gamma[c]
//     (not x * a + (beta - mean * a): with a large rstd, e.g. a one-element group, that cancels in float32)
//     y = silu ? z * sigmoid(z) : z
// Backward per element, with xhat = (x - mean) * rstd and dz = dy * dsilu(z) (or dy):
//     dxhat = dz * gamma[c]
//     dx = rstd * (dxhat - mean_group(dxhat) - xhat * mean_group(dxhat * xhat))
//     dgamma[c] += dz * xhat,  dbeta[c] += dz  (summed over batch and positions)
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace gn {

// y for one element, given the group's mean and the channel's folded scale a = rstd * gamma[c].
template <typename T>
PYDDPM_HD T forward(T x, T mean, T a, T beta, bool silu) {
    const T z = (x - mean) * a + beta;
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

// dxhat = dz * gamma[c], rounded the same way wherever it is formed (see mul_rn).
template <typename T>
PYDDPM_HD T dxhat(T dz, T gamma) {
    return mul_rn(dz, gamma);
}

// dx for one element from the group's means of dxhat and dxhat * xhat.
template <typename T>
PYDDPM_HD T dx(T dxhat, T xhat, T rstd, T mean_dxhat, T mean_dxhat_xhat) {
    return rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
}

}  // namespace gn
}  // namespace pyddpm
