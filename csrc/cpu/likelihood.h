// The bound's per-element terms on the CPU: the discretized Gaussian log-likelihood (Eq. 13) and the
// Gaussian KL, elementwise or reduced to per-sample bits/dim. Shapes: every per-element array is (B, n)
// contiguous; a per-sample array (log_scales, logvar*) is (B,) and is flagged by its *_per_sample
// argument. Exactly one of out (B, n) and bpd (B,) is non-null. The caller has checked shapes and dtypes.
#pragma once

namespace pyddpm {

template <typename T>
void discretized_gaussian_log_likelihood_cpu(const T* x, const T* means, const T* log_scales,
                                             bool log_scales_per_sample, T* out, T* bpd, long B, long n);

template <typename T>
void normal_kl_cpu(const T* mean1, const T* logvar1, bool logvar1_per_sample, const T* mean2,
                   const T* logvar2, bool logvar2_per_sample, T* out, T* bpd, long B, long n);

}  // namespace pyddpm
