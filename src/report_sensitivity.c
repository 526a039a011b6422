/* report_sensitivity.c: a sensitivity ranking and an accuracy target's
 * choices as HTML (html.c's pieces): the two sections of a quantization
 * run's page that show them (report_sensitivity.h), and the page of
 * `onnxq analyze` (oq_sensitivity_html in oq_sensitivity.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "onnxq/oq_sensitivity.h"
#include "report_sensitivity.h"

enum { RANKED_SHOWN = 10, RINGED = 5 };

/* ---- helpers ------------------------------------------------------------------------ */

/* Top-1 agreement in percent of node e's first classifier output, or NaN. */
static double node_agreement(const oq_sensitivity *s, const oq_sensitivity_node *e)
{
    for (int k = 0; k < s->n_outputs; k++)
        if (e->outputs[k].classifier && e->outputs[k].top1_total)
            return 100.0 * (double)e->outputs[k].top1_agree / (double)e->outputs[k].top1_total;
    return NAN;
}

/* Nodes by rank (a whole result), else in graph order (a shard's). */
static int by_rank(const void *a, const void *b)
{
    const oq_sensitivity_node *x = *(const oq_sensitivity_node *const *)a;
    const oq_sensitivity_node *y = *(const oq_sensitivity_node *const *)b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* One table row of node e. */
static void ranking_row(oq_text *t, const oq_sensitivity *s, const oq_sensitivity_node *e)
{
    char num[32];
    oq_html_row_begin(t);
    oq_html_cell(t, e->rank ? oq_html_sprintf(num, sizeof num, "%d", e->rank) : "\xE2\x80\x93");
    oq_html_cell(t, e->name);
    oq_html_cell(t, e->op_type);
    oq_html_cell_number(t, e->score_db, 2);
    oq_html_cell_number(t, node_agreement(s, e), 2);
    oq_html_cell_number(t, e->macs / 1e6, 3);
    oq_html_row_end(t);
}

/* "an accuracy drop of 0.40 points", "top-1 agreement 99.50%", "output SQNR 21.30 dB" into buf. */
static const char *metric_text(char *buf, size_t cap, oq_target_kind k, double v)
{
    char n[64];
    oq_html_format_number(n, sizeof n, v, 2);
    if (k == OQ_TARGET_MAX_DROP)
        return oq_html_sprintf(buf, cap, "a drop of %s points", n);
    if (k == OQ_TARGET_MIN_AGREEMENT)
        return oq_html_sprintf(buf, cap, "%s%% agreement", n);
    return oq_html_sprintf(buf, cap, "%s dB", n);
}

/* ---- sections ------------------------------------------------------------------------ */

void oq_html_sensitivity_section(oq_text *t, const oq_sensitivity *s, const oq_mixed *m)
{
    if (!s || !s->n_nodes)
        return;
    int n = s->n_nodes;
    const char **names = calloc((size_t)n, sizeof *names), **ops = calloc((size_t)n, sizeof *ops);
    double *db = calloc((size_t)n, sizeof *db);
    bool *flag = calloc((size_t)n, sizeof *flag);
    const oq_sensitivity_node **order = calloc((size_t)n, sizeof *order);
    if (!names || !ops || !db || !flag || !order) {
        t->bad = true;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const oq_sensitivity_node *e = &s->nodes[i];
        names[i] = e->name;
        ops[i] = e->op_type;
        db[i] = e->score_db;
        order[i] = e;
        if (m) {
            for (int k = 0; k < m->n_kept && !flag[i]; k++)
                flag[i] = !strcmp(m->kept[k], e->name);
        } else {
            flag[i] = e->rank >= 1 && e->rank <= RINGED;
        }
    }
    qsort(order, (size_t)n, sizeof *order, by_rank);
    oq_html_series series = {"output SQNR, node quantized alone", db};
    oq_html_chart c = {.n = n,
                       .names = names,
                       .ops = ops,
                       .x_label = "analysed nodes in graph order",
                       .y_label = "SQNR (dB)",
                       .n_series = 1,
                       .series = &series,
                       .shaded = m ? flag : NULL,
                       .shaded_label = "kept in float for the target",
                       .marked = m ? NULL : flag,
                       .marked_label = "the five most sensitive"};
    oq_html_section_begin(t, "sensitivity", "Sensitivity",
                          "Each node quantized alone, every other one float: the lowest SQNR of the model outputs "
                          "against the float model's on the evaluation samples. The lower it is, the more that node "
                          "alone costs; nodes are ranked by it. Hover over a point for its node.");
    char line[160];
    if (s->shard_count > 1)
        oq_html_paragraph(t, oq_html_sprintf(line, sizeof line,
                                             "Shard %d of %d: %d of the %d candidates, unranked until the shards are "
                                             "merged (onnxq analyze merge).",
                                             s->shard_index, s->shard_count, n, s->n_candidates));
    oq_html_chart_svg(t, &c);
    static const char *const heads[] = {
        "rank", "node", "op", "output SQNR (dB)", "top-1 agreement (%)", "M multiply-adds", NULL};
    int shown = n < RANKED_SHOWN ? n : RANKED_SHOWN;
    oq_html_paragraph(t, s->shard_count > 1 ? "This shard's nodes in graph order:"
                                            : oq_html_sprintf(line, sizeof line, "The %d most sensitive nodes:", shown));
    oq_html_table_begin(t, NULL, heads);
    for (int k = 0; k < shown; k++)
        ranking_row(t, s, order[k]);
    oq_html_table_end(t, NULL);
    if (n > shown) {
        char fold[64];
        oq_html_sprintf(fold, sizeof fold, "All %d nodes%s", n, s->shard_count > 1 ? "" : " by rank");
        oq_html_table_begin(t, fold, heads);
        for (int k = 0; k < n; k++)
            ranking_row(t, s, order[k]);
        oq_html_table_end(t, fold);
    }
    oq_html_section_end(t);
done:
    free(names);
    free(ops);
    free(db);
    free(flag);
    free(order);
}

void oq_html_mixed_section(oq_text *t, const oq_mixed *m, const oq_sensitivity *s)
{
    if (!m)
        return;
    const oq_target *g = &m->target;
    char v[128], n[256], a[64], b[64];
    const char *want = g->kind == OQ_TARGET_MAX_DROP        ? "top-1 accuracy drop at most %g points"
                       : g->kind == OQ_TARGET_MIN_AGREEMENT ? "top-1 agreement with float at least %g%%"
                                                            : "output SQNR at least %g dB";
    char intro[512], goal[96];
    oq_html_sprintf(goal, sizeof goal, want, g->value);
    oq_html_section_begin(t, "mixed_precision", "Mixed precision",
                          oq_html_sprintf(intro, sizeof intro,
                                          "The accuracy target (%s) on the evaluation samples: the most sensitive "
                                          "nodes (ranking %s) are kept in float until it holds, then each "
                                          "of them is quantized again where the target holds without it.",
                                          goal, m->ranking_from_file ? "read from --sensitivity" : "made in this run"));
    oq_html_cards_begin(t);
    oq_html_card(t, "target", goal, NULL, 0);
    oq_html_card(t, "before \xE2\x86\x92 after",
                 oq_html_sprintf(v, sizeof v, "%s \xE2\x86\x92 %s", metric_text(a, sizeof a, g->kind, m->metric_before),
                                 metric_text(b, sizeof b, g->kind, m->metric_after)),
                 "the default plan, then the written model", 1);
    oq_html_card(t, "kept in float", oq_html_sprintf(v, sizeof v, "%d of %d", m->n_kept, m->n_candidates),
                 m->n_kept ? "most sensitive first, below" : "the default plan met the target", 0);
    if (isfinite(m->total_macs) && m->total_macs > 0)
        oq_html_card(t, "multiply-adds in INT8", oq_html_sprintf(v, sizeof v, "%.1f%%", 100.0 * m->int8_macs / m->total_macs),
                     oq_html_sprintf(n, sizeof n, "%.3g M of %.3g M per sample", m->int8_macs / 1e6, m->total_macs / 1e6),
                     0);
    oq_html_cards_end(t);
    if (m->n_kept) {
        static const char *const heads[] = {"node kept in float", "rank", "output SQNR alone (dB)", NULL};
        oq_html_table_begin(t, NULL, heads);
        for (int k = 0; k < m->n_kept; k++) {
            const oq_sensitivity_node *e = s ? oq_sensitivity_find(s, m->kept[k]) : NULL;
            char num[32];
            oq_html_row_begin(t);
            oq_html_cell(t, m->kept[k]);
            oq_html_cell(t, e && e->rank ? oq_html_sprintf(num, sizeof num, "%d", e->rank) : "\xE2\x80\x93");
            oq_html_cell_number(t, e ? e->score_db : NAN, 2);
            oq_html_row_end(t);
        }
        oq_html_table_end(t, NULL);
    }
    static const char *const step_heads[] = {"plan", "nodes kept float", "quantized again", "metric", "target met",
                                             NULL};
    char fold[64];
    oq_html_sprintf(fold, sizeof fold, "The %d plan%s the search evaluated, in order", m->n_steps,
                    m->n_steps == 1 ? "" : "s");
    oq_html_table_begin(t, fold, step_heads);
    for (int k = 0; k < m->n_steps; k++) {
        char num[32];
        oq_html_row_begin(t);
        oq_html_cell(t, oq_html_sprintf(num, sizeof num, "%d", k + 1));
        oq_html_cell(t, oq_html_sprintf(n, sizeof n, "%d", m->steps[k].kept_float));
        oq_html_cell(t, m->steps[k].requantized ? m->steps[k].requantized : "\xE2\x80\x93");
        oq_html_cell(t, metric_text(a, sizeof a, g->kind, m->steps[k].metric));
        oq_html_cell(t, m->steps[k].met ? "yes" : "no");
        oq_html_row_end(t);
    }
    oq_html_table_end(t, fold);
    oq_html_section_end(t);
}

/* ---- the page of an analysis --------------------------------------------------------- */

/* The big numbers of an analysis: nodes analysed, the most sensitive one,
 * the work of the graph. */
static void analysis_cards(oq_text *t, const oq_sensitivity *s)
{
    char v[128], n[512];
    oq_html_cards_begin(t);
    oq_html_card(t, "nodes analysed", oq_html_sprintf(v, sizeof v, "%d of %d", s->n_nodes, s->n_candidates),
                 s->shard_count > 1 ? oq_html_sprintf(n, sizeof n, "shard %d of %d", s->shard_index, s->shard_count)
                                    : "each quantized alone",
                 0);
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].rank == 1) {
            char db[64];
            oq_html_card(t, "most sensitive",
                         oq_html_sprintf(v, sizeof v, "%s dB", oq_html_format_number(db, sizeof db, s->nodes[i].score_db, 1)),
                         oq_html_sprintf(n, sizeof n, "'%s' (%s) quantized alone", s->nodes[i].name, s->nodes[i].op_type),
                         2);
        }
    oq_html_card(t, "multiply-adds per sample", oq_html_sprintf(v, sizeof v, "%.3g M", s->total_macs / 1e6),
                 "every Conv/ConvTranspose/MatMul/Gemm/LSTM/GRU/RNN of the graph", 0);
    oq_html_cards_end(t);
}

oq_status oq_sensitivity_html(const oq_sensitivity *s, const char *model_path, uint8_t **buf, size_t *len,
                              oq_err *err)
{
    *buf = NULL;
    *len = 0;
    oq_text t = {0};
    oq_html_begin(&t, "onnxq sensitivity analysis", model_path);
    analysis_cards(&t, s);
    oq_html_sensitivity_section(&t, s, NULL);
    oq_html_section_begin(&t, "run", "How it was made", NULL);
    oq_html_table_begin(&t, NULL, NULL);
    if (model_path)
        oq_html_kv(&t, "model", "%s", model_path);
    oq_html_kv(&t, "outputs compared", "%d", s->n_outputs);
    oq_html_kv(&t, "what the numbers depend on", "%s", s->setup ? s->setup : "");
    oq_html_table_end(&t, NULL);
    oq_html_section_end(&t);
    return oq_html_end(&t, s->tool_version, buf, len, err);
}
