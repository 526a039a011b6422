/* tensor_pb.c: TensorProto <-> oq_tensor, and the files that hold one
 * serialized TensorProto (ONNX test data: input_0.pb, ...). See proto.h and
 * oq_onnx_io.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_onnx_io.h"

/* ---- decoding ------------------------------------------------------------------- */

/* Checks that a typed field holds exactly `want` entries. */
static oq_status check_count(const char *what, const char *field, size_t have, uint64_t want, const oq_tensor *t,
                             oq_err *err)
{
    if (have == want)
        return OQ_OK;
    char ts[160];
    return oq_errf(err, OQ_EINVAL, "%s: %s has %zu elements, expected %llu for %s", what, field, have,
                   (unsigned long long)want, pb_type_str(ts, sizeof ts, t->dtype, t->rank, t->dims));
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
            if (!(((char **)t->data)[i] = pb_dup_bytes(tp->string_data[i].data, tp->string_data[i].len)))
                return oq_errf(err, OQ_ENOMEM, "%s: out of memory copying strings", what);
        return OQ_OK;
    default:
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: element type %s cannot be decoded", what,
                       oq_dtype_name(t->dtype));
    }
}

oq_status pb_tensor_decode(pb_ext_reader *ext, TensorProto *tp, const char *what, oq_tensor **out,
                           oq_err *err)
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

    oq_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", what);
    t->dtype = (oq_dtype)dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, tp->dims, (size_t)rank * sizeof t->dims[0]);
    t->nbytes = want;
    oq_status st;
    char ts[160];
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = ext ? pb_read_external(ext, tp, what, t, err)
                 : oq_errf(err, OQ_EINVAL, "%s: external data is not allowed here", what);
    } else if (tp->has_raw_data && dt == OQ_DTYPE_STRING) {
        st = oq_errf(err, OQ_EINVAL, "%s: string tensor stored in raw_data", what);
    } else if (tp->has_raw_data && tp->raw_data.len != want) {
        st = oq_errf(err, OQ_EINVAL, "%s: raw_data has %zu bytes, expected %zu for %s", what, tp->raw_data.len,
                     want, pb_type_str(ts, sizeof ts, t->dtype, rank, t->dims));
    } else if (tp->has_raw_data && want) { /* take the unpacked buffer over (pb_heap made it) */
        t->data = tp->raw_data.data;
        t->owns_data = true;
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
        st = OQ_OK;
    } else if (!(t->data = calloc(want ? want : 1, 1))) {
        st = oq_errf(err, OQ_ENOMEM, "%s: cannot allocate %zu bytes", what, want);
    } else {
        t->owns_data = true;
        st = tp->has_raw_data ? OQ_OK : decode_typed(tp, what, t, numel, err);
    }
    if (st) {
        oq_tensor_destroy(t);
        return st;
    }
    *out = t;
    return OQ_OK;
}

/* ---- encoding ------------------------------------------------------------------- */

TensorProto *pb_tensor_encode(pb_save_ctx *c, const oq_tensor *t, const char *name)
{
    TensorProto *tp = NEW_MSG(c, TensorProto, ONNX__TENSOR_PROTO__INIT);
    if (!tp || !(tp->dims = pb_arr_new(c, (size_t)t->rank, sizeof(int64_t))))
        return NULL;
    tp->n_dims = (size_t)t->rank;
    for (int i = 0; i < t->rank; i++)
        tp->dims[i] = t->dims[i];
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->name = pb_opt_str(name);
    int64_t numel = oq_tensor_numel(t);
    if (t->dtype == OQ_DTYPE_STRING) {
        if (!(tp->string_data = pb_arr_new(c, (size_t)numel, sizeof *tp->string_data)))
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
    if (c->ext_threshold && bytes >= c->ext_threshold)
        return pb_write_external(c, t, bytes, tp) ? NULL : tp;
    tp->has_raw_data = 1;
    tp->raw_data.data = t->data;
    tp->raw_data.len = bytes;
    return tp;
}

/* ---- single-tensor files ------------------------------------------------------- */

oq_status oq_tensor_parse_pb(oq_tensor *t, char **name, const uint8_t *buf, size_t len, const char *what,
                            const char *base_dir, oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (name)
        *name = NULL;
    pb_ext_reader ext = {.base_dir = base_dir};
    oq_tensor *dec = NULL;
    oq_status st;
    TensorProto *tp = pb_wire_check(&onnx__tensor_proto__descriptor, buf, len) == WIRE_OK
                          ? onnx__tensor_proto__unpack(&pb_heap, len, buf)
                          : NULL;
    if (!tp)
        st = oq_errf(err, OQ_EINVAL, "%s: not a valid TensorProto (protobuf parse failed)", what);
    else if (!(st = pb_tensor_decode(&ext, tp, what, &dec, err)) && name &&
             !(*name = strdup(tp->name ? tp->name : "")))
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!st) {
        *t = *dec; /* move the storage out of the heap shell */
        free(dec);
    } else {
        oq_tensor_destroy(dec);
    }
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, &pb_heap);
    pb_ext_reader_release(&ext);
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
    pb_save_ctx c = {.err = err};
    uint8_t *buf = NULL;
    size_t len = 0;
    oq_status st;
    TensorProto *tp = pb_tensor_encode(&c, t, name);
    if (!tp)
        st = pb_status_of(err);
    else if (!(st = pb_pack_alloc(&tp->base, &buf, &len, err)))
        st = oq_write_file_atomic(path, buf, len, err);
    free(buf);
    pb_arena_free(&c.a);
    return st;
}
