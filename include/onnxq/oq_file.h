/* oq_file.h: whole-file reads and atomic writes, shared by every reader/writer. */
#ifndef ONNXQ_OQ_FILE_H
#define ONNXQ_OQ_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"

/* Reads a whole file into a malloc'ed buffer (caller frees), refusing files
 * larger than the tensor limit. Errors name the path. */
oq_status oq_read_file(const char *path, uint8_t **buf, size_t *len, oq_err *err);

/* Writes len bytes to path through a temporary file in the same folder and a
 * rename, so path holds either the old content or all of the new. */
oq_status oq_write_file_atomic(const char *path, const uint8_t *buf, size_t len, oq_err *err);

/* Folder part of path as a malloc'ed string ("." when it has none). */
char *oq_path_dir(const char *path);

#endif
