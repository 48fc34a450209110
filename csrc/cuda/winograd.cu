// Winograd F(2x2, 3x3) tile transforms on the GPU, float32. The math and the layouts are
// csrc/kernels/winograd.cuh; the reference is pyddpm/ops/winograd.py. Between these kernels the convolution
// is 16 matrix multiplies, run by CuPy's cuBLAS (pyddpm/autograd/conv.py).
//
// One thread per (channel, tile), consecutive threads on consecutive tiles p, so that each of the 16 slabs
// is read or written coalesced; except winograd_input_grad, whose tiles overlap: it gathers per 2x2 quad
// of the image instead of scattering with atomics, so its sums are reproducible.
// Indices are int: the bindings refuse arrays of 2^31 elements or more.
#include "cuda/winograd.h"

#include "cuda/common.cuh"
#include "kernels/winograd.cuh"

namespace pyddpm {
namespace {

constexpr int BLOCK = 256;

// Thread i of a per-tile kernel: i = c * P + p, p = (b * TH + ty) * TW + tx. `n` = C * P is also the
// stride between the 16 slabs.
struct Tile {
    int c, b, ty, tx;
};

__device__ __forceinline__ Tile tile_of(int i, int P, int TH, int TW) {
    const int p = i % P;
    return {i / P, p / (TW * TH), p / TW % TH, p % TW};
}

// The R x R window of an H x W plane whose top-left corner is (y0, x0), row-major into w; zeros where it
// leaves the plane.
template <int R>
__device__ __forceinline__ void gather_window(const float* plane, int H, int W, int y0, int x0, float* w) {
    for (int r = 0; r < R; ++r) {
        for (int s = 0; s < R; ++s) {
            const int y = y0 + r, x = x0 + s;
            w[R * r + s] = y >= 0 && y < H && x >= 0 && x < W ? plane[y * W + x] : 0.f;
        }
    }
}

// Gather the tile (zeros for the padding and past an odd edge), transform it, write its 16 values to the
// 16 slabs.
__global__ void winograd_input_kernel(const float* x, float* v, int n, int P, int C, int H, int W, int TH, int TW) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const Tile t = tile_of(i, P, TH, TW);
        float d[16], out[16];
        // The tile starts one row and column before its outputs.
        gather_window<4>(x + (t.b * C + t.c) * H * W, H, W, 2 * t.ty - 1, 2 * t.tx - 1, d);
        winograd::input_tile(d, out);
        for (int xi = 0; xi < 16; ++xi) v[xi * n + i] = out[xi];
    }
}

// The tiles overlap (4x4 tiles at stride 2), so instead of scattering each tile with atomics, one thread
// per 2x2 "quad" of the zero-padded image (padded rows 2qy, 2qy + 1, columns 2qx, 2qx + 1) gathers the
// quarters of the <= 4 tiles that cover it: tile (qy - a, qx - e) contributes its rows 2a, 2a + 1 and
// columns 2e, 2e + 1. The adds run in the reference's order (tile rows, then columns, from the quad's own
// tile back), so the result is reproducible. Per image pixel this reads 16 values, as a thread per pixel
// reading only the taps it needs would.
__global__ void winograd_input_grad_kernel(const float* dv, float* dx, int n, int slab, int P, int C, int H, int W,
                                           int TH, int TW, int QH, int QW) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const int qx = i % QW, qy = i / QW % QH, bc = i / (QW * QH), c = bc % C, b = bc / C;
        float acc[4] = {0.f, 0.f, 0.f, 0.f};
        for (int a = 0; a < 2; ++a) {
            const int ty = qy - a;
            if (ty < 0 || ty >= TH) continue;
            for (int e = 0; e < 2; ++e) {
                const int tx = qx - e;
                if (tx < 0 || tx >= TW) continue;
                const float* in = dv + c * P + (b * TH + ty) * TW + tx;
                float dvt[16], dd[16];
                for (int xi = 0; xi < 16; ++xi) dvt[xi] = in[xi * slab];
                winograd::input_grad_tile(dvt, dd);
                for (int r = 0; r < 2; ++r)
                    for (int s = 0; s < 2; ++s) acc[2 * r + s] += dd[4 * (2 * a + r) + 2 * e + s];
            }
        }
        for (int r = 0; r < 2; ++r) {
            const int y = 2 * qy + r - 1;  // padded row 2qy + r is image row 2qy + r - 1
            for (int s = 0; s < 2; ++s) {
                const int xx = 2 * qx + s - 1;
                if (y >= 0 && y < H && xx >= 0 && xx < W) dx[(bc * H + y) * W + xx] = acc[2 * r + s];
            }
        }
    }
}

// Read the tile's 16 values (coalesced), transform, write the 2x2 outputs that lie inside the image, plus
// the bias.
__global__ void winograd_output_kernel(const float* m, const float* bias, float* y, int n, int P, int K, int H,
                                       int W, int TH, int TW) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const Tile t = tile_of(i, P, TH, TW);  // t.c is the output channel k
        float in[16], out[4];
        for (int xi = 0; xi < 16; ++xi) in[xi] = m[xi * n + i];
        winograd::output_tile(in, out);
        const float add = bias ? bias[t.c] : 0.f;
        float* plane = y + (t.b * K + t.c) * H * W;
        for (int r = 0; r < 2; ++r) {
            const int yy = 2 * t.ty + r;
            for (int s = 0; s < 2; ++s) {
                const int xx = 2 * t.tx + s;
                if (yy < H && xx < W) plane[yy * W + xx] = out[2 * r + s] + add;  // odd edges: dropped
            }
        }
    }
}

// Gather dy's 2x2 tile (zeros past an odd edge), transform it, write its 16 values to the 16 slabs.
__global__ void winograd_output_grad_kernel(const float* dy, float* dm, int n, int P, int K, int H, int W, int TH,
                                            int TW) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const Tile t = tile_of(i, P, TH, TW);
        float g[4], out[16];
        // Zeros past an odd edge: the dropped outputs have no gradient.
        gather_window<2>(dy + (t.b * K + t.c) * H * W, H, W, 2 * t.ty, 2 * t.tx, g);
        winograd::output_grad_tile(g, out);
        for (int xi = 0; xi < 16; ++xi) dm[xi * n + i] = out[xi];
    }
}

int blocks_for(long n) { return int((n + BLOCK - 1) / BLOCK); }

}  // namespace

void winograd_input_cuda(const float* x, float* v, int B, int C, int H, int W, cudaStream_t stream) {
    const int TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, n = C * P;
    PYDDPM_LAUNCH(winograd_input_kernel, blocks_for(n), BLOCK, 0, stream, x, v, n, P, C, H, W, TH, TW);
    check_launch("winograd_input_kernel");
}

void winograd_input_grad_cuda(const float* dv, float* dx, int B, int C, int H, int W, cudaStream_t stream) {
    const int TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW;
    const int QH = H / 2 + 1, QW = W / 2 + 1;  // quads holding image pixels: padded rows 1..H
    const int n = B * C * QH * QW;
    PYDDPM_LAUNCH(winograd_input_grad_kernel, blocks_for(n), BLOCK, 0, stream, dv, dx, n, C * P, P, C, H, W, TH,
                  TW, QH, QW);
    check_launch("winograd_input_grad_kernel");
}

void winograd_output_cuda(const float* m, const float* bias, float* y, int B, int K, int H, int W,
                          cudaStream_t stream) {
    const int TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, n = K * P;
    PYDDPM_LAUNCH(winograd_output_kernel, blocks_for(n), BLOCK, 0, stream, m, bias, y, n, P, K, H, W, TH, TW);
    check_launch("winograd_output_kernel");
}

void winograd_output_grad_cuda(const float* dy, float* dm, int B, int K, int H, int W, cudaStream_t stream) {
    const int TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, n = K * P;
    PYDDPM_LAUNCH(winograd_output_grad_kernel, blocks_for(n), BLOCK, 0, stream, dy, dm, n, P, K, H, W, TH, TW);
    check_launch("winograd_output_grad_kernel");
}

}  // namespace pyddpm
