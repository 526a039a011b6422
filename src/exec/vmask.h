/* vmask.h: loads and stores of the first cnt floats of a vector (cnt may be
 * more than a vector: then all of it), for the tails of AVX-512 and AVX2
 * loops. x86 builds only (OQ_X86_KERNELS); internal to src/exec. */
#ifndef ONNXQ_EXEC_VMASK_H
#define ONNXQ_EXEC_VMASK_H

#include <stdint.h>

#include <immintrin.h>

static inline __attribute__((target("avx512f"), always_inline)) __m512 oq_load16(const float *p, int64_t cnt)
{
    return cnt >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)((1u << cnt) - 1u), p);
}

static inline __attribute__((target("avx512f"), always_inline)) void oq_store16(float *p, __m512 v, int64_t cnt)
{
    if (cnt >= 16)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, (__mmask16)((1u << cnt) - 1u), v);
}

/* The first cnt lanes' mask for the AVX2 masked moves. */
static inline __attribute__((target("avx2"), always_inline)) __m256i oq_mask8(int64_t cnt)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cnt < 8 ? cnt : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((target("avx2"), always_inline)) __m256 oq_load8(const float *p, int64_t cnt)
{
    return cnt >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, oq_mask8(cnt));
}

static inline __attribute__((target("avx2"), always_inline)) void oq_store8(float *p, __m256 v, int64_t cnt)
{
    if (cnt >= 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, oq_mask8(cnt), v);
}

#endif
