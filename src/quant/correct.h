/* correct.h: the corrections of systematic quantization error that the
 * pipeline runs inside its stages (see oq_correct.h): bias correction
 * (bias_correction.c) after the rewrite, and cross-layer equalization
 * (equalize.c) before planning. Internal to src/quant. */
#ifndef ONNXQ_QUANT_CORRECT_H
#define ONNXQ_QUANT_CORRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_correct.h"
#include "onnxq/oq_dataset.h"
#include "onnxq/oq_plan.h"
#include "onnxq/oq_quant.h"

/* ---- bias correction --------------------------------------------------------------- */

/* How the weights of a quantized product are laid out. */
typedef enum oq_weight_layout {
    OQ_WEIGHT_CONV, /* (channels, in / group, k...): channel c reads the input channels of its group */
    OQ_WEIGHT_KN,   /* (K, N): column n makes output channel n */
    OQ_WEIGHT_NK,   /* (N, K): row n makes output channel n */
} oq_weight_layout;

/* A quantized Conv/MatMul/Gemm as the rewrite left it: what its output is
 * computed from and where its bias lives, in the rewritten graph. */
typedef struct oq_bias_site {
    int node;                    /* the float node it replaces: index in the plan */
    const oq_node *op;           /* the node computing the product */
    const oq_value *x;           /* what op reads: 8-bit (QOperator, dynamic) or dequantized (QDQ) */
    float x_scale;               /* x's parameters when x is 8-bit and static */
    int32_t x_zero_point;
    const oq_value *x_scale_v;   /* dynamic mode: x's parameters as computed per run, else NULL */
    const oq_value *x_zero_point_v;
    const oq_value *w;           /* the 8-bit weights op reads (a constant) */
    int32_t w_zero_point;        /* 0, or 128 for the uint8 weights of ConvInteger */
    oq_weight_layout layout;
    int64_t channels;            /* output channels */
    float *w_scales;             /* [channels] (the one scale repeated when per tensor); owned */
    float out_scale;             /* the output's step (static QOperator and QDQ; 0 otherwise), for the report */
    oq_value *bias;              /* the constant holding the bias, or NULL when op has none */
    float *bias_after;           /* [channels] the float constant of an Add folded into the bias, which the
                                  * float node's output comes before; NULL when none. Owned */
    bool bias_int32;             /* int32 at x_scale x w_scales[c]; else float */
    /* QDQ: the DequantizeLinear output op reads the bias through (computed
     * before op, so a run in progress holds it), and that node's float scales */
    const oq_value *bias_dq;
    const oq_value *bias_dq_scale;
} oq_bias_site;

typedef struct oq_bias_sites {
    int n;
    oq_bias_site *s;             /* in the order the rewrite met them */
} oq_bias_sites;

void oq_bias_sites_release(oq_bias_sites *s);

/* oq_quant_rewrite that also lists, in *sites (owned; valid while m lives),
 * every product it quantized. */
oq_status oq_quant_rewrite_sites(oq_model *m, const oq_plan *plan, oq_quant_result *result, oq_bias_sites *sites,
                                 oq_err *err);

/* The float model's side of bias correction: the mean of every Conv, MatMul
 * and Gemm output channel, per sample, on the first samples of a data set. */
typedef struct oq_bias_reference oq_bias_reference;

/* Runs float model m (the prepared graph plans are made on: the reference
 * is kept by its node indices) on up to max_samples (0: all, and never more
 * than OQ_BIAS_CORRECTION_MAX_SAMPLES) samples of ds and keeps the channel
 * means of each Conv/MatMul/Gemm output. m and ds are borrowed for the call. */
oq_status oq_bias_reference_create(oq_bias_reference **out, const oq_model *m, oq_dataset *ds, int64_t max_samples,
                                   int threads, oq_err *err);
void oq_bias_reference_destroy(oq_bias_reference *r);

/* Sets the bias of each site of quantized model m (rewritten from the graph
 * ref was made on) so that its output channels' means over the reference
 * samples equal the float model's, site after site in graph order, each
 * measured with the corrected sites before it: one pass of m over the
 * samples, all kept open at once (as many as fit in
 * OQ_BIAS_CORRECTION_MAX_BYTES). Fills *out. */
oq_status oq_bias_correct(oq_model *m, const oq_bias_sites *sites, const oq_bias_reference *ref, oq_dataset *ds,
                          int threads, oq_bias_correction *out, oq_err *err);

/* ---- cross-layer equalization ---------------------------------------------------- */

/* By value id of g (caller frees; NULL when the options rule equalization
 * out): the tensors between a Conv and a depthwise Conv (after a Relu, when
 * one sits between them) that equalization may scale, whose per-channel
 * extremes calibration must keep. */
oq_status oq_equalize_candidates(const oq_graph *g, const oq_quant_options *o, bool **out, oq_err *err);

/* Equalizes every pair of m (as oq_equalize_candidates finds them) whose
 * tensor has per-channel scales in table: the producer's weights and bias
 * and the consumer's weights become scaled copies. Fills *eq (released
 * first; the caller releases it), saying why when nothing was equalized. */
oq_status oq_equalize(oq_model *m, const oq_quant_options *o, const oq_calib_table *table, oq_equalization *eq,
                      oq_err *err);

#endif
