// What every CUDA kernel file shares: the launch macro, error checks, and block-wide reductions.
//
// Rules that keep the kernels portable to the CPU emulation used in CI (csrc/emu/README.md, "Rules for
// kernels"): block sizes are multiples of 32; no return before a barrier (threads carry an `active` flag
// instead); warp operations only through *_sync with the full mask; no float atomics where a result must
// be reproducible.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/common.cuh"

// Every launch goes through this macro, so the emulation build can replace <<<...>>> in one place.
#ifndef PYDDPM_LAUNCH
#define PYDDPM_LAUNCH(kernel, grid, block, shmem, stream, ...) kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#endif

// Dynamic shared memory (the launch's `shmem` bytes), spelled so that the emulation can define it too.
#ifndef PYDDPM_DYNAMIC_SHARED
#define PYDDPM_DYNAMIC_SHARED(T, name)                                          \
    extern __shared__ __align__(16) unsigned char pyddpm_dynamic_shared_[]; \
    T* name = reinterpret_cast<T*>(pyddpm_dynamic_shared_)
#endif

namespace pyddpm {

constexpr unsigned FULL_MASK = 0xffffffffu;

inline void check_cuda(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

// Sum of v over the block; every thread gets the result. `scratch` holds 32 values of shared memory
// and may be reused right after the call returns (the trailing barrier protects it).
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T total = lane < warps ? scratch[lane] : T(0);
    total = warp_sum(total);
    __syncthreads();
    return total;
}

}  // namespace pyddpm
