// A CPU emulation of the CUDA execution model, so that the unchanged csrc/cuda/*.cu sources run under g++
// in CI (docs/design.md, "Kernels: written once, run three ways"; how it runs and what it reports:
// csrc/emu/README.md). Test-only: nothing in the installed package includes it.
//
// Every CUDA thread of a block is its own std::thread (ThreadSanitizer understands them; fibers it does
// not), so __syncthreads and warp shuffles are real rendezvous; the threads of a block take turns in a
// deterministic order (emu.cpp) and the blocks of a grid run one after another. A broken rule is reported
// as pyddpm_emu::KernelError naming the kernel, the block and the thread.
//
// Compile a .cu file with: g++ -x c++ -std=c++17 -include csrc/emu/cuda_emu.h -Icsrc/emu -Icsrc ...
// (csrc/emu/cuda_runtime.h stands in for CUDA's) -fdata-sections, and link with -Wl,-T,csrc/emu/shared.ld,
// which gathers every function-local static of the .cu objects (in device code, only __shared__ variables)
// between two symbols; the launch poisons that range with 0xff bytes (NaN as float and double) before
// every block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// The device branches of csrc/kernels/*.cuh are the ones that run, as on the GPU. PYDDPM_HD stays
// `inline` because __CUDACC__ is not defined.
#ifndef __CUDA_ARCH__
#define __CUDA_ARCH__ 800
#endif
#define PYDDPM_EMULATION 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __constant__
// Static (a single object, shared by the threads of the block because blocks run one at a time) and
// gathered by shared.ld into the range that is poisoned before each block.
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

typedef struct CUstream_st* cudaStream_t;

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidConfiguration = 9,
};

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);

// Device math that glibc lacks. Everything else the kernels call (expf, logf, sqrtf, fmaf, ...) is the
// host libm's.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
// Products rounded on their own (the emulation build is compiled with -ffp-contract=off, so a * b is).
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dmul_rn(double a, double b) { return a * b; }
template <typename T>
inline T __ldg(const T* p) { return *p; }

namespace pyddpm_emu {

// A kernel broke a rule or faulted: the message names the kernel, the block and the thread.
struct KernelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The calling emulated thread's position: linear thread index in the block.
int linear_thread();

// Barrier and warp rendezvous (emu.cpp). `what` names the operation, file/line where it was called.
void syncthreads(const char* file, int line);
// Each lane of `mask` deposits `size` bytes; every lane gets all 32 lanes' values in `all`.
void warp_exchange(const char* what, unsigned mask, const void* value, std::size_t size, void* all,
                   const char* file, int line);

// Dynamic shared memory of the running block (the launch's `shmem` bytes, poisoned, guarded after).
void* dynamic_shared_base();

template <typename T>
T* dynamic_shared() {
    return static_cast<T*>(dynamic_shared_base());
}

// Names of the kernels launched since the last clear (tests check that each covered kernel really ran).
std::vector<std::string> launched_kernels();
void clear_launched_kernels();

// Which runnable thread gets the turn: the lowest-numbered (default) or the highest.
void set_order(bool highest);

// Runs `body` for every thread of every block of the grid (emu.cpp).
void run_grid(const char* kernel, const char* file, int line, dim3 grid, dim3 block, std::size_t shmem,
              const std::function<void()>& body);

// The launch: arguments converted to the kernel's parameter types once, as a real launch does, then each
// thread calls the kernel on its own copy.
template <typename... P, typename... A>
void launch(const char* kernel, const char* file, int line, dim3 grid, dim3 block, std::size_t shmem,
            cudaStream_t, void (*k)(P...), A&&... args) {
    const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    run_grid(kernel, file, line, grid, block, shmem, [&] { std::apply(k, params); });
}

template <typename T>
T shuffle(const char* what, unsigned mask, T v, int src_of_lane(int, int, int), int arg, int width,
          const char* file, int line) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 16, "shuffle of an unsupported type");
    T all[32];
    warp_exchange(what, mask, &v, sizeof(T), all, file, line);
    const int lane = linear_thread() % 32;
    const int src = src_of_lane(lane, arg, width);
    return all[src];
}

inline int src_xor(int lane, int m, int w) {
    const int s = lane ^ m;
    return s >= (lane / w + 1) * w ? lane : s;  // a lane of a later segment: own value (CUDA's rule)
}
inline int src_down(int lane, int d, int w) { return (lane % w) + d < w ? lane + d : lane; }
inline int src_up(int lane, int d, int w) { return (lane % w) >= d ? lane - d : lane; }
inline int src_idx(int lane, int s, int w) { return (lane / w) * w + ((s % w) + w) % w; }

inline unsigned vote(const char* what, unsigned mask, int pred, const char* file, int line) {
    int all[32];
    const int p = pred != 0;
    warp_exchange(what, mask, &p, sizeof p, all, file, line);
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l)
        if ((mask >> l & 1u) && all[l]) ballot |= 1u << l;
    return ballot;
}

template <typename T>
T atomic_add(T* address, T v) {
    if constexpr (std::is_integral<T>::value) {
        return __atomic_fetch_add(address, v, __ATOMIC_RELAXED);
    } else {
        T old = __atomic_load_n(address, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(address, &old, T(old + v), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        return old;
    }
}

}  // namespace pyddpm_emu

// Floating-point atomics go through the integer representation, because __atomic_* on float is a
// GCC extension only for loads and stores.
inline float atomicAdd(float* address, float v) {
    static_assert(sizeof(float) == sizeof(std::uint32_t), "float is 32 bits");
    std::uint32_t* bits = reinterpret_cast<std::uint32_t*>(address);
    std::uint32_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), next;
    do {
        float f;
        std::memcpy(&f, &old, sizeof f);
        f += v;
        std::memcpy(&next, &f, sizeof f);
    } while (!__atomic_compare_exchange_n(bits, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    float r;
    std::memcpy(&r, &old, sizeof r);
    return r;
}
inline double atomicAdd(double* address, double v) {
    std::uint64_t* bits = reinterpret_cast<std::uint64_t*>(address);
    std::uint64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), next;
    do {
        double f;
        std::memcpy(&f, &old, sizeof f);
        f += v;
        std::memcpy(&next, &f, sizeof f);
    } while (!__atomic_compare_exchange_n(bits, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    double r;
    std::memcpy(&r, &old, sizeof r);
    return r;
}
inline int atomicAdd(int* address, int v) { return pyddpm_emu::atomic_add(address, v); }
inline unsigned atomicAdd(unsigned* address, unsigned v) { return pyddpm_emu::atomic_add(address, v); }
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long v) {
    return pyddpm_emu::atomic_add(address, v);
}

// Barriers and warp operations record where they were called, so that divergence can be reported.
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    pyddpm_emu::syncthreads(file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    pyddpm_emu::vote("__syncwarp", mask, 0, file, line);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, const char* file = __builtin_FILE(),
                  int line = __builtin_LINE()) {
    return pyddpm_emu::shuffle("__shfl_xor_sync", mask, v, pyddpm_emu::src_xor, lane_mask, width, file, line);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                   int line = __builtin_LINE()) {
    return pyddpm_emu::shuffle("__shfl_down_sync", mask, v, pyddpm_emu::src_down, int(delta), width, file, line);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                 int line = __builtin_LINE()) {
    return pyddpm_emu::shuffle("__shfl_up_sync", mask, v, pyddpm_emu::src_up, int(delta), width, file, line);
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) {
    return pyddpm_emu::shuffle("__shfl_sync", mask, v, pyddpm_emu::src_idx, src_lane, width, file, line);
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return pyddpm_emu::vote("__all_sync", mask, pred, file, line) == mask;
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return pyddpm_emu::vote("__any_sync", mask, pred, file, line) != 0;
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
    return pyddpm_emu::vote("__ballot_sync", mask, pred, file, line);
}

// The launch macro of csrc/cuda/common.cuh (which defines it only if it is not defined yet).
#define PYDDPM_LAUNCH(kernel, grid, block, shmem, stream, ...) \
    ::pyddpm_emu::launch(#kernel, __FILE__, __LINE__, (grid), (block), (shmem), (stream), kernel, __VA_ARGS__)

// Dynamic shared memory: `extern __shared__ T name[]` cannot be spelled portably here, so kernels write
// PYDDPM_DYNAMIC_SHARED(T, name) (csrc/cuda/common.cuh).
#define PYDDPM_DYNAMIC_SHARED(T, name) T* name = ::pyddpm_emu::dynamic_shared<T>()
