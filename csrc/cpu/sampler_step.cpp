// The fused step of every sampler on the CPU: OpenMP over (sample, chunk of the sample) pieces as
// q_sample; per piece one vectorised pass, the sample's five coefficients hoisted. The flags (clip,
// pred_x0 wanted, and per sample how the noise is taken) are template parameters, so each inner loop is
// branch-free.
#include "cpu/sampler_step.h"

#include "cpu/q_sample.h"
#include "kernels/sampler_step.cuh"

namespace pyddpm {
namespace {

// How a piece's sample takes the noise: not at all (its next_from_noise is 0: neither noise nor log_variance
// is read), scaled by the sample's coefficient, or by that and a learned per-element sigma as well.
enum class Noise { none, per_sample, learned };

template <typename T, bool Clip, Noise N, bool WritePredX0>
void piece(const T* out, const T* x, const T* noise, const T* log_variance, const ss::Coefs<T>& c, T* x_next,
           T* pred_x0, long begin, long end) {
    // The per-sample branch on `noisy` is fixed here so the loop body has none; without noise, noise is null.
    ss::Coefs<T> cc = c;
    cc.noisy = N != Noise::none;
#pragma omp simd
    for (long i = begin; i < end; ++i) {
        const T x0 = ss::pred_x0(out[i], x[i], cc, Clip);
        if (WritePredX0) pred_x0[i] = x0;
        if constexpr (N == Noise::learned)
            x_next[i] = ss::x_next(x0, x[i], noise[i], log_variance[i], cc);
        else
            x_next[i] = ss::x_next(x0, x[i], N == Noise::per_sample ? noise[i] : T(0), cc);
    }
}

template <typename T, bool Clip, bool WritePredX0>
void run(const T* model_output, const T* x, const T* noise, const T* log_variance, const StepCoefArrays& cs,
         T* x_next, T* pred_x0, long B, long n) {
    const long chunks = (n + STEP_CHUNK - 1) / STEP_CHUNK;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < B * chunks; ++p) {
        const long b = p / chunks, begin = (p % chunks) * STEP_CHUNK;
        const long end = begin + STEP_CHUNK < n ? begin + STEP_CHUNK : n;
        const ss::Coefs<T> c =
            ss::coefs<T>(cs.x0_from_x, cs.x0_from_out, cs.next_from_x0, cs.next_from_x, cs.next_from_noise, b);
        const long o = b * n;
        T* px = WritePredX0 ? pred_x0 + o : nullptr;
        if (!c.noisy)  // noise and log_variance may be null: no offset taken from them
            piece<T, Clip, Noise::none, WritePredX0>(model_output + o, x + o, nullptr, nullptr, c, x_next + o, px,
                                                     begin, end);
        else if (log_variance)
            piece<T, Clip, Noise::learned, WritePredX0>(model_output + o, x + o, noise + o, log_variance + o, c,
                                                        x_next + o, px, begin, end);
        else
            piece<T, Clip, Noise::per_sample, WritePredX0>(model_output + o, x + o, noise + o, nullptr, c,
                                                           x_next + o, px, begin, end);
    }
}

}  // namespace

template <typename T>
void sampler_step_cpu(const T* model_output, const T* x, const T* noise, const T* log_variance,
                      const StepCoefArrays& coefs, T* x_next, T* pred_x0, long B, long n, bool clip) {
    // 4 instantiations: the flags index them as bits (clip, pred_x0).
    using Fn = void (*)(const T*, const T*, const T*, const T*, const StepCoefArrays&, T*, T*, long, long);
    static constexpr Fn fns[4] = {run<T, false, false>, run<T, false, true>, run<T, true, false>,
                                  run<T, true, true>};
    fns[2 * clip + (pred_x0 != nullptr)](model_output, x, noise, log_variance, coefs, x_next, pred_x0, B, n);
}

template void sampler_step_cpu<float>(const float*, const float*, const float*, const float*, const StepCoefArrays&,
                                      float*, float*, long, long, bool);
template void sampler_step_cpu<double>(const double*, const double*, const double*, const double*,
                                       const StepCoefArrays&, double*, double*, long, long, bool);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bind/checks.h"
#include "bind/registry.h"
#include "bind/step_checks.h"

namespace pyddpm {
namespace {

constexpr const char* COEF_NAMES[5] = {"coefs.x0_from_x", "coefs.x0_from_out", "coefs.next_from_x0",
                                       "coefs.next_from_x", "coefs.next_from_noise"};

template <typename T>
py::tuple sampler_step_t(const py::array& out, const py::array& x, const std::optional<py::array>& noise,
                         const py::array (&coefs)[5], bool clip, bool return_pred_x0,
                         const std::optional<py::array>& log_variance) {
    const char* fn = "sampler_step";
    const auto dt = py::dtype::of<T>();
    const auto shape = check_data(fn, "x", x, dt);
    check_array(fn, "model_output", out, dt, shape);
    if (noise) check_array(fn, "noise", *noise, dt, shape);
    if (log_variance) check_array(fn, "log_variance", *log_variance, dt, shape);
    const long B = shape[0], n = x.size() / B;
    const double* c[5];
    for (int k = 0; k < 5; ++k) {
        check_array(fn, COEF_NAMES[k], coefs[k], py::dtype::of<double>(), {B});
        c[k] = static_cast<const double*>(coefs[k].data());
    }
    // Without a noise array every sample must leave the noise out, or the driver would read a null pointer.
    for (long b = 0; !noise && b < B; ++b)
        if (c[4][b] != 0.0)
            throw py::value_error(std::string(fn) + ": noise is None but coefs.next_from_noise is not 0 for every "
                                  "sample (sample " + std::to_string(b) + ")");
    py::array_t<T> x_next(shape);
    py::object pred_x0 = py::none();
    T* pred_x0_data = nullptr;
    if (return_pred_x0) {
        py::array_t<T> a(shape);
        pred_x0_data = a.mutable_data();
        pred_x0 = a;
    }
    const T* noise_data = noise ? static_cast<const T*>(noise->data()) : nullptr;
    const T* lv_data = log_variance ? static_cast<const T*>(log_variance->data()) : nullptr;
    {
        py::gil_scoped_release release;
        sampler_step_cpu<T>(static_cast<const T*>(out.data()), static_cast<const T*>(x.data()), noise_data, lv_data,
                            StepCoefArrays{c[0], c[1], c[2], c[3], c[4]}, x_next.mutable_data(), pred_x0_data, B, n,
                            clip);
    }
    return py::make_tuple(x_next, pred_x0);
}

void bind(py::module_& m) {
    // log_variance last, with a default: the calls without a learned variance stay as they were.
    m.def("sampler_step", [](py::array out, py::array x, std::optional<py::array> noise, py::array x0_from_x,
                             py::array x0_from_out, py::array next_from_x0, py::array next_from_x,
                             py::array next_from_noise, bool clip, bool return_pred_x0,
                             std::optional<py::array> log_variance) {
        const py::array coefs[5] = {x0_from_x, x0_from_out, next_from_x0, next_from_x, next_from_noise};
        return is_float64("sampler_step", "x", x)
                   ? sampler_step_t<double>(out, x, noise, coefs, clip, return_pred_x0, log_variance)
                   : sampler_step_t<float>(out, x, noise, coefs, clip, return_pred_x0, log_variance);
    }, py::arg("model_output"), py::arg("x"), py::arg("noise").none(true), py::arg("x0_from_x"),
       py::arg("x0_from_out"), py::arg("next_from_x0"), py::arg("next_from_x"), py::arg("next_from_noise"),
       py::arg("clip_denoised"), py::arg("return_pred_x0"), py::arg("log_variance").none(true) = py::none(),
       "The fused step of every sampler: (x_next, pred_x0 or None); log_variance None: sigma = next_from_noise");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
