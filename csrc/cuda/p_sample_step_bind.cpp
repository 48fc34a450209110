// Python bindings of the fused reverse-step launcher. Pointers are CuPy's data.ptr (pred_x0 = 0: not
// wanted); shapes, dtypes and t's range were checked by pyddpm/ops/p_sample_step.py (t's values live on
// the device: the kernel guards them). The sizes are checked again here, for what would launch an
// invalid grid.
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/p_sample_step.h"
#include "cuda/q_sample.h"

namespace pyddpm {
namespace {

void bind(py::module_& m) {
    m.def("p_sample_step", [](std::uintptr_t out, std::uintptr_t xt, std::uintptr_t t, std::uintptr_t noise,
                              std::uintptr_t r, std::uintptr_t rm1, std::uintptr_t c1, std::uintptr_t c2,
                              std::uintptr_t logvar, std::uintptr_t x_prev, std::uintptr_t pred_x0, long B, long n,
                              long T, bool predict_eps, bool clip, std::uintptr_t stream) {
        const char* fn = "p_sample_step";
        check_positive(fn, "B", B);
        check_positive(fn, "n", n);
        check_positive(fn, "T", T);
        if ((n + STEP_BLOCK_ELEMS - 1) / STEP_BLOCK_ELEMS > INT_MAX / B)
            throw py::value_error("p_sample_step: the data are too large for one launch");
        p_sample_step_cuda(ptr<const float>(out), ptr<const float>(xt), ptr<const std::int64_t>(t),
                           ptr<const float>(noise), ptr<const double>(r), ptr<const double>(rm1),
                           ptr<const double>(c1), ptr<const double>(c2), ptr<const double>(logvar), ptr<float>(x_prev),
                           ptr<float>(pred_x0), B, n, T, predict_eps, clip, as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
