// Python bindings of the Winograd tile-transform launchers. Pointers are CuPy's data.ptr (bias: 0 for none);
// shapes were checked by pyddpm/ops/winograd.py, and the sizes are checked again here for what the int
// indexing of the kernels cannot hold.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/winograd.h"

namespace pyddpm {
namespace {

// Positive sizes, and the transformed tiles (16, C, P) and the image (B, C, H, W) under 2^31 elements.
void check_geometry(const char* fn, const char* channels, long B, long C, long H, long W) {
    check_positive(fn, "B", B);
    check_positive(fn, channels, C);
    check_positive(fn, "H", H);
    check_positive(fn, "W", W);
    const long P = B * ((H + 1) / 2) * ((W + 1) / 2);  // tiles, as winograd::tiles counts them
    if (std::max(16 * C * P, B * C * H * W) > INT_MAX)
        throw py::value_error(std::string(fn) + ": arrays of 2^31 elements or more");
}

void bind(py::module_& m) {
    m.def("winograd_input", [](std::uintptr_t x, std::uintptr_t v, long B, long C, long H, long W,
                               std::uintptr_t stream) {
        check_geometry("winograd_input", "C", B, C, H, W);
        winograd_input_cuda(ptr<const float>(x), ptr<float>(v), int(B), int(C), int(H), int(W), as_stream(stream));
    });
    m.def("winograd_input_grad", [](std::uintptr_t dv, std::uintptr_t dx, long B, long C, long H, long W,
                                    std::uintptr_t stream) {
        check_geometry("winograd_input_grad", "C", B, C, H, W);
        winograd_input_grad_cuda(ptr<const float>(dv), ptr<float>(dx), int(B), int(C), int(H), int(W),
                                 as_stream(stream));
    });
    m.def("winograd_output", [](std::uintptr_t mm, std::uintptr_t bias, std::uintptr_t y, long B, long K, long H,
                                long W, std::uintptr_t stream) {
        check_geometry("winograd_output", "K", B, K, H, W);
        winograd_output_cuda(ptr<const float>(mm), ptr<const float>(bias), ptr<float>(y), int(B), int(K), int(H),
                             int(W), as_stream(stream));
    });
    m.def("winograd_output_grad", [](std::uintptr_t dy, std::uintptr_t dm, long B, long K, long H, long W,
                                     std::uintptr_t stream) {
        check_geometry("winograd_output_grad", "K", B, K, H, W);
        winograd_output_grad_cuda(ptr<const float>(dy), ptr<float>(dm), int(B), int(K), int(H), int(W),
                                  as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
