/* test_ops_elem.c: elementwise, reduce and norm kernels on shapes large
 * enough to take their multi-threaded and general (non-row) paths, which
 * ONNX's small conformance cases do not reach. Each case runs one node
 * through the executor with 1 and 2 threads, requires bit-identical
 * results, and compares them with a plain-loop oracle written here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_graph.h"

#define MAX_IO 3

typedef struct op_case {
    const char *name;
    const char *op;
    int opset;
    int n_in;
    oq_dtype dt[MAX_IO];        /* input types */
    int rank[MAX_IO];
    int64_t dims[MAX_IO][4];    /* input shapes */
    /* optional attributes */
    const char *ints_name;
    int n_ints;
    int64_t ints[4];
    const char *int_name;
    int64_t int_val;
} op_case;

/* ---- building and running one node ------------------------------------------------ */

static oq_model *build(const op_case *k, oq_err *err)
{
    oq_model *m = oq_model_create();
    if (!m)
        return NULL;
    if (!(m->opsets = calloc(1, sizeof *m->opsets)) || !(m->opsets[0].domain = strdup("")))
        goto fail;
    m->n_opsets = 1;
    m->opsets[0].version = k->opset;
    if (!(m->graph = oq_graph_create(m, NULL)))
        goto fail;
    oq_graph *g = m->graph;
    static const char *in_names[MAX_IO] = {"x0", "x1", "x2"};
    for (int i = 0; i < k->n_in; i++) {
        oq_dim d[4];
        for (int j = 0; j < k->rank[i]; j++)
            d[j] = (oq_dim){k->dims[i][j], NULL};
        oq_value *v = oq_graph_value(g, in_names[i], err);
        if (!v || oq_value_set_tensor_type(v, k->dt[i], k->rank[i], d, err) || oq_graph_add_input(g, v, err))
            goto fail;
    }
    const char *out[] = {"y"};
    oq_node *n = oq_graph_add_node(g, k->op, "", "n", k->n_in, in_names, 1, out, err);
    if (!n)
        goto fail;
    if (k->ints_name && oq_node_set_attr_ints(n, k->ints_name, k->n_ints, k->ints, err))
        goto fail;
    if (k->int_name && oq_node_set_attr_int(n, k->int_name, k->int_val, err))
        goto fail;
    if (oq_graph_add_output(g, oq_graph_find(g, "y"), err) || oq_graph_sort(g, err))
        goto fail;
    return m;
fail:
    oq_model_destroy(m);
    return NULL;
}

static uint32_t rng_state;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
}

/* Fills the inputs of k with deterministic values (bools about half true). */
static void make_inputs(const op_case *k, oq_tensor *in, oq_err *err)
{
    rng_state = 12345;
    for (int i = 0; i < k->n_in; i++) {
        CHECK_OK(oq_tensor_alloc(&in[i], k->dt[i], k->rank[i], k->dims[i], err), err);
        int64_t n = oq_tensor_numel(&in[i]);
        for (int64_t e = 0; e < n && in[i].data; e++) {
            if (k->dt[i] == OQ_DTYPE_BOOL)
                ((uint8_t *)in[i].data)[e] = rnd() > 0.0f;
            else
                ((float *)in[i].data)[e] = rnd();
        }
    }
}

/* Runs k with the given thread count; *y receives the owned output. */
static oq_status run_case(const op_case *k, const oq_tensor *in, int threads, oq_tensor *y, oq_err *err)
{
    oq_model *m = build(k, err);
    if (!m)
        return err->status;
    oq_session *s = NULL;
    oq_exec_options opts = {.threads = threads};
    oq_status st = oq_session_create(&s, m, &opts, err);
    if (!st)
        st = oq_session_run(s, in, y, err);
    oq_session_destroy(s);
    oq_model_destroy(m);
    return st;
}

/* ---- oracles ---------------------------------------------------------------------- */

/* Offset of output flat index i in an input of (rank, dims) broadcast to (orank, odims). */
static int64_t bcast_offset(int64_t i, int orank, const int64_t *odims, int rank, const int64_t *dims)
{
    int64_t off = 0, stride = 1;
    for (int d = orank - 1; d >= 0; d--) {
        int64_t idx = i % odims[d];
        i /= odims[d];
        int j = d - (orank - rank);
        if (j >= 0) {
            if (dims[j] != 1)
                off += idx * stride;
            stride *= dims[j];
        }
    }
    return off;
}

static float bin_ref(const char *op, float a, float b)
{
    if (!strcmp(op, "Add"))
        return a + b;
    if (!strcmp(op, "Sub"))
        return a - b;
    if (!strcmp(op, "Mul"))
        return a * b;
    if (!strcmp(op, "Div"))
        return a / b;
    return fmaxf(a, b); /* Max */
}

/* Checks y against the oracle for binary ops and Where. */
static int check_elementwise(const op_case *k, const oq_tensor *in, const oq_tensor *y)
{
    int bad = 0;
    for (int64_t i = 0; i < oq_tensor_numel(y); i++) {
        int64_t o[MAX_IO];
        for (int j = 0; j < k->n_in; j++)
            o[j] = bcast_offset(i, y->rank, y->dims, k->rank[j], k->dims[j]);
        float want;
        if (!strcmp(k->op, "Where"))
            want = ((uint8_t *)in[0].data)[o[0]] ? ((float *)in[1].data)[o[1]] : ((float *)in[2].data)[o[2]];
        else
            want = bin_ref(k->op, ((float *)in[0].data)[o[0]], ((float *)in[1].data)[o[1]]);
        bad += ((float *)y->data)[i] != want;
    }
    return bad;
}

/* ReduceSum/Mean/Max over k->ints axes (keepdims from k->int_val). */
static int check_reduce(const op_case *k, const oq_tensor *x, const oq_tensor *y)
{
    bool red[4] = {false};
    for (int a = 0; a < k->n_ints; a++)
        red[k->ints[a] < 0 ? k->ints[a] + x->rank : k->ints[a]] = true;
    int64_t kd[4], m = 1;
    for (int d = 0; d < x->rank; d++) {
        kd[d] = red[d] ? 1 : x->dims[d];
        m *= kd[d];
    }
    if (oq_tensor_numel(y) != m)
        return 1;
    double *acc = calloc((size_t)m, sizeof *acc);
    int64_t *cnt = calloc((size_t)m, sizeof *cnt);
    const bool is_max = !strcmp(k->op, "ReduceMax");
    for (int64_t i = 0; i < m; i++)
        acc[i] = is_max ? -INFINITY : 0.0;
    for (int64_t i = 0; i < oq_tensor_numel(x); i++) {
        int64_t rem = i, o = 0, stride = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            int64_t idx = rem % x->dims[d];
            rem /= x->dims[d];
            if (!red[d])
                o += idx * stride;
            stride *= kd[d];
        }
        float v = ((float *)x->data)[i];
        acc[o] = is_max ? fmax(acc[o], v) : acc[o] + v;
        cnt[o]++;
    }
    int bad = 0;
    for (int64_t i = 0; i < m; i++) {
        double want = !strcmp(k->op, "ReduceMean") ? acc[i] / (double)cnt[i] : acc[i];
        bad += fabs(((float *)y->data)[i] - want) > 1e-5 + 1e-5 * fabs(want);
    }
    free(acc);
    free(cnt);
    return bad;
}

/* Softmax (opset 13) along k->int_val. */
static int check_softmax(const op_case *k, const oq_tensor *x, const oq_tensor *y)
{
    int axis = (int)(k->int_val < 0 ? k->int_val + x->rank : k->int_val);
    int64_t outer = 1, n = x->dims[axis], inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        inner *= x->dims[d];
    int bad = 0;
    const float *xs = x->data, *ys = y->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            const int64_t base = o * n * inner + j;
            double mx = -INFINITY, sum = 0.0;
            for (int64_t e = 0; e < n; e++)
                mx = fmax(mx, xs[base + e * inner]);
            for (int64_t e = 0; e < n; e++)
                sum += exp(xs[base + e * inner] - mx);
            for (int64_t e = 0; e < n; e++) {
                double want = exp(xs[base + e * inner] - mx) / sum;
                bad += fabs(ys[base + e * inner] - want) > 1e-6 + 1e-4 * want;
            }
        }
    }
    return bad;
}

/* LayerNormalization over the last axis with Scale x1 and B x2. */
static int check_layernorm(const oq_tensor *in, const oq_tensor *y)
{
    const oq_tensor *x = &in[0];
    const int64_t n = x->dims[x->rank - 1], rows = oq_tensor_numel(x) / n;
    const float *xs = x->data, *sc = in[1].data, *b = in[2].data, *ys = y->data;
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < n; i++)
            mean += xs[r * n + i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++)
            var += (xs[r * n + i] - mean) * (xs[r * n + i] - mean);
        var /= (double)n;
        for (int64_t i = 0; i < n; i++) {
            double want = (xs[r * n + i] - mean) / sqrt(var + 1e-5) * sc[i] + b[i];
            bad += fabs(ys[r * n + i] - want) > 1e-5 + 1e-4 * fabs(want);
        }
    }
    return bad;
}

/* ---- the cases ---------------------------------------------------------------------- */

#define F OQ_DTYPE_FLOAT
static const op_case cases[] = {
    {.name = "add same shape", .op = "Add", .opset = 14, .n_in = 2, .dt = {F, F}, .rank = {2, 2},
     .dims = {{300, 200}, {300, 200}}},
    {.name = "sub outer bcast", .op = "Sub", .opset = 14, .n_in = 2, .dt = {F, F}, .rank = {3, 3},
     .dims = {{40, 1, 96}, {1, 70, 96}}},
    {.name = "mul scalar", .op = "Mul", .opset = 14, .n_in = 2, .dt = {F, F}, .rank = {4, 0},
     .dims = {{2, 16, 40, 40}}},
    {.name = "div channel bias", .op = "Div", .opset = 14, .n_in = 2, .dt = {F, F}, .rank = {4, 3},
     .dims = {{2, 16, 40, 40}, {16, 1, 1}}},
    {.name = "max column", .op = "Max", .opset = 13, .n_in = 2, .dt = {F, F}, .rank = {2, 2},
     .dims = {{500, 3}, {1, 3}}},
    {.name = "where 3-way", .op = "Where", .opset = 16, .n_in = 3, .dt = {OQ_DTYPE_BOOL, F, F},
     .rank = {2, 3, 1}, .dims = {{1, 300}, {200, 1, 300}, {1}}},
    {.name = "reduce mean rows", .op = "ReduceMean", .opset = 13, .n_in = 1, .dt = {F}, .rank = {2},
     .dims = {{600, 256}}, .ints_name = "axes", .n_ints = 1, .ints = {-1}},
    {.name = "reduce sum outer+inner", .op = "ReduceSum", .opset = 11, .n_in = 1, .dt = {F}, .rank = {3},
     .dims = {{16, 64, 48}}, .ints_name = "axes", .n_ints = 2, .ints = {0, 2}, .int_name = "keepdims",
     .int_val = 0},
    {.name = "reduce max middle", .op = "ReduceMax", .opset = 13, .n_in = 1, .dt = {F}, .rank = {3},
     .dims = {{30, 200, 20}}, .ints_name = "axes", .n_ints = 1, .ints = {1}},
    {.name = "reduce mean leading", .op = "ReduceMean", .opset = 13, .n_in = 1, .dt = {F}, .rank = {2},
     .dims = {{512, 130}}, .ints_name = "axes", .n_ints = 1, .ints = {0}},
    {.name = "softmax last", .op = "Softmax", .opset = 13, .n_in = 1, .dt = {F}, .rank = {2},
     .dims = {{400, 300}}, .int_name = "axis", .int_val = -1},
    {.name = "softmax strided", .op = "Softmax", .opset = 13, .n_in = 1, .dt = {F}, .rank = {3},
     .dims = {{8, 300, 40}}, .int_name = "axis", .int_val = 1},
    {.name = "layernorm", .op = "LayerNormalization", .opset = 17, .n_in = 3, .dt = {F, F, F},
     .rank = {2, 1, 1}, .dims = {{256, 768}, {768}, {768}}},
};

static void test_case(const op_case *k)
{
    oq_err err = {0};
    oq_tensor in[MAX_IO] = {0}, y1 = {0}, y2 = {0};
    make_inputs(k, in, &err);
    CHECK_OK(run_case(k, in, 1, &y1, &err), &err);
    CHECK_OK(run_case(k, in, 2, &y2, &err), &err);
    if (y1.data && y2.data) {
        /* same bits whatever the thread count */
        CHECK(y1.nbytes >= oq_dtype_storage(y1.dtype, oq_tensor_numel(&y1)));
        CHECK(y1.rank == y2.rank && !memcmp(y1.dims, y2.dims, sizeof(int64_t) * (size_t)y1.rank));
        CHECK(!memcmp(y1.data, y2.data, oq_dtype_storage(y1.dtype, oq_tensor_numel(&y1))));
        int bad;
        if (!strncmp(k->op, "Reduce", 6))
            bad = check_reduce(k, &in[0], &y2);
        else if (!strcmp(k->op, "Softmax"))
            bad = check_softmax(k, &in[0], &y2);
        else if (!strcmp(k->op, "LayerNormalization"))
            bad = check_layernorm(in, &y2);
        else
            bad = check_elementwise(k, in, &y2);
        if (bad)
            fprintf(stderr, "%s: %d elements differ from the oracle\n", k->name, bad);
        CHECK(bad == 0);
    }
    for (int i = 0; i < MAX_IO; i++)
        oq_tensor_release(&in[i]);
    oq_tensor_release(&y1);
    oq_tensor_release(&y2);
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(&cases[i]);
    return check_exit("test_ops_elem");
}
