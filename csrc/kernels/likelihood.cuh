// The variational bound's per-element terms (reference: pyddpm/likelihood.py, the float64 oracle): the
// discretized Gaussian decoder log p(x | mean, sigma) of Eq. 13 (Ho et al. 2020) and the Gaussian KL of
// Eq. 5's L_{t-1} terms, both in nats.
//
// Decoder. x is on the 256-level grid in [-1, 1]; its bin is x +- h, h = 1/255, except that the bins of
// x = -1 and x = +1 are open to -inf and +inf. With c = x - mean, s = exp(log_scale), m = c/s, w = 2h/s:
//   log P = log(Phi((c + h)/s) - Phi((c - h)/s)),
// evaluated in T (float on the GPU) with no clamp and no cancellation, by one of two routes:
//  * narrow bin, when (w/2)^2 (m^2 + 4) <= MIDPOINT_MAX^2: phi's Taylor series about m, integrated,
//      log P = log w + log phi(m) + log1p(sum_{k>=1} He_2k(m) (w/2)^2k / (2k+1)!),   log w exact;
//    it never forms Phi(b) - Phi(a), which would cancel (wide sigma) or underflow (a bin far in a tail);
//  * wide bin: mirrored into the left tail, log P = log Phi(b) + log1mexp(log Phi(a) - log Phi(b)).
// The edge bins are log Phi((c + h)/s) and log Phi(-(c - h)/s).
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace lik {

// Constants rounded to T; *_LO is the remainder (exact value - hi) rounded to T.
// MIDPOINT_MAX: the series stops at He_8; the first neglected term is about (w/2)^10 / 42240 near m = 0
// and (m w/2)^10 / 11! for large |m|, hence the criterion in (w/2)^2 (m^2 + 4). The float switch at 1 was
// chosen from sweeps over sigma = e^-9..e^2, bins near and far, float32 against the oracle, each route
// forced on its own: beyond it the midpoint route's truncation grows, below it the wide route loses
// accuracy (log Phi(a) - log Phi(b) ~ |m| w is the difference of two rounded values ~m^2/2); at 1 every
// band stays within 4e-7 (benchmarks/RESULTS.md, "Figures moved out of code comments"). In double the
// neglected term is ~1e-16 at MIDPOINT_MAX = 0.15.
template <typename T>
struct Consts;

template <>
struct Consts<float> {
    static constexpr float H_HI = 3.921568859e-03f, H_LO = -2.3191758e-10f;  // 1/255
    static constexpr float LOG_2H_HI = -4.8481164f, LOG_2H_LO = 3.3259184e-08f;  // log(2/255)
    static constexpr float MIDPOINT_MAX = 1.0f;
};

template <>
struct Consts<double> {
    static constexpr double H_HI = 0.00392156862745098, H_LO = 5.442269728554689e-20;
    static constexpr double LOG_2H_HI = -4.848116364598481, LOG_2H_LO = 4.391764973190295e-16;
    static constexpr double MIDPOINT_MAX = 0.15;
};

// Data values beyond this are the open edge bins (the official code's threshold, as in the oracle).
constexpr double EDGE = 0.999;
constexpr double LOG_SQRT_2PI = 0.91893853320467274178;
constexpr double INV_SQRT2 = 0.70710678118654752440;
constexpr double LN2 = 0.69314718055994530942;

// log Phi(z), the log of the standard normal CDF, to a few ulps relative for z < 0 and absolute for z >= 0.
// Through erfcx below 0, so that the tail keeps full relative accuracy however far out it goes.
template <typename T>
PYDDPM_HD T log_ndtr(T z) {
    const T half_z2 = T(0.5) * z * z;
    if (z < T(0)) return math::log(T(0.5) * erfcx(-z * T(INV_SQRT2))) - half_z2;
    return math::log1p(T(-0.5) * erfcx(z * T(INV_SQRT2)) * math::exp(-half_z2));
}

// log(1 - exp(d)) for d < 0 (Maechler 2012): expm1 near 0, log1p far from it.
template <typename T>
PYDDPM_HD T log1mexp(T d) {
    return d > T(-LN2) ? math::log(-math::expm1(d)) : math::log1p(-math::exp(d));
}

// log(Phi(b) - Phi(a)) for finite a < b (the wide route).
template <typename T>
PYDDPM_HD T log_bin_mass(T a, T b) {
    if (a > T(0)) {  // both CDFs near 1: use the mirror image, where log Phi keeps relative accuracy
        const T t = a;
        a = -b;
        b = -t;
    }
    const T log_b = log_ndtr(b);
    return log_b + log1mexp(log_ndtr(a) - log_b);
}

// log(P / (w phi(m))) - the midpoint series through He_8, in u = (w/2)^2 and m2 = m^2.
template <typename T>
PYDDPM_HD T log_midpoint_correction(T m2, T u) {
    const T he2 = m2 - T(1);
    const T he4 = (m2 - T(6)) * m2 + T(3);
    const T he6 = ((m2 - T(15)) * m2 + T(45)) * m2 - T(15);
    const T he8 = (((m2 - T(28)) * m2 + T(210)) * m2 - T(420)) * m2 + T(105);
    const T s = he2 * T(1.0 / 6) + u * (he4 * T(1.0 / 120) + u * (he6 * T(1.0 / 5040) + u * he8 * T(1.0 / 362880)));
    return math::log1p(u * s);
}

// 1/sigma = exp(-log_scale), to 0.7 ulp on both builds (see exp_precise).
template <typename T>
PYDDPM_HD T inverse_scale(T log_scale) {
    return exp_precise(-log_scale);
}

// log p(x) for one element (Eq. 13), given inv_scale = inverse_scale(log_scale) (computed once per sample
// when the scale is shared).
template <typename T>
PYDDPM_HD T log_likelihood(T x, T mean, T log_scale, T inv_scale) {
    using K = Consts<T>;
    // c + e = x - mean exactly (TwoSum), and h = H_HI + H_LO: the bin edges c -+ h keep full accuracy when
    // they nearly cancel (at sigma = e^-9 an error of one ulp of h would move z by 1e-6).
    // An infinite c (an infinite mean) makes e, and so both edges, NaN, as the oracle's inf - inf makes
    // its bin mass NaN; the one exception is an open edge bin facing the mean, which holds all the mass.
    const T c = x - mean;
    const T xv = c - x;
    const T e = (x - (c - xv)) + (-mean - xv);
    const T lo = ((c - K::H_HI) + (e - K::H_LO)) * inv_scale;
    const T hi = ((c + K::H_HI) + (e + K::H_LO)) * inv_scale;
    if (x < T(-EDGE)) return c == T(INFINITY) ? T(0) : log_ndtr(hi);
    if (x > T(EDGE)) return c == T(-INFINITY) ? T(0) : log_ndtr(-lo);
    const T m = c * inv_scale;
    const T half_w = K::H_HI * inv_scale;
    if (half_w * half_w * (m * m + T(4)) <= K::MIDPOINT_MAX * K::MIDPOINT_MAX) {
        const T log_w = (K::LOG_2H_HI - log_scale) + K::LOG_2H_LO;
        return log_w - (T(0.5) * m * m + T(LOG_SQRT_2PI)) + log_midpoint_correction(m * m, half_w * half_w);
    }
    return log_bin_mass(lo, hi);
}

// KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) in nats, as
//   0.5 (expm1(logvar1 - logvar2) - (logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2)),
// which equals the oracle's 0.5 (-1 + logvar2 - logvar1 + exp(logvar1 - logvar2) + ...) but with the
// -1 folded into expm1: near-equal variances no longer cancel against 1. In two pieces, so a driver
// can form the variance part and exp(-logvar2) once per sample when the log-variances are per sample.
template <typename T>
PYDDPM_HD T kl_variance_term(T logvar1, T logvar2) {
    const T d = logvar1 - logvar2;
    return math::expm1(d) - d;
}

template <typename T>
PYDDPM_HD T normal_kl_parts(T mean1, T mean2, T variance_term, T inv_var2) {
    const T dm = mean1 - mean2;
    return T(0.5) * (variance_term + dm * dm * inv_var2);
}

template <typename T>
PYDDPM_HD T normal_kl(T mean1, T logvar1, T mean2, T logvar2) {
    return normal_kl_parts(mean1, mean2, kl_variance_term(logvar1, logvar2), math::exp(-logvar2));
}

}  // namespace lik
}  // namespace pyddpm
