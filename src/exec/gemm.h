/* gemm.h: single-precision matrix multiply for the kernels (Conv, MatMul,
 * Gemm, RNNs) and the quantizer. Internal to src.
 *
 * All matrices are row-major with explicit row strides. op(X) is X or its
 * transpose. One call runs on the calling thread; callers split C into
 * disjoint row or column blocks to parallelize. The result of every C element
 * depends only on its row of op(A), its column of op(B), K and the options,
 * never on how C was split, so a split is deterministic. */
#ifndef ONNXQ_EXEC_GEMM_H
#define ONNXQ_EXEC_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exec/kernel.h"
#include "onnxq/oq_cpu.h"

/* Most floats of workspace any one oq_sgemm call needs (packing buffers plus
 * alignment slack); oq_sgemm_ws_floats gives the need of one shape. */
#define OQ_SGEMM_WS_FLOATS ((size_t)(120 * 256 + 256 * 2048 + 16))

typedef struct oq_sgemm_args {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;   /* C = alpha * op(A) op(B) + beta * C; beta == 0 never reads C */
    const float *a;      /* op(A) is (m, k): A is (m, k) or, transposed, (k, m) */
    int64_t lda;         /* row stride of A as stored */
    const float *b;      /* op(B) is (k, n): B is (k, n) or, transposed, (n, k) */
    int64_t ldb;
    float *c;            /* (m, n) */
    int64_t ldc;
} oq_sgemm_args;

/* Floats of workspace oq_sgemm needs for an (m, n, k) product. */
size_t oq_sgemm_ws_floats(int64_t m, int64_t n, int64_t k);

/* Blocked, packed SGEMM with the micro-kernel of the enabled instruction sets
 * (AVX-512, AVX2+FMA, or portable vector code). ws
 * has oq_sgemm_ws_floats(m, n, k) floats of scratch owned by the caller. */
void oq_sgemm(const oq_sgemm_args *g, float *ws);

/* Floats oq_sgemm_pack_a writes for an op(A) of (m, k). */
size_t oq_sgemm_packed_a_floats(int64_t m, int64_t k);
/* Packs all of op(A) of g once for several oq_sgemm_packed calls. dst holds
 * oq_sgemm_packed_a_floats(m, k) floats. */
void oq_sgemm_pack_a(float *dst, const oq_sgemm_args *g);
#define OQ_SGEMM_PACK_ROWS 6
/* Where element (i, p) of an (m, k) op(A) sits once packed whole by
 * oq_sgemm_pack_a: strips of OQ_SGEMM_PACK_ROWS rows, each stored depth by
 * depth; rows of the last strip past m are zeros. For producers that write
 * the packed layout directly. */
static inline size_t oq_sgemm_packed_a_at(int64_t k, int64_t i, int64_t p)
{
    return (size_t)((i / OQ_SGEMM_PACK_ROWS) * OQ_SGEMM_PACK_ROWS * k + p * OQ_SGEMM_PACK_ROWS + i % OQ_SGEMM_PACK_ROWS);
}
/* The widest strip any micro-kernel reads (oq_sgemm_nr() never exceeds it). */
#define OQ_SGEMM_NR_MAX 32
/* oq_sgemm with op(A) taken from ap, packed by oq_sgemm_pack_a (g's a, lda
 * and trans_a are not read). ap + r * k starts at row r of the packed matrix
 * when r is a multiple of OQ_SGEMM_PACK_ROWS, so row blocks of one packed A
 * can go to different calls. row_bias (NULL, or g->m floats) is added to
 * each row: C = alpha op(A) op(B) + beta C + row_bias[i], the same bits as
 * C filled with the bias and beta 1 when alpha is 1 and beta 0, without that
 * extra pass over C. Otherwise the same results as oq_sgemm. */
void oq_sgemm_packed(const oq_sgemm_args *g, const float *ap, const float *row_bias, float *ws);

/* Width of the column strips the current micro-kernel reads (16 or 32); it
 * changes only with oq_cpu_set_cap. */
int oq_sgemm_nr(void);
/* oq_sgemm_packed with op(B) also given packed, by the caller: strips of
 * nr = oq_sgemm_nr() columns, strip s holding rows p < k as bp[s*k*nr +
 * p*nr + c] for columns s*nr + c (columns past n are zero); bp is 64-byte
 * aligned. g's b and ldb are not read. row_bias as in oq_sgemm_packed. */
void oq_sgemm_packed_ab(const oq_sgemm_args *g, const float *ap, const float *bp, const float *row_bias, float *ws);

/* Floats oq_sgemm_pack_b writes for an op(B) of (k, n): strips of
 * oq_sgemm_nr() columns, plus that many floats more, so that a cache sized
 * by this count is repacked when the strip width changes (oq_cpu_set_cap). */
size_t oq_sgemm_packed_b_floats(int64_t k, int64_t n);
/* Packs all of op(B) of g once, in the layout oq_sgemm_packed_ab reads, into
 * dst (oq_sgemm_packed_b_floats(k, n) floats, 64-byte aligned). */
void oq_sgemm_pack_b(float *dst, const oq_sgemm_args *g);
/* oq_sgemm with op(B) taken from bp (oq_sgemm_pack_b; g's b and ldb are not
 * read); bp + j * k starts at column j when j is a multiple of
 * oq_sgemm_nr(). Same results as oq_sgemm. */
void oq_sgemm_packed_b(const oq_sgemm_args *g, const float *bp, float *ws);

/* Most rows of A for which oq_sgemm_batch takes oq_sgemm_skinny. */
#define OQ_SGEMM_SKINNY_M 4
/* C = alpha op(A) op(B) + beta C without packing, for g->m <=
 * OQ_SGEMM_SKINNY_M: each element of op(B) is read once, in place, as a
 * fully-connected layer at batch 1 needs. An element's result depends only on
 * its row, its column, K and the options (not the same bits as oq_sgemm). No
 * workspace. */
void oq_sgemm_skinny(const oq_sgemm_args *g);

/* The oracle: plain triple loop with a double accumulator. */
void oq_sgemm_ref(const oq_sgemm_args *g);

/* Name of the micro-kernel oq_sgemm uses now ("avx512f-6x32", ...). */
const char *oq_sgemm_kernel_name(void);
/* Name of the micro-kernel compiled for level isa, or NULL when it has none
 * (oq_sgemm then uses the one of the next level down). */
const char *oq_sgemm_variant(oq_isa isa);

/* ---- parallel use ---------------------------------------------------------------- */

/* Runs item(job, i, ws_i) for i in [0, n_items), cut into `parts` contiguous
 * parts spread over c's threads (c == NULL: in turn on the caller). Part p
 * gets ws + p * ws_floats as its private workspace. */
void oq_run_parts(oq_kernel_ctx *c, int parts, int64_t n_items, float *ws, size_t ws_floats,
                  void (*item)(void *job, int64_t i, float *ws), void *job);

/* A batch of products sharing g's shape and options: product i uses
 * g->a + a_off[i], g->b + b_off[i], g->c + c_off[i] (a NULL offset array
 * means 0 for all). Each product is cut into row or column tiles so that
 * about two items per part exist; results do not depend on parts. Products
 * of at most OQ_SGEMM_SKINNY_M rows run oq_sgemm_skinny. bp (NULL, or op(B)
 * packed by oq_sgemm_pack_b; only when b_off is NULL) spares packing B. ws
 * holds oq_sgemm_batch_ws_floats(g, batch, parts) floats. */
size_t oq_sgemm_batch_ws_floats(const oq_sgemm_args *g, int64_t batch, int parts);
void oq_sgemm_batch(oq_kernel_ctx *c, int parts, const oq_sgemm_args *g, int64_t batch, const int64_t *a_off,
                    const int64_t *b_off, const int64_t *c_off, const float *bp, float *ws);

#endif
