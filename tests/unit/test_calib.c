/* test_calib.c: growing histograms, range methods, table JSON round trip and merge. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "onnxq/oq_calib.h"
#include "onnxq/oq_file.h"

/* Deterministic standard normal samples (Box-Muller over a fixed LCG). */
static float normal(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = ((*s >> 11) + 1.0) / 9007199254740993.0;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = (*s >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

static void test_growth(void)
{
    oq_err err = {0};
    oq_hist h;
    CHECK_OK(oq_hist_init(&h, 256, &err), &err);
    float a[1000];
    for (int i = 0; i < 1000; i++)
        a[i] = i / 1000.0f; /* [0, 1) */
    oq_hist_add(&h, a, 1000);
    float far[2] = {-7.5f, 42.0f};
    oq_hist_add(&h, far, 2);
    float bad[3] = {NAN, INFINITY, 0.5f};
    oq_hist_add(&h, bad, 3);
    CHECK(h.min == -7.5 && h.max == 42.0);
    CHECK(h.count == 1003 && h.nonfinite == 2);
    double total = 0;
    for (int i = 0; i < h.nbins; i++)
        total += h.counts[i];
    CHECK(total == 1003); /* re-binning loses no counts */
    CHECK(h.lo <= -7.5 && h.lo + h.nbins * h.width > 42.0);
    oq_hist_release(&h);
    CHECK(oq_hist_init(&h, 3, &err) == OQ_EINVAL);
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

static const char *const bin_impls[] = {"avx512", "avx2", "plain"};

/* Adds a stream of tensors to two histograms sharing one scratch, as the
 * calibrator does: mostly ReLU-like tensors inside the range (the one-pass
 * path), some on the bin edges, some reaching past the range part way
 * through (dropped and redone after growing), some with NaN/Inf. Each add that keeps the grid must add exactly
 * the reference bins of its finite values; the final histograms must be the
 * same bits whatever the kernel; the scratch must end all zeros. */
static void stream_into(const char *impl, oq_hist out[2])
{
    oq_err err = {0};
    CHECK(oq_hist_force_impl(impl));
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

/* Every binning kernel the processor runs against the plain one. */
static void test_kernels_agree(void)
{
    oq_hist want[2];
    stream_into("plain", want);
    for (size_t i = 0; i < sizeof bin_impls / sizeof bin_impls[0]; i++) {
        if (!oq_hist_force_impl(bin_impls[i])) {
            printf("binning kernel %s: not runnable here\n", bin_impls[i]);
            continue;
        }
        oq_hist got[2];
        stream_into(bin_impls[i], got);
        for (int k = 0; k < 2; k++) {
            CHECK(same_hist(&got[k], &want[k]));
            oq_hist_release(&got[k]);
        }
        test_binning_matches_reference(); /* the one-add cases too */
    }
    oq_hist_release(&want[0]);
    oq_hist_release(&want[1]);
}

static void test_methods(void)
{
    oq_err err = {0};
    oq_hist h;
    CHECK_OK(oq_hist_init(&h, 2048, &err), &err);
    uint64_t seed = 1;
    enum { N = 200000 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = normal(&seed);
    x[7] = 60.0f; /* one far outlier */
    oq_hist_add(&h, x, N);
    free(x);
    oq_range_options o = {OQ_CALIB_MINMAX, 99.99, false, 0, 255};
    double lo, hi;
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(hi == 60.0 && lo == h.min);
    o.method = OQ_CALIB_PERCENTILE; /* 99.99th percentile of N(0,1) is about 3.72 */
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(hi > 3.3 && hi < 4.2 && lo < -3.3 && lo > -4.2);
    o.symmetric = true;
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(lo == -hi && hi > 3.5 && hi < 4.5);
    o.method = OQ_CALIB_ENTROPY;
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(hi > 2.0 && hi < 10.0 && lo == -hi); /* clips the outlier, keeps the bulk */
    o.method = OQ_CALIB_MSE;
    o.symmetric = false;
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    /* one outlier in 200k: clipping it costs more than coarser steps do,
     * so the best range narrows only part of the way */
    CHECK(hi > 3.0 && hi < 59.0 && lo < -1.0);
    oq_hist_release(&h);

    /* post-ReLU data: ranges start at 0 */
    CHECK_OK(oq_hist_init(&h, 2048, &err), &err);
    float r[1000];
    for (int i = 0; i < 1000; i++)
        r[i] = (float)(i % 100) / 10.0f;
    oq_hist_add(&h, r, 1000);
    for (int m = 0; m < OQ_CALIB_METHOD_COUNT; m++) {
        oq_range_options ro = {(oq_calib_method)m, 99.9, false, 0, 255};
        CHECK_OK(oq_hist_range(&h, &ro, &lo, &hi, &err), &err);
        CHECK(lo == 0 && hi > 5.0 && hi <= 9.9 + 1e-6);
        if (!(lo == 0 && hi > 5.0 && hi <= 9.9 + 1e-6))
            fprintf(stderr, "  method %s gave [%g, %g]\n", oq_calib_method_name((oq_calib_method)m), lo, hi);
    }
    oq_hist_release(&h);

    /* a constant tensor and an empty histogram */
    CHECK_OK(oq_hist_init(&h, 16, &err), &err);
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(lo == 0 && hi == 0);
    float z[4] = {0, 0, 0, 0};
    oq_hist_add(&h, z, 4);
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(lo == 0 && hi == 0);
    oq_hist_release(&h);
}

static void test_merge(void)
{
    oq_err err = {0};
    oq_hist a, b, all;
    CHECK_OK(oq_hist_init(&a, 512, &err), &err);
    CHECK_OK(oq_hist_init(&b, 512, &err), &err);
    CHECK_OK(oq_hist_init(&all, 512, &err), &err);
    uint64_t seed = 9;
    float x[5000];
    for (int i = 0; i < 5000; i++)
        x[i] = normal(&seed) * (i < 2500 ? 1.0f : 3.0f) + (i < 2500 ? 0.0f : 2.0f);
    oq_hist_add(&a, x, 2500);
    oq_hist_add(&b, x + 2500, 2500);
    oq_hist_add(&all, x, 5000);
    CHECK_OK(oq_hist_merge(&a, &b, &err), &err);
    CHECK(a.min == all.min && a.max == all.max && a.count == all.count);
    oq_range_options o = {OQ_CALIB_PERCENTILE, 99.0, false, 0, 255};
    double l1, h1, l2, h2;
    CHECK_OK(oq_hist_range(&a, &o, &l1, &h1, &err), &err);
    CHECK_OK(oq_hist_range(&all, &o, &l2, &h2, &err), &err);
    double tol = 2 * fmax(a.width, all.width);
    CHECK(fabs(l1 - l2) <= tol && fabs(h1 - h2) <= tol);
    oq_hist_release(&a);
    oq_hist_release(&b);
    oq_hist_release(&all);
}

static void test_table_io(void)
{
    oq_err err = {0};
    oq_range_options o = {OQ_CALIB_ENTROPY, 99.999, false, 0, 255};
    oq_calib_table *t = oq_calib_table_create(64, &o);
    t->entries = calloc(2, sizeof *t->entries);
    t->n_entries = 2;
    memset(t->model_sha256, 'a', 64);
    memset(t->data_sha256, 'b', 64);
    t->samples = 3;
    for (int k = 0; k < 2; k++) {
        t->entries[k].name = strdup(k ? "conv/out" : "input \"x\"");
        CHECK_OK(oq_hist_init(&t->entries[k].hist, 64, &err), &err);
        float v[5] = {-1.5f, 0.25f, 3.0f, 7.0f + k, 0.1f};
        oq_hist_add(&t->entries[k].hist, v, 5);
    }
    CHECK_OK(oq_calib_table_compute_ranges(t, &err), &err);
    char dir[] = "/tmp/oq_calib_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], path2[256];
    snprintf(path, sizeof path, "%s/t.json", dir);
    snprintf(path2, sizeof path2, "%s/t2.json", dir);
    CHECK_OK(oq_calib_table_save(t, path, &err), &err);
    oq_calib_table *u = NULL;
    CHECK_OK(oq_calib_table_load(&u, path, &err), &err);
    if (u) {
        CHECK(u->n_entries == 2 && u->samples == 3 && u->range.method == OQ_CALIB_ENTROPY);
        const oq_calib_entry *e = oq_calib_table_find(u, "conv/out");
        CHECK(e && e->hist.max == 8.0 && e->range[1] == t->entries[1].range[1]);
        /* saving what was loaded gives the same bytes */
        CHECK_OK(oq_calib_table_save(u, path2, &err), &err);
        uint8_t *b1, *b2;
        size_t n1, n2;
        CHECK_OK(oq_read_file(path, &b1, &n1, &err), &err);
        CHECK_OK(oq_read_file(path2, &b2, &n2, &err), &err);
        CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0);
        free(b1);
        free(b2);
        /* merging a table with itself doubles counts, keeps min/max */
        CHECK_OK(oq_calib_table_merge(u, t, &err), &err);
        CHECK(u->samples == 6 && oq_calib_table_find(u, "conv/out")->hist.count == 10);
        memset(u->model_sha256, 'c', 64);
        CHECK(oq_calib_table_merge(u, t, &err) == OQ_EINVAL);
    }
    oq_calib_table_destroy(u);

    /* corrupt tables are refused with a message naming the file */
    const char *bad[] = {"", "[]", "{\"format\":\"onnxq-calibration\",\"version\":1}", "{\"format\":\"x\"}",
                         "{\"format\":\"onnxq-calibration\",\"version\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_OK(oq_write_file_atomic(path, (const uint8_t *)bad[i], strlen(bad[i]), &err), &err);
        u = NULL;
        CHECK(oq_calib_table_load(&u, path, &err) != OQ_OK && u == NULL && strstr(err.msg, path));
    }
    unlink(path);
    unlink(path2);
    rmdir(dir);
    oq_calib_table_destroy(t);
}

int main(void)
{
    test_growth();
    test_kernels_agree();
    test_methods();
    test_merge();
    test_table_io();
    return check_exit("test_calib");
}
