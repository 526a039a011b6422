/* graph.c: the in-memory model (see oq_graph.h): lifetime, name index,
 * values, the mutation API with the producer/consumer links it keeps valid,
 * attributes, a full re-index and pruning. Deep copies are in graph_clone.c,
 * subgraph reads and the topological sort in graph_order.c. */
#include "graph_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------- */

static char *dup_str(const char *s) { return strdup(s ? s : ""); }

/* Grows *arr (elements of `size` bytes, capacity *cap) to hold `need`. 0 on success. */
int oq_grow_array(void **arr, int *cap, int need, size_t size)
{
    if (need <= *cap)
        return 0;
    int ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- name index: open addressing, string -> value ------------------------------ */

typedef struct name_index {
    size_t cap; /* power of two */
    size_t used;
    oq_value **slots;
} name_index;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int index_insert(name_index *ix, oq_value *v);

static int index_rehash(name_index *ix, size_t cap)
{
    oq_value **old = ix->slots;
    size_t old_cap = ix->cap;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots) {
        ix->slots = old;
        return -1;
    }
    ix->cap = cap;
    ix->used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            index_insert(ix, old[i]);
    free(old);
    return 0;
}

static int index_insert(name_index *ix, oq_value *v)
{
    if ((ix->used + 1) * 2 > ix->cap && index_rehash(ix, ix->cap ? ix->cap * 2 : 64))
        return -1;
    size_t mask = ix->cap - 1;
    for (size_t i = hash_name(v->name) & mask;; i = (i + 1) & mask) {
        if (!ix->slots[i]) {
            ix->slots[i] = v;
            ix->used++;
            return 0;
        }
    }
}

static oq_value *index_find(const name_index *ix, const char *name)
{
    if (!ix || !ix->cap)
        return NULL;
    size_t mask = ix->cap - 1;
    for (size_t i = hash_name(name) & mask; ix->slots[i]; i = (i + 1) & mask)
        if (strcmp(ix->slots[i]->name, name) == 0)
            return ix->slots[i];
    return NULL;
}

/* ---- lifetime ------------------------------------------------------------------ */

static void attr_clear(oq_attr *a)
{
    free(a->name);
    free(a->s);
    oq_tensor_destroy(a->t);
    oq_graph_destroy(a->g);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (int i = 0; i < a->n; i++)
            free(a->strings[i]);
    free(a->strings);
    if (a->tensors)
        for (int i = 0; i < a->n; i++)
            oq_tensor_destroy(a->tensors[i]);
    free(a->tensors);
    if (a->graphs)
        for (int i = 0; i < a->n; i++)
            oq_graph_destroy(a->graphs[i]);
    free(a->graphs);
    free(a->ref_attr_name);
    free(a->doc_string);
    free(a->raw);
    memset(a, 0, sizeof *a);
}

void oq_node_free(oq_node *n)
{
    if (!n)
        return;
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->doc_string);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++)
        attr_clear(&n->attrs[i]);
    free(n->attrs);
    free(n);
}

static void value_free(oq_value *v)
{
    if (!v)
        return;
    free(v->name);
    if (v->dims)
        for (int i = 0; i < v->rank; i++)
            free(v->dims[i].param);
    free(v->dims);
    free(v->type_bytes);
    free(v->doc_string);
    oq_tensor_destroy(v->constant);
    free(v->consumers);
    free(v);
}

oq_model *oq_model_create(void) { return calloc(1, sizeof(oq_model)); }

void oq_model_destroy(oq_model *m)
{
    if (!m)
        return;
    free(m->producer_name);
    free(m->producer_version);
    free(m->domain);
    free(m->doc_string);
    for (int i = 0; i < m->n_opsets; i++)
        free(m->opsets[i].domain);
    free(m->opsets);
    for (int i = 0; i < m->n_metadata; i++) {
        free(m->metadata[i].key);
        free(m->metadata[i].value);
    }
    free(m->metadata);
    oq_graph_destroy(m->graph);
    free(m->passthrough);
    free(m);
}

oq_graph *oq_graph_create(oq_model *model, oq_graph *parent)
{
    oq_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->index = calloc(1, sizeof(name_index));
    g->name = dup_str("");
    g->doc_string = dup_str("");
    if (!g->index || !g->name || !g->doc_string) {
        oq_graph_destroy(g);
        return NULL;
    }
    g->model = model;
    g->parent = parent;
    return g;
}

void oq_graph_destroy(oq_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        oq_node_free(g->nodes[i]);
    free(g->nodes);
    for (int i = 0; i < g->n_values; i++)
        value_free(g->values[i]);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    name_index *ix = g->index;
    if (ix)
        free(ix->slots);
    free(ix);
    free(g->name);
    free(g->doc_string);
    free(g);
}

static int domain_is_default(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

int64_t oq_model_opset(const oq_model *m, const char *domain)
{
    for (int i = 0; m && i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        if (domain_is_default(domain) ? domain_is_default(d) : (d && strcmp(d, domain) == 0))
            return m->opsets[i].version;
    }
    return 0;
}

/* ---- values -------------------------------------------------------------------- */

oq_value *oq_graph_find_local(const oq_graph *g, const char *name)
{
    return index_find(g->index, name);
}

oq_value *oq_graph_find(const oq_graph *g, const char *name)
{
    for (; g; g = g->parent) {
        oq_value *v = index_find(g->index, name);
        if (v)
            return v;
    }
    return NULL;
}

/* Creates a new untyped value named `name` in g (the name must be unused in g). */
oq_value *oq_graph_value_new(oq_graph *g, const char *name, oq_err *err)
{
    oq_value *v = calloc(1, sizeof *v);
    if (!v || !(v->name = dup_str(name)) || oq_grow_array((void **)&g->values, &g->cap_values, g->n_values + 1,
                                                 sizeof *g->values)) {
        value_free(v);
        oq_errf(err, OQ_ENOMEM, "out of memory adding value '%s'", name);
        return NULL;
    }
    v->graph = g;
    v->rank = -1;
    v->id = g->n_values;
    if (index_insert(g->index, v)) {
        value_free(v);
        oq_errf(err, OQ_ENOMEM, "out of memory adding value '%s'", name);
        return NULL;
    }
    g->values[g->n_values++] = v;
    return v;
}

oq_value *oq_graph_value(oq_graph *g, const char *name, oq_err *err)
{
    oq_value *v = oq_graph_find_local(g, name);
    return v ? v : oq_graph_value_new(g, name, err);
}

char *oq_graph_unique_name(const oq_graph *g, const char *base)
{
    if (!oq_graph_find(g, base))
        return dup_str(base);
    size_t n = strlen(base) + 24;
    char *name = malloc(n);
    if (!name)
        return NULL;
    for (long k = 1;; k++) {
        snprintf(name, n, "%s_%ld", base, k);
        if (!oq_graph_find(g, name))
            return name;
    }
}

/* Writes dims as "[1, 3, 224, 224]"; a declared shape prints symbolic dims by name and unknown ones as "?". */
static void format_shape(char *buf, size_t cap, int rank, const int64_t *dims, const oq_dim *decl)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && n < cap; i++) {
        const char *sep = i ? ", " : "";
        if (decl && decl[i].param)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, decl[i].param);
        else if (decl && decl[i].value < 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s?", sep);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", sep, (long long)(decl ? decl[i].value : dims[i]));
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

oq_status oq_value_check_tensor(const oq_value *v, const oq_tensor *t, const char *src, oq_err *err)
{
    const char *from = src ? src : "the tensor given";
    if (v->kind == OQ_TYPE_OPAQUE)
        return oq_errf(err, OQ_EUNSUPPORTED, "input '%s' is not a tensor; only tensor inputs can be fed", v->name);
    if (v->dtype != OQ_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return oq_errf(err, OQ_EINVAL, "input '%s' expects %s, %s holds %s", v->name, oq_dtype_name(v->dtype), from,
                       oq_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > OQ_MAX_RANK)
        return oq_errf(err, OQ_EINVAL, "input '%s': %s has rank %d, outside 0..%d", v->name, from, t->rank, OQ_MAX_RANK);
    if (v->rank < 0)
        return OQ_OK;
    char want[160], got[160];
    format_shape(want, sizeof want, v->rank, NULL, v->dims);
    format_shape(got, sizeof got, t->rank, t->dims, NULL);
    if (t->rank != v->rank)
        return oq_errf(err, OQ_EINVAL, "input '%s' expects rank %d %s, %s has rank %d %s", v->name, v->rank, want, from,
                       t->rank, got);
    for (int d = 0; d < v->rank; d++)
        if (v->dims[d].value >= 0 && !v->dims[d].param && v->dims[d].value != t->dims[d])
            return oq_errf(err, OQ_EINVAL, "input '%s' expects shape %s, %s has %s (dim %d)", v->name, want, from, got,
                           d);
    return OQ_OK;
}

oq_status oq_values_check_shared_dims(int n, const oq_value *const *vs, const oq_tensor *t, oq_err *err)
{
    for (int a = 0; a < n; a++)
        for (int i = 0; vs[a]->kind == OQ_TYPE_TENSOR && i < vs[a]->rank && i < t[a].rank; i++) {
            const char *name = vs[a]->dims[i].param;
            for (int b = a + 1; name && b < n; b++)
                for (int j = 0; vs[b]->kind == OQ_TYPE_TENSOR && j < vs[b]->rank && j < t[b].rank; j++)
                    if (vs[b]->dims[j].param && !strcmp(vs[b]->dims[j].param, name) && t[a].dims[i] != t[b].dims[j])
                        return oq_errf(err, OQ_EINVAL,
                                       "inputs '%s' and '%s' share the dim '%s' but are given %lld and %lld there",
                                       vs[a]->name, vs[b]->name, name, (long long)t[a].dims[i],
                                       (long long)t[b].dims[j]);
        }
    return OQ_OK;
}

oq_status oq_value_set_tensor_type(oq_value *v, oq_dtype dt, int rank, const oq_dim *dims, oq_err *err)
{
    oq_dim *copy = NULL;
    if (rank > 0) {
        copy = calloc((size_t)rank, sizeof *copy);
        if (!copy)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        for (int i = 0; i < rank; i++) {
            copy[i].value = dims[i].value;
            if (dims[i].param && !(copy[i].param = strdup(dims[i].param))) {
                for (int j = 0; j < i; j++)
                    free(copy[j].param);
                free(copy);
                return oq_errf(err, OQ_ENOMEM, "out of memory");
            }
        }
    }
    if (v->dims)
        for (int i = 0; i < v->rank; i++)
            free(v->dims[i].param);
    free(v->dims);
    free(v->type_bytes);
    v->type_bytes = NULL;
    v->type_bytes_len = 0;
    v->kind = OQ_TYPE_TENSOR;
    v->dtype = dt;
    v->rank = rank < 0 ? -1 : rank;
    v->dims = copy;
    return OQ_OK;
}

oq_status oq_graph_set_constant(oq_graph *g, oq_value *v, oq_tensor *t, bool as_initializer, oq_err *err)
{
    (void)g;
    (void)err;
    oq_tensor_destroy(v->constant);
    v->constant = t;
    v->is_initializer = as_initializer;
    return OQ_OK;
}

oq_status oq_graph_new_value(oq_graph *g, const char *base, oq_value **out, oq_err *err)
{
    char *name = oq_graph_unique_name(g, base);
    if (!name)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    *out = oq_graph_value(g, name, err);
    free(name);
    return *out ? OQ_OK : OQ_ENOMEM; /* oq_graph_value fails only so, err set */
}

oq_status oq_graph_add_initializer(oq_graph *g, const char *base, oq_tensor *t, oq_value **out, oq_err *err)
{
    oq_value *v;
    oq_status st = oq_graph_new_value(g, base, &v, err);
    if (st) {
        oq_tensor_destroy(t);
        return st;
    }
    oq_dim dims[OQ_MAX_RANK];
    for (int i = 0; i < t->rank; i++)
        dims[i] = (oq_dim){t->dims[i], NULL};
    if ((st = oq_graph_set_constant(g, v, t, true, err)) ||
        (st = oq_value_set_tensor_type(v, t->dtype, t->rank, dims, err)))
        return st;
    *out = v;
    return OQ_OK;
}

static oq_status value_list_add(oq_value ***list, int *n, oq_value *v, oq_err *err)
{
    oq_value **p = realloc(*list, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    p[(*n)++] = v;
    *list = p;
    return OQ_OK;
}

oq_status oq_graph_add_input(oq_graph *g, oq_value *v, oq_err *err)
{
    return value_list_add(&g->inputs, &g->n_inputs, v, err);
}

oq_status oq_graph_add_output(oq_graph *g, oq_value *v, oq_err *err)
{
    return value_list_add(&g->outputs, &g->n_outputs, v, err);
}

/* ---- producer and consumer links ----------------------------------------------
 * Kept valid by every edit below; oq_graph_index rebuilds them from scratch. */

static oq_status add_consumer(oq_value *v, oq_node *n, oq_err *err)
{
    for (int i = 0; i < v->n_consumers; i++)
        if (v->consumers[i] == n)
            return OQ_OK; /* each reading node is listed once */
    oq_node **p = realloc(v->consumers, (size_t)(v->n_consumers + 1) * sizeof *p);
    if (!p)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    p[v->n_consumers++] = n;
    v->consumers = p;
    return OQ_OK;
}

static void remove_consumer(oq_value *v, const oq_node *n)
{
    for (int i = 0; i < v->n_consumers; i++)
        if (v->consumers[i] == n) {
            memmove(&v->consumers[i], &v->consumers[i + 1], (size_t)(v->n_consumers - i - 1) * sizeof *v->consumers);
            v->n_consumers--;
            return;
        }
}

static bool has_subgraphs(const oq_node *n)
{
    for (int a = 0; a < n->n_attrs; a++)
        if ((n->attrs[a].type == OQ_ATTR_GRAPH && n->attrs[a].g) ||
            (n->attrs[a].type == OQ_ATTR_GRAPHS && n->attrs[a].n))
            return true;
    return false;
}

/* Calls fn(v, user) for every value of `outer` that subgraph sg (recursively)
 * reads by pointer: node inputs and sg's outputs. Returns the first non-zero
 * status fn returns. */
static oq_status each_outer_read(const oq_graph *sg, const oq_graph *outer,
                                 oq_status (*fn)(oq_value *v, void *user), void *user)
{
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < sg->n_nodes; i++) {
        const oq_node *nd = sg->nodes[i];
        for (int k = 0; !st && k < nd->n_inputs; k++)
            if (nd->inputs[k] && nd->inputs[k]->graph == outer)
                st = fn(nd->inputs[k], user);
        for (int a = 0; !st && a < nd->n_attrs; a++) {
            const oq_attr *at = &nd->attrs[a];
            if (at->type == OQ_ATTR_GRAPH && at->g)
                st = each_outer_read(at->g, outer, fn, user);
            for (int j = 0; !st && at->type == OQ_ATTR_GRAPHS && j < at->n; j++)
                st = each_outer_read(at->graphs[j], outer, fn, user);
        }
    }
    for (int i = 0; !st && i < sg->n_outputs; i++)
        if (sg->outputs[i] && sg->outputs[i]->graph == outer)
            st = fn(sg->outputs[i], user);
    return st;
}

/* Calls each_outer_read for every subgraph attribute of n. */
static oq_status each_implicit_input(const oq_node *n, oq_status (*fn)(oq_value *v, void *user), void *user)
{
    oq_status st = OQ_OK;
    for (int a = 0; !st && a < n->n_attrs; a++) {
        const oq_attr *at = &n->attrs[a];
        if (at->type == OQ_ATTR_GRAPH && at->g)
            st = each_outer_read(at->g, n->graph, fn, user);
        for (int j = 0; !st && at->type == OQ_ATTR_GRAPHS && j < at->n; j++)
            st = each_outer_read(at->graphs[j], n->graph, fn, user);
    }
    return st;
}

typedef struct link_args {
    oq_node *n;
    oq_err *err;
} link_args;

static oq_status link_implicit(oq_value *v, void *user)
{
    link_args *a = user;
    return add_consumer(v, a->n, a->err);
}

static oq_status unlink_implicit(oq_value *v, void *user)
{
    remove_consumer(v, user);
    return OQ_OK;
}

static oq_status is_target(oq_value *v, void *user) { return v == user ? OQ_EINVAL : OQ_OK; }

/* Whether n reads v, as an input or through a subgraph. */
static bool node_reads(const oq_node *n, const oq_value *v)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] == v)
            return true;
    return has_subgraphs(n) && each_implicit_input(n, is_target, (void *)v) != OQ_OK;
}

/* The first node of v's graph other than `not` that writes v, or NULL. */
static oq_node *other_writer(const oq_value *v, const oq_node *not)
{
    const oq_graph *g = v->graph;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; g->nodes[i] != not && k < g->nodes[i]->n_outputs; k++)
            if (g->nodes[i]->outputs[k] == v)
                return g->nodes[i];
    return NULL;
}

/* Takes n out of the links: producer of its outputs (another node writing
 * one, as during a replacement, becomes its producer), consumer of what it reads. */
static void node_unlink(oq_node *n)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] && n->outputs[k]->producer == n)
            n->outputs[k]->producer = other_writer(n->outputs[k], n);
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] && n->inputs[k]->graph == n->graph)
            remove_consumer(n->inputs[k], n);
    if (has_subgraphs(n))
        each_implicit_input(n, unlink_implicit, n);
}

/* Puts n (already in g->nodes) into the links; on failure takes it out again. */
static oq_status node_link(oq_node *n, oq_err *err)
{
    oq_status st = OQ_OK;
    for (int k = 0; !st && k < n->n_inputs; k++)
        if (n->inputs[k] && n->inputs[k]->graph == n->graph)
            st = add_consumer(n->inputs[k], n, err);
    link_args a = {n, err};
    if (!st && has_subgraphs(n))
        st = each_implicit_input(n, link_implicit, &a);
    if (st) {
        node_unlink(n);
        return st;
    }
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] && !n->outputs[k]->producer)
            n->outputs[k]->producer = n; /* a second writer shows in the next oq_graph_index */
    return OQ_OK;
}

/* ---- nodes --------------------------------------------------------------------- */

/* A node of op_type in domain with room for its inputs and outputs, not yet in g. */
oq_node *oq_node_new(oq_graph *g, const char *op_type, const char *domain, const char *name, int n_inputs,
                         int n_outputs)
{
    oq_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->graph = g;
    n->name = dup_str(name);
    n->op_type = dup_str(op_type);
    n->domain = dup_str(domain_is_default(domain) ? "" : domain);
    n->doc_string = dup_str("");
    n->inputs = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *n->inputs);
    n->outputs = calloc((size_t)(n_outputs ? n_outputs : 1), sizeof *n->outputs);
    if (!n->name || !n->op_type || !n->domain || !n->doc_string || !n->inputs || !n->outputs) {
        oq_node_free(n);
        return NULL;
    }
    n->kind = oq_op_kind_of(n->domain, n->op_type);
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->opset = oq_model_opset(g->model, n->domain);
    return n;
}

/* Appends n (its values set) to g and links it; frees it on failure. */
static oq_status node_append(oq_graph *g, oq_node *n, oq_err *err)
{
    if (oq_grow_array((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) {
        oq_status st = oq_errf(err, OQ_ENOMEM, "out of memory adding node '%s'", n->name);
        oq_node_free(n);
        return st;
    }
    g->nodes[g->n_nodes++] = n;
    oq_status st = node_link(n, err);
    if (st) {
        g->n_nodes--;
        oq_node_free(n);
    }
    return st;
}

oq_node *oq_graph_add_node(oq_graph *g, const char *op_type, const char *domain, const char *name,
                           int n_inputs, const char *const *inputs, int n_outputs,
                           const char *const *outputs, oq_err *err)
{
    oq_node *n = oq_node_new(g, op_type, domain, name, n_inputs, n_outputs);
    if (!n) {
        oq_errf(err, OQ_ENOMEM, "out of memory adding node '%s'", name ? name : "");
        return NULL;
    }
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i] || !*inputs[i])
            continue;
        oq_value *v = oq_graph_find(g, inputs[i]);
        if (!v && !(v = oq_graph_value_new(g, inputs[i], err)))
            goto fail;
        n->inputs[i] = v;
    }
    for (int i = 0; i < n_outputs; i++) {
        if (!outputs[i] || !*outputs[i])
            continue;
        if (!(n->outputs[i] = oq_graph_value(g, outputs[i], err)))
            goto fail;
    }
    return node_append(g, n, err) ? NULL : n;
fail:
    oq_node_free(n);
    return NULL;
}

oq_node *oq_graph_add_op(oq_graph *g, oq_op_kind kind, const char *name, int n_inputs, oq_value *const *inputs,
                         int n_outputs, oq_value *const *outputs, oq_err *err)
{
    if (kind <= OQ_OP_OTHER || kind >= OQ_OP_COUNT) {
        oq_errf(err, OQ_EINVAL, "no operator of kind %d", (int)kind);
        return NULL;
    }
    oq_node *n = oq_node_new(g, oq_op_kinds[kind].op_type, oq_op_kinds[kind].domain, name, n_inputs, n_outputs);
    if (!n) {
        oq_errf(err, OQ_ENOMEM, "out of memory adding node '%s'", name ? name : "");
        return NULL;
    }
    memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    memcpy(n->outputs, outputs, (size_t)n_outputs * sizeof *outputs);
    return node_append(g, n, err) ? NULL : n;
}

void oq_graph_remove_node(oq_graph *g, oq_node *n)
{
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i] != n)
            continue;
        memmove(&g->nodes[i], &g->nodes[i + 1], (size_t)(g->n_nodes - i - 1) * sizeof *g->nodes);
        g->n_nodes--;
        node_unlink(n);
        oq_node_free(n);
        return;
    }
}

oq_status oq_graph_replace_uses(oq_graph *g, oq_value *from, oq_value *to, oq_err *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i];
        bool changed = false;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from) {
                n->inputs[k] = to;
                changed = true;
            }
        if (!changed)
            continue;
        if (to && to->graph == g) {
            oq_status st = add_consumer(to, n, err);
            if (st)
                return st;
        }
        if (from->graph == g && !node_reads(n, from))
            remove_consumer(from, n);
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from)
            g->outputs[i] = to;
    return OQ_OK;
}

oq_status oq_node_set_input(oq_node *n, int k, oq_value *v, oq_err *err)
{
    if (k < 0 || k > n->n_inputs)
        return oq_errf(err, OQ_EINVAL, "node '%s': input index %d out of range", n->name, k);
    if (v && v->graph == n->graph) {
        oq_status st = add_consumer(v, n, err);
        if (st)
            return st;
    }
    if (k == n->n_inputs) {
        oq_value **p = realloc(n->inputs, (size_t)(k + 1) * sizeof *p);
        if (!p) {
            if (v && v->graph == n->graph && !node_reads(n, v))
                remove_consumer(v, n);
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        }
        n->inputs = p;
        n->inputs[n->n_inputs++] = NULL;
    }
    oq_value *old = n->inputs[k];
    n->inputs[k] = v;
    if (old && old != v && old->graph == n->graph && !node_reads(n, old))
        remove_consumer(old, n);
    return OQ_OK;
}

void oq_node_set_output(oq_node *n, int k, oq_value *v)
{
    if (k < 0 || k >= n->n_outputs)
        return;
    oq_value *old = n->outputs[k];
    n->outputs[k] = v;
    if (old && old->producer == n) {
        bool still = false; /* n may write it through another output */
        for (int j = 0; j < n->n_outputs; j++)
            still |= n->outputs[j] == old;
        if (!still)
            old->producer = other_writer(old, n);
    }
    if (v && !v->producer)
        v->producer = n;
}

oq_status oq_node_set_op_type(oq_node *n, const char *op_type, oq_err *err)
{
    char *s = strdup(op_type);
    if (!s)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    free(n->op_type);
    n->op_type = s;
    n->kind = oq_op_kind_of(n->domain, s);
    return OQ_OK;
}

/* ---- attributes ---------------------------------------------------------------- */

const oq_attr *oq_node_attr(const oq_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t oq_node_attr_int(const oq_node *n, const char *name, int64_t def)
{
    const oq_attr *a = oq_node_attr(n, name);
    return a && a->type == OQ_ATTR_INT ? a->i : def;
}

float oq_node_attr_float(const oq_node *n, const char *name, float def)
{
    const oq_attr *a = oq_node_attr(n, name);
    return a && a->type == OQ_ATTR_FLOAT ? a->f : def;
}

const char *oq_node_attr_string(const oq_node *n, const char *name, const char *def)
{
    const oq_attr *a = oq_node_attr(n, name);
    return a && a->type == OQ_ATTR_STRING ? a->s : def;
}

const int64_t *oq_node_attr_ints(const oq_node *n, const char *name, int *count)
{
    const oq_attr *a = oq_node_attr(n, name);
    if (!a || a->type != OQ_ATTR_INTS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->ints;
}

/* Returns a cleared attribute slot named `name` (reusing one of that name). */
static oq_attr *attr_slot(oq_node *n, const char *name, oq_err *err)
{
    char *copy = strdup(name);
    if (!copy) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            attr_clear(&n->attrs[i]);
            n->attrs[i].name = copy;
            return &n->attrs[i];
        }
    }
    oq_attr *p = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof *p);
    if (!p) {
        free(copy);
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    n->attrs = p;
    oq_attr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = copy;
    return a;
}

oq_status oq_node_set_attr_int(oq_node *n, const char *name, int64_t v, oq_err *err)
{
    oq_attr *a = attr_slot(n, name, err);
    if (!a)
        return err ? err->status : OQ_ENOMEM;
    a->type = OQ_ATTR_INT;
    a->i = v;
    return OQ_OK;
}

oq_status oq_node_set_attr_float(oq_node *n, const char *name, float v, oq_err *err)
{
    oq_attr *a = attr_slot(n, name, err);
    if (!a)
        return err ? err->status : OQ_ENOMEM;
    a->type = OQ_ATTR_FLOAT;
    a->f = v;
    return OQ_OK;
}

oq_status oq_node_set_attr_string(oq_node *n, const char *name, const char *v, oq_err *err)
{
    oq_attr *a = attr_slot(n, name, err);
    if (!a)
        return err ? err->status : OQ_ENOMEM;
    a->type = OQ_ATTR_STRING;
    if (!(a->s = strdup(v)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    a->s_len = strlen(v);
    return OQ_OK;
}

oq_status oq_node_set_attr_ints(oq_node *n, const char *name, int count, const int64_t *v, oq_err *err)
{
    oq_attr *a = attr_slot(n, name, err);
    if (!a)
        return err ? err->status : OQ_ENOMEM;
    a->type = OQ_ATTR_INTS;
    a->ints = malloc((size_t)(count ? count : 1) * sizeof *v);
    if (!a->ints)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    if (count)
        memcpy(a->ints, v, (size_t)count * sizeof *v);
    a->n = count;
    return OQ_OK;
}

oq_status oq_node_set_attr_tensor(oq_node *n, const char *name, oq_tensor *t, oq_err *err)
{
    oq_attr *a = attr_slot(n, name, err);
    if (!a) {
        oq_tensor_destroy(t);
        return err ? err->status : OQ_ENOMEM;
    }
    a->type = OQ_ATTR_TENSOR;
    a->t = t;
    return OQ_OK;
}

void oq_node_remove_attr(oq_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            attr_clear(&n->attrs[i]);
            memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->n_attrs - i - 1) * sizeof *n->attrs);
            n->n_attrs--;
            return;
        }
    }
}

/* ---- structure ----------------------------------------------------------------- */

oq_status oq_graph_index(oq_graph *g, oq_err *err)
{
    for (int i = 0; i < g->n_values; i++) {
        oq_value *v = g->values[i];
        v->producer = NULL;
        v->n_consumers = 0;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            oq_value *v = n->outputs[k];
            if (!v)
                continue;
            if (v->producer)
                return oq_errf(err, OQ_EINVAL, "value '%s' is written by two nodes ('%s' and '%s')", v->name,
                               v->producer->name, n->name);
            if (v->is_initializer)
                return oq_errf(err, OQ_EINVAL, "node '%s' (%s) writes '%s', which is an initializer", n->name,
                               n->op_type, v->name);
            for (int j = 0; j < g->n_inputs; j++)
                if (g->inputs[j] == v)
                    return oq_errf(err, OQ_EINVAL, "node '%s' (%s) writes '%s', which is a graph input", n->name,
                                   n->op_type, v->name);
            v->producer = n;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            oq_value *v = n->inputs[k];
            if (v && v->graph == g) {
                oq_status st = add_consumer(v, n, err);
                if (st)
                    return st;
            }
        }
        link_args a = {n, err};
        oq_status st = has_subgraphs(n) ? each_implicit_input(n, link_implicit, &a) : OQ_OK;
        if (st)
            return st;
    }
    return OQ_OK;
}

void oq_graph_prune(oq_graph *g)
{
    oq_err ignored;
    if (oq_graph_index(g, &ignored))
        return;
    int keep = 0;
    name_index *ix = g->index;
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
    for (int i = 0; i < g->n_values; i++) {
        oq_value *v = g->values[i];
        bool used = v->producer || v->n_consumers || v->constant || v->kind != OQ_TYPE_NONE;
        for (int j = 0; !used && j < g->n_inputs; j++)
            used = g->inputs[j] == v;
        for (int j = 0; !used && j < g->n_outputs; j++)
            used = g->outputs[j] == v;
        if (!used) {
            value_free(v);
            continue;
        }
        v->id = keep;
        g->values[keep++] = v;
        index_insert(ix, v);
    }
    g->n_values = keep;
}

