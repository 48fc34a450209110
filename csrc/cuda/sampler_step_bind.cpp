// Python bindings of the fused sampler-step launcher. Pointers are CuPy's data.ptr (noise = 0: none, allowed
// where every next_from_noise is 0; log_variance = 0: no learned variance; pred_x0 = 0: not wanted); shapes,
// dtypes and the coefficients' values were checked by pyddpm/ops/sampler_step.py. The sizes are checked
// again here, for what would launch an invalid grid.
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/q_sample.h"
#include "cuda/sampler_step.h"

namespace pyddpm {
namespace {

void bind(py::module_& m) {
    m.def("sampler_step", [](std::uintptr_t out, std::uintptr_t x, std::uintptr_t noise, std::uintptr_t log_variance,
                             std::uintptr_t c0, std::uintptr_t c1, std::uintptr_t c2, std::uintptr_t c3,
                             std::uintptr_t c4, std::uintptr_t x_next, std::uintptr_t pred_x0, long B, long n,
                             bool clip, std::uintptr_t stream) {
        const char* fn = "sampler_step";
        check_positive(fn, "B", B);
        check_positive(fn, "n", n);
        if ((n + STEP_BLOCK_ELEMS - 1) / STEP_BLOCK_ELEMS > INT_MAX / B)
            throw py::value_error("sampler_step: the data are too large for one launch");
        sampler_step_cuda(ptr<const float>(out), ptr<const float>(x), ptr<const float>(noise),
                          ptr<const float>(log_variance), ptr<const double>(c0), ptr<const double>(c1),
                          ptr<const double>(c2), ptr<const double>(c3), ptr<const double>(c4), ptr<float>(x_next),
                          ptr<float>(pred_x0), B, n, clip, as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
