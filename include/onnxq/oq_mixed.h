/* oq_mixed.h: accuracy targets. Given a target on the evaluation samples
 * (top-1 accuracy drop with labels, top-1 agreement with the float model, or
 * output SQNR), keep the most sensitive candidates (oq_sensitivity.h) in
 * float until the target holds: the default plan first; if it misses,
 * plans keeping the 1, 2, 4, ... most sensitive candidates float (at most
 * all but one) until one meets the target, then bisection between the last
 * miss and that hit. Each
 * step is the pipeline's plan -> rewrite -> evaluation against float outputs
 * computed once. The search assumes that keeping more nodes float does not
 * hurt; where it does, it still returns a plan that meets the target, not
 * necessarily the one with the fewest float nodes. */
#ifndef ONNXQ_OQ_MIXED_H
#define ONNXQ_OQ_MIXED_H

#include <stdbool.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_plan.h"
#include "onnxq/oq_quant.h"
#include "onnxq/oq_sensitivity.h"

typedef enum oq_target_kind {
    OQ_TARGET_NONE,
    OQ_TARGET_MAX_DROP,      /* top-1 accuracy of the first output may drop at most this many points (labels) */
    OQ_TARGET_MIN_AGREEMENT, /* top-1 agreement with float, percent, over the [N, C] and [N, T, C] outputs */
    OQ_TARGET_MIN_SQNR,      /* the lowest output SQNR, dB */
    OQ_TARGET_COUNT
} oq_target_kind;

typedef struct oq_target {
    oq_target_kind kind;
    double value;
    const char *output; /* --min-agreement and --min-sqnr: the one graph output they read (NULL: every
                           output); borrowed */
} oq_target;

/* "max_drop", "min_agreement", "min_sqnr" (and "none"). */
const char *oq_target_name(oq_target_kind k);

/* One plan the search evaluated. */
typedef struct oq_mixed_step {
    int kept_float;    /* candidates kept float */
    char *requantized; /* a give-back step: the kept node this plan quantized again (else NULL) */
    double metric;  /* the target's metric */
    bool met;
} oq_mixed_step;

/* What the search did (owned; oq_mixed_destroy). Metrics are the target's:
 * accuracy drop in points, agreement in percent, or SQNR in dB. */
typedef struct oq_mixed {
    oq_target target;
    bool ranking_from_file;     /* the ranking came from a sensitivity file, not an analysis of this run */
    double metric_before;       /* the default plan */
    double metric_after;        /* the chosen plan */
    int n_candidates;           /* candidates the default plan quantizes (the ranked ones) */
    int n_kept;
    char **kept;                /* [n_kept] names kept float, most sensitive first */
    /* per sample, from the ranking (NAN when the default plan met the target
     * and nothing was ranked): multiply-adds of the candidates left in INT8,
     * and of every Conv/ConvTranspose/MatMul/Gemm/LSTM/GRU/RNN of the graph */
    double int8_macs, total_macs;
    int n_steps;
    oq_mixed_step *steps;       /* [n_steps] every plan evaluated, in order */
    double seconds_analysis;    /* the sensitivity analysis made for the search (0: none) */
    double seconds_search;      /* the float reference and the plans evaluated */
} oq_mixed;

void oq_mixed_destroy(oq_mixed *m);
/* A deep copy of m (caller destroys). */
oq_status oq_mixed_copy(oq_mixed **out, const oq_mixed *m, oq_err *err);

/* The target's metric for an evaluation e, and whether it holds; fails
 * (OQ_EINVAL) when e lacks what t needs: labels for a drop, an output shaped
 * [N, C] or [N, T, C] for agreement. */
oq_status oq_target_check(const oq_target *t, const oq_eval *e, double *metric, bool *met, oq_err *err);

/* Searches for the plan of p (loaded, prepared, calibrated) that meets t on
 * the job's evaluation samples. *sens is the ranking: a whole result for
 * this model (every node in it a candidate of the model, every candidate the
 * default plan quantizes in it), or NULL to analyse when the default plan
 * misses t (oq_sensitivity_analyze; *sens then gets the result). The
 * caller owns *sens either way. The search keeps the k most sensitive
 * candidates float for the smallest k that meets t (doubling k, then
 * bisecting), then tries to quantize each of those again, least sensitive
 * first, keeping it quantized when t still holds. *out (caller destroys) says
 * what the search did. A plan that quantizes nothing is no answer: when even
 * the one with every ranked candidate but the least sensitive kept float
 * misses t, fails with OQ_EINVAL saying so. threads: 0 for every online
 * core. */
oq_status oq_mixed_search(oq_pipeline *p, const oq_target *t, oq_sensitivity **sens, int threads, oq_mixed **out,
                          oq_err *err);

/* The per-node policies of m's choice: every kept node OQ_POLICY_FLOAT
 * (*overrides malloc'ed, names borrowed from m; caller frees the array). */
oq_status oq_mixed_overrides(const oq_mixed *m, oq_plan_override **overrides, int *n, oq_err *err);

#endif
