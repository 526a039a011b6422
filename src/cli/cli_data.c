/* cli_data.c: data and calibration options shared by calibrate and quantize,
 * the progress line and warnings. See cli_data.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_data.h"

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
    "  --all-tensors       record every float activation (default: those whose\n"
    "                      range the quantization plan reads: inputs and outputs\n"
    "                      of the Conv, MatMul and Gemm nodes it quantizes, after\n"
    "                      folded BN/Relu/Clip, and of the ops --contrib runs in\n"
    "                      8 bits)\n"
    "  --no-prepare        calibrate MODEL as written, without graph preparation\n"
    "                      (`onnxq prepare`: constants folded, BatchNormalization\n"
    "                      and bias Adds folded, dead code removed); the table\n"
    "                      records the choice and convert follows it\n";

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
    {"no-prepare", 0, false, CLI_OPT_NO_PREPARE},
    {"resize", 0, true, CLI_OPT_RESIZE},
    {"crop", 0, true, CLI_OPT_CROP},          {"layout", 0, true, CLI_OPT_LAYOUT},
    {"scale", 0, true, CLI_OPT_SCALE},        {"mean", 0, true, CLI_OPT_MEAN},
    {"std", 0, true, CLI_OPT_STD},            {"bgr", 0, false, CLI_OPT_BGR},
};

bool cli_data_args_init(cli_data_args *a, int argc)
{
    memset(a, 0, sizeof *a);
    a->job = oq_job_default();
    a->data = calloc((size_t)argc + 1, sizeof *a->data);
    a->job.data = a->data;
    return a->data != NULL;
}

void cli_data_args_free(cli_data_args *a) { free(a->data); }

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

int cli_data_option(cli_data_args *a, int id, const char *v, const char *cmd)
{
    oq_job *j = &a->job;
    oq_preprocess *p = &j->pre;
    oq_range_request *r = &j->range;
    bool single;
    char *end;
    long n;
    double d;
    switch (id) {
    case CLI_OPT_DATA: a->data[j->n_data++] = v; return -1;
    case CLI_OPT_METHOD:
        r->range.method = oq_calib_method_parse(v);
        if (r->range.method == OQ_CALIB_METHOD_COUNT)
            return cli_usage("%s: --method must be minmax, percentile, entropy or mse, got '%s'", cmd, v);
        r->method_given = true;
        return -1;
    case CLI_OPT_PERCENTILE:
        d = strtod(v, &end);
        if (end == v || *end || !(d > 50 && d <= 100))
            return cli_usage("%s: --percentile expects a number in (50, 100], got '%s'", cmd, v);
        r->range.percentile = d;
        r->percentile_given = true;
        return -1;
    case CLI_OPT_BINS:
        if (!cli_parse_int(v, 16, 65536, &n) || n % 2)
            return cli_usage("%s: --bins expects an even number from 16 to 65536, got '%s'", cmd, v);
        j->bins = (int)n;
        return -1;
    case CLI_OPT_SAMPLES:
        if (!cli_parse_int(v, 1, 1L << 40, &n))
            return cli_usage("%s: --samples expects a positive count, got '%s'", cmd, v);
        j->max_samples = n;
        return -1;
    case CLI_OPT_SYMMETRIC:
        r->range.symmetric = true;
        r->symmetric_given = true;
        return -1;
    case CLI_OPT_ACT_TYPE:
        if (strcmp(v, "uint8") == 0)
            r->range.qmin = 0, r->range.qmax = 255;
        else if (strcmp(v, "int8") == 0)
            r->range.qmin = -128, r->range.qmax = 127;
        else
            return cli_usage("%s: --activation-type must be uint8 or int8, got '%s'", cmd, v);
        r->act_type_given = true;
        return -1;
    case CLI_OPT_THREADS:
        if (!cli_parse_int(v, 0, 4096, &n))
            return cli_usage("%s: --threads expects an integer from 0 to 4096, got '%s'", cmd, v);
        j->threads = (int)n;
        return -1;
    case CLI_OPT_QUIET: a->quiet = true; return -1;
    case CLI_OPT_ALL_TENSORS: j->all_tensors = true; return -1;
    case CLI_OPT_NO_PREPARE: j->no_prepare = true; return -1;
    case CLI_OPT_RESIZE:
        if (!parse_size(v, &p->resize_w, &p->resize_h, &single))
            return cli_usage("%s: --resize expects N or WxH, got '%s'", cmd, v);
        p->resize_short = single;
        j->resize_given = true;
        return -1;
    case CLI_OPT_CROP:
        if (!parse_size(v, &p->crop_w, &p->crop_h, &single))
            return cli_usage("%s: --crop expects N or WxH, got '%s'", cmd, v);
        return -1;
    case CLI_OPT_LAYOUT:
        if (strcmp(v, "nchw") && strcmp(v, "nhwc"))
            return cli_usage("%s: --layout must be nchw or nhwc, got '%s'", cmd, v);
        p->layout = strcmp(v, "nchw") ? OQ_LAYOUT_NHWC : OQ_LAYOUT_NCHW;
        j->layout_given = true;
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Redraws at most five times a second: a bar, samples done, rate and time left. */
static void draw_progress(void *user, int64_t done, int64_t total)
{
    cli_progress *p = user;
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

void cli_progress_attach(cli_progress *line, oq_job *job, bool quiet)
{
    *line = (cli_progress){.start = now_s()};
    if (!quiet && isatty(STDERR_FILENO)) {
        job->progress = draw_progress;
        job->progress_user = line;
    }
}

void cli_progress_end(cli_progress *line)
{
    if (line->drawn)
        fputc('\n', stderr);
    line->drawn = false;
}

void cli_print_warnings(const oq_outcome *o)
{
    for (int i = 0; i < o->n_warnings; i++)
        fprintf(stderr, "onnxq: warning: %s\n", o->warnings[i]);
}
