// GroupNorm (+ SiLU) on the CPU: OpenMP over (sample, group). The backward evaluates the SiLU derivative
// once per element, keeps per-(sample, channel) partials of dgamma/dbeta and sums them over the batch in
// a fixed order: deterministic, no atomics, whichever thread takes a (sample, group).
//
// The (sample, group)s are handed out guided, not in static halves: an OpenMP thread left idle between
// kernels goes to sleep and wakes late when the next region starts, so the calling thread takes more of
// the groups while it wakes instead of waiting for it (benchmarks/RESULTS.md, "The run of 2026-11-24").
//
// Sums (the statistics, and the backward's four) run in kLanes independent lanes of T, restarted every
// kBlock elements and added into double lanes, then the lanes are added in a fixed order: vector adds
// that do not wait on one another, each float lane summing kBlock / kLanes values before it reaches
// double. The variance is two-pass, corrected for the rounding of the mean (Chan, Golub & LeVeque 1983):
// var = (sum d^2 - (sum d)^2 / n) / n with d = x - mean.
#include "cpu/group_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/vec_f32.h"
#include "kernels/group_norm.cuh"

// GCC's -march=native keeps AVX-512 machines at 256-bit vectors; these loops are arithmetic-bound on data
// in L1 (a (sample, group) is 4-16 KB), so full-width vectors shorten both passes (benchmarks/RESULTS.md,
// "Figures moved out of code comments"). No effect without AVX-512.
#pragma GCC target("prefer-vector-width=512")
namespace pyddpm {
namespace {

constexpr long kLanes = 32;   // two 512-bit vectors of float
constexpr long kBlock = 512;  // elements per float partial: 16 per lane

// Sums of f(i) over i in [0, n) for K quantities at once: f(i, v) adds element i's terms to v[0..K).
// Lanes as described above; the order depends on n only.
template <typename T, int K, typename F>
void lane_sums(long n, F f, double* out) {
    double total[K][kLanes] = {};
    for (long i0 = 0; i0 < n; i0 += kBlock) {
        const long end = std::min(n, i0 + kBlock);
        T acc[K][kLanes] = {};
        long i = i0;
        for (; i + kLanes <= end; i += kLanes) {
#pragma omp simd
            for (long l = 0; l < kLanes; ++l) f(i + l, acc, l);
        }
        for (long l = 0; i + l < end; ++l) f(i + l, acc, l);
        for (int k = 0; k < K; ++k)
#pragma omp simd
            for (long l = 0; l < kLanes; ++l) total[k][l] += acc[k][l];
    }
    for (int k = 0; k < K; ++k) {
        for (long w = kLanes / 2; w > 0; w /= 2)
            for (long l = 0; l < w; ++l) total[k][l] += total[k][l + w];
        out[k] = total[k][0];
    }
}

template <typename T, bool kSilu>
void forward_group(const T* xg, const T* gamma, const T* beta, T* yg, T* mean, T* rstd, long Cg, long HW,
                   double eps) {
    const long n = Cg * HW;
    double s[2];
    lane_sums<T, 1>(n, [&](long i, T (*acc)[kLanes], long l) { acc[0][l] += xg[i]; }, s);
    const T m = T(s[0] / n);
    lane_sums<T, 2>(n, [&](long i, T (*acc)[kLanes], long l) {
        const T d = xg[i] - m;
        acc[0][l] += d;
        acc[1][l] += d * d;
    }, s);
    // Rounding can take the corrected sum of squares below 0. A NaN (a NaN or an infinity in the group)
    // passes the comparison and makes rstd NaN, as in the reference; std::max(0.0, NaN) would give 0.
    const double ss = s[1] - s[0] * s[0] / n;
    const double r = 1.0 / std::sqrt((ss < 0.0 ? 0.0 : ss) / n + eps);
    *mean = m;
    *rstd = T(r);
    for (long c = 0; c < Cg; ++c) {
        const T a = T(r * gamma[c]), bt = beta[c];
        map(HW, yg + c * HW, [&](auto x) {
            using V = decltype(x);
            return gn::forward<V>(x, m, a, bt, kSilu);
        }, xg + c * HW);
    }
}

// Pass 1 of the backward for one (sample, group): dz (into dzg, with the SiLU; else dz is dy itself),
// per-channel sums of dz and dz * xhat into part_beta / part_gamma, and the group's means of dxhat and
// dxhat * xhat. dz is formed in its own sweep over the channel (the SiLU derivative, in F32x16 where the
// build has it) and summed in a second from L1, so the sums keep lane_sums' fixed order.
template <typename T, bool kSilu>
void backward_sums(const T* dyg, const T* xg, const T* gamma, const T* beta, T m, T r, T* dzg, double* part_gamma,
                   double* part_beta, long Cg, long HW, T* mean_dxhat, T* mean_dxhat_xhat) {
    double s_dxhat = 0.0, s_dxhat_xhat = 0.0;
    for (long c = 0; c < Cg; ++c) {
        const T gm = gamma[c], bt = beta[c];
        const T* xc = xg + c * HW;
        const T* dzc = dyg + c * HW;
        if constexpr (kSilu) {
            map(HW, dzg + c * HW, [&](auto dy, auto x) {
                using V = decltype(x);
                return gn::dz<V>(dy, (x - V(m)) * V(r), gm, bt, true);
            }, dzc, xc);
            dzc = dzg + c * HW;
        }
        double s[4];
        lane_sums<T, 4>(HW, [&](long i, T (*acc)[kLanes], long l) {
            const T xhat = (xc[i] - m) * r;
            const T d = dzc[i];
            // Sum the same rounded dxhat that pass 2 uses: with a large rstd (a one-element group),
            // a mean of differently rounded values would not cancel against it.
            const T dxhat = gn::dxhat(d, gm);
            acc[0][l] += d;
            acc[1][l] += d * xhat;
            acc[2][l] += dxhat;
            acc[3][l] += dxhat * xhat;
        }, s);
        part_beta[c] = s[0];
        part_gamma[c] = s[1];
        s_dxhat += s[2];
        s_dxhat_xhat += s[3];
    }
    *mean_dxhat = T(s_dxhat / (Cg * HW));
    *mean_dxhat_xhat = T(s_dxhat_xhat / (Cg * HW));
}

}  // namespace

template <typename T>
void group_norm_forward_cpu(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, long B,
                            long C, long HW, long G, bool silu, double eps) {
    const long Cg = C / G, n = Cg * HW;
#pragma omp parallel for schedule(guided)
    for (long bg = 0; bg < B * G; ++bg) {
        const long c0 = bg % G * Cg;
        (silu ? forward_group<T, true> : forward_group<T, false>)(x + bg * n, gamma + c0, beta + c0, y + bg * n,
                                                                  mean + bg, rstd + bg, Cg, HW, eps);
    }
}

template <typename T>
void group_norm_backward_cpu(const T* dy, const T* x, const T* gamma, const T* beta, const T* mean,
                             const T* rstd, T* dx, T* dgamma, T* dbeta, long B, long C, long HW, long G,
                             bool silu) {
    const long Cg = C / G, n = Cg * HW;
    // Per (sample, channel) partial sums of dz * xhat and dz, summed over the batch in order at the end.
    std::vector<double> part_gamma(B * C), part_beta(B * C);
#pragma omp parallel for schedule(guided)
    for (long bg = 0; bg < B * G; ++bg) {
        const long c0 = bg / G * C + bg % G * Cg, g0 = bg % G * Cg;
        const T m = mean[bg], r = rstd[bg];
        const T* xg = x + bg * n;
        T* dxg = dx + bg * n;
        T mean_dxhat, mean_dxhat_xhat;
        (silu ? backward_sums<T, true> : backward_sums<T, false>)(dy + bg * n, xg, gamma + g0, beta + g0, m, r,
                                                                  dxg, part_gamma.data() + c0,
                                                                  part_beta.data() + c0, Cg, HW, &mean_dxhat,
                                                                  &mean_dxhat_xhat);
        // Pass 2: dx from dz (in place, with the SiLU).
        const T* dzg = silu ? dxg : dy + bg * n;
        for (long c = 0; c < Cg; ++c) {
            const T gm = gamma[g0 + c];
            const T* xc = xg + c * HW;
            const T* dzc = dzg + c * HW;
            T* dxc = dxg + c * HW;
#pragma omp simd
            for (long i = 0; i < HW; ++i) {
                const T xhat = (xc[i] - m) * r;
                dxc[i] = gn::dx(gn::dxhat(dzc[i], gm), xhat, r, mean_dxhat, mean_dxhat_xhat);
            }
        }
    }
    for (long ch = 0; ch < C; ++ch) {
        double s_dgamma = 0.0, s_dbeta = 0.0;
        for (long b = 0; b < B; ++b) {
            s_dgamma += part_gamma[b * C + ch];
            s_dbeta += part_beta[b * C + ch];
        }
        dgamma[ch] = T(s_dgamma);
        dbeta[ch] = T(s_dbeta);
    }
}

template void group_norm_forward_cpu<float>(const float*, const float*, const float*, float*, float*, float*,
                                            long, long, long, long, bool, double);
template void group_norm_forward_cpu<double>(const double*, const double*, const double*, double*, double*,
                                             double*, long, long, long, long, bool, double);
template void group_norm_backward_cpu<float>(const float*, const float*, const float*, const float*,
                                             const float*, const float*, float*, float*, float*, long, long,
                                             long, long, bool);
template void group_norm_backward_cpu<double>(const double*, const double*, const double*, const double*,
                                              const double*, const double*, double*, double*, double*, long,
                                              long, long, long, bool);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

template <typename T>
py::tuple forward_t(py::array x, py::array gamma, py::array beta, long G, bool silu, double eps) {
    const char* fn = "group_norm";
    const auto dt = py::dtype::of<T>();
    check_array(fn, "x", x, dt, {-1, -1, -1, -1});
    const long B = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    check_positive(fn, "x.size", B * C * HW);
    check_positive(fn, "num_groups", G);
    if (C % G) throw py::value_error("group_norm: " + std::to_string(C) + " channels do not split into " +
                                     std::to_string(G) + " groups");
    check_array(fn, "gamma", gamma, dt, {C});
    check_array(fn, "beta", beta, dt, {C});
    py::array_t<T> y({x.shape(0), x.shape(1), x.shape(2), x.shape(3)}), mean({B, G}), rstd({B, G});
    {
        py::gil_scoped_release release;
        group_norm_forward_cpu<T>(static_cast<const T*>(x.data()), static_cast<const T*>(gamma.data()),
                                  static_cast<const T*>(beta.data()), y.mutable_data(), mean.mutable_data(),
                                  rstd.mutable_data(), B, C, HW, G, silu, eps);
    }
    return py::make_tuple(y, mean, rstd);
}

template <typename T>
py::tuple backward_t(py::array dy, py::array x, py::array gamma, py::array beta, py::array mean,
                     py::array rstd, long G, bool silu) {
    const char* fn = "group_norm_backward";
    const auto dt = py::dtype::of<T>();
    check_array(fn, "x", x, dt, {-1, -1, -1, -1});
    const long B = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    check_positive(fn, "x.size", B * C * HW);
    check_positive(fn, "num_groups", G);
    if (C % G) throw py::value_error("group_norm_backward: " + std::to_string(C) +
                                     " channels do not split into " + std::to_string(G) + " groups");
    check_array(fn, "dy", dy, dt, {x.shape(0), x.shape(1), x.shape(2), x.shape(3)});
    check_array(fn, "gamma", gamma, dt, {C});
    check_array(fn, "beta", beta, dt, {C});
    check_array(fn, "mean", mean, dt, {B, G});
    check_array(fn, "rstd", rstd, dt, {B, G});
    py::array_t<T> dx({x.shape(0), x.shape(1), x.shape(2), x.shape(3)}), dgamma(C), dbeta(C);
    {
        py::gil_scoped_release release;
        group_norm_backward_cpu<T>(static_cast<const T*>(dy.data()), static_cast<const T*>(x.data()),
                                   static_cast<const T*>(gamma.data()), static_cast<const T*>(beta.data()),
                                   static_cast<const T*>(mean.data()), static_cast<const T*>(rstd.data()),
                                   dx.mutable_data(), dgamma.mutable_data(), dbeta.mutable_data(), B, C, HW, G,
                                   silu);
    }
    return py::make_tuple(dx, dgamma, dbeta);
}

void bind(py::module_& m) {
    m.def("group_norm", [](py::array x, py::array gamma, py::array beta, long G, bool silu, double eps) {
        return is_float64("group_norm", "x", x) ? forward_t<double>(x, gamma, beta, G, silu, eps)
                                                 : forward_t<float>(x, gamma, beta, G, silu, eps);
    }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("num_groups"), py::arg("silu"), py::arg("eps"),
       "GroupNorm (+ SiLU) forward: (y, mean, rstd)");
    m.def("group_norm_backward", [](py::array dy, py::array x, py::array gamma, py::array beta, py::array mean,
                                    py::array rstd, long G, bool silu) {
        return is_float64("group_norm_backward", "x", x) ? backward_t<double>(dy, x, gamma, beta, mean, rstd, G, silu)
                                                          : backward_t<float>(dy, x, gamma, beta, mean, rstd, G, silu);
    }, py::arg("dy"), py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("mean"), py::arg("rstd"),
       py::arg("num_groups"), py::arg("silu"), "GroupNorm (+ SiLU) backward: (dx, dgamma, dbeta)");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
