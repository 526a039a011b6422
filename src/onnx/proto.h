/* proto.h: what the files of src/onnx share, and the only header that brings
 * in the protobuf-c types; nothing outside this folder includes it.
 *
 *   proto.c      nesting pre-check, packing, error helpers, the save arena
 *   tensor_pb.c  TensorProto <-> oq_tensor, and the single-tensor files
 *   external.c   external data: reading (path and bounds checks) and writing
 *   load.c       ModelProto -> oq_model
 *   save.c       oq_model -> ModelProto, serialization, atomic save */
#ifndef ONNXQ_ONNX_PROTO_H
#define ONNXQ_ONNX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "src/onnx copies ONNX's little-endian raw_data as is; a big-endian host needs byte swapping"
#endif

typedef Onnx__ModelProto ModelProto;
typedef Onnx__GraphProto GraphProto;
typedef Onnx__NodeProto NodeProto;
typedef Onnx__AttributeProto AttributeProto;
typedef Onnx__TensorProto TensorProto;
typedef Onnx__ValueInfoProto ValueInfoProto;
typedef Onnx__TypeProto TypeProto;
typedef Onnx__TypeProto__Tensor TypeTensor;
typedef Onnx__TensorShapeProto TensorShapeProto;
typedef Onnx__TensorShapeProto__Dimension Dimension;
typedef Onnx__OperatorSetIdProto OpsetProto;
typedef Onnx__StringStringEntryProto EntryProto;

/* Subgraphs nested deeper than this are refused (guards our recursion). */
#define MAX_GRAPH_DEPTH 64
/* Messages nested deeper than this are refused before protobuf-c's recursive
 * unpacker sees them (a crafted file could otherwise exhaust the stack). Each
 * subgraph level costs 3 (graph, node, attribute). */
#define MAX_MESSAGE_DEPTH (3 * MAX_GRAPH_DEPTH + 32)

/* ---- proto.c: small helpers ---------------------------------------------------- */

/* Status of a failure already recorded in err (out of memory when err is NULL). */
oq_status pb_status_of(const oq_err *err);
/* Malloc'ed NUL-terminated copy of len bytes (embedded NULs are kept but end
 * the C string); NULL when out of memory. */
char *pb_dup_bytes(const uint8_t *p, size_t len);
/* Writes "float[2,3]" for error messages into buf and returns buf. */
const char *pb_type_str(char *buf, size_t size, oq_dtype dt, int rank, const int64_t *dims);
/* The allocator every message is unpacked with: malloc and free, so a
 * decoded tensor can keep a raw_data buffer (pb_tensor_decode). */
extern ProtobufCAllocator pb_heap;
/* Serializes any message into a malloc'ed buffer (*out, caller frees). */
oq_status pb_pack_alloc(const ProtobufCMessage *msg, uint8_t **out, size_t *len, oq_err *err);

enum { WIRE_OK, WIRE_TOO_DEEP, WIRE_FIELD_ZERO };
/* WIRE_TOO_DEEP when a message of type d in p[0..len) nests sub-messages
 * deeper than MAX_MESSAGE_DEPTH; WIRE_FIELD_ZERO when a field number is 0.
 * Other malformed data is left for the unpacker to reject. */
int pb_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len);

/* ---- proto.c: the arena every message built for one save lives in ------------- */

typedef struct pb_arena_block pb_arena_block;
typedef struct pb_arena {
    pb_arena_block *head;
} pb_arena;

/* Zeroed, max-aligned memory living until pb_arena_free; NULL when out of memory. */
void *pb_arena_alloc(pb_arena *a, size_t n);
/* Frees every block; the arena is empty and reusable afterwards. */
void pb_arena_free(pb_arena *a);
/* protobuf-c allocator over a, for unpacking kept bytes into the message tree. */
ProtobufCAllocator pb_arena_allocator(pb_arena *a);

/* ---- external.c: external data while loading ---------------------------------- */

typedef struct pb_ext_file pb_ext_file;

/* Where external data of one load is resolved. Zero-initialize, set base_dir
 * (and map), and call pb_ext_reader_release when done. */
typedef struct pb_ext_reader {
    const char *base_dir; /* folder external data is resolved against; NULL refuses it */
    bool map;             /* borrow tensors from read-only mappings where alignment allows */
    char *base_real;      /* realpath(base_dir), computed on first use */
    pb_ext_file *files;   /* [n_files] files mapped so far, one mapping each */
    int n_files, cap_files;
} pb_ext_reader;

/* Drops r's references to its mappings (tensors keep their own) and frees r's memory. */
void pb_ext_reader_release(pb_ext_reader *r);
/* Points t (dtype, rank, dims and nbytes set, no data) at the external bytes
 * of tp, after checking that the file lies inside r's folder and holds the
 * range: a read-only view of the file's mapping when r->map and the offset
 * suits the element type, else an owned copy. `what` names the tensor in
 * errors. */
oq_status pb_read_external(pb_ext_reader *r, const TensorProto *tp, const char *what, oq_tensor *t, oq_err *err);

/* ---- the save context: arena, error, external data being written ------------- */

typedef struct pb_save_ctx {
    pb_arena a;
    oq_err *err;
    size_t ext_threshold;     /* tensors of at least this many bytes go external; 0 = never */
    const char *ext_location; /* external data file name, relative to the model */
    const char *ext_path;     /* its path, opened when the first tensor goes there */
    oq_commit *commit;        /* set: files are opened in this commit, which renames them */
    oq_out *ext;              /* the external data file being written (under its temporary name), or NULL */
} pb_save_ctx;

/* Arena copy of an initialized message `init` of `size` bytes; NULL sets err. */
void *pb_msg_new(pb_save_ctx *c, size_t size, const void *init);
#define NEW_MSG(c, T, INIT) ((T *)pb_msg_new((c), sizeof(T), &(T)INIT))
/* Arena array of n elements of `size` bytes (n may be 0); NULL sets err. */
void *pb_arr_new(pb_save_ctx *c, size_t n, size_t size);
/* Non-NULL, non-empty strings for optional fields; others are left unset. */
static inline char *pb_opt_str(const char *s) { return s && *s ? (char *)s : NULL; }
/* StringStringEntryProto borrowing key and value; NULL sets err. */
EntryProto *pb_entry_new(pb_save_ctx *c, const char *key, const char *value);

/* ---- external.c: external data while saving ------------------------------------ */

/* Writes t's bytes (`bytes` of them) to c's external data file (opened at
 * c->ext_path on the first call, in c->commit when set), at an offset aligned
 * to t's element size so a load can map them, and points tp at them
 * (location, offset, length entries). */
oq_status pb_write_external(pb_save_ctx *c, const oq_tensor *t, size_t bytes, TensorProto *tp);

/* ---- tensor_pb.c ------------------------------------------------------------------ */

/* Decodes tp into a new tensor *out (the caller's): owned data, or a view of
 * external data (see pb_read_external). tp must come from an unpack with
 * pb_heap: its raw_data buffer is taken over, not copied (tp loses it).
 * `what` names the tensor in errors ("initializer 'w'"). External data needs
 * ext (NULL refuses it). */
oq_status pb_tensor_decode(pb_ext_reader *ext, TensorProto *tp, const char *what, oq_tensor **out, oq_err *err);
/* TensorProto for t in c's arena (data borrowed from t, or moved to external
 * data); NULL sets c->err. */
TensorProto *pb_tensor_encode(pb_save_ctx *c, const oq_tensor *t, const char *name);

#endif
