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
    /* a one-value integer range leaves entropy no levels to search: the
     * whole range, without reading outside the bins (found by fuzzing) */
    o = (oq_range_options){OQ_CALIB_ENTROPY, 99.99, false, 6, 6};
    CHECK_OK(oq_hist_range(&h, &o, &lo, &hi, &err), &err);
    CHECK(lo == h.min && hi == 60.0);
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
        CHECK_OK(oq_calib_table_merge(u, t, "u", "t", &err), &err);
        CHECK(u->samples == 6 && oq_calib_table_find(u, "conv/out")->hist.count == 10);
        memset(u->model_sha256, 'c', 64);
        CHECK(oq_calib_table_merge(u, t, "u", "t", &err) == OQ_EINVAL);
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
    test_methods();
    test_merge();
    test_table_io();
    return check_exit("test_calib");
}
