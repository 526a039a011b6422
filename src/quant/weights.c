/* weights.c: weights and biases in the rewrite: int8 weights shared per
 * constant, bias scale floors, int32 biases, Gemm's weight in MatMul layout,
 * the bias row of an integer product. See rewrite.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rewrite.h"

oq_status oq_rw_bias_floors(rewriter *r, const oq_tensor *b, float input_scale, int64_t n, float **out)
{
    *out = NULL;
    if (!b)
        return OQ_OK;
    float *f = calloc((size_t)(n ? n : 1), sizeof *f);
    if (!f)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    int64_t nb = oq_tensor_numel(b);
    for (int64_t c = 0; c < n; c++)
        f[c] = (float)(fabs(oq_tensor_get_f64(b, nb == 1 ? 0 : c)) / ((double)input_scale * 1073741824.0));
    *out = f;
    return OQ_OK;
}

/* Moves qw's int8 weights into an initializer named after its source and
 * adds its scales as another (kept in qw->wq for biases and the report). */
static oq_status weight_initializers(rewriter *r, qweight *qw)
{
    char base[512];
    oq_tensor t;
    snprintf(base, sizeof base, "%s_quantized", qw->src->name);
    oq_status st = oq_rw_initializer_from(r, base, &qw->wq.q, &qw->q);
    if (st)
        return st;
    snprintf(base, sizeof base, "%s_scale", qw->src->name);
    if ((st = oq_tensor_copy(&t, &qw->wq.scales, r->err)))
        return st;
    return oq_rw_initializer_from(r, base, &t, &qw->scale);
}

oq_status oq_rw_weight_zero_points(rewriter *r, qweight *qw, oq_value **out)
{
    if (!qw->zp) {
        char base[512];
        oq_tensor t;
        snprintf(base, sizeof base, "%s_zero_point", qw->src->name);
        oq_status st = oq_tensor_copy(&t, &qw->wq.zeros, r->err);
        if (st || (st = oq_rw_initializer_from(r, base, &t, &qw->zp)))
            return st;
    }
    *out = qw->zp;
    return OQ_OK;
}

oq_status oq_rw_dequantize_constant(rewriter *r, oq_value *q, oq_value *scale, oq_value *zp, int axis,
                                    const char *base, oq_value **out)
{
    oq_value *in[3] = {q, scale, zp};
    oq_node *n;
    oq_status st = oq_rw_value(r, base, "_dequantized", out);
    if (st || (st = oq_rw_node(r, OQ_OP_DEQUANTIZE_LINEAR, zp ? 3 : 2, in, 1, out, &n)))
        return st;
    if (oq_tensor_numel(scale->constant) > 1)
        return oq_node_set_attr_int(n, "axis", axis, r->err);
    return OQ_OK;
}

oq_status oq_rw_weight_zero(rewriter *r, oq_dtype dt, oq_value **out)
{
    oq_value **z = dt == OQ_DTYPE_UINT8 ? &r->zero_u8 : &r->zero_i8;
    if (!*z) {
        oq_status st = dt == OQ_DTYPE_UINT8 ? oq_rw_scalar(r, "zero_point_uint8_128", dt, 128, z)
                                            : oq_rw_scalar(r, "zero_point_int8", dt, 0, z);
        if (st)
            return st;
    }
    *out = *z;
    return OQ_OK;
}

oq_status oq_rw_weight(rewriter *r, const oq_value *w, int axis, const float *floors, qweight **out)
{
    for (int i = 0; i < r->n_weights; i++) {
        qweight *qw = &r->weights[i];
        if (qw->src != w || qw->axis != axis)
            continue;
        const float *s = qw->wq.scales.data;
        int64_t ns = oq_tensor_numel(&qw->wq.scales);
        for (int64_t c = 0; floors && c < w->constant->dims[axis]; c++)
            if (s[ns == 1 ? 0 : c] < floors[c])
                return oq_errf(r->err, OQ_EUNSUPPORTED,
                               "weight '%s' is shared by nodes whose biases need different scales", w->name);
        *out = qw;
        return OQ_OK;
    }
    qweight *grown = realloc(r->weights, (size_t)(r->n_weights + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    r->weights = grown;
    qweight *qw = &r->weights[r->n_weights];
    memset(qw, 0, sizeof *qw);
    qw->src = w;
    qw->axis = axis;
    oq_status st = oq_quantize_weight(&qw->wq, w->constant, axis, r->o->per_channel, floors, r->err);
    if (st)
        return st;
    r->n_weights++; /* from here the rewrite releases it */
    if ((st = weight_initializers(r, qw)))
        return st;
    *out = qw;
    return OQ_OK;
}

oq_status oq_rw_bias(rewriter *r, const oq_tensor *b, const char *name, float input_scale, const qweight *qw,
                     oq_value **out)
{
    oq_tensor t;
    oq_status st = oq_quantize_bias(&t, b, input_scale, &qw->wq.scales, r->err);
    if (st)
        return st;
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", name);
    return oq_rw_initializer_from(r, base, &t, out);
}

oq_status oq_rw_gemm_weight_kn(rewriter *r, const oq_node *n, int64_t *n_cols, oq_value **out)
{
    const oq_value *w = n->inputs[1];
    bool trans_b = oq_node_attr_int(n, "transB", 0) != 0;
    float alpha = oq_node_attr_float(n, "alpha", 1.0f);
    const oq_tensor *wt = w->constant;
    int64_t rows = wt->dims[0], cols = wt->dims[1], K = trans_b ? cols : rows, N = trans_b ? rows : cols;
    int64_t kn[2] = {K, N};
    oq_tensor *wkn = oq_tensor_create(OQ_DTYPE_FLOAT, 2, kn, r->err);
    if (!wkn)
        return r->err->status;
    const float *src = wt->data;
    float *dst = wkn->data;
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++)
            dst[k * N + j] = alpha * (trans_b ? src[j * cols + k] : src[k * cols + j]);
    char base[512];
    snprintf(base, sizeof base, "%s_kn", w->name);
    *n_cols = N;
    return oq_rw_initializer(r, base, wkn, out);
}

oq_status oq_rw_row_bias(rewriter *r, const oq_value *c, float factor, int64_t N, oq_tensor **out)
{
    *out = NULL;
    if (!c)
        return OQ_OK;
    int64_t nd[1] = {N};
    bool row = oq_tensor_numel(c->constant) == N && c->constant->rank >= 1; /* keeps its shape */
    oq_tensor *cb = row ? oq_tensor_create(OQ_DTYPE_FLOAT, c->constant->rank, c->constant->dims, r->err)
                        : oq_tensor_create(OQ_DTYPE_FLOAT, 1, nd, r->err);
    if (!cb)
        return r->err->status;
    int64_t cn = oq_tensor_numel(c->constant);
    for (int64_t j = 0; j < N; j++)
        ((float *)cb->data)[j] = factor * (float)oq_tensor_get_f64(c->constant, cn == 1 ? 0 : j);
    *out = cb;
    return OQ_OK;
}

oq_status oq_rw_product_operands(rewriter *r, oq_value *x, oq_value *wf, const oq_tensor *bias, oq_value **xq,
                                 qinfo **xi, qweight **qw)
{
    float *floors = NULL;
    oq_status st = oq_rw_params(r, x, xi);
    if (!st)
        st = oq_rw_bias_floors(r, bias, (*xi)->p.scale, wf->constant->dims[1], &floors);
    if (!st)
        st = oq_rw_weight(r, wf, 1, floors, qw);
    free(floors);
    if (!st)
        st = oq_rw_quantized(r, x, xq);
    return st;
}

void oq_rw_report_weight(oq_quant_node *rep, const qweight *qw)
{
    const oq_tensor *s = &qw->wq.scales;
    int64_t n = oq_tensor_numel(s);
    const float *f = s->data;
    bool first = rep->n_scales == 0;
    rep->n_scales += (int)n;
    if (first) {
        rep->scale_min = rep->scale_max = f[0];
        rep->weight_sqnr_db = qw->wq.sqnr_db;
    }
    for (int64_t i = 0; i < n; i++) {
        rep->scale_min = fminf(rep->scale_min, f[i]);
        rep->scale_max = fmaxf(rep->scale_max, f[i]);
    }
    rep->weight_sqnr_db = fmin(rep->weight_sqnr_db, qw->wq.sqnr_db);
}

oq_status oq_rw_bias_site(rewriter *r, oq_bias_site site, const qweight *qw)
{
    if (!r->sites)
        return OQ_OK;
    int64_t ns = oq_tensor_numel(&qw->wq.scales);
    oq_bias_site *grown = realloc(r->sites->s, (size_t)(r->sites->n + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    r->sites->s = grown;
    if (!(site.w_scales = malloc((size_t)(site.channels ? site.channels : 1) * sizeof *site.w_scales)))
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    const float *scales = qw->wq.scales.data;
    for (int64_t c = 0; c < site.channels; c++)
        site.w_scales[c] = scales[ns == site.channels ? c : 0];
    const float *after = site.bias_after;
    site.bias_after = NULL;
    if (after && !(site.bias_after = malloc((size_t)(site.channels ? site.channels : 1) * sizeof *after))) {
        free(site.w_scales);
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    }
    if (after)
        memcpy(site.bias_after, after, (size_t)site.channels * sizeof *after);
    site.node = r->current;
    r->sites->s[r->sites->n++] = site;
    return OQ_OK;
}
