/* oq_dataset.h: sample inputs for calibration and evaluation.
 *
 * A data spec is one of:
 *   DIR            an ONNX test-data folder (input_0.pb, input_1.pb, ... in
 *                  graph-input order): one sample;
 *   DIR            a folder whose subfolders are such folders: one sample
 *                  each, in name order;
 *   DIR            a folder of PNG/JPEG images (one-input models): one sample
 *                  each, in name order, through the given preprocessing;
 *   NAME=FILE.npy  the samples of input NAME stacked on a leading axis.
 * Folder specs and NAME=FILE.npy specs cannot be mixed; with .npy specs,
 * every model input needs one and all must hold the same sample count.
 * Samples are loaded one at a time; each is checked against the model's
 * declared inputs (oq_value_check_tensor) with errors naming file and input. */
#ifndef ONNXQ_OQ_DATASET_H
#define ONNXQ_OQ_DATASET_H

#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_image.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_dataset oq_dataset;

/* Resolves the specs against the model inputs (the values are borrowed and
 * must outlive the data set; the array is copied). pre applies to image samples (NULL = oq_preprocess_default()).
 * Fails on unreadable or empty folders, missing inputs, unknown input names,
 * or .npy files with mismatching sample counts. */
oq_status oq_dataset_open(oq_dataset **out, int n_specs, const char *const *specs, int n_inputs,
                          const oq_value *const *inputs, const oq_preprocess *pre, oq_err *err);
void oq_dataset_destroy(oq_dataset *d);

int64_t oq_dataset_count(const oq_dataset *d);
/* Loads sample i into tensors[0..n_inputs) (owned by the caller, who
 * releases them). Safe to call from several threads at once. */
oq_status oq_dataset_load(const oq_dataset *d, int64_t i, oq_tensor *tensors, oq_err *err);
/* SHA-256 (hex) of one loaded sample: the dtype, dims and bytes of each tensor. */
void oq_dataset_sample_hash(const oq_dataset *d, const oq_tensor *tensors, char hex[65]);

#endif
