/* winograd.c: kernel family winograd. The F(4x4, 3x3) convolution
 * (src/exec/winograd.c: its transforms compiled per level, its GEMMs the
 * sgemm micro-kernels) against a direct sum in double, on shapes that take
 * the Winograd path (checked: a case that does not fit would test nothing):
 * planes whose sides are not multiples of 4, asymmetric, zero and wide pads,
 * batches, several blocks of tile rows. Bound: each output within
 * WINO_ULPS float ulps of its magnitude sum |b| + sum |w x| (the direct
 * float sum over cin * 9 taps is bounded by about cin * 9 ulps of the same
 * quantity; the transforms' coefficients, up to 5 on the input side and 8
 * on the output side, enlarge the rounding of the intermediate sums). Also:
 * the same bits whatever the number of parts, weights packed ahead, and an
 * epilogue that sees every output once. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "exec/conv.h"
#include "exec/gemm.h"
#include "exec/winograd.h"

/* The bound, in float ulps of each output's magnitude sum (see above). */
#define WINO_ULPS 64.0

static int cases;

typedef struct wino_case {
    int64_t n, cin, cout, ih, iw, p0[2], p1[2];
} wino_case;

static const wino_case wcases[] = {
    /* n cin cout   ih   iw   pad0     pad1 */
    {1, 16, 16, 24, 24, {1, 1}, {1, 1}},    /* 36 tiles */
    {1, 48, 64, 13, 13, {1, 1}, {1, 1}},    /* 16 tiles: the fewest that fit, 3 of 4 outputs in the last tiles */
    {1, 256, 96, 14, 14, {1, 1}, {1, 1}},   /* deep and few tiles */
    {2, 19, 23, 27, 30, {1, 0}, {2, 1}},    /* batch, odd channels, asymmetric pads, 28 x 29 out */
    {1, 32, 40, 30, 33, {0, 0}, {0, 0}},    /* no padding, 28 x 31 out */
    {1, 16, 70, 10, 130, {1, 1}, {1, 1}},   /* few tile rows, many tiles per row */
    {1, 64, 64, 56, 56, {1, 1}, {1, 1}},    /* several blocks of tile rows */
    {1, 24, 17, 21, 22, {2, 2}, {2, 2}},    /* pads of 2: a border of zero rows and columns */
    {1, 130, 33, 26, 27, {1, 1}, {1, 1}},   /* deep: more input channels than a strip */
};

static oq_conv_params wcase_params(const wino_case *wc)
{
    oq_conv_params p = {0};
    p.nsp = 2, p.n = wc->n, p.cin = wc->cin, p.cout = wc->cout, p.group = 1;
    p.in[0] = wc->ih, p.in[1] = wc->iw;
    for (int a = 0; a < 2; a++) {
        p.k[a] = 3, p.stride[a] = 1, p.dil[a] = 1, p.pad0[a] = wc->p0[a], p.pad1[a] = wc->p1[a];
        p.out[a] = p.in[a] + p.pad0[a] + p.pad1[a] - 2;
    }
    return p;
}

/* y = conv(x, w) + b in double, and the magnitude sum |b| + sum |w x| of each output. */
static void conv_double(double *y, double *mag, const float *x, const float *w, const float *b,
                        const oq_conv_params *p)
{
    int64_t oh = p->out[0], ow = p->out[1], ih = p->in[0], iw = p->in[1];
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t co = 0; co < p->cout; co++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double s = b ? b[co] : 0.0, m = b ? fabs((double)b[co]) : 0.0;
                    for (int64_t ci = 0; ci < p->cin; ci++)
                        for (int ky = 0; ky < 3; ky++) {
                            int64_t iy = oy + ky - p->pad0[0];
                            if (iy < 0 || iy >= ih) continue;
                            for (int kx = 0; kx < 3; kx++) {
                                int64_t ix = ox + kx - p->pad0[1];
                                if (ix < 0 || ix >= iw) continue;
                                double t = (double)w[((co * p->cin + ci) * 3 + ky) * 3 + kx] *
                                           x[((n * p->cin + ci) * ih + iy) * iw + ix];
                                s += t, m += fabs(t);
                            }
                        }
                    size_t at = (size_t)(((n * p->cout + co) * oh + oy) * ow + ox);
                    y[at] = s, mag[at] = m;
                }
}

static void negate_in_place(void *arg, float *y, int64_t n)
{
    (void)arg;
    for (int64_t i = 0; i < n; i++) y[i] = -y[i];
}

static void wino_case_run(const wino_case *wc, uint32_t *st)
{
    oq_conv_params p = wcase_params(wc);
    cases++;
    CHECK(oq_wino_fits(&p));
    size_t xs = (size_t)(p.n * p.cin * p.in[0] * p.in[1]), ys = (size_t)(p.n * p.cout * p.out[0] * p.out[1]);
    size_t wsz = (size_t)(p.cout * p.cin * 9);
    size_t ws1 = oq_conv_ws_floats(&p, 1), ws5 = oq_conv_ws_floats(&p, 5);
    float *x = malloc(xs * sizeof(float)), *w = malloc(wsz * sizeof(float)), *b = malloc((size_t)p.cout * sizeof(float));
    float *y1 = malloc(ys * sizeof(float)), *y5 = malloc(ys * sizeof(float));
    float *ws = malloc((ws1 > ws5 ? ws1 : ws5) * sizeof(float));
    float *wp = malloc((oq_conv_packed_w_floats(&p) + 1) * sizeof(float));
    double *yd = malloc(ys * sizeof(double)), *mag = malloc(ys * sizeof(double));
    if (!x || !w || !b || !y1 || !y5 || !ws || !wp || !yd || !mag) {
        CHECK(!"out of memory");
        goto done;
    }
    /* activations after a ReLU (half zeros) and weights of mixed sign */
    for (size_t i = 0; i < xs; i++) x[i] = fmaxf(0.0f, krand_float(st, -1.0f, 1.0f));
    for (size_t i = 0; i < wsz; i++) w[i] = krand_float(st, -0.3f, 0.3f);
    for (int64_t i = 0; i < p.cout; i++) b[i] = krand_float(st, -0.5f, 0.5f);
    conv_double(yd, mag, x, w, b, &p);
    oq_conv_fast(y1, x, w, b, &p, NULL, 1, ws);
    double worst = 0.0;
    int bad = 0;
    for (size_t i = 0; i < ys; i++) {
        double e = fabs((double)y1[i] - yd[i]) / (mag[i] * FLT_EPSILON + 1e-30);
        if (e > worst) worst = e;
        bad += !(e <= WINO_ULPS);
    }
    if (bad) fprintf(stderr, "winograd %lldx%lld cin %lld: %d outputs off, worst %.1f ulps of |w x|\n",
                     (long long)p.out[0], (long long)p.out[1], (long long)p.cin, bad, worst);
    CHECK(bad == 0);
    /* the same bits over 5 parts, from weights packed ahead, and through an epilogue */
    oq_conv_fast(y5, x, w, b, &p, NULL, 5, ws);
    CHECK(memcmp(y1, y5, ys * sizeof(float)) == 0);
    oq_conv_pack_w(wp, w, &p);
    oq_conv_fast_packed(y5, x, w, wp, b, &p, NULL, 3, ws, NULL);
    CHECK(memcmp(y1, y5, ys * sizeof(float)) == 0);
    oq_conv_epilogue ep = {negate_in_place, NULL, NULL};
    oq_conv_fast_packed(y5, x, w, wp, NULL, &p, NULL, 2, ws, &ep);
    oq_conv_fast(y1, x, w, NULL, &p, NULL, 1, ws);
    int off = 0;
    for (size_t i = 0; i < ys; i++) off += y5[i] != -y1[i];
    CHECK(off == 0);
done:
    free(x), free(w), free(b), free(y1), free(y5), free(ws), free(wp), free(yd), free(mag);
}

static int check_winograd(oq_isa level)
{
    (void)level;
    cases = 0;
    uint32_t st = 0x9e3779b9u;
    for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) wino_case_run(&wcases[i], &st);
    /* shapes left to the other paths */
    oq_conv_params p = wcase_params(&wcases[0]);
    p.in[0] = p.in[1] = 12, p.out[0] = p.out[1] = 12; /* 9 tiles */
    CHECK(!oq_wino_fits(&p));
    p = wcase_params(&wcases[0]);
    p.stride[0] = 2, p.out[0] = (p.in[0] + 2 - 3) / 2 + 1;
    CHECK(!oq_wino_fits(&p));
    p = wcase_params(&wcases[0]);
    p.cin = 8;
    CHECK(!oq_wino_fits(&p));
    cases++;
    return cases;
}

/* The transforms are compiled per level and the GEMMs have micro-kernels per
 * level: a level is new when either has a version there. */
static const char *wino_variant(oq_isa isa)
{
    return clone_variant(isa) || oq_sgemm_variant(isa) ? oq_isa_name(isa) : NULL;
}

const kfamily kf_winograd = {"winograd", wino_variant, check_winograd};
