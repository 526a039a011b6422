/* report.c: the reports (see oq_report.h): of a quantization run, built once
 * and rendered as JSON (cJSON; schema in docs/formats.md) and as summary lines
 * (the HTML page is report_html.c's), and of `onnxq prepare`, rendered the
 * same two ways. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/sensitivity_json.h"
#include "json.h"
#include "onnxq/oq_report.h"
#include "quant/match.h"
#include "text.h"

/* Candidates left float that the text summary names one by one; the report lists all. */
enum { LEFT_FLOAT_SHOWN = 5 };

/* ---- building ------------------------------------------------------------------ */

static char *dup(const char *s, bool *bad)
{
    char *d = strdup(s ? s : "");
    *bad |= !d;
    return d;
}

static void copy_eval(oq_eval *dst, const oq_eval *src, int n_nodes, bool *bad)
{
    *dst = *src;
    dst->outputs = calloc((size_t)src->n_outputs + 1, sizeof *dst->outputs);
    dst->node_sqnr_db = malloc(((size_t)n_nodes + 1) * sizeof *dst->node_sqnr_db);
    if (!dst->outputs || !dst->node_sqnr_db) {
        *bad = true;
        dst->n_outputs = 0;
        return;
    }
    memcpy(dst->node_sqnr_db, src->node_sqnr_db, (size_t)n_nodes * sizeof *dst->node_sqnr_db);
    for (int k = 0; k < src->n_outputs; k++) {
        dst->outputs[k] = src->outputs[k];
        dst->outputs[k].name = dup(src->outputs[k].name, bad);
    }
}

static void size_section(oq_report *r, int64_t fp32_bytes, const oq_model *quant, bool *bad)
{
    int64_t nt, ne;
    r->fp32_bytes = fp32_bytes;
    oq_graph_param_stats(quant->graph, &nt, &ne, &r->quantized_bytes);
    const oq_graph *g = quant->graph;
    if (!(r->initializers = calloc((size_t)g->n_values + 1, sizeof *r->initializers))) {
        *bad = true;
        return;
    }
    for (int i = 0; i < g->n_values; i++) {
        const oq_value *v = g->values[i];
        if (!v->constant)
            continue;
        oq_report_initializer *e = &r->initializers[r->n_initializers++];
        e->name = dup(v->name, bad);
        e->dtype = v->constant->dtype;
        e->bytes = (int64_t)oq_dtype_storage(v->constant->dtype, oq_tensor_numel(v->constant));
    }
}

static void nodes_section(oq_report *r, const oq_quant_result *res, const oq_eval *eval, bool *bad)
{
    if (!(r->nodes = calloc((size_t)res->n_nodes + 1, sizeof *r->nodes))) {
        *bad = true;
        return;
    }
    r->n_nodes = res->n_nodes;
    for (int i = 0; i < res->n_nodes; i++) {
        const oq_quant_node *q = &res->nodes[i];
        oq_report_node *e = &r->nodes[i];
        e->name = dup(q->name, bad);
        e->op_type = dup(q->op_type, bad);
        e->quantized = q->quantized;
        e->reason = q->quantized ? NULL : dup(q->reason, bad);
        e->n_scales = q->n_scales;
        e->scale_min = q->scale_min;
        e->scale_max = q->scale_max;
        e->weight_sqnr_db = q->weight_sqnr_db;
        e->output_sqnr_db = eval ? eval->node_sqnr_db[i] : NAN;
        r->n_quantized += q->quantized;
    }
}

static const char *const precision_names[OQ_PRECISION_COUNT] = {
    [OQ_PRECISION_FLOAT] = "float",
    [OQ_PRECISION_INTEGER] = "integer",
    [OQ_PRECISION_CONVERSION] = "conversion",
};

const char *oq_report_precision_name(oq_report_precision p)
{
    return p >= 0 && p < OQ_PRECISION_COUNT ? precision_names[p] : "?";
}

/* Whether every output of n is read, and only by QuantizeLinear nodes. */
static bool feeds_only_quantize(const oq_node *n)
{
    for (int k = 0; k < n->n_outputs; k++) {
        const oq_value *v = n->outputs[k];
        if (!v || !v->n_consumers)
            return false;
        for (int c = 0; c < v->n_consumers; c++)
            if (v->consumers[c]->kind != OQ_OP_QUANTIZE_LINEAR)
                return false;
    }
    return n->n_outputs > 0;
}

/* How n runs (see oq_report_precision); integer[value id] marks the 8-bit
 * (and int32 accumulator) tensors made so far and is updated for n's outputs. */
static oq_report_precision classify_op(const oq_node *n, bool *integer)
{
    int fed = 0, fed_integer = 0, fed_dequantized = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const oq_value *v = n->inputs[k];
        if (!v || v->constant)
            continue;
        fed++;
        fed_integer += integer[v->id];
        fed_dequantized += v->producer && v->producer->kind == OQ_OP_DEQUANTIZE_LINEAR;
    }
    oq_report_precision p = OQ_PRECISION_FLOAT;
    bool makes_integer = false;
    if (n->kind == OQ_OP_QUANTIZE_LINEAR || n->kind == OQ_OP_DYNAMIC_QUANTIZE_LINEAR) {
        p = OQ_PRECISION_CONVERSION;
        if (n->n_outputs && n->outputs[0])
            integer[n->outputs[0]->id] = true;
        return p;
    }
    if (n->kind == OQ_OP_DEQUANTIZE_LINEAR)
        p = fed ? OQ_PRECISION_CONVERSION : OQ_PRECISION_INTEGER;
    else if (n->kind == OQ_OP_CAST && fed && fed_integer == fed)
        p = OQ_PRECISION_CONVERSION;
    else if (oq_op_is_integer(n->kind) || (fed && fed_integer == fed))
        p = OQ_PRECISION_INTEGER, makes_integer = true;
    else if (fed && fed_dequantized == fed && feeds_only_quantize(n))
        p = OQ_PRECISION_INTEGER;
    for (int k = 0; makes_integer && k < n->n_outputs; k++)
        if (n->outputs[k])
            integer[n->outputs[k]->id] = true;
    return p;
}

/* Fills r->ops and the counts by precision from the quantized model's nodes
 * (Constants left out); sets *bad when out of memory. */
static void graph_section(oq_report *r, const oq_model *quant, bool *bad)
{
    const oq_graph *g = quant->graph;
    bool *integer = calloc((size_t)g->n_values + 1, sizeof *integer);
    r->ops = calloc((size_t)g->n_nodes + 1, sizeof *r->ops);
    if (!integer || !r->ops) {
        free(integer);
        *bad = true;
        return;
    }
    for (int i = 0; i < g->n_nodes && !*bad; i++) {
        const oq_node *n = g->nodes[i];
        if (n->kind == OQ_OP_CONSTANT) /* no work: its tensor is part of the model */
            continue;
        oq_report_op *e = &r->ops[r->n_ops++];
        e->name = dup(n->name, bad);
        e->op_type = dup(n->op_type, bad);
        e->precision = classify_op(n, integer);
        r->n_ops_by_precision[e->precision]++;
    }
    free(integer);
}

oq_status oq_report_build(oq_report **out, const oq_report_input *in, oq_err *err)
{
    *out = NULL;
    oq_report *r = calloc(1, sizeof *r);
    if (!r)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    bool bad = false;
    const oq_quant_options *o = in->opts;
    r->tool_version = dup(in->tool_version, &bad);
    r->opts = *o;
    /* the selected op types in their canonical order, however --op-types spelled them */
    r->op_types = calloc(OQ_QUANT_OP_TYPE_COUNT, sizeof *r->op_types);
    r->exclude = calloc((size_t)o->n_exclude + 1, sizeof *r->exclude);
    bad |= !r->op_types || !r->exclude;
    for (int k = 0; !bad && k < OQ_QUANT_OP_TYPE_COUNT; k++)
        if (oq_quant_selects_type(o, k))
            r->op_types[r->n_op_types++] = dup(oq_quant_op_types[k], &bad);
    for (int i = 0; !bad && i < o->n_exclude; i++)
        r->exclude[i] = dup(o->exclude[i], &bad);
    r->opts.op_types = (const char *const *)r->op_types;
    r->opts.n_op_types = r->n_op_types;
    r->opts.exclude = (const char *const *)r->exclude;
    r->model_path = dup(in->model_path, &bad);
    r->model_sha256 = dup(in->model_sha256, &bad);
    r->output_path = dup(in->output_path, &bad);
    r->opset = in->prep->opset_from;
    r->output_opset = in->prep->opset_to;
    if ((r->has_calibration = in->table != NULL)) {
        r->method = in->table->range.method;
        r->calib_samples = in->table->samples;
        memcpy(r->data_sha256, in->table->data_sha256, sizeof r->data_sha256);
        memcpy(r->calib_model_sha256, in->table->model_sha256, sizeof r->calib_model_sha256);
    }
    if (!bad)
        size_section(r, in->fp32_bytes, in->quant, &bad);
    if ((r->has_prepare = in->graph_prep != NULL))
        r->prepare = *in->graph_prep;
    r->n_candidates = in->plan->n_candidates;
    r->n_folded_bn = r->prepare.counts[OQ_PREPARE_BATCHNORMS_FOLDED];
    r->n_folded_factors = in->result->n_folded_factors;
    r->n_fused_hard_swish = in->prep->n_fused_hard_swish;
    r->n_contrib_ops = in->result->n_contrib_ops;
    r->n_contrib_no_range = in->plan->n_contrib_no_range;
    bool qoperator = o->mode == OQ_MODE_STATIC && o->format == OQ_FORMAT_QOPERATOR;
    if ((r->has_boundaries = qoperator)) {
        r->n_boundary_quantize = in->result->n_boundary_quantize;
        r->n_boundary_dequantize = in->result->n_boundary_dequantize;
        if (!(r->glue_ops = calloc((size_t)in->result->n_glue_ops + 1, sizeof *r->glue_ops)))
            bad = true;
        for (int i = 0; !bad && i < in->result->n_glue_ops; i++, r->n_glue_ops++)
            r->glue_ops[i] = (oq_glue_op){dup(in->result->glue_ops[i].op_type, &bad), in->result->glue_ops[i].count};
    }
    if (!bad)
        nodes_section(r, in->result, in->eval, &bad);
    if (!bad)
        graph_section(r, in->quant, &bad);
    r->bias_correction = *in->bias_correction;
    if (!bad && oq_equalization_copy(&r->equalization, in->equalization, err))
        bad = true;
    if (!bad && (r->has_evaluation = in->eval != NULL))
        copy_eval(&r->eval, in->eval, in->result->n_nodes, &bad);
    if ((r->has_speed_outlook = in->eval && qoperator))
        r->faster_expected = oq_eval_speedup_expected(in->eval, &r->why);
    r->times = in->times;
    if (bad) {
        oq_report_destroy(r);
        return oq_errf(err, OQ_ENOMEM, "out of memory building the report");
    }
    *out = r;
    return OQ_OK;
}

void oq_report_destroy(oq_report *r)
{
    if (!r)
        return;
    free(r->tool_version);
    for (int i = 0; r->op_types && i < r->n_op_types; i++)
        free(r->op_types[i]);
    free(r->op_types);
    for (int i = 0; r->exclude && i < r->opts.n_exclude; i++)
        free(r->exclude[i]);
    free(r->exclude);
    free(r->model_path);
    free(r->model_sha256);
    free(r->output_path);
    for (int i = 0; i < r->n_initializers; i++)
        free(r->initializers[i].name);
    free(r->initializers);
    for (int i = 0; i < r->n_glue_ops; i++)
        free(r->glue_ops[i].op_type);
    free(r->glue_ops);
    for (int i = 0; i < r->n_nodes; i++) {
        free(r->nodes[i].name);
        free(r->nodes[i].op_type);
        free(r->nodes[i].reason);
    }
    free(r->nodes);
    for (int i = 0; i < r->n_ops; i++) {
        free(r->ops[i].name);
        free(r->ops[i].op_type);
    }
    free(r->ops);
    oq_eval_release(&r->eval);
    oq_sensitivity_destroy(r->sensitivity);
    oq_mixed_destroy(r->mixed_precision);
    oq_equalization_release(&r->equalization);
    free(r);
}

oq_status oq_report_set_target(oq_report *r, const oq_sensitivity *sens, const oq_mixed *m, oq_err *err)
{
    oq_sensitivity_destroy(r->sensitivity);
    oq_mixed_destroy(r->mixed_precision);
    r->sensitivity = NULL;
    r->mixed_precision = NULL;
    oq_status st = sens ? oq_sensitivity_copy(&r->sensitivity, sens, err) : OQ_OK;
    if (!st)
        st = oq_mixed_copy(&r->mixed_precision, m, err);
    r->times.sensitivity = m->seconds_analysis;
    r->times.search = m->seconds_search;
    return st;
}

/* ---- JSON ---------------------------------------------------------------------- */

static cJSON *options_json(const oq_report *r)
{
    const oq_quant_options *o = &r->opts;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", o->mode == OQ_MODE_DYNAMIC ? "dynamic" : "static");
    cJSON_AddStringToObject(j, "format", o->format == OQ_FORMAT_QDQ ? "qdq" : "qoperator");
    cJSON_AddBoolToObject(j, "contrib", o->contrib);
    cJSON_AddBoolToObject(j, "per_channel", o->per_channel);
    cJSON_AddStringToObject(j, "activation_type", o->act_qmin < 0 ? "int8" : "uint8");
    cJSON_AddBoolToObject(j, "symmetric_activations", o->symmetric_activations);
    cJSON *ops = cJSON_AddArrayToObject(j, "op_types");
    for (int i = 0; i < r->n_op_types; i++)
        cJSON_AddItemToArray(ops, cJSON_CreateString(r->op_types[i]));
    cJSON *ex = cJSON_AddArrayToObject(j, "exclude");
    for (int i = 0; i < o->n_exclude; i++)
        cJSON_AddItemToArray(ex, cJSON_CreateString(r->exclude[i]));
    return j;
}

static cJSON *size_json(const oq_report *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "fp32_bytes", (double)r->fp32_bytes);
    cJSON_AddNumberToObject(j, "quantized_bytes", (double)r->quantized_bytes);
    oq_json_add_number(j, "ratio", r->quantized_bytes ? (double)r->fp32_bytes / (double)r->quantized_bytes : NAN);
    cJSON *list = cJSON_AddArrayToObject(j, "initializers");
    for (int i = 0; i < r->n_initializers; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", r->initializers[i].name);
        cJSON_AddStringToObject(e, "dtype", oq_dtype_name(r->initializers[i].dtype));
        cJSON_AddNumberToObject(e, "bytes", (double)r->initializers[i].bytes);
        cJSON_AddItemToArray(list, e);
    }
    return j;
}

static cJSON *nodes_json(const oq_report *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < r->n_nodes; i++) {
        const oq_report_node *q = &r->nodes[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", q->name);
        cJSON_AddStringToObject(e, "op", q->op_type);
        cJSON_AddBoolToObject(e, "quantized", q->quantized);
        if (!q->quantized) {
            cJSON_AddStringToObject(e, "reason", q->reason ? q->reason : "");
        } else {
            if (q->n_scales) { /* a constant weight (a MatMul of two activations has none) */
                cJSON *s = cJSON_AddObjectToObject(e, "weight_scales");
                cJSON_AddNumberToObject(s, "count", q->n_scales);
                cJSON_AddNumberToObject(s, "min", q->scale_min);
                cJSON_AddNumberToObject(s, "max", q->scale_max);
                oq_json_add_sqnr(e, "weight_sqnr_db", q->weight_sqnr_db);
            }
            if (r->has_evaluation)
                oq_json_add_sqnr(e, "output_sqnr_db", q->output_sqnr_db);
        }
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

static cJSON *eval_json(const oq_eval *ev)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "samples", (double)ev->samples);
    cJSON *outs = cJSON_AddArrayToObject(j, "outputs");
    for (int k = 0; k < ev->n_outputs; k++) {
        const oq_output_metrics *m = &ev->outputs[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", m->name);
        oq_json_add_number(o, "cosine", m->cosine);
        oq_json_add_sqnr(o, "sqnr_db", m->sqnr_db);
        oq_json_add_number(o, "max_abs_error", m->max_abs_error);
        if (m->classifier)
            oq_json_add_number(o, "top1_agreement", m->top1_total ? (double)m->top1_agree / (double)m->top1_total : NAN);
        cJSON_AddNumberToObject(o, "compared_samples", (double)m->compared);
        if (m->equality) {
            cJSON_AddNumberToObject(o, "equality_samples", (double)m->equality);
            cJSON_AddNumberToObject(o, "identical_samples", (double)m->identical);
        }
        if (m->shape_differs)
            cJSON_AddNumberToObject(o, "shape_differs", (double)m->shape_differs);
        if (m->nonfinite)
            cJSON_AddNumberToObject(o, "nonfinite_values", (double)m->nonfinite);
        cJSON_AddItemToArray(outs, o);
    }
    cJSON *w = cJSON_AddObjectToObject(j, "work_per_sample");
    cJSON_AddNumberToObject(w, "int8_macs", ev->int8_macs);
    cJSON_AddNumberToObject(w, "int8_nodes", ev->int8_nodes);
    cJSON_AddNumberToObject(w, "converted_elements", ev->converted);
    if (ev->labeled) {
        cJSON *a = cJSON_AddObjectToObject(j, "accuracy");
        cJSON_AddNumberToObject(a, "labeled_samples", (double)ev->labeled);
        cJSON_AddNumberToObject(a, "fp32_top1", (double)ev->fp32_correct / (double)ev->labeled);
        cJSON_AddNumberToObject(a, "quantized_top1", (double)ev->q_correct / (double)ev->labeled);
    }
    return j;
}

static cJSON *mixed_json(const oq_mixed *m)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(j, "target");
    cJSON_AddStringToObject(t, "kind", oq_target_name(m->target.kind));
    cJSON_AddNumberToObject(t, "value", m->target.value);
    if (m->target.output)
        cJSON_AddStringToObject(t, "output", m->target.output);
    cJSON_AddStringToObject(j, "ranking", m->ranking_from_file ? "file" : "analysis");
    oq_json_add_sqnr(j, "metric_before", m->metric_before); /* (finite unless an SQNR) */
    oq_json_add_sqnr(j, "metric_after", m->metric_after);
    cJSON_AddNumberToObject(j, "candidates", m->n_candidates);
    cJSON *kept = cJSON_AddArrayToObject(j, "kept_float");
    for (int i = 0; i < m->n_kept; i++)
        cJSON_AddItemToArray(kept, cJSON_CreateString(m->kept[i]));
    cJSON *macs = cJSON_AddObjectToObject(j, "macs_per_sample");
    oq_json_add_number(macs, "int8", m->int8_macs);
    oq_json_add_number(macs, "total", m->total_macs);
    oq_json_add_number(macs, "int8_share", m->total_macs > 0 ? m->int8_macs / m->total_macs : NAN);
    cJSON *steps = cJSON_AddArrayToObject(j, "steps");
    for (int i = 0; i < m->n_steps; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "kept_float", m->steps[i].kept_float);
        if (m->steps[i].requantized)
            cJSON_AddStringToObject(e, "requantized", m->steps[i].requantized);
        else
            cJSON_AddNullToObject(e, "requantized");
        oq_json_add_sqnr(e, "metric", m->steps[i].metric);
        cJSON_AddBoolToObject(e, "met", m->steps[i].met);
        cJSON_AddItemToArray(steps, e);
    }
    return j;
}

static cJSON *equalization_json(const oq_equalization *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "requested", e->requested);
    cJSON_AddBoolToObject(j, "applied", e->applied);
    cJSON_AddNumberToObject(j, "candidates", e->candidates);
    if (e->why_not)
        cJSON_AddStringToObject(j, "why_not", e->why_not);
    else
        cJSON_AddNullToObject(j, "why_not");
    cJSON *pairs = cJSON_AddArrayToObject(j, "pairs");
    for (int i = 0; pairs && i < e->n_pairs; i++) {
        const oq_equalized_pair *p = &e->pairs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tensor", p->tensor);
        cJSON_AddStringToObject(o, "producer", p->producer);
        cJSON_AddStringToObject(o, "consumer", p->consumer);
        cJSON_AddNumberToObject(o, "channels", (double)p->channels);
        cJSON_AddNumberToObject(o, "scaled_channels", (double)p->scaled);
        cJSON_AddNumberToObject(o, "max_scale", p->max_scale);
        cJSON_AddItemToArray(pairs, o);
    }
    return j;
}

static cJSON *bias_correction_json(const oq_bias_correction *b)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "requested", b->requested);
    cJSON_AddBoolToObject(j, "applied", b->applied);
    if (b->why_not)
        cJSON_AddStringToObject(j, "why_not", b->why_not);
    else
        cJSON_AddNullToObject(j, "why_not");
    cJSON_AddNumberToObject(j, "samples", (double)b->samples);
    cJSON_AddNumberToObject(j, "nodes", b->nodes);
    cJSON_AddNumberToObject(j, "channels", (double)b->channels);
    cJSON_AddNumberToObject(j, "nodes_without_bias", b->nodes_without_bias);
    oq_json_add_number(j, "mean_abs_shift_steps", b->mean_abs_shift);
    return j;
}

static cJSON *report_json(const oq_report *r)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON *tool = cJSON_AddObjectToObject(root, "tool");
    cJSON_AddStringToObject(tool, "name", "onnxq");
    cJSON_AddStringToObject(tool, "version", r->tool_version);
    cJSON_AddItemToObject(root, "options", options_json(r));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "path", r->model_path);
    cJSON_AddStringToObject(model, "sha256", r->model_sha256);
    cJSON_AddStringToObject(model, "output", r->output_path);
    cJSON_AddNumberToObject(model, "opset", (double)r->opset);
    cJSON_AddNumberToObject(model, "output_opset", (double)r->output_opset);
    if (r->has_calibration) {
        cJSON *c = cJSON_AddObjectToObject(root, "calibration");
        cJSON_AddStringToObject(c, "method", oq_calib_method_name(r->method));
        cJSON_AddNumberToObject(c, "samples", (double)r->calib_samples);
        cJSON_AddStringToObject(c, "data_sha256", r->data_sha256);
        cJSON_AddStringToObject(c, "model_sha256", r->calib_model_sha256);
    }
    if (r->has_prepare) {
        cJSON *p = cJSON_AddObjectToObject(root, "prepare");
        for (int k = 0; k < OQ_PREPARE_STAT_COUNT; k++)
            cJSON_AddNumberToObject(p, oq_prepare_stats[k].key, r->prepare.counts[k]);
    } else {
        cJSON_AddNullToObject(root, "prepare");
    }
    cJSON_AddItemToObject(root, "size", size_json(r));
    cJSON *counts = cJSON_AddObjectToObject(root, "node_counts");
    cJSON_AddNumberToObject(counts, "candidates", r->n_candidates);
    cJSON_AddNumberToObject(counts, "quantized", r->n_quantized);
    cJSON_AddNumberToObject(counts, "folded_batchnorm", r->n_folded_bn);
    cJSON_AddNumberToObject(counts, "folded_factors", r->n_folded_factors);
    cJSON_AddNumberToObject(counts, "fused_hard_swish", r->n_fused_hard_swish);
    cJSON_AddNumberToObject(counts, "contrib_ops", r->n_contrib_ops);
    cJSON_AddNumberToObject(counts, "contrib_no_range", r->n_contrib_no_range);
    if (r->has_boundaries) {
        cJSON *b = cJSON_AddObjectToObject(root, "boundaries");
        cJSON_AddNumberToObject(b, "quantize_linear", r->n_boundary_quantize);
        cJSON_AddNumberToObject(b, "dequantize_linear", r->n_boundary_dequantize);
        cJSON *ops = cJSON_AddObjectToObject(b, "float_ops");
        for (int i = 0; i < r->n_glue_ops; i++)
            cJSON_AddNumberToObject(ops, r->glue_ops[i].op_type, r->glue_ops[i].count);
    } else {
        cJSON_AddNullToObject(root, "boundaries");
    }
    cJSON_AddItemToObject(root, "nodes", nodes_json(r));
    cJSON *graph = cJSON_AddObjectToObject(root, "graph");
    cJSON_AddNumberToObject(graph, "nodes", r->n_ops);
    for (int k = 0; k < OQ_PRECISION_COUNT; k++)
        cJSON_AddNumberToObject(graph, oq_report_precision_name((oq_report_precision)k), r->n_ops_by_precision[k]);
    cJSON_AddItemToObject(root, "equalization", equalization_json(&r->equalization));
    cJSON_AddItemToObject(root, "bias_correction", bias_correction_json(&r->bias_correction));
    if (r->has_evaluation)
        cJSON_AddItemToObject(root, "evaluation", eval_json(&r->eval));
    else
        cJSON_AddNullToObject(root, "evaluation");
    if (r->has_speed_outlook) {
        cJSON *s = cJSON_AddObjectToObject(root, "speed_outlook");
        cJSON_AddBoolToObject(s, "faster_expected", r->faster_expected);
        cJSON_AddStringToObject(s, "why", r->why);
    } else {
        cJSON_AddNullToObject(root, "speed_outlook");
    }
    cJSON *sens = r->sensitivity ? oq_sensitivity_cjson(r->sensitivity) : NULL;
    if (sens)
        cJSON_AddItemToObject(root, "sensitivity", sens);
    else
        cJSON_AddNullToObject(root, "sensitivity");
    if (r->mixed_precision)
        cJSON_AddItemToObject(root, "mixed_precision", mixed_json(r->mixed_precision));
    else
        cJSON_AddNullToObject(root, "mixed_precision");
    cJSON *t = cJSON_AddObjectToObject(root, "timings_s");
    cJSON_AddNumberToObject(t, "load", r->times.load);
    cJSON_AddNumberToObject(t, "calibrate", r->times.calibrate);
    cJSON_AddNumberToObject(t, "rewrite", r->times.rewrite);
    cJSON_AddNumberToObject(t, "evaluate", r->times.evaluate);
    cJSON_AddNumberToObject(t, "save", r->times.save);
    cJSON_AddNumberToObject(t, "sensitivity", r->times.sensitivity);
    cJSON_AddNumberToObject(t, "search", r->times.search);
    cJSON_AddNumberToObject(t, "bias_correction", r->times.bias_correction);
    return root;
}

oq_status oq_report_json(const oq_report *r, uint8_t **buf, size_t *len, oq_err *err)
{
    return oq_json_print(report_json(r), "the report", buf, len, err);
}

/* ---- summary --------------------------------------------------------------------- */

/* "N -> M nodes: K what, ..." for every pass of r that did something; true when one did. */
static bool put_prepare(oq_text *t, const oq_prepare_result *r)
{
    oq_text_printf(t, "%d -> %d nodes", r->nodes_before, r->nodes_after);
    const char *sep = ": ";
    for (int k = 0; k < OQ_PREPARE_STAT_COUNT; k++)
        if (r->counts[k]) {
            oq_text_printf(t, "%s%d %s", sep, r->counts[k], oq_prepare_stats[k].label);
            sep = ", ";
        }
    return sep[0] == ',';
}

static void put_evaluation(oq_text *t, const oq_report *r)
{
    const oq_eval *e = &r->eval;
    for (int k = 0; k < e->n_outputs; k++) {
        const oq_output_metrics *m = &e->outputs[k];
        char note[160];
        const char *why = oq_output_metrics_note(m, note, sizeof note);
        oq_text_printf(t, "output '%s' over %lld samples: ", m->name, (long long)e->samples);
        if (m->compared) {
            oq_text_printf(t, "cosine %.5f, SQNR %.1f dB, max abs error %.4g", m->cosine, m->sqnr_db, m->max_abs_error);
            if (m->classifier && m->top1_total)
                oq_text_printf(t, ", top-1 agreement %.2f%%", 100.0 * m->top1_agree / m->top1_total);
        }
        oq_text_printf(t, "%s%s\n", why && m->compared ? "; " : "", why ? why : "");
    }
    if (r->has_speed_outlook)
        oq_text_printf(t, "%s: %s (per sample: %.3g M multiply-adds in %.0f integer ops, %.3g M elements converted)\n",
                       r->faster_expected ? "a runtime with 8-bit kernels should run this faster than float"
                                          : "expect no speed-up over float in a runtime",
                       r->why, e->int8_macs / 1e6, e->int8_nodes, e->converted / 1e6);
    if (e->labeled)
        oq_text_printf(t, "top-1 accuracy on %lld labeled samples: fp32 %.2f%%, quantized %.2f%%\n",
                       (long long)e->labeled, 100.0 * e->fp32_correct / e->labeled, 100.0 * e->q_correct / e->labeled);
}

/* "top-1 agreement 99.50%", "an accuracy drop of 0.40 points", "output SQNR 21.30 dB" */
static void put_metric(oq_text *t, oq_target_kind k, double v)
{
    if (k == OQ_TARGET_MAX_DROP)
        oq_text_printf(t, "an accuracy drop of %.2f points", v);
    else if (k == OQ_TARGET_MIN_AGREEMENT)
        oq_text_printf(t, "top-1 agreement %.2f%%", v);
    else
        oq_text_printf(t, "output SQNR %.2f dB", v);
}

static void put_target(oq_text *t, const oq_report *r)
{
    const oq_sensitivity *s = r->sensitivity;
    const oq_mixed *m = r->mixed_precision;
    if (s && s->n_nodes) {
        oq_text_printf(t, "most sensitive nodes (lowest output SQNR when quantized alone):");
        for (int rank = 1; rank <= 5 && rank <= s->n_nodes; rank++)
            for (int i = 0; i < s->n_nodes; i++)
                if (s->nodes[i].rank == rank)
                    oq_text_printf(t, "%s '%s' %.1f dB", rank > 1 ? "," : "", s->nodes[i].name, s->nodes[i].score_db);
        oq_text_printf(t, "\n");
    }
    if (!m)
        return;
    const oq_target *g = &m->target;
    oq_text_printf(t, "accuracy target %s %g%s",
                   g->kind == OQ_TARGET_MAX_DROP ? "accuracy drop <=" : g->kind == OQ_TARGET_MIN_AGREEMENT ? "top-1 agreement >=" : "output SQNR >=",
                   g->value, g->kind == OQ_TARGET_MAX_DROP ? " points" : g->kind == OQ_TARGET_MIN_AGREEMENT ? "%" : " dB");
    if (g->output)
        oq_text_printf(t, " on output '%s'", g->output);
    oq_text_printf(t, ": ");
    if (!m->n_kept) {
        oq_text_printf(t, "met by the default plan, ");
        put_metric(t, g->kind, m->metric_before);
        oq_text_printf(t, "\n");
        return;
    }
    oq_text_printf(t, "kept %d of %d quantized nodes float (", m->n_kept, m->n_candidates);
    for (int i = 0; i < m->n_kept && i < 4; i++)
        oq_text_printf(t, "%s'%s'", i ? ", " : "", m->kept[i]);
    oq_text_printf(t, "%s), %.1f%% of the multiply-adds left in INT8; ", m->n_kept > 4 ? ", ..." : "",
                   m->total_macs > 0 ? 100.0 * m->int8_macs / m->total_macs : 0.0);
    put_metric(t, g->kind, m->metric_before);
    oq_text_printf(t, " -> ");
    put_metric(t, g->kind, m->metric_after);
    oq_text_printf(t, " (%d plans evaluated)\n", m->n_steps);
}

/* The op types of r's candidates, in --op-types order, joined by '/'
 * (Gather as "embedding"); "candidate" when there are none. */
static void put_candidate_types(oq_text *t, const oq_report *r)
{
    int shown = 0;
    for (int k = 0; k < OQ_QUANT_OP_TYPE_COUNT; k++) {
        bool present = false;
        for (int i = 0; i < r->n_nodes && !present; i++)
            present = !strcmp(r->nodes[i].op_type, oq_quant_op_types[k]);
        if (present)
            oq_text_printf(t, "%s%s", shown++ ? "/" : "",
                           strcmp(oq_quant_op_types[k], "Gather") ? oq_quant_op_types[k] : "embedding");
    }
    if (!shown)
        oq_text_printf(t, "candidate");
}

oq_status oq_report_summary(const oq_report *r, char **text, oq_err *err)
{
    oq_text t = {0};
    const oq_quant_options *o = &r->opts;
    const char *form = o->mode == OQ_MODE_DYNAMIC ? "dynamic" : o->format == OQ_FORMAT_QDQ ? "qdq" : "qoperator";
    oq_text_printf(&t, "quantized %d of %d ", r->n_quantized, r->n_nodes);
    put_candidate_types(&t, r);
    oq_text_printf(&t, " nodes (%s); weights %.2f MB -> %.2f MB (%.2fx)\n", form, r->fp32_bytes / 1e6,
                   r->quantized_bytes / 1e6,
                   r->quantized_bytes ? (double)r->fp32_bytes / (double)r->quantized_bytes : 0.0);
    if (r->has_prepare && r->prepare.nodes_after != r->prepare.nodes_before) {
        oq_text_printf(&t, "prepared the graph: ");
        put_prepare(&t, &r->prepare);
        oq_text_printf(&t, "\n");
    }
    if (r->n_contrib_ops)
        oq_text_printf(&t, "%d more float ops run in 8 bits as com.microsoft QLinear ops (QLinearAdd, ...)\n",
                       r->n_contrib_ops);
    if (r->n_folded_factors || r->n_fused_hard_swish)
        oq_text_printf(
            &t,
            "float ops between 8-bit ones: %d constant factors moved into (de)quantization scales, %d hard-swish "
            "patterns made HardSwish\n",
            r->n_folded_factors, r->n_fused_hard_swish);
    if (r->n_glue_ops) {
        oq_text_printf(&t, "float and 8-bit meet at %d QuantizeLinear and %d DequantizeLinear nodes, next to float ",
                       r->n_boundary_quantize, r->n_boundary_dequantize);
        for (int i = 0; i < r->n_glue_ops && i < 4; i++)
            oq_text_printf(&t, "%s%s x%d", i ? ", " : "", r->glue_ops[i].op_type, r->glue_ops[i].count);
        oq_text_printf(&t, "%s: each is one more pass over its tensor, which small models feel most\n",
                       r->n_glue_ops > 4 ? ", ..." : "");
    }
    const oq_equalization *eq = &r->equalization;
    if (eq->applied) {
        int64_t scaled = 0;
        double top = 1;
        for (int i = 0; i < eq->n_pairs; i++) {
            scaled += eq->pairs[i].scaled;
            top = fmax(top, eq->pairs[i].max_scale);
        }
        oq_text_printf(&t, "equalized %d Conv -> depthwise Conv pair%s: %lld channels scaled up to fill their tensor's range "
                "(at most %.3gx)\n",
            eq->n_pairs, eq->n_pairs == 1 ? "" : "s", (long long)scaled, top);
    } else if (eq->requested && eq->why_not && eq->candidates) {
        oq_text_printf(&t, "no equalization: %s\n", eq->why_not);
    }
    const oq_bias_correction *bc = &r->bias_correction;
    if (bc->applied)
        oq_text_printf(&t, "bias correction: %d nodes (%lld channels) measured on %lld calibration samples, biases moved by %.3g "
                "output steps on average%s\n",
            bc->nodes, (long long)bc->channels, (long long)bc->samples, bc->mean_abs_shift,
            bc->nodes_without_bias ? "; some quantized nodes have no bias to correct" : "");
    else if (bc->requested && bc->why_not)
        oq_text_printf(&t, "bias correction not applied: %s\n", bc->why_not);
    if (r->output_opset != r->opset)
        oq_text_printf(&t,
                       "raised the model's opset from %lld to %lld (nodes whose definitions changed were rewritten)\n",
                       (long long)r->opset, (long long)r->output_opset);
    int left_float = 0;
    for (int i = 0; i < r->n_nodes; i++)
        if (!r->nodes[i].quantized && left_float++ < LEFT_FLOAT_SHOWN)
            oq_text_printf(&t, "  left float: '%s' (%s): %s\n", r->nodes[i].name, r->nodes[i].op_type,
                           r->nodes[i].reason);
    if (left_float > LEFT_FLOAT_SHOWN)
        oq_text_printf(&t, "  left float: %d more (--report writes every node with its reason)\n",
                       left_float - LEFT_FLOAT_SHOWN);
    if (r->has_evaluation)
        put_evaluation(&t, r);
    else
        oq_text_printf(&t, "no evaluation: no samples to run (give --eval-data to measure accuracy)\n");
    put_target(&t, r);
    return oq_text_finish(&t, text, NULL, err);
}

/* ---- the report of `onnxq prepare` ------------------------------------------------ */

oq_status oq_prepare_report_json(const oq_prepare_report *r, uint8_t **buf, size_t *len, oq_err *err)
{
    cJSON *root = cJSON_CreateObject(), *x;
    if (root) {
        x = cJSON_AddObjectToObject(root, "tool");
        cJSON_AddStringToObject(x, "name", "onnxq");
        cJSON_AddStringToObject(x, "version", r->tool_version ? r->tool_version : "");
        x = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(x, "path", r->model_path);
        cJSON_AddStringToObject(x, "output", r->output_path);
        cJSON_AddNumberToObject(x, "ir_version_before", (double)r->ir_before);
        cJSON_AddNumberToObject(x, "ir_version_after", (double)r->ir_after);
        x = cJSON_AddObjectToObject(root, "nodes");
        cJSON_AddNumberToObject(x, "before", r->result->nodes_before);
        cJSON_AddNumberToObject(x, "after", r->result->nodes_after);
        x = cJSON_AddObjectToObject(root, "constant_bytes");
        cJSON_AddNumberToObject(x, "before", (double)r->bytes_before);
        cJSON_AddNumberToObject(x, "after", (double)r->bytes_after);
        x = cJSON_AddObjectToObject(root, "passes");
        for (int k = 0; k < OQ_PREPARE_STAT_COUNT; k++)
            cJSON_AddNumberToObject(x, oq_prepare_stats[k].key, r->result->counts[k]);
    }
    return oq_json_print(root, "the report", buf, len, err);
}

oq_status oq_prepare_report_summary(const oq_prepare_report *r, char **text, oq_err *err)
{
    oq_text t = {0};
    oq_text_printf(&t, "prepare: ");
    bool changed = put_prepare(&t, r->result);
    if (r->result->ir_raised)
        oq_text_printf(&t, "%sIR version %lld -> %lld", changed ? ", " : ": ", (long long)r->ir_before,
                       (long long)r->ir_after);
    else if (!changed)
        oq_text_printf(&t, ": nothing to change");
    oq_text_printf(&t, "\n");
    return oq_text_finish(&t, text, NULL, err);
}
