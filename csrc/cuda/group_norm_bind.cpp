// Python bindings of the GroupNorm (+ SiLU) launchers. Pointers are CuPy's data.ptr; shapes were checked
// by pyddpm/ops/group_norm.py, and are checked again here for what would write out of bounds.
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/group_norm.h"

namespace pyddpm {
namespace {

void check_sizes(const char* fn, long B, long C, long HW, long G) {
    check_positive(fn, "B", B);
    check_positive(fn, "C", C);
    check_positive(fn, "H*W", HW);
    check_positive(fn, "num_groups", G);
    if (C % G) throw py::value_error(std::string(fn) + ": C must be a multiple of num_groups");
}

void bind(py::module_& m) {
    m.def("group_norm", [](std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta, std::uintptr_t y,
                           std::uintptr_t mean, std::uintptr_t rstd, long B, long C, long HW, long G, bool silu,
                           float eps, std::uintptr_t stream) {
        check_sizes("group_norm", B, C, HW, G);
        group_norm_forward_cuda(ptr<const float>(x), ptr<const float>(gamma), ptr<const float>(beta), ptr<float>(y),
                                ptr<float>(mean), ptr<float>(rstd), int(B), int(C), int(HW), int(G), silu, eps,
                                as_stream(stream));
    });
    m.def("group_norm_backward", [](std::uintptr_t dy, std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
                                    std::uintptr_t mean, std::uintptr_t rstd, std::uintptr_t dx,
                                    std::uintptr_t dgamma, std::uintptr_t dbeta, std::uintptr_t dgamma_part,
                                    std::uintptr_t dbeta_part, long B, long C, long HW, long G, bool silu,
                                    std::uintptr_t stream) {
        check_sizes("group_norm_backward", B, C, HW, G);
        group_norm_backward_cuda(ptr<const float>(dy), ptr<const float>(x), ptr<const float>(gamma),
                                 ptr<const float>(beta), ptr<const float>(mean), ptr<const float>(rstd),
                                 ptr<float>(dx), ptr<float>(dgamma), ptr<float>(dbeta), ptr<float>(dgamma_part),
                                 ptr<float>(dbeta_part), int(B), int(C), int(HW), int(G), silu,
                                 as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
