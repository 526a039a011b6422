/* oq_plan.h: the quantization plan: what the rewrite does to each node of a
 * prepared float graph (oq_quant_prepare), decided once, before anything is
 * rewritten, from the graph, the options, the calibrated ranges and per-node
 * policies. The rewrite executes it (oq_quant_rewrite), calibration records
 * exactly the ranges it reads, and the report reads it.
 *
 * Without a table the plan assumes that every range it asks for exists and
 * marks each one it would read (oq_plan_value.needs_range): the values a
 * calibration must record. Such a plan cannot be executed (its parameters are
 * unknown); plan again with the table. */
#ifndef ONNXQ_OQ_PLAN_H
#define ONNXQ_OQ_PLAN_H

#include <stdbool.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_quant.h"

typedef enum oq_action {
    OQ_ACTION_NONE,           /* left as it is (float) */
    OQ_ACTION_KEEP_FLOAT,     /* a candidate (Conv/ConvTranspose/MatMul/Gemm, an embedding Gather) left float; the reason
                                 says why */
    OQ_ACTION_QLINEAR,        /* Conv -> QLinearConv, MatMul -> QLinearMatMul (constant or activation B) */
    OQ_ACTION_INTEGER_GEMM,   /* Gemm (or MatMul, with a folded bias Add) -> MatMulInteger, int32 bias Add, Cast,
                                 per-column Mul */
    OQ_ACTION_QGEMM,          /* Gemm -> com.microsoft QGemm */
    OQ_ACTION_QDQ,            /* QuantizeLinear/DequantizeLinear around the float op */
    OQ_ACTION_DYNAMIC,        /* DynamicQuantizeLinear + ConvInteger/MatMulInteger, float rescale */
    OQ_ACTION_PASSTHROUGH,    /* data movement run on the 8-bit tensor, same parameters */
    OQ_ACTION_QLINEAR_CONCAT, /* Concat of 8-bit inputs of differing parameters -> com.microsoft QLinearConcat */
    OQ_ACTION_CONTRIB,        /* Add, Mul, Sigmoid, LeakyRelu, GlobalAveragePool -> com.microsoft QLinear op */
    OQ_ACTION_SCALED_TWIN,    /* Mul by a positive scalar: the same 8-bit tensor read at scale x c */
    OQ_ACTION_SHIFTED_TWIN,   /* Add of a whole number of steps: the same 8-bit tensor read at another zero point */
    OQ_ACTION_HARD_SIGMOID,   /* one com.microsoft QLinearAdd, clamped by saturation */
    OQ_ACTION_HARD_SWISH,     /* com.microsoft QLinearAdd (the gate) + QLinearMul */
    OQ_ACTION_FOLDED_CLAMP,   /* Relu/Clip whose range the node before it takes; removed */
    OQ_ACTION_FOLDED_BIAS,    /* Add of a constant row after a MatMul: the MatMul's int32 bias */
    OQ_ACTION_EMBEDDING,      /* Gather from a constant float table: int8 table per row, dequantized after the Gather */
    OQ_ACTION_WEIGHT_ONLY,    /* no 8-bit form in ONNX: ConvTranspose outside the QDQ format, LSTM/GRU/RNN always:
                                 int8 weights per output channel (gate row) behind DequantizeLinears, float input
                                 and output */
    OQ_ACTION_COUNT
} oq_action;

/* "none", "keep_float", "qlinear", ... */
const char *oq_action_name(oq_action a);

/* What a caller asks for one node. The plan honours it where it can
 * (16-bit activations in QDQ form will be one more policy). */
typedef enum oq_node_policy {
    OQ_POLICY_AUTO,  /* what the options give */
    OQ_POLICY_FLOAT, /* keep the node float */
    OQ_POLICY_COUNT
} oq_node_policy;

typedef struct oq_plan_override {
    const char *node;      /* node name (borrowed) */
    oq_node_policy policy;
    const char *reason;    /* OQ_POLICY_FLOAT: why, as the report shows it (borrowed, must outlive the plan);
                              NULL: "kept float by its node policy" */
} oq_plan_override;

typedef struct oq_plan_node {
    oq_action action;
    bool candidate;        /* a node of an --op-types kind (an embedding Gather) the options select: the report
                              lists it */
    const char *reason;    /* OQ_ACTION_KEEP_FLOAT: why (static text) */
    int clamp;             /* index of the Relu/Clip folded into this node's output range (QOperator: it goes;
                              QDQ: the output pair has its range and it stays), or -1 */
    int bias;              /* MatMul: index of the Add whose constant row becomes its int32 bias, or -1 */
    int operand;           /* OQ_ACTION_SCALED_TWIN, OQ_ACTION_SHIFTED_TWIN: which input is the 8-bit tensor */
    bool no_range;         /* --contrib would run it in 8 bits, but the table has no range for its output */
    bool activation_b;     /* a MatMul of two activations: B is quantized per tensor like A, not as a weight */
    bool float_out;        /* QDQ: a MatMul or Gemm writing a graph output leaves it float (no output pair), as
                              the QOperator form's integer GEMM does */
} oq_plan_node;

typedef struct oq_plan_value {
    bool needs_range;      /* a decision read (or, without a table, would read) its calibrated range */
    bool is8;              /* QOperator form: carried as an 8-bit tensor (it has a twin) */
    bool has_params;
    oq_qparams params;     /* its 8-bit scale and zero point (unknown without a table) */
} oq_plan_value;

typedef struct oq_plan {
    const oq_graph *graph;   /* the planned graph (borrowed): entries follow its node order and value ids */
    oq_quant_options opts;   /* copied; its lists are borrowed from the caller's */
    bool ranges_known;       /* made with a table (or in dynamic mode): executable */
    int n_nodes;
    oq_plan_node *nodes;     /* [n_nodes] */
    int n_values;
    oq_plan_value *values;   /* [n_values] by value id */
    int n_candidates;        /* nodes with candidate set */
    int n_contrib_ops;       /* QLinear contrib ops, QLinearConcat, hard sigmoid and hard swish */
    int n_scaled_twins;      /* Mul nodes that become a rescaled twin */
    int n_shifted_twins;     /* Add nodes that become a shifted twin */
    int n_contrib_no_range;  /* nodes with no_range set */
} oq_plan;

/* Plans the rewrite of g, a graph prepared by oq_quant_prepare with the same
 * options (borrowed: it must outlive the plan, unchanged). table: the
 * calibrated ranges (static mode; NULL plans without them, see above; unused
 * in dynamic mode). overrides (may be NULL) name nodes of g; an unknown name
 * fails with OQ_EINVAL. The plan is a function of its inputs: the same ones
 * give the same plan. */
oq_status oq_plan_create(oq_plan **out, const oq_graph *g, const oq_quant_options *opts, const oq_calib_table *table,
                         int n_overrides, const oq_plan_override *overrides, oq_err *err);
void oq_plan_destroy(oq_plan *p);

#endif
