/* ops_common.h: small helpers shared by the elementwise, reduce and norm
 * kernels: dtype lists for generating per-type loops, axis normalization and
 * a parallel-for that stays on the calling thread for small work. Internal
 * to src/exec. */
#ifndef ONNXQ_EXEC_OPS_COMMON_H
#define ONNXQ_EXEC_OPS_COMMON_H

#include <stdint.h>

#include "exec/kernel.h"

/* X(A, T, M, DT): A is passed through, T the C type, M the type arithmetic
 * is done in (unsigned for integers, so overflow wraps instead of being
 * undefined), DT the oq_dtype suffix. */
#define OQ_FOR_FLOAT_TYPES(X, A) X(A, float, float, FLOAT) X(A, double, double, DOUBLE)
#define OQ_FOR_SINT_TYPES(X, A)                                                       \
    X(A, int8_t, unsigned, INT8) X(A, int16_t, unsigned, INT16) X(A, int32_t, uint32_t, INT32) \
    X(A, int64_t, uint64_t, INT64)
#define OQ_FOR_UINT_TYPES(X, A)                                                            \
    X(A, uint8_t, unsigned, UINT8) X(A, uint16_t, unsigned, UINT16) X(A, uint32_t, uint32_t, UINT32) \
    X(A, uint64_t, uint64_t, UINT64)
#define OQ_FOR_INT_TYPES(X, A) OQ_FOR_SINT_TYPES(X, A) OQ_FOR_UINT_TYPES(X, A)
#define OQ_FOR_NUM_TYPES(X, A) OQ_FOR_FLOAT_TYPES(X, A) OQ_FOR_INT_TYPES(X, A)

#define OQ_DT_FLOATS (OQ_DT(FLOAT) | OQ_DT(DOUBLE))
#define OQ_DT_SINTS (OQ_DT(INT8) | OQ_DT(INT16) | OQ_DT(INT32) | OQ_DT(INT64))
#define OQ_DT_UINTS (OQ_DT(UINT8) | OQ_DT(UINT16) | OQ_DT(UINT32) | OQ_DT(UINT64))
#define OQ_DT_NUMS (OQ_DT_FLOATS | OQ_DT_SINTS | OQ_DT_UINTS)

/* fmaxf(lo, x) and fminf(hi, x) as comparisons, which vectorize where the
 * libm calls do not: a NaN x gives lo and hi, as fmaxf and fminf do. */
static inline float oq_max_or(float x, float lo) { return x > lo ? x : lo; }
static inline float oq_min_or(float x, float hi) { return x < hi ? x : hi; }

/* Below this many elements of simple work a kernel stays on one thread. */
#define OQ_PAR_MIN_ELEMS ((int64_t)1 << 15)

/* Runs fn over [0, n): split across threads when n * cost (elements touched
 * per index) is large enough to pay for it, else inline. */
static inline void oq_par_run(oq_kernel_ctx *c, int64_t n, int64_t cost, oq_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (n > 1 && n * cost >= OQ_PAR_MIN_ELEMS && oq_kernel_threads(c) > 1)
        oq_parallel_for(c, n, fn, arg);
    else
        fn(arg, 0, n);
}

/* Normalizes axis (negative counts from the end) into [0, rank); returns -1
 * with c->err set when out of range. */
static inline int oq_norm_axis(oq_kernel_ctx *c, int64_t axis, int rank)
{
    if (axis < -rank || axis >= rank) {
        OQ_KERR(c, "axis %lld is out of range for rank %d", (long long)axis, rank);
        return -1;
    }
    return axis < 0 ? (int)(axis + rank) : (int)axis;
}

/* Product of dims[from..to). */
static inline int64_t oq_dims_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/* numpy matmul shapes of a @ b: the matrix dims, the broadcast batch dims of
 * the operands beyond their last two, and the output shape (a 1-D operand
 * contributes no dim). */
typedef struct oq_matmul_shape {
    int64_t m, k, n;
    int ra, rb;                 /* batch ranks of a and b */
    int batch_rank;             /* rank of the broadcast batch shape */
    int rank;                   /* output rank */
    int64_t dims[OQ_MAX_RANK];  /* output shape; dims[0..batch_rank) is the batch shape */
} oq_matmul_shape;

static inline oq_status oq_matmul_dims(oq_kernel_ctx *c, const oq_tensor *a, const oq_tensor *b, oq_matmul_shape *s)
{
    if (a->rank < 1 || b->rank < 1)
        return OQ_KERR(c, "MatMul operands must have rank >= 1");
    s->m = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    s->k = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    s->n = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (s->k != kb)
        return OQ_KERR(c, "inner dims differ: %lld vs %lld", (long long)s->k, (long long)kb);
    s->ra = a->rank > 2 ? a->rank - 2 : 0;
    s->rb = b->rank > 2 ? b->rank - 2 : 0;
    int ranks[2] = {s->ra, s->rb};
    const int64_t *bd[2] = {a->dims, b->dims};
    oq_status st = oq_broadcast_shape(2, ranks, bd, &s->batch_rank, s->dims, c->err);
    if (st)
        return st;
    s->rank = s->batch_rank;
    if (a->rank > 1)
        s->dims[s->rank++] = s->m;
    if (b->rank > 1)
        s->dims[s->rank++] = s->n;
    return OQ_OK;
}

/* Element offsets of each batch's matrices in a and b (numpy broadcasting of
 * the batch dims of s): a_off[i], b_off[i] for i < oq_shape_numel(batch_rank, dims). */
static inline void oq_matmul_batch_offsets(const oq_tensor *a, const oq_tensor *b, const oq_matmul_shape *s,
                                           int64_t *a_off, int64_t *b_off)
{
    int64_t sa[OQ_MAX_RANK], sb[OQ_MAX_RANK], idx[OQ_MAX_RANK] = {0};
    int br = s->batch_rank;
    oq_broadcast_strides(s->ra, a->dims, br, s->dims, sa);
    oq_broadcast_strides(s->rb, b->dims, br, s->dims, sb);
    int64_t batch = oq_shape_numel(br, s->dims);
    for (int64_t i = 0; i < batch; i++) {
        int64_t ia = 0, ib = 0;
        for (int x = 0; x < br; x++)
            ia += idx[x] * sa[x], ib += idx[x] * sb[x];
        a_off[i] = ia * s->m * s->k;
        b_off[i] = ib * s->k * s->n;
        for (int x = br - 1; x >= 0; x--) {
            if (++idx[x] < s->dims[x])
                break;
            idx[x] = 0;
        }
    }
}

#endif
