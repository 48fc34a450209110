// A small single-threaded matrix product for the fused CPU attention (csrc/cpu/attention.cpp): C = A B,
// with A read through any strides (so A may be a transposed view: P^T, dS^T) and B packed first.
//
// Why not BLAS: attention multiplies many small (256 x 256 x d) matrices. Calling sgemm once per matrix
// pays its threading and packing per call and leaves the softmax in between to a separate pass over
// memory; a kernel that owns one (batch, head) matrix on one thread keeps all of it in that core's L2.
//
// Packed B: column panels of kPanel = 64 columns, each panel k rows of its width contiguous; the last
// panel's width is rounded up to a multiple of kVec = 16 and the extra columns are zeros, so the tile
// below always loads whole vectors inside the buffer and stores only the real columns (a masked store).
// Panel j0 (a multiple of kPanel) starts at j0 * k.
#pragma once

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pyddpm {
namespace gemm {

constexpr long kPanel = 64;  // columns of B per panel: four 16-float AVX-512 vectors
constexpr long kRows = 6;    // rows of A per tile
constexpr long kVec = 16;    // a panel's width is a multiple of this

inline long round_up(long x, long m) { return (x + m - 1) / m * m; }

// Elements of a packed k x n B.
inline long packed_size(long k, long n) { return k * round_up(n, kVec); }

// Packs B (k x n, element (p, j) at b[p * rs + j * cs]) into dst (packed_size(k, n) elements).
template <typename T>
void pack_b(long k, long n, const T* b, long rs, long cs, T* dst) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), wp = round_up(w, kVec);
        T* panel = dst + j0 * k;
        for (long p = 0; p < k; ++p) {
            const T* src = b + p * rs + j0 * cs;
            T* row = panel + p * wp;
            for (long j = 0; j < w; ++j) row[j] = src[j * cs];
            for (long j = w; j < wp; ++j) row[j] = T(0);
        }
    }
}

// The plain tile: rows [0, mr) of C, one panel of width w (packed width wp). Any T, any machine.
template <typename T>
void tile_plain(long mr, long w, long wp, long k, const T* a, long rsa, long csa, const T* panel, T* c, long ldc) {
    for (long r = 0; r < mr; ++r) {
        T acc[kPanel] = {};
        for (long p = 0; p < k; ++p) {
            const T ar = a[r * rsa + p * csa];
            const T* br = panel + p * wp;
            for (long j = 0; j < wp; ++j) acc[j] += ar * br[j];
        }
        for (long j = 0; j < w; ++j) c[r * ldc + j] = acc[j];
    }
}

#if defined(__AVX512F__)
// The AVX-512 tile: MR rows x NV vectors of 16 columns (at most 6 x 64). Its MR * NV <= 24 accumulators,
// NV vectors of B and one broadcast of A fit the 32 zmm registers. Each step over p loads NV vectors of B
// and broadcasts MR values of A, then issues MR * NV independent FMAs: 24 FMAs for 10 loads at full size,
// enough to keep both FMA ports busy (4-cycle latency, 2 per cycle: at least 8 chains needed).
// `last` masks the real columns of the last vector.
template <int MR, int NV>
void tile_avx512(long k, const float* a, long rsa, long csa, const float* panel, float* c, long ldc,
                 __mmask16 last) {
    constexpr long wp = NV * kVec;
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
    for (long p = 0; p < k; ++p) {
        __m512 bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(panel + p * wp + v * kVec);
        const float* ap = a + p * csa;
        for (int r = 0; r < MR; ++r) {
            const __m512 ar = _mm512_set1_ps(ap[r * rsa]);
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; ++r) {
        for (int v = 0; v + 1 < NV; ++v) _mm512_storeu_ps(c + r * ldc + v * kVec, acc[r][v]);
        _mm512_mask_storeu_ps(c + r * ldc + (NV - 1) * kVec, last, acc[r][NV - 1]);
    }
}

using TileFn = void (*)(long, const float*, long, long, const float*, float*, long, __mmask16);

template <int MR>
constexpr TileFn tile_for(long nv) {
    return nv == 1 ? tile_avx512<MR, 1> : nv == 2 ? tile_avx512<MR, 2> : nv == 3 ? tile_avx512<MR, 3>
                                                                                : tile_avx512<MR, 4>;
}

inline TileFn tile_for(long mr, long nv) {
    switch (mr) {
        case 1: return tile_for<1>(nv);
        case 2: return tile_for<2>(nv);
        case 3: return tile_for<3>(nv);
        case 4: return tile_for<4>(nv);
        case 5: return tile_for<5>(nv);
        default: return tile_for<6>(nv);
    }
}
#endif

// C (m x n, row stride ldc, columns contiguous) = A (m x k, element (i, p) at a[i * rsa + p * csa]) times
// the packed B (k x n, from pack_b). Each panel of B (k x 64 floats: 32 KB at k = 128) is swept by every
// row tile before the next, so it stays in L1 while A streams from L2.
template <typename T>
void matmul(long m, long n, long k, const T* a, long rsa, long csa, const T* packed, T* c, long ldc) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), wp = round_up(w, kVec);
        const T* panel = packed + j0 * k;
        for (long i0 = 0; i0 < m; i0 += kRows) {
            const long mr = std::min(kRows, m - i0);
            tile_plain(mr, w, wp, k, a + i0 * rsa, rsa, csa, panel, c + i0 * ldc + j0, ldc);
        }
    }
}

#if defined(__AVX512F__)
template <>
inline void matmul<float>(long m, long n, long k, const float* a, long rsa, long csa, const float* packed,
                          float* c, long ldc) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), nv = round_up(w, kVec) / kVec;
        const __mmask16 last = static_cast<__mmask16>((1u << (w - (nv - 1) * kVec)) - 1u);
        const float* panel = packed + j0 * k;
        for (long i0 = 0; i0 < m; i0 += kRows) {
            const long mr = std::min(kRows, m - i0);
            tile_for(mr, nv)(k, a + i0 * rsa, rsa, csa, panel, c + i0 * ldc + j0, ldc, last);
        }
    }
}
#endif

}  // namespace gemm
}  // namespace pyddpm
