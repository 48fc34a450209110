// The bound's per-element terms on the GPU: the discretized Gaussian log-likelihood (Eq. 13) and the
// Gaussian KL. The math is csrc/kernels/likelihood.cuh (float32, the same code the CPU build runs and
// tests/test_kernels_likelihood.py checks against the float64 oracle); the reference is
// pyddpm/likelihood.py.
//
// elementwise:  a grid-stride loop, one element per thread per step.
// bits/dim:     one block per sample: each thread sums its strided share in double, one block_sum, and
//               thread 0 writes sign * sum / (n ln 2). Deterministic (fixed order, no atomics).
#include "cuda/likelihood.h"

#include <algorithm>

#include "cuda/common.cuh"
#include "kernels/likelihood.cuh"

namespace pyddpm {
namespace {

constexpr int BLOCK = 256;
constexpr long MAX_BLOCKS = 4096;

struct LogLikelihood {
    const float *x, *means, *log_scales;
    bool per_sample;
    long n;
    __device__ float operator()(long k) const {
        const float ls = log_scales[per_sample ? k / n : k];
        return lik::log_likelihood(x[k], means[k], ls, lik::inverse_scale(ls));
    }
};

struct NormalKL {
    const float *mean1, *logvar1, *mean2, *logvar2;
    bool per_sample1, per_sample2;
    long n;
    __device__ float operator()(long k) const {
        return lik::normal_kl(mean1[k], logvar1[per_sample1 ? k / n : k], mean2[k], logvar2[per_sample2 ? k / n : k]);
    }
};

template <typename Term>
__global__ void elementwise_kernel(Term term, float* out, long total) {
    for (long k = long(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += long(gridDim.x) * blockDim.x)
        out[k] = term(k);
}

template <typename Term>
__global__ void bpd_kernel(Term term, float* bpd, long n, double scale) {
    __shared__ double scratch[32];
    const long base = long(blockIdx.x) * n;
    double s = 0.0;
    for (long i = threadIdx.x; i < n; i += blockDim.x) s += term(base + i);
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) bpd[blockIdx.x] = float(scale * s);
}

// sign: -1 turns a log-likelihood into bits/dim, +1 keeps a KL.
template <typename Term>
void launch(const Term& term, float* out, float* bpd, long B, long n, double sign, cudaStream_t stream,
            const char* name) {
    if (out) {
        const long blocks = std::min((B * n + BLOCK - 1) / BLOCK, MAX_BLOCKS);
        PYDDPM_LAUNCH(elementwise_kernel<Term>, int(blocks), BLOCK, 0, stream, term, out, B * n);
    } else {
        PYDDPM_LAUNCH(bpd_kernel<Term>, int(B), BLOCK, 0, stream, term, bpd, n, sign / (double(n) * lik::LN2));
    }
    check_launch(name);
}

}  // namespace

void discretized_gaussian_log_likelihood_cuda(const float* x, const float* means, const float* log_scales,
                                              bool log_scales_per_sample, float* out, float* bpd, long B, long n,
                                              cudaStream_t stream) {
    launch(LogLikelihood{x, means, log_scales, log_scales_per_sample, n}, out, bpd, B, n, -1.0, stream,
           "discretized_gaussian_log_likelihood");
}

void normal_kl_cuda(const float* mean1, const float* logvar1, bool logvar1_per_sample, const float* mean2,
                    const float* logvar2, bool logvar2_per_sample, float* out, float* bpd, long B, long n,
                    cudaStream_t stream) {
    launch(NormalKL{mean1, logvar1, mean2, logvar2, logvar1_per_sample, logvar2_per_sample, n}, out, bpd, B, n, 1.0,
           stream, "normal_kl");
}

}  // namespace pyddpm
