/* oq_report.h: the report of a quantization run: one structure, built once
 * from what the run did (oq_report_build), rendered as JSON for --report
 * (schema in docs/formats.md), as an HTML page for --html and as the summary
 * lines a command prints. Every section is a plain field, so that new
 * sections and renderings read the same data. Everything but the timings is
 * a deterministic function of the inputs and options. */
#ifndef ONNXQ_OQ_REPORT_H
#define ONNXQ_OQ_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_mixed.h"
#include "onnxq/oq_correct.h"
#include "onnxq/oq_plan.h"
#include "onnxq/oq_prepare.h"
#include "onnxq/oq_quant.h"
#include "onnxq/oq_sensitivity.h"

typedef struct oq_report_initializer {
    char *name;
    oq_dtype dtype;
    int64_t bytes;
} oq_report_initializer;

/* One candidate node (Conv/MatMul/Gemm), in graph order. */
typedef struct oq_report_node {
    char *name, *op_type;
    bool quantized;
    char *reason;           /* why not, when !quantized */
    int n_scales;           /* weight scales (quantized): count, min, max */
    float scale_min, scale_max;
    double weight_sqnr_db;  /* +inf when exact */
    double output_sqnr_db;  /* NAN when not evaluated */
} oq_report_node;

/* How a node of the quantized model runs, for the graph strip of the HTML
 * report: where float and 8-bit meet along the graph. */
typedef enum oq_report_precision {
    OQ_PRECISION_FLOAT,      /* on float tensors */
    OQ_PRECISION_INTEGER,    /* in 8 bits: QLinear and integer ops, ops that only read 8-bit tensors, weights
                                kept in 8 bits (a DequantizeLinear of a constant), and a float op between
                                DequantizeLinear and QuantizeLinear nodes (QDQ: runtimes fuse the three) */
    OQ_PRECISION_CONVERSION, /* QuantizeLinear, DynamicQuantizeLinear, DequantizeLinear of an activation, Cast
                                of an integer op's output */
    OQ_PRECISION_COUNT
} oq_report_precision;

/* "float", "integer", "conversion": the spelling of the JSON report. */
const char *oq_report_precision_name(oq_report_precision p);

/* One node of the quantized model (Constant nodes left out), in graph order. */
typedef struct oq_report_op {
    char *name, *op_type;
    oq_report_precision precision;
} oq_report_op;

typedef struct oq_report_times {
    double load, calibrate, rewrite, evaluate, save; /* seconds */
    double sensitivity, search; /* an accuracy target's analysis and search (oq_mixed), when there is one */
    double bias_correction; /* seconds of it spent on bias correction (both models' runs) */
} oq_report_times;

typedef struct oq_report {
    char *tool_version;
    /* options */
    oq_quant_options opts;  /* op_types and exclude point into the copies below */
    char **op_types;        /* [n] the selected op types (the default three when none were given) */
    int n_op_types;
    char **exclude;         /* [opts.n_exclude] */
    /* model */
    char *model_path, *model_sha256, *output_path;
    int64_t opset, output_opset;
    /* calibration: has_calibration is false in dynamic mode */
    bool has_calibration;
    oq_calib_method method;
    int64_t calib_samples;
    char data_sha256[65], calib_model_sha256[65];
    /* graph preparation: has_prepare is false with --no-prepare */
    bool has_prepare;
    oq_prepare_result prepare;
    /* size: constants of the model file as loaded and of the quantized model */
    int64_t fp32_bytes, quantized_bytes;
    int n_initializers;
    oq_report_initializer *initializers; /* the quantized model's, in value order */
    /* node counts */
    int n_candidates, n_quantized, n_folded_bn, n_folded_factors, n_fused_hard_swish, n_contrib_ops,
        n_contrib_no_range;
    /* boundaries: has_boundaries in the static QOperator format only */
    bool has_boundaries;
    int n_boundary_quantize, n_boundary_dequantize;
    int n_glue_ops;
    oq_glue_op *glue_ops;
    int n_nodes;
    oq_report_node *nodes;
    /* the quantized model's nodes but Constants in graph order, and how many run each way */
    int n_ops;
    oq_report_op *ops;
    int n_ops_by_precision[OQ_PRECISION_COUNT];
    oq_bias_correction bias_correction;
    oq_equalization equalization; /* owned */
    /* evaluation, and the speed outlook (static QOperator format) */
    bool has_evaluation;
    oq_eval eval;           /* owned (outputs, per-node SQNR) */
    bool has_speed_outlook, faster_expected;
    const char *why;        /* static text */
    /* an accuracy target (oq_report_set_target): the ranking it used and what
     * its search did; owned, NULL without a target */
    oq_sensitivity *sensitivity;
    oq_mixed *mixed_precision;
    oq_report_times times;
} oq_report;

/* What a run did, for oq_report_build (all borrowed). */
typedef struct oq_report_input {
    const char *tool_version;
    const char *model_path, *model_sha256, *output_path;
    const oq_quant_options *opts;     /* as the plan used them */
    const oq_calib_table *table;      /* NULL in dynamic mode */
    const oq_model *fp32, *quant;     /* the float model and the quantized one (as written) */
    const oq_quant_prep *prep;
    const oq_prepare_result *graph_prep; /* NULL when the graph was not prepared (--no-prepare) */
    int64_t fp32_bytes;               /* constants of the model file as loaded (before preparation) */
    const oq_plan *plan;
    const oq_quant_result *result;
    const oq_bias_correction *bias_correction; /* what the rewrite's bias correction did */
    const oq_equalization *equalization;       /* what equalization did */
    const oq_eval *eval;              /* NULL when nothing was evaluated */
    oq_report_times times;
} oq_report_input;

/* Builds the report (caller destroys) from what the run did. */
oq_status oq_report_build(oq_report **out, const oq_report_input *in, oq_err *err);
void oq_report_destroy(oq_report *r);
/* Adds copies of an accuracy target's ranking (sens, may be NULL when the
 * default plan met it without one) and search result (m) to r, and their times. */
oq_status oq_report_set_target(oq_report *r, const oq_sensitivity *sens, const oq_mixed *m, oq_err *err);

/* The report as JSON text ending in a newline, in a malloc'ed buffer the caller frees. */
oq_status oq_report_json(const oq_report *r, uint8_t **buf, size_t *len, oq_err *err);
/* The report as one self-contained HTML page (inline CSS and SVG, no script,
 * nothing fetched): accuracy before and after, per-node SQNR along the graph,
 * where float and 8-bit meet, the size breakdown, how the model was made, and
 * an accuracy target's choices and ranking when the report has them.
 * Every byte is a function of the report without its timings. *buf is
 * malloc'ed; the caller frees it. */
oq_status oq_report_html(const oq_report *r, uint8_t **buf, size_t *len, oq_err *err);
/* The human summary: *text (malloc'ed, caller frees) gets lines, each ending
 * in a newline, for a command to print after its name ("quantized 3 of 3
 * Conv/MatMul/Gemm nodes ...", left-float nodes, output metrics). */
oq_status oq_report_summary(const oq_report *r, char **text, oq_err *err);

/* ---- the report of `onnxq prepare` ------------------------------------------------ */

/* What graph preparation did to one model (all borrowed). */
typedef struct oq_prepare_report {
    const char *tool_version;
    const char *model_path, *output_path;
    int64_t ir_before, ir_after;       /* IR version of the model as loaded and as written */
    int64_t bytes_before, bytes_after; /* constant storage */
    const oq_prepare_result *result;
} oq_prepare_report;

/* The report as JSON text ending in a newline (schema in docs/formats.md), in a
 * malloc'ed buffer the caller frees. */
oq_status oq_prepare_report_json(const oq_prepare_report *r, uint8_t **buf, size_t *len, oq_err *err);
/* One summary line ending in a newline (malloc'ed, caller frees): node counts
 * and every pass that did something. */
oq_status oq_prepare_report_summary(const oq_prepare_report *r, char **text, oq_err *err);

#endif
