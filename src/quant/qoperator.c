/* qoperator.c: the QOperator format's actions: Conv and MatMul become
 * QLinearConv and QLinearMatMul on 8-bit twins, Gemm (and a MatMul whose
 * output an Add of a constant row alone reads) becomes MatMulInteger plus an
 * int32 bias Add, a Cast and a per-column rescale (standard ops that ONNX
 * Runtime's CPU provider runs, integer-exact), data-movement ops run on
 * the twins, and DequantizeLinear restores float values where float readers
 * remain. See rewrite.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/match.h"
#include "quant/rewrite.h"

/* MatMul n of two activations: QLinearMatMul of both 8-bit twins, per tensor. */
static oq_status qlinear_pair(rewriter *r, oq_node *n, oq_node *act, oq_quant_node *rep)
{
    oq_value *a = n->inputs[0], *b = n->inputs[1], *y = act ? act->outputs[0] : n->outputs[0];
    oq_value *aq, *bq, *yq;
    qinfo *ai, *bi, *yi;
    oq_node *q;
    oq_status st;
    if ((st = oq_rw_quantized(r, a, &aq)) || (st = oq_rw_quantized(r, b, &bq)) || (st = oq_rw_params(r, a, &ai)) ||
        (st = oq_rw_params(r, b, &bi)) || (st = oq_rw_params(r, y, &yi)) ||
        (st = oq_rw_value(r, y->name, "_quantized", &yq)))
        return st;
    oq_value *in[8] = {aq, ai->scale, ai->zp, bq, bi->scale, bi->zp, yi->scale, yi->zp};
    if ((st = oq_rw_node(r, OQ_OP_QLINEAR_MATMUL, 8, in, 1, &yq, &q)) || (st = oq_rw_inherit_name(r, q, n)) ||
        (st = oq_rw_twin_output(r, rep, y, yq)))
        return st;
    if (act)
        oq_graph_remove_node(r->g, act);
    oq_graph_remove_node(r->g, n);
    return OQ_OK;
}

oq_status oq_rw_qlinear(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    bool conv = n->kind == OQ_OP_CONV;
    int k = r->plan->nodes[i].clamp;
    oq_node *act = k >= 0 ? r->order[k] : NULL;
    if (r->plan->nodes[i].activation_b)
        return qlinear_pair(r, n, act, rep);
    oq_value *x = n->inputs[0], *w = n->inputs[1], *b = conv ? oq_node_input(n, 2) : NULL;
    oq_value *y = act ? act->outputs[0] : n->outputs[0];
    int axis = conv ? 0 : 1;
    qinfo *xi, *yi;
    qweight *qw;
    oq_value *xq, *bq = NULL, *yq, *wz;
    float *floors = NULL;
    oq_status st = oq_rw_params(r, x, &xi);
    if (!st)
        st = oq_rw_bias_floors(r, b ? b->constant : NULL, xi->p.scale, w->constant->dims[axis], &floors);
    if (!st)
        st = oq_rw_weight(r, w, axis, floors, &qw);
    free(floors);
    if (st || (st = oq_rw_quantized(r, x, &xq)) || (st = oq_rw_params(r, x, &xi)) || (st = oq_rw_params(r, y, &yi)) ||
        (st = oq_rw_weight_zero(r, OQ_DTYPE_INT8, &wz)) ||
        (b && (st = oq_rw_bias(r, b->constant, b->name, xi->p.scale, qw, &bq))) ||
        (st = oq_rw_value(r, y->name, "_quantized", &yq)))
        return st;
    oq_value *in[9] = {xq, xi->scale, xi->zp, qw->q, qw->scale, wz, yi->scale, yi->zp, bq};
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

/* x times the constant float [K, N] weight wf as MatMulInteger (named like
 * orig), plus bias (float [N] named after bias_name, or NULL) as an int32 Add
 * at x_scale x the column scales, cast to float and multiplied per column by
 * those scales into y. The nodes `gone` (y's writer among them) are removed
 * first. */
static oq_status integer_product(rewriter *r, const oq_node *orig, oq_value *x, oq_value *wf, const oq_tensor *bias,
                                 const char *bias_name, oq_value *y, oq_node *const *gone, int n_gone,
                                 oq_quant_node *rep)
{
    char base[512];
    oq_value *xq, *wz, *acc, *sum, *bv, *accf, *osv;
    qinfo *xi;
    qweight *qw;
    oq_node *node;
    oq_status st = oq_rw_product_operands(r, x, wf, bias, &xq, &xi, &qw);
    if (st || (st = oq_rw_weight_zero(r, OQ_DTYPE_INT8, &wz)) || (st = oq_rw_value(r, y->name, "_int32", &acc)))
        return st;
    float x_scale = xi->p.scale;
    oq_value *mm_in[4] = {xq, qw->q, xi->zp, wz};
    if ((st = oq_rw_node(r, OQ_OP_MATMUL_INTEGER, 4, mm_in, 1, &acc, &node)) || (st = oq_rw_inherit_name(r, node, orig)))
        return st;
    /* bias correction sets a bias from the float node's output, which a folded
     * Add (the second node gone) comes after: its constant is bias_after */
    oq_bias_site site = {.op = node, .x = xq, .x_scale = x_scale, .x_zero_point = xi->p.zero_point, .w = qw->q,
                         .layout = OQ_WEIGHT_KN, .channels = qw->q->constant->dims[1], .bias_int32 = true};
    if (bias) { /* + bias at x_scale * w_scale[j] */
        if ((st = oq_rw_bias(r, bias, bias_name, x_scale, qw, &bv)) ||
            (st = oq_rw_value(r, y->name, "_int32_bias", &sum)))
            return st;
        site.bias = bv;
        site.bias_after = n_gone > 1 ? (float *)bias->data : NULL;
        oq_value *add_in[2] = {acc, bv};
        if ((st = oq_rw_node(r, OQ_OP_ADD, 2, add_in, 1, &sum, NULL)))
            return st;
        acc = sum;
    }
    if ((st = oq_rw_bias_site(r, site, qw)) || (st = oq_rw_value(r, y->name, "_float", &accf)) || (st = oq_rw_node(r, OQ_OP_CAST, 1, &acc, 1, &accf, &node)) ||
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
    snprintf(base, sizeof base, "%s_output_scale", orig->name);
    if ((st = oq_rw_initializer(r, base, os, &osv)))
        return st;
    for (int k = 0; k < n_gone; k++)
        oq_graph_remove_node(r->g, gone[k]);
    oq_value *mul_in[2] = {accf, osv};
    if ((st = oq_rw_node(r, OQ_OP_MUL, 2, mul_in, 1, &y, NULL)))
        return st;
    oq_rw_report_weight(rep, qw);
    return OQ_OK;
}

/* MatMul n of two activations, float out: MatMulInteger of both 8-bit twins,
 * cast to float and multiplied by the product of their scales. */
static oq_status integer_pair(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    oq_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0], *aq, *bq, *acc, *accf, *sv;
    qinfo *ai, *bi;
    oq_node *node;
    char base[512];
    oq_status st;
    if ((st = oq_rw_quantized(r, a, &aq)) || (st = oq_rw_quantized(r, b, &bq)) || (st = oq_rw_params(r, a, &ai)) ||
        (st = oq_rw_params(r, b, &bi)) || (st = oq_rw_value(r, y->name, "_int32", &acc)))
        return st;
    oq_value *mm_in[4] = {aq, bq, ai->zp, bi->zp};
    snprintf(base, sizeof base, "%s_output_scale", n->name);
    if ((st = oq_rw_node(r, OQ_OP_MATMUL_INTEGER, 4, mm_in, 1, &acc, &node)) ||
        (st = oq_rw_inherit_name(r, node, n)) || (st = oq_rw_value(r, y->name, "_float", &accf)) ||
        (st = oq_rw_node(r, OQ_OP_CAST, 1, &acc, 1, &accf, &node)) ||
        (st = oq_node_set_attr_int(node, "to", OQ_DTYPE_FLOAT, r->err)) ||
        (st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, (double)(ai->p.scale * bi->p.scale), &sv)))
        return st;
    (void)rep; /* no weight to report */
    oq_graph_remove_node(r->g, n);
    oq_value *mul_in[2] = {accf, sv};
    return oq_rw_node(r, OQ_OP_MUL, 2, mul_in, 1, &y, NULL);
}

oq_status oq_rw_integer_gemm(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    oq_value *wf;
    oq_tensor *bias = NULL;
    int64_t N;
    oq_status st;
    if (n->kind == OQ_OP_GEMM) { /* the integer ops want B as [K, N]: transposed, alpha folded in */
        oq_value *c = oq_node_input(n, 2);
        if (!(st = oq_rw_gemm_weight_kn(r, n, &N, &wf)) &&
            !(st = oq_rw_row_bias(r, c, oq_node_attr_float(n, "beta", 1.0f), N, &bias)))
            st = integer_product(r, n, n->inputs[0], wf, bias, c ? c->name : NULL, n->outputs[0], &n, 1, rep);
        oq_tensor_destroy(bias);
        return st;
    }
    if (r->plan->nodes[i].activation_b)
        return integer_pair(r, n, rep);
    /* a MatMul, with the Add of a constant row after it when the plan folds one */
    int k = r->plan->nodes[i].bias;
    oq_node *add = k >= 0 ? r->order[k] : NULL, *gone[2] = {n, add};
    oq_value *c = add ? add->inputs[add->inputs[0] == n->outputs[0] ? 1 : 0] : NULL;
    oq_value *y = add ? add->outputs[0] : n->outputs[0];
    wf = n->inputs[1];
    if (c && (st = oq_rw_row_bias(r, c, 1.0f, wf->constant->dims[1], &bias)))
        return st;
    st = integer_product(r, n, n->inputs[0], wf, bias, c ? c->name : NULL, y, gone, add ? 2 : 1, rep);
    oq_tensor_destroy(bias);
    if (!st && add) { /* its output is what the node's output stands for */
        free(rep->output);
        if (!(rep->output = strdup(y->name)))
            st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    }
    return st;
}

oq_status oq_rw_passthrough(rewriter *r, oq_node *n)
{
    oq_value *x = n->inputs[0];
    oq_status st = OQ_OK;
    /* a Concat's float input, planned 8-bit at the Concat's parameters, gets its QuantizeLinear here */
    for (int k = 0; k < (n->kind == OQ_OP_CONCAT ? n->n_inputs : 1); k++) {
        oq_value *twin;
        if ((st = oq_rw_quantized(r, n->inputs[k], &twin)) || (st = oq_node_set_input(n, k, twin, r->err)))
            return st;
    }
    qinfo *in;
    if ((st = oq_rw_params(r, x, &in)))
        return st;
    oq_qparams p = in->p;
    oq_value *scale = in->scale, *zp = in->zp;
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

/* Points the Shape and Size nodes that read v at its 8-bit twin, which has
 * the same shape: they need no float copy of it. */
static oq_status shape_readers_to_twin(rewriter *r, oq_value *v, oq_value *twin)
{
    for (int k = v->n_consumers - 1; k >= 0; k--) {
        oq_node *c = v->consumers[k];
        if (c->kind != OQ_OP_SHAPE && c->kind != OQ_OP_SIZE)
            continue;
        oq_status st = oq_node_set_input(c, 0, twin, r->err);
        if (st)
            return st; /* v lost c as a reader: the readers after k moved, and were seen */
    }
    return OQ_OK;
}

oq_status oq_rw_restore_float_values(rewriter *r)
{
    int n = r->g->n_values;
    for (int i = 0; i < n; i++) {
        oq_value *v = r->g->values[i];
        const qinfo *qi = oq_rw_info_if_any(r, v);
        if (!qi || !qi->twin || v->producer || v->constant || oq_is_graph_input(r->g, v))
            continue;
        oq_status st = shape_readers_to_twin(r, v, qi->twin);
        if (st)
            return st;
        if (!v->n_consumers && !oq_is_graph_output(r->g, v))
            continue;
        oq_value *in[3] = {qi->twin, qi->scale, qi->zp};
        if ((st = oq_rw_node(r, OQ_OP_DEQUANTIZE_LINEAR, 3, in, 1, &v, NULL)))
            return st;
    }
    return OQ_OK;
}
