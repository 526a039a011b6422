/* oq_prepare.h: graph preparation. Rewrites a float model into an equivalent
 * one that runs faster and quantizes better, through small independent passes:
 *
 *   - graph inputs that carry an initializer in an IR < 4 model (exporters of
 *     that time listed every weight as an input) become plain constants;
 *   - Identity nodes and inference-mode Dropout nodes are removed;
 *   - nodes whose inputs are all constants are evaluated with the executor's
 *     own kernels and replaced by their outputs, unless an output would be
 *     larger than the size bound below; so is Shape of a graph input whose
 *     declared shape is fully static (onnxq's commands and ONNX Runtime refuse
 *     a fed tensor of another shape; oq_session_run does not check dims);
 *   - an Add of a per-channel constant after a Conv moves into the Conv's bias;
 *   - an inference-mode BatchNormalization that alone reads a Conv's or Gemm's
 *     output folds into that node's weight and bias;
 *   - a MatMul of a 2-D activation by a constant 2-D weight followed by an Add
 *     of a constant row becomes one Gemm;
 *   - nodes whose outputs nothing reads and constants nothing reads go.
 *
 * Values that survive keep their names; every new value gets a name derived
 * from the ones it replaces, so the same model gives the same prepared model
 * (and calibration tables keyed by value names match) on every run. Graph
 * inputs and outputs keep their names. Constant folding, Identity/Dropout and
 * dead-code removal leave every computed number bit-identical; the Conv bias,
 * BatchNormalization and Gemm folds reorder float additions and
 * multiplications, so outputs move by rounding only (relative 1e-6 or so). */
#ifndef ONNXQ_OQ_PREPARE_H
#define ONNXQ_OQ_PREPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"

/* Default for oq_prepare_options.fold_max_bytes: 16 MiB. */
#define OQ_PREPARE_FOLD_BYTES_DEFAULT ((size_t)16 << 20)

typedef struct oq_prepare_options {
    /* A node on constants is folded only when its outputs take at most
     * max(fold_max_bytes, the bytes of its constant inputs): folding never
     * turns a small model into a huge one (an Expand or ConstantOfShape to
     * [1e5, 1e5] stays a node). 0 = OQ_PREPARE_FOLD_BYTES_DEFAULT. */
    size_t fold_max_bytes;
} oq_prepare_options;

/* What each pass did, counted in oq_prepare_result.counts. */
typedef enum oq_prepare_stat {
    OQ_PREPARE_INPUTS_MADE_CONSTANT = 0, /* IR < 4 graph inputs with an initializer */
    OQ_PREPARE_IDENTITIES_REMOVED,       /* Identity and inference Dropout nodes */
    OQ_PREPARE_CONSTANTS_FOLDED,         /* nodes replaced by the constants they compute */
    OQ_PREPARE_FOLDS_OVER_LIMIT,         /* nodes on constants left alone by the size bound */
    OQ_PREPARE_CONV_ADDS_FOLDED,         /* Conv + per-channel Add -> Conv with bias */
    OQ_PREPARE_BATCHNORMS_FOLDED,        /* BatchNormalization folded into Conv or Gemm */
    OQ_PREPARE_MATMUL_ADDS_TO_GEMM,      /* MatMul + Add -> Gemm */
    OQ_PREPARE_DEAD_NODES_REMOVED,       /* nodes nothing reads */
    OQ_PREPARE_INITIALIZERS_REMOVED,     /* initializers nothing reads */
    OQ_PREPARE_NODES_NAMED,              /* unnamed nodes given a name (OpType_N), which --exclude and analyze need */
    OQ_PREPARE_STAT_COUNT
} oq_prepare_stat;

/* Names of a stat: `key` for JSON ("batchnorms_folded"), `label` for a
 * one-line summary ("BatchNormalization folded"). */
typedef struct oq_prepare_stat_info {
    const char *key;
    const char *label;
} oq_prepare_stat_info;

extern const oq_prepare_stat_info oq_prepare_stats[OQ_PREPARE_STAT_COUNT];

typedef struct oq_prepare_result {
    int counts[OQ_PREPARE_STAT_COUNT];
    int nodes_before, nodes_after; /* top-level nodes */
    bool ir_raised; /* IR version raised to 4: constants are no longer all graph inputs */
} oq_prepare_result;

/* Prepares m in place (top-level graph; subgraphs are left as they are).
 * o may be NULL (defaults); r is filled. On failure (out of memory) m may be
 * half prepared and must be discarded. A node that cannot be evaluated (no
 * kernel, or its kernel refuses the inputs) is simply not folded: preparing
 * never fails where running the original would not. */
oq_status oq_prepare_model(oq_model *m, const oq_prepare_options *o, oq_prepare_result *r, oq_err *err);

/* Graph inputs of m named in names[0..n) that carry an initializer (a default
 * the caller may override; IR < 4 models give every weight one) lose it, so the
 * caller feeds them and oq_prepare_model leaves them inputs. Other names are
 * ignored. Returns how many inputs were released. */
int oq_prepare_release_inputs(oq_model *m, int n, const char *const *names);

#endif
