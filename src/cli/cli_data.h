/* cli_data.h: what the commands that read sample data share: the data and
 * calibration options (calibrate and quantize take the same ones) parsed into
 * a job, image preprocessing flags, the progress line and the printing of a
 * job's warnings. */
#ifndef ONNXQ_CLI_DATA_H
#define ONNXQ_CLI_DATA_H

#include <stdbool.h>

#include "cli/cli.h"
#include "onnxq/oq_job_builder.h"
#include "onnxq/oq_pipeline.h"
#include "onnxq/oq_sensitivity.h"

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
    CLI_OPT_NO_PREPARE,
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

typedef struct cli_data_args {
    oq_job_builder *builder; /* every job option is parsed by it (oq_job_builder.h) */
    oq_job job;              /* the builder's job once parsed (cli_data_args_take_job); the command adds
                                what only the command line sets (progress, a table output) */
    bool quiet;
} cli_data_args;

extern const char cli_calib_help[];      /* the --data and calibration options */
extern const char cli_calib_run_help[];  /* --activation-type, --threads, -q as calibrate reads them (quantize
                                            lists its own) */
extern const char cli_preprocess_help[]; /* the image options */
extern const cli_opt cli_data_opts[CLI_DATA_OPT_COUNT];

/* A builder with the default job (oq_job_builder_create); false when out of memory. */
bool cli_data_args_init(cli_data_args *a);
void cli_data_args_free(cli_data_args *a);
/* Sets the builder's option `name` (without dashes; value NULL for a flag):
 * -1 when accepted, else the usage exit status after printing "CMD: why". */
int cli_job_option(cli_data_args *a, const char *name, const char *value, const char *cmd);
/* Handles option id (one of cli_data_opts: -q here, the others by name
 * through the builder): -1 when accepted, else the usage exit status. */
int cli_data_option(cli_data_args *a, int id, const char *value, const char *cmd);
/* Copies the builder's job into a->job: after the last option (the copy
 * points into the builder). */
void cli_data_args_take_job(cli_data_args *a);

/* The progress line drawn on stderr while a job calibrates. */
typedef struct cli_progress {
    double start, last;
    bool drawn;
} cli_progress;

/* Makes job draw a progress line unless quiet or stderr is not a terminal. */
void cli_progress_attach(cli_progress *line, oq_job *job, bool quiet);
/* Ends a drawn progress line. */
void cli_progress_end(cli_progress *line);

/* Prints each warning of the outcome as an "onnxq: warning: " line. */
void cli_print_warnings(const oq_outcome *o);

/* ---- the commands that quantize, or analyse how quantizing would go --------------
 * convert, quantize and analyze share their option parsing (convert.c). */
typedef enum cli_quant_cmd { CLI_CONVERT, CLI_QUANTIZE, CLI_ANALYZE } cli_quant_cmd;

/* The help lines of the quantization options (--mode ... --exclude). */
extern const char cli_quant_options_help[];
/* Parses argv (argv[0] is the command) for cmd and runs it. */
int cli_quant_main(int argc, char **argv, cli_quant_cmd cmd);
/* analyze.c: runs an analysis job and prints its ranking; prints analyze's help. */
int cli_analyze_run(const oq_job *job, const oq_sensitivity_options *o, bool quiet);
void cli_analyze_print_help(void);

#endif
