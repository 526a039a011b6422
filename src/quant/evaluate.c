/* evaluate.c: the quantized model measured against the float one on sample
 * data: per graph output cosine, SQNR, max error and top-1 agreement; per
 * quantized node the SQNR of its (dequantized) output. See oq_quant.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_quant.h"

/* One quantized node's output as seen in both runs. */
typedef struct tracked {
    int node;              /* index in the quant result */
    const oq_value *ref;   /* float value in the float graph */
    const oq_value *q;     /* its stand-in in the quantized graph (8-bit twin or float) */
    float scale;           /* to dequantize q when it is 8-bit */
    int32_t zero_point;
    oq_tensor saved;       /* the float run's tensor for the current sample */
    double signal, noise;  /* sums over samples */
    int64_t mismatched;    /* samples whose shapes differed (should stay 0) */
} tracked;

typedef struct eval_state {
    int n_tracked;
    tracked *t;
    int pass;              /* 0: float run saves, 1: quantized run compares */
    int n_values;
    int64_t *last_axis;    /* [n_values] of the quantized graph: last axis of each value's latest tensor */
    double macs, nodes, converted; /* the quantized runs' work so far (see oq_eval) */
} eval_state;

static float element_as_float(const oq_tensor *x, int64_t i, float scale, int32_t zp)
{
    switch (x->dtype) {
    case OQ_DTYPE_FLOAT: return ((const float *)x->data)[i];
    case OQ_DTYPE_UINT8: return scale * (float)(((const uint8_t *)x->data)[i] - zp);
    case OQ_DTYPE_INT8: return scale * (float)(((const int8_t *)x->data)[i] - zp);
    default: return (float)oq_tensor_get_f64(x, i);
    }
}

/* Length of axis `axis` (negative: from the end) of constant v, or 0. */
static int64_t constant_dim(const oq_value *v, int axis)
{
    if (!v || !v->constant || v->constant->rank == 0)
        return 0;
    int r = v->constant->rank, a = axis < 0 ? r + axis : axis;
    return a >= 0 && a < r ? v->constant->dims[a] : 0;
}

/* Multiply-adds per output element of integer op n (its reduction length),
 * or 0 when n is not one or its weight is not a constant. */
static int64_t reduction_length(const eval_state *s, const oq_node *n)
{
    int w = n->kind == OQ_OP_QLINEAR_CONV ? 3 : n->kind == OQ_OP_CONV_INTEGER ? 1 : -1;
    if (w >= 0) {
        const oq_value *wv = oq_node_input(n, w);
        int64_t m = constant_dim(wv, 0);
        return m > 0 ? oq_tensor_numel(wv->constant) / m : 0;
    }
    if (n->kind == OQ_OP_QGEMM)
        return constant_dim(oq_node_input(n, 3), oq_node_attr_int(n, "transB", 0) ? 1 : 0);
    int b = n->kind == OQ_OP_QLINEAR_MATMUL ? 3 : n->kind == OQ_OP_MATMUL_INTEGER ? 1 : -1;
    if (b < 0)
        return 0;
    const oq_value *bv = oq_node_input(n, b), *a = oq_node_input(n, 0);
    if (bv && bv->constant)
        return constant_dim(bv, bv->constant->rank >= 2 ? -2 : 0);
    return a && a->id < s->n_values ? s->last_axis[a->id] : 0; /* two activations: A's last axis */
}

/* Adds what producing value v (tensor x) cost the quantized run to s. */
static void count_work(eval_state *s, const oq_value *v, const oq_tensor *x)
{
    if (v->id < s->n_values)
        s->last_axis[v->id] = x->rank ? x->dims[x->rank - 1] : 1;
    const oq_node *n = v->producer;
    if (!n || n->n_outputs < 1 || n->outputs[0] != v)
        return;
    int64_t numel = oq_tensor_numel(x);
    const oq_value *in = oq_node_input(n, 0);
    if ((n->kind == OQ_OP_QUANTIZE_LINEAR || n->kind == OQ_OP_DEQUANTIZE_LINEAR ||
         n->kind == OQ_OP_DYNAMIC_QUANTIZE_LINEAR) && in && !in->constant) {
        s->converted += (double)numel;
        return;
    }
    int64_t k = reduction_length(s, n);
    if (k > 0) {
        s->macs += (double)numel * (double)k;
        s->nodes += 1;
    }
}

/* Adds the squared reference values and errors of one output (x, 8-bit or
 * float, n elements) to t's sums. 8-bit values go through a table of their
 * 256 dequantized values (as element_as_float computes them). */
static void add_sqnr_sums(tracked *t, const float *ref, const oq_tensor *x, int64_t n)
{
    double signal = 0, noise = 0;
    if (x->dtype == OQ_DTYPE_UINT8 || x->dtype == OQ_DTYPE_INT8) {
        float real[256];
        for (int b = 0; b < 256; b++)
            real[b] = t->scale * (float)((x->dtype == OQ_DTYPE_INT8 ? (int32_t)(int8_t)b : b) - t->zero_point);
        const uint8_t *q = x->data;
        for (int64_t k = 0; k < n; k++) {
            double d = (double)ref[k] - real[q[k]];
            signal += (double)ref[k] * ref[k];
            noise += d * d;
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            double d = (double)ref[k] - element_as_float(x, k, t->scale, t->zero_point);
            signal += (double)ref[k] * ref[k];
            noise += d * d;
        }
    }
    t->signal += signal;
    t->noise += noise;
}

static void observe(void *user, const oq_value *v, const oq_tensor *x)
{
    eval_state *s = user;
    if (s->pass == 1)
        count_work(s, v, x);
    for (int i = 0; i < s->n_tracked; i++) {
        tracked *t = &s->t[i];
        if (s->pass == 0 && v == t->ref) {
            oq_tensor_release(&t->saved);
            oq_err ignored;
            if (oq_tensor_copy(&t->saved, x, &ignored))
                memset(&t->saved, 0, sizeof t->saved);
        } else if (s->pass == 1 && v == t->q) {
            int64_t n = oq_tensor_numel(x);
            if (!t->saved.data || oq_tensor_numel(&t->saved) != n || t->saved.dtype != OQ_DTYPE_FLOAT) {
                t->mismatched++;
                continue;
            }
            add_sqnr_sums(t, t->saved.data, x, n);
        }
    }
}

static double sqnr_db(double signal, double noise)
{
    if (noise <= 0)
        return INFINITY; /* exact, zeros included */
    return 10 * log10(signal / noise);
}

/* Index of the largest element of x[0..n) (first on ties; 0 when x[0] is
 * NaN, other NaNs are passed over). The maximum is found in interleaved
 * lanes, independent chains the compiler can vectorize, then its first
 * position: a single running (value, index) pair is one long dependency
 * chain, and recognizer outputs have thousands of classes per row. */
static int64_t argmax(const float *x, int64_t n)
{
    enum { LANES = 8 };
    float lane_max[LANES];
    for (int l = 0; l < LANES; l++)
        lane_max[l] = x[0];
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++)
            lane_max[l] = x[i + l] > lane_max[l] ? x[i + l] : lane_max[l];
    float best = x[0];
    for (; i < n; i++)
        best = x[i] > best ? x[i] : best;
    for (int l = 0; l < LANES; l++)
        best = lane_max[l] > best ? lane_max[l] : best;
    for (i = 0; i < n; i++)
        if (x[i] == best)
            return i;
    return 0;
}

/* The sums run in OUTPUT_LANES interleaved partial sums, added together in a
 * fixed order at the end: the same bytes on every machine and thread count,
 * and independent chains the compiler can vectorize (outputs such as a
 * recognizer's [T, 6625] probabilities are summed once per sample for every
 * candidate an analysis tries). */
enum { OUTPUT_LANES = 8 };

typedef struct output_lanes {
    double dot[OUTPUT_LANES], aa[OUTPUT_LANES], bb[OUTPUT_LANES], err2[OUTPUT_LANES], max_abs[OUTPUT_LANES];
} output_lanes;

static inline void lane_add(output_lanes *t, int l, double a, double b)
{
    double d = fabs(a - b);
    t->dot[l] += a * b;
    t->aa[l] += a * a;
    t->bb[l] += b * b;
    t->err2[l] += d * d;
    t->max_abs[l] = d > t->max_abs[l] ? d : t->max_abs[l];
}

void oq_output_sums_add(oq_output_sums *s, const oq_tensor *ref, const oq_tensor *q)
{
    if (ref->dtype != q->dtype || !oq_tensor_same_shape(ref, q)) {
        s->shape_differs++;
        return;
    }
    int64_t n = oq_tensor_numel(ref);
    if (ref->dtype != OQ_DTYPE_FLOAT || !n) {
        s->equality++;
        s->identical += !n || !memcmp(ref->data, q->data, (size_t)n * (oq_dtype_traits_table[ref->dtype].bits / 8));
        return;
    }
    const float *x = ref->data, *y = q->data;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += !isfinite(x[i]);
    s->nonfinite += bad;
    if (bad == n) /* nothing the float model says: not compared */
        return;
    s->compared++;
    output_lanes t = {0};
    int64_t i = 0;
    if (bad) /* what the float model cannot say counts for nothing */
        for (int l = 0; i < n; i++, l = (l + 1) % OUTPUT_LANES) {
            if (isfinite(x[i]))
                lane_add(&t, l, x[i], y[i]);
        }
    for (; i + OUTPUT_LANES <= n; i += OUTPUT_LANES)
        for (int l = 0; l < OUTPUT_LANES; l++)
            lane_add(&t, l, x[i + l], y[i + l]);
    for (int l = 0; i < n; i++, l++)
        lane_add(&t, l, x[i], y[i]);
    for (int l = 0; l < OUTPUT_LANES; l++) {
        s->dot += t.dot[l];
        s->aa += t.aa[l];
        s->bb += t.bb[l];
        s->err2 += t.err2[l];
        if (t.max_abs[l] > s->max_abs_error)
            s->max_abs_error = t.max_abs[l];
    }
    s->classifier = (ref->rank == 2 || ref->rank == 3) && ref->dims[ref->rank - 1] >= 2;
    if (s->classifier) {
        int64_t c = ref->dims[ref->rank - 1];
        for (int64_t row = 0; row < n / c; row++) {
            bool finite = true;
            for (int64_t j = 0; bad && j < c; j++)
                finite = finite && isfinite(x[row * c + j]);
            if (!finite)
                continue;
            s->top1_agree += argmax(x + row * c, c) == argmax(y + row * c, c);
            s->top1_total++;
        }
    }
}

void oq_output_sums_merge(oq_output_sums *dst, const oq_output_sums *src)
{
    dst->dot += src->dot;
    dst->aa += src->aa;
    dst->bb += src->bb;
    dst->err2 += src->err2;
    dst->max_abs_error = fmax(dst->max_abs_error, src->max_abs_error);
    dst->classifier = dst->classifier || src->classifier;
    dst->top1_agree += src->top1_agree;
    dst->top1_total += src->top1_total;
    dst->compared += src->compared;
    dst->equality += src->equality;
    dst->identical += src->identical;
    dst->shape_differs += src->shape_differs;
    dst->nonfinite += src->nonfinite;
}

void oq_output_sums_finish(const oq_output_sums *s, oq_output_metrics *m)
{
    m->cosine = s->aa > 0 && s->bb > 0 ? s->dot / sqrt(s->aa * s->bb) : (s->aa == s->bb ? 1 : 0);
    m->sqnr_db = sqnr_db(s->aa, s->err2);
    m->max_abs_error = s->max_abs_error;
    m->classifier = s->classifier;
    m->top1_agree = s->top1_agree;
    m->top1_total = s->top1_total;
    m->compared = s->compared;
    m->equality = s->equality;
    m->identical = s->identical;
    m->shape_differs = s->shape_differs;
    m->nonfinite = s->nonfinite;
    if (!s->compared)
        m->cosine = m->sqnr_db = m->max_abs_error = NAN;
}

const char *oq_output_metrics_note(const oq_output_metrics *m, char *buf, size_t cap)
{
    const int64_t all = m->compared + m->equality + m->shape_differs;
    if (!m->equality && !m->shape_differs && !m->nonfinite)
        return NULL;
    int k = 0;
    buf[0] = '\0';
    if (m->equality)
        k = snprintf(buf, cap, "compared for equality on %lld of %lld samples (not float or empty): %lld identical",
                     (long long)m->equality, (long long)all, (long long)m->identical);
    if (m->shape_differs && k >= 0 && (size_t)k < cap)
        snprintf(buf + k, cap - (size_t)k, "%sshapes differ in %lld of %lld samples%s", k ? "; " : "",
                 (long long)m->shape_differs, (long long)all, m->compared ? ", not compared there" : "");
    size_t used = strlen(buf);
    if (m->nonfinite && used < cap)
        snprintf(buf + used, cap - used, "%sthe float model gave %lld NaN or infinite value%s, left out", used ? "; " : "",
                 (long long)m->nonfinite, m->nonfinite == 1 ? "" : "s");
    return buf;
}

int64_t oq_predicted_class(const oq_tensor *t)
{
    return argmax(t->data, t->dims[t->rank - 1]);
}

/* Evaluation runs in blocks of samples (oq_run_sample_blocks): each worker
 * has both sessions and its own sums for the block, and blocks add into the
 * totals in order, so the numbers do not depend on the thread count. */
enum { EVAL_BLOCK = 4 };

typedef struct eval_worker {
    oq_session *sf, *sq;
    eval_state es;              /* its tracked values' sums cover the current block */
    oq_tensor *ins, *of, *oqv;
    oq_output_sums *sums;       /* [n_out] over the current block */
    int64_t samples, labeled, fp32_correct, q_correct;
} eval_worker;

typedef struct eval_run {
    const oq_dataset *ds;
    const int64_t *labels;
    int64_t n_labels;
    int n_in, n_out;
    eval_worker *w;
    oq_eval *out;
    oq_output_sums *sums;       /* [n_out] totals */
    tracked *t;                 /* [n_tracked] totals (signal, noise, mismatched) */
    int n_tracked;
    double macs, nodes, converted;
} eval_run;

static oq_status begin_eval_block(void *user, int k, int64_t b, oq_err *err)
{
    (void)b;
    (void)err;
    eval_run *r = user;
    eval_worker *w = &r->w[k];
    memset(w->sums, 0, (size_t)r->n_out * sizeof *w->sums);
    for (int i = 0; i < w->es.n_tracked; i++) {
        w->es.t[i].signal = w->es.t[i].noise = 0;
        w->es.t[i].mismatched = 0;
    }
    w->es.macs = w->es.nodes = w->es.converted = 0;
    w->samples = w->labeled = w->fp32_correct = w->q_correct = 0;
    return OQ_OK;
}

/* Runs both models on sample s with worker k and adds the comparison to its sums. */
static oq_status eval_sample(void *user, int k, int64_t s, oq_err *err)
{
    eval_run *r = user;
    eval_worker *w = &r->w[k];
    oq_status st = oq_dataset_load(r->ds, s, w->ins, err);
    if (st)
        return st;
    w->es.pass = 0;
    st = oq_session_run(w->sf, w->ins, w->of, err);
    w->es.pass = 1;
    if (!st)
        st = oq_session_run(w->sq, w->ins, w->oqv, err);
    for (int j = 0; j < r->n_in; j++)
        oq_tensor_release(&w->ins[j]);
    for (int j = 0; !st && j < r->n_out; j++)
        oq_output_sums_add(&w->sums[j], &w->of[j], &w->oqv[j]);
    if (!st && r->labels && s < r->n_labels && r->n_out > 0 && w->sums[0].classifier) {
        w->labeled++;
        w->fp32_correct += oq_predicted_class(&w->of[0]) == r->labels[s];
        w->q_correct += oq_predicted_class(&w->oqv[0]) == r->labels[s];
    }
    for (int j = 0; j < r->n_out; j++) {
        oq_tensor_release(&w->of[j]);
        oq_tensor_release(&w->oqv[j]);
    }
    if (st)
        oq_err_context(err, "evaluation sample %lld", (long long)s);
    else
        w->samples++;
    return st;
}

static oq_status fold_eval_block(void *user, int k, int64_t b, oq_err *err)
{
    (void)b;
    (void)err;
    eval_run *r = user;
    eval_worker *w = &r->w[k];
    for (int j = 0; j < r->n_out; j++)
        oq_output_sums_merge(&r->sums[j], &w->sums[j]);
    for (int i = 0; i < r->n_tracked; i++) {
        r->t[i].signal += w->es.t[i].signal;
        r->t[i].noise += w->es.t[i].noise;
        r->t[i].mismatched += w->es.t[i].mismatched;
    }
    r->macs += w->es.macs;
    r->nodes += w->es.nodes;
    r->converted += w->es.converted;
    r->out->samples += w->samples;
    r->out->labeled += w->labeled;
    r->out->fp32_correct += w->fp32_correct;
    r->out->q_correct += w->q_correct;
    return OQ_OK;
}

static void eval_worker_release(eval_worker *w)
{
    for (int i = 0; w->es.t && i < w->es.n_tracked; i++)
        oq_tensor_release(&w->es.t[i].saved);
    free(w->es.t);
    free(w->es.last_axis);
    free(w->ins);
    free(w->of);
    free(w->oqv);
    free(w->sums);
    oq_session_destroy(w->sf);
    oq_session_destroy(w->sq);
}

/* Both sessions (threads each) with the tracked values r lists; sets r's
 * input and output counts. */
static oq_status eval_worker_init(eval_worker *w, eval_run *r, const oq_model *fp32, const oq_model *quant,
                                  int threads, oq_err *err)
{
    oq_exec_options opts = {.threads = threads};
    oq_status st;
    if ((st = oq_session_create(&w->sf, fp32, &opts, err)) || (st = oq_session_create(&w->sq, quant, &opts, err)))
        return st;
    r->n_in = oq_session_input_count(w->sf);
    r->n_out = oq_session_output_count(w->sf);
    if (oq_session_output_count(w->sq) != r->n_out || oq_session_input_count(w->sq) != r->n_in)
        return oq_errf(err, OQ_EINVAL, "the quantized model's inputs or outputs differ from the float model's");
    w->ins = calloc((size_t)r->n_in + 1, sizeof *w->ins);
    w->of = calloc((size_t)r->n_out + 1, sizeof *w->of);
    w->oqv = calloc((size_t)r->n_out + 1, sizeof *w->oqv);
    w->sums = calloc((size_t)r->n_out + 1, sizeof *w->sums);
    w->es.t = calloc((size_t)r->n_tracked + 1, sizeof *w->es.t);
    w->es.n_values = quant->graph->n_values;
    w->es.last_axis = calloc((size_t)w->es.n_values + 1, sizeof *w->es.last_axis);
    if (!w->ins || !w->of || !w->oqv || !w->sums || !w->es.t || !w->es.last_axis)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    w->es.n_tracked = r->n_tracked;
    for (int i = 0; i < r->n_tracked; i++)
        w->es.t[i] = (tracked){.node = r->t[i].node, .ref = r->t[i].ref, .q = r->t[i].q, .scale = r->t[i].scale,
                               .zero_point = r->t[i].zero_point};
    oq_session_set_observer(w->sf, observe, &w->es);
    oq_session_set_observer(w->sq, observe, &w->es);
    return OQ_OK;
}

oq_status oq_evaluate(const oq_model *fp32, const oq_model *quant, const oq_quant_result *qr, oq_dataset *ds,
                      int64_t max_samples, const int64_t *labels, int64_t n_labels, int threads, oq_eval *out,
                      oq_err *err)
{
    memset(out, 0, sizeof *out);
    eval_run r = {.ds = ds, .labels = labels, .n_labels = n_labels, .out = out};
    int64_t total = oq_dataset_count(ds);
    if (max_samples && max_samples < total)
        total = max_samples;
    int n_workers, threads_each;
    oq_sample_block_workers(threads, total, EVAL_BLOCK, &n_workers, &threads_each);
    oq_status st = OQ_OK;
    out->node_sqnr_db = calloc((size_t)qr->n_nodes + 1, sizeof *out->node_sqnr_db);
    r.t = calloc((size_t)qr->n_nodes + 1, sizeof *r.t);
    r.w = calloc((size_t)n_workers, sizeof *r.w);
    if (!out->node_sqnr_db || !r.t || !r.w) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < qr->n_nodes; i++) {
        const oq_quant_node *qn = &qr->nodes[i];
        out->node_sqnr_db[i] = NAN;
        if (!qn->quantized)
            continue;
        const oq_value *ref = oq_graph_find_local(fp32->graph, qn->output);
        const oq_value *q = oq_graph_find_local(quant->graph, qn->twin ? qn->twin : qn->output);
        if (ref && q)
            r.t[r.n_tracked++] = (tracked){.node = i, .ref = ref, .q = q, .scale = qn->out_scale,
                                           .zero_point = qn->out_zero_point};
    }
    for (int k = 0; !st && k < n_workers; k++)
        st = eval_worker_init(&r.w[k], &r, fp32, quant, threads_each, err);
    if (st)
        goto done;
    out->outputs = calloc((size_t)r.n_out + 1, sizeof *out->outputs);
    r.sums = calloc((size_t)r.n_out + 1, sizeof *r.sums);
    if (!out->outputs || !r.sums) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    out->n_outputs = r.n_out;
    for (int k = 0; k < r.n_out; k++)
        if (!(out->outputs[k].name = strdup(oq_session_output(r.w[0].sf, k)->name))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto done;
        }
    oq_block_fns fns = {.user = &r, .begin = begin_eval_block, .sample = eval_sample, .fold = fold_eval_block};
    if ((st = oq_run_sample_blocks(total, EVAL_BLOCK, n_workers, &fns, err)))
        goto done;
    for (int k = 0; k < r.n_out; k++)
        oq_output_sums_finish(&r.sums[k], &out->outputs[k]);
    if (out->samples) {
        out->int8_macs = r.macs / (double)out->samples;
        out->int8_nodes = r.nodes / (double)out->samples;
        out->converted = r.converted / (double)out->samples;
    }
    for (int i = 0; i < r.n_tracked; i++)
        if (r.t[i].mismatched == 0)
            out->node_sqnr_db[r.t[i].node] = sqnr_db(r.t[i].signal, r.t[i].noise);
done:
    for (int k = 0; r.w && k < n_workers; k++)
        eval_worker_release(&r.w[k]);
    free(r.w);
    free(r.sums);
    free(r.t);
    if (st)
        oq_eval_release(out);
    return st;
}

void oq_eval_release(oq_eval *e)
{
    if (!e)
        return;
    for (int k = 0; e->outputs && k < e->n_outputs; k++)
        free(e->outputs[k].name);
    free(e->outputs);
    free(e->node_sqnr_db);
    memset(e, 0, sizeof *e);
}

/* Bounds between the two groups bench/bench_quantized.py measured in ONNX
 * Runtime 1.20.1 at one thread: PP-OCRv4 det and rec (integer ops of 10-15M
 * multiply-adds on average, 1.6-1.9 elements converted per 100) ran 1.3-1.5x
 * faster than float; the orientation classifier and the small generated
 * models (at most 0.3M per op, or 6 and more per 100) ran 0.7-0.9x as fast. */
#define MIN_MACS_PER_NODE 2e6
#define MAX_CONVERTED_PER_MAC 0.04

bool oq_eval_speedup_expected(const oq_eval *e, const char **why)
{
    if (!(e->int8_nodes > 0)) {
        *why = "no integer op ran";
        return false;
    }
    if (e->int8_macs / e->int8_nodes < MIN_MACS_PER_NODE) {
        *why = "its integer ops are small (under 2M multiply-adds each on average), so a runtime's fixed cost per "
               "node outweighs what a faster kernel saves";
        return false;
    }
    if (e->converted > MAX_CONVERTED_PER_MAC * e->int8_macs) {
        *why = "it converts between float and 8-bit too often (over 4 elements per 100 multiply-adds), and each "
               "conversion is one more pass over its tensor";
        return false;
    }
    *why = "its integer ops are large (at least 2M multiply-adds each on average) and it converts at most 4 "
           "elements per 100 multiply-adds";
    return true;
}
