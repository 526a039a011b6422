/* bias_correction.c: empirical bias correction (see oq_correct.h, correct.h).
 *
 * For a product y = W x + b (Conv, MatMul, Gemm), the mean of output channel
 * c over every position of every sample is linear in the inputs' means:
 *     E[y_c] = sum over taps t of W[c, t] * E[x at t] + b_c,
 * where a tap is an (input channel, kernel offset) pair of a Conv (the mean of
 * x over the positions that offset reads, padding counting as 0) or an input
 * column of a MatMul. The float model gives E[y_c] directly (the mean of its
 * output channel, before any activation); the quantized model gives the tap
 * means of the 8-bit input its product actually reads, after every layer
 * before it was quantized and corrected. The corrected bias is then
 *     b~_c = E[y_c] - sum_t W~[c, t] * E[x~ at t],
 * with W~ the dequantized weights: the quantized product's mean, before its
 * output is rounded, equals the float one. Its output rounding is left
 * alone; the next layer's correction sees what it does to that layer's input.
 *
 * One pass: every sample's run of the quantized model is kept open (an
 * oq_run_state each) and advanced to the next product in graph order; its
 * input's tap means are taken over all samples, its bias set, and the runs
 * go on through it with the new bias. The float side is one run per sample,
 * made once per prepared model and kept for every plan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_exec.h"
#include "quant/correct.h"

/* ---- the float reference ------------------------------------------------------------- */

struct oq_bias_reference {
    int n_nodes;           /* of the graph it was made on */
    int64_t *offset;       /* [n_nodes]: node i's first channel in a sample's row of sums, -1 when not kept */
    int64_t *channels;     /* [n_nodes] */
    int64_t width;         /* channels of all kept nodes: one sample's row */
    int64_t samples;
    double *sums;          /* [samples][width]: per channel, the sum of the node's output over the sample */
    double *counts;        /* [samples][n_nodes]: elements summed per channel (-1: the output did not fit) */
    int64_t peak_bytes;    /* the most activation memory one sample's run held */
};

void oq_bias_reference_destroy(oq_bias_reference *r)
{
    if (!r)
        return;
    free(r->offset);
    free(r->channels);
    free(r->sums);
    free(r->counts);
    free(r);
}

/* Output channels of product n, from its constant weight (0 when n is not a
 * product with a constant weight of the rank it needs). */
static int64_t product_channels(const oq_node *n)
{
    const oq_value *w = oq_node_input(n, 1);
    if (!w || !w->constant || n->n_outputs < 1 || !n->outputs[0])
        return 0;
    const oq_tensor *t = w->constant;
    switch (n->kind) {
    case OQ_OP_CONV: return t->rank >= 3 ? t->dims[0] : 0;
    case OQ_OP_MATMUL: return t->rank == 2 ? t->dims[1] : 0;
    case OQ_OP_GEMM: return t->rank == 2 ? t->dims[oq_node_attr_int(n, "transB", 0) ? 0 : 1] : 0;
    default: return 0;
    }
}

typedef struct ref_worker {
    oq_session *s;
    oq_tensor *ins, *outs;
    int n_in, n_out;
    int64_t sample;       /* the sample being run */
    int64_t peak;
} ref_worker;

typedef struct ref_run {
    oq_bias_reference *r;
    const oq_graph *g;
    const oq_dataset *ds;
    int *node_of_value;   /* [n_values]: the kept node writing it, or -1 */
    ref_worker *w;
} ref_run;

/* Observer: adds one kept node's output, per channel, to its worker's sample row. */
static void ref_observe(void *user, const oq_value *v, const oq_tensor *t)
{
    void **ctx = user;
    ref_run *run = ctx[0];
    ref_worker *w = ctx[1];
    oq_bias_reference *r = run->r;
    int i = v->graph == run->g && v->id < run->g->n_values ? run->node_of_value[v->id] : -1;
    if (i < 0 || t->dtype != OQ_DTYPE_FLOAT || t->rank < 1)
        return;
    int64_t ch = r->channels[i], numel = oq_tensor_numel(t), outer, inner;
    double *sums = r->sums + w->sample * r->width + r->offset[i], *count = &r->counts[w->sample * r->n_nodes + i];
    bool conv = run->g->nodes[i]->kind == OQ_OP_CONV;
    if (conv ? t->rank < 2 || t->dims[1] != ch : t->dims[t->rank - 1] != ch) {
        *count = -1;
        return;
    }
    inner = conv ? numel / (t->dims[0] * ch) : 1;
    outer = numel / (ch * inner);
    const float *x = t->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++) {
            const float *p = x + (o * ch + c) * inner;
            double s = 0;
            for (int64_t k = 0; k < inner; k++)
                s += p[k];
            sums[c] += s;
        }
    if (*count >= 0)
        *count += (double)(outer * inner);
}

static oq_status ref_begin(void *user, int k, int64_t b, oq_err *err)
{
    (void)user, (void)k, (void)b, (void)err;
    return OQ_OK;
}

static oq_status ref_sample(void *user, int k, int64_t i, oq_err *err)
{
    ref_run *run = user;
    ref_worker *w = &run->w[k];
    w->sample = i;
    oq_status st = oq_dataset_load(run->ds, i, w->ins, err);
    if (!st)
        st = oq_session_run(w->s, w->ins, w->outs, err);
    if (!st) {
        oq_exec_stats es;
        oq_session_stats(w->s, &es);
        if ((int64_t)es.peak_bytes > w->peak)
            w->peak = (int64_t)es.peak_bytes;
    } else {
        oq_err_context(err, "sample %lld", (long long)i);
    }
    for (int j = 0; j < w->n_in; j++)
        oq_tensor_release(&w->ins[j]);
    for (int j = 0; j < w->n_out; j++)
        oq_tensor_release(&w->outs[j]);
    return st;
}

static oq_status ref_fold(void *user, int k, int64_t b, oq_err *err)
{
    (void)user, (void)k, (void)b, (void)err;
    return OQ_OK;
}

oq_status oq_bias_reference_create(oq_bias_reference **out, const oq_model *m, oq_dataset *ds, int64_t max_samples,
                                   int threads, oq_err *err)
{
    *out = NULL;
    const oq_graph *g = m->graph;
    int64_t total = oq_dataset_count(ds);
    if (max_samples > 0 && max_samples < total)
        total = max_samples;
    if (total > OQ_BIAS_CORRECTION_MAX_SAMPLES)
        total = OQ_BIAS_CORRECTION_MAX_SAMPLES;
    oq_bias_reference *r = calloc(1, sizeof *r);
    ref_run run = {.r = r, .g = g, .ds = ds};
    bool *observed = calloc((size_t)g->n_values + 1, sizeof *observed);
    void **ctx = NULL;
    int n_workers = 0, threads_each = 1;
    oq_status st = OQ_OK;
    if (!r || !observed || !(run.node_of_value = malloc(((size_t)g->n_values + 1) * sizeof *run.node_of_value)) ||
        !(r->offset = malloc(((size_t)g->n_nodes + 1) * sizeof *r->offset)) ||
        !(r->channels = calloc((size_t)g->n_nodes + 1, sizeof *r->channels))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    r->n_nodes = g->n_nodes;
    r->samples = total;
    for (int v = 0; v < g->n_values; v++)
        run.node_of_value[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        r->channels[i] = product_channels(n);
        r->offset[i] = r->channels[i] ? r->width : -1;
        r->width += r->channels[i];
        if (r->channels[i] && n->outputs[0]->graph == g) {
            run.node_of_value[n->outputs[0]->id] = i;
            observed[n->outputs[0]->id] = true;
        }
    }
    if (!(r->sums = calloc((size_t)(total * r->width) + 1, sizeof *r->sums)) ||
        !(r->counts = calloc((size_t)(total * r->n_nodes) + 1, sizeof *r->counts))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    oq_sample_block_workers(threads, total, 8, &n_workers, &threads_each);
    run.w = calloc((size_t)n_workers, sizeof *run.w);
    ctx = calloc((size_t)n_workers * 2, sizeof *ctx);
    if (!run.w || !ctx) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    oq_exec_options eo = {.threads = threads_each, .observed = observed};
    for (int k = 0; !st && k < n_workers; k++) {
        ref_worker *w = &run.w[k];
        if ((st = oq_session_create(&w->s, m, &eo, err)))
            break;
        w->n_in = oq_session_input_count(w->s);
        w->n_out = oq_session_output_count(w->s);
        w->ins = calloc((size_t)w->n_in + 1, sizeof *w->ins);
        w->outs = calloc((size_t)w->n_out + 1, sizeof *w->outs);
        if (!w->ins || !w->outs)
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
        ctx[2 * k] = &run;
        ctx[2 * k + 1] = w;
        oq_session_set_observer(w->s, ref_observe, &ctx[2 * k]);
    }
    oq_block_fns fns = {.user = &run, .begin = ref_begin, .sample = ref_sample, .fold = ref_fold};
    if (!st)
        st = oq_run_sample_blocks(total, 8, n_workers, &fns, err);
    for (int k = 0; k < n_workers && run.w; k++)
        if (run.w[k].peak > r->peak_bytes)
            r->peak_bytes = run.w[k].peak;
done:
    for (int k = 0; run.w && k < n_workers; k++) {
        oq_session_destroy(run.w[k].s);
        free(run.w[k].ins);
        free(run.w[k].outs);
    }
    free(run.w);
    free(ctx);
    free(run.node_of_value);
    free(observed);
    if (st) {
        oq_bias_reference_destroy(r);
        return st;
    }
    *out = r;
    return OQ_OK;
}

/* ---- tap means of a product's input ---------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* One spatial axis of a Conv: for kernel offset k, the input index of the first
 * output position that reads inside the input, and how many do. */
typedef struct conv_axis {
    int64_t in, out, k, stride, dil, pad0;
} conv_axis;

static void axis_span(const conv_axis *a, int64_t k, int64_t *first, int64_t *len)
{
    int64_t off = k * a->dil - a->pad0; /* input index read by output position 0 */
    int64_t lo = off >= 0 ? 0 : floor_div(-off + a->stride - 1, a->stride);
    int64_t hi = floor_div(a->in - 1 - off, a->stride) + 1;
    if (hi > a->out)
        hi = a->out;
    *len = hi > lo ? hi - lo : 0;
    *first = lo * a->stride + off;
}

/* Up to three spatial axes of Conv op reading x (dims) with weights w (dims),
 * as ONNX defines them (attributes strides, dilations, pads, auto_pad);
 * missing axes are 1 wide. False when the geometry does not fit. */
static bool conv_geometry(const oq_node *op, const oq_tensor *x, const oq_tensor *w, conv_axis ax[3])
{
    int d = x->rank - 2;
    if (d < 1 || d > 3 || w->rank != x->rank)
        return false;
    int ns = 0, nd = 0, np = 0;
    const int64_t *st = oq_node_attr_ints(op, "strides", &ns), *dl = oq_node_attr_ints(op, "dilations", &nd),
                  *pd = oq_node_attr_ints(op, "pads", &np);
    const char *ap = oq_node_attr_string(op, "auto_pad", "NOTSET");
    bool upper = !strcmp(ap, "SAME_UPPER"), same = upper || !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    for (int a = 0; a < 3; a++)
        ax[a] = (conv_axis){1, 1, 1, 1, 1, 0};
    for (int a = 0; a < d; a++) {
        conv_axis *c = &ax[3 - d + a];
        c->in = x->dims[2 + a];
        c->k = w->dims[2 + a];
        c->stride = st && ns == d ? st[a] : 1;
        c->dil = dl && nd == d ? dl[a] : 1;
        int64_t ext = c->dil * (c->k - 1) + 1, p1;
        if (c->stride < 1 || c->dil < 1)
            return false;
        if (same) {
            c->out = (c->in + c->stride - 1) / c->stride;
            int64_t pad = (c->out - 1) * c->stride + ext - c->in;
            pad = pad < 0 ? 0 : pad;
            c->pad0 = upper ? pad / 2 : pad - pad / 2;
        } else {
            c->pad0 = valid || !pd || np != 2 * d ? 0 : pd[a];
            p1 = valid || !pd || np != 2 * d ? 0 : pd[d + a];
            int64_t span = c->in + c->pad0 + p1 - ext;
            if (span < 0)
                return false;
            c->out = span / c->stride + 1;
        }
    }
    return true;
}

/* Dequantizes: an 8-bit tensor at (scale, zero point), or a float one as it is. */
typedef struct x_params {
    double scale;
    int32_t zero_point;
} x_params;

/* Sum of x over the positions of a grid: three axes of starts, steps and lengths. */
static double grid_sum(const oq_tensor *x, int64_t base, const int64_t first[3], const int64_t step[3],
                       const int64_t len[3], const int64_t stride[3], x_params p)
{
    int64_t n = len[0] * len[1] * len[2];
    if (!n)
        return 0;
    if (x->dtype == OQ_DTYPE_FLOAT) {
        const float *d = x->data;
        double s = 0;
        for (int64_t i = 0; i < len[0]; i++)
            for (int64_t j = 0; j < len[1]; j++) {
                const float *row =
                    d + base + (first[0] + i * step[0]) * stride[0] + (first[1] + j * step[1]) * stride[1];
                for (int64_t k = 0; k < len[2]; k++)
                    s += row[(first[2] + k * step[2]) * stride[2]];
            }
        return s;
    }
    int64_t s = 0;
    bool sign = x->dtype == OQ_DTYPE_INT8;
    const uint8_t *d = x->data;
    for (int64_t i = 0; i < len[0]; i++)
        for (int64_t j = 0; j < len[1]; j++) {
            const uint8_t *row = d + base + (first[0] + i * step[0]) * stride[0] + (first[1] + j * step[1]) * stride[1];
            for (int64_t k = 0; k < len[2]; k++) {
                int64_t at = (first[2] + k * step[2]) * stride[2];
                s += sign ? (int64_t)(int8_t)row[at] : (int64_t)row[at];
            }
        }
    return p.scale * ((double)s - (double)p.zero_point * (double)n);
}

/* Sums over samples of x at each tap of a product: [in_ch][taps]. */
typedef struct tap_sums {
    int64_t in_ch, taps;
    double *sum;
    double count;         /* output positions per channel, over samples */
} tap_sums;

/* Adds Conv op's input x (one sample) to t. */
static bool add_conv_taps(tap_sums *t, const oq_node *op, const oq_tensor *x, const oq_tensor *w, x_params p)
{
    conv_axis ax[3];
    if (!conv_geometry(op, x, w, ax) || x->dims[1] != t->in_ch)
        return false;
    int64_t plane = ax[0].in * ax[1].in * ax[2].in, stride[3] = {ax[1].in * ax[2].in, ax[2].in, 1};
    int64_t step[3] = {ax[0].stride, ax[1].stride, ax[2].stride};
    for (int64_t n = 0; n < x->dims[0]; n++)
        for (int64_t c = 0; c < t->in_ch; c++) {
            double *out = t->sum + c * t->taps;
            int64_t tap = 0;
            for (int64_t k0 = 0; k0 < ax[0].k; k0++)
                for (int64_t k1 = 0; k1 < ax[1].k; k1++)
                    for (int64_t k2 = 0; k2 < ax[2].k; k2++, tap++) {
                        int64_t first[3], len[3];
                        axis_span(&ax[0], k0, &first[0], &len[0]);
                        axis_span(&ax[1], k1, &first[1], &len[1]);
                        axis_span(&ax[2], k2, &first[2], &len[2]);
                        out[tap] += grid_sum(x, (n * t->in_ch + c) * plane, first, step, len, stride, p);
                    }
        }
    t->count += (double)(x->dims[0] * ax[0].out * ax[1].out * ax[2].out);
    return true;
}

/* Adds a MatMul/Gemm input x (one sample, [..., K]) to t. */
static bool add_row_taps(tap_sums *t, const oq_tensor *x, x_params p)
{
    if (x->rank < 1 || x->dims[x->rank - 1] != t->in_ch)
        return false;
    int64_t rows = oq_tensor_numel(x) / (t->in_ch ? t->in_ch : 1);
    int64_t first[3] = {0, 0, 0}, step[3] = {1, 1, 1}, len[3] = {1, 1, rows}, stride[3] = {0, 0, t->in_ch};
    for (int64_t k = 0; k < t->in_ch; k++)
        t->sum[k] += grid_sum(x, k, first, step, len, stride, p);
    t->count += (double)rows;
    return true;
}

/* ---- the pass over the quantized model ------------------------------------------------- */

/* Index of node op in g (g->nodes is topological), or -1. */
static int node_index(const oq_graph *g, const oq_node *op)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == op)
            return i;
    return -1;
}

typedef struct ordered_site {
    const oq_bias_site *s;
    int at;               /* its op's index in the rewritten graph */
} ordered_site;

static int by_position(const void *a, const void *b)
{
    int x = ((const ordered_site *)a)->at, y = ((const ordered_site *)b)->at;
    return x < y ? -1 : x > y;
}

/* A run-time scalar of state rs (dynamic mode's scale or zero point) as a double. */
static bool state_scalar(const oq_run_state *rs, const oq_value *v, double *out)
{
    const oq_tensor *t = oq_run_state_get(rs, v);
    if (!t || oq_tensor_numel(t) != 1)
        return false;
    *out = oq_tensor_get_f64(t, 0);
    return true;
}

/* The input's tap sums of site s over the states, into t (allocated here). */
static bool measure_site(const oq_bias_site *s, oq_run_state **states, int64_t n, tap_sums *t, oq_err *err,
                         oq_status *st)
{
    const oq_tensor *w = s->w->constant;
    bool conv = s->layout == OQ_WEIGHT_CONV;
    memset(t, 0, sizeof *t);
    t->in_ch = conv ? w->dims[1] * oq_node_attr_int(s->op, "group", 1)
                    : w->dims[s->layout == OQ_WEIGHT_KN ? 0 : 1];
    t->taps = 1;
    for (int a = 2; conv && a < w->rank; a++)
        t->taps *= w->dims[a];
    if (!(t->sum = calloc((size_t)(t->in_ch * t->taps) + 1, sizeof *t->sum))) {
        *st = oq_errf(err, OQ_ENOMEM, "out of memory");
        return false;
    }
    for (int64_t k = 0; k < n; k++) {
        const oq_tensor *x = oq_run_state_get(states[k], s->x);
        x_params p = {s->x_scale, s->x_zero_point};
        double zp = 0;
        if (s->x_scale_v && (!state_scalar(states[k], s->x_scale_v, &p.scale) ||
                             !state_scalar(states[k], s->x_zero_point_v, &zp)))
            return false;
        if (s->x_scale_v)
            p.zero_point = (int32_t)zp;
        if (!x || (x->dtype != OQ_DTYPE_FLOAT && x->dtype != OQ_DTYPE_UINT8 && x->dtype != OQ_DTYPE_INT8))
            return false;
        if (conv ? !add_conv_taps(t, s->op, x, w, p) : !add_row_taps(t, x, p))
            return false;
    }
    return t->count > 0;
}

/* sum over taps of channel c's dequantized-weight integers (w - zero point) times the tap means. */
static double weighted_taps(const oq_bias_site *s, const tap_sums *t, int64_t c)
{
    const oq_tensor *w = s->w->constant;
    bool sign = w->dtype == OQ_DTYPE_INT8;
    const uint8_t *q = w->data;
    double acc = 0;
#define WQ(i) ((double)(sign ? (int32_t)(int8_t)q[i] : (int32_t)q[i]) - s->w_zero_point)
    if (s->layout == OQ_WEIGHT_CONV) {
        int64_t per = w->dims[1], groups = oq_node_attr_int(s->op, "group", 1);
        int64_t g = c / (s->channels / groups);
        for (int64_t i = 0; i < per; i++)
            for (int64_t k = 0; k < t->taps; k++)
                acc += WQ((c * per + i) * t->taps + k) * t->sum[(g * per + i) * t->taps + k];
    } else {
        int64_t K = t->in_ch, N = s->channels;
        for (int64_t k = 0; k < K; k++)
            acc += WQ(s->layout == OQ_WEIGHT_KN ? k * N + c : c * K + k) * t->sum[k];
    }
#undef WQ
    return acc / t->count;
}

/* Sets site s's bias from the float means ref_mean[c] and its input's tap sums t;
 * adds |change| in output steps to *shift (when the output has a step). */
static void set_bias(const oq_bias_site *s, const tap_sums *t, const double *ref_mean, double *shift)
{
    oq_tensor *b = s->bias->constant;
    int64_t nb = oq_tensor_numel(b);
    for (int64_t c = 0; c < s->channels && c < nb; c++) {
        double ws = s->w_scales[c];
        double want = ref_mean[c] + (s->bias_after ? s->bias_after[c] : 0.0) - ws * weighted_taps(s, t, c);
        double before, after;
        if (s->bias_int32) {
            double unit = (double)s->x_scale * ws, q = nearbyint(want / unit);
            q = q > 2147483647.0 ? 2147483647.0 : q < -2147483648.0 ? -2147483648.0 : q;
            int32_t *d = b->data;
            before = d[c] * unit;
            d[c] = (int32_t)q;
            after = q * unit;
        } else {
            float *d = b->data;
            before = d[c];
            d[c] = (float)want;
            after = d[c];
        }
        if (s->out_scale > 0)
            *shift += fabs(after - before) / s->out_scale;
    }
}

/* QDQ: the runs in progress already hold the DequantizeLinear output that
 * site s reads its bias through; gives them the corrected one, computed as
 * that node computes it (int32 times its float scale). */
static oq_status refresh_dequantized_bias(const oq_bias_site *s, oq_run_state **states, int64_t n, oq_err *err)
{
    const oq_tensor *q = s->bias->constant, *scale = s->bias_dq_scale->constant;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, q->rank, q->dims, err);
    if (!t)
        return err->status;
    int64_t nq = oq_tensor_numel(q), ns = oq_tensor_numel(scale);
    const int32_t *qd = q->data;
    const float *sd = scale->data;
    float *d = t->data;
    for (int64_t i = 0; i < nq; i++)
        d[i] = (float)qd[i] * sd[ns == nq ? i : 0];
    oq_status st = OQ_OK;
    for (int64_t j = 0; j < n && !st; j++)
        st = oq_run_state_set(states[j], s->bias_dq, t, err);
    oq_tensor_destroy(t);
    return st;
}

/* The float means of node i's output channels over the first n samples of
 * ref into mean[channels]; false when the node was not measured there. */
static bool reference_means(const oq_bias_reference *ref, int i, int64_t n, int64_t channels, double *mean)
{
    if (i < 0 || i >= ref->n_nodes || ref->offset[i] < 0 || ref->channels[i] != channels)
        return false;
    double count = 0;
    for (int64_t c = 0; c < channels; c++)
        mean[c] = 0;
    for (int64_t k = 0; k < n; k++) {
        double ck = ref->counts[k * ref->n_nodes + i];
        if (ck < 0)
            return false;
        count += ck;
        for (int64_t c = 0; c < channels; c++)
            mean[c] += ref->sums[k * ref->width + ref->offset[i] + c];
    }
    if (!(count > 0))
        return false;
    for (int64_t c = 0; c < channels; c++)
        mean[c] /= count;
    return true;
}

oq_status oq_bias_correct(oq_model *m, const oq_bias_sites *sites, const oq_bias_reference *ref, oq_dataset *ds,
                          int threads, oq_bias_correction *out, oq_err *err)
{
    const oq_graph *g = m->graph;
    out->applied = true;
    out->why_not = NULL;
    /* every sample's run stays open: as many as the float runs' peak memory allows */
    int64_t n = ref->samples;
    if (ref->peak_bytes > 0 && n > OQ_BIAS_CORRECTION_MAX_BYTES / ref->peak_bytes)
        n = OQ_BIAS_CORRECTION_MAX_BYTES / ref->peak_bytes;
    if (n < 1)
        n = 1;
    out->samples = n;
    ordered_site *order = calloc((size_t)sites->n + 1, sizeof *order);
    bool *observed = calloc((size_t)g->n_values + 1, sizeof *observed);
    oq_run_state **states = calloc((size_t)n, sizeof *states);
    oq_tensor *ins = NULL;
    double *mean = NULL;
    oq_session *s = NULL;
    tap_sums t = {0};
    int64_t max_ch = 1, loaded = 0;
    double shift = 0;
    int64_t shifted = 0;
    oq_status st = OQ_OK;
    if (!order || !observed || !states) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    int n_order = 0;
    for (int k = 0; k < sites->n; k++) {
        const oq_bias_site *si = &sites->s[k];
        if (!si->bias) {
            out->nodes_without_bias++;
            continue;
        }
        order[n_order++] = (ordered_site){si, node_index(g, si->op)};
        const oq_value *vs[3] = {si->x, si->x_scale_v, si->x_zero_point_v};
        for (int j = 0; j < 3; j++)
            if (vs[j] && vs[j]->graph == g && !vs[j]->constant)
                observed[vs[j]->id] = true;
        if (si->channels > max_ch)
            max_ch = si->channels;
    }
    qsort(order, (size_t)n_order, sizeof *order, by_position);
    if (!(mean = malloc((size_t)max_ch * sizeof *mean))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    oq_exec_options eo = {.threads = threads, .observed = observed};
    if ((st = oq_session_create(&s, m, &eo, err)))
        goto done;
    int n_in = oq_session_input_count(s);
    if (!(ins = calloc((size_t)n_in + 1, sizeof *ins))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (loaded = 0; loaded < n; loaded++) {
        if ((st = oq_run_state_create(&states[loaded], s, err)))
            goto done;
        st = oq_dataset_load(ds, loaded, ins, err);
        if (!st)
            st = oq_run_state_feed(states[loaded], ins, err);
        for (int j = 0; j < n_in; j++)
            oq_tensor_release(&ins[j]);
        if (st)
            goto done;
    }
    int at = 0;
    for (int k = 0; k < n_order; k++) {
        const oq_bias_site *si = order[k].s;
        if (order[k].at < at)
            continue; /* not found in the graph */
        for (int64_t j = 0; j < n && !st; j++)
            st = oq_session_run_steps(s, states[j], at, order[k].at, err);
        if (st) {
            oq_err_context(err, "bias correction");
            goto done;
        }
        at = order[k].at;
        bool ok = measure_site(si, states, n, &t, err, &st) && reference_means(ref, si->node, n, si->channels, mean);
        if (st)
            goto done;
        if (ok) {
            set_bias(si, &t, mean, &shift);
            if (si->bias_dq && (st = refresh_dequantized_bias(si, states, n, err)))
                goto done;
            out->nodes++;
            out->channels += si->channels;
            shifted += si->out_scale > 0 ? si->channels : 0;
        }
        free(t.sum);
        t.sum = NULL;
    }
    out->mean_abs_shift = shifted ? shift / (double)shifted : 0;
done:
    free(t.sum);
    for (int64_t j = 0; states && j < n; j++)
        oq_run_state_destroy(states[j]);
    free(states);
    oq_session_destroy(s);
    free(ins);
    free(mean);
    free(observed);
    free(order);
    return st;
}
