/* graph_clone.c: deep copies of models (oq_model_clone in oq_graph.h): every
 * graph, value, node, attribute and constant, value ids and node order kept. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"


/* strdup that keeps NULL as NULL; sets *bad when a copy fails. */
static char *dup_opt(const char *s, bool *bad)
{
    char *d = s ? strdup(s) : NULL;
    *bad |= s && !d;
    return d;
}

static void *dup_mem(const void *p, size_t n, bool *bad)
{
    if (!p)
        return NULL;
    void *d = malloc(n ? n : 1);
    if (d)
        memcpy(d, p, n);
    *bad |= !d;
    return d;
}

/* Every helper below fails only when memory runs out: it returns NULL or
 * sets *bad, and oq_model_clone reports it once. */
/* t's copy: a view of the same read-only mapping when t is mapped external
 * data (no bytes copied), else a deep copy. */
static oq_tensor *dup_tensor(const oq_tensor *t)
{
    oq_tensor *d = malloc(sizeof *d);
    if (d && oq_tensor_share(d, t, NULL)) {
        free(d);
        return NULL;
    }
    return d;
}

/* The source chain (src_graph ... top) and its copy, for mapping value pointers. */
typedef struct scope {
    const oq_graph *src;
    oq_graph *dst;
    const struct scope *outer;
} scope;

/* The copy of value v, which belongs to the scope's graph or an enclosing one. */
static oq_value *mapped(const scope *s, const oq_value *v)
{
    if (!v)
        return NULL;
    for (; s; s = s->outer)
        if (s->src == v->graph)
            return s->dst->values[v->id];
    return NULL;
}

static oq_graph *clone_graph(const oq_graph *src, oq_model *m, const scope *outer);

static bool clone_attr(oq_attr *d, const oq_attr *a, oq_model *m, const scope *sc)
{
    bool bad = false;
    d->name = dup_opt(a->name, &bad);
    d->type = a->type;
    d->f = a->f;
    d->i = a->i;
    d->s = dup_mem(a->s, a->s_len + 1, &bad);
    d->s_len = a->s_len;
    d->n = a->n;
    d->floats = dup_mem(a->floats, (size_t)a->n * sizeof *a->floats, &bad);
    d->ints = dup_mem(a->ints, (size_t)a->n * sizeof *a->ints, &bad);
    d->ref_attr_name = dup_opt(a->ref_attr_name, &bad);
    d->doc_string = dup_opt(a->doc_string, &bad);
    d->raw = dup_mem(a->raw, a->raw_len, &bad);
    d->raw_len = a->raw_len;
    if (a->strings && (d->strings = calloc((size_t)(a->n ? a->n : 1), sizeof *d->strings)))
        for (int i = 0; i < a->n; i++)
            d->strings[i] = dup_opt(a->strings[i], &bad);
    bad |= a->strings && !d->strings;
    if (a->tensors && (d->tensors = calloc((size_t)(a->n ? a->n : 1), sizeof *d->tensors)))
        for (int i = 0; i < a->n && !bad; i++)
            bad |= !(d->tensors[i] = dup_tensor(a->tensors[i]));
    bad |= a->tensors && !d->tensors;
    if (!bad && a->t)
        bad = !(d->t = dup_tensor(a->t));
    if (a->graphs && (d->graphs = calloc((size_t)(a->n ? a->n : 1), sizeof *d->graphs)))
        for (int i = 0; i < a->n && !bad; i++)
            bad |= !(d->graphs[i] = clone_graph(a->graphs[i], m, sc));
    bad |= a->graphs && !d->graphs;
    if (!bad && a->g)
        bad = !(d->g = clone_graph(a->g, m, sc));
    return !bad;
}

static bool clone_value(oq_value *d, const oq_value *v)
{
    bool bad = false;
    d->kind = v->kind;
    d->dtype = v->dtype;
    d->rank = v->rank;
    d->is_initializer = v->is_initializer;
    d->doc_string = dup_opt(v->doc_string, &bad);
    d->type_bytes = dup_mem(v->type_bytes, v->type_bytes_len, &bad);
    d->type_bytes_len = v->type_bytes_len;
    if (v->dims && v->rank > 0 && (d->dims = calloc((size_t)v->rank, sizeof *d->dims)))
        for (int i = 0; i < v->rank; i++) {
            d->dims[i].value = v->dims[i].value;
            d->dims[i].param = dup_opt(v->dims[i].param, &bad);
        }
    bad |= v->dims && v->rank > 0 && !d->dims;
    if (!bad && v->constant)
        bad = !(d->constant = dup_tensor(v->constant));
    return !bad;
}

static oq_graph *clone_graph(const oq_graph *src, oq_model *m, const scope *outer)
{
    oq_graph *g = oq_graph_create(m, outer ? outer->dst : NULL);
    bool bad = !g;
    if (g) {
        free(g->name);
        free(g->doc_string);
        g->name = dup_opt(src->name, &bad);
        g->doc_string = dup_opt(src->doc_string, &bad);
    }
    for (int i = 0; !bad && i < src->n_values; i++) {
        oq_value *v = oq_graph_value_new(g, src->values[i]->name, NULL);
        bad = !v || !clone_value(v, src->values[i]);
    }
    scope sc = {src, g, outer};
    for (int i = 0; !bad && i < src->n_inputs; i++)
        bad = oq_graph_add_input(g, mapped(&sc, src->inputs[i]), NULL) != OQ_OK;
    for (int i = 0; !bad && i < src->n_outputs; i++)
        bad = oq_graph_add_output(g, mapped(&sc, src->outputs[i]), NULL) != OQ_OK;
    for (int i = 0; !bad && i < src->n_nodes; i++) {
        const oq_node *s = src->nodes[i];
        oq_node *n = oq_node_new(g, s->op_type, s->domain, s->name, s->n_inputs, s->n_outputs);
        if (!n || oq_grow_array((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) {
            oq_node_free(n);
            bad = true;
            break;
        }
        g->nodes[g->n_nodes++] = n;
        free(n->doc_string);
        n->doc_string = dup_opt(s->doc_string, &bad);
        n->opset = s->opset;
        n->order = s->order;
        for (int k = 0; k < s->n_inputs; k++)
            n->inputs[k] = mapped(&sc, s->inputs[k]);
        for (int k = 0; k < s->n_outputs; k++)
            n->outputs[k] = mapped(&sc, s->outputs[k]);
        if (s->n_attrs && !(n->attrs = calloc((size_t)s->n_attrs, sizeof *n->attrs)))
            bad = true;
        for (int a = 0; !bad && a < s->n_attrs; a++, n->n_attrs++)
            bad = !clone_attr(&n->attrs[a], &s->attrs[a], m, &sc);
    }
    if (bad) {
        oq_graph_destroy(g);
        return NULL;
    }
    return g;
}

/* Indexes g and every subgraph under it. */
static oq_status index_all(oq_graph *g, oq_err *err)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i]->n_attrs; a++) {
            const oq_attr *at = &g->nodes[i]->attrs[a];
            oq_status st = at->type == OQ_ATTR_GRAPH && at->g ? index_all(at->g, err) : OQ_OK;
            for (int j = 0; !st && at->type == OQ_ATTR_GRAPHS && j < at->n; j++)
                st = index_all(at->graphs[j], err);
            if (st)
                return st;
        }
    return oq_graph_index(g, err);
}

oq_status oq_model_clone(oq_model **out, const oq_model *m, oq_err *err)
{
    *out = NULL;
    oq_model *c = oq_model_create();
    bool bad = !c;
    if (c) {
        c->ir_version = m->ir_version;
        c->model_version = m->model_version;
        c->producer_name = dup_opt(m->producer_name, &bad);
        c->producer_version = dup_opt(m->producer_version, &bad);
        c->domain = dup_opt(m->domain, &bad);
        c->doc_string = dup_opt(m->doc_string, &bad);
        c->passthrough = dup_mem(m->passthrough, m->passthrough_len, &bad);
        c->passthrough_len = m->passthrough_len;
        if (m->n_opsets && (c->opsets = calloc((size_t)m->n_opsets, sizeof *c->opsets)))
            for (; c->n_opsets < m->n_opsets; c->n_opsets++) {
                c->opsets[c->n_opsets].domain = dup_opt(m->opsets[c->n_opsets].domain, &bad);
                c->opsets[c->n_opsets].version = m->opsets[c->n_opsets].version;
            }
        bad |= m->n_opsets && !c->opsets;
        if (m->n_metadata && (c->metadata = calloc((size_t)m->n_metadata, sizeof *c->metadata)))
            for (; c->n_metadata < m->n_metadata; c->n_metadata++) {
                c->metadata[c->n_metadata].key = dup_opt(m->metadata[c->n_metadata].key, &bad);
                c->metadata[c->n_metadata].value = dup_opt(m->metadata[c->n_metadata].value, &bad);
            }
        bad |= m->n_metadata && !c->metadata;
    }
    if (!bad && m->graph)
        bad = !(c->graph = clone_graph(m->graph, c, NULL));
    oq_status st = bad ? oq_errf(err, OQ_ENOMEM, "out of memory copying the model") : OQ_OK;
    if (!st && c->graph)
        st = index_all(c->graph, err);
    if (st) {
        oq_model_destroy(c);
        return st;
    }
    *out = c;
    return OQ_OK;
}

