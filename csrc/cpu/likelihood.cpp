// The bound's per-element terms on the CPU (math: csrc/kernels/likelihood.cuh; oracle: pyddpm/likelihood.py).
// Elementwise: OpenMP over all B*n elements. Per-sample bits/dim: OpenMP over samples, each summed in
// double in a fixed order (deterministic), then -sum / (n ln 2) for the log-likelihood, +sum / (n ln 2)
// for the KL. float32 inputs run the float32 math, exactly the CUDA kernel's; float64 runs it in double.
#include "cpu/likelihood.h"

#include <vector>

#include "kernels/likelihood.cuh"

namespace pyddpm {
namespace {

// Calls term(b, i) for every element, writing it to out (B, n) or reducing each sample to bpd[b] =
// sign * mean / ln 2.
template <typename T, typename Term>
void elementwise_or_bpd(Term term, T* out, T* bpd, long B, long n, double sign) {
    if (out) {
#pragma omp parallel for collapse(2) schedule(static)
        for (long b = 0; b < B; ++b)
            for (long i = 0; i < n; ++i) out[b * n + i] = term(b, i);
        return;
    }
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; ++b) {
        double sum = 0.0;
        for (long i = 0; i < n; ++i) sum += term(b, i);
        bpd[b] = T(sign * sum / (double(n) * lik::LN2));
    }
}

}  // namespace

template <typename T>
void discretized_gaussian_log_likelihood_cpu(const T* x, const T* means, const T* log_scales,
                                             bool log_scales_per_sample, T* out, T* bpd, long B, long n) {
    std::vector<T> inv_scale(log_scales_per_sample ? B : 0);
    for (size_t b = 0; b < inv_scale.size(); ++b) inv_scale[b] = lik::inverse_scale(log_scales[b]);
    const auto term = [&](long b, long i) {
        const long k = b * n + i;
        if (log_scales_per_sample) return lik::log_likelihood(x[k], means[k], log_scales[b], inv_scale[b]);
        return lik::log_likelihood(x[k], means[k], log_scales[k], lik::inverse_scale(log_scales[k]));
    };
    elementwise_or_bpd(term, out, bpd, B, n, -1.0);
}

template <typename T>
void normal_kl_cpu(const T* mean1, const T* logvar1, bool logvar1_per_sample, const T* mean2,
                   const T* logvar2, bool logvar2_per_sample, T* out, T* bpd, long B, long n) {
    if (logvar1_per_sample && logvar2_per_sample) {  // the fixed-variance DDPM: a vectorisable inner loop
        std::vector<T> variance_term(B), inv_var2(B);
        for (long b = 0; b < B; ++b) {
            variance_term[b] = lik::kl_variance_term(logvar1[b], logvar2[b]);
            inv_var2[b] = math::exp(-logvar2[b]);
        }
        const auto term = [&](long b, long i) {
            return lik::normal_kl_parts(mean1[b * n + i], mean2[b * n + i], variance_term[b], inv_var2[b]);
        };
        elementwise_or_bpd(term, out, bpd, B, n, 1.0);
        return;
    }
    const auto term = [&](long b, long i) {
        const long k = b * n + i;
        return lik::normal_kl(mean1[k], logvar1[logvar1_per_sample ? b : k], mean2[k],
                              logvar2[logvar2_per_sample ? b : k]);
    };
    elementwise_or_bpd(term, out, bpd, B, n, 1.0);
}

template void discretized_gaussian_log_likelihood_cpu<float>(const float*, const float*, const float*, bool,
                                                             float*, float*, long, long);
template void discretized_gaussian_log_likelihood_cpu<double>(const double*, const double*, const double*, bool,
                                                              double*, double*, long, long);
template void normal_kl_cpu<float>(const float*, const float*, bool, const float*, const float*, bool, float*,
                                   float*, long, long);
template void normal_kl_cpu<double>(const double*, const double*, bool, const double*, const double*, bool,
                                    double*, double*, long, long);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// Checks a per-element (same shape as `like`) or per-sample ((B,)) array; returns true if per-sample.
bool check_per_element_or_sample(const char* fn, const char* name, const py::array& a, const py::array& like,
                                 const py::dtype& dt) {
    const bool per_sample = a.ndim() == 1 && like.ndim() > 1;
    check_array(fn, name, a, dt, per_sample ? std::vector<py::ssize_t>{like.shape(0)} : shape_of(like));
    return per_sample;
}

// The output: elementwise like `like`, or (B,) bits/dim.
template <typename T>
py::array_t<T> make_out(const py::array& like, bool per_sample_bpd) {
    return per_sample_bpd ? py::array_t<T>(std::vector<py::ssize_t>{like.shape(0)}) : py::array_t<T>(shape_of(like));
}

void check_batch(const char* fn, const char* name, const py::array& a) {
    if (a.ndim() < 1) throw py::value_error(std::string(fn) + ": " + name + " must be (B, ...), got a scalar");
    check_positive(fn, (std::string(name) + ".size").c_str(), a.size());
}

template <typename T>
py::array log_likelihood_t(py::array x, py::array means, py::array log_scales, bool per_sample_bpd) {
    const char* fn = "discretized_gaussian_log_likelihood";
    const auto dt = py::dtype::of<T>();
    check_batch(fn, "x", x);
    check_array(fn, "x", x, dt, shape_of(x));
    check_array(fn, "means", means, dt, shape_of(x));
    const bool ls_per_sample = check_per_element_or_sample(fn, "log_scales", log_scales, x, dt);
    const long B = x.shape(0), n = x.size() / B;
    auto out = make_out<T>(x, per_sample_bpd);
    {
        py::gil_scoped_release release;
        T* res = out.mutable_data();
        discretized_gaussian_log_likelihood_cpu<T>(static_cast<const T*>(x.data()), static_cast<const T*>(means.data()),
                                                   static_cast<const T*>(log_scales.data()), ls_per_sample,
                                                   per_sample_bpd ? nullptr : res, per_sample_bpd ? res : nullptr, B, n);
    }
    return out;
}

template <typename T>
py::array normal_kl_t(py::array mean1, py::array logvar1, py::array mean2, py::array logvar2, bool per_sample_bpd) {
    const char* fn = "normal_kl";
    const auto dt = py::dtype::of<T>();
    check_batch(fn, "mean1", mean1);
    check_array(fn, "mean1", mean1, dt, shape_of(mean1));
    check_array(fn, "mean2", mean2, dt, shape_of(mean1));
    const bool lv1_per_sample = check_per_element_or_sample(fn, "logvar1", logvar1, mean1, dt);
    const bool lv2_per_sample = check_per_element_or_sample(fn, "logvar2", logvar2, mean1, dt);
    const long B = mean1.shape(0), n = mean1.size() / B;
    auto out = make_out<T>(mean1, per_sample_bpd);
    {
        py::gil_scoped_release release;
        T* res = out.mutable_data();
        normal_kl_cpu<T>(static_cast<const T*>(mean1.data()), static_cast<const T*>(logvar1.data()), lv1_per_sample,
                         static_cast<const T*>(mean2.data()), static_cast<const T*>(logvar2.data()), lv2_per_sample,
                         per_sample_bpd ? nullptr : res, per_sample_bpd ? res : nullptr, B, n);
    }
    return out;
}

void bind(py::module_& m) {
    m.def("discretized_gaussian_log_likelihood", [](py::array x, py::array means, py::array log_scales,
                                                    bool per_sample_bpd) {
        return is_float64("discretized_gaussian_log_likelihood", "x", x)
                   ? log_likelihood_t<double>(x, means, log_scales, per_sample_bpd)
                   : log_likelihood_t<float>(x, means, log_scales, per_sample_bpd);
    }, py::arg("x"), py::arg("means"), py::arg("log_scales"), py::arg("per_sample_bpd"),
       "Eq. 13 log-likelihood in nats (x's shape), or per-sample bits/dim (B,)");
    m.def("normal_kl", [](py::array mean1, py::array logvar1, py::array mean2, py::array logvar2,
                          bool per_sample_bpd) {
        return is_float64("normal_kl", "mean1", mean1) ? normal_kl_t<double>(mean1, logvar1, mean2, logvar2, per_sample_bpd)
                                                        : normal_kl_t<float>(mean1, logvar1, mean2, logvar2, per_sample_bpd);
    }, py::arg("mean1"), py::arg("logvar1"), py::arg("mean2"), py::arg("logvar2"), py::arg("per_sample_bpd"),
       "Gaussian KL in nats (mean1's shape), or per-sample mean / ln 2 (B,)");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
