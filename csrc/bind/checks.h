// Argument checks for the CPU extension's entry points: every array is checked for dtype, C-contiguity,
// rank and shape before any pointer is touched, and a failure raises a Python exception naming the
// argument (TypeError for dtype/contiguity, ValueError for shapes). Nothing is silently converted:
// a float64 array passed where float32 is expected is an error, not a copy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace pyddpm {
namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string shape_str(const std::vector<py::ssize_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + (shape[i] < 0 ? std::string("*") : std::to_string(shape[i]));
    return s + (shape.size() == 1 ? ",)" : ")");
}

// Checks `a` (called `name` in messages) against `dtype` and `shape`; -1 in `shape` matches any size.
// c_contiguous = false accepts any strides that are whole elements (a kernel reading through strides).
inline void check_array(const char* fn, const char* name, const py::array& a, const py::dtype& dtype,
                        const std::vector<py::ssize_t>& shape, bool c_contiguous = true) {
    if (!a.dtype().is(dtype))
        throw py::type_error(std::string(fn) + ": " + name + " must be " + std::string(py::str(dtype)) +
                             ", got " + std::string(py::str(a.dtype())));
    for (py::ssize_t i = 0; !c_contiguous && i < a.ndim(); ++i)
        if (a.strides(i) % a.itemsize())
            throw py::type_error(std::string(fn) + ": " + name + "'s strides must be whole elements");
    if (c_contiguous && !(a.flags() & py::array::c_style))
        throw py::type_error(std::string(fn) + ": " + name + " must be C-contiguous (use np.ascontiguousarray)");
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || a.shape(i) == shape[i];
    if (!ok)
        throw py::value_error(std::string(fn) + ": " + name + " must have shape " + shape_str(shape) + ", got " +
                              shape_str(a));
}

inline void check_positive(const char* fn, const char* what, py::ssize_t value) {
    if (value <= 0)
        throw py::value_error(std::string(fn) + ": " + what + " must be positive, got " + std::to_string(value));
}

// The floating dtype an entry point computes in, taken from its first array: float32 or float64.
inline bool is_float64(const char* fn, const char* name, const py::array& a) {
    if (a.dtype().is(py::dtype::of<float>())) return false;
    if (a.dtype().is(py::dtype::of<double>())) return true;
    throw py::type_error(std::string(fn) + ": " + name + " must be float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

}  // namespace pyddpm
