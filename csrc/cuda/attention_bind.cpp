// Python bindings of the attention row-kernel launchers. Pointers are CuPy's data.ptr; shapes and aliasing
// were checked by pyddpm/ops/attention.py, and the sizes are checked again here for what would overflow.
#include <climits>
#include <cstdint>

#include "bind/checks.h"
#include "bind/device_ptr.h"
#include "bind/registry.h"
#include "cuda/attention.h"

namespace pyddpm {
namespace {

void check_sizes(const char* fn, long rows, long n) {
    check_positive(fn, "rows", rows);
    check_positive(fn, "n", n);
    if (n > INT_MAX || rows / ATTENTION_ROWS_PER_BLOCK >= INT_MAX)
        throw py::value_error(std::string(fn) + ": " + std::to_string(rows) + " rows of " + std::to_string(n) +
                              " values are more than one launch takes");
}

void bind(py::module_& m) {
    m.def("softmax_rows", [](std::uintptr_t s, std::uintptr_t p, long rows, long n, float scale,
                             std::uintptr_t stream) {
        check_sizes("softmax_rows", rows, n);
        softmax_rows_cuda(ptr<const float>(s), ptr<float>(p), rows, int(n), scale,
                          as_stream(stream));
    });
    m.def("softmax_backward_rows", [](std::uintptr_t p, std::uintptr_t dp, std::uintptr_t ds, long rows, long n,
                                      float scale, std::uintptr_t stream) {
        check_sizes("softmax_backward_rows", rows, n);
        softmax_backward_rows_cuda(ptr<const float>(p), ptr<const float>(dp), ptr<float>(ds), rows, int(n), scale,
                                   as_stream(stream));
    });
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
