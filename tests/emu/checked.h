// Binds an emulated launcher (the unchanged host function of a csrc/cuda/*.cu file) to Python, taking
// NumPy arrays where the launcher takes device pointers: `bind(m, "name", &launcher)` is all a kernel
// needs. Each pointer argument is copied into a fresh buffer with guard bytes on both sides, which are
// checked after the launch (a write out of bounds is reported, naming the argument); `T*` arguments are
// copied back. Under AddressSanitizer the guards are left out, so its redzones sit right at the ends
// and catch reads too. The stream argument is passed as None, and so is a null pointer.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_emu.h"

namespace pyddpm_emu_test {

namespace py = pybind11;

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t GUARD_BYTES = 0;
#else
constexpr std::size_t GUARD_BYTES = 256;
#endif
constexpr unsigned char GUARD = 0x5a;

class Checked {
public:
    explicit Checked(std::string launcher) : launcher_(std::move(launcher)) {}

    // None stands for a null pointer (an optional buffer).
    template <typename T>
    T* add(const py::object& o, bool copy_back, int position) {
        if (o.is_none()) return nullptr;
        const std::string arg = "pointer argument " + std::to_string(position) + " of " + launcher_;
        if (!py::isinstance<py::array_t<T>>(o) || !(py::reinterpret_borrow<py::array>(o).flags() & py::array::c_style))
            throw py::type_error(arg + ": expected None or a C-contiguous array of " +
                                 std::string(py::str(py::dtype::of<T>())));
        const auto a = py::reinterpret_borrow<py::array>(o);
        Buffer& b = buffers_.emplace_back();
        b.array = a;
        b.bytes = std::size_t(a.nbytes());
        b.copy_back = copy_back;
        b.position = position;
        b.element = sizeof(T);
        b.memory.reset(new unsigned char[b.bytes + 2 * GUARD_BYTES]);
        std::memset(b.memory.get(), GUARD, GUARD_BYTES);
        std::memcpy(b.memory.get() + GUARD_BYTES, a.data(), b.bytes);
        std::memset(b.memory.get() + GUARD_BYTES + b.bytes, GUARD, GUARD_BYTES);
        return reinterpret_cast<T*>(b.memory.get() + GUARD_BYTES);
    }

    // After the launch: the guards are intact, and the outputs go back to their arrays.
    void finish() {
        for (Buffer& b : buffers_) {
            for (std::size_t i = 0; i < 2 * GUARD_BYTES; ++i) {
                const std::size_t at = i < GUARD_BYTES ? i : b.bytes + i;
                if (b.memory[at] != GUARD) {
                    const long offset = long(at) - long(GUARD_BYTES);
                    throw pyddpm_emu::KernelError(
                        launcher_ + ": a kernel wrote outside pointer argument " + std::to_string(b.position) +
                        " (counting from 0; " + std::to_string(b.bytes / b.element) + " elements), at element " +
                        std::to_string(offset < 0 ? -long((-offset + b.element - 1) / b.element)
                                                  : offset / long(b.element)));
                }
            }
        }
        for (Buffer& b : buffers_)
            if (b.copy_back) std::memcpy(b.array.mutable_data(), b.memory.get() + GUARD_BYTES, b.bytes);
    }

private:
    struct Buffer {
        py::array array;
        std::unique_ptr<unsigned char[]> memory;
        std::size_t bytes = 0, element = 1;
        bool copy_back = false;
        int position = 0;
    };
    std::string launcher_;
    std::deque<Buffer> buffers_;
};

// How each parameter type of a launcher appears in Python.
template <typename P>
struct Arg {
    using type = P;  // int, long, float, double, bool: as they are
    static P get(Checked&, P v, int) { return v; }
};
template <typename T>
struct Arg<const T*> {
    using type = py::object;
    static const T* get(Checked& c, const py::object& a, int i) { return c.add<T>(a, false, i); }
};
template <typename T>
struct Arg<T*> {
    using type = py::object;
    static T* get(Checked& c, const py::object& a, int i) { return c.add<T>(a, true, i); }
};
template <>
struct Arg<cudaStream_t> {
    using type = py::none;
    static cudaStream_t get(Checked&, const py::none&, int) { return nullptr; }
};

template <typename... P, typename... A, std::size_t... I>
void invoke(const char* name, void (*f)(P...), std::index_sequence<I...>, const A&... a) {
    Checked c(name);
    std::tuple<P...> args{Arg<P>::get(c, a, int(I))...};  // braces: left to right
    std::apply(f, args);
    c.finish();
}

template <typename... P>
void bind(py::module_& m, const char* name, void (*f)(P...)) {
    m.def(name, [name, f](typename Arg<P>::type... a) { invoke(name, f, std::index_sequence_for<P...>{}, a...); });
}

}  // namespace pyddpm_emu_test
