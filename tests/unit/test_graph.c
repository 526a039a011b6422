/* test_graph.c: tensor basics, broadcasting, and the graph IR's mutation,
 * indexing and sorting (what the loader and the quantizer rely on). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_graph.h"

static void test_tensor(void)
{
    oq_err err = {0};
    int64_t dims[2] = {3, 4};
    oq_tensor t;
    CHECK_OK(oq_tensor_alloc(&t, OQ_DTYPE_FLOAT, 2, dims, &err), &err);
    CHECK(oq_tensor_numel(&t) == 12 && t.nbytes == 48);
    oq_tensor c;
    ((float *)t.data)[5] = 2.5f;
    CHECK_OK(oq_tensor_copy(&c, &t, &err), &err);
    CHECK(((float *)c.data)[5] == 2.5f && oq_tensor_get_f64(&c, 5) == 2.5);
    oq_tensor_release(&c);
    oq_tensor_release(&t);
    oq_tensor_release(NULL);

    /* overflowing and negative dims are refused, as is anything over the limit */
    int64_t huge[3] = {INT64_MAX / 2, 4, 1};
    CHECK(oq_tensor_alloc(&t, OQ_DTYPE_FLOAT, 3, huge, &err) != OQ_OK);
    int64_t neg[1] = {-1};
    CHECK(oq_tensor_alloc(&t, OQ_DTYPE_FLOAT, 1, neg, &err) == OQ_EINVAL);
    size_t old = oq_tensor_limit();
    oq_set_tensor_limit(1000);
    int64_t big[1] = {1000};
    CHECK(oq_tensor_alloc(&t, OQ_DTYPE_FLOAT, 1, big, &err) == OQ_ENOMEM);
    oq_set_tensor_limit(old);

    /* int4 storage packs two per byte */
    CHECK(oq_dtype_storage(OQ_DTYPE_INT4, 5) == 3);

    /* half precision round trips and rounds to nearest even */
    CHECK(oq_f16_to_f32(oq_f32_to_f16(1.0f)) == 1.0f);
    CHECK(oq_f16_to_f32(oq_f32_to_f16(65504.0f)) == 65504.0f);
    CHECK(isinf(oq_f16_to_f32(oq_f32_to_f16(70000.0f))));
    CHECK(oq_f16_to_f32(oq_f32_to_f16(5.9604644775390625e-8f)) == 5.9604644775390625e-8f);
    CHECK(oq_f32_to_f16(1.0f + 1.0f / 2048) == 0x3C00); /* tie goes to even */
    CHECK(isnan(oq_f16_to_f32(oq_f32_to_f16(NAN))));
    CHECK(oq_bf16_to_f32(oq_f32_to_bf16(3.0f)) == 3.0f);
}

static void test_broadcast(void)
{
    oq_err err = {0};
    int64_t a[3] = {2, 1, 4}, b[2] = {3, 1};
    const int64_t *dims[2] = {a, b};
    int ranks[2] = {3, 2};
    int rank;
    int64_t out[OQ_MAX_RANK];
    CHECK_OK(oq_broadcast_shape(2, ranks, dims, &rank, out, &err), &err);
    CHECK(rank == 3 && out[0] == 2 && out[1] == 3 && out[2] == 4);
    int64_t sa[3], sb[3];
    oq_broadcast_strides(3, a, rank, out, sa);
    oq_broadcast_strides(2, b, rank, out, sb);
    CHECK(sa[0] == 4 && sa[1] == 0 && sa[2] == 1);
    CHECK(sb[0] == 0 && sb[1] == 1 && sb[2] == 0);
    int64_t c[1] = {5};
    const int64_t *bad[2] = {a, c};
    int bad_ranks[2] = {3, 1};
    CHECK(oq_broadcast_shape(2, bad_ranks, bad, &rank, out, &err) == OQ_EINVAL);
    CHECK(strstr(err.msg, "broadcast") != NULL);
}

/* x -> A -> t -> B -> y, written in reverse order so sorting has work to do. */
static oq_model *build_chain(oq_err *err)
{
    oq_model *m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    oq_graph *g = m->graph;
    const char *t[] = {"t"}, *x[] = {"x"}, *y[] = {"y"};
    oq_graph_add_node(g, "Relu", "", "B", 1, t, 1, y, err);
    oq_graph_add_node(g, "Neg", "ai.onnx", "A", 1, x, 1, t, err);
    oq_graph_add_input(g, oq_graph_find(g, "x"), err);
    oq_graph_add_output(g, oq_graph_find(g, "y"), err);
    return m;
}

static void test_sort_and_mutate(void)
{
    oq_err err = {0};
    oq_model *m = build_chain(&err);
    oq_graph *g = m->graph;
    CHECK_OK(oq_graph_sort(g, &err), &err);
    CHECK(strcmp(g->nodes[0]->name, "A") == 0 && strcmp(g->nodes[1]->name, "B") == 0);
    CHECK(strcmp(g->nodes[0]->domain, "") == 0);
    oq_value *t = oq_graph_find(g, "t");
    CHECK(t->producer == g->nodes[0] && t->n_consumers == 1 && t->consumers[0] == g->nodes[1]);

    /* insert a node between A and B: t -> Sigmoid -> t2 -> B */
    char *name = oq_graph_unique_name(g, "t");
    CHECK(strcmp(name, "t_1") == 0);
    const char *in[] = {"t"}, *out[] = {name};
    oq_node *s = oq_graph_add_node(g, "Sigmoid", "", "S", 1, in, 1, out, &err);
    CHECK(s != NULL);
    CHECK_OK(oq_node_set_input(g->nodes[1], 0, oq_graph_find(g, name), &err), &err);
    free(name);
    CHECK_OK(oq_graph_sort(g, &err), &err);
    CHECK(strcmp(g->nodes[1]->name, "S") == 0 && strcmp(g->nodes[2]->name, "B") == 0);

    /* attributes replace by name */
    CHECK_OK(oq_node_set_attr_int(s, "axis", 1, &err), &err);
    CHECK_OK(oq_node_set_attr_int(s, "axis", 3, &err), &err);
    CHECK(s->n_attrs == 1 && oq_node_attr_int(s, "axis", 0) == 3);
    CHECK(oq_node_attr_float(s, "axis", 7.0f) == 7.0f); /* wrong type: default */

    /* remove S again and prune its dangling value */
    oq_graph_replace_uses(g, oq_graph_find(g, "t_1"), t);
    oq_graph_remove_node(g, s);
    oq_graph_prune(g);
    CHECK(oq_graph_find(g, "t_1") == NULL && oq_graph_find(g, "t") == t);
    for (int i = 0; i < g->n_values; i++)
        CHECK(g->values[i]->id == i);
    CHECK_OK(oq_graph_sort(g, &err), &err);
    oq_model_destroy(m);
}

static void test_bad_graphs(void)
{
    oq_err err = {0};
    /* a cycle: A reads B's output and B reads A's */
    oq_model *m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    const char *a_in[] = {"b"}, *a_out[] = {"a"}, *b_in[] = {"a"}, *b_out[] = {"b"};
    oq_graph_add_node(m->graph, "Relu", "", "A", 1, a_in, 1, a_out, &err);
    oq_graph_add_node(m->graph, "Relu", "", "B", 1, b_in, 1, b_out, &err);
    CHECK(oq_graph_sort(m->graph, &err) == OQ_EINVAL && strstr(err.msg, "cycle"));
    oq_model_destroy(m);

    /* a dangling input */
    m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    const char *in[] = {"nowhere"}, *out[] = {"y"};
    oq_graph_add_node(m->graph, "Relu", "", "R", 1, in, 1, out, &err);
    CHECK(oq_graph_sort(m->graph, &err) == OQ_EINVAL && strstr(err.msg, "nowhere"));
    oq_model_destroy(m);
}

static void test_subgraph_scope(void)
{
    oq_err err = {0};
    oq_model *m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    oq_graph *g = m->graph;
    /* outer: P produces p; If reads p only through its then-branch */
    const char *x[] = {"x"}, *p[] = {"p"}, *cond[] = {"c"}, *r[] = {"r"};
    oq_graph_add_node(g, "If", "", "I", 1, cond, 1, r, &err);
    oq_graph_add_node(g, "Neg", "", "P", 1, x, 1, p, &err);
    oq_graph_add_input(g, oq_graph_find(g, "x"), &err);
    oq_graph_add_input(g, oq_graph_find(g, "c"), &err);
    oq_graph *sub = oq_graph_create(m, g);
    const char *q[] = {"q"};
    oq_graph_add_node(sub, "Relu", "", "inner", 1, p, 1, q, &err);
    oq_graph_add_output(sub, oq_graph_find(sub, "q"), &err);
    CHECK(oq_graph_find(sub, "p")->graph == g); /* resolved to the outer value */
    oq_node *ifn = g->nodes[0];
    ifn->attrs = calloc(1, sizeof *ifn->attrs);
    ifn->n_attrs = 1;
    ifn->attrs[0].name = strdup("then_branch");
    ifn->attrs[0].type = OQ_ATTR_GRAPH;
    ifn->attrs[0].g = sub;
    int n;
    oq_value **impl = oq_node_implicit_inputs(ifn, &n, &err);
    CHECK(n == 1 && impl && impl[0] == oq_graph_find(g, "p"));
    free(impl);
    CHECK_OK(oq_graph_sort(g, &err), &err);
    CHECK(strcmp(g->nodes[0]->name, "P") == 0); /* implicit dependency respected */
    oq_model_destroy(m);
}

int main(void)
{
    test_tensor();
    test_broadcast();
    test_sort_and_mutate();
    test_bad_graphs();
    test_subgraph_scope();
    return check_exit("test_graph");
}
