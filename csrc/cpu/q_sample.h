// Fused noising (Eq. 4) CPU driver. Shapes: x0, noise, xt (B, n) contiguous (n = the per-sample size);
// t (B,) int64; the tables (T,) float64. The caller has checked every shape, dtype and 0 <= t < T.
#pragma once

#include <cstdint>

namespace pyddpm {

template <typename T>
void q_sample_cpu(const T* x0, const std::int64_t* t, const T* noise, const double* sqrt_alphas_cumprod,
                  const double* sqrt_one_minus_alphas_cumprod, T* xt, long B, long n);

// The rows of (B, n) data cut into pieces of at most this many elements, so that OpenMP balances both a
// large batch of small samples and a batch of one large sample.
constexpr long STEP_CHUNK = 8192;

}  // namespace pyddpm
