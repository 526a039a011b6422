/* test_prepare.c: graph preparation (src/prepare) on hand-built graphs: what
 * each pass changes, what it must leave alone (graph outputs, inputs a caller
 * feeds, values read inside subgraphs, folds over the size bound), and that
 * the executor computes the same outputs before and after. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_prepare.h"
#include "prepare/prepare.h"

/* ---- building graphs ------------------------------------------------------------------ */

static oq_model *new_model(int64_t opset, int64_t ir)
{
    oq_model *m = oq_model_create();
    m->ir_version = ir;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = opset;
    m->n_opsets = 1;
    m->graph = oq_graph_create(m, NULL);
    return m;
}

/* A float initializer named name with values 0.1 * (i % 7) - 0.3 + offset. */
static oq_value *init_f(oq_graph *g, const char *name, int rank, const int64_t *dims, float offset)
{
    oq_err err = {0};
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, rank, dims, &err);
    for (int64_t i = 0; i < oq_tensor_numel(t); i++)
        ((float *)t->data)[i] = 0.1f * (float)(i % 7) - 0.3f + offset;
    oq_value *v = oq_graph_value(g, name, &err);
    oq_graph_set_constant(g, v, t, true, &err);
    return v;
}

static oq_value *init_i64(oq_graph *g, const char *name, int n, const int64_t *values)
{
    oq_err err = {0};
    int64_t len = n;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_INT64, 1, &len, &err);
    memcpy(t->data, values, (size_t)n * sizeof *values);
    oq_value *v = oq_graph_value(g, name, &err);
    oq_graph_set_constant(g, v, t, true, &err);
    return v;
}

/* A graph input of the given dtype; dims < 0 are symbolic ("N"). */
static oq_value *input(oq_graph *g, const char *name, oq_dtype dt, int rank, const int64_t *dims)
{
    oq_err err = {0};
    oq_dim d[OQ_MAX_RANK];
    for (int i = 0; i < rank; i++)
        d[i] = (oq_dim){dims[i], dims[i] < 0 ? "N" : NULL};
    oq_value *v = oq_graph_value(g, name, &err);
    oq_value_set_tensor_type(v, dt, rank, d, &err);
    oq_graph_add_input(g, v, &err);
    return v;
}

static oq_node *node(oq_graph *g, const char *op, const char *name, int n_in, const char *const *in, int n_out,
                     const char *const *out)
{
    oq_err err = {0};
    oq_node *n = oq_graph_add_node(g, op, "", name, n_in, in, n_out, out, &err);
    CHECK(n != NULL);
    return n;
}

static void output(oq_graph *g, const char *name)
{
    oq_err err = {0};
    oq_graph_add_output(g, oq_graph_find(g, name), &err);
}

static oq_tensor filled(int rank, const int64_t *dims, float scale)
{
    oq_err err = {0};
    oq_tensor t;
    oq_tensor_alloc(&t, OQ_DTYPE_FLOAT, rank, dims, &err);
    for (int64_t i = 0; i < oq_tensor_numel(&t); i++)
        ((float *)t.data)[i] = scale * sinf(0.7f * (float)i + 0.2f);
    return t;
}

/* Runs m once on in[0..) and returns output k as an owned tensor (empty on failure). */
static oq_tensor run_output(const oq_model *m, const oq_tensor *in, int k)
{
    oq_err err = {0};
    oq_session *s = NULL;
    oq_tensor outs[8] = {0}, result = {0};
    oq_exec_options opts = {.threads = 1};
    CHECK_OK(oq_session_create(&s, m, &opts, &err), &err);
    if (s && oq_session_output_count(s) <= 8) {
        CHECK_OK(oq_session_run(s, in, outs, &err), &err);
        result = outs[k];
        outs[k] = (oq_tensor){0};
        for (int i = 0; i < oq_session_output_count(s); i++)
            oq_tensor_release(&outs[i]);
    }
    oq_session_destroy(s);
    return result;
}

static bool same_tensor(const oq_tensor *a, const oq_tensor *b)
{
    return a->dtype == b->dtype && a->rank == b->rank && !memcmp(a->dims, b->dims, sizeof a->dims) &&
           oq_tensor_numel(a) == oq_tensor_numel(b) && a->data && b->data &&
           !memcmp(a->data, b->data, oq_dtype_storage(a->dtype, oq_tensor_numel(a)));
}

/* Largest |a - b| over float tensors of one shape, relative to max |b|; 1 when shapes differ. */
static double rel_diff(const oq_tensor *a, const oq_tensor *b)
{
    if (a->rank != b->rank || memcmp(a->dims, b->dims, sizeof a->dims) || !a->data || !b->data)
        return 1;
    double d = 0, m = 0;
    for (int64_t i = 0; i < oq_tensor_numel(a); i++) {
        double x = ((float *)a->data)[i], y = ((float *)b->data)[i];
        d = fmax(d, fabs(x - y));
        m = fmax(m, fabs(y));
    }
    return m ? d / m : d;
}

static oq_node *producer_of(oq_graph *g, const char *name)
{
    oq_value *v = oq_graph_find(g, name);
    return v ? v->producer : NULL;
}

static int count_op(const oq_graph *g, const char *op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_stat_table(void)
{
    for (int k = 0; k < OQ_PREPARE_STAT_COUNT; k++)
        CHECK(oq_prepare_stats[k].key && oq_prepare_stats[k].label);
}

/* MatMul(x, Reshape(W_flat, [6, 2])): the weight becomes one constant named as
 * the Reshape's output; the inputs of the fold go. Outputs are bit-identical. */
static void test_fold_reshaped_weight(void)
{
    oq_err err = {0};
    oq_model *m = new_model(13, 7);
    oq_graph *g = m->graph;
    int64_t xd[2] = {2, 6}, wd[1] = {12}, shape[2] = {6, 2};
    input(g, "x", OQ_DTYPE_FLOAT, 2, xd);
    init_f(g, "W_flat", 1, wd, 0);
    init_i64(g, "W_shape", 2, shape);
    node(g, "Reshape", "reshape", 2, (const char *[]){"W_flat", "W_shape"}, 1, (const char *[]){"W"});
    node(g, "MatMul", "mm", 2, (const char *[]){"x", "W"}, 1, (const char *[]){"y"});
    output(g, "y");
    CHECK_OK(oq_graph_sort(g, &err), &err);
    oq_tensor x = filled(2, xd, 1), before = run_output(m, &x, 0);
    oq_prepare_result r;
    CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
    CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == 1 && r.counts[OQ_PREPARE_INITIALIZERS_REMOVED] == 2);
    CHECK(r.nodes_before == 2 && r.nodes_after == 1 && g->n_nodes == 1);
    oq_value *w = oq_graph_find(g, "W");
    CHECK(w && w->constant && w->is_initializer && !w->producer && w->constant->rank == 2 &&
          w->constant->dims[0] == 6 && w->constant->dims[1] == 2);
    CHECK(oq_graph_find(g, "W_flat") == NULL && oq_graph_find(g, "W_shape") == NULL);
    oq_tensor after = run_output(m, &x, 0);
    CHECK(same_tensor(&before, &after));
    oq_tensor_release(&x);
    oq_tensor_release(&before);
    oq_tensor_release(&after);
    oq_model_destroy(m);
}

/* y = x + Expand(c, [65, 256, 256]): 17 MB of output from 28 bytes stays a node
 * under the default bound and folds when the bound allows it; a ConstantOfShape
 * asking for 4e10 floats is never evaluated. */
static void test_fold_size_bound(void)
{
    oq_err err = {0};
    for (int pass = 0; pass < 2; pass++) {
        oq_model *m = new_model(13, 7);
        oq_graph *g = m->graph;
        int64_t one[1] = {1}, big[3] = {65, 256, 256}, huge[2] = {200000, 200000};
        input(g, "x", OQ_DTYPE_FLOAT, 1, one);
        init_f(g, "c", 1, one, 1);
        init_i64(g, "big", 3, big);
        init_i64(g, "huge", 2, huge);
        node(g, "Expand", "expand", 2, (const char *[]){"c", "big"}, 1, (const char *[]){"e"});
        node(g, "Add", "add", 2, (const char *[]){"x", "e"}, 1, (const char *[]){"y"});
        node(g, "ConstantOfShape", "cos", 1, (const char *[]){"huge"}, 1, (const char *[]){"z"});
        node(g, "Shape", "shape", 1, (const char *[]){"z"}, 1, (const char *[]){"zs"});
        output(g, "y");
        output(g, "zs");
        CHECK_OK(oq_graph_sort(g, &err), &err);
        oq_prepare_options o = {.fold_max_bytes = pass ? (size_t)32 << 20 : 0};
        oq_prepare_result r;
        CHECK_OK(oq_prepare_model(m, &o, &r, &err), &err);
        CHECK(count_op(g, "Expand") == (pass ? 0 : 1));
        CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == pass);
        CHECK(r.counts[OQ_PREPARE_FOLDS_OVER_LIMIT] == (pass ? 1 : 2));
        CHECK(count_op(g, "ConstantOfShape") == 1);
        oq_model_destroy(m);
    }
}

/* Shape of a graph input with a static declared shape folds (and what it
 * feeds); a symbolic dim keeps it. */
static void test_static_shape(void)
{
    oq_err err = {0};
    for (int symbolic = 0; symbolic < 2; symbolic++) {
        oq_model *m = new_model(13, 7);
        oq_graph *g = m->graph;
        int64_t xd[3] = {symbolic ? -1 : 2, 3, 4}, zero[1] = {0};
        input(g, "x", OQ_DTYPE_FLOAT, 3, xd);
        init_i64(g, "zero", 1, zero);
        node(g, "Shape", "shape", 1, (const char *[]){"x"}, 1, (const char *[]){"s"});
        node(g, "Gather", "first", 2, (const char *[]){"s", "zero"}, 1, (const char *[]){"n"});
        node(g, "Reshape", "r", 2, (const char *[]){"x", "n"}, 1, (const char *[]){"y"});
        output(g, "y");
        CHECK_OK(oq_graph_sort(g, &err), &err);
        oq_prepare_result r;
        CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
        CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == (symbolic ? 0 : 2));
        oq_value *n = oq_graph_find(g, "n");
        CHECK(symbolic ? !n->constant : n->constant && ((int64_t *)n->constant->data)[0] == 2);
        oq_model_destroy(m);
    }
}

/* Identity before a graph output: the node before writes the output; Identity
 * of a graph input to a graph output stays; Dropout whose mask is read stays,
 * one whose mask nothing reads goes. */
static void test_identity_dropout(void)
{
    oq_err err = {0};
    oq_model *m = new_model(13, 7);
    oq_graph *g = m->graph;
    int64_t xd[1] = {5};
    input(g, "x", OQ_DTYPE_FLOAT, 1, xd);
    node(g, "Relu", "relu", 1, (const char *[]){"x"}, 1, (const char *[]){"r"});
    node(g, "Identity", "id_out", 1, (const char *[]){"r"}, 1, (const char *[]){"y"});
    node(g, "Identity", "id_in", 1, (const char *[]){"x"}, 1, (const char *[]){"y2"});
    node(g, "Sigmoid", "sig", 1, (const char *[]){"x"}, 1, (const char *[]){"s"});
    node(g, "Dropout", "drop_mask", 1, (const char *[]){"s"}, 2, (const char *[]){"d", "mask"});
    node(g, "Neg", "neg", 1, (const char *[]){"d"}, 1, (const char *[]){"y3"});
    node(g, "Tanh", "tanh", 1, (const char *[]){"x"}, 1, (const char *[]){"t"});
    node(g, "Dropout", "drop", 1, (const char *[]){"t"}, 1, (const char *[]){"dt"});
    node(g, "Neg", "neg2", 1, (const char *[]){"dt"}, 1, (const char *[]){"y4"});
    const char *outs[] = {"y", "y2", "y3", "mask", "y4"};
    for (int i = 0; i < 5; i++)
        output(g, outs[i]);
    CHECK_OK(oq_graph_sort(g, &err), &err);
    oq_prepare_result r;
    CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
    CHECK(r.counts[OQ_PREPARE_IDENTITIES_REMOVED] == 2);
    CHECK(producer_of(g, "y") && !strcmp(producer_of(g, "y")->name, "relu"));
    CHECK(producer_of(g, "y2") && !strcmp(producer_of(g, "y2")->name, "id_in"));
    CHECK(producer_of(g, "mask") && !strcmp(producer_of(g, "mask")->name, "drop_mask"));
    CHECK(producer_of(g, "y4") && producer_of(g, "y4")->inputs[0] == oq_graph_find(g, "t"));
    for (int i = 0; i < 5; i++)
        CHECK(!strcmp(g->outputs[i]->name, outs[i]));
    oq_model_destroy(m);
}

/* Dead nodes and unused initializers go; an initializer read only inside an
 * If branch, and a folded value read there, stay; both branches give the
 * outputs they gave before. */
static void test_dead_code_and_subgraphs(void)
{
    oq_err err = {0};
    oq_model *m = new_model(13, 7);
    oq_graph *g = m->graph;
    int64_t xd[1] = {4}, four[1] = {4};
    input(g, "x", OQ_DTYPE_FLOAT, 1, xd);
    input(g, "cond", OQ_DTYPE_BOOL, 0, NULL);
    init_f(g, "k", 1, xd, 2);
    init_f(g, "unused", 1, xd, 0);
    init_f(g, "k2_flat", 1, four, 1);
    init_i64(g, "k2_shape", 1, four);
    node(g, "Reshape", "k2_reshape", 2, (const char *[]){"k2_flat", "k2_shape"}, 1, (const char *[]){"k2"});
    node(g, "Neg", "dead", 1, (const char *[]){"x"}, 1, (const char *[]){"nobody"});
    oq_node *ifn = node(g, "If", "if", 1, (const char *[]){"cond"}, 1, (const char *[]){"y"});
    oq_graph *then_g = oq_graph_create(m, g), *else_g = oq_graph_create(m, g);
    node(then_g, "Add", "then_add", 2, (const char *[]){"x", "k"}, 1, (const char *[]){"t"});
    output(then_g, "t");
    node(else_g, "Mul", "else_mul", 2, (const char *[]){"x", "k2"}, 1, (const char *[]){"e"});
    output(else_g, "e");
    ifn->attrs = calloc(2, sizeof *ifn->attrs);
    ifn->n_attrs = 2;
    ifn->attrs[0] = (oq_attr){.name = strdup("then_branch"), .type = OQ_ATTR_GRAPH, .g = then_g};
    ifn->attrs[1] = (oq_attr){.name = strdup("else_branch"), .type = OQ_ATTR_GRAPH, .g = else_g};
    output(g, "y");
    CHECK_OK(oq_graph_sort(g, &err), &err);
    oq_tensor in[2][2];
    oq_tensor before[2], after[2];
    for (int c = 0; c < 2; c++) {
        in[c][0] = filled(1, xd, 1);
        oq_tensor_alloc(&in[c][1], OQ_DTYPE_BOOL, 0, NULL, &err);
        *(bool *)in[c][1].data = c;
        before[c] = run_output(m, in[c], 0);
    }
    oq_prepare_result r;
    CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
    CHECK(r.counts[OQ_PREPARE_DEAD_NODES_REMOVED] == 1 && r.counts[OQ_PREPARE_INITIALIZERS_REMOVED] == 3);
    CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == 1);
    CHECK(oq_graph_find(g, "k") && oq_graph_find(g, "k")->constant);
    CHECK(oq_graph_find(g, "k2") && oq_graph_find(g, "k2")->constant);
    CHECK(oq_graph_find(g, "unused") == NULL && oq_graph_find(g, "nobody") == NULL);
    for (int c = 0; c < 2; c++) {
        after[c] = run_output(m, in[c], 0);
        CHECK(same_tensor(&before[c], &after[c]));
        oq_tensor_release(&in[c][0]);
        oq_tensor_release(&in[c][1]);
        oq_tensor_release(&before[c]);
        oq_tensor_release(&after[c]);
    }
    oq_model_destroy(m);
}

/* MatMul(x, W) with W an initializer that is also a graph input. */
static oq_model *weight_input_model(int64_t ir)
{
    oq_err err = {0};
    oq_model *m = new_model(8, ir);
    oq_graph *g = m->graph;
    int64_t xd[2] = {1, 3}, wd[2] = {3, 2}, shape[2] = {3, 2};
    input(g, "x", OQ_DTYPE_FLOAT, 2, xd);
    init_f(g, "W_raw", 2, wd, 0);
    oq_graph_add_input(g, oq_graph_find(g, "W_raw"), &err);
    init_i64(g, "shape", 2, shape);
    oq_graph_add_input(g, oq_graph_find(g, "shape"), &err);
    node(g, "Reshape", "r", 2, (const char *[]){"W_raw", "shape"}, 1, (const char *[]){"W"});
    node(g, "MatMul", "mm", 2, (const char *[]){"x", "W"}, 1, (const char *[]){"y"});
    output(g, "y");
    CHECK_OK(oq_graph_sort(g, &err), &err);
    return m;
}

/* IR 3: weights listed as inputs become constants (and the model IR 4) unless
 * released for a caller who feeds them; IR 7: such inputs are overridable
 * defaults and stay inputs, and nothing folds through them. */
static void test_weight_inputs(void)
{
    oq_err err = {0};
    oq_prepare_result r;
    oq_model *m = weight_input_model(3);
    CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
    CHECK(r.counts[OQ_PREPARE_INPUTS_MADE_CONSTANT] == 2 && m->graph->n_inputs == 1);
    CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == 1 && m->ir_version == 4 && r.ir_raised);
    oq_model_destroy(m);

    m = weight_input_model(3);
    const char *fed[] = {"W_raw", "x", "nothing"};
    CHECK(oq_prepare_release_inputs(m, 3, fed) == 1);
    CHECK(!oq_graph_find(m->graph, "W_raw")->constant);
    CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
    CHECK(r.counts[OQ_PREPARE_INPUTS_MADE_CONSTANT] == 1 && m->graph->n_inputs == 2);
    CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == 0 && count_op(m->graph, "Reshape") == 1);
    oq_model_destroy(m);

    m = weight_input_model(7);
    CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
    CHECK(r.counts[OQ_PREPARE_INPUTS_MADE_CONSTANT] == 0 && m->graph->n_inputs == 3 && m->ir_version == 7);
    CHECK(r.counts[OQ_PREPARE_CONSTANTS_FOLDED] == 0 && count_op(m->graph, "Reshape") == 1);
    oq_model_destroy(m);
}

/* Conv + Add of k: folds for k of shape [3, 1, 1] (one value per channel) and
 * [1] (one for all), not for [3] (the last axis), not for a k of higher rank,
 * not when the Conv's output is also read elsewhere. */
static void test_conv_add(void)
{
    oq_err err = {0};
    struct {
        int rank;
        int64_t dims[5];
        bool shared, folds;
    } cases[] = {
        {3, {3, 1, 1}, false, true}, {1, {1}, false, true}, {1, {3}, false, false},
        {5, {1, 1, 3, 1, 1}, false, false}, {3, {3, 1, 1}, true, false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        oq_model *m = new_model(13, 7);
        oq_graph *g = m->graph;
        int64_t xd[4] = {1, 2, 5, 3}, wd[4] = {3, 2, 3, 3}, bd[1] = {3}; /* output [1, 3, 5, 3] */
        input(g, "x", OQ_DTYPE_FLOAT, 4, xd);
        init_f(g, "W", 4, wd, 0);
        init_f(g, "B", 1, bd, 0.5f);
        init_f(g, "k", cases[k].rank, cases[k].dims, 0.25f);
        oq_node *conv = node(g, "Conv", "conv", 3, (const char *[]){"x", "W", "B"}, 1, (const char *[]){"c"});
        oq_node_set_attr_ints(conv, "pads", 4, (const int64_t[]){1, 1, 1, 1}, &err);
        node(g, "Add", "add", 2, (const char *[]){"k", "c"}, 1, (const char *[]){"y"});
        output(g, "y");
        if (cases[k].shared) {
            node(g, "Relu", "relu", 1, (const char *[]){"c"}, 1, (const char *[]){"r"});
            output(g, "r");
        }
        CHECK_OK(oq_graph_sort(g, &err), &err);
        oq_tensor x = filled(4, xd, 1), before = run_output(m, &x, 0);
        oq_prepare_result r;
        CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
        CHECK(r.counts[OQ_PREPARE_CONV_ADDS_FOLDED] == cases[k].folds);
        CHECK(count_op(g, "Add") == !cases[k].folds);
        if (cases[k].folds) {
            CHECK(producer_of(g, "y") && !strcmp(producer_of(g, "y")->name, "conv"));
            CHECK(oq_graph_find(g, "y_bias") && conv->inputs[2] == oq_graph_find(g, "y_bias"));
        }
        oq_tensor after = run_output(m, &x, 0);
        CHECK(rel_diff(&after, &before) < 1e-6);
        oq_tensor_release(&x);
        oq_tensor_release(&before);
        oq_tensor_release(&after);
        oq_model_destroy(m);
    }
}

/* BatchNormalization after a Conv: folded into new weight and bias values named
 * as the quantizer's fold names them; not when the Conv output is a graph output. */
static void test_batchnorm(void)
{
    oq_err err = {0};
    for (int exposed = 0; exposed < 2; exposed++) {
        oq_model *m = new_model(13, 7);
        oq_graph *g = m->graph;
        int64_t xd[4] = {1, 2, 4, 4}, wd[4] = {3, 2, 1, 1}, cd[1] = {3};
        input(g, "x", OQ_DTYPE_FLOAT, 4, xd);
        init_f(g, "W", 4, wd, 0);
        init_f(g, "gamma", 1, cd, 1);
        init_f(g, "beta", 1, cd, 0.1f);
        init_f(g, "mean", 1, cd, 0.2f);
        init_f(g, "var", 1, cd, 1.5f);
        node(g, "Conv", "conv", 2, (const char *[]){"x", "W"}, 1, (const char *[]){"c"});
        node(g, "BatchNormalization", "bn", 5, (const char *[]){"c", "gamma", "beta", "mean", "var"}, 1,
             (const char *[]){"y"});
        output(g, "y");
        if (exposed)
            output(g, "c");
        CHECK_OK(oq_graph_sort(g, &err), &err);
        oq_tensor x = filled(4, xd, 1), before = run_output(m, &x, 0);
        oq_prepare_result r;
        CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
        CHECK(r.counts[OQ_PREPARE_BATCHNORMS_FOLDED] == !exposed);
        CHECK(count_op(g, "BatchNormalization") == exposed);
        if (!exposed) {
            oq_node *conv = producer_of(g, "y");
            CHECK(conv && !strcmp(conv->name, "conv") && conv->n_inputs == 3);
            CHECK(conv && !strcmp(conv->inputs[1]->name, "W_bn_folded") && !strcmp(conv->inputs[2]->name, "y_bn_bias"));
            CHECK(oq_graph_find(g, "W") == NULL);
        }
        oq_tensor after = run_output(m, &x, 0);
        CHECK(rel_diff(&after, &before) < 1e-6);
        oq_tensor_release(&x);
        oq_tensor_release(&before);
        oq_tensor_release(&after);
        oq_model_destroy(m);
    }
}

/* MatMul + Add -> Gemm when the input is 2-D (declared [N, 4]), not when it is 3-D. */
static void test_matmul_add_gemm(void)
{
    oq_err err = {0};
    for (int rank = 2; rank <= 3; rank++) {
        oq_model *m = new_model(13, 7);
        oq_graph *g = m->graph;
        int64_t xd[3] = {-1, 4, 4}, wd[2] = {4, 3}, bd[1] = {3}, run_dims[3] = {2, 4, 4};
        input(g, "x", OQ_DTYPE_FLOAT, rank, xd);
        init_f(g, "W", 2, wd, 0);
        init_f(g, "b", 1, bd, 0.3f);
        node(g, "Relu", "relu", 1, (const char *[]){"x"}, 1, (const char *[]){"r"});
        node(g, "MatMul", "mm", 2, (const char *[]){"r", "W"}, 1, (const char *[]){"m"});
        node(g, "Add", "add", 2, (const char *[]){"m", "b"}, 1, (const char *[]){"y"});
        output(g, "y");
        CHECK_OK(oq_graph_sort(g, &err), &err);
        oq_tensor x = filled(rank, run_dims, 1), before = run_output(m, &x, 0);
        oq_prepare_result r;
        CHECK_OK(oq_prepare_model(m, NULL, &r, &err), &err);
        CHECK(r.counts[OQ_PREPARE_MATMUL_ADDS_TO_GEMM] == (rank == 2));
        CHECK(count_op(g, "Gemm") == (rank == 2) && count_op(g, "MatMul") == (rank == 3));
        if (rank == 2)
            CHECK(producer_of(g, "y") && !strcmp(producer_of(g, "y")->name, "mm"));
        oq_tensor after = run_output(m, &x, 0);
        CHECK(rel_diff(&after, &before) < 1e-6);
        oq_tensor_release(&x);
        oq_tensor_release(&before);
        oq_tensor_release(&after);
        oq_model_destroy(m);
    }
}

int main(void)
{
    test_stat_table();
    test_fold_reshaped_weight();
    test_fold_size_bound();
    test_static_shape();
    test_identity_dropout();
    test_dead_code_and_subgraphs();
    test_weight_inputs();
    test_conv_add();
    test_batchnorm();
    test_matmul_add_gemm();
    return check_exit("test_prepare");
}
