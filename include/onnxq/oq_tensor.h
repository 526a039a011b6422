/* oq_tensor.h: element types, their traits, dense tensors and broadcasting.
 *
 * oq_dtype values are ONNX's TensorProto.DataType numbers, so a dtype read from
 * a file is an index into oq_dtype_traits without translation. */
#ifndef ONNXQ_OQ_TENSOR_H
#define ONNXQ_OQ_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"

typedef enum oq_dtype {
    OQ_DTYPE_UNDEFINED = 0,
    OQ_DTYPE_FLOAT = 1,
    OQ_DTYPE_UINT8 = 2,
    OQ_DTYPE_INT8 = 3,
    OQ_DTYPE_UINT16 = 4,
    OQ_DTYPE_INT16 = 5,
    OQ_DTYPE_INT32 = 6,
    OQ_DTYPE_INT64 = 7,
    OQ_DTYPE_STRING = 8,
    OQ_DTYPE_BOOL = 9,
    OQ_DTYPE_FLOAT16 = 10,
    OQ_DTYPE_DOUBLE = 11,
    OQ_DTYPE_UINT32 = 12,
    OQ_DTYPE_UINT64 = 13,
    OQ_DTYPE_COMPLEX64 = 14,
    OQ_DTYPE_COMPLEX128 = 15,
    OQ_DTYPE_BFLOAT16 = 16,
    OQ_DTYPE_FLOAT8E4M3FN = 17,
    OQ_DTYPE_FLOAT8E4M3FNUZ = 18,
    OQ_DTYPE_FLOAT8E5M2 = 19,
    OQ_DTYPE_FLOAT8E5M2FNUZ = 20,
    OQ_DTYPE_UINT4 = 21,
    OQ_DTYPE_INT4 = 22,
    OQ_DTYPE_COUNT
} oq_dtype;

typedef struct oq_dtype_traits {
    const char *name; /* ONNX spelling: "float", "uint8", ... */
    unsigned bits;    /* bits per element in memory; 4 for packed int4; 0 for string */
    bool is_float;    /* floating point (any width) */
    bool is_signed;   /* signed integer or float */
} oq_dtype_traits;

extern const oq_dtype_traits oq_dtype_traits_table[OQ_DTYPE_COUNT];

/* True when dt is a known dtype value. */
static inline bool oq_dtype_valid(int dt) { return dt > 0 && dt < OQ_DTYPE_COUNT; }
/* "float", "int64", ...; "?" for an invalid value. */
const char *oq_dtype_name(oq_dtype dt);

#define OQ_MAX_RANK 8

/* A read-only file mapping that tensors borrow their data from (oq_file.h). */
typedef struct oq_mapping oq_mapping;

/* A dense C-order tensor. Strings: data is char *[numel], each NUL-terminated
 * and owned by the tensor when owns_data is set. Packed 4-bit types keep two
 * elements per byte, low nibble first, as ONNX stores them.
 * A tensor with `mapping` set (external data of a loaded model) is read-only:
 * its data lies in a mapping made without write access, which the tensor holds
 * one reference to; it neither owns nor may write its data. */
typedef struct oq_tensor {
    oq_dtype dtype;
    int rank;
    int64_t dims[OQ_MAX_RANK];
    void *data;
    size_t nbytes;       /* bytes of element storage (capacity for pooled buffers) */
    bool owns_data;      /* free data in oq_tensor_release */
    oq_mapping *mapping; /* set: data is a read-only view into this mapping (owns_data false) */
} oq_tensor;

/* Process-wide limit on any one tensor's storage (and on any file read whole);
 * larger requests fail with OQ_ENOMEM instead of being attempted. */
#define OQ_TENSOR_LIMIT_DEFAULT ((size_t)4 << 30)
void oq_set_tensor_limit(size_t bytes);
size_t oq_tensor_limit(void);

/* Element count of dims[0..rank); -1 if a dim is negative or the product of
 * the non-zero dims overflows (so an empty shape cannot hide such dims). */
int64_t oq_shape_numel(int rank, const int64_t *dims);
/* Storage bytes for numel elements of dt (packed types round up); SIZE_MAX on overflow. */
size_t oq_dtype_storage(oq_dtype dt, int64_t numel);

static inline int64_t oq_tensor_numel(const oq_tensor *t) { return oq_shape_numel(t->rank, t->dims); }

/* True when a and b have the same rank and dims (their types aside). */
static inline bool oq_tensor_same_shape(const oq_tensor *a, const oq_tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* Sets *t to an owned, zero-filled tensor of the given type and shape.
 * Fails (OQ_EINVAL/OQ_ENOMEM) on bad dims, overflow or the size limit. */
oq_status oq_tensor_alloc(oq_tensor *t, oq_dtype dt, int rank, const int64_t *dims, oq_err *err);
/* Frees owned storage (and owned strings), or drops a mapped tensor's
 * reference (its pages leave the resident set), and resets *t to empty. NULL
 * is a no-op. */
void oq_tensor_release(oq_tensor *t);
/* Sets *dst to an owned, writable deep copy of src. */
oq_status oq_tensor_copy(oq_tensor *dst, const oq_tensor *src, oq_err *err);
/* Sets *dst to a tensor with src's contents that is released on its own:
 * for a mapped src a read-only view of the same mapping (one more reference,
 * no bytes copied), otherwise a deep copy. For copying models, not for
 * tensors about to be written. */
oq_status oq_tensor_share(oq_tensor *dst, const oq_tensor *src, oq_err *err);
/* True when t's data must not be written (a view into a read-only mapping). */
static inline bool oq_tensor_read_only(const oq_tensor *t) { return t->mapping != NULL; }

/* Heap-allocated tensor: create = alloc into a new object; destroy(NULL) is a no-op. */
oq_tensor *oq_tensor_create(oq_dtype dt, int rank, const int64_t *dims, oq_err *err);
void oq_tensor_destroy(oq_tensor *t);

/* Reads element i of a numeric/bool tensor as double / int64 (any dtype except
 * string/complex). Slow path: for shape inputs and tests, not kernels. */
double oq_tensor_get_f64(const oq_tensor *t, int64_t i);
int64_t oq_tensor_get_i64(const oq_tensor *t, int64_t i);

/* v truncated toward zero and saturated to int64; NaN gives 0. */
int64_t oq_f64_to_i64_sat(double v);

/* Half-precision conversions (round to nearest even). */
float oq_f16_to_f32(uint16_t h);
uint16_t oq_f32_to_f16(float f);
float oq_bf16_to_f32(uint16_t h);
uint16_t oq_f32_to_bf16(float f);

/* ---- broadcasting ---------------------------------------------------------
 * numpy-style: shapes are right-aligned, each dim pair must be equal or one
 * of them 1. */

/* Computes the broadcast shape of n shapes into out_dims/out_rank.
 * Fails with OQ_EINVAL naming the mismatching dims. */
oq_status oq_broadcast_shape(int n, const int *ranks, const int64_t *const *dims, int *out_rank,
                             int64_t *out_dims, oq_err *err);

/* Element strides of a tensor of (rank, dims) viewed in the broadcast shape
 * (out_rank, out_dims): 0 along broadcast dims. out_strides has out_rank entries. */
void oq_broadcast_strides(int rank, const int64_t *dims, int out_rank, const int64_t *out_dims,
                          int64_t *out_strides);

#endif
