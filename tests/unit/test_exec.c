/* test_exec.c: the executor on a small graph built with the mutation API:
 * two runs with different shapes, buffer reuse, the observer, input checks,
 * plan-time errors, fused elementwise chains, runs in steps on kept states,
 * and the thread pool's chunking. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "exec/threadpool.h"
#include "exec/vmath.h"
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

/* ---- fused elementwise chains ------------------------------------------------------ */

/* Adds a float scalar initializer named `name` to g. */
static bool add_scalar(oq_graph *g, const char *name, float f, oq_err *err)
{
    oq_value *v = oq_graph_value(g, name, err);
    oq_tensor *t = v ? oq_tensor_create(OQ_DTYPE_FLOAT, 0, NULL, err) : NULL;
    if (!t) return false;
    *(float *)t->data = f;
    return oq_graph_set_constant(g, v, t, true, err) == OQ_OK;
}

/* x (n) float. A hard-swish written out, scaled and shifted:
 *   a = x + 3, b = clip(a, 0, 6), m = x * b, h = m / 6, k = h * 0.5, y = 0.25 + k
 * which fuses into one chain; beside it r = relu(x) and q = r * 2, where r is
 * also a graph output, so r and q cannot fuse; and w = sigmoid(y) - x.
 * Last, u = -x, v = -x, t = u + v, z = -v, o = t * z: t and o must not fuse,
 * since v dies at z, before o's turn. */
static oq_model *build_ew(int64_t n, oq_err *err)
{
    oq_model *m = oq_model_create();
    if (!m) return NULL;
    m->opsets = calloc(1, sizeof *m->opsets);
    if (!m->opsets || !(m->opsets[0].domain = strdup(""))) goto fail;
    m->n_opsets = 1;
    m->opsets[0].version = 13;
    if (!(m->graph = oq_graph_create(m, NULL))) goto fail;
    oq_graph *g = m->graph;
    oq_dim dims[1] = {{n, NULL}};
    oq_value *x = oq_graph_value(g, "x", err);
    if (!x || oq_value_set_tensor_type(x, OQ_DTYPE_FLOAT, 1, dims, err) || oq_graph_add_input(g, x, err)) goto fail;
    if (!add_scalar(g, "three", 3.0f, err) || !add_scalar(g, "zero", 0.0f, err) || !add_scalar(g, "six", 6.0f, err) ||
        !add_scalar(g, "half", 0.5f, err) || !add_scalar(g, "quarter", 0.25f, err) || !add_scalar(g, "two", 2.0f, err))
        goto fail;
    static const struct {
        const char *op, *in[3], *out;
    } nodes[] = {
        {"Add", {"x", "three"}, "a"}, {"Clip", {"a", "zero", "six"}, "b"}, {"Mul", {"x", "b"}, "m"},
        {"Div", {"m", "six"}, "h"},   {"Mul", {"h", "half"}, "k"},         {"Add", {"quarter", "k"}, "y"},
        {"Relu", {"x"}, "r"},         {"Mul", {"r", "two"}, "q"},          {"Sigmoid", {"y"}, "sg"},
        {"Sub", {"sg", "x"}, "w"},    {"Neg", {"x"}, "u"},                 {"Neg", {"x"}, "v"},
        {"Add", {"u", "v"}, "t"},     {"Neg", {"v"}, "z"},                 {"Mul", {"t", "z"}, "o"},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        int n_in = nodes[i].in[2] ? 3 : nodes[i].in[1] ? 2 : 1;
        const char *out[1] = {nodes[i].out};
        if (!oq_graph_add_node(g, nodes[i].op, "", nodes[i].out, n_in, nodes[i].in, 1, out, err)) goto fail;
    }
    const char *outs[] = {"y", "r", "q", "w", "o"};
    for (int i = 0; i < 5; i++)
        if (oq_graph_add_output(g, oq_graph_find(g, outs[i]), err)) goto fail;
    if (oq_graph_sort(g, err)) goto fail;
    return m;
fail:
    oq_model_destroy(m);
    return NULL;
}

static void count_calls(void *user, const oq_value *v, const oq_tensor *t)
{
    (void)v, (void)t;
    ++*(int *)user;
}

/* Fused (no observer) and node-by-node (observer) runs agree bit for bit,
 * with each other and with the same float operations done here, at one and
 * two threads, on an input large enough to be split across threads. */
static void test_fusion(void)
{
    enum { N = 70001 };
    oq_err err = {0};
    oq_model *m = build_ew(N, &err);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "build: %s\n", err.msg);
        return;
    }
    oq_tensor x, out[3][5];
    int64_t dims[1] = {N};
    CHECK_OK(oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 1, dims, &err), &err);
    for (int64_t i = 0; x.data && i < N; i++) ((float *)x.data)[i] = (float)(i % 1601 - 800) / 97.0f;
    memset(out, 0, sizeof out);
    int calls = 0;
    size_t naive[3] = {0};
    for (int r = 0; r < 3 && x.data; r++) {
        oq_session *s = NULL;
        oq_exec_options opts = {.threads = r == 1 ? 2 : 1};
        CHECK_OK(oq_session_create(&s, m, &opts, &err), &err);
        if (!s) break;
        if (r == 2) oq_session_set_observer(s, count_calls, &calls);
        CHECK_OK(oq_session_run(s, &x, out[r], &err), &err);
        oq_exec_stats st;
        oq_session_stats(s, &st);
        naive[r] = st.naive_bytes;
        oq_session_destroy(s);
    }
    CHECK(calls == 15); /* observed, every node runs and is seen */
    /* fused, only the chains' results (y, w) and r, q, u, v, t, z, o are ever allocated */
    CHECK(naive[0] == 9 * N * sizeof(float) && naive[1] == naive[0]);
    CHECK(naive[2] == 15 * N * sizeof(float));
    const float *xs = x.data;
    int bad = 0;
    for (int r = 0; r < 3; r++) {
        const float *y = out[r][0].data, *rl = out[r][1].data, *q = out[r][2].data, *w = out[r][3].data;
        const float *o = out[r][4].data;
        if (!y || !rl || !q || !w || !o) {
            bad++;
            continue;
        }
        for (int64_t i = 0; i < N; i++) {
            float a = xs[i] + 3.0f, b = a < 0.0f ? 0.0f : a > 6.0f ? 6.0f : a;
            float want = 0.25f + (xs[i] * b / 6.0f) * 0.5f;
            float sg = oq_vsigmoidf(want); /* the executor's sigmoid, run here as scalar code */
            float relu = xs[i] > 0.0f ? xs[i] : 0.0f;
            float u = -xs[i], v = -xs[i];
            bad += y[i] != want || rl[i] != relu || q[i] != relu * 2.0f || w[i] != sg - xs[i] || o[i] != (u + v) * -v;
        }
    }
    CHECK(bad == 0);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 5; k++) oq_tensor_release(&out[r][k]);
    oq_tensor_release(&x);
    oq_model_destroy(m);
}

/* Adds a float initializer of shape dims filled with a fixed pseudo-random pattern. */
static bool add_weights(oq_graph *g, const char *name, int rank, const int64_t *dims, oq_err *err)
{
    oq_value *v = oq_graph_value(g, name, err);
    oq_tensor *t = v ? oq_tensor_create(OQ_DTYPE_FLOAT, rank, dims, err) : NULL;
    if (!t) return false;
    for (int64_t i = 0; i < oq_tensor_numel(t); i++) ((float *)t->data)[i] = (float)((i * 37) % 19 - 9) / 7.0f;
    return oq_graph_set_constant(g, v, t, true, err) == OQ_OK;
}

/* x (1, 4, 9, 11) -> Conv 3x3 (6 out) -> hard-swish chain -> y,
 * x -> depthwise Conv 3x3 stride 2 -> Relu -> * 0.5 -> z, and x -> Conv 1x1
 * padded (5 out) -> Relu -> e: the chains (of one node, too) run as the
 * convs' epilogues when nothing observes the run. */
static oq_model *build_conv_chains(oq_err *err)
{
    oq_model *m = oq_model_create();
    if (!m) return NULL;
    m->opsets = calloc(1, sizeof *m->opsets);
    if (!m->opsets || !(m->opsets[0].domain = strdup(""))) goto fail;
    m->n_opsets = 1;
    m->opsets[0].version = 13;
    if (!(m->graph = oq_graph_create(m, NULL))) goto fail;
    oq_graph *g = m->graph;
    oq_dim dims[4] = {{1, NULL}, {4, NULL}, {9, NULL}, {11, NULL}};
    int64_t wd[4] = {6, 4, 3, 3}, bd[1] = {6}, dwd[4] = {4, 1, 3, 3}, w1d[4] = {5, 4, 1, 1};
    oq_value *x = oq_graph_value(g, "x", err);
    if (!x || oq_value_set_tensor_type(x, OQ_DTYPE_FLOAT, 4, dims, err) || oq_graph_add_input(g, x, err)) goto fail;
    if (!add_weights(g, "w", 4, wd, err) || !add_weights(g, "b", 1, bd, err) || !add_weights(g, "dw", 4, dwd, err) ||
        !add_weights(g, "w1", 4, w1d, err) ||
        !add_scalar(g, "three", 3.0f, err) || !add_scalar(g, "zero", 0.0f, err) || !add_scalar(g, "six", 6.0f, err) ||
        !add_scalar(g, "half", 0.5f, err))
        goto fail;
    static const struct {
        const char *op, *in[3], *out;
    } nodes[] = {
        {"Conv", {"x", "w", "b"}, "c"}, {"Add", {"c", "three"}, "a"}, {"Clip", {"a", "zero", "six"}, "cl"},
        {"Mul", {"c", "cl"}, "mm"},     {"Div", {"mm", "six"}, "y"},  {"Conv", {"x", "dw"}, "d"},
        {"Relu", {"d"}, "r"},           {"Mul", {"r", "half"}, "z"},  {"Conv", {"x", "w1"}, "e0"},
        {"Relu", {"e0"}, "e"},
    };
    static const int64_t pads[4] = {1, 1, 1, 1}, strides[2] = {2, 2};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        int n_in = nodes[i].in[2] ? 3 : nodes[i].in[1] ? 2 : 1;
        const char *out[1] = {nodes[i].out};
        oq_node *nd = oq_graph_add_node(g, nodes[i].op, "", nodes[i].out, n_in, nodes[i].in, 1, out, err);
        if (!nd || (!strcmp(nodes[i].op, "Conv") && oq_node_set_attr_ints(nd, "pads", 4, pads, err))) goto fail;
        if (!strcmp(nodes[i].out, "d") &&
            (oq_node_set_attr_int(nd, "group", 4, err) || oq_node_set_attr_ints(nd, "strides", 2, strides, err)))
            goto fail;
    }
    if (oq_graph_add_output(g, oq_graph_find(g, "y"), err) || oq_graph_add_output(g, oq_graph_find(g, "z"), err) ||
        oq_graph_add_output(g, oq_graph_find(g, "e"), err) || oq_graph_sort(g, err))
        goto fail;
    return m;
fail:
    oq_model_destroy(m);
    return NULL;
}

/* Chains run as conv epilogues give the same bits as node by node. */
static void test_conv_epilogue(void)
{
    oq_err err = {0};
    oq_model *m = build_conv_chains(&err);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "build: %s\n", err.msg);
        return;
    }
    int64_t dims[4] = {1, 4, 9, 11};
    oq_tensor x, out[2][3];
    memset(out, 0, sizeof out);
    CHECK_OK(oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 4, dims, &err), &err);
    for (int64_t i = 0; x.data && i < oq_tensor_numel(&x); i++) ((float *)x.data)[i] = (float)(i % 23 - 11) / 5.0f;
    size_t naive[2] = {0};
    int calls = 0;
    for (int r = 0; r < 2 && x.data; r++) {
        oq_session *s = NULL;
        oq_exec_options opts = {.threads = 2};
        CHECK_OK(oq_session_create(&s, m, &opts, &err), &err);
        if (!s) break;
        if (r == 1) oq_session_set_observer(s, count_calls, &calls);
        CHECK_OK(oq_session_run(s, &x, out[r], &err), &err);
        oq_exec_stats st;
        oq_session_stats(s, &st);
        naive[r] = st.naive_bytes;
        oq_session_destroy(s);
    }
    CHECK(calls == 10);
    for (int k = 0; k < 3; k++)
        CHECK(out[0][k].data && out[1][k].data && out[0][k].nbytes == out[1][k].nbytes &&
              !memcmp(out[0][k].data, out[1][k].data, out[0][k].nbytes));
    /* Observed, all ten values are stored: c, a, cl, mm, y (6x9x11 floats
     * each), d, r, z (4x5x6) and e0, e (5x11x13). Fused, only y, z and e; the
     * workspaces are the same in both runs. */
    CHECK(naive[1] - naive[0] == (4 * 6 * 9 * 11 + 2 * 4 * 5 * 6 + 5 * 11 * 13) * sizeof(float));
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++) oq_tensor_release(&out[r][k]);
    oq_tensor_release(&x);
    oq_model_destroy(m);
}


/* ---- running in steps --------------------------------------------------------------- */

/* Copies of the values an observer was shown, by value id. */
typedef struct kept {
    oq_tensor *values; /* [n_values] */
} kept;

static void keep(void *user, const oq_value *v, const oq_tensor *t)
{
    kept *k = user;
    oq_err err;
    oq_tensor_release(&k->values[v->id]);
    if (oq_tensor_copy(&k->values[v->id], t, &err))
        memset(&k->values[v->id], 0, sizeof k->values[v->id]);
}

static bool same_tensor(const oq_tensor *a, const oq_tensor *b)
{
    return a && b && a->dtype == b->dtype && a->rank == b->rank && a->nbytes == b->nbytes &&
           !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]) && !memcmp(a->data, b->data, a->nbytes);
}

/* Whether value v (not a constant) comes from before step k (a graph input
 * or an earlier node's output) and is read from k on or is a graph output. */
static bool needed_at(const oq_graph *g, const oq_value *v, int k)
{
    if (v->constant || (v->producer && v->producer->order >= k))
        return false;
    for (int j = 0; j < g->n_outputs; j++)
        if (g->outputs[j] == v)
            return true;
    for (int i = k; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == v)
                return true;
    return false;
}

/* m run in two ranges of steps, split at every node, gives the bits of one
 * whole run (fused chains and conv epilogues included); a state seeded at
 * step k with another run's values and run from k gives them too; a value
 * the state lacks is an error naming it. */
static void test_steps_on(oq_model *m, const oq_tensor *x)
{
    oq_err err = {0};
    const oq_graph *g = m->graph;
    int n_out = g->n_outputs;
    CHECK(n_out <= 8);
    if (n_out > 8)
        return;
    oq_session *s = NULL, *obs = NULL;
    oq_tensor ref[8], out[8];
    memset(ref, 0, sizeof ref);
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i]->order = i;
    CHECK_OK(oq_session_create(&s, m, &(oq_exec_options){.threads = 2}, &err), &err);
    if (!s)
        return;
    CHECK_OK(oq_session_run(s, x, ref, &err), &err);
    for (int k = 0; k <= g->n_nodes; k++) {
        oq_run_state *rs = NULL;
        CHECK_OK(oq_run_state_create(&rs, s, &err), &err);
        if (!rs)
            break;
        CHECK_OK(oq_run_state_feed(rs, x, &err), &err);
        CHECK_OK(oq_session_run_steps(s, rs, 0, k, &err), &err);
        CHECK_OK(oq_session_run_steps(s, rs, k, g->n_nodes, &err), &err);
        for (int j = 0; j < n_out; j++)
            CHECK(same_tensor(oq_run_state_get(rs, g->outputs[j]), &ref[j]));
        oq_run_state_destroy(rs);
    }
    /* every value computed on its own and kept, to seed states from */
    bool *all = malloc((size_t)g->n_values * sizeof *all);
    kept k = {calloc((size_t)g->n_values, sizeof *k.values)};
    if (all && k.values) {
        for (int v = 0; v < g->n_values; v++)
            all[v] = true;
        CHECK_OK(oq_session_create(&obs, m, &(oq_exec_options){.threads = 1, .observed = all}, &err), &err);
    }
    if (obs) {
        oq_session_set_observer(obs, keep, &k);
        CHECK_OK(oq_session_run(obs, x, out, &err), &err);
        for (int j = 0; j < n_out; j++)
            oq_tensor_release(&out[j]);
        for (int i = 0; i < oq_session_input_count(obs); i++) /* the observer sees node outputs only */
            CHECK_OK(oq_tensor_copy(&k.values[oq_session_input(obs, i)->id], &x[i], &err), &err);
        oq_session_set_observer(obs, NULL, NULL);
    }
    for (int at = 1; obs && at < g->n_nodes; at++) {
        oq_run_state *rs = NULL;
        CHECK_OK(oq_run_state_create(&rs, obs, &err), &err);
        if (!rs)
            break;
        for (int v = 0; v < g->n_values; v++)
            if (needed_at(g, g->values[v], at))
                CHECK_OK(oq_run_state_set(rs, g->values[v], &k.values[v], &err), &err);
        CHECK_OK(oq_session_run_steps(obs, rs, at, g->n_nodes, &err), &err);
        for (int j = 0; j < n_out; j++)
            CHECK(same_tensor(oq_run_state_get(rs, g->outputs[j]), &ref[j]));
        oq_run_state_destroy(rs);
        /* unseeded, the first value read from before `at` is missing */
        const oq_value *missing = NULL;
        for (int j = 0; !missing && j < g->nodes[at]->n_inputs; j++)
            if (g->nodes[at]->inputs[j] && needed_at(g, g->nodes[at]->inputs[j], at))
                missing = g->nodes[at]->inputs[j];
        if (!missing || oq_run_state_create(&rs, obs, &err))
            continue;
        CHECK(oq_session_run_steps(obs, rs, at, g->n_nodes, &err) == OQ_EINVAL && strstr(err.msg, missing->name));
        oq_run_state_destroy(rs);
    }
    free(all);
    for (int v = 0; k.values && v < g->n_values; v++)
        oq_tensor_release(&k.values[v]);
    free(k.values);
    oq_session_destroy(obs);
    for (int j = 0; j < n_out; j++)
        oq_tensor_release(&ref[j]);
    oq_session_destroy(s);
}

static void test_steps(void)
{
    oq_err err = {0};
    oq_model *conv = build_conv_chains(&err), *ew = build_ew(1001, &err);
    CHECK(conv && ew);
    oq_tensor x;
    int64_t cd[4] = {1, 4, 9, 11}, ed[1] = {1001};
    if (conv && !oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 4, cd, &err)) {
        for (int64_t i = 0; i < oq_tensor_numel(&x); i++)
            ((float *)x.data)[i] = (float)(i % 23 - 11) / 5.0f;
        test_steps_on(conv, &x);
        oq_tensor_release(&x);
    }
    if (ew && !oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 1, ed, &err)) {
        for (int64_t i = 0; i < oq_tensor_numel(&x); i++)
            ((float *)x.data)[i] = (float)(i % 1601 - 800) / 97.0f;
        test_steps_on(ew, &x);
        oq_tensor_release(&x);
    }
    oq_model_destroy(conv);
    oq_model_destroy(ew);
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
    test_fusion();
    test_conv_epilogue();
    test_steps();
    test_threadpool();
    return check_exit("test_exec");
}
