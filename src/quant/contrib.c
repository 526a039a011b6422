/* contrib.c: --contrib, ONNX Runtime's com.microsoft ops where they help:
 * Gemm becomes QGemm; a Concat of 8-bit inputs of differing parameters
 * becomes QLinearConcat; Add, Mul, Sigmoid, LeakyRelu and GlobalAveragePool
 * of 8-bit tensors become their QLinear ops; a Mul by a positive scalar
 * becomes a rescaled twin, an Add of a whole number of steps a shifted one
 * (no op at all); HardSigmoid and HardSwish are built
 * from QLinearAdd and QLinearMul with the clamps done by saturation:
 *   HardSigmoid(x) = QLinearAdd(x read at scale x alpha, beta), output on [0, 1]
 *   HardSwish(x)   = QLinearMul(x, g) at output scale x 6, g = QLinearAdd(x, 3) on [0, 6]
 * The plan decides which nodes; see rewrite.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/match.h"
#include "quant/rewrite.h"

oq_status oq_rw_qgemm(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    oq_value *c = oq_node_input(n, 2);
    bool float_out = oq_is_graph_output(r->g, n->outputs[0]);
    int k = r->plan->nodes[i].clamp;
    oq_node *act = k >= 0 ? r->order[k] : NULL;
    oq_value *y = act ? act->outputs[0] : n->outputs[0], *xq, *bq = NULL, *out = y, *wz, *wf;
    int64_t N = 0;
    qinfo *xi, *yi = NULL;
    qweight *qw;
    oq_node *q;
    oq_tensor *bias = NULL;
    /* B as [K, N] with alpha folded in; QGemm wants its zero points shaped
     * like its scales (ONNX Runtime 1.20.1 refuses one zero point next to
     * per-column scales) */
    oq_status st = oq_rw_gemm_weight_kn(r, n, &N, &wf);
    if (!st && !(st = oq_rw_row_bias(r, c, oq_node_attr_float(n, "beta", 1.0f), N, &bias)))
        st = oq_rw_product_operands(r, n->inputs[0], wf, bias, &xq, &xi, &qw);
    if (!st && c)
        st = oq_rw_bias(r, bias, c->name, xi->p.scale, qw, &bq);
    oq_tensor_destroy(bias);
    if (st || (st = oq_rw_weight_zero_points(r, qw, &wz)) || (!float_out && (st = oq_rw_params(r, y, &yi))) ||
        (!float_out && (st = oq_rw_value(r, y->name, "_quantized", &out))))
        return st;
    oq_value *in[9] = {xq, xi->scale, xi->zp, qw->q, qw->scale, wz, bq, yi ? yi->scale : NULL, yi ? yi->zp : NULL};
    char *name = strdup(n->name); /* n goes first: with a float output QGemm writes n's output */
    if (!name)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    oq_graph_remove_node(r->g, n);
    if ((st = oq_rw_node(r, OQ_OP_QGEMM, float_out ? 7 : 9, in, 1, &out, &q))) {
        free(name);
        return st;
    }
    if (name[0]) {
        free(q->name);
        q->name = name;
    } else {
        free(name);
    }
    oq_bias_site site = {.op = q, .x = xq, .x_scale = xi->p.scale, .x_zero_point = xi->p.zero_point, .w = qw->q,
                         .layout = OQ_WEIGHT_KN, .channels = N, .out_scale = yi ? yi->p.scale : 0, .bias = bq,
                         .bias_int32 = true};
    if ((st = oq_rw_bias_site(r, site, qw)))
        return st;
    oq_rw_report_weight(rep, qw);
    if (!float_out) {
        if ((st = oq_rw_twin_output(r, rep, y, out)))
            return st;
        if (act)
            oq_graph_remove_node(r->g, act);
    }
    return OQ_OK;
}

oq_status oq_rw_qlinear_concat(rewriter *r, oq_node *n)
{
    oq_value *y = n->outputs[0], *yq;
    qinfo *yi, *qi;
    oq_node *q;
    oq_status st;
    if ((st = oq_rw_params(r, y, &yi)) || (st = oq_rw_value(r, y->name, "_quantized", &yq)))
        return st;
    oq_value *in[OQ_MAX_NODE_INPUTS] = {yi->scale, yi->zp};
    for (int k = 0; k < n->n_inputs; k++) {
        if ((st = oq_rw_info(r, n->inputs[k], &qi)))
            return st;
        in[2 + 3 * k] = qi->twin;
        in[3 + 3 * k] = qi->scale;
        in[4 + 3 * k] = qi->zp;
    }
    if ((st = oq_rw_node(r, OQ_OP_QLINEAR_CONCAT, 2 + 3 * n->n_inputs, in, 1, &yq, &q)) ||
        (st = oq_rw_inherit_name(r, q, n)) ||
        (st = oq_node_set_attr_int(q, "axis", oq_node_attr_int(n, "axis", 0), r->err)))
        return st;
    yi->twin = yq;
    oq_graph_remove_node(r->g, n);
    r->res->n_contrib_ops++;
    return OQ_OK;
}

/* Constant v quantized per tensor to the activation type on its own range,
 * kept as v's twin so that readers share it. */
static oq_status quantized_constant(rewriter *r, const oq_value *v, oq_value **out)
{
    qinfo *qi;
    oq_status st = oq_rw_info(r, v, &qi);
    if (st || qi->twin) {
        *out = st ? NULL : qi->twin;
        return st;
    }
    const oq_tensor *c = v->constant;
    const float *d = c->data;
    int64_t n = oq_tensor_numel(c);
    oq_qparams p = oq_constant_qparams(c, r->o);
    oq_tensor *t = oq_tensor_create(r->act_type, c->rank, c->dims, r->err);
    if (!t)
        return r->err->status;
    for (int64_t i = 0; i < n; i++) {
        int32_t q = oq_quantize_value(d[i], p, r->o->act_qmin, r->o->act_qmax);
        if (r->act_type == OQ_DTYPE_INT8)
            ((int8_t *)t->data)[i] = (int8_t)q;
        else
            ((uint8_t *)t->data)[i] = (uint8_t)q;
    }
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", v->name);
    oq_value *tw;
    if ((st = oq_rw_initializer(r, base, t, &tw)))
        return st;
    qi->twin = tw;
    qi->p = p;
    qi->has_params = true;
    if ((st = oq_rw_params(r, v, &qi)))
        return st;
    *out = tw;
    return OQ_OK;
}

oq_status oq_rw_contrib(rewriter *r, int i, oq_node *n)
{
    int k = r->plan->nodes[i].clamp;
    oq_node *act = k >= 0 ? r->order[k] : NULL, *q;
    oq_value *y = act ? act->outputs[0] : n->outputs[0], *in[8], *yq;
    int n_in = 0;
    qinfo *xi, *yi;
    oq_status st;
    for (int j = 0; j < n->n_inputs; j++) {
        oq_value *x = n->inputs[j], *xq = NULL;
        if (x->constant)
            st = quantized_constant(r, x, &xq);
        else if (!(st = oq_rw_info(r, x, &xi)))
            xq = xi->twin;
        if (st || (st = oq_rw_params(r, x, &xi)))
            return st;
        in[n_in++] = xq;
        in[n_in++] = xi->scale;
        in[n_in++] = xi->zp;
    }
    if ((st = oq_rw_params(r, y, &yi)) || (st = oq_rw_value(r, y->name, "_quantized", &yq)))
        return st;
    in[n_in++] = yi->scale;
    in[n_in++] = yi->zp;
    const oq_op_kind qop[OQ_OP_COUNT] = {[OQ_OP_ADD] = OQ_OP_QLINEAR_ADD, [OQ_OP_MUL] = OQ_OP_QLINEAR_MUL,
                                         [OQ_OP_SIGMOID] = OQ_OP_QLINEAR_SIGMOID,
                                         [OQ_OP_LEAKY_RELU] = OQ_OP_QLINEAR_LEAKY_RELU,
                                         [OQ_OP_GLOBAL_AVERAGE_POOL] = OQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL};
    if ((st = oq_rw_node(r, qop[n->kind], n_in, in, 1, &yq, &q)) || (st = oq_rw_inherit_name(r, q, n)))
        return st;
    if (n->kind == OQ_OP_LEAKY_RELU &&
        (st = oq_node_set_attr_float(q, "alpha", oq_node_attr_float(n, "alpha", 0.01f), r->err)))
        return st;
    yi->twin = yq;
    if (act)
        oq_graph_remove_node(r->g, act);
    oq_graph_remove_node(r->g, n);
    r->res->n_contrib_ops++;
    return OQ_OK;
}

oq_status oq_rw_input_twin(rewriter *r, int i, oq_node *n)
{
    oq_value *x = n->inputs[r->plan->nodes[i].operand], *y = n->outputs[0];
    oq_qparams p = r->plan->values[y->id].params;
    qinfo *xi;
    oq_status st = oq_rw_params(r, x, &xi);
    if (st || (st = oq_rw_set_twin(r, y, xi->twin, p, p.scale == xi->p.scale ? xi->scale : NULL,
                                   p.zero_point == xi->p.zero_point ? xi->zp : NULL)))
        return st;
    oq_graph_remove_node(r->g, n);
    r->res->n_folded_factors++;
    return OQ_OK;
}

/* One-element 8-bit constant holding `value`, as the (data, scale, zero
 * point) triple of a QLinear operand: a float initializer made for it,
 * quantized (the cleanup drops the float one, unread). */
static oq_status const_operand(rewriter *r, const char *base, float value, oq_value **in)
{
    oq_value *f;
    qinfo *fi;
    oq_status st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, value, &f);
    if (st || (st = quantized_constant(r, f, &in[0])) || (st = oq_rw_info(r, f, &fi)))
        return st;
    in[1] = fi->scale;
    in[2] = fi->zp;
    return OQ_OK;
}

oq_status oq_rw_hard(rewriter *r, oq_node *n, bool swish)
{
    oq_value *x = n->inputs[0], *y = n->outputs[0], *yq, *k[3], *in[8], *xs;
    float alpha = oq_node_attr_float(n, "alpha", 0.2f), beta = oq_node_attr_float(n, "beta", 0.5f);
    qinfo *xi, *yi;
    oq_node *q;
    char base[512];
    oq_status st = oq_rw_params(r, x, &xi);
    if (st || (st = oq_rw_value(r, y->name, "_quantized", &yq)))
        return st;
    oq_qparams pg = oq_qparams_from_range(0, swish ? 6 : 1, r->o->act_qmin, r->o->act_qmax, false);
    snprintf(base, sizeof base, "%s_%s", y->name, swish ? "three" : "beta");
    if ((st = const_operand(r, base, swish ? 3.0f : beta, k)))
        return st;
    if (!swish) { /* x at scale x alpha, + beta, on [0, 1] */
        snprintf(base, sizeof base, "%s_alpha_scale", x->name);
        if ((st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, xi->p.scale * alpha, &xs)) ||
            (st = oq_rw_set_twin(r, y, yq, pg, NULL, NULL)) || (st = oq_rw_info(r, y, &yi)))
            return st;
        oq_value *add[8] = {xi->twin, xs, xi->zp, k[0], k[1], k[2], yi->scale, yi->zp};
        memcpy(in, add, sizeof in);
    } else { /* g = x + 3 on [0, 6]; y = x * g / 6 */
        oq_value *g, *gs, *gz, *ys6;
        if ((st = oq_rw_value(r, y->name, "_gate", &g)))
            return st;
        snprintf(base, sizeof base, "%s_gate_scale", y->name);
        if ((st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, pg.scale, &gs)))
            return st;
        snprintf(base, sizeof base, "%s_gate_zero_point", y->name);
        if ((st = oq_rw_scalar(r, base, r->act_type, pg.zero_point, &gz)))
            return st;
        oq_value *add[8] = {xi->twin, xi->scale, xi->zp, k[0], k[1], k[2], gs, gz};
        if ((st = oq_rw_node(r, OQ_OP_QLINEAR_ADD, 8, add, 1, &g, NULL)) || (st = oq_rw_params(r, y, &yi)))
            return st;
        snprintf(base, sizeof base, "%s_scale_x6", y->name);
        if ((st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, 6.0 * yi->p.scale, &ys6)))
            return st;
        oq_value *mul[8] = {xi->twin, xi->scale, xi->zp, g, gs, gz, ys6, yi->zp};
        memcpy(in, mul, sizeof in);
        yi->twin = yq;
    }
    if ((st = oq_rw_node(r, swish ? OQ_OP_QLINEAR_MUL : OQ_OP_QLINEAR_ADD, 8, in, 1, &yq, &q)) ||
        (st = oq_rw_inherit_name(r, q, n)))
        return st;
    oq_graph_remove_node(r->g, n);
    r->res->n_contrib_ops++;
    return OQ_OK;
}
