/* glue.c: float ops between 8-bit ones made cheaper without changing an
 * integer the model computes: hard-swish patterns become one HardSwish node
 * (before planning), and a Mul by a positive scalar next to a
 * (De)QuantizeLinear moves into its scale (after the rewrite). See folds.h. */
#include <math.h>
#include <stdio.h>

#include "quant/folds.h"
#include "quant/match.h"

/* When node a starts a hard-swish of some x, x * Clip(x + 3, 0, 6) / 6 (the
 * division also as * 1/6, or applied to the Clip first) or x * HardSigmoid(x)
 * with alpha 1/6 and beta 1/2, each intermediate value read by the next node
 * alone: its x, the nodes (*n_parts of them) and the value it ends in. */
static oq_value *hard_swish_at(const oq_graph *g, oq_node *a, oq_node **parts, int *n_parts, oq_value **out)
{
    oq_value *x = NULL;
    oq_node *gate = NULL; /* the node whose output is the 0..1 (or 0..6) factor */
    bool six = true;
    *n_parts = 0;
    if (a->kind == OQ_OP_HARD_SIGMOID && a->n_inputs == 1 && a->n_outputs >= 1 && a->outputs[0] &&
        fabsf(oq_node_attr_float(a, "alpha", 0.2f) - 1.0f / 6.0f) <= 1e-6f &&
        oq_node_attr_float(a, "beta", 0.5f) == 0.5f) {
        x = a->inputs[0];
        gate = a;
        six = false;
        parts[(*n_parts)++] = a;
    } else if (a->kind == OQ_OP_ADD && a->n_inputs == 2) {
        for (int k = 0; k < 2 && !x; k++)
            if (oq_is_scalar_value(oq_other_operand(a, OQ_OP_ADD, a->inputs[k]), a->inputs[k], 3.0f))
                x = a->inputs[k];
        oq_node *clip = x ? oq_sole_reader(g, a->outputs[0]) : NULL;
        if (!clip || clip->kind != OQ_OP_CLIP || clip->inputs[0] != a->outputs[0] || !clip->outputs[0])
            return NULL;
        bool bounds = clip->n_inputs == 3 /* from opset 11; attributes before (seen by calibration) */
                          ? oq_is_scalar_value(clip->inputs[1], x, 0.0f) && oq_is_scalar_value(clip->inputs[2], x, 6.0f)
                          : clip->n_inputs == 1 && oq_node_attr_float(clip, "min", -1.0f) == 0.0f &&
                                oq_node_attr_float(clip, "max", -1.0f) == 6.0f;
        if (!bounds)
            return NULL;
        gate = clip;
        parts[(*n_parts)++] = a;
        parts[(*n_parts)++] = clip;
        /* Clip(..) / 6 first, then the product */
        oq_node *div = oq_sole_reader(g, clip->outputs[0]);
        oq_value *k = oq_other_operand(div, OQ_OP_DIV, clip->outputs[0]);
        if (k && oq_is_scalar_value(k, x, 6.0f)) {
            gate = div;
            six = false;
            parts[(*n_parts)++] = div;
        }
    }
    if (!gate || !x)
        return NULL;
    oq_node *mul = oq_sole_reader(g, gate->outputs[0]);
    if (oq_other_operand(mul, OQ_OP_MUL, gate->outputs[0]) != x)
        return NULL;
    parts[(*n_parts)++] = mul;
    *out = mul->outputs[0];
    if (six) {
        oq_node *div = oq_sole_reader(g, mul->outputs[0]);
        oq_value *k = oq_other_operand(div, OQ_OP_DIV, mul->outputs[0]);
        bool by_div = k && oq_is_scalar_value(k, x, 6.0f);
        if (!by_div &&
            !((k = oq_other_operand(div, OQ_OP_MUL, mul->outputs[0])) && oq_is_scalar_value(k, x, 1.0f / 6.0f)))
            return NULL;
        parts[(*n_parts)++] = div;
        *out = div->outputs[0];
    }
    return x;
}

oq_status oq_fuse_hard_swish(oq_model *m, int64_t *opset_to, int *n_fused, oq_err *err)
{
    oq_graph *g = m->graph;
    oq_node *parts[6];
    oq_value *out;
    int n_parts, found = 0;
    for (int i = 0; i < g->n_nodes; i++)
        found += hard_swish_at(g, g->nodes[i], parts, &n_parts, &out) != NULL;
    if (!found)
        return OQ_OK;
    if (oq_model_opset(m, "") < 14) {
        oq_err quiet = {0};
        if (oq_model_upgrade_opset(m, 14, &quiet))
            return OQ_OK;
        *opset_to = 14;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        oq_value *x = hard_swish_at(g, g->nodes[i], parts, &n_parts, &out);
        if (!x)
            continue;
        for (int k = 0; k < n_parts; k++)
            oq_graph_remove_node(g, parts[k]);
        char name[512];
        snprintf(name, sizeof name, "%s_HardSwish", out->name);
        if (!oq_graph_add_op(g, OQ_OP_HARD_SWISH, name, 1, &x, 1, &out, err))
            return err->status;
        (*n_fused)++;
        i = -1; /* the node list changed: start over (each pass removes a pattern) */
    }
    return OQ_OK;
}

/* The one-element float scale of (De)QuantizeLinear n, or NAN. */
static float qdq_scale(const oq_node *n)
{
    const oq_value *s = oq_node_input(n, 1);
    return n->n_inputs >= 2 && oq_is_float_constant(s) && oq_tensor_numel(s->constant) == 1
               ? ((const float *)s->constant->data)[0]
               : NAN;
}

static oq_status scalar(oq_graph *g, const char *base, float value, oq_value **out, oq_err *err)
{
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, 0, NULL, err);
    if (!t)
        return err->status;
    *(float *)t->data = value;
    return oq_graph_add_initializer(g, base, t, out, err);
}

/* Moves positive factor c of Mul node m into the (De)QuantizeLinear next to
 * it, when the integers stay the same:
 *   DequantizeLinear(q, s, z) -> Mul(c)          =>  DequantizeLinear(q, s * c, z)
 *   Mul(x, c) -> QuantizeLinear(s, z)            =>  QuantizeLinear(x, s / c, z)
 *   Mul(x, c) -> Add(b) -> QuantizeLinear(s, z)  =>  Add(x, b / c) -> QuantizeLinear(s / c, z)
 * each value in between read by the next node alone. *folded says whether m is gone. */
static oq_status fold_factor(oq_graph *g, oq_node *m, bool *folded, oq_err *err)
{
    *folded = false;
    if (m->kind != OQ_OP_MUL || m->n_inputs != 2 || m->n_outputs != 1 || !m->outputs[0])
        return OQ_OK;
    for (int xi = 0; xi < 2; xi++) {
        oq_value *x = m->inputs[xi], *y = m->outputs[0], *sv, *bv = NULL;
        float c = oq_scalar_operand(m->inputs[1 - xi], x);
        if (!(c > 0.0f) || !isfinite(c) || m->inputs[1 - xi] == x)
            continue;
        oq_node *dq = x->producer, *next = oq_sole_reader(g, y), *q = NULL, *add = NULL;
        float s = NAN, b = NAN;
        char base[512];
        oq_status st;
        if (dq && dq->kind == OQ_OP_DEQUANTIZE_LINEAR && oq_sole_reader(g, x) == m && isfinite(s = qdq_scale(dq) * c) &&
            s > 0.0f) {
            snprintf(base, sizeof base, "%s_scale", y->name);
            if ((st = scalar(g, base, s, &sv, err)) || (st = oq_node_set_input(dq, 1, sv, err)))
                return st;
            oq_graph_remove_node(g, m);
            oq_node_set_output(dq, 0, y);
            *folded = true;
            return OQ_OK;
        }
        oq_value *shift = oq_other_operand(next, OQ_OP_ADD, y);
        oq_node *after = shift ? oq_sole_reader(g, next->outputs[0]) : NULL;
        if (next && next->kind == OQ_OP_QUANTIZE_LINEAR && next->inputs[0] == y)
            q = next;
        else if (isfinite(b = oq_scalar_operand(shift, x)) && after && after->kind == OQ_OP_QUANTIZE_LINEAR &&
                 after->inputs[0] == next->outputs[0])
            add = next, q = after;
        if (!q || !isfinite(s = qdq_scale(q) / c) || !(s > 0.0f))
            continue;
        snprintf(base, sizeof base, "%s_scale", q->outputs[0]->name);
        if ((st = scalar(g, base, s, &sv, err)))
            return st;
        if (add) {
            snprintf(base, sizeof base, "%s_shift", add->outputs[0]->name);
            if ((st = scalar(g, base, b / c, &bv, err)))
                return st;
        }
        if ((st = oq_node_set_input(q, 1, sv, err)) ||
            (add && ((st = oq_node_set_input(add, 0, x, err)) || (st = oq_node_set_input(add, 1, bv, err)))) ||
            (!add && (st = oq_node_set_input(q, 0, x, err))))
            return st;
        oq_graph_remove_node(g, m);
        *folded = true;
        return OQ_OK;
    }
    return OQ_OK;
}

oq_status oq_fold_factors(oq_graph *g, int *n_folded, oq_err *err)
{
    for (int i = 0; i < g->n_nodes;) {
        bool folded;
        oq_status st = fold_factor(g, g->nodes[i], &folded, err);
        if (st)
            return st;
        if (folded) {
            (*n_folded)++;
            continue; /* the same index holds the next node */
        }
        i++;
    }
    return OQ_OK;
}
