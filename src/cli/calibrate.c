/* calibrate.c: `onnxq calibrate MODEL --data PATH... -o TABLE.json` and
 * `onnxq calibrate merge A.json B.json... -o M.json`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_data.h"
#include "onnxq/oq_calib.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_pipeline.h"

static const char cli_calibrate_help[] =
    "Usage: onnxq calibrate MODEL --data PATH [--data PATH ...] -o TABLE.json [options]\n"
    "       onnxq calibrate merge A.json B.json ... -o MERGED.json\n"
    "\n"
    "Runs MODEL in FP32 over sample inputs and records, for every activation whose\n"
    "range quantization reads (--all-tensors: every float activation), its min/max\n"
    "and a histogram whose range grows as needed (memory does not grow with the\n"
    "number of samples). The table keeps the statistics and the range each\n"
    "activation gets from the chosen method; `onnxq convert` reads it. Tables made\n"
    "on shards of the data merge: min/max exactly, histograms re-binned; they must\n"
    "come from the same model, options and tensors (the error names what differs).\n"
    "Values that are NaN or infinite are left out of the ranges, and a warning\n"
    "names the tensors.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE   the table to write (JSON, replaced atomically)\n"
    "  --contrib           also record the outputs of the Add, Mul, Sigmoid,\n"
    "                      LeakyRelu, GlobalAveragePool and hard-swish nodes that\n"
    "                      `convert --contrib` runs in 8 bits\n"
    "  -h, --help          show this help\n"
    "\n";

enum { OPT_HELP = 1, OPT_OUTPUT, OPT_CONTRIB };

static const cli_opt calibrate_opts[] = {
    {"help", 'h', false, OPT_HELP},
    {"output", 'o', true, OPT_OUTPUT},
    {"contrib", 0, false, OPT_CONTRIB},
};
#define N_OWN_OPTS ((int)(sizeof calibrate_opts / sizeof calibrate_opts[0]))

typedef struct calibrate_args {
    bool merge;
    const char **tables; /* merge inputs */
    int n_tables;
    const char *model, *output;
    cli_data_args d;     /* the job: model, data and calibration options; the table output */
} calibrate_args;

static void print_help(void)
{
    fputs(cli_calibrate_help, stdout);
    fputs(cli_calib_help, stdout);
    fputs(cli_calib_run_help, stdout);
    fputc('\n', stdout);
    fputs(cli_preprocess_help, stdout);
}

/* Parses the arguments; returns -1 to go on or the exit status. */
static int parse_args(calibrate_args *a, int argc, char **argv)
{
    a->merge = argc > 1 && strcmp(argv[1], "merge") == 0;
    const char *cmd = a->merge ? "calibrate merge" : "calibrate";
    cli_opt opts[N_OWN_OPTS + CLI_DATA_OPT_COUNT];
    memcpy(opts, calibrate_opts, sizeof calibrate_opts);
    memcpy(opts + N_OWN_OPTS, cli_data_opts, sizeof cli_data_opts);
    cli_parser p;
    cli_parser_init(&p, argc, argv, a->merge ? 2 : 1, cmd, opts, N_OWN_OPTS + CLI_DATA_OPT_COUNT);
    const char *v;
    int id;
    while ((id = cli_next(&p, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP: print_help(); return CLI_EXIT_OK;
        case OPT_OUTPUT:
            if (a->output)
                return cli_usage("%s: -o given twice", cmd);
            a->output = v;
            break;
        case CLI_POSITIONAL:
            if (a->merge) {
                a->tables[a->n_tables++] = v;
            } else if (a->model) {
                return cli_usage("calibrate: expected one MODEL, got '%s' and '%s'", a->model, v);
            } else {
                int rc = cli_job_option(&a->d, "model", v, cmd);
                if (rc >= 0)
                    return rc;
                a->model = v;
            }
            break;
        default:
            if (a->merge && id != CLI_OPT_QUIET)
                return cli_usage("calibrate merge: only -o and -q are accepted (the tables carry their options)");
            int rc = id == OPT_CONTRIB ? cli_job_option(&a->d, "contrib", NULL, cmd) : cli_data_option(&a->d, id, v, cmd);
            if (rc >= 0)
                return rc;
            break;
        }
    }
    cli_data_args_take_job(&a->d);
    a->d.job.table_output = a->output;
    if (a->merge) {
        if (a->n_tables < 2)
            return cli_usage("calibrate merge: expected at least two tables");
    } else {
        if (!a->d.job.model_path)
            return cli_usage("calibrate: missing MODEL");
        if (!a->d.job.n_data)
            return cli_usage("calibrate: missing --data PATH");
    }
    if (!a->d.job.table_output)
        return cli_usage("%s: missing -o TABLE.json", cmd);
    return -1;
}

static int run_merge(const calibrate_args *a)
{
    oq_err err = {0};
    oq_calib_table *merged = NULL, *next = NULL;
    const char *output = a->d.job.table_output;
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < a->n_tables; i++)
        if (oq_same_file(output, a->tables[i])) {
            oq_errf(&err, OQ_EINVAL, "output %s is the input %s; choose another output path", output, a->tables[i]);
            goto fail;
        }
    if (oq_calib_table_load(&merged, a->tables[0], &err))
        goto fail;
    for (int i = 1; i < a->n_tables; i++) {
        if (oq_calib_table_load(&next, a->tables[i], &err))
            goto fail;
        /* merged agrees with the first table in all that merge compares */
        if (oq_calib_table_merge(merged, next, a->tables[0], a->tables[i], &err))
            goto fail;
        oq_calib_table_destroy(next);
        next = NULL;
    }
    if (oq_calib_table_save(merged, output, &err))
        goto fail;
    if (!a->d.quiet)
        fprintf(stderr, "onnxq: merged %d tables (%lld samples, %d tensors) into %s\n", a->n_tables,
                (long long)merged->samples, merged->n_entries, output);
    goto done;
fail:
    rc = cli_fail(&err);
done:
    oq_calib_table_destroy(next);
    oq_calib_table_destroy(merged);
    return rc;
}

static int run_calibrate(calibrate_args *a)
{
    oq_err err = {0};
    oq_outcome out;
    cli_progress line;
    cli_progress_attach(&line, &a->d.job, a->d.quiet);
    oq_status st = oq_job_run(&a->d.job, &out, &err);
    cli_progress_end(&line);
    cli_print_warnings(&out);
    int rc = st ? cli_fail(&err) : CLI_EXIT_OK;
    if (!st && !a->d.quiet)
        fprintf(stderr, "onnxq: calibrated %d tensors over %lld samples in %.2fs (%s) -> %s\n", out.table->n_entries,
                (long long)out.table->samples, out.seconds, oq_calib_method_name(out.table->range.method),
                a->d.job.table_output);
    oq_outcome_release(&out);
    return rc;
}

int cli_calibrate(int argc, char **argv)
{
    calibrate_args a = {0};
    a.tables = calloc((size_t)argc + 1, sizeof *a.tables);
    int rc;
    if (!a.tables || !cli_data_args_init(&a.d)) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    } else if ((rc = parse_args(&a, argc, argv)) < 0) {
        rc = a.merge ? run_merge(&a) : run_calibrate(&a);
    }
    cli_data_args_free(&a.d);
    free(a.tables);
    return rc;
}
