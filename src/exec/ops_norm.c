/* ops_norm.c: normalizations (BatchNormalization in inference mode,
 * LayerNormalization, InstanceNormalization, LRN) and Softmax/LogSoftmax.
 *
 * All float32 in and out; per-row statistics are accumulated in double.
 * Rows are independent, so they run in parallel with results that do not
 * depend on the thread count. */
#include <math.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "exec/broadcast.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/vmath.h"

/* Requires input k present and float32; returns it or NULL with c->err set. */
static const oq_tensor *float_input(oq_kernel_ctx *c, int k)
{
    const oq_tensor *t = oq_kernel_require(c, k);
    if (t && t->dtype != OQ_DTYPE_FLOAT) {
        OQ_KUNSUP(c, "input %d is %s; only float is supported", k, oq_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

/* Requires input k to be a float vector of n elements. */
static const float *channel_input(oq_kernel_ctx *c, int k, const char *what, int64_t n)
{
    const oq_tensor *t = float_input(c, k);
    if (!t)
        return NULL;
    if (oq_tensor_numel(t) != n) {
        OQ_KERR(c, "%s has %lld elements, expected %lld", what, (long long)oq_tensor_numel(t),
                (long long)n);
        return NULL;
    }
    return t->data;
}

/* ---- Softmax / LogSoftmax / Hardmax ------------------------------------------------
 * The input is viewed as (outer, n, inner): from opset 13 n is dims[axis]
 * (default axis -1); before, the shape is flattened to 2-D at axis (default
 * 1), so n is the product of dims[axis:] and inner is 1. Each of the
 * outer * inner lines (stride inner) is normalized on its own. Hardmax writes
 * 1 at the first maximum of a line and 0 elsewhere. */

enum softmax_kind { SM_SOFTMAX, SM_LOG, SM_HARD };

typedef struct softmax_arg {
    const float *x;
    float *y;
    int64_t n, inner;
    enum softmax_kind kind;
} softmax_arg;

/* y[k] = e^(x[k] - mx) for k < n, contiguous lines (vectorized). */
OQ_CLONED(exp_shifted, (float *restrict y, const float *restrict x, float mx, int64_t n), (y, x, mx, n))
{
    for (int64_t k = 0; k < n; k++)
        y[k] = oq_vexpf(x[k] - mx);
}

static void softmax_lines(void *arg, int64_t l0, int64_t l1)
{
    const softmax_arg *p = arg;
    const int64_t n = p->n, s = p->inner;
    for (int64_t l = l0; l < l1; l++) {
        const int64_t base = (l / s) * n * s + l % s;
        const float *x = p->x + base;
        float *y = p->y + base;
        float mx = -INFINITY;
        int64_t arg = 0;
        for (int64_t k = 0; k < n; k++) {
            if (x[k * s] > mx) {
                mx = x[k * s];
                arg = k;
            }
        }
        double sum = 0.0;
        if (p->kind == SM_HARD) {
            for (int64_t k = 0; k < n; k++)
                y[k * s] = k == arg ? 1.0f : 0.0f;
        } else if (p->kind == SM_LOG) {
            for (int64_t k = 0; k < n; k++)
                sum += oq_vexpf(x[k * s] - mx);
            const float ls = (float)log(sum); /* y = (x - max) - log(sum): exact for large x */
            for (int64_t k = 0; k < n; k++)
                y[k * s] = (x[k * s] - mx) - ls;
        } else {
            if (s == 1)
                exp_shifted(y, x, mx, n);
            for (int64_t k = 0; k < n; k++) {
                const float e = s == 1 ? y[k] : oq_vexpf(x[k * s] - mx);
                y[k * s] = e;
                sum += e;
            }
            const float inv = (float)(1.0 / sum);
            for (int64_t k = 0; k < n; k++)
                y[k * s] *= inv;
        }
    }
}

static oq_status run_softmax(oq_kernel_ctx *c, enum softmax_kind kind)
{
    const oq_tensor *x = float_input(c, 0);
    if (!x)
        return c->err->status;
    const bool per_axis = c->opset >= 13;
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", per_axis ? -1 : 1), x->rank);
    if (axis < 0)
        return c->err->status;
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, x->rank, x->dims);
    if (!y)
        return c->err->status;
    if (oq_tensor_numel(y) == 0) /* nothing to do, however many empty lines */
        return OQ_OK;
    softmax_arg p = {.x = x->data, .y = y->data, .kind = kind};
    int64_t outer = oq_dims_prod(x->dims, 0, axis);
    if (per_axis) {
        p.n = x->dims[axis];
        p.inner = oq_dims_prod(x->dims, axis + 1, x->rank);
    } else {
        p.n = oq_dims_prod(x->dims, axis, x->rank);
        p.inner = 1;
    }
    oq_par_run(c, outer * p.inner, p.n * 3, softmax_lines, &p);
    return OQ_OK;
}

static oq_status k_softmax(oq_kernel_ctx *c) { return run_softmax(c, SM_SOFTMAX); }
static oq_status k_log_softmax(oq_kernel_ctx *c) { return run_softmax(c, SM_LOG); }
static oq_status k_hardmax(oq_kernel_ctx *c) { return run_softmax(c, SM_HARD); }

/* ---- row normalization shared by LayerNorm and InstanceNorm --------------------
 * Row r of length n is normalized to zero mean and unit variance, then
 * y = xhat * scale + bias where scale/bias are either per element of the row
 * (LayerNorm) or one value per row selected by (r % channels) (InstanceNorm). */

typedef struct rownorm_arg {
    const float *x;
    float *y;
    int64_t n;
    float eps;
    const float *scale, *bias; /* (n) per element, or (channels) per row; bias may be NULL */
    int64_t channels;          /* 0: per element; else per row */
    float *mean, *inv_std;     /* (rows) optional outputs, or NULL */
} rownorm_arg;

static void rownorm_rows(void *arg, int64_t r0, int64_t r1)
{
    const rownorm_arg *p = arg;
    const int64_t n = p->n;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = p->x + r * n;
        float *y = p->y + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += x[i];
        const double mean = n ? sum / (double)n : 0.0;
        double var = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double d = x[i] - mean;
            var += d * d;
        }
        var = n ? var / (double)n : 0.0;
        const float inv = (float)(1.0 / sqrt(var + p->eps)), m = (float)mean;
        if (p->mean)
            p->mean[r] = m;
        if (p->inv_std)
            p->inv_std[r] = inv;
        if (p->channels) {
            const int64_t ch = r % p->channels;
            const float a = inv * p->scale[ch], b = p->bias ? p->bias[ch] : 0.0f;
            for (int64_t i = 0; i < n; i++)
                y[i] = (x[i] - m) * a + b;
        } else if (p->bias) {
            for (int64_t i = 0; i < n; i++)
                y[i] = (x[i] - m) * inv * p->scale[i] + p->bias[i];
        } else {
            for (int64_t i = 0; i < n; i++)
                y[i] = (x[i] - m) * inv * p->scale[i];
        }
    }
}

static void copy_f32_visit(void *arg, int64_t oo, const int64_t *io, const int64_t *st, int64_t n)
{
    void **pp = arg;
    float *o = (float *)pp[0] + oo;
    const float *s = (const float *)pp[1] + io[0];
    for (int64_t i = 0; i < n; i++)
        o[i] = s[i * st[0]];
}

/* Returns LayerNorm input k (Scale or B) as a dense (norm_rank, norm_dims)
 * array: the tensor's own data when it already has that many elements, else
 * a broadcast copy in scratch. NULL with c->err set when it does not fit. */
static const float *layernorm_param(oq_kernel_ctx *c, const oq_tensor *t, int norm_rank,
                                    const int64_t *norm_dims, int64_t n)
{
    int ranks[2] = {norm_rank, t->rank}, rank;
    const int64_t *dims[2] = {norm_dims, t->dims};
    int64_t bdims[OQ_MAX_RANK];
    if (oq_broadcast_shape(2, ranks, dims, &rank, bdims, c->err))
        return NULL;
    if (rank != norm_rank || memcmp(bdims, norm_dims, sizeof(int64_t) * (size_t)rank) != 0) {
        OQ_KERR(c, "Scale/B shape does not broadcast to the normalized shape");
        return NULL;
    }
    if (oq_tensor_numel(t) == n)
        return t->data;
    float *buf = oq_kernel_scratch(c, sizeof(float) * (size_t)n);
    if (!buf)
        return NULL;
    oq_bcast b;
    oq_bcast_init(&b, norm_rank, norm_dims, 1, &t->rank, &dims[1]);
    void *pp[2] = {buf, t->data};
    oq_bcast_walk(&b, 0, n, copy_f32_visit, pp);
    return buf;
}

static oq_status k_layer_norm(oq_kernel_ctx *c)
{
    const oq_tensor *x = float_input(c, 0), *scale = float_input(c, 1);
    if (!x || !scale)
        return c->err->status;
    const oq_tensor *bias = oq_kernel_input(c, 2);
    if (bias && bias->dtype != OQ_DTYPE_FLOAT)
        return OQ_KUNSUP(c, "B is %s; only float is supported", oq_dtype_name(bias->dtype));
    if (oq_node_attr_int(c->node, "stash_type", 1) != 1)
        return OQ_KUNSUP(c, "stash_type %lld is not supported (only 1, float)",
                         (long long)oq_node_attr_int(c->node, "stash_type", 1));
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", -1), x->rank);
    if (axis < 0)
        return c->err->status;
    const int64_t rows = oq_dims_prod(x->dims, 0, axis), n = oq_dims_prod(x->dims, axis, x->rank);
    rownorm_arg p = {.n = n, .eps = oq_node_attr_float(c->node, "epsilon", 1e-5f), .x = x->data};
    const int norm_rank = x->rank - axis;
    if (!(p.scale = layernorm_param(c, scale, norm_rank, x->dims + axis, n)))
        return c->err->status;
    if (bias && !(p.bias = layernorm_param(c, bias, norm_rank, x->dims + axis, n)))
        return c->err->status;
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, x->rank, x->dims);
    if (!y)
        return c->err->status;
    p.y = y->data;
    int64_t sdims[OQ_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sdims[i] = i < axis ? x->dims[i] : 1;
    for (int k = 1; k <= 2 && k < c->n_outputs; k++) {
        oq_tensor *t = oq_kernel_output(c, k, OQ_DTYPE_FLOAT, x->rank, sdims);
        if (!t)
            return c->err->status;
        *(k == 1 ? &p.mean : &p.inv_std) = t->data;
    }
    if (oq_tensor_numel(y) == 0 && c->n_outputs < 2) /* rows of nothing, and no statistics */
        return OQ_OK;
    oq_par_run(c, rows, n * 3, rownorm_rows, &p);
    return OQ_OK;
}

static oq_status k_instance_norm(oq_kernel_ctx *c)
{
    const oq_tensor *x = float_input(c, 0);
    if (!x)
        return c->err->status;
    if (x->rank < 2)
        return OQ_KERR(c, "input must be (N, C, ...), got rank %d", x->rank);
    const int64_t ch = x->dims[1];
    rownorm_arg p = {.x = x->data, .n = oq_dims_prod(x->dims, 2, x->rank), .channels = ch,
                     .eps = oq_node_attr_float(c->node, "epsilon", 1e-5f)};
    if (!(p.scale = channel_input(c, 1, "scale", ch)) || !(p.bias = channel_input(c, 2, "B", ch)))
        return c->err->status;
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, x->rank, x->dims);
    if (!y)
        return c->err->status;
    p.y = y->data;
    if (oq_tensor_numel(y) == 0)
        return OQ_OK;
    oq_par_run(c, x->dims[0] * ch, p.n * 3, rownorm_rows, &p);
    return OQ_OK;
}

/* ---- BatchNormalization (inference) ----------------------------------------------
 * y = x * a[c] + b[c] with a = scale / sqrt(var + eps), b = B - mean * a. */

typedef struct affine_arg {
    const float *x;
    float *y;
    int64_t n, channels;  /* row length (spatial size) and channel count */
    const float *a, *b;   /* (channels) */
} affine_arg;

static void affine_rows(void *arg, int64_t r0, int64_t r1)
{
    const affine_arg *p = arg;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t ch = r % p->channels;
        const float a = p->a[ch], b = p->b[ch];
        const float *restrict x = p->x + r * p->n;
        float *restrict y = p->y + r * p->n;
        for (int64_t i = 0; i < p->n; i++)
            y[i] = x[i] * a + b;
    }
}

static oq_status k_batch_norm(oq_kernel_ctx *c)
{
    if (oq_node_attr_int(c->node, "training_mode", 0) != 0)
        return OQ_KUNSUP(c, "training_mode=1 is not supported (inference only)");
    if (c->opset < 9 && oq_node_attr_int(c->node, "spatial", 1) == 0)
        return OQ_KUNSUP(c, "spatial=0 is not supported");
    for (int k = 1; k < c->n_outputs; k++)
        if (c->node->outputs[k])
            return OQ_KUNSUP(c, "training outputs (output %d) are not supported", k);
    const oq_tensor *x = float_input(c, 0);
    if (!x)
        return c->err->status;
    if (x->rank < 2)
        return OQ_KERR(c, "input must be (N, C, ...), got rank %d", x->rank);
    const int64_t ch = x->dims[1];
    const float *scale = channel_input(c, 1, "scale", ch), *bias = channel_input(c, 2, "B", ch);
    const float *mean = channel_input(c, 3, "mean", ch), *var = channel_input(c, 4, "var", ch);
    if (!scale || !bias || !mean || !var)
        return c->err->status;
    const double eps = oq_node_attr_float(c->node, "epsilon", 1e-5f);
    float *ab = oq_kernel_scratch(c, sizeof(float) * 2 * (size_t)ch);
    if (!ab)
        return c->err->status;
    for (int64_t i = 0; i < ch; i++) {
        const double a = scale[i] / sqrt((double)var[i] + eps);
        ab[i] = (float)a;
        ab[ch + i] = (float)(bias[i] - mean[i] * a);
    }
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, x->rank, x->dims); /* every row written */
    if (!y)
        return c->err->status;
    if (oq_tensor_numel(y) == 0)
        return OQ_OK;
    affine_arg p = {.x = x->data, .y = y->data, .n = oq_dims_prod(x->dims, 2, x->rank),
                    .channels = ch, .a = ab, .b = ab + ch};
    oq_par_run(c, x->dims[0] * ch, p.n, affine_rows, &p);
    return OQ_OK;
}

/* ---- LRN -------------------------------------------------------------------------
 * y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta, the
 * window being [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C). */

typedef struct lrn_arg {
    const float *x;
    float *y;
    int64_t channels, n; /* C and spatial size */
    int64_t lo, hi;      /* window reach below and above c */
    float alpha_over_size, beta, bias;
} lrn_arg;

static void lrn_rows(void *arg, int64_t r0, int64_t r1)
{
    const lrn_arg *p = arg;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t ch = r % p->channels, img = r / p->channels;
        const int64_t c0 = ch - p->lo < 0 ? 0 : ch - p->lo;
        const int64_t c1 = ch + p->hi >= p->channels ? p->channels - 1 : ch + p->hi;
        const float *x = p->x + r * p->n;
        float *y = p->y + r * p->n;
        for (int64_t i = 0; i < p->n; i++) {
            double sq = 0.0;
            for (int64_t k = c0; k <= c1; k++) {
                const float v = p->x[(img * p->channels + k) * p->n + i];
                sq += (double)v * v;
            }
            y[i] = x[i] / powf(p->bias + p->alpha_over_size * (float)sq, p->beta);
        }
    }
}

static oq_status k_lrn(oq_kernel_ctx *c)
{
    const oq_tensor *x = float_input(c, 0);
    if (!x)
        return c->err->status;
    if (x->rank < 3)
        return OQ_KERR(c, "input must be (N, C, D1, ...), got rank %d", x->rank);
    const int64_t size = oq_node_attr_int(c->node, "size", 0);
    if (size < 1)
        return OQ_KERR(c, "size must be a positive integer");
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, x->rank, x->dims);
    if (!y)
        return c->err->status;
    if (oq_tensor_numel(y) == 0)
        return OQ_OK;
    lrn_arg p = {.x = x->data, .y = y->data, .channels = x->dims[1],
                 .n = oq_dims_prod(x->dims, 2, x->rank), .lo = (size - 1) / 2, .hi = size / 2,
                 .alpha_over_size = oq_node_attr_float(c->node, "alpha", 1e-4f) / (float)size,
                 .beta = oq_node_attr_float(c->node, "beta", 0.75f),
                 .bias = oq_node_attr_float(c->node, "bias", 1.0f)};
    oq_par_run(c, x->dims[0] * p.channels, p.n * size, lrn_rows, &p);
    return OQ_OK;
}

/* ---- the table ------------------------------------------------------------------- */

const oq_op_def oq_ops_norm[] = {
    {"", "BatchNormalization", 7, OQ_DT(FLOAT), k_batch_norm},
    {"", "LayerNormalization", 17, OQ_DT(FLOAT), k_layer_norm},
    {"", "InstanceNormalization", 6, OQ_DT(FLOAT), k_instance_norm},
    {"", "LRN", 1, OQ_DT(FLOAT), k_lrn},
    {"", "Softmax", 1, OQ_DT(FLOAT), k_softmax},
    {"", "Softmax", 13, OQ_DT(FLOAT), k_softmax},
    {"", "LogSoftmax", 1, OQ_DT(FLOAT), k_log_softmax},
    {"", "LogSoftmax", 13, OQ_DT(FLOAT), k_log_softmax},
    {"", "Hardmax", 1, OQ_DT(FLOAT), k_hardmax},
    {"", "Hardmax", 13, OQ_DT(FLOAT), k_hardmax},
};
const int oq_ops_norm_count = (int)(sizeof oq_ops_norm / sizeof oq_ops_norm[0]);
