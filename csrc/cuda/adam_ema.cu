// Fused Adam step + EMA on the GPU. The math is csrc/kernels/adam_ema.cuh; the reference is
// pyddpm/ops/adam_ema.py.
//
// One block per ADAM_BLOCK_ELEMS-element piece of the tensor; each thread strides over its piece by the
// block size. Elementwise, no shared memory, no barrier: 5 loads and 4 stores of float per parameter.
#include "cuda/adam_ema.h"

#include "cuda/common.cuh"
#include "kernels/adam_ema.cuh"

namespace pyddpm {
namespace {

__global__ void adam_ema_kernel(float* p, const float* g, float* m, float* v, float* ema, long n,
                                adam::Scalars<float> s) {
    const long begin = long(blockIdx.x) * ADAM_BLOCK_ELEMS;
    const long end = begin + ADAM_BLOCK_ELEMS < n ? begin + ADAM_BLOCK_ELEMS : n;
    for (long i = begin + threadIdx.x; i < end; i += blockDim.x) adam::update(p[i], g[i], m[i], v[i], ema[i], s);
}

}  // namespace

void adam_ema_cuda(float* p, const float* g, float* m, float* v, float* ema, long n, double step_size,
                   double eps_hat, double beta1, double beta2, double ema_decay, cudaStream_t stream) {
    const long blocks = (n + ADAM_BLOCK_ELEMS - 1) / ADAM_BLOCK_ELEMS;
    const adam::Scalars<float> s = adam::scalars<float>(step_size, eps_hat, beta1, beta2, ema_decay);
    PYDDPM_LAUNCH(adam_ema_kernel, unsigned(blocks), ADAM_BLOCK, 0, stream, p, g, m, v, ema, n, s);
    check_launch("adam_ema_kernel");
}

}  // namespace pyddpm
