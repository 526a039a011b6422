/* cleanup.c: the passes that only remove things: weight inputs of old models
 * made constant, Identity and inference Dropout bypassed, and whatever nothing
 * reads (nodes, initializers, declarations of vanished values) dropped. */
#include <stdlib.h>

#include "prepare/prepare.h"

/* ---- IR < 4 weight inputs ---------------------------------------------------------- */

/* Until IR 4 every initializer had to be listed as a graph input, so old
 * exporters (CNTK, early PyTorch) made every weight an input a user could in
 * theory feed. They are weights: they leave the input list and stay
 * initializers. (oq_prepare_release_inputs drops those a caller feeds first.) */
oq_status prep_inputs_to_constants(prep_ctx *c)
{
    oq_graph *g = c->g;
    if (c->m->ir_version >= 4)
        return OQ_OK;
    int keep = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        oq_value *v = g->inputs[i];
        if (v->constant && v->graph == g) {
            c->r->counts[OQ_PREPARE_INPUTS_MADE_CONSTANT]++;
            continue;
        }
        g->inputs[keep++] = v;
    }
    g->n_inputs = keep;
    return OQ_OK;
}

/* ---- Identity and Dropout ---------------------------------------------------------- */

/* Whether Dropout n passes its input through unchanged and nothing reads its mask. */
static bool dropout_is_identity(const oq_graph *g, const oq_node *n)
{
    const oq_value *mask = n->n_outputs > 1 ? n->outputs[1] : NULL;
    if (mask && (mask->n_consumers || prep_is_output(g, mask)))
        return false;
    if (n->opset >= 12) { /* training_mode is input 2, default false */
        const oq_value *t = oq_node_input(n, 2);
        if (!t)
            return true;
        return prep_is_constant(g, t) && (oq_tensor_numel(t->constant) == 0 || !oq_tensor_get_i64(t->constant, 0));
    }
    return n->opset >= 7 || oq_node_attr_int(n, "is_test", 0) != 0;
}

/* Removes pass-through node n (output 0 equals input 0) when that keeps every
 * graph output's name: readers of its output read its input instead or, when
 * the output is a graph output, the node before it writes that output
 * directly. *removed says whether n went. */
static oq_status bypass(oq_graph *g, oq_node *n, bool *removed, oq_err *err)
{
    oq_value *x = oq_node_input(n, 0), *y = n->n_outputs ? n->outputs[0] : NULL;
    *removed = false;
    if (!x || !y || prep_read_by_subgraph(g, y))
        return OQ_OK;
    if (!prep_is_output(g, y)) {
        oq_status st = oq_graph_replace_uses(g, y, x, err);
        if (st)
            return st;
        oq_graph_remove_node(g, n);
        *removed = true;
        return OQ_OK;
    }
    oq_node *p = x->producer;
    if (!p || x->graph != g || x->constant || x->n_consumers != 1 || prep_is_output(g, x) ||
        prep_read_by_subgraph(g, x))
        return OQ_OK;
    oq_graph_remove_node(g, n);
    for (int k = 0; k < p->n_outputs; k++)
        if (p->outputs[k] == x)
            oq_node_set_output(p, k, y);
    *removed = true;
    return OQ_OK;
}

oq_status prep_remove_identities(prep_ctx *c)
{
    oq_graph *g = c->g;
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < g->n_nodes;) {
        oq_node *n = g->nodes[i];
        bool removed = false;
        if ((n->kind == OQ_OP_IDENTITY || (n->kind == OQ_OP_DROPOUT && dropout_is_identity(g, n))) &&
            (st = bypass(g, n, &removed, c->err)))
            break;
        if (removed) /* the same index now holds the next node */
            c->r->counts[OQ_PREPARE_IDENTITIES_REMOVED]++;
        else
            i++;
    }
    return st;
}

/* ---- dead code ---------------------------------------------------------------------- */

/* Marks the values of g that node n reads, directly or from inside its subgraphs. */
static oq_status mark_inputs(const oq_graph *g, const oq_node *n, bool *needed, oq_err *err)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] && n->inputs[k]->graph == g)
            needed[n->inputs[k]->id] = true;
    int count;
    oq_value **impl = oq_node_implicit_inputs(n, &count, err);
    if (!impl && count)
        return err->status;
    for (int k = 0; k < count; k++)
        if (impl[k]->graph == g)
            needed[impl[k]->id] = true;
    free(impl);
    return OQ_OK;
}

/* Nodes no graph output depends on go (ONNX ops have no side effects), then
 * constants nothing reads, then the declared types of values that vanished. */
oq_status prep_remove_dead(prep_ctx *c)
{
    oq_graph *g = c->g;
    oq_status st = OQ_OK;
    bool *needed = calloc((size_t)g->n_values + 1, sizeof *needed);
    if (!needed)
        return oq_errf(c->err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i]->graph == g)
            needed[g->outputs[i]->id] = true;
    for (int i = g->n_nodes - 1; i >= 0 && !st; i--) { /* readers come after writers */
        oq_node *n = g->nodes[i];
        bool live = false;
        for (int k = 0; k < n->n_outputs && !live; k++)
            live = n->outputs[k] && needed[n->outputs[k]->id];
        if (live) {
            st = mark_inputs(g, n, needed, c->err);
        } else {
            oq_graph_remove_node(g, n);
            c->r->counts[OQ_PREPARE_DEAD_NODES_REMOVED]++;
        }
    }
    free(needed);
    if (st)
        return st;
    for (int i = 0; i < g->n_values; i++) {
        oq_value *v = g->values[i];
        if (v->producer || v->n_consumers || prep_is_output(g, v) || prep_is_input(g, v))
            continue;
        if (v->constant) {
            c->r->counts[OQ_PREPARE_INITIALIZERS_REMOVED] += v->is_initializer;
            oq_tensor_destroy(v->constant);
            v->constant = NULL;
            v->is_initializer = false;
        }
        v->kind = OQ_TYPE_NONE; /* no value_info for a value that is gone */
    }
    return OQ_OK;
}
