// The fused step of every sampler, CPU driver. Shapes: model_output, x, noise, log_variance, x_next, pred_x0
// (B, n) contiguous (n = the per-sample size); the five coefficient arrays (B,) float64 in the order of
// pyddpm.ops.sampler_step.StepCoefs. noise may be null where every next_from_noise is 0, log_variance where
// the variance is not learned (the noise is scaled by next_from_noise alone), pred_x0 where it is not wanted.
// The caller has checked every shape and dtype.
#pragma once

namespace pyddpm {

struct StepCoefArrays {
    const double *x0_from_x, *x0_from_out, *next_from_x0, *next_from_x, *next_from_noise;
};

template <typename T>
void sampler_step_cpu(const T* model_output, const T* x, const T* noise, const T* log_variance,
                      const StepCoefArrays& coefs, T* x_next, T* pred_x0, long B, long n, bool clip);

}  // namespace pyddpm
