/* fuzz_model.c: bytes -> ModelProto -> graph, which must serialize and load
 * again, -> session; small models are also run once on small inputs so the
 * executor's shape rules see hostile dims. Then the same for the model graph
 * preparation (oq_prepare_model) makes of it, which must not fail. External
 * data resolves in a folder made once per process that holds one file,
 * ext.bin (4096 bytes counting up), so models naming it reach the
 * external-data reader.
 * Work is bounded: one tensor may hold at most 256 KiB, inputs at most 4096
 * elements, and graphs with loops (Loop, Scan) or more than 64 nodes are only
 * planned, not run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnxq/oq_exec.h"
#include "onnxq/oq_onnx_io.h"
#include "onnxq/oq_prepare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TENSOR_LIMIT ((size_t)256 << 10)
#define FUZZ_MAX_INPUT_ELEMS 4096
#define FUZZ_MAX_NODES 64
#define FUZZ_EXT_BYTES 4096

static char ext_dir[64], ext_file[96];

static void remove_ext_dir(void)
{
    unlink(ext_file);
    rmdir(ext_dir);
}

/* The folder holding ext.bin, made on first use; NULL if it cannot be made. */
static const char *external_data_dir(void)
{
    if (ext_dir[0])
        return ext_dir;
    char tmpl[] = "/tmp/onnxq-fuzz-XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    snprintf(ext_dir, sizeof ext_dir, "%s", tmpl);
    snprintf(ext_file, sizeof ext_file, "%s/ext.bin", tmpl);
    uint8_t bytes[FUZZ_EXT_BYTES];
    for (int i = 0; i < FUZZ_EXT_BYTES; i++)
        bytes[i] = (uint8_t)i;
    FILE *f = fopen(ext_file, "wb");
    bool ok = f && fwrite(bytes, 1, sizeof bytes, f) == sizeof bytes;
    if (f && fclose(f) != 0)
        ok = false;
    atexit(remove_ext_dir);
    return ok ? ext_dir : NULL;
}

static bool runnable(const oq_graph *g)
{
    if (g->n_nodes > FUZZ_MAX_NODES)
        return false;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "Loop") || !strcmp(g->nodes[i]->op_type, "Scan"))
            return false;
    return true;
}

/* Fills t with the small values -1, 0, 1, 2 in turn (float and int32/int64
 * element types; others stay zero), so index and shape inputs take varied paths. */
static void fill(oq_tensor *t)
{
    int64_t n = oq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int v = (int)(i % 4) - 1;
        if (t->dtype == OQ_DTYPE_FLOAT)
            ((float *)t->data)[i] = (float)v;
        else if (t->dtype == OQ_DTYPE_INT64)
            ((int64_t *)t->data)[i] = v;
        else if (t->dtype == OQ_DTYPE_INT32)
            ((int32_t *)t->data)[i] = v;
    }
}

/* Runs s once on inputs of the declared shapes (unknown dims = 1). */
static void run_once(oq_session *s)
{
    int n_in = oq_session_input_count(s), n_out = oq_session_output_count(s);
    oq_tensor in[16], out[16];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    if (n_in > 16 || n_out > 16)
        return;
    oq_err err = {0};
    int made = 0;
    for (; made < n_in; made++) {
        const oq_value *v = oq_session_input(s, made);
        int64_t dims[OQ_MAX_RANK];
        int rank = v->rank < 0 ? 0 : v->rank;
        if (rank > OQ_MAX_RANK)
            break;
        for (int d = 0; d < rank; d++)
            dims[d] = v->dims[d].value >= 0 ? v->dims[d].value : 1;
        int64_t numel = oq_shape_numel(rank, dims);
        oq_dtype dt = v->dtype == OQ_DTYPE_UNDEFINED ? OQ_DTYPE_FLOAT : v->dtype;
        if (numel < 0 || numel > FUZZ_MAX_INPUT_ELEMS || dt == OQ_DTYPE_STRING ||
            oq_tensor_alloc(&in[made], dt, rank, dims, &err))
            break;
        fill(&in[made]);
    }
    if (made == n_in && !oq_session_run(s, in, out, &err))
        for (int k = 0; k < n_out; k++)
            oq_tensor_release(&out[k]);
    for (int k = 0; k < made; k++)
        oq_tensor_release(&in[k]);
}

/* A model onnxq loaded must serialize to bytes it loads again. */
static void check_roundtrip(const oq_model *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    oq_model *again = NULL;
    oq_err err = {0};
    if (oq_model_serialize(m, &buf, &len, &err) || oq_model_load_buffer(&again, buf, len, NULL, &err)) {
        fprintf(stderr, "fuzz_model: loaded model does not round-trip: %s\n", err.msg);
        abort();
    }
    oq_model_destroy(again);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oq_set_tensor_limit(FUZZ_TENSOR_LIMIT);
    oq_model *m = NULL;
    oq_err err = {0};
    if (oq_model_load_buffer(&m, data, size, external_data_dir(), &err))
        return 0;
    check_roundtrip(m);
    oq_session *s = NULL;
    oq_exec_options opts = {.threads = 1};
    if (!oq_session_create(&s, m, &opts, &err) && runnable(m->graph))
        run_once(s);
    oq_session_destroy(s);
    s = NULL;
    oq_prepare_options po = {.fold_max_bytes = FUZZ_TENSOR_LIMIT};
    oq_prepare_result pr;
    if (oq_prepare_model(m, &po, &pr, &err)) {
        fprintf(stderr, "fuzz_model: preparing a loaded model failed: %s\n", err.msg);
        abort();
    }
    check_roundtrip(m);
    if (!oq_session_create(&s, m, &opts, &err) && runnable(m->graph))
        run_once(s);
    oq_session_destroy(s);
    oq_model_destroy(m);
    return 0;
}
