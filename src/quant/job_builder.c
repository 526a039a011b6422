/* job_builder.c: an oq_job from named options (see oq_job_builder.h). The
 * names and value syntax are the command line's; the builder owns a copy of
 * every string and list the job points to. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_job_builder.h"
#include "onnxq/oq_version.h"
#include "quant/match.h"

typedef enum option {
    OPT_MODEL,
    OPT_OUTPUT,
    OPT_REPORT,
    OPT_HTML,
    OPT_EXTERNAL_DATA,
    OPT_CALIB,
    OPT_DATA,
    OPT_EVAL_DATA,
    OPT_EVAL_SAMPLES,
    OPT_LABELS,
    OPT_MAX_DROP,
    OPT_MIN_AGREEMENT,
    OPT_MIN_SQNR,
    OPT_TARGET_OUTPUT,
    OPT_SENSITIVITY,
    OPT_MODE,
    OPT_FORMAT,
    OPT_CONTRIB,
    OPT_PER_TENSOR,
    OPT_ACTIVATION_TYPE,
    OPT_SYMMETRIC_ACTIVATIONS,
    OPT_SYMMETRIC,
    OPT_OP_TYPES,
    OPT_EXCLUDE,
    OPT_METHOD,
    OPT_PERCENTILE,
    OPT_BINS,
    OPT_SAMPLES,
    OPT_ALL_TENSORS,
    OPT_NO_PREPARE,
    OPT_BIAS_CORRECTION,
    OPT_EQUALIZATION,
    OPT_THREADS,
    OPT_RESIZE,
    OPT_CROP,
    OPT_LAYOUT,
    OPT_SCALE,
    OPT_MEAN,
    OPT_STD,
    OPT_BGR,
    OPT_COUNT
} option;

/* The options, with the command line's names; flags take no value there. */
static const oq_job_option options[OPT_COUNT] = {
    [OPT_MODEL] = {"model", true},
    [OPT_OUTPUT] = {"output", true},
    [OPT_REPORT] = {"report", true},
    [OPT_HTML] = {"html", true},
    [OPT_EXTERNAL_DATA] = {"external-data", false},
    [OPT_CALIB] = {"calib", true},
    [OPT_DATA] = {"data", true},
    [OPT_EVAL_DATA] = {"eval-data", true},
    [OPT_EVAL_SAMPLES] = {"eval-samples", true},
    [OPT_LABELS] = {"labels", true},
    [OPT_MAX_DROP] = {"max-drop", true},
    [OPT_MIN_AGREEMENT] = {"min-agreement", true},
    [OPT_MIN_SQNR] = {"min-sqnr", true},
    [OPT_TARGET_OUTPUT] = {"target-output", true},
    [OPT_SENSITIVITY] = {"sensitivity", true},
    [OPT_MODE] = {"mode", true},
    [OPT_FORMAT] = {"format", true},
    [OPT_CONTRIB] = {"contrib", false},
    [OPT_PER_TENSOR] = {"per-tensor", false},
    [OPT_ACTIVATION_TYPE] = {"activation-type", true},
    [OPT_SYMMETRIC_ACTIVATIONS] = {"symmetric-activations", false},
    [OPT_SYMMETRIC] = {"symmetric", false},
    [OPT_OP_TYPES] = {"op-types", true},
    [OPT_EXCLUDE] = {"exclude", true},
    [OPT_METHOD] = {"method", true},
    [OPT_PERCENTILE] = {"percentile", true},
    [OPT_BINS] = {"bins", true},
    [OPT_SAMPLES] = {"samples", true},
    [OPT_ALL_TENSORS] = {"all-tensors", false},
    [OPT_NO_PREPARE] = {"no-prepare", false},
    [OPT_BIAS_CORRECTION] = {"bias-correction", true},
    [OPT_EQUALIZATION] = {"equalization", true},
    [OPT_THREADS] = {"threads", true},
    [OPT_RESIZE] = {"resize", true},
    [OPT_CROP] = {"crop", true},
    [OPT_LAYOUT] = {"layout", true},
    [OPT_SCALE] = {"scale", true},
    [OPT_MEAN] = {"mean", true},
    [OPT_STD] = {"std", true},
    [OPT_BGR] = {"bgr", false},
};

int oq_job_builder_options(const oq_job_option **out)
{
    *out = options;
    return OPT_COUNT;
}


/* A growing list of borrowed-by-the-job strings. */
typedef struct str_list {
    const char **items;
    int n, cap;
} str_list;

struct oq_job_builder {
    oq_job job;
    char **owned; /* every string copied in, freed with the builder */
    int n_owned, cap_owned;
    str_list data, eval, op_types, exclude;
    bool format_given;
    const char *range_option; /* the first option given that chooses activation ranges ("--method"), or NULL */
    const char *target_option; /* the accuracy target's option ("--min-sqnr"), or NULL */
};

oq_status oq_job_builder_create(oq_job_builder **out, oq_err *err)
{
    oq_job_builder *b = calloc(1, sizeof *b);
    if (!(*out = b))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    b->job = oq_job_default();
    b->job.tool_version = oq_version();
    return OQ_OK;
}

void oq_job_builder_destroy(oq_job_builder *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
    free(b->data.items);
    free(b->eval.items);
    free(b->op_types.items);
    free(b->exclude.items);
    free(b);
}

/* A copy of s that b owns, or NULL when out of memory. */
static const char *keep(oq_job_builder *b, const char *s)
{
    if (b->n_owned == b->cap_owned) {
        int cap = b->cap_owned ? 2 * b->cap_owned : 16;
        char **grown = realloc(b->owned, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        b->owned = grown;
        b->cap_owned = cap;
    }
    char *copy = strdup(s);
    if (copy)
        b->owned[b->n_owned++] = copy;
    return copy;
}

/* Appends a copy of s to l. */
static oq_status append(oq_job_builder *b, str_list *l, const char *s, oq_err *err)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        const char **grown = realloc(l->items, (size_t)cap * sizeof *grown);
        if (!grown)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        l->items = grown;
        l->cap = cap;
    }
    const char *copy = keep(b, s);
    if (!copy)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    l->items[l->n++] = copy;
    return OQ_OK;
}

/* Appends the non-empty comma-separated items of s to l. */
static oq_status append_items(oq_job_builder *b, str_list *l, const char *s, oq_err *err)
{
    char *copy = strdup(s);
    if (!copy)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (char *item = copy, *end; !st && item; item = end ? end + 1 : NULL) {
        if ((end = strchr(item, ',')))
            *end = '\0';
        if (*item)
            st = append(b, l, item, err);
    }
    free(copy);
    return st;
}

/* ---- values -------------------------------------------------------------------------- */

static oq_status bad_value(const char *name, const char *value, const char *want, oq_err *err)
{
    return oq_errf(err, OQ_EINVAL, "--%s expects %s, got '%s'", name, want, value ? value : "nothing");
}

/* A whole decimal integer in [min, max]. */
static bool parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A whole finite decimal number. */
static bool parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    *out = strtod(s, &end);
    return !*end && isfinite(*out);
}

/* A number as parse_double takes it, or "A/B", two such numbers, as A / B
 * (finite). */
static bool parse_fraction(const char *s, double *out)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash)
        return parse_double(s, out);
    char top[64];
    size_t n = (size_t)(slash - s);
    double a, b;
    if (n >= sizeof top)
        return false;
    memcpy(top, s, n);
    top[n] = '\0';
    if (!parse_double(top, &a) || !parse_double(slash + 1, &b) || b == 0)
        return false;
    *out = a / b;
    return isfinite(*out);
}

/* "N" (single) or "WxH", each 1..65536. */
static bool parse_size(const char *s, int *w, int *h, bool *single)
{
    long long a, c;
    const char *x = s ? strchr(s, 'x') : NULL;
    if (!x) {
        if (!parse_int(s, 1, 65536, &a))
            return false;
        *w = *h = (int)a;
        *single = true;
        return true;
    }
    char first[32];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof first)
        return false;
    memcpy(first, s, n);
    first[n] = '\0';
    if (!parse_int(first, 1, 65536, &a) || !parse_int(x + 1, 1, 65536, &c))
        return false;
    *w = (int)a;
    *h = (int)c;
    *single = false;
    return true;
}

/* Three comma-separated numbers. */
static bool parse_triple(const char *s, float out[3])
{
    char *end;
    for (int i = 0; s && i < 3; i++) {
        out[i] = strtof(s, &end);
        if (end == s || (i < 2 ? *end != ',' : *end != '\0'))
            return false;
        s = end + 1;
    }
    return s != NULL;
}

/* A flag's value: NULL, "true" or "1" sets it, "false" or "0" clears it. */
static bool parse_flag(const char *s, bool *out)
{
    if (!s || !strcmp(s, "true") || !strcmp(s, "1"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "0"))
        *out = false;
    else
        return false;
    return true;
}

/* ---- options ----------------------------------------------------------------------------- */

/* Sets a path-valued option (NULL value: unset). */
static oq_status set_path(oq_job_builder *b, const char **field, const char *value, oq_err *err)
{
    *field = value ? keep(b, value) : NULL;
    return value && !*field ? oq_errf(err, OQ_ENOMEM, "out of memory") : OQ_OK;
}

/* The options that take a flag. */
static bool *flag_field(oq_job_builder *b, option o)
{
    oq_job *j = &b->job;
    switch (o) {
    case OPT_CONTRIB: return &j->quant.contrib;
    case OPT_SYMMETRIC_ACTIVATIONS:
    case OPT_SYMMETRIC: return &j->range.range.symmetric;
    case OPT_ALL_TENSORS: return &j->all_tensors;
    case OPT_NO_PREPARE: return &j->no_prepare;
    case OPT_BGR: return &j->pre.bgr;
    default: return NULL;
    }
}

/* Sets option o (spelled `name`, for messages) from value v (NULL: no value)
 * on b's job; fails naming the option when v is malformed. */
static oq_status set_option(oq_job_builder *b, option o, const char *name, const char *v, oq_err *err)
{
    oq_job *j = &b->job;
    oq_range_request *r = &j->range;
    oq_preprocess *p = &j->pre;
    long long n;
    double d;
    bool flag, single;
    switch (o) {
    case OPT_MODEL: return set_path(b, &j->model_path, v, err);
    case OPT_OUTPUT: return set_path(b, &j->output_path, v, err);
    case OPT_REPORT: return set_path(b, &j->report_path, v, err);
    case OPT_HTML: return set_path(b, &j->html_path, v, err);
    case OPT_CALIB: return set_path(b, &j->table_path, v, err);
    case OPT_LABELS: return set_path(b, &j->labels_path, v, err);
    case OPT_DATA: return v ? append(b, &b->data, v, err) : bad_value(name, v, "a data spec", err);
    case OPT_EVAL_DATA: return v ? append(b, &b->eval, v, err) : bad_value(name, v, "a data spec", err);
    case OPT_EXCLUDE: return v ? append_items(b, &b->exclude, v, err) : bad_value(name, v, "node names", err);
    case OPT_OP_TYPES: {
        b->op_types.n = 0;
        char known[128];
        size_t used = 0;
        for (int k = 0; k < OQ_QUANT_OP_TYPE_COUNT && used < sizeof known; k++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s",
                                     k == 0 ? "" : k + 1 < OQ_QUANT_OP_TYPE_COUNT ? ", " : " and ", oq_quant_op_types[k]);
        oq_status st = v ? append_items(b, &b->op_types, v, err) : bad_value(name, v, "op type names", err);
        if (!st && b->op_types.n == 0) /* "" or ",": no type at all, which would mean every type */
            st = oq_errf(err, OQ_EINVAL, "--op-types expects one or more of %s, got '%s'", known, v);
        for (int i = 0; !st && i < b->op_types.n; i++) {
            bool found = false;
            for (int k = 0; k < OQ_QUANT_OP_TYPE_COUNT && !found; k++)
                found = !strcmp(b->op_types.items[i], oq_quant_op_types[k]);
            if (!found)
                st = oq_errf(err, OQ_EINVAL, "--op-types accepts %s, got '%s'", known, b->op_types.items[i]);
        }
        return st;
    }
    case OPT_SENSITIVITY: return set_path(b, &j->sensitivity_path, v, err);
    case OPT_TARGET_OUTPUT: return set_path(b, &j->target.output, v, err);
    case OPT_MAX_DROP:
    case OPT_MIN_AGREEMENT:
    case OPT_MIN_SQNR: {
        bool percent = o != OPT_MIN_SQNR;
        if (b->target_option)
            return oq_errf(err, OQ_EINVAL, "give one accuracy target, not %s and --%s", b->target_option, name);
        if (!parse_double(v, &d) || (percent && !(d >= 0 && d <= 100)))
            return bad_value(name, v, percent ? "a number of percent points from 0 to 100" : "a number of dB", err);
        j->target.kind = o == OPT_MAX_DROP ? OQ_TARGET_MAX_DROP
                         : o == OPT_MIN_AGREEMENT ? OQ_TARGET_MIN_AGREEMENT : OQ_TARGET_MIN_SQNR;
        j->target.value = d;
        b->target_option = o == OPT_MAX_DROP ? "--max-drop" : o == OPT_MIN_AGREEMENT ? "--min-agreement" : "--min-sqnr";
        return OQ_OK;
    }
    case OPT_EVAL_SAMPLES:
        if (!parse_int(v, 1, 1LL << 40, &n))
            return bad_value(name, v, "a positive count", err);
        j->eval_samples = n;
        return OQ_OK;
    case OPT_SAMPLES:
        if (!parse_int(v, 1, 1LL << 40, &n))
            return bad_value(name, v, "a positive count", err);
        j->max_samples = n;
        return OQ_OK;
    case OPT_BINS:
        if (!parse_int(v, 16, 65536, &n) || n % 2)
            return bad_value(name, v, "an even number from 16 to 65536", err);
        j->bins = (int)n;
        return OQ_OK;
    case OPT_THREADS:
        if (!parse_int(v, 0, 4096, &n))
            return bad_value(name, v, "an integer from 0 to 4096", err);
        j->threads = (int)n;
        return OQ_OK;
    case OPT_MODE:
        if (v && !strcmp(v, "static"))
            j->quant.mode = OQ_MODE_STATIC;
        else if (v && !strcmp(v, "dynamic"))
            j->quant.mode = OQ_MODE_DYNAMIC;
        else
            return bad_value(name, v, "static or dynamic", err);
        return OQ_OK;
    case OPT_FORMAT:
        if (v && !strcmp(v, "qoperator"))
            j->quant.format = OQ_FORMAT_QOPERATOR;
        else if (v && !strcmp(v, "qdq"))
            j->quant.format = OQ_FORMAT_QDQ;
        else
            return bad_value(name, v, "qoperator or qdq", err);
        b->format_given = true;
        return OQ_OK;
    case OPT_PER_TENSOR:
        if (!parse_flag(v, &flag))
            return bad_value(name, v, "true or false", err);
        j->quant.per_channel = !flag;
        return OQ_OK;
    case OPT_EXTERNAL_DATA:
        if (!parse_flag(v, &j->external_data))
            return bad_value(name, v, "true or false", err);
        return OQ_OK;
    case OPT_BIAS_CORRECTION:
    case OPT_EQUALIZATION:
        if (!v || (strcmp(v, "on") && strcmp(v, "off")))
            return bad_value(name, v, "on or off", err);
        *(o == OPT_BIAS_CORRECTION ? &j->bias_correction : &j->equalization) = !strcmp(v, "on");
        return OQ_OK;
    case OPT_ACTIVATION_TYPE:
        if (v && !strcmp(v, "uint8"))
            r->range.qmin = 0, r->range.qmax = 255;
        else if (v && !strcmp(v, "int8"))
            r->range.qmin = -128, r->range.qmax = 127;
        else
            return bad_value(name, v, "uint8 or int8", err);
        r->act_type_given = true;
        return OQ_OK;
    case OPT_METHOD:
        r->range.method = v ? oq_calib_method_parse(v) : OQ_CALIB_METHOD_COUNT;
        if (r->range.method == OQ_CALIB_METHOD_COUNT)
            return bad_value(name, v, "minmax, percentile, entropy or mse", err);
        r->method_given = true;
        return OQ_OK;
    case OPT_PERCENTILE:
        if (!parse_double(v, &d) || !(d > 50 && d <= 100))
            return bad_value(name, v, "a number in (50, 100]", err);
        r->range.percentile = d;
        r->percentile_given = true;
        return OQ_OK;
    case OPT_RESIZE:
        if (!parse_size(v, &p->resize_w, &p->resize_h, &single))
            return bad_value(name, v, "N or WxH", err);
        p->resize_cover = single;
        j->resize_given = true;
        return OQ_OK;
    case OPT_CROP:
        if (!parse_size(v, &p->crop_w, &p->crop_h, &single))
            return bad_value(name, v, "N or WxH", err);
        return OQ_OK;
    case OPT_LAYOUT:
        if (v && (!strcmp(v, "nchw") || !strcmp(v, "nhwc")))
            p->layout = strcmp(v, "nchw") ? OQ_LAYOUT_NHWC : OQ_LAYOUT_NCHW;
        else
            return bad_value(name, v, "nchw or nhwc", err);
        j->layout_given = true;
        return OQ_OK;
    case OPT_SCALE:
        if (!parse_fraction(v, &d) || !((float)d > 0) || !isfinite((float)d)) /* (positive as a float too) */
            return bad_value(name, v, "a positive number or fraction A/B", err);
        p->scale = (float)d;
        return OQ_OK;
    case OPT_MEAN:
        if (!parse_triple(v, p->mean))
            return bad_value(name, v, "three numbers R,G,B", err);
        return OQ_OK;
    case OPT_STD:
        if (!parse_triple(v, p->std) || !(p->std[0] > 0 && p->std[1] > 0 && p->std[2] > 0))
            return bad_value(name, v, "three positive numbers R,G,B", err);
        return OQ_OK;
    default: {
        bool *field = flag_field(b, o);
        if (!field || !parse_flag(v, &flag))
            return bad_value(name, v, "true or false", err);
        *field = flag;
        if (o == OPT_SYMMETRIC || o == OPT_SYMMETRIC_ACTIVATIONS)
            r->symmetric_given = true;
        return OQ_OK;
    }
    }
}

/* Points the job at the lists (they move as they grow). */
static void sync_lists(oq_job_builder *b)
{
    oq_job *j = &b->job;
    j->n_data = b->data.n;
    j->data = b->data.items;
    j->n_eval = b->eval.n;
    j->eval_data = b->eval.items;
    j->quant.n_op_types = b->op_types.n;
    j->quant.op_types = b->op_types.items;
    j->quant.n_exclude = b->exclude.n;
    j->quant.exclude = b->exclude.items;
}

oq_status oq_job_builder_set(oq_job_builder *b, const char *name, const char *value, oq_err *err)
{
    int o = 0;
    while (o < OPT_COUNT && strcmp(options[o].name, name ? name : ""))
        o++;
    if (o == OPT_COUNT)
        return oq_errf(err, OQ_EINVAL, "unknown option '%s'", name ? name : "");
    oq_status st = set_option(b, (option)o, options[o].name, value, err);
    sync_lists(b);
    static const char *const range_options[OPT_COUNT] = {
        [OPT_ACTIVATION_TYPE] = "--activation-type", [OPT_SYMMETRIC_ACTIVATIONS] = "--symmetric-activations",
        [OPT_SYMMETRIC] = "--symmetric", [OPT_METHOD] = "--method", [OPT_PERCENTILE] = "--percentile",
        [OPT_BINS] = "--bins", [OPT_SAMPLES] = "--samples"};
    if (!st && !b->range_option)
        b->range_option = range_options[o];
    return st;
}

void oq_job_builder_set_samples(oq_job_builder *b, bool eval, const oq_samples *s)
{
    *(eval ? &b->job.eval_data_samples : &b->job.data_samples) = s;
}

const oq_job *oq_job_builder_job(const oq_job_builder *b) { return &b->job; }

oq_status oq_job_builder_check(const oq_job_builder *b, oq_err *err)
{
    const oq_job *j = &b->job;
    bool dynamic = j->quant.mode == OQ_MODE_DYNAMIC;
    bool eval = j->n_eval || j->n_data || j->eval_data_samples || j->data_samples;
    if (dynamic && j->table_path)
        return oq_errf(err, OQ_EINVAL, "--calib is not used with --mode dynamic (nothing is calibrated)");
    if (dynamic && b->format_given)
        return oq_errf(err, OQ_EINVAL, "--format does not apply to --mode dynamic (it has one form)");
    if (j->quant.contrib && (dynamic || j->quant.format != OQ_FORMAT_QOPERATOR))
        return oq_errf(err, OQ_EINVAL, "--contrib applies to --format qoperator in static mode");
    if (dynamic && b->range_option)
        return oq_errf(err, OQ_EINVAL,
                       "%s does not apply to --mode dynamic (DynamicQuantizeLinear picks uint8 ranges at run time)",
                       b->range_option);
    if (j->labels_path && !eval)
        return oq_errf(err, OQ_EINVAL, "--labels needs evaluation samples (--eval-data)");
    if (b->target_option && !eval)
        return oq_errf(err, OQ_EINVAL, "%s needs evaluation samples (--eval-data)", b->target_option);
    if (j->target.kind == OQ_TARGET_MAX_DROP && !j->labels_path)
        return oq_errf(err, OQ_EINVAL,
                       "--max-drop needs --labels (one class per evaluation sample); --min-agreement needs none");
    if (j->target.output && !b->target_option)
        return oq_errf(err, OQ_EINVAL, "--target-output needs an accuracy target (--min-agreement or --min-sqnr)");
    if (j->target.output && j->target.kind == OQ_TARGET_MAX_DROP)
        return oq_errf(err, OQ_EINVAL,
                       "--target-output applies to --min-agreement and --min-sqnr (--max-drop reads the first output)");
    if (j->sensitivity_path && !b->target_option)
        return oq_errf(err, OQ_EINVAL, "--sensitivity needs an accuracy target (--max-drop, --min-agreement or --min-sqnr)");
    return OQ_OK;
}

/* ---- running ------------------------------------------------------------------------------- */

/* The warnings as lines (malloc'ed). */
static char *join_lines(const oq_outcome *o)
{
    size_t n = 1;
    for (int i = 0; i < o->n_warnings; i++)
        n += strlen(o->warnings[i]) + 1;
    char *s = malloc(n), *p = s;
    for (int i = 0; s && i < o->n_warnings; i++) {
        size_t len = strlen(o->warnings[i]);
        memcpy(p, o->warnings[i], len);
        p[len] = '\n';
        p += len + 1;
    }
    if (s)
        *p = '\0';
    return s;
}

oq_status oq_job_builder_run(const oq_job_builder *b, char **report_json, char **warnings, oq_err *err)
{
    *report_json = NULL;
    *warnings = NULL;
    oq_outcome out;
    oq_status st = oq_job_builder_check(b, err);
    if (st)
        return st;
    st = oq_job_run(&b->job, &out, err);
    uint8_t *json = NULL;
    size_t len = 0;
    bool lost = false;
    if (!st && out.report && !(st = oq_report_json(out.report, &json, &len, err))) {
        if ((*report_json = malloc(len + 1))) {
            memcpy(*report_json, json, len);
            (*report_json)[len] = '\0';
        }
        lost = !*report_json;
    }
    free(json);
    *warnings = join_lines(&out);
    oq_outcome_release(&out);
    if (!st && (lost || !*warnings)) {
        oq_free(*report_json);
        oq_free(*warnings);
        *report_json = *warnings = NULL;
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    return st;
}

void oq_free(void *p) { free(p); }
