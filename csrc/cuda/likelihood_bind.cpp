// Python bindings of the likelihood launchers. Pointers are CuPy's data.ptr; shapes and dtypes were checked
// by pyddpm/ops/discretized_gaussian_log_likelihood.py and pyddpm/ops/normal_kl.py; the sizes are checked
// again here, since they bound every index.
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/likelihood.h"

namespace pyddpm {
namespace {

// The result goes to out (B, n) or, with per_sample_bpd, to bpd (B,): the launcher takes one of them.
void split(std::uintptr_t result, bool per_sample_bpd, float** out, float** bpd) {
    *out = per_sample_bpd ? nullptr : ptr<float>(result);
    *bpd = per_sample_bpd ? ptr<float>(result) : nullptr;
}

void bind(py::module_& m) {
    m.def("discretized_gaussian_log_likelihood", [](std::uintptr_t x, std::uintptr_t means, std::uintptr_t log_scales,
                                                    bool log_scales_per_sample, std::uintptr_t result,
                                                    bool per_sample_bpd, long B, long n, std::uintptr_t stream) {
        check_positive("discretized_gaussian_log_likelihood", "B", B);
        check_positive("discretized_gaussian_log_likelihood", "n", n);
        float *out, *bpd;
        split(result, per_sample_bpd, &out, &bpd);
        discretized_gaussian_log_likelihood_cuda(ptr<const float>(x), ptr<const float>(means),
                                                 ptr<const float>(log_scales), log_scales_per_sample, out, bpd, B, n,
                                                 as_stream(stream));
    });
    m.def("normal_kl", [](std::uintptr_t mean1, std::uintptr_t logvar1, bool logvar1_per_sample, std::uintptr_t mean2,
                          std::uintptr_t logvar2, bool logvar2_per_sample, std::uintptr_t result, bool per_sample_bpd,
                          long B, long n, std::uintptr_t stream) {
        check_positive("normal_kl", "B", B);
        check_positive("normal_kl", "n", n);
        float *out, *bpd;
        split(result, per_sample_bpd, &out, &bpd);
        normal_kl_cuda(ptr<const float>(mean1), ptr<const float>(logvar1), logvar1_per_sample, ptr<const float>(mean2),
                       ptr<const float>(logvar2), logvar2_per_sample, out, bpd, B, n,
                       as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
