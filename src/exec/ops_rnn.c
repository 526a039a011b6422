/* ops_rnn.c: LSTM, GRU and RNN (float), forward, reverse and bidirectional,
 * with sequence_lens, initial states, LSTM peepholes, GRU
 * linear_before_reset, both layouts and any of the activations ONNX lists
 * for them (with activation_alpha/activation_beta).
 *
 * Per direction the input projection X W^T + biases is one GEMM over all time
 * steps; each step then adds H R^T, on R transposed once (kept across runs
 * when R is a constant), and applies the gate math.
 * Batch entries whose sequence has ended keep their state and write zeros to Y. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "cpu_dispatch.h"
#include "exec/gemm.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/vmath.h"

typedef enum rnn_kind { RNN_LSTM, RNN_GRU, RNN_SIMPLE } rnn_kind;

typedef enum act_kind {
    ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_AFFINE, ACT_LEAKY_RELU, ACT_THRESHOLDED_RELU, ACT_SCALED_TANH,
    ACT_HARD_SIGMOID, ACT_ELU, ACT_SOFTSIGN, ACT_SOFTPLUS,
} act_kind;

/* One activation of the `activations` list, with its parameters. */
typedef struct rnn_act {
    act_kind kind;
    float alpha, beta;
} rnn_act;

/* The activations an RNN may name (case as ONNX spells them; matched without
 * case, as ONNX Runtime does), which of alpha and beta each takes from
 * activation_alpha/activation_beta (in list order), and their defaults, those
 * of the ONNX operators of the same name. */
static const struct {
    const char *name;
    act_kind kind;
    bool has_alpha, has_beta;
    float alpha, beta;
} act_names[] = {
    {"Sigmoid", ACT_SIGMOID, false, false, 0, 0},         {"Tanh", ACT_TANH, false, false, 0, 0},
    {"Relu", ACT_RELU, false, false, 0, 0},               {"Affine", ACT_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", ACT_LEAKY_RELU, true, false, 0.01f, 0}, {"ThresholdedRelu", ACT_THRESHOLDED_RELU, true, false, 1.0f, 0},
    {"ScaledTanh", ACT_SCALED_TANH, true, true, 1.0f, 1.0f}, {"HardSigmoid", ACT_HARD_SIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", ACT_ELU, true, false, 1.0f, 0},               {"Softsign", ACT_SOFTSIGN, false, false, 0, 0},
    {"Softplus", ACT_SOFTPLUS, false, false, 0, 0},
};

enum { MAX_ACTS = 3 }; /* per direction: LSTM f, g, h; GRU f, g; RNN f */

/* Shapes and options of one node, read from its inputs and attributes. */
typedef struct rnn_setup {
    rnn_kind kind;
    int gates;                /* 4 (LSTM: i o f c), 3 (GRU: z r h), 1 (RNN) */
    int64_t seq, batch, in, hid;
    int dirs;                 /* 1 or 2 */
    bool reverse;             /* single direction runs backwards */
    int layout;               /* 0: (seq, batch, ...), 1: (batch, seq, ...) */
    float clip;               /* > 0: clip gate pre-activations to [-clip, clip] */
    rnn_act act[2][MAX_ACTS]; /* per direction: f (gates), g (candidate), h (LSTM output) */
    bool lbr;                 /* GRU linear_before_reset */
    const float *x;           /* layout 0: (seq, batch, in); 1: (batch, seq, in) */
    const float *w;           /* (dirs, gates*hid, in) */
    const float *r;           /* (dirs, gates*hid, hid) */
    const float *b;           /* (dirs, 2*gates*hid): W biases then R biases, or NULL */
    const float *h0;          /* layout 0: (dirs, batch, hid); 1: (batch, dirs, hid); or NULL */
    const float *c0;          /* LSTM initial cell, same layout as h0, or NULL */
    const float *p;           /* LSTM peepholes (dirs, 3*hid): i o f, or NULL */
    const int32_t *lens;      /* (batch) sequence lengths, or NULL for all seq */
    float *y, *yh, *yc;       /* outputs; yc only for LSTM */
} rnn_setup;

/* a(v) for one value; apply_act runs sigmoid and tanh as vector passes of the same functions. */
static float act(const rnn_act *a, float v)
{
    switch (a->kind) {
    case ACT_SIGMOID: return oq_vsigmoidf(v);
    case ACT_TANH: return oq_vtanhf(v);
    case ACT_RELU: return v > 0.0f ? v : 0.0f;
    case ACT_AFFINE: return a->alpha * v + a->beta;
    case ACT_LEAKY_RELU: return v >= 0.0f ? v : a->alpha * v;
    case ACT_THRESHOLDED_RELU: return v > a->alpha ? v : 0.0f;
    case ACT_SCALED_TANH: return a->alpha * oq_vtanhf(a->beta * v);
    case ACT_HARD_SIGMOID: return fmaxf(0.0f, fminf(1.0f, a->alpha * v + a->beta));
    case ACT_ELU: return v >= 0.0f ? v : a->alpha * (expf(v) - 1.0f);
    case ACT_SOFTSIGN: return v / (1.0f + fabsf(v));
    case ACT_SOFTPLUS: return v > 20.0f ? v : log1pf(expf(v));
    }
    return v;
}

static float clipf(float v, float clip)
{
    if (clip <= 0.0f) return v;
    return v < -clip ? -clip : v > clip ? clip : v;
}

/* Sigmoid and tanh of x[0..n) in place, in loops the compiler vectorizes. */
OQ_CLONED(sigmoid_rows, (float *x, int64_t n), (x, n))
{
    for (int64_t i = 0; i < n; i++)
        x[i] = oq_vsigmoidf(x[i]);
}

OQ_CLONED(tanh_rows, (float *x, int64_t n), (x, n))
{
    for (int64_t i = 0; i < n; i++)
        x[i] = oq_vtanhf(x[i]);
}

/* x[0..n) = a(clip(x)) in place (clip <= 0: none). */
static void apply_act(const rnn_act *a, float *x, int64_t n, float clip)
{
    for (int64_t i = 0; clip > 0.0f && i < n; i++)
        x[i] = clipf(x[i], clip);
    if (a->kind == ACT_SIGMOID)
        sigmoid_rows(x, n);
    else if (a->kind == ACT_TANH)
        tanh_rows(x, n);
    else
        for (int64_t i = 0; i < n; i++)
            x[i] = act(a, x[i]);
}

/* Sets *out to input k (float unless it is sequence_lens); checks its rank
 * and dims where dims[i] >= 0. Optional inputs may be absent. */
static oq_status rnn_input(oq_kernel_ctx *c, int k, bool required, int rank, const int64_t *dims,
                           const oq_tensor **out)
{
    const oq_tensor *t = required ? oq_kernel_require(c, k) : oq_kernel_input(c, k);
    *out = t;
    if (!t) return required ? c->err->status : OQ_OK;
    oq_dtype want = k == 4 ? OQ_DTYPE_INT32 : OQ_DTYPE_FLOAT;
    if (t->dtype != want)
        return OQ_KUNSUP(c, "input %d has element type %s, expected %s", k, oq_dtype_name(t->dtype),
                         oq_dtype_name(want));
    if (t->rank != rank) return OQ_KERR(c, "input %d has rank %d, expected %d", k, t->rank, rank);
    for (int i = 0; i < rank; i++)
        if (dims[i] >= 0 && t->dims[i] != dims[i])
            return OQ_KERR(c, "input %d dim %d is %lld, expected %lld", k, i, (long long)t->dims[i],
                           (long long)dims[i]);
    return OQ_OK;
}

/* Fills s->act from the activations attribute (default: Sigmoid, Tanh, Tanh
 * for LSTM; Sigmoid, Tanh for GRU; Tanh for RNN; per direction), taking
 * alpha and beta in list order for the activations that have them. */
static oq_status read_activations(oq_kernel_ctx *c, rnn_setup *s)
{
    static const char *const lstm[] = {"Sigmoid", "Tanh", "Tanh"}, *const gru[] = {"Sigmoid", "Tanh"},
                             *const rnn[] = {"Tanh"};
    const char *const *def = s->kind == RNN_LSTM ? lstm : s->kind == RNN_GRU ? gru : rnn;
    int per = s->kind == RNN_LSTM ? 3 : s->kind == RNN_GRU ? 2 : 1;
    const oq_attr *a = oq_node_attr(c->node, "activations");
    const oq_attr *alphas = oq_node_attr(c->node, "activation_alpha"), *betas = oq_node_attr(c->node, "activation_beta");
    int n_alpha = alphas && alphas->type == OQ_ATTR_FLOATS ? alphas->n : 0;
    int n_beta = betas && betas->type == OQ_ATTR_FLOATS ? betas->n : 0;
    if (a && (a->type != OQ_ATTR_STRINGS || a->n != per * s->dirs))
        return OQ_KERR(c, "activations must list %d names", per * s->dirs);
    int ia = 0, ib = 0;
    for (int i = 0; i < per * s->dirs; i++) {
        const char *name = a ? a->strings[i] : def[i % per];
        size_t k = 0;
        while (k < sizeof act_names / sizeof act_names[0] && strcasecmp(name, act_names[k].name))
            k++;
        if (k == sizeof act_names / sizeof act_names[0])
            return OQ_KUNSUP(c, "activation '%s' is not one ONNX lists for recurrent ops", name);
        rnn_act *e = &s->act[i / per][i % per];
        e->kind = act_names[k].kind;
        e->alpha = act_names[k].has_alpha && ia < n_alpha ? alphas->floats[ia++] : act_names[k].alpha;
        e->beta = act_names[k].has_beta && ib < n_beta ? betas->floats[ib++] : act_names[k].beta;
    }
    return OQ_OK;
}

static oq_status rnn_read(oq_kernel_ctx *c, rnn_kind kind, rnn_setup *s)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->gates = kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1;
    const oq_node *nd = c->node;
    const char *dir = oq_node_attr_string(nd, "direction", "forward");
    if (!strcmp(dir, "bidirectional")) s->dirs = 2;
    else if (!strcmp(dir, "forward") || !strcmp(dir, "reverse")) s->dirs = 1, s->reverse = dir[0] == 'r';
    else return OQ_KERR(c, "direction '%s' is not forward, reverse or bidirectional", dir);
    s->layout = (int)oq_node_attr_int(nd, "layout", 0);
    if (s->layout != 0 && s->layout != 1) return OQ_KERR(c, "layout must be 0 or 1");
    s->clip = oq_node_attr_float(nd, "clip", 0.0f);
    s->lbr = oq_node_attr_int(nd, "linear_before_reset", 0) != 0;
    if (kind == RNN_LSTM && oq_node_attr_int(nd, "input_forget", 0))
        return OQ_KUNSUP(c, "input_forget=1 is not supported");
    oq_status st;
    if ((st = read_activations(c, s))) return st;

    const oq_tensor *x, *w, *r, *b, *lens, *h0, *c0 = NULL, *p = NULL;
    int64_t any3[3] = {-1, -1, -1};
    if ((st = rnn_input(c, 0, true, 3, any3, &x))) return st;
    s->seq = x->dims[s->layout ? 1 : 0];
    s->batch = x->dims[s->layout ? 0 : 1];
    s->in = x->dims[2];
    int64_t hid = oq_node_attr_int(nd, "hidden_size", -1);
    int64_t wd[3] = {s->dirs, -1, s->in};
    if ((st = rnn_input(c, 1, true, 3, wd, &w))) return st;
    if (hid < 0) hid = w->dims[1] / s->gates;
    s->hid = hid;
    int64_t g = s->gates * hid;
    int64_t wd2[3] = {s->dirs, g, s->in}, rd[3] = {s->dirs, g, hid}, bd[2] = {s->dirs, 2 * g};
    int64_t ld[1] = {s->batch};
    int64_t hd[3] = {s->dirs, s->batch, hid};
    if (s->layout) hd[0] = s->batch, hd[1] = s->dirs;
    if ((st = rnn_input(c, 1, true, 3, wd2, &w)) || (st = rnn_input(c, 2, true, 3, rd, &r)) ||
        (st = rnn_input(c, 3, false, 2, bd, &b)) || (st = rnn_input(c, 4, false, 1, ld, &lens)) ||
        (st = rnn_input(c, 5, false, 3, hd, &h0)))
        return st;
    if (kind == RNN_LSTM) {
        int64_t pd[2] = {s->dirs, 3 * hid};
        if ((st = rnn_input(c, 6, false, 3, hd, &c0)) || (st = rnn_input(c, 7, false, 2, pd, &p))) return st;
    }
    s->x = x->data, s->w = w->data, s->r = r->data;
    s->b = b ? b->data : NULL;
    s->h0 = h0 ? h0->data : NULL;
    s->c0 = c0 ? c0->data : NULL;
    s->p = p ? p->data : NULL;
    s->lens = lens ? lens->data : NULL;
    for (int64_t i = 0; s->lens && i < s->batch; i++)
        if (s->lens[i] < 0 || s->lens[i] > s->seq)
            return OQ_KERR(c, "sequence_lens[%lld] = %d is outside [0, %lld]", (long long)i, s->lens[i],
                           (long long)s->seq);

    int64_t yd[4] = {s->seq, s->dirs, s->batch, hid};
    if (s->layout) yd[0] = s->batch, yd[1] = s->seq, yd[2] = s->dirs;
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, 4, yd);
    oq_tensor *yh = y ? oq_kernel_output(c, 1, OQ_DTYPE_FLOAT, 3, hd) : NULL;
    oq_tensor *yc = yh && kind == RNN_LSTM ? oq_kernel_output(c, 2, OQ_DTYPE_FLOAT, 3, hd) : NULL;
    if (!y || !yh || (kind == RNN_LSTM && !yc)) return c->err->status;
    s->y = y->data, s->yh = yh->data, s->yc = yc ? yc->data : NULL;
    return OQ_OK;
}

/* Element offset of (dir, batch) in a (dirs, batch, hid) state tensor. */
static int64_t state_at(const rnn_setup *s, int d, int64_t bi)
{
    return s->layout ? (bi * s->dirs + d) * s->hid : (d * s->batch + bi) * s->hid;
}

/* Element offset of (t, dir, batch) in Y. */
static int64_t y_at(const rnn_setup *s, int64_t t, int d, int64_t bi)
{
    return s->layout ? ((bi * s->seq + t) * s->dirs + d) * s->hid : ((t * s->dirs + d) * s->batch + bi) * s->hid;
}

/* Time index step `t` of batch entry bi reads, or -1 once its sequence ended. */
static int64_t time_at(const rnn_setup *s, bool backward, int64_t t, int64_t bi)
{
    int64_t len = s->lens ? s->lens[bi] : s->seq;
    if (t >= len) return -1;
    return backward ? len - 1 - t : t;
}

/* R transposed for the step products, per direction: the columns that take
 * h R^T directly (all gates but GRU's h gate: H rows of `rec`), then, for
 * GRU, its h gate's block (H rows of H), which multiplies r * h (or h, before
 * the reset). Read in place by gemv_rows and by the blocked GEMM; neither
 * packs it per step. */
static int64_t rt_floats(const rnn_setup *s)
{
    return s->gates * s->hid * s->hid;
}

/* Fills dst (s->dirs x rt_floats) with every direction's R transposed. */
static void transpose_r(void *dst, void *arg)
{
    const rnn_setup *s = arg;
    int64_t H = s->hid, G = s->gates * H, rec = s->kind == RNN_GRU ? 2 * H : G;
    for (int d = 0; d < s->dirs; d++) {
        const float *r = s->r + d * G * H;
        float *rt = (float *)dst + d * rt_floats(s);
        for (int64_t q = 0; q < rec; q++)
            for (int64_t p = 0; p < H; p++)
                rt[p * rec + q] = r[q * H + p];
        for (int64_t q = rec; q < G; q++) /* GRU's h gate */
            for (int64_t p = 0; p < H; p++)
                rt[H * rec + p * H + (q - rec)] = r[q * H + p];
    }
}

/* c[0..n) = a[0..k) b + beta c for row-major b (k rows of n, stride ldb):
 * each column summed over p in order with fused multiply-adds, then beta c
 * added by one more, as oq_sgemm_skinny does (the same bits), in blocks of
 * 128 columns whose sums stay in vector registers. */
OQ_CLONED(gemv_rows, (const float *a, const float *b, int64_t k, int64_t n, int64_t ldb, float beta, float *c),
          (a, b, k, n, ldb, beta, c))
{
    enum { W = 128 };
    for (int64_t q0 = 0; q0 < n; q0 += W) {
        float acc[W] = {0};
        int64_t w = n - q0 < W ? n - q0 : W;
        if (w == W)
            for (int64_t p = 0; p < k; p++)
                for (int q = 0; q < W; q++)
                    acc[q] = fmaf(a[p], b[p * ldb + q0 + q], acc[q]);
        else
            for (int64_t p = 0; p < k; p++)
                for (int64_t q = 0; q < w; q++)
                    acc[q] = fmaf(a[p], b[p * ldb + q0 + q], acc[q]);
        for (int64_t q = 0; q < w; q++)
            c[q0 + q] = beta == 0.0f ? acc[q] : fmaf(beta, c[q0 + q], acc[q]);
    }
}

/* One step product; g (alpha 1) reads R transposed in place: row by row for
 * a batch of at most OQ_SGEMM_SKINNY_M, else the blocked GEMM. */
static void step_product(const oq_sgemm_args *g, float *ws)
{
    if (g->m > OQ_SGEMM_SKINNY_M) {
        oq_sgemm(g, ws);
        return;
    }
    for (int64_t i = 0; i < g->m; i++)
        gemv_rows(g->a + i * g->lda, g->b, g->k, g->n, g->ldb, g->beta, g->c + i * g->ldc);
}

/* Workspace floats for one direction (see run_direction). */
static size_t dir_ws_floats(const rnn_setup *s)
{
    int64_t g = s->gates * s->hid, rows = s->seq * s->batch;
    size_t gw = oq_sgemm_ws_floats(rows, g, s->in), sw = oq_sgemm_ws_floats(s->batch, g, s->hid);
    return (size_t)(rows * g + 2 * s->batch * g + 3 * s->batch * s->hid) + (gw > sw ? gw : sw);
}

/* Runs direction d on rt, its R transposed (transpose_r). ws: dir_ws_floats(s) floats. */
static void run_direction(const rnn_setup *s, int d, const float *rt, float *ws)
{
    int64_t H = s->hid, B = s->batch, G = s->gates * H, rows = s->seq * B;
    float *xw = ws;             /* (rows, G): X W^T + biases; row = layout ? b*seq+t : t*batch+b */
    float *gt = xw + rows * G;  /* (B, G): this step's pre-activations */
    float *hr = gt + B * G;     /* (B, G): GRU h R^T for the h gate (linear_before_reset) */
    float *h = hr + B * G;      /* (B, H) hidden state */
    float *cs = h + B * H;      /* (B, H) LSTM cell state */
    float *rh = cs + B * H;     /* (B, H) GRU r * h */
    float *gws = rh + B * H;
    const float *w = s->w + d * G * s->in;
    const float *bw = s->b ? s->b + d * 2 * G : NULL, *br = bw ? bw + G : NULL;
    const float *pp = s->p ? s->p + d * 3 * H : NULL;
    const rnn_act *f = &s->act[d][0], *ga = &s->act[d][1], *ha = &s->act[d][2];
    bool backward = s->dirs == 2 ? d == 1 : s->reverse;

    /* Input projection for every step at once, with the foldable biases. */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t q = 0; q < G; q++) {
            float bias = 0.0f;
            if (bw) bias = bw[q] + (s->kind == RNN_GRU && q >= 2 * H ? 0.0f : br[q]);
            xw[i * G + q] = bias;
        }
    oq_sgemm_args gx = {false, true, rows, G, s->in, 1.0f, 1.0f, s->x, s->in, w, s->in, xw, G};
    oq_sgemm(&gx, gws);

    int64_t rec = s->kind == RNN_GRU ? 2 * H : G; /* columns that take h R^T directly */
    oq_sgemm_args gr = {false, false, B, rec, H, 1.0f, 1.0f, h, H, rt, rec, gt, G};
    oq_sgemm_args gh = {false, false, B, H, H, 1.0f, 0.0f, s->lbr ? h : rh, H, rt + H * rec, H, hr, G};
    for (int64_t bi = 0; bi < B; bi++) {
        for (int64_t q = 0; q < H; q++) {
            h[bi * H + q] = s->h0 ? s->h0[state_at(s, d, bi) + q] : 0.0f;
            cs[bi * H + q] = s->c0 ? s->c0[state_at(s, d, bi) + q] : 0.0f;
        }
    }
    for (int64_t t = 0; t < s->seq; t++) {
        /* gt = xw rows of this step (+ h R^T below, except GRU's h gate). */
        for (int64_t bi = 0; bi < B; bi++) {
            int64_t ti = time_at(s, backward, t, bi);
            if (ti < 0) continue;
            int64_t row = s->layout ? bi * s->seq + ti : ti * B + bi;
            memcpy(gt + bi * G, xw + row * G, (size_t)G * sizeof(float));
        }
        step_product(&gr, gws);
        if (s->kind == RNN_GRU) {
            /* Reset gate first; then the h gate's recurrent term. */
            for (int64_t bi = 0; bi < B; bi++) {
                float *rg = gt + bi * G + H;
                apply_act(f, rg, H, s->clip);
                for (int64_t q = 0; q < H; q++) rh[bi * H + q] = rg[q] * h[bi * H + q];
            }
            step_product(&gh, gws);
        }
        for (int64_t bi = 0; bi < B; bi++) {
            int64_t ti = time_at(s, backward, t, bi);
            float *hb = h + bi * H, *cb = cs + bi * H, *g = gt + bi * G;
            if (ti < 0) {
                for (int64_t q = 0; q < H; q++) s->y[y_at(s, t, d, bi) + q] = 0.0f;
                continue;
            }
            if (s->kind == RNN_LSTM) { /* gates i o f c; peepholes read the cell before (i, f) and after (o) */
                float *ig = g, *og = g + H, *fg = g + 2 * H, *cc = g + 3 * H, *hc = rh + bi * H;
                for (int64_t q = 0; pp && q < H; q++) {
                    ig[q] += pp[q] * cb[q];
                    fg[q] += pp[2 * H + q] * cb[q];
                }
                apply_act(f, ig, H, s->clip);
                apply_act(f, fg, H, s->clip);
                apply_act(ga, cc, H, s->clip);
                for (int64_t q = 0; q < H; q++) cb[q] = fg[q] * cb[q] + ig[q] * cc[q];
                for (int64_t q = 0; pp && q < H; q++) og[q] += pp[H + q] * cb[q];
                apply_act(f, og, H, s->clip);
                memcpy(hc, cb, (size_t)H * sizeof(float));
                apply_act(ha, hc, H, 0.0f);
                for (int64_t q = 0; q < H; q++) hb[q] = og[q] * hc[q];
            } else if (s->kind == RNN_GRU) { /* gates z r h; r was applied before the h gate's product */
                float *z = g, *hh = g + 2 * H;
                const float *hrb = hr + bi * G;
                apply_act(f, z, H, s->clip);
                for (int64_t q = 0; q < H; q++) {
                    float rec_h = hrb[q];
                    if (s->lbr) rec_h = g[H + q] * (rec_h + (br ? br[2 * H + q] : 0.0f));
                    else if (br) rec_h += br[2 * H + q];
                    hh[q] += rec_h;
                }
                apply_act(ga, hh, H, s->clip);
                for (int64_t q = 0; q < H; q++) hb[q] = (1.0f - z[q]) * hh[q] + z[q] * hb[q];
            } else {
                apply_act(f, g, H, s->clip);
                memcpy(hb, g, (size_t)H * sizeof(float));
            }
            memcpy(s->y + y_at(s, ti, d, bi), hb, (size_t)H * sizeof(float));
        }
    }
    for (int64_t bi = 0; bi < B; bi++) {
        memcpy(s->yh + state_at(s, d, bi), h + bi * H, (size_t)H * sizeof(float));
        if (s->yc) memcpy(s->yc + state_at(s, d, bi), cs + bi * H, (size_t)H * sizeof(float));
    }
}

static oq_status run_rnn(oq_kernel_ctx *c, rnn_kind kind)
{
    rnn_setup s;
    oq_status st;
    if ((st = rnn_read(c, kind, &s))) return st;
    if (s.batch == 0 || s.hid == 0) return OQ_OK;
    size_t rt_bytes = (size_t)(s.dirs * rt_floats(&s)) * sizeof(float);
    const float *rt;
    if (oq_kernel_input_const(c, 2)) {
        rt = oq_kernel_cache(c, rt_bytes, transpose_r, &s);
    } else {
        float *fresh = oq_kernel_scratch_raw(c, rt_bytes);
        if (fresh) transpose_r(fresh, &s);
        rt = fresh;
    }
    float *ws = rt ? oq_kernel_scratch(c, dir_ws_floats(&s) * sizeof(float)) : NULL;
    if (!ws) return c->err->status;
    for (int d = 0; d < s.dirs; d++) run_direction(&s, d, rt + d * rt_floats(&s), ws);
    return OQ_OK;
}

static oq_status k_lstm(oq_kernel_ctx *c) { return run_rnn(c, RNN_LSTM); }
static oq_status k_gru(oq_kernel_ctx *c) { return run_rnn(c, RNN_GRU); }
static oq_status k_rnn(oq_kernel_ctx *c) { return run_rnn(c, RNN_SIMPLE); }

const oq_op_def oq_ops_rnn[] = {
    {"", "LSTM", 7, OQ_DT(FLOAT) | OQ_DT(INT32), k_lstm},
    {"", "GRU", 7, OQ_DT(FLOAT) | OQ_DT(INT32), k_gru},
    {"", "RNN", 7, OQ_DT(FLOAT) | OQ_DT(INT32), k_rnn},
};
const int oq_ops_rnn_count = (int)(sizeof oq_ops_rnn / sizeof oq_ops_rnn[0]);
