// Each kernel registers its own Python bindings with a static Register object (in csrc/cpu/<name>.cpp and
// csrc/cuda/<name>_bind.cpp), so adding a kernel touches no shared file: each extension's module.cpp
// runs every registered function when Python imports it.
#pragma once

#include <pybind11/pybind11.h>

#include <vector>

namespace pyddpm {

using RegisterFn = void (*)(pybind11::module_&);
std::vector<RegisterFn>& registry();

struct Register {
    explicit Register(RegisterFn fn) { registry().push_back(fn); }
};

}  // namespace pyddpm
