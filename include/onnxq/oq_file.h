/* oq_file.h: whole-file reads and atomic writes, shared by every reader/writer. */
#ifndef ONNXQ_OQ_FILE_H
#define ONNXQ_OQ_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"

/* Reads a whole file into a malloc'ed buffer (caller frees), refusing files
 * larger than the tensor limit. Errors name the path. */
oq_status oq_read_file(const char *path, uint8_t **buf, size_t *len, oq_err *err);

/* Writes len bytes to path through a temporary file in the same folder and a
 * rename, so path holds either the old content or all of the new. */
oq_status oq_write_file_atomic(const char *path, const uint8_t *buf, size_t len, oq_err *err);

/* ---- several files, all or none -----------------------------------------------
 * Each file is written whole to a temporary in its destination's folder
 * (oq_commit_add); oq_commit_finish then renames them all into place. If a
 * write or a rename fails, no destination is left changed: files renamed
 * already are put back from a hard-linked copy of what was there before (or
 * removed if nothing was), and every temporary is removed. */
typedef struct oq_commit oq_commit;

oq_status oq_commit_create(oq_commit **out, oq_err *err);
/* Removes the temporaries of a commit not finished. NULL is a no-op. */
void oq_commit_destroy(oq_commit *c);
/* Writes buf[0..len) to a temporary beside path (path is copied). */
oq_status oq_commit_add(oq_commit *c, const char *path, const uint8_t *buf, size_t len, oq_err *err);
/* Renames every temporary onto its path, or changes none of them. */
oq_status oq_commit_finish(oq_commit *c, oq_err *err);

/* Whether a and b name the same file: the same string, or both exist and
 * are one file (through links or another spelling of the path). */
bool oq_same_file(const char *a, const char *b);

/* Folder part of path as a malloc'ed string ("." when it has none). */
char *oq_path_dir(const char *path);

#endif
