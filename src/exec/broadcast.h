/* broadcast.h: the one numpy-broadcasting iterator every multi-input kernel
 * uses. Internal to src/exec.
 *
 * A dense output of shape `dims` is walked in C order; each operand is read
 * through element strides that are 0 along its broadcast dims. Adjacent dims
 * that every operand walks the same way are merged first, so the common
 * cases (same shape, scalar, per-channel bias) become one or two long runs.
 * A visitor is called once per run of the innermost merged dim; within a run
 * each operand's step is 0 or 1. */
#ifndef ONNXQ_EXEC_BROADCAST_H
#define ONNXQ_EXEC_BROADCAST_H

#include <stdint.h>

#include "onnxq/oq_tensor.h"

#define OQ_BCAST_MAX_OPS 3

typedef struct oq_bcast {
    int rank;                                    /* merged rank, >= 1 */
    int n_ops;                                   /* operands, <= OQ_BCAST_MAX_OPS */
    int64_t numel;                               /* output elements */
    int64_t dims[OQ_MAX_RANK];                   /* (rank) merged output dims */
    int64_t strides[OQ_BCAST_MAX_OPS][OQ_MAX_RANK]; /* (n_ops, rank) element strides */
} oq_bcast;

/* Called for `len` output elements starting at flat index out_off; operand k
 * starts at element in_off[k] and advances by step[k] (0 or 1) per element. */
typedef void (*oq_bcast_visit)(void *arg, int64_t out_off, const int64_t *in_off,
                               const int64_t *step, int64_t len);

/* Prepares walking the output (out_rank, out_dims) with n operands of shapes
 * (ranks[k], dims[k]); each must broadcast to the output (caller checked,
 * e.g. with oq_broadcast_shape). */
static inline void oq_bcast_init(oq_bcast *b, int out_rank, const int64_t *out_dims, int n,
                                 const int *ranks, const int64_t *const *dims)
{
    int64_t st[OQ_BCAST_MAX_OPS][OQ_MAX_RANK];
    b->n_ops = n;
    b->numel = 1;
    for (int i = 0; i < out_rank; i++)
        b->numel *= out_dims[i];
    for (int k = 0; k < n; k++)
        oq_broadcast_strides(ranks[k], dims[k], out_rank, out_dims, st[k]);
    /* Drop size-1 dims, then merge dim i into the previous merged dim when
     * every operand's stride there equals its stride at i times dims[i]. */
    int r = 0;
    for (int i = 0; i < out_rank; i++) {
        if (out_dims[i] == 1)
            continue;
        bool merge = r > 0;
        for (int k = 0; k < n && merge; k++)
            merge = b->strides[k][r - 1] == st[k][i] * out_dims[i];
        if (merge) {
            b->dims[r - 1] *= out_dims[i];
            for (int k = 0; k < n; k++)
                b->strides[k][r - 1] = st[k][i];
            continue;
        }
        b->dims[r] = out_dims[i];
        for (int k = 0; k < n; k++)
            b->strides[k][r] = st[k][i];
        r++;
    }
    if (r == 0) {
        b->dims[0] = 1;
        for (int k = 0; k < n; k++)
            b->strides[k][0] = 0;
        r = 1;
    }
    b->rank = r;
}

/* Convenience: init from operand tensors. */
static inline void oq_bcast_init_tensors(oq_bcast *b, int out_rank, const int64_t *out_dims, int n,
                                         const oq_tensor *const *t)
{
    int ranks[OQ_BCAST_MAX_OPS];
    const int64_t *dims[OQ_BCAST_MAX_OPS];
    for (int k = 0; k < n; k++) {
        ranks[k] = t[k]->rank;
        dims[k] = t[k]->dims;
    }
    oq_bcast_init(b, out_rank, out_dims, n, ranks, dims);
}

/* Visits output elements [begin, end) in runs (see oq_bcast_visit). Runs never
 * cross the innermost merged dim, so any split of [0, numel) into ranges
 * visits the same elements with the same operands. */
static inline void oq_bcast_walk(const oq_bcast *b, int64_t begin, int64_t end, oq_bcast_visit fn,
                                 void *arg)
{
    if (begin >= end)
        return;
    int64_t idx[OQ_MAX_RANK];
    int64_t off[OQ_BCAST_MAX_OPS], step[OQ_BCAST_MAX_OPS];
    const int last = b->rank - 1;
    const int64_t inner = b->dims[last];
    int64_t rem = begin;
    for (int i = last; i >= 0; i--) {
        idx[i] = rem % b->dims[i];
        rem /= b->dims[i];
    }
    for (int k = 0; k < b->n_ops; k++)
        step[k] = b->strides[k][last];
    int64_t pos = begin;
    while (pos < end) {
        for (int k = 0; k < b->n_ops; k++) {
            off[k] = 0;
            for (int i = 0; i <= last; i++)
                off[k] += idx[i] * b->strides[k][i];
        }
        int64_t len = inner - idx[last];
        if (len > end - pos)
            len = end - pos;
        fn(arg, pos, off, step, len);
        pos += len;
        idx[last] = 0;
        for (int i = last - 1; i >= 0; i--) {
            if (++idx[i] < b->dims[i])
                break;
            idx[i] = 0;
        }
    }
}

#endif
