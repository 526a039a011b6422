/* oq_onnx_io.h: reading and writing ONNX files (ModelProto, TensorProto).
 * src/onnx/ is the only folder that knows the protobuf-c types. */
#ifndef ONNXQ_OQ_ONNX_IO_H
#define ONNXQ_OQ_ONNX_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

/* Loads a .onnx file into a new model (caller destroys). Initializers and
 * Constant-node tensors are decoded (raw_data or typed fields, little-endian);
 * external data is resolved relative to the model's folder and refused when
 * its path leaves that folder or its range passes the end of the file. Its
 * tensors borrow from a read-only mapping of the file (oq_tensor.mapping; an
 * offset that does not suit the element type is copied instead), which stays
 * mapped while any tensor holds it. The graph is indexed and sorted; dangling
 * inputs and cycles are errors. */
oq_status oq_model_load(oq_model **out, const char *path, oq_err *err);
/* The same, and the SHA-256 (hex) of the file's bytes in sha256 (may be
 * NULL), from the one read of the file. */
oq_status oq_model_load_hashed(oq_model **out, const char *path, char sha256[65], oq_err *err);
/* Same from a buffer; external data resolves against base_dir (NULL = refuse it). */
oq_status oq_model_load_buffer(oq_model **out, const uint8_t *buf, size_t len, const char *base_dir,
                               oq_err *err);

/* Constants of at least this many bytes go to external data when it is used
 * (ONNX's own default). */
#define OQ_EXTERNAL_THRESHOLD 1024

typedef struct oq_save_options {
    /* Constants of at least this many bytes go to an external data file
     * (<model file name>.data beside the model) whatever the model's size;
     * OQ_EXTERNAL_THRESHOLD is the usual value. 0 = automatic: all inline,
     * unless the model would pass protobuf's 2 GB limit, then as with
     * OQ_EXTERNAL_THRESHOLD. */
    size_t external_threshold;
} oq_save_options;

/* Writes m to path (and its external data, if any, to path.data), each
 * through a temporary file in the same folder that is renamed only when both
 * are complete; on failure nothing at either path has changed. opts may be
 * NULL (automatic). Tensors are written from their memory, never gathered in
 * a buffer; external data offsets are multiples of each tensor's element size,
 * so loading maps them. Output is a deterministic function of m and opts. */
oq_status oq_model_save(const oq_model *m, const char *path, const oq_save_options *opts, oq_err *err);
/* The same into outputs of commit (oq_file.h): path and, when a tensor goes
 * to external data, path.data are opened in it, written, and renamed (the
 * data first) by the caller's oq_commit_finish together with its other files,
 * or removed with it. */
oq_status oq_model_save_commit(const oq_model *m, oq_commit *commit, const char *path, const oq_save_options *opts,
                               oq_err *err);
/* Largest message protobuf reads (2 GB - 1; ONNX Runtime and python's onnx
 * refuse longer models): a model whose serialized size passes it must keep
 * its constants in external data. */
#define OQ_PROTOBUF_LIMIT ((size_t)INT32_MAX)
/* Bytes m serializes to with every constant inline (*len; nothing is
 * serialized). */
oq_status oq_model_serialized_size(const oq_model *m, size_t *len, oq_err *err);
/* Serializes m (all inline) to a malloc'ed buffer the caller frees; refuses
 * (OQ_EUNSUPPORTED) a model over protobuf's 2 GB limit. */
oq_status oq_model_serialize(const oq_model *m, uint8_t **buf, size_t *len, oq_err *err);

/* Reads one serialized TensorProto file (ONNX test data: input_0.pb, ...).
 * *t becomes an owned tensor; *name (may be NULL) receives a malloc'ed copy of
 * its name ("" if none). */
oq_status oq_tensor_load_pb(oq_tensor *t, char **name, const char *path, oq_err *err);
/* Same from buf[0..len) (borrowed); `what` names it in errors; external data
 * resolves against base_dir (NULL = refuse it) and is copied, not mapped. */
oq_status oq_tensor_parse_pb(oq_tensor *t, char **name, const uint8_t *buf, size_t len, const char *what,
                            const char *base_dir, oq_err *err);
/* Writes t as a TensorProto named `name` to path atomically. */
oq_status oq_tensor_save_pb(const oq_tensor *t, const char *name, const char *path, oq_err *err);

#endif
