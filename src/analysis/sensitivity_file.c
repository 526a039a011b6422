/* sensitivity_file.c: sensitivity results as data: ranks, the JSON form
 * (schema in docs/formats.md), reading it back, and merging shards. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/sensitivity_json.h"
#include "json.h"
#include "onnxq/oq_file.h"

/* ---- ranks ------------------------------------------------------------------------------ */

double oq_json_number(double v)
{
    if (!isfinite(v))
        return v;
    cJSON *n = cJSON_CreateNumber(v);
    char *text = n ? cJSON_PrintUnformatted(n) : NULL;
    double back = text ? strtod(text, NULL) : v;
    cJSON_free(text);
    cJSON_Delete(n);
    return back;
}

/* More sensitive first: the lower score, then the earlier node. */
static int by_sensitivity(const void *pa, const void *pb)
{
    const oq_sensitivity_node *a = *(const oq_sensitivity_node *const *)pa, *b = *(const oq_sensitivity_node *const *)pb;
    if (a->score_db < b->score_db)
        return -1;
    if (a->score_db > b->score_db)
        return 1;
    return (a->index > b->index) - (a->index < b->index);
}

void oq_sensitivity_settle(oq_sensitivity *s)
{
    s->total_macs = oq_json_number(s->total_macs);
    for (int i = 0; i < s->n_nodes; i++) {
        oq_sensitivity_node *e = &s->nodes[i];
        e->macs = oq_json_number(e->macs);
        e->score_db = INFINITY;
        for (int j = 0; j < s->n_outputs; j++) {
            oq_output_metrics *m = &e->outputs[j];
            m->cosine = oq_json_number(m->cosine);
            m->sqnr_db = oq_json_number(m->sqnr_db);
            m->max_abs_error = oq_json_number(m->max_abs_error);
            if (m->sqnr_db < e->score_db)
                e->score_db = m->sqnr_db;
        }
        e->rank = 0;
    }
    if (s->shard_count != 1)
        return;
    const oq_sensitivity_node **order = malloc(((size_t)s->n_nodes + 1) * sizeof *order);
    if (!order) { /* ranks by a slower way that needs no memory */
        for (int i = 0; i < s->n_nodes; i++) {
            s->nodes[i].rank = 1;
            for (int k = 0; k < s->n_nodes; k++) {
                const oq_sensitivity_node *a = &s->nodes[k], *b = &s->nodes[i];
                s->nodes[i].rank += by_sensitivity(&a, &b) < 0;
            }
        }
        return;
    }
    for (int i = 0; i < s->n_nodes; i++)
        order[i] = &s->nodes[i];
    qsort(order, (size_t)s->n_nodes, sizeof *order, by_sensitivity);
    for (int i = 0; i < s->n_nodes; i++)
        ((oq_sensitivity_node *)order[i])->rank = i + 1;
    free(order);
}

void oq_sensitivity_destroy(oq_sensitivity *s)
{
    if (!s)
        return;
    free(s->tool_version);
    free(s->setup);
    for (int j = 0; s->output_names && j < s->n_outputs; j++)
        free(s->output_names[j]);
    free(s->output_names);
    for (int i = 0; s->nodes && i < s->n_nodes; i++) {
        free(s->nodes[i].name);
        free(s->nodes[i].op_type);
        free(s->nodes[i].outputs);
    }
    free(s->nodes);
    free(s);
}

/* A result with s's header (version, setup, outputs, totals) and room for n nodes, none copied yet. */
static oq_sensitivity *copy_header(const oq_sensitivity *s, int n)
{
    oq_sensitivity *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = *s;
    c->n_outputs = c->n_nodes = 0;
    c->tool_version = strdup(s->tool_version);
    c->setup = strdup(s->setup);
    c->output_names = calloc((size_t)s->n_outputs + 1, sizeof *c->output_names);
    c->nodes = calloc((size_t)n + 1, sizeof *c->nodes);
    bool oom = !c->tool_version || !c->setup || !c->output_names || !c->nodes;
    for (; !oom && c->n_outputs < s->n_outputs; c->n_outputs++)
        oom = !(c->output_names[c->n_outputs] = strdup(s->output_names[c->n_outputs]));
    if (oom) {
        oq_sensitivity_destroy(c);
        return NULL;
    }
    return c;
}

/* Appends a copy of node e to c; false when out of memory. */
static bool copy_node(oq_sensitivity *c, const oq_sensitivity_node *e)
{
    oq_sensitivity_node *d = &c->nodes[c->n_nodes++];
    *d = *e;
    d->name = strdup(e->name);
    d->op_type = strdup(e->op_type);
    d->outputs = malloc(((size_t)c->n_outputs + 1) * sizeof *d->outputs);
    if (!d->name || !d->op_type || !d->outputs)
        return false;
    memcpy(d->outputs, e->outputs, (size_t)c->n_outputs * sizeof *d->outputs);
    return true;
}

oq_status oq_sensitivity_copy(oq_sensitivity **out, const oq_sensitivity *s, oq_err *err)
{
    oq_sensitivity *c = copy_header(s, s->n_nodes);
    bool ok = c != NULL;
    for (int i = 0; ok && i < s->n_nodes; i++)
        ok = copy_node(c, &s->nodes[i]);
    if (!ok) {
        oq_sensitivity_destroy(c);
        *out = NULL;
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    *out = c;
    return OQ_OK;
}

const oq_sensitivity_node *oq_sensitivity_find(const oq_sensitivity *s, const char *name)
{
    for (int i = 0; i < s->n_nodes; i++)
        if (!strcmp(s->nodes[i].name, name))
            return &s->nodes[i];
    return NULL;
}

/* ---- writing ------------------------------------------------------------------------------- */

static cJSON *node_cjson(const oq_sensitivity *s, const oq_sensitivity_node *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", e->name);
    cJSON_AddStringToObject(j, "op", e->op_type);
    cJSON_AddNumberToObject(j, "index", e->index);
    if (s->shard_count == 1)
        cJSON_AddNumberToObject(j, "rank", e->rank);
    oq_json_add_sqnr(j, "sqnr_db", e->score_db);
    cJSON_AddNumberToObject(j, "macs", e->macs);
    cJSON *outs = cJSON_AddArrayToObject(j, "outputs");
    for (int k = 0; k < s->n_outputs; k++) {
        const oq_output_metrics *m = &e->outputs[k];
        cJSON *o = cJSON_CreateObject();
        oq_json_add_sqnr(o, "sqnr_db", m->sqnr_db);
        oq_json_add_number(o, "cosine", m->cosine);
        oq_json_add_number(o, "max_abs_error", m->max_abs_error);
        if (m->classifier) {
            oq_json_add_number(o, "top1_agreement", m->top1_total ? (double)m->top1_agree / (double)m->top1_total : NAN);
            cJSON_AddNumberToObject(o, "top1_agree", (double)m->top1_agree);
            cJSON_AddNumberToObject(o, "top1_total", (double)m->top1_total);
        }
        cJSON_AddItemToArray(outs, o);
    }
    return j;
}

cJSON *oq_sensitivity_cjson(const oq_sensitivity *s)
{
    cJSON *j = cJSON_CreateObject(), *setup = cJSON_Parse(s->setup ? s->setup : "");
    if (!j || !setup) {
        cJSON_Delete(j);
        cJSON_Delete(setup);
        return NULL;
    }
    cJSON_AddItemToObject(j, "setup", setup);
    cJSON_AddStringToObject(j, "primary_metric", "sqnr_db");
    cJSON *shard = cJSON_AddObjectToObject(j, "shard");
    cJSON_AddNumberToObject(shard, "index", s->shard_index);
    cJSON_AddNumberToObject(shard, "count", s->shard_count);
    cJSON_AddNumberToObject(j, "candidates", s->n_candidates);
    cJSON_AddNumberToObject(j, "macs_per_sample", s->total_macs);
    cJSON *outs = cJSON_AddArrayToObject(j, "outputs");
    for (int k = 0; k < s->n_outputs; k++)
        cJSON_AddItemToArray(outs, cJSON_CreateString(s->output_names[k]));
    cJSON *nodes = cJSON_AddArrayToObject(j, "nodes");
    for (int i = 0; i < s->n_nodes; i++)
        cJSON_AddItemToArray(nodes, node_cjson(s, &s->nodes[i]));
    return j;
}

oq_status oq_sensitivity_serialize(const oq_sensitivity *s, uint8_t **buf, size_t *len, oq_err *err)
{
    cJSON *root = cJSON_CreateObject(), *body = oq_sensitivity_cjson(s);
    if (root && body) {
        cJSON *tool = cJSON_AddObjectToObject(root, "tool");
        cJSON_AddStringToObject(tool, "name", "onnxq");
        cJSON_AddStringToObject(tool, "version", s->tool_version ? s->tool_version : "");
        cJSON_AddItemToObject(root, "sensitivity", body);
    } else {
        cJSON_Delete(body);
        cJSON_Delete(root);
        root = NULL;
    }
    return oq_json_print(root, "the sensitivity", buf, len, err);
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct reader {
    const char *what;
    oq_err *err;
    oq_status st;
} reader;

static void bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(reader *r, const char *fmt, ...)
{
    if (r->st)
        return;
    char msg[OQ_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->st = oq_errf(r->err, OQ_EINVAL, "%s: %s", r->what, msg);
}

static const cJSON *member(reader *r, const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = r->st ? NULL : cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        bad(r, "%s has no \"%s\"", where, key);
    return v;
}

static int read_int(reader *r, const cJSON *o, const char *key, int lo, int hi, const char *where)
{
    const cJSON *v = member(r, o, key, where);
    if (v && (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
              v->valuedouble != floor(v->valuedouble)))
        bad(r, "%s: \"%s\" must be a whole number from %d to %d", where, key, lo, hi);
    return r->st ? 0 : (int)v->valuedouble;
}

static int64_t read_count(reader *r, const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = member(r, o, key, where);
    if (v && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
              v->valuedouble != floor(v->valuedouble)))
        bad(r, "%s: \"%s\" must be a count", where, key);
    return r->st ? 0 : (int64_t)v->valuedouble;
}

/* A number, or null for what was not finite (read as null_as). */
static double read_number(reader *r, const cJSON *o, const char *key, double null_as, const char *where)
{
    const cJSON *v = member(r, o, key, where);
    if (v && cJSON_IsNull(v))
        return null_as;
    if (v && !cJSON_IsNumber(v))
        bad(r, "%s: \"%s\" must be a number or null", where, key);
    return r->st ? 0 : v->valuedouble;
}

/* An SQNR written by oq_json_add_sqnr: null is +inf (exact), "-inf" -inf. */
static double read_sqnr(reader *r, const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = member(r, o, key, where);
    if (v && cJSON_IsString(v) && !strcmp(v->valuestring, "-inf"))
        return -INFINITY;
    return read_number(r, o, key, INFINITY, where);
}

static char *read_string(reader *r, const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = member(r, o, key, where);
    if (v && !cJSON_IsString(v))
        bad(r, "%s: \"%s\" must be a string", where, key);
    if (r->st)
        return NULL;
    char *s = strdup(v->valuestring);
    if (!s)
        r->st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    return s;
}

static void read_outputs(reader *r, const cJSON *list, oq_sensitivity_node *e, int n_outputs, const char *where)
{
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != n_outputs) {
        bad(r, "%s: \"outputs\" must have one entry per model output", where);
        return;
    }
    for (int k = 0; !r->st && k < n_outputs; k++) {
        const cJSON *o = cJSON_GetArrayItem(list, k);
        oq_output_metrics *m = &e->outputs[k];
        if (!cJSON_IsObject(o)) {
            bad(r, "%s: \"outputs\" entries must be objects", where);
            return;
        }
        m->sqnr_db = read_sqnr(r, o, "sqnr_db", where);
        m->cosine = read_number(r, o, "cosine", NAN, where);
        m->max_abs_error = read_number(r, o, "max_abs_error", NAN, where);
        if ((m->classifier = cJSON_HasObjectItem(o, "top1_total"))) {
            m->top1_agree = read_count(r, o, "top1_agree", where);
            m->top1_total = read_count(r, o, "top1_total", where);
            if (!r->st && m->top1_agree > m->top1_total)
                bad(r, "%s: \"top1_agree\" exceeds \"top1_total\"", where);
        }
    }
}

static void read_body(reader *r, const cJSON *j, oq_sensitivity *s)
{
    const char *w = "the sensitivity section";
    const cJSON *setup = member(r, j, "setup", w);
    if (setup && !cJSON_IsObject(setup))
        bad(r, "%s: \"setup\" must be an object", w);
    if (!r->st && !(s->setup = cJSON_PrintUnformatted(setup)))
        r->st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    const cJSON *shard = r->st ? NULL : member(r, j, "shard", w);
    if (shard && !cJSON_IsObject(shard))
        bad(r, "%s: \"shard\" must be an object", w);
    s->shard_count = r->st ? 0 : read_int(r, shard, "count", 1, 1 << 20, "\"shard\"");
    s->shard_index = r->st ? 0 : read_int(r, shard, "index", 1, s->shard_count, "\"shard\"");
    s->n_candidates = r->st ? 0 : read_int(r, j, "candidates", 0, 1 << 30, w);
    s->total_macs = r->st ? 0 : read_number(r, j, "macs_per_sample", NAN, w);
    const cJSON *outs = r->st ? NULL : member(r, j, "outputs", w);
    if (outs && !cJSON_IsArray(outs))
        bad(r, "%s: \"outputs\" must be an array of names", w);
    int n_out = r->st ? 0 : cJSON_GetArraySize(outs);
    if (!r->st && !(s->output_names = calloc((size_t)n_out + 1, sizeof *s->output_names)))
        r->st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    for (int k = 0; !r->st && k < n_out; k++) {
        const cJSON *o = cJSON_GetArrayItem(outs, k);
        if (!cJSON_IsString(o))
            bad(r, "%s: \"outputs\" must be an array of names", w);
        else if (!(s->output_names[s->n_outputs++] = strdup(o->valuestring)))
            r->st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    }
    const cJSON *nodes = r->st ? NULL : member(r, j, "nodes", w);
    if (nodes && !cJSON_IsArray(nodes))
        bad(r, "%s: \"nodes\" must be an array", w);
    int n = r->st ? 0 : cJSON_GetArraySize(nodes);
    if (!r->st && !(s->nodes = calloc((size_t)n + 1, sizeof *s->nodes)))
        r->st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    for (int i = 0; !r->st && i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(nodes, i);
        oq_sensitivity_node *e = &s->nodes[s->n_nodes++];
        char where[64];
        snprintf(where, sizeof where, "node %d", i);
        if (!cJSON_IsObject(o)) {
            bad(r, "%s: \"nodes\" entries must be objects", w);
            break;
        }
        e->name = read_string(r, o, "name", where);
        e->op_type = read_string(r, o, "op", where);
        e->index = r->st ? 0 : read_int(r, o, "index", 0, s->n_candidates - 1, where);
        e->macs = r->st ? 0 : read_number(r, o, "macs", NAN, where);
        if (!r->st && !(e->outputs = calloc((size_t)s->n_outputs + 1, sizeof *e->outputs)))
            r->st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
        if (!r->st)
            read_outputs(r, member(r, o, "outputs", where), e, s->n_outputs, where);
        if (!r->st && i > 0 && e->index <= s->nodes[i - 1].index)
            bad(r, "%s: \"nodes\" must come in index order, each once", w);
        if (!r->st && (e->index % s->shard_count) != s->shard_index - 1)
            bad(r, "%s: index %d does not belong to shard %d of %d", where, e->index, s->shard_index, s->shard_count);
    }
    if (!r->st && s->shard_count == 1 && s->n_nodes != s->n_candidates)
        bad(r, "%s: \"nodes\" lists %d of %d candidates in a whole result", w, s->n_nodes, s->n_candidates);
}

oq_status oq_sensitivity_parse(oq_sensitivity **out, const uint8_t *buf, size_t len, const char *what, oq_err *err)
{
    *out = NULL;
    reader r = {.what = what, .err = err};
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    oq_sensitivity *s = calloc(1, sizeof *s);
    if (!s) {
        cJSON_Delete(root);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    const cJSON *body = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "sensitivity") : NULL;
    const cJSON *tool = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "tool") : NULL;
    if (!root)
        r.st = oq_errf(err, OQ_EINVAL, "%s: not valid JSON", what);
    else if (!cJSON_IsObject(body))
        r.st = oq_errf(err, OQ_EINVAL, "%s: no \"sensitivity\" section (make one with `onnxq analyze`)", what);
    const cJSON *version = cJSON_IsObject(tool) ? cJSON_GetObjectItemCaseSensitive(tool, "version") : NULL;
    if (!r.st && !(s->tool_version = strdup(cJSON_IsString(version) ? version->valuestring : "")))
        r.st = oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!r.st)
        read_body(&r, body, s);
    cJSON_Delete(root);
    if (r.st) {
        oq_sensitivity_destroy(s);
        return r.st;
    }
    oq_sensitivity_settle(s);
    *out = s;
    return OQ_OK;
}

oq_status oq_sensitivity_load(oq_sensitivity **out, const char *path, oq_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (!st)
        st = oq_sensitivity_parse(out, buf, len, path, err);
    free(buf);
    return st;
}

/* ---- merging -------------------------------------------------------------------------------- */

/* Names the first part of the setups a and b (JSON objects as text) that differs. */
static const char *setup_difference(const char *a, const char *b)
{
    static const char *const keys[] = {"model_sha256", "prepared", "options", "ranges", "evaluation"};
    static const char *const said[] = {"models", "graph preparation", "quantization options", "activation ranges",
                                       "evaluation samples"};
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    const char *what = "setups";
    for (int k = 0; k < 5; k++)
        if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(x, keys[k]), cJSON_GetObjectItemCaseSensitive(y, keys[k]),
                           true)) {
            what = said[k];
            break;
        }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return what;
}

static oq_status check_compatible(const oq_sensitivity *a, const oq_sensitivity *b, const char *na, const char *nb,
                                  oq_err *err)
{
    if (strcmp(a->setup, b->setup))
        return oq_errf(err, OQ_EINVAL, "%s and %s come from different %s; only shards of one analysis merge", na, nb,
                       setup_difference(a->setup, b->setup));
    if (strcmp(a->tool_version, b->tool_version))
        return oq_errf(err, OQ_EINVAL, "%s and %s were made by different onnxq versions (%s, %s)", na, nb,
                       a->tool_version, b->tool_version);
    if (a->shard_count != b->shard_count)
        return oq_errf(err, OQ_EINVAL, "%s is one of %d shards, %s one of %d", na, a->shard_count, nb, b->shard_count);
    bool same = a->n_candidates == b->n_candidates && a->n_outputs == b->n_outputs &&
                !memcmp(&a->total_macs, &b->total_macs, sizeof a->total_macs);
    for (int k = 0; same && k < a->n_outputs; k++)
        same = !strcmp(a->output_names[k], b->output_names[k]);
    if (!same)
        return oq_errf(err, OQ_EINVAL, "%s and %s disagree on the model's candidates or outputs", na, nb);
    return OQ_OK;
}

oq_status oq_sensitivity_merge(oq_sensitivity **out, int n, const oq_sensitivity *const *parts,
                               const char *const *names, oq_err *err)
{
    *out = NULL;
    if (n < 1)
        return oq_errf(err, OQ_EINVAL, "nothing to merge");
    const oq_sensitivity *first = parts[0];
    if (first->shard_count != n)
        return oq_errf(err, OQ_EINVAL, "%s is one of %d shards, but %d file%s given", names[0], first->shard_count, n,
                       n == 1 ? " was" : "s were");
    for (int i = 1; i < n; i++) {
        oq_status st = check_compatible(first, parts[i], names[0], names[i], err);
        if (st)
            return st;
    }
    const oq_sensitivity_node **at = calloc((size_t)first->n_candidates + 1, sizeof *at);
    int *seen = calloc((size_t)n + 1, sizeof *seen);
    if (!at || !seen) {
        free(at);
        free(seen);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < n; i++) {
        int k = parts[i]->shard_index - 1;
        if (seen[k])
            st = oq_errf(err, OQ_EINVAL, "%s and %s are both shard %d of %d", names[seen[k] - 1], names[i], k + 1, n);
        seen[k] = i + 1;
        for (int j = 0; !st && j < parts[i]->n_nodes; j++)
            at[parts[i]->nodes[j].index] = &parts[i]->nodes[j];
    }
    for (int c = 0; !st && c < first->n_candidates; c++)
        if (!at[c])
            st = oq_errf(err, OQ_EINVAL, "candidate %d is in no shard (shard %d of %d lacks it)", c,
                         c % n + 1, n);
    oq_sensitivity *s = NULL;
    if (!st) {
        bool ok = (s = copy_header(first, first->n_candidates)) != NULL;
        for (int c = 0; ok && c < first->n_candidates; c++)
            ok = copy_node(s, at[c]);
        if (ok)
            s->shard_index = s->shard_count = 1;
        else
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    free(at);
    free(seen);
    if (st) {
        oq_sensitivity_destroy(s);
        return st;
    }
    oq_sensitivity_settle(s);
    *out = s;
    return OQ_OK;
}
