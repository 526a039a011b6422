/* op_kind.c: the table of recognised operators (see oq_op_kind.h). */
#include "onnxq/oq_op_kind.h"

#include <assert.h>
#include <string.h>

const oq_op_kind_info oq_op_kinds[OQ_OP_COUNT] = {
    [OQ_OP_OTHER] = {"", NULL},
    [OQ_OP_ABS] = {"", "Abs"},
    [OQ_OP_ADD] = {"", "Add"},
    [OQ_OP_AND] = {"", "And"},
    [OQ_OP_AVERAGE_POOL] = {"", "AveragePool"},
    [OQ_OP_BATCH_NORMALIZATION] = {"", "BatchNormalization"},
    [OQ_OP_CAST] = {"", "Cast"},
    [OQ_OP_CAST_LIKE] = {"", "CastLike"},
    [OQ_OP_CEIL] = {"", "Ceil"},
    [OQ_OP_CLIP] = {"", "Clip"},
    [OQ_OP_CONCAT] = {"", "Concat"},
    [OQ_OP_CONSTANT] = {"", "Constant"},
    [OQ_OP_CONSTANT_OF_SHAPE] = {"", "ConstantOfShape"},
    [OQ_OP_CONV] = {"", "Conv"},
    [OQ_OP_CONV_INTEGER] = {"", "ConvInteger"},
    [OQ_OP_CONV_TRANSPOSE] = {"", "ConvTranspose"},
    [OQ_OP_DEPTH_TO_SPACE] = {"", "DepthToSpace"},
    [OQ_OP_DEQUANTIZE_LINEAR] = {"", "DequantizeLinear"},
    [OQ_OP_DIV] = {"", "Div"},
    [OQ_OP_DROPOUT] = {"", "Dropout"},
    [OQ_OP_DYNAMIC_QUANTIZE_LINEAR] = {"", "DynamicQuantizeLinear"},
    [OQ_OP_EINSUM] = {"", "Einsum"},
    [OQ_OP_EQUAL] = {"", "Equal"},
    [OQ_OP_ERF] = {"", "Erf"},
    [OQ_OP_EXP] = {"", "Exp"},
    [OQ_OP_EXPAND] = {"", "Expand"},
    [OQ_OP_FLATTEN] = {"", "Flatten"},
    [OQ_OP_FLOOR] = {"", "Floor"},
    [OQ_OP_GATHER] = {"", "Gather"},
    [OQ_OP_GEMM] = {"", "Gemm"},
    [OQ_OP_GLOBAL_AVERAGE_POOL] = {"", "GlobalAveragePool"},
    [OQ_OP_GREATER] = {"", "Greater"},
    [OQ_OP_GREATER_OR_EQUAL] = {"", "GreaterOrEqual"},
    [OQ_OP_GRU] = {"", "GRU"},
    [OQ_OP_HARD_SIGMOID] = {"", "HardSigmoid"},
    [OQ_OP_HARD_SWISH] = {"", "HardSwish"},
    [OQ_OP_IDENTITY] = {"", "Identity"},
    [OQ_OP_IS_INF] = {"", "IsInf"},
    [OQ_OP_IS_NAN] = {"", "IsNaN"},
    [OQ_OP_LEAKY_RELU] = {"", "LeakyRelu"},
    [OQ_OP_LESS] = {"", "Less"},
    [OQ_OP_LESS_OR_EQUAL] = {"", "LessOrEqual"},
    [OQ_OP_LOG] = {"", "Log"},
    [OQ_OP_LSTM] = {"", "LSTM"},
    [OQ_OP_MATMUL] = {"", "MatMul"},
    [OQ_OP_MATMUL_INTEGER] = {"", "MatMulInteger"},
    [OQ_OP_MAX] = {"", "Max"},
    [OQ_OP_MAX_POOL] = {"", "MaxPool"},
    [OQ_OP_MEAN] = {"", "Mean"},
    [OQ_OP_MIN] = {"", "Min"},
    [OQ_OP_MOD] = {"", "Mod"},
    [OQ_OP_MUL] = {"", "Mul"},
    [OQ_OP_NEG] = {"", "Neg"},
    [OQ_OP_NOT] = {"", "Not"},
    [OQ_OP_OR] = {"", "Or"},
    [OQ_OP_PAD] = {"", "Pad"},
    [OQ_OP_POW] = {"", "Pow"},
    [OQ_OP_QLINEAR_CONV] = {"", "QLinearConv"},
    [OQ_OP_QLINEAR_MATMUL] = {"", "QLinearMatMul"},
    [OQ_OP_QUANTIZE_LINEAR] = {"", "QuantizeLinear"},
    [OQ_OP_RANGE] = {"", "Range"},
    [OQ_OP_RECIPROCAL] = {"", "Reciprocal"},
    [OQ_OP_REDUCE_MAX] = {"", "ReduceMax"},
    [OQ_OP_REDUCE_MEAN] = {"", "ReduceMean"},
    [OQ_OP_REDUCE_MIN] = {"", "ReduceMin"},
    [OQ_OP_REDUCE_PROD] = {"", "ReduceProd"},
    [OQ_OP_REDUCE_SUM] = {"", "ReduceSum"},
    [OQ_OP_RELU] = {"", "Relu"},
    [OQ_OP_RNN] = {"", "RNN"},
    [OQ_OP_RESHAPE] = {"", "Reshape"},
    [OQ_OP_RESIZE] = {"", "Resize"},
    [OQ_OP_ROUND] = {"", "Round"},
    [OQ_OP_SHAPE] = {"", "Shape"},
    [OQ_OP_SIGMOID] = {"", "Sigmoid"},
    [OQ_OP_SIGN] = {"", "Sign"},
    [OQ_OP_SIZE] = {"", "Size"},
    [OQ_OP_SLICE] = {"", "Slice"},
    [OQ_OP_SPACE_TO_DEPTH] = {"", "SpaceToDepth"},
    [OQ_OP_SPLIT] = {"", "Split"},
    [OQ_OP_SQRT] = {"", "Sqrt"},
    [OQ_OP_SQUEEZE] = {"", "Squeeze"},
    [OQ_OP_SUB] = {"", "Sub"},
    [OQ_OP_SUM] = {"", "Sum"},
    [OQ_OP_TANH] = {"", "Tanh"},
    [OQ_OP_TILE] = {"", "Tile"},
    [OQ_OP_TRANSPOSE] = {"", "Transpose"},
    [OQ_OP_UNSQUEEZE] = {"", "Unsqueeze"},
    [OQ_OP_WHERE] = {"", "Where"},
    [OQ_OP_XOR] = {"", "Xor"},
    [OQ_OP_QGEMM] = {OQ_CONTRIB_DOMAIN, "QGemm"},
    [OQ_OP_QLINEAR_ADD] = {OQ_CONTRIB_DOMAIN, "QLinearAdd"},
    [OQ_OP_QLINEAR_CONCAT] = {OQ_CONTRIB_DOMAIN, "QLinearConcat"},
    [OQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL] = {OQ_CONTRIB_DOMAIN, "QLinearGlobalAveragePool"},
    [OQ_OP_QLINEAR_LEAKY_RELU] = {OQ_CONTRIB_DOMAIN, "QLinearLeakyRelu"},
    [OQ_OP_QLINEAR_MUL] = {OQ_CONTRIB_DOMAIN, "QLinearMul"},
    [OQ_OP_QLINEAR_SIGMOID] = {OQ_CONTRIB_DOMAIN, "QLinearSigmoid"},
};
static_assert(sizeof oq_op_kinds / sizeof oq_op_kinds[0] == OQ_OP_COUNT, "one entry per kind");

bool oq_op_is_integer(oq_op_kind k)
{
    switch (k) {
    case OQ_OP_QLINEAR_CONV:
    case OQ_OP_QLINEAR_MATMUL:
    case OQ_OP_CONV_INTEGER:
    case OQ_OP_MATMUL_INTEGER:
    case OQ_OP_QGEMM:
    case OQ_OP_QLINEAR_ADD:
    case OQ_OP_QLINEAR_CONCAT:
    case OQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL:
    case OQ_OP_QLINEAR_LEAKY_RELU:
    case OQ_OP_QLINEAR_MUL:
    case OQ_OP_QLINEAR_SIGMOID: return true;
    default: return false;
    }
}

oq_op_kind oq_op_kind_of(const char *domain, const char *op_type)
{
    if (!domain || !strcmp(domain, "ai.onnx"))
        domain = "";
    for (int k = 1; op_type && k < OQ_OP_COUNT; k++)
        if (!strcmp(oq_op_kinds[k].op_type, op_type) && !strcmp(oq_op_kinds[k].domain, domain))
            return (oq_op_kind)k;
    return OQ_OP_OTHER;
}
