// The fused reverse step (Alg. 2) CPU driver. Shapes: model_output, xt, noise, x_prev, pred_x0 (B, n)
// contiguous (n = the per-sample size); t (B,) int64; the five tables (T,) float64 in the order of
// pyddpm.ops.p_sample_step.ReverseStepTables. pred_x0 may be null (not wanted). The caller has checked
// every shape, dtype and 0 <= t < T.
#pragma once

#include <cstdint>

namespace pyddpm {

struct ReverseStepTables {
    const double *sqrt_recip_alphas_cumprod, *sqrt_recipm1_alphas_cumprod, *posterior_mean_coef1,
        *posterior_mean_coef2, *model_log_variance;
};

template <typename T>
void p_sample_step_cpu(const T* model_output, const T* xt, const std::int64_t* t, const T* noise,
                       const ReverseStepTables& tables, T* x_prev, T* pred_x0, long B, long n, bool predict_eps,
                       bool clip);

}  // namespace pyddpm
