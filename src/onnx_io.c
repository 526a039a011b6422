/* onnx_io.c: ONNX files <-> the in-memory model (see oq_onnx_io.h).
 *
 * The only file that knows the protobuf-c types. Loading unpacks a ModelProto
 * and copies everything into the IR (decoded tensors, owned strings), so the
 * protobuf message is freed before returning. Saving builds a fresh message
 * tree whose nodes all live in one arena, packs it and frees the arena; large
 * buffers (tensor data, names) are borrowed from the IR, never copied.
 *
 * Not modelled, and how each is handled:
 *   - ModelProto.functions, training_info and unknown ModelProto fields: kept
 *     as bytes in oq_model.passthrough and appended to the saved model.
 *   - sparse_initializer: refused (OQ_EUNSUPPORTED).
 *   - sparse / type-proto attributes and attributes of unknown type: kept as
 *     the serialized AttributeProto in oq_attr.raw, written back unchanged.
 *   - non-tensor value types: serialized TypeProto in oq_value.type_bytes.
 *   - metadata_props of graphs, nodes, values and tensors, quantization
 *     annotations, dim denotations and node overloads are dropped.
 *
 * Constant nodes: the tensor of their `value` attribute becomes the output
 * value's constant and the attribute is removed from the node; saving writes it
 * back from that constant (value_float(s)/value_int(s)/value_string(s) stay as
 * attributes and are rewritten from the constant too), so edits of the
 * constant are what gets saved. */
#include "onnxq/oq_onnx_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnxq/oq_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx_io.c copies ONNX's little-endian raw_data as is; a big-endian host needs byte swapping"
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
/* Error context names only the outer subgraph levels, so the cause still fits. */
#define CONTEXT_DEPTH 2

/* ---- small helpers ------------------------------------------------------------- */

/* Replaces *dst (freed) with a copy of s ("" when NULL). */
static oq_status set_str(char **dst, const char *s, oq_err *err)
{
    char *copy = strdup(s ? s : "");
    if (!copy)
        return oq_errf(err, OQ_ENOMEM, "out of memory copying a string");
    free(*dst);
    *dst = copy;
    return OQ_OK;
}

/* Status of a failure already recorded in err (out of memory when err is NULL). */
static oq_status status_of(const oq_err *err) { return err && err->status ? err->status : OQ_ENOMEM; }

/* Malloc'ed NUL-terminated copy of len bytes (embedded NULs are kept but end the C string). */
static char *dup_bytes(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        if (len)
            memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* Writes "float[2,3]" for error messages into buf. */
static const char *type_str(char *buf, size_t size, oq_dtype dt, int rank, const int64_t *dims)
{
    int k = snprintf(buf, size, "%s[", oq_dtype_name(dt));
    for (int i = 0; i < rank && k > 0 && (size_t)k < size; i++)
        k += snprintf(buf + k, size - (size_t)k, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (k > 0 && (size_t)k < size)
        snprintf(buf + k, size - (size_t)k, "]");
    return buf;
}

/* Serializes any message into a malloc'ed buffer. */
static oq_status pack_alloc(const ProtobufCMessage *msg, uint8_t **out, size_t *len, oq_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return oq_errf(err, OQ_ENOMEM, "out of memory serializing %zu bytes", n);
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *len = n;
    return OQ_OK;
}

/* ================================================================================
 * Loading
 * ================================================================================ */

/* ---- nesting pre-check ------------------------------------------------------------ */

static bool read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

enum { WIRE_OK, WIRE_TOO_DEEP, WIRE_FIELD_ZERO };

/* WIRE_TOO_DEEP when a message of type d in p[0..len) nests sub-messages
 * deeper than MAX_MESSAGE_DEPTH; WIRE_FIELD_ZERO when a field number is 0
 * (invalid; protobuf-c keeps it as an unknown field it cannot read back once
 * written). Walks the wire format with the schema, recursing only into
 * message fields and never past the limit. Other malformed data is left for
 * the unpacker to reject. */
static int wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
    if (depth > MAX_MESSAGE_DEPTH)
        return WIRE_TOO_DEEP;
    size_t i = 0;
    while (i < len) {
        uint64_t key, n;
        if (!read_varint(p, len, &i, &key))
            return WIRE_OK;
        if (key >> 3 == 0)
            return WIRE_FIELD_ZERO;
        switch (key & 7) {
        case 0:
            if (!read_varint(p, len, &i, &n))
                return WIRE_OK;
            break;
        case 1:
            i += 8;
            break;
        case 5:
            i += 4;
            break;
        case 2: {
            if (!read_varint(p, len, &i, &n) || n > len - i)
                return WIRE_OK;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            int r = f && f->type == PROTOBUF_C_TYPE_MESSAGE ? wire_check(f->descriptor, p + i, (size_t)n, depth + 1)
                                                            : WIRE_OK;
            if (r != WIRE_OK)
                return r;
            i += (size_t)n;
            break;
        }
        default:
            return WIRE_OK;
        }
    }
    return WIRE_OK;
}

typedef struct load_ctx {
    oq_model *model;
    const char *base_dir; /* folder external data is resolved against; NULL refuses it */
    char *base_real;      /* realpath(base_dir), computed on first use */
} load_ctx;

/* ---- external data -------------------------------------------------------------- */

/* Parses a non-negative decimal for external_data offset/length. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Refuses locations that are absolute or contain a ".." component. */
static bool location_is_local(const char *loc)
{
    if (loc[0] == '/')
        return false;
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

/* Reads the external bytes of tp into t (allocated, `want` bytes), after
 * checking that the file lies inside the model's folder and holds the range. */
static oq_status read_external(load_ctx *c, const TensorProto *tp, const char *what, oq_tensor *t, size_t want,
                               oq_err *err)
{
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    char *path = NULL, *real = NULL;
    int fd = -1;
    oq_status st = OQ_OK;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const EntryProto *e = tp->external_data[i];
        if (!e->key)
            continue;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            off_s = e->value;
        else if (!strcmp(e->key, "length"))
            len_s = e->value;
    }
    if (t->dtype == OQ_DTYPE_STRING)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: string tensors cannot use external data", what);
    if (!loc || !*loc)
        return oq_errf(err, OQ_EINVAL, "%s: external data has no location", what);
    if (!c->base_dir)
        return oq_errf(err, OQ_EINVAL, "%s: external data '%s' needs the model's folder (loaded from memory)",
                       what, loc);
    if (!location_is_local(loc))
        return oq_errf(err, OQ_EINVAL, "%s: external data location '%s' leaves the model's folder", what, loc);
    uint64_t offset = 0, length = 0;
    if (off_s && !parse_u64(off_s, &offset))
        return oq_errf(err, OQ_EINVAL, "%s: external data offset '%s' is not a number", what, off_s);
    if (len_s && !parse_u64(len_s, &length))
        return oq_errf(err, OQ_EINVAL, "%s: external data length '%s' is not a number", what, len_s);

    if (!c->base_real && !(c->base_real = realpath(c->base_dir, NULL)))
        return oq_errf(err, OQ_EIO, "%s: cannot resolve the model's folder '%s': %s", what, c->base_dir,
                       strerror(errno));
    size_t n = strlen(c->base_dir) + strlen(loc) + 2;
    if (!(path = malloc(n)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s", c->base_dir, loc);
    if (!(real = realpath(path, NULL))) {
        st = oq_errf(err, OQ_EIO, "%s: external data file '%s': %s", what, loc, strerror(errno));
        goto fail;
    }
    size_t bl = strlen(c->base_real);
    bool inside = strncmp(real, c->base_real, bl) == 0 &&
                  (real[bl] == '/' || (bl > 0 && c->base_real[bl - 1] == '/'));
    if (!inside) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data file '%s' resolves outside the model's folder", what, loc);
        goto fail;
    }
    struct stat sb;
    if ((fd = open(real, O_RDONLY)) < 0 || fstat(fd, &sb) != 0) {
        st = oq_errf(err, OQ_EIO, "%s: external data file '%s': %s", what, loc, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data file '%s' is not a regular file", what, loc);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (offset > size) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data offset %llu is past the end of '%s' (%llu bytes)", what,
                     (unsigned long long)offset, loc, (unsigned long long)size);
        goto fail;
    }
    if (!len_s)
        length = size - offset;
    if (length > size - offset) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data range [%llu, %llu+%llu) passes the end of '%s' (%llu bytes)",
                     what, (unsigned long long)offset, (unsigned long long)offset, (unsigned long long)length, loc,
                     (unsigned long long)size);
        goto fail;
    }
    if (length != want) {
        char ts[160];
        st = oq_errf(err, OQ_EINVAL, "%s: external data has %llu bytes, expected %zu for %s", what,
                     (unsigned long long)length, want, type_str(ts, sizeof ts, t->dtype, t->rank, t->dims));
        goto fail;
    }
    for (size_t got = 0; got < want;) {
        ssize_t r = pread(fd, (uint8_t *)t->data + got, want - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            st = oq_errf(err, OQ_EIO, "%s: reading external data '%s': %s", what, loc,
                         r < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)r;
    }
fail:
    if (fd >= 0)
        close(fd);
    free(real);
    free(path);
    return st;
}

/* ---- tensors ------------------------------------------------------------------- */

/* Checks that a typed field holds exactly `want` entries. */
static oq_status check_count(const char *what, const char *field, size_t have, uint64_t want, const oq_tensor *t,
                             oq_err *err)
{
    if (have == want)
        return OQ_OK;
    char ts[160];
    return oq_errf(err, OQ_EINVAL, "%s: %s has %zu elements, expected %llu for %s", what, field, have,
                   (unsigned long long)want, type_str(ts, sizeof ts, t->dtype, t->rank, t->dims));
}

/* Copies the typed-field elements of tp into t (allocated, numel elements). */
static oq_status decode_typed(const TensorProto *tp, const char *what, oq_tensor *t, int64_t numel, oq_err *err)
{
    uint64_t n = (uint64_t)numel;
    oq_status st;
    switch (t->dtype) {
    case OQ_DTYPE_FLOAT:
    case OQ_DTYPE_COMPLEX64: {
        uint64_t want = t->dtype == OQ_DTYPE_FLOAT ? n : 2 * n;
        if ((st = check_count(what, "float_data", tp->n_float_data, want, t, err)))
            return st;
        if (want)
            memcpy(t->data, tp->float_data, want * sizeof(float));
        return OQ_OK;
    }
    case OQ_DTYPE_DOUBLE:
    case OQ_DTYPE_COMPLEX128: {
        uint64_t want = t->dtype == OQ_DTYPE_DOUBLE ? n : 2 * n;
        if ((st = check_count(what, "double_data", tp->n_double_data, want, t, err)))
            return st;
        if (want)
            memcpy(t->data, tp->double_data, want * sizeof(double));
        return OQ_OK;
    }
    case OQ_DTYPE_INT64:
        if ((st = check_count(what, "int64_data", tp->n_int64_data, n, t, err)))
            return st;
        if (n)
            memcpy(t->data, tp->int64_data, n * sizeof(int64_t));
        return OQ_OK;
    case OQ_DTYPE_UINT64:
    case OQ_DTYPE_UINT32:
        if ((st = check_count(what, "uint64_data", tp->n_uint64_data, n, t, err)))
            return st;
        for (uint64_t i = 0; i < n; i++) {
            if (t->dtype == OQ_DTYPE_UINT64)
                ((uint64_t *)t->data)[i] = tp->uint64_data[i];
            else
                ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i];
        }
        return OQ_OK;
    case OQ_DTYPE_INT32:
        if ((st = check_count(what, "int32_data", tp->n_int32_data, n, t, err)))
            return st;
        if (n)
            memcpy(t->data, tp->int32_data, n * sizeof(int32_t));
        return OQ_OK;
    case OQ_DTYPE_INT16:
    case OQ_DTYPE_UINT16:
    case OQ_DTYPE_FLOAT16:
    case OQ_DTYPE_BFLOAT16: /* 16-bit patterns, one per entry */
        if ((st = check_count(what, "int32_data", tp->n_int32_data, n, t, err)))
            return st;
        for (uint64_t i = 0; i < n; i++)
            ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i];
        return OQ_OK;
    case OQ_DTYPE_INT8:
    case OQ_DTYPE_UINT8:
    case OQ_DTYPE_BOOL:
    case OQ_DTYPE_FLOAT8E4M3FN:
    case OQ_DTYPE_FLOAT8E4M3FNUZ:
    case OQ_DTYPE_FLOAT8E5M2:
    case OQ_DTYPE_FLOAT8E5M2FNUZ:
    case OQ_DTYPE_UINT4: /* 4-bit types: one packed byte (two elements) per entry */
    case OQ_DTYPE_INT4: {
        uint64_t want = t->dtype == OQ_DTYPE_UINT4 || t->dtype == OQ_DTYPE_INT4 ? (n + 1) / 2 : n;
        if ((st = check_count(what, "int32_data", tp->n_int32_data, want, t, err)))
            return st;
        for (uint64_t i = 0; i < want; i++)
            ((uint8_t *)t->data)[i] = (uint8_t)tp->int32_data[i];
        return OQ_OK;
    }
    case OQ_DTYPE_STRING:
        if ((st = check_count(what, "string_data", tp->n_string_data, n, t, err)))
            return st;
        for (uint64_t i = 0; i < n; i++)
            if (!(((char **)t->data)[i] = dup_bytes(tp->string_data[i].data, tp->string_data[i].len)))
                return oq_errf(err, OQ_ENOMEM, "%s: out of memory copying strings", what);
        return OQ_OK;
    default:
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: element type %s cannot be decoded", what,
                       oq_dtype_name(t->dtype));
    }
}

/* Decodes tp into a new owned tensor *out. `what` names the tensor in errors
 * ("initializer 'w'"). External data needs c (may be NULL to refuse it). */
static oq_status tensor_from_proto(load_ctx *c, const TensorProto *tp, const char *what, oq_tensor **out, oq_err *err)
{
    *out = NULL;
    int dt = tp->has_data_type ? tp->data_type : 0;
    if (dt == 0)
        return oq_errf(err, OQ_EINVAL, "%s: data_type is not set", what);
    if (!oq_dtype_valid(dt))
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: unknown data_type %d", what, dt);
    if (tp->n_dims > OQ_MAX_RANK)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: rank %zu is above the supported %d", what, tp->n_dims,
                       OQ_MAX_RANK);
    int rank = (int)tp->n_dims;
    for (int i = 0; i < rank; i++)
        if (tp->dims[i] < 0)
            return oq_errf(err, OQ_EINVAL, "%s: dim %d is negative (%lld)", what, i, (long long)tp->dims[i]);
    int64_t numel = oq_shape_numel(rank, tp->dims);
    if (numel < 0)
        return oq_errf(err, OQ_EINVAL, "%s: the product of its dims overflows", what);
    size_t want = oq_dtype_storage((oq_dtype)dt, numel);
    if (want == SIZE_MAX || want > oq_tensor_limit())
        return oq_errf(err, OQ_ENOMEM, "%s: %lld %s elements exceed the tensor size limit of %zu bytes", what,
                       (long long)numel, oq_dtype_name((oq_dtype)dt), oq_tensor_limit());
    if (tp->segment)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: segmented tensors are not supported", what);

    oq_status st;
    oq_tensor *t = oq_tensor_create((oq_dtype)dt, rank, tp->dims, err);
    if (!t) {
        oq_err_context(err, "%s", what);
        return status_of(err);
    }
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = c ? read_external(c, tp, what, t, want, err)
               : oq_errf(err, OQ_EINVAL, "%s: external data is not allowed here", what);
    } else if (tp->has_raw_data) {
        char ts[160];
        if (dt == OQ_DTYPE_STRING)
            st = oq_errf(err, OQ_EINVAL, "%s: string tensor stored in raw_data", what);
        else if (tp->raw_data.len != want)
            st = oq_errf(err, OQ_EINVAL, "%s: raw_data has %zu bytes, expected %zu for %s", what, tp->raw_data.len,
                         want, type_str(ts, sizeof ts, t->dtype, rank, t->dims));
        else {
            if (want)
                memcpy(t->data, tp->raw_data.data, want);
            st = OQ_OK;
        }
    } else {
        st = decode_typed(tp, what, t, numel, err);
    }
    if (st) {
        oq_tensor_destroy(t);
        return st;
    }
    *out = t;
    return OQ_OK;
}

/* ---- value types --------------------------------------------------------------- */

/* Declares v's type from tp (NULL = leave undeclared). Tensor types with a
 * known element type are modelled; any other TypeProto is kept as bytes. */
static oq_status set_value_type(oq_value *v, const TypeProto *tp, oq_err *err)
{
    if (!tp)
        return OQ_OK;
    const TypeTensor *tt = tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? tp->tensor_type : NULL;
    int elem = tt && tt->has_elem_type ? tt->elem_type : 0;
    if (tt && (elem == 0 || oq_dtype_valid(elem))) {
        const TensorShapeProto *sp = tt->shape;
        if (sp && sp->n_dim > INT_MAX / 2)
            return oq_errf(err, OQ_EINVAL, "value '%s': shape has too many dims", v->name);
        int rank = sp ? (int)sp->n_dim : -1;
        oq_dim *dims = rank > 0 ? calloc((size_t)rank, sizeof *dims) : NULL;
        if (rank > 0 && !dims)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        for (int i = 0; i < rank; i++) {
            const Dimension *d = sp->dim[i];
            dims[i].value = -1;
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0)
                dims[i].value = d->dim_value;
            else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                dims[i].param = d->dim_param; /* borrowed; oq_value_set_tensor_type copies */
        }
        oq_status st = oq_value_set_tensor_type(v, (oq_dtype)elem, rank, dims, err);
        free(dims);
        return st;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    oq_status st = pack_alloc(&tp->base, &bytes, &len, err);
    if (st)
        return st;
    if (v->dims)
        for (int i = 0; i < v->rank; i++)
            free(v->dims[i].param);
    free(v->dims);
    free(v->type_bytes);
    v->dims = NULL;
    v->rank = -1;
    v->dtype = OQ_DTYPE_UNDEFINED;
    v->kind = OQ_TYPE_OPAQUE;
    v->type_bytes = bytes;
    v->type_bytes_len = len;
    return OQ_OK;
}

/* Declares name/type/doc of a ValueInfoProto on its value in g, creating it. */
static oq_value *value_from_info(oq_graph *g, const ValueInfoProto *vi, const char *role, size_t idx, bool retype,
                                 oq_err *err)
{
    if (!vi->name || !*vi->name) {
        oq_errf(err, OQ_EINVAL, "graph %s %zu has no name", role, idx);
        return NULL;
    }
    oq_value *v = oq_graph_value(g, vi->name, err);
    if (!v)
        return NULL;
    if ((retype || v->kind == OQ_TYPE_NONE) && set_value_type(v, vi->type, err))
        return NULL;
    if (vi->doc_string && *vi->doc_string && set_str(&v->doc_string, vi->doc_string, err))
        return NULL;
    return v;
}

/* ---- graphs, nodes, attributes ------------------------------------------------- */

static oq_status graph_from_proto(load_ctx *c, const GraphProto *gp, oq_graph *parent, int depth, oq_graph **out,
                                  oq_err *err);

/* Serialized copy of ap, for attribute kinds the IR keeps opaque. */
static oq_status attr_keep_raw(const AttributeProto *ap, oq_attr *a, oq_err *err)
{
    return pack_alloc(&ap->base, &a->raw, &a->raw_len, err);
}

/* The attribute type of a proto that predates AttributeProto.type (IR 1). */
static oq_attr_type attr_guess_type(const AttributeProto *ap)
{
    if (ap->has_f)
        return OQ_ATTR_FLOAT;
    if (ap->has_i)
        return OQ_ATTR_INT;
    if (ap->has_s)
        return OQ_ATTR_STRING;
    if (ap->t)
        return OQ_ATTR_TENSOR;
    if (ap->g)
        return OQ_ATTR_GRAPH;
    if (ap->n_floats)
        return OQ_ATTR_FLOATS;
    if (ap->n_ints)
        return OQ_ATTR_INTS;
    if (ap->n_strings)
        return OQ_ATTR_STRINGS;
    if (ap->n_tensors)
        return OQ_ATTR_TENSORS;
    if (ap->n_graphs)
        return OQ_ATTR_GRAPHS;
    return OQ_ATTR_UNDEFINED;
}

/* Fills a (zeroed) from ap. g is the graph holding the node (parent of subgraphs). */
static oq_status attr_from_proto(load_ctx *c, oq_graph *g, const AttributeProto *ap, oq_attr *a, int depth,
                                 oq_err *err)
{
    oq_status st;
    if (!ap->name || !*ap->name)
        return oq_errf(err, OQ_EINVAL, "attribute without a name");
    if ((st = set_str(&a->name, ap->name, err)))
        return st;
    if (ap->ref_attr_name && (st = set_str(&a->ref_attr_name, ap->ref_attr_name, err)))
        return st;
    if (ap->doc_string && *ap->doc_string && (st = set_str(&a->doc_string, ap->doc_string, err)))
        return st;
    a->type = ap->has_type ? (oq_attr_type)ap->type : attr_guess_type(ap);
    char what[200];
    snprintf(what, sizeof what, "attribute '%s'", ap->name);
    size_t n = 0;
    switch (a->type) {
    case OQ_ATTR_FLOAT:
        a->f = ap->f;
        return OQ_OK;
    case OQ_ATTR_INT:
        a->i = ap->i;
        return OQ_OK;
    case OQ_ATTR_STRING:
        if (!(a->s = dup_bytes(ap->s.data, ap->s.len)))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        a->s_len = ap->s.len;
        return OQ_OK;
    case OQ_ATTR_TENSOR:
        if (!ap->t)
            return oq_errf(err, OQ_EINVAL, "%s: type TENSOR but no tensor", what);
        return tensor_from_proto(c, ap->t, what, &a->t, err);
    case OQ_ATTR_GRAPH:
        if (!ap->g)
            return oq_errf(err, OQ_EINVAL, "%s: type GRAPH but no graph", what);
        return graph_from_proto(c, ap->g, g, depth + 1, &a->g, err);
    case OQ_ATTR_FLOATS:
        n = ap->n_floats;
        break;
    case OQ_ATTR_INTS:
        n = ap->n_ints;
        break;
    case OQ_ATTR_STRINGS:
        n = ap->n_strings;
        break;
    case OQ_ATTR_TENSORS:
        n = ap->n_tensors;
        break;
    case OQ_ATTR_GRAPHS:
        n = ap->n_graphs;
        break;
    default: /* sparse tensors, type protos, unknown kinds: kept serialized */
        return attr_keep_raw(ap, a, err);
    }
    if (n > INT_MAX)
        return oq_errf(err, OQ_EINVAL, "%s: list of %zu entries is too long", what, n);
    size_t esize = a->type == OQ_ATTR_FLOATS ? sizeof(float)
                   : a->type == OQ_ATTR_INTS ? sizeof(int64_t)
                                             : sizeof(void *);
    void *arr = calloc(n ? n : 1, esize);
    if (!arr)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    switch (a->type) {
    case OQ_ATTR_FLOATS:
        a->floats = arr;
        if (n)
            memcpy(a->floats, ap->floats, n * esize);
        a->n = (int)n;
        return OQ_OK;
    case OQ_ATTR_INTS:
        a->ints = arr;
        if (n)
            memcpy(a->ints, ap->ints, n * esize);
        a->n = (int)n;
        return OQ_OK;
    case OQ_ATTR_STRINGS:
        a->strings = arr;
        for (size_t i = 0; i < n; i++, a->n++)
            if (!(a->strings[i] = dup_bytes(ap->strings[i].data, ap->strings[i].len)))
                return oq_errf(err, OQ_ENOMEM, "out of memory");
        return OQ_OK;
    case OQ_ATTR_TENSORS:
        a->tensors = arr;
        for (size_t i = 0; i < n; i++, a->n++) {
            char w[240];
            snprintf(w, sizeof w, "%s tensor %zu", what, i);
            if ((st = tensor_from_proto(c, ap->tensors[i], w, &a->tensors[i], err)))
                return st;
        }
        return OQ_OK;
    default: /* GRAPHS */
        a->graphs = arr;
        for (size_t i = 0; i < n; i++, a->n++) {
            if ((st = graph_from_proto(c, ap->graphs[i], g, depth + 1, &a->graphs[i], err))) {
                if (depth <= CONTEXT_DEPTH)
                    oq_err_context(err, "%s graph %zu", what, i);
                return st;
            }
        }
        return OQ_OK;
    }
}

/* The constant a Constant node's value_* attribute stands for, as a new tensor. */
static oq_status constant_from_attr(const oq_attr *a, oq_tensor **out, oq_err *err)
{
    const char *nm = a->name;
    bool list = a->type == OQ_ATTR_FLOATS || a->type == OQ_ATTR_INTS || a->type == OQ_ATTR_STRINGS;
    oq_dtype dt = OQ_DTYPE_UNDEFINED;
    if (!strcmp(nm, "value_float") && a->type == OQ_ATTR_FLOAT)
        dt = OQ_DTYPE_FLOAT;
    else if (!strcmp(nm, "value_floats") && a->type == OQ_ATTR_FLOATS)
        dt = OQ_DTYPE_FLOAT;
    else if (!strcmp(nm, "value_int") && a->type == OQ_ATTR_INT)
        dt = OQ_DTYPE_INT64;
    else if (!strcmp(nm, "value_ints") && a->type == OQ_ATTR_INTS)
        dt = OQ_DTYPE_INT64;
    else if (!strcmp(nm, "value_string") && a->type == OQ_ATTR_STRING)
        dt = OQ_DTYPE_STRING;
    else if (!strcmp(nm, "value_strings") && a->type == OQ_ATTR_STRINGS)
        dt = OQ_DTYPE_STRING;
    *out = NULL;
    if (dt == OQ_DTYPE_UNDEFINED)
        return OQ_OK; /* not a value attribute (or sparse_value): no constant */
    int64_t len = list ? a->n : 1;
    oq_tensor *t = oq_tensor_create(dt, list ? 1 : 0, &len, err);
    if (!t)
        return status_of(err);
    for (int64_t i = 0; i < len; i++) {
        if (dt == OQ_DTYPE_FLOAT)
            ((float *)t->data)[i] = list ? a->floats[i] : a->f;
        else if (dt == OQ_DTYPE_INT64)
            ((int64_t *)t->data)[i] = list ? a->ints[i] : a->i;
        else if (!(((char **)t->data)[i] = strdup(list ? a->strings[i] : a->s))) {
            oq_tensor_destroy(t);
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        }
    }
    *out = t;
    return OQ_OK;
}

/* Appends the node np (index idx in its graph) to g. */
static oq_status node_from_proto(load_ctx *c, oq_graph *g, const NodeProto *np, size_t idx, int depth, oq_err *err)
{
    oq_status st;
    const char *name = np->name ? np->name : "";
    char label[300]; /* "node 3 'conv1' (Conv)" or "node 3 (Conv)" for errors */
    const char *op = np->op_type ? np->op_type : "?";
    if (*name)
        snprintf(label, sizeof label, "node %zu '%s' (%s)", idx, name, op);
    else
        snprintf(label, sizeof label, "node %zu (%s)", idx, op);
    if (!np->op_type || !*np->op_type)
        return oq_errf(err, OQ_EINVAL, "%s has no op_type", label);
    if (np->n_input > INT_MAX || np->n_output > INT_MAX)
        return oq_errf(err, OQ_EINVAL, "%s has too many inputs or outputs", label);
    oq_node *n = oq_graph_add_node(g, np->op_type, np->domain, name, (int)np->n_input,
                                   (const char *const *)np->input, (int)np->n_output,
                                   (const char *const *)np->output, err);
    if (!n) {
        oq_err_context(err, "%s", label);
        return status_of(err);
    }
    if (np->doc_string && *np->doc_string && (st = set_str(&n->doc_string, np->doc_string, err)))
        return st;
    bool is_constant = !strcmp(n->op_type, "Constant") && !*n->domain;
    oq_tensor *constant = NULL;
    if (np->n_attribute) {
        if (np->n_attribute > INT_MAX)
            return oq_errf(err, OQ_EINVAL, "%s has too many attributes", label);
        if (!(n->attrs = calloc(np->n_attribute, sizeof *n->attrs)))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        const AttributeProto *ap = np->attribute[i];
        if (is_constant && ap->name && !strcmp(ap->name, "value") && ap->t &&
            (!ap->has_type || ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)) {
            oq_tensor_destroy(constant);
            if ((st = tensor_from_proto(c, ap->t, "attribute 'value'", &constant, err)))
                goto fail;
            continue;
        }
        oq_attr *a = &n->attrs[n->n_attrs++];
        if ((st = attr_from_proto(c, g, ap, a, depth, err)))
            goto fail;
        if (is_constant && !constant && (st = constant_from_attr(a, &constant, err)))
            goto fail;
    }
    if (is_constant && constant) {
        if (n->n_outputs < 1 || !n->outputs[0]) {
            st = oq_errf(err, OQ_EINVAL, "Constant node without an output");
            goto fail;
        }
        if ((st = oq_graph_set_constant(g, n->outputs[0], constant, false, err)))
            goto fail;
        constant = NULL;
    }
    return OQ_OK;
fail:
    oq_tensor_destroy(constant);
    if (depth <= CONTEXT_DEPTH)
        oq_err_context(err, "%s", label);
    return st;
}

/* Builds a new graph (owned by the caller) from gp. */
static oq_status graph_from_proto(load_ctx *c, const GraphProto *gp, oq_graph *parent, int depth, oq_graph **out,
                                  oq_err *err)
{
    oq_status st = OQ_OK;
    *out = NULL;
    if (depth > MAX_GRAPH_DEPTH)
        return oq_errf(err, OQ_EUNSUPPORTED, "subgraphs nested more than %d deep", MAX_GRAPH_DEPTH);
    oq_graph *g = oq_graph_create(c->model, parent);
    if (!g)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    if ((gp->name && (st = set_str(&g->name, gp->name, err))) ||
        (gp->doc_string && (st = set_str(&g->doc_string, gp->doc_string, err))))
        goto fail;
    if (gp->n_sparse_initializer) {
        const TensorProto *vt = gp->sparse_initializer[0]->values;
        st = oq_errf(err, OQ_EUNSUPPORTED, "sparse initializer '%s' is not supported",
                     vt && vt->name ? vt->name : "");
        goto fail;
    }
    /* initializers first, so saving (graph value order) keeps their file order */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const TensorProto *tp = gp->initializer[i];
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", tp->name ? tp->name : "");
        if (!tp->name || !*tp->name) {
            st = oq_errf(err, OQ_EINVAL, "initializer %zu has no name", i);
            goto fail;
        }
        oq_value *v = oq_graph_value(g, tp->name, err);
        if (!v) {
            st = status_of(err);
            goto fail;
        }
        if (v->constant) {
            st = oq_errf(err, OQ_EINVAL, "%s appears twice", what);
            goto fail;
        }
        oq_tensor *t;
        if ((st = tensor_from_proto(c, tp, what, &t, err)))
            goto fail;
        if ((st = oq_graph_set_constant(g, v, t, true, err))) {
            oq_tensor_destroy(t);
            goto fail;
        }
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        oq_value *v = value_from_info(g, gp->input[i], "input", i, true, err);
        if (!v || (st = oq_graph_add_input(g, v, err))) {
            st = status_of(err);
            goto fail;
        }
    }
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = node_from_proto(c, g, gp->node[i], i, depth, err)))
            goto fail;
    for (size_t i = 0; i < gp->n_output; i++) {
        oq_value *v = value_from_info(g, gp->output[i], "output", i, true, err);
        if (!v || (st = oq_graph_add_output(g, v, err))) {
            st = status_of(err);
            goto fail;
        }
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        if (!value_from_info(g, gp->value_info[i], "value_info", i, false, err)) {
            st = status_of(err);
            goto fail;
        }
    }
    *out = g;
    return OQ_OK;
fail:
    if (parent && gp->name && *gp->name && depth <= CONTEXT_DEPTH)
        oq_err_context(err, "subgraph '%s'", gp->name);
    oq_graph_destroy(g);
    return st;
}

/* Keeps the ModelProto fields the IR does not model as serialized bytes. */
static oq_status keep_passthrough(oq_model *m, const ModelProto *mp, oq_err *err)
{
    ModelProto rest = ONNX__MODEL_PROTO__INIT;
    rest.n_functions = mp->n_functions;
    rest.functions = mp->functions;
    rest.n_training_info = mp->n_training_info;
    rest.training_info = mp->training_info;
    rest.base.n_unknown_fields = mp->base.n_unknown_fields;
    rest.base.unknown_fields = mp->base.unknown_fields;
    if (protobuf_c_message_get_packed_size(&rest.base) == 0)
        return OQ_OK;
    return pack_alloc(&rest.base, &m->passthrough, &m->passthrough_len, err);
}

static oq_status model_from_proto(load_ctx *c, const ModelProto *mp, oq_err *err)
{
    oq_model *m = c->model;
    oq_status st;
    if (!mp->graph)
        return oq_errf(err, OQ_EINVAL, "not a valid ONNX model (it has no graph)");
    m->ir_version = mp->ir_version;
    m->model_version = mp->model_version;
    if ((mp->producer_name && (st = set_str(&m->producer_name, mp->producer_name, err))) ||
        (mp->producer_version && (st = set_str(&m->producer_version, mp->producer_version, err))) ||
        (mp->domain && (st = set_str(&m->domain, mp->domain, err))) ||
        (mp->doc_string && (st = set_str(&m->doc_string, mp->doc_string, err))))
        return st;
    if (mp->n_opset_import > INT_MAX || mp->n_metadata_props > INT_MAX)
        return oq_errf(err, OQ_EINVAL, "too many opset imports or metadata entries");
    if (mp->n_opset_import && !(m->opsets = calloc(mp->n_opset_import, sizeof *m->opsets)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const OpsetProto *op = mp->opset_import[i];
        const char *d = op->domain && strcmp(op->domain, "ai.onnx") ? op->domain : "";
        m->opsets[m->n_opsets].version = op->version;
        if ((st = set_str(&m->opsets[m->n_opsets++].domain, d, err)))
            return st;
    }
    if (mp->n_metadata_props && !(m->metadata = calloc(mp->n_metadata_props, sizeof *m->metadata)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        oq_kv *kv = &m->metadata[m->n_metadata++];
        if ((st = set_str(&kv->key, mp->metadata_props[i]->key, err)) ||
            (st = set_str(&kv->value, mp->metadata_props[i]->value, err)))
            return st;
    }
    if ((st = keep_passthrough(m, mp, err)))
        return st;
    if ((st = graph_from_proto(c, mp->graph, NULL, 0, &m->graph, err)))
        return st;
    return oq_graph_sort(m->graph, err);
}

oq_status oq_model_load_buffer(oq_model **out, const uint8_t *buf, size_t len, const char *base_dir, oq_err *err)
{
    *out = NULL;
    oq_status st;
    load_ctx c = {.model = oq_model_create(), .base_dir = base_dir};
    if (!c.model)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    ModelProto *mp = NULL;
    int wire = wire_check(&onnx__model_proto__descriptor, buf, len, 0);
    if (wire == WIRE_TOO_DEEP)
        st = oq_errf(err, OQ_EUNSUPPORTED, "messages nested more than %d deep", MAX_MESSAGE_DEPTH);
    else if (wire == WIRE_FIELD_ZERO)
        st = oq_errf(err, OQ_EINVAL, "not a valid ONNX model (a protobuf field number is 0)");
    else if (!(mp = onnx__model_proto__unpack(NULL, len, buf)))
        st = oq_errf(err, OQ_EINVAL, "not a valid ONNX model (protobuf parse failed)");
    else
        st = model_from_proto(&c, mp, err);
    if (mp)
        onnx__model_proto__free_unpacked(mp, NULL);
    free(c.base_real);
    if (st) {
        oq_model_destroy(c.model);
        return st;
    }
    *out = c.model;
    return OQ_OK;
}

oq_status oq_model_load(oq_model **out, const char *path, oq_err *err)
{
    *out = NULL;
    uint8_t *buf;
    size_t len;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    char *dir = oq_path_dir(path);
    if (!dir)
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    else if ((st = oq_model_load_buffer(out, buf, len, dir, err)))
        oq_err_context(err, "%s", path);
    free(dir);
    free(buf);
    return st;
}

/* ================================================================================
 * Saving
 * ================================================================================ */

/* ---- arena: every message built for one save, freed at once --------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

#define ARENA_BLOCK (64 * 1024)

/* Zeroed, max-aligned memory living until arena_free; NULL when out of memory. */
static void *arena_alloc(arena *a, size_t n)
{
    size_t align = alignof(max_align_t);
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) / align * align;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (n > ARENA_BLOCK / 4 && a->head) { /* big one-off: keep the current block in front */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena *a)
{
    for (arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}

/* protobuf-c allocator over the arena, for unpacking kept bytes while saving. */
static void *arena_pb_alloc(void *data, size_t size) { return arena_alloc(data, size); }
static void arena_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

/* ---- save context ------------------------------------------------------------- */

typedef struct save_ctx {
    arena a;
    oq_err *err;
    size_t ext_threshold;     /* tensors of at least this many bytes go external; 0 = never */
    const char *ext_location; /* external data file name, relative to the model */
    uint8_t *ext;             /* external data file contents */
    size_t ext_len, ext_cap;
} save_ctx;

/* Arena copy of an initialized message `init` of `size` bytes; NULL sets err. */
static void *msg_new(save_ctx *c, size_t size, const void *init)
{
    void *p = arena_alloc(&c->a, size);
    if (!p) {
        oq_errf(c->err, OQ_ENOMEM, "out of memory building the model");
        return NULL;
    }
    memcpy(p, init, size);
    return p;
}
#define NEW_MSG(c, T, INIT) ((T *)msg_new((c), sizeof(T), &(T)INIT))

/* Arena array of n elements of `size` bytes (n may be 0). */
static void *arr_new(save_ctx *c, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n)
        return NULL;
    void *p = arena_alloc(&c->a, n ? n * size : 1);
    if (!p)
        oq_errf(c->err, OQ_ENOMEM, "out of memory building the model");
    return p;
}

/* Non-NULL, non-empty strings for optional fields; others are left unset. */
static char *opt_str(const char *s) { return s && *s ? (char *)s : NULL; }

static char *arena_printf_u64(save_ctx *c, uint64_t v)
{
    char *s = arena_alloc(&c->a, 24);
    if (!s) {
        oq_errf(c->err, OQ_ENOMEM, "out of memory building the model");
        return NULL;
    }
    snprintf(s, 24, "%llu", (unsigned long long)v);
    return s;
}

static EntryProto *entry_new(save_ctx *c, const char *key, const char *value)
{
    EntryProto *e = NEW_MSG(c, EntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT);
    if (e) {
        e->key = (char *)key;
        e->value = (char *)value;
    }
    return e;
}

/* ---- tensors ------------------------------------------------------------------- */

/* Appends len bytes to the external data buffer; *offset receives their position. */
static oq_status ext_append(save_ctx *c, const void *data, size_t len, uint64_t *offset)
{
    if (c->ext_cap - c->ext_len < len) {
        size_t cap = c->ext_cap ? c->ext_cap : 1 << 20;
        while (cap - c->ext_len < len) {
            if (cap > SIZE_MAX / 2)
                return oq_errf(c->err, OQ_ENOMEM, "external data is too large");
            cap *= 2;
        }
        uint8_t *p = realloc(c->ext, cap);
        if (!p)
            return oq_errf(c->err, OQ_ENOMEM, "out of memory for %zu bytes of external data", cap);
        c->ext = p;
        c->ext_cap = cap;
    }
    memcpy(c->ext + c->ext_len, data, len);
    *offset = c->ext_len;
    c->ext_len += len;
    return OQ_OK;
}

/* TensorProto for t (data borrowed from t, or moved to the external buffer). */
static TensorProto *tensor_to_proto(save_ctx *c, const oq_tensor *t, const char *name)
{
    TensorProto *tp = NEW_MSG(c, TensorProto, ONNX__TENSOR_PROTO__INIT);
    if (!tp || !(tp->dims = arr_new(c, (size_t)t->rank, sizeof(int64_t))))
        return NULL;
    tp->n_dims = (size_t)t->rank;
    for (int i = 0; i < t->rank; i++)
        tp->dims[i] = t->dims[i];
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->name = opt_str(name);
    int64_t numel = oq_tensor_numel(t);
    if (t->dtype == OQ_DTYPE_STRING) {
        if (!(tp->string_data = arr_new(c, (size_t)numel, sizeof *tp->string_data)))
            return NULL;
        tp->n_string_data = (size_t)numel;
        for (int64_t i = 0; i < numel; i++) {
            char *s = ((char **)t->data)[i];
            tp->string_data[i].data = (uint8_t *)(s ? s : "");
            tp->string_data[i].len = s ? strlen(s) : 0;
        }
        return tp;
    }
    size_t bytes = oq_dtype_storage(t->dtype, numel);
    if (c->ext_threshold && bytes >= c->ext_threshold) {
        uint64_t offset = 0;
        if (ext_append(c, t->data, bytes, &offset))
            return NULL;
        EntryProto **e = arr_new(c, 3, sizeof *e);
        char *off_s = arena_printf_u64(c, offset), *len_s = arena_printf_u64(c, bytes);
        if (!e || !off_s || !len_s || !(e[0] = entry_new(c, "location", c->ext_location)) ||
            !(e[1] = entry_new(c, "offset", off_s)) || !(e[2] = entry_new(c, "length", len_s)))
            return NULL;
        tp->external_data = e;
        tp->n_external_data = 3;
        tp->has_data_location = 1;
        tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        return tp;
    }
    tp->has_raw_data = 1;
    tp->raw_data.data = t->data;
    tp->raw_data.len = bytes;
    return tp;
}

/* ---- types ---------------------------------------------------------------------- */

static TypeProto *type_to_proto(save_ctx *c, const oq_value *v)
{
    if (v->kind == OQ_TYPE_OPAQUE) {
        ProtobufCAllocator al = {arena_pb_alloc, arena_pb_free, &c->a};
        TypeProto *tp = onnx__type_proto__unpack(&al, v->type_bytes_len, v->type_bytes);
        if (!tp)
            oq_errf(c->err, OQ_EINVAL, "value '%s': its kept type does not parse", v->name);
        return tp;
    }
    if (v->kind != OQ_TYPE_TENSOR)
        return NULL;
    TypeProto *tp = NEW_MSG(c, TypeProto, ONNX__TYPE_PROTO__INIT);
    TypeTensor *tt = NEW_MSG(c, TypeTensor, ONNX__TYPE_PROTO__TENSOR__INIT);
    if (!tp || !tt)
        return NULL;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = v->dtype != OQ_DTYPE_UNDEFINED;
    tt->elem_type = (int32_t)v->dtype;
    if (v->rank < 0)
        return tp;
    TensorShapeProto *sp = NEW_MSG(c, TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
    if (!sp || !(sp->dim = arr_new(c, (size_t)v->rank, sizeof *sp->dim)))
        return NULL;
    sp->n_dim = (size_t)v->rank;
    for (int i = 0; i < v->rank; i++) {
        Dimension *d = NEW_MSG(c, Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
        if (!d)
            return NULL;
        if (v->dims[i].value >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v->dims[i].value;
        } else if (v->dims[i].param) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = v->dims[i].param;
        }
        sp->dim[i] = d;
    }
    tt->shape = sp;
    return tp;
}

static ValueInfoProto *value_info_to_proto(save_ctx *c, const oq_value *v)
{
    ValueInfoProto *vi = NEW_MSG(c, ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
    if (!vi)
        return NULL;
    vi->name = v->name;
    vi->doc_string = opt_str(v->doc_string);
    if (v->kind != OQ_TYPE_NONE && !(vi->type = type_to_proto(c, v)))
        return NULL;
    return vi;
}

/* ---- nodes and graphs ------------------------------------------------------------ */

static GraphProto *graph_to_proto(save_ctx *c, const oq_graph *g);

static AttributeProto *attr_to_proto(save_ctx *c, const oq_attr *a)
{
    if (a->raw) {
        ProtobufCAllocator al = {arena_pb_alloc, arena_pb_free, &c->a};
        AttributeProto *ap = onnx__attribute_proto__unpack(&al, a->raw_len, a->raw);
        if (!ap)
            oq_errf(c->err, OQ_EINVAL, "attribute '%s': its kept bytes do not parse", a->name);
        return ap;
    }
    AttributeProto *ap = NEW_MSG(c, AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!ap)
        return NULL;
    ap->name = a->name;
    ap->ref_attr_name = opt_str(a->ref_attr_name);
    ap->doc_string = opt_str(a->doc_string);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    if (a->ref_attr_name && *a->ref_attr_name)
        return ap; /* a reference carries no value */
    size_t n = a->n > 0 ? (size_t)a->n : 0;
    switch (a->type) {
    case OQ_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case OQ_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case OQ_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)(a->s ? a->s : "");
        ap->s.len = a->s ? a->s_len : 0;
        break;
    case OQ_ATTR_TENSOR:
        if (!a->t || !(ap->t = tensor_to_proto(c, a->t, NULL)))
            return a->t ? NULL : (oq_errf(c->err, OQ_EINVAL, "attribute '%s' has no tensor", a->name), NULL);
        break;
    case OQ_ATTR_GRAPH:
        if (!a->g || !(ap->g = graph_to_proto(c, a->g)))
            return a->g ? NULL : (oq_errf(c->err, OQ_EINVAL, "attribute '%s' has no graph", a->name), NULL);
        break;
    case OQ_ATTR_FLOATS:
        ap->n_floats = n;
        ap->floats = a->floats;
        break;
    case OQ_ATTR_INTS:
        ap->n_ints = n;
        ap->ints = a->ints;
        break;
    case OQ_ATTR_STRINGS:
        if (!(ap->strings = arr_new(c, n, sizeof *ap->strings)))
            return NULL;
        ap->n_strings = n;
        for (size_t i = 0; i < n; i++) {
            ap->strings[i].data = (uint8_t *)a->strings[i];
            ap->strings[i].len = strlen(a->strings[i]);
        }
        break;
    case OQ_ATTR_TENSORS:
        if (!(ap->tensors = arr_new(c, n, sizeof *ap->tensors)))
            return NULL;
        ap->n_tensors = n;
        for (size_t i = 0; i < n; i++)
            if (!(ap->tensors[i] = tensor_to_proto(c, a->tensors[i], NULL)))
                return NULL;
        break;
    case OQ_ATTR_GRAPHS:
        if (!(ap->graphs = arr_new(c, n, sizeof *ap->graphs)))
            return NULL;
        ap->n_graphs = n;
        for (size_t i = 0; i < n; i++)
            if (!(ap->graphs[i] = graph_to_proto(c, a->graphs[i])))
                return NULL;
        break;
    default:
        oq_errf(c->err, OQ_EINVAL, "attribute '%s' has type %d but no kept bytes", a->name, (int)a->type);
        return NULL;
    }
    return ap;
}

/* Attribute carrying a Constant node's tensor k, written in the form `form`
 * (a value_* attribute of the node) when the tensor still fits that form,
 * else as `value`. NULL form means `value`. */
static AttributeProto *constant_attr(save_ctx *c, const oq_tensor *k, const oq_attr *form)
{
    AttributeProto *ap = NEW_MSG(c, AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!ap)
        return NULL;
    ap->has_type = 1;
    if (form) {
        bool list = form->type == OQ_ATTR_FLOATS || form->type == OQ_ATTR_INTS || form->type == OQ_ATTR_STRINGS;
        oq_dtype want = form->type == OQ_ATTR_FLOAT || form->type == OQ_ATTR_FLOATS ? OQ_DTYPE_FLOAT
                        : form->type == OQ_ATTR_INT || form->type == OQ_ATTR_INTS ? OQ_DTYPE_INT64
                                                                                  : OQ_DTYPE_STRING;
        if (k->dtype == want && k->rank == (list ? 1 : 0)) {
            ap->name = form->name;
            ap->type = (Onnx__AttributeProto__AttributeType)form->type;
            size_t n = (size_t)oq_tensor_numel(k);
            switch (form->type) {
            case OQ_ATTR_FLOAT:
                ap->has_f = 1;
                ap->f = *(const float *)k->data;
                break;
            case OQ_ATTR_INT:
                ap->has_i = 1;
                ap->i = *(const int64_t *)k->data;
                break;
            case OQ_ATTR_STRING: {
                const char *s = ((char *const *)k->data)[0];
                ap->has_s = 1;
                ap->s.data = (uint8_t *)(s ? s : "");
                ap->s.len = s ? strlen(s) : 0;
                break;
            }
            case OQ_ATTR_FLOATS:
                ap->n_floats = n;
                ap->floats = k->data;
                break;
            case OQ_ATTR_INTS:
                ap->n_ints = n;
                ap->ints = k->data;
                break;
            default: /* STRINGS */
                if (!(ap->strings = arr_new(c, n, sizeof *ap->strings)))
                    return NULL;
                ap->n_strings = n;
                for (size_t i = 0; i < n; i++) {
                    const char *s = ((char *const *)k->data)[i];
                    ap->strings[i].data = (uint8_t *)(s ? s : "");
                    ap->strings[i].len = s ? strlen(s) : 0;
                }
            }
            return ap;
        }
    }
    ap->name = "value";
    ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    return (ap->t = tensor_to_proto(c, k, NULL)) ? ap : NULL;
}

static bool is_constant_form(const char *name)
{
    static const char *const forms[] = {"value_float", "value_floats", "value_int",
                                        "value_ints",  "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (!strcmp(name, forms[i]))
            return true;
    return false;
}

static NodeProto *node_to_proto(save_ctx *c, const oq_node *n)
{
    NodeProto *np = NEW_MSG(c, NodeProto, ONNX__NODE_PROTO__INIT);
    if (!np || !(np->input = arr_new(c, (size_t)n->n_inputs, sizeof(char *))) ||
        !(np->output = arr_new(c, (size_t)n->n_outputs, sizeof(char *))) ||
        !(np->attribute = arr_new(c, (size_t)n->n_attrs + 1, sizeof *np->attribute)))
        return NULL;
    np->n_input = (size_t)n->n_inputs;
    np->n_output = (size_t)n->n_outputs;
    for (int i = 0; i < n->n_inputs; i++)
        np->input[i] = n->inputs[i] ? n->inputs[i]->name : "";
    for (int i = 0; i < n->n_outputs; i++)
        np->output[i] = n->outputs[i] ? n->outputs[i]->name : "";
    np->name = opt_str(n->name);
    np->op_type = n->op_type;
    np->domain = opt_str(n->domain);
    np->doc_string = opt_str(n->doc_string);

    const oq_tensor *k = NULL; /* a Constant node's tensor lives on its output value */
    if (!strcmp(n->op_type, "Constant") && (!n->domain || !*n->domain) && n->n_outputs > 0 && n->outputs[0])
        k = n->outputs[0]->constant;
    bool written = false;
    for (int i = 0; i < n->n_attrs; i++) {
        const oq_attr *a = &n->attrs[i];
        AttributeProto *ap;
        if (k && !written && (!strcmp(a->name, "value") || is_constant_form(a->name))) {
            ap = constant_attr(c, k, strcmp(a->name, "value") ? a : NULL);
            written = true;
        } else if (k && (!strcmp(a->name, "value") || is_constant_form(a->name))) {
            continue; /* a second value attribute: the constant is already written */
        } else {
            ap = attr_to_proto(c, a);
        }
        if (!ap)
            return NULL;
        np->attribute[np->n_attribute++] = ap;
    }
    if (k && !written && !oq_node_attr(n, "sparse_value")) {
        if (!(np->attribute[np->n_attribute] = constant_attr(c, k, NULL)))
            return NULL;
        np->n_attribute++;
    }
    return np;
}

static GraphProto *graph_to_proto(save_ctx *c, const oq_graph *g)
{
    GraphProto *gp = NEW_MSG(c, GraphProto, ONNX__GRAPH_PROTO__INIT);
    size_t nv = (size_t)g->n_values;
    unsigned char *io = arr_new(c, nv, 1);       /* values declared as graph input or output */
    unsigned char *produced = arr_new(c, nv, 1); /* values some node of g writes */
    if (!gp || !io || !produced || !(gp->node = arr_new(c, (size_t)g->n_nodes, sizeof *gp->node)) ||
        !(gp->input = arr_new(c, (size_t)g->n_inputs, sizeof *gp->input)) ||
        !(gp->output = arr_new(c, (size_t)g->n_outputs, sizeof *gp->output)) ||
        !(gp->initializer = arr_new(c, nv, sizeof *gp->initializer)) ||
        !(gp->value_info = arr_new(c, nv, sizeof *gp->value_info)))
        return NULL;
    gp->name = g->name ? g->name : "";
    gp->doc_string = opt_str(g->doc_string);
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        if (!(gp->node[gp->n_node++] = node_to_proto(c, n)))
            return NULL;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] && n->outputs[k]->graph == g)
                produced[n->outputs[k]->id] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        if (!(gp->input[gp->n_input++] = value_info_to_proto(c, g->inputs[i])))
            return NULL;
        if (g->inputs[i]->graph == g)
            io[g->inputs[i]->id] = 1;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        if (!(gp->output[gp->n_output++] = value_info_to_proto(c, g->outputs[i])))
            return NULL;
        if (g->outputs[i]->graph == g)
            io[g->outputs[i]->id] = 1;
    }
    for (size_t i = 0; i < nv; i++) {
        const oq_value *v = g->values[i];
        /* initializers, and constants whose Constant node is gone (else they would be lost) */
        if (v->constant && (v->is_initializer || !produced[i])) {
            if (!(gp->initializer[gp->n_initializer++] = tensor_to_proto(c, v->constant, v->name)))
                return NULL;
        } else if (v->kind != OQ_TYPE_NONE && !io[i]) {
            if (!(gp->value_info[gp->n_value_info++] = value_info_to_proto(c, v)))
                return NULL;
        }
    }
    return gp;
}

static ModelProto *model_to_proto(save_ctx *c, const oq_model *m)
{
    ModelProto *mp = NEW_MSG(c, ModelProto, ONNX__MODEL_PROTO__INIT);
    if (!mp || !(mp->opset_import = arr_new(c, (size_t)m->n_opsets, sizeof *mp->opset_import)) ||
        !(mp->metadata_props = arr_new(c, (size_t)m->n_metadata, sizeof *mp->metadata_props)))
        return NULL;
    mp->has_ir_version = 1;
    mp->ir_version = m->ir_version;
    mp->producer_name = opt_str(m->producer_name);
    mp->producer_version = opt_str(m->producer_version);
    mp->domain = opt_str(m->domain);
    mp->has_model_version = m->model_version != 0;
    mp->model_version = m->model_version;
    mp->doc_string = opt_str(m->doc_string);
    for (int i = 0; i < m->n_opsets; i++) {
        OpsetProto *op = NEW_MSG(c, OpsetProto, ONNX__OPERATOR_SET_ID_PROTO__INIT);
        if (!op)
            return NULL;
        op->domain = m->opsets[i].domain ? m->opsets[i].domain : "";
        op->has_version = 1;
        op->version = m->opsets[i].version;
        mp->opset_import[mp->n_opset_import++] = op;
    }
    for (int i = 0; i < m->n_metadata; i++)
        if (!(mp->metadata_props[mp->n_metadata_props++] = entry_new(c, m->metadata[i].key, m->metadata[i].value)))
            return NULL;
    if (!m->graph) {
        oq_errf(c->err, OQ_EINVAL, "the model has no graph");
        return NULL;
    }
    if (!(mp->graph = graph_to_proto(c, m->graph)))
        return NULL;
    return mp;
}

/* Serializes m (plus its passthrough bytes) into a malloc'ed buffer, moving
 * tensors of >= c->ext_threshold bytes into c->ext. */
static oq_status serialize(save_ctx *c, const oq_model *m, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    ModelProto *mp = model_to_proto(c, m);
    if (!mp)
        return status_of(c->err);
    size_t n = protobuf_c_message_get_packed_size(&mp->base);
    if (n > SIZE_MAX - m->passthrough_len - 1)
        return oq_errf(c->err, OQ_ENOMEM, "the model is too large to serialize");
    uint8_t *out = malloc(n + m->passthrough_len + 1);
    if (!out)
        return oq_errf(c->err, OQ_ENOMEM, "out of memory serializing %zu bytes", n);
    protobuf_c_message_pack(&mp->base, out);
    if (m->passthrough_len) /* concatenated messages merge: these fields join the model */
        memcpy(out + n, m->passthrough, m->passthrough_len);
    *buf = out;
    *len = n + m->passthrough_len;
    return OQ_OK;
}

oq_status oq_model_serialize(const oq_model *m, uint8_t **buf, size_t *len, oq_err *err)
{
    save_ctx c = {.err = err};
    oq_status st = serialize(&c, m, buf, len);
    arena_free(&c.a);
    return st;
}

oq_status oq_model_save(const oq_model *m, const char *path, const oq_save_options *opts, oq_err *err)
{
    save_ctx c = {.err = err, .ext_threshold = opts ? opts->external_threshold : 0};
    uint8_t *buf = NULL;
    size_t len = 0;
    char *data_path = NULL;
    oq_status st;
    if (c.ext_threshold) {
        size_t n = strlen(path) + 6;
        if (!(data_path = malloc(n))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(data_path, n, "%s.data", path);
        const char *slash = strrchr(data_path, '/');
        c.ext_location = slash ? slash + 1 : data_path;
    }
    if ((st = serialize(&c, m, &buf, &len)))
        goto fail;
    if (c.ext_len && (st = oq_write_file_atomic(data_path, c.ext, c.ext_len, err)))
        goto fail;
    st = oq_write_file_atomic(path, buf, len, err);
fail:
    arena_free(&c.a);
    free(c.ext);
    free(data_path);
    free(buf);
    return st;
}

/* ================================================================================
 * Single tensors (ONNX test data)
 * ================================================================================ */

oq_status oq_tensor_parse_pb(oq_tensor *t, char **name, const uint8_t *buf, size_t len, const char *what,
                            const char *base_dir, oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (name)
        *name = NULL;
    load_ctx c = {.base_dir = base_dir};
    oq_tensor *dec = NULL;
    oq_status st;
    TensorProto *tp = wire_check(&onnx__tensor_proto__descriptor, buf, len, 0) == WIRE_OK
                          ? onnx__tensor_proto__unpack(NULL, len, buf)
                          : NULL;
    if (!tp)
        st = oq_errf(err, OQ_EINVAL, "%s: not a valid TensorProto (protobuf parse failed)", what);
    else if (!(st = tensor_from_proto(&c, tp, what, &dec, err)) && name &&
             !(*name = strdup(tp->name ? tp->name : "")))
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!st) {
        *t = *dec; /* move the storage out of the heap shell */
        free(dec);
    } else {
        oq_tensor_destroy(dec);
    }
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, NULL);
    free(c.base_real);
    return st;
}

oq_status oq_tensor_load_pb(oq_tensor *t, char **name, const char *path, oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (name)
        *name = NULL;
    uint8_t *buf;
    size_t len;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    char *dir = oq_path_dir(path);
    if (!dir)
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    else
        st = oq_tensor_parse_pb(t, name, buf, len, path, dir, err);
    free(dir);
    free(buf);
    return st;
}

oq_status oq_tensor_save_pb(const oq_tensor *t, const char *name, const char *path, oq_err *err)
{
    save_ctx c = {.err = err};
    uint8_t *buf = NULL;
    size_t len = 0;
    oq_status st;
    TensorProto *tp = tensor_to_proto(&c, t, name);
    if (!tp)
        st = status_of(err);
    else if (!(st = pack_alloc(&tp->base, &buf, &len, err)))
        st = oq_write_file_atomic(path, buf, len, err);
    free(buf);
    arena_free(&c.a);
    return st;
}
