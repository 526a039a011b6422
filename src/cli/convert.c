/* convert.c: `onnxq convert MODEL --calib TABLE.json -o OUT.onnx` and
 * `onnxq quantize MODEL --data PATH... -o OUT.onnx` (calibrate + convert). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_data.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_onnx_io.h"
#include "onnxq/oq_quant.h"
#include "onnxq/oq_report.h"

static const char cli_convert_help[] =
    "Usage: onnxq convert MODEL --calib TABLE.json -o OUT.onnx [options]\n"
    "       onnxq convert MODEL --mode dynamic -o OUT.onnx [options]\n"
    "\n"
    "Rewrites MODEL's Conv, MatMul and Gemm nodes into quantized ops using the\n"
    "activation ranges of a calibration table made by `onnxq calibrate` for the\n"
    "same model: weights int8 symmetric per output channel, activations uint8\n"
    "asymmetric (by default), bias int32 at input scale x weight scale. Graph\n"
    "inputs and outputs stay float. Nodes that cannot be quantized stay float and\n"
    "the report says why. OUT.onnx is written atomically; MODEL is never changed.\n"
    "\n"
    "Options:\n"
    "  --calib FILE        the calibration table (required in static mode)\n";

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
};
#define N_OWN_OPTS ((int)(sizeof convert_opts / sizeof convert_opts[0]))

typedef struct convert_args {
    bool quantize; /* calibrate first */
    const char *model, *output, *calib_path, *report, *labels;
    oq_quant_options q;
    char **op_types, **exclude; /* split lists, owned */
    const char **eval;          /* [n_eval] */
    int n_eval;
    long eval_samples;
    cli_calib_args calib;       /* data + calibration options (quantize), threads, quiet */
    bool act_type_given, sym_given, format_given;
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

static void free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int parse_args(convert_args *a, int argc, char **argv)
{
    const char *cmd = a->quantize ? "quantize" : "convert";
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
        case OPT_OUTPUT: a->output = v; break;
        case OPT_CALIB:
            if (a->quantize)
                return cli_usage("quantize: --calib belongs to convert (quantize calibrates from --data)");
            a->calib_path = v;
            break;
        case OPT_REPORT: a->report = v; break;
        case OPT_MODE:
            if (strcmp(v, "static") == 0)
                a->q.mode = OQ_MODE_STATIC;
            else if (strcmp(v, "dynamic") == 0)
                a->q.mode = OQ_MODE_DYNAMIC;
            else
                return cli_usage("%s: --mode must be static or dynamic, got '%s'", cmd, v);
            break;
        case OPT_FORMAT:
            a->format_given = true;
            if (strcmp(v, "qoperator") == 0)
                a->q.format = OQ_FORMAT_QOPERATOR;
            else if (strcmp(v, "qdq") == 0)
                a->q.format = OQ_FORMAT_QDQ;
            else
                return cli_usage("%s: --format must be qoperator or qdq, got '%s'", cmd, v);
            break;
        case OPT_CONTRIB: a->q.contrib = true; break;
        case OPT_PER_TENSOR: a->q.per_channel = false; break;
        case OPT_SYM_ACT:
        case CLI_OPT_SYMMETRIC:
            a->range_opt = a->range_opt ? a->range_opt : "--symmetric-activations";
            a->calib.calib.range.symmetric = true;
            a->sym_given = true;
            break;
        case OPT_OP_TYPES:
            if (!split_into(&a->op_types, &a->q.n_op_types, v))
                return cli_usage("out of memory");
            for (int i = 0; i < a->q.n_op_types; i++)
                if (strcmp(a->op_types[i], "Conv") && strcmp(a->op_types[i], "MatMul") && strcmp(a->op_types[i], "Gemm"))
                    return cli_usage("%s: --op-types accepts Conv, MatMul and Gemm, got '%s'", cmd, a->op_types[i]);
            break;
        case OPT_EXCLUDE:
            if (!split_into(&a->exclude, &a->q.n_exclude, v))
                return cli_usage("out of memory");
            break;
        case OPT_EVAL_DATA: a->eval[a->n_eval++] = v; break;
        case OPT_EVAL_SAMPLES:
            if (!cli_parse_int(v, 1, 1L << 40, &a->eval_samples))
                return cli_usage("%s: --eval-samples expects a positive count, got '%s'", cmd, v);
            break;
        case OPT_LABELS: a->labels = v; break;
        case CLI_POSITIONAL:
            if (a->model)
                return cli_usage("%s: expected one MODEL, got '%s' and '%s'", cmd, a->model, v);
            a->model = v;
            break;
        default: {
            /* data and calibration options: quantize takes all; convert only the
             * ones that re-choose ranges from the table's histograms */
            bool convert_ok = id == CLI_OPT_ACT_TYPE || id == CLI_OPT_THREADS || id == CLI_OPT_QUIET ||
                              id == CLI_OPT_METHOD || id == CLI_OPT_PERCENTILE;
            if (!a->quantize && !convert_ok)
                return cli_usage("convert: %s belongs to calibrate or quantize", argv[p.i - 1]);
            if (id == CLI_OPT_ACT_TYPE)
                a->act_type_given = true;
            const char *range_opt = id == CLI_OPT_ACT_TYPE     ? "--activation-type"
                                    : id == CLI_OPT_METHOD     ? "--method"
                                    : id == CLI_OPT_PERCENTILE ? "--percentile"
                                    : id == CLI_OPT_BINS       ? "--bins"
                                    : id == CLI_OPT_SAMPLES    ? "--samples"
                                                               : NULL;
            if (!a->range_opt)
                a->range_opt = range_opt;
            int rc = cli_calib_option(&a->calib, id, v, cmd);
            if (rc >= 0)
                return rc;
        }
        }
    }
    a->q.op_types = (const char *const *)a->op_types;
    a->q.exclude = (const char *const *)a->exclude;
    if (!a->model)
        return cli_usage("%s: missing MODEL", cmd);
    if (!a->output)
        return cli_usage("%s: missing -o OUT.onnx", cmd);
    bool dynamic = a->q.mode == OQ_MODE_DYNAMIC;
    if (dynamic && a->calib_path)
        return cli_usage("convert: --calib is not used with --mode dynamic (nothing is calibrated)");
    if (dynamic && a->format_given)
        return cli_usage("%s: --format does not apply to --mode dynamic (it has one form)", cmd);
    if (a->q.contrib && (dynamic || a->q.format != OQ_FORMAT_QOPERATOR))
        return cli_usage("%s: --contrib applies to --format qoperator in static mode", cmd);
    if (dynamic && a->range_opt)
        return cli_usage("%s: %s does not apply to --mode dynamic (DynamicQuantizeLinear picks uint8 ranges at run time)",
                         cmd, a->range_opt);
    if (!dynamic && !a->quantize && !a->calib_path)
        return cli_usage("convert: missing --calib TABLE.json");
    if (!dynamic && a->quantize && !a->calib.n_data)
        return cli_usage("quantize: missing --data PATH");
    if (a->labels && !a->n_eval && !(a->quantize && a->calib.n_data))
        return cli_usage("%s: --labels needs --eval-data", cmd);
    return -1;
}

/* Reads one label per line: the line's last whitespace-separated token is the
 * class (a sample name may come first). Blank lines are not allowed. */
static oq_status read_labels(const char *path, int64_t **out, int64_t *n, oq_err *err)
{
    uint8_t *buf;
    size_t len;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    int64_t cap = 64, cnt = 0;
    int64_t *labels = malloc((size_t)cap * sizeof *labels);
    char *text = malloc(len + 1);
    if (!labels || !text) {
        free(buf);
        free(labels);
        free(text);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    free(buf);
    int line = 1;
    for (char *p = text; *p; line++) {
        char *end = strchr(p, '\n');
        if (end)
            *end = '\0';
        size_t n_chars = strlen(p);
        while (n_chars && strchr(" \t\r", p[n_chars - 1]))
            p[--n_chars] = '\0';
        char *token = strrchr(p, ' ');
        char *tab = strrchr(p, '\t');
        token = tab > token ? tab : token;
        token = token ? token + 1 : p;
        char *q;
        long long v = strtoll(token, &q, 10);
        if (q == token || *q) {
            st = oq_errf(err, OQ_EINVAL, "%s:%d: expected a class number at the end of the line", path, line);
            break;
        }
        if (cnt == cap) {
            int64_t *grown = realloc(labels, (size_t)(cap *= 2) * sizeof *grown);
            if (!grown) {
                st = oq_errf(err, OQ_ENOMEM, "out of memory");
                break;
            }
            labels = grown;
        }
        labels[cnt++] = v;
        if (!end)
            break;
        p = end + 1;
    }
    free(text);
    if (st) {
        free(labels);
        return st;
    }
    *out = labels;
    *n = cnt;
    return OQ_OK;
}

/* Short human summary of the run on stderr. */
static void print_summary(const convert_args *a, const oq_report_input *r)
{
    int quantized = 0;
    for (int i = 0; i < r->result->n_nodes; i++)
        quantized += r->result->nodes[i].quantized;
    int64_t nt, ne, fb, qb;
    oq_graph_param_stats(r->fp32->graph, &nt, &ne, &fb);
    oq_graph_param_stats(r->quant->graph, &nt, &ne, &qb);
    const char *form = a->q.mode == OQ_MODE_DYNAMIC ? "dynamic" : a->q.format == OQ_FORMAT_QDQ ? "qdq" : "qoperator";
    fprintf(stderr, "onnxq: quantized %d of %d Conv/MatMul/Gemm nodes (%s); weights %.2f MB -> %.2f MB (%.2fx)\n",
            quantized, r->result->n_nodes, form, fb / 1e6, qb / 1e6,
            qb ? (double)fb / (double)qb : 0.0);
    if (r->result->n_folded_bn)
        fprintf(stderr, "onnxq: folded %d BatchNormalization nodes into the Conv before them\n", r->result->n_folded_bn);
    if (r->result->n_contrib_ops)
        fprintf(stderr, "onnxq: %d more float ops run in 8 bits as com.microsoft QLinear ops (QLinearAdd, ...)\n",
                r->result->n_contrib_ops);
    if (r->result->n_folded_factors || r->result->n_fused_hard_swish)
        fprintf(stderr, "onnxq: float ops between 8-bit ones: %d constant factors moved into (de)quantization scales, "
                        "%d hard-swish patterns made HardSwish\n",
                r->result->n_folded_factors, r->result->n_fused_hard_swish);
    if (r->result->n_glue_ops) {
        char ops[256] = "";
        for (int i = 0, used = 0; i < r->result->n_glue_ops && i < 4 && used < (int)sizeof ops; i++)
            used += snprintf(ops + used, sizeof ops - (size_t)used, "%s%s x%d", i ? ", " : "",
                             r->result->glue_ops[i].op_type, r->result->glue_ops[i].count);
        fprintf(stderr,
                "onnxq: float and 8-bit meet at %d QuantizeLinear and %d DequantizeLinear nodes, next to float %s%s: "
                "each is one more pass over its tensor, which small models feel most\n",
                r->result->n_boundary_quantize, r->result->n_boundary_dequantize, ops,
                r->result->n_glue_ops > 4 ? ", ..." : "");
    }
    if (r->result->opset_to != r->result->opset_from)
        fprintf(stderr, "onnxq: raised the model's opset from %lld to %lld (nodes whose definitions changed were rewritten)\n",
                (long long)r->result->opset_from, (long long)r->result->opset_to);
    for (int i = 0, shown = 0; i < r->result->n_nodes && shown < 5; i++) {
        const oq_quant_node *q = &r->result->nodes[i];
        if (!q->quantized) {
            fprintf(stderr, "onnxq:   left float: '%s' (%s): %s\n", q->name, q->op_type, q->reason);
            shown++;
        }
    }
    if (r->eval) {
        for (int k = 0; k < r->eval->n_outputs; k++) {
            const oq_output_metrics *m = &r->eval->outputs[k];
            fprintf(stderr, "onnxq: output '%s' over %lld samples: cosine %.5f, SQNR %.1f dB, max abs error %.4g",
                    m->name, (long long)r->eval->samples, m->cosine, m->sqnr_db, m->max_abs_error);
            if (m->classifier && m->top1_total)
                fprintf(stderr, ", top-1 agreement %.2f%%", 100.0 * m->top1_agree / m->top1_total);
            fputc('\n', stderr);
        }
        if (a->q.mode == OQ_MODE_STATIC && a->q.format == OQ_FORMAT_QOPERATOR) {
            const char *why;
            bool faster = oq_eval_speedup_expected(r->eval, &why);
            fprintf(stderr, "onnxq: %s: %s (per sample: %.3g M multiply-adds in %.0f integer ops, %.3g M elements "
                            "converted)\n",
                    faster ? "a runtime with 8-bit kernels should run this faster than float"
                           : "expect no speed-up over float in a runtime",
                    why, r->eval->int8_macs / 1e6, r->eval->int8_nodes, r->eval->converted / 1e6);
        }
        if (r->eval->labeled)
            fprintf(stderr, "onnxq: top-1 accuracy on %lld labeled samples: fp32 %.2f%%, quantized %.2f%%\n",
                    (long long)r->eval->labeled, 100.0 * r->eval->fp32_correct / r->eval->labeled,
                    100.0 * r->eval->q_correct / r->eval->labeled);
    } else {
        fprintf(stderr, "onnxq: no evaluation: no samples to run (give --eval-data to measure accuracy)\n");
    }
}

static int run_convert(convert_args *a)
{
    oq_err err = {0};
    oq_model *fp32 = NULL, *work = NULL, *check = NULL;
    oq_calib_table *table = NULL;
    oq_quant_result result = {0};
    oq_eval eval = {0};
    oq_dataset *ds = NULL;
    int64_t *labels = NULL, n_labels = 0;
    uint8_t *bytes = NULL;
    size_t n_bytes = 0;
    char model_hash[65];
    int rc = CLI_EXIT_OK;
    bool evaluated = false;
    oq_report_input rep = {.version = OQ_VERSION, .model_path = a->model, .output_path = a->output, .opts = &a->q};
    double t = cli_now_s();

    if (cli_refuse_overwrite(a->output, a->model, &err) ||
        (a->report && (cli_refuse_overwrite(a->report, a->model, &err) ||
                       cli_refuse_overwrite(a->report, a->output, &err))) ||
        (a->calib_path && cli_refuse_overwrite(a->output, a->calib_path, &err)))
        goto fail;
    if (oq_model_load(&fp32, a->model, &err) || oq_model_load(&work, a->model, &err) ||
        cli_file_sha256(a->model, model_hash, &err))
        goto fail;
    rep.t_load = cli_now_s() - t;
    t = cli_now_s();
    if (a->q.mode == OQ_MODE_DYNAMIC) {
        /* nothing to calibrate: DynamicQuantizeLinear gives uint8 asymmetric parameters */
    } else if (a->quantize) {
        a->calib.contrib = a->q.contrib;
        if (cli_calibrate_model(&a->calib, fp32, a->model, &table, &err))
            goto fail;
        cli_warn_nonfinite(table);
    } else {
        if (oq_calib_table_load(&table, a->calib_path, &err))
            goto fail;
        if (strcmp(table->model_sha256, model_hash) != 0) {
            oq_errf(&err, OQ_EINVAL, "%s was made for a different model (sha256 %.12s..., %s has %.12s...)",
                    a->calib_path, table->model_sha256, a->model, model_hash);
            goto fail;
        }
        /* options given here re-choose the ranges from the table's histograms */
        oq_range_options *r = &table->range, *want = &a->calib.calib.range;
        if (a->act_type_given)
            r->qmin = want->qmin, r->qmax = want->qmax;
        if (a->sym_given)
            r->symmetric = true;
        if (want->method != OQ_CALIB_PERCENTILE || want->percentile != 99.999) {
            r->method = want->method;
            r->percentile = want->percentile;
        }
        oq_calib_table_compute_ranges(table);
    }
    rep.t_calibrate = cli_now_s() - t;
    a->q.act_qmin = table ? table->range.qmin : 0;
    a->q.act_qmax = table ? table->range.qmax : 255;
    a->q.symmetric_activations = table && table->range.symmetric;

    t = cli_now_s();
    if (oq_quantize_model(work, table, &a->q, &result, &err) || oq_model_serialize(work, &bytes, &n_bytes, &err))
        goto fail;
    rep.t_rewrite = cli_now_s() - t;
    if (result.n_contrib_no_range)
        fprintf(stderr, "onnxq: warning: --contrib: %d nodes with 8-bit inputs stay float: %s has no "
                        "range for their outputs (make it with `onnxq calibrate --contrib`)\n",
                result.n_contrib_no_range, a->calib_path ? a->calib_path : "the calibration table");

    /* measure what will be written: the serialized bytes, loaded back */
    t = cli_now_s();
    char *dir = oq_path_dir(a->output);
    oq_status st = dir ? oq_model_load_buffer(&check, bytes, n_bytes, dir, &err) : oq_errf(&err, OQ_ENOMEM, "out of memory");
    free(dir);
    if (st)
        goto fail;
    int n_specs = a->n_eval ? a->n_eval : a->quantize ? a->calib.n_data : 0;
    const char *const *specs = a->n_eval ? a->eval : a->calib.data;
    if (n_specs) {
        if ((a->labels && read_labels(a->labels, &labels, &n_labels, &err)) ||
            cli_open_data(&a->calib, fp32, n_specs, specs, &ds, &err) ||
            oq_evaluate(fp32, check, &result, ds, a->eval_samples, labels, n_labels, a->calib.calib.threads, &eval, &err))
            goto fail;
        evaluated = true;
    }
    rep.t_evaluate = cli_now_s() - t;

    t = cli_now_s();
    if (oq_write_file_atomic(a->output, bytes, n_bytes, &err))
        goto fail;
    rep.t_save = cli_now_s() - t;
    rep.model_sha256 = model_hash;
    rep.table = table;
    rep.fp32 = fp32;
    rep.quant = check;
    rep.result = &result;
    rep.eval = evaluated ? &eval : NULL;
    if (a->report && oq_report_write(&rep, a->report, &err)) {
        remove(a->output); /* no half-finished run: the model goes with its report */
        goto fail;
    }
    if (!a->calib.quiet)
        print_summary(a, &rep);
    goto done;
fail:
    rc = cli_fail(&err);
done:
    free(bytes);
    free(labels);
    oq_dataset_destroy(ds);
    oq_eval_release(&eval);
    oq_quant_result_release(&result);
    oq_calib_table_destroy(table);
    oq_model_destroy(check);
    oq_model_destroy(work);
    oq_model_destroy(fp32);
    return rc;
}

static int convert_main(int argc, char **argv, bool quantize)
{
    convert_args a = {.quantize = quantize};
    a.q.format = OQ_FORMAT_QOPERATOR;
    a.q.per_channel = true;
    a.eval = calloc((size_t)argc + 1, sizeof *a.eval);
    int rc;
    if (!a.eval || !cli_calib_args_init(&a.calib, argc)) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    } else if ((rc = parse_args(&a, argc, argv)) < 0) {
        rc = run_convert(&a);
    }
    free_list(a.op_types, a.q.n_op_types);
    free_list(a.exclude, a.q.n_exclude);
    free(a.eval);
    cli_calib_args_free(&a.calib);
    return rc;
}

int cli_convert(int argc, char **argv) { return convert_main(argc, argv, false); }
int cli_quantize(int argc, char **argv) { return convert_main(argc, argv, true); }
