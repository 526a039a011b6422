/* graph_order.c: the graph's structure beyond the links: the values a node
 * reads through its subgraphs, the topological sort and parameter counts
 * (see oq_graph.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

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
            if (oq_grow_array((void **)out, cap, *n + 1, sizeof **out))
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
            if (oq_grow_array((void **)out, cap, *n + 1, sizeof **out))
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
