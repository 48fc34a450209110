// The fused reverse step, one step of Alg. 2 of Ho et al. 2020: the per-element math
// (reference: pyddpm/ops/p_sample_step.py).
//
// For sample b at index t = t_b, with five coefficients read from the float64 tables (computed in double,
// rounded once to T), per element:
//     x0_hat = eps ? r x_t - rm1 out : out                r = sqrt(1/abar_t), rm1 = sqrt(1/abar_t - 1) (Eq. 15)
//     x0_hat = clip ? clamp(x0_hat, -1, 1) : x0_hat
//     mean   = c1 x0_hat + c2 x_t                         posterior mean coefficients (Eq. 7)
//     x_prev = t > 0 ? mean + sigma z : mean              sigma = exp(0.5 log sigma_t^2); no noise term at index 0
// The drivers check 0 <= t < num_timesteps before any table is read.
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace ps {

template <typename T>
struct Coefs {
    T r, rm1, c1, c2, sigma;
    bool noisy;  // false at index 0: Alg. 2 sets z = 0 there, so the noise is not even read
};

template <typename T>
PYDDPM_HD Coefs<T> coefs(const double* sqrt_recip_alphas_cumprod, const double* sqrt_recipm1_alphas_cumprod,
                         const double* posterior_mean_coef1, const double* posterior_mean_coef2,
                         const double* model_log_variance, std::int64_t t) {
    return {T(sqrt_recip_alphas_cumprod[t]), T(sqrt_recipm1_alphas_cumprod[t]), T(posterior_mean_coef1[t]),
            T(posterior_mean_coef2[t]), T(exp_f64(0.5 * model_log_variance[t])), t > 0};
}

// NaN passes through (both comparisons are false), as np.clip does.
template <typename T>
PYDDPM_HD T clip_unit(T x) {
    return x < T(-1) ? T(-1) : (x > T(1) ? T(1) : x);
}

template <typename T>
PYDDPM_HD T pred_x0(T out, T xt, const Coefs<T>& c, bool predict_eps, bool clip) {
    const T x0 = predict_eps ? c.r * xt - c.rm1 * out : out;
    return clip ? clip_unit(x0) : x0;
}

template <typename T>
PYDDPM_HD T x_prev(T x0_hat, T xt, T noise, const Coefs<T>& c) {
    const T mean = c.c1 * x0_hat + c.c2 * xt;
    return c.noisy ? mean + c.sigma * noise : mean;
}

}  // namespace ps
}  // namespace pyddpm
