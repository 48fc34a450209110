// GroupNorm (+ SiLU) on the GPU. The math is csrc/kernels/group_norm.cuh; the reference is
// pyddpm/ops/group_norm.py.
//
// forward:   one block per (sample, group): two block reductions (mean, then sum of squared deviations:
//            never E[x^2] - E[x]^2), then every thread writes its strided share of y.
// backward:  kernel 1, one block per (sample, group): reductions of dxhat and dxhat * xhat, then dx; and
//            per channel of the group, the partial dgamma/dbeta of this sample into a (B, C) buffer.
//            kernel 2, one thread per channel: sums the B partials in order. Deterministic: no atomics.
#include "cuda/group_norm.h"

#include "cuda/common.cuh"
#include "kernels/group_norm.cuh"

namespace pyddpm {
namespace {

constexpr int BLOCK = 256;

__global__ void group_norm_forward_kernel(const float* x, const float* gamma, const float* beta, float* y,
                                          float* mean, float* rstd, int C, int HW, int G, int silu, float eps) {
    __shared__ float scratch[32];
    const int bg = blockIdx.x, g = bg % G, Cg = C / G;
    const long n = long(Cg) * HW;
    const float* xg = x + bg * n;
    float s = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) s += xg[i];
    const float m = block_sum(s, scratch) / n;
    float sq = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        const float d = xg[i] - m;
        sq += d * d;
    }
    const float r = rsqrtf(block_sum(sq, scratch) / n + eps);
    if (threadIdx.x == 0) {
        mean[bg] = m;
        rstd[bg] = r;
    }
    float* yg = y + bg * n;
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        const int ch = g * Cg + int(i / HW);
        const float a = r * gamma[ch];
        yg[i] = gn::forward(xg[i], m, a, beta[ch], silu != 0);
    }
}

__global__ void group_norm_backward_kernel(const float* dy, const float* x, const float* gamma, const float* beta,
                                           const float* mean, const float* rstd, float* dx, float* dgamma_part,
                                           float* dbeta_part, int C, int HW, int G, int silu) {
    __shared__ float scratch[32];
    const int bg = blockIdx.x, b = bg / G, g = bg % G, Cg = C / G;
    const long n = long(Cg) * HW;
    const float m = mean[bg], r = rstd[bg];
    const float* xg = x + bg * n;
    const float* dyg = dy + bg * n;
    float s1 = 0.f, s2 = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        const int ch = g * Cg + int(i / HW);
        const float xhat = (xg[i] - m) * r;
        const float dxhat = gn::dxhat(gn::dz(dyg[i], xhat, gamma[ch], beta[ch], silu != 0), gamma[ch]);
        s1 += dxhat;
        s2 += dxhat * xhat;
    }
    const float mean_dxhat = block_sum(s1, scratch) / n;
    const float mean_dxhat_xhat = block_sum(s2, scratch) / n;
    float* dxg = dx + bg * n;
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        const int ch = g * Cg + int(i / HW);
        const float xhat = (xg[i] - m) * r;
        const float dxhat = gn::dxhat(gn::dz(dyg[i], xhat, gamma[ch], beta[ch], silu != 0), gamma[ch]);
        dxg[i] = gn::dx(dxhat, xhat, r, mean_dxhat, mean_dxhat_xhat);
    }
    for (int c = 0; c < Cg; ++c) {
        const int ch = g * Cg + c;
        float sg = 0.f, sb = 0.f;
        for (int i = threadIdx.x; i < HW; i += blockDim.x) {
            const float xhat = (xg[long(c) * HW + i] - m) * r;
            const float d = gn::dz(dyg[long(c) * HW + i], xhat, gamma[ch], beta[ch], silu != 0);
            sg += d * xhat;
            sb += d;
        }
        sg = block_sum(sg, scratch);
        sb = block_sum(sb, scratch);
        if (threadIdx.x == 0) {
            dgamma_part[long(b) * C + ch] = sg;
            dbeta_part[long(b) * C + ch] = sb;
        }
    }
}

__global__ void sum_over_batch_kernel(const float* part, float* out, int B, int C) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch < C) {
        float s = 0.f;
        for (int b = 0; b < B; ++b) s += part[long(b) * C + ch];
        out[ch] = s;
    }
}

}  // namespace

void group_norm_forward_cuda(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* rstd, int B, int C, int HW, int G, bool silu, float eps, cudaStream_t stream) {
    PYDDPM_LAUNCH(group_norm_forward_kernel, B * G, BLOCK, 0, stream, x, gamma, beta, y, mean, rstd, C, HW, G,
                  int(silu), eps);
    check_launch("group_norm_forward_kernel");
}

void group_norm_backward_cuda(const float* dy, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta,
                              float* dgamma_part, float* dbeta_part, int B, int C, int HW, int G, bool silu,
                              cudaStream_t stream) {
    PYDDPM_LAUNCH(group_norm_backward_kernel, B * G, BLOCK, 0, stream, dy, x, gamma, beta, mean, rstd, dx,
                  dgamma_part, dbeta_part, C, HW, G, int(silu));
    check_launch("group_norm_backward_kernel");
    const int blocks = (C + BLOCK - 1) / BLOCK;
    PYDDPM_LAUNCH(sum_over_batch_kernel, blocks, BLOCK, 0, stream, dgamma_part, dgamma, B, C);
    check_launch("sum_over_batch_kernel (dgamma)");
    PYDDPM_LAUNCH(sum_over_batch_kernel, blocks, BLOCK, 0, stream, dbeta_part, dbeta, B, C);
    check_launch("sum_over_batch_kernel (dbeta)");
}

}  // namespace pyddpm
