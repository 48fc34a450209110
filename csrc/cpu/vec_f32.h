// F32x16: 16 floats in one AVX-512 register, a value type the per-element math of csrc/kernels/*.cuh runs on
// unchanged. Those functions are templates on the value type; they use +, -, *, V(float), fmadd,
// round_nearest, and call exp_f32, sigmoid and mul_rn unqualified, so argument-dependent lookup finds the
// overloads below for F32x16 and common.cuh's for float: the formula stays written once.
//
// Why not leave it to the compiler, which vectorises the scalar math too: without fast-math (which the
// numerics here cannot have) GCC must keep sigmoid's exact division and builds exp's 2^n from compare-and-
// blend clamps, a convert, an add and a shift. Here 2^n is one vscalefps and 1/d is rcp14 and one Newton
// step (relative error about 2^-28, below float's rounding): fewer instructions per vector and no vdivps
// (benchmarks/RESULTS.md, "The run of 2026-11-24").
//
// map() runs such a function over arrays: in F32x16 vectors (a masked tail) where the build has them and
// T is float, else as a scalar loop the compiler vectorises.
#pragma once

#include <type_traits>

#include "kernels/common.cuh"

#if defined(__AVX512F__)
#include <immintrin.h>
#define PYDDPM_VEC_F32 1

namespace pyddpm {

// Every lane. The intrinsics below are called in their zero-masking forms with this mask: the same
// instructions, but the plain forms pass _mm512_undefined_ps() as the merge source, which GCC 12 flags with
// -Wmaybe-uninitialized at -O1/-O2 (the sanitizer builds).
constexpr __mmask16 kAll = 0xFFFF;

struct F32x16 {
    static constexpr long kWidth = 16;
    __m512 v;
    F32x16() = default;
    F32x16(__m512 v_) : v(v_) {}
    F32x16(float s) : v(_mm512_set1_ps(s)) {}  // implicit: the .cuh math mixes in scalars, e.g. T(1) - s

    static __mmask16 first(long n) { return n >= kWidth ? kAll : __mmask16((1u << n) - 1u); }
    static F32x16 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
    void store(float* p, __mmask16 m) const { _mm512_mask_storeu_ps(p, m, v); }
};

inline F32x16 operator+(F32x16 a, F32x16 b) { return _mm512_add_ps(a.v, b.v); }
inline F32x16 operator-(F32x16 a, F32x16 b) { return _mm512_sub_ps(a.v, b.v); }
inline F32x16 operator*(F32x16 a, F32x16 b) { return _mm512_mul_ps(a.v, b.v); }
inline F32x16 operator-(F32x16 a) {  // flips the sign bit, as scalar negation does (also of 0 and NaN)
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)));
}
inline F32x16 fmadd(F32x16 a, F32x16 b, F32x16 c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
inline F32x16 round_nearest(F32x16 x) {
    return _mm512_maskz_roundscale_ps(kAll, x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline F32x16 mul_rn(F32x16 a, F32x16 b) { return a * b; }

// common.cuh's exp_f32 (the same clamp, reduction and polynomial), with 2^n applied by vscalefps (which
// makes 2^-127 a subnormal where the scalar form makes it 0). vmaxps and vminps return their second operand
// when either is NaN: x goes second, so a NaN x passes through and comes out NaN, as in the scalar form.
inline F32x16 exp_f32(F32x16 x) {
    x = _mm512_maskz_max_ps(kAll, _mm512_set1_ps(kExpMin), x.v);
    x = _mm512_maskz_min_ps(kAll, _mm512_set1_ps(kExpMax), x.v);
    F32x16 n;
    const F32x16 p = exp_reduced(x, &n);
    return _mm512_maskz_scalef_ps(kAll, p.v, n.v);
}

// common.cuh's float sigmoid, 1 / (1 + e^-z), with 1/d = r + r (1 - d r), r = rcp14(d) (|error| < 2^-14).
// d lies in [1, e^88.3], where neither r nor d r overflows; z = -inf is set to 0 afterwards, as there.
inline F32x16 sigmoid(F32x16 z) {
    const F32x16 d = F32x16(1.0f) + exp_f32(-z);
    const F32x16 r = _mm512_maskz_rcp14_ps(kAll, d.v);
    const F32x16 s = fmadd(r, _mm512_fnmadd_ps(d.v, r.v, _mm512_set1_ps(1.0f)), r);
    const __mmask16 minus_inf = _mm512_cmp_ps_mask(z.v, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(minus_inf, s.v, _mm512_setzero_ps());
}

}  // namespace pyddpm
#endif

namespace pyddpm {

// out[i] = f(in[i]...) for i in [0, n): f is a generic lambda, called on F32x16 (float, AVX-512) or on T.
template <typename T, typename F, typename... In>
void map(long n, T* out, F f, const In*... in) {
#if defined(PYDDPM_VEC_F32)
    if constexpr (std::is_same_v<T, float>) {
        for (long i = 0; i < n; i += F32x16::kWidth) {
            const __mmask16 m = F32x16::first(n - i);
            F32x16(f(F32x16::load(in + i, m)...)).store(out + i, m);
        }
        return;
    }
#endif
#pragma omp simd
    for (long i = 0; i < n; ++i) out[i] = f(in[i]...);
}

}  // namespace pyddpm
