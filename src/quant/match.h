/* match.h: graph queries shared by the quantization plan, the rewrite and
 * the folds: who reads a value, clamps, scalar operands, whether a value has
 * axes. Internal to src/quant. */
#ifndef ONNXQ_QUANT_MATCH_H
#define ONNXQ_QUANT_MATCH_H

#include <stdbool.h>

#include "onnxq/oq_graph.h"
#include "onnxq/oq_quant.h"

/* Whether v is one of g's outputs. */
bool oq_is_graph_output(const oq_graph *g, const oq_value *v);
/* Whether v is one of g's inputs. */
bool oq_is_graph_input(const oq_graph *g, const oq_value *v);
/* The single node reading v when that is its only use (not a graph output), else NULL. */
oq_node *oq_sole_reader(const oq_graph *g, const oq_value *v);
/* Whether a is a Relu, or a Clip with constant bounds, reading x: a clamp
 * whose output range also serves x (quantizing x to that range, then
 * clamping, gives what clamping, then quantizing gives). */
bool oq_is_clamp_of(const oq_node *a, const oq_value *x);
/* Whether v is a constant of dtype float. */
bool oq_is_float_constant(const oq_value *v);
/* Whether value v certainly has at least one axis (so that a one-element [1]
 * constant broadcast against it leaves its shape alone): declared so, or
 * written by a Conv-like op or by elementwise ops from such a value. */
bool oq_has_axes(const oq_value *v);
/* The value of v when it is a one-element float constant that leaves the
 * shape of x, which it is broadcast against, alone; NAN otherwise. */
float oq_scalar_operand(const oq_value *v, const oq_value *x);
/* Whether v is the one-element float constant `value` (within float rounding) next to x. */
bool oq_is_scalar_value(const oq_value *v, const oq_value *x, float value);
/* For a binary node n of kind op with one output, reading x once: its other
 * input (x must come first for Sub and Div), else NULL. */
oq_value *oq_other_operand(const oq_node *n, oq_op_kind op, const oq_value *x);
/* Per-tensor 8-bit parameters of float constant c on its own range (widened
 * to hold 0), at the options' activation type: how a constant operand of an
 * 8-bit op is quantized. */
oq_qparams oq_constant_qparams(const oq_tensor *c, const oq_quant_options *o);
/* The op types --op-types accepts, in the order messages and reports list
 * them; without --op-types all are selected (Gather for embedding lookups
 * only, Add for constant tables added to an activation only). */
enum { OQ_QUANT_OP_TYPE_COUNT = 10 };
extern const char *const oq_quant_op_types[OQ_QUANT_OP_TYPE_COUNT];
/* Whether the options' --op-types (default: every oq_quant_op_types) select
 * ops of this kind. */
bool oq_quant_selects(const oq_quant_options *o, oq_op_kind kind);
/* Whether they select oq_quant_op_types[k]: what reports and analysis files
 * record, in that order, however --op-types spelled it. */
bool oq_quant_selects_type(const oq_quant_options *o, int k);
/* For an Einsum n of an activation and a float constant (the weight): which
 * input the weight is (*input) and its output-channel axis (*axis: a label of
 * the weight's that the output has and the activation has not, the longest
 * such); NULL, or why it cannot be quantized so. */
const char *oq_einsum_weight(const oq_node *n, int *input, int *axis);
/* Whether n is an Add of an activation and a float constant table: a
 * constant with two or more axes longer than 1, such as a learned position
 * embedding [1, T, d] (not a bias or a scalar). *input is the constant's
 * input index, *axis the axis of its rows, which get a scale each: the
 * longest axis before the last (the later on ties: T of [1, T, d] and of
 * [T, 1, d], the second T of a mask [1, 1, T, T]). */
bool oq_table_add(const oq_node *n, int *input, int *axis);
/* Whether ops of this kind are LSTM, GRU or RNN (weights W and R, input 1 and 2). */
bool oq_is_recurrent(oq_op_kind kind);
/* Whether the options' --exclude names node n. */
bool oq_quant_excludes(const oq_quant_options *o, const oq_node *n);

#endif
