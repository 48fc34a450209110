// Shared by every kernel, in both builds: the host/device qualifier and device math with a host twin.
//
// A header in csrc/kernels/ holds a kernel's math as small inline functions on one element, row or
// group. The CPU build (g++, csrc/cpu/*.cpp) and the CUDA build (nvcc, csrc/cuda/*.cu) both include it,
// so the two cannot drift apart. Only functions that exist on both sides may be called here.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PYDDPM_HD __host__ __device__ __forceinline__
#else
#define PYDDPM_HD inline
#endif

namespace pyddpm {

// exp for float32. On the device, expf. On the host, a form the compiler can vectorise (glibc's expf is
// a scalar call, which made the fused SiLU slower than NumPy): x = n ln2 + r with |r| <= ln2/2, exp(r) by
// its Taylor series to r^7 (truncation < 3e-9 relative), 2^n built in the exponent bits. Inputs are
// clamped to [-87.3, 88.7], the range where the result is a normal float. Max relative error ~2e-7
// (tests/test_kernels_group_norm.py checks it against np.exp).
PYDDPM_HD float exp_f32(float x) {
#if defined(__CUDA_ARCH__)
    return expf(x);
#else
    x = x > -87.3f ? x : -87.3f;  // ternaries, not fmaxf/fminf: GCC vectorises these, not the libm calls
    x = x < 88.7f ? x : 88.7f;
    const float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693145751953125f, x);  // ln2 split in two so n*ln2_hi is exact
    r = fmaf(n, -1.428606765330187045e-6f, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
#endif
}

// exp for float64: the CUDA math library's exp on the device, the C library's on the host.
PYDDPM_HD double exp_f64(double x) { return exp(x); }

// The logistic function. float: 1 / (1 + exp(-z)) with the clamped exp above (z -> -inf gives ~3e-39,
// not NaN; z -> +inf gives 1). double: through tanh, for the float64 CPU path used in tests.
PYDDPM_HD float sigmoid(float z) { return 1.0f / (1.0f + exp_f32(-z)); }
PYDDPM_HD double sigmoid(double z) { return 0.5 * (1.0 + tanh(0.5 * z)); }

}  // namespace pyddpm
