/* affine.c: per-channel affine ops folded into the op before them. An Add of
 * a per-channel constant after a Conv becomes the Conv's bias; an
 * inference-mode BatchNormalization after a Conv or Gemm scales that op's
 * weight and replaces its bias; a MatMul by a constant weight followed by an
 * Add of a constant row becomes one Gemm. In each case the op before writes
 * the folded op's output, so the surviving value keeps its name, and the
 * folded op's input value (read by nothing else) disappears. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepare/prepare.h"

/* One float per channel: a 1-D constant [ch], or NULL. */
static const float *channel_constant(const oq_graph *g, const oq_value *v, int64_t ch)
{
    const oq_tensor *t = prep_float_constant(g, v);
    return t && t->rank == 1 && t->dims[0] == ch ? t->data : NULL;
}

/* A new float initializer [ch] named after base (see prep_new_constant); its data in *data. */
static oq_value *new_channel_constant(prep_ctx *c, const char *base, int64_t ch, float **data)
{
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, 1, &ch, c->err);
    *data = t ? t->data : NULL;
    return t ? prep_new_constant(c, base, t) : NULL;
}

/* ---- BatchNormalization into Conv or Gemm ------------------------------------------ */

/* The Conv or Gemm that alone feeds inference-mode BatchNormalization bn and
 * can take it in (constant float weight; bias absent or one value per
 * channel), or NULL; *ch receives the channel count. */
static oq_node *batchnorm_target(const oq_graph *g, const oq_node *bn, int64_t *ch)
{
    const oq_value *x = oq_node_input(bn, 0);
    oq_node *p = x ? x->producer : NULL;
    if (!p || bn->n_inputs != 5 || !bn->n_outputs || !bn->outputs[0] || prep_sole_reader(g, x) != bn ||
        oq_node_attr_int(bn, "training_mode", 0) || (bn->opset < 9 && oq_node_attr_int(bn, "spatial", 1) != 1) ||
        (bn->opset < 7 && !oq_node_attr_int(bn, "is_test", 0)))
        return NULL;
    for (int k = 1; k < bn->n_outputs; k++)
        if (bn->outputs[k] && (bn->outputs[k]->n_consumers || prep_is_output(g, bn->outputs[k])))
            return NULL;
    const oq_tensor *w = prep_float_constant(g, oq_node_input(p, 1));
    const oq_value *b = oq_node_input(p, 2);
    oq_op_kind op = p->kind;
    if (!w || p->n_outputs < 1 || p->outputs[0] != x)
        return NULL;
    if (op == OQ_OP_CONV) {
        if (w->rank < 3)
            return NULL;
        *ch = w->dims[0];
        if (b && !channel_constant(g, b, *ch))
            return NULL;
    } else if (op == OQ_OP_GEMM) {
        if (w->rank != 2)
            return NULL;
        *ch = w->dims[oq_node_attr_int(p, "transB", 0) ? 0 : 1];
        const oq_tensor *bt = prep_float_constant(g, b);
        if (b && (!bt || bt->rank > 2 || (oq_tensor_numel(bt) != 1 && (oq_tensor_numel(bt) != *ch ||
                                                                        bt->dims[bt->rank - 1] != *ch))))
            return NULL;
    } else {
        return NULL;
    }
    for (int k = 1; k < 5; k++)
        if (!channel_constant(g, bn->inputs[k], *ch))
            return NULL;
    return p;
}

/* Folds bn into its Conv or Gemm p (see batchnorm_target): with s = gamma /
 * sqrt(var + epsilon), W[c] * s[c] and (B[c] - mean[c]) * s[c] + beta[c],
 * written exactly as the quantizer's own fold computes them (src/quant/rewrite.c),
 * so both give the same bits; for a Gemm, B is beta_gemm * C and beta becomes 1. */
static oq_status fold_batchnorm(prep_ctx *c, oq_node *bn, bool *folded)
{
    int64_t ch;
    oq_node *p = batchnorm_target(c->g, bn, &ch);
    *folded = false;
    if (!p)
        return OQ_OK;
    bool conv = p->kind == OQ_OP_CONV, trans_b = oq_node_attr_int(p, "transB", 0) != 0;
    oq_value *y = bn->outputs[0];
    const oq_value *w = oq_node_input(p, 1), *b = oq_node_input(p, 2);
    const float *gamma = channel_constant(c->g, bn->inputs[1], ch), *beta = channel_constant(c->g, bn->inputs[2], ch),
                *mean = channel_constant(c->g, bn->inputs[3], ch), *var = channel_constant(c->g, bn->inputs[4], ch);
    const oq_tensor *bt = b ? b->constant : NULL;
    float eps = oq_node_attr_float(bn, "epsilon", 1e-5f), gemm_beta = conv ? 1.0f : oq_node_attr_float(p, "beta", 1.0f);
    int64_t inner = oq_tensor_numel(w->constant) / (ch ? ch : 1);
    oq_tensor wt;
    if (oq_tensor_copy(&wt, w->constant, c->err))
        return c->err->status;
    char base[512];
    snprintf(base, sizeof base, "%s_bn_folded", w->name);
    oq_value *wv = prep_new_constant(c, base, prep_box(&wt, c->err)), *bv = NULL;
    float *wd = wv ? wv->constant->data : NULL, *bd = NULL;
    snprintf(base, sizeof base, "%s_bn_bias", y->name);
    if (!wv || !(bv = new_channel_constant(c, base, ch, &bd)))
        return c->err->status;
    for (int64_t k = 0; k < ch; k++) {
        float sc = gamma[k] / sqrtf(var[k] + eps);
        if (conv || trans_b) /* rows of W are channels */
            for (int64_t i = 0; i < inner; i++)
                wd[k * inner + i] *= sc;
        else /* columns are */
            for (int64_t i = 0; i < inner; i++)
                wd[i * ch + k] *= sc;
        float bias = 0.0f;
        if (bt)
            bias = ((const float *)bt->data)[oq_tensor_numel(bt) == 1 ? 0 : k];
        if (!conv && bt && gemm_beta != 1.0f)
            bias *= gemm_beta;
        bd[k] = (bias - mean[k]) * sc + beta[k];
    }
    oq_status st;
    if ((st = oq_node_set_input(p, 1, wv, c->err)) || (st = oq_node_set_input(p, 2, bv, c->err)))
        return st;
    if (!conv)
        oq_node_remove_attr(p, "beta");
    oq_graph_remove_node(c->g, bn);
    oq_node_set_output(p, 0, y);
    *folded = true;
    return OQ_OK;
}

/* ---- Conv + Add -> Conv with bias ----------------------------------------------- */

/* The values constant k adds to each of ch channels of a rank-r Conv output,
 * without changing its shape: one float per channel (k of shape [ch, 1, ..]
 * aligned on axis 1) or one for all (*same set). NULL when k is neither. */
static const float *channel_addend(const oq_graph *g, const oq_value *k, int r, int64_t ch, bool *same)
{
    const oq_tensor *t = prep_float_constant(g, k);
    if (!t || t->rank > r)
        return NULL;
    *same = oq_tensor_numel(t) == 1;
    if (*same)
        return t->data;
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] != (r - t->rank + d == 1 ? ch : 1))
            return NULL;
    return t->data;
}

/* Folds Add a into the Conv before it when a adds a per-channel constant to
 * that Conv's output alone: the Conv's bias becomes B + k and the Conv writes
 * a's output. */
static oq_status fold_conv_add(prep_ctx *c, oq_node *a, bool *folded)
{
    *folded = false;
    if (a->opset < 7 || a->n_inputs != 2 || a->n_outputs != 1 || !a->outputs[0] || !a->inputs[0] || !a->inputs[1])
        return OQ_OK; /* before opset 7, Add broadcast by its axis attribute, not numpy's rule */
    int side = a->inputs[0]->producer && a->inputs[0]->producer->kind == OQ_OP_CONV ? 0 : 1;
    oq_value *y = a->inputs[side], *z = a->outputs[0];
    oq_node *conv = y->producer;
    const oq_tensor *w = conv ? prep_float_constant(c->g, oq_node_input(conv, 1)) : NULL;
    if (!w || prep_kind(conv) != OQ_OP_CONV || w->rank < 3 || conv->outputs[0] != y ||
        prep_sole_reader(c->g, y) != a)
        return OQ_OK;
    int64_t ch = w->dims[0];
    const oq_value *b = oq_node_input(conv, 2);
    const float *bias = b ? channel_constant(c->g, b, ch) : NULL;
    bool same;
    const float *k = channel_addend(c->g, a->inputs[1 - side], w->rank, ch, &same);
    if (!k || (b && !bias))
        return OQ_OK;
    char base[512];
    snprintf(base, sizeof base, "%s_bias", z->name);
    float *bd;
    oq_value *bv = new_channel_constant(c, base, ch, &bd);
    if (!bv)
        return c->err->status;
    for (int64_t i = 0; i < ch; i++)
        bd[i] = bias ? bias[i] + k[same ? 0 : i] : k[same ? 0 : i];
    oq_status st = oq_node_set_input(conv, 2, bv, c->err);
    if (st)
        return st;
    oq_graph_remove_node(c->g, a);
    oq_node_set_output(conv, 0, z);
    *folded = true;
    return OQ_OK;
}

oq_status prep_fold_into_producers(prep_ctx *c)
{
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < c->g->n_nodes;) {
        oq_node *n = c->g->nodes[i];
        oq_op_kind op = n->kind;
        bool folded = false;
        if (op == OQ_OP_BATCH_NORMALIZATION)
            st = fold_batchnorm(c, n, &folded);
        else if (op == OQ_OP_ADD)
            st = fold_conv_add(c, n, &folded);
        if (st || !folded) {
            i++;
            continue;
        }
        /* n is gone: the same index holds the next node */
        c->r->counts[op == OQ_OP_BATCH_NORMALIZATION ? OQ_PREPARE_BATCHNORMS_FOLDED : OQ_PREPARE_CONV_ADDS_FOLDED]++;
    }
    return st;
}

/* ---- MatMul + Add -> Gemm ------------------------------------------------------- */

/* Whether v is known to be 2-D whatever is fed: a graph input declared so, a
 * constant, the output of an op whose output is always 2-D, or of a chain of
 * shape-keeping unary ops over one of those. */
static bool is_2d(const oq_graph *g, const oq_value *v)
{
    for (int depth = 0; depth < 64; depth++) {
        if (v->constant)
            return v->constant->rank == 2;
        if (prep_is_input(g, v))
            return v->kind == OQ_TYPE_TENSOR && v->rank == 2;
        const oq_node *p = v->producer;
        const oq_value *shape = p ? oq_node_input(p, 1) : NULL;
        switch (prep_kind(p)) {
        case OQ_OP_FLATTEN:
        case OQ_OP_GEMM: return true;
        case OQ_OP_RESHAPE:
            return prep_is_constant(g, shape) && shape->constant->rank == 1 && shape->constant->dims[0] == 2;
        case OQ_OP_ABS: case OQ_OP_BATCH_NORMALIZATION: case OQ_OP_CEIL: case OQ_OP_CLIP: case OQ_OP_DROPOUT:
        case OQ_OP_ERF: case OQ_OP_EXP: case OQ_OP_FLOOR: case OQ_OP_IDENTITY: case OQ_OP_LOG:
        case OQ_OP_NEG: case OQ_OP_RECIPROCAL: case OQ_OP_RELU: case OQ_OP_ROUND: case OQ_OP_SIGMOID:
        case OQ_OP_SIGN: case OQ_OP_SQRT: case OQ_OP_TANH:
            if (!p->n_inputs || !p->inputs[0])
                return false;
            v = p->inputs[0];
            break;
        default: return false;
        }
    }
    return false;
}

/* Makes MatMul m one Gemm with the Add after it when m multiplies a 2-D input
 * by a constant [K, N] weight and the Add, its output's only reader, adds a
 * constant [N] or [1, N] row: the same sum of products plus the same bias. */
static oq_status matmul_add_to_gemm(prep_ctx *c, oq_node *m, bool *made)
{
    *made = false;
    oq_value *a = oq_node_input(m, 0), *y = m->n_outputs == 1 ? m->outputs[0] : NULL;
    const oq_tensor *w = prep_float_constant(c->g, oq_node_input(m, 1));
    oq_node *add = prep_sole_reader(c->g, y);
    if (m->opset < 7 || m->n_inputs != 2 || !a || !y || !w || w->rank != 2 || !is_2d(c->g, a) ||
        prep_kind(add) != OQ_OP_ADD || add->n_inputs != 2 || add->n_outputs != 1 || !add->outputs[0])
        return OQ_OK;
    oq_value *bias = add->inputs[add->inputs[0] == y ? 1 : 0], *z = add->outputs[0];
    const oq_tensor *bt = prep_float_constant(c->g, bias);
    int64_t n = w->dims[1];
    if (!bt || oq_tensor_numel(bt) != n || bt->rank < 1 || bt->rank > 2 || bt->dims[bt->rank - 1] != n)
        return OQ_OK;
    oq_status st;
    if ((st = oq_node_set_input(m, 2, bias, c->err)) || (st = oq_node_set_op_type(m, "Gemm", c->err)))
        return st;
    oq_graph_remove_node(c->g, add);
    oq_node_set_output(m, 0, z);
    *made = true;
    return OQ_OK;
}

oq_status prep_matmul_add_to_gemm(prep_ctx *c)
{
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < c->g->n_nodes; i++) { /* the Add that goes comes after n */
        oq_node *n = c->g->nodes[i];
        bool made = false;
        if (n->kind == OQ_OP_MATMUL && !(st = matmul_add_to_gemm(c, n, &made)) && made)
            c->r->counts[OQ_PREPARE_MATMUL_ADDS_TO_GEMM]++;
    }
    return st;
}
