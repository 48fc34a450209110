// GroupNorm (+ SiLU) on the CPU: OpenMP over (sample, group). The backward evaluates the SiLU derivative
// once per element, keeps per-(sample, channel) partials of dgamma/dbeta and sums them over the batch in
// a fixed order: deterministic, no atomics. Statistics are accumulated in double, two passes, whatever T is.
#include "cpu/group_norm.h"

#include <cmath>
#include <vector>

#include "kernels/group_norm.cuh"

// GCC's -march=native keeps AVX-512 machines at 256-bit vectors; these loops are arithmetic-bound on
// data in L1 (a (sample, group) is 4-16 KB), so full-width vectors cut both passes by a third (measured
// 1 thread: fwd 0.95 -> 0.75 ms, bwd 1.67 -> 1.18 ms at (32, 128, 16, 16)). No effect without AVX-512.
#pragma GCC target("prefer-vector-width=512")
namespace pyddpm {

template <typename T>
void group_norm_forward_cpu(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, long B,
                            long C, long HW, long G, bool silu, double eps) {
    const long Cg = C / G, n = Cg * HW;
#pragma omp parallel for schedule(static)
    for (long bg = 0; bg < B * G; ++bg) {
        const T* xg = x + bg * n;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (long i = 0; i < n; ++i) sum += xg[i];
        const double m = sum / n;
        double sq = 0.0;
#pragma omp simd reduction(+ : sq)
        for (long i = 0; i < n; ++i) {
            const double d = xg[i] - m;
            sq += d * d;
        }
        const double r = 1.0 / std::sqrt(sq / n + eps);
        mean[bg] = T(m);
        rstd[bg] = T(r);
        const long g = bg % G;
        T* yg = y + bg * n;
        for (long c = 0; c < Cg; ++c) {
            const long ch = g * Cg + c;
            const T a = T(r * gamma[ch]), mt = T(m);
#pragma omp simd
            for (long i = c * HW; i < (c + 1) * HW; ++i) yg[i] = gn::forward(xg[i], mt, a, beta[ch], silu);
        }
    }
}

template <typename T>
void group_norm_backward_cpu(const T* dy, const T* x, const T* gamma, const T* beta, const T* mean,
                             const T* rstd, T* dx, T* dgamma, T* dbeta, long B, long C, long HW, long G,
                             bool silu) {
    const long Cg = C / G, n = Cg * HW;
    // Per (sample, channel) partial sums of dz * xhat and dz, summed over the batch in order at the end.
    std::vector<double> part_gamma(B * C), part_beta(B * C);
#pragma omp parallel for schedule(static)
    for (long bg = 0; bg < B * G; ++bg) {
        const long b = bg / G, g = bg % G;
        const T m = mean[bg], r = rstd[bg];
        const T* xg = x + bg * n;
        const T* dyg = dy + bg * n;
        T* dxg = dx + bg * n;
        // Pass 1: dz once per element (the SiLU derivative is the costly part), parked in dx.
        double s_dxhat = 0.0, s_dxhat_xhat = 0.0;
        for (long c = 0; c < Cg; ++c) {
            const long ch = g * Cg + c;
            const T gm = gamma[ch], bt = beta[ch];
            double s_dz = 0.0, s_dz_xhat = 0.0;
#pragma omp simd reduction(+ : s_dz, s_dz_xhat, s_dxhat, s_dxhat_xhat)
            for (long i = c * HW; i < (c + 1) * HW; ++i) {
                const T xhat = (xg[i] - m) * r;
                const T d = gn::dz(dyg[i], xhat, gm, bt, silu);
                // Sum the same rounded dxhat that pass 2 uses: with a large rstd (a one-element group),
                // a mean of differently rounded values would not cancel against it.
                const T dxhat = gn::dxhat(d, gm);
                dxg[i] = d;
                s_dz += d;
                s_dz_xhat += double(d) * xhat;
                s_dxhat += dxhat;
                s_dxhat_xhat += double(dxhat) * xhat;
            }
            part_beta[b * C + ch] = s_dz;
            part_gamma[b * C + ch] = s_dz_xhat;
        }
        // Pass 2: dx from dz in place.
        const T mean_dxhat = T(s_dxhat / n), mean_dxhat_xhat = T(s_dxhat_xhat / n);
        for (long c = 0; c < Cg; ++c) {
            const T gm = gamma[g * Cg + c];
#pragma omp simd
            for (long i = c * HW; i < (c + 1) * HW; ++i) {
                const T xhat = (xg[i] - m) * r;
                dxg[i] = gn::dx(gn::dxhat(dxg[i], gm), xhat, r, mean_dxhat, mean_dxhat_xhat);
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
