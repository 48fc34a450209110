// Fused noising (Eq. 4) on the CPU: OpenMP over (sample, chunk of the sample) pieces, one vectorised pass
// per piece with the sample's two coefficients hoisted out of the loop.
#include "cpu/q_sample.h"

#include "kernels/q_sample.cuh"

namespace pyddpm {

template <typename T>
void q_sample_cpu(const T* x0, const std::int64_t* t, const T* noise, const double* sqrt_alphas_cumprod,
                  const double* sqrt_one_minus_alphas_cumprod, T* xt, long B, long n) {
    const long chunks = (n + STEP_CHUNK - 1) / STEP_CHUNK;
#pragma omp parallel for schedule(static)
    for (long piece = 0; piece < B * chunks; ++piece) {
        const long b = piece / chunks, begin = (piece % chunks) * STEP_CHUNK;
        const long end = begin + STEP_CHUNK < n ? begin + STEP_CHUNK : n;
        const qs::Coefs<T> c = qs::coefs<T>(sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, t[b]);
        const T* x0b = x0 + b * n;
        const T* nb = noise + b * n;
        T* xb = xt + b * n;
#pragma omp simd
        for (long i = begin; i < end; ++i) xb[i] = qs::forward(x0b[i], nb[i], c);
    }
}

template void q_sample_cpu<float>(const float*, const std::int64_t*, const float*, const double*, const double*,
                                  float*, long, long);
template void q_sample_cpu<double>(const double*, const std::int64_t*, const double*, const double*, const double*,
                                   double*, long, long);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"
#include "bind/step_checks.h"

namespace pyddpm {
namespace {

template <typename T>
py::array q_sample_t(py::array x0, py::array t, py::array noise, py::array sqrt_ac, py::array sqrt_1m_ac) {
    const char* fn = "q_sample";
    const auto dt = py::dtype::of<T>();
    const auto shape = check_data(fn, "x0", x0, dt);
    check_array(fn, "noise", noise, dt, shape);
    const long B = shape[0], n = x0.size() / B;
    const std::int64_t* tp = check_timesteps(fn, t, B, {{"sqrt_alphas_cumprod", &sqrt_ac},
                                                        {"sqrt_one_minus_alphas_cumprod", &sqrt_1m_ac}});
    py::array_t<T> xt(shape);
    {
        py::gil_scoped_release release;
        q_sample_cpu<T>(static_cast<const T*>(x0.data()), tp, static_cast<const T*>(noise.data()),
                        static_cast<const double*>(sqrt_ac.data()), static_cast<const double*>(sqrt_1m_ac.data()),
                        xt.mutable_data(), B, n);
    }
    return xt;
}

void bind(py::module_& m) {
    m.def("q_sample", [](py::array x0, py::array t, py::array noise, py::array sqrt_ac, py::array sqrt_1m_ac) {
        return is_float64("q_sample", "x0", x0) ? q_sample_t<double>(x0, t, noise, sqrt_ac, sqrt_1m_ac)
                                                 : q_sample_t<float>(x0, t, noise, sqrt_ac, sqrt_1m_ac);
    }, py::arg("x0"), py::arg("t"), py::arg("noise"), py::arg("sqrt_alphas_cumprod"),
       py::arg("sqrt_one_minus_alphas_cumprod"), "Fused noising (Eq. 4): x_t");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
