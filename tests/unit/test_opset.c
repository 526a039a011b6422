/* test_opset.c: the opset upgrade pass (oq_model_upgrade_opset) on small
 * graphs built in memory: its contract, the rewrites it makes, and the nodes
 * it must refuse. tests/golden/test_opset_upgrade.py checks meaning by
 * running upgraded models. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_quant.h"

/* A model importing `opset` with a float input x of the given rank (-1: undeclared shape). */
static oq_model *new_model(int64_t opset, int x_rank)
{
    oq_err err = {0};
    oq_model *m = oq_model_create();
    m->ir_version = 3;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = opset;
    m->n_opsets = 1;
    m->graph = oq_graph_create(m, NULL);
    oq_value *x = oq_graph_value(m->graph, "x", &err);
    oq_dim dims[4] = {{.value = 2}, {.value = 3}, {.value = 4}, {.value = 5}};
    oq_value_set_tensor_type(x, OQ_DTYPE_FLOAT, x_rank, x_rank > 0 ? dims : NULL, &err);
    oq_graph_add_input(m->graph, x, &err);
    return m;
}

static oq_node *add(oq_graph *g, const char *op, const char *in, const char *out)
{
    oq_err err = {0};
    const char *ins[1] = {in}, *outs[1] = {out};
    return oq_graph_add_node(g, op, "", out, 1, ins, 1, outs, &err);
}

static void set_output(oq_model *m, const char *name)
{
    oq_err err = {0};
    oq_graph_add_output(m->graph, oq_graph_find(m->graph, name), &err);
}

static oq_node *find_node(const oq_graph *g, const char *op)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, op))
            return g->nodes[i];
    return NULL;
}

static void test_contract(void)
{
    oq_err err = {0};
    oq_model *m = new_model(11, 4);
    add(m->graph, "Relu", "x", "y");
    set_output(m, "y");
    CHECK(oq_model_upgrade_opset(m, 10, &err) == OQ_EINVAL);
    CHECK(oq_model_upgrade_opset(m, 15, &err) == OQ_EUNSUPPORTED);
    CHECK_OK(oq_model_upgrade_opset(m, 11, &err), &err);
    CHECK(m->opsets[0].version == 11 && m->ir_version == 3);
    CHECK_OK(oq_model_upgrade_opset(m, 13, NULL), &err);
    CHECK(m->opsets[0].version == 13 && m->ir_version == 7 && m->graph->nodes[0]->opset == 13);
    CHECK_OK(oq_model_upgrade_opset(m, 14, &err), &err);
    CHECK(m->opsets[0].version == 14 && m->ir_version == 7 && m->graph->nodes[0]->opset == 14);
    oq_model_destroy(m);

    m = new_model(11, 4);
    free(m->opsets[0].domain);
    m->opsets[0].domain = strdup("com.microsoft");
    CHECK(oq_model_upgrade_opset(m, 13, &err) == OQ_EINVAL);
    oq_model_destroy(m);
}

/* BatchNormalization-14 has no outputs for the statistics outside training
 * mode: an inference node crosses, one writing them is refused by name. */
static void test_batchnorm_14(void)
{
    oq_err err = {0};
    for (int with_stats = 0; with_stats < 2; with_stats++) {
        oq_model *m = new_model(13, 4);
        const char *ins[5] = {"x", "g", "b", "mu", "var"}, *outs[3] = {"y", "mean", "var_out"};
        for (int k = 1; k < 5; k++)
            oq_graph_add_input(m->graph, oq_graph_value(m->graph, ins[k], &err), &err);
        CHECK(oq_graph_add_node(m->graph, "BatchNormalization", "", "bn", 5, ins, with_stats ? 3 : 1, outs, &err));
        set_output(m, "y");
        oq_status st = oq_model_upgrade_opset(m, 14, &err);
        if (with_stats)
            CHECK(st == OQ_EUNSUPPORTED && strstr(err.msg, "'bn'") && m->opsets[0].version == 13);
        else
            CHECK_OK(st, &err);
        CHECK(with_stats || m->opsets[0].version == 14);
        oq_model_destroy(m);
    }
}

/* Softmax before 13 flattens at axis: the same axis is kept only when it is the last. */
static void test_softmax(void)
{
    oq_err err = {0};
    oq_model *m = new_model(9, 3);
    oq_node_set_attr_int(add(m->graph, "Softmax", "x", "y"), "axis", 2, &err);
    set_output(m, "y");
    CHECK_OK(oq_model_upgrade_opset(m, 13, &err), &err);
    CHECK(m->graph->n_nodes == 1 && oq_node_attr_int(m->graph->nodes[0], "axis", 0) == -1);
    oq_model_destroy(m);

    m = new_model(11, -1); /* rank unknown, default axis 1 */
    add(m->graph, "LogSoftmax", "x", "y");
    set_output(m, "y");
    CHECK_OK(oq_model_upgrade_opset(m, 13, &err), &err);
    oq_graph *g = m->graph;
    oq_node *sm = find_node(g, "LogSoftmax"), *fl = find_node(g, "Flatten"), *rs = find_node(g, "Reshape"),
            *sh = find_node(g, "Shape");
    CHECK(g->n_nodes == 4 && sm && fl && rs && sh);
    if (sm && fl && rs && sh) {
        CHECK(oq_node_attr_int(fl, "axis", 0) == 1 && oq_node_attr_int(sm, "axis", 0) == -1);
        CHECK(sm->inputs[0] == fl->outputs[0] && rs->inputs[0] == sm->outputs[0] && rs->inputs[1] == sh->outputs[0]);
        CHECK(!strcmp(rs->outputs[0]->name, "y") && g->outputs[0] == rs->outputs[0]);
        CHECK(sh->inputs[0] == g->inputs[0] && fl->inputs[0] == g->inputs[0]);
        CHECK(g->nodes[g->n_nodes - 1] == rs); /* sorted */
    }
    oq_model_destroy(m);
}

/* Attributes that became inputs turn into typed initializers. */
static void test_attrs_to_inputs(void)
{
    oq_err err = {0};
    oq_model *m = new_model(9, 4);
    oq_node *c = add(m->graph, "Clip", "x", "c");
    oq_node_set_attr_float(c, "min", 0.0f, &err);
    oq_node_set_attr_float(c, "max", 6.0f, &err);
    oq_node *s = add(m->graph, "Slice", "c", "s");
    const int64_t st[1] = {1}, en[1] = {3}, ax[1] = {1};
    oq_node_set_attr_ints(s, "starts", 1, st, &err);
    oq_node_set_attr_ints(s, "ends", 1, en, &err);
    oq_node_set_attr_ints(s, "axes", 1, ax, &err);
    oq_node_set_attr_ints(add(m->graph, "Unsqueeze", "s", "u"), "axes", 1, ax, &err);
    set_output(m, "u");
    CHECK_OK(oq_model_upgrade_opset(m, 13, &err), &err);
    c = find_node(m->graph, "Clip");
    s = find_node(m->graph, "Slice");
    oq_node *u = find_node(m->graph, "Unsqueeze");
    CHECK(c->n_attrs == 0 && c->n_inputs == 3 && c->inputs[2]->constant && c->inputs[2]->is_initializer);
    CHECK(c->inputs[1]->constant->dtype == OQ_DTYPE_FLOAT && c->inputs[1]->constant->rank == 0);
    CHECK(*(float *)c->inputs[2]->constant->data == 6.0f);
    CHECK(s->n_attrs == 0 && s->n_inputs == 4 && s->inputs[3]->constant->dtype == OQ_DTYPE_INT64);
    CHECK(((int64_t *)s->inputs[2]->constant->data)[0] == 3);
    CHECK(u->n_attrs == 0 && u->n_inputs == 2 && ((int64_t *)u->inputs[1]->constant->data)[0] == 1);
    CHECK(m->ir_version >= 7);
    oq_model_destroy(m);

    /* Clip whose input type nothing declares cannot get typed bounds */
    m = new_model(9, 4);
    const char *ins[1] = {"x"}, *outs[1] = {"t"};
    oq_graph_add_node(m->graph, "Custom", "com.example", "custom", 1, ins, 1, outs, &err);
    c = add(m->graph, "Clip", "t", "c");
    oq_node_set_attr_float(c, "max", 6.0f, &err);
    set_output(m, "c");
    CHECK(oq_model_upgrade_opset(m, 11, &err) == OQ_EUNSUPPORTED && strstr(err.msg, "'c' (Clip)"));
    oq_model_destroy(m);
}

/* Upsample -> Resize-10 -> Resize-11 with the old coordinate rule, or a refusal. */
static void test_resize(void)
{
    for (int shrink = 0; shrink < 2; shrink++) {
        oq_err err = {0};
        oq_model *m = new_model(7, 4);
        const float sc[4] = {1, 1, shrink ? 0.5f : 2, 2};
        oq_node *n = add(m->graph, "Upsample", "x", "y");
        oq_attr *a = NULL;
        oq_node_set_attr_ints(n, "scales", 0, NULL, &err); /* then fill as floats */
        a = &n->attrs[0];
        a->type = OQ_ATTR_FLOATS;
        a->floats = malloc(sizeof sc);
        memcpy(a->floats, sc, sizeof sc);
        a->n = 4;
        set_output(m, "y");
        oq_status st = oq_model_upgrade_opset(m, 13, &err);
        n = m->graph->nodes[0];
        if (shrink) {
            CHECK(st == OQ_EUNSUPPORTED && strstr(err.msg, "opset 11"));
        } else {
            CHECK(st == OQ_OK && !strcmp(n->op_type, "Resize") && n->n_inputs == 3);
            CHECK(!strcmp(oq_node_attr_string(n, "coordinate_transformation_mode", ""), "asymmetric"));
            CHECK(!strcmp(oq_node_attr_string(n, "nearest_mode", ""), "floor"));
            CHECK(oq_tensor_numel(n->inputs[1]->constant) == 0 && ((float *)n->inputs[2]->constant->data)[2] == 2);
        }
        oq_model_destroy(m);
    }
}

/* If bodies are converted too; a read Dropout mask is refused. */
static void test_subgraph_and_refusals(void)
{
    oq_err err = {0};
    oq_model *m = new_model(11, 4);
    oq_value *cond = oq_graph_value(m->graph, "cond", &err);
    oq_value_set_tensor_type(cond, OQ_DTYPE_BOOL, 0, NULL, &err);
    oq_graph_add_input(m->graph, cond, &err);
    const char *ins[1] = {"cond"}, *outs[1] = {"y"};
    oq_node *nif = oq_graph_add_node(m->graph, "If", "", "if", 1, ins, 1, outs, &err);
    const char *branch[2] = {"then_branch", "else_branch"};
    for (int b = 0; b < 2; b++) {
        oq_graph *sg = oq_graph_create(m, m->graph);
        const int64_t ax[1] = {0};
        oq_node_set_attr_ints(add(sg, "Squeeze", "x", b ? "e" : "t"), "axes", 1, ax, &err);
        oq_graph_add_output(sg, oq_graph_find_local(sg, b ? "e" : "t"), &err);
        oq_node_set_attr_int(nif, branch[b], 0, &err);
        oq_attr *a = (oq_attr *)oq_node_attr(nif, branch[b]);
        a->type = OQ_ATTR_GRAPH;
        a->g = sg;
    }
    set_output(m, "y");
    CHECK_OK(oq_model_upgrade_opset(m, 13, &err), &err);
    oq_graph *then_g = oq_node_attr(nif, "then_branch")->g;
    CHECK(then_g->nodes[0]->n_inputs == 2 && then_g->nodes[0]->opset == 13 && then_g->nodes[0]->n_attrs == 0);
    CHECK(then_g->nodes[0]->inputs[1]->graph == then_g);
    oq_model_destroy(m);

    m = new_model(7, 4);
    const char *douts[2] = {"y", "mask"};
    const char *din[1] = {"x"};
    oq_graph_add_node(m->graph, "Dropout", "", "drop", 1, din, 2, douts, &err);
    set_output(m, "y");
    set_output(m, "mask");
    CHECK(oq_model_upgrade_opset(m, 10, &err) == OQ_EUNSUPPORTED && strstr(err.msg, "'drop' (Dropout)"));
    oq_model_destroy(m);
}

int main(void)
{
    test_contract();
    test_batchnorm_14();
    test_softmax();
    test_attrs_to_inputs();
    test_resize();
    test_subgraph_and_refusals();
    return check_exit("test_opset");
}
