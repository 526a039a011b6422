/* test_sensitivity.c: the sensitivity analysis and the accuracy-target search
 * through the library, on the bundled digit CNN and its 16 samples:
 *   - each node's numbers equal a full evaluation of the plan that quantizes
 *     that node alone (the analysis re-runs only part of the graph);
 *   - the JSON does not depend on the thread count nor on the chunk of
 *     samples kept in memory (one sample at a time here), and reads back to
 *     the same bytes;
 *   - shards merge into the bytes of the whole run, in any order; a missing,
 *     repeated or foreign shard is refused;
 *   - a reachable SQNR target keeps the most sensitive nodes float and meets
 *     the target; an unreachable one fails saying so.
 *
 * usage: test_sensitivity REPO_ROOT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_mixed.h"
#include "onnxq/oq_pipeline.h"
#include "onnxq/oq_sensitivity.h"

static char model[1024], data[1024];
static const char *specs[1];

static oq_job job_for(int threads)
{
    specs[0] = data;
    oq_job j = oq_job_default();
    j.model_path = model;
    j.n_data = 1;
    j.data = specs;
    j.threads = threads;
    j.tool_version = "test";
    return j;
}

/* A pipeline loaded, prepared and calibrated for job j (NULL on failure). */
static oq_pipeline *ready(const oq_job *j)
{
    oq_err err = {0};
    oq_pipeline *p = NULL;
    CHECK_OK(oq_pipeline_create(&p, j, &err), &err);
    if (p && (oq_pipeline_load(p, &err) || oq_pipeline_prepare(p, &err) || oq_pipeline_calibrate(p, &err))) {
        fprintf(stderr, "pipeline: %s\n", err.msg);
        check_failures++;
        oq_pipeline_destroy(p);
        return NULL;
    }
    return p;
}

/* The analysis of j's model as JSON text (NULL on failure); *out keeps the result when asked. */
static char *analyse(const oq_job *j, const oq_sensitivity_options *o, oq_sensitivity **out)
{
    oq_err err = {0};
    oq_pipeline *p = ready(j);
    oq_sensitivity *s = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (p)
        CHECK_OK(oq_sensitivity_analyze(p, o, &s, &err), &err);
    if (s)
        CHECK_OK(oq_sensitivity_serialize(s, &buf, &len, &err), &err);
    char *text = buf ? strndup((const char *)buf, len) : NULL;
    free(buf);
    if (out)
        *out = s;
    else
        oq_sensitivity_destroy(s);
    oq_pipeline_destroy(p);
    return text;
}

/* Each node's numbers against a full evaluation of the plan quantizing it alone. */
static void check_against_evaluation(const oq_sensitivity *s)
{
    oq_err err = {0};
    oq_job j = job_for(2);
    oq_pipeline *p = ready(&j);
    CHECK(s->n_nodes == 3 && s->n_candidates == 3 && s->n_outputs == 1);
    for (int i = 0; p && i < s->n_nodes; i++) {
        oq_plan_override ov[3];
        int n = 0;
        for (int k = 0; k < s->n_nodes; k++)
            if (k != i)
                ov[n++] = (oq_plan_override){s->nodes[k].name, OQ_POLICY_FLOAT, NULL};
        oq_plan *plan = NULL;
        oq_quantized *q = NULL;
        oq_eval e = {0};
        bool evaluated = false;
        CHECK_OK(oq_pipeline_plan(p, n, ov, &plan, &err), &err);
        if (plan)
            CHECK_OK(oq_pipeline_rewrite(p, plan, false, &q, &err), &err);
        if (q)
            CHECK_OK(oq_pipeline_evaluate(p, q, &e, &evaluated, &err), &err);
        if (evaluated) {
            const oq_output_metrics *a = &s->nodes[i].outputs[0], *b = &e.outputs[0];
            CHECK(fabs(a->sqnr_db - b->sqnr_db) < 1e-6 && fabs(a->cosine - b->cosine) < 1e-9);
            CHECK(fabs(a->max_abs_error - b->max_abs_error) < 1e-6);
            CHECK(a->classifier && b->classifier && a->top1_agree == b->top1_agree && a->top1_total == b->top1_total);
            CHECK(s->nodes[i].score_db == a->sqnr_db && s->nodes[i].macs > 0);
        }
        oq_eval_release(&e);
        oq_quantized_destroy(q);
        oq_plan_destroy(plan);
    }
    /* ranks: a permutation, ordered by score */
    for (int i = 0; i < s->n_nodes; i++)
        for (int k = 0; k < s->n_nodes; k++)
            if (k != i)
                CHECK(s->nodes[i].rank != s->nodes[k].rank &&
                      (s->nodes[i].rank < s->nodes[k].rank) == (s->nodes[i].score_db < s->nodes[k].score_db));
    oq_pipeline_destroy(p);
}

static oq_sensitivity *parse_text(const char *text, oq_err *err)
{
    oq_sensitivity *s = NULL;
    if (oq_sensitivity_parse(&s, (const uint8_t *)text, strlen(text), "text", err))
        return NULL;
    return s;
}

static void check_shards(const char *whole)
{
    oq_err err = {0};
    oq_job j = job_for(1);
    for (int count = 2; count <= 4; count++) {
        char *texts[4] = {0};
        oq_sensitivity *parts[4] = {0}, *merged = NULL;
        const char *names[4] = {"a", "b", "c", "d"};
        for (int k = 0; k < count; k++) {
            oq_sensitivity_options o = {.shard_index = k + 1, .shard_count = count};
            texts[k] = analyse(&j, &o, NULL);
            if (texts[k])
                parts[k] = parse_text(texts[k], &err);
            CHECK(parts[k] && parts[k]->shard_count == count && parts[k]->shard_index == k + 1);
        }
        /* in reverse order */
        const oq_sensitivity *order[4];
        for (int k = 0; k < count; k++)
            order[k] = parts[count - 1 - k];
        CHECK_OK(oq_sensitivity_merge(&merged, count, order, names, &err), &err);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (merged)
            CHECK_OK(oq_sensitivity_serialize(merged, &buf, &len, &err), &err);
        CHECK(buf && whole && len == strlen(whole) && !memcmp(buf, whole, len));
        free(buf);
        oq_sensitivity_destroy(merged);
        merged = NULL;
        /* one shard missing, one given twice */
        if (parts[0] && parts[1]) {
            CHECK(oq_sensitivity_merge(&merged, count - 1, order, names, &err) == OQ_EINVAL &&
                  strstr(err.msg, "shards"));
            const oq_sensitivity *twice[4] = {parts[0], parts[0], parts[1], parts[1]};
            CHECK(oq_sensitivity_merge(&merged, count, twice, names, &err) == OQ_EINVAL &&
                  strstr(err.msg, "are both shard"));
        }
        for (int k = 0; k < count; k++) {
            free(texts[k]);
            oq_sensitivity_destroy(parts[k]);
        }
    }
    /* shards of another analysis (per-tensor weights) */
    oq_job other = job_for(1);
    other.quant.per_channel = false;
    char *a = analyse(&j, &(oq_sensitivity_options){.shard_index = 1, .shard_count = 2}, NULL);
    char *b = analyse(&other, &(oq_sensitivity_options){.shard_index = 2, .shard_count = 2}, NULL);
    oq_sensitivity *pa = a ? parse_text(a, &err) : NULL, *pb = b ? parse_text(b, &err) : NULL, *m = NULL;
    const oq_sensitivity *both[2] = {pa, pb};
    const char *names[2] = {"a.json", "b.json"};
    CHECK(pa && pb && oq_sensitivity_merge(&m, 2, both, names, &err) == OQ_EINVAL &&
          strstr(err.msg, "different quantization options"));
    oq_sensitivity_destroy(pa);
    oq_sensitivity_destroy(pb);
    free(a);
    free(b);
}

static void check_search(const oq_sensitivity *s)
{
    oq_err err = {0};
    oq_job j = job_for(2);
    /* the lowest and highest scores: a target between them needs at least the most sensitive node float */
    double lo = INFINITY;
    const char *first = NULL;
    for (int i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].score_db < lo)
            lo = s->nodes[i].score_db;
        if (s->nodes[i].rank == 1)
            first = s->nodes[i].name;
    }
    oq_pipeline *p = ready(&j);
    oq_sensitivity *sens = NULL;
    oq_mixed *m = NULL;
    oq_target t = {OQ_TARGET_MIN_SQNR, lo + 0.5, NULL};
    if (p)
        CHECK_OK(oq_sensitivity_copy(&sens, s, &err), &err);
    if (sens)
        CHECK_OK(oq_mixed_search(p, &t, &sens, 2, &m, &err), &err);
    if (m) {
        CHECK(m->n_kept >= 1 && first && !strcmp(m->kept[0], first) && m->metric_after >= t.value &&
              m->metric_before < t.value && m->n_candidates == 3 && m->ranking_from_file);
        CHECK(m->n_steps >= 2 && !m->steps[0].met && m->steps[0].kept_float == 0 && m->steps[m->n_steps - 1].met ==
              (m->steps[m->n_steps - 1].kept_float == m->n_kept));
        CHECK(m->int8_macs < m->total_macs && m->int8_macs > 0);
        /* the chosen plan, evaluated in full, meets the target with the metric the search saw */
        oq_plan_override *ov = NULL;
        int n = 0;
        oq_plan *plan = NULL;
        oq_quantized *q = NULL;
        oq_eval e = {0};
        bool evaluated = false;
        double metric;
        bool met;
        CHECK_OK(oq_mixed_overrides(m, &ov, &n, &err), &err);
        CHECK_OK(oq_pipeline_plan(p, n, ov, &plan, &err), &err);
        if (plan)
            CHECK_OK(oq_pipeline_rewrite(p, plan, false, &q, &err), &err);
        if (q)
            CHECK_OK(oq_pipeline_evaluate(p, q, &e, &evaluated, &err), &err);
        if (evaluated) {
            CHECK_OK(oq_target_check(&t, &e, &metric, &met, &err), &err);
            CHECK(met && metric == m->metric_after);
        }
        oq_eval_release(&e);
        oq_quantized_destroy(q);
        oq_plan_destroy(plan);
        free(ov);
    }
    oq_mixed_destroy(m);
    m = NULL;
    /* unreachable, and a target the default plan already meets (no analysis needed) */
    oq_target never = {OQ_TARGET_MIN_SQNR, 1000, NULL}, easy = {OQ_TARGET_MIN_AGREEMENT, 50, NULL};
    if (p) {
        CHECK(oq_mixed_search(p, &never, &sens, 2, &m, &err) == OQ_EINVAL && strstr(err.msg, "cannot be met") &&
              strstr(err.msg, "2 of the 3") && !m);
        oq_sensitivity *none = NULL;
        CHECK_OK(oq_mixed_search(p, &easy, &none, 2, &m, &err), &err);
        CHECK(m && m->n_kept == 0 && m->n_steps == 1 && !none && m->n_candidates == 3);
        oq_mixed_destroy(m);
        /* a drop target without labels */
        oq_target drop = {OQ_TARGET_MAX_DROP, 1, NULL};
        m = NULL;
        CHECK(oq_mixed_search(p, &drop, &sens, 2, &m, &err) == OQ_EINVAL && strstr(err.msg, "labels"));
    }
    oq_sensitivity_destroy(sens);
    oq_pipeline_destroy(p);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_sensitivity REPO_ROOT\n");
        return 2;
    }
    snprintf(model, sizeof model, "%s/models/example/tiny_cnn.onnx", argv[1]);
    snprintf(data, sizeof data, "%s/calibration/example", argv[1]);
    oq_err err = {0};
    oq_job j1 = job_for(1), j3 = job_for(3);
    oq_sensitivity *s = NULL;
    char *whole = analyse(&j3, &(oq_sensitivity_options){0}, &s);
    char *one_thread = analyse(&j1, &(oq_sensitivity_options){0}, NULL);
    char *one_sample = analyse(&j3, &(oq_sensitivity_options){.cache_bytes = 1}, NULL);
    CHECK(whole && one_thread && !strcmp(whole, one_thread));
    CHECK(whole && one_sample && !strcmp(whole, one_sample));
    if (s)
        check_against_evaluation(s);
    /* read back: the same bytes */
    oq_sensitivity *back = whole ? parse_text(whole, &err) : NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(back && !oq_sensitivity_serialize(back, &buf, &len, &err) && len == strlen(whole) &&
          !memcmp(buf, whole, len));
    free(buf);
    oq_sensitivity_destroy(back);
    if (whole)
        check_shards(whole);
    if (s)
        check_search(s);
    /* a shard out of range */
    oq_pipeline *p = ready(&j1);
    oq_sensitivity *none = NULL;
    CHECK(p && oq_sensitivity_analyze(p, &(oq_sensitivity_options){.shard_index = 3, .shard_count = 2}, &none,
                                      &err) == OQ_EINVAL && !none);
    oq_pipeline_destroy(p);
    oq_sensitivity_destroy(s);
    free(whole);
    free(one_thread);
    free(one_sample);
    return check_exit("test_sensitivity");
}
