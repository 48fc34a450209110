// Winograd F(2x2, 3x3) tile transforms on the CPU (the math: csrc/kernels/winograd.cuh). All arrays
// contiguous; the caller has checked every shape. Images (B, C, H, W); transformed tiles (16, C, P) with
// P = B * TH * TW, TH = ceil(H / 2), TW = ceil(W / 2).
#pragma once

namespace pyddpm {

// x (B, C, H, W) -> v (16, C, P): B^T d B of every 4x4 input tile (zero padding of 1 around the image).
template <typename T>
void winograd_input_cpu(const T* x, T* v, long B, long C, long H, long W);

// dv (16, C, P) -> dx (B, C, H, W): the adjoint of winograd_input (B dv B^T, tiles summed where they overlap).
template <typename T>
void winograd_input_grad_cpu(const T* dv, T* dx, long B, long C, long H, long W);

// m (16, K, P) -> y (B, K, H, W): A^T m A of every tile, plus bias[k] (bias may be null).
template <typename T>
void winograd_output_cpu(const T* m, const T* bias, T* y, long B, long K, long H, long W);

// dy (B, K, H, W) -> dm (16, K, P): the adjoint of winograd_output (A dy A^T; the bias gradient is dy's sum).
template <typename T>
void winograd_output_grad_cpu(const T* dy, T* dm, long B, long K, long H, long W);

}  // namespace pyddpm
