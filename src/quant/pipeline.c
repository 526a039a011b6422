/* pipeline.c: a quantization run from job to committed files (see
 * oq_pipeline.h): load once -> prepare a copy -> calibrate (or read the
 * table) -> plan -> rewrite -> evaluate -> report -> commit, all or nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_onnx_io.h"
#include "onnxq/oq_pipeline.h"
#include "onnxq/oq_prepare.h"
#include "quant/correct.h"
#include "quant/match.h"

struct oq_pipeline {
    oq_job job;
    oq_quant_options quant;  /* the job's, with the table's activation range */
    oq_model *model;         /* float, as loaded and graph-prepared: calibrated and evaluated, changed after only
                                by equalization (the same function) */
    char sha256[65];         /* of the model file */
    int64_t file_param_bytes; /* constants of the model as loaded, before preparation */
    bool graph_prepared;
    oq_prepare_result graph_prep;
    oq_model *prepared;      /* a copy after oq_quant_prepare: what plans are made on */
    oq_quant_prep prep;
    oq_calib_table *table;
    oq_bias_reference *bias_ref; /* bias correction's float side, made at the first rewrite that needs it */
    bool equalized;          /* equalization ran (on model, and on prepared if it existed) */
    oq_equalization equalization;
    int n_warnings;
    char **warnings;
    oq_report_times times;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- options ---------------------------------------------------------------------- */

oq_range_request oq_range_request_default(void)
{
    return (oq_range_request){.range = {OQ_CALIB_PERCENTILE, 99.999, false, 0, 255}};
}

bool oq_range_request_apply(const oq_range_request *req, oq_range_options *range)
{
    if (req->act_type_given) {
        range->qmin = req->range.qmin;
        range->qmax = req->range.qmax;
    }
    if (req->symmetric_given)
        range->symmetric = req->range.symmetric;
    if (req->method_given)
        range->method = req->range.method;
    else if (req->percentile_given)
        range->method = OQ_CALIB_PERCENTILE;
    if (req->percentile_given)
        range->percentile = req->range.percentile;
    return req->act_type_given || req->symmetric_given || req->method_given || req->percentile_given;
}

oq_job oq_job_default(void)
{
    oq_job j = {0};
    j.pre = oq_preprocess_default();
    j.bins = 2048;
    j.range = oq_range_request_default();
    j.quant.mode = OQ_MODE_STATIC;
    j.quant.format = OQ_FORMAT_QOPERATOR;
    j.quant.per_channel = true;
    j.quant.act_qmax = 255;
    return j;
}

/* ---- warnings --------------------------------------------------------------------- */

static oq_status warn(oq_pipeline *p, oq_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static oq_status warn(oq_pipeline *p, oq_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *line = n >= 0 ? malloc((size_t)n + 1) : NULL;
    char **grown = line ? realloc(p->warnings, (size_t)(p->n_warnings + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(line);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    va_start(ap, fmt);
    vsnprintf(line, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->warnings = grown;
    p->warnings[p->n_warnings++] = line;
    return OQ_OK;
}

/* Names (up to five) the tensors that had NaN or infinite values. */
static oq_status warn_nonfinite(oq_pipeline *p, const oq_calib_table *t, oq_err *err)
{
    int n = 0;
    for (int i = 0; i < t->n_entries; i++)
        n += t->entries[i].hist.nonfinite > 0;
    if (!n)
        return OQ_OK;
    char names[1024] = "";
    size_t used = 0;
    for (int i = 0, shown = 0; i < t->n_entries && shown < 5; i++) {
        if (t->entries[i].hist.nonfinite > 0 && used < sizeof names) {
            used += (size_t)snprintf(names + used, sizeof names - used, "%s '%s' (%.0f)", shown ? "," : "",
                                     t->entries[i].name, t->entries[i].hist.nonfinite);
            shown++;
        }
    }
    return warn(p, err, "%d tensor%s had NaN or infinite values (left out of the ranges):%s%s", n, n == 1 ? "" : "s",
                names, n > 5 ? ", ..." : "");
}

/* ---- stages ------------------------------------------------------------------------- */

/* Fails when output would replace input (see oq_same_file). */
static oq_status refuse_overwrite(const char *output, const char *input, oq_err *err)
{
    if (output && input && oq_same_file(output, input))
        return oq_errf(err, OQ_EINVAL, "output %s is the input %s; choose another output path", output, input);
    return OQ_OK;
}

/* Fails on options that contradict each other (see oq_pipeline_create). */
static oq_status check_options(const oq_job *j, oq_err *err)
{
    const oq_quant_options *q = &j->quant;
    const oq_range_request *r = &j->range;
    bool dynamic = q->mode == OQ_MODE_DYNAMIC;
    bool data = j->n_data || j->data_samples, eval = j->n_eval || j->eval_data_samples;
    if ((j->n_data && j->data_samples) || (j->n_eval && j->eval_data_samples))
        return oq_errf(err, OQ_EINVAL, "samples given both as data specs and held in memory; give one of them");
    if (dynamic && j->table_path)
        return oq_errf(err, OQ_EINVAL, "a calibration table does not apply to dynamic mode (nothing is calibrated)");
    if (dynamic && (r->method_given || r->percentile_given || r->act_type_given || r->symmetric_given))
        return oq_errf(err, OQ_EINVAL,
                       "activation range options do not apply to dynamic mode "
                       "(DynamicQuantizeLinear picks uint8 ranges at run time)");
    if (q->contrib && (dynamic || q->format != OQ_FORMAT_QOPERATOR))
        return oq_errf(err, OQ_EINVAL, "contrib applies to the qoperator format in static mode");
    if (!dynamic && j->output_path && !j->table_path && !data)
        return oq_errf(err, OQ_EINVAL, "static mode needs calibration samples or a calibration table");
    if (j->labels_path && !eval && !data)
        return oq_errf(err, OQ_EINVAL, "labels need evaluation samples");
    return OQ_OK;
}

/* OUTPUT.data, where the model written to output keeps external data (malloc'ed; NULL when out of memory). */
static char *data_file_of(const char *output)
{
    size_t n = strlen(output) + sizeof ".data";
    char *data = malloc(n);
    if (data)
        snprintf(data, n, "%s.data", output);
    return data;
}

/* Fails when output would change the samples of a data spec (its file, or a
 * file in its folder). */
static oq_status refuse_data_overwrite(const char *output, const char *spec, oq_err *err)
{
    if (output && oq_data_spec_holds(spec, output))
        return oq_errf(err, OQ_EINVAL, "output %s would change the samples of %s; choose another output path", output,
                       spec);
    return OQ_OK;
}

/* Fails when an output of the job would replace one of its inputs (model,
 * table, labels, sensitivity file, samples) or another output; the model's
 * external data file OUTPUT.data counts as an output. */
static oq_status refuse_overwrites(const oq_job *job, oq_err *err)
{
    char *sidecar = job->output_path ? data_file_of(job->output_path) : NULL;
    if (job->output_path && !sidecar)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    const char *outputs[5] = {job->output_path, job->report_path, job->html_path, job->table_output, sidecar};
    const char *inputs[4] = {job->model_path, job->table_path, job->labels_path, job->sensitivity_path};
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < 5; i++) {
        for (int k = 0; !st && k < 4; k++)
            st = refuse_overwrite(outputs[i], inputs[k], err);
        for (int k = 0; !st && k < i; k++)
            if (outputs[i] && outputs[k] && oq_same_file(outputs[i], outputs[k]))
                st = oq_errf(err, OQ_EINVAL, "two outputs would be written to %s%s; choose another path for one",
                             outputs[k], i == 4 ? " (the other is the model's external data file)" : "");
        for (int k = 0; !st && k < job->n_data; k++)
            st = refuse_data_overwrite(outputs[i], job->data[k], err);
        for (int k = 0; !st && k < job->n_eval; k++)
            st = refuse_data_overwrite(outputs[i], job->eval_data[k], err);
    }
    free(sidecar);
    return st;
}

oq_status oq_pipeline_create(oq_pipeline **out, const oq_job *job, oq_err *err)
{
    *out = NULL;
    oq_status st = check_options(job, err);
    if (!st)
        st = refuse_overwrites(job, err);
    if (st)
        return st;
    oq_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    p->job = *job;
    p->quant = job->quant;
    p->quant.act_qmin = job->range.range.qmin;
    p->quant.act_qmax = job->range.range.qmax;
    p->quant.symmetric_activations = job->range.range.symmetric;
    *out = p;
    return OQ_OK;
}

void oq_pipeline_destroy(oq_pipeline *p)
{
    if (!p)
        return;
    oq_model_destroy(p->model);
    oq_model_destroy(p->prepared);
    oq_calib_table_destroy(p->table);
    oq_bias_reference_destroy(p->bias_ref);
    oq_equalization_release(&p->equalization);
    for (int i = 0; i < p->n_warnings; i++)
        free(p->warnings[i]);
    free(p->warnings);
    free(p);
}

/* Reads the job's table and checks it belongs to the loaded model file. */
static oq_status read_table(oq_pipeline *p, oq_err *err)
{
    const char *path = p->job.table_path;
    oq_status st = oq_calib_table_load(&p->table, path, err);
    if (st)
        return st;
    if (strcmp(p->table->model_sha256, p->sha256) != 0)
        return oq_errf(err, OQ_EINVAL, "%s was made for a different model (sha256 %.12s..., %s has %.12s...)", path,
                       p->table->model_sha256, p->job.model_path, p->sha256);
    if (p->table->prepared && p->job.no_prepare)
        return oq_errf(err, OQ_EINVAL, "%s was calibrated on the prepared model: leave out --no-prepare", path);
    return OQ_OK;
}

static bool has_node(const oq_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->name, name))
            return true;
    return false;
}

/* Fails when --exclude names a node that neither the model (as prepared:
 * nodes without a name have one now) nor the graph the plan reads has; a
 * typo would otherwise quantize the node silently. */
static oq_status check_excluded(const oq_pipeline *p, oq_err *err)
{
    for (int k = 0; k < p->job.quant.n_exclude; k++) {
        const char *name = p->job.quant.exclude[k];
        if (!has_node(p->model->graph, name) && !has_node(p->prepared->graph, name))
            return oq_errf(err, OQ_EINVAL,
                           "--exclude: %s has no node named '%s' (a report's \"nodes\" list the candidates' names)",
                           p->job.model_path, name);
    }
    return OQ_OK;
}

/* Fails when --target-output names no graph output. */
static oq_status check_target_output(const oq_pipeline *p, oq_err *err)
{
    const oq_graph *g = p->model->graph;
    const char *out = p->job.target.output;
    if (out && !oq_is_graph_output(g, oq_graph_find(g, out)))
        return oq_errf(err, OQ_EINVAL, "--target-output: %s has no graph output named '%s'", p->job.model_path, out);
    return OQ_OK;
}

oq_status oq_pipeline_load(oq_pipeline *p, oq_err *err)
{
    double t = now_s();
    int64_t n_tensors, n_elements;
    oq_status st = oq_model_load_hashed(&p->model, p->job.model_path, p->sha256, err);
    if (!st)
        st = check_target_output(p, err);
    if (!st && p->job.table_path && p->job.quant.mode == OQ_MODE_STATIC)
        st = read_table(p, err);
    if (!st) {
        oq_graph_param_stats(p->model->graph, &n_tensors, &n_elements, &p->file_param_bytes);
        /* a table decides: its value names are those of the graph it was made on */
        p->graph_prepared = p->table ? p->table->prepared : !p->job.no_prepare;
    }
    if (!st && p->graph_prepared)
        st = oq_prepare_model(p->model, NULL, &p->graph_prep, err);
    p->times.load += now_s() - t;
    return st;
}

oq_status oq_pipeline_prepare(oq_pipeline *p, oq_err *err)
{
    double t = now_s();
    oq_model_destroy(p->prepared);
    p->prepared = NULL;
    oq_status st = oq_model_clone(&p->prepared, p->model, err);
    if (!st)
        st = oq_quant_prepare(p->prepared, &p->prep, err);
    if (!st)
        st = check_excluded(p, err);
    p->times.rewrite += now_s() - t;
    return st;
}

/* By value id of the float model: the activations a plan without a table
 * reads ranges of (found by name; values made by the preparation have none);
 * *weights_only: whether the plan quantizes weights that need no range
 * (embeddings, ConvTranspose outside QDQ, LSTM/GRU/RNN). */
static oq_status planned_needs(oq_pipeline *p, bool **out, bool *weights_only, oq_err *err)
{
    const oq_graph *g = p->model->graph;
    oq_plan *plan;
    if (!p->prepared)
        return oq_errf(err, OQ_EINVAL, "the model was not prepared for planning");
    oq_status st = oq_plan_create(&plan, p->prepared->graph, &p->quant, NULL, 0, NULL, err);
    if (st)
        return st;
    bool *want = calloc((size_t)g->n_values + 1, sizeof *want);
    if (!want) {
        oq_plan_destroy(plan);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (int i = 0; i < plan->n_values; i++) {
        const oq_value *v = plan->values[i].needs_range ? oq_graph_find_local(g, plan->graph->values[i]->name) : NULL;
        if (v)
            want[v->id] = true;
    }
    *weights_only = false;
    for (int i = 0; i < plan->n_nodes; i++)
        *weights_only |= plan->nodes[i].action == OQ_ACTION_EMBEDDING || plan->nodes[i].action == OQ_ACTION_WEIGHT_ONLY;
    oq_plan_destroy(plan);
    *out = want;
    return OQ_OK;
}

bool oq_pipeline_has_samples(const oq_pipeline *p, bool eval)
{
    const oq_job *j = &p->job;
    return j->n_data || j->data_samples || (eval && (j->n_eval || j->eval_data_samples));
}

oq_status oq_pipeline_open_samples(const oq_pipeline *p, const oq_model *m, bool eval, oq_dataset **ds, oq_err *err)
{
    const oq_job *j = &p->job;
    bool own = j->n_eval || j->eval_data_samples;
    int n_specs = eval && own ? j->n_eval : j->n_data;
    const char *const *specs = eval && own ? j->eval_data : j->data;
    const oq_samples *held = eval && own ? j->eval_data_samples : j->data_samples;
    *ds = NULL;
    if (held)
        return oq_dataset_open_samples_for_model(ds, m, held, err);
    return oq_dataset_open_for_model(ds, m, n_specs, specs, &j->pre, j->layout_given, j->resize_given, err);
}

static oq_status calibrate_on_data(oq_pipeline *p, oq_err *err)
{
    const oq_job *j = &p->job;
    bool *want = NULL, *channels = NULL, weights_only = false;
    oq_dataset *ds = NULL;
    oq_status st = j->all_tensors ? OQ_OK : planned_needs(p, &want, &weights_only, err);
    if (!st)
        st = oq_equalize_candidates(p->model->graph, &p->quant, &channels, err);
    if (!st)
        st = oq_pipeline_open_samples(p, p->model, false, &ds, err);
    oq_calib_options opts = {.bins = j->bins, .range = j->range.range, .max_samples = j->max_samples,
                             .threads = j->threads, .observe = want, .channels = channels, .progress = j->progress,
                             .progress_user = j->progress_user};
    if (!st)
        st = oq_calibrate(p->model, ds, &opts, &p->table, err);
    free(want);
    free(channels);
    oq_dataset_destroy(ds);
    if (st)
        return st;
    memcpy(p->table->model_sha256, p->sha256, sizeof p->sha256);
    p->table->prepared = p->graph_prepared;
    if (!p->table->n_entries && !j->all_tensors && !weights_only &&
        (st = warn(p, err, "nothing in the model is quantized (no node of --op-types reads a float activation), so "
                           "no tensor was recorded; --all-tensors records every one")))
        return st;
    return warn_nonfinite(p, p->table, err);
}


/* Equalizes the float model and the prepared copy (if made) by the table's
 * scales, once; a copy prepared later inherits it from the float model. */
static oq_status equalize_models(oq_pipeline *p, oq_err *err)
{
    oq_equalization again = {0};
    oq_status st = oq_equalize(p->model, &p->quant, p->table, &p->equalization, err);
    if (!st && p->prepared)
        st = oq_equalize(p->prepared, &p->quant, p->table, &again, err);
    oq_equalization_release(&again);
    p->equalized = true;
    return st;
}

oq_status oq_pipeline_calibrate(oq_pipeline *p, oq_err *err)
{
    if (p->quant.mode == OQ_MODE_DYNAMIC) { /* DynamicQuantizeLinear: uint8 asymmetric at run time */
        p->quant.act_qmin = 0;
        p->quant.act_qmax = 255;
        p->quant.symmetric_activations = false;
        p->equalization.requested = p->job.equalization;
        p->equalization.why_not = p->job.equalization ? "dynamic mode has no calibrated ranges" : NULL;
        return OQ_OK;
    }
    double t = now_s();
    oq_status st;
    if (p->job.table_path) { /* options given here re-choose the ranges from the table's histograms */
        oq_range_request_apply(&p->job.range, &p->table->range);
        st = oq_calib_table_compute_ranges(p->table, err);
    } else {
        oq_calib_table_destroy(p->table);
        p->table = NULL;
        st = calibrate_on_data(p, err);
    }
    if (!st) {
        p->quant.act_qmin = p->table->range.qmin;
        p->quant.act_qmax = p->table->range.qmax;
        p->quant.symmetric_activations = p->table->range.symmetric;
    }
    if (!st && p->job.equalization && !p->equalized)
        st = equalize_models(p, err);
    p->times.calibrate += now_s() - t;
    return st;
}

oq_status oq_pipeline_plan(oq_pipeline *p, int n_overrides, const oq_plan_override *overrides, oq_plan **out,
                           oq_err *err)
{
    *out = NULL;
    if (!p->prepared)
        return oq_errf(err, OQ_EINVAL, "the model was not prepared for planning");
    double t = now_s();
    oq_status st = oq_plan_create(out, p->prepared->graph, &p->quant, p->table, n_overrides, overrides, err);
    p->times.rewrite += now_s() - t;
    return st;
}

void oq_quantized_destroy(oq_quantized *q)
{
    if (!q)
        return;
    free(q->bytes);
    oq_model_destroy(q->model);
    oq_quant_result_release(&q->result);
    free(q);
}

/* Whether rewritten model m is written with external data (asked for, or
 * too long for protobuf inline), and so evaluated and saved as it is. */
static oq_status written_from_memory(const oq_pipeline *p, const oq_model *m, bool *yes, oq_err *err)
{
    size_t n;
    *yes = p->job.external_data;
    oq_status st = *yes ? OQ_OK : oq_model_serialized_size(m, &n, err);
    if (!st && !*yes)
        *yes = n > OQ_PROTOBUF_LIMIT;
    return st;
}

/* Whether rewrites correct biases, and if not, why (*why: static text, NULL when off). */
static bool bias_correction_runs(const oq_pipeline *p, const char **why)
{
    *why = NULL;
    if (!p->job.bias_correction)
        return false;
    if (!oq_pipeline_has_samples(p, false)) {
        *why = "no calibration samples to measure on";
        return false;
    }
    return true;
}

/* The calibration samples, for bias correction (caller destroys). */
static oq_status open_calibration_data(oq_pipeline *p, oq_dataset **ds, oq_err *err)
{
    return oq_pipeline_open_samples(p, p->model, false, ds, err);
}

/* Bias correction's float side: the prepared model's product outputs on the
 * calibration samples, measured once for every plan. */
static oq_status measure_float_side(oq_pipeline *p, oq_err *err)
{
    double t = now_s();
    oq_dataset *ds = NULL;
    oq_status st = open_calibration_data(p, &ds, err);
    if (!st)
        st = oq_bias_reference_create(&p->bias_ref, p->prepared, ds, p->job.max_samples, p->job.threads, err);
    oq_dataset_destroy(ds);
    p->times.bias_correction += now_s() - t;
    return st;
}

/* Bias correction of work, rewritten from the prepared model with sites. */
static oq_status correct_biases(oq_pipeline *p, oq_model *work, const oq_bias_sites *sites, oq_bias_correction *bc,
                                oq_err *err)
{
    if (!sites->n) {
        bc->why_not = "no node was quantized";
        return OQ_OK;
    }
    double t = now_s();
    oq_dataset *ds = NULL;
    oq_status st = open_calibration_data(p, &ds, err);
    if (!st)
        st = oq_bias_correct(work, sites, p->bias_ref, ds, p->job.threads, bc, err);
    oq_dataset_destroy(ds);
    p->times.bias_correction += now_s() - t;
    return st;
}

oq_status oq_pipeline_rewrite(oq_pipeline *p, const oq_plan *plan, bool last, oq_quantized **out, oq_err *err)
{
    *out = NULL;
    oq_quantized *q = calloc(1, sizeof *q);
    oq_model *work = NULL;
    oq_bias_sites sites = {0};
    oq_status st = q ? OQ_OK : oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!st && !p->prepared)
        st = oq_errf(err, OQ_EINVAL, "the model was not prepared for planning");
    bool correct = !st && bias_correction_runs(p, &q->bias_correction.why_not);
    if (q)
        q->bias_correction.requested = p->job.bias_correction;
    /* the float side reads the prepared model, which the last rewrite takes */
    if (correct && !p->bias_ref && (st = measure_float_side(p, err)))
        goto done;
    double t = now_s();
    if (!st && last) {
        work = p->prepared;
        p->prepared = NULL;
    } else if (!st) {
        st = oq_model_clone(&work, p->prepared, err);
    }
    if (!st)
        st = oq_quant_rewrite_sites(work, plan, &q->result, correct ? &sites : NULL, err);
    p->times.rewrite += now_s() - t;
    if (!st && correct)
        st = correct_biases(p, work, &sites, &q->bias_correction, err);
    t = now_s();
    bool in_memory = false;
    if (!st && !(st = written_from_memory(p, work, &in_memory, err)) && in_memory) {
        q->model = work;
        work = NULL;
    } else if (!st) {
        st = oq_model_serialize(work, &q->bytes, &q->n_bytes, err);
    }
    oq_model_destroy(work);
    p->times.rewrite += now_s() - t;
    if (in_memory)
        goto done;
    /* what will be written, loaded back: the model that is evaluated */
    t = now_s();
    char *dir = st ? NULL : oq_path_dir(p->job.output_path ? p->job.output_path : p->job.model_path);
    if (!st && !dir)
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!st)
        st = oq_model_load_buffer(&q->model, q->bytes, q->n_bytes, dir, err);
    free(dir);
    p->times.evaluate += now_s() - t;
done:
    oq_bias_sites_release(&sites);
    if (st) {
        oq_quantized_destroy(q);
        return st;
    }
    *out = q;
    return OQ_OK;
}

oq_status oq_pipeline_evaluate(oq_pipeline *p, const oq_quantized *q, oq_eval *out, bool *evaluated, oq_err *err)
{
    const oq_job *j = &p->job;
    memset(out, 0, sizeof *out);
    *evaluated = false;
    if (!oq_pipeline_has_samples(p, true))
        return OQ_OK;
    double t = now_s();
    int64_t *labels = NULL, n_labels = 0;
    oq_dataset *ds = NULL;
    oq_status st = j->labels_path ? oq_labels_read(j->labels_path, &labels, &n_labels, err) : OQ_OK;
    if (!st)
        st = oq_pipeline_open_samples(p, p->model, true, &ds, err);
    if (!st)
        st = oq_evaluate(p->model, q->model, &q->result, ds, j->eval_samples, labels, n_labels, j->threads, out, err);
    free(labels);
    oq_dataset_destroy(ds);
    p->times.evaluate += now_s() - t;
    *evaluated = !st;
    return st;
}

oq_status oq_pipeline_report(oq_pipeline *p, const oq_plan *plan, const oq_quantized *q, const oq_eval *eval,
                             oq_report **out, oq_err *err)
{
    oq_report_input in = {.tool_version = p->job.tool_version, .model_path = p->job.model_path,
                          .model_sha256 = p->sha256, .output_path = p->job.output_path, .opts = &plan->opts,
                          .table = p->table, .fp32 = p->model, .quant = q->model, .prep = &p->prep,
                          .graph_prep = p->graph_prepared ? &p->graph_prep : NULL, .fp32_bytes = p->file_param_bytes,
                          .plan = plan, .result = &q->result, .bias_correction = &q->bias_correction,
                          .equalization = &p->equalization,
                          .eval = eval, .times = p->times};
    return oq_report_build(out, &in, err);
}

/* Fails when OUTPUT.data, the external data file of an output written from
 * memory, names a file whose data a constant of the float model maps (the
 * input would be replaced). */
static oq_status refuse_input_data(const oq_pipeline *p, oq_err *err)
{
    const oq_graph *g = p->model->graph;
    char *data = data_file_of(p->job.output_path);
    if (!data)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < g->n_values; i++) {
        const oq_tensor *t = g->values[i]->constant;
        if (t && t->mapping && oq_mapping_of_file(t->mapping, data))
            st = oq_errf(err, OQ_EINVAL, "output %s would replace %s, which %s reads its weights from; choose another "
                                         "output path", p->job.output_path, data, p->job.model_path);
    }
    free(data);
    return st;
}

oq_status oq_pipeline_commit(oq_pipeline *p, const oq_quantized *q, oq_report *report, oq_err *err)
{
    const oq_job *j = &p->job;
    oq_commit *c;
    uint8_t *text = NULL;
    size_t len;
    oq_status st = oq_commit_create(&c, err);
    if (st)
        return st;
    if (q && j->output_path) {
        double t = now_s();
        if (q->bytes) {
            st = oq_commit_add(c, j->output_path, q->bytes, q->n_bytes, err);
        } else {
            oq_save_options so = {.external_threshold = j->external_data ? OQ_EXTERNAL_THRESHOLD : 0};
            if (!(st = refuse_input_data(p, err)))
                st = oq_model_save_commit(q->model, c, j->output_path, &so, err);
        }
        p->times.save += now_s() - t;
    }
    if (report)
        report->times.save = p->times.save;
    if (!st && report && j->report_path && !(st = oq_report_json(report, &text, &len, err)))
        st = oq_commit_add(c, j->report_path, text, len, err);
    free(text);
    text = NULL;
    if (!st && report && j->html_path && !(st = oq_report_html(report, &text, &len, err)))
        st = oq_commit_add(c, j->html_path, text, len, err);
    free(text);
    text = NULL;
    if (!st && p->table && j->table_output && !(st = oq_calib_table_serialize(p->table, &text, &len, err)))
        st = oq_commit_add(c, j->table_output, text, len, err);
    free(text);
    if (!st)
        st = oq_commit_finish(c, err);
    oq_commit_destroy(c);
    return st;
}

const oq_model *oq_pipeline_model(const oq_pipeline *p) { return p->model; }
const oq_model *oq_pipeline_prepared(const oq_pipeline *p) { return p->prepared; }
const oq_calib_table *oq_pipeline_table(const oq_pipeline *p) { return p->table; }

int oq_pipeline_warnings(const oq_pipeline *p, const char *const **lines)
{
    *lines = (const char *const *)p->warnings;
    return p->n_warnings;
}

const oq_job *oq_pipeline_job(const oq_pipeline *p) { return &p->job; }
const char *oq_pipeline_model_sha256(const oq_pipeline *p) { return p->sha256; }
bool oq_pipeline_graph_prepared(const oq_pipeline *p) { return p->graph_prepared; }

/* ---- the whole run -------------------------------------------------------------------- */

/* With an accuracy target: the search (oq_mixed.h) and the per-node
 * policies of what it chose, and the ranking it used. */
static oq_status search_target(oq_pipeline *p, oq_sensitivity **sens, oq_mixed **mixed, oq_plan_override **ov,
                               int *n_ov, oq_err *err)
{
    oq_status st = p->job.sensitivity_path ? oq_sensitivity_load(sens, p->job.sensitivity_path, err) : OQ_OK;
    if (!st)
        st = oq_mixed_search(p, &p->job.target, sens, p->job.threads, mixed, err);
    if (!st)
        st = oq_mixed_overrides(*mixed, ov, n_ov, err);
    return st;
}

/* Plan, rewrite, evaluate and report: what quantize and convert add to a calibration. */
static oq_status quantize(oq_pipeline *p, oq_quantized **q, oq_report **report, oq_err *err)
{
    oq_plan *plan = NULL;
    oq_eval eval;
    bool evaluated = false;
    oq_sensitivity *sens = NULL;
    oq_mixed *mixed = NULL;
    oq_plan_override *ov = NULL;
    int n_ov = 0;
    oq_status st = OQ_OK;
    if (p->job.target.kind != OQ_TARGET_NONE)
        st = search_target(p, &sens, &mixed, &ov, &n_ov, err);
    if (!st)
        st = oq_pipeline_plan(p, n_ov, ov, &plan, err);
    if (!st)
        st = oq_pipeline_rewrite(p, plan, true, q, err);
    if (!st && plan->n_contrib_no_range)
        st = warn(p, err,
                  "--contrib: %d nodes with 8-bit inputs stay float: %s has no range for their outputs (make it "
                  "with `onnxq calibrate --contrib`)",
                  plan->n_contrib_no_range, p->job.table_path ? p->job.table_path : "the calibration table");
    if (!st)
        st = oq_pipeline_evaluate(p, *q, &eval, &evaluated, err);
    if (!st)
        st = oq_pipeline_report(p, plan, *q, evaluated ? &eval : NULL, report, err);
    if (!st && mixed)
        st = oq_report_set_target(*report, sens, mixed, err);
    if (evaluated)
        oq_eval_release(&eval);
    oq_plan_destroy(plan);
    free(ov);
    oq_mixed_destroy(mixed);
    oq_sensitivity_destroy(sens);
    return st;
}

void oq_outcome_release(oq_outcome *o)
{
    if (!o)
        return;
    oq_report_destroy(o->report);
    oq_calib_table_destroy(o->table);
    oq_sensitivity_destroy(o->sensitivity);
    for (int i = 0; i < o->n_warnings; i++)
        free(o->warnings[i]);
    free(o->warnings);
    memset(o, 0, sizeof *o);
}

oq_status oq_job_run(const oq_job *job, oq_outcome *out, oq_err *err)
{
    double t0 = now_s();
    memset(out, 0, sizeof *out);
    oq_pipeline *p = NULL;
    oq_quantized *q = NULL;
    bool rewrite = job->output_path != NULL;
    oq_status st = oq_pipeline_create(&p, job, err);
    if (!st)
        st = oq_pipeline_load(p, err);
    /* a plan without a table tells a calibration on data what to record; the
     * rewrite works on the prepared copy */
    bool plan_first = job->quant.mode == OQ_MODE_STATIC && !job->table_path && !job->all_tensors;
    if (!st && plan_first)
        st = oq_pipeline_prepare(p, err);
    if (!st)
        st = oq_pipeline_calibrate(p, err);
    if (!st && rewrite && !plan_first)
        st = oq_pipeline_prepare(p, err);
    if (!st && rewrite)
        st = quantize(p, &q, &out->report, err);
    if (!st)
        st = oq_pipeline_commit(p, q, out->report, err);
    oq_quantized_destroy(q);
    if (p) {
        out->table = p->table;
        p->table = NULL;
        out->warnings = p->warnings;
        out->n_warnings = p->n_warnings;
        p->warnings = NULL;
        p->n_warnings = 0;
    }
    oq_pipeline_destroy(p);
    out->seconds = now_s() - t0;
    return st;
}
