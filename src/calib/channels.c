/* channels.c: per-channel extremes of an activation (axis 1), for the
 * tensors cross-layer equalization may scale. See oq_calib.h. */
#include <math.h>
#include <stdlib.h>

#include "onnxq/oq_calib.h"

void oq_channel_stats_release(oq_channel_stats *s)
{
    if (!s)
        return;
    free(s->min);
    free(s->max);
    s->min = s->max = NULL;
    s->n = 0;
}

/* Gives s n channels, none seen yet. */
static oq_status channel_stats_init(oq_channel_stats *s, int64_t n, oq_err *err)
{
    s->min = malloc((size_t)(n ? n : 1) * sizeof *s->min);
    s->max = malloc((size_t)(n ? n : 1) * sizeof *s->max);
    if (!s->min || !s->max) {
        oq_channel_stats_release(s);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (int64_t c = 0; c < n; c++) {
        s->min[c] = INFINITY;
        s->max[c] = -INFINITY;
    }
    s->n = n;
    return OQ_OK;
}

oq_status oq_channel_stats_add(oq_channel_stats *s, const oq_tensor *t, oq_err *err)
{
    if (s->n < 0 || t->dtype != OQ_DTYPE_FLOAT)
        return OQ_OK;
    if (t->rank < 2 || (s->n && s->n != t->dims[1])) {
        oq_channel_stats_release(s);
        s->n = -1;
        return OQ_OK;
    }
    oq_status st;
    if (!s->n && t->dims[1] && (st = channel_stats_init(s, t->dims[1], err)))
        return st;
    int64_t ch = t->dims[1], inner = 1;
    for (int a = 2; a < t->rank; a++)
        inner *= t->dims[a];
    const float *x = t->data;
    for (int64_t o = 0; o < t->dims[0]; o++)
        for (int64_t c = 0; c < ch; c++) {
            const float *p = x + (o * ch + c) * inner;
            double lo = s->min[c], hi = s->max[c];
            for (int64_t k = 0; k < inner; k++)
                if (isfinite(p[k])) {
                    lo = p[k] < lo ? p[k] : lo;
                    hi = p[k] > hi ? p[k] : hi;
                }
            s->min[c] = lo;
            s->max[c] = hi;
        }
    return OQ_OK;
}

oq_status oq_channel_stats_merge(oq_channel_stats *dst, const oq_channel_stats *src, oq_err *err)
{
    if (dst->n < 0 || !src->n)
        return OQ_OK;
    if (src->n < 0 || (dst->n && dst->n != src->n)) {
        oq_channel_stats_release(dst);
        dst->n = -1;
        return OQ_OK;
    }
    oq_status st;
    if (!dst->n && (st = channel_stats_init(dst, src->n, err)))
        return st;
    for (int64_t c = 0; c < src->n; c++) {
        dst->min[c] = fmin(dst->min[c], src->min[c]);
        dst->max[c] = fmax(dst->max[c], src->max[c]);
    }
    return OQ_OK;
}
