// A small single-threaded matrix product, C = A B (or C += A B), with A read through any strides (so A may
// be a transposed view: P^T, dS^T) and B packed first. Its users: the fused CPU attention
// (csrc/cpu/attention.cpp), batched_matmul, and the one-pass Winograd (csrc/cpu/winograd_fused.cpp, whose
// transforms write B's blocks straight into the packed layout, described at packed_size).
//
// Why not BLAS: attention multiplies many small (256 x 256 x d) matrices. Calling sgemm once per matrix
// pays its threading and packing per call and leaves the softmax in between to a separate pass over
// memory; a kernel that owns one (batch, head) matrix on one thread keeps all of it in that core's L2.
//
// float runs a register tile in AVX-512 or AVX2 + FMA, whichever the build targets (-march=native);
// double, and float on other machines, a plain loop with the same packing.
#pragma once

#include <algorithm>
#include <type_traits>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace pyddpm {
namespace gemm {

#if defined(__AVX512F__)
#define PYDDPM_GEMM_SIMD 1
// 16 floats a vector, 32 registers: tiles of up to 6 rows x 4 vectors (24 accumulators).
struct Simd {
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int kWidth = 16, kVecs = 4;
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V broadcast(float x) { return _mm512_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static Mask first(long n) { return static_cast<Mask>((1u << n) - 1u); }  // lanes [0, n), 1 <= n <= 16
    static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
    static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
};
#elif defined(__AVX2__) && defined(__FMA__)
#define PYDDPM_GEMM_SIMD 1
// 8 floats a vector, 16 registers: tiles of up to 6 rows x 2 vectors (12 accumulators, 2 of B, 1 of A).
struct Simd {
    using V = __m256;
    using Mask = __m256i;
    static constexpr int kWidth = 8, kVecs = 2;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V broadcast(float x) { return _mm256_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static Mask first(long n) {  // lanes [0, n), 1 <= n <= 8
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static void store(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
    static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
};
#endif

#if defined(PYDDPM_GEMM_SIMD)
constexpr long kVec = Simd::kWidth;                // a panel's width is a multiple of this
constexpr long kPanel = Simd::kWidth * Simd::kVecs;  // columns of B per panel: one full tile's width
#else
constexpr long kVec = 16;
constexpr long kPanel = 64;
#endif
constexpr int kRows = 6;  // rows of A per tile

inline long round_up(long x, long m) { return (x + m - 1) / m * m; }

// A matrix read through strides (in elements, any sign): element (i, j) at data[i * rs + j * cs].
template <typename T>
struct Matrix {
    const T* data;
    long rs, cs;
    Matrix t() const { return {data, cs, rs}; }  // the transpose, a view like numpy's .T
};

// Packed B: column panels of kPanel columns, panel j0 (a multiple of kPanel) at j0 * k, each k rows of its
// width contiguous. The last panel's width is rounded up to a multiple of the vector width kVec (pack_b
// writes zeros there; any finite values would do), so the tiles below always load whole vectors inside
// the buffer and store only the real columns (a masked store). packed_size: its elements for a k x n B.
inline long packed_size(long k, long n) { return k * round_up(n, kVec); }

// Packs B (k x n) into dst (packed_size(k, n) elements).
template <typename T>
void pack_b(long k, long n, Matrix<T> b, T* dst) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), wp = round_up(w, kVec);
        T* panel = dst + j0 * k;
        for (long p = 0; p < k; ++p) {
            const T* src = b.data + p * b.rs + j0 * b.cs;
            T* row = panel + p * wp;
            for (long j = 0; j < w; ++j) row[j] = src[j * b.cs];
            for (long j = w; j < wp; ++j) row[j] = T(0);
        }
    }
}

#if defined(__AVX512F__)
// The shuffles below in their zero-masking form with every lane kept: the same instructions, but GCC's
// plain forms start from an undefined register that -Wmaybe-uninitialized flags once inlined (-O1, -O2).
constexpr __mmask16 kAll16 = 0xffff;
constexpr __mmask8 kAll8 = 0xff;
inline __m512 unpacklo_pd(__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(kAll8, _mm512_castps_pd(a), _mm512_castps_pd(b)));
}
inline __m512 unpackhi_pd(__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(kAll8, _mm512_castps_pd(a), _mm512_castps_pd(b)));
}
template <int kImm>
__m512 shuffle_lanes(__m512 a, __m512 b) { return _mm512_maskz_shuffle_f32x4(kAll16, a, b, kImm); }

// A 16 x 16 block of floats transposed in registers: r[i] row i in, column i out. Interleave pairs of
// rows (floats), then pairs of pairs (doubles), then the 4 x 4 grid of 128-bit lanes in two steps.
inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_maskz_unpacklo_ps(kAll16, r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_maskz_unpackhi_ps(kAll16, r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        r[4 * i] = unpacklo_pd(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = unpackhi_pd(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = unpacklo_pd(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = unpackhi_pd(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int i = 0; i < 4; ++i) {
        t[i] = shuffle_lanes<0x88>(r[i], r[i + 4]);
        t[i + 4] = shuffle_lanes<0xdd>(r[i], r[i + 4]);
        t[i + 8] = shuffle_lanes<0x88>(r[i + 8], r[i + 12]);
        t[i + 12] = shuffle_lanes<0xdd>(r[i + 8], r[i + 12]);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = shuffle_lanes<0x88>(t[i], t[i + 8]);
        r[i + 8] = shuffle_lanes<0xdd>(t[i], t[i + 8]);
        r[i + 4] = shuffle_lanes<0x88>(t[i + 4], t[i + 12]);
        r[i + 12] = shuffle_lanes<0xdd>(t[i + 4], t[i + 12]);
    }
}
#endif

// Packs B (k x n) stored the other way round, as S = B^T (n x k, rows ld apart: B[p][j] = s[j * ld + p]),
// into pack_b's layout. Element by element that is a gather, one load per value; in AVX-512, float, whole
// 16 x 16 blocks are transposed in registers instead, and only the edges go element by element.
template <typename T>
void pack_b_transposed(long k, long n, const T* s, long ld, T* dst) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), wp = round_up(w, kVec);
        T* panel = dst + j0 * k;
        long p0 = 0;  // rows of B [0, p0) done
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
            for (; p0 + 16 <= k; p0 += 16) {
                long jj = 0;
                for (; jj + 16 <= w; jj += 16) {
                    __m512 r[16];
                    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + (j0 + jj + i) * ld + p0);
                    transpose16(r);
                    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(panel + (p0 + i) * wp + jj, r[i]);
                }
                for (long p = p0; p < p0 + 16; ++p) {
                    for (long j = jj; j < w; ++j) panel[p * wp + j] = s[(j0 + j) * ld + p];
                    for (long j = w; j < wp; ++j) panel[p * wp + j] = T(0);
                }
            }
        }
#endif
        for (long p = p0; p < k; ++p) {
            for (long j = 0; j < w; ++j) panel[p * wp + j] = s[(j0 + j) * ld + p];
            for (long j = w; j < wp; ++j) panel[p * wp + j] = T(0);
        }
    }
}

// The plain tile: rows [0, mr) of C, one panel of width w (packed width wp). Any T, any machine.
template <typename T>
void tile_plain(long mr, long w, long wp, long k, const T* a, long rsa, long csa, const T* panel, T* c, long ldc,
                bool add) {
    for (long r = 0; r < mr; ++r) {
        T acc[kPanel] = {};
        for (long j = 0; add && j < w; ++j) acc[j] = c[r * ldc + j];
        for (long p = 0; p < k; ++p) {
            const T ar = a[r * rsa + p * csa];
            const T* br = panel + p * wp;
            for (long j = 0; j < wp; ++j) acc[j] += ar * br[j];
        }
        for (long j = 0; j < w; ++j) c[r * ldc + j] = acc[j];
    }
}

#if defined(PYDDPM_GEMM_SIMD)
// The register tile: MR rows x NV vectors of C (at most 6 x 64 floats in AVX-512, 6 x 16 in AVX2), held
// in MR * NV accumulators beside NV vectors of B and one broadcast of A (29 of 32 zmm; 15 of 16 ymm).
// Each step over p loads NV vectors of B, broadcasts MR values of A and issues MR * NV independent FMAs
// (24 FMAs for 10 loads in AVX-512): enough chains to keep both FMA ports busy through the FMA latency.
// `last` masks the real columns of the last vector.
template <int MR, int NV>
void tile(long k, const float* a, long rsa, long csa, const float* panel, float* c, long ldc, Simd::Mask last,
          bool add) {
    constexpr long wp = NV * kVec;
    Simd::V acc[MR][NV];
    for (int r = 0; r < MR; ++r) {
        for (int v = 0; v + 1 < NV; ++v) acc[r][v] = add ? Simd::load(c + r * ldc + v * kVec) : Simd::zero();
        acc[r][NV - 1] = add ? Simd::load(c + r * ldc + (NV - 1) * kVec, last) : Simd::zero();
    }
    for (long p = 0; p < k; ++p) {
        Simd::V bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = Simd::load(panel + p * wp + v * kVec);
        const float* ap = a + p * csa;
        for (int r = 0; r < MR; ++r) {
            const Simd::V ar = Simd::broadcast(ap[r * rsa]);
            for (int v = 0; v < NV; ++v) acc[r][v] = Simd::fma(ar, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; ++r) {
        for (int v = 0; v + 1 < NV; ++v) Simd::store(c + r * ldc + v * kVec, acc[r][v]);
        Simd::store(c + r * ldc + (NV - 1) * kVec, acc[r][NV - 1], last);
    }
}

using TileFn = void (*)(long, const float*, long, long, const float*, float*, long, Simd::Mask, bool);

// The tile of mr rows and nv vectors (1 <= mr <= kRows, 1 <= nv <= Simd::kVecs), counting down from MR, NV.
template <int MR, int NV = Simd::kVecs>
TileFn tile_for_vecs(long nv) {
    if constexpr (NV == 1) return tile<MR, 1>;
    else return nv == NV ? tile<MR, NV> : tile_for_vecs<MR, NV - 1>(nv);
}

template <int MR = kRows>
TileFn tile_for(long mr, long nv) {
    if constexpr (MR == 1) return tile_for_vecs<1>(nv);
    else return mr == MR ? tile_for_vecs<MR>(nv) : tile_for<MR - 1>(mr, nv);
}
#endif

// C (m x n, row stride ldc, columns contiguous) = A (m x k) times the packed B (k x n, from pack_b), or
// C += A B with `add`.
// Every row tile sweeps one panel of B before the next panel. In AVX-512 (k x 64 floats) the panel stays
// in L1 at k = 128 (32 KB), in L2 at k = 256 (64 KB), like A.
template <typename T>
void matmul(long m, long n, long k, Matrix<T> a, const T* packed, T* c, long ldc, bool add = false) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), wp = round_up(w, kVec);
        const T* panel = packed + j0 * k;
        for (long i0 = 0; i0 < m; i0 += kRows) {
            const long mr = std::min<long>(kRows, m - i0);
            tile_plain(mr, w, wp, k, a.data + i0 * a.rs, a.rs, a.cs, panel, c + i0 * ldc + j0, ldc, add);
        }
    }
}

#if defined(PYDDPM_GEMM_SIMD)
template <>
inline void matmul<float>(long m, long n, long k, Matrix<float> a, const float* packed, float* c, long ldc,
                          bool add) {
    for (long j0 = 0; j0 < n; j0 += kPanel) {
        const long w = std::min(kPanel, n - j0), nv = round_up(w, kVec) / kVec;
        const Simd::Mask last = Simd::first(w - (nv - 1) * kVec);
        const float* panel = packed + j0 * k;
        for (long i0 = 0; i0 < m; i0 += kRows) {
            const long mr = std::min<long>(kRows, m - i0);
            tile_for(mr, nv)(k, a.data + i0 * a.rs, a.rs, a.cs, panel, c + i0 * ldc + j0, ldc, last, add);
        }
    }
}
#endif

}  // namespace gemm
}  // namespace pyddpm
