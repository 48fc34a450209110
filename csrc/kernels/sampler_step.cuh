// The fused step of every sampler: the per-element math (reference: pyddpm/ops/sampler_step.py).
//
// Ancestral sampling (Alg. 2 of Ho et al. 2020, on any sub-sequence of timesteps), DDIM, Langevin,
// Euler-Maruyama and the probability-flow ODE each update x as one linear combination of x, the model's
// estimate of x_0 and a noise array; only their coefficients differ. For sample b, five coefficients the
// sampler computed in float64, rounded once to T, per element:
//     x0_hat = c0 x + c1 out                     eps-model: c0 = sqrt(1/abar), c1 = -sqrt(1/abar - 1) (Eq. 15);
//                                                x0-model: c0 = 0, c1 = 1
//     x0_hat = clip ? clamp(x0_hat, -1, 1) : x0_hat
//     x_next = c2 x0_hat + c3 x + (c4 != 0 ? c4 noise : 0)
// or, with a learned per-element log-variance lv (Nichol & Dhariwal 2021: the network outputs log sigma^2),
//     x_next = c2 x0_hat + c3 x + (c4 != 0 ? c4 exp(lv / 2) noise : 0)
// with exp(lv / 2) in T, as the reference computes it in the data's dtype.
// The noise term is left out, not multiplied by 0, where c4 rounds to 0: such a sample (Alg. 2 at t = 1, a
// deterministic sampler) does not read its noise or lv, so the noise may be absent and a NaN in it, or an lv
// whose exp overflows, cannot show.
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace ss {

template <typename T>
struct Coefs {
    T x0_from_x, x0_from_out, next_from_x0, next_from_x, next_from_noise;
    bool noisy;  // next_from_noise != 0: the only case in which the noise is read
};

// Sample b's coefficients from the five float64 (B,) arrays, in the order of StepCoefs.
template <typename T>
PYDDPM_HD Coefs<T> coefs(const double* x0_from_x, const double* x0_from_out, const double* next_from_x0,
                         const double* next_from_x, const double* next_from_noise, long b) {
    const T noise = T(next_from_noise[b]);
    return {T(x0_from_x[b]), T(x0_from_out[b]), T(next_from_x0[b]), T(next_from_x[b]), noise, noise != T(0)};
}

// NaN passes through (both comparisons are false), as np.clip does.
template <typename T>
PYDDPM_HD T clip_unit(T x) {
    return x < T(-1) ? T(-1) : (x > T(1) ? T(1) : x);
}

template <typename T>
PYDDPM_HD T pred_x0(T out, T x, const Coefs<T>& c, bool clip) {
    const T x0 = c.x0_from_x * x + c.x0_from_out * out;
    return clip ? clip_unit(x0) : x0;
}

// noise is ignored unless c.noisy (the drivers pass 0 there without reading the array).
template <typename T>
PYDDPM_HD T x_next(T x0_hat, T x, T noise, const Coefs<T>& c) {
    const T kept = c.next_from_x0 * x0_hat + c.next_from_x * x;  // the part without noise
    return c.noisy ? kept + c.next_from_noise * noise : kept;
}

// The step with a learned variance: the noise scaled by sigma = exp(lv / 2) per element. A separate overload,
// so that the step without one keeps its exact arithmetic. lv is ignored unless c.noisy, as the noise is.
template <typename T>
PYDDPM_HD T x_next(T x0_hat, T x, T noise, T log_variance, const Coefs<T>& c) {
    const T kept = c.next_from_x0 * x0_hat + c.next_from_x * x;
    return c.noisy ? kept + c.next_from_noise * math::exp(T(0.5) * log_variance) * noise : kept;
}

}  // namespace ss
}  // namespace pyddpm
