/* fold_bn.c: Conv + BatchNormalization folding: an inference BatchNormalization
 * that alone reads a Conv's output becomes part of that Conv's weights and
 * bias, so that no float op sits between the Conv and its readers once it is
 * quantized. See folds.h. */
#include <math.h>
#include <stdio.h>

#include "quant/folds.h"
#include "quant/match.h"

/* Float constant 1-D of n elements, or NULL. */
static const float *channel_constant(const oq_value *v, int64_t n)
{
    if (!oq_is_float_constant(v) || v->constant->rank != 1 || v->constant->dims[0] != n)
        return NULL;
    return v->constant->data;
}

/* Whether inference-mode BatchNormalization bn can fold into the Conv that
 * alone feeds it (stored in *conv): constant weight, and bias and statistics
 * with one value per output channel. The graph decides, not the options. */
static bool batchnorm_folds(const oq_graph *g, const oq_node *bn, oq_node **conv)
{
    const oq_value *x = bn->n_inputs ? bn->inputs[0] : NULL;
    *conv = x ? x->producer : NULL;
    if (bn->kind != OQ_OP_BATCH_NORMALIZATION || bn->n_inputs != 5 || !bn->n_outputs || !bn->outputs[0] ||
        oq_node_attr_int(bn, "training_mode", 0) || !*conv || (*conv)->kind != OQ_OP_CONV ||
        oq_sole_reader(g, x) != bn)
        return false;
    for (int k = 1; k < bn->n_outputs; k++)
        if (bn->outputs[k] && (bn->outputs[k]->n_consumers || oq_is_graph_output(g, bn->outputs[k])))
            return false;
    const oq_value *w = oq_node_input(*conv, 1), *b = oq_node_input(*conv, 2);
    if (!oq_is_float_constant(w) || w->constant->rank < 3)
        return false;
    int64_t ch = w->constant->dims[0];
    for (int k = 1; k < 5; k++)
        if (!channel_constant(bn->inputs[k], ch))
            return false;
    return !b || channel_constant(b, ch);
}

/* Folds bn into its Conv (see batchnorm_folds): W[c] * s[c] and (B[c] -
 * mean[c]) * s[c] + beta[c] with s = gamma / sqrt(var + epsilon), as new
 * initializers; the Conv then writes bn's output and bn goes. */
static oq_status fold(oq_graph *g, oq_node *bn, oq_node *conv, oq_err *err)
{
    oq_value *y = bn->outputs[0], *wv, *bv;
    const oq_value *w = oq_node_input(conv, 1), *b = oq_node_input(conv, 2);
    int64_t ch = w->constant->dims[0], inner = oq_tensor_numel(w->constant) / (ch ? ch : 1);
    const float *gamma = channel_constant(bn->inputs[1], ch), *beta = channel_constant(bn->inputs[2], ch),
                *mean = channel_constant(bn->inputs[3], ch), *var = channel_constant(bn->inputs[4], ch),
                *bias = b ? channel_constant(b, ch) : NULL;
    float eps = oq_node_attr_float(bn, "epsilon", 1e-5f);
    oq_tensor *wt = oq_tensor_create(OQ_DTYPE_FLOAT, w->constant->rank, w->constant->dims, err);
    oq_tensor *bt = wt ? oq_tensor_create(OQ_DTYPE_FLOAT, 1, &ch, err) : NULL;
    if (!bt) {
        oq_tensor_destroy(wt);
        return err->status;
    }
    const float *w0 = w->constant->data;
    float *w1 = wt->data, *b1 = bt->data;
    for (int64_t c = 0; c < ch; c++) {
        float sc = gamma[c] / sqrtf(var[c] + eps);
        for (int64_t i = 0; i < inner; i++)
            w1[c * inner + i] = w0[c * inner + i] * sc;
        b1[c] = ((bias ? bias[c] : 0.0f) - mean[c]) * sc + beta[c];
    }
    char base[512];
    snprintf(base, sizeof base, "%s_bn_folded", w->name);
    oq_status st = oq_graph_add_initializer(g, base, wt, &wv, err);
    if (st) {
        oq_tensor_destroy(bt);
        return st;
    }
    snprintf(base, sizeof base, "%s_bn_bias", y->name);
    if ((st = oq_graph_add_initializer(g, base, bt, &bv, err)) || (st = oq_node_set_input(conv, 1, wv, err)) ||
        (st = oq_node_set_input(conv, 2, bv, err)))
        return st;
    oq_graph_remove_node(g, bn);
    oq_node_set_output(conv, 0, y);
    return OQ_OK;
}

oq_status oq_fold_batchnorms(oq_graph *g, const oq_quant_options *o, int *n_folded, oq_err *err)
{
    bool convs = oq_quant_selects(o, OQ_OP_CONV);
    for (int i = 0; i < g->n_nodes;) {
        oq_node *bn = g->nodes[i], *conv;
        if (convs && batchnorm_folds(g, bn, &conv) && !oq_quant_excludes(o, conv)) {
            oq_status st = fold(g, bn, conv, err);
            if (st)
                return st;
            (*n_folded)++;
            continue; /* bn is gone: the same index holds the next node */
        }
        i++;
    }
    return OQ_OK;
}
