/* oq_job_builder.h: an oq_job made from named options, with the command
 * line's names and value syntax ("format" = "qdq", "per-tensor",
 * "op-types" = "Conv,MatMul"), owning every string and list it holds: for
 * callers that do not build C structs, such as the Python module
 * (python/onnxq), and for programs that take the command line's options
 * from elsewhere. */
#ifndef ONNXQ_OQ_JOB_BUILDER_H
#define ONNXQ_OQ_JOB_BUILDER_H

#include <stdbool.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_pipeline.h"

typedef struct oq_job_builder oq_job_builder;

/* One option oq_job_builder_set takes: its name (the command line's long
 * option without the dashes) and whether the command line gives it a value
 * (flags do not). */
typedef struct oq_job_option {
    const char *name;
    bool takes_value;
} oq_job_option;

/* The options, in a fixed order: *out points to the table (static), the
 * count is returned. The command line builds its option list from it. */
int oq_job_builder_options(const oq_job_option **out);

/* A builder holding oq_job_default()'s job, with oq_version() as the tool
 * version of its report. */
oq_status oq_job_builder_create(oq_job_builder **out, oq_err *err);
void oq_job_builder_destroy(oq_job_builder *b);

/* Sets option `name`, a long option of `onnxq quantize` or `convert`
 * without its dashes, or "model", to value (copied). Flags ("contrib",
 * "per-tensor", ...) take NULL or "true" to set and "false" to clear;
 * "data", "eval-data" and "exclude" append. Fails naming the option
 * ("--bins expects ...") on an unknown name or a malformed value, and on a
 * second accuracy target. The command line parses its values through it. */
oq_status oq_job_builder_set(oq_job_builder *b, const char *name, const char *value, oq_err *err);

/* Checks what no single option shows: combinations that do not go together
 * (a format or a range option with dynamic mode, --contrib outside the static
 * qoperator form, a table in dynamic mode), and what options need (an
 * accuracy target or labels: evaluation samples; --max-drop: labels;
 * --sensitivity: a target). Fails naming the options. */
oq_status oq_job_builder_check(const oq_job_builder *b, oq_err *err);

/* Feeds the job samples held in memory, for calibration or (eval) for the
 * evaluation, instead of data specs; s is borrowed and must outlive every
 * run. NULL removes them. */
void oq_job_builder_set_samples(oq_job_builder *b, bool eval, const oq_samples *s);

/* The job as set so far (borrowed; valid until the builder changes). */
const oq_job *oq_job_builder_job(const oq_job_builder *b);

/* Runs the job (oq_job_run, after oq_job_builder_check) and hands back the
 * report as JSON text (*report_json, NULL when no model was quantized) and
 * the warnings, one per line ("" when none), both NUL-terminated and
 * malloc'ed, for oq_free. The warnings come back on failure too. */
oq_status oq_job_builder_run(const oq_job_builder *b, char **report_json, char **warnings, oq_err *err);

/* Frees memory liboq handed to the caller (NULL is a no-op). */
void oq_free(void *p);

#endif
