/* rewrite.h: the state of one quantization rewrite and the helpers its files
 * share (builders.c, weights.c, qoperator.c, qdq.c, dynamic.c, contrib.c).
 * Internal to src/quant.
 *
 * Every helper that can fail returns oq_status and sets r->err; values and
 * nodes it makes come back through out-parameters. */
#ifndef ONNXQ_QUANT_REWRITE_H
#define ONNXQ_QUANT_REWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_plan.h"
#include "onnxq/oq_quant.h"
#include "quant/correct.h"

/* Per value of the graph: the objects that stand for it in 8 bits. */
typedef struct qinfo {
    oq_value *twin;       /* QOperator: the 8-bit tensor; QDQ: the dequantized value; dynamic: the uint8 data */
    oq_value *scale, *zp; /* its scale and zero point (initializers; run-time values in dynamic mode) */
    oq_qparams p;         /* the parameters (the plan's, or a constant's own) */
    bool has_params;
} qinfo;

/* A quantized weight, shared by every node that reads the same constant along the same axis. */
typedef struct qweight {
    const oq_value *src;
    int axis;
    oq_value *q, *scale;      /* initializers (q holds the int8 weights, moved out of wq.q) */
    oq_value *zp;             /* per-channel zero points (QDQ), made on demand */
    oq_value *q_u8;           /* q + 128 as uint8 (dynamic ConvInteger), made on demand */
    oq_value *row_scale;      /* the scales as [V, 1] (an embedding table's, per row), made on demand */
    oq_weight_quant wq;       /* keeps scales for bias quantization and the report */
} qweight;

typedef struct rewriter {
    oq_model *m;
    oq_graph *g;
    const oq_plan *plan;
    oq_node **order;           /* [plan->n_nodes] the graph's nodes when the rewrite began: the plan's indices */
    const oq_quant_options *o; /* the plan's */
    oq_quant_result *res;
    int n_chunks;
    qinfo **info;              /* [n_chunks] blocks by value id; blocks never move */
    int n_weights;
    qweight *weights;
    oq_dtype act_type;         /* UINT8 or INT8 */
    oq_value *zero_i8, *zero_u8; /* scalar weight zero points 0 (int8) and 128 (uint8), made on demand */
    int current;               /* the plan's index of the node being rewritten */
    oq_bias_sites *sites;      /* the products quantized so far, or NULL when not asked for */
    oq_err *err;
} rewriter;

#define OQ_MAX_NODE_INPUTS 32 /* QLinearConcat of 10 tensors: 2 + 3 x 10 */

/* ---- builders.c: values, initializers, nodes, 8-bit twins ----------------------- */

/* v's info (zeroed at first). The pointer stays valid for the whole rewrite. */
oq_status oq_rw_info(rewriter *r, const oq_value *v, qinfo **out);
/* v's info when some was made, else NULL (allocates nothing). */
const qinfo *oq_rw_info_if_any(const rewriter *r, const oq_value *v);
/* A new initializer named after base (made unique) holding t (ownership taken, also on failure). */
oq_status oq_rw_initializer(rewriter *r, const char *base, oq_tensor *t, oq_value **out);
/* The same for tensor t held by value (moved out of *t). */
oq_status oq_rw_initializer_from(rewriter *r, const char *base, oq_tensor *t, oq_value **out);
/* A new scalar initializer of dtype dt (float, uint8, int8, int32) holding value. */
oq_status oq_rw_scalar(rewriter *r, const char *base, oq_dtype dt, double value, oq_value **out);
/* A new untyped value named base + suffix (made unique). */
oq_status oq_rw_value(rewriter *r, const char *base, const char *suffix, oq_value **out);
/* Appends a node of kind reading and writing the given values (NULL =
 * omitted), named "<first output>_<op>"; *out (may be NULL) gets it. */
oq_status oq_rw_node(rewriter *r, oq_op_kind kind, int n_in, oq_value *const *in, int n_out, oq_value *const *out,
                     oq_node **node);
/* Gives the node that replaces orig the original's name, when it had one. */
oq_status oq_rw_inherit_name(rewriter *r, oq_node *repl, const oq_node *orig);
/* Copies Conv n's attributes (pads, strides, ...) to q (QLinearConv, ConvInteger). */
oq_status oq_rw_copy_conv_attrs(rewriter *r, oq_node *q, const oq_node *n);
/* v's parameters (the plan's) with scale and zero-point initializers made on demand. */
oq_status oq_rw_params(rewriter *r, const oq_value *v, qinfo **out);
/* The 8-bit twin of float value v, inserting QuantizeLinear when it has none yet. */
oq_status oq_rw_quantized(rewriter *r, oq_value *v, oq_value **twin);
/* Gives float value v the 8-bit twin tw at parameters p, read through the
 * given scale and zero-point initializers; each that is NULL is made here. */
oq_status oq_rw_set_twin(rewriter *r, const oq_value *v, oq_value *tw, oq_qparams p, oq_value *scale, oq_value *zp);
/* Records in candidate entry rep that float value y is now its 8-bit twin yq. */
oq_status oq_rw_twin_output(rewriter *r, oq_quant_node *rep, const oq_value *y, oq_value *yq);

/* ---- weights.c: weights and biases ---------------------------------------------- */

/* Floors for the weight scales of channels 0..n so that bias b (float, 1 or
 * n values), quantized at input_scale x weight scale, stays within +-2^30;
 * *out NULL when there is no bias (caller frees). */
oq_status oq_rw_bias_floors(rewriter *r, const oq_tensor *b, float input_scale, int64_t n, float **out);
/* Constant weight w quantized along axis (per channel unless the options say
 * otherwise) with scales at least floors (may be NULL), shared per (w, axis). */
oq_status oq_rw_weight(rewriter *r, const oq_value *w, int axis, const float *floors, qweight **out);
/* qw's zero points shaped like its scales (all 0), made once: what a
 * per-axis DequantizeLinear needs. */
oq_status oq_rw_weight_zero_points(rewriter *r, qweight *qw, oq_value **out);
/* A DequantizeLinear (along axis when scale has several entries) of constant
 * q, writing a new value named after base; zp NULL leaves out the zero point
 * (0). */
oq_status oq_rw_dequantize_constant(rewriter *r, oq_value *q, oq_value *scale, oq_value *zp, int axis,
                                    const char *base, oq_value **out);
/* The one scalar zero point of symmetric weights of dtype dt: 0 for int8, 128
 * for uint8 (int8 + 128), shared by every node that reads it (the integer ops
 * take a scalar weight zero point next to per-channel scales). */
oq_status oq_rw_weight_zero(rewriter *r, oq_dtype dt, oq_value **out);
/* An int32 initializer named after `name` holding float bias b (1-D) at
 * input_scale x qw's scales. */
oq_status oq_rw_bias(rewriter *r, const oq_tensor *b, const char *name, float input_scale, const qweight *qw,
                     oq_value **out);
/* Gemm n's weight as a float [K, N] initializer (MatMul layout) with alpha folded in; *n_cols gets N. */
oq_status oq_rw_gemm_weight_kn(rewriter *r, const oq_node *n, int64_t *n_cols, oq_value **out);
/* Constant c (1 or N elements; may be NULL) times factor as a float tensor
 * of N elements, shaped like c when it has N ([N] or [1, N]), else [N]: the
 * row added to a product's N columns (Gemm's beta * C, the constant of a
 * MatMul's bias Add). Caller destroys; *out NULL without c. */
oq_status oq_rw_row_bias(rewriter *r, const oq_value *c, float factor, int64_t N, oq_tensor **out);
/* The operands of an integer product of activation x by the constant float
 * [K, N] weight wf with bias (float [N], or NULL): the weight as int8 per
 * column with scales floored so that the bias fits in int32 (*qw), x's
 * parameters (*xi) and its 8-bit twin (*xq). */
oq_status oq_rw_product_operands(rewriter *r, oq_value *x, oq_value *wf, const oq_tensor *bias, oq_value **xq,
                                 qinfo **xi, qweight **qw);
/* Weight statistics of qw into candidate entry rep. */
void oq_rw_report_weight(oq_quant_node *rep, const qweight *qw);
/* Lists site (the current node's product, with weights quantized as qw) for
 * bias correction when the rewrite keeps sites; copies qw's scales and the
 * site's bias_after (borrowed here, owned by the list). */
oq_status oq_rw_bias_site(rewriter *r, oq_bias_site site, const qweight *qw);

/* ---- one function per action: node n is the plan's node i ---------------------- */

/* qoperator.c */
oq_status oq_rw_qlinear(rewriter *r, int i, oq_node *n, oq_quant_node *rep);
oq_status oq_rw_integer_gemm(rewriter *r, int i, oq_node *n, oq_quant_node *rep);
oq_status oq_rw_passthrough(rewriter *r, oq_node *n);
/* Gives float values whose producer became 8-bit a DequantizeLinear writing
 * the original name, where something still reads the float value. */
oq_status oq_rw_restore_float_values(rewriter *r);
/* qdq.c */
oq_status oq_rw_qdq(rewriter *r, int i, oq_node *n, oq_quant_node *rep);
/* dynamic.c */
oq_status oq_rw_dynamic(rewriter *r, int i, oq_node *n, oq_quant_node *rep);
/* embedding.c */
oq_status oq_rw_embedding(rewriter *r, oq_node *n, oq_quant_node *rep);
/* weight_only.c */
oq_status oq_rw_weight_only(rewriter *r, oq_node *n, oq_quant_node *rep);
/* contrib.c */
oq_status oq_rw_qgemm(rewriter *r, int i, oq_node *n, oq_quant_node *rep);
oq_status oq_rw_qlinear_concat(rewriter *r, oq_node *n);
oq_status oq_rw_contrib(rewriter *r, int i, oq_node *n);
/* Scaled or shifted twin: y is x's 8-bit tensor read at the plan's parameters for y. */
oq_status oq_rw_input_twin(rewriter *r, int i, oq_node *n);
oq_status oq_rw_hard(rewriter *r, oq_node *n, bool swish);

/* ---- boundaries.c: after the rewrite ---------------------------------------------- */

/* Fills res's boundary counts (see oq_quant_result) from the final graph g. */
oq_status oq_rw_count_boundaries(const oq_graph *g, oq_quant_result *res, oq_err *err);

#endif
