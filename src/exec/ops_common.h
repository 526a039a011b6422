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

#endif
