/* mixed.c: accuracy targets (see oq_mixed.h): the float model's outputs on
 * the evaluation samples computed once, then plans keeping more and more of
 * the most sensitive candidates float, each rewritten by the pipeline and
 * compared with those outputs, until the target holds; then the kept nodes
 * are given back to INT8 one at a time where the target still holds without
 * them (errors of different layers partly cancel, so the ranking of nodes
 * taken one at a time can keep more float than needed). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_mixed.h"
#include "onnxq/oq_pipeline.h"

/* Float outputs kept at most (the samples beyond run the float model again at each step). */
#define REFERENCE_BYTES ((size_t)1 << 30)
#define TARGET_REASON "kept float to meet the accuracy target" /* the plan reason of the nodes a search keeps */
/* Samples per block, as oq_evaluate runs them, so that the sums come out alike. */
enum { EVAL_BLOCK = 4 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *oq_target_name(oq_target_kind k)
{
    static const char *const names[OQ_TARGET_COUNT] = {"none", "max_drop", "min_agreement", "min_sqnr"};
    return k >= 0 && k < OQ_TARGET_COUNT ? names[k] : "?";
}

/* ---- the result ---------------------------------------------------------------------- */

void oq_mixed_destroy(oq_mixed *m)
{
    if (!m)
        return;
    for (int i = 0; m->kept && i < m->n_kept; i++)
        free(m->kept[i]);
    free(m->kept);
    for (int i = 0; m->steps && i < m->n_steps; i++)
        free(m->steps[i].requantized);
    free(m->steps);
    free(m);
}

oq_status oq_mixed_copy(oq_mixed **out, const oq_mixed *m, oq_err *err)
{
    oq_mixed *c = calloc(1, sizeof *c);
    bool bad = !c;
    if (c) {
        *c = *m;
        c->n_kept = 0;
        c->kept = calloc((size_t)m->n_kept + 1, sizeof *c->kept);
        c->steps = malloc(((size_t)m->n_steps + 1) * sizeof *c->steps);
        bad = !c->kept || !c->steps;
        for (; !bad && c->n_kept < m->n_kept; c->n_kept++)
            bad = !(c->kept[c->n_kept] = strdup(m->kept[c->n_kept]));
        c->n_steps = 0;
        for (; !bad && c->n_steps < m->n_steps; c->n_steps++) {
            c->steps[c->n_steps] = m->steps[c->n_steps];
            c->steps[c->n_steps].requantized = NULL;
            bad = m->steps[c->n_steps].requantized &&
                  !(c->steps[c->n_steps].requantized = strdup(m->steps[c->n_steps].requantized));
        }
    }
    if (bad) {
        oq_mixed_destroy(c);
        *out = NULL;
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    *out = c;
    return OQ_OK;
}

oq_status oq_mixed_overrides(const oq_mixed *m, oq_plan_override **overrides, int *n, oq_err *err)
{
    *n = 0;
    if (!(*overrides = calloc((size_t)m->n_kept + 1, sizeof **overrides)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (; *n < m->n_kept; (*n)++)
        (*overrides)[*n] = (oq_plan_override){m->kept[*n], OQ_POLICY_FLOAT, TARGET_REASON};
    return OQ_OK;
}

/* ---- the target ---------------------------------------------------------------------- */

oq_status oq_target_check(const oq_target *t, const oq_eval *e, double *metric, bool *met, oq_err *err)
{
    int64_t agree = 0, total = 0;
    *metric = NAN;
    *met = false;
    switch (t->kind) {
    case OQ_TARGET_MAX_DROP:
        if (!e->labeled)
            return oq_errf(err, OQ_EINVAL,
                           "--max-drop needs labels (--labels) for the evaluation samples and a first output shaped "
                           "[N, C] or [N, T, C]");
        *metric = 100.0 * (double)(e->fp32_correct - e->q_correct) / (double)e->labeled;
        *met = *metric <= t->value;
        return OQ_OK;
    case OQ_TARGET_MIN_AGREEMENT:
        for (int k = 0; k < e->n_outputs; k++)
            if (e->outputs[k].classifier && (!t->output || !strcmp(t->output, e->outputs[k].name))) {
                agree += e->outputs[k].top1_agree;
                total += e->outputs[k].top1_total;
            }
        if (!total)
            return oq_errf(err, OQ_EINVAL, "--min-agreement needs %s shaped [N, C] or [N, T, C]",
                           t->output ? "--target-output" : "an output");
        *metric = 100.0 * (double)agree / (double)total;
        *met = *metric >= t->value;
        return OQ_OK;
    case OQ_TARGET_MIN_SQNR:
        *metric = INFINITY;
        for (int k = 0; k < e->n_outputs; k++)
            if (e->outputs[k].compared && (!t->output || !strcmp(t->output, e->outputs[k].name))) {
                total++;
                if (e->outputs[k].sqnr_db < *metric)
                    *metric = e->outputs[k].sqnr_db;
            }
        if (!total)
            return oq_errf(err, OQ_EINVAL, "--min-sqnr needs %s that both models give in the same shape on some sample",
                           t->output ? "a --target-output of float" : "a float output");
        *met = *metric >= t->value;
        return OQ_OK;
    default: return oq_errf(err, OQ_EINVAL, "no accuracy target given");
    }
}

/* ---- the float outputs, once ----------------------------------------------------------- */

typedef struct reference {
    const oq_model *fp32;
    oq_dataset *ds;
    int64_t total;           /* samples evaluated */
    int64_t kept;            /* samples [0, kept) have their outputs in outs */
    int n_in, n_out;
    char **names;            /* [n_out] output names */
    oq_tensor *outs;         /* [kept * n_out] */
    int64_t *labels, n_labels;
} reference;

/* A worker of an evaluation: the quantized session, and a float one for
 * samples whose outputs were not kept (made when first needed). */
typedef struct ref_worker {
    oq_session *sq, *sf;
    int threads;
    oq_tensor *ins, *of, *oqv;  /* [n_in], [n_out], [n_out] */
    oq_output_sums *sums;       /* [n_out] over the block */
    int64_t samples, labeled, fp32_correct, q_correct;
} ref_worker;

typedef struct ref_eval {
    const reference *ref;
    const oq_model *quant;
    ref_worker *w;
    oq_output_sums *sums;       /* [n_out] totals */
    oq_eval *out;
    /* the reference being made: workers fill outs directly */
    reference *filling;
} ref_eval;

static void ref_worker_release(ref_worker *w, int n_out)
{
    oq_session_destroy(w->sq);
    oq_session_destroy(w->sf);
    for (int j = 0; w->of && j < n_out; j++)
        oq_tensor_release(&w->of[j]);
    free(w->ins);
    free(w->of);
    free(w->oqv);
    free(w->sums);
}

static oq_status ref_begin(void *user, int k, int64_t b, oq_err *err)
{
    (void)b;
    (void)err;
    ref_eval *r = user;
    ref_worker *w = &r->w[k];
    memset(w->sums, 0, (size_t)r->ref->n_out * sizeof *w->sums);
    w->samples = w->labeled = w->fp32_correct = w->q_correct = 0;
    return OQ_OK;
}

/* The float outputs of sample s: kept ones (borrowed), else run into w->of. */
static oq_status float_outputs(ref_eval *r, ref_worker *w, int64_t s, const oq_tensor **outs, oq_err *err)
{
    const reference *ref = r->ref;
    if (s < ref->kept && !r->filling) {
        *outs = &ref->outs[s * ref->n_out];
        return OQ_OK;
    }
    oq_status st = OQ_OK;
    if (!w->sf) {
        oq_exec_options eo = {.threads = w->threads};
        st = oq_session_create(&w->sf, ref->fp32, &eo, err);
    }
    for (int j = 0; j < ref->n_out; j++)
        oq_tensor_release(&w->of[j]);
    if (!st)
        st = oq_session_run(w->sf, w->ins, w->of, err);
    *outs = w->of;
    return st;
}

static oq_status ref_sample(void *user, int k, int64_t s, oq_err *err)
{
    ref_eval *r = user;
    const reference *ref = r->ref;
    ref_worker *w = &r->w[k];
    const oq_tensor *fo = NULL;
    oq_status st = oq_dataset_load(ref->ds, s, w->ins, err);
    if (!st)
        st = float_outputs(r, w, s, &fo, err);
    if (!st && r->filling) { /* making the reference: keep the outputs */
        for (int j = 0; !st && j < ref->n_out; j++)
            if (s < ref->kept)
                st = oq_tensor_copy(&r->filling->outs[s * ref->n_out + j], &fo[j], err);
    } else if (!st) {
        st = oq_session_run(w->sq, w->ins, w->oqv, err);
        for (int j = 0; !st && j < ref->n_out; j++)
            oq_output_sums_add(&w->sums[j], &fo[j], &w->oqv[j]);
        if (!st && ref->labels && s < ref->n_labels && ref->n_out > 0 && w->sums[0].classifier) {
            w->labeled++;
            w->fp32_correct += oq_predicted_class(&fo[0]) == ref->labels[s];
            w->q_correct += oq_predicted_class(&w->oqv[0]) == ref->labels[s];
        }
        for (int j = 0; j < ref->n_out; j++)
            oq_tensor_release(&w->oqv[j]);
    }
    for (int j = 0; j < ref->n_in; j++)
        oq_tensor_release(&w->ins[j]);
    if (st)
        return oq_err_context(err, "evaluation sample %lld", (long long)s);
    w->samples++;
    return OQ_OK;
}

static oq_status ref_fold(void *user, int k, int64_t b, oq_err *err)
{
    (void)b;
    (void)err;
    ref_eval *r = user;
    ref_worker *w = &r->w[k];
    for (int j = 0; j < r->ref->n_out; j++)
        oq_output_sums_merge(&r->sums[j], &w->sums[j]);
    if (r->out) {
        r->out->samples += w->samples;
        r->out->labeled += w->labeled;
        r->out->fp32_correct += w->fp32_correct;
        r->out->q_correct += w->q_correct;
    }
    return OQ_OK;
}

/* Runs quant (NULL: only the float model, filling `filling`) over ref's
 * samples; with quant, *out gets the outputs' metrics and the accuracy. */
static oq_status ref_run(const reference *ref, reference *filling, const oq_model *quant, int threads, oq_eval *out,
                         oq_err *err)
{
    int n_workers, threads_each;
    oq_sample_block_workers(threads, ref->total, EVAL_BLOCK, &n_workers, &threads_each);
    ref_eval r = {.ref = ref, .quant = quant, .out = out, .filling = filling};
    r.w = calloc((size_t)n_workers, sizeof *r.w);
    r.sums = calloc((size_t)ref->n_out + 1, sizeof *r.sums);
    oq_status st = r.w && r.sums ? OQ_OK : oq_errf(err, OQ_ENOMEM, "out of memory");
    if (out)
        memset(out, 0, sizeof *out);
    for (int k = 0; !st && k < n_workers; k++) {
        ref_worker *w = &r.w[k];
        w->threads = threads_each;
        w->ins = calloc((size_t)ref->n_in + 1, sizeof *w->ins);
        w->of = calloc((size_t)ref->n_out + 1, sizeof *w->of);
        w->oqv = calloc((size_t)ref->n_out + 1, sizeof *w->oqv);
        w->sums = calloc((size_t)ref->n_out + 1, sizeof *w->sums);
        if (!w->ins || !w->of || !w->oqv || !w->sums)
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
        else if (quant)
            st = oq_session_create(&w->sq, quant, &(oq_exec_options){.threads = threads_each}, err);
        if (!st && w->sq && (oq_session_output_count(w->sq) != ref->n_out || oq_session_input_count(w->sq) != ref->n_in))
            st = oq_errf(err, OQ_EINVAL, "the quantized model's inputs or outputs differ from the float model's");
    }
    oq_block_fns fns = {.user = &r, .begin = ref_begin, .sample = ref_sample, .fold = ref_fold};
    if (!st)
        st = oq_run_sample_blocks(ref->total, EVAL_BLOCK, n_workers, &fns, err);
    if (!st && out) {
        out->n_outputs = ref->n_out;
        out->outputs = calloc((size_t)ref->n_out + 1, sizeof *out->outputs);
        st = out->outputs ? OQ_OK : oq_errf(err, OQ_ENOMEM, "out of memory");
        for (int j = 0; !st && j < ref->n_out; j++) {
            oq_output_sums_finish(&r.sums[j], &out->outputs[j]);
            if (!(out->outputs[j].name = strdup(ref->names[j])))
                st = oq_errf(err, OQ_ENOMEM, "out of memory");
        }
    }
    for (int k = 0; r.w && k < n_workers; k++)
        ref_worker_release(&r.w[k], ref->n_out);
    free(r.w);
    free(r.sums);
    if (st && out)
        oq_eval_release(out);
    return st;
}

static void reference_release(reference *ref)
{
    for (int64_t i = 0; ref->outs && i < ref->kept * ref->n_out; i++)
        oq_tensor_release(&ref->outs[i]);
    free(ref->outs);
    for (int j = 0; ref->names && j < ref->n_out; j++)
        free(ref->names[j]);
    free(ref->names);
    free(ref->labels);
    oq_dataset_destroy(ref->ds);
}

/* The float model's outputs on the job's evaluation samples (as many as
 * REFERENCE_BYTES holds), and the labels. */
static oq_status reference_make(reference *ref, oq_pipeline *p, int threads, oq_err *err)
{
    const oq_job *j = oq_pipeline_job(p);
    memset(ref, 0, sizeof *ref);
    ref->fp32 = oq_pipeline_model(p);
    if (!oq_pipeline_has_samples(p, true))
        return oq_errf(err, OQ_EINVAL, "an accuracy target needs evaluation samples (--data or --eval-data)");
    oq_status st = j->labels_path ? oq_labels_read(j->labels_path, &ref->labels, &ref->n_labels, err) : OQ_OK;
    if (!st)
        st = oq_pipeline_open_samples(p, ref->fp32, true, &ref->ds, err);
    if (st)
        return st;
    const oq_graph *g = ref->fp32->graph;
    ref->total = oq_dataset_count(ref->ds);
    if (j->eval_samples && j->eval_samples < ref->total)
        ref->total = j->eval_samples;
    ref->n_out = g->n_outputs;
    for (int i = 0; i < g->n_inputs; i++)
        ref->n_in += !g->inputs[i]->constant;
    if (!ref->total)
        return oq_errf(err, OQ_EINVAL, "an accuracy target needs evaluation samples; the data has none");
    if (!(ref->names = calloc((size_t)ref->n_out + 1, sizeof *ref->names)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int k = 0; k < ref->n_out; k++)
        if (!(ref->names[k] = strdup(g->outputs[k]->name)))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
    /* one sample's outputs size how many are kept */
    reference probe = *ref;
    probe.kept = 1;
    probe.total = 1;
    probe.outs = calloc((size_t)ref->n_out + 1, sizeof *probe.outs);
    if (!probe.outs)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    st = ref_run(&probe, &probe, NULL, threads, NULL, err);
    size_t bytes = 0;
    for (int k = 0; k < ref->n_out; k++) {
        bytes += probe.outs[k].nbytes;
        oq_tensor_release(&probe.outs[k]);
    }
    free(probe.outs);
    if (st)
        return st;
    int64_t kept = (int64_t)(REFERENCE_BYTES / (bytes ? bytes : 1));
    ref->kept = kept > ref->total ? ref->total : kept;
    if (!(ref->outs = calloc((size_t)(ref->kept * ref->n_out) + 1, sizeof *ref->outs)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    reference fill = *ref;
    fill.total = ref->kept;
    return ref_run(&fill, ref, NULL, threads, NULL, err);
}

/* ---- the search ------------------------------------------------------------------------- */

typedef struct search {
    oq_pipeline *p;
    const oq_target *t;
    const oq_sensitivity *sens;
    reference ref;
    int threads;
    int n_ranked;
    const char **ranked;       /* [n_ranked] the default plan's quantized candidates, most sensitive first */
    double *int8_macs;         /* [n_ranked] the multiply-adds per sample each runs in 8 bits when quantized (0 for
                                  one whose weights alone are 8-bit: it computes in float) */
    bool *kept;                /* [n_ranked] kept float in the plan being tried */
    oq_mixed *m;
} search;

/* Evaluates the plan keeping s->kept float and records the step (requantized:
 * the node a give-back step quantizes again, else NULL). */
static oq_status try_plan(search *s, const char *requantized, bool *met, oq_err *err)
{
    oq_plan_override *ov = calloc((size_t)s->n_ranked + 1, sizeof *ov);
    oq_plan *plan = NULL;
    oq_quantized *q = NULL;
    oq_eval e;
    double metric = NAN;
    int kept = 0;
    if (!ov)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < s->n_ranked; i++)
        if (s->kept[i])
            ov[kept++] = (oq_plan_override){s->ranked[i], OQ_POLICY_FLOAT, TARGET_REASON};
    oq_status st = oq_pipeline_plan(s->p, kept, ov, &plan, err);
    if (!st)
        st = oq_pipeline_rewrite(s->p, plan, false, &q, err);
    if (!st && !(st = ref_run(&s->ref, NULL, q->model, s->threads, &e, err))) {
        st = oq_target_check(s->t, &e, &metric, met, err);
        oq_eval_release(&e);
    }
    oq_quantized_destroy(q);
    oq_plan_destroy(plan);
    free(ov);
    if (st)
        return st;
    oq_mixed_step *grown = realloc(s->m->steps, (size_t)(s->m->n_steps + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    s->m->steps = grown;
    s->m->steps[s->m->n_steps] = (oq_mixed_step){kept, NULL, metric, *met};
    if (requantized && !(s->m->steps[s->m->n_steps].requantized = strdup(requantized)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    s->m->n_steps++;
    if (*met)
        s->m->metric_after = metric;
    return OQ_OK;
}

/* Marks the first `count` ranked candidates kept float, the others not. */
static void keep_first(search *s, int count)
{
    for (int i = 0; i < s->n_ranked; i++)
        s->kept[i] = i < count;
}

/* Evaluates the plan keeping the first `count` ranked candidates float. */
static oq_status try_prefix(search *s, int count, bool *met, oq_err *err)
{
    keep_first(s, count);
    return try_plan(s, NULL, met, err);
}

/* From the plan keeping the first `count` ranked candidates float, which
 * meets the target, quantizes each of them again, least sensitive first,
 * where the target still holds without it. The last of them is not tried
 * (keeping only the ones before it is the prefix plan that missed), nor is a
 * plan keeping nothing float (the default plan, which missed). Leaves
 * s->kept as the answer. */
static oq_status give_back(search *s, int count, oq_err *err)
{
    bool met = false;
    int kept = count;
    keep_first(s, count);
    for (int i = count - 2; i >= 0 && kept > 1; i--) {
        s->kept[i] = false;
        oq_status st = try_plan(s, s->ranked[i], &met, err);
        if (st)
            return st;
        if (met)
            kept--;
        else
            s->kept[i] = true;
    }
    return OQ_OK;
}

/* "agreement 97.30%", "drop 1.20 points", "SQNR 14.0 dB" */
static void describe(char *buf, size_t cap, oq_target_kind k, double v)
{
    if (k == OQ_TARGET_MAX_DROP)
        snprintf(buf, cap, "an accuracy drop of %.2f points", v);
    else if (k == OQ_TARGET_MIN_AGREEMENT)
        snprintf(buf, cap, "top-1 agreement %.2f%%", v);
    else
        snprintf(buf, cap, "output SQNR %.2f dB", v);
}

static const char *target_text(const oq_target *t, char *buf, size_t cap)
{
    if (t->kind == OQ_TARGET_MAX_DROP)
        snprintf(buf, cap, "--max-drop %g", t->value);
    else if (t->kind == OQ_TARGET_MIN_AGREEMENT)
        snprintf(buf, cap, "--min-agreement %g", t->value);
    else
        snprintf(buf, cap, "--min-sqnr %g", t->value);
    return buf;
}

/* Orders the default plan's quantized candidates by the ranking, checking
 * that it fits the model. */
static oq_status rank_candidates(search *s, oq_err *err)
{
    const oq_sensitivity *sens = s->sens;
    const char *src = oq_pipeline_job(s->p)->sensitivity_path;
    src = src ? src : "the sensitivity analysis";
    if (sens->shard_count != 1)
        return oq_errf(err, OQ_EINVAL, "%s is shard %d of %d: merge the shards first (onnxq analyze merge)", src,
                       sens->shard_index, sens->shard_count);
    cJSON *setup = cJSON_Parse(sens->setup);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(setup, "model_sha256");
    bool same_model = cJSON_IsString(sha) && !strcmp(sha->valuestring, oq_pipeline_model_sha256(s->p));
    cJSON_Delete(setup);
    if (!same_model)
        return oq_errf(err, OQ_EINVAL, "%s was made for a different model", src);
    oq_plan *base = NULL;
    oq_status st = oq_pipeline_plan(s->p, 0, NULL, &base, err);
    if (st)
        return st;
    const oq_graph *g = base->graph;
    const oq_sensitivity_node **entry = calloc((size_t)g->n_nodes + 1, sizeof *entry);
    s->ranked = calloc((size_t)g->n_nodes + 1, sizeof *s->ranked);
    s->int8_macs = calloc((size_t)g->n_nodes + 1, sizeof *s->int8_macs);
    if (!entry || !s->ranked || !s->int8_macs)
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; !st && i < sens->n_nodes; i++) {
        const oq_sensitivity_node *e = &sens->nodes[i];
        int at = -1;
        for (int k = 0; k < g->n_nodes && at < 0; k++)
            if (base->nodes[k].candidate && !strcmp(g->nodes[k]->name, e->name))
                at = k;
        if (at < 0)
            st = oq_errf(err, OQ_EINVAL, "%s names node '%s', which is not a node the options select for "
                         "quantization in %s", src, e->name, oq_pipeline_job(s->p)->model_path);
        else if (base->nodes[at].action != OQ_ACTION_KEEP_FLOAT)
            entry[at] = e;
    }
    for (int k = 0; !st && k < g->n_nodes; k++)
        if (base->nodes[k].candidate && base->nodes[k].action != OQ_ACTION_KEEP_FLOAT) {
            if (!entry[k])
                st = oq_errf(err, OQ_EINVAL, "%s has no entry for node '%s' (analyse with the same options)", src,
                             g->nodes[k]->name);
            else
                s->ranked[s->n_ranked++] = entry[k]->name;
        }
    /* most sensitive first: by rank (ranks are unique in a whole result) */
    for (int i = 1; !st && i < s->n_ranked; i++)
        for (int k = i; k > 0 && oq_sensitivity_find(sens, s->ranked[k - 1])->rank >
                                     oq_sensitivity_find(sens, s->ranked[k])->rank; k--) {
            const char *tmp = s->ranked[k];
            s->ranked[k] = s->ranked[k - 1];
            s->ranked[k - 1] = tmp;
        }
    for (int i = 0; !st && i < s->n_ranked; i++)
        for (int k = 0; k < g->n_nodes; k++)
            if (base->nodes[k].candidate && !strcmp(g->nodes[k]->name, s->ranked[i]))
                s->int8_macs[i] = base->nodes[k].action == OQ_ACTION_WEIGHT_ONLY
                                      ? 0
                                      : oq_sensitivity_find(sens, s->ranked[i])->macs;
    free(entry);
    oq_plan_destroy(base);
    return st;
}

/* Fills m from the plan keeping s->kept float (all false when the default
 * plan met the target). */
static oq_status finish(search *s, oq_err *err)
{
    oq_mixed *m = s->m;
    m->n_candidates = s->n_ranked;
    if (!s->sens) { /* nothing ranked: count what the default plan quantizes */
        oq_plan *base = NULL;
        oq_status st = oq_pipeline_plan(s->p, 0, NULL, &base, err);
        if (st)
            return st;
        for (int i = 0; i < base->n_nodes; i++)
            m->n_candidates += base->nodes[i].candidate && base->nodes[i].action != OQ_ACTION_KEEP_FLOAT;
        oq_plan_destroy(base);
    }
    m->total_macs = s->sens ? s->sens->total_macs : NAN;
    m->int8_macs = s->sens ? 0 : NAN;
    m->kept = calloc((size_t)s->n_ranked + 1, sizeof *m->kept);
    if (!m->kept)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < s->n_ranked; i++) {
        if (!s->kept[i])
            m->int8_macs += s->int8_macs[i];
        else if (!(m->kept[m->n_kept++] = strdup(s->ranked[i])))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    return OQ_OK;
}

oq_status oq_mixed_search(oq_pipeline *p, const oq_target *t, oq_sensitivity **sens, int threads, oq_mixed **out,
                          oq_err *err)
{
    *out = NULL;
    search s = {.p = p, .t = t, .threads = threads};
    char tt[64], have[96];
    double t0 = now_s();
    bool met = false;
    if (t->kind <= OQ_TARGET_NONE || t->kind >= OQ_TARGET_COUNT)
        return oq_errf(err, OQ_EINVAL, "no accuracy target given");
    if (!(s.m = calloc(1, sizeof *s.m)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    s.m->target = *t;
    s.m->ranking_from_file = *sens != NULL;
    oq_status st = reference_make(&s.ref, p, threads, err);
    if (!st)
        st = try_plan(&s, NULL, &met, err);
    if (!st)
        s.m->metric_before = s.m->steps[0].metric;
    s.m->seconds_search = now_s() - t0;
    if (!st && !met && !*sens) {
        double t1 = now_s();
        st = oq_sensitivity_analyze(p, &(oq_sensitivity_options){.threads = threads}, sens, err);
        s.m->seconds_analysis = now_s() - t1;
    }
    s.sens = *sens;
    if (!st && s.sens)
        st = rank_candidates(&s, err);
    if (!st && !(s.kept = calloc((size_t)s.n_ranked + 1, sizeof *s.kept)))
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    /* galloping: 1, 2, 4, ... float until the target holds, then bisection;
     * at most all but one: a plan that quantizes nothing is no answer */
    int lo = 0, hi = met ? 0 : -1, most = s.n_ranked - 1;
    t0 = now_s();
    for (int k = 1; !st && hi < 0; k = k * 2 > most ? most : k * 2) {
        if (k > most || k <= lo) {
            describe(have, sizeof have, t->kind, s.m->steps[s.m->n_steps - 1].metric);
            if (most < 1)
                st = oq_errf(err, OQ_EINVAL, "%s cannot be met: the default plan gives %s and quantizes %s", 
                             target_text(t, tt, sizeof tt), have, s.n_ranked ? "one node only" : "nothing");
            else
                st = oq_errf(err, OQ_EINVAL,
                             "%s cannot be met: even with %d of the %d quantized nodes kept float (only '%s' "
                             "quantized), the model gives %s", target_text(t, tt, sizeof tt), most, s.n_ranked,
                             s.ranked[most], have);
            break;
        }
        if ((st = try_prefix(&s, k, &met, err)))
            break;
        if (met)
            hi = k;
        else
            lo = k;
    }
    while (!st && hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if ((st = try_prefix(&s, mid, &met, err)))
            break;
        if (met)
            hi = mid;
        else
            lo = mid;
    }
    if (!st)
        st = give_back(&s, hi, err);
    if (!st)
        st = finish(&s, err);
    s.m->seconds_search += now_s() - t0;
    reference_release(&s.ref);
    free(s.ranked);
    free(s.int8_macs);
    free(s.kept);
    if (st) {
        oq_mixed_destroy(s.m);
        return st;
    }
    *out = s.m;
    return OQ_OK;
}
