/* channels.c: per-channel extremes of an activation (axis 1), for the
 * tensors cross-layer equalization may scale. See oq_calib.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/float_key.h"
#include "cpu_dispatch.h"
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

/* ---- one channel's extremes ------------------------------------------------------
 *
 * A channel's values are scanned in one pass that vectorizes, for the
 * extremes as order keys (float_key.h). That is what the plain loop
 * (plane_extremes_in_order: finite values only, the first of equal values
 * kept) gives, unless an extreme is NaN or infinite, or the least is -0,
 * or the greatest is +0 above something smaller (both zeros may occur, and
 * the plain loop keeps whichever comes first): then the plain loop decides.
 * A channel of +0 only (a ReLU channel that stayed off) needs no second
 * look. */
typedef struct plane_keys {
    int32_t min, max;
} plane_keys;

OQ_CLONED(plane_scan, (const float *restrict x, int64_t n, plane_keys *k), (x, n, k))
{
    int32_t kmin = INT32_MAX, kmax = INT32_MIN;
    for (int64_t i = 0; i < n; i++) {
        int32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        int32_t key = float_key(bits);
        kmin = key < kmin ? key : kmin;
        kmax = key > kmax ? key : kmax;
    }
    k->min = kmin;
    k->max = kmax;
}

/* Folds the finite values of x[0..n) into [*lo, *hi] one by one, keeping
 * the first of equal values (the reference the scan above agrees with). */
static void plane_extremes_in_order(const float *x, int64_t n, double *lo, double *hi)
{
    for (int64_t k = 0; k < n; k++)
        if (isfinite(x[k])) {
            *lo = x[k] < *lo ? x[k] : *lo;
            *hi = x[k] > *hi ? x[k] : *hi;
        }
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
    plane_scan_fn *scan = plane_scan_pick();
    const int32_t neg_zero = float_key(INT32_MIN), pos_zero = 0;
    for (int64_t o = 0; o < t->dims[0]; o++)
        for (int64_t c = 0; c < ch; c++) {
            const float *p = x + (o * ch + c) * inner;
            plane_keys k;
            scan(p, inner, &k);
            float mn = float_of_key(k.min), mx = float_of_key(k.max); /* NaN when inner is 0 */
            if (!isfinite(mn) || !isfinite(mx) || k.min == neg_zero || (k.max == pos_zero && k.min != pos_zero)) {
                plane_extremes_in_order(p, inner, &s->min[c], &s->max[c]);
                continue;
            }
            s->min[c] = mn < s->min[c] ? mn : s->min[c];
            s->max[c] = mx > s->max[c] ? mx : s->max[c];
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
