/* oq_report.h: the JSON accuracy/size report of a quantization run.
 * src/report.c is the only file that builds it (with cJSON); the schema is
 * documented in the README. Everything but "timings_s" is a deterministic
 * function of the inputs and options. */
#ifndef ONNXQ_OQ_REPORT_H
#define ONNXQ_OQ_REPORT_H

#include "onnxq/oq_quant.h"

typedef struct oq_report_input {
    const char *version;              /* onnxq version */
    const char *model_path;
    const char *model_sha256;
    const char *output_path;
    const oq_calib_table *table;      /* NULL in dynamic mode */
    const oq_quant_options *opts;
    const oq_model *fp32, *quant;
    const oq_quant_result *result;
    const oq_eval *eval;              /* NULL when not evaluated ("evaluation": null) */
    double t_load, t_calibrate, t_rewrite, t_evaluate, t_save; /* seconds */
} oq_report_input;

/* Writes the report as JSON to path atomically. */
oq_status oq_report_write(const oq_report_input *in, const char *path, oq_err *err);

#endif
