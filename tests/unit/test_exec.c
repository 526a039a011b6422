/* test_exec.c: the executor on a small graph built with the mutation API:
 * two runs with different shapes, buffer reuse, the observer, input checks,
 * plan-time errors, and the thread pool's chunking. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "exec/threadpool.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_graph.h"

/* x: float (batch, 3) -> Identity a -> Cast(double) b -> Identity c -> Cast(float) y
 *                       -> Shape s (int64)
 * Outputs y and s. */
static oq_model *build_chain(oq_err *err)
{
    oq_model *m = oq_model_create();
    if (!m)
        return NULL;
    m->opsets = calloc(1, sizeof *m->opsets);
    if (!m->opsets || !(m->opsets[0].domain = strdup("")))
        goto fail;
    m->n_opsets = 1;
    m->opsets[0].version = 13;
    if (!(m->graph = oq_graph_create(m, NULL)))
        goto fail;
    oq_graph *g = m->graph;
    oq_dim dims[2] = {{-1, "batch"}, {3, NULL}};
    oq_value *x = oq_graph_value(g, "x", err);
    if (!x || oq_value_set_tensor_type(x, OQ_DTYPE_FLOAT, 2, dims, err) || oq_graph_add_input(g, x, err))
        goto fail;
    const char *in_x[] = {"x"}, *out_a[] = {"a"}, *in_a[] = {"a"}, *out_b[] = {"b"}, *in_b[] = {"b"},
               *out_c[] = {"c"}, *in_c[] = {"c"}, *out_y[] = {"y"}, *out_s[] = {"s"};
    oq_node *n1 = oq_graph_add_node(g, "Identity", "", "id1", 1, in_x, 1, out_a, err);
    oq_node *n2 = oq_graph_add_node(g, "Cast", "", "to_double", 1, in_a, 1, out_b, err);
    oq_node *n3 = oq_graph_add_node(g, "Identity", "", "id2", 1, in_b, 1, out_c, err);
    oq_node *n4 = oq_graph_add_node(g, "Cast", "", "to_float", 1, in_c, 1, out_y, err);
    oq_node *n5 = oq_graph_add_node(g, "Shape", "", "shape", 1, in_x, 1, out_s, err);
    if (!n1 || !n2 || !n3 || !n4 || !n5 || oq_node_set_attr_int(n2, "to", OQ_DTYPE_DOUBLE, err) ||
        oq_node_set_attr_int(n4, "to", OQ_DTYPE_FLOAT, err))
        goto fail;
    if (oq_graph_add_output(g, oq_graph_find(g, "y"), err) || oq_graph_add_output(g, oq_graph_find(g, "s"), err) ||
        oq_graph_sort(g, err))
        goto fail;
    return m;
fail:
    oq_model_destroy(m);
    return NULL;
}

typedef struct seen {
    int calls;
    int saw_b_double; /* the observer saw value 'b' as a double tensor */
} seen;

static void observe(void *user, const oq_value *v, const oq_tensor *t)
{
    seen *s = user;
    s->calls++;
    if (!strcmp(v->name, "b") && t->dtype == OQ_DTYPE_DOUBLE)
        s->saw_b_double++;
}

/* Runs the chain on a (batch, 3) input of i * 0.5 and checks both outputs. */
static void run_chain(oq_session *s, int64_t batch, oq_exec_stats *st)
{
    oq_err err = {0};
    int64_t dims[2] = {batch, 3};
    oq_tensor x, out[2];
    CHECK_OK(oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 2, dims, &err), &err);
    for (int64_t i = 0; i < batch * 3; i++)
        ((float *)x.data)[i] = (float)i * 0.5f;
    CHECK_OK(oq_session_run(s, &x, out, &err), &err);
    CHECK(out[0].dtype == OQ_DTYPE_FLOAT && out[0].rank == 2 && out[0].dims[0] == batch && out[0].dims[1] == 3);
    CHECK(out[0].owns_data);
    for (int64_t i = 0; i < batch * 3 && out[0].data; i++)
        CHECK(((float *)out[0].data)[i] == (float)i * 0.5f);
    CHECK(out[1].dtype == OQ_DTYPE_INT64 && out[1].rank == 1 && out[1].dims[0] == 2);
    if (out[1].data)
        CHECK(((int64_t *)out[1].data)[0] == batch && ((int64_t *)out[1].data)[1] == 3);
    oq_session_stats(s, st);
    oq_tensor_release(&out[0]);
    oq_tensor_release(&out[1]);
    oq_tensor_release(&x);
}

static void test_chain(void)
{
    oq_err err = {0};
    oq_model *m = build_chain(&err);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "build: %s\n", err.msg);
        return;
    }
    oq_session *s = NULL;
    oq_exec_options opts = {.threads = 2};
    CHECK_OK(oq_session_create(&s, m, &opts, &err), &err);
    if (!s) {
        oq_model_destroy(m);
        return;
    }
    CHECK(oq_session_input_count(s) == 1 && !strcmp(oq_session_input(s, 0)->name, "x"));
    CHECK(oq_session_output_count(s) == 2 && !strcmp(oq_session_output(s, 1)->name, "s"));
    seen obs = {0};
    oq_session_set_observer(s, observe, &obs);

    oq_exec_stats st1, st2, st3;
    run_chain(s, 4, &st1);
    CHECK(obs.calls == 5 && obs.saw_b_double == 1);
    /* float (4,3) = 48 bytes, double = 96, shape 16: a 48 + b 96 + c 96 + y 48 + s 16 */
    CHECK(st1.naive_bytes == 304);
    /* at most two of the chain's tensors are alive at once, plus the shape */
    CHECK(st1.peak_bytes < st1.naive_bytes);
    CHECK(st1.peak_bytes <= 96 + 96 + 16 + 48);
    CHECK(st1.threads == 2);
    run_chain(s, 7, &st2); /* another batch size: the symbolic dim is free */
    CHECK(st2.naive_bytes == (304 - 16) * 7 / 4 + 16);
    run_chain(s, 4, &st3);
    CHECK(st3.peak_bytes == st1.peak_bytes && st3.naive_bytes == st1.naive_bytes);

    /* input checks name the input */
    int64_t bad_dims[2] = {4, 3}, wrong_dims[2] = {4, 5};
    oq_tensor bad, out[2];
    CHECK_OK(oq_tensor_alloc(&bad, OQ_DTYPE_INT32, 2, bad_dims, &err), &err);
    CHECK(oq_session_run(s, &bad, out, &err) == OQ_EINVAL && strstr(err.msg, "'x'") && strstr(err.msg, "int32"));
    oq_tensor_release(&bad);
    CHECK_OK(oq_tensor_alloc(&bad, OQ_DTYPE_FLOAT, 2, wrong_dims, &err), &err);
    CHECK(oq_session_run(s, &bad, out, &err) == OQ_EINVAL && strstr(err.msg, "dim 1"));
    oq_tensor_release(&bad);
    CHECK_OK(oq_tensor_alloc(&bad, OQ_DTYPE_FLOAT, 1, bad_dims, &err), &err);
    CHECK(oq_session_run(s, &bad, out, &err) == OQ_EINVAL && strstr(err.msg, "rank"));
    oq_tensor_release(&bad);
    /* a failed run leaves the session usable */
    run_chain(s, 4, &st3);
    CHECK(st3.naive_bytes == st1.naive_bytes);
    oq_session_destroy(s);

    /* an op with no kernel is named at plan time */
    const char *in_y[] = {"y"}, *out_z[] = {"z"};
    oq_node *n = oq_graph_add_node(m->graph, "NoSuchOp", "", "mystery", 1, in_y, 1, out_z, &err);
    CHECK(n != NULL);
    s = NULL;
    CHECK(oq_session_create(&s, m, &opts, &err) == OQ_EUNSUPPORTED);
    CHECK(strstr(err.msg, "node 'mystery' (NoSuchOp, opset 13, domain '')") != NULL);
    CHECK(s == NULL);
    oq_model_destroy(m);
}

/* ---- thread pool ------------------------------------------------------------------- */

typedef struct cover {
    int *hits;      /* [n] times each index was visited */
    int64_t *first; /* [n] chunk begin that visited it */
} cover;

static void visit(void *arg, int64_t b, int64_t e)
{
    cover *c = arg;
    for (int64_t i = b; i < e; i++) {
        c->hits[i]++;
        c->first[i] = b;
    }
}

static void test_threadpool(void)
{
    oq_err err = {0};
    for (int threads = 1; threads <= 3; threads++) {
        oq_threadpool *tp = NULL;
        CHECK_OK(oq_threadpool_create(&tp, threads, &err), &err);
        if (!tp)
            continue;
        CHECK(oq_threadpool_size(tp) == threads);
        for (int64_t n = 0; n <= 10; n++) {
            int hits[10] = {0};
            int64_t first[10] = {0};
            cover c = {hits, first};
            for (int rep = 0; rep < 3; rep++) {
                memset(hits, 0, sizeof hits);
                oq_threadpool_run(tp, n, visit, &c);
                for (int64_t i = 0; i < n; i++)
                    CHECK(hits[i] == 1);
            }
            /* contiguous chunks: chunk starts never decrease */
            for (int64_t i = 1; i < n; i++)
                CHECK(first[i] >= first[i - 1]);
        }
        oq_threadpool_destroy(tp);
    }
}

int main(void)
{
    test_chain();
    test_threadpool();
    return check_exit("test_exec");
}
