/* weights.c: weights and biases in the rewrite: int8 weights shared per
 * constant, bias scale floors, int32 biases, Gemm's weight in MatMul layout
 * and its beta * C. See rewrite.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rewrite.h"

oq_status oq_rw_bias_floors(rewriter *r, const oq_value *b, float factor, float input_scale, int64_t n, float **out)
{
    *out = NULL;
    if (!b)
        return OQ_OK;
    float *f = calloc((size_t)(n ? n : 1), sizeof *f);
    if (!f)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    int64_t nb = oq_tensor_numel(b->constant);
    for (int64_t c = 0; c < n; c++)
        f[c] = (float)(fabs(factor * oq_tensor_get_f64(b->constant, nb == 1 ? 0 : c)) /
                       ((double)input_scale * 1073741824.0));
    *out = f;
    return OQ_OK;
}

/* Adds qw's int8 weights, scales and zero points to the graph as initializers named after its source. */
static oq_status weight_initializers(rewriter *r, qweight *qw)
{
    const char *suffix[3] = {"_quantized", "_scale", "_zero_point"};
    const oq_tensor *src[3] = {&qw->wq.q, &qw->wq.scales, &qw->wq.zeros};
    oq_value **dst[3] = {&qw->q, &qw->scale, &qw->zp};
    for (int i = 0; i < 3; i++) {
        char base[512];
        oq_tensor t;
        snprintf(base, sizeof base, "%s%s", qw->src->name, suffix[i]);
        oq_status st = oq_tensor_copy(&t, src[i], r->err);
        if (st || (st = oq_rw_initializer_from(r, base, &t, dst[i])))
            return st;
    }
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

oq_status oq_rw_bias(rewriter *r, const oq_value *b, float input_scale, const qweight *qw, oq_value **out)
{
    oq_tensor t;
    oq_status st = oq_quantize_bias(&t, b->constant, input_scale, &qw->wq.scales, r->err);
    if (st)
        return st;
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", b->name);
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

oq_status oq_rw_gemm_bias(rewriter *r, const oq_node *n, int64_t N, oq_tensor **out)
{
    *out = NULL;
    const oq_value *c = oq_node_input(n, 2);
    if (!c)
        return OQ_OK;
    float beta = oq_node_attr_float(n, "beta", 1.0f);
    int64_t nd[1] = {N};
    oq_tensor *cb = oq_tensor_create(OQ_DTYPE_FLOAT, 1, nd, r->err);
    if (!cb)
        return r->err->status;
    int64_t cn = oq_tensor_numel(c->constant);
    for (int64_t j = 0; j < N; j++)
        ((float *)cb->data)[j] = beta * (float)oq_tensor_get_f64(c->constant, cn == 1 ? 0 : j);
    *out = cb;
    return OQ_OK;
}

oq_status oq_rw_gemm_operands(rewriter *r, oq_node *n, int64_t *N, oq_value **xq, qinfo **xi, qweight **qw)
{
    oq_value *x = n->inputs[0], *wf;
    float *floors = NULL;
    /* the integer ops want B as [K, N]: transpose and fold alpha into the float weights first */
    oq_status st = oq_rw_gemm_weight_kn(r, n, N, &wf);
    if (!st)
        st = oq_rw_params(r, x, xi);
    if (!st)
        st = oq_rw_bias_floors(r, oq_node_input(n, 2), oq_node_attr_float(n, "beta", 1.0f), (*xi)->p.scale, *N,
                               &floors);
    if (!st)
        st = oq_rw_weight(r, wf, 1, floors, qw);
    free(floors);
    if (!st)
        st = oq_rw_quantized(r, x, xq);
    return st;
}

oq_status oq_rw_gemm_bias_int32(rewriter *r, const oq_node *n, int64_t N, float x_scale, const qweight *qw,
                                oq_value **out)
{
    oq_tensor *cb, bt;
    oq_status st = oq_rw_gemm_bias(r, n, N, &cb);
    if (st)
        return st;
    st = oq_quantize_bias(&bt, cb, x_scale, &qw->wq.scales, r->err);
    oq_tensor_destroy(cb);
    if (st)
        return st;
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", oq_node_input(n, 2)->name);
    return oq_rw_initializer_from(r, base, &bt, out);
}

void oq_rw_report_weight(oq_quant_node *rep, const qweight *qw)
{
    const oq_tensor *s = &qw->wq.scales;
    int64_t n = oq_tensor_numel(s);
    const float *f = s->data;
    rep->n_scales = (int)n;
    rep->scale_min = rep->scale_max = f[0];
    for (int64_t i = 1; i < n; i++) {
        rep->scale_min = fminf(rep->scale_min, f[i]);
        rep->scale_max = fmaxf(rep->scale_max, f[i]);
    }
    rep->weight_sqnr_db = qw->wq.sqnr_db;
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
    site.node = r->current;
    r->sites->s[r->sites->n++] = site;
    return OQ_OK;
}
