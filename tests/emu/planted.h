// Kernels with planted bugs (planted.cu), to prove the emulation catches each kind (test_planted.py).
#pragma once

#include <cuda_runtime.h>

namespace planted {

// Per row of x (rows, n): sums[row] = (sum x, sum x^2) by two block reductions sharing one scratch
// buffer. variant 0: correct; 1: no barrier between writing and reading the scratch; 2: no barrier
// after reading it, so the second reduction overwrites what the first is still reading.
void two_sums_cuda(const float* x, float* sums, int rows, int n, int variant, cudaStream_t stream);

// y = 2 x over n elements. variant 0: correct; 1: also writes y[n]; 2: reads x[i + 1] (x[n] at the end).
void off_by_one_cuda(const float* x, float* y, int n, int variant, cudaStream_t stream);

// Threads at or past n return before a block reduction's barrier (n < block size): reported.
void return_before_barrier_cuda(const float* x, float* out, int n, cudaStream_t stream);

// A warp sum. variant 0: full mask; 1: mask 0x0000ffff; 2: full mask but only lanes < 16 call it.
void partial_mask_cuda(const float* x, float* out, int variant, cudaStream_t stream);

// Two blocks of 64 threads each copy their static and dynamic shared memory into out before writing
// it (poisoned: NaN); then each thread writes `count` floats of dynamic shared memory (64 fit).
void dynamic_shared_cuda(float* out_static, float* out_dynamic, int count, cudaStream_t stream);

// One block of 64 threads. variant 1: the two warps wait at two different __syncthreads (divergent
// barriers); variant 2: lanes 0-15 of warp 0 at a shuffle, every other thread at a barrier (deadlock).
void divergent_cuda(float* out, int variant, cudaStream_t stream);

// A trivial kernel (out[i] = i) launched with `threads` per block, e.g. 48 (not whole warps) or 2048
// (an invalid configuration, reported by check_launch as on the GPU).
void block_size_cuda(float* out, int n, int threads, cudaStream_t stream);

// Static shared memory written one element past its end (by the last thread): AddressSanitizer's case.
void static_shared_overflow_cuda(float* out, cudaStream_t stream);

}  // namespace planted
