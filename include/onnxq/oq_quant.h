/* oq_quant.h: quantization parameters (scale/zero-point from ranges, weight
 * and bias quantization per tensor or per channel), the options of the graph
 * rewrite, its two steps (prepare the float graph; rewrite it by a plan, see
 * oq_plan.h) and what they did, the evaluation of a quantized model against
 * the float one, and the opset upgrade. oq_pipeline.h runs them in order. */
#ifndef ONNXQ_OQ_QUANT_H
#define ONNXQ_OQ_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_dataset.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_qparams {
    float scale;        /* > 0 */
    int32_t zero_point; /* in [qmin, qmax] */
} oq_qparams;

/* Affine parameters mapping [lo, hi] (which must contain 0) onto qmin..qmax so
 * that 0.0 is exactly representable. symmetric: zero point at the middle of
 * the integer range (0 for int8, 128 for uint8) and scale from max(|lo|,|hi|).
 * A zero-width range gets scale 1 (every value quantizes to the zero point). */
oq_qparams oq_qparams_from_range(double lo, double hi, int qmin, int qmax, bool symmetric);

/* round-half-to-even(x / scale) + zero_point, saturated to [qmin, qmax], as
 * ONNX's QuantizeLinear defines it. */
int32_t oq_quantize_value(float x, oq_qparams p, int qmin, int qmax);

typedef struct oq_weight_quant {
    oq_tensor q;        /* int8 weights, same shape as the float ones */
    oq_tensor scales;   /* float, 1-D [channels] (or a scalar when per tensor) */
    oq_tensor zeros;    /* int8 zero points, shaped like scales (all 0: symmetric) */
    double sqnr_db;     /* 10*log10(sum w^2 / sum (w - dequant(q))^2); +inf when exact */
} oq_weight_quant;

/* Quantizes a float weight tensor to int8, symmetric in [-127, 127]: per
 * channel along `axis` when per_channel (channels with all-zero weights get
 * scale 1), else one scale. min_scales (NULL, or float [dims[axis]]) puts a
 * floor under each channel's scale (under the single scale: their maximum),
 * so that a bias quantized at input scale x weight scale fits in int32.
 * Fills *out (owned; release with oq_weight_quant_release). */
oq_status oq_quantize_weight(oq_weight_quant *out, const oq_tensor *w, int axis, bool per_channel,
                             const float *min_scales, oq_err *err);
void oq_weight_quant_release(oq_weight_quant *wq);

/* Quantizes a float bias [channels] (or [1, ..., channels]) to int32 of the
 * same shape with scale input_scale * weight_scales[c] (weight_scales has 1
 * or `channels` entries) and zero point 0. Fails with OQ_EINVAL when a value
 * would not fit in int32. */
oq_status oq_quantize_bias(oq_tensor *out, const oq_tensor *bias, float input_scale, const oq_tensor *weight_scales,
                           oq_err *err);

/* ---- the graph rewrite ------------------------------------------------------ */

typedef enum oq_quant_format {
    OQ_FORMAT_QOPERATOR, /* QLinearConv / QLinearMatMul / integer Gemm, 8-bit between them */
    OQ_FORMAT_QDQ,       /* QuantizeLinear/DequantizeLinear pairs around float ops */
    OQ_FORMAT_COUNT
} oq_quant_format;

typedef enum oq_quant_mode {
    OQ_MODE_STATIC,  /* activation parameters from the calibration table */
    OQ_MODE_DYNAMIC, /* DynamicQuantizeLinear at run time + MatMulInteger/ConvInteger; no table */
    OQ_MODE_COUNT
} oq_quant_mode;

typedef struct oq_quant_options {
    oq_quant_mode mode;
    oq_quant_format format;    /* static mode only */
    bool contrib;              /* QOperator: ONNX Runtime's com.microsoft ops (QGemm, QLinearAdd, ...) */
    bool per_channel;          /* weights per output channel (default) or per tensor */
    int act_qmin, act_qmax;    /* activation integer range: 0..255 (uint8) or -128..127 (int8) */
    bool symmetric_activations;
    int n_op_types;            /* which ops to quantize; 0 = Conv, ConvTranspose, MatMul, Gemm, Gather */
    const char *const *op_types;
    int n_exclude;             /* node names left in float */
    const char *const *exclude;
} oq_quant_options;

/* What happened to one candidate node (Conv/MatMul/Gemm). */
typedef struct oq_quant_node {
    char *name;
    char *op_type;
    bool quantized;
    char *reason;          /* why not, when !quantized */
    char *output;          /* the float value whose range the output uses (after a folded Relu/Clip) */
    char *twin;            /* its 8-bit replacement in the output graph, or NULL when it stays float */
    float out_scale;       /* twin's parameters */
    int32_t out_zero_point;
    int n_scales;          /* weight scales: 1 per tensor, else channels */
    float scale_min, scale_max;
    double weight_sqnr_db;
} oq_quant_node;

/* A float op type next to the float/8-bit boundaries, and how many such nodes. */
typedef struct oq_glue_op {
    char *op_type;
    int count;
} oq_glue_op;

/* What oq_quant_prepare did. */
typedef struct oq_quant_prep {
    int64_t opset_from, opset_to; /* default-domain opset before and after (13 at least; 14 for HardSwish) */
    int n_fused_hard_swish;       /* x * Clip(x + 3, 0, 6) / 6 patterns (and alike) made HardSwish */
} oq_quant_prep;

/* What oq_quant_rewrite did. */
typedef struct oq_quant_result {
    int n_folded_factors;         /* Mul by a constant folded into a (De)QuantizeLinear scale or a twin's */
    int n_contrib_ops;            /* float ops other than Conv/MatMul/Gemm made com.microsoft QLinear ops */
    /* where float and 8-bit meet in the output (QOperator format): QuantizeLinear
     * and DequantizeLinear nodes on activations (not on constant weights), and
     * the float nodes reading such a DequantizeLinear or feeding such a
     * QuantizeLinear, by op type (most frequent first, then by name) */
    int n_boundary_quantize, n_boundary_dequantize;
    int n_glue_ops;
    oq_glue_op *glue_ops;
    int n_nodes;
    oq_quant_node *nodes;  /* the plan's candidates, in graph order */
} oq_quant_result;

typedef struct oq_plan oq_plan;

/* Readies float model m, in place, for planning and rewriting: raises an
 * opset older than 13 to 13 (oq_model_upgrade_opset) and makes each
 * hard-swish pattern one HardSwish node (raising the opset to 14 when it
 * can, else leaving them). The graph ends sorted. (Folding BatchNormalization
 * into the Conv before it is graph preparation's, oq_prepare.h.) On failure m
 * may be partly changed: callers work on a copy. */
oq_status oq_quant_prepare(oq_model *m, oq_quant_prep *prep, oq_err *err);

/* Rewrites m, the prepared model plan was made on or a copy of it
 * (oq_model_clone), into the plan's format (the plan must know its ranges).
 * Graph inputs and outputs keep their names and float types. Fills *result
 * (owned; oq_quant_result_release). On failure m may be partly rewritten. */
oq_status oq_quant_rewrite(oq_model *m, const oq_plan *plan, oq_quant_result *result, oq_err *err);
void oq_quant_result_release(oq_quant_result *r);


/* ---- evaluation: the quantized model against the float one ------------------- */


/* How one graph output of the quantized model compares with the float
 * model's. A float output is compared element by element on the samples where
 * both runs give it the same non-empty shape; an output of another type (a
 * detector's class ids, a tokenizer's indices) or an empty one is compared for
 * equality. Samples where the two shapes or types differ (a detector keeping
 * another number of boxes) are counted and not compared. */
typedef struct oq_output_metrics {
    char *name;
    double cosine;        /* over all elements of all compared samples; NaN when none */
    double sqnr_db;       /* 10*log10(sum ref^2 / sum (ref - q)^2); +inf when identical, NaN when none */
    double max_abs_error; /* NaN when no sample was compared */
    bool classifier;      /* shaped [N, C] or [N, T, C] with C >= 2: argmax over the last axis */
    int64_t top1_agree, top1_total;
    int64_t compared;      /* samples of a float output compared element by element */
    int64_t equality, identical; /* samples compared for equality (not float, or empty); of those, equal */
    int64_t shape_differs; /* samples whose two outputs differ in type or shape */
    int64_t nonfinite;     /* elements the float model gave as NaN or infinite: left out of every number above
                              (a classifier row holding one is left out of the top-1 counts, a sample holding
                              nothing else is not compared) */
} oq_output_metrics;

/* Running sums comparing one graph output of a quantized run with the float
 * run's, sample after sample. The evaluation and the analyses built on it
 * (oq_sensitivity.h, oq_mixed.h) all use these, so they report the same
 * numbers for the same runs. */
typedef struct oq_output_sums {
    double dot, aa, bb, err2; /* sums of ref*q, ref^2, q^2, (ref - q)^2 */
    double max_abs_error;
    bool classifier;          /* as in oq_output_metrics */
    int64_t top1_agree, top1_total;
    int64_t compared, equality, identical, shape_differs, nonfinite; /* as in oq_output_metrics */
} oq_output_sums;

/* Adds one sample: ref is the float run's output and q the quantized run's,
 * of any types and shapes (see oq_output_metrics for what is compared). */
void oq_output_sums_add(oq_output_sums *s, const oq_tensor *ref, const oq_tensor *q);
/* The class a classifier output t ([N, C] or [N, T, C]) predicts for its
 * first row: the index of its largest element, the first on ties. */
int64_t oq_predicted_class(const oq_tensor *t);
/* Adds src into dst. Sums added in the same order give the same bits. */
void oq_output_sums_merge(oq_output_sums *dst, const oq_output_sums *src);
/* What a reader must know beyond m's numbers, in a few words written to buf
 * ("compared for equality on 4 of 4 samples (not float or empty): 3
 * identical", "shapes differ in 1 of 4 samples", "the float model gave 3
 * NaN or infinite values, left out"),
 * or NULL when every sample was compared element by element. */
const char *oq_output_metrics_note(const oq_output_metrics *m, char *buf, size_t cap);
/* Fills m's numbers from s (m's name is left alone). */
void oq_output_sums_finish(const oq_output_sums *s, oq_output_metrics *m);

typedef struct oq_eval {
    int64_t samples;
    int n_outputs;
    oq_output_metrics *outputs;
    double *node_sqnr_db;     /* [result->n_nodes]; NAN for nodes left float */
    int64_t labeled;          /* samples with a label (first output, classifier-shaped) */
    int64_t fp32_correct, q_correct;
    /* the quantized run's work per sample (averages): multiply-adds of the
     * integer ops (QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger,
     * QGemm), how many such nodes ran, and the elements that
     * QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear converted
     * between float and 8-bit on activations */
    double int8_macs, int8_nodes, converted;
} oq_eval;

/* Whether a runtime can be expected to run the quantized model faster than
 * the float one, judged from e's work counts: the integer ops must be big
 * enough for a faster kernel to outweigh a runtime's fixed cost per node, and
 * the conversions few next to the multiply-adds. *why gets a static sentence
 * saying which holds. */
bool oq_eval_speedup_expected(const oq_eval *e, const char **why);

/* Runs the float and the quantized model on up to max_samples samples of ds
 * (0 = all) and compares their outputs, and each quantized node's output
 * against the float value it replaces. labels (may be NULL) holds one class
 * per sample for top-1 accuracy of the first output. */
oq_status oq_evaluate(const oq_model *fp32, const oq_model *quant, const oq_quant_result *qr, oq_dataset *ds,
                      int64_t max_samples, const int64_t *labels, int64_t n_labels, int threads, oq_eval *out,
                      oq_err *err);
void oq_eval_release(oq_eval *e);

/* ---- opset upgrade ------------------------------------------------------------ */

/* Raises m's default-domain (ai.onnx) opset import to target (at most 14),
 * rewriting every node, If/Loop/Scan bodies included, whose operator
 * definition changed in between so that the model computes the same outputs:
 * attributes that became inputs turn into initializers, deprecated operators
 * become their replacements, Softmax-family axes keep their old meaning. The
 * IR version is raised when the target needs it. target equal to the current
 * import: nothing changes. Fails with OQ_EUNSUPPORTED naming the node, its op
 * and the version when a node has no exact equivalent, OQ_EINVAL for a lower
 * target or a model without a default-domain import. On failure m may be
 * partly rewritten: callers work on a copy they can drop. */
oq_status oq_model_upgrade_opset(oq_model *m, int64_t target, oq_err *err);

#endif
