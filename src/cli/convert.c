/* convert.c: `onnxq convert MODEL --calib TABLE.json -o OUT.onnx` and
 * `onnxq quantize MODEL --data PATH... -o OUT.onnx` (calibrate + convert). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_data.h"
#include "onnxq/oq_pipeline.h"

static const char cli_convert_help[] =
    "Usage: onnxq convert MODEL --calib TABLE.json -o OUT.onnx [options]\n"
    "       onnxq convert MODEL --mode dynamic -o OUT.onnx [options]\n"
    "\n"
    "Rewrites MODEL's Conv, MatMul and Gemm nodes into quantized ops using the\n"
    "activation ranges of a calibration table made by `onnxq calibrate` for the\n"
    "same model: weights int8 symmetric per output channel, activations uint8\n"
    "asymmetric (by default), bias int32 at input scale x weight scale. Graph\n"
    "inputs and outputs stay float. Nodes that cannot be quantized stay float and\n"
    "the report says why. OUT.onnx and the report are written together or not at\n"
    "all; MODEL is never changed.\n"
    "\n"
    "Options:\n"
    "  --calib FILE        the calibration table (required in static mode)\n"
    "  --method M, --percentile P\n"
    "                      re-choose every range from the table's histograms (as\n"
    "                      calibrate does; --percentile alone selects the\n"
    "                      percentile method); --activation-type and\n"
    "                      --symmetric-activations below do too. What is not given\n"
    "                      keeps the table's choice\n"
    "  --no-prepare        only with a table made by `calibrate --no-prepare` (a\n"
    "                      table records whether MODEL was prepared, and convert\n"
    "                      follows it); in dynamic mode: convert MODEL as written,\n"
    "                      without graph preparation\n";

static const char cli_quantize_help[] =
    "Usage: onnxq quantize MODEL --data PATH [--data PATH ...] -o OUT.onnx [options]\n"
    "\n"
    "Calibrates MODEL on the --data samples and converts it in one run: the same as\n"
    "`onnxq calibrate` followed by `onnxq convert`. The evaluation in the report\n"
    "uses the calibration samples unless --eval-data is given. With --mode dynamic\n"
    "nothing is calibrated and --data is optional (it only feeds the evaluation).\n"
    "\n"
    "Options:\n";

static const char convert_common_help[] =
    "  -o, --output FILE   the quantized model to write\n"
    "  --report FILE       write the JSON accuracy/size report (schema in the README)\n"
    "  --mode M            static (default: activation ranges from calibration) or\n"
    "                      dynamic (DynamicQuantizeLinear computes them at run time;\n"
    "                      MatMulInteger/ConvInteger, no calibration data needed)\n"
    "  --format F          qoperator (default: QLinearConv, QLinearMatMul, integer\n"
    "                      Gemm, 8-bit tensors between them) or qdq (QuantizeLinear/\n"
    "                      DequantizeLinear pairs around float ops)\n"
    "  --contrib           qoperator: use ONNX Runtime's com.microsoft ops (ONNX\n"
    "                      Runtime runs them; not every runtime): QGemm for Gemm,\n"
    "                      QLinearConcat, and QLinearAdd/Mul/Sigmoid/LeakyRelu/\n"
    "                      GlobalAveragePool, also for HardSwish and HardSigmoid,\n"
    "                      where the inputs are 8-bit; faster, slightly less\n"
    "                      accurate (see README). convert needs a table made\n"
    "                      with `calibrate --contrib`\n"
    "  --per-tensor        one weight scale per tensor instead of per output channel\n"
    "  --activation-type T uint8 (default) or int8\n"
    "  --symmetric-activations  activation ranges symmetric around zero\n"
    "  --op-types LIST     comma-separated ops to quantize (default Conv,MatMul,Gemm)\n"
    "  --exclude NAMES     comma-separated node names to leave in float (repeatable)\n"
    "  --bias-correction on|off\n"
    "                      move each quantized node's mean output error, measured\n"
    "                      on the calibration samples (quantize's --data) with\n"
    "                      the nodes before it already quantized and corrected,\n"
    "                      into its bias (default: on with quantize --contrib,\n"
    "                      off otherwise; see README)\n"
    "  --equalization on|off\n"
    "                      cross-layer equalization of Conv -> depthwise Conv pairs\n"
    "                      from the table's per-channel extremes (default off)\n"
    "  --eval-data PATH    samples for the report's accuracy section (repeatable;\n"
    "                      same forms as --data)\n"
    "  --eval-samples N    evaluate at most N samples (default all)\n"
    "  --labels FILE       one line per evaluation sample, in sample order, ending\n"
    "                      in its class number (\"sample_007 3\" or \"3\"): adds top-1\n"
    "                      accuracy of both models for the first output\n"
    "  --threads N         threads (default 0: all online cores); evaluation runs\n"
    "                      blocks of 4 samples side by side (calibration blocks of\n"
    "                      32); the output and report do not depend on N\n"
    "  -q, --quiet         no progress line or summary on stderr\n"
    "  -h, --help          show this help\n";

enum {
    OPT_HELP = 1,
    OPT_OUTPUT,
    OPT_CALIB,
    OPT_REPORT,
    OPT_MODE,
    OPT_FORMAT,
    OPT_CONTRIB,
    OPT_PER_TENSOR,
    OPT_SYM_ACT,
    OPT_OP_TYPES,
    OPT_EXCLUDE,
    OPT_EVAL_DATA,
    OPT_EVAL_SAMPLES,
    OPT_LABELS,
    OPT_BIAS_CORRECTION,
    OPT_EQUALIZATION,
};

static const cli_opt convert_opts[] = {
    {"help", 'h', false, OPT_HELP},
    {"output", 'o', true, OPT_OUTPUT},
    {"calib", 0, true, OPT_CALIB},
    {"report", 0, true, OPT_REPORT},
    {"mode", 0, true, OPT_MODE},
    {"format", 0, true, OPT_FORMAT},
    {"contrib", 0, false, OPT_CONTRIB},
    {"per-tensor", 0, false, OPT_PER_TENSOR},
    {"symmetric-activations", 0, false, OPT_SYM_ACT},
    {"op-types", 0, true, OPT_OP_TYPES},
    {"exclude", 0, true, OPT_EXCLUDE},
    {"eval-data", 0, true, OPT_EVAL_DATA},
    {"eval-samples", 0, true, OPT_EVAL_SAMPLES},
    {"labels", 0, true, OPT_LABELS},
    {"bias-correction", 0, true, OPT_BIAS_CORRECTION},
    {"equalization", 0, true, OPT_EQUALIZATION},
};
#define N_OWN_OPTS ((int)(sizeof convert_opts / sizeof convert_opts[0]))

typedef struct convert_args {
    bool quantize;              /* calibrate first */
    cli_data_args d;            /* the job, with data and calibration options (quantize), threads, quiet */
    char **op_types, **exclude; /* split lists, owned */
    const char **eval;          /* [n_eval] */
    bool format_given;
    bool bias_correction_given;
    const char *range_opt;      /* the first option given that chooses activation ranges */
} convert_args;

static void print_help(bool quantize)
{
    fputs(quantize ? cli_quantize_help : cli_convert_help, stdout);
    fputs(convert_common_help, stdout);
    fputc('\n', stdout);
    if (quantize) {
        fputs(cli_calib_help, stdout);
        fputc('\n', stdout);
        fputs(cli_preprocess_help, stdout);
    }
}

/* Appends the comma-separated items of s to *list (grown; items owned). */
static bool split_into(char ***list, int *n, const char *s)
{
    for (const char *p = s; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            char **grown = realloc(*list, (size_t)(*n + 2) * sizeof *grown);
            if (!grown)
                return false;
            *list = grown;
            if (!((*list)[(*n)++] = strndup(p, len)))
                return false;
        }
        p += len + (comma != NULL);
    }
    return true;
}

/* "on" or "off" into *out; false for anything else. */
static bool parse_on_off(const char *v, bool *out)
{
    if (strcmp(v, "on") && strcmp(v, "off"))
        return false;
    *out = !strcmp(v, "on");
    return true;
}

static void free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int parse_args(convert_args *a, int argc, char **argv)
{
    const char *cmd = a->quantize ? "quantize" : "convert";
    oq_job *j = &a->d.job;
    oq_quant_options *q = &j->quant;
    cli_opt opts[N_OWN_OPTS + CLI_DATA_OPT_COUNT];
    memcpy(opts, convert_opts, sizeof convert_opts);
    memcpy(opts + N_OWN_OPTS, cli_data_opts, sizeof cli_data_opts);
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, cmd, opts, N_OWN_OPTS + CLI_DATA_OPT_COUNT);
    const char *v;
    int id;
    while ((id = cli_next(&p, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP: print_help(a->quantize); return CLI_EXIT_OK;
        case OPT_OUTPUT: j->output_path = v; break;
        case OPT_CALIB:
            if (a->quantize)
                return cli_usage("quantize: --calib belongs to convert (quantize calibrates from --data)");
            j->table_path = v;
            break;
        case OPT_REPORT: j->report_path = v; break;
        case OPT_MODE:
            if (strcmp(v, "static") == 0)
                q->mode = OQ_MODE_STATIC;
            else if (strcmp(v, "dynamic") == 0)
                q->mode = OQ_MODE_DYNAMIC;
            else
                return cli_usage("%s: --mode must be static or dynamic, got '%s'", cmd, v);
            break;
        case OPT_FORMAT:
            a->format_given = true;
            if (strcmp(v, "qoperator") == 0)
                q->format = OQ_FORMAT_QOPERATOR;
            else if (strcmp(v, "qdq") == 0)
                q->format = OQ_FORMAT_QDQ;
            else
                return cli_usage("%s: --format must be qoperator or qdq, got '%s'", cmd, v);
            break;
        case OPT_CONTRIB: q->contrib = true; break;
        case OPT_PER_TENSOR: q->per_channel = false; break;
        case OPT_SYM_ACT:
            a->range_opt = a->range_opt ? a->range_opt : "--symmetric-activations";
            cli_data_option(&a->d, CLI_OPT_SYMMETRIC, NULL, cmd);
            break;
        case OPT_OP_TYPES:
            if (!split_into(&a->op_types, &q->n_op_types, v))
                return cli_usage("out of memory");
            for (int i = 0; i < q->n_op_types; i++)
                if (strcmp(a->op_types[i], "Conv") && strcmp(a->op_types[i], "MatMul") && strcmp(a->op_types[i], "Gemm"))
                    return cli_usage("%s: --op-types accepts Conv, MatMul and Gemm, got '%s'", cmd, a->op_types[i]);
            break;
        case OPT_EXCLUDE:
            if (!split_into(&a->exclude, &q->n_exclude, v))
                return cli_usage("out of memory");
            break;
        case OPT_EVAL_DATA: a->eval[j->n_eval++] = v; break;
        case OPT_EVAL_SAMPLES:
            if (!cli_parse_int(v, 1, 1L << 40, &j->eval_samples))
                return cli_usage("%s: --eval-samples expects a positive count, got '%s'", cmd, v);
            break;
        case OPT_LABELS: j->labels_path = v; break;
        case OPT_BIAS_CORRECTION:
            if (!parse_on_off(v, &j->bias_correction))
                return cli_usage("%s: --bias-correction must be on or off, got '%s'", cmd, v);
            a->bias_correction_given = true;
            break;
        case OPT_EQUALIZATION:
            if (!parse_on_off(v, &j->equalization))
                return cli_usage("%s: --equalization must be on or off, got '%s'", cmd, v);
            break;
        case CLI_POSITIONAL:
            if (j->model_path)
                return cli_usage("%s: expected one MODEL, got '%s' and '%s'", cmd, j->model_path, v);
            j->model_path = v;
            break;
        default: {
            /* data and calibration options: quantize takes all; convert only the
             * ones that re-choose ranges from the table's histograms, and --no-prepare */
            bool convert_ok = id == CLI_OPT_ACT_TYPE || id == CLI_OPT_THREADS || id == CLI_OPT_QUIET ||
                              id == CLI_OPT_METHOD || id == CLI_OPT_PERCENTILE || id == CLI_OPT_SYMMETRIC ||
                              id == CLI_OPT_NO_PREPARE;
            if (!a->quantize && !convert_ok)
                return cli_usage("convert: %s belongs to calibrate or quantize", argv[p.i - 1]);
            const char *range_opt = id == CLI_OPT_ACT_TYPE     ? "--activation-type"
                                    : id == CLI_OPT_METHOD     ? "--method"
                                    : id == CLI_OPT_PERCENTILE ? "--percentile"
                                    : id == CLI_OPT_SYMMETRIC  ? "--symmetric"
                                    : id == CLI_OPT_BINS       ? "--bins"
                                    : id == CLI_OPT_SAMPLES    ? "--samples"
                                                               : NULL;
            if (!a->range_opt)
                a->range_opt = range_opt;
            int rc = cli_data_option(&a->d, id, v, cmd);
            if (rc >= 0)
                return rc;
        }
        }
    }
    q->op_types = (const char *const *)a->op_types;
    q->exclude = (const char *const *)a->exclude;
    j->eval_data = a->eval;
    if (!j->model_path)
        return cli_usage("%s: missing MODEL", cmd);
    if (!j->output_path)
        return cli_usage("%s: missing -o OUT.onnx", cmd);
    bool dynamic = q->mode == OQ_MODE_DYNAMIC;
    if (dynamic && j->table_path)
        return cli_usage("convert: --calib is not used with --mode dynamic (nothing is calibrated)");
    if (dynamic && a->format_given)
        return cli_usage("%s: --format does not apply to --mode dynamic (it has one form)", cmd);
    if (q->contrib && (dynamic || q->format != OQ_FORMAT_QOPERATOR))
        return cli_usage("%s: --contrib applies to --format qoperator in static mode", cmd);
    if (dynamic && a->range_opt)
        return cli_usage("%s: %s does not apply to --mode dynamic (DynamicQuantizeLinear picks uint8 ranges at run time)",
                         cmd, a->range_opt);
    /* measured on PP-OCRv4 rec and the zoo (README): it pays off where the
     * com.microsoft ops add roundings; convert has no samples to measure on */
    if (!a->bias_correction_given)
        j->bias_correction = a->quantize && q->contrib;
    if (!dynamic && !a->quantize && !j->table_path)
        return cli_usage("convert: missing --calib TABLE.json");
    if (!dynamic && a->quantize && !j->n_data)
        return cli_usage("quantize: missing --data PATH");
    if (j->labels_path && !j->n_eval && !(a->quantize && j->n_data))
        return cli_usage("%s: --labels needs --eval-data", cmd);
    return -1;
}

/* Prints each line of the report's summary after "onnxq: ". */
static int print_summary(const oq_report *r)
{
    char *text;
    oq_err err = {0};
    if (oq_report_summary(r, &text, &err))
        return cli_fail(&err);
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        fprintf(stderr, "onnxq: %.*s\n", (int)(end ? end - line : (ptrdiff_t)strlen(line)), line);
        line = end ? end + 1 : line + strlen(line);
    }
    free(text);
    return CLI_EXIT_OK;
}

static int run_convert(convert_args *a)
{
    oq_err err = {0};
    oq_outcome out;
    cli_progress line;
    a->d.job.tool_version = OQ_VERSION;
    cli_progress_attach(&line, &a->d.job, a->d.quiet);
    oq_status st = oq_job_run(&a->d.job, &out, &err);
    cli_progress_end(&line);
    cli_print_warnings(&out);
    int rc = st ? cli_fail(&err) : a->d.quiet ? CLI_EXIT_OK : print_summary(out.report);
    oq_outcome_release(&out);
    return rc;
}

static int convert_main(int argc, char **argv, bool quantize)
{
    convert_args a = {.quantize = quantize};
    a.eval = calloc((size_t)argc + 1, sizeof *a.eval);
    int rc;
    if (!a.eval || !cli_data_args_init(&a.d, argc)) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    } else if ((rc = parse_args(&a, argc, argv)) < 0) {
        rc = run_convert(&a);
    }
    free_list(a.op_types, a.d.job.quant.n_op_types);
    free_list(a.exclude, a.d.job.quant.n_exclude);
    free(a.eval);
    cli_data_args_free(&a.d);
    return rc;
}

int cli_convert(int argc, char **argv) { return convert_main(argc, argv, false); }
int cli_quantize(int argc, char **argv) { return convert_main(argc, argv, true); }
