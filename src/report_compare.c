/* report_compare.c: the reports of `onnxq compare` (see oq_compare.h): JSON
 * (schema in docs/formats.md) and one HTML page (html.c's pieces), written
 * together or not at all. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "json.h"
#include "onnxq/oq_compare.h"
#include "onnxq/oq_file.h"

/* ---- JSON ---------------------------------------------------------------------------- */

/* {path, sha256} of a compared model. */
static cJSON *model_json(const char *path, const char *sha256)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", path);
    cJSON_AddStringToObject(j, "sha256", sha256);
    return j;
}

/* One compared tensor as the JSON report spells it (infinite numbers as null). */
static cJSON *tensor_json(const oq_compare_tensor *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", t->name);
    cJSON_AddStringToObject(j, "op", t->op_type);
    cJSON_AddStringToObject(j, "float_name", t->float_name);
    cJSON_AddStringToObject(j, "match", oq_compare_match_name(t->match));
    cJSON_AddStringToObject(j, "dtype", oq_dtype_name(t->dtype));
    cJSON_AddNumberToObject(j, "samples", (double)t->samples);
    cJSON_AddNumberToObject(j, "mismatched_samples", (double)t->mismatched);
    cJSON_AddNumberToObject(j, "elements", (double)t->elements);
    oq_json_add_sqnr(j, "sqnr_db", t->sqnr_db);
    oq_json_add_number(j, "cosine", t->cosine);
    oq_json_add_number(j, "max_abs_error", t->max_abs_error);
    oq_json_add_number(j, "drop_db", t->drop_db);
    cJSON_AddBoolToObject(j, "quantization_step", t->quantization_step);
    if (t->nonfinite)
        cJSON_AddNumberToObject(j, "nonfinite_values", (double)t->nonfinite);
    return j;
}

/* One model output's metrics (top-1 agreement null when it is no classifier). */
static cJSON *output_json(const oq_compare_output *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", o->name);
    oq_json_add_sqnr(j, "sqnr_db", o->sqnr_db);
    oq_json_add_number(j, "cosine", o->cosine);
    oq_json_add_number(j, "max_abs_error", o->max_abs_error);
    if (o->classifier)
        oq_json_add_number(j, "top1_agreement", o->top1_total ? (double)o->top1_agree / (double)o->top1_total : NAN);
    else
        cJSON_AddNullToObject(j, "top1_agreement");
    if (o->nonfinite)
        cJSON_AddNumberToObject(j, "nonfinite_values", (double)o->nonfinite);
    return j;
}

oq_status oq_compare_report_json(const oq_compare_result *r, const oq_compare_report_info *info, uint8_t **buf,
                                 size_t *len, oq_err *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    cJSON *tool = cJSON_AddObjectToObject(root, "tool");
    cJSON_AddStringToObject(tool, "name", "onnxq");
    cJSON_AddStringToObject(tool, "version", info->version);
    cJSON_AddItemToObject(root, "float_model", model_json(info->fp32_path, info->fp32_sha256));
    cJSON_AddItemToObject(root, "quantized_model", model_json(info->quant_path, info->quant_sha256));
    cJSON_AddNumberToObject(root, "samples", (double)r->samples);
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(sum, "tensors_compared", r->n_tensors);
    cJSON_AddNumberToObject(sum, "unmatched", r->n_unmatched);
    cJSON_AddNumberToObject(sum, "shape_mismatches", r->n_mismatched);
    cJSON_AddNumberToObject(sum, "sharp_drop_db", OQ_COMPARE_SHARP_DROP_DB);
    int first = oq_compare_first_drop(r, OQ_COMPARE_SHARP_DROP_DB);
    if (first >= 0)
        cJSON_AddStringToObject(sum, "first_sharp_drop", r->tensors[first].name);
    else
        cJSON_AddNullToObject(sum, "first_sharp_drop");
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (int i = 0; i < r->n_tensors; i++)
        cJSON_AddItemToArray(tensors, tensor_json(&r->tensors[i]));
    cJSON *outs = cJSON_AddArrayToObject(root, "outputs");
    for (int i = 0; i < r->n_outputs; i++)
        cJSON_AddItemToArray(outs, output_json(&r->outputs[i]));
    cJSON *un = cJSON_AddArrayToObject(root, "unmatched");
    for (int i = 0; i < r->n_unmatched; i++) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "name", r->unmatched[i].name);
        cJSON_AddStringToObject(u, "op", r->unmatched[i].op_type);
        cJSON_AddStringToObject(u, "reason", r->unmatched[i].reason);
        cJSON_AddItemToArray(un, u);
    }
    cJSON *t = cJSON_AddObjectToObject(root, "timings_s");
    cJSON_AddNumberToObject(t, "load", info->t_load);
    cJSON_AddNumberToObject(t, "compare", info->t_compare);
    return oq_json_print(root, "the report", buf, len, err);
}

/* ---- HTML ------------------------------------------------------------------------------ */

/* The big numbers: tensors compared, the first sharp drop, output SQNR and
 * top-1 agreement of the first two outputs. */
static void compare_cards(oq_text *t, const oq_compare_result *r)
{
    char v[160], n[256];
    oq_html_cards_begin(t);
    oq_html_card(t, "tensors compared", oq_html_sprintf(v, sizeof v, "%d", r->n_tensors),
                 oq_html_sprintf(n, sizeof n, "over %lld samples; %d without a float counterpart",
                                 (long long)r->samples, r->n_unmatched),
                 0);
    int first = oq_compare_first_drop(r, OQ_COMPARE_SHARP_DROP_DB);
    if (first >= 0) {
        const oq_compare_tensor *d = &r->tensors[first];
        char before[32], after[32];
        oq_html_card(t, "first sharp drop", d->name,
                     oq_html_sprintf(n, sizeof n, "%s: %s \xE2\x86\x92 %s dB", d->op_type,
                                     oq_html_format_number(before, sizeof before, d->sqnr_db + d->drop_db, 1),
                                     oq_html_format_number(after, sizeof after, d->sqnr_db, 1)),
                     2);
    } else {
        oq_html_card(
            t, "first sharp drop", "none",
            oq_html_sprintf(n, sizeof n, "no tensor loses %.0f dB against its inputs", OQ_COMPARE_SHARP_DROP_DB), 1);
    }
    for (int i = 0; i < r->n_outputs && i < 2; i++) {
        const oq_compare_output *o = &r->outputs[i];
        char db[32];
        oq_html_card(t, "output SQNR",
                     oq_html_sprintf(v, sizeof v, "%s dB", oq_html_format_number(db, sizeof db, o->sqnr_db, 1)),
                     o->name, 0);
        if (o->classifier && o->top1_total)
            oq_html_card(t, "top-1 agreement",
                         oq_html_sprintf(v, sizeof v, "%.2f%%", 100.0 * (double)o->top1_agree / (double)o->top1_total),
                         oq_html_sprintf(n, sizeof n, "%lld of %lld, %s", (long long)o->top1_agree,
                                         (long long)o->top1_total, o->name),
                         0);
    }
    oq_html_cards_end(t);
}

/* The outputs both models have, with their metrics. */
static void compare_outputs(oq_text *t, const oq_compare_result *r)
{
    if (!r->n_outputs)
        return;
    static const char *const heads[] = {"output", "SQNR (dB)", "cosine", "max abs error", "top-1 agreement", NULL};
    oq_html_section_begin(t, "outputs", "Outputs", "The graph outputs both models have, over all samples.");
    oq_html_table_begin(t, NULL, heads);
    for (int i = 0; i < r->n_outputs; i++) {
        const oq_compare_output *o = &r->outputs[i];
        char agree[96];
        oq_html_row_begin(t);
        oq_html_cell(t, o->name);
        oq_html_cell_number(t, o->sqnr_db, 2);
        oq_html_cell_number(t, o->cosine, 6);
        oq_html_cell_number(t, o->max_abs_error, 6);
        oq_html_cell(t, o->classifier && o->top1_total
                            ? oq_html_sprintf(agree, sizeof agree, "%.2f%% (%lld of %lld)",
                                              100.0 * (double)o->top1_agree / (double)o->top1_total,
                                              (long long)o->top1_agree, (long long)o->top1_total)
                            : "not a classifier output");
        oq_html_row_end(t);
    }
    oq_html_table_end(t, NULL);
    oq_html_section_end(t);
}

enum { LARGEST_DROPS = 10 };

/* One table row of tensor i (full: with its counterpart, match and type). */
static void tensor_row(oq_text *t, const oq_compare_result *r, int i, bool full)
{
    const oq_compare_tensor *x = &r->tensors[i];
    char num[32];
    oq_html_row_begin(t);
    oq_html_cell(t, oq_html_sprintf(num, sizeof num, "%d", i + 1));
    oq_html_cell(t, x->name);
    oq_html_cell(t, x->op_type);
    if (full) {
        oq_html_cell(t, x->float_name);
        oq_html_cell(t, oq_compare_match_name(x->match));
        oq_html_cell(t, oq_dtype_name(x->dtype));
    }
    oq_html_cell_number(t, x->sqnr_db, 2);
    oq_html_cell_number(t, x->cosine, 6);
    oq_html_cell_number(t, x->max_abs_error, 6);
    oq_html_cell_number(t, x->drop_db, 2);
    oq_html_row_end(t);
}

/* SQNR of every compared tensor along the graph, sharp drops ringed, the
 * largest drops, and every tensor in a folded table. */
static void compare_along_graph(oq_text *t, const oq_compare_result *r)
{
    int n = r->n_tensors;
    if (!n)
        return;
    const char **names = calloc((size_t)n, sizeof *names), **ops = calloc((size_t)n, sizeof *ops);
    double *db = calloc((size_t)n, sizeof *db);
    bool *sharp = calloc((size_t)n, sizeof *sharp);
    if (!names || !ops || !db || !sharp) {
        t->bad = true;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        names[i] = r->tensors[i].name;
        ops[i] = r->tensors[i].op_type;
        db[i] = r->tensors[i].sqnr_db;
        sharp[i] = oq_compare_step_drop(&r->tensors[i], OQ_COMPARE_SHARP_DROP_DB);
    }
    oq_html_series s = {"SQNR", db};
    char marked[64];
    oq_html_chart c = {
        .n = n,
        .names = names,
        .ops = ops,
        .x_label = "tensors of the quantized model in graph order",
        .y_label = "SQNR (dB)",
        .n_series = 1,
        .series = &s,
        .marked = sharp,
        .marked_label = oq_html_sprintf(marked, sizeof marked, "a drop of %.0f dB or more", OQ_COMPARE_SHARP_DROP_DB)};
    oq_html_section_begin(t, "sqnr", "Error along the graph",
                          "SQNR of every tensor that stands for a float tensor, against that tensor, over all "
                          "samples. Higher is better: 20 dB is an error of a tenth of the signal's amplitude, and "
                          "each 6 dB less doubles it. A tensor's drop is how much SQNR it loses against the tensors "
                          "it is computed from. Hover over a point for its tensor.");
    oq_html_chart_svg(t, &c);
    int best[LARGEST_DROPS], n_best = oq_compare_largest_drops(r, DBL_MIN, best, LARGEST_DROPS); /* drops above 0 */
    static const char *const short_heads[] = {"#",      "tensor",        "op",        "SQNR (dB)",
                                              "cosine", "max abs error", "drop (dB)", NULL};
    if (n_best) {
        oq_html_paragraph(t, "Where the most SQNR is lost:");
        oq_html_table_begin(t, NULL, short_heads);
        for (int k = 0; k < n_best && k < LARGEST_DROPS; k++)
            tensor_row(t, r, best[k], false);
        oq_html_table_end(t, NULL);
    }
    static const char *const heads[] = {"#",    "tensor",    "op",     "float tensor",  "match",
                                        "type", "SQNR (dB)", "cosine", "max abs error", "drop (dB)",
                                        NULL};
    char fold[64];
    oq_html_sprintf(fold, sizeof fold, "All %d tensors", n);
    oq_html_table_begin(t, fold, heads);
    for (int i = 0; i < n; i++)
        tensor_row(t, r, i, true);
    oq_html_table_end(t, fold);
    oq_html_section_end(t);
done:
    free(names);
    free(ops);
    free(db);
    free(sharp);
}

/* The tensors without a float counterpart, and why. */
static void compare_unmatched(oq_text *t, const oq_compare_result *r)
{
    if (!r->n_unmatched)
        return;
    static const char *const heads[] = {"tensor", "op", "why", NULL};
    char fold[80];
    oq_html_sprintf(fold, sizeof fold, "%d tensors not compared", r->n_unmatched);
    oq_html_section_begin(t, "unmatched", "Not compared",
                          "Tensors of the quantized model that stand for no float tensor.");
    oq_html_table_begin(t, fold, heads);
    for (int i = 0; i < r->n_unmatched; i++) {
        oq_html_row_begin(t);
        oq_html_cell(t, r->unmatched[i].name);
        oq_html_cell(t, r->unmatched[i].op_type);
        oq_html_cell(t, r->unmatched[i].reason);
        oq_html_row_end(t);
    }
    oq_html_table_end(t, fold);
    oq_html_section_end(t);
}

oq_status oq_compare_report_html(const oq_compare_result *r, const oq_compare_report_info *info, uint8_t **buf,
                                 size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    oq_text t = {0};
    char subtitle[1024];
    oq_html_begin(
        &t, "onnxq comparison",
        oq_html_sprintf(subtitle, sizeof subtitle, "%s (float) and %s (quantized)", info->fp32_path, info->quant_path));
    compare_cards(&t, r);
    compare_outputs(&t, r);
    compare_along_graph(&t, r);
    compare_unmatched(&t, r);
    oq_html_section_begin(&t, "models", "Models", NULL);
    oq_html_table_begin(&t, NULL, NULL);
    oq_html_kv(&t, "float model", "%s (sha256 %s)", info->fp32_path, info->fp32_sha256);
    oq_html_kv(&t, "quantized model", "%s (sha256 %s)", info->quant_path, info->quant_sha256);
    oq_html_kv(&t, "samples", "%lld", (long long)r->samples);
    oq_html_kv(&t, "tensors with samples of differing shapes", "%d", r->n_mismatched);
    oq_html_table_end(&t, NULL);
    oq_html_section_end(&t);
    return oq_html_end(&t, info->version, buf, len, err);
}

/* ---- both, all or nothing -------------------------------------------------------------- */

oq_status oq_compare_report_write(const oq_compare_result *r, const oq_compare_report_info *info, const char *json_path,
                                  const char *html_path, oq_err *err)
{
    oq_commit *c = NULL;
    uint8_t *text = NULL;
    size_t len;
    oq_status st = oq_commit_create(&c, err);
    if (!st && json_path && !(st = oq_compare_report_json(r, info, &text, &len, err)))
        st = oq_commit_add(c, json_path, text, len, err);
    free(text);
    text = NULL;
    if (!st && html_path && !(st = oq_compare_report_html(r, info, &text, &len, err)))
        st = oq_commit_add(c, html_path, text, len, err);
    free(text);
    if (!st)
        st = oq_commit_finish(c, err);
    oq_commit_destroy(c);
    return st;
}
