/* dynamic.c: dynamic mode: no ranges ahead of time. Each input activation
 * goes through DynamicQuantizeLinear (uint8, parameters computed per run);
 * MatMul and Gemm become MatMulInteger with int8 weights, Conv becomes
 * ConvInteger with uint8 weights at zero point 128 (ONNX Runtime's CPU
 * ConvInteger takes uint8 x uint8 and one weight zero point only). Weight
 * scales stay per channel: the int32 result is cast to float and multiplied
 * by activation scale x channel scales, then the float bias is added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rewrite.h"

/* The DynamicQuantizeLinear of activation x (one per value, made on first
 * use): twin = uint8 data, scale and zp = its run-time parameters. */
static oq_status dynamic_activation(rewriter *r, oq_value *x, qinfo **out)
{
    qinfo *qi;
    oq_value *q, *s, *z;
    oq_status st = oq_rw_info(r, x, &qi);
    if (st)
        return st;
    if (!qi->twin) {
        if ((st = oq_rw_value(r, x->name, "_quantized", &q)) || (st = oq_rw_value(r, x->name, "_scale", &s)) ||
            (st = oq_rw_value(r, x->name, "_zero_point", &z)))
            return st;
        oq_value *outs[3] = {q, s, z};
        if ((st = oq_rw_node(r, OQ_OP_DYNAMIC_QUANTIZE_LINEAR, 1, &x, 3, outs, NULL)))
            return st;
        qi->twin = q;
        qi->scale = s;
        qi->zp = z;
    }
    *out = qi;
    return OQ_OK;
}

/* qw's weights shifted to uint8 (q + 128) for ConvInteger, made once. */
static oq_status weight_u8(rewriter *r, qweight *qw, oq_value **out)
{
    if (!qw->q_u8) {
        const oq_tensor *q = qw->q->constant;
        oq_tensor *u = oq_tensor_create(OQ_DTYPE_UINT8, q->rank, q->dims, r->err);
        if (!u)
            return r->err->status;
        for (int64_t i = 0; i < oq_tensor_numel(q); i++)
            ((uint8_t *)u->data)[i] = (uint8_t)(((const int8_t *)q->data)[i] + 128);
        char base[512];
        snprintf(base, sizeof base, "%s_quantized_u8", qw->src->name);
        oq_status st = oq_rw_initializer(r, base, u, &qw->q_u8);
        if (st)
            return st;
    }
    *out = qw->q_u8;
    return OQ_OK;
}

/* A float initializer holding v[0..n) shaped [n, 1 x trailing] (a scalar when
 * n is 1 and trailing is 0), to broadcast per channel against an output
 * whose channel axis has `trailing` axes after it. */
static oq_status channel_initializer(rewriter *r, const char *base, const float *v, int64_t n, int trailing,
                                     oq_value **out)
{
    int64_t dims[OQ_MAX_RANK] = {n};
    int rank = n == 1 && trailing == 0 ? 0 : 1 + trailing;
    for (int i = 1; i < rank; i++)
        dims[i] = 1;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, rank, dims, r->err);
    if (!t)
        return r->err->status;
    memcpy(t->data, v, (size_t)n * sizeof *v);
    return oq_rw_initializer(r, base, t, out);
}

/* The float bias node n adds after the rescale (Gemm: beta * C per column;
 * Conv: its bias), or *out NULL. Caller destroys. */
static oq_status float_bias(rewriter *r, oq_node *n, int64_t channels, oq_tensor **out)
{
    *out = NULL;
    if (n->kind == OQ_OP_GEMM)
        return oq_rw_row_bias(r, oq_node_input(n, 2), oq_node_attr_float(n, "beta", 1.0f), channels, out);
    if (n->kind != OQ_OP_CONV || !oq_node_input(n, 2))
        return OQ_OK;
    oq_tensor *b = malloc(sizeof *b);
    if (!b)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    oq_status st = oq_tensor_copy(b, oq_node_input(n, 2)->constant, r->err);
    if (st) {
        free(b);
        return st;
    }
    *out = b;
    return OQ_OK;
}

/* Everything after the integer op: Cast, Mul by x_scale x weight scales, Add
 * of the float bias (its constant in *bias_v), writing n's output name. */
static oq_status rescale(rewriter *r, oq_node *n, oq_value *acc, const qinfo *xi, const qweight *qw, int trailing,
                         const oq_tensor *bias, oq_value **bias_v)
{
    oq_value *y = n->outputs[0], *accf, *ws, *scale, *scaled, *bv;
    oq_node *cast;
    char base[512];
    oq_status st;
    if ((st = oq_rw_value(r, y->name, "_float", &accf)) || (st = oq_rw_node(r, OQ_OP_CAST, 1, &acc, 1, &accf, &cast)) ||
        (st = oq_node_set_attr_int(cast, "to", OQ_DTYPE_FLOAT, r->err)))
        return st;
    /* scale = x_scale (run time) * per-channel weight scales */
    snprintf(base, sizeof base, "%s_weight_scale", n->name);
    if ((st = channel_initializer(r, base, qw->wq.scales.data, oq_tensor_numel(&qw->wq.scales), trailing, &ws)) ||
        (st = oq_rw_value(r, y->name, "_scale", &scale)))
        return st;
    oq_value *smul_in[2] = {xi->scale, ws};
    if ((st = oq_rw_node(r, OQ_OP_MUL, 2, smul_in, 1, &scale, NULL)))
        return st;
    scaled = y;
    if (bias && (st = oq_rw_value(r, y->name, "_unbiased", &scaled)))
        return st;
    oq_value *mul_in[2] = {accf, scale};
    if ((st = oq_rw_node(r, OQ_OP_MUL, 2, mul_in, 1, &scaled, NULL)) || !bias)
        return st;
    snprintf(base, sizeof base, "%s_bias", n->name);
    if ((st = channel_initializer(r, base, bias->data, oq_tensor_numel(bias), trailing, &bv)))
        return st;
    *bias_v = bv;
    oq_value *add_in[2] = {scaled, bv};
    return oq_rw_node(r, OQ_OP_ADD, 2, add_in, 1, &y, NULL);
}

/* MatMul n of two activations: MatMulInteger of both run-time quantized
 * inputs, cast to float and multiplied by the product of their scales. */
static oq_status dynamic_pair(rewriter *r, oq_node *n)
{
    oq_value *y = n->outputs[0], *acc, *accf, *scale;
    qinfo *ai, *bi;
    oq_node *q, *cast;
    oq_status st;
    if ((st = dynamic_activation(r, n->inputs[0], &ai)) || (st = dynamic_activation(r, n->inputs[1], &bi)) ||
        (st = oq_rw_value(r, y->name, "_int32", &acc)))
        return st;
    oq_value *in[4] = {ai->twin, bi->twin, ai->zp, bi->zp};
    if ((st = oq_rw_node(r, OQ_OP_MATMUL_INTEGER, 4, in, 1, &acc, &q)) || (st = oq_rw_inherit_name(r, q, n)) ||
        (st = oq_rw_value(r, y->name, "_float", &accf)) || (st = oq_rw_node(r, OQ_OP_CAST, 1, &acc, 1, &accf, &cast)) ||
        (st = oq_node_set_attr_int(cast, "to", OQ_DTYPE_FLOAT, r->err)) ||
        (st = oq_rw_value(r, y->name, "_scale", &scale)))
        return st;
    oq_value *smul_in[2] = {ai->scale, bi->scale}, *mul_in[2] = {accf, scale};
    oq_graph_remove_node(r->g, n);
    if ((st = oq_rw_node(r, OQ_OP_MUL, 2, smul_in, 1, &scale, NULL)) ||
        (st = oq_rw_node(r, OQ_OP_MUL, 2, mul_in, 1, &y, NULL)))
        return st;
    return OQ_OK;
}

oq_status oq_rw_dynamic(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    if (r->plan->nodes[i].activation_b)
        return dynamic_pair(r, n);
    bool conv = n->kind == OQ_OP_CONV;
    oq_value *w = n->inputs[1], *wq = NULL, *wz, *acc, *bias_v = NULL;
    int64_t channels = 0;
    oq_tensor *bias = NULL; /* float [channels] */
    qweight *qw;
    qinfo *xi;
    oq_node *q;
    oq_status st = n->kind == OQ_OP_GEMM ? oq_rw_gemm_weight_kn(r, n, &channels, &w) : OQ_OK;
    if (!st)
        st = float_bias(r, n, channels, &bias);
    /* channel axis of the output, counted from the end: Conv's is 1 of [N, C, spatial...] */
    int axis = conv ? 0 : 1, trailing = conv ? w->constant->rank - 2 : 0;
    if (st || (st = oq_rw_weight(r, w, axis, NULL, &qw)) || (st = dynamic_activation(r, n->inputs[0], &xi)))
        goto done;
    if (conv)
        st = weight_u8(r, qw, &wq);
    else
        wq = qw->q;
    if (st || (st = oq_rw_weight_zero(r, conv ? OQ_DTYPE_UINT8 : OQ_DTYPE_INT8, &wz)) ||
        (st = oq_rw_value(r, n->outputs[0]->name, "_int32", &acc)))
        goto done;
    oq_value *in[4] = {xi->twin, wq, xi->zp, wz};
    if ((st = oq_rw_node(r, conv ? OQ_OP_CONV_INTEGER : OQ_OP_MATMUL_INTEGER, 4, in, 1, &acc, &q)) ||
        (st = oq_rw_inherit_name(r, q, n)) || (conv && (st = oq_rw_copy_conv_attrs(r, q, n))) ||
        (st = rescale(r, n, acc, xi, qw, trailing, bias, &bias_v)))
        goto done;
    oq_bias_site site = {.op = q, .x = xi->twin, .x_scale_v = xi->scale, .x_zero_point_v = xi->zp, .w = wq,
                         .w_zero_point = conv ? 128 : 0, .layout = conv ? OQ_WEIGHT_CONV : OQ_WEIGHT_KN,
                         .channels = w->constant->dims[axis], .bias = bias_v};
    if ((st = oq_rw_bias_site(r, site, qw)))
        goto done;
    oq_rw_report_weight(rep, qw);
    oq_graph_remove_node(r->g, n);
done:
    oq_tensor_destroy(bias);
    return st;
}
