/* table.c: the calibration table: ranges, JSON save/load, merge. See oq_calib.h.
 *
 * JSON layout (version 1):
 *   {"format": "onnxq-calibration", "version": 1,
 *    "model_sha256": hex, "data_sha256": hex, "samples": N, "prepared": bool,
 *    "method": "percentile", "percentile": 99.999, "symmetric": false,
 *    "qmin": 0, "qmax": 255, "bins": 2048,
 *    "tensors": {name: {"min": x, "max": x, "count": n, "nonfinite": n,
 *                       "hist": {"lo": x, "width": x, "counts": [...]},
 *                       "range": [lo, hi],
 *                       "channels": {"min": [...], "max": [...], "scales": [...]}}}}
 * "channels" is there only for tensors cross-layer equalization may scale
 * (tables made before it have none). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "onnxq/oq_calib.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_hash.h"

#define TABLE_FORMAT "onnxq-calibration"

oq_calib_table *oq_calib_table_create(int bins, const oq_range_options *range)
{
    oq_calib_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->bins = bins;
    t->range = *range;
    return t;
}

void oq_calib_table_destroy(oq_calib_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_entries; i++) {
        free(t->entries[i].name);
        oq_hist_release(&t->entries[i].hist);
        oq_channel_stats_release(&t->entries[i].channels);
        free(t->entries[i].scales);
    }
    free(t->entries);
    free(t);
}

const oq_calib_entry *oq_calib_table_find(const oq_calib_table *t, const char *name)
{
    for (int i = 0; i < t->n_entries; i++)
        if (strcmp(t->entries[i].name, name) == 0)
            return &t->entries[i];
    return NULL;
}

/* e's equalization scales from its channel extremes and range (see oq_calib_table_compute_ranges). */
static oq_status equalization_scales(oq_calib_entry *e, oq_err *err)
{
    const oq_channel_stats *ch = &e->channels;
    free(e->scales);
    e->scales = NULL;
    if (ch->n <= 0)
        return OQ_OK;
    if (!(e->scales = malloc((size_t)ch->n * sizeof *e->scales)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    double lo = e->range[0], hi = e->range[1];
    for (int64_t c = 0; c < ch->n; c++) {
        double s = OQ_EQUALIZE_MAX_SCALE;
        bool seen = false;
        if (ch->max[c] > 0 && hi > 0) {
            s = fmin(s, hi / ch->max[c]);
            seen = true;
        }
        if (ch->min[c] < 0 && lo < 0) {
            s = fmin(s, lo / ch->min[c]);
            seen = true;
        }
        e->scales[c] = seen && s > 1 ? s : 1; /* a channel that was always 0 tells nothing */
    }
    return OQ_OK;
}

oq_status oq_calib_table_compute_ranges(oq_calib_table *t, oq_err *err)
{
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < t->n_entries; i++) {
        oq_calib_entry *e = &t->entries[i];
        st = oq_hist_range(&e->hist, &t->range, &e->range[0], &e->range[1], err);
        if (!st)
            st = equalization_scales(e, err);
    }
    return st;
}

/* ---- save ----------------------------------------------------------------------- */

/* JSON has no infinities: an empty histogram's min/max are written as 0. */
static double finite_or_zero(double x) { return isfinite(x) ? x : 0; }

static cJSON *entry_json(const oq_calib_entry *e)
{
    const oq_hist *h = &e->hist;
    cJSON *o = cJSON_CreateObject();
    cJSON *hist = cJSON_CreateObject();
    cJSON *counts = cJSON_CreateArray();
    if (!o || !hist || !counts) {
        cJSON_Delete(o);
        cJSON_Delete(hist);
        cJSON_Delete(counts);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "min", finite_or_zero(h->min));
    cJSON_AddNumberToObject(o, "max", finite_or_zero(h->max));
    cJSON_AddNumberToObject(o, "count", h->count);
    cJSON_AddNumberToObject(o, "nonfinite", h->nonfinite);
    cJSON_AddNumberToObject(hist, "lo", h->lo);
    cJSON_AddNumberToObject(hist, "width", h->width);
    for (int i = 0; i < h->nbins; i++)
        cJSON_AddItemToArray(counts, cJSON_CreateNumber(h->counts[i]));
    cJSON_AddItemToObject(hist, "counts", counts);
    cJSON_AddItemToObject(o, "hist", hist);
    double range[2] = {e->range[0], e->range[1]};
    cJSON_AddItemToObject(o, "range", cJSON_CreateDoubleArray(range, 2));
    if (e->channels.n > 0) {
        cJSON *ch = cJSON_AddObjectToObject(o, "channels");
        const double *cols[3] = {e->channels.min, e->channels.max, e->scales};
        const char *keys[3] = {"min", "max", "scales"};
        for (int k = 0; ch && k < 3; k++) {
            cJSON *a = cols[k] ? cJSON_AddArrayToObject(ch, keys[k]) : NULL;
            for (int64_t c = 0; a && c < e->channels.n; c++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(finite_or_zero(cols[k][c])));
        }
    }
    return o;
}

oq_status oq_calib_table_serialize(const oq_calib_table *t, uint8_t **buf, size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *tensors = cJSON_CreateObject();
    oq_status st = OQ_OK;
    if (!root || !tensors)
        goto oom;
    cJSON_AddStringToObject(root, "format", TABLE_FORMAT);
    cJSON_AddNumberToObject(root, "version", OQ_CALIB_TABLE_VERSION);
    cJSON_AddStringToObject(root, "model_sha256", t->model_sha256);
    cJSON_AddStringToObject(root, "data_sha256", t->data_sha256);
    cJSON_AddNumberToObject(root, "samples", (double)t->samples);
    cJSON_AddBoolToObject(root, "prepared", t->prepared);
    cJSON_AddStringToObject(root, "method", oq_calib_method_name(t->range.method));
    cJSON_AddNumberToObject(root, "percentile", t->range.percentile);
    cJSON_AddBoolToObject(root, "symmetric", t->range.symmetric);
    cJSON_AddNumberToObject(root, "qmin", t->range.qmin);
    cJSON_AddNumberToObject(root, "qmax", t->range.qmax);
    cJSON_AddNumberToObject(root, "bins", t->bins);
    for (int i = 0; i < t->n_entries; i++) {
        cJSON *e = entry_json(&t->entries[i]);
        if (!e)
            goto oom;
        cJSON_AddItemToObject(tensors, t->entries[i].name, e);
    }
    cJSON_AddItemToObject(root, "tensors", tensors);
    tensors = NULL;
    st = oq_json_print(root, "the calibration table", buf, len, err);
    root = NULL;
    goto done;
oom:
    st = oq_errf(err, OQ_ENOMEM, "out of memory writing the calibration table");
done:
    cJSON_Delete(tensors);
    cJSON_Delete(root);
    return st;
}

oq_status oq_calib_table_save(const oq_calib_table *t, const char *path, oq_err *err)
{
    uint8_t *buf;
    size_t len;
    oq_status st = oq_calib_table_serialize(t, &buf, &len, err);
    if (!st)
        st = oq_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}

/* ---- load ----------------------------------------------------------------------- */

/* Reads a finite number field; fails naming the field. */
/* Bounds on what a table may hold. Sample counts stay exact in a double and
 * cannot overflow when merged; statistics of float32 data never come near
 * MAX_STAT, which leaves room for histograms to double their range in merges. */
#define MAX_SAMPLES 9007199254740992.0 /* 2^53 */
#define MAX_STAT 1e300

static oq_status get_number(const cJSON *o, const char *key, double *out, const char *path, oq_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return oq_errf(err, OQ_EINVAL, "%s: calibration table field '%s' is missing or not a number", path, key);
    *out = v->valuedouble;
    return OQ_OK;
}

static oq_status get_hex(const cJSON *o, const char *key, char out[65], const char *path, oq_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 64 || strspn(v->valuestring, "0123456789abcdef") != 64)
        return oq_errf(err, OQ_EINVAL, "%s: calibration table field '%s' is not a sha256 hex digest", path, key);
    memcpy(out, v->valuestring, 65);
    return OQ_OK;
}

/* Channel extremes beyond this many channels are refused. */
#define MAX_CHANNELS (1 << 24)

/* e's per-channel extremes from "channels": {"min": [...], "max": [...]}
 * ("scales" is recomputed from them and the range). */
static oq_status load_channels(oq_calib_entry *e, const cJSON *ch, const char *path, oq_err *err)
{
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(ch, "min"), *hi = cJSON_GetObjectItemCaseSensitive(ch, "max");
    int n = cJSON_IsArray(lo) ? cJSON_GetArraySize(lo) : -1;
    if (!cJSON_IsObject(ch) || n < 1 || n > MAX_CHANNELS || !cJSON_IsArray(hi) || cJSON_GetArraySize(hi) != n)
        return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': \"channels\" needs \"min\" and \"max\" arrays of one length",
                       path, e->name);
    oq_channel_stats *s = &e->channels;
    s->min = malloc((size_t)n * sizeof *s->min);
    s->max = malloc((size_t)n * sizeof *s->max);
    if (!s->min || !s->max) {
        oq_channel_stats_release(s);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    s->n = n;
    const cJSON *a = lo->child, *b = hi->child;
    for (int c = 0; c < n; c++, a = a->next, b = b->next) {
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !(fabs(a->valuedouble) <= MAX_STAT) ||
            !(fabs(b->valuedouble) <= MAX_STAT) || a->valuedouble > b->valuedouble)
            return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': channel %d's min and max are not two ordered numbers",
                           path, e->name, c);
        s->min[c] = a->valuedouble;
        s->max[c] = b->valuedouble;
    }
    return OQ_OK;
}

static oq_status load_entry(oq_calib_entry *e, const cJSON *o, int bins, const char *path, oq_err *err)
{
    oq_status st;
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(o, "hist");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(hist, "counts");
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(o, "range");
    if (!cJSON_IsObject(o) || !cJSON_IsObject(hist) || !cJSON_IsArray(counts) || cJSON_GetArraySize(counts) != bins ||
        !cJSON_IsArray(range) || cJSON_GetArraySize(range) != 2)
        return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': malformed entry (needs hist with %d counts and a 2-element range)",
                       path, e->name, bins);
    if ((st = oq_hist_init(&e->hist, bins, err)))
        return st;
    oq_hist *h = &e->hist;
    if ((st = get_number(o, "min", &h->min, path, err)) || (st = get_number(o, "max", &h->max, path, err)) ||
        (st = get_number(o, "count", &h->count, path, err)) ||
        (st = get_number(o, "nonfinite", &h->nonfinite, path, err)) ||
        (st = get_number(hist, "lo", &h->lo, path, err)) || (st = get_number(hist, "width", &h->width, path, err)))
        return oq_err_context(err, "tensor '%s'", e->name);
    int i = 0;
    double total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, counts)
    {
        if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0) || !isfinite(c->valuedouble))
            return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': histogram count %d is not a non-negative number", path,
                           e->name, i);
        h->counts[i++] = c->valuedouble;
        total += c->valuedouble;
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *r = cJSON_GetArrayItem(range, k);
        if (!cJSON_IsNumber(r) || !isfinite(r->valuedouble))
            return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': range is not two numbers", path, e->name);
        e->range[k] = r->valuedouble;
    }
    double hi = h->lo + h->nbins * h->width;
    if (!(fabs(h->min) <= MAX_STAT && fabs(h->max) <= MAX_STAT && fabs(h->lo) <= MAX_STAT && fabs(hi) <= MAX_STAT))
        return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': min, max or histogram bounds beyond %g", path, e->name,
                       MAX_STAT);
    if (h->width < 0 || h->count < 0 || h->nonfinite < 0 || (h->count > 0 && h->min > h->max) ||
        e->range[0] > e->range[1] || fabs(total - h->count) > 1e-6 * fmax(1, h->count))
        return oq_errf(err, OQ_EINVAL, "%s: tensor '%s': inconsistent statistics (min/max, counts or range)", path,
                       e->name);
    if (h->count == 0) { /* restore the empty state written as zeros */
        h->min = INFINITY;
        h->max = -INFINITY;
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "channels");
    if ((st = ch ? load_channels(e, ch, path, err) : OQ_OK))
        return st;
    return equalization_scales(e, err);
}

oq_status oq_calib_table_load(oq_calib_table **out, const char *path, oq_err *err)
{
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    st = oq_calib_table_parse(out, buf, len, path, err);
    free(buf);
    return st;
}

oq_status oq_calib_table_parse(oq_calib_table **out, const uint8_t *buf, size_t len, const char *path, oq_err *err)
{
    *out = NULL;
    oq_status st = OQ_OK;
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    oq_calib_table *t = NULL;
    if (!root) {
        st = oq_errf(err, OQ_EINVAL, "%s: not a JSON calibration table (parse error)", path);
        goto done;
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, TABLE_FORMAT) != 0) {
        st = oq_errf(err, OQ_EINVAL, "%s: not an onnxq calibration table (\"format\" is not \"%s\")", path, TABLE_FORMAT);
        goto done;
    }
    if (!cJSON_IsNumber(version) || version->valuedouble != OQ_CALIB_TABLE_VERSION) {
        st = oq_errf(err, OQ_EUNSUPPORTED, "%s: calibration table version is not %d", path, OQ_CALIB_TABLE_VERSION);
        goto done;
    }
    oq_range_options range = {0};
    double samples = 0, percentile = 0, qmin = 0, qmax = 0, bins = 0;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *symmetric = cJSON_GetObjectItemCaseSensitive(root, "symmetric");
    if ((st = get_number(root, "samples", &samples, path, err)) ||
        (st = get_number(root, "percentile", &percentile, path, err)) ||
        (st = get_number(root, "qmin", &qmin, path, err)) || (st = get_number(root, "qmax", &qmax, path, err)) ||
        (st = get_number(root, "bins", &bins, path, err)))
        goto done;
    range.method = cJSON_IsString(method) ? oq_calib_method_parse(method->valuestring) : OQ_CALIB_METHOD_COUNT;
    if (range.method == OQ_CALIB_METHOD_COUNT || !cJSON_IsBool(symmetric) || samples < 0 ||
        samples > MAX_SAMPLES || samples != floor(samples) || !(percentile > 0 && percentile <= 100) ||
        qmin >= qmax || qmin != floor(qmin) || qmax != floor(qmax) || qmin < -2147483648.0 || qmax > 2147483647.0 ||
        bins < 2 || bins > (1 << 24) || (int)bins != bins) {
        st = oq_errf(err, OQ_EINVAL, "%s: calibration table header is invalid (method, symmetric, samples, qmin/qmax or bins)",
                     path);
        goto done;
    }
    range.percentile = percentile;
    range.symmetric = cJSON_IsTrue(symmetric);
    range.qmin = (int)qmin;
    range.qmax = (int)qmax;
    if (!(t = oq_calib_table_create((int)bins, &range))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    t->samples = (int64_t)samples;
    /* absent in tables made before graph preparation existed: those were not prepared */
    const cJSON *prepared = cJSON_GetObjectItemCaseSensitive(root, "prepared");
    if (prepared && !cJSON_IsBool(prepared)) {
        st = oq_errf(err, OQ_EINVAL, "%s: calibration table field \"prepared\" is not true or false", path);
        goto done;
    }
    t->prepared = cJSON_IsTrue(prepared);
    if ((st = get_hex(root, "model_sha256", t->model_sha256, path, err)) ||
        (st = get_hex(root, "data_sha256", t->data_sha256, path, err)))
        goto done;
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    if (!cJSON_IsObject(tensors)) {
        st = oq_errf(err, OQ_EINVAL, "%s: calibration table has no \"tensors\" object", path);
        goto done;
    }
    int n = cJSON_GetArraySize(tensors);
    if (!(t->entries = calloc((size_t)(n ? n : 1), sizeof *t->entries))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, tensors)
    {
        oq_calib_entry *e = &t->entries[t->n_entries];
        if (!(e->name = strdup(item->string ? item->string : ""))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto done;
        }
        t->n_entries++;
        if ((st = load_entry(e, item, t->bins, path, err)))
            goto done;
    }
done:
    cJSON_Delete(root);
    if (st)
        oq_calib_table_destroy(t);
    else
        *out = t;
    return st;
}

/* ---- merge ---------------------------------------------------------------------- */

/* The options a table records, in the order merge compares them. */
typedef enum table_option {
    TABLE_PREPARED,
    TABLE_BINS,
    TABLE_METHOD,
    TABLE_PERCENTILE,
    TABLE_SYMMETRIC,
    TABLE_ACTIVATION_TYPE,
    TABLE_OPTION_COUNT
} table_option;

/* Writes t's option k into buf as calibrate's command line says it; distinct
 * values give distinct text (a percentile takes 17 digits when 15 do not
 * read back as it). */
static void option_text(const oq_calib_table *t, table_option k, char *buf, size_t n)
{
    const oq_range_options *r = &t->range;
    switch (k) {
    case TABLE_PREPARED: snprintf(buf, n, "%s", t->prepared ? "graph preparation" : "--no-prepare"); break;
    case TABLE_BINS: snprintf(buf, n, "--bins %d", t->bins); break;
    case TABLE_METHOD: snprintf(buf, n, "--method %s", oq_calib_method_name(r->method)); break;
    case TABLE_PERCENTILE: {
        int at = snprintf(buf, n, "--percentile ");
        snprintf(buf + at, n - (size_t)at, "%.15g", r->percentile);
        if (strtod(buf + at, NULL) != r->percentile)
            snprintf(buf + at, n - (size_t)at, "%.17g", r->percentile);
        break;
    }
    case TABLE_SYMMETRIC: snprintf(buf, n, "%s", r->symmetric ? "--symmetric" : "asymmetric ranges"); break;
    case TABLE_ACTIVATION_TYPE:
        if (r->qmin == 0 && r->qmax == 255)
            snprintf(buf, n, "--activation-type uint8");
        else if (r->qmin == -128 && r->qmax == 127)
            snprintf(buf, n, "--activation-type int8");
        else
            snprintf(buf, n, "the integer range [%d, %d]", r->qmin, r->qmax);
        break;
    case TABLE_OPTION_COUNT: buf[0] = '\0'; break;
    }
}

/* Fails naming a tensor that a (named na) records and b (nb) does not. */
static oq_status tensors_within(const oq_calib_table *a, const char *na, const oq_calib_table *b, const char *nb,
                                oq_err *err)
{
    for (int i = 0; i < a->n_entries; i++)
        if (!oq_calib_table_find(b, a->entries[i].name))
            return oq_errf(err, OQ_EINVAL,
                           "%s records tensor '%s' and %s does not (tables made with and without --all-tensors or "
                           "--contrib do not merge)",
                           na, a->entries[i].name, nb);
    return OQ_OK;
}

/* Fails unless src can merge into dst: the same model, options and tensors. */
static oq_status check_mergeable(const oq_calib_table *dst, const oq_calib_table *src, const char *dst_name,
                                 const char *src_name, oq_err *err)
{
    if (strcmp(dst->model_sha256, src->model_sha256) != 0)
        return oq_errf(err, OQ_EINVAL, "%s was made from another model than %s (sha256 %.12s... and %.12s...)",
                       src_name, dst_name, src->model_sha256, dst->model_sha256);
    for (int k = 0; k < TABLE_OPTION_COUNT; k++) {
        char a[64], b[64];
        option_text(src, (table_option)k, a, sizeof a);
        option_text(dst, (table_option)k, b, sizeof b);
        if (strcmp(a, b) != 0)
            return oq_errf(err, OQ_EINVAL, "%s was made with %s, %s with %s", src_name, a, dst_name, b);
    }
    oq_status st;
    if ((st = tensors_within(src, src_name, dst, dst_name, err)) ||
        (st = tensors_within(dst, dst_name, src, src_name, err)))
        return st;
    if (src->samples > INT64_MAX - dst->samples)
        return oq_errf(err, OQ_EINVAL, "merging %s would count more than %lld samples", src_name, (long long)INT64_MAX);
    return OQ_OK;
}

oq_status oq_calib_table_merge(oq_calib_table *dst, const oq_calib_table *src, const char *dst_name,
                               const char *src_name, oq_err *err)
{
    oq_status st = check_mergeable(dst, src, dst_name, src_name, err);
    for (int i = 0; !st && i < src->n_entries; i++) {
        const oq_calib_entry *se = &src->entries[i];
        oq_calib_entry *de = (oq_calib_entry *)oq_calib_table_find(dst, se->name);
        st = oq_hist_merge(&de->hist, &se->hist, err);
        if (!st && (de->channels.n > 0) != (se->channels.n > 0))
            oq_channel_stats_release(&de->channels); /* kept on one side only: neither covers all the data */
        else if (!st)
            st = oq_channel_stats_merge(&de->channels, &se->channels, err);
        if (st)
            oq_err_context(err, "%s: tensor '%s'", src_name, se->name);
    }
    if (st)
        return st;
    oq_sha256 h;
    oq_sha256_init(&h);
    oq_sha256_update(&h, dst->data_sha256, 64);
    oq_sha256_update(&h, src->data_sha256, 64);
    oq_sha256_hex(&h, dst->data_sha256);
    dst->samples += src->samples;
    return oq_calib_table_compute_ranges(dst, err);
}
