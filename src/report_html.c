/* report_html.c: the report of a quantization run as one HTML page (see
 * oq_report.h; the pieces are html.c's). The page is a list of sections,
 * each a function of the report that writes nothing when the report has
 * nothing for it: a new section is one more function in `sections`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "onnxq/oq_report.h"
#include "report_sensitivity.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* part of whole in percent; NaN when whole is 0. */
static double percent_of(int64_t part, int64_t whole) { return whole ? 100.0 * (double)part / (double)whole : NAN; }

/* "qoperator", "qdq" or "dynamic": the form of the output. */
static const char *format_name(const oq_report *r)
{
    const oq_quant_options *o = &r->opts;
    return o->mode == OQ_MODE_DYNAMIC ? "dynamic" : o->format == OQ_FORMAT_QDQ ? "qdq" : "qoperator";
}

/* ---- sections ---------------------------------------------------------------------------- */

/* The big numbers: nodes in 8 bits, weights before and after, the first
 * output's SQNR and top-1 agreement, accuracy with labels. */
static void cards(oq_text *t, const oq_report *r)
{
    char v[128], n[256];
    oq_html_cards_begin(t);
    oq_html_card(t, "nodes in 8 bits", oq_html_sprintf(v, sizeof v, "%d of %d", r->n_quantized, r->n_nodes),
                 oq_html_sprintf(n, sizeof n, "candidates of --op-types, %s format", format_name(r)), 0);
    char before[32], after[32];
    oq_html_card(t, "weights",
                 oq_html_sprintf(v, sizeof v, "%s \xE2\x86\x92 %s",
                                 oq_html_format_bytes(before, sizeof before, (double)r->fp32_bytes),
                                 oq_html_format_bytes(after, sizeof after, (double)r->quantized_bytes)),
                 r->quantized_bytes
                     ? oq_html_sprintf(n, sizeof n, "%.2fx smaller", (double)r->fp32_bytes / (double)r->quantized_bytes)
                     : NULL,
                 0);
    if (r->has_evaluation && r->eval.n_outputs) {
        const oq_output_metrics *m = &r->eval.outputs[0];
        char db[64];
        oq_html_card(t, "output SQNR",
                     oq_html_sprintf(v, sizeof v, "%s dB", oq_html_format_number(db, sizeof db, m->sqnr_db, 1)),
                     oq_html_sprintf(n, sizeof n, "'%s' over %lld samples", m->name, (long long)r->eval.samples), 0);
        if (m->classifier && m->top1_total)
            oq_html_card(t, "top-1 agreement",
                         oq_html_sprintf(v, sizeof v, "%.2f%%", percent_of(m->top1_agree, m->top1_total)),
                         oq_html_sprintf(n, sizeof n, "%lld of %lld predictions as the float model's",
                                         (long long)m->top1_agree, (long long)m->top1_total),
                         0);
    }
    if (r->has_evaluation && r->eval.labeled) {
        const oq_eval *e = &r->eval;
        oq_html_card(
            t, "top-1 accuracy",
            oq_html_sprintf(v, sizeof v, "%.2f%% \xE2\x86\x92 %.2f%%", percent_of(e->fp32_correct, e->labeled),
                            percent_of(e->q_correct, e->labeled)),
            oq_html_sprintf(n, sizeof n, "float \xE2\x86\x92 quantized, %lld labeled samples", (long long)e->labeled),
            0);
    }
    oq_html_cards_end(t);
}

/* Accuracy before and after: labeled top-1 of both models as bars, each
 * output's metrics, the speed outlook; or why nothing was evaluated. */
static void accuracy_section(oq_text *t, const oq_report *r)
{
    oq_html_section_begin(t, "accuracy", "Accuracy before and after", NULL);
    if (!r->has_evaluation) {
        oq_html_paragraph(t, "Not evaluated: there were no samples to run (give --eval-data to measure accuracy).");
        oq_html_section_end(t);
        return;
    }
    const oq_eval *e = &r->eval;
    char a[64], b[64];
    if (e->labeled) {
        oq_html_bar bars[2] = {
            {"float model", percent_of(e->fp32_correct, e->labeled),
             oq_html_sprintf(a, sizeof a, "%.2f%% (%lld of %lld)", percent_of(e->fp32_correct, e->labeled),
                             (long long)e->fp32_correct, (long long)e->labeled),
             3},
            {"quantized model", percent_of(e->q_correct, e->labeled),
             oq_html_sprintf(b, sizeof b, "%.2f%% (%lld of %lld)", percent_of(e->q_correct, e->labeled),
                             (long long)e->q_correct, (long long)e->labeled),
             0},
        };
        oq_html_paragraph(t, "Top-1 accuracy of the first output on the labeled samples:");
        oq_html_bars(t, 2, bars, 100);
    }
    char intro[128];
    oq_html_paragraph(
        t, oq_html_sprintf(intro, sizeof intro,
                           "Each output of the quantized model against the float model's, over %lld samples:",
                           (long long)e->samples));
    static const char *const heads[] = {"output", "SQNR (dB)", "cosine", "max abs error", "top-1 agreement", NULL};
    oq_html_table_begin(t, NULL, heads);
    for (int k = 0; k < e->n_outputs; k++) {
        const oq_output_metrics *m = &e->outputs[k];
        oq_html_row_begin(t);
        oq_html_cell(t, m->name);
        oq_html_cell_number(t, m->sqnr_db, 2);
        oq_html_cell_number(t, m->cosine, 5);
        oq_html_cell_number(t, m->max_abs_error, 4);
        char note[160];
        const char *why = oq_output_metrics_note(m, note, sizeof note);
        if (m->classifier && m->top1_total)
            oq_html_cell(t,
                         oq_html_sprintf(a, sizeof a, "%.2f%% (%lld of %lld)%s%s", percent_of(m->top1_agree, m->top1_total),
                                         (long long)m->top1_agree, (long long)m->top1_total, why ? "; " : "",
                                         why ? why : ""));
        else
            oq_html_cell(t, why ? why : "not a classifier output");
        oq_html_row_end(t);
    }
    oq_html_table_end(t, NULL);
    if (r->has_speed_outlook) {
        char line[512];
        oq_html_paragraph(t, oq_html_sprintf(line, sizeof line,
                                             "%s: %s (per sample: %.3g M multiply-adds in %.0f integer ops, "
                                             "%.3g M elements converted).",
                                             r->faster_expected
                                                 ? "A runtime with 8-bit kernels should run this faster than float"
                                                 : "Expect no speed-up over float in a runtime",
                                             r->why, e->int8_macs / 1e6, e->int8_nodes, e->converted / 1e6));
    }
    oq_html_section_end(t);
}

/* Output and weight SQNR of each Conv/MatMul/Gemm node along the graph,
 * nodes left float shaded, and every node in a folded table. */
static void sqnr_section(oq_text *t, const oq_report *r)
{
    int n = r->n_nodes;
    if (!n)
        return;
    const char **names = calloc((size_t)n, sizeof *names), **ops = calloc((size_t)n, sizeof *ops);
    const char **reasons = calloc((size_t)n, sizeof *reasons);
    double *out_db = calloc((size_t)n, sizeof *out_db), *w_db = calloc((size_t)n, sizeof *w_db);
    bool *left_float = calloc((size_t)n, sizeof *left_float);
    if (names && ops && reasons && out_db && w_db && left_float) {
        for (int i = 0; i < n; i++) {
            const oq_report_node *q = &r->nodes[i];
            names[i] = q->name;
            ops[i] = q->op_type;
            reasons[i] = q->reason;
            left_float[i] = !q->quantized;
            out_db[i] = q->quantized && r->has_evaluation ? q->output_sqnr_db : NAN;
            w_db[i] = q->quantized ? q->weight_sqnr_db : NAN;
        }
        oq_html_series series[2] = {{"output SQNR", out_db}, {"weight SQNR", w_db}};
        int first = r->has_evaluation ? 0 : 1;
        oq_html_chart c = {.n = n,
                           .names = names,
                           .ops = ops,
                           .x_label = "candidate nodes in graph order",
                           .y_label = "SQNR (dB)",
                           .n_series = 2 - first,
                           .series = series + first,
                           .shaded = left_float,
                           .shaded_label = "left in float",
                           .shaded_notes = reasons};
        oq_html_section_begin(t, "sqnr", "Error along the graph",
                              "SQNR of each candidate node's output (Conv, MatMul, Gemm, ...) against the float model's value on the "
                              "evaluation samples (the error of everything up to it), and of its weights after "
                              "rounding to 8 bits. Higher is better: 20 dB is an error of a tenth of the signal's "
                              "amplitude, and each 6 dB less doubles it. Hover over a point for its node.");
        if (!r->has_evaluation)
            oq_html_paragraph(t, "Not evaluated: only the weights' SQNR is shown.");
        oq_html_chart_svg(t, &c);
        char fold[64];
        static const char *const heads[] = {
            "#", "node", "op", "in 8 bits", "weight SQNR (dB)", "output SQNR (dB)", "weight scales", NULL};
        oq_html_sprintf(fold, sizeof fold, "All %d nodes", n);
        oq_html_table_begin(t, fold, heads);
        for (int i = 0; i < n; i++) {
            const oq_report_node *q = &r->nodes[i];
            char num[32];
            oq_html_row_begin(t);
            oq_html_cell(t, oq_html_sprintf(num, sizeof num, "%d", i + 1));
            oq_html_cell(t, q->name);
            oq_html_cell(t, q->op_type);
            oq_html_cell(t, q->quantized ? "yes" : q->reason ? q->reason : "no");
            oq_html_cell_number(t, w_db[i], 2);
            oq_html_cell_number(t, out_db[i], 2);
            oq_html_cell(t, q->quantized ? oq_html_sprintf(num, sizeof num, "%d", q->n_scales) : "");
            oq_html_row_end(t);
        }
        oq_html_table_end(t, fold);
        oq_html_section_end(t);
    } else {
        t->bad = true;
    }
    free(names);
    free(ops);
    free(reasons);
    free(out_db);
    free(w_db);
    free(left_float);
}

/* The quantized graph as a strip of 8-bit, float and conversion runs, the
 * float ops next to the conversions, and the candidates left float. */
static void boundaries_section(oq_text *t, const oq_report *r)
{
    int n = r->n_ops;
    if (!n)
        return;
    const char **names = calloc((size_t)n, sizeof *names), **ops = calloc((size_t)n, sizeof *ops);
    int *classes = calloc((size_t)n, sizeof *classes);
    oq_html_bar *bars = calloc((size_t)r->n_glue_ops + 1, sizeof *bars);
    char(*texts)[32] = calloc((size_t)r->n_glue_ops + 1, sizeof *texts);
    if (!names || !ops || !classes || !bars || !texts) {
        t->bad = true;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        names[i] = r->ops[i].name;
        ops[i] = r->ops[i].op_type;
        classes[i] = (int)r->ops[i].precision;
    }
    static const char *const labels[OQ_PRECISION_COUNT] = {
        [OQ_PRECISION_FLOAT] = "float",
        [OQ_PRECISION_INTEGER] = "8-bit",
        [OQ_PRECISION_CONVERSION] = "conversion",
    };
    static const int tones[OQ_PRECISION_COUNT] = {
        [OQ_PRECISION_FLOAT] = 3, [OQ_PRECISION_INTEGER] = 2, [OQ_PRECISION_CONVERSION] = 1};
    oq_html_section_begin(t, "boundaries", "Where float and 8-bit meet",
                          "Every node of the quantized model in graph order: green nodes run in 8 bits, grey ones in "
                          "float, and orange ones convert between the two, each one more pass over its tensor. "
                          "Hover over a run for its nodes.");
    oq_html_strip(t, n, classes, names, ops, OQ_PRECISION_COUNT, labels, tones);
    if (r->has_boundaries) {
        char line[256];
        oq_html_paragraph(
            t, oq_html_sprintf(line, sizeof line,
                               "%d QuantizeLinear and %d DequantizeLinear nodes convert activations; the float ops "
                               "they connect to, by type:",
                               r->n_boundary_quantize, r->n_boundary_dequantize));
        for (int i = 0; i < r->n_glue_ops; i++)
            bars[i] = (oq_html_bar){r->glue_ops[i].op_type, r->glue_ops[i].count,
                                    oq_html_sprintf(texts[i], sizeof texts[i], "%d", r->glue_ops[i].count), 3};
        oq_html_bars(t, r->n_glue_ops, bars, 0);
    }
    int left = r->n_nodes - r->n_quantized;
    if (left) {
        static const char *const heads[] = {"node", "op", "why it stays float", NULL};
        char fold[64];
        oq_html_sprintf(fold, sizeof fold, "%d candidate node%s left in float", left, left == 1 ? "" : "s");
        oq_html_table_begin(t, fold, heads);
        for (int i = 0; i < r->n_nodes; i++) {
            if (r->nodes[i].quantized)
                continue;
            oq_html_row_begin(t);
            oq_html_cell(t, r->nodes[i].name);
            oq_html_cell(t, r->nodes[i].op_type);
            oq_html_cell(t, r->nodes[i].reason);
            oq_html_row_end(t);
        }
        oq_html_table_end(t, fold);
    }
    oq_html_section_end(t);
done:
    free(names);
    free(ops);
    free(classes);
    free(bars);
    free(texts);
}

/* Initializers largest first, then in report order (they point into one array). */
static int by_bytes_desc(const void *a, const void *b)
{
    const oq_report_initializer *x = *(const oq_report_initializer *const *)a;
    const oq_report_initializer *y = *(const oq_report_initializer *const *)b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x < y ? -1 : x > y;
}

enum { LARGEST_SHOWN = 20 };

/* Constants of the model as loaded against the quantized model's, the
 * latter split by element type, and the largest constants. */
static void size_section(oq_text *t, const oq_report *r)
{
    int64_t by_dtype[OQ_DTYPE_COUNT] = {0};
    int count[OQ_DTYPE_COUNT] = {0};
    for (int i = 0; i < r->n_initializers; i++) {
        oq_dtype d = r->initializers[i].dtype;
        if (oq_dtype_valid((int)d)) {
            by_dtype[d] += r->initializers[i].bytes;
            count[d]++;
        }
    }
    oq_html_bar parts[OQ_DTYPE_COUNT];
    char labels[OQ_DTYPE_COUNT][48], texts[OQ_DTYPE_COUNT][48];
    int n_parts = 0;
    /* the biggest types first: a fixed order of the types, then by bytes */
    bool used[OQ_DTYPE_COUNT] = {false};
    for (int k = 0; k < OQ_DTYPE_COUNT; k++) {
        int best = -1;
        for (int d = 1; d < OQ_DTYPE_COUNT; d++)
            if (!used[d] && by_dtype[d] > 0 && (best < 0 || by_dtype[d] > by_dtype[best]))
                best = d;
        if (best < 0)
            break;
        used[best] = true;
        oq_html_sprintf(labels[n_parts], sizeof labels[n_parts], "%s (%d tensor%s)", oq_dtype_name((oq_dtype)best),
                        count[best], count[best] == 1 ? "" : "s");
        oq_html_format_bytes(texts[n_parts], sizeof texts[n_parts], (double)by_dtype[best]);
        static const int tones[] = {2, 1, 0, 5, 4, 3};
        parts[n_parts] = (oq_html_bar){labels[n_parts], (double)by_dtype[best], texts[n_parts], tones[n_parts % 6]};
        n_parts++;
    }
    double max = (double)(r->fp32_bytes > r->quantized_bytes ? r->fp32_bytes : r->quantized_bytes);
    char total[96], ratio[64] = "";
    if (r->quantized_bytes)
        oq_html_sprintf(ratio, sizeof ratio, " (%.2fx smaller)", (double)r->fp32_bytes / (double)r->quantized_bytes);
    oq_html_section_begin(t, "size", "Size",
                          "Bytes of the constants (weights, biases, quantization parameters) of the model as loaded "
                          "and of the quantized model, by element type.");
    char bytes[48];
    oq_html_bar whole = {"as loaded", (double)r->fp32_bytes,
                         oq_html_format_bytes(bytes, sizeof bytes, (double)r->fp32_bytes), 3};
    oq_html_stack(t, "Float model", 1, &whole, max, bytes);
    oq_html_format_bytes(bytes, sizeof bytes, (double)r->quantized_bytes);
    oq_html_stack(t, "Quantized model", n_parts, parts, max,
                  oq_html_sprintf(total, sizeof total, "%s%s", bytes, ratio));
    const oq_report_initializer **order = calloc((size_t)r->n_initializers + 1, sizeof *order);
    if (!order) {
        t->bad = true;
    } else if (r->n_initializers) {
        for (int i = 0; i < r->n_initializers; i++)
            order[i] = &r->initializers[i];
        qsort(order, (size_t)r->n_initializers, sizeof *order, by_bytes_desc);
        int shown = r->n_initializers < LARGEST_SHOWN ? r->n_initializers : LARGEST_SHOWN;
        static const char *const heads[] = {"constant", "type", "bytes", NULL};
        char fold[64];
        if (shown == r->n_initializers)
            oq_html_sprintf(fold, sizeof fold, "All %d constants, largest first", shown);
        else
            oq_html_sprintf(fold, sizeof fold, "The %d largest of %d constants", shown, r->n_initializers);
        oq_html_table_begin(t, fold, heads);
        for (int k = 0; k < shown; k++) {
            const oq_report_initializer *e = order[k];
            oq_html_row_begin(t);
            oq_html_cell(t, e->name);
            oq_html_cell(t, oq_dtype_name(e->dtype));
            oq_html_cell_number(t, (double)e->bytes, 0);
            oq_html_row_end(t);
        }
        oq_html_table_end(t, fold);
    }
    free(order);
    oq_html_section_end(t);
}

/* How the model was made: paths and hashes, options, calibration,
 * preparation, folds. */
static void run_section(oq_text *t, const oq_report *r)
{
    const oq_quant_options *o = &r->opts;
    oq_html_section_begin(t, "run", "How it was made", NULL);
    oq_text_printf(t, "<table>\n<tbody>\n");
    oq_html_kv(t, "model", "%s (sha256 %s)", r->model_path, r->model_sha256);
    oq_html_kv(t, "output", "%s", r->output_path);
    oq_html_kv(t, "opset", "%lld, written as %lld", (long long)r->opset, (long long)r->output_opset);
    oq_html_kv(t, "mode and format", "%s, %s%s", o->mode == OQ_MODE_DYNAMIC ? "dynamic" : "static", format_name(r),
               o->contrib ? " with com.microsoft ops (--contrib)" : "");
    oq_html_kv(t, "weights", "int8 symmetric, %s", o->per_channel ? "per output channel" : "per tensor");
    oq_html_kv(t, "activations", "%s, %s", o->act_qmin < 0 ? "int8" : "uint8",
               o->symmetric_activations ? "symmetric" : "asymmetric");
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < r->n_op_types && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", r->op_types[i]);
    oq_html_kv(t, "op types", "%s", list);
    if (o->n_exclude) {
        used = 0;
        list[0] = '\0';
        for (int i = 0; i < o->n_exclude && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", r->exclude[i]);
        oq_html_kv(t, "excluded", "%s", list);
    }
    if (r->has_calibration)
        oq_html_kv(t, "calibration", "%s ranges over %lld samples (data sha256 %s)", oq_calib_method_name(r->method),
                   (long long)r->calib_samples, r->data_sha256);
    if (r->has_prepare) {
        used = 0;
        list[0] = '\0';
        for (int k = 0; k < OQ_PREPARE_STAT_COUNT && used < sizeof list; k++)
            if (r->prepare.counts[k])
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%d %s", used ? ", " : ": ",
                                         r->prepare.counts[k], oq_prepare_stats[k].label);
        oq_html_kv(t, "graph preparation", "%d \xE2\x86\x92 %d nodes%s", r->prepare.nodes_before,
                   r->prepare.nodes_after, list);
    } else {
        oq_html_kv(t, "graph preparation", "off (--no-prepare)");
    }
    oq_html_kv(t, "folded into 8-bit ops",
               "%d constant factors moved into scales, %d hard-swish patterns made HardSwish", r->n_folded_factors,
               r->n_fused_hard_swish);
    if (r->n_contrib_ops || o->contrib)
        oq_html_kv(t, "com.microsoft QLinear ops", "%d (%d nodes without a range stayed float)", r->n_contrib_ops,
                   r->n_contrib_no_range);
    oq_text_printf(t, "</tbody>\n</table>\n");
    oq_html_section_end(t);
}

/* An accuracy target's choices (report_sensitivity.c). */
static void mixed_section(oq_text *t, const oq_report *r)
{
    oq_html_mixed_section(t, r->mixed_precision, r->sensitivity);
}

/* The ranking the target used (report_sensitivity.c). */
static void sensitivity_section(oq_text *t, const oq_report *r)
{
    oq_html_sensitivity_section(t, r->sensitivity, r->mixed_precision);
}

/* The page, in order. */
typedef void (*report_section)(oq_text *t, const oq_report *r);
static const report_section sections[] = {
    cards, accuracy_section, mixed_section, sqnr_section, sensitivity_section, boundaries_section, size_section,
    run_section,
};

oq_status oq_report_html(const oq_report *r, uint8_t **buf, size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    oq_text t = {0};
    char subtitle[1024];
    oq_html_begin(&t, "onnxq quantization report",
                  oq_html_sprintf(subtitle, sizeof subtitle, "%s \xE2\x86\x92 %s", r->model_path, r->output_path));
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++)
        sections[k](&t, r);
    return oq_html_end(&t, r->tool_version, buf, len, err);
}
