/* qoperator.c: the QOperator format's actions: Conv and MatMul become
 * QLinearConv and QLinearMatMul on 8-bit twins, Gemm becomes MatMulInteger
 * plus an int32 bias Add, a Cast and a per-column rescale (standard ops that
 * ONNX Runtime's CPU provider runs, integer-exact), data-movement ops run on
 * the twins, and DequantizeLinear restores float values where float readers
 * remain. See rewrite.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/match.h"
#include "quant/rewrite.h"

oq_status oq_rw_qlinear(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    bool conv = n->kind == OQ_OP_CONV;
    int k = r->plan->nodes[i].clamp;
    oq_node *act = k >= 0 ? r->order[k] : NULL;
    oq_value *x = n->inputs[0], *w = n->inputs[1], *b = conv ? oq_node_input(n, 2) : NULL;
    oq_value *y = act ? act->outputs[0] : n->outputs[0];
    int axis = conv ? 0 : 1;
    qinfo *xi, *yi;
    qweight *qw;
    oq_value *xq, *bq = NULL, *yq;
    float *floors = NULL;
    oq_status st = oq_rw_params(r, x, &xi);
    if (!st)
        st = oq_rw_bias_floors(r, b, 1.0f, xi->p.scale, w->constant->dims[axis], &floors);
    if (!st)
        st = oq_rw_weight(r, w, axis, floors, &qw);
    free(floors);
    if (st || (st = oq_rw_quantized(r, x, &xq)) || (st = oq_rw_params(r, x, &xi)) || (st = oq_rw_params(r, y, &yi)) ||
        (b && (st = oq_rw_bias(r, b, xi->p.scale, qw, &bq))) || (st = oq_rw_value(r, y->name, "_quantized", &yq)))
        return st;
    oq_value *in[9] = {xq, xi->scale, xi->zp, qw->q, qw->scale, qw->zp, yi->scale, yi->zp, bq};
    oq_node *q;
    if ((st = oq_rw_node(r, conv ? OQ_OP_QLINEAR_CONV : OQ_OP_QLINEAR_MATMUL, conv && bq ? 9 : 8, in, 1, &yq, &q)) ||
        (st = oq_rw_inherit_name(r, q, n)) || (conv && (st = oq_rw_copy_conv_attrs(r, q, n))) ||
        (st = oq_rw_twin_output(r, rep, y, yq)))
        return st;
    oq_bias_site site = {.op = q, .x = xq, .x_scale = xi->p.scale, .x_zero_point = xi->p.zero_point, .w = qw->q,
                         .layout = conv ? OQ_WEIGHT_CONV : OQ_WEIGHT_KN, .channels = w->constant->dims[axis],
                         .out_scale = yi->p.scale, .bias = bq, .bias_int32 = true};
    if ((st = oq_rw_bias_site(r, site, qw)))
        return st;
    oq_rw_report_weight(rep, qw);
    if (act)
        oq_graph_remove_node(r->g, act);
    oq_graph_remove_node(r->g, n);
    return OQ_OK;
}

oq_status oq_rw_integer_gemm(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    oq_value *c = oq_node_input(n, 2), *y = n->outputs[0];
    char base[512];
    int64_t N = 0;
    oq_value *xq, *wz, *acc, *sum, *bv, *accf, *osv;
    qinfo *xi;
    qweight *qw;
    oq_node *node;
    oq_status st = oq_rw_gemm_operands(r, n, &N, &xq, &xi, &qw);
    if (st)
        return st;
    float x_scale = xi->p.scale;
    /* a scalar zero point for B: the weights are symmetric */
    if ((st = oq_rw_scalar(r, "zero_point_int8", OQ_DTYPE_INT8, 0, &wz)) ||
        (st = oq_rw_value(r, y->name, "_int32", &acc)))
        return st;
    oq_value *mm_in[4] = {xq, qw->q, xi->zp, wz};
    if ((st = oq_rw_node(r, OQ_OP_MATMUL_INTEGER, 4, mm_in, 1, &acc, &node)) || (st = oq_rw_inherit_name(r, node, n)))
        return st;
    oq_bias_site site = {.op = node, .x = xq, .x_scale = x_scale, .x_zero_point = xi->p.zero_point, .w = qw->q,
                         .layout = OQ_WEIGHT_KN, .channels = N, .bias_int32 = true};
    if (c) { /* + beta * C at x_scale * w_scale[j] */
        if ((st = oq_rw_gemm_bias_int32(r, n, N, x_scale, qw, &bv)) ||
            (st = oq_rw_value(r, y->name, "_int32_bias", &sum)))
            return st;
        site.bias = bv;
        oq_value *add_in[2] = {acc, bv};
        if ((st = oq_rw_node(r, OQ_OP_ADD, 2, add_in, 1, &sum, NULL)))
            return st;
        acc = sum;
    }
    if ((st = oq_rw_bias_site(r, site, qw)) || (st = oq_rw_value(r, y->name, "_float", &accf)) ||
        (st = oq_rw_node(r, OQ_OP_CAST, 1, &acc, 1, &accf, &node)) ||
        (st = oq_node_set_attr_int(node, "to", OQ_DTYPE_FLOAT, r->err)))
        return st;
    /* per-column output scale x_scale * w_scale[j] */
    int64_t ns = oq_tensor_numel(&qw->wq.scales);
    int64_t sd[1] = {ns};
    oq_tensor *os = oq_tensor_create(OQ_DTYPE_FLOAT, ns > 1 ? 1 : 0, sd, r->err);
    if (!os)
        return r->err->status;
    for (int64_t j = 0; j < ns; j++)
        ((float *)os->data)[j] = x_scale * ((const float *)qw->wq.scales.data)[j];
    snprintf(base, sizeof base, "%s_output_scale", n->name);
    if ((st = oq_rw_initializer(r, base, os, &osv)))
        return st;
    oq_graph_remove_node(r->g, n);
    oq_value *mul_in[2] = {accf, osv};
    if ((st = oq_rw_node(r, OQ_OP_MUL, 2, mul_in, 1, &y, NULL)))
        return st;
    oq_rw_report_weight(rep, qw);
    return OQ_OK;
}

oq_status oq_rw_passthrough(rewriter *r, oq_node *n)
{
    qinfo *in, *o;
    oq_status st = oq_rw_info(r, n->inputs[0], &in);
    if (st)
        return st;
    oq_qparams p = in->p;
    oq_value *scale = in->scale, *zp = in->zp;
    for (int k = 0; k < (n->kind == OQ_OP_CONCAT ? n->n_inputs : 1); k++)
        if ((st = oq_rw_info(r, n->inputs[k], &o)) || (st = oq_node_set_input(n, k, o->twin, r->err)))
            return st;
    if (n->kind == OQ_OP_PAD && oq_node_input(n, 2) && (st = oq_node_set_input(n, 2, zp, r->err)))
        return st;
    for (int k = 0; k < n->n_outputs; k++) {
        oq_value *y = n->outputs[k], *yq;
        if (!y)
            continue;
        if ((st = oq_rw_value(r, y->name, "_quantized", &yq)) || (st = oq_rw_set_twin(r, y, yq, p, scale, zp)))
            return st;
        oq_node_set_output(n, k, yq);
    }
    return OQ_OK;
}

oq_status oq_rw_restore_float_values(rewriter *r)
{
    int n = r->g->n_values;
    for (int i = 0; i < n; i++) {
        oq_value *v = r->g->values[i];
        const qinfo *qi = oq_rw_info_if_any(r, v);
        if (!qi || !qi->twin || v->producer || v->constant || (!v->n_consumers && !oq_is_graph_output(r->g, v)) ||
            oq_is_graph_input(r->g, v))
            continue;
        oq_value *in[3] = {qi->twin, qi->scale, qi->zp};
        oq_status st = oq_rw_node(r, OQ_OP_DEQUANTIZE_LINEAR, 3, in, 1, &v, NULL);
        if (st)
            return st;
    }
    return OQ_OK;
}
