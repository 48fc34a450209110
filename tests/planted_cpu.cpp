// A planted bug, compiled only into the sanitizer build of pyddpm._cpu (tests/test_cpu_sanitizers.py): a
// reduction whose loop runs one element too far, reading x[n] just past a NumPy array's buffer. The result
// is usually plausible (whatever float follows the array), so only AddressSanitizer pinpoints it; that it
// does proves the sanitizer build instruments the extension's reads of NumPy memory.
#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

float sum_one_past_the_end(const float* x, long n) {
    float s = 0.0f;
    for (long i = 0; i <= n; ++i) s += x[i];
    return s;
}

void bind(py::module_& m) {
    m.def("planted_sum_one_past_the_end", [](py::array x) {
        check_array("planted_sum_one_past_the_end", "x", x, py::dtype::of<float>(), {-1});
        return sum_one_past_the_end(static_cast<const float*>(x.data()), static_cast<long>(x.size()));
    }, py::arg("x"), "sum of x (n,) float32 and of the float after it: the planted out-of-bounds read");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
