/* prepare.h: what the passes of graph preparation share (see oq_prepare.h).
 * Internal to src/prepare. */
#ifndef ONNXQ_PREPARE_PREPARE_H
#define ONNXQ_PREPARE_PREPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/oq_graph.h"
#include "onnxq/oq_prepare.h"

/* The ops the passes look at, resolved once per visit from (domain, op_type)
 * by prep_op_of; anything else is PREP_OP_OTHER. */
typedef enum prep_op {
    PREP_OP_OTHER = 0,
    /* what the structural passes rewrite or look through */
    PREP_OP_ADD, PREP_OP_BATCHNORM, PREP_OP_CONV, PREP_OP_DROPOUT, PREP_OP_FLATTEN, PREP_OP_GEMM,
    PREP_OP_IDENTITY, PREP_OP_MATMUL, PREP_OP_RESHAPE, PREP_OP_SHAPE,
    /* further ops that constant folding evaluates */
    PREP_OP_ABS, PREP_OP_AND, PREP_OP_CAST, PREP_OP_CAST_LIKE, PREP_OP_CEIL, PREP_OP_CLIP, PREP_OP_CONCAT,
    PREP_OP_CONSTANT_OF_SHAPE, PREP_OP_DIV, PREP_OP_EQUAL, PREP_OP_ERF, PREP_OP_EXP, PREP_OP_EXPAND,
    PREP_OP_FLOOR, PREP_OP_GATHER, PREP_OP_GREATER, PREP_OP_GREATER_OR_EQUAL, PREP_OP_IS_INF, PREP_OP_IS_NAN,
    PREP_OP_LESS, PREP_OP_LESS_OR_EQUAL, PREP_OP_LOG, PREP_OP_MAX, PREP_OP_MEAN, PREP_OP_MIN, PREP_OP_MOD,
    PREP_OP_MUL, PREP_OP_NEG, PREP_OP_NOT, PREP_OP_OR, PREP_OP_POW, PREP_OP_RANGE, PREP_OP_RECIPROCAL,
    PREP_OP_REDUCE_MAX, PREP_OP_REDUCE_MEAN, PREP_OP_REDUCE_MIN, PREP_OP_REDUCE_PROD, PREP_OP_REDUCE_SUM,
    PREP_OP_RELU, PREP_OP_ROUND, PREP_OP_SIGMOID, PREP_OP_SIGN, PREP_OP_SIZE, PREP_OP_SLICE, PREP_OP_SPLIT,
    PREP_OP_SQRT, PREP_OP_SQUEEZE, PREP_OP_SUB, PREP_OP_SUM, PREP_OP_TANH, PREP_OP_TILE, PREP_OP_TRANSPOSE,
    PREP_OP_UNSQUEEZE, PREP_OP_WHERE, PREP_OP_XOR,
    PREP_OP_COUNT
} prep_op;

/* How constant folding bounds a node's output size before running it. */
typedef enum prep_fold_rule {
    FOLD_NEVER = 0,         /* not folded (random, stateful, control flow, or not worth it) */
    FOLD_AT_MOST_INPUT,     /* at most as many elements as input 0 (reshapes, casts, unary, reductions) */
    FOLD_BROADCAST,         /* the broadcast shape of all inputs */
    FOLD_CONCAT,            /* the sum of the inputs' elements */
    FOLD_GATHER,            /* indices x one slice of the data */
    FOLD_SHAPE,             /* Shape of a value whose shape is static: input need not be constant */
    FOLD_CONSTANT_OF_SHAPE, /* the product of input 0's values */
    FOLD_EXPAND,            /* input 0 broadcast to input 1's values */
    FOLD_TILE,              /* input 0 times the product of input 1's values */
    FOLD_RANGE,             /* ceil((limit - start) / delta) */
} prep_fold_rule;

typedef struct prep_op_info {
    const char *name; /* op_type in the default domain */
    prep_fold_rule fold;
} prep_op_info;

extern const prep_op_info prep_ops[PREP_OP_COUNT];

/* The op kind of n (PREP_OP_OTHER for other domains and ops; NULL gives OTHER). */
prep_op prep_op_of(const oq_node *n);

/* State of one oq_prepare_model call. */
typedef struct prep_ctx {
    oq_model *m;
    oq_graph *g;             /* m->graph */
    size_t fold_max_bytes;   /* resolved oq_prepare_options.fold_max_bytes */
    oq_prepare_result *r;
    oq_err *err;
} prep_ctx;

/* ---- graph queries (valid after oq_graph_index) --------------------------------- */

bool prep_is_input(const oq_graph *g, const oq_value *v);
bool prep_is_output(const oq_graph *g, const oq_value *v);
/* A constant of g that no caller can override: v has a constant and is not a graph input. */
bool prep_is_constant(const oq_graph *g, const oq_value *v);
/* The float constant v (see prep_is_constant) as a tensor, or NULL. */
const oq_tensor *prep_float_constant(const oq_graph *g, const oq_value *v);
/* The one node that reads v, when it is v's only use, reads it as a plain
 * input (not from inside a subgraph) and v is not a graph output; else NULL. */
oq_node *prep_sole_reader(const oq_graph *g, const oq_value *v);
/* True when a subgraph of some node of g reads v. */
bool prep_read_by_subgraph(const oq_graph *g, const oq_value *v);

/* ---- graph edits ----------------------------------------------------------------- */

/* A new initializer holding t (ownership taken, also on failure), named base
 * or base_N when base is taken, with its tensor type declared. NULL with err set. */
oq_value *prep_new_constant(prep_ctx *c, const char *base, oq_tensor *t);
/* Moves *t into a new heap tensor (ownership passes; *t is cleared). NULL with err set. */
oq_tensor *prep_box(oq_tensor *t, oq_err *err);

/* ---- the passes: each counts what it did in c->r and leaves g indexed ------------------ */

/* cleanup.c */
oq_status prep_inputs_to_constants(prep_ctx *c);
oq_status prep_remove_identities(prep_ctx *c);
oq_status prep_remove_dead(prep_ctx *c);
/* fold.c */
oq_status prep_fold_constants(prep_ctx *c);
/* affine.c */
oq_status prep_fold_into_producers(prep_ctx *c);
oq_status prep_matmul_add_to_gemm(prep_ctx *c);

#endif
