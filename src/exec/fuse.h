/* fuse.h: plan-time fusion of elementwise chains. Internal to src/exec.
 *
 * A chain is a run of float elementwise nodes (Add, Sub, Mul, Div, Relu,
 * Sigmoid, HardSigmoid, HardSwish, Clip with constant bounds, Erf) whose operands are scalar
 * constants, values computed earlier in the chain, or a few source values of
 * one shape, such as the x * clip(x + 3, 0, 6) / 6 that exporters write for
 * hard-swish, or a residual add that follows it. Run fused,
 * the chain makes one pass over memory instead of one per node, and every
 * element gets exactly the float operations the separate kernels would do,
 * so the result is bit-identical. Only the chain's last value is visible to
 * the rest of the graph; the values in between are never materialized. */
#ifndef ONNXQ_EXEC_FUSE_H
#define ONNXQ_EXEC_FUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_graph.h"

#define OQ_FUSE_MAX_NODES 12
#define OQ_FUSE_MAX_SRC 4

typedef enum oq_ew_kind {
    OQ_EW_ADD,
    OQ_EW_SUB,
    OQ_EW_MUL,
    OQ_EW_DIV,
    OQ_EW_RELU,
    OQ_EW_SIGMOID,
    OQ_EW_HARD_SIGMOID, /* k0 = alpha, k1 = beta */
    OQ_EW_HARD_SWISH,
    OQ_EW_CLIP,         /* k0 = lo, k1 = hi */
    OQ_EW_ERF,
    OQ_EW_KIND_COUNT
} oq_ew_kind;

/* One step: step k computes register OQ_FUSE_MAX_SRC + k = kind(a, b), where
 * operand r < OQ_FUSE_MAX_SRC is source r, a larger r the register of an
 * earlier step, and r < 0 the constant k0. */
typedef struct oq_ew_step {
    oq_ew_kind kind;
    int a, b;
    float k0, k1;
} oq_ew_step;

typedef struct oq_fusion {
    int n;                              /* nodes, 1..OQ_FUSE_MAX_NODES */
    int nodes[OQ_FUSE_MAX_NODES];       /* node indices in g, ascending; step k runs nodes[k] */
    oq_ew_step steps[OQ_FUSE_MAX_NODES];
    int n_src;                          /* 1..OQ_FUSE_MAX_SRC */
    const oq_value *src[OQ_FUSE_MAX_SRC]; /* the chain's non-constant inputs, of one shape at run time */
    const oq_value *dst;                /* output of the last node: the chain's result */
    int const_rank;                     /* highest rank of a constant operand (must not exceed src's) */
} oq_fusion;

/* Finds disjoint chains in g, each the longest that grows from its source
 * (a chain of one node has one source: the planner gives it to a Conv or a
 * DequantizeLinear as its epilogue or leaves the node alone).
 * By value id: pinned[v] is true for values that must be computed on their
 * own (graph outputs, values read from inside subgraphs, observed values),
 * kept[v] for values never freed during a run (graph outputs); by node
 * index, opsets[i] is node i's opset and held[i] is true for nodes the
 * planner runs otherwise, which no chain takes. On success *out (caller
 * frees; NULL when *n_out is 0) holds *n_out chains; false when out of memory. */
bool oq_fuse_find(const oq_graph *g, const bool *pinned, const bool *kept, const int64_t *opsets, const bool *held,
                  oq_fusion **out, int *n_out);

/* y[i] = chain(x[0][i], x[1][i], ...) for i in [begin, end); x[s] is
 * source s's data. y overlaps no source. */
void oq_fusion_run(const oq_fusion *f, float *y, const float *const *x, int64_t begin, int64_t end);
/* y[i] = chain(y[i]) for i < n, for a chain with one source. */
void oq_fusion_run_inplace(const oq_fusion *f, float *y, int64_t n);

#endif
