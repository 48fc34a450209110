// Shared by every kernel, in both builds: the host/device qualifier and device math with a host twin.
//
// A header in csrc/kernels/ holds a kernel's math as small inline functions on one element, row or
// group. The CPU build (g++, csrc/cpu/*.cpp) and the CUDA build (nvcc, csrc/cuda/*.cu) both include it,
// so the two cannot drift apart. Only functions that exist on both sides may be called here.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define PYDDPM_HD __host__ __device__ __forceinline__
#else
#define PYDDPM_HD inline
#endif

namespace pyddpm {

// a * b + c rounded once, and x rounded to the nearest integer (ties to even). csrc/cpu/vec_f32.h overloads
// both (and the arithmetic operators) for its vectors of 16 floats, so a template below on a value type V
// runs on those as well as on float.
PYDDPM_HD float fmadd(float a, float b, float c) { return fmaf(a, b, c); }
PYDDPM_HD float round_nearest(float x) { return rintf(x); }

// q(r) = 1/2 + r/6 + r^2/24 + ... + r^5/5040, so that e^r = 1 + r + r^2 q(r) up to r^7/5040 (Horner).
template <typename V>
PYDDPM_HD V exp_taylor_q(V r) {
    V q = V(1.0f / 5040.0f);
    q = fmadd(q, r, V(1.0f / 720.0f));
    q = fmadd(q, r, V(1.0f / 120.0f));
    q = fmadd(q, r, V(1.0f / 24.0f));
    q = fmadd(q, r, V(1.0f / 6.0f));
    return fmadd(q, r, V(0.5f));
}

// The host exp_f32's range and its reduction x = n ln2 + r: ln2 split in two so n * kLn2Hi is exact.
// n from -127 to 127; 2^-127 is built as 0 (below), so e^x is 0 for x below about -87.7, e^-inf among them.
constexpr float kExpMin = -88.0f, kExpMax = 88.3f;
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187045e-6f;
// n + kExpBias, n an integer in [-127, 127], is exact, and as a float of magnitude 2^23 (ulp 1) its low 9
// bits are n + 127: shifted up by 23 they are 2^n's exponent field (n = -127: all zero, 2^n taken as 0).
constexpr float kExpBias = 12582912.0f + 127.0f;  // 1.5 * 2^23 + 127

// e^x = 2^n e^r with n = rint(x log2 e), |r| <= ln2/2, for x already clamped to [kExpMin, kExpMax]: returns
// e^r, and n in n_out (as a float; the caller scales by 2^n in whatever way its type allows).
template <typename V>
PYDDPM_HD V exp_reduced(V x, V* n_out) {
    const V n = round_nearest(x * V(kLog2e));
    V r = fmadd(n, V(-kLn2Hi), x);
    r = fmadd(n, V(-kLn2Lo), r);
    *n_out = n;
    return fmadd(fmadd(exp_taylor_q(r), r, V(1.0f)), r, V(1.0f));
}

// exp for float32. On the device, expf. On the host, a form the compiler can vectorise (glibc's expf is a
// scalar call, which would keep the fused SiLU a scalar loop): x = n ln2 + r with |r| <= ln2/2, exp(r) by
// its Taylor series to r^7 (truncation < 3e-9 relative; rounding adds a few ulp), 2^n built in the
// exponent bits. Inputs are clamped to [kExpMin, kExpMax]: the result saturates at e^88.3 above and is 0
// below; a NaN stays NaN, as in expf (a softmax row or a SiLU with a NaN in it must come out NaN).
// Checked through the fused SiLU and softmax against NumPy (tests/test_kernels_group_norm.py, _attention.py).
PYDDPM_HD float exp_f32(float x) {
#if defined(__CUDA_ARCH__)
    return expf(x);
#else
    const float in = x;
    x = x > kExpMin ? x : kExpMin;  // ternaries, not fmaxf/fminf: GCC vectorises these, not the libm calls
    x = x < kExpMax ? x : kExpMax;
    float n;
    const float p = exp_reduced(x, &n);
    const float biased = n + kExpBias;
    std::uint32_t bits;
    std::memcpy(&bits, &biased, sizeof bits);
    bits <<= 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    // A NaN fails the clamps' comparisons and leaves them as kExpMin; it is put back here. (Clamps written
    // to let a NaN through instead are if-converted by GCC into a longer select chain.)
    return in == in ? p * scale : in;
#endif
}

// exp for float64: the CUDA math library's exp on the device, the C library's on the host.
PYDDPM_HD double exp_f64(double x) { return exp(x); }

// a * b rounded on its own, never fused into a neighbouring add (nvcc contracts a*b+c into an FMA by
// default; the CPU build uses -ffp-contract=off). Needed where a product must cancel exactly against a
// sum of the same rounded products (GroupNorm's backward with a one-element group).
template <typename T>
PYDDPM_HD T mul_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "mul_rn: float or double");
    if constexpr (std::is_same_v<T, float>) {
        return __fmul_rn(a, b);
    } else {
        return __dmul_rn(a, b);
    }
#else
    return a * b;
#endif
}

// The logistic function. float: 1 / (1 + exp(-z)) with the clamped exp above (a large negative z gives
// ~3e-39; z -> +inf gives 1; NaN gives NaN), and exactly 0 at z = -inf, as in NumPy and CUDA's expf, so
// that a SiLU's -inf * sigmoid(-inf) is NaN there too. double: through tanh, for the float64 CPU path.
PYDDPM_HD float sigmoid(float z) { return z == -INFINITY ? 0.0f : 1.0f / (1.0f + exp_f32(-z)); }
PYDDPM_HD double sigmoid(double z) { return 0.5 * (1.0 + tanh(0.5 * z)); }

// Elementary functions, one name for float and double on both sides. Each overload calls the C library
// function of its own precision (logf, log, ...), which exists on the host and in CUDA's device library:
// an unqualified log(float) on the host would be the C double log and quietly compute the float path in
// double, hiding the float32 error the device has.
namespace math {
PYDDPM_HD float log(float x) { return ::logf(x); }
PYDDPM_HD double log(double x) { return ::log(x); }
PYDDPM_HD float log1p(float x) { return ::log1pf(x); }
PYDDPM_HD double log1p(double x) { return ::log1p(x); }
PYDDPM_HD float exp(float x) { return ::expf(x); }
PYDDPM_HD double exp(double x) { return ::exp(x); }
PYDDPM_HD float expm1(float x) { return ::expm1f(x); }
PYDDPM_HD double expm1(double x) { return ::expm1(x); }
PYDDPM_HD float sqrt(float x) { return ::sqrtf(x); }
PYDDPM_HD double sqrt(double x) { return ::sqrt(x); }
}  // namespace math

// exp to 0.7 ulp (the largest error over 5e7 random x in [-30, 30]), the same code on host and device. The
// decoder's z = (x - mean) exp(-log_scale) enters log p ~ -z^2/2, which doubles any relative error of z:
// CUDA's expf (2 ulp allowed) would use up to 9.7e-7 of the 1e-6 budget. x = n ln2 + r + c: r exact
// (Cody-Waite with ln2's leading 16 bits), c = -n (ln2 - those bits) carried separately; e^r = 1 + r +
// r^2 q(r) with q the Taylor polynomial to r^5/5040 (truncation < 6e-9 relative), 1 + r split exactly
// (Fast2Sum) so all the small parts are added before the single final rounding; then the exact 2^n.
// Out-of-range x saturates to 0 or inf; NaN stays NaN.
PYDDPM_HD float exp_precise(float x) {
    x = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
    const float n = rintf(x * 1.44269504088896341f);
    const float r = fmaf(n, -0.693145751953125f, x);  // exact: ln2's leading 16 bits times n, Sterbenz
    const float c = n * -1.428606765330187045e-6f;     // the rest of -n ln2
    const float q = exp_taylor_q(r);
    const float hi = 1.0f + r;
    const float lo = r - (hi - 1.0f);  // 1 + r = hi + lo exactly
    const float tail = fmaf(r * r, q, lo);
    // exp(r + c) = hi + tail + c e^r + O(c^2)
    return ldexpf(hi + fmaf(c, hi + tail, tail), n == n ? static_cast<int>(n) : 0);
}
PYDDPM_HD double exp_precise(double x) { return ::exp(x); }

// erfcx(x) = exp(x^2) erfc(x) for x >= 0 (scaled complementary error function), the same code on host and
// device (CUDA's erfcxf is not used, so the host tests validate exactly what the device runs).
// (1 + 2x) erfcx(x) is smooth and within [1, 1.28] on [0, inf]; in q = (x - 2)/(x + 2) = 1 - 4/(x + 2),
// which maps [0, inf] onto [-1, 1], it is a rapidly converging Chebyshev series (Shepherd & Laframboise
// 1981, Math. Comp. 36:249). The coefficients below are that series interpolated at 200 (float) or 300
// (double) Chebyshev nodes in 40-digit arithmetic (mpmath), truncated after 13 / 27 terms and expanded in
// powers of q (all |coefficients| < 1.3, so Horner is stable). Measured maximum relative error of f(q):
// 7.8e-8 in float32 arithmetic, 2.5e-16 in double. x = +inf gives q = 1 and erfcx = 0.
PYDDPM_HD float erfcx(float x) {
    const float q = 1.0f - 4.0f / (x + 2.0f);
    float p = -2.025598951e-05f;
    p = fmaf(p, q, 6.336945808e-05f);
    p = fmaf(p, q, 2.215715504e-04f);
    p = fmaf(p, q, -3.579204495e-04f);
    p = fmaf(p, q, -1.464070869e-03f);
    p = fmaf(p, q, 1.217410550e-03f);
    p = fmaf(p, q, 8.724607527e-03f);
    p = fmaf(p, q, -8.018963039e-03f);
    p = fmaf(p, q, -5.422026664e-02f);
    p = fmaf(p, q, 1.640494615e-01f);
    p = fmaf(p, q, -1.660303771e-01f);
    p = fmaf(p, q, -9.276375920e-02f);
    p = fmaf(p, q, 1.276978374e+00f);
    return p / fmaf(2.0f, x, 1.0f);
}

PYDDPM_HD double erfcx(double x) {
    constexpr double c[27] = {
        4.72854907880533634e-09,  2.32760167826745030e-10,  -4.50124167952208881e-08, -2.60847710902645406e-08,
        1.79467464004240952e-07,  2.35915016872257731e-07,  -2.76229426031604296e-07, -9.48407542601524508e-07,
        -6.88947173496477351e-07, 1.59281949079958046e-06,  5.22172304880583335e-06,  3.66257195862109666e-06,
        -1.34922921950497710e-05, -3.64052286569917254e-05, -1.51000629815997628e-06, 1.51034516061031234e-04,
        2.06367246912741255e-04,  -4.54340038815329928e-04, -1.45681395199150055e-03, 1.27133888213763215e-03,
        8.72265387609432591e-03,  -8.03401507744246762e-03, -5.42200009920511539e-02, 1.64051280033304492e-01,
        -1.66030397615289205e-01, -9.27638265857448768e-02, 1.27697838155252863e+00};
    const double q = 1.0 - 4.0 / (x + 2.0);
    double p = c[0];
    for (int i = 1; i < 27; ++i) p = fma(p, q, c[i]);
    return p / fma(2.0, x, 1.0);
}

}  // namespace pyddpm
