/* oq_pipeline.h: a quantization run in the library: load the model once,
 * calibrate it (or read a table), plan, rewrite, evaluate and commit the
 * outputs, all or nothing. A command fills an oq_job and calls oq_job_run;
 * callers that need the steps one by one (to rewrite and evaluate many plans
 * of one model in one process) use an oq_pipeline, whose stages keep the
 * loaded model, the prepared graph, the table and the data between calls.
 * Nothing here prints: warnings come back as data. */
#ifndef ONNXQ_OQ_PIPELINE_H
#define ONNXQ_OQ_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_dataset.h"
#include "onnxq/oq_correct.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_image.h"
#include "onnxq/oq_mixed.h"
#include "onnxq/oq_plan.h"
#include "onnxq/oq_quant.h"
#include "onnxq/oq_report.h"

/* How activation ranges are chosen, and which of these options the user
 * gave. With a table, the options given re-choose every range from the
 * table's histograms; the others keep the table's (never compared with a
 * default). --percentile alone also selects the percentile method. */
typedef struct oq_range_request {
    oq_range_options range;      /* the values (defaults where not given) */
    bool method_given, percentile_given, act_type_given, symmetric_given;
} oq_range_request;

/* Defaults: percentile 99.999, asymmetric uint8, nothing given. */
oq_range_request oq_range_request_default(void);
/* Applies what req gives to *range (see oq_range_request); true when anything was given. */
bool oq_range_request_apply(const oq_range_request *req, oq_range_options *range);

typedef struct oq_job {
    const char *model_path;
    const char *output_path;   /* the quantized model; NULL: calibrate only (table_output) */
    bool external_data;        /* write the model's constants of OQ_EXTERNAL_THRESHOLD bytes or more to
                                  OUTPUT.data beside it whatever its size (a model over protobuf's 2 GB
                                  limit always is) */
    const char *report_path;   /* JSON report, or NULL */
    const char *html_path;     /* the report as an HTML page, or NULL */
    const char *table_output;  /* write the calibration table here, or NULL */
    const char *table_path;    /* static mode: ranges from this table instead of calibrating, or NULL */
    /* samples (spec forms in oq_dataset.h), borrowed; samples held in
     * memory (oq_samples) instead of specs when set */
    int n_data;                /* calibration */
    const char *const *data;
    const oq_samples *data_samples;
    int n_eval;                /* evaluation; none given: the calibration samples, if any */
    const char *const *eval_data;
    const oq_samples *eval_data_samples;
    int64_t eval_samples;      /* evaluate at most this many (0: all) */
    const char *labels_path;   /* one class per evaluation sample (oq_labels_read), or NULL */
    oq_preprocess pre;         /* image preprocessing; layout and size from the model unless given */
    bool layout_given, resize_given;
    /* calibration */
    int bins;
    int64_t max_samples;       /* 0: all */
    bool all_tensors;          /* record every float activation, not only what the plan reads */
    /* graph preparation (oq_prepare.h) of the float model before everything
     * else; with a table, the table says whether it was made on the prepared
     * model and no_prepare must agree with it */
    bool no_prepare;
    oq_range_request range;
    /* quantization: act_qmin, act_qmax and symmetric_activations are set
     * from the table's ranges; the lists are borrowed */
    oq_quant_options quant;
    /* corrections (oq_correct.h): bias correction on the calibration samples
     * (the `data` above; none: not applied), and cross-layer equalization
     * (static mode, per-channel weights; from the table's per-channel extremes) */
    bool bias_correction;
    bool equalization;
    int threads;               /* 0: all online cores; results do not depend on it */
    /* an accuracy target (oq_mixed.h): the most sensitive candidates stay
     * float until it holds on the evaluation samples; kind OQ_TARGET_NONE:
     * none. The ranking comes from sensitivity_path (an `onnxq analyze`
     * file or a report with a sensitivity section), or an analysis when NULL */
    oq_target target;
    const char *sensitivity_path;
    oq_progress_fn progress;   /* calibration progress, or NULL */
    void *progress_user;
    const char *tool_version;  /* for the report */
} oq_job;

/* A job with the defaults of the command line (2048 bins, percentile
 * 99.999, uint8, QOperator, per channel, identity preprocessing). */
oq_job oq_job_default(void);

/* What a run did (owned; oq_outcome_release). */
typedef struct oq_outcome {
    oq_report *report;         /* quantize/convert; NULL for a calibration only */
    oq_calib_table *table;     /* the table calibrated or read (owned), or NULL */
    oq_sensitivity *sensitivity; /* oq_job_analyze's result (owned), or NULL */
    int n_warnings;
    char **warnings;           /* one line each, without a prefix, in the order they arose */
    double seconds;            /* the whole run */
} oq_outcome;

void oq_outcome_release(oq_outcome *o);

/* Runs the job: the model and report (or the table) are written only when
 * everything succeeded, and then together; on failure nothing new exists and
 * files that existed are unchanged. An output path naming an input is
 * refused, and so are options that contradict each other (see
 * oq_pipeline_create). *out is filled also on failure (the warnings so far). */
oq_status oq_job_run(const oq_job *job, oq_outcome *out, oq_err *err);

/* ---- the stages ---------------------------------------------------------------- */

typedef struct oq_pipeline oq_pipeline;

/* A quantized model and what the rewrite did. Normally the serialized bytes
 * and the model loaded back from them (what is evaluated); a model that is
 * written with external data (over protobuf's 2 GB limit, or asked for) has
 * no bytes: the rewritten model itself is evaluated and then saved, so that
 * there is no second copy of it in memory. */
typedef struct oq_quantized {
    uint8_t *bytes;            /* NULL: written from `model` */
    size_t n_bytes;
    oq_model *model;
    oq_quant_result result;
    oq_bias_correction bias_correction; /* what the rewrite's bias correction did */
} oq_quantized;

void oq_quantized_destroy(oq_quantized *q);

/* Checks the job's paths (no output may name an input, no two outputs the
 * same file) and options (a table, --contrib or a range option given with
 * dynamic mode; --contrib outside the static QOperator format; a static
 * model to write with neither samples nor a table; labels without samples;
 * specs and in-memory samples for the same set), and keeps a copy of the
 * job; its strings and lists are borrowed and must outlive p. */
oq_status oq_pipeline_create(oq_pipeline **out, const oq_job *job, oq_err *err);
void oq_pipeline_destroy(oq_pipeline *p);
/* Reads the model file once (its SHA-256 and the model from the same
 * bytes) and the job's table if it names one (checked against the model),
 * then prepares the float model's graph (oq_prepare_model) unless the job
 * or the table says not to: that float model is what is calibrated,
 * planned on and evaluated against. */
oq_status oq_pipeline_load(oq_pipeline *p, oq_err *err);
/* Copies the model and prepares the copy for planning (oq_quant_prepare). */
oq_status oq_pipeline_prepare(oq_pipeline *p, oq_err *err);
/* Static mode: calibrates on the job's data, recording what a plan reads
 * (or every activation) and the per-channel extremes equalization needs, or
 * re-chooses the ranges of the table that load read as the job asks. Then the
 * quantization options take the table's activation range, and when the job
 * asks for equalization, the float model and the prepared copy (if made)
 * are equalized by the table's scales (once per pipeline): the same
 * function, with the quantized tensors between the pairs scaled per channel.
 * Needs prepare unless all_tensors or a table is given. Nothing to do in
 * dynamic mode. */
oq_status oq_pipeline_calibrate(oq_pipeline *p, oq_err *err);
/* A plan of the prepared graph with the table, the job's options and the
 * given per-node policies (caller destroys). */
oq_status oq_pipeline_plan(oq_pipeline *p, int n_overrides, const oq_plan_override *overrides, oq_plan **out,
                           oq_err *err);
/* Rewrites a copy of the prepared model by plan, corrects its biases when
 * the job asks for it (on the job's calibration samples; the float side is
 * measured at the first call and kept), serializes it and loads it back
 * (caller destroys *out); a model written with external data is kept as
 * rewritten instead (see oq_quantized). last: no other plan or rewrite
 * follows, so the prepared model itself is rewritten (one copy less; plans
 * made so far must not be used after). */
oq_status oq_pipeline_rewrite(oq_pipeline *p, const oq_plan *plan, bool last, oq_quantized **out, oq_err *err);
/* Evaluates q against the float model on the evaluation samples; *evaluated
 * is false (and *out empty) when the job has none. */
oq_status oq_pipeline_evaluate(oq_pipeline *p, const oq_quantized *q, oq_eval *out, bool *evaluated, oq_err *err);
/* The report of plan, q and eval (NULL: not evaluated); caller destroys. */
oq_status oq_pipeline_report(oq_pipeline *p, const oq_plan *plan, const oq_quantized *q, const oq_eval *eval,
                             oq_report **out, oq_err *err);
/* Writes q (may be NULL) to the output (with its external data beside it,
 * when it has some), report (may be NULL) to the report path and as HTML to
 * the html path, and the table to table_output when the job names one: all
 * or none. An external data file that would replace one the float model reads
 * is refused. */
oq_status oq_pipeline_commit(oq_pipeline *p, const oq_quantized *q, oq_report *report, oq_err *err);

/* The float model as loaded (borrowed; equalized by calibrate when the job
 * asks), the prepared copy, the table (NULL before calibrate and in dynamic
 * mode), the warnings so far. */
const oq_model *oq_pipeline_model(const oq_pipeline *p);
const oq_model *oq_pipeline_prepared(const oq_pipeline *p);
const oq_calib_table *oq_pipeline_table(const oq_pipeline *p);
int oq_pipeline_warnings(const oq_pipeline *p, const char *const **lines);
/* The job p keeps (its strings borrowed from the caller's), the SHA-256 of
 * the model file (after load), and whether the float graph was prepared. */
const oq_job *oq_pipeline_job(const oq_pipeline *p);
/* Opens the job's calibration samples, or (eval) its evaluation samples
 * (the calibration samples when it has none), as data specs or as samples
 * held in memory, shaped for m's inputs (caller destroys *ds). */
oq_status oq_pipeline_open_samples(const oq_pipeline *p, const oq_model *m, bool eval, oq_dataset **ds, oq_err *err);
/* Whether the job has the samples oq_pipeline_open_samples would open. */
bool oq_pipeline_has_samples(const oq_pipeline *p, bool eval);
const char *oq_pipeline_model_sha256(const oq_pipeline *p);
bool oq_pipeline_graph_prepared(const oq_pipeline *p);

#endif
