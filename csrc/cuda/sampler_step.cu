// The fused step of every sampler on the GPU. The math is csrc/kernels/sampler_step.cuh; the reference is
// pyddpm/ops/sampler_step.py.
//
// Laid out as q_sample (csrc/cuda/q_sample.cu): one block per piece of one sample, the sample's five
// coefficients read once per thread (broadcast), then an elementwise stride over the piece. The flags and
// a sample's `noisy` are uniform over a block, so their branches never diverge (a null log_variance too);
// where the sample's next_from_noise is 0 neither the noise nor the log-variance is read.
#include "cuda/sampler_step.h"

#include "cuda/common.cuh"
#include "cuda/q_sample.h"
#include "kernels/sampler_step.cuh"

namespace pyddpm {
namespace {

__global__ void sampler_step_kernel(const float* model_output, const float* x, const float* noise,
                                    const float* log_variance, const double* x0_from_x, const double* x0_from_out,
                                    const double* next_from_x0, const double* next_from_x,
                                    const double* next_from_noise, float* x_next, float* pred_x0, long n,
                                    long pieces, int clip) {
    const long b = blockIdx.x / pieces;
    const long begin = (blockIdx.x % pieces) * STEP_BLOCK_ELEMS;
    const long end = begin + STEP_BLOCK_ELEMS < n ? begin + STEP_BLOCK_ELEMS : n;
    ss::Coefs<float> c = ss::coefs<float>(x0_from_x, x0_from_out, next_from_x0, next_from_x, next_from_noise, b);
    if (c.noisy && noise == nullptr) c = ss::Coefs<float>{NAN, NAN, NAN, NAN, NAN, false};  // a caller's error
    const long o = b * n;
    for (long i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float x0 = ss::pred_x0(model_output[o + i], x[o + i], c, clip != 0);
        if (pred_x0) pred_x0[o + i] = x0;
        const float z = c.noisy ? noise[o + i] : 0.f;
        x_next[o + i] = log_variance ? ss::x_next(x0, x[o + i], z, c.noisy ? log_variance[o + i] : 0.f, c)
                                     : ss::x_next(x0, x[o + i], z, c);
    }
}

}  // namespace

void sampler_step_cuda(const float* model_output, const float* x, const float* noise, const float* log_variance,
                       const double* x0_from_x, const double* x0_from_out, const double* next_from_x0,
                       const double* next_from_x, const double* next_from_noise, float* x_next, float* pred_x0,
                       long B, long n, bool clip, cudaStream_t stream) {
    const long pieces = (n + STEP_BLOCK_ELEMS - 1) / STEP_BLOCK_ELEMS;
    PYDDPM_LAUNCH(sampler_step_kernel, unsigned(B * pieces), STEP_BLOCK, 0, stream, model_output, x, noise,
                  log_variance, x0_from_x, x0_from_out, next_from_x0, next_from_x, next_from_noise, x_next, pred_x0,
                  n, pieces, int(clip));
    check_launch("sampler_step_kernel");
}

}  // namespace pyddpm
