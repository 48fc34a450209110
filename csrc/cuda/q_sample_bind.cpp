// Python bindings of the fused noising launcher. Pointers are CuPy's data.ptr; shapes, dtypes and t's
// range were checked by pyddpm/ops/q_sample.py (t's values live on the device: the kernel guards them).
// The sizes are checked again here, for what would launch an invalid grid.
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/q_sample.h"

namespace pyddpm {
namespace {

void bind(py::module_& m) {
    m.def("q_sample", [](std::uintptr_t x0, std::uintptr_t t, std::uintptr_t noise, std::uintptr_t sqrt_ac,
                         std::uintptr_t sqrt_1m_ac, std::uintptr_t xt, long B, long n, long T, std::uintptr_t stream) {
        const char* fn = "q_sample";
        check_positive(fn, "B", B);
        check_positive(fn, "n", n);
        check_positive(fn, "T", T);
        if ((n + STEP_BLOCK_ELEMS - 1) / STEP_BLOCK_ELEMS > INT_MAX / B)
            throw py::value_error("q_sample: the data are too large for one launch");
        q_sample_cuda(ptr<const float>(x0), ptr<const std::int64_t>(t), ptr<const float>(noise),
                      ptr<const double>(sqrt_ac), ptr<const double>(sqrt_1m_ac), ptr<float>(xt), B, n, T,
                      as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
