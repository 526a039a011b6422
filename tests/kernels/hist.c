/* hist.c: kernel family hist: the histogram's binning kernels, its
 * extremes scan and the per-channel extremes scan, against plain loops. For one add into a fresh histogram,
 * min/max are the exact extremes of the finite values and every finite
 * value sits in bin (x - lo) / width of the final grid, for lengths around
 * the block and lane sizes; a stream of adds (growing ranges, bin edges,
 * NaN/Inf, one scratch shared by two histograms) gives exactly the reference
 * bins and the same histograms, to the bit, as the plain kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnxq/oq_calib.h"

static int cases; /* run by the current check */

/* Deterministic standard normal samples (Box-Muller over a fixed LCG). */
static float normal(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = ((*s >> 11) + 1.0) / 9007199254740993.0;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = (*s >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

/* The vectorized scan and blocked binning against plain loops: for one add
 * into a fresh histogram, min/max are the exact extremes of the finite
 * values and every finite value sits in bin (x - lo) / width of the final
 * grid, for lengths around the block and lane sizes, with ReLU-like runs of
 * zeros, -0, subnormals, and (the careful path) NaN and infinities. */
static void test_binning_matches_reference(void)
{
    oq_err err = {0};
    uint64_t seed = 7;
    const int lengths[] = {1, 7, 8, 9, 255, 256, 257, 1000, 8191, 20000};
    double *want = malloc(512 * sizeof *want);
    float *x = malloc(20000 * sizeof *x);
    for (int li = 0; li < (int)(sizeof lengths / sizeof lengths[0]); li++) {
        for (int variant = 0; variant < 2; variant++) {
            int n = lengths[li];
            for (int i = 0; i < n; i++) {
                float v = normal(&seed) * 3.0f;
                x[i] = v < 0 && i % 3 ? 0.0f : v; /* mostly ReLU-like */
            }
            if (n > 2) {
                x[n / 2] = -0.0f;
                x[n - 1] = 1e-42f; /* subnormal */
            }
            if (variant && n > 3) {
                x[1] = NAN;
                x[n - 2] = -INFINITY;
            }
            oq_hist h;
            cases++;
            CHECK_OK(oq_hist_init(&h, 512, &err), &err);
            oq_hist_add(&h, x, n);
            double mn = INFINITY, mx = -INFINITY, finite = 0;
            memset(want, 0, 512 * sizeof *want);
            for (int i = 0; i < n; i++) {
                if (!isfinite(x[i]))
                    continue;
                finite++;
                mn = fmin(mn, x[i]);
                mx = fmax(mx, x[i]);
                int k = (int)floor((x[i] - h.lo) * (1.0 / h.width));
                want[k < 0 ? 0 : k > 511 ? 511 : k] += 1;
            }
            CHECK(h.min == mn && h.max == mx);
            CHECK(h.count == finite && h.nonfinite == n - finite);
            int off = 0;
            for (int k = 0; k < 512; k++)
                off += h.counts[k] != want[k];
            if (off)
                fprintf(stderr, "n=%d variant %d: %d bins differ from the reference\n", n, variant, off);
            CHECK(off == 0);
            oq_hist_release(&h);
        }
    }
    free(x);
    free(want);
}

/* Adds a stream of tensors to two histograms sharing one scratch, as the
 * calibrator does: mostly ReLU-like tensors inside the range (the one-pass
 * path), some on the bin edges, some reaching past the range part way
 * through (dropped and redone after growing), some with NaN/Inf. Each add that keeps the grid must add exactly
 * the reference bins of its finite values; the final histograms must be the
 * same bits whatever the kernel; the scratch must end all zeros. */
static void stream_into(oq_hist out[2])
{
    oq_err err = {0};
    const char *impl = oq_hist_impl_name();
    cases++;
    CHECK_OK(oq_hist_init(&out[0], 512, &err), &err);
    CHECK_OK(oq_hist_init(&out[1], 64, &err), &err);
    uint32_t *scratch = calloc(oq_hist_scratch_size(512), sizeof *scratch);
    double *before = malloc(512 * sizeof *before), *want = malloc(512 * sizeof *want);
    enum { MAXN = 5000 };
    float *x = malloc(MAXN * sizeof *x);
    uint64_t seed = 11;
    int kept = 0;
    for (int t = 0; t < 60; t++) {
        oq_hist *h = &out[t % 2];
        int n = 1 + (int)(((uint64_t)t * 2654435761u) % MAXN);
        float scale = t < 30 ? 2.0f : 1.0f + (t % 7);
        for (int i = 0; i < n; i++) {
            float v = normal(&seed) * scale;
            x[i] = v < 0 && (i + t) % 4 ? 0.0f : v;
        }
        if (t % 5 == 2 && h->width > 0) /* on and next to the bin edges, where float and double part */
            for (int i = 0; i < n; i++) {
                float edge = (float)(h->lo + (double)(1 + i / 3 % (h->nbins - 1)) * h->width);
                x[i] = i % 3 == 0 ? edge : nextafterf(edge, i % 3 == 1 ? -INFINITY : INFINITY);
            }
        if (t % 9 == 4)
            x[n * 3 / 4] = 50.0f * (float)t; /* past the range, late in the tensor */
        if (t % 13 == 6)
            x[n / 2] = -0.0f;
        if (t % 17 == 8)
            x[n - 1] = t % 2 ? NAN : INFINITY;
        double lo = h->lo, width = h->width;
        memcpy(before, h->counts, (size_t)h->nbins * sizeof *before);
        oq_hist_add_scratch(h, x, n, scratch);
        if (h->lo != lo || h->width != width)
            continue;
        kept++;
        memset(want, 0, (size_t)h->nbins * sizeof *want);
        for (int i = 0; i < n; i++) {
            if (!isfinite(x[i]))
                continue;
            int k = (int)floor((x[i] - h->lo) * (1.0 / h->width));
            want[k < 0 ? 0 : k >= h->nbins ? h->nbins - 1 : k] += 1;
        }
        int off = 0;
        for (int k = 0; k < h->nbins; k++)
            off += h->counts[k] - before[k] != want[k];
        if (off)
            fprintf(stderr, "%s, tensor %d (n=%d): %d bins differ from the reference\n", impl, t, n, off);
        CHECK(off == 0);
    }
    CHECK(kept > 40); /* most adds keep the grid */
    int dirty = 0;
    for (size_t i = 0; i < oq_hist_scratch_size(512); i++)
        dirty += scratch[i] != 0;
    CHECK(dirty == 0);
    free(x);
    free(want);
    free(before);
    free(scratch);
}

static bool same_hist(const oq_hist *a, const oq_hist *b)
{
    return a->nbins == b->nbins && a->lo == b->lo && a->width == b->width && a->count == b->count &&
           a->nonfinite == b->nonfinite && !memcmp(&a->min, &b->min, sizeof a->min) &&
           !memcmp(&a->max, &b->max, sizeof a->max) &&
           !memcmp(a->counts, b->counts, (size_t)a->nbins * sizeof *a->counts);
}

static void stream_at_baseline(void *arg) { stream_into(arg); }

/* The stream at the current level, and its histograms the same bits as
 * those of the plain kernel (the baseline). */
static void test_stream_agrees(oq_isa level)
{
    oq_hist want[2], got[2];
    at_baseline(level, stream_at_baseline, want);
    stream_into(got);
    for (int k = 0; k < 2; k++) {
        CHECK(same_hist(&got[k], &want[k]));
        oq_hist_release(&got[k]);
        oq_hist_release(&want[k]);
    }
}

/* Per-channel extremes (oq_channel_stats_add) against the plain loop they
 * replace, which keeps the first of equal values: channels with NaN and
 * infinities, no finite value, both zeros in either order, only zeros (+0
 * only too), subnormals; inner sizes around the vector widths; two tensors in
 * turn, so the second folds into what the first left, each add checked.
 * Compared as bits (the sign of a zero extreme shows in the table). */
static void test_channel_extremes(void)
{
    oq_err err = {0};
    const int64_t inners[] = {1, 7, 16, 17, 33, 100};
    uint32_t rs = 99;
    for (int ii = 0; ii < (int)(sizeof inners / sizeof inners[0]); ii++) {
        int64_t inner = inners[ii], dims[4] = {2, 12, 1, inner};
        oq_channel_stats got = {0};
        double want_min[12], want_max[12];
        for (int c = 0; c < 12; c++) {
            want_min[c] = INFINITY;
            want_max[c] = -INFINITY;
        }
        cases++;
        for (int pass = 0; pass < 2; pass++) {
            oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, 4, dims, &err);
            CHECK(t != NULL);
            if (!t)
                break;
            float *x = t->data;
            for (int64_t o = 0; o < 2; o++)
                for (int c = 0; c < 12; c++) {
                    float *p = x + (o * 12 + c) * inner;
                    for (int64_t k = 0; k < inner; k++)
                        p[k] = krand_float(&rs, -2.0f, 3.0f);
                    int64_t a = (int64_t)(krand(&rs) % (uint32_t)inner), b = inner - 1 - a;
                    int kind = (c + pass) % 12; /* 9..11: plain random values */
                    for (int64_t k = 0; k < inner; k++) {
                        if (kind == 1)
                            p[k] = k % 2 ? NAN : INFINITY; /* no finite value */
                        else if (kind == 2 || kind == 3)
                            p[k] = (k == a) == (kind == 2) ? -0.0f : 0.0f; /* only zeros, -0 once or +0 once */
                        else if (kind == 4 || kind == 6)
                            p[k] = fabsf(p[k]);
                        else if (kind == 5)
                            p[k] = -fabsf(p[k]);
                        else if (kind == 8)
                            p[k] = 0.0f; /* a ReLU channel that stayed off */
                    }
                    if (kind == 0) {
                        p[a] = NAN;
                        p[b] = -INFINITY;
                    } else if (kind == 4 || kind == 5) { /* both zeros at the extreme, in either order */
                        p[a] = kind == 4 ? 0.0f : -0.0f;
                        p[b] = kind == 4 ? -0.0f : 0.0f;
                    } else if (kind == 6) {
                        p[a] = -0.0f;
                    } else if (kind == 7) {
                        p[a] = 1e-42f;
                        p[b] = -1e-42f;
                    }
                    for (int64_t k = 0; k < inner; k++) /* the reference: the plain loop */
                        if (isfinite(p[k])) {
                            want_min[c] = p[k] < want_min[c] ? p[k] : want_min[c];
                            want_max[c] = p[k] > want_max[c] ? p[k] : want_max[c];
                        }
                }
            CHECK_OK(oq_channel_stats_add(&got, t, &err), &err);
            oq_tensor_destroy(t);
            CHECK(got.n == 12);
            int off = 0;
            for (int c = 0; got.n == 12 && c < 12; c++)
                off += memcmp(&got.min[c], &want_min[c], sizeof want_min[c]) != 0 ||
                       memcmp(&got.max[c], &want_max[c], sizeof want_max[c]) != 0;
            if (off)
                fprintf(stderr, "inner %lld, tensor %d: %d channels' extremes differ from the plain loop\n",
                        (long long)inner, pass, off);
            CHECK(off == 0);
        }
        oq_channel_stats_release(&got);
    }
}

static int check_hist(oq_isa level)
{
    cases = 0;
    test_binning_matches_reference();
    test_stream_agrees(level);
    test_channel_extremes();
    return cases;
}

/* The binning kernels name the levels (the extremes scan has a version at
 * AVX2, which has a binning kernel too). */
const kfamily kf_hist = {"hist", oq_hist_variant, check_hist};
