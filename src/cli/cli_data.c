/* cli_data.c: data and calibration options shared by calibrate and quantize;
 * the calibration pass with its progress line. See cli_data.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_data.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_hash.h"
#include "onnxq/oq_quant.h"

const char cli_calib_help[] =
    "Data (--data, repeatable):\n"
    "  DIR                 an ONNX test-data folder (input_0.pb, ...): one sample\n"
    "  DIR                 a folder of such folders, or of PNG/JPEG images: one\n"
    "                      sample each, in name order\n"
    "  NAME=FILE.npy       input NAME's samples stacked on a leading axis: shape\n"
    "                      [S, input dims...], or, when the input's first dim is\n"
    "                      symbolic, [S, other dims...] ([128,64] for an input\n"
    "                      [n,64]: 128 samples of [1,64]); one file per model\n"
    "                      input, all with the same sample count\n"
    "\n"
    "Calibration:\n"
    "  --method M          minmax | percentile | entropy | mse (default percentile)\n"
    "  --percentile P      for percentile: kept fraction in percent, 50 < P <= 100\n"
    "                      (default 99.999)\n"
    "  --bins B            histogram bins per tensor, even, 16..65536 (default 2048)\n"
    "  --samples N         use at most the first N samples (default all)\n"
    "  --symmetric         activation ranges symmetric around zero\n"
    "  --all-tensors       record every float activation (default: those that\n"
    "                      quantization reads: inputs and outputs of Conv, MatMul,\n"
    "                      Gemm and 8-bit data-movement ops, folded BN/Relu/Clip)\n";

const char cli_calib_run_help[] =
    "  --activation-type T uint8 (default) or int8\n"
    "  --threads N         threads (default 0: all online cores); blocks of 32\n"
    "                      samples run side by side, one per thread; the table\n"
    "                      does not depend on N\n"
    "  -q, --quiet         no progress line on stderr\n";

const char cli_preprocess_help[] =
    "Image preprocessing (for folders of PNG/JPEG images; one-input models):\n"
    "  --resize N|WxH      bilinear resize: N = shorter side (aspect kept), or exact\n"
    "                      WxH (default: the model input's fixed size, if declared)\n"
    "  --crop N|WxH        centre crop after resizing (default none)\n"
    "  --layout L          nchw or nhwc (default: from the input's shape, else nchw)\n"
    "  --scale F           multiply 0..255 pixels by F (default 1/255 = 0.00392157)\n"
    "  --mean R,G,B        subtract per channel after scaling (default 0,0,0)\n"
    "  --std R,G,B         then divide per channel (default 1,1,1)\n"
    "  --bgr               channel order BGR instead of RGB\n";

const cli_opt cli_data_opts[CLI_DATA_OPT_COUNT] = {
    {"data", 0, true, CLI_OPT_DATA},          {"method", 0, true, CLI_OPT_METHOD},
    {"percentile", 0, true, CLI_OPT_PERCENTILE}, {"bins", 0, true, CLI_OPT_BINS},
    {"samples", 0, true, CLI_OPT_SAMPLES},    {"symmetric", 0, false, CLI_OPT_SYMMETRIC},
    {"activation-type", 0, true, CLI_OPT_ACT_TYPE}, {"threads", 0, true, CLI_OPT_THREADS},
    {"quiet", 'q', false, CLI_OPT_QUIET},     {"all-tensors", 0, false, CLI_OPT_ALL_TENSORS},
    {"resize", 0, true, CLI_OPT_RESIZE},
    {"crop", 0, true, CLI_OPT_CROP},          {"layout", 0, true, CLI_OPT_LAYOUT},
    {"scale", 0, true, CLI_OPT_SCALE},        {"mean", 0, true, CLI_OPT_MEAN},
    {"std", 0, true, CLI_OPT_STD},            {"bgr", 0, false, CLI_OPT_BGR},
};

bool cli_calib_args_init(cli_calib_args *a, int argc)
{
    memset(a, 0, sizeof *a);
    a->pre = oq_preprocess_default();
    a->calib.bins = 2048;
    a->calib.range = (oq_range_options){OQ_CALIB_PERCENTILE, 99.999, false, 0, 255};
    a->data = calloc((size_t)argc + 1, sizeof *a->data);
    return a->data != NULL;
}

void cli_calib_args_free(cli_calib_args *a) { free(a->data); }

/* "N" or "WxH" with 1 <= values <= 65536. */
static bool parse_size(const char *s, int *w, int *h, bool *single)
{
    long a, b;
    const char *x = strchr(s, 'x');
    char buf[32];
    if (!x) {
        if (!cli_parse_int(s, 1, 65536, &a))
            return false;
        *w = *h = (int)a;
        *single = true;
        return true;
    }
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!cli_parse_int(buf, 1, 65536, &a) || !cli_parse_int(x + 1, 1, 65536, &b))
        return false;
    *w = (int)a;
    *h = (int)b;
    *single = false;
    return true;
}

/* Three comma-separated floats. */
static bool parse_triple(const char *s, float out[3])
{
    char *end;
    for (int i = 0; i < 3; i++) {
        out[i] = strtof(s, &end);
        if (end == s || (i < 2 ? *end != ',' : *end != '\0'))
            return false;
        s = end + 1;
    }
    return true;
}

int cli_calib_option(cli_calib_args *a, int id, const char *v, const char *cmd)
{
    oq_preprocess *p = &a->pre;
    oq_range_options *r = &a->calib.range;
    bool single;
    char *end;
    long n;
    double d;
    switch (id) {
    case CLI_OPT_DATA: a->data[a->n_data++] = v; return -1;
    case CLI_OPT_METHOD:
        r->method = oq_calib_method_parse(v);
        if (r->method == OQ_CALIB_METHOD_COUNT)
            return cli_usage("%s: --method must be minmax, percentile, entropy or mse, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_PERCENTILE:
        d = strtod(v, &end);
        if (end == v || *end || !(d > 50 && d <= 100))
            return cli_usage("%s: --percentile expects a number in (50, 100], got '%s'", cmd, v);
        r->percentile = d;
        return -1;
    case CLI_OPT_BINS:
        if (!cli_parse_int(v, 16, 65536, &n) || n % 2)
            return cli_usage("%s: --bins expects an even number from 16 to 65536, got '%s'", cmd, v);
        a->calib.bins = (int)n;
        return -1;
    case CLI_OPT_SAMPLES:
        if (!cli_parse_int(v, 1, 1L << 40, &n))
            return cli_usage("%s: --samples expects a positive count, got '%s'", cmd, v);
        a->calib.max_samples = n;
        return -1;
    case CLI_OPT_SYMMETRIC: r->symmetric = true; return -1;
    case CLI_OPT_ACT_TYPE:
        if (strcmp(v, "uint8") == 0)
            r->qmin = 0, r->qmax = 255;
        else if (strcmp(v, "int8") == 0)
            r->qmin = -128, r->qmax = 127;
        else
            return cli_usage("%s: --activation-type must be uint8 or int8, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_THREADS:
        if (!cli_parse_int(v, 0, 4096, &n))
            return cli_usage("%s: --threads expects an integer from 0 to 4096, got '%s'", cmd, v);
        a->calib.threads = (int)n;
        return -1;
    case CLI_OPT_QUIET: a->quiet = true; return -1;
    case CLI_OPT_ALL_TENSORS: a->all_tensors = true; return -1;
    case CLI_OPT_RESIZE:
        if (!parse_size(v, &p->resize_w, &p->resize_h, &single))
            return cli_usage("%s: --resize expects N or WxH, got '%s'", cmd, v);
        p->resize_short = single;
        a->resize_given = true;
        return -1;
    case CLI_OPT_CROP:
        if (!parse_size(v, &p->crop_w, &p->crop_h, &single))
            return cli_usage("%s: --crop expects N or WxH, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_LAYOUT:
        if (strcmp(v, "nchw") && strcmp(v, "nhwc"))
            return cli_usage("%s: --layout must be nchw or nhwc, got '%s'", cmd, v);
        p->layout = strcmp(v, "nchw") ? OQ_LAYOUT_NHWC : OQ_LAYOUT_NCHW;
        a->layout_given = true;
        return -1;
    case CLI_OPT_SCALE:
        p->scale = strtof(v, &end);
        if (end == v || *end || !(p->scale > 0))
            return cli_usage("%s: --scale expects a positive number, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_MEAN:
        if (!parse_triple(v, p->mean))
            return cli_usage("%s: --mean expects three numbers R,G,B, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_STD:
        if (!parse_triple(v, p->std) || !(p->std[0] > 0 && p->std[1] > 0 && p->std[2] > 0))
            return cli_usage("%s: --std expects three positive numbers R,G,B, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_BGR: p->bgr = true; return -1;
    default: return cli_usage("%s: internal: unexpected option %d", cmd, id);
    }
}

/* Fills layout and size left unset from a one-input model's input declaration. */
static void preprocess_defaults(cli_calib_args *a, const oq_value *input)
{
    if (!input || input->rank != 4)
        return;
    const oq_dim *dims = input->dims;
    bool nhwc = dims[3].value == 3 && dims[1].value != 3;
    if (!a->layout_given)
        a->pre.layout = nhwc ? OQ_LAYOUT_NHWC : OQ_LAYOUT_NCHW;
    int hi = a->pre.layout == OQ_LAYOUT_NHWC ? 1 : 2;
    if (!a->resize_given && !a->pre.crop_w && dims[hi].value > 0 && dims[hi + 1].value > 0) {
        a->pre.resize_w = (int)dims[hi + 1].value;
        a->pre.resize_h = (int)dims[hi].value;
    }
}

/* The graph inputs a caller feeds: those that are not initializers. */
static int fed_inputs(const oq_model *m, const oq_value **out)
{
    int n = 0;
    for (int i = 0; i < m->graph->n_inputs; i++)
        if (!m->graph->inputs[i]->constant)
            out[n++] = m->graph->inputs[i];
    return n;
}

oq_status cli_open_data(cli_calib_args *a, const oq_model *m, int n_specs, const char *const *specs,
                        oq_dataset **ds, oq_err *err)
{
    const oq_value **inputs = calloc((size_t)m->graph->n_inputs + 1, sizeof *inputs);
    if (!inputs)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    int n = fed_inputs(m, inputs);
    preprocess_defaults(a, n == 1 ? inputs[0] : NULL);
    oq_status st = oq_dataset_open(ds, n_specs, specs, n, inputs, &a->pre, err);
    free(inputs);
    return st;
}

typedef struct progress_line {
    double start, last;
    bool drawn;
} progress_line;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Redraws at most five times a second: a bar, samples done, rate and time left. */
static void draw_progress(void *user, int64_t done, int64_t total)
{
    progress_line *p = user;
    double t = now_s();
    if (done != total && t - p->last < 0.2)
        return;
    p->last = t;
    double el = t - p->start, rate = el > 0 ? done / el : 0, eta = rate > 0 ? (total - done) / rate : 0;
    int width = 30, filled = total ? (int)(width * done / total) : width;
    fprintf(stderr, "\r[%.*s%*s] %lld/%lld samples  %.1f/s  ETA %.0fs ", filled, "##############################",
            width - filled, "", (long long)done, (long long)total, rate, eta);
    fflush(stderr);
    p->drawn = true;
}

oq_status cli_file_sha256(const char *path, char hex[65], oq_err *err)
{
    uint8_t *buf;
    size_t len;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    oq_sha256 h;
    oq_sha256_init(&h);
    oq_sha256_update(&h, buf, len);
    oq_sha256_hex(&h, hex);
    free(buf);
    return OQ_OK;
}

oq_status cli_calibrate_model(cli_calib_args *a, const oq_model *m, const char *model_path, oq_calib_table **out,
                              oq_err *err)
{
    *out = NULL;
    char hash[65];
    oq_dataset *ds = NULL;
    oq_status st = cli_file_sha256(model_path, hash, err);
    if (st || (st = cli_open_data(a, m, a->n_data, a->data, &ds, err)))
        return st;
    progress_line line = {.start = now_s()};
    oq_calib_options opts = a->calib;
    if (!a->quiet && isatty(STDERR_FILENO)) {
        opts.progress = draw_progress;
        opts.progress_user = &line;
    }
    bool *want = NULL;
    if (!a->all_tensors) {
        if (!(want = malloc((size_t)(m->graph->n_values ? m->graph->n_values : 1) * sizeof *want))) {
            oq_dataset_destroy(ds);
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        }
        oq_quant_range_values(m->graph, a->contrib, want);
        opts.observe = want;
    }
    st = oq_calibrate(m, ds, &opts, out, err);
    if (line.drawn)
        fputc('\n', stderr);
    free(want);
    oq_dataset_destroy(ds);
    if (st)
        return st;
    memcpy((*out)->model_sha256, hash, sizeof hash);
    if (!(*out)->n_entries && !a->all_tensors)
        fprintf(stderr, "onnxq: warning: nothing in the model is quantized (no Conv, MatMul or Gemm reads a "
                        "float activation), so no tensor was recorded; --all-tensors records every one\n");
    return OQ_OK;
}

void cli_warn_nonfinite(const oq_calib_table *t)
{
    int n = 0;
    for (int i = 0; i < t->n_entries; i++)
        n += t->entries[i].hist.nonfinite > 0;
    if (!n)
        return;
    fprintf(stderr, "onnxq: warning: %d tensor%s had NaN or infinite values (left out of the ranges):", n,
            n == 1 ? "" : "s");
    int shown = 0;
    for (int i = 0; i < t->n_entries && shown < 5; i++) {
        if (t->entries[i].hist.nonfinite > 0) {
            fprintf(stderr, "%s '%s' (%.0f)", shown ? "," : "", t->entries[i].name, t->entries[i].hist.nonfinite);
            shown++;
        }
    }
    fprintf(stderr, "%s\n", n > shown ? ", ..." : "");
}
