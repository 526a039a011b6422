/* convert.c: `onnxq convert MODEL --calib TABLE.json -o OUT.onnx` and
 * `onnxq quantize MODEL --data PATH... -o OUT.onnx` (calibrate + convert);
 * also the option parsing `onnxq analyze` shares with them (analyze.c). */
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
    "Rewrites MODEL's Conv, MatMul and Gemm nodes into quantized ops (and stores\n"
    "the weights of embeddings, ConvTranspose, LSTM, GRU, RNN and Einsum, and\n"
    "constant tables added to activations, in int8)\n"
    "using the activation ranges of a calibration table made by `onnxq calibrate`\n"
    "for the same model: weights int8 symmetric per output channel, activations uint8\n"
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

static const char convert_output_help[] =
    "  -o, --output FILE   the quantized model to write\n"
    "  --report FILE       write the JSON accuracy/size report (schema in docs/formats.md)\n"
    "  --html FILE         write the report as one HTML page to open in a browser:\n"
    "                      accuracy before and after, SQNR along the graph, where\n"
    "                      float and 8-bit meet, the size breakdown; with an\n"
    "                      accuracy target, its choices and the ranking\n"
    "  --external-data     write the quantized constants of 1 KiB or more to\n"
    "                      OUT.onnx.data beside OUT.onnx (always done for a model\n"
    "                      over protobuf's 2 GB limit); both are written together\n";

const char cli_quant_options_help[] =
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
    "                      accurate (docs/quantization.md); convert needs a\n"
    "                      table made with `calibrate --contrib`\n"
    "  --per-tensor        one weight scale per tensor instead of per output channel\n"
    "  --activation-type T uint8 (default) or int8\n"
    "  --symmetric-activations  activation ranges symmetric around zero\n"
    "  --op-types LIST     comma-separated ops to quantize (default\n"
    "                      Conv,ConvTranspose,MatMul,Gemm,Gather,LSTM,GRU,RNN,Einsum,Add;\n"
    "                      Gather: lookups in a constant table, e.g. embeddings;\n"
    "                      ConvTranspose: its weight only, except in the QDQ\n"
    "                      format; LSTM, GRU, RNN: their weights W and R only;\n"
    "                      Einsum: its constant operand only; Add: a constant\n"
    "                      table, e.g. learned positions, added to an activation)\n"
    "  --exclude NAMES     comma-separated node names to leave in float (repeatable)\n"
    "  --bias-correction on|off\n"
    "                      move each quantized node's mean output error, measured\n"
    "                      on the calibration samples (quantize's --data) with\n"
    "                      the nodes before it already quantized and corrected,\n"
    "                      into its bias (quantize; default off: see\n"
    "                      docs/accuracy.md for where it helps)\n"
    "  --equalization on|off\n"
    "                      cross-layer equalization of Conv -> depthwise Conv pairs\n"
    "                      from the table's per-channel extremes (default off)\n";

static const char convert_eval_help[] =
    "  --eval-data PATH    samples for the report's accuracy section (repeatable;\n"
    "                      same forms as --data)\n"
    "  --eval-samples N    evaluate at most N samples (default all)\n"
    "  --labels FILE       one line per evaluation sample, in sample order, ending\n"
    "                      in its class number (\"sample_007 3\" or \"3\"): adds top-1\n"
    "                      accuracy of both models for the first output\n"
    "\n"
    "Accuracy targets (at most one): the most sensitive quantized nodes\n"
    "(`onnxq analyze`) stay float until the target holds on the evaluation samples,\n"
    "then each is tried in INT8 again and stays there where the target still holds;\n"
    "when it misses even with all of them float but one, nothing is written:\n"
    "  --max-drop P        top-1 accuracy of the first output (needs --labels) at\n"
    "                      most P points below float\n"
    "  --min-agreement P   top-1 agreement with the float model, in percent, over\n"
    "                      every row of the outputs shaped [N, C] or [N, T, C]\n"
    "  --min-sqnr DB       every output's SQNR against float at least DB\n"
    "  --target-output NAME\n"
    "                      the one graph output --min-agreement or --min-sqnr reads\n"
    "                      (default: all of them; a model that also returns hidden\n"
    "                      states names its logits here)\n"
    "  --sensitivity FILE  the ranking from `onnxq analyze` (or a report with a\n"
    "                      sensitivity section) instead of analysing in this run\n"
    "\n";

static const char convert_run_help[] =
    "  --threads N         threads (default 0: all online cores); evaluation runs\n"
    "                      blocks of 4 samples side by side (calibration blocks of\n"
    "                      32); the output and report do not depend on N\n"
    "  -q, --quiet         no progress line or summary on stderr\n"
    "  -h, --help          show this help\n";

/* The command line's own options; the job's options come from the job
 * builder's table (oq_job_builder_options), numbered from JOB_OPT_BASE. */
enum { OPT_HELP = 1, OPT_QUIET, OPT_SHARD, OPT_CACHE_MB, JOB_OPT_BASE = 1000 };

static const cli_opt own_opts[] = {
    {"help", 'h', false, OPT_HELP},
    {"quiet", 'q', false, OPT_QUIET},
    {"shard", 0, true, OPT_SHARD},
    {"cache-mb", 0, true, OPT_CACHE_MB},
};
#define N_OWN_OPTS ((int)(sizeof own_opts / sizeof own_opts[0]))

/* Job options a command does not take, and why. Everything else the
 * builder knows, convert, quantize and analyze take. */
enum { CONVERT = 1 << CLI_CONVERT, QUANTIZE = 1 << CLI_QUANTIZE, ANALYZE = 1 << CLI_ANALYZE };
static const struct refusal {
    const char *option;
    unsigned commands;
    const char *why;
} refusals[] = {
    {"model", CONVERT | QUANTIZE | ANALYZE, "MODEL is the first argument"},
    {"calib", QUANTIZE, "belongs to convert (quantize calibrates from --data)"},
    {"report", ANALYZE, "belongs to convert and quantize (-o names the result)"},
    {"external-data", ANALYZE, "belongs to convert and quantize (analyze writes no model)"},
    {"labels", ANALYZE, "belongs to convert and quantize (the analysis compares with float)"},
    {"max-drop", ANALYZE, "belongs to convert and quantize"},
    {"min-agreement", ANALYZE, "belongs to convert and quantize"},
    {"min-sqnr", ANALYZE, "belongs to convert and quantize"},
    {"target-output", ANALYZE, "belongs to convert and quantize"},
    {"sensitivity", ANALYZE, "belongs to convert and quantize"},
    /* convert re-chooses ranges from its table (--method, --percentile,
     * --activation-type, --symmetric) but takes no data */
    {"data", CONVERT, "belongs to calibrate or quantize"},
    {"bins", CONVERT, "belongs to calibrate or quantize"},
    {"samples", CONVERT, "belongs to calibrate or quantize"},
    {"all-tensors", CONVERT, "belongs to calibrate or quantize"},
    {"resize", CONVERT, "belongs to calibrate or quantize"},
    {"crop", CONVERT, "belongs to calibrate or quantize"},
    {"layout", CONVERT, "belongs to calibrate or quantize"},
    {"scale", CONVERT, "belongs to calibrate or quantize"},
    {"mean", CONVERT, "belongs to calibrate or quantize"},
    {"std", CONVERT, "belongs to calibrate or quantize"},
    {"bgr", CONVERT, "belongs to calibrate or quantize"},
    {"bias-correction", CONVERT, "belongs to quantize (it measures on the calibration samples)"},
};

typedef struct convert_args {
    cli_quant_cmd cmd;
    cli_data_args d;             /* the builder every job option goes through; quiet */
    oq_sensitivity_options sens; /* analyze */
} convert_args;

static void print_help(bool quantize)
{
    fputs(quantize ? cli_quantize_help : cli_convert_help, stdout);
    fputs(convert_output_help, stdout);
    fputs(cli_quant_options_help, stdout);
    fputs(convert_eval_help, stdout);
    fputs(convert_run_help, stdout);
    fputc('\n', stdout);
    if (quantize) {
        fputs(cli_calib_help, stdout);
        fputc('\n', stdout);
        fputs(cli_preprocess_help, stdout);
    }
}

/* "K/N" with 1 <= K <= N <= 1000000. */
static bool parse_shard(const char *s, int *k, int *n)
{
    const char *slash = strchr(s, '/');
    char buf[16];
    long a, b;
    if (!slash || slash == s || (size_t)(slash - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    if (!cli_parse_int(buf, 1, 1000000, &a) || !cli_parse_int(slash + 1, 1, 1000000, &b) || a > b)
        return false;
    *k = (int)a;
    *n = (int)b;
    return true;
}

/* Why cmd does not take job option `name`, or NULL when it does. */
static const char *refused(cli_quant_cmd cmd, const char *name)
{
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
        if ((refusals[i].commands & (1u << cmd)) && !strcmp(refusals[i].option, name))
            return refusals[i].why;
    return NULL;
}

/* The command's own options (analyze's only for analyze) and every job option. */
static cli_opt *option_table(cli_quant_cmd cmd, int *n)
{
    const oq_job_option *job_opts;
    int n_job = oq_job_builder_options(&job_opts);
    cli_opt *opts = calloc((size_t)(N_OWN_OPTS + n_job), sizeof *opts);
    *n = 0;
    for (int i = 0; opts && i < N_OWN_OPTS; i++)
        if (cmd == CLI_ANALYZE || (own_opts[i].id != OPT_SHARD && own_opts[i].id != OPT_CACHE_MB))
            opts[(*n)++] = own_opts[i];
    for (int i = 0; opts && i < n_job; i++)
        opts[(*n)++] = (cli_opt){job_opts[i].name, !strcmp(job_opts[i].name, "output") ? 'o' : 0,
                                 job_opts[i].takes_value, JOB_OPT_BASE + i};
    return opts;
}

/* Parses argv with opts: the command line's own options here, every job
 * option the command takes through the builder, then the builder's checks
 * across options and what the command needs. -1 to go on (a->d.job holds
 * the job), else the exit status after printing the error or the help. */
static int parse_options(convert_args *a, const cli_opt *opts, int n_opts, int argc, char **argv)
{
    static const char *const names[] = {[CLI_CONVERT] = "convert", [CLI_QUANTIZE] = "quantize", [CLI_ANALYZE] = "analyze"};
    const char *cmd = names[a->cmd];
    bool analyze = a->cmd == CLI_ANALYZE, have_model = false;
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, cmd, opts, n_opts);
    const char *v;
    int id, rc;
    long mb;
    while ((id = cli_next(&p, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP:
            if (analyze)
                cli_analyze_print_help();
            else
                print_help(a->cmd == CLI_QUANTIZE);
            return CLI_EXIT_OK;
        case OPT_QUIET: a->d.quiet = true; break;
        case OPT_SHARD:
            if (!parse_shard(v, &a->sens.shard_index, &a->sens.shard_count))
                return cli_usage("analyze: --shard expects K/N with 1 <= K <= N (shard K of N), got '%s'", v);
            break;
        case OPT_CACHE_MB:
            if (!cli_parse_int(v, 1, 1L << 24, &mb))
                return cli_usage("analyze: --cache-mb expects a size in MiB from 1 to 16777216, got '%s'", v);
            a->sens.cache_bytes = (size_t)mb << 20;
            break;
        case CLI_POSITIONAL:
            if (have_model)
                return cli_usage("%s: expected one MODEL, got '%s' and '%s'", cmd,
                                 oq_job_builder_job(a->d.builder)->model_path, v);
            if ((rc = cli_job_option(&a->d, "model", v, cmd)) >= 0)
                return rc;
            have_model = true;
            break;
        default: {
            const char *name = opts[0].long_name, *why;
            for (int i = 0; i < n_opts; i++)
                if (opts[i].id == id)
                    name = opts[i].long_name;
            if ((why = refused(a->cmd, name)))
                return cli_usage("%s: --%s %s", cmd, name, why);
            if ((rc = cli_job_option(&a->d, name, v, cmd)) >= 0)
                return rc;
        }
        }
    }
    oq_err err = {0};
    cli_data_args_take_job(&a->d);
    const oq_job *j = &a->d.job;
    bool dynamic = j->quant.mode == OQ_MODE_DYNAMIC;
    if (!j->model_path)
        return cli_usage("%s: missing MODEL", cmd);
    if (!j->output_path)
        return cli_usage("%s: missing -o %s", cmd, analyze ? "OUT.json" : "OUT.onnx");
    if (oq_job_builder_check(a->d.builder, &err))
        return cli_usage("%s: %s", cmd, err.msg);
    if (!dynamic && a->cmd == CLI_CONVERT && !j->table_path)
        return cli_usage("convert: missing --calib TABLE.json");
    if (!dynamic && a->cmd == CLI_QUANTIZE && !j->n_data)
        return cli_usage("quantize: missing --data PATH");
    if (analyze && !j->n_data && !j->n_eval)
        return cli_usage("analyze: missing --data PATH (samples to calibrate and analyse on) or --eval-data PATH");
    if (analyze && !dynamic && !j->table_path && !j->n_data)
        return cli_usage("analyze: missing --data PATH or --calib TABLE.json (for the activation ranges)");
    return -1;
}

/* Parses argv for a's command into its builder: -1 to go on, else the exit status. */
static int parse_args(convert_args *a, int argc, char **argv)
{
    int n_opts;
    cli_opt *opts = option_table(a->cmd, &n_opts);
    if (!opts) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = parse_options(a, opts, n_opts, argc, argv);
    free(opts);
    return rc;
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

int cli_quant_main(int argc, char **argv, cli_quant_cmd cmd)
{
    convert_args a = {.cmd = cmd};
    int rc;
    if (!cli_data_args_init(&a.d)) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    } else if ((rc = parse_args(&a, argc, argv)) < 0) {
        a.d.job.tool_version = OQ_VERSION;
        rc = cmd == CLI_ANALYZE ? cli_analyze_run(&a.d.job, &a.sens, a.d.quiet) : run_convert(&a);
    }
    cli_data_args_free(&a.d);
    return rc;
}

int cli_convert(int argc, char **argv) { return cli_quant_main(argc, argv, CLI_CONVERT); }
int cli_quantize(int argc, char **argv) { return cli_quant_main(argc, argv, CLI_QUANTIZE); }
