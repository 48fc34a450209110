// Winograd F(2x2, 3x3) tile transforms on the GPU, float32 (the math: csrc/kernels/winograd.cuh). Device
// pointers to contiguous arrays, layouts as in csrc/cpu/winograd.h: images (B, C, H, W), transformed tiles
// (16, C, P) with P = B * ceil(H / 2) * ceil(W / 2).
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

// x (B, C, H, W) -> v (16, C, P): B^T d B of every 4x4 input tile (zero padding of 1 around the image).
void winograd_input_cuda(const float* x, float* v, int B, int C, int H, int W, cudaStream_t stream);

// dv (16, C, P) -> dx (B, C, H, W): the adjoint of winograd_input (B dv B^T, tiles summed where they overlap).
void winograd_input_grad_cuda(const float* dv, float* dx, int B, int C, int H, int W, cudaStream_t stream);

// m (16, K, P) -> y (B, K, H, W): A^T m A of every tile, plus bias[k] (bias may be null).
void winograd_output_cuda(const float* m, const float* bias, float* y, int B, int K, int H, int W,
                          cudaStream_t stream);

// dy (B, K, H, W) -> dm (16, K, P): the adjoint of winograd_output (A dy A^T).
void winograd_output_grad_cuda(const float* dy, float* dm, int B, int K, int H, int W, cudaStream_t stream);

}  // namespace pyddpm
