/* qgemm.h: 8-bit integer matrix multiply with zero points, and the
 * requantization step that turns its int32 accumulators back into 8-bit
 * values. Used by the quantized kernels (ops_quant.c). Internal to src.
 *
 * C[i][j] = sum_p (A[i][p] - za_i) * (B[p][j] - zb_j), exactly, in int32
 * (wrapping like ONNX Runtime only if a sum leaves the int32 range). A and B
 * are row-major uint8 or int8 with explicit row strides. Integer results do
 * not depend on blocking, so any split of C across threads is deterministic. */
#ifndef ONNXQ_EXEC_QGEMM_H
#define ONNXQ_EXEC_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_cpu.h"

typedef struct oq_qgemm_args {
    int64_t m, n, k;
    const void *a;         /* (m, k) uint8 or int8 */
    int64_t lda;
    bool a_signed;         /* a is int8 */
    const int32_t *a_zp;   /* NULL (all 0), a_zp[0] for every row, or a_zp[i] per row */
    bool a_zp_per_row;
    const void *b;         /* (k, n) uint8 or int8 */
    int64_t ldb;
    bool b_signed;
    const int32_t *b_zp;   /* NULL, b_zp[0], or b_zp[j] per column */
    bool b_zp_per_col;
    int32_t *c;            /* (m, n) */
    int64_t ldc;
    const void *a_packed;  /* NULL, or A as oq_qgemm_pack_a left it: used when packed for the
                              micro-kernel in use now, else A is packed from a as without it */
    const void *b_packed;  /* NULL, or B as oq_qgemm_pack_b left it (64-byte aligned): the same */
} oq_qgemm_args;

/* v clamped to [lo, hi] and rounded to the nearest integer, ties to even;
 * NaN goes to lo. The bounds are integers in [-65535, 65535], so clamping
 * first is exact, and adding then subtracting 1.5 * 2^23 rounds in the
 * default rounding mode (what rintf does) while staying plain vectorizable
 * arithmetic. */
static inline float oq_clamp_rint(float v, float lo, float hi)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (v + magic) - magic;
}

/* Bytes of workspace oq_qgemm needs for an (m, n, k) product (packing
 * buffers plus alignment slack); never more than OQ_QGEMM_WS_MAX. */
size_t oq_qgemm_ws_bytes(int64_t m, int64_t n, int64_t k);
#define OQ_QGEMM_WS_MAX ((size_t)(2 * (96 * 512 + 512 * 512) + 128))

/* Blocked, packed product with the best micro-kernel of the enabled
 * instruction sets: operands widened to int16 with their zero points
 * subtracted and K in pairs, or (AVX-512 VNNI) u8 x s8 bytes with K in
 * groups of four and the zero points applied from row and column sums.
 * ws has oq_qgemm_ws_bytes(m, n, k) bytes of scratch owned by the caller. */
void oq_qgemm(const oq_qgemm_args *g, void *ws);

/* Bytes of an (m, k) A packed whole by oq_qgemm_pack_a for the micro-kernel
 * in use now (the formats differ in size, so a cache sized by this count is
 * repacked when oq_cpu_set_cap changes the kernel). */
size_t oq_qgemm_packed_a_bytes(int64_t m, int64_t k);
/* Packs all of g's A (a, m, k, lda, a_signed, a_zp) into dst (4-byte
 * aligned), in the format of the micro-kernel in use now, for products that
 * reuse one A (constant weights): oq_qgemm then skips packing it on every
 * call. */
void oq_qgemm_pack_a(void *dst, const oq_qgemm_args *g);

/* Bytes of a (k, n) B packed whole by oq_qgemm_pack_b for the micro-kernel
 * in use now (repacked like A's when the kernel changes). */
size_t oq_qgemm_packed_b_bytes(int64_t k, int64_t n);
/* Packs all of g's B (b, k, n, ldb, b_signed, b_zp) into dst (64-byte
 * aligned) for products that reuse one B (constant weights of a MatMul). */
void oq_qgemm_pack_b(void *dst, const oq_qgemm_args *g);

/* The oracle: plain triple loop over the same formula. */
void oq_qgemm_ref(const oq_qgemm_args *g);

/* Name of the micro-kernel oq_qgemm uses now ("avx2-6x16", ...). */
const char *oq_qgemm_kernel_name(void);
/* Name of the micro-kernel compiled for level isa, or NULL when it has none
 * (oq_qgemm then uses the one of the next level down). */
const char *oq_qgemm_variant(oq_isa isa);

/* ---- requantization ---------------------------------------------------------------
 * y = saturate(round_half_even((float)(acc + bias) * mult) + zp) into uint8
 * (y_signed false) or int8, the way ONNX Runtime requantizes QLinearConv and
 * QLinearMatMul: the real multiplier (x_scale * w_scale / y_scale) is a float
 * and the sum is converted to float before scaling. acc + bias wraps in
 * int32 as ONNX Runtime's does (no 8-bit product sum gets near the limit). */

/* One channel: n values share bias and mult. */
typedef void oq_requant_row_fn(void *y, bool y_signed, const int32_t *acc, int64_t n, int32_t bias, float mult,
                               int32_t zp);

/* One row whose channels are its columns: value j uses bias[j] (bias may be
 * NULL for 0) and mult[j]. */
typedef void oq_requant_cols_fn(void *y, bool y_signed, const int32_t *acc, int64_t n, const int32_t *bias,
                                const float *mult, int32_t zp);

/* The versions for the enabled instruction sets (all give the same bytes);
 * callers take them once, before their loop over rows. */
oq_requant_row_fn *oq_requant_row_kernel(void);
oq_requant_cols_fn *oq_requant_cols_kernel(void);

#endif
