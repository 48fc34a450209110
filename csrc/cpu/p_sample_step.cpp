// The fused reverse step (Alg. 2) on the CPU: OpenMP over (sample, chunk of the sample) pieces as
// q_sample; per piece one vectorised pass, the sample's coefficients hoisted. The four flags (eps/x0,
// clip, noise or not, pred_x0 wanted) are template parameters, so each inner loop is branch-free.
#include "cpu/p_sample_step.h"

#include "cpu/q_sample.h"
#include "kernels/p_sample_step.cuh"

namespace pyddpm {
namespace {

template <typename T, bool PredictEps, bool Clip, bool Noisy, bool WritePredX0>
void piece(const T* out, const T* xt, const T* noise, const ps::Coefs<T>& c, T* x_prev, T* pred_x0, long begin,
           long end) {
    // The per-sample branch on `noisy` is fixed here so the loop body has none.
    ps::Coefs<T> cc = c;
    cc.noisy = Noisy;
#pragma omp simd
    for (long i = begin; i < end; ++i) {
        const T x0 = ps::pred_x0(out[i], xt[i], cc, PredictEps, Clip);
        if (WritePredX0) pred_x0[i] = x0;
        x_prev[i] = ps::x_prev(x0, xt[i], Noisy ? noise[i] : T(0), cc);
    }
}

template <typename T, bool PredictEps, bool Clip, bool WritePredX0>
void run(const T* model_output, const T* xt, const std::int64_t* t, const T* noise, const ReverseStepTables& tb,
         T* x_prev, T* pred_x0, long B, long n) {
    const long chunks = (n + STEP_CHUNK - 1) / STEP_CHUNK;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < B * chunks; ++p) {
        const long b = p / chunks, begin = (p % chunks) * STEP_CHUNK;
        const long end = begin + STEP_CHUNK < n ? begin + STEP_CHUNK : n;
        const ps::Coefs<T> c = ps::coefs<T>(tb.sqrt_recip_alphas_cumprod, tb.sqrt_recipm1_alphas_cumprod,
                                            tb.posterior_mean_coef1, tb.posterior_mean_coef2,
                                            tb.model_log_variance, t[b]);
        const long o = b * n;
        T* px = WritePredX0 ? pred_x0 + o : nullptr;
        if (c.noisy)
            piece<T, PredictEps, Clip, true, WritePredX0>(model_output + o, xt + o, noise + o, c, x_prev + o, px,
                                                          begin, end);
        else
            piece<T, PredictEps, Clip, false, WritePredX0>(model_output + o, xt + o, noise + o, c, x_prev + o, px,
                                                           begin, end);
    }
}

}  // namespace

template <typename T>
void p_sample_step_cpu(const T* model_output, const T* xt, const std::int64_t* t, const T* noise,
                       const ReverseStepTables& tables, T* x_prev, T* pred_x0, long B, long n, bool predict_eps,
                       bool clip) {
    // 8 instantiations: the flags index them as bits (eps, clip, pred_x0).
    using Fn = void (*)(const T*, const T*, const std::int64_t*, const T*, const ReverseStepTables&, T*, T*, long,
                        long);
    static constexpr Fn fns[8] = {run<T, false, false, false>, run<T, false, false, true>,
                                  run<T, false, true, false>,  run<T, false, true, true>,
                                  run<T, true, false, false>,  run<T, true, false, true>,
                                  run<T, true, true, false>,   run<T, true, true, true>};
    fns[4 * predict_eps + 2 * clip + (pred_x0 != nullptr)](model_output, xt, t, noise, tables, x_prev, pred_x0, B, n);
}

template void p_sample_step_cpu<float>(const float*, const float*, const std::int64_t*, const float*,
                                       const ReverseStepTables&, float*, float*, long, long, bool, bool);
template void p_sample_step_cpu<double>(const double*, const double*, const std::int64_t*, const double*,
                                        const ReverseStepTables&, double*, double*, long, long, bool, bool);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"
#include "bind/step_checks.h"

namespace pyddpm {
namespace {

template <typename T>
py::tuple p_sample_step_t(py::array out, py::array xt, py::array t, py::array noise, py::array r, py::array rm1,
                          py::array c1, py::array c2, py::array logvar, bool predict_eps, bool clip,
                          bool return_pred_x0) {
    const char* fn = "p_sample_step";
    const auto dt = py::dtype::of<T>();
    const auto shape = check_data(fn, "x_t", xt, dt);
    check_array(fn, "model_output", out, dt, shape);
    check_array(fn, "noise", noise, dt, shape);
    const long B = shape[0], n = xt.size() / B;
    const std::int64_t* tp = check_timesteps(fn, t, B, {{"sqrt_recip_alphas_cumprod", &r},
                                                        {"sqrt_recipm1_alphas_cumprod", &rm1},
                                                        {"posterior_mean_coef1", &c1},
                                                        {"posterior_mean_coef2", &c2},
                                                        {"model_log_variance", &logvar}});
    const auto d = [](const py::array& a) { return static_cast<const double*>(a.data()); };
    const ReverseStepTables tables{d(r), d(rm1), d(c1), d(c2), d(logvar)};
    py::array_t<T> x_prev(shape);
    py::object pred_x0 = py::none();
    T* pred_x0_data = nullptr;
    if (return_pred_x0) {
        py::array_t<T> a(shape);
        pred_x0_data = a.mutable_data();
        pred_x0 = a;
    }
    {
        py::gil_scoped_release release;
        p_sample_step_cpu<T>(static_cast<const T*>(out.data()), static_cast<const T*>(xt.data()), tp,
                             static_cast<const T*>(noise.data()), tables, x_prev.mutable_data(), pred_x0_data, B, n,
                             predict_eps, clip);
    }
    return py::make_tuple(x_prev, pred_x0);
}

void bind(py::module_& m) {
    m.def("p_sample_step", [](py::array out, py::array xt, py::array t, py::array noise, py::array r, py::array rm1,
                              py::array c1, py::array c2, py::array logvar, bool predict_eps, bool clip,
                              bool return_pred_x0) {
        return is_float64("p_sample_step", "x_t", xt)
                   ? p_sample_step_t<double>(out, xt, t, noise, r, rm1, c1, c2, logvar, predict_eps, clip,
                                             return_pred_x0)
                   : p_sample_step_t<float>(out, xt, t, noise, r, rm1, c1, c2, logvar, predict_eps, clip,
                                            return_pred_x0);
    }, py::arg("model_output"), py::arg("x_t"), py::arg("t"), py::arg("noise"), py::arg("sqrt_recip_alphas_cumprod"),
       py::arg("sqrt_recipm1_alphas_cumprod"), py::arg("posterior_mean_coef1"), py::arg("posterior_mean_coef2"),
       py::arg("model_log_variance"), py::arg("predict_eps"), py::arg("clip_denoised"), py::arg("return_pred_x0"),
       "The fused reverse step (Alg. 2): (x_prev, pred_x0 or None)");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
