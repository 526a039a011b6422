/* test_graph.c: tensor basics, broadcasting, and the graph IR's mutation,
 * indexing and sorting (what the loader and the quantizer rely on). */
#include <math.h>
#include <stdint.h>
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
    CHECK_OK(oq_graph_replace_uses(g, oq_graph_find(g, "t_1"), t, &err), &err);
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


/* ---- links kept valid by edits ------------------------------------------------ */

typedef struct links {
    int n;
    const oq_node **producer;  /* [n_values] */
    int *n_consumers;          /* [n_values] */
    const oq_node ***consumers; /* [n_values][n_consumers], sorted by address */
} links;

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const oq_node *const *)a, y = (uintptr_t) * (const oq_node *const *)b;
    return x < y ? -1 : x > y;
}

static links snapshot(const oq_graph *g)
{
    links l = {g->n_values, calloc((size_t)g->n_values + 1, sizeof *l.producer),
               calloc((size_t)g->n_values + 1, sizeof *l.n_consumers),
               calloc((size_t)g->n_values + 1, sizeof *l.consumers)};
    for (int i = 0; i < g->n_values; i++) {
        const oq_value *v = g->values[i];
        l.producer[i] = v->producer;
        l.n_consumers[i] = v->n_consumers;
        l.consumers[i] = malloc((size_t)(v->n_consumers + 1) * sizeof **l.consumers);
        for (int k = 0; k < v->n_consumers; k++)
            l.consumers[i][k] = v->consumers[k];
        qsort(l.consumers[i], (size_t)v->n_consumers, sizeof **l.consumers, by_address);
    }
    return l;
}

static void links_free(links *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->consumers[i]);
    free(l->producer);
    free(l->n_consumers);
    free(l->consumers);
}

/* The links the edits left equal the ones oq_graph_index builds from scratch. */
static bool links_fresh(oq_graph *g)
{
    oq_err err = {0};
    links kept = snapshot(g);
    bool ok = oq_graph_index(g, &err) == OQ_OK;
    links fresh = snapshot(g);
    for (int i = 0; ok && i < g->n_values; i++) {
        ok = kept.producer[i] == fresh.producer[i] && kept.n_consumers[i] == fresh.n_consumers[i];
        for (int k = 0; ok && k < kept.n_consumers[i]; k++)
            ok = kept.consumers[i][k] == fresh.consumers[i][k];
    }
    links_free(&kept);
    links_free(&fresh);
    return ok;
}

static int rnd(uint32_t *seed, int n)
{
    *seed = *seed * 1103515245u + 12345u;
    return (int)(*seed >> 16) % n;
}

/* Random edits through the API on a graph with an If whose branch reads an
 * outer value: after each one the links are what a full index gives. */
static void test_edits_keep_links(void)
{
    oq_err err = {0};
    oq_model *m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    oq_graph *g = m->graph;
    oq_value *vals[12];
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d", i);
        vals[i] = oq_graph_value(g, name, &err);
    }
    CHECK_OK(oq_graph_add_input(g, vals[0], &err), &err);
    const char *c_in[] = {"v0"}, *c_out[] = {"v1"};
    oq_node *ifn = oq_graph_add_node(g, "If", "", "I", 1, c_in, 1, c_out, &err);
    oq_graph *sub = oq_graph_create(m, g);
    const char *s_in[] = {"v2"}, *s_out[] = {"inner"};
    oq_graph_add_node(sub, "Relu", "", "R", 1, s_in, 1, s_out, &err);
    oq_graph_add_output(sub, oq_graph_find(sub, "inner"), &err);
    ifn->attrs = calloc(1, sizeof *ifn->attrs);
    ifn->n_attrs = 1;
    ifn->attrs[0].name = strdup("then_branch");
    ifn->attrs[0].type = OQ_ATTR_GRAPH;
    ifn->attrs[0].g = sub;
    CHECK_OK(oq_graph_index(g, &err), &err); /* subgraph attributes set by hand: index once */
    CHECK(vals[2]->n_consumers == 1 && vals[2]->consumers[0] == ifn);

    uint32_t seed = 12345;
#define RND(n) rnd(&seed, n)
    int added = 0;
    for (int step = 0; step < 400; step++) {
        int what = RND(5);
        if (what == 0 || g->n_nodes < 3) { /* a node reading two values, writing an unwritten one */
            oq_value *out = NULL;
            for (int tries = 0; tries < 12 && !out; tries++) {
                oq_value *v = vals[RND(12)];
                if (!v->producer && v != vals[0])
                    out = v;
            }
            if (!out)
                continue;
            oq_value *in[2] = {vals[RND(12)], NULL};
            if (RND(3))
                in[1] = vals[RND(12)];
            char name[16];
            snprintf(name, sizeof name, "n%d", added++);
            CHECK(oq_graph_add_op(g, OQ_OP_ADD, name, 2, in, 1, &out, &err) != NULL);
        } else if (what == 1) {
            oq_graph_remove_node(g, g->nodes[RND(g->n_nodes)]);
        } else if (what == 2) {
            oq_node *n = g->nodes[RND(g->n_nodes)];
            CHECK_OK(oq_node_set_input(n, RND(n->n_inputs + 1), RND(4) ? vals[RND(12)] : NULL, &err), &err);
        } else if (what == 3) {
            oq_node *n = g->nodes[RND(g->n_nodes)];
            oq_value *v = vals[RND(12)];
            if (n->n_outputs && !v->producer && v != vals[0])
                oq_node_set_output(n, 0, v);
        } else {
            CHECK_OK(oq_graph_replace_uses(g, vals[RND(12)], vals[RND(12)], &err), &err);
        }
        CHECK(links_fresh(g));
        if (check_failures) {
            fprintf(stderr, "edit %d (kind %d) left stale links\n", step, what);
            break;
        }
    }
#undef RND
    oq_model_destroy(m);
}

/* Op kinds are resolved when a node is made and when it is renamed. */
static void test_op_kinds(void)
{
    oq_err err = {0};
    oq_model *m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    const char *in[] = {"x"}, *out[] = {"y"}, *out2[] = {"z"}, *out3[] = {"w"};
    oq_node *a = oq_graph_add_node(m->graph, "Conv", "ai.onnx", "a", 1, in, 1, out, &err);
    oq_node *b = oq_graph_add_node(m->graph, "QGemm", OQ_CONTRIB_DOMAIN, "b", 1, in, 1, out2, &err);
    oq_node *c = oq_graph_add_node(m->graph, "QGemm", "", "c", 1, in, 1, out3, &err);
    CHECK(a->kind == OQ_OP_CONV && b->kind == OQ_OP_QGEMM && c->kind == OQ_OP_OTHER);
    CHECK_OK(oq_node_set_op_type(a, "Upsample", &err), &err);
    CHECK(a->kind == OQ_OP_OTHER);
    CHECK_OK(oq_node_set_op_type(a, "Resize", &err), &err);
    CHECK(a->kind == OQ_OP_RESIZE && !strcmp(a->op_type, "Resize"));
    for (int k = 1; k < OQ_OP_COUNT; k++)
        CHECK(oq_op_kind_of(oq_op_kinds[k].domain, oq_op_kinds[k].op_type) == (oq_op_kind)k);
    oq_model_destroy(m);
}

/* A clone is deep: same names, ids, order and attributes, its own values
 * (the subgraph's outer read included) and constants. */
static void test_clone(void)
{
    oq_err err = {0};
    oq_model *m = oq_model_create();
    m->graph = oq_graph_create(m, NULL);
    m->ir_version = 8;
    m->n_opsets = 1;
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = 13;
    oq_graph *g = m->graph;
    const char *in[] = {"x", "w"}, *out[] = {"y"}, *if_in[] = {"c"}, *if_out[] = {"r"};
    oq_node *conv = oq_graph_add_node(g, "Conv", "", "conv", 2, in, 1, out, &err);
    int64_t pads[4] = {1, 1, 1, 1};
    CHECK_OK(oq_node_set_attr_ints(conv, "pads", 4, pads, &err), &err);
    int64_t wd[1] = {3};
    oq_tensor *w = oq_tensor_create(OQ_DTYPE_FLOAT, 1, wd, &err);
    ((float *)w->data)[1] = 2.5f;
    CHECK_OK(oq_graph_set_constant(g, oq_graph_find(g, "w"), w, true, &err), &err);
    oq_node *ifn = oq_graph_add_node(g, "If", "", "if", 1, if_in, 1, if_out, &err);
    oq_graph *sub = oq_graph_create(m, g);
    const char *s_in[] = {"y"}, *s_out[] = {"q"};
    oq_graph_add_node(sub, "Relu", "", "inner", 1, s_in, 1, s_out, &err);
    oq_graph_add_output(sub, oq_graph_find(sub, "q"), &err);
    ifn->attrs = calloc(1, sizeof *ifn->attrs);
    ifn->n_attrs = 1;
    ifn->attrs[0].name = strdup("then_branch");
    ifn->attrs[0].type = OQ_ATTR_GRAPH;
    ifn->attrs[0].g = sub;
    oq_graph_add_input(g, oq_graph_find(g, "x"), &err);
    oq_graph_add_input(g, oq_graph_find(g, "c"), &err);
    oq_graph_add_output(g, oq_graph_find(g, "r"), &err);
    CHECK_OK(oq_graph_sort(g, &err), &err);

    oq_model *c = NULL;
    CHECK_OK(oq_model_clone(&c, m, &err), &err);
    if (!c) {
        oq_model_destroy(m);
        return;
    }
    oq_graph *h = c->graph;
    CHECK(c->ir_version == 8 && c->n_opsets == 1 && c->opsets[0].version == 13);
    CHECK(h->n_values == g->n_values && h->n_nodes == g->n_nodes && h->n_inputs == 2 && h->n_outputs == 1);
    for (int i = 0; i < h->n_values; i++)
        CHECK(h->values[i]->id == i && !strcmp(h->values[i]->name, g->values[i]->name) && h->values[i]->graph == h);
    for (int i = 0; i < h->n_nodes; i++)
        CHECK(!strcmp(h->nodes[i]->name, g->nodes[i]->name) && h->nodes[i]->kind == g->nodes[i]->kind);
    oq_value *wc = oq_graph_find(h, "w");
    CHECK(wc->constant && wc->constant != w && ((float *)wc->constant->data)[1] == 2.5f && wc->is_initializer);
    const oq_node *cc = oq_graph_find(h, "y")->producer;
    int np;
    const int64_t *p = oq_node_attr_ints(cc, "pads", &np);
    CHECK(cc && cc->inputs[1] == wc && np == 4 && p[3] == 1);
    const oq_node *ic = oq_graph_find(h, "r")->producer;
    const oq_graph *sc = ic ? ic->attrs[0].g : NULL;
    CHECK(sc && sc != sub && sc->parent == h && sc->nodes[0]->inputs[0] == oq_graph_find(h, "y"));
    /* the If reads y through its branch: the clone's links say so */
    oq_value *yc = oq_graph_find(h, "y");
    bool if_reads_y = false;
    for (int k = 0; k < yc->n_consumers; k++)
        if_reads_y |= yc->consumers[k] == ic;
    CHECK(if_reads_y);
    oq_model_destroy(m); /* the clone must not need the original */
    CHECK(((float *)wc->constant->data)[1] == 2.5f && !strcmp(sc->nodes[0]->name, "inner"));
    oq_model_destroy(c);
}

int main(void)
{
    test_tensor();
    test_broadcast();
    test_sort_and_mutate();
    test_bad_graphs();
    test_subgraph_scope();
    test_edits_keep_links();
    test_op_kinds();
    test_clone();
    return check_exit("test_graph");
}
