/* ops.h: the op families. Each src/exec/ops_<family>.c defines one array of
 * oq_op_def and its length; op_table.c concatenates them into the one registry
 * that oq_op_find searches. Internal to src/exec. */
#ifndef ONNXQ_EXEC_OPS_H
#define ONNXQ_EXEC_OPS_H

#include "onnxq/oq_exec.h"

extern const oq_op_def oq_ops_control[];      extern const int oq_ops_control_count;
extern const oq_op_def oq_ops_elementwise[];  extern const int oq_ops_elementwise_count;
extern const oq_op_def oq_ops_reduce[];       extern const int oq_ops_reduce_count;
extern const oq_op_def oq_ops_norm[];         extern const int oq_ops_norm_count;
extern const oq_op_def oq_ops_nn[];           extern const int oq_ops_nn_count;     /* conv, matmul, gemm, pool, einsum */
extern const oq_op_def oq_ops_rnn[];          extern const int oq_ops_rnn_count;
extern const oq_op_def oq_ops_shape[];        extern const int oq_ops_shape_count;
extern const oq_op_def oq_ops_detect[];       extern const int oq_ops_detect_count;    /* NonMaxSuppression, RoiAlign */
extern const oq_op_def oq_ops_qdq[];          extern const int oq_ops_qdq_count;       /* (De)QuantizeLinear, DynamicQuantizeLinear */
extern const oq_op_def oq_ops_qmatmul[];      extern const int oq_ops_qmatmul_count;   /* QLinearMatMul, MatMulInteger, QGemm */
extern const oq_op_def oq_ops_qconv[];        extern const int oq_ops_qconv_count;     /* QLinearConv, ConvInteger */
extern const oq_op_def oq_ops_qcontrib[];     extern const int oq_ops_qcontrib_count;  /* com.microsoft QLinear* */

#endif
