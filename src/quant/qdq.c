/* qdq.c: the QDQ format: each quantized node reads
 * DequantizeLinear(QuantizeLinear(x)) and weights stored as int8 with a
 * per-channel DequantizeLinear, its bias as int32 at input scale x weight
 * scale; its output gets a QuantizeLinear/DequantizeLinear pair, the layout
 * runtimes fuse, except a MatMul's or Gemm's graph output (the float sums,
 * as the QOperator form writes them). See rewrite.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rewrite.h"

/* DequantizeLinear(QuantizeLinear(v)) for activation v, shared per value. */
static oq_status qdq_activation(rewriter *r, oq_value *v, oq_value **out)
{
    qinfo *qi;
    oq_value *q, *dq;
    oq_status st = oq_rw_params(r, v, &qi);
    if (st)
        return st;
    if (!qi->twin) { /* for QDQ the twin is the dequantized value */
        oq_value *qin[3] = {v, qi->scale, qi->zp};
        if ((st = oq_rw_value(r, v->name, "_quantized", &q)) || (st = oq_rw_value(r, v->name, "_dequantized", &dq)) ||
            (st = oq_rw_node(r, OQ_OP_QUANTIZE_LINEAR, 3, qin, 1, &q, NULL)))
            return st;
        oq_value *din[3] = {q, qi->scale, qi->zp};
        if ((st = oq_rw_node(r, OQ_OP_DEQUANTIZE_LINEAR, 3, din, 1, &dq, NULL)))
            return st;
        qi->twin = dq;
    }
    *out = qi->twin;
    return OQ_OK;
}

/* A new initializer holding float constant v times factor. */
static oq_status scaled_constant(rewriter *r, const oq_value *v, float factor, oq_value **out)
{
    oq_tensor t;
    oq_status st = oq_tensor_copy(&t, v->constant, r->err);
    if (st)
        return st;
    float *f = t.data;
    for (int64_t i = 0; i < oq_tensor_numel(&t); i++)
        f[i] *= factor;
    char base[512];
    snprintf(base, sizeof base, "%s_scaled", v->name);
    return oq_rw_initializer_from(r, base, &t, out);
}

/* Folds Gemm's alpha into the weights and beta into C, so the quantized
 * bias scale is exactly input scale x weight scale (what fused runtimes assume). */
static oq_status fold_gemm_factors(rewriter *r, oq_node *n)
{
    float alpha = oq_node_attr_float(n, "alpha", 1.0f), beta = oq_node_attr_float(n, "beta", 1.0f);
    oq_value *c = oq_node_input(n, 2), *v;
    oq_status st = OQ_OK;
    if (alpha != 1.0f &&
        ((st = scaled_constant(r, n->inputs[1], alpha, &v)) || (st = oq_node_set_input(n, 1, v, r->err)) ||
         (st = oq_node_set_attr_float(n, "alpha", 1.0f, r->err))))
        return st;
    if (beta != 1.0f && c &&
        ((st = scaled_constant(r, c, beta, &v)) || (st = oq_node_set_input(n, 2, v, r->err)) ||
         (st = oq_node_set_attr_float(n, "beta", 1.0f, r->err))))
        return st;
    return OQ_OK;
}

/* Float bias b (a row, named after `name`) at x_scale x the weight scales, as
 * an int32 constant (*bq) behind a DequantizeLinear (*out; along its last
 * axis, zero point 0 left out) whose scale (*bsv) is that product. */
static oq_status qdq_bias(rewriter *r, const oq_tensor *b, const char *name, float x_scale, const qweight *qw,
                          oq_value **bq, oq_value **bsv, oq_value **out)
{
    oq_tensor t, bs;
    char base[512];
    oq_status st = oq_quantize_bias(&t, b, x_scale, &qw->wq.scales, r->err);
    if (st)
        return st;
    if ((st = oq_tensor_copy(&bs, &qw->wq.scales, r->err))) {
        oq_tensor_release(&t);
        return st;
    }
    for (int64_t j = 0; j < oq_tensor_numel(&bs); j++)
        ((float *)bs.data)[j] *= x_scale;
    snprintf(base, sizeof base, "%s_quantized", name);
    if ((st = oq_rw_initializer_from(r, base, &t, bq))) {
        oq_tensor_release(&bs);
        return st;
    }
    snprintf(base, sizeof base, "%s_scale", name);
    if ((st = oq_rw_initializer_from(r, base, &bs, bsv)))
        return st;
    return oq_rw_dequantize_constant(r, *bq, *bsv, NULL, b->rank - 1, name, out);
}

/* Node n, which writes y, writes a fresh value instead, and a
 * QuantizeLinear/DequantizeLinear pair at y's parameters writes y from it. */
static oq_status qdq_output(rewriter *r, oq_node *n, oq_value *y)
{
    oq_value *pre, *q;
    qinfo *yi;
    oq_status st;
    if ((st = oq_rw_params(r, y, &yi)) || (st = oq_rw_value(r, y->name, "_float", &pre)) ||
        (st = oq_rw_value(r, y->name, "_quantized", &q)))
        return st;
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] == y)
            oq_node_set_output(n, k, pre);
    oq_value *qin[3] = {pre, yi->scale, yi->zp}, *din[3] = {q, yi->scale, yi->zp};
    if ((st = oq_rw_node(r, OQ_OP_QUANTIZE_LINEAR, 3, qin, 1, &q, NULL)) ||
        (st = oq_rw_node(r, OQ_OP_DEQUANTIZE_LINEAR, 3, din, 1, &y, NULL)))
        return st;
    yi->twin = y; /* already in QDQ form: consumers read it as is */
    return OQ_OK;
}

/* MatMul n of two activations: both inputs (and the output unless float_out) through Q/DQ pairs. */
static oq_status qdq_pair(rewriter *r, oq_node *n, bool float_out)
{
    oq_value *adq, *bdq;
    oq_status st;
    if ((st = qdq_activation(r, n->inputs[0], &adq)) || (st = qdq_activation(r, n->inputs[1], &bdq)) ||
        (st = oq_node_set_input(n, 0, adq, r->err)) || (st = oq_node_set_input(n, 1, bdq, r->err)))
        return st;
    return float_out ? OQ_OK : qdq_output(r, n, n->outputs[0]);
}

/* Node i (n, a Conv, ConvTranspose, MatMul or Gemm): Q/DQ around its input
 * and output (a MatMul's or Gemm's graph output stays float), the weight as
 * int8 behind a DequantizeLinear, its bias (Conv's, Gemm's C, or the constant
 * of the Add after a MatMul that the plan folds) as int32 behind one; with a
 * folded Add the output pair comes after the Add. */
oq_status oq_rw_qdq(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    bool float_out = r->plan->nodes[i].float_out;
    if (r->plan->nodes[i].activation_b)
        return qdq_pair(r, n, float_out);
    bool transposed = n->kind == OQ_OP_CONV_TRANSPOSE, conv = n->kind == OQ_OP_CONV || transposed;
    bool gemm = n->kind == OQ_OP_GEMM;
    /* the axis of output channels: ConvTranspose's weight is [C_in, C_out, k...] (one group) */
    int axis = transposed ? 1 : conv ? 0 : gemm && oq_node_attr_int(n, "transB", 0) ? 0 : 1;
    int k = r->plan->nodes[i].bias;
    oq_node *add = k >= 0 ? r->order[k] : NULL;
    oq_status st;
    if (gemm && (st = fold_gemm_factors(r, n)))
        return st;
    oq_value *x = n->inputs[0], *w = n->inputs[1], *b = conv || gemm ? oq_node_input(n, 2) : NULL;
    int b_slot = 2; /* where the bias is read: n's input 2, or the Add's constant */
    oq_node *b_node = n;
    if (add) {
        b_slot = add->inputs[0] == n->outputs[0] ? 1 : 0;
        b = add->inputs[b_slot];
        b_node = add;
    }
    oq_value *xdq, *wdq, *wzp, *bdq = NULL, *bq = NULL, *bsv = NULL;
    qinfo *xi, *yi;
    qweight *qw;
    float *floors = NULL;
    bool bias_fits = add || (b && b->constant->rank == 1 &&
                             (conv || oq_tensor_numel(b->constant) == w->constant->dims[axis]));
    if ((st = oq_rw_params(r, x, &xi)) ||
        (bias_fits && (st = oq_rw_bias_floors(r, b->constant, xi->p.scale, w->constant->dims[axis], &floors))))
        return st;
    st = oq_rw_weight(r, w, axis, floors, &qw);
    free(floors);
    if (st || (st = qdq_activation(r, x, &xdq)) || (st = oq_rw_weight_zero_points(r, qw, &wzp)) ||
        (st = oq_rw_dequantize_constant(r, qw->q, qw->scale, wzp, axis, w->name, &wdq)) ||
        (st = oq_node_set_input(n, 0, xdq, r->err)) || (st = oq_node_set_input(n, 1, wdq, r->err)))
        return st;
    if (bias_fits && ((st = qdq_bias(r, b->constant, b->name, xi->p.scale, qw, &bq, &bsv, &bdq)) ||
                      (st = oq_node_set_input(b_node, b_slot, bdq, r->err))))
        return st;
    oq_value *y = add ? add->outputs[0] : n->outputs[0];
    if ((!float_out && (st = qdq_output(r, add ? add : n, y))) || (st = oq_rw_params(r, y, &yi)))
        return st;
    /* the float value the output pair stands for: after the folded Add, and
     * after the Relu/Clip whose range the pair has */
    int c = r->plan->nodes[i].clamp;
    if (add || c >= 0) {
        free(rep->output);
        if (!(rep->output = strdup((c >= 0 ? r->order[c]->outputs[0] : y)->name)))
            return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    }
    if (transposed) { /* bias correction has no ConvTranspose layout: not listed */
        oq_rw_report_weight(rep, qw);
        return OQ_OK;
    }
    /* listed for bias correction, which sets a bias from the float node's
     * output; a folded Add comes after it, its constant is bias_after */
    oq_bias_site site = {.op = n, .x = xdq, .x_scale = xi->p.scale, .x_zero_point = xi->p.zero_point, .w = qw->q,
                         .layout = conv ? OQ_WEIGHT_CONV : axis == 0 ? OQ_WEIGHT_NK : OQ_WEIGHT_KN,
                         .channels = qw->q->constant->dims[axis], .out_scale = yi->p.scale, .bias = bq,
                         .bias_int32 = true, .bias_dq = bdq, .bias_dq_scale = bsv};
    if (add && bq && oq_tensor_numel(b->constant) == site.channels && b->constant->dtype == OQ_DTYPE_FLOAT)
        site.bias_after = (float *)b->constant->data; /* copied by oq_rw_bias_site */
    else if (add)
        site.bias = NULL, site.bias_dq = site.bias_dq_scale = NULL;
    if ((st = oq_rw_bias_site(r, site, qw)))
        return st;
    oq_rw_report_weight(rep, qw);
    return OQ_OK;
}
