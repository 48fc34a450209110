// A whole Winograd F(2x2, 3x3) convolution (stride 1, padding 1) on the CPU, a block of tiles at a time
// (csrc/cpu/winograd_fused.cpp). All arrays contiguous; the caller has checked every shape, and that
// W <= 2 * gemm::kPanel (a tile row fits one packed panel). U = G g G^T per filter: (16, K, C).
#pragma once

namespace pyddpm {

// x (B, C, H, W), u (16, K, C), bias (K,) or null -> y (B, K, H, W) = conv3x3(x, g) + bias.
template <typename T>
void winograd_conv_cpu(const T* x, const T* u, const T* bias, T* y, long B, long C, long K, long H, long W);

// dy (B, K, H, W) -> dx (B, C, H, W), du (16, K, C) = sum over tiles of dM V^T, and db (K,) = dy's sum per
// channel (each may be null: not computed). x and u as in the forward; V is recomputed from x.
template <typename T>
void winograd_conv_backward_cpu(const T* x, const T* u, const T* dy, T* dx, T* du, T* db, long B, long C, long K,
                                long H, long W);

}  // namespace pyddpm
