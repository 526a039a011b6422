/* test_io.c: ONNX load/save (src/onnx/) on models and tensors built here:
 * round trips, deterministic bytes, Constant edits sticking, tensor decoding
 * errors, external data (and its refusals), and hostile input (empty, text,
 * random bytes, every truncation, bit flips) that must fail cleanly. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_onnx_io.h"

static char tmpdir[64];

static char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* ---- a small model built through the IR ------------------------------------------ */

/* Z = MatMul(X, W) + B, B from a Constant node, W an initializer, X float[N,2]. */
static oq_model *build_model(void)
{
    oq_err err = {0};
    oq_model *m = oq_model_create();
    m->ir_version = 8;
    m->producer_name = strdup("test_io");
    m->n_opsets = 1;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = 13;
    m->graph = oq_graph_create(m, NULL);
    oq_graph *g = m->graph;

    oq_dim xd[2] = {{-1, "N"}, {2, NULL}};
    oq_value *x = oq_graph_value(g, "X", &err);
    CHECK_OK(oq_value_set_tensor_type(x, OQ_DTYPE_FLOAT, 2, xd, &err), &err);
    CHECK_OK(oq_graph_add_input(g, x, &err), &err);

    int64_t wd[2] = {2, 2};
    oq_tensor *w = oq_tensor_create(OQ_DTYPE_FLOAT, 2, wd, &err);
    for (int i = 0; i < 4; i++)
        ((float *)w->data)[i] = 0.5f * (float)(i + 1);
    CHECK_OK(oq_graph_set_constant(g, oq_graph_value(g, "W", &err), w, true, &err), &err);

    const char *c_out[1] = {"B"};
    oq_node *c = oq_graph_add_node(g, "Constant", "", "c", 0, NULL, 1, c_out, &err);
    CHECK(c != NULL);
    int64_t bd[1] = {2};
    oq_tensor *b = oq_tensor_create(OQ_DTYPE_FLOAT, 1, bd, &err);
    ((float *)b->data)[0] = -1.0f;
    ((float *)b->data)[1] = 3.0f;
    CHECK_OK(oq_graph_set_constant(g, c->outputs[0], b, false, &err), &err);

    const char *mm_in[2] = {"X", "W"}, *mm_out[1] = {"Y"};
    CHECK(oq_graph_add_node(g, "MatMul", "", "mm", 2, mm_in, 1, mm_out, &err) != NULL);
    const char *add_in[2] = {"Y", "B"}, *add_out[1] = {"Z"};
    oq_node *add = oq_graph_add_node(g, "Add", "", "add", 2, add_in, 1, add_out, &err);
    CHECK(add != NULL);
    CHECK_OK(oq_node_set_attr_ints(add, "test_ints", 2, (int64_t[]){7, -8}, &err), &err);
    oq_value *y = oq_graph_find(g, "Y");
    CHECK_OK(oq_value_set_tensor_type(y, OQ_DTYPE_FLOAT, 2, xd, &err), &err);
    oq_value *z = oq_graph_find(g, "Z");
    CHECK_OK(oq_value_set_tensor_type(z, OQ_DTYPE_FLOAT, 2, xd, &err), &err);
    CHECK_OK(oq_graph_add_output(g, z, &err), &err);
    return m;
}

static void test_model_round_trip(void)
{
    oq_err err = {0};
    oq_model *m = build_model();
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    CHECK_OK(oq_model_serialize(m, &buf, &len, &err), &err);

    oq_model *r = NULL;
    CHECK_OK(oq_model_load_buffer(&r, buf, len, NULL, &err), &err);
    if (!r)
        goto done;
    CHECK(r->ir_version == 8 && r->n_opsets == 1 && oq_model_opset(r, "") == 13);
    CHECK(r->producer_name && !strcmp(r->producer_name, "test_io"));
    oq_graph *g = r->graph;
    CHECK(g->n_nodes == 3 && g->n_inputs == 1 && g->n_outputs == 1);
    oq_value *w = oq_graph_find(g, "W");
    CHECK(w && w->is_initializer && w->constant && ((float *)w->constant->data)[3] == 2.0f);
    oq_value *b = oq_graph_find(g, "B");
    CHECK(b && !b->is_initializer && b->constant && ((float *)b->constant->data)[1] == 3.0f);
    CHECK(b && b->producer && !strcmp(b->producer->op_type, "Constant"));
    /* the Constant's tensor lives on its output, not in a duplicate attribute */
    CHECK(b && b->producer && oq_node_attr(b->producer, "value") == NULL);
    oq_value *x = g->inputs[0];
    CHECK(x->kind == OQ_TYPE_TENSOR && x->rank == 2 && x->dims[0].value == -1 && x->dims[0].param &&
          !strcmp(x->dims[0].param, "N") && x->dims[1].value == 2);
    oq_value *y = oq_graph_find(g, "Y");
    CHECK(y && y->kind == OQ_TYPE_TENSOR && y->rank == 2); /* from value_info */
    int n = 0;
    const oq_node *add = g->nodes[2];
    const int64_t *ints = oq_node_attr_ints(add, "test_ints", &n);
    CHECK(n == 2 && ints && ints[0] == 7 && ints[1] == -8);

    /* same model, same bytes */
    CHECK_OK(oq_model_serialize(r, &buf2, &len2, &err), &err);
    CHECK(len2 == len && buf2 && !memcmp(buf, buf2, len));
    free(buf2);
    buf2 = NULL;

    /* editing the Constant's tensor changes what is saved */
    ((float *)b->constant->data)[1] = 42.0f;
    CHECK_OK(oq_model_serialize(r, &buf2, &len2, &err), &err);
    oq_model *r2 = NULL;
    CHECK_OK(oq_model_load_buffer(&r2, buf2, len2, NULL, &err), &err);
    if (r2) {
        oq_value *b2 = oq_graph_find(r2->graph, "B");
        CHECK(b2 && b2->constant && ((float *)b2->constant->data)[1] == 42.0f);
    }
    oq_model_destroy(r2);
    r2 = NULL;
    free(buf2);
    buf2 = NULL;

    /* a constant whose Constant node was removed is saved as an initializer */
    oq_graph_remove_node(g, b->producer);
    CHECK_OK(oq_model_serialize(r, &buf2, &len2, &err), &err);
    CHECK_OK(oq_model_load_buffer(&r2, buf2, len2, NULL, &err), &err);
    if (r2) {
        oq_value *b2 = oq_graph_find(r2->graph, "B");
        CHECK(r2->graph->n_nodes == 2 && b2 && b2->is_initializer && b2->constant &&
              ((float *)b2->constant->data)[1] == 42.0f);
    }
    oq_model_destroy(r2);
done:
    free(buf);
    free(buf2);
    oq_model_destroy(r);
    oq_model_destroy(m);
}

/* ---- saving to files, external data ----------------------------------------------- */

static void test_save_external(void)
{
    oq_err err = {0};
    oq_model *m = build_model();
    const char *path = tmp_path("ext.onnx");
    oq_save_options opts = {.external_threshold = 16}; /* W (16 bytes) goes out, B (8) stays */
    CHECK_OK(oq_model_save(m, path, &opts, &err), &err);
    struct stat st;
    CHECK(stat(tmp_path("ext.onnx.data"), &st) == 0 && st.st_size == 16);

    oq_model *r = NULL;
    CHECK_OK(oq_model_load(&r, path, &err), &err);
    if (r) {
        oq_value *w = oq_graph_find(r->graph, "W");
        CHECK(w && w->constant && ((float *)w->constant->data)[0] == 0.5f && ((float *)w->constant->data)[3] == 2.0f);
    }
    oq_model_destroy(r);

    /* from memory there is no folder to resolve external data against */
    uint8_t *buf;
    size_t len;
    CHECK_OK(oq_read_file(path, &buf, &len, &err), &err);
    r = NULL;
    CHECK(oq_model_load_buffer(&r, buf, len, NULL, &err) == OQ_EINVAL && r == NULL);
    CHECK(strstr(err.msg, "initializer 'W'") != NULL);
    free(buf);

    /* a truncated data file is refused, naming the range */
    CHECK(truncate(tmp_path("ext.onnx.data"), 10) == 0);
    CHECK(oq_model_load(&r, path, &err) == OQ_EINVAL && r == NULL);
    CHECK(strstr(err.msg, "passes the end") != NULL);
    unlink(tmp_path("ext.onnx.data"));
    unlink(path);
    oq_model_destroy(m);
}

/* The loaded W of the external model at path, or NULL (values checked). */
static const oq_tensor *loaded_w(oq_model **r, const char *path)
{
    oq_err err = {0};
    *r = NULL;
    CHECK_OK(oq_model_load(r, path, &err), &err);
    oq_value *w = *r ? oq_graph_find((*r)->graph, "W") : NULL;
    CHECK(w && w->constant && ((float *)w->constant->data)[0] == 0.5f && ((float *)w->constant->data)[3] == 2.0f);
    return w ? w->constant : NULL;
}

/* Sets the external offset of path's one external tensor to the digit `to`
 * (its data file gets `to` leading bytes), patching the saved bytes. */
static void move_external(const char *path, const char *data_path, char to)
{
    oq_err err = {0};
    uint8_t *buf = NULL, *data = NULL;
    size_t len = 0, dlen = 0;
    CHECK_OK(oq_read_file(path, &buf, &len, &err), &err);
    CHECK_OK(oq_read_file(data_path, &data, &dlen, &err), &err);
    static const char key[] = "offset\x12\x01";
    uint8_t *at = buf ? memmem(buf, len, key, sizeof key - 1) : NULL;
    CHECK(at && at[sizeof key - 1] == '0');
    uint8_t moved[64] = {0};
    if (at && data && dlen + 9 <= sizeof moved) {
        at[sizeof key - 1] = (uint8_t)to;
        memcpy(moved + (to - '0'), data, dlen);
        CHECK_OK(oq_write_file_atomic(path, buf, len, &err), &err);
        CHECK_OK(oq_write_file_atomic(data_path, moved, dlen + (size_t)(to - '0'), &err), &err);
    }
    free(buf);
    free(data);
}

/* External data is borrowed from a read-only mapping: shared by oq_tensor_share
 * beyond the model's life, copied by oq_tensor_copy, replaced under a loaded
 * model by saving over its own files; an offset a float cannot sit at is copied. */
static void test_mapped_external(void)
{
    oq_err err = {0};
    oq_model *m = build_model(), *r = NULL;
    const char *path = tmp_path("map.onnx"), *data_path = tmp_path("map.onnx.data");
    oq_save_options opts = {.external_threshold = 16};
    CHECK_OK(oq_model_save(m, path, &opts, &err), &err);

    const oq_tensor *w = loaded_w(&r, path);
    oq_tensor shared = {0}, copy = {0};
    if (w) {
        CHECK(oq_tensor_read_only(w) && !w->owns_data);
        CHECK(!oq_tensor_read_only(oq_graph_find(r->graph, "B")->constant)); /* inline: owned */
        CHECK_OK(oq_tensor_share(&shared, w, &err), &err);
        CHECK(shared.data == w->data && shared.mapping == w->mapping);
        CHECK_OK(oq_tensor_copy(&copy, w, &err), &err);
        CHECK(!oq_tensor_read_only(&copy) && copy.owns_data && copy.data != w->data);
        ((float *)copy.data)[0] = 7.0f; /* the copy is writable */

        /* saving over the files the model is mapped from */
        ((float *)oq_graph_find(r->graph, "B")->constant->data)[0] = 5.0f;
        CHECK_OK(oq_model_save(r, path, &opts, &err), &err);
    }
    oq_model_destroy(r);
    CHECK(shared.data && ((float *)shared.data)[3] == 2.0f); /* the mapping outlives the model */
    oq_tensor_release(&shared);
    oq_tensor_release(&copy);
    CHECK(shared.mapping == NULL && shared.data == NULL);

    w = loaded_w(&r, path);
    CHECK(r && ((float *)oq_graph_find(r->graph, "B")->constant->data)[0] == 5.0f);
    oq_model_destroy(r);

    move_external(path, data_path, '2'); /* a float at offset 2: read into memory */
    w = loaded_w(&r, path);
    CHECK(w && !oq_tensor_read_only(w) && w->owns_data);
    oq_model_destroy(r);
    CHECK_OK(oq_model_save(m, path, &opts, &err), &err);
    move_external(path, data_path, '4'); /* offset 4 suits a float: mapped */
    w = loaded_w(&r, path);
    CHECK(w && oq_tensor_read_only(w));
    oq_model_destroy(r);

    /* a save that cannot write one of its files leaves neither behind */
    CHECK(mkdir(tmp_path("d1.onnx.data"), 0755) == 0 && mkdir(tmp_path("d2.onnx"), 0755) == 0);
    CHECK(oq_model_save(m, tmp_path("d1.onnx"), &opts, &err) == OQ_EIO && strstr(err.msg, "d1.onnx.data"));
    CHECK(access(tmp_path("d1.onnx"), F_OK) != 0);
    CHECK(oq_model_save(m, tmp_path("d2.onnx"), &opts, &err) == OQ_EIO && strstr(err.msg, "d2.onnx"));
    CHECK(access(tmp_path("d2.onnx.data"), F_OK) != 0);
    rmdir(tmp_path("d1.onnx.data"));
    rmdir(tmp_path("d2.onnx"));
    unlink(data_path);
    unlink(path);
    oq_model_destroy(m);
}

/* ---- hand-encoded TensorProtos ----------------------------------------------------- */

typedef struct pb {
    uint8_t b[4096];
    size_t n;
} pb;

static void put_varint(pb *p, uint64_t v)
{
    do {
        p->b[p->n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
}
static void put_int(pb *p, int field, int64_t v)
{
    put_varint(p, (uint64_t)field << 3);
    put_varint(p, (uint64_t)v);
}
static void put_bytes(pb *p, int field, const void *data, size_t len)
{
    put_varint(p, (uint64_t)field << 3 | 2);
    put_varint(p, len);
    memcpy(p->b + p->n, data, len);
    p->n += len;
}
static void put_str(pb *p, int field, const char *s) { put_bytes(p, field, s, strlen(s)); }
static void put_entry(pb *p, const char *key, const char *value) /* external_data entry */
{
    pb e = {.n = 0};
    put_str(&e, 1, key);
    put_str(&e, 2, value);
    put_bytes(p, 13, e.b, e.n);
}

/* Writes p to name in the temp folder and loads it as a tensor. */
static oq_status load_pb(const pb *p, oq_tensor *t, oq_err *err)
{
    const char *path = tmp_path("t.pb");
    oq_err werr = {0};
    CHECK_OK(oq_write_file_atomic(path, p->b, p->n, &werr), &werr);
    return oq_tensor_load_pb(t, NULL, path, err);
}

static void test_tensor_decoding(void)
{
    oq_err err = {0};
    oq_tensor t;
    float f4[4] = {1, 2, 3, 4};

    pb p = {.n = 0}; /* raw_data too short */
    put_int(&p, 1, 2);
    put_int(&p, 1, 2);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    put_str(&p, 8, "w");
    put_bytes(&p, 9, f4, 12);
    CHECK(load_pb(&p, &t, &err) == OQ_EINVAL);
    CHECK(strstr(err.msg, "raw_data has 12 bytes, expected 16 for float[2,2]") != NULL);

    p.n = 0; /* raw_data right, at an odd offset inside the buffer */
    put_int(&p, 1, 4);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    put_str(&p, 8, "odd");
    put_bytes(&p, 9, f4, 16);
    char *name = NULL;
    oq_write_file_atomic(tmp_path("t.pb"), p.b, p.n, &err);
    CHECK_OK(oq_tensor_load_pb(&t, &name, tmp_path("t.pb"), &err), &err);
    CHECK(t.rank == 1 && t.dims[0] == 4 && ((float *)t.data)[2] == 3.0f && name && !strcmp(name, "odd"));
    oq_tensor_release(&t);
    free(name);

    p.n = 0; /* float_data with the wrong count */
    put_int(&p, 1, 3);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    put_bytes(&p, 4, f4, 8);
    CHECK(load_pb(&p, &t, &err) == OQ_EINVAL && strstr(err.msg, "float_data has 2 elements, expected 3"));

    p.n = 0; /* float16 in int32_data as bit patterns */
    put_int(&p, 1, 2);
    put_int(&p, 2, OQ_DTYPE_FLOAT16);
    pb packed = {.n = 0};
    put_varint(&packed, 0x3C00); /* 1.0 */
    put_varint(&packed, 0xC000); /* -2.0 */
    put_bytes(&p, 5, packed.b, packed.n);
    CHECK_OK(load_pb(&p, &t, &err), &err);
    CHECK(t.dtype == OQ_DTYPE_FLOAT16 && oq_f16_to_f32(((uint16_t *)t.data)[0]) == 1.0f &&
          oq_f16_to_f32(((uint16_t *)t.data)[1]) == -2.0f);
    oq_tensor_release(&t);

    p.n = 0; /* negative dim */
    put_int(&p, 1, -3);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    CHECK(load_pb(&p, &t, &err) == OQ_EINVAL && strstr(err.msg, "negative"));

    p.n = 0; /* dims whose product overflows */
    put_int(&p, 1, INT64_C(1) << 40);
    put_int(&p, 1, INT64_C(1) << 40);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    CHECK(load_pb(&p, &t, &err) != OQ_OK);

    p.n = 0; /* over the tensor size limit */
    put_int(&p, 1, 1000);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    size_t old = oq_tensor_limit();
    oq_set_tensor_limit(1000);
    CHECK(load_pb(&p, &t, &err) == OQ_ENOMEM);
    oq_set_tensor_limit(old);

    p.n = 0; /* unknown element type */
    put_int(&p, 1, 1);
    put_int(&p, 2, 99);
    CHECK(load_pb(&p, &t, &err) == OQ_EUNSUPPORTED && strstr(err.msg, "99"));

    p.n = 0; /* segments are not supported */
    put_int(&p, 1, 1);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    pb seg = {.n = 0};
    put_int(&seg, 1, 0);
    put_int(&seg, 2, 1);
    put_bytes(&p, 3, seg.b, seg.n);
    CHECK(load_pb(&p, &t, &err) == OQ_EUNSUPPORTED && strstr(err.msg, "segment"));
}

/* A float[4] tensor whose data is external, at `location` with offset/length. */
static oq_status load_external(const char *location, const char *offset, const char *length, oq_tensor *t,
                               oq_err *err)
{
    pb p = {.n = 0};
    put_int(&p, 1, 4);
    put_int(&p, 2, OQ_DTYPE_FLOAT);
    put_entry(&p, "location", location);
    if (offset)
        put_entry(&p, "offset", offset);
    if (length)
        put_entry(&p, "length", length);
    put_int(&p, 14, 1); /* data_location = EXTERNAL */
    return load_pb(&p, t, err);
}

static void test_external_refusals(void)
{
    oq_err err = {0};
    oq_tensor t;
    float data[6] = {9, 1, 2, 3, 4, 9};
    CHECK_OK(oq_write_file_atomic(tmp_path("w.bin"), (const uint8_t *)data, sizeof data, &err), &err);

    CHECK_OK(load_external("w.bin", "4", "16", &t, &err), &err);
    CHECK(t.data && ((float *)t.data)[0] == 1.0f && ((float *)t.data)[3] == 4.0f);
    oq_tensor_release(&t);
    CHECK_OK(load_external("./w.bin", "8", NULL, &t, &err), &err); /* length defaults to the rest */
    CHECK(t.data && ((float *)t.data)[3] == 9.0f);
    oq_tensor_release(&t);

    CHECK(load_external("../w.bin", NULL, NULL, &t, &err) == OQ_EINVAL && strstr(err.msg, "leaves"));
    CHECK(load_external("sub/../../w.bin", NULL, NULL, &t, &err) == OQ_EINVAL);
    CHECK(load_external("/etc/passwd", NULL, NULL, &t, &err) == OQ_EINVAL);
    CHECK(load_external("w.bin", "12", "16", &t, &err) == OQ_EINVAL && strstr(err.msg, "passes the end"));
    CHECK(load_external("w.bin", "100", NULL, &t, &err) == OQ_EINVAL);
    CHECK(load_external("w.bin", "18446744073709551615", "16", &t, &err) == OQ_EINVAL);
    CHECK(load_external("w.bin", "-4", "16", &t, &err) == OQ_EINVAL);
    CHECK(load_external("w.bin", "0", "20", &t, &err) == OQ_EINVAL); /* length != 16 bytes */
    CHECK(load_external("missing.bin", NULL, NULL, &t, &err) == OQ_EIO);

    /* a symlink inside the folder pointing outside it */
    CHECK(symlink("/etc/hostname", tmp_path("link.bin")) == 0);
    CHECK(load_external("link.bin", "0", "16", &t, &err) == OQ_EINVAL && strstr(err.msg, "outside"));
    unlink(tmp_path("link.bin"));
    unlink(tmp_path("w.bin"));
}

static void test_tensor_pb_round_trip(void)
{
    oq_err err = {0};
    static const oq_dtype types[] = {OQ_DTYPE_FLOAT, OQ_DTYPE_UINT8,  OQ_DTYPE_INT8,    OQ_DTYPE_INT16,
                                     OQ_DTYPE_INT64, OQ_DTYPE_BOOL,   OQ_DTYPE_FLOAT16, OQ_DTYPE_DOUBLE,
                                     OQ_DTYPE_INT4,  OQ_DTYPE_UINT64, OQ_DTYPE_STRING};
    int64_t dims[2] = {3, 5};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        oq_tensor *t = oq_tensor_create(types[k], 2, dims, &err);
        if (!t) {
            CHECK(t != NULL);
            continue;
        }
        if (types[k] == OQ_DTYPE_STRING) {
            for (int i = 0; i < 15; i++) {
                char s[16];
                snprintf(s, sizeof s, "s%d", i * 7);
                ((char **)t->data)[i] = strdup(s);
            }
        } else {
            for (size_t i = 0; i < t->nbytes; i++)
                ((uint8_t *)t->data)[i] = (uint8_t)(i * 37 + k);
        }
        CHECK_OK(oq_tensor_save_pb(t, "x", tmp_path("rt.pb"), &err), &err);
        oq_tensor r;
        char *name = NULL;
        CHECK_OK(oq_tensor_load_pb(&r, &name, tmp_path("rt.pb"), &err), &err);
        CHECK(r.dtype == t->dtype && r.rank == 2 && r.dims[0] == 3 && r.dims[1] == 5 && name &&
              !strcmp(name, "x"));
        if (r.data && types[k] == OQ_DTYPE_STRING)
            CHECK(!strcmp(((char **)r.data)[14], "s98"));
        else if (r.data)
            CHECK(r.nbytes == t->nbytes && !memcmp(r.data, t->data, t->nbytes));
        oq_tensor_release(&r);
        free(name);
        oq_tensor_destroy(t);
    }
    unlink(tmp_path("rt.pb"));
    unlink(tmp_path("t.pb"));
}

/* ---- hostile input ---------------------------------------------------------------- */

/* Loads buf; must return (any status) without crashing; a success must be a usable model. */
static int try_load(const uint8_t *buf, size_t len)
{
    oq_err err = {0};
    oq_model *m = NULL;
    oq_status st = oq_model_load_buffer(&m, buf, len, NULL, &err);
    if (st == OQ_OK) {
        CHECK(m && m->graph);
        uint8_t *out;
        size_t n;
        if (oq_model_serialize(m, &out, &n, &err) == OQ_OK)
            free(out);
    } else {
        CHECK(m == NULL && err.msg[0] != '\0');
    }
    oq_model_destroy(m);
    return st == OQ_OK;
}

static void test_bad_input(void)
{
    oq_err err = {0};
    oq_model *m = NULL;
    CHECK(oq_model_load_buffer(&m, (const uint8_t *)"", 0, NULL, &err) == OQ_EINVAL);
    CHECK(strstr(err.msg, "not a valid ONNX model") != NULL);
    const char *text = "ir_version: 8\ngraph { node { op_type: \"Relu\" } }\n";
    CHECK(oq_model_load_buffer(&m, (const uint8_t *)text, strlen(text), NULL, &err) == OQ_EINVAL);

    /* file errors name the path */
    CHECK(oq_model_load(&m, tmp_path("does-not-exist.onnx"), &err) == OQ_EIO);
    CHECK(strstr(err.msg, "does-not-exist.onnx") != NULL);
    const char *junk = tmp_path("junk.onnx");
    CHECK_OK(oq_write_file_atomic(junk, (const uint8_t *)"\xff\xff\xff\xff", 4, &err), &err);
    CHECK(oq_model_load(&m, junk, &err) == OQ_EINVAL);
    CHECK(strstr(err.msg, "junk.onnx: not a valid ONNX model (protobuf parse failed)") != NULL);
    unlink(junk);

    uint64_t seed = 0x9E3779B97F4A7C15u;
    uint8_t rnd[512];
    for (int k = 0; k < 300; k++) {
        size_t len = (size_t)(k * 13 % 512);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            rnd[i] = (uint8_t)(seed >> 56);
        }
        try_load(rnd, len);
    }

    oq_model *good = build_model();
    uint8_t *buf;
    size_t len;
    CHECK_OK(oq_model_serialize(good, &buf, &len, &err), &err);
    oq_model_destroy(good);
    int ok = 0;
    for (size_t cut = 0; cut < len; cut++) /* every truncation */
        ok += try_load(buf, cut);
    CHECK(ok < (int)len); /* most truncations cut a field and must fail */
    uint8_t *flip = malloc(len);
    for (size_t i = 0; i < len; i++) { /* one bit flip per byte position, every bit over the run */
        memcpy(flip, buf, len);
        flip[i] ^= (uint8_t)(1u << (i % 8));
        try_load(flip, len);
    }
    free(flip);
    free(buf);
}

/* Size of a varint. */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7F) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A model whose graph holds an If node whose then_branch holds an If node ...
 * `depth` levels deep, written from the outside in. Caller frees. */
static uint8_t *nested_model(int depth, size_t *len)
{
    static const uint8_t attr_fixed[] = "\x0a\x0bthen_branch\xa0\x01\x05"; /* name, type = GRAPH */
    static const uint8_t node_fixed[] = "\x22\x02If\x0a\x01" "c\x12\x01o";  /* op_type, input, output */
    size_t af = sizeof attr_fixed - 1, nf = sizeof node_fixed - 1;
    size_t *gsize = calloc((size_t)depth + 1, sizeof *gsize); /* gsize[i]: graph at level i from the inside */
    for (int i = 1; i <= depth; i++) {
        size_t attr = af + 1 + varint_len(gsize[i - 1]) + gsize[i - 1];
        size_t node = nf + 1 + varint_len(attr) + attr;
        gsize[i] = 1 + varint_len(node) + node;
    }
    pb head = {.n = 0};
    put_int(&head, 1, 8);
    put_varint(&head, 7 << 3 | 2);
    put_varint(&head, gsize[depth]);
    uint8_t *buf = malloc(head.n + gsize[depth]);
    memcpy(buf, head.b, head.n);
    size_t n = head.n;
    for (int i = depth; i >= 1; i--) {
        size_t attr = af + 1 + varint_len(gsize[i - 1]) + gsize[i - 1];
        size_t node = nf + 1 + varint_len(attr) + attr;
        pb t = {.n = 0};
        put_varint(&t, 1 << 3 | 2); /* GraphProto.node */
        put_varint(&t, node);
        memcpy(buf + n, t.b, t.n);
        n += t.n;
        memcpy(buf + n, node_fixed, nf);
        n += nf;
        t.n = 0;
        put_varint(&t, 5 << 3 | 2); /* NodeProto.attribute */
        put_varint(&t, attr);
        memcpy(buf + n, t.b, t.n);
        n += t.n;
        memcpy(buf + n, attr_fixed, af);
        n += af;
        t.n = 0;
        put_varint(&t, 6 << 3 | 2); /* AttributeProto.g */
        put_varint(&t, gsize[i - 1]);
        memcpy(buf + n, t.b, t.n);
        n += t.n;
    }
    free(gsize);
    *len = n;
    return buf;
}

static void test_nesting(void)
{
    oq_err err = {0};
    oq_model *m = NULL;
    size_t len;
    uint8_t *buf = nested_model(3, &len); /* fine: If inside If inside If */
    CHECK(oq_model_load_buffer(&m, buf, len, NULL, &err) == OQ_EINVAL); /* 'c' names no value */
    CHECK(strstr(err.msg, "'c'") != NULL);
    free(buf);
    buf = nested_model(70, &len); /* past the subgraph limit */
    CHECK(oq_model_load_buffer(&m, buf, len, NULL, &err) == OQ_EUNSUPPORTED);
    CHECK(strstr(err.msg, "nested more than") != NULL);
    free(buf);
    buf = nested_model(50000, &len); /* would exhaust protobuf-c's recursion */
    CHECK(oq_model_load_buffer(&m, buf, len, NULL, &err) == OQ_EUNSUPPORTED);
    free(buf);

    /* a graph without nodes: its input is its output */
    pb vi = {.n = 0}, g = {.n = 0}, model = {.n = 0};
    put_str(&vi, 1, "x");
    put_bytes(&g, 11, vi.b, vi.n);
    put_bytes(&g, 12, vi.b, vi.n);
    put_int(&model, 1, 8);
    put_bytes(&model, 7, g.b, g.n);
    CHECK_OK(oq_model_load_buffer(&m, model.b, model.n, NULL, &err), &err);
    CHECK(m && m->graph->n_nodes == 0 && m->graph->n_inputs == 1 && m->graph->inputs[0] == m->graph->outputs[0]);
    oq_model_destroy(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/oq_test_io_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_model_round_trip();
    test_save_external();
    test_mapped_external();
    test_tensor_decoding();
    test_external_refusals();
    test_tensor_pb_round_trip();
    test_bad_input();
    test_nesting();
    rmdir(tmpdir);
    return check_exit("test_io");
}
