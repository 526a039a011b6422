/* evaluate.c: the quantized model measured against the float one on sample
 * data: per graph output cosine, SQNR, max error and top-1 agreement; per
 * quantized node the SQNR of its (dequantized) output. See oq_quant.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static bool is_op(const oq_node *n, const char *domain, const char *op)
{
    return !strcmp(n->domain, domain) && !strcmp(n->op_type, op);
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
    int w = is_op(n, "", "QLinearConv") ? 3 : is_op(n, "", "ConvInteger") ? 1 : -1;
    if (w >= 0) {
        const oq_value *wv = oq_node_input(n, w);
        int64_t m = constant_dim(wv, 0);
        return m > 0 ? oq_tensor_numel(wv->constant) / m : 0;
    }
    if (is_op(n, "com.microsoft", "QGemm"))
        return constant_dim(oq_node_input(n, 3), oq_node_attr_int(n, "transB", 0) ? 1 : 0);
    int b = is_op(n, "", "QLinearMatMul") ? 3 : is_op(n, "", "MatMulInteger") ? 1 : -1;
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
    if ((is_op(n, "", "QuantizeLinear") || is_op(n, "", "DequantizeLinear") ||
         is_op(n, "", "DynamicQuantizeLinear")) && in && !in->constant) {
        s->converted += (double)numel;
        return;
    }
    int64_t k = reduction_length(s, n);
    if (k > 0) {
        s->macs += (double)numel * (double)k;
        s->nodes += 1;
    }
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
            const float *ref = t->saved.data;
            for (int64_t k = 0; k < n; k++) {
                double d = (double)ref[k] - element_as_float(x, k, t->scale, t->zero_point);
                t->signal += (double)ref[k] * ref[k];
                t->noise += d * d;
            }
        }
    }
}

static double sqnr_db(double signal, double noise)
{
    if (noise <= 0)
        return signal > 0 ? INFINITY : 0;
    return 10 * log10(signal / noise);
}

/* Index of the largest element of x[0..n) (first on ties). */
static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Running sums for one graph output. */
typedef struct out_sums {
    double dot, aa, bb, err2;
} out_sums;

static void compare_output(oq_output_metrics *m, out_sums *s, const oq_tensor *a, const oq_tensor *b)
{
    int64_t n = oq_tensor_numel(a);
    const float *x = a->data, *y = b->data;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        s->dot += (double)x[i] * y[i];
        s->aa += (double)x[i] * x[i];
        s->bb += (double)y[i] * y[i];
        s->err2 += d * d;
        if (fabs(d) > m->max_abs_error)
            m->max_abs_error = fabs(d);
    }
    m->classifier = (a->rank == 2 || a->rank == 3) && a->dims[a->rank - 1] >= 2;
    if (m->classifier) {
        int64_t c = a->dims[a->rank - 1];
        for (int64_t row = 0; row < n / c; row++) {
            m->top1_agree += argmax(x + row * c, c) == argmax(y + row * c, c);
            m->top1_total++;
        }
    }
}

/* Top-1 of the first row of a classifier output. */
static int64_t predicted_class(const oq_tensor *t)
{
    return argmax(t->data, t->dims[t->rank - 1]);
}

oq_status oq_evaluate(const oq_model *fp32, const oq_model *quant, const oq_quant_result *qr, oq_dataset *ds,
                      int64_t max_samples, const int64_t *labels, int64_t n_labels, int threads, oq_eval *out,
                      oq_err *err)
{
    memset(out, 0, sizeof *out);
    oq_exec_options opts = {.threads = threads};
    oq_session *sf = NULL, *sq = NULL;
    eval_state es = {0};
    oq_tensor *ins = NULL, *of = NULL, *oqv = NULL;
    out_sums *sums = NULL;
    oq_status st;
    if ((st = oq_session_create(&sf, fp32, &opts, err)) || (st = oq_session_create(&sq, quant, &opts, err)))
        goto done;
    int n_in = oq_session_input_count(sf), n_out = oq_session_output_count(sf);
    if (oq_session_output_count(sq) != n_out || oq_session_input_count(sq) != n_in) {
        st = oq_errf(err, OQ_EINVAL, "the quantized model's inputs or outputs differ from the float model's");
        goto done;
    }
    ins = calloc((size_t)n_in + 1, sizeof *ins);
    of = calloc((size_t)n_out + 1, sizeof *of);
    oqv = calloc((size_t)n_out + 1, sizeof *oqv);
    sums = calloc((size_t)n_out + 1, sizeof *sums);
    out->outputs = calloc((size_t)n_out + 1, sizeof *out->outputs);
    out->node_sqnr_db = calloc((size_t)qr->n_nodes + 1, sizeof *out->node_sqnr_db);
    es.t = calloc((size_t)qr->n_nodes + 1, sizeof *es.t);
    es.n_values = quant->graph->n_values;
    es.last_axis = calloc((size_t)es.n_values + 1, sizeof *es.last_axis);
    if (!ins || !of || !oqv || !sums || !out->outputs || !out->node_sqnr_db || !es.t || !es.last_axis) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    out->n_outputs = n_out;
    for (int k = 0; k < n_out; k++)
        out->outputs[k].name = strdup(oq_session_output(sf, k)->name);
    for (int i = 0; i < qr->n_nodes; i++) {
        const oq_quant_node *qn = &qr->nodes[i];
        out->node_sqnr_db[i] = NAN;
        if (!qn->quantized)
            continue;
        const oq_value *ref = oq_graph_find_local(fp32->graph, qn->output);
        const oq_value *q = oq_graph_find_local(quant->graph, qn->twin ? qn->twin : qn->output);
        if (!ref || !q)
            continue;
        es.t[es.n_tracked++] = (tracked){.node = i, .ref = ref, .q = q, .scale = qn->out_scale, .zero_point = qn->out_zero_point};
    }
    oq_session_set_observer(sf, observe, &es);
    oq_session_set_observer(sq, observe, &es);

    int64_t total = oq_dataset_count(ds);
    if (max_samples && max_samples < total)
        total = max_samples;
    for (int64_t s = 0; s < total; s++) {
        if ((st = oq_dataset_load(ds, s, ins, err)))
            goto done;
        es.pass = 0;
        st = oq_session_run(sf, ins, of, err);
        es.pass = 1;
        if (!st)
            st = oq_session_run(sq, ins, oqv, err);
        for (int k = 0; k < n_in; k++)
            oq_tensor_release(&ins[k]);
        for (int k = 0; !st && k < n_out; k++) {
            if (of[k].dtype != OQ_DTYPE_FLOAT || oqv[k].dtype != OQ_DTYPE_FLOAT ||
                oq_tensor_numel(&of[k]) != oq_tensor_numel(&oqv[k]))
                st = oq_errf(err, OQ_EINVAL, "output '%s': the quantized model gives %s of %lld elements, the float one %s of %lld",
                             out->outputs[k].name, oq_dtype_name(oqv[k].dtype), (long long)oq_tensor_numel(&oqv[k]),
                             oq_dtype_name(of[k].dtype), (long long)oq_tensor_numel(&of[k]));
            else
                compare_output(&out->outputs[k], &sums[k], &of[k], &oqv[k]);
        }
        if (!st && labels && s < n_labels && n_out > 0 && out->outputs[0].classifier) {
            out->labeled++;
            out->fp32_correct += predicted_class(&of[0]) == labels[s];
            out->q_correct += predicted_class(&oqv[0]) == labels[s];
        }
        for (int k = 0; k < n_out; k++) {
            oq_tensor_release(&of[k]);
            oq_tensor_release(&oqv[k]);
        }
        if (st) {
            oq_err_context(err, "evaluation sample %lld", (long long)s);
            goto done;
        }
        out->samples++;
    }
    for (int k = 0; k < n_out; k++) {
        oq_output_metrics *m = &out->outputs[k];
        m->cosine = sums[k].aa > 0 && sums[k].bb > 0 ? sums[k].dot / sqrt(sums[k].aa * sums[k].bb)
                                                     : (sums[k].aa == sums[k].bb ? 1 : 0);
        m->sqnr_db = sqnr_db(sums[k].aa, sums[k].err2);
    }
    if (out->samples) {
        out->int8_macs = es.macs / (double)out->samples;
        out->int8_nodes = es.nodes / (double)out->samples;
        out->converted = es.converted / (double)out->samples;
    }
    for (int i = 0; i < es.n_tracked; i++)
        if (es.t[i].mismatched == 0)
            out->node_sqnr_db[es.t[i].node] = sqnr_db(es.t[i].signal, es.t[i].noise);
done:
    for (int i = 0; es.t && i < es.n_tracked; i++)
        oq_tensor_release(&es.t[i].saved);
    free(es.t);
    free(es.last_axis);
    free(ins);
    free(of);
    free(oqv);
    free(sums);
    oq_session_destroy(sf);
    oq_session_destroy(sq);
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
