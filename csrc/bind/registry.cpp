// The list behind registry.h, compiled into each extension on its own (pyddpm._cpu and pyddpm._cuda each
// hold one list: pybind11 builds them with hidden symbols, so the two never share it).
#include "bind/registry.h"

namespace pyddpm {

std::vector<RegisterFn>& registry() {
    static std::vector<RegisterFn> fns;  // a function-local static: filled by Register objects in any order
    return fns;
}

}  // namespace pyddpm
