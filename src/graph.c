/* graph.c: the in-memory model (see oq_graph.h): lifetime, name index,
 * mutation API, producer/consumer index, topological sort. */
#include "onnxq/oq_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------- */

static char *dup_str(const char *s) { return strdup(s ? s : ""); }

/* Grows *arr (elements of `size` bytes, capacity *cap) to hold `need`. 0 on success. */
static int grow(void **arr, int *cap, int need, size_t size)
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

static void node_free(oq_node *n)
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
        node_free(g->nodes[i]);
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
static oq_value *value_new(oq_graph *g, const char *name, oq_err *err)
{
    oq_value *v = calloc(1, sizeof *v);
    if (!v || !(v->name = dup_str(name)) || grow((void **)&g->values, &g->cap_values, g->n_values + 1,
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
    return v ? v : value_new(g, name, err);
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

/* ---- nodes --------------------------------------------------------------------- */

oq_node *oq_graph_add_node(oq_graph *g, const char *op_type, const char *domain, const char *name,
                           int n_inputs, const char *const *inputs, int n_outputs,
                           const char *const *outputs, oq_err *err)
{
    oq_node *n = calloc(1, sizeof *n);
    if (!n)
        goto oom;
    n->graph = g;
    n->name = dup_str(name);
    n->op_type = dup_str(op_type);
    n->domain = dup_str(domain_is_default(domain) ? "" : domain);
    n->doc_string = dup_str("");
    n->inputs = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *n->inputs);
    n->outputs = calloc((size_t)(n_outputs ? n_outputs : 1), sizeof *n->outputs);
    if (!n->name || !n->op_type || !n->domain || !n->doc_string || !n->inputs || !n->outputs)
        goto oom;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->opset = oq_model_opset(g->model, n->domain);
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i] || !*inputs[i])
            continue;
        oq_value *v = oq_graph_find(g, inputs[i]);
        if (!v && !(v = value_new(g, inputs[i], err)))
            goto fail;
        n->inputs[i] = v;
    }
    for (int i = 0; i < n_outputs; i++) {
        if (!outputs[i] || !*outputs[i])
            continue;
        if (!(n->outputs[i] = oq_graph_value(g, outputs[i], err)))
            goto fail;
    }
    if (grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        goto oom;
    g->nodes[g->n_nodes++] = n;
    return n;
oom:
    oq_errf(err, OQ_ENOMEM, "out of memory adding node '%s'", name ? name : "");
fail:
    node_free(n);
    return NULL;
}

void oq_graph_remove_node(oq_graph *g, oq_node *n)
{
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i] != n)
            continue;
        memmove(&g->nodes[i], &g->nodes[i + 1], (size_t)(g->n_nodes - i - 1) * sizeof *g->nodes);
        g->n_nodes--;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] && n->outputs[k]->producer == n)
                n->outputs[k]->producer = NULL;
        node_free(n);
        return;
    }
}

void oq_graph_replace_uses(oq_graph *g, oq_value *from, oq_value *to)
{
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from)
            g->outputs[i] = to;
}

oq_status oq_node_set_input(oq_node *n, int k, oq_value *v, oq_err *err)
{
    if (k < 0 || k > n->n_inputs)
        return oq_errf(err, OQ_EINVAL, "node '%s': input index %d out of range", n->name, k);
    if (k == n->n_inputs) {
        oq_value **p = realloc(n->inputs, (size_t)(k + 1) * sizeof *p);
        if (!p)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        n->inputs = p;
        n->n_inputs++;
    }
    n->inputs[k] = v;
    return OQ_OK;
}

void oq_node_set_output(oq_node *n, int k, oq_value *v)
{
    if (k < 0 || k >= n->n_outputs)
        return;
    if (n->outputs[k] && n->outputs[k]->producer == n)
        n->outputs[k]->producer = NULL;
    n->outputs[k] = v;
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

/* Appends to *out every value read inside subgraph sg (recursively) that does
 * not belong to sg or its descendants, keeping only values of `owner` or its
 * ancestors. Duplicates are skipped. */
static oq_status collect_outer(const oq_graph *sg, const oq_graph *owner, oq_value ***out, int *n, int *cap,
                               oq_err *err)
{
    for (int i = 0; i < sg->n_nodes; i++) {
        const oq_node *nd = sg->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            oq_value *v = nd->inputs[k];
            if (!v)
                continue;
            /* inside sg or deeper? walk up from v's graph to see if we hit sg */
            const oq_graph *h = v->graph;
            while (h && h != sg && h != owner)
                h = h->parent;
            if (h == sg)
                continue;
            int seen = 0;
            for (int j = 0; j < *n && !seen; j++)
                seen = (*out)[j] == v;
            if (seen)
                continue;
            if (grow((void **)out, cap, *n + 1, sizeof **out))
                return oq_errf(err, OQ_ENOMEM, "out of memory");
            (*out)[(*n)++] = v;
        }
        for (int a = 0; a < nd->n_attrs; a++) {
            const oq_attr *at = &nd->attrs[a];
            if (at->type == OQ_ATTR_GRAPH && at->g) {
                oq_status st = collect_outer(at->g, owner, out, n, cap, err);
                if (st)
                    return st;
            }
            for (int j = 0; at->type == OQ_ATTR_GRAPHS && j < at->n; j++) {
                oq_status st = collect_outer(at->graphs[j], owner, out, n, cap, err);
                if (st)
                    return st;
            }
        }
    }
    for (int i = 0; i < sg->n_outputs; i++) {
        oq_value *v = sg->outputs[i];
        const oq_graph *h = v ? v->graph : sg;
        while (h && h != sg && h != owner)
            h = h->parent;
        if (h == sg)
            continue;
        int seen = 0;
        for (int j = 0; j < *n && !seen; j++)
            seen = (*out)[j] == v;
        if (!seen) {
            if (grow((void **)out, cap, *n + 1, sizeof **out))
                return oq_errf(err, OQ_ENOMEM, "out of memory");
            (*out)[(*n)++] = v;
        }
    }
    return OQ_OK;
}

oq_value **oq_node_implicit_inputs(const oq_node *n, int *count, oq_err *err)
{
    oq_value **out = NULL;
    int cnt = 0, cap = 0;
    *count = 0;
    for (int a = 0; a < n->n_attrs; a++) {
        const oq_attr *at = &n->attrs[a];
        oq_status st = OQ_OK;
        if (at->type == OQ_ATTR_GRAPH && at->g)
            st = collect_outer(at->g, n->graph, &out, &cnt, &cap, err);
        for (int j = 0; !st && at->type == OQ_ATTR_GRAPHS && j < at->n; j++)
            st = collect_outer(at->graphs[j], n->graph, &out, &cnt, &cap, err);
        if (st) {
            free(out);
            return NULL;
        }
    }
    *count = cnt;
    return out;
}

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
        int n_impl;
        oq_value **impl = oq_node_implicit_inputs(n, &n_impl, err);
        if (!impl && n_impl)
            return err ? err->status : OQ_ENOMEM;
        for (int k = 0; k < n_impl; k++) {
            if (impl[k]->graph != g)
                continue;
            oq_status st = add_consumer(impl[k], n, err);
            if (st) {
                free(impl);
                return st;
            }
        }
        free(impl);
    }
    return OQ_OK;
}

/* True when v is available without a producer in g: a graph input, a constant,
 * or a value of an enclosing graph. */
static bool value_is_source(const oq_graph *g, const oq_value *v)
{
    if (v->graph != g || v->constant)
        return true;
    for (int j = 0; j < g->n_inputs; j++)
        if (g->inputs[j] == v)
            return true;
    return false;
}

/* Min-heap of node positions (original order), for a stable Kahn sort. */
static void heap_push(int *h, int *n, int x)
{
    int i = (*n)++;
    h[i] = x;
    while (i && h[(i - 1) / 2] > h[i]) {
        int p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static int heap_pop(int *h, int *n)
{
    int top = h[0];
    h[0] = h[--(*n)];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m])
            m = l;
        if (r < *n && h[r] < h[m])
            m = r;
        if (m == i)
            break;
        int t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
    return top;
}

/* Sorts every subgraph held in n's attributes. */
static oq_status sort_subgraphs(oq_node *n, oq_err *err)
{
    for (int a = 0; a < n->n_attrs; a++) {
        oq_attr *at = &n->attrs[a];
        int count = at->type == OQ_ATTR_GRAPH ? (at->g != NULL) : at->type == OQ_ATTR_GRAPHS ? at->n : 0;
        for (int j = 0; j < count; j++) {
            oq_status st = oq_graph_sort(at->type == OQ_ATTR_GRAPH ? at->g : at->graphs[j], err);
            if (st)
                return oq_err_context(err, "in attribute '%s' of node '%s' (%s)", at->name, n->name, n->op_type);
        }
    }
    return OQ_OK;
}

oq_status oq_graph_sort(oq_graph *g, oq_err *err)
{
    oq_status st = OQ_OK;
    for (int i = 0; i < g->n_nodes && !st; i++)
        st = sort_subgraphs(g->nodes[i], err);
    if (st || (st = oq_graph_index(g, err)))
        return st;
    int nn = g->n_nodes;
    int *pending = calloc((size_t)(nn ? nn : 1), sizeof *pending); /* unmet deps per node */
    int *heap = malloc((size_t)(nn ? nn : 1) * sizeof *heap);
    oq_node **sorted = malloc((size_t)(nn ? nn : 1) * sizeof *sorted);
    if (!pending || !heap || !sorted) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++)
        g->nodes[i]->order = i;
    /* validate inputs; dependencies are counted from the consumer lists below */
    for (int i = 0; i < nn && !st; i++) {
        oq_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs && !st; k++) {
            oq_value *v = n->inputs[k];
            if (v && !(v->producer && v->graph == g) && !value_is_source(g, v))
                st = oq_errf(err, OQ_EINVAL, "node '%s' (%s): input '%s' names no value in the graph", n->name,
                             n->op_type, v->name);
        }
    }
    for (int i = 0; i < g->n_outputs && !st; i++) {
        oq_value *v = g->outputs[i];
        if (!v->producer && !value_is_source(g, v))
            st = oq_errf(err, OQ_EINVAL, "graph output '%s' is not written by any node", v->name);
    }
    /* pending[i] = distinct values produced in g that node i reads (explicitly or through a subgraph) */
    for (int i = 0; i < g->n_values && !st; i++) {
        oq_value *v = g->values[i];
        if (v->producer)
            for (int c = 0; c < v->n_consumers; c++)
                pending[v->consumers[c]->order]++;
    }
    if (st)
        goto done;
    int hn = 0, done_n = 0;
    for (int i = 0; i < nn; i++)
        if (!pending[i])
            heap_push(heap, &hn, i);
    while (hn) {
        oq_node *n = g->nodes[heap_pop(heap, &hn)];
        sorted[done_n++] = n;
        for (int k = 0; k < n->n_outputs; k++) {
            oq_value *v = n->outputs[k];
            if (!v)
                continue;
            for (int c = 0; c < v->n_consumers; c++) {
                oq_node *m = v->consumers[c];
                if (--pending[m->order] == 0)
                    heap_push(heap, &hn, m->order);
            }
        }
    }
    if (done_n != nn) {
        const oq_node *stuck = NULL;
        for (int i = 0; i < nn && !stuck; i++)
            if (pending[i] > 0)
                stuck = g->nodes[i];
        st = oq_errf(err, OQ_EINVAL, "the graph has a cycle (node '%s' (%s) depends on its own output)",
                     stuck ? stuck->name : "?", stuck ? stuck->op_type : "?");
        goto done;
    }
    if (nn)
        memcpy(g->nodes, sorted, (size_t)nn * sizeof *sorted);
    for (int i = 0; i < nn; i++)
        g->nodes[i]->order = i;
done:
    free(pending);
    free(heap);
    free(sorted);
    return st;
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

void oq_graph_param_stats(const oq_graph *g, int64_t *n_tensors, int64_t *n_elements, int64_t *n_bytes)
{
    int64_t t = 0, e = 0, b = 0;
    for (int i = 0; i < g->n_values; i++) {
        const oq_tensor *c = g->values[i]->constant;
        if (!c)
            continue;
        int64_t numel = oq_tensor_numel(c);
        t++;
        e += numel;
        b += (int64_t)oq_dtype_storage(c->dtype, numel);
    }
    *n_tensors = t;
    *n_elements = e;
    *n_bytes = b;
}
