/* compare_report.c: the JSON report of `onnxq compare` (see oq_compare.h and
 * the README's schema). */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "onnxq/oq_compare.h"
#include "onnxq/oq_file.h"

/* JSON has no infinities or NaN: those become null. */
static void add_number(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *model_json(const char *path, const char *sha256)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", path);
    cJSON_AddStringToObject(j, "sha256", sha256);
    return j;
}

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
    add_number(j, "sqnr_db", t->sqnr_db);
    add_number(j, "cosine", t->cosine);
    add_number(j, "max_abs_error", t->max_abs_error);
    add_number(j, "drop_db", t->drop_db);
    return j;
}

static cJSON *output_json(const oq_compare_output *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", o->name);
    add_number(j, "sqnr_db", o->sqnr_db);
    add_number(j, "cosine", o->cosine);
    add_number(j, "max_abs_error", o->max_abs_error);
    if (o->classifier)
        add_number(j, "top1_agreement", o->top1_total ? (double)o->top1_agree / (double)o->top1_total : NAN);
    else
        cJSON_AddNullToObject(j, "top1_agreement");
    return j;
}

oq_status oq_compare_write_json(const oq_compare_result *r, const oq_compare_report_info *info, const char *path,
                                oq_err *err)
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
