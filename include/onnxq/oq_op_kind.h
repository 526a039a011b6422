/* oq_op_kind.h: the operators onnxq's graph passes recognise, resolved once
 * from (domain, op_type) into an enum when a node is made or renamed (see
 * oq_node.kind), so that passes compare integers instead of strings. Every
 * other operator is OQ_OP_OTHER. */
#ifndef ONNXQ_OQ_OP_KIND_H
#define ONNXQ_OQ_OP_KIND_H

#include <stdbool.h>

typedef enum oq_op_kind {
    OQ_OP_OTHER = 0,
    /* ai.onnx */
    OQ_OP_ABS,
    OQ_OP_ADD,
    OQ_OP_AND,
    OQ_OP_AVERAGE_POOL,
    OQ_OP_BATCH_NORMALIZATION,
    OQ_OP_CAST,
    OQ_OP_CAST_LIKE,
    OQ_OP_CEIL,
    OQ_OP_CLIP,
    OQ_OP_CONCAT,
    OQ_OP_CONSTANT,
    OQ_OP_CONSTANT_OF_SHAPE,
    OQ_OP_CONV,
    OQ_OP_CONV_INTEGER,
    OQ_OP_CONV_TRANSPOSE,
    OQ_OP_DEPTH_TO_SPACE,
    OQ_OP_DEQUANTIZE_LINEAR,
    OQ_OP_DIV,
    OQ_OP_DROPOUT,
    OQ_OP_DYNAMIC_QUANTIZE_LINEAR,
    OQ_OP_EINSUM,
    OQ_OP_EQUAL,
    OQ_OP_ERF,
    OQ_OP_EXP,
    OQ_OP_EXPAND,
    OQ_OP_FLATTEN,
    OQ_OP_FLOOR,
    OQ_OP_GATHER,
    OQ_OP_GEMM,
    OQ_OP_GLOBAL_AVERAGE_POOL,
    OQ_OP_GREATER,
    OQ_OP_GREATER_OR_EQUAL,
    OQ_OP_GRU,
    OQ_OP_HARD_SIGMOID,
    OQ_OP_HARD_SWISH,
    OQ_OP_IDENTITY,
    OQ_OP_IS_INF,
    OQ_OP_IS_NAN,
    OQ_OP_LEAKY_RELU,
    OQ_OP_LESS,
    OQ_OP_LESS_OR_EQUAL,
    OQ_OP_LOG,
    OQ_OP_LSTM,
    OQ_OP_MATMUL,
    OQ_OP_MATMUL_INTEGER,
    OQ_OP_MAX,
    OQ_OP_MAX_POOL,
    OQ_OP_MEAN,
    OQ_OP_MIN,
    OQ_OP_MOD,
    OQ_OP_MUL,
    OQ_OP_NEG,
    OQ_OP_NOT,
    OQ_OP_OR,
    OQ_OP_PAD,
    OQ_OP_POW,
    OQ_OP_QLINEAR_CONV,
    OQ_OP_QLINEAR_MATMUL,
    OQ_OP_QUANTIZE_LINEAR,
    OQ_OP_RANGE,
    OQ_OP_RECIPROCAL,
    OQ_OP_REDUCE_MAX,
    OQ_OP_REDUCE_MEAN,
    OQ_OP_REDUCE_MIN,
    OQ_OP_REDUCE_PROD,
    OQ_OP_REDUCE_SUM,
    OQ_OP_RELU,
    OQ_OP_RNN,
    OQ_OP_RESHAPE,
    OQ_OP_RESIZE,
    OQ_OP_ROUND,
    OQ_OP_SHAPE,
    OQ_OP_SIGMOID,
    OQ_OP_SIGN,
    OQ_OP_SIZE,
    OQ_OP_SLICE,
    OQ_OP_SPACE_TO_DEPTH,
    OQ_OP_SPLIT,
    OQ_OP_SQRT,
    OQ_OP_SQUEEZE,
    OQ_OP_SUB,
    OQ_OP_SUM,
    OQ_OP_TANH,
    OQ_OP_TILE,
    OQ_OP_TRANSPOSE,
    OQ_OP_UNSQUEEZE,
    OQ_OP_WHERE,
    OQ_OP_XOR,
    /* com.microsoft (ONNX Runtime's contrib ops) */
    OQ_OP_QGEMM,
    OQ_OP_QLINEAR_ADD,
    OQ_OP_QLINEAR_CONCAT,
    OQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL,
    OQ_OP_QLINEAR_LEAKY_RELU,
    OQ_OP_QLINEAR_MUL,
    OQ_OP_QLINEAR_SIGMOID,
    OQ_OP_COUNT
} oq_op_kind;

#define OQ_CONTRIB_DOMAIN "com.microsoft"

typedef struct oq_op_kind_info {
    const char *domain;  /* "" for ai.onnx */
    const char *op_type; /* NULL for OQ_OP_OTHER */
} oq_op_kind_info;

/* Indexed by oq_op_kind. */
extern const oq_op_kind_info oq_op_kinds[OQ_OP_COUNT];

/* The kind of (domain, op_type); domain "" and "ai.onnx" both mean the
 * default domain, NULL counts as "". OQ_OP_OTHER for anything unlisted. */
oq_op_kind oq_op_kind_of(const char *domain, const char *op_type);

/* Whether ops of this kind compute on 8-bit inputs (with int32 sums inside):
 * QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger and the
 * com.microsoft QGemm and QLinear ops. */
bool oq_op_is_integer(oq_op_kind k);

#endif
