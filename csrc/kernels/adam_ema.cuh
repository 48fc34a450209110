// Fused Adam step + EMA of the weights: the per-element math (reference: pyddpm/ops/adam_ema.py).
//
// Adam (Kingma & Ba 2015, Alg. 1) with both bias corrections folded into two scalars (their Sec. 2, end),
// then the EMA of the weights (App. B of Ho et al. 2020), all on one element:
//     m   = b1 m + (1 - b1) g
//     v   = b2 v + (1 - b2) g^2
//     p   = p - step_size m / (sqrt(v) + eps_hat)     step_size = lr sqrt(1 - b2^t) / (1 - b1^t),
//                                                     eps_hat = eps sqrt(1 - b2^t)
//     ema = d ema + (1 - d) p                         with the new p
// The scalars arrive in double and are rounded once to T, as NumPy does with the Python floats of the plain
// path (pyddpm/train/optim.py). Every product is rounded on its own (mul_rn; the CPU build has
// -ffp-contract=off) and sqrt and the division are correctly rounded (nvcc's defaults -prec-div and
// -prec-sqrt; never -use_fast_math), in the plain path's order, so a backend gives its numbers bit for bit:
// checked on the CPU and under the CUDA emulation (a GPU has not run it yet).
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace adam {

template <typename T>
struct Scalars {
    T beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, eps_hat, decay, one_minus_decay;
};

template <typename T>
PYDDPM_HD Scalars<T> scalars(double step_size, double eps_hat, double beta1, double beta2, double ema_decay) {
    return {T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2), T(step_size), T(eps_hat), T(ema_decay),
            T(1.0 - ema_decay)};
}

// One element: p, m, v and ema updated in place from the gradient g.
template <typename T>
PYDDPM_HD void update(T& p, T g, T& m, T& v, T& ema, const Scalars<T>& s) {
    m = mul_rn(s.beta1, m) + mul_rn(s.one_minus_beta1, g);
    v = mul_rn(s.beta2, v) + mul_rn(s.one_minus_beta2, mul_rn(g, g));
    p = p - mul_rn(s.step_size, m) / (math::sqrt(v) + s.eps_hat);
    ema = mul_rn(s.decay, ema) + mul_rn(s.one_minus_decay, p);
}

}  // namespace adam
}  // namespace pyddpm
