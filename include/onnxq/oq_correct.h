/* oq_correct.h: what the corrections of systematic quantization error did,
 * for the report. The pipeline runs them as parts of its stages
 * (oq_pipeline.h):
 *
 * - cross-layer equalization, before planning: where a Conv's output reaches
 *   a depthwise Conv through nothing but an optional Relu, each channel of
 *   that tensor is scaled up (the first Conv's weights and bias times s_c,
 *   the depthwise weights of channel c over s_c: the same function in real
 *   arithmetic) until its calibrated per-channel range fills the tensor's
 *   quantization range, so that channels far narrower than the tensor are
 *   no longer a few steps wide. Per-channel weight scales absorb both
 *   factors, so no weight loses precision;
 * - bias correction, in the rewrite: each quantized Conv/MatMul/Gemm's bias
 *   absorbs the mean error of its output channels (float minus quantized,
 *   before the output is rounded), measured on calibration samples with
 *   every layer before it already quantized and corrected (Nagel et al.
 *   2019, empirical bias correction). */
#ifndef ONNXQ_OQ_CORRECT_H
#define ONNXQ_OQ_CORRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_err.h"

/* Bias correction measures on at most this many calibration samples, and
 * on fewer when their activations would take more than
 * OQ_BIAS_CORRECTION_MAX_BYTES at once (it keeps every sample's run open
 * while it goes from layer to layer). */
#define OQ_BIAS_CORRECTION_MAX_SAMPLES 64
#define OQ_BIAS_CORRECTION_MAX_BYTES ((int64_t)256 << 20)

typedef struct oq_bias_correction {
    bool requested;          /* the options ask for it */
    bool applied;            /* it ran: requested, and there were samples and quantized nodes */
    const char *why_not;     /* requested but not applied: why (static text) */
    int64_t samples;         /* the calibration samples it measured on */
    int nodes;               /* quantized nodes whose bias it set */
    int64_t channels;        /* their output channels */
    int nodes_without_bias;  /* quantized nodes that have no bias to carry it (QLinearMatMul, a Conv without
                                one) */
    double mean_abs_shift;   /* mean |change| of the corrected biases, in steps of their node's output */
} oq_bias_correction;

/* One pair of Convs whose shared tensor was equalized. */
typedef struct oq_equalized_pair {
    char *tensor;            /* the value between them (scaled per channel in the quantized model) */
    char *producer, *consumer; /* node names */
    int64_t channels;
    int64_t scaled;          /* channels with a scale above 1 */
    double max_scale;
} oq_equalized_pair;

typedef struct oq_equalization {
    bool requested;          /* the options ask for it */
    bool applied;            /* some pair was equalized */
    int candidates;          /* pairs found in the graph */
    const char *why_not;     /* requested, nothing equalized: why (static text) */
    int n_pairs;
    oq_equalized_pair *pairs; /* in graph order */
} oq_equalization;

/* Frees what e owns and empties it; NULL is a no-op. */
void oq_equalization_release(oq_equalization *e);
/* A deep copy of src into dst (dst's previous contents are not freed). */
oq_status oq_equalization_copy(oq_equalization *dst, const oq_equalization *src, oq_err *err);

#endif
