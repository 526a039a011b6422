/* gemm.c: kernel families sgemm and conv. sgemm: the packed SGEMM (each
 * micro-kernel) against its triple-loop oracle on sizes of 1, odd sizes,
 * sizes off the 6 x 16/32 tile and past every cache block, transposes,
 * strides, alpha/beta, A and B packed ahead, the skinny (few-row) kernels;
 * the batched split for determinism. conv: fast conv (GEMM paths, the depthwise and grouped
 * loops compiled per level, depthwise 16 channels at a time, 32-channel register tiles) against conv_ref (groups, depthwise, strides, dilation, pads,
 * 1-D..3-D) and ConvTranspose against a direct scatter loop. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "exec/conv.h"
#include "exec/gemm.h"

static int cases; /* run by the current check */

static uint32_t rng = 12345u;

/* Uniform in [-1, 1). */
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / (float)(1u << 23) - 1.0f;
}

static float *rand_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; p && i < n; i++) p[i] = frand();
    return p;
}

/* ---- GEMM ----------------------------------------------------------------------- */

/* Elements of got (m x n, row stride ldc) farther from ref than a few ulps
 * of the sum of |terms| in bound (the worst-case float summation error). */
static int count_off(const float *ref, const float *got, const float *bound, int64_t m, int64_t n, int64_t k,
                     int64_t ldc)
{
    int bad = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float r = ref[i * ldc + j], v = got[i * ldc + j];
            float tol = 4.0f * FLT_EPSILON * ((float)(k + 2) * bound[i * ldc + j] + fabsf(r)) + 1e-30f;
            if (!(fabsf(r - v) <= tol)) bad++;
        }
    return bad;
}

/* A row bias given to the packed products (A packed, and A and B packed;
 * rows split after the first strip as the executor's tiles are) must give
 * the bits of C filled with the bias, then the plain product with beta 1:
 * a bias left out, added twice (once per K slice) or taken from the wrong
 * row shows. g has alpha 1 and beta 0; pa, pb hold its packed A and B. */
static void check_row_bias(const oq_sgemm_args *g, const float *pa, const float *pb, float *ws)
{
    int64_t m = g->m, n = g->n, ldc = g->ldc;
    float *bias = rand_buf((size_t)m), *want = malloc((size_t)(m * ldc) * sizeof(float));
    float *got = malloc((size_t)(m * ldc) * sizeof(float));
    if (!bias || !want || !got) {
        CHECK(!"out of memory");
        goto done;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) want[i * ldc + j] = got[i * ldc + j] = bias[i];
    oq_sgemm_args gf = *g;
    gf.beta = 1.0f, gf.c = want;
    oq_sgemm(&gf, ws);
    int64_t r0 = m > OQ_SGEMM_PACK_ROWS ? OQ_SGEMM_PACK_ROWS : 0;
    oq_sgemm_args top = *g, rest = *g;
    top.m = r0, top.c = got;
    rest.m = m - r0, rest.c = got + r0 * ldc;
    for (int packed_b = 0; packed_b < 2; packed_b++) {
        if (packed_b) {
            if (r0) oq_sgemm_packed_ab(&top, pa, pb, bias, ws);
            oq_sgemm_packed_ab(&rest, pa + r0 * g->k, pb, bias + r0, ws);
        } else {
            if (r0) oq_sgemm_packed(&top, pa, bias, ws);
            oq_sgemm_packed(&rest, pa + r0 * g->k, bias + r0, ws);
        }
        bool same = memcmp(want, got, (size_t)(m * ldc) * sizeof(float)) == 0;
        if (!same)
            fprintf(stderr, "gemm row bias (B %s) m=%lld n=%lld k=%lld: differs from C filled with the bias\n",
                    packed_b ? "packed" : "in place", (long long)m, (long long)n, (long long)g->k);
        CHECK(same);
    }
done:
    free(bias), free(want), free(got);
}

/* Runs fast and ref on the same problem; each element must be within a few
 * ulps of the sum of |terms| (the worst-case float summation error). */
static void check_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta, int64_t pad)
{
    int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = rand_buf((size_t)(arows * lda)), *b = rand_buf((size_t)(brows * ldb));
    float *c0 = rand_buf((size_t)(m * ldc)), *c1 = malloc((size_t)(m * ldc + 1) * sizeof(float));
    float *aa = malloc((size_t)(arows * lda + 1) * sizeof(float)), *ab = malloc((size_t)(brows * ldb + 1) * sizeof(float));
    float *bound = malloc((size_t)(m * ldc + 1) * sizeof(float));
    float *ws = malloc(oq_sgemm_ws_floats(m, n, k) * sizeof(float));
    float *cinit = malloc((size_t)(m * ldc + 1) * sizeof(float));
    cases++;
    if (!a || !b || !c0 || !c1 || !aa || !ab || !bound || !ws || !cinit) {
        CHECK(!"out of memory");
        goto done;
    }
    memcpy(c1, c0, (size_t)(m * ldc) * sizeof(float));
    memcpy(cinit, c0, (size_t)(m * ldc) * sizeof(float));
    for (int64_t i = 0; i < arows * lda; i++) aa[i] = fabsf(a[i]);
    for (int64_t i = 0; i < brows * ldb; i++) ab[i] = fabsf(b[i]);
    oq_sgemm_args g = {ta, tb, m, n, k, alpha, beta, a, lda, b, ldb, c0, ldc};
    oq_sgemm_ref(&g);
    oq_sgemm_args gb = {ta, tb, m, n, k, fabsf(alpha), 0.0f, aa, lda, ab, ldb, bound, ldc};
    oq_sgemm_ref(&gb);
    g.c = c1;
    oq_sgemm(&g, ws);
    int bad = count_off(c0, c1, bound, m, n, k, ldc);
    if (bad)
        fprintf(stderr, "gemm ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g beta=%g pad=%lld: %d bad\n", ta, tb,
                (long long)m, (long long)n, (long long)k, alpha, beta, (long long)pad, bad);
    CHECK(bad == 0);
    /* Padding columns of C are never written. */
    for (int64_t i = 0; i < m && pad; i++) CHECK(c1[i * ldc + n] == c0[i * ldc + n]);
    /* The skinny kernel (few rows, B in place) against the same oracle. */
    if (m <= OQ_SGEMM_SKINNY_M) {
        float *cs = malloc((size_t)(m * ldc + 1) * sizeof(float));
        CHECK(cs != NULL);
        if (cs) {
            memcpy(cs, cinit, (size_t)(m * ldc) * sizeof(float));
            g.c = cs;
            oq_sgemm_skinny(&g);
            bad = count_off(c0, cs, bound, m, n, k, ldc);
            if (bad)
                fprintf(stderr, "skinny gemm ta=%d tb=%d m=%lld n=%lld k=%lld: %d bad\n", ta, tb, (long long)m,
                        (long long)n, (long long)k, bad);
            CHECK(bad == 0);
            for (int64_t i = 0; i < m && pad; i++) CHECK(cs[i * ldc + n] == c0[i * ldc + n]);
        }
        free(cs);
    }
    /* B packed once (aligned, as the executor's cache keeps it) gives the same bits. */
    size_t pbn = (oq_sgemm_packed_b_floats(k, n) * sizeof(float) + 63) / 64 * 64;
    float *pb = aligned_alloc(64, pbn), *cb = malloc((size_t)(m * ldc + 1) * sizeof(float));
    CHECK(pb && cb);
    if (pb && cb) {
        oq_sgemm_pack_b(pb, &g);
        memcpy(cb, cinit, (size_t)(m * ldc) * sizeof(float));
        g.c = cb;
        oq_sgemm_packed_b(&g, pb, ws);
        CHECK(memcmp(c1, cb, (size_t)(m * ldc) * sizeof(float)) == 0);
    }
    free(cb);
    /* A packed once gives the same bits, whole or from a later row block on. */
    float *pa = malloc(oq_sgemm_packed_a_floats(m, k) * sizeof(float));
    float *c2 = malloc((size_t)(m * ldc + 1) * sizeof(float));
    if (pa && c2) {
        memcpy(c2, c0, (size_t)(m * ldc) * sizeof(float)); /* beta reads C: both start from the same C */
        memcpy(c1, c0, (size_t)(m * ldc) * sizeof(float));
        g.c = c1;
        oq_sgemm(&g, ws);
        oq_sgemm_pack_a(pa, &g);
        int64_t r0 = m > OQ_SGEMM_PACK_ROWS ? OQ_SGEMM_PACK_ROWS : 0;
        oq_sgemm_args top = g, rest = g;
        top.m = r0, top.c = c2;
        rest.m = m - r0, rest.c = c2 + r0 * ldc;
        if (r0) oq_sgemm_packed(&top, pa, NULL, ws);
        oq_sgemm_packed(&rest, pa + r0 * k, NULL, ws);
        CHECK(memcmp(c1, c2, (size_t)(m * ldc) * sizeof(float)) == 0);
        if (alpha == 1.0f && beta == 0.0f && pb) check_row_bias(&g, pa, pb, ws);
    } else {
        CHECK(!"out of memory");
    }
    free(pa), free(c2), free(pb);
done:
    free(a), free(b), free(c0), free(c1), free(aa), free(ab), free(bound), free(ws), free(cinit);
}

static void test_gemm_sizes(void)
{
    static const int64_t mn[] = {1, 2, 5, 6, 7, 16, 17, 33, 67};
    static const int64_t ks[] = {1, 3, 16, 67, 300};
    int nmn = (int)(sizeof mn / sizeof mn[0]), nk = (int)(sizeof ks / sizeof ks[0]);
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < nmn; i++)
            for (int j = 0; j < nmn; j++)
                for (int q = 0; q < nk; q++) {
                    int v = (i + j + q + t) % 3;
                    float alpha = v == 0 ? 1.0f : v == 1 ? 0.5f : -2.0f, beta = v == 0 ? 0.0f : v == 1 ? 1.0f : 0.25f;
                    check_gemm(t & 1, t & 2, mn[i], mn[j], ks[q], alpha, beta, (i + q) % 2 ? 3 : 0);
                }
    /* Crosses every blocking boundary (MC, KC and NC). */
    check_gemm(false, false, 131, 2100, 261, 1.0f, 0.5f, 1);
    check_gemm(true, true, 125, 2061, 513, 1.5f, 0.0f, 0);
    check_gemm(false, false, 125, 700, 513, 1.0f, 0.0f, 2); /* a row bias over two K slices */
}

/* k == 0 scales C by beta (and beta == 0 clears it, even NaN). */
static void test_gemm_empty_k(void)
{
    float c[4] = {1.0f, 2.0f, NAN, 4.0f}, ws[64];
    cases++;
    oq_sgemm_args g = {false, false, 2, 2, 0, 1.0f, 0.0f, c, 1, c, 2, c, 2};
    oq_sgemm(&g, ws);
    CHECK(c[0] == 0.0f && c[2] == 0.0f);
    float d[2] = {1.0f, 3.0f};
    oq_sgemm_args h = {false, false, 1, 2, 0, 1.0f, 2.0f, d, 1, d, 2, d, 2};
    oq_sgemm(&h, ws);
    CHECK(d[0] == 2.0f && d[1] == 6.0f);
}

/* A batch split over several parts gives bit-identical results to one part. */
static void test_gemm_batch_split(void)
{
    int64_t batch = 3, m = 70, n = 300, k = 45;
    float *a = rand_buf((size_t)(batch * m * k)), *b = rand_buf((size_t)(k * n));
    float *c1 = malloc((size_t)(batch * m * n) * sizeof(float)), *c2 = malloc((size_t)(batch * m * n) * sizeof(float));
    int64_t a_off[3] = {0, m * k, 2 * m * k}, c_off[3] = {0, m * n, 2 * m * n};
    oq_sgemm_args g = {false, false, m, n, k, 1.0f, 0.0f, a, k, b, n, c1, n};
    size_t w1 = oq_sgemm_batch_ws_floats(&g, batch, 1), w7 = oq_sgemm_batch_ws_floats(&g, batch, 7);
    float *ws = malloc((w1 > w7 ? w1 : w7) * sizeof(float));
    cases++;
    if (!a || !b || !c1 || !c2 || !ws) {
        CHECK(!"out of memory");
        goto done;
    }
    oq_sgemm_batch(NULL, 1, &g, batch, a_off, NULL, c_off, NULL, ws);
    g.c = c2;
    oq_sgemm_batch(NULL, 7, &g, batch, a_off, NULL, c_off, NULL, ws);
    CHECK(memcmp(c1, c2, (size_t)(batch * m * n) * sizeof(float)) == 0);
    /* the same with B packed ahead (the executor's constant weights) */
    size_t pbn = (oq_sgemm_packed_b_floats(k, n) * sizeof(float) + 63) / 64 * 64;
    float *pb = aligned_alloc(64, pbn);
    CHECK(pb != NULL);
    if (pb) {
        oq_sgemm_pack_b(pb, &g);
        oq_sgemm_batch(NULL, 7, &g, batch, a_off, NULL, c_off, pb, ws);
        CHECK(memcmp(c1, c2, (size_t)(batch * m * n) * sizeof(float)) == 0);
    }
    free(pb);
    /* skinny products (3 rows) split by columns over 1 and 7 parts */
    oq_sgemm_args s = {false, true, 3, n, k, 1.0f, 0.0f, a, k, a, k, c1, n};
    s.n = m * batch / 2;
    oq_sgemm_batch(NULL, 1, &s, 1, NULL, NULL, NULL, NULL, ws);
    s.c = c2;
    oq_sgemm_batch(NULL, 7, &s, 1, NULL, NULL, NULL, NULL, ws);
    CHECK(memcmp(c1, c2, (size_t)(3 * s.n) * sizeof(float)) == 0);
done:
    free(a), free(b), free(c1), free(c2), free(ws);
}

/* ---- Conv ----------------------------------------------------------------------- */

typedef struct conv_case {
    int nsp;
    int64_t n, cin, cout, group;
    int64_t in[3], k[3], s[3], d[3], p0[3], p1[3];
} conv_case;

static oq_conv_params case_params(const conv_case *cc, bool transpose)
{
    oq_conv_params p = {0};
    p.nsp = cc->nsp, p.n = cc->n, p.cin = cc->cin, p.cout = cc->cout, p.group = cc->group;
    for (int a = 0; a < cc->nsp; a++) {
        p.in[a] = cc->in[a], p.k[a] = cc->k[a], p.stride[a] = cc->s[a], p.dil[a] = cc->d[a];
        p.pad0[a] = cc->p0[a], p.pad1[a] = cc->p1[a];
        int64_t ek = cc->d[a] * (cc->k[a] - 1) + 1;
        p.out[a] = transpose ? cc->s[a] * (cc->in[a] - 1) + ek - cc->p0[a] - cc->p1[a]
                             : (cc->in[a] + cc->p0[a] + cc->p1[a] - ek) / cc->s[a] + 1;
    }
    return p;
}

static int64_t spatial(int d, const int64_t *v)
{
    int64_t s = 1;
    for (int a = 0; a < d; a++) s *= v[a];
    return s;
}

/* Normalized mean squared error of got against ref. */
static double nmse(const float *ref, const float *got, int64_t n)
{
    double num = 0.0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)ref[i] - got[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
    }
    return num / den;
}

static const conv_case conv_cases[] = {
    /* nsp n cin cout g   in           k          s          d          p0         p1 */
    {2, 1, 3, 8, 1, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},          /* 3x3 same */
    {2, 2, 16, 24, 1, {7, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},         /* 1x1 direct GEMM */
    {2, 1, 8, 1100, 1, {9, 9}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},        /* 1x1 direct, output cut in tiles */
    {2, 1, 5, 7, 1, {13, 10}, {3, 2}, {2, 3}, {1, 1}, {1, 0}, {2, 1}},         /* strides, asymmetric pads */
    {2, 1, 4, 6, 2, {12, 12}, {3, 3}, {1, 2}, {2, 1}, {2, 1}, {2, 0}},         /* groups, dilation */
    {2, 2, 8, 8, 8, {15, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},         /* depthwise */
    {2, 1, 6, 6, 6, {16, 17}, {5, 5}, {2, 2}, {1, 1}, {2, 1}, {2, 2}},         /* depthwise stride 2 */
    {2, 1, 4, 8, 4, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}},           /* depthwise x2, dilated */
    {2, 1, 4, 4, 4, {20, 37}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},        /* depthwise 3x3/2, wide rows */
    {2, 1, 3, 3, 3, {11, 45}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},        /* depthwise 5x5/1, wide rows */
    {2, 1, 2, 2, 2, {9, 50}, {5, 5}, {2, 2}, {1, 1}, {2, 1}, {1, 2}},         /* depthwise 5x5/2, uneven pads */
    {2, 1, 3, 3, 3, {14, 33}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},        /* depthwise, no padding */
    {2, 1, 3, 3, 3, {15, 30}, {3, 3}, {1, 1}, {2, 1}, {2, 1}, {2, 1}},        /* depthwise, rows dilated only */
    {2, 1, 2, 2, 2, {6, 2}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},          /* depthwise, no interior column */
    {2, 2, 6, 6, 6, {7, 7}, {7, 7}, {1, 1}, {1, 1}, {3, 3}, {3, 3}},           /* depthwise 7x7 on 7x7 planes */
    {2, 1, 5, 5, 5, {17, 75}, {7, 7}, {1, 1}, {1, 1}, {3, 3}, {3, 3}},         /* depthwise 7x7, rows of 5 vectors */
    {2, 1, 3, 3, 3, {20, 23}, {3, 5}, {3, 2}, {1, 2}, {1, 2}, {0, 1}},         /* depthwise strides 3x2, dilated */
    {2, 1, 2, 2, 2, {9, 40}, {1, 4}, {2, 3}, {1, 1}, {0, 2}, {0, 2}},          /* depthwise 1x4, column stride 3 */
    {2, 2, 16, 24, 4, {15, 20}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},       /* grouped direct, 6 per group */
    {2, 1, 20, 40, 5, {7, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},         /* grouped 3x3/2, rows of 4 */
    {2, 1, 16, 16, 2, {9, 35}, {5, 3}, {1, 2}, {1, 1}, {2, 1}, {2, 1}},        /* grouped 5x3, column stride 2 */
    {2, 1, 12, 24, 3, {10, 10}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},       /* grouped 1x1 */
    {2, 1, 64, 64, 2, {6, 9}, {3, 3}, {1, 1}, {2, 1}, {2, 1}, {2, 1}},         /* grouped, 32 per group, dilated */
    {2, 1, 4, 66, 2, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},          /* grouped, 33 per group: GEMM */
    {1, 2, 6, 9, 3, {33}, {5}, {2}, {2}, {2}, {3}},                            /* 1-D grouped */
    {2, 1, 3, 5, 1, {4, 4}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},           /* kernel wider than input */
    {2, 1, 64, 70, 1, {21, 19}, {3, 3}, {1, 1}, {1, 2}, {1, 2}, {1, 2}},       /* many column tiles (dilated: not Winograd) */
    {2, 1, 96, 200, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},        /* tiny plane: M split */
    {2, 1, 40, 36, 1, {17, 17}, {1, 7}, {1, 1}, {1, 1}, {0, 3}, {0, 3}},       /* 1x7: rows span strips */
    {2, 2, 40, 20, 1, {17, 17}, {7, 1}, {1, 1}, {1, 1}, {3, 0}, {3, 0}},       /* 7x1 */
    {2, 1, 24, 30, 1, {35, 35}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, {0, 0}},       /* 3x3/2, no padding */
    {2, 1, 12, 16, 1, {35, 33}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},       /* 5x5, many column tiles */
    {2, 1, 9, 8, 1, {30, 31}, {3, 3}, {3, 2}, {2, 3}, {1, 4}, {0, 2}},         /* strides 3x2, dilated, odd pads */
    {2, 1, 24, 64, 1, {13, 13}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},       /* 7x7 outputs, M split */
    {2, 1, 40, 160, 1, {13, 13}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},      /* 7x7 outputs, 160 channels: swapped GEMM */
    {2, 2, 20, 256, 2, {9, 10}, {3, 3}, {2, 1}, {1, 1}, {1, 1}, {0, 0}},       /* swapped, groups, stride 2 */
    {2, 1, 150, 64, 1, {17, 17}, {1, 7}, {1, 1}, {1, 1}, {0, 3}, {0, 3}},      /* 1x7, several column tiles */
    {2, 2, 16, 64, 2, {13, 13}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},       /* 13x13 planes, groups */
    {2, 1, 8, 64, 1, {15, 16}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {0, 0}},        /* stride 2, pads on one side */
    {2, 1, 3, 8, 1, {8, 70}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},          /* rows longer than a strip */
    {1, 2, 4, 6, 2, {29}, {4}, {3}, {2}, {3}, {1}},                            /* 1-D */
    {1, 1, 5, 5, 5, {40}, {7}, {1}, {1}, {3}, {3}},                            /* 1-D depthwise */
    {1, 1, 4, 4, 4, {150}, {3}, {1}, {1}, {1}, {1}},                           /* 1-D depthwise, long row */
    {2, 1, 2, 2, 2, {3, 90}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},          /* depthwise, 3 long rows */
    {2, 2, 40, 40, 40, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},     /* depthwise, 16 channels at a time, 2.5 blocks */
    {2, 1, 24, 24, 24, {15, 13}, {5, 5}, {2, 2}, {1, 1}, {2, 1}, {1, 2}},     /* the same, 5x5/2, uneven pads */
    {2, 1, 17, 17, 17, {70, 66}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},     /* the same, 35x33 outputs (strided) */
    {2, 1, 32, 32, 32, {9, 11}, {3, 3}, {1, 2}, {2, 1}, {2, 0}, {2, 1}},      /* the same, dilated rows, stride 2 columns */
    {2, 1, 20, 20, 20, {9, 27}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},      /* the same, rows of 14 outputs (stride 2) */
    {2, 1, 18, 18, 18, {6, 13}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},      /* the same, rows of 13 outputs, 5x5 */
    {2, 1, 128, 32, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},        /* register tiles: 2 rows of 7, then 1 */
    {2, 2, 12, 80, 1, {5, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},         /* register tiles, a half-used block */
    {2, 1, 8, 32, 1, {9, 31}, {1, 5}, {1, 1}, {1, 2}, {0, 4}, {0, 4}},         /* register tiles, rows of 11 + 11 + 9 */
    {2, 1, 16, 64, 1, {5, 3}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},         /* register tiles of 4 rows of 3, then 1 */
    {2, 1, 6, 32, 1, {6, 5}, {2, 3}, {1, 1}, {2, 1}, {0, 1}, {1, 2}},          /* register tiles, dilated, uneven pads */
    {2, 1, 200, 32, 1, {20, 60}, {3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}},      /* register tiles, bands of one row */
    {3, 1, 3, 4, 1, {5, 6, 7}, {3, 2, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1}, {1, 1, 2}}, /* 3-D */
    {3, 1, 4, 4, 4, {4, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, /* 3-D depthwise */
};

static void square_in_place(void *arg, float *y, int64_t n)
{
    (void)arg;
    for (int64_t i = 0; i < n; i++) y[i] *= y[i];
}

/* The steps an epilogue may describe (oq_conv_epilogue.step), computed here
 * by plain scalar code: what fuse.c's steps compute. */
static float act_ref(const oq_ew_step *s, float x)
{
    switch (s->kind) {
    case OQ_EW_RELU: return x > 0.0f ? x : 0.0f;
    case OQ_EW_CLIP: {
        float t = x < s->k0 ? s->k0 : x;
        return t > s->k1 ? s->k1 : t;
    }
    case OQ_EW_HARD_SWISH: {
        float t = x / 6.0f + 0.5f;
        t = t < 1.0f ? t : 1.0f;
        return x * (t > 0.0f ? t : 0.0f);
    }
    default: return x;
    }
}

static void act_in_place(void *arg, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = act_ref(arg, y[i]);
}

/* An epilogue that names its step (Relu, Clip, HardSwish) gives the bits of
 * the step applied to the plain output, whether the kernel computes it in
 * registers (the 16-channel depthwise kernel) or calls fn; one input is a
 * NaN, whose outputs Relu makes 0 and Clip and HardSwish keep NaN. */
static int check_conv_act(const oq_conv_params *p, const float *x, int64_t xs, const float *w, const float *wp,
                          const float *b, float *ws, int64_t ys)
{
    static const oq_ew_step steps[] = {
        {OQ_EW_RELU, 0, -1, 0.0f, 0.0f}, {OQ_EW_CLIP, 0, -1, -0.25f, 0.5f}, {OQ_EW_HARD_SWISH, 0, -1, 0.0f, 0.0f}};
    float *xn = malloc((size_t)xs * sizeof(float)), *plain = malloc((size_t)ys * sizeof(float));
    float *y = malloc((size_t)ys * sizeof(float));
    int bad = 0;
    if (!xn || !plain || !y) {
        bad = 1;
        goto done;
    }
    memcpy(xn, x, (size_t)xs * sizeof(float));
    xn[xs / 2] = NAN;
    oq_conv_fast_packed(plain, xn, w, wp, b, p, NULL, 5, ws, NULL);
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        oq_conv_epilogue ep = {act_in_place, (void *)&steps[k], &steps[k]};
        oq_conv_fast_packed(y, xn, w, wp, b, p, NULL, 5, ws, &ep);
        for (int64_t i = 0; i < ys; i++) {
            float want = act_ref(&steps[k], plain[i]);
            bad += memcmp(&y[i], &want, sizeof(float)) != 0;
        }
    }
done:
    free(xn), free(plain), free(y);
    return bad;
}

static void test_conv(void)
{
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++) {
        const conv_case *cc = &conv_cases[ci];
        oq_conv_params p = case_params(cc, false);
        int64_t xs = p.n * p.cin * spatial(p.nsp, p.in), ys = p.n * p.cout * spatial(p.nsp, p.out);
        int64_t wsz = p.cout * (p.cin / p.group) * spatial(p.nsp, p.k);
        float *x = rand_buf((size_t)xs), *w = rand_buf((size_t)wsz), *b = rand_buf((size_t)p.cout);
        float *yr = malloc((size_t)ys * sizeof(float)), *y1 = malloc((size_t)ys * sizeof(float));
        float *y5 = malloc((size_t)ys * sizeof(float));
        size_t w1 = oq_conv_ws_floats(&p, 1), w5 = oq_conv_ws_floats(&p, 5);
        float *ws = malloc((w1 > w5 ? w1 : w5) * sizeof(float));
        cases++;
        if (!x || !w || !b || !yr || !y1 || !y5 || !ws) {
            CHECK(!"out of memory");
        } else {
            const float *bias = ci % 2 ? NULL : b;
            oq_conv_ref(yr, x, w, bias, &p);
            oq_conv_fast(y1, x, w, bias, &p, NULL, 1, ws);
            oq_conv_fast(y5, x, w, bias, &p, NULL, 5, ws);
            double e = nmse(yr, y1, ys);
            if (e > 1e-12) fprintf(stderr, "conv case %zu: nmse %g\n", ci, e);
            CHECK(e <= 1e-12);
            CHECK(memcmp(y1, y5, (size_t)ys * sizeof(float)) == 0);
            /* weights packed ahead (as the executor keeps them) give the same bits */
            float *wp = malloc((oq_conv_packed_w_floats(&p) + 1) * sizeof(float));
            CHECK(wp != NULL);
            if (wp) {
                oq_conv_pack_w(wp, w, &p);
                oq_conv_fast_packed(y5, x, w, wp, bias, &p, NULL, 5, ws, NULL);
                CHECK(memcmp(y1, y5, (size_t)ys * sizeof(float)) == 0);
                /* an epilogue sees every output exactly once, after it is final */
                oq_conv_epilogue ep = {square_in_place, NULL, NULL};
                oq_conv_fast_packed(y5, x, w, wp, bias, &p, NULL, 5, ws, &ep);
                int bad = 0;
                for (int64_t i = 0; i < ys; i++) bad += y5[i] != y1[i] * y1[i];
                CHECK(bad == 0);
                CHECK(check_conv_act(&p, x, xs, w, wp, bias, ws, ys) == 0);
            }
            free(wp);
        }
        free(x), free(w), free(b), free(yr), free(y1), free(y5), free(ws);
    }
}

/* Transposed conv by direct scatter: every input element times every tap adds
 * into the output position it maps to. */
static void convt_direct(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p)
{
    int d = p->nsp;
    int64_t cg = p->cin / p->group, mg = p->cout / p->group;
    int64_t is = spatial(d, p->in), os = spatial(d, p->out), ks = spatial(d, p->k);
    for (int64_t i = 0; i < p->n * p->cout; i++)
        for (int64_t t = 0; t < os; t++) y[i * os + t] = b ? b[i % p->cout] : 0.0f;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t ci = 0; ci < p->cin; ci++)
            for (int64_t j = 0; j < is; j++)
                for (int64_t m = 0; m < mg; m++)
                    for (int64_t t = 0; t < ks; t++) {
                        int64_t g = ci / cg, co = g * mg + m, off = 0, jr = j, tr = t, pos[3], kk[3];
                        for (int a = d - 1; a >= 0; a--) pos[a] = jr % p->in[a], jr /= p->in[a];
                        for (int a = d - 1; a >= 0; a--) kk[a] = tr % p->k[a], tr /= p->k[a];
                        bool inside = true;
                        for (int a = 0; a < d; a++) {
                            int64_t o = pos[a] * p->stride[a] - p->pad0[a] + kk[a] * p->dil[a];
                            inside = inside && o >= 0 && o < p->out[a];
                            off = off * p->out[a] + o;
                        }
                        if (inside)
                            y[(n * p->cout + co) * os + off] += x[(n * p->cin + ci) * is + j] * w[(ci * mg + m) * ks + t];
                    }
}

static void test_conv_transpose(void)
{
    static const conv_case tcases[] = {
        {2, 1, 4, 6, 1, {5, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 0}, {1, 1}},
        {2, 2, 6, 4, 2, {4, 3}, {2, 3}, {2, 1}, {1, 2}, {0, 1}, {0, 1}},
        {1, 1, 3, 9, 3, {11}, {4}, {3}, {1}, {1}, {2}},
        {3, 1, 2, 3, 1, {3, 4, 2}, {2, 3, 2}, {2, 1, 2}, {1, 1, 1}, {0, 1, 0}, {0, 0, 1}},
    };
    for (size_t ci = 0; ci < sizeof tcases / sizeof tcases[0]; ci++) {
        oq_conv_params p = case_params(&tcases[ci], true);
        int64_t xs = p.n * p.cin * spatial(p.nsp, p.in), ys = p.n * p.cout * spatial(p.nsp, p.out);
        int64_t wsz = p.cin * (p.cout / p.group) * spatial(p.nsp, p.k);
        float *x = rand_buf((size_t)xs), *w = rand_buf((size_t)wsz), *b = rand_buf((size_t)p.cout);
        float *yr = malloc((size_t)ys * sizeof(float)), *y1 = malloc((size_t)ys * sizeof(float));
        float *y3 = malloc((size_t)ys * sizeof(float));
        size_t w1 = oq_conv_transpose_ws_floats(&p, 1), w3 = oq_conv_transpose_ws_floats(&p, 3);
        float *ws = malloc((w1 > w3 ? w1 : w3) * sizeof(float));
        cases++;
        if (!x || !w || !b || !yr || !y1 || !y3 || !ws) {
            CHECK(!"out of memory");
        } else {
            convt_direct(yr, x, w, b, &p);
            oq_conv_transpose(y1, x, w, b, &p, NULL, 1, ws);
            oq_conv_transpose(y3, x, w, b, &p, NULL, 3, ws);
            double e = nmse(yr, y1, ys);
            if (e > 1e-12) fprintf(stderr, "convtranspose case %zu: nmse %g\n", ci, e);
            CHECK(e <= 1e-12);
            CHECK(memcmp(y1, y3, (size_t)ys * sizeof(float)) == 0);
        }
        free(x), free(w), free(b), free(yr), free(y1), free(y3), free(ws);
    }
}

static int check_sgemm(oq_isa level)
{
    (void)level;
    cases = 0;
    rng = 12345u;
    test_gemm_sizes();
    test_gemm_empty_k();
    test_gemm_batch_split();
    return cases;
}

static int check_conv(oq_isa level)
{
    (void)level;
    cases = 0;
    rng = 12345u;
    test_conv();
    test_conv_transpose();
    return cases;
}

/* conv runs the depthwise and grouped loops and the GEMM micro-kernels: a level is new
 * when either has a version there. */
static const char *conv_variant(oq_isa isa)
{
    return clone_variant(isa) || oq_sgemm_variant(isa) ? oq_isa_name(isa) : NULL;
}

const kfamily kf_sgemm = {"sgemm", oq_sgemm_variant, check_sgemm};
const kfamily kf_conv = {"conv", conv_variant, check_conv};
