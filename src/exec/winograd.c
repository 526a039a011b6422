/* winograd.c: 3x3 stride-1 convolution by F(4x4, 3x3) (see winograd.h).
 *
 * Tiles are taken in blocks of whole tile rows of one image. For a block,
 * every input channel is transformed into V (36 x cin x slots: one matrix
 * per transform point), the 36 GEMMs give M (36 x cout x slots), and every
 * output channel is transformed back into 4x4 output tiles. A tile row of tw
 * tiles takes tw + 1 slots (the last one is never read back), so that the
 * block's rows line up as one long run the transforms can vectorize: the
 * input rows under each tile row are padded with zeros to 4 (tw + 1) columns
 * and laid end to end, combined by B^T down the columns, split into the six
 * column offsets of the 4-wide tiles (tile u reads columns 4u .. 4u + 5),
 * and combined by B along the tiles; the output transform does the same
 * backwards and interleaves each tile's four columns into the output rows. */
#include "exec/winograd.h"

#include <string.h>

#include "cpu_dispatch.h"
#include "exec/gemm.h"

enum { PTS = 36 }; /* points of the 6x6 transform domain */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

typedef struct wino_plan {
    int64_t cin, cout, ih, iw, oh, ow, ph, pw;
    int64_t th, tw;     /* tile rows and tile columns of an image */
    int64_t ts;         /* slots per tile row: tw + 1 */
    int64_t rows;       /* tile rows per block */
    int64_t blocks;     /* blocks per image */
    int64_t ld;         /* slots per block (rows * ts): row stride of V and M */
    size_t v_floats, m_floats, buf_floats, gemm_floats, a_floats; /* a_floats: one packed U matrix */
} wino_plan;

bool oq_wino_fits(const oq_conv_params *p)
{
    if (p->nsp != 2 || p->group != 1 || p->k[0] != 3 || p->k[1] != 3) return false;
    for (int a = 0; a < 2; a++)
        if (p->stride[a] != 1 || p->dil[a] != 1) return false;
    /* The GEMMs need some depth and width. The 36 transformed weight matrices
     * (4x the direct weights, transformed once and kept) are streamed once
     * per image and used by every tile: from 16 tiles (13x13 outputs) on that
     * pays at any channel count (one core, weights packed ahead, against
     * im2col: 512->512 on 28x28 2.7x, 256->256 on 14x14 1.5x, 512->512 on
     * 14x14 1.1x, 64->256 on 13x13 1.15x faster; 512->512 on 7x7, 4 tiles,
     * 2.6x slower). */
    int64_t tiles = ((p->out[0] + 3) / 4) * ((p->out[1] + 3) / 4);
    return p->cin >= 16 && p->cout >= 16 && tiles >= 16;
}

static wino_plan wino_plan_of(const oq_conv_params *p, int parts)
{
    wino_plan w = {p->cin, p->cout, p->in[0], p->in[1], p->out[0], p->out[1], p->pad0[0], p->pad0[1],
                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    w.th = (w.oh + 3) / 4, w.tw = (w.ow + 3) / 4, w.ts = w.tw + 1;
    /* V and M of a block within about 1 MiB, at least 64 slots when there are */
    int64_t cap = max64(64, ((int64_t)1 << 18) / (PTS * (w.cin + w.cout)));
    w.rows = min64(w.th, max64(1, cap / w.ts));
    if (parts > 1) { /* two blocks per part when the image allows */
        int64_t want = (2 * parts + p->n - 1) / p->n;
        w.rows = max64(1, min64(w.rows, (w.th + want - 1) / want));
    }
    w.blocks = (w.th + w.rows - 1) / w.rows;
    w.ld = w.rows * w.ts;
    w.v_floats = (size_t)(PTS * w.cin * w.ld);
    w.m_floats = (size_t)(PTS * w.cout * w.ld);
    /* input: 6 padded rows of 4 ld and their B^T (with 8 floats more each), the six column offsets
     * (6 ld); output: the A pass along the tiles (24 ld) and the result (16 ld) */
    size_t in_buf = (size_t)(54 * w.ld + 48), out_buf = (size_t)(40 * w.ld);
    w.buf_floats = in_buf > out_buf ? in_buf : out_buf;
    w.gemm_floats = oq_sgemm_ws_floats(w.cout, w.ld, w.cin);
    w.a_floats = oq_sgemm_packed_a_floats(w.cout, w.cin);
    return w;
}

/* ---- weights: U = G g G^T, packed per point ---------------------------------------- */

size_t oq_wino_packed_w_floats(const oq_conv_params *p)
{
    wino_plan w = wino_plan_of(p, 1);
    return PTS * w.a_floats;
}

void oq_wino_pack_w(float *dst, const float *w, const oq_conv_params *p)
{
    static const double G[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    wino_plan pl = wino_plan_of(p, 1);
    memset(dst, 0, PTS * pl.a_floats * sizeof(float)); /* the rows past cout of the last strips */
    for (int64_t co = 0; co < pl.cout; co++)
        for (int64_t ci = 0; ci < pl.cin; ci++) {
            const float *g = w + (co * pl.cin + ci) * 9;
            double t[6][3];
            for (int i = 0; i < 6; i++)
                for (int c = 0; c < 3; c++) t[i][c] = G[i][0] * g[c] + G[i][1] * g[3 + c] + G[i][2] * g[6 + c];
            size_t at = oq_sgemm_packed_a_at(pl.cin, co, ci);
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                    dst[(i * 6 + j) * pl.a_floats + at] = (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

/* ---- the passes ----------------------------------------------------------------------
 * Small loops over one run of floats; every stream written is its own
 * restrict parameter so that the compiler vectorizes them without alias
 * checks. INL: always inlined into the per-level versions below. */
#define INL static inline __attribute__((always_inline)) void

/* B^T down the columns: t_k[c] from d[i * ds + c] (six rows), c < n. */
INL bt_pass(float *restrict t0, float *restrict t1, float *restrict t2, float *restrict t3, float *restrict t4,
            float *restrict t5, const float *restrict d, int64_t ds, int64_t n)
{
    for (int64_t c = 0; c < n; c++) {
        float d0 = d[c], d1 = d[ds + c], d2 = d[2 * ds + c], d3 = d[3 * ds + c], d4 = d[4 * ds + c],
              d5 = d[5 * ds + c];
        t0[c] = 4.0f * d0 - 5.0f * d2 + d4;
        t1[c] = (d3 + d4) - 4.0f * (d1 + d2);
        t2[c] = 4.0f * (d1 - d2) + (d4 - d3);
        t3[c] = 2.0f * (d3 - d1) + (d4 - d2);
        t4[c] = 2.0f * (d1 - d3) + (d4 - d2);
        t5[c] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* The six columns 4u .. 4u + 5 of every tile u < slots of row t. */
INL split_pass(float *restrict x0, float *restrict x1, float *restrict x2, float *restrict x3, float *restrict x4,
               float *restrict x5, const float *restrict t, int64_t slots)
{
    for (int64_t u = 0; u < slots; u++) {
        x0[u] = t[4 * u];
        x1[u] = t[4 * u + 1];
        x2[u] = t[4 * u + 2];
        x3[u] = t[4 * u + 3];
        x4[u] = t[4 * u + 4];
        x5[u] = t[4 * u + 5];
    }
}

/* B along the tiles: v_k[u] from the six columns x[j * xs + u]. */
INL b_pass(float *restrict v0, float *restrict v1, float *restrict v2, float *restrict v3, float *restrict v4,
           float *restrict v5, const float *restrict x, int64_t xs, int64_t slots)
{
    for (int64_t u = 0; u < slots; u++) {
        float x0 = x[u], x1 = x[xs + u], x2 = x[2 * xs + u], x3 = x[3 * xs + u], x4 = x[4 * xs + u],
              x5 = x[5 * xs + u];
        v0[u] = 4.0f * x0 - 5.0f * x2 + x4;
        v1[u] = (x3 + x4) - 4.0f * (x1 + x2);
        v2[u] = 4.0f * (x1 - x2) + (x4 - x3);
        v3[u] = 2.0f * (x3 - x1) + (x4 - x2);
        v4[u] = 2.0f * (x1 - x3) + (x4 - x2);
        v5[u] = 4.0f * x1 - 5.0f * x3 + x5;
    }
}

/* A (or A^T) over six values m[j * ms + u] into four, plus bias. */
INL a_pass(float *restrict s0, float *restrict s1, float *restrict s2, float *restrict s3, const float *restrict m,
           int64_t ms, float bias, int64_t slots)
{
    for (int64_t u = 0; u < slots; u++) {
        float m0 = m[u], m1 = m[ms + u], m2 = m[2 * ms + u], m3 = m[3 * ms + u], m4 = m[4 * ms + u],
              m5 = m[5 * ms + u];
        float a12 = m1 + m2, d12 = m1 - m2, a34 = m3 + m4, d34 = m3 - m4;
        s0[u] = (m0 + a12 + a34) + bias;
        s1[u] = (d12 + 2.0f * d34) + bias;
        s2[u] = (a12 + 4.0f * a34) + bias;
        s3[u] = (d12 + 8.0f * d34 + m5) + bias;
    }
}

/* y[4q + b] = c[b * cs + q] for q < n: four columns interleaved into a row. */
INL interleave_pass(float *restrict y, const float *restrict c, int64_t cs, int64_t n)
{
    for (int64_t q = 0; q < n; q++) {
        y[4 * q] = c[q];
        y[4 * q + 1] = c[cs + q];
        y[4 * q + 2] = c[2 * cs + q];
        y[4 * q + 3] = c[3 * cs + q];
    }
}

/* ---- input transform: V = B^T d B --------------------------------------------------- */

/* Tile rows [ty0, ty0 + nty) of input plane x into v: point x of slot u at
 * v[x * vstride + u]. buf: see wino_plan_of. */
OQ_CLONED(wino_in, (float *restrict v, int64_t vstride, const float *restrict x, const wino_plan *w, int64_t ty0,
                    int64_t nty, float *restrict buf),
          (v, vstride, x, w, ty0, nty, buf))
{
    const int64_t wrow = 4 * w->ts, n = nty * wrow, slots = nty * w->ts, ts = n + 8;
    float *d = buf, *t = d + 6 * n, *e = t + 6 * ts; /* e: the six column offsets, slots floats each */
    int64_t c0 = min64(w->pw, wrow), n_in = max64(0, min64(w->iw, wrow - c0));
    /* d[k]: row k of every tile row's 6 x 4 ts patch strip, tile rows end to end */
    for (int k = 0; k < 6; k++)
        for (int64_t r = 0; r < nty; r++) {
            float *dr = d + k * n + r * wrow;
            int64_t row = 4 * (ty0 + r) - w->ph + k;
            if (row < 0 || row >= w->ih || !n_in) {
                memset(dr, 0, (size_t)wrow * sizeof(float));
                continue;
            }
            memset(dr, 0, (size_t)c0 * sizeof(float));
            memcpy(dr + c0, x + row * w->iw, (size_t)n_in * sizeof(float));
            memset(dr + c0 + n_in, 0, (size_t)(wrow - c0 - n_in) * sizeof(float));
        }
    /* B^T down the columns; 8 zeros after each row of t for the last slot's reads */
    bt_pass(t, t + ts, t + 2 * ts, t + 3 * ts, t + 4 * ts, t + 5 * ts, d, n, n);
    for (int i = 0; i < 6; i++) memset(t + i * ts + n, 0, 8 * sizeof(float));
    /* the six columns of every tile, then B along the tiles */
    for (int i = 0; i < 6; i++) {
        split_pass(e, e + slots, e + 2 * slots, e + 3 * slots, e + 4 * slots, e + 5 * slots, t + i * ts, slots);
        float *v0 = v + (i * 6) * vstride;
        b_pass(v0, v0 + vstride, v0 + 2 * vstride, v0 + 3 * vstride, v0 + 4 * vstride, v0 + 5 * vstride, e, slots,
               slots);
    }
}

/* ---- output transform: Y = A^T M A ---------------------------------------------------- */

/* Tile rows [ty0, ty0 + nty) of output plane y from m (point x of slot u at
 * m[x * mstride + u]) plus bias; ep (may be NULL) runs on each output row
 * once written. buf: see wino_plan_of. */
OQ_CLONED(wino_out, (float *restrict y, const float *restrict m, int64_t mstride, float bias, const wino_plan *w,
                     int64_t ty0, int64_t nty, float *restrict buf, const oq_conv_epilogue *ep),
          (y, m, mstride, bias, w, ty0, nty, buf, ep))
{
    const int64_t slots = nty * w->ts, full = w->ow / 4; /* tiles whose four columns are all inside */
    float *s = buf, *o = buf + 24 * slots;               /* s[(b * 6 + i) * slots + u], o[(a * 4 + b) * slots + u] */
    /* A along the tiles' columns, for each of the six rows i */
    for (int i = 0; i < 6; i++)
        a_pass(s + i * slots, s + (6 + i) * slots, s + (12 + i) * slots, s + (18 + i) * slots,
               m + (i * 6) * mstride, mstride, 0.0f, slots);
    /* A^T down the rows, plus the bias */
    for (int b = 0; b < 4; b++)
        a_pass(o + b * slots, o + (4 + b) * slots, o + (8 + b) * slots, o + (12 + b) * slots, s + (b * 6) * slots,
               slots, bias, slots);
    /* the four columns of each tile into the output rows */
    for (int64_t r = 0; r < nty; r++)
        for (int a = 0; a < 4; a++) {
            int64_t oy = 4 * (ty0 + r) + a;
            if (oy >= w->oh) break;
            float *yr = y + oy * w->ow;
            const float *c = o + (a * 4) * slots + r * w->ts;
            interleave_pass(yr, c, slots, full);
            for (int64_t b = 0; 4 * full + b < w->ow; b++) yr[4 * full + b] = c[b * slots + full];
            if (ep) ep->fn(ep->arg, yr, w->ow);
        }
}

/* ---- driver ------------------------------------------------------------------------- */

size_t oq_wino_ws_floats(const oq_conv_params *p, int parts)
{
    if (parts < 1) parts = 1;
    wino_plan w = wino_plan_of(p, parts);
    return (w.v_floats + w.m_floats + w.buf_floats + w.gemm_floats + 16) * (size_t)parts;
}

typedef struct wino_job {
    wino_plan w;
    float *y;
    const float *x, *wp, *b;
    const oq_conv_epilogue *ep;
} wino_job;

/* Item = (image, block of tile rows). */
static void wino_item(void *arg, int64_t it, float *ws)
{
    const wino_job *j = arg;
    const wino_plan *w = &j->w;
    int64_t n = it / w->blocks, ty0 = (it % w->blocks) * w->rows, nty = min64(w->rows, w->th - ty0);
    int64_t slots = nty * w->ts;
    float *v = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63), *m = v + w->v_floats, *buf = m + w->m_floats;
    float *gws = buf + w->buf_floats;
    const float *x = j->x + n * w->cin * w->ih * w->iw;
    float *y = j->y + n * w->cout * w->oh * w->ow;
    wino_in_fn *in = wino_in_pick();
    wino_out_fn *out = wino_out_pick();
    for (int64_t ci = 0; ci < w->cin; ci++)
        in(v + ci * w->ld, w->cin * w->ld, x + ci * w->ih * w->iw, w, ty0, nty, buf);
    for (int pt = 0; pt < PTS; pt++) {
        oq_sgemm_args ga = {false, false, w->cout, slots, w->cin, 1.0f, 0.0f, NULL, 0,
                            v + pt * w->cin * w->ld, w->ld, m + pt * w->cout * w->ld, w->ld};
        oq_sgemm_packed(&ga, j->wp + pt * w->a_floats, NULL, gws);
    }
    for (int64_t co = 0; co < w->cout; co++)
        out(y + co * w->oh * w->ow, m + co * w->ld, w->cout * w->ld, j->b ? j->b[co] : 0.0f, w, ty0, nty, buf, j->ep);
}

void oq_wino_conv(float *y, const float *x, const float *wp, const float *b, const oq_conv_params *p,
                  oq_kernel_ctx *c, int parts, float *ws, const oq_conv_epilogue *ep)
{
    if (parts < 1) parts = 1;
    wino_job j = {wino_plan_of(p, parts), y, x, wp, b, ep};
    size_t per = oq_wino_ws_floats(p, parts) / (size_t)parts;
    oq_run_parts(c, parts, p->n * j.w.blocks, ws, per, wino_item, &j);
}
