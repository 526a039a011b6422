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
    "                      symbolic or 1, [S, other dims...] ([128,64] for an\n"
    "                      input [n,64] or [1,64]: 128 samples of [1,64]); one\n"
    "                      file per model input, all with the same sample count\n"
    "  FILE.npy            the same for a model of one input\n"
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
    "                      WxH (default: the model input's fixed size, if declared;\n"
    "                      with --crop, the smallest size of the image's aspect\n"
    "                      that covers it: shorter side 224 for a 224x224 input)\n"
    "  --crop N|WxH        centre crop after resizing (default none)\n"
    "  --layout L          nchw or nhwc (default: from the input's shape, else nchw)\n"
    "  --scale F           multiply 0..255 pixels by F, a number or a fraction A/B\n"
    "                      (default 1/255)\n"
    "  --mean R,G,B        subtract per colour after scaling (default 0,0,0)\n"
    "  --std R,G,B         then divide per colour (default 1,1,1)\n"
    "  --bgr               channel order BGR instead of RGB (--mean and --std\n"
    "                      still list red, green, blue)\n";

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

bool cli_data_args_init(cli_data_args *a)
{
    oq_err err = {0};
    memset(a, 0, sizeof *a);
    return oq_job_builder_create(&a->builder, &err) == OQ_OK;
}

void cli_data_args_free(cli_data_args *a) { oq_job_builder_destroy(a->builder); }

int cli_job_option(cli_data_args *a, const char *name, const char *value, const char *cmd)
{
    oq_err err = {0};
    if (oq_job_builder_set(a->builder, name, value, &err))
        return err.status == OQ_ENOMEM ? (cli_error("out of memory"), CLI_EXIT_FAIL)
                                       : cli_usage("%s: %s", cmd, err.msg);
    return -1;
}

int cli_data_option(cli_data_args *a, int id, const char *v, const char *cmd)
{
    if (id == CLI_OPT_QUIET) {
        a->quiet = true;
        return -1;
    }
    for (int i = 0; i < CLI_DATA_OPT_COUNT; i++)
        if (cli_data_opts[i].id == id)
            return cli_job_option(a, cli_data_opts[i].long_name, v, cmd);
    return cli_usage("%s: internal: unexpected option %d", cmd, id);
}

void cli_data_args_take_job(cli_data_args *a) { a->job = *oq_job_builder_job(a->builder); }

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
