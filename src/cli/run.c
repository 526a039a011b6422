/* run.c: `onnxq run MODEL ...`, execution of a model on given inputs with the
 * built-in executor, writing or summarizing the outputs, or timing runs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_npy.h"
#include "onnxq/oq_onnx_io.h"
#include "onnxq/oq_prepare.h"

const char cli_run_help[] =
    "Usage: onnxq run MODEL [--data DIR] [--input NAME=FILE.npy ...] [-o OUTDIR [--npy]]\n"
    "                       [--threads N] [--bench N] [--no-prepare]\n"
    "\n"
    "Runs MODEL once with the built-in executor, after preparing it as `onnxq prepare`\n"
    "does (constants folded, BatchNormalization and bias Adds folded, dead code\n"
    "removed). Every graph input that is not an initializer must be fed exactly\n"
    "once, from --data or --input (a model without inputs needs neither); an input\n"
    "that has an initializer (old models list their weights so) may be fed by name\n"
    "to override it.\n"
    "\n"
    "Options:\n"
    "  --data DIR          ONNX test-data folder: input_0.pb, input_1.pb, ... (serialized\n"
    "                      TensorProto). A file whose tensor name matches a graph input feeds\n"
    "                      that input; an unnamed one feeds the input at its position.\n"
    "  --input NAME=FILE   feed input NAME from a .npy file (repeatable; may be combined\n"
    "                      with --data for inputs it does not feed). .npy files must be\n"
    "                      little-endian, C order, of dtype f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8\n"
    "                      or b1 (format versions 1-3).\n"
    "  -o, --output OUTDIR write output K as OUTDIR/output_K.pb (TensorProto named after the\n"
    "                      graph output), each file replaced atomically. OUTDIR is created\n"
    "                      if missing; its parent must exist.\n"
    "  --npy               with -o, also write OUTDIR/output_K.npy\n"
    "  --threads N         worker threads (default 0: all online cores)\n"
    "  --bench N           one warm-up run, then N timed runs; prints one JSON line with\n"
    "                      median_ms, min_ms, mean_ms, cpu_ms (median CPU time of every\n"
    "                      thread per run), runs, threads, peak_rss_mb (process\n"
    "                      peak resident memory), planned_peak_mb (most activation memory\n"
    "                      held at once) and naive_mb (all activations without reuse)\n"
    "  --no-prepare        run MODEL exactly as written, without preparing it\n"
    "  -h, --help          show this help and exit\n"
    "\n"
    "Without -o or --bench, prints one line per output: name, dtype, shape, min, max, mean\n"
    "(and the count of NaNs, if any).\n";

/* ---- inputs ------------------------------------------------------------------------------ */

/* What has been fed to the session's inputs so far. */
typedef struct feeds {
    const oq_session *s;
    int n;              /* oq_session_input_count */
    oq_tensor *tensors; /* [n], owned */
    char **source;      /* [n], owned description of where each came from; NULL = not fed */
} feeds;

/* Index of the session input named name, or -1. */
static int input_index(const oq_session *s, const char *name)
{
    for (int i = 0; i < oq_session_input_count(s); i++)
        if (!strcmp(oq_session_input(s, i)->name, name))
            return i;
    return -1;
}

/* Takes ownership of *t (cleared on return) and feeds it to input i. */
static oq_status feed(feeds *f, int i, oq_tensor *t, const char *src, oq_err *err)
{
    const oq_value *v = oq_session_input(f->s, i);
    oq_status st;
    if (f->source[i])
        st = oq_errf(err, OQ_EINVAL, "input '%s' is fed twice: by %s and by %s", v->name, f->source[i], src);
    else
        st = oq_value_check_tensor(v, t, src, err);
    if (!st && !(f->source[i] = strdup(src)))
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    if (st) {
        oq_tensor_release(t);
        return st;
    }
    f->tensors[i] = *t;
    memset(t, 0, sizeof *t);
    return OQ_OK;
}

/* The tensors of a test-data folder, read before the model is planned (their
 * names may release inputs with a default, see oq_prepare_release_inputs). */
typedef struct data_dir {
    int n;
    oq_tensor *tensors; /* [n], owned until fed */
    char **names;       /* [n] tensor names ("" when unnamed) */
    char **paths;       /* [n] the files */
} data_dir;

static void data_dir_free(data_dir *d)
{
    for (int k = 0; k < d->n; k++) {
        oq_tensor_release(&d->tensors[k]);
        free(d->names[k]);
        free(d->paths[k]);
    }
    free(d->tensors);
    free(d->names);
    free(d->paths);
    memset(d, 0, sizeof *d);
}

/* Reads input_K.pb files from the test-data folder dir, K = 0, 1, ... until one is missing. */
static oq_status read_data_dir(data_dir *d, const char *dir, oq_err *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return oq_errf(err, OQ_EIO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return oq_errf(err, OQ_EINVAL, "%s: --data needs a folder of input_K.pb files", dir);
    size_t cap = strlen(dir) + 32;
    char *path = malloc(cap);
    if (!path)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (int k = 0;; k++) {
        snprintf(path, cap, "%s/input_%d.pb", dir, k);
        if (access(path, F_OK) != 0)
            break;
        oq_tensor *t = realloc(d->tensors, (size_t)(k + 1) * sizeof *t);
        char **names = t ? realloc(d->names, (size_t)(k + 1) * sizeof *names) : NULL;
        char **paths = names ? realloc(d->paths, (size_t)(k + 1) * sizeof *paths) : NULL;
        d->tensors = t ? t : d->tensors;
        d->names = names ? names : d->names;
        d->paths = paths ? paths : d->paths;
        if (!paths || !(d->paths[k] = strdup(path))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            break;
        }
        d->names[k] = NULL;
        d->n++;
        memset(&d->tensors[k], 0, sizeof d->tensors[k]);
        if ((st = oq_tensor_load_pb(&d->tensors[k], &d->names[k], path, err)))
            break;
    }
    free(path);
    return st;
}

/* Feeds the tensors of d: one named after a graph input feeds that input, an
 * unnamed one (or one named otherwise) the input at its position. */
static oq_status feed_data_dir(feeds *f, data_dir *d, oq_err *err)
{
    for (int k = 0; k < d->n; k++) {
        int i = d->names[k] && d->names[k][0] ? input_index(f->s, d->names[k]) : -1;
        if (i < 0)
            i = k;
        if (i >= f->n)
            return oq_errf(err, OQ_EINVAL, "%s: the model has only %d input%s to feed", d->paths[k], f->n,
                           f->n == 1 ? "" : "s");
        oq_status st = feed(f, i, &d->tensors[k], d->paths[k], err);
        if (st)
            return st;
    }
    return OQ_OK;
}

/* Makes the graph inputs with an initializer (the weights an IR < 4 model
 * lists as inputs) that the command line feeds by name real inputs. */
static oq_status release_fed_inputs(oq_model *m, const data_dir *d, const char *const *specs, int n_specs,
                                    oq_err *err)
{
    char **names = calloc((size_t)(d->n + n_specs) + 1, sizeof *names);
    if (!names)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    int n_named = 0, n = 0;
    for (int k = 0; k < d->n; k++)
        if (d->names[k] && d->names[k][0])
            names[n_named++] = d->names[k]; /* borrowed */
    for (n = n_named; n - n_named < n_specs; n++) /* owned */
        if (!(names[n] = strndup(specs[n - n_named], (size_t)(strchr(specs[n - n_named], '=') - specs[n - n_named]))))
            break;
    oq_status st = OQ_OK;
    if (n - n_named < n_specs)
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    else
        oq_prepare_release_inputs(m, n, (const char *const *)names);
    for (int k = n_named; k < n; k++)
        free(names[k]);
    free(names);
    return st;
}

/* Feeds "NAME=FILE.npy" (the '=' was checked while parsing arguments). */
static oq_status feed_npy(feeds *f, const char *spec, oq_err *err)
{
    const char *eq = strchr(spec, '=');
    char *name = strndup(spec, (size_t)(eq - spec));
    if (!name)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_status st = OQ_OK;
    int i = input_index(f->s, name);
    if (i < 0) {
        st = oq_errf(err, OQ_EINVAL, "--input %s: the model has no input named '%s'", spec, name);
        goto fail;
    }
    oq_tensor t;
    if ((st = oq_npy_load(&t, eq + 1, err)))
        goto fail;
    st = feed(f, i, &t, eq + 1, err);
fail:
    free(name);
    return st;
}

static void feeds_free(feeds *f)
{
    for (int i = 0; i < f->n; i++) {
        if (f->tensors)
            oq_tensor_release(&f->tensors[i]);
        if (f->source)
            free(f->source[i]);
    }
    free(f->tensors);
    free(f->source);
}

/* ---- outputs ----------------------------------------------------------------------------- */

/* Prints one aligned line per output: name, dtype, shape and value statistics. */
static void print_summaries(const oq_session *s, const oq_tensor *outs)
{
    int n = oq_session_output_count(s), name_w = 0, type_w = 0, shape_w = 0;
    char shape[256];
    for (int k = 0; k < n; k++) {
        int w = (int)strlen(oq_session_output(s, k)->name);
        name_w = w > name_w ? w : name_w;
        w = (int)strlen(oq_dtype_name(outs[k].dtype));
        type_w = w > type_w ? w : type_w;
        cli_format_dims(outs[k].rank, outs[k].dims, shape, sizeof shape);
        w = (int)strlen(shape);
        shape_w = w > shape_w ? w : shape_w;
    }
    for (int k = 0; k < n; k++) {
        const oq_tensor *t = &outs[k];
        cli_format_dims(t->rank, t->dims, shape, sizeof shape);
        printf("%-*s  %-*s  %-*s", name_w, oq_session_output(s, k)->name, type_w, oq_dtype_name(t->dtype), shape_w,
               shape);
        int64_t numel = oq_tensor_numel(t);
        const oq_dtype_traits *tr = &oq_dtype_traits_table[t->dtype];
        if (t->dtype == OQ_DTYPE_STRING || t->dtype == OQ_DTYPE_COMPLEX64 || t->dtype == OQ_DTYPE_COMPLEX128 ||
            tr->bits == 0) {
            printf("  (no statistics for %s)\n", oq_dtype_name(t->dtype));
            continue;
        }
        if (numel == 0) {
            printf("  (empty)\n");
            continue;
        }
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        int64_t nans = 0;
        for (int64_t i = 0; i < numel; i++) {
            double x = oq_tensor_get_f64(t, i);
            if (isnan(x)) {
                nans++;
                continue;
            }
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            sum += x;
        }
        if (nans == numel)
            printf("  min=nan max=nan mean=nan");
        else
            printf("  min=%.6g max=%.6g mean=%.6g", lo, hi, sum / (double)(numel - nans));
        if (nans)
            printf(" nan=%lld", (long long)nans);
        putchar('\n');
    }
}

/* Makes dir if it does not exist (its parent must). */
static oq_status make_outdir(const char *dir, oq_err *err)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return oq_errf(err, OQ_EINVAL, "%s: output path exists and is not a folder", dir);
        return OQ_OK;
    }
    if (mkdir(dir, 0777) != 0)
        return oq_errf(err, OQ_EIO, "%s: cannot create the output folder: %s", dir, strerror(errno));
    return OQ_OK;
}

/* Writes output_K.pb (and output_K.npy when npy) into dir. On failure the
 * files this call already wrote are removed. */
static oq_status write_outputs(const oq_session *s, const oq_tensor *outs, const char *dir, bool npy, oq_err *err)
{
    int n = oq_session_output_count(s);
    size_t cap = strlen(dir) + 32;
    char *path = malloc(cap);
    if (!path)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_status st = OQ_OK;
    int written = 0; /* files 0..written-1 are complete (both kinds when npy) */
    for (int k = 0; k < n; k++) {
        snprintf(path, cap, "%s/output_%d.pb", dir, k);
        if ((st = oq_tensor_save_pb(&outs[k], oq_session_output(s, k)->name, path, err)))
            goto fail;
        if (npy) {
            snprintf(path, cap, "%s/output_%d.npy", dir, k);
            if ((st = oq_npy_save(&outs[k], path, err))) {
                snprintf(path, cap, "%s/output_%d.pb", dir, k);
                unlink(path);
                oq_err_context(err, "output '%s'", oq_session_output(s, k)->name);
                goto fail;
            }
        }
        written++;
    }
    free(path);
    return OQ_OK;
fail:
    for (int k = 0; k < written; k++) {
        snprintf(path, cap, "%s/output_%d.pb", dir, k);
        unlink(path);
        if (npy) {
            snprintf(path, cap, "%s/output_%d.npy", dir, k);
            unlink(path);
        }
    }
    free(path);
    return st;
}

static void release_outputs(oq_tensor *outs, int n)
{
    for (int k = 0; k < n; k++)
        oq_tensor_release(&outs[k]);
}

/* ---- benchmark --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rounds to three decimals so the JSON stays readable. */
static double ms3(double v) { return round(v * 1000.0) / 1000.0; }

/* Median of v[0..n) (sorted in place). */
static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* CPU time used so far by every thread of the process, in seconds. */
static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints the benchmark line for wall times[0..runs) and CPU times cpu[0..runs)
 * (both sorted in place). */
static oq_status print_bench(const oq_session *s, double *times, double *cpu, int runs, oq_err *err)
{
    double cpu_median = median_of(cpu, runs), median = median_of(times, runs);
    double sum = 0;
    for (int i = 0; i < runs; i++)
        sum += times[i];
    oq_exec_stats es;
    oq_session_stats(s, &es);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    cJSON_AddNumberToObject(o, "median_ms", ms3(median));
    cJSON_AddNumberToObject(o, "min_ms", ms3(times[0]));
    cJSON_AddNumberToObject(o, "mean_ms", ms3(sum / runs));
    cJSON_AddNumberToObject(o, "cpu_ms", ms3(cpu_median));
    cJSON_AddNumberToObject(o, "runs", runs);
    cJSON_AddNumberToObject(o, "threads", es.threads);
    cJSON_AddNumberToObject(o, "peak_rss_mb", ms3((double)ru.ru_maxrss / 1024.0)); /* ru_maxrss is KiB */
    cJSON_AddNumberToObject(o, "planned_peak_mb", ms3((double)es.peak_bytes / (1024.0 * 1024.0)));
    cJSON_AddNumberToObject(o, "naive_mb", ms3((double)es.naive_bytes / (1024.0 * 1024.0)));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    puts(text);
    cJSON_free(text);
    return OQ_OK;
}

/* ---- the command ------------------------------------------------------------------------- */

enum { OPT_DATA = 1, OPT_INPUT, OPT_OUTPUT, OPT_NPY, OPT_THREADS, OPT_BENCH, OPT_NO_PREPARE, OPT_HELP };

static const cli_opt run_opts[] = {
    {"data", 0, true, OPT_DATA},       {"input", 0, true, OPT_INPUT},     {"output", 'o', true, OPT_OUTPUT},
    {"npy", 0, false, OPT_NPY},        {"threads", 0, true, OPT_THREADS}, {"bench", 0, true, OPT_BENCH},
    {"no-prepare", 0, false, OPT_NO_PREPARE}, {"help", 'h', false, OPT_HELP},
};

typedef struct run_args {
    const char *model, *data, *outdir;
    const char **inputs; /* [n_inputs] "NAME=FILE" specs, borrowed from argv */
    int n_inputs;
    bool npy, no_prepare;
    long threads, bench; /* bench 0 = no benchmark */
} run_args;

/* Parses the command line into a; returns an exit status, or -1 to go on. */
static int parse_args(run_args *a, int argc, char **argv)
{
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, "run", run_opts, (int)(sizeof run_opts / sizeof run_opts[0]));
    const char *v;
    int id;
    while ((id = cli_next(&p, &v)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP: fputs(cli_run_help, stdout); return CLI_EXIT_OK;
        case OPT_DATA:
            if (a->data)
                return cli_usage("run: --data given twice");
            if (strchr(v, '=') && access(v, F_OK) != 0) /* quantize's NAME=FILE.npy form */
                return cli_usage("run: --data takes an ONNX test-data folder, not '%s'; feed one sample from a .npy "
                                 "with --input NAME=FILE.npy",
                                 v);
            a->data = v;
            break;
        case OPT_INPUT:
            if (!strchr(v, '=') || v[0] == '=' || !strchr(v, '=')[1])
                return cli_usage("run: --input expects NAME=FILE.npy, got '%s'", v);
            a->inputs[a->n_inputs++] = v;
            break;
        case OPT_OUTPUT:
            if (a->outdir)
                return cli_usage("run: -o given twice");
            a->outdir = v;
            break;
        case OPT_NPY: a->npy = true; break;
        case OPT_NO_PREPARE: a->no_prepare = true; break;
        case OPT_THREADS:
            if (!cli_parse_int(v, 0, 4096, &a->threads))
                return cli_usage("run: --threads expects an integer from 0 to 4096, got '%s'", v);
            break;
        case OPT_BENCH:
            if (!cli_parse_int(v, 1, 1000000, &a->bench))
                return cli_usage("run: --bench expects a run count from 1 to 1000000, got '%s'", v);
            break;
        case CLI_POSITIONAL:
            if (a->model)
                return cli_usage("run: expected one MODEL, got '%s' and '%s'", a->model, v);
            a->model = v;
            break;
        }
    }
    if (!a->model)
        return cli_usage("run: missing MODEL");
    if (a->npy && !a->outdir)
        return cli_usage("run: --npy needs -o OUTDIR");
    return -1;
}

int cli_run(int argc, char **argv)
{
    run_args a = {0};
    a.inputs = calloc((size_t)argc, sizeof *a.inputs);
    if (!a.inputs) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) {
        free(a.inputs);
        return rc;
    }
    rc = CLI_EXIT_OK;

    oq_err err = {0};
    oq_model *m = NULL;
    oq_session *s = NULL;
    feeds f = {0};
    data_dir d = {0};
    oq_prepare_result prepared;
    oq_tensor *outs = NULL;
    double *times = NULL, *cpu = NULL;
    int n_out = 0;
    oq_exec_options opts = {.threads = (int)a.threads};
    if (oq_model_load(&m, a.model, &err) || (a.data && read_data_dir(&d, a.data, &err)) ||
        release_fed_inputs(m, &d, a.inputs, a.n_inputs, &err) ||
        (!a.no_prepare && oq_prepare_model(m, NULL, &prepared, &err)) || oq_session_create(&s, m, &opts, &err))
        goto fail;

    f.s = s;
    f.n = oq_session_input_count(s);
    if (f.n > 0 && !a.data && !a.n_inputs) {
        rc = cli_usage("run: missing --data DIR (or --input NAME=FILE.npy) for the model's %d input%s", f.n,
                       f.n == 1 ? "" : "s");
        goto done;
    }
    f.tensors = calloc((size_t)f.n + 1, sizeof *f.tensors);
    f.source = calloc((size_t)f.n + 1, sizeof *f.source);
    n_out = oq_session_output_count(s);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    times = calloc((size_t)a.bench + 1, sizeof *times);
    cpu = calloc((size_t)a.bench + 1, sizeof *cpu);
    if (!f.tensors || !f.source || !outs || !times || !cpu) {
        oq_errf(&err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    if (feed_data_dir(&f, &d, &err))
        goto fail;
    for (int i = 0; i < a.n_inputs; i++)
        if (feed_npy(&f, a.inputs[i], &err))
            goto fail;
    for (int i = 0; i < f.n; i++) {
        if (!f.source[i]) {
            const char *name = oq_session_input(s, i)->name;
            oq_errf(&err, OQ_EINVAL, "input '%s' is not fed (give it in --data or as --input %s=FILE.npy)", name,
                    name);
            goto fail;
        }
    }
    if (a.outdir && make_outdir(a.outdir, &err))
        goto fail;

    /* A benchmark adds one untimed warm-up run before the timed ones. */
    long runs = a.bench ? a.bench + 1 : 1;
    for (long r = 0; r < runs; r++) {
        release_outputs(outs, n_out);
        double t0 = cli_now_s(), c0 = cpu_now_s();
        if (oq_session_run(s, f.tensors, outs, &err))
            goto fail;
        if (r > 0) {
            times[r - 1] = (cli_now_s() - t0) * 1e3;
            cpu[r - 1] = (cpu_now_s() - c0) * 1e3;
        }
    }
    if (a.outdir && write_outputs(s, outs, a.outdir, a.npy, &err))
        goto fail;
    if (a.bench) {
        if (print_bench(s, times, cpu, (int)a.bench, &err))
            goto fail;
    } else if (!a.outdir) {
        print_summaries(s, outs);
    }
    goto done;
fail:
    rc = cli_fail(&err);
done:
    if (outs)
        release_outputs(outs, n_out);
    free(outs);
    free(times);
    free(cpu);
    feeds_free(&f);
    data_dir_free(&d);
    oq_session_destroy(s);
    oq_model_destroy(m);
    free(a.inputs);
    return rc;
}
