/* compare.c: `onnxq compare FLOAT.onnx QUANT.onnx --data PATH...`: both models
 * on the same samples, compared tensor by tensor (src/analysis/compare.c);
 * a table on stderr and, with --report, the JSON report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_data.h"
#include "onnxq/oq_compare.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_onnx_io.h"

static const char cli_compare_help[] =
    "Usage: onnxq compare FLOAT.onnx QUANT.onnx --data PATH [--data PATH ...] [options]\n"
    "\n"
    "Runs a float model and a quantized version of it (made by onnxq or by another\n"
    "tool, such as ONNX Runtime's quantize_static) on the same samples and compares\n"
    "them tensor by tensor, in the quantized model's graph order: every tensor that\n"
    "stands for a float tensor (same name; through QuantizeLinear/DequantizeLinear;\n"
    "an 8-bit tensor read at its scale and zero point) gets its SQNR, cosine and\n"
    "largest error over all samples, and each graph output its top-1 agreement when\n"
    "shaped [N, C] or [N, T, C]. The two models must have the same inputs. Samples\n"
    "run one at a time: memory does not grow with their number. The table on stderr\n"
    "marks the tensors that lose the most SQNR against the tensors they are computed\n"
    "from and names the first that loses 6 dB or more.\n"
    "\n"
    "Options:\n"
    "  --report FILE       write the comparison as JSON (schema in docs/formats.md)\n"
    "  --html FILE         write it as one HTML page to open in a browser: SQNR\n"
    "                      along the graph with the sharp drops marked\n"
    "  --samples N         compare on at most the first N samples (default all)\n"
    "  --threads N         threads for each model's run (default 0: all online cores);\n"
    "                      the numbers do not depend on N\n"
    "  -q, --quiet         no table on stderr\n"
    "  -h, --help          show this help\n"
    "\n"
    "Data (--data, repeatable; fed to both models):\n"
    "  DIR                 an ONNX test-data folder (input_0.pb, ...): one sample\n"
    "  DIR                 a folder of such folders, or of PNG/JPEG images: one\n"
    "                      sample each, in name order\n"
    "  NAME=FILE.npy       input NAME's samples stacked on a leading axis (give one\n"
    "                      per model input; all with the same sample count)\n"
    "  FILE.npy            the same for a model of one input\n"
    "\n";

enum { OPT_HELP = 1, OPT_REPORT, OPT_HTML };

static const cli_opt compare_own_opts[] = {
    {"help", 'h', false, OPT_HELP},
    {"report", 0, true, OPT_REPORT},
    {"html", 0, true, OPT_HTML},
};
#define N_OWN_OPTS ((int)(sizeof compare_own_opts / sizeof compare_own_opts[0]))

/* The shared data options compare takes: data, sample count, threads, quiet
 * and image preprocessing (not the calibration ones). */
static bool takes_data_option(int id)
{
    return id == CLI_OPT_DATA || id == CLI_OPT_SAMPLES || id == CLI_OPT_THREADS || id == CLI_OPT_QUIET ||
           (id >= CLI_OPT_RESIZE && id <= CLI_OPT_BGR);
}

typedef struct compare_args {
    const char *fp32, *quant, *report, *html;
    cli_data_args data; /* --data specs, preprocessing, samples, threads, quiet (in data.job) */
} compare_args;

static void print_help(void)
{
    fputs(cli_compare_help, stdout);
    fputs(cli_preprocess_help, stdout);
}

static int parse_args(compare_args *a, int argc, char **argv)
{
    cli_opt opts[N_OWN_OPTS + CLI_DATA_OPT_COUNT];
    int n_opts = N_OWN_OPTS;
    memcpy(opts, compare_own_opts, sizeof compare_own_opts);
    for (int i = 0; i < CLI_DATA_OPT_COUNT; i++)
        if (takes_data_option(cli_data_opts[i].id))
            opts[n_opts++] = cli_data_opts[i];
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, "compare", opts, n_opts);
    const char *v;
    int id, rc;
    while ((id = cli_next(&p, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP: print_help(); return CLI_EXIT_OK;
        case OPT_REPORT:
            if (a->report)
                return cli_usage("compare: --report given twice");
            a->report = v;
            break;
        case OPT_HTML:
            if (a->html)
                return cli_usage("compare: --html given twice");
            a->html = v;
            break;
        case CLI_POSITIONAL:
            if (a->quant)
                return cli_usage("compare: expected FLOAT.onnx and QUANT.onnx, got a third argument '%s'", v);
            *(a->fp32 ? &a->quant : &a->fp32) = v;
            break;
        default:
            if ((rc = cli_data_option(&a->data, id, v, "compare")) >= 0)
                return rc;
        }
    }
    cli_data_args_take_job(&a->data);
    if (!a->quant)
        return cli_usage("compare: expected FLOAT.onnx and QUANT.onnx");
    if (!a->data.job.n_data)
        return cli_usage("compare: missing --data PATH");
    return -1;
}

/* ---- the table ------------------------------------------------------------------------ */

/* A number in a column of `width`: "inf", or "-" when there is none. */
static void put_number(double v, int width, int decimals)
{
    if (isnan(v))
        fprintf(stderr, " %*s", width, "-");
    else if (isinf(v))
        fprintf(stderr, " %*s", width, v > 0 ? "inf" : "-inf");
    else
        fprintf(stderr, " %*.*f", width, decimals, fabs(v) < 0.5 * pow(10, -decimals) ? 0.0 : v); /* no "-0.00" */
}

enum { N_MARKED = 3, NAME_WIDTH_MAX = 48 };

static void print_table(const oq_compare_result *r, double seconds)
{
    int marked[N_MARKED], n_marked = oq_compare_largest_drops(r, OQ_COMPARE_SHARP_DROP_DB, marked, N_MARKED);
    int width = 6, op_width = 2;
    for (int i = 0; i < r->n_tensors; i++) {
        int w = (int)strlen(r->tensors[i].name), o = (int)strlen(r->tensors[i].op_type);
        width = w > width ? (w < NAME_WIDTH_MAX ? w : NAME_WIDTH_MAX) : width;
        op_width = o > op_width ? o : op_width;
    }
    fprintf(stderr, "onnxq: compared %d tensors over %lld samples in %.2fs (%d not compared, %d with differing shapes)\n",
            r->n_tensors, (long long)r->samples, seconds, r->n_unmatched, r->n_mismatched);
    if (r->n_tensors)
        fprintf(stderr, "%-*s  %-*s %8s %9s %12s %8s\n", width, "tensor", op_width, "op", "SQNR dB", "cosine",
                "max abs err", "drop dB");
    for (int i = 0; i < r->n_tensors; i++) {
        const oq_compare_tensor *t = &r->tensors[i];
        fprintf(stderr, "%-*s  %-*s", width, t->name, op_width, t->op_type);
        put_number(t->sqnr_db, 8, 2);
        put_number(t->cosine, 9, 6);
        put_number(t->max_abs_error, 12, 6);
        put_number(t->drop_db, 8, 2);
        bool mark = false;
        for (int k = 0; k < n_marked; k++)
            mark = mark || marked[k] == i;
        if (t->mismatched)
            fprintf(stderr, "  (%lld samples of differing shapes)", (long long)t->mismatched);
        fputs(mark ? "  <\n" : "\n", stderr);
    }
    int first = oq_compare_first_drop(r, OQ_COMPARE_SHARP_DROP_DB);
    if (first >= 0) {
        const oq_compare_tensor *t = &r->tensors[first];
        fprintf(stderr, "SQNR first drops by %.0f dB or more at %s (%s): %.2f -> %.2f dB\n", OQ_COMPARE_SHARP_DROP_DB,
                t->name, t->op_type, t->sqnr_db + t->drop_db, t->sqnr_db);
    }
    if (n_marked) {
        fprintf(stderr, "largest drops (<):");
        for (int k = 0; k < n_marked; k++)
            fprintf(stderr, "%s %s (%s) %.2f dB", k ? "," : "", r->tensors[marked[k]].name,
                    r->tensors[marked[k]].op_type, r->tensors[marked[k]].drop_db);
        fputc('\n', stderr);
    }
    for (int i = 0; i < r->n_outputs; i++) {
        const oq_compare_output *o = &r->outputs[i];
        fprintf(stderr, "output %s: SQNR", o->name);
        put_number(o->sqnr_db, 0, 2);
        fprintf(stderr, " dB, cosine");
        put_number(o->cosine, 0, 6);
        fprintf(stderr, ", max abs error");
        put_number(o->max_abs_error, 0, 6);
        if (o->classifier && o->top1_total)
            fprintf(stderr, ", top-1 agreement %.1f%% (%lld of %lld)", 100.0 * (double)o->top1_agree / (double)o->top1_total,
                    (long long)o->top1_agree, (long long)o->top1_total);
        if (o->nonfinite)
            fprintf(stderr, "; the float model gave %lld NaN or infinite value%s, left out", (long long)o->nonfinite,
                    o->nonfinite == 1 ? "" : "s");
        fputc('\n', stderr);
    }
}

/* ---- the command ----------------------------------------------------------------------- */

static int run_compare(compare_args *a)
{
    oq_err err = {0};
    oq_model *fm = NULL, *qm = NULL;
    oq_dataset *ds = NULL;
    oq_compare_result *r = NULL;
    char fsha[65], qsha[65];
    int rc = CLI_EXIT_OK;
    double t0 = cli_now_s();
    const oq_job *j = &a->data.job;
    const char *outputs[2][2] = {{"--report", a->report}, {"--html", a->html}};
    for (int k = 0; k < 2; k++) {
        const char *path = outputs[k][1];
        if (path && (oq_same_file(path, a->fp32) || oq_same_file(path, a->quant))) {
            oq_errf(&err, OQ_EINVAL, "%s %s names an input model; choose another path", outputs[k][0], path);
            goto fail;
        }
        for (int d = 0; path && d < j->n_data; d++)
            if (oq_data_spec_holds(j->data[d], path)) {
                oq_errf(&err, OQ_EINVAL, "%s %s would change the samples of %s; choose another path", outputs[k][0],
                        path, j->data[d]);
                goto fail;
            }
    }
    if (a->report && a->html && oq_same_file(a->report, a->html)) {
        oq_errf(&err, OQ_EINVAL, "--report and --html name the same file %s; choose two paths", a->html);
        goto fail;
    }
    if (oq_model_load_hashed(&fm, a->fp32, fsha, &err) || oq_model_load_hashed(&qm, a->quant, qsha, &err) ||
        oq_dataset_open_for_model(&ds, fm, j->n_data, j->data, &j->pre, j->layout_given, j->resize_given, &err))
        goto fail;
    double t1 = cli_now_s();
    oq_compare_options opts = {.threads = j->threads, .max_samples = j->max_samples};
    if (oq_compare_models(fm, qm, ds, &opts, &r, &err))
        goto fail;
    double t2 = cli_now_s();
    oq_compare_report_info info = {.version = OQ_VERSION, .fp32_path = a->fp32, .fp32_sha256 = fsha,
                                   .quant_path = a->quant, .quant_sha256 = qsha, .t_load = t1 - t0,
                                   .t_compare = t2 - t1};
    if ((a->report || a->html) && oq_compare_report_write(r, &info, a->report, a->html, &err))
        goto fail;
    if (!a->data.quiet)
        print_table(r, t2 - t0);
    goto done;
fail:
    rc = cli_fail(&err);
done:
    oq_compare_result_destroy(r);
    oq_dataset_destroy(ds);
    oq_model_destroy(qm);
    oq_model_destroy(fm);
    return rc;
}

int cli_compare(int argc, char **argv)
{
    compare_args a = {0};
    int rc;
    if (!cli_data_args_init(&a.data)) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    } else if ((rc = parse_args(&a, argc, argv)) < 0) {
        rc = run_compare(&a);
    }
    cli_data_args_free(&a.data);
    return rc;
}
