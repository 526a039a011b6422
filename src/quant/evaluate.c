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

static void observe(void *user, const oq_value *v, const oq_tensor *x)
{
    eval_state *s = user;
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
    if (!ins || !of || !oqv || !sums || !out->outputs || !out->node_sqnr_db || !es.t) {
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
    for (int i = 0; i < es.n_tracked; i++)
        if (es.t[i].mismatched == 0)
            out->node_sqnr_db[es.t[i].node] = sqnr_db(es.t[i].signal, es.t[i].noise);
done:
    for (int i = 0; es.t && i < es.n_tracked; i++)
        oq_tensor_release(&es.t[i].saved);
    free(es.t);
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
