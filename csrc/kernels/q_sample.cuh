// Fused noising, Eq. 4 of Ho et al. 2020: the per-element math (reference: pyddpm/ops/q_sample.py).
//
// For sample b at index t_b, with its two coefficients read from the float64 tables and rounded once to T:
//     x_t = a x_0 + s eps,    a = sqrt(abar[t_b]),  s = sqrt(1 - abar[t_b])
// The drivers check 0 <= t_b < num_timesteps before any table is read.
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace qs {

template <typename T>
struct Coefs {
    T a, s;
};

template <typename T>
PYDDPM_HD Coefs<T> coefs(const double* sqrt_alphas_cumprod, const double* sqrt_one_minus_alphas_cumprod,
                         std::int64_t t) {
    return {T(sqrt_alphas_cumprod[t]), T(sqrt_one_minus_alphas_cumprod[t])};
}

template <typename T>
PYDDPM_HD T forward(T x0, T noise, Coefs<T> c) {
    return c.a * x0 + c.s * noise;
}

}  // namespace qs
}  // namespace pyddpm
