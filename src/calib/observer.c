/* observer.c: the calibrator, an executor observer that feeds one histogram
 * per float activation of the top-level graph. See oq_calib.h. */
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_calib.h"

struct oq_calibrator {
    const oq_graph *graph;
    int n_values;          /* graph->n_values when created */
    int *entry_of_value;   /* [n_values] entry index or -1 */
    bool *observed;        /* [n_values] entry_of_value >= 0 */
    int n_entries;
    char **names;          /* [n_entries] borrowed from the graph */
    oq_hist *hists;        /* [n_entries] */
    bool *seen;            /* [n_entries] a float tensor was observed, if only an empty one (a KV cache's
                              past at the first step): the table keeps it, with no values */
    bool *keep_channels;   /* [n_entries]: per-channel extremes kept too */
    oq_channel_stats *channels; /* [n_entries] */
    oq_err channel_err;    /* set when keeping channels ran out of memory (reported by oq_calibrator_table) */
    uint32_t *scratch;     /* [oq_hist_scratch_size(bins)] zeros between calls */
    int64_t samples;
};

oq_calibrator *oq_calibrator_create(const oq_model *m, int bins, const bool *observe, oq_err *err)
{
    const oq_graph *g = m->graph;
    oq_calibrator *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->graph = g;
    c->n_values = g->n_values;
    c->entry_of_value = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *c->entry_of_value);
    c->names = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->names);
    c->hists = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->hists);
    c->seen = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->seen);
    c->observed = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->observed);
    c->keep_channels = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->keep_channels);
    c->channels = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->channels);
    c->scratch = bins > 0 ? calloc(oq_hist_scratch_size(bins), sizeof *c->scratch) : NULL;
    if (!c->entry_of_value || !c->names || !c->hists || !c->seen || !c->observed || !c->keep_channels || !c->channels ||
        (bins > 0 && !c->scratch))
        goto oom;
    for (int i = 0; i < g->n_values; i++) {
        const oq_value *v = g->values[i];
        bool produced = v->producer != NULL;
        bool is_input = false;
        for (int k = 0; k < g->n_inputs && !is_input; k++)
            is_input = g->inputs[k] == v;
        /* float activations; a declared non-float type rules a value out, an
         * undeclared one is decided by the tensor seen at run time */
        bool candidate = !v->constant && (produced || is_input) &&
                         (v->dtype == OQ_DTYPE_FLOAT || v->dtype == OQ_DTYPE_UNDEFINED) && (!observe || observe[i]);
        c->entry_of_value[i] = -1;
        if (!candidate)
            continue;
        if (oq_hist_init(&c->hists[c->n_entries], bins, err)) {
            oq_calibrator_destroy(c);
            return NULL;
        }
        c->names[c->n_entries] = v->name;
        c->observed[i] = true;
        c->entry_of_value[i] = c->n_entries++;
    }
    return c;
oom:
    oq_calibrator_destroy(c);
    oq_errf(err, OQ_ENOMEM, "out of memory creating the calibrator");
    return NULL;
}

void oq_calibrator_destroy(oq_calibrator *c)
{
    if (!c)
        return;
    if (c->hists)
        for (int i = 0; i < c->n_entries; i++)
            oq_hist_release(&c->hists[i]);
    free(c->hists);
    free(c->seen);
    if (c->channels)
        for (int i = 0; i < c->n_entries; i++)
            oq_channel_stats_release(&c->channels[i]);
    free(c->channels);
    free(c->keep_channels);
    free(c->names);
    free(c->entry_of_value);
    free(c->observed);
    free(c->scratch);
    free(c);
}

const bool *oq_calibrator_observed(const oq_calibrator *c)
{
    return c->observed;
}

void oq_calibrator_keep_channels(oq_calibrator *c, const bool *channels)
{
    for (int v = 0; channels && v < c->n_values; v++)
        if (channels[v] && c->entry_of_value[v] >= 0)
            c->keep_channels[c->entry_of_value[v]] = true;
}

void oq_calibrator_observe(void *user, const oq_value *value, const oq_tensor *tensor)
{
    oq_calibrator *c = user;
    if (value->graph != c->graph || value->id >= c->n_values || tensor->dtype != OQ_DTYPE_FLOAT)
        return;
    int e = c->entry_of_value[value->id];
    if (e < 0)
        return;
    c->seen[e] = true;
    oq_hist_add_scratch(&c->hists[e], tensor->data, oq_tensor_numel(tensor), c->scratch);
    if (c->keep_channels[e] && !c->channel_err.status)
        oq_channel_stats_add(&c->channels[e], tensor, &c->channel_err);
}

void oq_calibrator_add_inputs(oq_calibrator *c, int n, const oq_value *const *values, const oq_tensor *tensors)
{
    for (int i = 0; i < n; i++)
        oq_calibrator_observe(c, values[i], &tensors[i]);
    c->samples++;
}

void oq_calibrator_restart(oq_calibrator *c, const oq_calibrator *grid_from)
{
    for (int i = 0; i < c->n_entries; i++) {
        oq_hist_restart(&c->hists[i], grid_from && grid_from->n_entries == c->n_entries ? &grid_from->hists[i] : NULL);
        c->seen[i] = false;
        oq_channel_stats_release(&c->channels[i]);
    }
    c->samples = 0;
}

oq_status oq_calibrator_merge(oq_calibrator *dst, const oq_calibrator *src, oq_err *err)
{
    if (dst->graph != src->graph || dst->n_entries != src->n_entries)
        return oq_errf(err, OQ_EINVAL, "cannot merge calibrators of different models");
    if (src->channel_err.status) {
        *err = src->channel_err;
        return err->status;
    }
    for (int i = 0; i < dst->n_entries; i++) {
        dst->seen[i] = dst->seen[i] || src->seen[i];
        oq_status st = oq_hist_merge(&dst->hists[i], &src->hists[i], err);
        if (!st && dst->keep_channels[i])
            st = oq_channel_stats_merge(&dst->channels[i], &src->channels[i], err);
        if (st)
            return st;
    }
    dst->samples += src->samples;
    return OQ_OK;
}

oq_calib_table *oq_calibrator_table(oq_calibrator *c, const oq_range_options *range, oq_err *err)
{
    if (c->channel_err.status) {
        *err = c->channel_err;
        return NULL;
    }
    int bins = c->n_entries ? c->hists[0].nbins : 2;
    oq_calib_table *t = oq_calib_table_create(bins, range);
    if (!t || !(t->entries = calloc((size_t)(c->n_entries ? c->n_entries : 1), sizeof *t->entries))) {
        oq_calib_table_destroy(t);
        oq_errf(err, OQ_ENOMEM, "out of memory building the calibration table");
        return NULL;
    }
    t->samples = c->samples;
    for (int i = 0; i < c->n_entries; i++) {
        if (!c->seen[i])
            continue; /* never seen as float (e.g. an undeclared int tensor) */
        oq_calib_entry *e = &t->entries[t->n_entries];
        if (!(e->name = strdup(c->names[i]))) {
            oq_calib_table_destroy(t);
            oq_errf(err, OQ_ENOMEM, "out of memory building the calibration table");
            return NULL;
        }
        e->hist = c->hists[i]; /* move */
        memset(&c->hists[i], 0, sizeof c->hists[i]);
        if (c->channels[i].n > 0) {
            e->channels = c->channels[i];
            memset(&c->channels[i], 0, sizeof c->channels[i]);
        }
        t->n_entries++;
    }
    if (oq_calib_table_compute_ranges(t, err)) {
        oq_calib_table_destroy(t);
        return NULL;
    }
    return t;
}
