/* equalize.c: cross-layer equalization (see oq_correct.h, correct.h).
 *
 * A pair is a Conv A whose output T reaches a depthwise Conv B (one input
 * channel per group, as many groups as T has channels) through nothing or a
 * Relu alone. For s_c > 0,
 *     B(W_B, b_B)(Relu(A(W_A, b_A)(x)))
 *   = B(W_B / s, b_B)(Relu(A(s W_A, s b_A)(x)))
 * where s scales A's output channel c and every output channel of B that
 * reads input channel c: Relu commutes with a positive factor. The tensor
 * that is quantized between them (the Relu's output, else T) keeps its
 * calibrated range, and channel c's values now span s_c times as many of its
 * steps; A's and B's per-channel weight scales take the factors exactly, so
 * no weight is rounded differently. The scales come from the calibration
 * table (oq_calib_table_compute_ranges), which keeps each such tensor's
 * per-channel extremes, so that convert of a table scales as quantize did. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/correct.h"
#include "quant/match.h"

/* ---- finding pairs ---------------------------------------------------------------------- */

/* Whether n is a Conv the options quantize, with a float constant weight of rank >= 3. */
static bool quantized_conv(const oq_node *n, const oq_quant_options *o)
{
    const oq_value *w = n ? oq_node_input(n, 1) : NULL;
    return n && n->kind == OQ_OP_CONV && oq_quant_selects(o, OQ_OP_CONV) && !oq_quant_excludes(o, n) &&
           oq_node_input(n, 0) && n->n_outputs >= 1 && n->outputs[0] && oq_is_float_constant(w) &&
           w->constant->rank >= 3;
}

/* The pair whose producer is a (its consumer in *b, the quantized tensor in
 * *t), or false. */
static bool pair_of(const oq_graph *g, const oq_node *a, const oq_quant_options *o, const oq_node **b,
                    const oq_value **t)
{
    if (!quantized_conv(a, o))
        return false;
    const oq_value *w = a->inputs[1], *bias = oq_node_input(a, 2), *y = a->outputs[0];
    int64_t channels = w->constant->dims[0];
    if (bias && (!oq_is_float_constant(bias) || bias->constant->rank != 1 || bias->constant->dims[0] != channels))
        return false;
    const oq_node *next = oq_sole_reader(g, y);
    if (next && next->kind == OQ_OP_RELU && next->n_inputs == 1 && next->n_outputs == 1 && next->outputs[0]) {
        y = next->outputs[0];
        next = oq_sole_reader(g, y);
    }
    if (!quantized_conv(next, o) || next->inputs[0] != y)
        return false;
    const oq_tensor *wb = next->inputs[1]->constant;
    if (oq_node_attr_int(next, "group", 1) != channels || wb->dims[1] != 1 || wb->dims[0] % channels)
        return false;
    *b = next;
    *t = y;
    return true;
}

oq_status oq_equalize_candidates(const oq_graph *g, const oq_quant_options *o, bool **out, oq_err *err)
{
    *out = NULL;
    if (o->mode != OQ_MODE_STATIC || !o->per_channel)
        return OQ_OK;
    bool *want = calloc((size_t)g->n_values + 1, sizeof *want);
    if (!want)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *b;
        const oq_value *t;
        if (pair_of(g, g->nodes[i], o, &b, &t))
            want[t->id] = true;
    }
    *out = want;
    return OQ_OK;
}

/* ---- scaling ------------------------------------------------------------------------------ */

/* Input k of n becomes a new initializer: a copy of the float constant it
 * reads with each slice along axis 0 multiplied by factor(c) (c: the slice's
 * index divided by per, the slices per factor). */
static oq_status scale_input(oq_graph *g, oq_node *n, int k, const double *s, int64_t per, bool divide, oq_err *err)
{
    const oq_value *v = n->inputs[k];
    const oq_tensor *src = v->constant;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, src->rank, src->dims, err);
    if (!t)
        return err->status;
    int64_t rows = src->dims[0], inner = oq_tensor_numel(src) / (rows ? rows : 1);
    const float *x = src->data;
    float *y = t->data;
    for (int64_t r = 0; r < rows; r++) {
        double f = divide ? 1.0 / s[r / per] : s[r / per];
        for (int64_t i = 0; i < inner; i++)
            y[r * inner + i] = (float)(x[r * inner + i] * f);
    }
    char base[512];
    snprintf(base, sizeof base, "%s_equalized", v->name);
    oq_value *nv;
    oq_status st = oq_graph_add_initializer(g, base, t, &nv, err);
    if (!st)
        st = oq_node_set_input(n, k, nv, err);
    return st;
}

/* Scales pair (a, b) by s[channels]; adds its entry to eq. */
static oq_status equalize_pair(oq_graph *g, oq_node *a, oq_node *b, const oq_value *t, const double *s,
                               int64_t channels, oq_equalization *eq, oq_err *err)
{
    oq_equalized_pair pr = {.channels = channels, .max_scale = 1};
    for (int64_t c = 0; c < channels; c++) {
        pr.scaled += s[c] > 1;
        pr.max_scale = fmax(pr.max_scale, s[c]);
    }
    if (!pr.scaled)
        return OQ_OK;
    oq_status st = scale_input(g, a, 1, s, 1, false, err);
    if (!st && oq_node_input(a, 2))
        st = scale_input(g, a, 2, s, 1, false, err);
    if (!st)
        st = scale_input(g, b, 1, s, b->inputs[1]->constant->dims[0] / channels, true, err);
    if (st)
        return st;
    oq_equalized_pair *grown = realloc(eq->pairs, (size_t)(eq->n_pairs + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    eq->pairs = grown;
    pr.tensor = strdup(t->name);
    pr.producer = strdup(a->name);
    pr.consumer = strdup(b->name);
    eq->pairs[eq->n_pairs++] = pr;
    if (!pr.tensor || !pr.producer || !pr.consumer)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    return OQ_OK;
}

oq_status oq_equalize(oq_model *m, const oq_quant_options *o, const oq_calib_table *table, oq_equalization *eq,
                      oq_err *err)
{
    oq_equalization_release(eq);
    eq->requested = true;
    if (o->mode != OQ_MODE_STATIC) {
        eq->why_not = "dynamic mode has no calibrated ranges";
        return OQ_OK;
    }
    if (!o->per_channel) {
        eq->why_not = "weights are quantized per tensor, which would not take the scales exactly";
        return OQ_OK;
    }
    oq_graph *g = m->graph;
    int found = 0, no_stats = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *a = g->nodes[i];
        const oq_node *b;
        const oq_value *t;
        if (!pair_of(g, a, o, &b, &t))
            continue;
        found++;
        const oq_calib_entry *e = oq_calib_table_find(table, t->name);
        int64_t channels = a->inputs[1]->constant->dims[0];
        if (!e || !e->scales || e->channels.n != channels) {
            no_stats++;
            continue;
        }
        oq_status st = equalize_pair(g, a, (oq_node *)b, t, e->scales, channels, eq, err);
        if (st)
            return st;
    }
    eq->applied = eq->n_pairs > 0;
    eq->candidates = found;
    if (!eq->applied)
        eq->why_not = !found      ? "no Conv feeds a depthwise Conv directly or through a Relu"
                      : no_stats  ? "the calibration table has no per-channel extremes for these tensors (make it "
                                    "again with this version)"
                                  : "every channel already fills its tensor's range";
    return OQ_OK;
}

/* ---- the result ------------------------------------------------------------------------------ */

void oq_equalization_release(oq_equalization *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n_pairs; i++) {
        free(e->pairs[i].tensor);
        free(e->pairs[i].producer);
        free(e->pairs[i].consumer);
    }
    free(e->pairs);
    memset(e, 0, sizeof *e);
}

oq_status oq_equalization_copy(oq_equalization *dst, const oq_equalization *src, oq_err *err)
{
    *dst = *src;
    dst->n_pairs = 0;
    dst->pairs = calloc((size_t)src->n_pairs + 1, sizeof *dst->pairs);
    if (!dst->pairs)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < src->n_pairs; i++) {
        oq_equalized_pair *d = &dst->pairs[dst->n_pairs++];
        *d = src->pairs[i];
        d->tensor = strdup(src->pairs[i].tensor);
        d->producer = strdup(src->pairs[i].producer);
        d->consumer = strdup(src->pairs[i].consumer);
        if (!d->tensor || !d->producer || !d->consumer) {
            oq_equalization_release(dst);
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        }
    }
    return OQ_OK;
}
