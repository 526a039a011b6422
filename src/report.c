/* report.c: the JSON accuracy/size report (see oq_report.h and the README). */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "onnxq/oq_file.h"
#include "onnxq/oq_report.h"

/* JSON has no infinities or NaN: those become null. */
static void add_number(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *options_json(const oq_report_input *in)
{
    const oq_quant_options *o = in->opts;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", o->mode == OQ_MODE_DYNAMIC ? "dynamic" : "static");
    cJSON_AddStringToObject(j, "format", o->format == OQ_FORMAT_QDQ ? "qdq" : "qoperator");
    cJSON_AddBoolToObject(j, "contrib", o->contrib);
    cJSON_AddBoolToObject(j, "per_channel", o->per_channel);
    cJSON_AddStringToObject(j, "activation_type", o->act_qmin < 0 ? "int8" : "uint8");
    cJSON_AddBoolToObject(j, "symmetric_activations", o->symmetric_activations);
    cJSON *ops = cJSON_AddArrayToObject(j, "op_types");
    static const char *const defaults[] = {"Conv", "MatMul", "Gemm"};
    int n = o->n_op_types ? o->n_op_types : 3;
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(ops, cJSON_CreateString(o->n_op_types ? o->op_types[i] : defaults[i]));
    cJSON *ex = cJSON_AddArrayToObject(j, "exclude");
    for (int i = 0; i < o->n_exclude; i++)
        cJSON_AddItemToArray(ex, cJSON_CreateString(o->exclude[i]));
    return j;
}

/* Bytes of every constant of g, and a per-initializer list. */
static cJSON *size_json(const oq_report_input *in)
{
    int64_t nt, ne, fp32_bytes, q_bytes;
    oq_graph_param_stats(in->fp32->graph, &nt, &ne, &fp32_bytes);
    oq_graph_param_stats(in->quant->graph, &nt, &ne, &q_bytes);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "fp32_bytes", (double)fp32_bytes);
    cJSON_AddNumberToObject(j, "quantized_bytes", (double)q_bytes);
    add_number(j, "ratio", q_bytes ? (double)fp32_bytes / (double)q_bytes : NAN);
    cJSON *list = cJSON_AddArrayToObject(j, "initializers");
    const oq_graph *g = in->quant->graph;
    for (int i = 0; i < g->n_values; i++) {
        const oq_value *v = g->values[i];
        if (!v->constant)
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", v->name);
        cJSON_AddStringToObject(e, "dtype", oq_dtype_name(v->constant->dtype));
        cJSON_AddNumberToObject(e, "bytes", (double)oq_dtype_storage(v->constant->dtype, oq_tensor_numel(v->constant)));
        cJSON_AddItemToArray(list, e);
    }
    return j;
}

static cJSON *nodes_json(const oq_report_input *in)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < in->result->n_nodes; i++) {
        const oq_quant_node *q = &in->result->nodes[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", q->name);
        cJSON_AddStringToObject(e, "op", q->op_type);
        cJSON_AddBoolToObject(e, "quantized", q->quantized);
        if (!q->quantized) {
            cJSON_AddStringToObject(e, "reason", q->reason ? q->reason : "");
        } else {
            cJSON *s = cJSON_AddObjectToObject(e, "weight_scales");
            cJSON_AddNumberToObject(s, "count", q->n_scales);
            cJSON_AddNumberToObject(s, "min", q->scale_min);
            cJSON_AddNumberToObject(s, "max", q->scale_max);
            add_number(e, "weight_sqnr_db", q->weight_sqnr_db);
            if (in->eval)
                add_number(e, "output_sqnr_db", in->eval->node_sqnr_db[i]);
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
        add_number(o, "cosine", m->cosine);
        add_number(o, "sqnr_db", m->sqnr_db);
        add_number(o, "max_abs_error", m->max_abs_error);
        if (m->classifier)
            add_number(o, "top1_agreement", m->top1_total ? (double)m->top1_agree / (double)m->top1_total : NAN);
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

oq_status oq_report_write(const oq_report_input *in, const char *path, oq_err *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    cJSON *tool = cJSON_AddObjectToObject(root, "tool");
    cJSON_AddStringToObject(tool, "name", "onnxq");
    cJSON_AddStringToObject(tool, "version", in->version);
    cJSON_AddItemToObject(root, "options", options_json(in));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "path", in->model_path);
    cJSON_AddStringToObject(model, "sha256", in->model_sha256);
    cJSON_AddStringToObject(model, "output", in->output_path);
    cJSON_AddNumberToObject(model, "opset", (double)in->result->opset_from);
    cJSON_AddNumberToObject(model, "output_opset", (double)in->result->opset_to);
    if (in->table) {
        cJSON *c = cJSON_AddObjectToObject(root, "calibration");
        cJSON_AddStringToObject(c, "method", oq_calib_method_name(in->table->range.method));
        cJSON_AddNumberToObject(c, "samples", (double)in->table->samples);
        cJSON_AddStringToObject(c, "data_sha256", in->table->data_sha256);
        cJSON_AddStringToObject(c, "model_sha256", in->table->model_sha256);
    }
    cJSON_AddItemToObject(root, "size", size_json(in));
    int quantized = 0;
    for (int i = 0; i < in->result->n_nodes; i++)
        quantized += in->result->nodes[i].quantized;
    cJSON *counts = cJSON_AddObjectToObject(root, "node_counts");
    cJSON_AddNumberToObject(counts, "candidates", in->result->n_nodes);
    cJSON_AddNumberToObject(counts, "quantized", quantized);
    cJSON_AddNumberToObject(counts, "folded_batchnorm", in->result->n_folded_bn);
    cJSON_AddNumberToObject(counts, "folded_factors", in->result->n_folded_factors);
    cJSON_AddNumberToObject(counts, "fused_hard_swish", in->result->n_fused_hard_swish);
    cJSON_AddNumberToObject(counts, "contrib_ops", in->result->n_contrib_ops);
    cJSON_AddNumberToObject(counts, "contrib_no_range", in->result->n_contrib_no_range);
    if (in->opts->mode == OQ_MODE_STATIC && in->opts->format == OQ_FORMAT_QOPERATOR) {
        cJSON *b = cJSON_AddObjectToObject(root, "boundaries");
        cJSON_AddNumberToObject(b, "quantize_linear", in->result->n_boundary_quantize);
        cJSON_AddNumberToObject(b, "dequantize_linear", in->result->n_boundary_dequantize);
        cJSON *ops = cJSON_AddObjectToObject(b, "float_ops");
        for (int i = 0; i < in->result->n_glue_ops; i++)
            cJSON_AddNumberToObject(ops, in->result->glue_ops[i].op_type, in->result->glue_ops[i].count);
    } else {
        cJSON_AddNullToObject(root, "boundaries");
    }
    cJSON_AddItemToObject(root, "nodes", nodes_json(in));
    if (in->eval)
        cJSON_AddItemToObject(root, "evaluation", eval_json(in->eval));
    else
        cJSON_AddNullToObject(root, "evaluation");
    if (in->eval && in->opts->mode == OQ_MODE_STATIC && in->opts->format == OQ_FORMAT_QOPERATOR) {
        const char *why;
        cJSON *s = cJSON_AddObjectToObject(root, "speed_outlook");
        cJSON_AddBoolToObject(s, "faster_expected", oq_eval_speedup_expected(in->eval, &why));
        cJSON_AddStringToObject(s, "why", why);
    } else {
        cJSON_AddNullToObject(root, "speed_outlook");
    }
    cJSON *t = cJSON_AddObjectToObject(root, "timings_s");
    cJSON_AddNumberToObject(t, "load", in->t_load);
    cJSON_AddNumberToObject(t, "calibrate", in->t_calibrate);
    cJSON_AddNumberToObject(t, "rewrite", in->t_rewrite);
    cJSON_AddNumberToObject(t, "evaluate", in->t_evaluate);
    cJSON_AddNumberToObject(t, "save", in->t_save);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return oq_errf(err, OQ_ENOMEM, "out of memory writing the report");
    size_t len = strlen(text);
    text[len] = '\n';
    oq_status st = oq_write_file_atomic(path, (const uint8_t *)text, len + 1, err);
    cJSON_free(text);
    return st;
}
