/* cli_data.h: what the commands that read sample data share: the data and
 * calibration options (calibrate and quantize take the same ones), image
 * preprocessing flags, and the calibration pass with its progress line. */
#ifndef ONNXQ_CLI_DATA_H
#define ONNXQ_CLI_DATA_H

#include <stdbool.h>

#include "cli/cli.h"
#include "onnxq/oq_calib.h"
#include "onnxq/oq_dataset.h"
#include "onnxq/oq_image.h"

/* Option ids, above any command's own ids. */
enum {
    CLI_OPT_DATA = 100,
    CLI_OPT_METHOD,
    CLI_OPT_PERCENTILE,
    CLI_OPT_BINS,
    CLI_OPT_SAMPLES,
    CLI_OPT_SYMMETRIC,
    CLI_OPT_ACT_TYPE,
    CLI_OPT_THREADS,
    CLI_OPT_QUIET,
    CLI_OPT_ALL_TENSORS,
    CLI_OPT_RESIZE,
    CLI_OPT_CROP,
    CLI_OPT_LAYOUT,
    CLI_OPT_SCALE,
    CLI_OPT_MEAN,
    CLI_OPT_STD,
    CLI_OPT_BGR,
    CLI_OPT_DATA_LAST = CLI_OPT_BGR,
};
#define CLI_DATA_OPT_COUNT (CLI_OPT_DATA_LAST - CLI_OPT_DATA + 1)

typedef struct cli_calib_args {
    const char **data;      /* [n_data] --data specs (borrowed from argv) */
    int n_data;
    oq_preprocess pre;
    bool resize_given, layout_given;
    oq_calib_options calib;
    bool quiet;
    bool all_tensors;       /* record every float activation, not only those a rewrite uses */
    bool contrib;           /* also record what --contrib's QLinearAdd, ... read (oq_quant_range_values) */
} cli_calib_args;

extern const char cli_calib_help[];      /* the --data and calibration options */
extern const char cli_calib_run_help[];  /* --activation-type, --threads, -q as calibrate reads them (quantize
                                            lists its own) */
extern const char cli_preprocess_help[]; /* the image options */
extern const cli_opt cli_data_opts[CLI_DATA_OPT_COUNT];

/* Defaults (percentile 99.999, 2048 bins, uint8, NCHW, ...); data has room for argc specs. */
bool cli_calib_args_init(cli_calib_args *a, int argc);
void cli_calib_args_free(cli_calib_args *a);
/* Handles option id (one of cli_data_opts): -1 when accepted, else the usage exit status. */
int cli_calib_option(cli_calib_args *a, int id, const char *value, const char *cmd);

/* Opens the data set for m's inputs (image defaults from the input's shape). */
oq_status cli_open_data(cli_calib_args *a, const oq_model *m, int n_specs, const char *const *specs,
                        oq_dataset **ds, oq_err *err);
/* Calibrates m (loaded from model_path) over the --data samples: a progress
 * line on a terminal unless quiet, the model's file hash in the table. Records
 * the activations a rewrite may use (oq_quant_range_values), or every float
 * activation with --all-tensors. */
oq_status cli_calibrate_model(cli_calib_args *a, const oq_model *m, const char *model_path, oq_calib_table **out,
                              oq_err *err);
/* Hex SHA-256 of a whole file. */
oq_status cli_file_sha256(const char *path, char hex[65], oq_err *err);
/* Warns on stderr, by name, about tensors that had NaN/Inf values. */
void cli_warn_nonfinite(const oq_calib_table *t);

#endif
