// Fused Adam step + EMA CUDA launcher, float32. Device pointers; p, g, m, v, ema (n,) contiguous (any
// tensor, flattened), all updated in place but g. The caller (pyddpm/ops/adam_ema.py) has checked them.
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

void adam_ema_cuda(float* p, const float* g, float* m, float* v, float* ema, long n, double step_size,
                   double eps_hat, double beta1, double beta2, double ema_decay, cudaStream_t stream);

// Each block covers this many consecutive elements (ADAM_BLOCK threads, 4 elements each, strided by the
// block size so that each of a warp's loads is one coalesced transaction).
constexpr int ADAM_BLOCK = 256;
constexpr long ADAM_BLOCK_ELEMS = 4L * ADAM_BLOCK;

}  // namespace pyddpm
