/* folds.h: float-graph rewrites around quantization: fusing hard-swish
 * patterns into HardSwish (before planning) and moving scalar factors into
 * (De)QuantizeLinear scales (after the rewrite). Graph preparation
 * (src/prepare) folds BatchNormalization. Internal to src/quant. */
#ifndef ONNXQ_QUANT_FOLDS_H
#define ONNXQ_QUANT_FOLDS_H

#include "onnxq/oq_graph.h"
#include "onnxq/oq_quant.h"

/* glue.c: replaces every hard-swish pattern by one HardSwish node, raising
 * m's opset to 14 first when it is older (*opset_to gets it); leaves the
 * graph alone when that is not possible. Adds the count to *n_fused. */
oq_status oq_fuse_hard_swish(oq_model *m, int64_t *opset_to, int *n_fused, oq_err *err);
/* glue.c: moves positive scalar factors of Mul nodes next to
 * (De)QuantizeLinear into their scales where the integers stay the same;
 * adds the count to *n_folded. */
oq_status oq_fold_factors(oq_graph *g, int *n_folded, oq_err *err);

#endif
