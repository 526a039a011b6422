/* oq_file.h: whole-file reads, read-only file mappings, and files written
 * under a temporary name and renamed into place; shared by every reader/writer. */
#ifndef ONNXQ_OQ_FILE_H
#define ONNXQ_OQ_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_tensor.h"

/* Reads a whole file into a malloc'ed buffer (caller frees), refusing files
 * larger than the tensor limit. Errors name the path. */
oq_status oq_read_file(const char *path, uint8_t **buf, size_t *len, oq_err *err);

/* Writes len bytes to path through a temporary file in the same folder and a
 * rename, so path holds either the old content or all of the new. */
oq_status oq_write_file_atomic(const char *path, const uint8_t *buf, size_t len, oq_err *err);

/* Whether a and b name the same file: the same string, or both exist and
 * are one file (through links or another spelling of the path). */
bool oq_same_file(const char *a, const char *b);

/* Folder part of path as a malloc'ed string ("." when it has none). */
char *oq_path_dir(const char *path);

/* Whether path (which need not exist) lies inside existing folder dir, at any
 * depth, through links or another spelling of either. */
bool oq_path_inside(const char *path, const char *dir);

/* ---- read-only mappings -------------------------------------------------------
 * A whole file mapped without write access (a write through it faults),
 * shared by the tensors that borrow from it and unmapped with its last
 * reference. Replacing the file by rename, as every writer here does, leaves
 * a mapping intact; truncating the file in place while it is mapped does not. */

/* Maps the regular file open on fd (size > 0 bytes; fd may be closed after).
 * *out holds one reference. `path` names the file in errors. */
oq_status oq_mapping_open(oq_mapping **out, int fd, uint64_t size, const char *path, oq_err *err);
/* First byte of the mapping; it stays valid while a reference is held. */
const uint8_t *oq_mapping_data(const oq_mapping *m);
uint64_t oq_mapping_size(const oq_mapping *m);
/* Whether path names the file m maps (the same file now, as stat sees it). */
bool oq_mapping_of_file(const oq_mapping *m, const char *path);
void oq_mapping_retain(oq_mapping *m);
/* Drops one reference; the last unmaps. NULL is a no-op. */
void oq_mapping_release(oq_mapping *m);
/* Takes the whole pages inside [p, p+n) (a range of m) out of the process's
 * resident set; they are read from the file again if touched, so other
 * holders of the range see the same bytes. */
void oq_mapping_forget(oq_mapping *m, const void *p, size_t n);

/* ---- output files -------------------------------------------------------------
 * A file written under a temporary name in its final folder (PATH.tmpXXXXXX),
 * buffered, and renamed to PATH by oq_out_commit; destroyed before that, it
 * leaves nothing behind. Several files commit together by finishing each
 * (where writes can still fail) before renaming any. */
typedef struct oq_out oq_out;

/* Creates the temporary for path; *out is the caller's (oq_out_destroy). */
oq_status oq_out_open(oq_out **out, const char *path, oq_err *err);
/* Appends n bytes. After the first failure every call returns that failure. */
oq_status oq_out_write(oq_out *f, const void *p, size_t n, oq_err *err);
/* Bytes written so far. */
uint64_t oq_out_size(const oq_out *f);
/* The destination path (borrowed). */
const char *oq_out_path(const oq_out *f);
/* Flushes, syncs and closes the temporary (mode 0644); no rename yet. */
oq_status oq_out_finish(oq_out *f, oq_err *err);
/* Finishes f if needed and renames the temporary to its path. */
oq_status oq_out_commit(oq_out *f, oq_err *err);
/* Removes the temporary unless committed, and frees f. NULL is a no-op. */
void oq_out_destroy(oq_out *f);

/* ---- several files, all or none -----------------------------------------------
 * Each file is written to a temporary in its destination's folder (an oq_out
 * from oq_commit_open, or oq_commit_add for a buffer); oq_commit_finish
 * finishes them all, then renames them into place. If a
 * write or a rename fails, no destination is left changed: files renamed
 * already are put back from a hard-linked copy of what was there before (or
 * removed if nothing was), and every temporary is removed. */
typedef struct oq_commit oq_commit;

oq_status oq_commit_create(oq_commit **out, oq_err *err);
/* Removes the temporaries of a commit not finished. NULL is a no-op. */
void oq_commit_destroy(oq_commit *c);
/* A new output file for path (copied) that the commit owns: the caller
 * writes it through *out (borrowed) and never commits or destroys it. */
oq_status oq_commit_open(oq_commit *c, const char *path, oq_out **out, oq_err *err);
/* Writes buf[0..len) to a temporary beside path (path is copied). */
oq_status oq_commit_add(oq_commit *c, const char *path, const uint8_t *buf, size_t len, oq_err *err);
/* Renames every temporary onto its path, or changes none of them. */
oq_status oq_commit_finish(oq_commit *c, oq_err *err);

#endif
