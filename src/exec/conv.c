/* conv.c: float convolution (reference, depthwise direct, im2col + GEMM) and
 * transposed convolution (GEMM + col2im). */
#include "exec/conv.h"

#include <string.h>

#include "exec/gemm.h"
#include "cpu_dispatch.h"

/* ---- shared helpers ----------------------------------------------------------- */

static int64_t prod(int n, const int64_t *d)
{
    int64_t s = 1;
    for (int i = 0; i < n; i++) s *= d[i];
    return s;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Range [*lo, *hi) of t in [0, run) with 0 <= base + t*s < len. */
static void valid_run(int64_t base, int64_t s, int64_t len, int64_t run, int64_t *lo, int64_t *hi)
{
    int64_t l = base >= 0 ? 0 : (-base + s - 1) / s;
    int64_t h = base >= len ? 0 : (len - base + s - 1) / s;
    h = min64(h, run);
    *hi = h;
    *lo = min64(l, h);
}

/* Geometry linking a position grid to an image: image coordinate along dim a
 * is pos[a]*s[a] - pad0[a] + k[a]*dil[a]. Conv: positions are outputs, the
 * image is x. ConvTranspose: positions are inputs, the image is y. */
typedef struct geom {
    int d;
    const int64_t *img;  /* [d] image dims */
    const int64_t *pos;  /* [d] position grid dims */
    const int64_t *k, *s, *dil, *pad0;
    int64_t img_size;    /* prod(img) */
    int64_t ksize;       /* prod(k) */
} geom;

static geom conv_geom(const oq_conv_params *p, bool transpose)
{
    geom g = {p->nsp, transpose ? p->out : p->in, transpose ? p->in : p->out, p->k, p->stride, p->dil, p->pad0, 0, 0};
    g.img_size = prod(g.d, g.img);
    g.ksize = prod(g.d, g.k);
    return g;
}

/* Column rows are (channel, tap) pairs, columns are positions [j0, j0+nt).
 * gather (im2col): col[r][j] = image value or 0 outside.
 * scatter (col2im): image value += col[r][j] where inside.
 * img holds ch channels of g->img_size; col has row stride ldc. */
static void cols_move(const geom *g, float *col, int64_t ldc, float *img, int64_t ch, int64_t j0, int64_t nt,
                      bool scatter)
{
    int d = g->d, last = d - 1;
    for (int64_t r = 0; r < ch * g->ksize; r++) {
        int64_t kk[OQ_MAX_RANK], o[OQ_MAX_RANK];
        for (int64_t a = last, rem = r % g->ksize; a >= 0; a--) {
            kk[a] = rem % g->k[a];
            rem /= g->k[a];
        }
        for (int64_t a = last, rem = j0; a >= 0; a--) {
            o[a] = rem % g->pos[a];
            rem /= g->pos[a];
        }
        float *im = img + (r / g->ksize) * g->img_size;
        float *cr = col + r * ldc;
        int64_t s = g->s[last];
        for (int64_t j = 0; j < nt;) {
            int64_t run = min64(g->pos[last] - o[last], nt - j);
            int64_t off = 0;
            bool inside = true;
            for (int a = 0; a < last; a++) {
                int64_t i = o[a] * g->s[a] - g->pad0[a] + kk[a] * g->dil[a];
                inside = inside && i >= 0 && i < g->img[a];
                off = off * g->img[a] + i;
            }
            off *= g->img[last];
            int64_t base = o[last] * s - g->pad0[last] + kk[last] * g->dil[last];
            int64_t lo = 0, hi = 0;
            if (inside) valid_run(base, s, g->img[last], run, &lo, &hi);
            float *c = cr + j;
            int64_t i0 = off + base; /* image index at t = 0 (valid only for t in [lo, hi)) */
            if (scatter) {
                for (int64_t t = lo; t < hi; t++) im[i0 + t * s] += c[t];
            } else {
                for (int64_t t = 0; t < lo; t++) c[t] = 0.0f;
                if (s == 1 && hi > lo)
                    memcpy(c + lo, im + i0 + lo, (size_t)(hi - lo) * sizeof(float));
                else
                    for (int64_t t = lo; t < hi; t++) c[t] = im[i0 + t * s];
                for (int64_t t = hi; t < run; t++) c[t] = 0.0f;
            }
            j += run;
            o[last] = 0;
            for (int a = last - 1; a >= 0; a--) {
                if (++o[a] < g->pos[a]) break;
                o[a] = 0;
            }
        }
    }
}

/* ---- reference ----------------------------------------------------------------- */

void oq_conv_ref(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p)
{
    int d = p->nsp;
    int64_t cg = p->cin / p->group, mg = p->cout / p->group;
    int64_t in_size = prod(d, p->in), out_size = prod(d, p->out), ksize = prod(d, p->k);
    for (int64_t n = 0; n < p->n; n++) {
        for (int64_t co = 0; co < p->cout; co++) {
            int64_t g = co / mg;
            for (int64_t j = 0; j < out_size; j++) {
                int64_t o[OQ_MAX_RANK];
                int64_t rem = j;
                for (int a = d - 1; a >= 0; a--) {
                    o[a] = rem % p->out[a];
                    rem /= p->out[a];
                }
                double acc = b ? b[co] : 0.0;
                for (int64_t ci = 0; ci < cg; ci++) {
                    const float *xp = x + (n * p->cin + g * cg + ci) * in_size;
                    const float *wp = w + (co * cg + ci) * ksize;
                    for (int64_t t = 0; t < ksize; t++) {
                        int64_t off = 0, kr = t, kk[OQ_MAX_RANK];
                        for (int a = d - 1; a >= 0; a--) {
                            kk[a] = kr % p->k[a];
                            kr /= p->k[a];
                        }
                        bool inside = true;
                        for (int a = 0; a < d; a++) {
                            int64_t i = o[a] * p->stride[a] - p->pad0[a] + kk[a] * p->dil[a];
                            inside = inside && i >= 0 && i < p->in[a];
                            off = off * p->in[a] + i;
                        }
                        if (inside) acc += (double)xp[off] * wp[t];
                    }
                }
                y[(n * p->cout + co) * out_size + j] = (float)acc;
            }
        }
    }
}

/* ---- fast conv ------------------------------------------------------------------ */

/* 2-D view of a 1-D or 2-D conv: (h, w) dims with h = 1 for 1-D. */
typedef struct view2 {
    int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
} view2;

static view2 view_2d(const oq_conv_params *p)
{
    int a = p->nsp - 1; /* the last (w) axis */
    view2 v = {1, p->in[a], 1, p->out[a], 1, p->k[a], 1, p->stride[a], 1, p->dil[a], 0, p->pad0[a]};
    if (p->nsp == 2) {
        v.ih = p->in[0], v.oh = p->out[0], v.kh = p->k[0];
        v.sh = p->stride[0], v.dh = p->dil[0], v.ph = p->pad0[0];
    }
    return v;
}

/* y[i] += sum_t w[t] * x[i*S + t] for i < n: the taps of one kernel row over
 * the interior of one output row, with K and S known at compile time so the
 * loop over i vectorizes. Terms are added in tap order, as in dw_edge. */
static inline __attribute__((always_inline)) void dw_row(float *restrict y, const float *restrict x,
                                                         const float *restrict w, int64_t n, int K, int S)
{
    for (int64_t i = 0; i < n; i++) {
        float a = y[i];
        for (int t = 0; t < K; t++) a += w[t] * x[i * S + t];
        y[i] = a;
    }
}

/* All K kernel rows at once: y[i] += sum_r sum_t w[r*K + t] * xs[r][i*S + t],
 * added in the same order as K calls of dw_row, with one load and store of
 * y instead of K. */
static inline __attribute__((always_inline)) void dw_rows(float *restrict y, const float *const *xs,
                                                          const float *restrict w, int64_t n, int K, int S)
{
    for (int64_t i = 0; i < n; i++) {
        float a = y[i];
        for (int r = 0; r < K; r++)
            for (int t = 0; t < K; t++) a += w[r * K + t] * xs[r][i * S + t];
        y[i] = a;
    }
}

/* The same for output columns [o0, o1) of any geometry, skipping taps outside the row. */
static void dw_edge(float *restrict y, const float *restrict x, const float *restrict w, int64_t o0, int64_t o1,
                    const view2 *v)
{
    for (int64_t o = o0; o < o1; o++) {
        float a = y[o];
        for (int64_t t = 0; t < v->kw; t++) {
            int64_t ix = o * v->sw - v->pw + t * v->dw;
            if (ix >= 0 && ix < v->iw) a += w[t] * x[ix];
        }
        y[o] = a;
    }
}

/* One output plane of a depthwise conv: y (oh, ow) from x (ih, iw) and the
 * (kh, kw) taps of one filter. Each output row starts at the bias and adds
 * one kernel row at a time; columns whose taps all fall inside the input
 * (the interior) take the unchecked loop, specialized for the usual 3- and
 * 5-wide kernels at stride 1 and 2. The sum order is the same everywhere. */
OQ_CLONED(dw_plane, (float *restrict y, const float *restrict x, const float *restrict w, float bias, const view2 *v),
          (y, x, w, bias, v))
{
    /* interior: o*sw - pw >= 0 and o*sw - pw + (kw-1)*dw <= iw - 1 */
    int64_t c0 = min64((v->pw + v->sw - 1) / v->sw, v->ow);
    int64_t last = v->iw - 1 + v->pw - (v->kw - 1) * v->dw;
    int64_t c1 = last < 0 ? c0 : max64(c0, min64(last / v->sw + 1, v->ow));
    int spec = v->dw == 1 && (v->sw == 1 || v->sw == 2) && (v->kw == 3 || v->kw == 5) ? (int)(v->kw * 2 + v->sw) : 0;
    for (int64_t oh = 0; oh < v->oh; oh++) {
        float *yr = y + oh * v->ow;
        for (int64_t o = 0; o < v->ow; o++) yr[o] = bias;
        int64_t ih0 = oh * v->sh - v->ph, ihl = ih0 + (v->kh - 1) * v->dh;
        if (spec && v->kh == v->kw && ih0 >= 0 && ihl < v->ih && c1 > c0) {
            /* every kernel row inside the input: the interior in one pass, then the edges */
            const float *xs[5];
            for (int64_t kh = 0; kh < v->kh; kh++) xs[kh] = x + (ih0 + kh * v->dh) * v->iw + c0 * v->sw - v->pw;
            switch (spec) {
            case 7: dw_rows(yr + c0, xs, w, c1 - c0, 3, 1); break;
            case 8: dw_rows(yr + c0, xs, w, c1 - c0, 3, 2); break;
            case 11: dw_rows(yr + c0, xs, w, c1 - c0, 5, 1); break;
            default: dw_rows(yr + c0, xs, w, c1 - c0, 5, 2); break;
            }
            for (int64_t kh = 0; kh < v->kh; kh++) {
                const float *xr = x + (ih0 + kh * v->dh) * v->iw, *wr = w + kh * v->kw;
                dw_edge(yr, xr, wr, 0, c0, v);
                dw_edge(yr, xr, wr, c1, v->ow, v);
            }
            continue;
        }
        for (int64_t kh = 0; kh < v->kh; kh++) {
            int64_t ih = oh * v->sh - v->ph + kh * v->dh;
            if (ih < 0 || ih >= v->ih) continue;
            const float *xr = x + ih * v->iw, *wr = w + kh * v->kw;
            const float *xi = xr + c0 * v->sw - v->pw; /* input under the first interior column */
            dw_edge(yr, xr, wr, 0, c0, v);
            switch (spec) {
            case 7: dw_row(yr + c0, xi, wr, c1 - c0, 3, 1); break;
            case 8: dw_row(yr + c0, xi, wr, c1 - c0, 3, 2); break;
            case 11: dw_row(yr + c0, xi, wr, c1 - c0, 5, 1); break;
            case 12: dw_row(yr + c0, xi, wr, c1 - c0, 5, 2); break;
            default: dw_edge(yr, xr, wr, c0, c1, v); break;
            }
            dw_edge(yr, xr, wr, c1, v->ow, v);
        }
    }
}

typedef struct conv_job {
    float *y;
    const float *x, *w, *b;
    const oq_conv_params *p;
    geom geo;
    int64_t cg, mg;            /* input / output channels per group */
    int64_t kdim;              /* cg * ksize: GEMM depth */
    int64_t in_size, out_size; /* spatial element counts */
    bool direct;               /* 1x1, stride 1, no pad: x is already the column matrix */
    int64_t ntile, nt_count;   /* output positions per tile, tiles per plane */
    int64_t mtile, mt_count;   /* output channels per tile, tiles per group */
    view2 v;                   /* depthwise only */
    size_t gws;                /* GEMM workspace floats per part; columns follow */
    const float *wp;           /* weights packed for the GEMM: group g at wp + g * wp_group */
    size_t wp_group;
    const oq_conv_epilogue *ep; /* NULL or applied to each finished tile */
} conv_job;

static void conv_dw_item(void *arg, int64_t i, float *ws)
{
    (void)ws;
    const conv_job *j = arg;
    int64_t n = i / j->p->cout, co = i % j->p->cout, ci = co / j->mg;
    dw_plane(j->y + i * j->out_size, j->x + (n * j->p->cin + ci) * j->in_size, j->w + co * j->geo.ksize,
             j->b ? j->b[co] : 0.0f, &j->v);
    if (j->ep) j->ep->fn(j->ep->arg, j->y + i * j->out_size, j->out_size);
}

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* Floats of the packed column tile and its row buffer (see im2col_packed),
 * plus slack to align the tile to 64 bytes. */
static size_t im2col_ws_floats(const conv_job *j)
{
    return (size_t)(j->kdim * round_up(j->ntile, OQ_SGEMM_NR_MAX) + j->geo.ksize * j->ntile) + 16;
}

/* im2col of columns [j0, j0+nt) of group image xg straight into the packed
 * B layout of oq_sgemm_packed_ab (strips of nr columns, zero past nt): each
 * channel's kernel taps are gathered into rowbuf (ksize x nt, small enough
 * for L1), then copied strip by strip, so the column tile is written once. */
static void im2col_packed(const conv_job *j, float *restrict dst, float *restrict rowbuf, const float *xg,
                          int64_t j0, int64_t nt, int nr)
{
    int64_t ks = j->geo.ksize, strips = (nt + nr - 1) / nr;
    for (int64_t ch = 0; ch < j->cg; ch++) {
        cols_move(&j->geo, rowbuf, nt, (float *)xg + ch * j->in_size, 1, j0, nt, false);
        for (int64_t t = 0; t < ks; t++) {
            const float *src = rowbuf + t * nt;
            float *d = dst + (ch * ks + t) * nr;
            for (int64_t s = 0; s < strips; s++, d += j->kdim * nr) {
                int64_t cols = min64(nr, nt - s * nr);
                if (cols == 32 && nr == 32) { /* fixed sizes: copied inline, not by a call */
                    memcpy(d, src + s * nr, 32 * sizeof(float));
                } else if (cols == 16 && nr == 16) {
                    memcpy(d, src + s * nr, 16 * sizeof(float));
                } else {
                    memcpy(d, src + s * nr, (size_t)cols * sizeof(float));
                    for (int64_t c = cols; c < nr; c++) d[c] = 0.0f;
                }
            }
        }
    }
}

/* Item = (batch, group, m tile, n tile). */
static void conv_gemm_item(void *arg, int64_t i, float *ws)
{
    const conv_job *j = arg;
    const oq_conv_params *p = j->p;
    int64_t nt_i = i % j->nt_count, rest = i / j->nt_count;
    int64_t mt_i = rest % j->mt_count;
    rest /= j->mt_count;
    int64_t g = rest % p->group, n = rest / p->group;
    int64_t j0 = nt_i * j->ntile, nt = min64(j->ntile, j->out_size - j0);
    int64_t m0 = mt_i * j->mtile, mt = min64(j->mtile, j->mg - m0);
    if (nt <= 0 || mt <= 0) return;

    const float *xg = j->x + (n * p->cin + g * j->cg) * j->in_size;
    float *yg = j->y + (n * p->cout + g * j->mg + m0) * j->out_size + j0;
    float *gemm_ws = ws;
    oq_sgemm_args ga = {false, false, mt, nt, j->kdim, 1.0f, 0.0f,
                        j->w + (g * j->mg + m0) * j->kdim, j->kdim, NULL, 0, yg, j->out_size};
    const float *cols = NULL; /* im2col: the packed column tile */
    if (j->direct) {
        ga.b = xg + j0;
        ga.ldb = j->in_size;
    } else {
        float *packed = (float *)(((uintptr_t)(ws + j->gws) + 63) & ~(uintptr_t)63);
        float *rowbuf = packed + j->kdim * round_up(j->ntile, OQ_SGEMM_NR_MAX);
        im2col_packed(j, packed, rowbuf, xg, j0, nt, oq_sgemm_nr());
        cols = packed;
    }
    if (j->b) {
        for (int64_t m = 0; m < mt; m++) {
            float bv = j->b[g * j->mg + m0 + m];
            float *yr = yg + m * j->out_size;
            for (int64_t t = 0; t < nt; t++) yr[t] = bv;
        }
        ga.beta = 1.0f;
    }
    const float *wpg = j->wp + (size_t)g * j->wp_group + m0 * j->kdim;
    if (cols)
        oq_sgemm_packed_ab(&ga, wpg, cols, gemm_ws);
    else
        oq_sgemm_packed(&ga, wpg, gemm_ws);
    if (j->ep)
        for (int64_t m = 0; m < mt; m++) j->ep->fn(j->ep->arg, yg + m * j->out_size, nt);
}

static bool conv_is_dw(const oq_conv_params *p)
{
    return p->cin == p->group && p->nsp <= 2;
}

static bool conv_is_direct(const oq_conv_params *p)
{
    for (int a = 0; a < p->nsp; a++)
        if (p->k[a] != 1 || p->stride[a] != 1 || p->pad0[a] != 0 || p->in[a] != p->out[a]) return false;
    return true;
}

/* Fills the tiling fields of j for `parts` parts. */
static void conv_plan(conv_job *j, const oq_conv_params *p, int parts)
{
    memset(j, 0, sizeof *j);
    j->p = p;
    j->geo = conv_geom(p, false);
    j->cg = p->cin / p->group;
    j->mg = p->cout / p->group;
    j->kdim = j->cg * j->geo.ksize;
    j->in_size = prod(p->nsp, p->in);
    j->out_size = prod(p->nsp, p->out);
    j->direct = conv_is_direct(p);
    /* im2col: column tiles of about 64K floats (a quarter MiB) stay in L2.
     * Direct: whole planes, cut only to give every part two tiles. */
    int64_t nt = max64(64, ((int64_t)1 << 16) / max64(1, j->kdim));
    if (j->direct) {
        int64_t planes = p->n * p->group, want = parts > 1 ? (2 * parts + planes - 1) / planes : 1;
        nt = max64(64, (j->out_size + want - 1) / want);
    }
    nt = round_up(nt, OQ_SGEMM_NR_MAX); /* whole B strips */
    j->ntile = min64(nt, max64(1, j->out_size));
    j->nt_count = (j->out_size + j->ntile - 1) / j->ntile;
    j->mtile = max64(1, j->mg);
    j->mt_count = 1;
    int64_t items = p->n * p->group * j->nt_count;
    if (items < 2 * (int64_t)parts && j->mg >= 48) {
        /* Too few tiles to keep every part busy: split output channels too. */
        int64_t want = (2 * parts + items - 1) / items;
        int64_t mt = (j->mg + want - 1) / want;
        mt = (mt + 23) / 24 * 24;
        j->mtile = min64(mt, j->mg);
        j->mt_count = (j->mg + j->mtile - 1) / j->mtile;
    }
    j->gws = oq_sgemm_ws_floats(j->mtile, j->ntile, j->kdim);
    j->wp_group = oq_sgemm_packed_a_floats(j->mg, j->kdim);
}

size_t oq_conv_ws_floats(const oq_conv_params *p, int parts)
{
    if (parts < 1) parts = 1;
    if (conv_is_dw(p)) return 1;
    conv_job j;
    conv_plan(&j, p, parts);
    size_t per = j.gws + (j.direct ? 0 : im2col_ws_floats(&j));
    return j.wp_group * (size_t)p->group + per * (size_t)parts;
}

size_t oq_conv_packed_w_floats(const oq_conv_params *p)
{
    if (conv_is_dw(p)) return 0;
    conv_job j;
    conv_plan(&j, p, 1);
    return j.wp_group * (size_t)p->group;
}

void oq_conv_pack_w(float *dst, const float *w, const oq_conv_params *p)
{
    if (conv_is_dw(p)) return;
    conv_job j;
    conv_plan(&j, p, 1);
    for (int64_t g = 0; g < p->group; g++) {
        oq_sgemm_args ga = {false, false, j.mg, 1, j.kdim, 1.0f, 0.0f, w + g * j.mg * j.kdim, j.kdim, NULL, 0, NULL, 0};
        oq_sgemm_pack_a(dst + (size_t)g * j.wp_group, &ga);
    }
}

void oq_conv_fast(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p,
                  oq_kernel_ctx *c, int parts, float *ws)
{
    /* the weights are packed once here, at the start of ws, then shared by every tile */
    oq_conv_pack_w(ws, w, p);
    oq_conv_fast_packed(y, x, w, ws, b, p, c, parts, ws, NULL);
}

void oq_conv_fast_packed(float *y, const float *x, const float *w, const float *wp, const float *b,
                         const oq_conv_params *p, oq_kernel_ctx *c, int parts, float *ws,
                         const oq_conv_epilogue *ep)
{
    if (parts < 1) parts = 1;
    conv_job j;
    conv_plan(&j, p, parts);
    j.y = y, j.x = x, j.w = w, j.b = b, j.ep = ep;
    if (conv_is_dw(p)) {
        j.v = view_2d(p);
        oq_run_parts(c, parts, p->n * p->cout, ws, 0, conv_dw_item, &j);
        return;
    }
    j.wp = wp;
    size_t shared = j.wp_group * (size_t)p->group;
    size_t per = (oq_conv_ws_floats(p, parts) - shared) / (size_t)parts;
    oq_run_parts(c, parts, p->n * p->group * j.mt_count * j.nt_count, ws + shared, per, conv_gemm_item, &j);
}

/* ---- ConvTranspose ------------------------------------------------------------- */

typedef struct convt_job {
    float *y;
    const float *x, *w, *b;
    const oq_conv_params *p;
    geom geo;
    int64_t cg, mg;            /* input / output channels per group */
    int64_t in_size, out_size;
    int64_t ctile, ct_count;   /* output channels per item, items per group */
    int64_t ntile;             /* input positions per GEMM tile */
    size_t gws;                /* GEMM workspace floats per part; columns follow */
} convt_job;

static void convt_plan(convt_job *j, const oq_conv_params *p, int parts)
{
    memset(j, 0, sizeof *j);
    j->p = p;
    j->geo = conv_geom(p, true);
    j->cg = p->cin / p->group;
    j->mg = p->cout / p->group;
    j->in_size = prod(p->nsp, p->in);
    j->out_size = prod(p->nsp, p->out);
    int64_t items = p->n * p->group;
    int64_t want = items >= 2 * (int64_t)parts ? 1 : (2 * parts + items - 1) / items;
    j->ctile = max64(1, (j->mg + want - 1) / want);
    j->ct_count = (j->mg + j->ctile - 1) / j->ctile;
    int64_t rows = j->ctile * j->geo.ksize;
    int64_t nt = max64(16, ((int64_t)1 << 16) / max64(1, rows));
    j->ntile = min64(nt, max64(1, j->in_size));
    j->gws = oq_sgemm_ws_floats(rows, j->ntile, j->cg);
}

size_t oq_conv_transpose_ws_floats(const oq_conv_params *p, int parts)
{
    if (parts < 1) parts = 1;
    convt_job j;
    convt_plan(&j, p, parts);
    return (j.gws + (size_t)(j.ctile * j.geo.ksize * j.ntile)) * (size_t)parts;
}

/* Item = (batch, group, output-channel block): owns those output planes. */
static void convt_item(void *arg, int64_t i, float *ws)
{
    const convt_job *j = arg;
    const oq_conv_params *p = j->p;
    int64_t ct_i = i % j->ct_count, rest = i / j->ct_count;
    int64_t g = rest % p->group, n = rest / p->group;
    int64_t c0 = ct_i * j->ctile, cc = min64(j->ctile, j->mg - c0);
    if (cc <= 0) return;
    int64_t ksize = j->geo.ksize, rows = cc * ksize;
    float *yc = j->y + (n * p->cout + g * j->mg + c0) * j->out_size;
    for (int64_t ch = 0; ch < cc; ch++) {
        float bv = j->b ? j->b[g * j->mg + c0 + ch] : 0.0f;
        for (int64_t t = 0; t < j->out_size; t++) yc[ch * j->out_size + t] = bv;
    }
    const float *xg = j->x + (n * p->cin + g * j->cg) * j->in_size;
    float *col = ws + j->gws;
    for (int64_t j0 = 0; j0 < j->in_size; j0 += j->ntile) {
        int64_t nt = min64(j->ntile, j->in_size - j0);
        /* col (rows, nt) = W_g[:, c0..c0+cc)^T (rows, cg) * x_g (cg, nt) */
        oq_sgemm_args ga = {true, false, rows, nt, j->cg, 1.0f, 0.0f,
                            j->w + g * j->cg * j->mg * ksize + c0 * ksize, j->mg * ksize,
                            xg + j0, j->in_size, col, nt};
        oq_sgemm(&ga, ws);
        cols_move(&j->geo, col, nt, yc, cc, j0, nt, true);
    }
}

void oq_conv_transpose(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p,
                       oq_kernel_ctx *c, int parts, float *ws)
{
    if (parts < 1) parts = 1;
    convt_job j;
    convt_plan(&j, p, parts);
    j.y = y, j.x = x, j.w = w, j.b = b;
    size_t per = oq_conv_transpose_ws_floats(p, parts) / (size_t)parts;
    oq_run_parts(c, parts, p->n * p->group * j.ct_count, ws, per, convt_item, &j);
}
