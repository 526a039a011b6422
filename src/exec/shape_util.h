/* shape_util.h: helpers shared by the data-movement kernels (ops_shape.c,
 * ops_resize.c). Internal to src/exec.
 *
 * Data movement is type-generic: kernels copy elements by size (1, 2, 4 or 8
 * bytes), so one kernel serves float, 8-bit quantized, int32/int64 and bool. */
#ifndef ONNXQ_EXEC_SHAPE_UTIL_H
#define ONNXQ_EXEC_SHAPE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "exec/kernel.h"

/* Every type the data-movement kernels copy bytewise. */
#define OQ_DT_MOVABLE                                                                         \
    (OQ_DT(FLOAT) | OQ_DT(UINT8) | OQ_DT(INT8) | OQ_DT(UINT16) | OQ_DT(INT16) | OQ_DT(INT32) | \
     OQ_DT(INT64) | OQ_DT(BOOL) | OQ_DT(FLOAT16) | OQ_DT(DOUBLE) | OQ_DT(UINT32) |            \
     OQ_DT(UINT64) | OQ_DT(COMPLEX64) | OQ_DT(BFLOAT16) | OQ_DT(FLOAT8E4M3FN) |               \
     OQ_DT(FLOAT8E4M3FNUZ) | OQ_DT(FLOAT8E5M2) | OQ_DT(FLOAT8E5M2FNUZ))

/* Bytes per element (1, 2, 4 or 8) of a type in OQ_DT_MOVABLE; 0 otherwise. */
int oq_move_esize(oq_dtype dt);

/* Element size of t, or 0 with c->err set (OQ_EUNSUPPORTED) naming the type. */
int oq_move_esize_of(oq_kernel_ctx *c, const oq_tensor *t);

/* Writes v converted to dt (integers round to nearest and saturate, bool is
 * v != 0) into *dst. False for types without a numeric conversion. */
bool oq_store_f64(oq_dtype dt, double v, void *dst);

/* Sets n elements of esize bytes at dst to the element at val. */
void oq_fill_elems(void *dst, const void *val, int esize, int64_t n);

/* A strided walk: element (i_0..i_{r-1}) goes from src + sum(i_k * src_st[k])
 * to dst + sum(i_k * dst_st[k]) (element units). Source strides may be 0
 * (repeat) or negative (walk backwards); destination cells must be distinct. */
#define OQ_VIEW_MAX_RANK (2 * OQ_MAX_RANK)
typedef struct oq_view {
    int rank;
    int64_t dims[OQ_VIEW_MAX_RANK];   /* (rank) extents */
    int64_t src_st[OQ_VIEW_MAX_RANK]; /* (rank) source element strides */
    int64_t dst_st[OQ_VIEW_MAX_RANK]; /* (rank) destination element strides */
} oq_view;

/* Copies the walk v (normalized in place: unit dims dropped, compatible dims
 * merged) from src to dst, in parallel when large. */
void oq_view_copy(oq_kernel_ctx *c, void *dst, const void *src, int esize, oq_view *v);

/* Gathers a dense output of shape (rank, dims): the element at (i_0..i_{r-1})
 * is src[sum_k maps[k][i_k]] (element offsets, already scaled by the source
 * strides). maps[k] has dims[k] entries. */
void oq_gather_maps(oq_kernel_ctx *c, void *dst, const void *src, int esize, int rank,
                    const int64_t *dims, const int64_t *const *maps);

/* C-order element strides of (rank, dims) into st. */
void oq_dense_strides(int rank, const int64_t *dims, int64_t *st);

/* Kernels defined in ops_resize.c, listed in the table in ops_shape.c. */
oq_status oq_kernel_resize(oq_kernel_ctx *c);
oq_status oq_kernel_upsample(oq_kernel_ctx *c);
oq_status oq_kernel_grid_sample(oq_kernel_ctx *c);

#endif
