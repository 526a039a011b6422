/* oq_dataset.h: sample inputs for calibration and evaluation.
 *
 * A data spec is one of:
 *   DIR            an ONNX test-data folder (input_0.pb, input_1.pb, ... in
 *                  graph-input order): one sample;
 *   DIR            a folder whose subfolders are such folders: one sample
 *                  each, in name order;
 *   DIR            a folder of PNG/JPEG images (one-input models): one sample
 *                  each, in name order, through the given preprocessing;
 *   NAME=FILE.npy  the samples of input NAME stacked on a leading axis:
 *                  [S, ...input shape], or, when the input's first dim is
 *                  symbolic or unknown, [S, ...the rest] (S samples of
 *                  [1, ...the rest]: [128, 64] for an input [n, 64]).
 * Folder specs and NAME=FILE.npy specs cannot be mixed; with .npy specs,
 * every model input needs one and all must hold the same sample count.
 * Samples can also be held in memory (oq_samples, below): tensors a caller
 * already has, such as the Python module's arrays.
 * Samples are loaded one at a time; each is checked against the model's
 * declared inputs (oq_value_check_tensor) with errors naming file and input. */
#ifndef ONNXQ_OQ_DATASET_H
#define ONNXQ_OQ_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_image.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_dataset oq_dataset;

/* Resolves the specs against the model inputs (the values are borrowed and
 * must outlive the data set; the array is copied). pre applies to image samples (NULL = oq_preprocess_default()).
 * Fails on unreadable or empty folders, missing inputs, unknown input names,
 * .npy files whose shape fits neither form, or mismatching sample counts. */
oq_status oq_dataset_open(oq_dataset **out, int n_specs, const char *const *specs, int n_inputs,
                          const oq_value *const *inputs, const oq_preprocess *pre, oq_err *err);
void oq_dataset_destroy(oq_dataset *d);
/* Whether writing path would change the samples spec names: path is the
 * spec's file, or lies inside its folder. */
bool oq_data_spec_holds(const char *spec, const char *path);
/* oq_dataset_open for the inputs of m a caller feeds (graph inputs that are
 * not initializers). For a one-input model whose input is declared with
 * rank 4, the layout (unless layout_given) and the resize (unless
 * resize_given) of the image preprocessing come from the declared shape:
 * NHWC when it ends in 3 channels, else NCHW; a fixed size is resized to
 * exactly, or with a crop covered with the image's aspect kept. */
oq_status oq_dataset_open_for_model(oq_dataset **out, const oq_model *m, int n_specs, const char *const *specs,
                                    const oq_preprocess *pre, bool layout_given, bool resize_given, oq_err *err);

int64_t oq_dataset_count(const oq_dataset *d);
/* Loads sample i into tensors[0..n_inputs) (owned by the caller, who
 * releases them). Safe to call from several threads at once. */
oq_status oq_dataset_load(const oq_dataset *d, int64_t i, oq_tensor *tensors, oq_err *err);
/* SHA-256 (hex) of one loaded sample: the dtype, dims and bytes of each tensor. */
void oq_dataset_sample_hash(const oq_dataset *d, const oq_tensor *tensors, char hex[65]);

/* ---- samples held in memory ------------------------------------------------------ */

/* Samples a caller adds one by one, each a set of named tensors, copied in. */
typedef struct oq_samples oq_samples;

oq_status oq_samples_create(oq_samples **out, oq_err *err);
void oq_samples_destroy(oq_samples *s);
/* Starts a new sample; the oq_samples_put calls that follow fill it. */
oq_status oq_samples_begin(oq_samples *s, oq_err *err);
/* Adds input `name` to the sample begun last: a copy of data, a C-order
 * array of dtype (not string) shaped dims[0..rank). Fails on a bad dtype or
 * shape, a name given twice in one sample, or no sample begun. */
oq_status oq_samples_put(oq_samples *s, const char *name, oq_dtype dtype, int rank, const int64_t *dims,
                         const void *data, oq_err *err);
int64_t oq_samples_count(const oq_samples *s);

/* A data set over samples held in memory (borrowed: s must outlive it and
 * not change), for the given inputs: each sample must hold a tensor for every
 * input and none for anything else (errors name the sample and the input). */
oq_status oq_dataset_open_samples(oq_dataset **out, const oq_samples *s, int n_inputs, const oq_value *const *inputs,
                                  oq_err *err);
/* oq_dataset_open_samples for the inputs of m a caller feeds. */
oq_status oq_dataset_open_samples_for_model(oq_dataset **out, const oq_model *m, const oq_samples *s, oq_err *err);

/* Reads one label per line: the line's last whitespace-separated token is the
 * class (a sample name may come first), "sample_007 3" or "3". Blank lines
 * are not allowed. *labels (malloc'ed, caller frees) gets *n of them. */
oq_status oq_labels_read(const char *path, int64_t **labels, int64_t *n, oq_err *err);

/* ---- running over samples on several threads ------------------------------------ */

/* What oq_run_sample_blocks calls back. Workers are numbered from 0; each
 * keeps its own state in the caller's hands, and one worker's calls never
 * overlap. */
typedef struct oq_block_fns {
    void *user;
    /* Readies worker w for block b (samples from b * block_size on). */
    oq_status (*begin)(void *user, int w, int64_t b, oq_err *err);
    /* Runs sample i on worker w. */
    oq_status (*sample)(void *user, int w, int64_t i, oq_err *err);
    /* Folds what worker w gathered over block b into the total; called in
     * block order, one call at a time. */
    oq_status (*fold)(void *user, int w, int64_t b, oq_err *err);
    /* Optional: called once, with the worker that ran sample 0, before any
     * block but the first begins. */
    void (*first_sample_done)(void *user, int w);
    /* Optional: after each sample, one call at a time. */
    void (*progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
} oq_block_fns;

/* How to spread `threads` threads (as oq_exec_thread_count reads them) over
 * blocks of block_size samples out of total: one worker per block at most,
 * each with *threads_each threads for its sessions (a lone worker gets them
 * all). */
void oq_sample_block_workers(int threads, int64_t total, int64_t block_size, int *n_workers, int *threads_each);

/* Runs samples [0, total) in blocks of block_size consecutive samples on
 * n_workers threads (the calling thread is worker 0). Since blocks fold in
 * order, the total does not depend on n_workers. On failure returns the
 * error of the earliest failing sample (or fold); later blocks are dropped. */
oq_status oq_run_sample_blocks(int64_t total, int64_t block_size, int n_workers, const oq_block_fns *fns,
                               oq_err *err);

#endif
