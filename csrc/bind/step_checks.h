// Argument checks shared by the elementwise steps of the diffusion: data arrays of any rank >= 1 (q_sample,
// sampler_step), and for q_sample, indexed by a per-sample timestep, the int64 t and the float64 coefficient
// tables it indexes. Every value of t is checked against the tables' length before any table is read.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "bind/checks.h"

namespace pyddpm {

// Checks a (B, ...) data array (dtype, contiguity, non-empty) and returns its shape.
inline std::vector<py::ssize_t> check_data(const char* fn, const char* name, const py::array& a,
                                           const py::dtype& dtype) {
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    if (a.ndim() < 1)
        throw py::value_error(std::string(fn) + ": " + name + " must have shape (B, ...), got a scalar");
    check_array(fn, name, a, dtype, shape);
    check_positive(fn, (std::string(name) + ".size").c_str(), a.size());
    return shape;
}

// Checks the tables (float64, (T,), one T >= 1) and t (int64, (B,), every value in 0..T-1); returns t's data.
inline const std::int64_t* check_timesteps(const char* fn, const py::array& t, py::ssize_t B,
                                           std::initializer_list<std::pair<const char*, const py::array*>> tables) {
    const py::ssize_t T = tables.begin()->second->ndim() == 1 ? tables.begin()->second->shape(0) : -1;
    for (const auto& [name, table] : tables) {
        check_array(fn, name, *table, py::dtype::of<double>(), {T});
        check_positive(fn, (std::string(name) + ".size").c_str(), T);
    }
    check_array(fn, "t", t, py::dtype::of<std::int64_t>(), {B});
    const auto* tp = static_cast<const std::int64_t*>(t.data());
    for (py::ssize_t b = 0; b < B; ++b)
        if (tp[b] < 0 || tp[b] >= T)
            throw py::value_error(std::string(fn) + ": t[" + std::to_string(b) + "] = " + std::to_string(tp[b]) +
                                  " is outside 0.." + std::to_string(T - 1));
    return tp;
}

}  // namespace pyddpm
