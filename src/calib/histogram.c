/* histogram.c: growing histograms and the range methods computed from them
 * (minmax, percentile, entropy, mse). See oq_calib.h. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_calib.h"

static const char *const method_names[OQ_CALIB_METHOD_COUNT] = {
    [OQ_CALIB_MINMAX] = "minmax",
    [OQ_CALIB_PERCENTILE] = "percentile",
    [OQ_CALIB_ENTROPY] = "entropy",
    [OQ_CALIB_MSE] = "mse",
};

const char *oq_calib_method_name(oq_calib_method m)
{
    return (unsigned)m < OQ_CALIB_METHOD_COUNT ? method_names[m] : "?";
}

oq_calib_method oq_calib_method_parse(const char *name)
{
    for (int m = 0; m < OQ_CALIB_METHOD_COUNT; m++)
        if (strcmp(name, method_names[m]) == 0)
            return (oq_calib_method)m;
    return OQ_CALIB_METHOD_COUNT;
}

/* ---- the histogram ------------------------------------------------------------ */

oq_status oq_hist_init(oq_hist *h, int nbins, oq_err *err)
{
    memset(h, 0, sizeof *h);
    if (nbins < 2 || nbins % 2 || nbins > (1 << 24))
        return oq_errf(err, OQ_EINVAL, "histogram bins must be an even number from 2 to %d, got %d", 1 << 24, nbins);
    h->counts = calloc((size_t)nbins, sizeof *h->counts);
    if (!h->counts)
        return oq_errf(err, OQ_ENOMEM, "out of memory for a %d-bin histogram", nbins);
    h->nbins = nbins;
    h->min = INFINITY;
    h->max = -INFINITY;
    return OQ_OK;
}

void oq_hist_release(oq_hist *h)
{
    if (!h)
        return;
    free(h->counts);
    memset(h, 0, sizeof *h);
}

/* Doubles the bin width keeping lo (grow right) or keeping hi (grow left):
 * pairs of bins merge exactly, half the bins become empty. */
static void hist_double(oq_hist *h, bool grow_left)
{
    int n = h->nbins, half = n / 2;
    double *c = h->counts;
    if (grow_left) {
        for (int j = half - 1; j >= 0; j--) /* new bin half+j = old 2j + 2j+1 */
            c[half + j] = c[2 * j] + c[2 * j + 1];
        for (int j = 0; j < half; j++)
            c[j] = 0;
        h->lo -= n * h->width;
    } else {
        for (int j = 0; j < half; j++)
            c[j] = c[2 * j] + c[2 * j + 1];
        for (int j = half; j < n; j++)
            c[j] = 0;
    }
    h->width *= 2;
}

/* Binning. The common case (every value finite) goes in blocks: the bin
 * indices of a block are computed in one loop the compiler vectorizes (with
 * AVX2 when the processor has it), then counted into four interleaved 32-bit
 * sub-histograms, so runs of equal values (the zeros after a ReLU) do not wait
 * on one counter. The sub-histograms are added to the double counts once per
 * call, over the bins the call touched only. */
enum { BIN_BLOCK = 256 };

/* k[i] = bin of x[i], clamped to last. The range covers x, so (x - lo) * inv
 * lies in (-1, last + 1] up to rounding and converts to int safely. */
static inline __attribute__((always_inline)) void bin_block_body(int32_t *k, const float *x, int n, double lo,
                                                                 double inv, int last)
{
    for (int i = 0; i < n; i++) {
        int32_t b = (int32_t)(((double)x[i] - lo) * inv);
        k[i] = b > last ? last : b;
    }
}

typedef void bin_block_fn(int32_t *k, const float *x, int n, double lo, double inv, int last);

static void bin_block_plain(int32_t *k, const float *x, int n, double lo, double inv, int last)
{
    bin_block_body(k, x, n, lo, inv, last);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void bin_block_avx2(int32_t *k, const float *x, int n, double lo, double inv,
                                                           int last)
{
    bin_block_body(k, x, n, lo, inv, last);
}
#endif

static bin_block_fn *pick_bin_block(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2"))
        return bin_block_avx2;
#endif
    return bin_block_plain;
}

/* Adds x[0..n), all finite and inside the range, to the bins; kmin..kmax
 * bounds the bins they fall in. */
static void bin_finite(oq_hist *h, const float *x, int64_t n, int kmin, int kmax)
{
    bin_block_fn *bin_block = pick_bin_block();
    const int last = h->nbins - 1, span = kmax - kmin + 1;
    const double inv = 1.0 / h->width, lo = h->lo;
    int32_t k[BIN_BLOCK];
    uint32_t *sub = n >= 4 * (int64_t)span ? calloc((size_t)span * 4, sizeof *sub) : NULL;
    for (int64_t i = 0; i < n;) {
        /* flush before any 32-bit counter could overflow */
        int64_t chunk_end = n - i > ((int64_t)1 << 31) ? i + ((int64_t)1 << 31) : n;
        for (; i < chunk_end; i += BIN_BLOCK) {
            int m = chunk_end - i < BIN_BLOCK ? (int)(chunk_end - i) : BIN_BLOCK, j = 0;
            bin_block(k, x + i, m, lo, inv, last);
            if (!sub) {
                for (; j < m; j++)
                    h->counts[k[j]] += 1;
                continue;
            }
            uint32_t *s = sub - (size_t)kmin * 4;
            for (; j + 4 <= m; j += 4) {
                s[(size_t)k[j] * 4]++;
                s[(size_t)k[j + 1] * 4 + 1]++;
                s[(size_t)k[j + 2] * 4 + 2]++;
                s[(size_t)k[j + 3] * 4 + 3]++;
            }
            for (; j < m; j++)
                s[(size_t)k[j] * 4]++;
        }
        if (sub)
            for (int b = 0; b < span; b++) {
                uint32_t *c = &sub[(size_t)b * 4];
                h->counts[kmin + b] += (double)c[0] + c[1] + c[2] + c[3];
                c[0] = c[1] = c[2] = c[3] = 0;
            }
    }
    free(sub);
}

/* Adds the finite values of x[0..n) to the bins (the range already covers
 * them), one at a time: for the rare tensor with NaN or Inf values. */
static void bin_some_finite(oq_hist *h, const float *x, int64_t n)
{
    const int last = h->nbins - 1;
    const double inv = 1.0 / h->width, lo = h->lo;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        int32_t b = (int32_t)(((double)x[i] - lo) * inv);
        h->counts[b < 0 ? 0 : b > last ? last : b] += 1;
    }
}

/* Extremes and non-finite count of x[0..n) in one pass that vectorizes: a
 * float's bits, with the magnitude bits flipped for negative values, order as
 * int32 the way the floats do (-0 just below +0), so min/max are integer
 * reductions. Exact for the finite values when none is NaN or infinite. */
static inline __attribute__((always_inline)) int64_t scan_body(const float *x, int64_t n, float *pmin, float *pmax)
{
    int32_t kmin = INT32_MAX, kmax = INT32_MIN;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t b;
        memcpy(&b, &x[i], sizeof b);
        nonfinite += (b & 0x7f800000) == 0x7f800000;
        int32_t key = b ^ ((b >> 31) & 0x7fffffff);
        kmin = key < kmin ? key : kmin;
        kmax = key > kmax ? key : kmax;
    }
    kmin ^= (kmin >> 31) & 0x7fffffff;
    kmax ^= (kmax >> 31) & 0x7fffffff;
    memcpy(pmin, &kmin, sizeof *pmin);
    memcpy(pmax, &kmax, sizeof *pmax);
    return nonfinite;
}

typedef int64_t scan_fn(const float *x, int64_t n, float *pmin, float *pmax);

static int64_t scan_plain(const float *x, int64_t n, float *pmin, float *pmax)
{
    return scan_body(x, n, pmin, pmax);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static int64_t scan_avx2(const float *x, int64_t n, float *pmin, float *pmax)
{
    return scan_body(x, n, pmin, pmax);
}
#endif

/* Exact extremes of the finite values of x[0..n) (n > 0) and their count. */
static int64_t scan_finite(const float *x, int64_t n, float *pmin, float *pmax)
{
    scan_fn *scan = scan_plain;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2"))
        scan = scan_avx2;
#endif
    int64_t nonfinite = scan(x, n, pmin, pmax);
    if (nonfinite) { /* rare: redo it carefully */
        float mn = INFINITY, mx = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            if (isfinite(x[i])) {
                mn = x[i] < mn ? x[i] : mn;
                mx = x[i] > mx ? x[i] : mx;
            }
        *pmin = mn;
        *pmax = mx;
    }
    return n - nonfinite;
}

void oq_hist_add(oq_hist *h, const float *x, int64_t n)
{
    float bmin, bmax;
    int64_t finite = scan_finite(x, n, &bmin, &bmax);
    h->nonfinite += (double)(n - finite);
    if (!finite)
        return;
    h->count += (double)finite;
    if (bmin < h->min)
        h->min = bmin;
    if (bmax > h->max)
        h->max = bmax;
    if (h->width == 0) {
        double span = (double)bmax - (double)bmin;
        double floor_width = fmax(fabs((double)bmin), 1.0) * 1e-7 / h->nbins;
        h->lo = bmin;
        h->width = fmax(span / h->nbins * (1 + 1e-9), floor_width);
    }
    while (bmin < h->lo)
        hist_double(h, true);
    while (bmax >= h->lo + h->nbins * h->width)
        hist_double(h, false);
    if (finite < n) {
        bin_some_finite(h, x, n);
        return;
    }
    /* the bins of the extremes bound every bin this call touches */
    int32_t kb[2];
    float ext[2] = {bmin, bmax};
    bin_block_plain(kb, ext, 2, h->lo, 1.0 / h->width, h->nbins - 1);
    bin_finite(h, x, n, kb[0], kb[1]);
}

oq_status oq_hist_merge(oq_hist *dst, const oq_hist *src, oq_err *err)
{
    if (dst->nbins != src->nbins)
        return oq_errf(err, OQ_EINVAL, "cannot merge histograms of %d and %d bins", dst->nbins, src->nbins);
    dst->nonfinite += src->nonfinite;
    if (src->width == 0)
        return OQ_OK;
    if (dst->width == 0) {
        memcpy(dst->counts, src->counts, (size_t)src->nbins * sizeof *src->counts);
        dst->lo = src->lo;
        dst->width = src->width;
        dst->min = src->min;
        dst->max = src->max;
        dst->count = src->count;
        return OQ_OK;
    }
    dst->count += src->count;
    dst->min = fmin(dst->min, src->min);
    dst->max = fmax(dst->max, src->max);
    double src_hi = src->lo + src->nbins * src->width;
    while (src->width > dst->width * 1.000001 && dst->width * 2 <= src->width * 1.000001)
        hist_double(dst, false); /* coarsen dst to at least src's resolution */
    while (src->lo < dst->lo)
        hist_double(dst, true);
    while (src_hi > dst->lo + dst->nbins * dst->width)
        hist_double(dst, false);
    /* spread each source bin over the destination bins it overlaps */
    for (int i = 0; i < src->nbins; i++) {
        double c = src->counts[i];
        if (c == 0)
            continue;
        double a = src->lo + i * src->width, b = a + src->width;
        int k0 = (int)floor((a - dst->lo) / dst->width), k1 = (int)floor((b - dst->lo) / dst->width);
        for (int k = k0; k <= k1; k++) {
            int kk = k < 0 ? 0 : k >= dst->nbins ? dst->nbins - 1 : k;
            double l = dst->lo + k * dst->width, r = l + dst->width;
            double overlap = fmin(b, r) - fmax(a, l);
            if (overlap > 0)
                dst->counts[kk] += c * overlap / src->width;
        }
    }
    return OQ_OK;
}

/* ---- range methods -------------------------------------------------------------- */

/* Value below which a fraction q of the counts lies (linear within a bin). */
static double hist_quantile(const oq_hist *h, double q)
{
    double target = q * h->count, acc = 0;
    for (int i = 0; i < h->nbins; i++) {
        double c = h->counts[i];
        if (c > 0 && acc + c >= target) {
            double v = h->lo + (i + (target - acc) / c) * h->width;
            return fmin(fmax(v, h->min), h->max);
        }
        acc += c;
    }
    return h->max;
}

/* Folds h into `n` bins of |x| over [0, amax]; returns amax. */
static double fold_abs(const oq_hist *h, double *abs_bins, int n)
{
    double amax = fmax(fabs(h->min), fabs(h->max));
    memset(abs_bins, 0, (size_t)n * sizeof *abs_bins);
    if (amax == 0)
        return 0;
    for (int i = 0; i < h->nbins; i++) {
        if (h->counts[i] == 0)
            continue;
        double centre = fabs(h->lo + (i + 0.5) * h->width);
        double pos = centre / amax * n; /* past n when bins reach beyond [min, max] */
        abs_bins[pos >= n ? n - 1 : (int)pos] += h->counts[i];
    }
    return amax;
}

/* Smallest t with a fraction q of |x| at or below t. */
static double abs_quantile(const double *bins, int n, double amax, double total, double q)
{
    double target = q * total, acc = 0;
    for (int i = 0; i < n; i++) {
        if (bins[i] > 0 && acc + bins[i] >= target)
            return (i + (target - acc) / bins[i]) * amax / n;
        acc += bins[i];
    }
    return amax;
}

/* KL divergence between P, the first i bins with the mass beyond them
 * (`tail`) folded into bin i-1, and Q, the unclipped bins[0..i) merged into
 * `levels` groups with each group's mass spread evenly over the bins where P
 * is nonzero: what quantizing to `levels` steps with threshold i loses.
 * p and qd are scratch of n entries. */
static double kl_at(const double *bins, int i, double tail, int levels, double *p, double *qd)
{
    memcpy(p, bins, (size_t)i * sizeof *p);
    p[i - 1] += tail;
    for (int g = 0; g < levels; g++) {
        int a = (int)((int64_t)g * i / levels), b = (int)((int64_t)(g + 1) * i / levels);
        double mass = 0;
        int nonzero = 0;
        for (int k = a; k < b; k++) {
            mass += bins[k];
            nonzero += p[k] > 0;
        }
        for (int k = a; k < b; k++)
            qd[k] = p[k] > 0 ? mass / nonzero : 0;
    }
    double sp = 0, sq = 0;
    for (int k = 0; k < i; k++) {
        sp += p[k];
        sq += qd[k];
    }
    double kl = 0;
    for (int k = 0; k < i && sp > 0 && sq > 0; k++) {
        if (p[k] <= 0)
            continue;
        double pk = p[k] / sp, qk = qd[k] / sq;
        kl += pk * log(pk / fmax(qk, 1e-4 * pk)); /* floor where Q lost P's tail bin */
    }
    return kl;
}

/* KL-divergence threshold search over |x| bins, after TensorRT's calibrator:
 * the candidate threshold (in bins, from `levels` to n) of least kl_at. A
 * coarse pass over about 128 evenly spaced candidates, then every candidate
 * around the best coarse one, keeps the cost near O(bins) per tensor. */
static double entropy_threshold(const double *bins, int n, double amax, int levels)
{
    if (n <= levels)
        return amax;
    double *p = malloc((size_t)n * sizeof *p), *qd = malloc((size_t)n * sizeof *qd);
    double *tail = malloc((size_t)(n + 1) * sizeof *tail); /* tail[i] = mass of bins i.. */
    if (!p || !qd || !tail) {
        free(p);
        free(qd);
        free(tail);
        return amax;
    }
    tail[n] = 0;
    for (int i = n - 1; i >= 0; i--)
        tail[i] = tail[i + 1] + bins[i];
    int step = (n - levels) / 128 > 1 ? (n - levels) / 128 : 1, best = n;
    double best_kl = INFINITY;
    for (int i = levels; i <= n; i += step) {
        double kl = kl_at(bins, i, tail[i], levels, p, qd);
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    int lo = best - step > levels ? best - step : levels, hi = best + step < n ? best + step : n;
    for (int i = lo; step > 1 && i <= hi; i++) {
        double kl = kl_at(bins, i, tail[i], levels, p, qd);
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    free(p);
    free(qd);
    free(tail);
    return (double)best * amax / n;
}

/* Expected squared error of quantizing h to [lo, hi] on qmin..qmax (bin centres). */
static double quant_error(const oq_hist *h, double lo, double hi, int qmin, int qmax)
{
    double scale = (hi - lo) / (qmax - qmin);
    if (scale <= 0)
        return INFINITY;
    double zp = nearbyint(qmin - lo / scale), err = 0;
    for (int i = 0; i < h->nbins; i++) {
        if (h->counts[i] == 0)
            continue;
        double x = h->lo + (i + 0.5) * h->width;
        double q = fmin(fmax(nearbyint(x / scale) + zp, qmin), qmax);
        double d = x - (q - zp) * scale;
        err += h->counts[i] * d * d;
    }
    return err;
}

void oq_hist_range(const oq_hist *h, const oq_range_options *opt, double *lo_out, double *hi_out)
{
    double lo = 0, hi = 0;
    if (h->width == 0 || h->count <= 0) {
        *lo_out = *hi_out = 0;
        return;
    }
    int abs_n = h->nbins;
    double *abs_bins = NULL;
    switch (opt->method) {
    case OQ_CALIB_MINMAX:
    case OQ_CALIB_METHOD_COUNT:
        lo = h->min;
        hi = h->max;
        break;
    case OQ_CALIB_PERCENTILE: {
        double q = opt->percentile / 100.0;
        if (opt->symmetric && (abs_bins = malloc((size_t)abs_n * sizeof *abs_bins))) {
            double amax = fold_abs(h, abs_bins, abs_n);
            hi = abs_quantile(abs_bins, abs_n, amax, h->count, q);
            lo = -hi;
        } else {
            lo = h->min < 0 ? hist_quantile(h, 1 - q) : h->min;
            hi = h->max > 0 ? hist_quantile(h, q) : h->max;
        }
        break;
    }
    case OQ_CALIB_ENTROPY: {
        if (!(abs_bins = malloc((size_t)abs_n * sizeof *abs_bins))) {
            lo = h->min;
            hi = h->max;
            break;
        }
        double amax = fold_abs(h, abs_bins, abs_n);
        bool one_sided = h->min >= 0 && !opt->symmetric;
        int levels = one_sided ? (opt->qmax - opt->qmin + 1) : (opt->qmax - opt->qmin + 1) / 2;
        double t = entropy_threshold(abs_bins, abs_n, amax, levels);
        lo = opt->symmetric ? -t : fmax(h->min, -t);
        hi = opt->symmetric ? t : fmin(h->max, t);
        break;
    }
    case OQ_CALIB_MSE: {
        /* coordinate descent: best upper clip for the current lower one, then
         * the reverse; each side tries 100 shrink factors of the observed extreme */
        double amax = fmax(fabs(h->min), fabs(h->max));
        lo = opt->symmetric ? -amax : fmin(h->min, 0);
        hi = opt->symmetric ? amax : fmax(h->max, 0);
        double best = quant_error(h, lo, hi, opt->qmin, opt->qmax);
        for (int round = 0; round < (opt->symmetric ? 1 : 3); round++) {
            for (int side = 0; side < 2; side++) {
                double base = side ? fmin(h->min, 0) : fmax(h->max, 0);
                if (opt->symmetric)
                    base = amax;
                for (int step = 1; step < 100 && base != 0; step++) {
                    double a = 1.0 - step * 0.0099; /* down to 2% of the extreme */
                    double l = opt->symmetric ? -base * a : side ? base * a : lo;
                    double r = opt->symmetric ? base * a : side ? hi : base * a;
                    double e = quant_error(h, l, r, opt->qmin, opt->qmax);
                    if (e < best) {
                        best = e;
                        lo = l;
                        hi = r;
                    }
                }
                if (opt->symmetric)
                    break;
            }
        }
        break;
    }
    }
    free(abs_bins);
    if (opt->symmetric) {
        double a = fmax(fabs(lo), fabs(hi));
        lo = -a;
        hi = a;
    }
    *lo_out = fmin(lo, 0);
    *hi_out = fmax(hi, 0);
}
