/* oq_sensitivity.h: sensitivity analysis. For every candidate node that a
 * plan quantizes (a Conv, MatMul or Gemm the options select and that can be
 * quantized), how far the model's outputs move when that node alone is
 * quantized and every other candidate stays float: the same output metrics
 * as the evaluation (oq_output_metrics), over the evaluation samples, and a
 * rank by one primary metric, the lowest output SQNR (lower: more
 * sensitive; ties go to the earlier node).
 *
 * Each "node alone" model is made by the pipeline's plan (every other
 * candidate OQ_POLICY_FLOAT) and rewrite, so the node is quantized exactly as
 * in the real output. The float reference is the planned graph
 * (oq_pipeline_prepared). Its activations are computed once per chunk of
 * samples and kept (only those a "node alone" model starts from, within a
 * memory budget); each such model runs only the nodes that differ from the
 * float graph or read what those compute, starting from the kept values.
 * Candidates are spread over worker threads, one executor session each; the
 * numbers do not depend on the thread count or the chunking.
 *
 * A run can be split into shards (candidate i, counted in graph order from 0,
 * belongs to shard i mod N + 1 of N); oq_sensitivity_merge joins the partial
 * results into what one whole run gives, byte for byte in JSON. */
#ifndef ONNXQ_OQ_SENSITIVITY_H
#define ONNXQ_OQ_SENSITIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_quant.h"

/* oq_pipeline.h (which includes this header through oq_report.h) */
typedef struct oq_pipeline oq_pipeline;
typedef struct oq_job oq_job;
typedef struct oq_outcome oq_outcome;

typedef struct oq_sensitivity_node {
    char *name, *op_type;
    int index;                  /* among the analysed candidates, in graph order, from 0 */
    double macs;                /* its multiply-adds per sample (mean over the samples) */
    double score_db;            /* the primary metric: lowest output SQNR in dB (+inf when exact) */
    int rank;                   /* 1: most sensitive; 0 in a partial result */
    oq_output_metrics *outputs; /* [n_outputs] the model outputs against float; names NULL (see output_names) */
} oq_sensitivity_node;

typedef struct oq_sensitivity {
    char *tool_version;
    /* what the numbers depend on (model hash, graph preparation, quantization
     * options, ranges, evaluation samples) as compact JSON text: results
     * merge only when theirs are equal */
    char *setup;
    int shard_index, shard_count; /* 1 of 1 for a whole result */
    int n_candidates;             /* analysed candidates of the whole model */
    double total_macs;            /* per sample, every Conv/ConvTranspose/MatMul/Gemm/LSTM/GRU/RNN of the graph */
    int n_outputs;
    char **output_names;          /* [n_outputs] */
    int n_nodes;
    oq_sensitivity_node *nodes;   /* [n_nodes] this result's candidates, by index */
} oq_sensitivity;

typedef struct oq_sensitivity_options {
    int shard_index, shard_count; /* analyse shard index (1..count) of count; 0 and 0: all */
    int threads;                  /* 0: every online core */
    size_t cache_bytes;           /* float activations kept per chunk of samples, about; 0: 1 GiB */
} oq_sensitivity_options;

/* Analyses the candidates of p's default plan (p loaded, prepared and, in
 * static mode, calibrated) on the job's evaluation samples (its calibration
 * samples when it names none; at most job->eval_samples). *out is the
 * caller's (oq_sensitivity_destroy). Fails when there are no samples, when
 * the shard is out of range, or when a candidate's name is empty or shared
 * with another node (policies name nodes). */
oq_status oq_sensitivity_analyze(oq_pipeline *p, const oq_sensitivity_options *o, oq_sensitivity **out,
                                 oq_err *err);
void oq_sensitivity_destroy(oq_sensitivity *s);
/* A deep copy of s (caller destroys). */
oq_status oq_sensitivity_copy(oq_sensitivity **out, const oq_sensitivity *s, oq_err *err);

/* The node of s named name, or NULL. */
const oq_sensitivity_node *oq_sensitivity_find(const oq_sensitivity *s, const char *name);

/* ---- files ---------------------------------------------------------------------
 * The JSON form (schema in docs/formats.md): {"tool": ..., "sensitivity": {...}},
 * the same object a report's "sensitivity" section holds. */

/* s as JSON text ending in a newline (malloc'ed, caller frees); deterministic bytes. */
oq_status oq_sensitivity_serialize(const oq_sensitivity *s, uint8_t **buf, size_t *len, oq_err *err);
/* Reads the text buf[0..len): an analysis file, or a report with a
 * "sensitivity" section. `what` names it in errors. */
oq_status oq_sensitivity_parse(oq_sensitivity **out, const uint8_t *buf, size_t len, const char *what, oq_err *err);
oq_status oq_sensitivity_load(oq_sensitivity **out, const char *path, oq_err *err);
/* s as one self-contained HTML page (inline CSS and SVG, nothing fetched):
 * each node's output SQNR when quantized alone along the graph, the ranking,
 * and what the numbers depend on; model_path (may be NULL) in the title.
 * Deterministic bytes; *buf malloc'ed, the caller frees it. */
oq_status oq_sensitivity_html(const oq_sensitivity *s, const char *model_path, uint8_t **buf, size_t *len,
                              oq_err *err);
/* Joins the partial results parts[0..n) (names[i] names parts[i] in errors)
 * into the whole one: the same setup and shard count, each shard exactly
 * once. */
oq_status oq_sensitivity_merge(oq_sensitivity **out, int n, const oq_sensitivity *const *parts,
                               const char *const *names, oq_err *err);

/* ---- the whole command --------------------------------------------------------- */

/* Loads, prepares and calibrates (or reads the job's table), analyses, and
 * writes the result (oq_sensitivity_serialize) to job->output_path, its page
 * (oq_sensitivity_html) to job->html_path and the table to job->table_output
 * when given: all or nothing. out->sensitivity
 * gets the result; warnings as oq_job_run gives them. */
oq_status oq_job_analyze(const oq_job *job, const oq_sensitivity_options *o, oq_outcome *out, oq_err *err);

#endif
