/* compare.c: a float model and its quantized version compared tensor by
 * tensor on sample data (see oq_compare.h).
 *
 * Setup pairs each tensor of the quantized model with its float counterpart
 * and the parameters that dequantize it (pairing.c). Then, one sample at a
 * time: the float run keeps a copy of each counterpart it computes, the
 * quantized run's observer compares each paired tensor as it appears (an
 * integer tensor whose run-time scale has not appeared yet waits for the end
 * of the run), and the sums of both runs' graph outputs grow. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/pairing.h"
#include "onnxq/oq_compare.h"
#include "onnxq/oq_exec.h"

/* ---- per-sample copies ---------------------------------------------------------------------- */

/* A copy of one tensor of the current sample; its storage is reused across samples. */
typedef struct kept {
    oq_tensor t;    /* data is buf (not owned by t); strings are not copied (data NULL) */
    void *buf;
    size_t cap;
    int64_t sample; /* the sample it holds; -1 = none yet */
} kept;

static oq_status keep(kept *k, const oq_tensor *x, int64_t sample, oq_err *err)
{
    size_t bytes = x->dtype == OQ_DTYPE_STRING ? 0 : oq_dtype_storage(x->dtype, oq_tensor_numel(x));
    if (bytes == SIZE_MAX)
        return oq_errf(err, OQ_EINVAL, "tensor size overflows");
    if (bytes > k->cap) {
        void *grown = realloc(k->buf, bytes);
        if (!grown)
            return oq_errf(err, OQ_ENOMEM, "out of memory keeping a tensor of %zu bytes", bytes);
        k->buf = grown;
        k->cap = bytes;
    }
    if (bytes)
        memcpy(k->buf, x->data, bytes);
    k->t = *x;
    k->t.data = bytes ? k->buf : NULL;
    k->t.nbytes = bytes;
    k->t.owns_data = false;
    k->sample = sample;
    return OQ_OK;
}

/* ---- sums ----------------------------------------------------------------------------------- */

typedef struct sums {
    double ff, qq, fq, err2; /* sum f^2, q^2, f q, (f - q)^2 */
    double max_err;
    int64_t elements;        /* pairs summed */
    int64_t nonfinite;       /* pairs left out: the float value was NaN or infinite */
} sums;

enum { LANES = 4, CHUNK = 1024 };

/* Adds the pairs f[i], q[i] (i < n) to s, in LANES interleaved partial
 * sums, leaving out those whose float value is NaN or infinite (what the
 * float model cannot say counts for nothing, as in the evaluation). */
static void add_floats(sums *s, const float *f, const float *q, int64_t n)
{
    double ff[LANES] = {0}, qq[LANES] = {0}, fq[LANES] = {0}, e2[LANES] = {0}, mx[LANES] = {0};
    int64_t whole = n - n % LANES, bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += !isfinite(f[i]);
    for (int64_t i = 0; i < n; i += LANES) {
        int lanes = i < whole ? LANES : (int)(n - i);
        for (int l = 0; l < lanes; l++) {
            if (bad && !isfinite(f[i + l]))
                continue;
            double a = f[i + l], b = q[i + l], d = a - b, ad = fabs(d);
            ff[l] += a * a;
            qq[l] += b * b;
            fq[l] += a * b;
            e2[l] += d * d;
            mx[l] = ad > mx[l] ? ad : mx[l]; /* NaN is left out */
        }
    }
    for (int l = 0; l < LANES; l++) {
        s->ff += ff[l];
        s->qq += qq[l];
        s->fq += fq[l];
        s->err2 += e2[l];
        s->max_err = mx[l] > s->max_err ? mx[l] : s->max_err;
    }
    s->elements += n - bad;
    s->nonfinite += bad;
}

/* +inf when the two are equal, zeros included. */
static double sqnr_db(const sums *s)
{
    if (!s->elements)
        return NAN;
    return s->err2 == 0 ? INFINITY : 10 * log10(s->ff / s->err2);
}

static double cosine(const sums *s)
{
    if (!s->elements)
        return NAN;
    if (s->ff > 0 && s->qq > 0)
        return s->fq / sqrt(s->ff * s->qq);
    return s->ff == s->qq ? 1 : 0;
}

/* Element i of an integer tensor (8, 16 or 32 bits). */
static int32_t int_at(const oq_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case OQ_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    case OQ_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case OQ_DTYPE_UINT16: return ((const uint16_t *)t->data)[i];
    case OQ_DTYPE_INT16: return ((const int16_t *)t->data)[i];
    case OQ_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    default: return 0;
    }
}

/* Parameters resolved for one integer tensor of one sample. */
typedef struct dequant {
    const float *scale;     /* [channels] */
    const oq_tensor *zero;  /* NULL (0) or [channels] integers */
    int64_t channels, inner; /* element i belongs to channel (i / inner) % channels */
} dequant;

/* Adds f[0..n) against x (float, or integer through d) to s. Integers are
 * dequantized as DequantizeLinear does: float(q - zero) * scale, a chunk at a time. */
static void add_tensor(sums *s, const float *f, const oq_tensor *x, const dequant *d)
{
    int64_t n = oq_tensor_numel(x);
    if (x->dtype == OQ_DTYPE_FLOAT) {
        /* chunk by chunk as integers are, so that equal values give equal sums */
        for (int64_t i0 = 0; i0 < n; i0 += CHUNK)
            add_floats(s, f + i0, (const float *)x->data + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
        return;
    }
    float real[256], buf[CHUNK];
    bool table = d->channels == 1 && (x->dtype == OQ_DTYPE_UINT8 || x->dtype == OQ_DTYPE_INT8);
    int32_t z0 = d->zero ? int_at(d->zero, 0) : 0;
    for (int b = 0; table && b < 256; b++)
        real[b] = (float)((x->dtype == OQ_DTYPE_INT8 ? (int32_t)(int8_t)b : b) - z0) * d->scale[0];
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        if (table) {
            const uint8_t *q = (const uint8_t *)x->data + i0;
            for (int64_t k = 0; k < m; k++)
                buf[k] = real[q[k]];
        } else {
            for (int64_t k = 0; k < m; k++) {
                int64_t i = i0 + k, c = (i / d->inner) % d->channels;
                buf[k] = (float)(int_at(x, i) - (d->zero ? int_at(d->zero, c) : 0)) * d->scale[c];
            }
        }
        add_floats(s, f + i0, buf, m);
    }
}

/* ---- the comparison ------------------------------------------------------------------------ */

/* One paired tensor of the quantized model. */
typedef struct row {
    const oq_value *q, *ref;
    oq_compare_match match;
    oq_qparams_ref p;            /* to dequantize q when it is an integer tensor */
    oq_dtype dtype;       /* q's element type as it ran (UNDEFINED until seen) */
    sums s;
    int64_t samples, mismatched;
    char bad[256];        /* why it cannot be compared ("" while it can) */
    kept pending;         /* q of this sample, waiting for run-time parameters */
} row;

typedef struct output_pair {
    int fi, qi;           /* indices among the float and quantized session outputs */
    sums s;
    bool classifier;
    int64_t agree, total;
} output_pair;

typedef struct cmp {
    const oq_model *fm, *qm;
    oq_session *fs, *qs;
    int n_in;
    int *qin_from;        /* [n_in] quantized input j is fed float input qin_from[j] */
    int *f_input;         /* [fm n_values]: index among the fed inputs, or -1 */
    bool *f_need, *q_need; /* [n_values] the values each session shows its observer */
    int *row_of;          /* [qm n_values]: row index, or -1 */
    const oq_value **unlike; /* [qm n_values]: pairing.unlike of the values without a row */
    bool *is_param;       /* [qm n_values]: a run-time scale or zero point some row needs */
    int n_rows;
    row *rows;
    kept *fkept;          /* [fm n_values] */
    kept *pkept;          /* [qm n_values] */
    int n_out;
    output_pair *outs;
    oq_tensor *ins, *qins, *fouts, *qouts;
    int64_t sample;
    oq_status obs_status; /* the first failure inside an observer */
    oq_err obs_err;
} cmp;

/* The float tensor of counterpart f in this sample, or NULL. */
static const oq_tensor *reference(const cmp *c, const oq_value *f)
{
    if (f->constant)
        return f->constant;
    if (c->f_input[f->id] >= 0)
        return &c->ins[c->f_input[f->id]];
    const kept *k = &c->fkept[f->id];
    return k->sample == c->sample ? &k->t : NULL;
}

/* A scale or zero point of this sample: a constant or a kept run-time value. */
static const oq_tensor *param(const cmp *c, const oq_value *v)
{
    if (!v || v->constant)
        return v ? v->constant : NULL;
    const kept *k = &c->pkept[v->id];
    return k->sample == c->sample ? &k->t : NULL;
}

static bool params_ready(const cmp *c, const oq_qparams_ref *p)
{
    return p->scale && param(c, p->scale) && (!p->zero || param(c, p->zero));
}

static void set_bad(row *r, const char *fmt, const char *a, const char *b)
{
    if (!r->bad[0])
        snprintf(r->bad, sizeof r->bad, fmt, a, b);
}

/* Resolves r's parameters for integer tensor x; false (r marked) when they do not fit. */
static bool resolve_dequant(const cmp *c, row *r, const oq_tensor *x, dequant *d)
{
    const oq_tensor *s = param(c, r->p.scale), *z = param(c, r->p.zero);
    if (!s) {
        set_bad(r, "it holds %s with no known scale and zero point", oq_dtype_name(x->dtype), "");
        return false;
    }
    int64_t ns = oq_tensor_numel(s);
    int axis = r->p.axis < 0 ? r->p.axis + x->rank : r->p.axis;
    bool per_axis = ns > 1 && s->rank == 1 && axis >= 0 && axis < x->rank && x->dims[axis] == ns;
    if (s->dtype != OQ_DTYPE_FLOAT || (ns != 1 && !per_axis) ||
        (z && (oq_tensor_numel(z) != ns || !(oq_is_scaled_int(z->dtype) || z->dtype == OQ_DTYPE_INT32)))) {
        set_bad(r, "its scale or zero point ('%s') does not fit the tensor", r->p.scale->name, "");
        return false;
    }
    d->scale = s->data;
    d->zero = z;
    d->channels = ns;
    d->inner = 1;
    for (int i = axis + 1; per_axis && i < x->rank; i++)
        d->inner *= x->dims[i];
    return true;
}

/* Compares q tensor x of row r with its float counterpart in this sample. */
static void compare_row(cmp *c, row *r, const oq_tensor *x)
{
    r->dtype = x->dtype;
    if (r->bad[0])
        return;
    const oq_tensor *f = reference(c, r->ref);
    dequant d = {0};
    if (!f)
        set_bad(r, "its float counterpart '%s' was not computed", r->ref->name, "");
    else if (f->dtype != OQ_DTYPE_FLOAT)
        set_bad(r, "its float counterpart '%s' holds %s, not float", r->ref->name, oq_dtype_name(f->dtype));
    else if (x->dtype != OQ_DTYPE_FLOAT && !oq_is_scaled_int(x->dtype))
        set_bad(r, "it holds %s, neither float nor an 8- or 16-bit integer", oq_dtype_name(x->dtype), "");
    if (r->bad[0])
        return;
    if (!oq_tensor_same_shape(f, x)) {
        r->mismatched++;
        return;
    }
    if (x->dtype != OQ_DTYPE_FLOAT && !resolve_dequant(c, r, x, &d))
        return;
    add_tensor(&r->s, f->data, x, &d);
    r->samples++;
}

static void fail_in_observer(cmp *c, oq_status st)
{
    if (!c->obs_status)
        c->obs_status = st;
}

static void observe_float(void *user, const oq_value *v, const oq_tensor *x)
{
    cmp *c = user;
    if (c->f_need[v->id] && !c->obs_status) {
        oq_status st = keep(&c->fkept[v->id], x, c->sample, &c->obs_err);
        if (st)
            fail_in_observer(c, st);
    }
}

static void observe_quant(void *user, const oq_value *v, const oq_tensor *x)
{
    cmp *c = user;
    oq_status st;
    if (c->obs_status)
        return;
    if (c->is_param[v->id] && (st = keep(&c->pkept[v->id], x, c->sample, &c->obs_err))) {
        fail_in_observer(c, st);
        return;
    }
    if (c->row_of[v->id] < 0)
        return;
    row *r = &c->rows[c->row_of[v->id]];
    if (!oq_is_scaled_int(x->dtype) || params_ready(c, &r->p) || !r->p.scale)
        compare_row(c, r, x);
    else if ((st = keep(&r->pending, x, c->sample, &c->obs_err)))
        fail_in_observer(c, st);
}

/* ---- outputs ---------------------------------------------------------------------------------- */

static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void compare_output(output_pair *o, const oq_tensor *f, const oq_tensor *q)
{
    if (f->dtype != OQ_DTYPE_FLOAT || q->dtype != OQ_DTYPE_FLOAT || !oq_tensor_same_shape(f, q))
        return;
    dequant none = {0};
    add_tensor(&o->s, f->data, q, &none);
    bool classifier = (f->rank == 2 || f->rank == 3) && f->dims[f->rank - 1] >= 2;
    o->classifier = o->classifier || classifier;
    if (!classifier)
        return;
    int64_t cls = f->dims[f->rank - 1], n = oq_tensor_numel(f);
    for (int64_t row = 0; row < n / cls; row++) {
        const float *fr = (const float *)f->data + row * cls;
        bool finite = true;
        for (int64_t j = 0; j < cls && finite; j++)
            finite = isfinite(fr[j]);
        if (!finite) /* left out, as in the evaluation */
            continue;
        o->agree += argmax(fr, cls) == argmax((const float *)q->data + row * cls, cls);
        o->total++;
    }
}

/* ---- setup -------------------------------------------------------------------------------------- */

/* The fed graph inputs of g (not initializers), in order; count in *n. */
static const oq_value **fed_inputs(const oq_graph *g, int *n, oq_err *err)
{
    const oq_value **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    if (!in) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    *n = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->constant)
            in[(*n)++] = g->inputs[i];
    return in;
}

/* Maps the quantized model's fed inputs onto the float model's by name;
 * fails naming the first input that differs. */
static oq_status map_inputs(cmp *c, oq_err *err)
{
    int nf, nq;
    oq_status st = OQ_OK;
    const oq_value **fi = fed_inputs(c->fm->graph, &nf, err), **qi = fi ? fed_inputs(c->qm->graph, &nq, err) : NULL;
    if (!fi || !qi) {
        free(fi);
        return err->status;
    }
    c->n_in = nf;
    if (!(c->qin_from = calloc((size_t)nf + 1, sizeof *c->qin_from)))
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int j = 0; !st && j < nq; j++) {
        int k = 0;
        while (k < nf && strcmp(fi[k]->name, qi[j]->name))
            k++;
        if (k == nf)
            st = oq_errf(err, OQ_EINVAL, "the quantized model has an input '%s' that the float model does not have",
                         qi[j]->name);
        else if (fi[k]->dtype != qi[j]->dtype)
            st = oq_errf(err, OQ_EINVAL, "input '%s' is %s in the float model but %s in the quantized one",
                         qi[j]->name, oq_dtype_name(fi[k]->dtype), oq_dtype_name(qi[j]->dtype));
        else
            c->qin_from[j] = k;
    }
    if (!st && nq != nf) {
        for (int k = 0; k < nf; k++) {
            int j = 0;
            while (j < nq && strcmp(fi[k]->name, qi[j]->name))
                j++;
            if (j == nq) {
                st = oq_errf(err, OQ_EINVAL, "the float model has an input '%s' that the quantized model does not have",
                             fi[k]->name);
                break;
            }
        }
    }
    for (int k = 0; !st && k < nf; k++)
        c->f_input[fi[k]->id] = k;
    free(fi);
    free(qi);
    return st;
}

/* Rows from the pairing pv, in graph order, and what each session must show. */
static oq_status plan_rows(cmp *c, const oq_pairing *pv, oq_err *err)
{
    const oq_graph *qg = c->qm->graph;
    if (!(c->rows = calloc((size_t)qg->n_values + 1, sizeof *c->rows)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < qg->n_nodes; i++) {
        const oq_node *n = qg->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            const oq_value *v = n->outputs[k];
            const oq_pairing *p = v ? &pv[v->id] : NULL;
            if (v && !v->constant && !p->ref)
                c->unlike[v->id] = p->unlike;
            if (!v || v->constant || !p->ref)
                continue;
            c->row_of[v->id] = c->n_rows;
            c->rows[c->n_rows++] = (row){.q = v, .ref = p->ref, .match = p->match, .p = p->via,
                                         .pending = {.sample = -1}};
            c->q_need[v->id] = true;
            if (!p->ref->constant && c->f_input[p->ref->id] < 0)
                c->f_need[p->ref->id] = true;
            const oq_value *rt[2] = {p->via.scale, p->via.zero};
            for (int j = 0; j < 2; j++)
                if (rt[j] && !rt[j]->constant)
                    c->is_param[rt[j]->id] = c->q_need[rt[j]->id] = true;
        }
    }
    return OQ_OK;
}

/* Graph outputs present in both models by name. */
static oq_status plan_outputs(cmp *c, oq_err *err)
{
    int nf = oq_session_output_count(c->fs), nq = oq_session_output_count(c->qs);
    c->outs = calloc((size_t)nq + 1, sizeof *c->outs);
    c->fouts = calloc((size_t)nf + 1, sizeof *c->fouts);
    c->qouts = calloc((size_t)nq + 1, sizeof *c->qouts);
    if (!c->outs || !c->fouts || !c->qouts)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int j = 0; j < nq; j++)
        for (int i = 0; i < nf; i++)
            if (!strcmp(oq_session_output(c->qs, j)->name, oq_session_output(c->fs, i)->name)) {
                c->outs[c->n_out++] = (output_pair){.fi = i, .qi = j};
                break;
            }
    return OQ_OK;
}

static oq_status cmp_init(cmp *c, const oq_model *fm, const oq_model *qm, const oq_compare_options *o, oq_err *err)
{
    int nf = fm->graph->n_values, nq = qm->graph->n_values;
    *c = (cmp){.fm = fm, .qm = qm, .sample = -1};
    c->f_input = malloc(((size_t)nf + 1) * sizeof *c->f_input);
    c->row_of = malloc(((size_t)nq + 1) * sizeof *c->row_of);
    c->unlike = calloc((size_t)nq + 1, sizeof *c->unlike);
    c->f_need = calloc((size_t)nf + 1, sizeof *c->f_need);
    c->q_need = calloc((size_t)nq + 1, sizeof *c->q_need);
    c->is_param = calloc((size_t)nq + 1, sizeof *c->is_param);
    c->fkept = calloc((size_t)nf + 1, sizeof *c->fkept);
    c->pkept = calloc((size_t)nq + 1, sizeof *c->pkept);
    if (!c->f_input || !c->row_of || !c->unlike || !c->f_need || !c->q_need || !c->is_param || !c->fkept || !c->pkept)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < nf; i++) {
        c->f_input[i] = -1;
        c->fkept[i].sample = -1;
    }
    for (int i = 0; i < nq; i++) {
        c->row_of[i] = -1;
        c->pkept[i].sample = -1;
    }
    oq_pairing *pv = NULL;
    oq_status st = map_inputs(c, err);
    if (!st && !(st = oq_pair_tensors(fm->graph, qm->graph, &pv, err)))
        st = plan_rows(c, pv, err);
    free(pv);
    if (st)
        return st;
    oq_exec_options fo = {.threads = o ? o->threads : 0, .observed = c->f_need};
    oq_exec_options qo = {.threads = o ? o->threads : 0, .observed = c->q_need};
    if ((st = oq_session_create(&c->fs, fm, &fo, err)))
        return oq_err_context(err, "float model");
    if ((st = oq_session_create(&c->qs, qm, &qo, err)))
        return oq_err_context(err, "quantized model");
    oq_session_set_observer(c->fs, observe_float, c);
    oq_session_set_observer(c->qs, observe_quant, c);
    c->ins = calloc((size_t)c->n_in + 1, sizeof *c->ins);
    c->qins = calloc((size_t)c->n_in + 1, sizeof *c->qins);
    if (!c->ins || !c->qins)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    return plan_outputs(c, err);
}

static void kept_release(kept *k)
{
    free(k->buf);
}

static void cmp_release(cmp *c)
{
    for (int i = 0; c->fkept && i < c->fm->graph->n_values; i++)
        kept_release(&c->fkept[i]);
    for (int i = 0; c->pkept && i < c->qm->graph->n_values; i++)
        kept_release(&c->pkept[i]);
    for (int i = 0; i < c->n_rows; i++)
        kept_release(&c->rows[i].pending);
    oq_session_destroy(c->fs);
    oq_session_destroy(c->qs);
    free(c->qin_from);
    free(c->f_input);
    free(c->f_need);
    free(c->q_need);
    free(c->row_of);
    free(c->unlike);
    free(c->is_param);
    free(c->rows);
    free(c->fkept);
    free(c->pkept);
    free(c->outs);
    free(c->ins);
    free(c->qins);
    free(c->fouts);
    free(c->qouts);
}

/* ---- one sample ------------------------------------------------------------------------------- */

static oq_status run_sample(cmp *c, const oq_dataset *ds, int64_t s, oq_err *err)
{
    int nf = oq_session_output_count(c->fs), nq = oq_session_output_count(c->qs);
    c->sample = s;
    oq_status st = oq_dataset_load(ds, s, c->ins, err);
    if (st)
        return st;
    for (int j = 0; j < c->n_in; j++)
        c->qins[j] = c->ins[c->qin_from[j]];
    if ((st = oq_session_run(c->fs, c->ins, c->fouts, err)))
        oq_err_context(err, "float model");
    else if (!c->obs_status && (st = oq_session_run(c->qs, c->qins, c->qouts, err)))
        oq_err_context(err, "quantized model");
    if (!st && c->obs_status) {
        st = c->obs_status;
        *err = c->obs_err;
    }
    for (int i = 0; !st && i < c->n_rows; i++)
        if (c->rows[i].pending.sample == s)
            compare_row(c, &c->rows[i], &c->rows[i].pending.t);
    for (int i = 0; !st && i < c->n_out; i++)
        compare_output(&c->outs[i], &c->fouts[c->outs[i].fi], &c->qouts[c->outs[i].qi]);
    for (int i = 0; i < nf; i++)
        oq_tensor_release(&c->fouts[i]);
    for (int i = 0; i < nq; i++)
        oq_tensor_release(&c->qouts[i]);
    for (int j = 0; j < c->n_in; j++)
        oq_tensor_release(&c->ins[j]);
    if (st)
        oq_err_context(err, "sample %lld", (long long)s);
    return st;
}

/* ---- the result ------------------------------------------------------------------------------- */

/* Whether n quantizes, dequantizes or computes on 8-bit values, or reads a
 * dequantized constant (the float op of a QDQ node, reading its int8 weight;
 * a float op that only reads a dequantized activation, such as a Softmax
 * after an output pair, reshapes error that is already there). Integer ops
 * of ONNX Runtime's contrib domain that onnxq has no kind for
 * (QLinearAveragePool, ...) count by name. */
static bool quantizing(const oq_node *n)
{
    if (n->kind == OQ_OP_QUANTIZE_LINEAR || n->kind == OQ_OP_DEQUANTIZE_LINEAR ||
        n->kind == OQ_OP_DYNAMIC_QUANTIZE_LINEAR || oq_op_is_integer(n->kind))
        return true;
    if (!strcmp(n->domain, OQ_CONTRIB_DOMAIN) && !strncmp(n->op_type, "QLinear", 7))
        return true;
    for (int k = 0; k < n->n_inputs; k++) {
        const oq_node *d = n->inputs[k] ? n->inputs[k]->producer : NULL;
        if (d && d->kind == OQ_OP_DEQUANTIZE_LINEAR && d->n_inputs > 0 && d->inputs[0] && d->inputs[0]->constant)
            return true;
    }
    return false;
}

/* The lowest quality (carried[t], see build_result) among the nearest rows
 * that v was computed from (through values without a row), or NAN when
 * there are none; *step: whether v's producer or a node between those rows
 * and v is quantizing. stack and seen have room for every value; seen holds
 * marks below mark. */
static double ancestors_sqnr(const cmp *c, const oq_compare_result *r, const int *tensor_of, const double *carried,
                             const oq_value *v, const oq_value **stack, int *seen, int mark, bool *step)
{
    int top = 0;
    double lowest = NAN;
    const oq_node *n = v->producer;
    *step = n && quantizing(n);
    for (int k = 0; n && k < n->n_inputs; k++)
        if (n->inputs[k] && !n->inputs[k]->constant && seen[n->inputs[k]->id] != mark) {
            seen[n->inputs[k]->id] = mark;
            stack[top++] = n->inputs[k];
        }
    while (top) {
        const oq_value *u = stack[--top];
        int t = c->row_of[u->id] >= 0 ? tensor_of[c->row_of[u->id]] : -1;
        if (t >= 0 && r->tensors[t].samples > 0) {
            double q = carried[t];
            lowest = isnan(lowest) || q < lowest ? q : lowest;
            continue;
        }
        const oq_node *p = u->producer;
        *step = *step || (p && quantizing(p));
        for (int k = 0; p && k < p->n_inputs; k++)
            if (p->inputs[k] && !p->inputs[k]->constant && seen[p->inputs[k]->id] != mark) {
                seen[p->inputs[k]->id] = mark;
                stack[top++] = p->inputs[k];
            }
    }
    return lowest;
}

/* Fills r from the rows and outputs in graph order. */
static oq_status build_result(const cmp *c, oq_compare_result *r, oq_err *err)
{
    const oq_graph *qg = c->qm->graph;
    int n_unpaired = 0;
    for (int i = 0; i < qg->n_nodes; i++)
        n_unpaired += qg->nodes[i]->n_outputs;
    r->tensors = calloc((size_t)c->n_rows + 1, sizeof *r->tensors);
    r->unmatched = calloc((size_t)n_unpaired + 1, sizeof *r->unmatched);
    r->outputs = calloc((size_t)c->n_out + 1, sizeof *r->outputs);
    int *tensor_of = malloc(((size_t)c->n_rows + 1) * sizeof *tensor_of);
    const oq_value **tensor_value = malloc(((size_t)c->n_rows + 1) * sizeof *tensor_value);
    const oq_value **stack = malloc(((size_t)qg->n_values + 1) * sizeof *stack);
    int *seen = calloc((size_t)qg->n_values + 1, sizeof *seen);
    double *carried = malloc(((size_t)c->n_rows + 1) * sizeof *carried);
    oq_status st = OQ_OK;
    if (!r->tensors || !r->unmatched || !r->outputs || !tensor_of || !tensor_value || !stack || !seen || !carried) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < qg->n_nodes; i++) {
        const oq_node *n = qg->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            const oq_value *v = n->outputs[k];
            if (!v || v->constant)
                continue;
            int ri = c->row_of[v->id];
            const row *w = ri >= 0 ? &c->rows[ri] : NULL;
            if (w && !w->bad[0]) {
                tensor_of[ri] = r->n_tensors;
                tensor_value[r->n_tensors] = v;
                oq_compare_tensor *t = &r->tensors[r->n_tensors++];
                *t = (oq_compare_tensor){.match = w->match, .dtype = w->dtype, .samples = w->samples,
                                         .mismatched = w->mismatched, .elements = w->s.elements,
                                         .nonfinite = w->s.nonfinite,
                                         .sqnr_db = sqnr_db(&w->s), .cosine = cosine(&w->s),
                                         .max_abs_error = w->s.elements ? w->s.max_err : NAN, .drop_db = NAN};
                r->n_mismatched += w->mismatched > 0;
                if (!(t->name = strdup(v->name)) || !(t->op_type = strdup(n->op_type)) ||
                    !(t->float_name = strdup(w->ref->name)))
                    st = oq_errf(err, OQ_ENOMEM, "out of memory");
            } else {
                if (w)
                    tensor_of[ri] = -1;
                oq_compare_unmatched *u = &r->unmatched[r->n_unmatched++];
                char why[OQ_ERR_MSG_MAX];
                if (w)
                    snprintf(why, sizeof why, "%s", w->bad);
                else if (c->unlike[v->id])
                    snprintf(why, sizeof why, "no float counterpart: the float tensor of its name ('%s') is computed "
                             "from other tensors", c->unlike[v->id]->name);
                else
                    snprintf(why, sizeof why, "no float counterpart");
                if (!(u->name = strdup(v->name)) || !(u->op_type = strdup(n->op_type)) || !(u->reason = strdup(why)))
                    st = oq_errf(err, OQ_ENOMEM, "out of memory");
            }
            if (st)
                goto done;
        }
    }
    /* A tensor's drop is measured against the quality its inputs carry: its
     * own SQNR, except after an Add or Sub of an exact operand (a constant or
     * a tensor both models compute alike, such as an attention mask of
     * -10000): that operand adds signal and no noise, so the sum's SQNR says
     * how large the operand is, not how good the other one was, and the
     * other's quality is carried on (else the Softmax after a mask would
     * seem to lose hundreds of dB). */
    for (int i = 0; i < r->n_tensors; i++) {
        oq_compare_tensor *t = &r->tensors[i];
        double before =
            ancestors_sqnr(c, r, tensor_of, carried, tensor_value[i], stack, seen, i + 1, &t->quantization_step);
        if (isfinite(before) && isfinite(t->sqnr_db))
            t->drop_db = before - t->sqnr_db;
        carried[i] = t->sqnr_db;
        const oq_node *n = tensor_value[i]->producer;
        if (isfinite(before) && n && (n->kind == OQ_OP_ADD || n->kind == OQ_OP_SUB) && n->n_inputs == 2)
            for (int k = 0; k < 2; k++) {
                const oq_value *u = n->inputs[k];
                int row = u && !u->constant ? c->row_of[u->id] : -1, ut = row >= 0 ? tensor_of[row] : -1;
                if (u && (u->constant || (ut >= 0 && r->tensors[ut].samples > 0 && r->tensors[ut].sqnr_db == INFINITY)))
                    carried[i] = before;
            }
    }
    for (int i = 0; i < c->n_out; i++) {
        const output_pair *o = &c->outs[i];
        oq_compare_output *m = &r->outputs[r->n_outputs++];
        *m = (oq_compare_output){.sqnr_db = sqnr_db(&o->s), .cosine = cosine(&o->s),
                                 .max_abs_error = o->s.elements ? o->s.max_err : NAN, .nonfinite = o->s.nonfinite,
                                 .classifier = o->classifier,
                                 .top1_agree = o->agree, .top1_total = o->total};
        if (!(m->name = strdup(oq_session_output(c->qs, o->qi)->name))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto done;
        }
    }
done:
    free(tensor_of);
    free(tensor_value);
    free(stack);
    free(seen);
    free(carried);
    return st;
}

oq_status oq_compare_models(const oq_model *fp32, const oq_model *quant, const oq_dataset *ds,
                            const oq_compare_options *opts, oq_compare_result **out, oq_err *err)
{
    *out = NULL;
    cmp c;
    oq_compare_result *r = calloc(1, sizeof *r);
    oq_status st = r ? cmp_init(&c, fp32, quant, opts, err) : oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!r)
        return st;
    int64_t total = oq_dataset_count(ds);
    if (opts && opts->max_samples > 0 && opts->max_samples < total)
        total = opts->max_samples;
    for (int64_t s = 0; !st && s < total; s++)
        st = run_sample(&c, ds, s, err);
    r->samples = total;
    if (!st)
        st = build_result(&c, r, err);
    cmp_release(&c);
    if (st) {
        oq_compare_result_destroy(r);
        return st;
    }
    *out = r;
    return OQ_OK;
}

void oq_compare_result_destroy(oq_compare_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->tensors && i < r->n_tensors; i++) {
        free(r->tensors[i].name);
        free(r->tensors[i].op_type);
        free(r->tensors[i].float_name);
    }
    for (int i = 0; r->unmatched && i < r->n_unmatched; i++) {
        free(r->unmatched[i].name);
        free(r->unmatched[i].op_type);
        free(r->unmatched[i].reason);
    }
    for (int i = 0; r->outputs && i < r->n_outputs; i++)
        free(r->outputs[i].name);
    free(r->tensors);
    free(r->unmatched);
    free(r->outputs);
    free(r);
}

bool oq_compare_step_drop(const oq_compare_tensor *t, double min_drop_db)
{
    return t->quantization_step && t->drop_db >= min_drop_db;
}

int oq_compare_largest_drops(const oq_compare_result *r, double min_drop_db, int *best, int n)
{
    int found = 0;
    for (int i = 0; i < r->n_tensors; i++) {
        double d = r->tensors[i].drop_db;
        if (!oq_compare_step_drop(&r->tensors[i], min_drop_db))
            continue;
        int k = found < n ? found++ : n;
        for (; k > 0 && r->tensors[best[k - 1]].drop_db < d; k--)
            if (k < n)
                best[k] = best[k - 1];
        if (k < n)
            best[k] = i;
    }
    return found;
}

int oq_compare_first_drop(const oq_compare_result *r, double min_drop_db)
{
    for (int i = 0; i < r->n_tensors; i++)
        if (oq_compare_step_drop(&r->tensors[i], min_drop_db))
            return i;
    return -1;
}
