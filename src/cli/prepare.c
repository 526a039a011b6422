/* prepare.c: `onnxq prepare MODEL -o OUT.onnx`, graph preparation (see
 * oq_prepare.h) written out as a float model, with an optional JSON report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_onnx_io.h"
#include "onnxq/oq_prepare.h"
#include "onnxq/oq_report.h"

const char cli_prepare_help[] =
    "Usage: onnxq prepare MODEL -o OUT.onnx [--report R.json] [-q]\n"
    "\n"
    "Rewrites MODEL into an equivalent float model that runs faster and quantizes\n"
    "better, and writes it to OUT.onnx so you can look at what `onnxq run`,\n"
    "`calibrate`, `convert` and `quantize` work on (they prepare the model the same\n"
    "way unless given --no-prepare):\n"
    "  - weights an IR < 4 model lists as graph inputs become constants;\n"
    "  - Identity and inference Dropout nodes are removed;\n"
    "  - nodes on constants (Reshape of a weight, ConstantOfShape, Shape of a\n"
    "    static input, Cast, Concat, Gather, arithmetic, ...) are computed once and\n"
    "    stored, unless a result would exceed 16 MiB and its inputs' size;\n"
    "  - an Add of a per-channel constant after a Conv becomes the Conv's bias;\n"
    "  - BatchNormalization after a Conv or Gemm folds into its weight and bias;\n"
    "  - MatMul of a 2-D input by a constant weight, then Add of a constant row,\n"
    "    becomes one Gemm;\n"
    "  - nodes and initializers that nothing reads are removed.\n"
    "Graph inputs, outputs and every value that survives keep their names. The\n"
    "first three kinds of change leave every number the model computes identical;\n"
    "the folds into Conv, Gemm and bias change outputs by float rounding only.\n"
    "Stderr gets one summary line of what each pass did.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE   the prepared model (written atomically; MODEL is never changed)\n"
    "  --report FILE       also write the counts as JSON; the model and the report are\n"
    "                      written together or not at all\n"
    "  -q, --quiet         no summary line\n"
    "  -h, --help          show this help and exit\n";

enum { OPT_OUTPUT = 1, OPT_REPORT, OPT_QUIET, OPT_HELP };

static const cli_opt prepare_opts[] = {
    {"output", 'o', true, OPT_OUTPUT},
    {"report", 0, true, OPT_REPORT},
    {"quiet", 'q', false, OPT_QUIET},
    {"help", 'h', false, OPT_HELP},
};

typedef struct prepare_args {
    const char *model, *output, *report;
    bool quiet;
} prepare_args;

/* Parses the command line into a; returns an exit status, or -1 to go on. */
static int parse_args(prepare_args *a, int argc, char **argv)
{
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, "prepare", prepare_opts, (int)(sizeof prepare_opts / sizeof prepare_opts[0]));
    const char *v;
    int id;
    while ((id = cli_next(&p, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP: fputs(cli_prepare_help, stdout); return CLI_EXIT_OK;
        case OPT_OUTPUT:
            if (a->output)
                return cli_usage("prepare: -o given twice");
            a->output = v;
            break;
        case OPT_REPORT:
            if (a->report)
                return cli_usage("prepare: --report given twice");
            a->report = v;
            break;
        case OPT_QUIET: a->quiet = true; break;
        case CLI_POSITIONAL:
            if (a->model)
                return cli_usage("prepare: expected one MODEL, got '%s' and '%s'", a->model, v);
            a->model = v;
            break;
        }
    }
    if (!a->model)
        return cli_usage("prepare: missing MODEL");
    if (!a->output)
        return cli_usage("prepare: missing -o OUT.onnx");
    return -1;
}

/* ---- output ------------------------------------------------------------------------ */

/* Writes the model bytes to a->output and the report text (when asked for) to
 * a->report, both or neither (oq_commit), and never over an input. */
static oq_status commit(const prepare_args *a, const uint8_t *model, size_t model_len, const uint8_t *report,
                        size_t report_len, oq_err *err)
{
    if (oq_same_file(a->output, a->model) || (a->report && (oq_same_file(a->report, a->model) ||
                                                            oq_same_file(a->report, a->output))))
        return oq_errf(err, OQ_EINVAL, "an output path names the input %s or the other output; choose another",
                       a->model);
    oq_commit *c = NULL;
    oq_status st = oq_commit_create(&c, err);
    if (!st)
        st = oq_commit_add(c, a->output, model, model_len, err);
    if (!st && report)
        st = oq_commit_add(c, a->report, report, report_len, err);
    if (!st)
        st = oq_commit_finish(c, err);
    oq_commit_destroy(c);
    return st;
}

int cli_prepare(int argc, char **argv)
{
    prepare_args a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0)
        return rc;
    oq_err err = {0};
    oq_model *m = NULL;
    uint8_t *bytes = NULL, *report = NULL;
    size_t len = 0, report_len = 0;
    char *summary = NULL;
    oq_prepare_result result = {0};
    oq_prepare_report rep = {.tool_version = OQ_VERSION, .model_path = a.model, .output_path = a.output,
                             .result = &result};
    int64_t n_tensors, n_elements;
    if (oq_model_load(&m, a.model, &err))
        goto fail;
    rep.ir_before = m->ir_version;
    oq_graph_param_stats(m->graph, &n_tensors, &n_elements, &rep.bytes_before);
    if (oq_prepare_model(m, NULL, &result, &err))
        goto fail;
    rep.ir_after = m->ir_version;
    oq_graph_param_stats(m->graph, &n_tensors, &n_elements, &rep.bytes_after);
    if (oq_model_serialize(m, &bytes, &len, &err) ||
        (a.report && oq_prepare_report_json(&rep, &report, &report_len, &err)) ||
        (!a.quiet && oq_prepare_report_summary(&rep, &summary, &err)) ||
        commit(&a, bytes, len, report, report_len, &err))
        goto fail;
    if (summary)
        fputs(summary, stderr);
    goto done;
fail:
    rc = cli_fail(&err);
done:
    if (rc < 0)
        rc = CLI_EXIT_OK;
    free(summary);
    free(report);
    free(bytes);
    oq_model_destroy(m);
    return rc;
}
