/* oq_compare.h: a float model and a quantized version of it (made by onnxq or
 * by another tool) run side by side on sample data and compared tensor by
 * tensor: for every tensor of the quantized model that stands for a tensor of
 * the float model, SQNR, cosine and largest error over all samples, in the
 * quantized model's graph order; and per graph output, top-1 agreement.
 *
 * How a tensor made by a node of the quantized model finds its float
 * counterpart (the first rule that applies; oq_compare_match names them):
 *   quantize      a QuantizeLinear's output stands for its input's counterpart;
 *   dequantize    a DequantizeLinear's output stands for its input's, when it
 *                 reads it at the parameters of that pairing;
 *   same name     the float model has a tensor of the same name, made by an
 *                 op of another type, or of the same type from the tensors
 *                 that the inputs of the quantized op stand for (a name that
 *                 is reused for another value, e.g. with a BatchNormalization
 *                 or a factor folded in, is not a counterpart);
 *   read as       an integer tensor stands for what the ops reading it with a
 *                 scale read it as, when they agree: a DequantizeLinear, what
 *                 its output's name stands for; a QLinear op named like a float
 *                 node of the op it computes, that node's input at its place;
 *   name suffix   NAME_quantized, NAME_dequantized, NAME_QuantizeLinear_Input,
 *                 NAME_QuantizeLinear_Output and NAME_DequantizeLinear_Output
 *                 stand for NAME (onnxq's and ONNX Runtime's spellings);
 *   node name     a tensor made by a node named like a float node, at the same
 *                 output index, stands for that node's output (checked as for
 *                 same name).
 * Two refinements for activations that a quantization range applies: an
 * integer tensor whose zero point is its type's lowest value (a range starting
 * at 0) stands, instead of float tensor F, for the output of the Relu (or Clip
 * from 0) that alone reads F, since saturation applies it; and a tensor that
 * writes the name of a float Relu/Clip which read an op of its own producer's
 * type (ONNX Runtime's QDQ quantizer removes such activations) stands for the
 * activation's input (activation_input).
 * Integer tensors are dequantized at the parameters that come with their
 * pairing: a QuantizeLinear's, the readers' (read as), else those of the op
 * that made them (DynamicQuantizeLinear's run-time outputs; the output scale
 * of QLinearConv, QLinearMatMul, QGemm and ONNX Runtime's QLinear* ops;
 * through ops that only move elements, their input's). */
#ifndef ONNXQ_OQ_COMPARE_H
#define ONNXQ_OQ_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

typedef enum oq_compare_match {
    OQ_MATCH_QUANTIZE,
    OQ_MATCH_DEQUANTIZE,
    OQ_MATCH_SAME_NAME,
    OQ_MATCH_READ_AS,
    OQ_MATCH_NAME_SUFFIX,
    OQ_MATCH_NODE_NAME,
    OQ_MATCH_ACTIVATION_INPUT, /* the second refinement above */
    OQ_MATCH_COUNT
} oq_compare_match;

/* "same_name", "quantize", ...: the spelling of the JSON report. */
const char *oq_compare_match_name(oq_compare_match m);

/* One compared tensor. Metrics cover every element of every sample whose
 * shapes agreed; they are NAN when no sample was compared. */
typedef struct oq_compare_tensor {
    char *name;            /* in the quantized model */
    char *op_type;         /* of the node that made it */
    char *float_name;      /* its counterpart in the float model */
    oq_compare_match match;
    oq_dtype dtype;        /* as it ran: float, or the integer type that was dequantized */
    int64_t samples;       /* samples compared */
    int64_t mismatched;    /* samples left out because the two shapes differed */
    int64_t elements;      /* elements compared, all samples together */
    int64_t nonfinite;     /* elements left out because the float model gave NaN or infinity there */
    double sqnr_db;        /* 10 log10(sum f^2 / sum (f - q)^2); +inf when equal */
    double cosine;         /* sum f q / sqrt(sum f^2 sum q^2) */
    double max_abs_error;
    /* the lowest SQNR among the nearest compared tensors it was computed from
     * (looking back through tensors without a counterpart) minus its own; NAN
     * when those are exact (or there are none) or either is not finite; after
     * an Add or Sub of an exact operand (an attention mask), the other
     * operand's quality is what later drops are measured from */
    double drop_db;
    bool quantization_step; /* made by a (de)quantizing or integer op, or by an op reading a dequantized constant, or
                               computed from those tensors through one: a drop here is quantization's doing,
                               not a float op reshaping error that is already there; the summaries
                               (oq_compare_first_drop, the largest drops) look at these only */
} oq_compare_tensor;

/* A tensor made by a node of the quantized model that was not compared. */
typedef struct oq_compare_unmatched {
    char *name;
    char *op_type;
    char *reason;          /* "no float counterpart", "int32 tensor", ... */
} oq_compare_unmatched;

/* One graph output present in both models under the same name. */
typedef struct oq_compare_output {
    char *name;
    double sqnr_db, cosine, max_abs_error; /* as for tensors; NAN when not float in both */
    int64_t nonfinite;     /* as for tensors */
    bool classifier;       /* shaped [N, C] or [N, T, C] with C >= 2: argmax over the last axis */
    int64_t top1_agree, top1_total;
} oq_compare_output;

typedef struct oq_compare_result {
    int64_t samples;
    int n_tensors;
    oq_compare_tensor *tensors;       /* in the quantized model's graph order */
    int n_unmatched;
    oq_compare_unmatched *unmatched;  /* in graph order */
    int n_mismatched;                 /* tensors with at least one sample of differing shapes */
    int n_outputs;
    oq_compare_output *outputs;       /* in the quantized model's output order */
} oq_compare_result;

typedef struct oq_compare_options {
    int threads;           /* for each model's session; 0 = every online core */
    int64_t max_samples;   /* 0 = every sample of the data set */
} oq_compare_options;

/* Runs fp32 and quant (both borrowed) on the samples of ds (opened for fp32's
 * inputs), one sample at a time: memory does not grow with the sample count.
 * Fails with OQ_EINVAL, naming the input, when the two models' fed graph
 * inputs differ in names or declared element types. *out is a new result the
 * caller destroys. Same models and data give the same numbers. */
oq_status oq_compare_models(const oq_model *fp32, const oq_model *quant, const oq_dataset *ds,
                            const oq_compare_options *opts, oq_compare_result **out, oq_err *err);
void oq_compare_result_destroy(oq_compare_result *r);

/* SQNR lost at one tensor that counts as a sharp drop (noise power x4). */
#define OQ_COMPARE_SHARP_DROP_DB 6.0

/* Whether t is a quantization step whose drop_db is at least min_drop_db:
 * the tensors the summaries below (and compare's pages) name. */
bool oq_compare_step_drop(const oq_compare_tensor *t, double min_drop_db);
/* Index of the first quantization step in graph order whose drop_db is at
 * least min_drop_db, or -1. */
int oq_compare_first_drop(const oq_compare_result *r, double min_drop_db);
/* Indices of the (up to) n quantization steps with the largest drop_db of at
 * least min_drop_db, largest first (the earlier first on ties), in best; returns
 * how many it wrote. */
int oq_compare_largest_drops(const oq_compare_result *r, double min_drop_db, int *best, int n);

/* What the reports say besides the result (all borrowed). */
typedef struct oq_compare_report_info {
    const char *version;
    const char *fp32_path, *fp32_sha256;
    const char *quant_path, *quant_sha256;
    double t_load, t_compare; /* seconds */
} oq_compare_report_info;

/* The JSON report (schema in docs/formats.md) as text ending in a newline, in a
 * malloc'ed buffer the caller frees. Everything but "timings_s" is a
 * deterministic function of the inputs. */
oq_status oq_compare_report_json(const oq_compare_result *r, const oq_compare_report_info *info, uint8_t **buf,
                                 size_t *len, oq_err *err);
/* The comparison as one self-contained HTML page (inline CSS and SVG, no
 * script, nothing fetched): outputs, SQNR along the graph with the sharp
 * drops marked, the largest drops, every tensor. No timings: the same inputs
 * give the same bytes. The caller frees *buf. */
oq_status oq_compare_report_html(const oq_compare_result *r, const oq_compare_report_info *info, uint8_t **buf,
                                 size_t *len, oq_err *err);
/* Writes the JSON report to json_path and the page to html_path (either may
 * be NULL): both or, on failure, neither, and files that existed unchanged. */
oq_status oq_compare_report_write(const oq_compare_result *r, const oq_compare_report_info *info, const char *json_path,
                                  const char *html_path, oq_err *err);

#endif
