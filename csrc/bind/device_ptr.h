// For the CUDA bindings: CuPy hands device pointers and streams to Python as integers; these turn them back.
// pyddpm/ops checks every array (device, dtype, contiguity, shape) before its pointer gets here.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pyddpm {

template <typename T>
T* ptr(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

}  // namespace pyddpm
