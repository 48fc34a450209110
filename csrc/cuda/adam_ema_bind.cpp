// Python bindings of the fused Adam + EMA launcher. Pointers are CuPy's data.ptr; dtypes and shapes were
// checked by pyddpm/ops/adam_ema.py. The size is checked again here, for what would launch an invalid grid.
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/adam_ema.h"

namespace pyddpm {
namespace {

void bind(py::module_& m) {
    m.def("adam_ema", [](std::uintptr_t p, std::uintptr_t g, std::uintptr_t m_, std::uintptr_t v, std::uintptr_t ema,
                         long n, double step_size, double eps_hat, double beta1, double beta2, double ema_decay,
                         std::uintptr_t stream) {
        check_positive("adam_ema", "n", n);
        if ((n + ADAM_BLOCK_ELEMS - 1) / ADAM_BLOCK_ELEMS > INT_MAX)
            throw py::value_error("adam_ema: the tensor is too large for one launch");
        adam_ema_cuda(ptr<float>(p), ptr<const float>(g), ptr<float>(m_), ptr<float>(v), ptr<float>(ema), n,
                      step_size, eps_hat, beta1, beta2, ema_decay, as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
