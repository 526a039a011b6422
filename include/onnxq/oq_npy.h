/* oq_npy.h: numpy .npy files (format versions 1, 2 and 3) as tensors.
 *
 * Supported: little-endian (or single-byte) C-order arrays of float16/32/64,
 * int8/16/32/64, uint8/16/32/64 and bool. Fortran order, big-endian data,
 * object and other dtypes are refused with a message saying which. */
#ifndef ONNXQ_OQ_NPY_H
#define ONNXQ_OQ_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_tensor.h"

/* Decodes an .npy image buf[0..len) into *t (owned; release with
 * oq_tensor_release). `what` names the source in error messages (a path).
 * The data must fill the rest of the buffer exactly; bool bytes other than 0
 * are stored as 1. */
oq_status oq_npy_parse(oq_tensor *t, const uint8_t *buf, size_t len, const char *what, oq_err *err);

/* Reads the .npy file at path into *t (owned). */
oq_status oq_npy_load(oq_tensor *t, const char *path, oq_err *err);

/* An open .npy file whose leading axis holds samples, read one at a time
 * (memory does not grow with the number of samples). */
typedef struct oq_npy_file {
    int fd;
    oq_dtype dtype;
    int rank;
    int64_t dims[OQ_MAX_RANK];
    uint64_t data_offset; /* where element data starts */
} oq_npy_file;

/* Opens path and validates its header and exact size (the same checks as
 * oq_npy_load) without reading the data. */
oq_status oq_npy_open(oq_npy_file *f, const char *path, oq_err *err);
/* Reads element i of the leading axis into *t (owned; rank - 1 dims). */
oq_status oq_npy_read_sample(const oq_npy_file *f, int64_t i, oq_tensor *t, const char *what, oq_err *err);
/* Closes f; a closed or zeroed-and-never-opened (fd -1) f is a no-op. */
void oq_npy_close(oq_npy_file *f);

/* Encodes t as a version 1 .npy image (version 2 when the header needs it)
 * into a malloc'ed buffer the caller frees. Fails with OQ_EUNSUPPORTED for
 * dtypes numpy cannot hold natively (string, bfloat16, complex, float8, int4). */
oq_status oq_npy_serialize(const oq_tensor *t, uint8_t **buf, size_t *len, oq_err *err);

/* Writes t to path as .npy atomically (see oq_write_file_atomic). */
oq_status oq_npy_save(const oq_tensor *t, const char *path, oq_err *err);

#endif
