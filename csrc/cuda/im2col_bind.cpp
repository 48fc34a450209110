// Python bindings of the im2col / col2im launchers. Pointers are CuPy's data.ptr; shapes were checked by
// pyddpm/ops/im2col.py, and the geometry is checked again here for what would index out of bounds.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/im2col.h"

namespace pyddpm {
namespace {

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Positive sizes, a window that fits the padded image, and element counts the int indexing can hold.
void check_geometry(const char* fn, long B, long C, long H, long W, long k, long stride, long padding) {
    check_positive(fn, "B", B);
    check_positive(fn, "C", C);
    check_positive(fn, "H", H);
    check_positive(fn, "W", W);
    check_positive(fn, "k", k);
    check_positive(fn, "stride", stride);
    if (padding < 0) throw py::value_error(std::string(fn) + ": padding must be >= 0");
    if (H + 2 * padding < k || W + 2 * padding < k)
        throw py::value_error(std::string(fn) + ": the image is too small for the kernel");
    const long Ho = (H + 2 * padding - k) / stride + 1, Wo = (W + 2 * padding - k) / stride + 1;
    const long largest = std::max(B * C * k * k * std::max(Ho * Wo, H * (W + 2 * padding)), B * C * H * W);
    if (largest > INT_MAX) throw py::value_error(std::string(fn) + ": arrays of 2^31 elements or more");
}

void check_same(const char* fn, long k, long padding) {
    if (2 * padding != k - 1)
        throw py::value_error(std::string(fn) + ": the row layout needs 'same' padding (2*padding == k - 1)");
}

void bind(py::module_& m) {
    m.def("im2col", [](std::uintptr_t x, std::uintptr_t cols, long B, long C, long H, long W, long k, long stride,
                       long padding, std::uintptr_t stream) {
        check_geometry("im2col", B, C, H, W, k, stride, padding);
        im2col_cuda(ptr<const float>(x), ptr<float>(cols), int(B), int(C), int(H), int(W), int(k), int(stride),
                    int(padding), as_stream(stream));
    });
    m.def("col2im", [](std::uintptr_t cols, std::uintptr_t x, long B, long C, long H, long W, long k, long stride,
                       long padding, std::uintptr_t stream) {
        check_geometry("col2im", B, C, H, W, k, stride, padding);
        col2im_cuda(ptr<const float>(cols), ptr<float>(x), int(B), int(C), int(H), int(W), int(k), int(stride),
                    int(padding), as_stream(stream));
    });
    m.def("im2col_rows", [](std::uintptr_t x, std::uintptr_t cols, long B, long C, long H, long W, long k,
                            long padding, std::uintptr_t stream) {
        check_same("im2col_rows", k, padding);
        check_geometry("im2col_rows", B, C, H, W, k, 1, padding);
        im2col_rows_cuda(ptr<const float>(x), ptr<float>(cols), int(B), int(C), int(H), int(W), int(k),
                         int(padding), as_stream(stream));
    });
    m.def("col2im_rows", [](std::uintptr_t cols, std::uintptr_t x, long B, long C, long H, long W, long k,
                            long padding, std::uintptr_t stream) {
        check_same("col2im_rows", k, padding);
        check_geometry("col2im_rows", B, C, H, W, k, 1, padding);
        col2im_rows_cuda(ptr<const float>(cols), ptr<float>(x), int(B), int(C), int(H), int(W), int(k),
                         int(padding), as_stream(stream));
    });
    m.def("rows_to_nchw", [](std::uintptr_t y, std::uintptr_t out, long B, long C, long H, long W, long padding,
                             std::uintptr_t stream) {
        check_geometry("rows_to_nchw", B, C, H, W, 1, 1, padding);
        rows_to_nchw_cuda(ptr<const float>(y), ptr<float>(out), int(B), int(C), int(H), int(W), int(padding),
                          as_stream(stream));
    });
    m.def("nchw_to_rows", [](std::uintptr_t g, std::uintptr_t out, long B, long C, long H, long W, long padding,
                             std::uintptr_t stream) {
        check_geometry("nchw_to_rows", B, C, H, W, 1, 1, padding);
        nchw_to_rows_cuda(ptr<const float>(g), ptr<float>(out), int(B), int(C), int(H), int(W), int(padding),
                          as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
