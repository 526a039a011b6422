/* conv.c: float convolution (reference, depthwise direct, im2col + GEMM) and
 * transposed convolution (GEMM + col2im). */
#include "exec/conv.h"

#include <string.h>

#include "exec/conv_tile.h"
#include "exec/gemm.h"
#include "exec/winograd.h"
#include "cpu_dispatch.h"

#if OQ_X86_KERNELS
#include <immintrin.h>

#include "exec/vmask.h"
#endif

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

/* ---- depthwise -------------------------------------------------------------------
 * One output plane per item. The input plane is first copied into the
 * workspace with its padding written out as zeros and its columns split by
 * phase modulo the column stride S: phase q holds padded columns q, q + S,
 * q + 2S, ... Output column o then reads tap column kw at index
 * o + (kw * dw) / S of phase (kw * dw) % S, so consecutive outputs read
 * consecutive floats at any kernel size, stride and dilation, with no edge
 * cases. Every output starts at its bias and adds its taps row by row, column
 * by column (one multiply-add each), whatever the vector width or blocking. */

enum { DW_MAX_KW = 16 }; /* widest kernel row with precomputed tap offsets */

typedef struct dw_geom {
    int64_t ih, iw, oh, ow;   /* a 1-D conv is one row */
    int64_t kh, kw, sh, s, dh, dw;
    int64_t ph, pw;           /* padding before rows and columns */
    int64_t rows, cols;       /* padded rows, and columns per phase */
    int64_t tap[DW_MAX_KW];   /* kw <= DW_MAX_KW: offset in the copy of tap column kw from row 0, column 0 */
} dw_geom;

static dw_geom dw_geometry(const oq_conv_params *p)
{
    int a = p->nsp - 1; /* the last (column) axis */
    dw_geom g = {1, p->in[a], 1, p->out[a], 1, p->k[a], 1, p->stride[a], 1, p->dil[a], 0, p->pad0[a], 1, 0, {0}};
    if (p->nsp == 2) {
        g.ih = p->in[0], g.oh = p->out[0], g.kh = p->k[0], g.sh = p->stride[0], g.dh = p->dil[0];
        g.ph = p->pad0[0];
        g.rows = p->in[0] + p->pad0[0] + p->pad1[0];
    }
    g.cols = (p->in[a] + p->pad0[a] + p->pad1[a] + g.s - 1) / g.s;
    for (int64_t kw = 0; kw < g.kw && kw < DW_MAX_KW; kw++)
        g.tap[kw] = (kw * g.dw % g.s) * g.rows * g.cols + kw * g.dw / g.s;
    return g;
}

/* Floats of one plane's padded, phase-split copy. */
static size_t dw_plane_floats(const dw_geom *g) { return (size_t)(g->s * g->rows * g->cols); }

/* d[0, n) = s[0, n) for the short runs of a plane row, by fixed-size moves
 * the compiler inlines (a memcpy call costs more than a row of 14 floats);
 * the last moves overlap the earlier ones. s NULL: zeros. */
static inline __attribute__((always_inline)) void dw_copy_run(float *restrict d, const float *restrict s, int64_t n)
{
    static const float zeros[16];
    int64_t z = s ? 1 : 0; /* 0: read zeros at every offset */
    if (!s) s = zeros;
    if (n >= 16) {
        for (int64_t c = 0; c + 16 <= n; c += 16) memcpy(d + c, s + z * c, 64);
        memcpy(d + n - 16, s + z * (n - 16), 64);
    } else if (n >= 8) {
        memcpy(d, s, 32);
        memcpy(d + n - 8, s + z * (n - 8), 32);
    } else if (n >= 4) {
        memcpy(d, s, 16);
        memcpy(d + n - 4, s + z * (n - 4), 16);
    } else {
        for (int64_t c = 0; c < n; c++) d[c] = s[z * c];
    }
}

/* The padded, phase-split copy of input plane x (see above) into P. */
OQ_CLONED(dw_pad_split, (float *restrict P, const float *restrict x, const dw_geom *g), (P, x, g))
{
    for (int64_t q = 0; q < g->s; q++) {
        /* padded column c * s + q is input column c * s + q - pw: inside for c in [c0, c1) */
        int64_t c0 = min64(g->cols, (g->pw - q + g->s - 1) / g->s);
        int64_t c1 = max64(c0, min64(g->cols, (g->iw + g->pw - q + g->s - 1) / g->s));
        const float *xq = x + (c0 * g->s + q - g->pw); /* input under column c0 of row 0 */
        for (int64_t r = 0; r < g->rows; r++) {
            float *d = P + (q * g->rows + r) * g->cols;
            int64_t ir = r - g->ph;
            if (ir < 0 || ir >= g->ih || c1 == c0) {
                dw_copy_run(d, NULL, g->cols);
                continue;
            }
            if (c0 > 0) dw_copy_run(d, NULL, c0);
            const float *xr = xq + ir * g->iw;
            if (g->s == 1)
                dw_copy_run(d + c0, xr, c1 - c0);
            else if (g->s == 2) /* the usual stride, known here so the loop vectorizes */
                for (int64_t c = c0; c < c1; c++) d[c] = xr[(c - c0) * 2];
            else
                for (int64_t c = c0; c < c1; c++) d[c] = xr[(c - c0) * g->s];
            if (c1 < g->cols) dw_copy_run(d + c1, NULL, g->cols - c1);
        }
    }
}

/* y (oh, ow) = bias + taps of w (kh, kw) over the padded copy P: the
 * portable version, a row at a time (the compiler vectorizes the columns). */
static void dw_run_generic(float *restrict y, const float *P, const float *restrict w, float bias, const dw_geom *g)
{
    for (int64_t oh = 0; oh < g->oh; oh++) {
        float *restrict yr = y + oh * g->ow;
        for (int64_t o = 0; o < g->ow; o++) yr[o] = bias;
        for (int64_t kh = 0; kh < g->kh; kh++)
            for (int64_t kw = 0; kw < g->kw; kw++) {
                const float wt = w[kh * g->kw + kw];
                const float *restrict src = P + (oh * g->sh + kh * g->dh) * g->cols + (kw < DW_MAX_KW ? g->tap[kw]
                                                : (kw * g->dw % g->s) * g->rows * g->cols + kw * g->dw / g->s);
                for (int64_t o = 0; o < g->ow; o++) yr[o] = yr[o] + wt * src[o];
            }
    }
}

#if OQ_X86_KERNELS
/* DW_RUN(NAME, TARGET, W, V, M, ...): the vector version for vectors V of W
 * floats and lane masks M. Outputs are taken four vectors at a time, so four
 * multiply-add chains overlap: the same columns of four rows, or, in planes
 * of fewer rows, four vectors along one row. The last group of four may
 * overlap the one before it (those outputs are computed again and stored
 * with the same bits); rows shorter than four vectors go a vector at a time
 * in planes of fewer than four rows. MASK(cnt)
 * selects the first cnt lanes, LOADM/STOREM move the lanes of a mask. The
 * tap loop is compiled apart for kernel rows of 3 and 5 (unrolled) and for
 * whole vectors (loads without masks). */
#define DW_RUN(NAME, TARGET, W, V, M, SET1, FMA, LOADU, MASK, LOADM, STOREM)                                 \
    /* outputs dst + a * dstep (a < 4) from the taps over P + src + a * sstep */                              \
    TARGET static inline __attribute__((always_inline)) void NAME##_four(                                    \
        float *restrict y, const float *P, const float *restrict w, float bias, const dw_geom *g, int64_t src,  \
        int64_t sstep, int64_t dst, int64_t dstep, M mk, int64_t kw_n, bool full)                             \
    {                                                                                                         \
        V acc0 = SET1(bias), acc1 = acc0, acc2 = acc0, acc3 = acc0;                                           \
        for (int64_t kh = 0; kh < g->kh; kh++) {                                                              \
            const float *base = P + src + kh * g->dh * g->cols, *wr = w + kh * kw_n;                          \
            for (int64_t kw = 0; kw < kw_n; kw++) {                                                           \
                V wt = SET1(wr[kw]);                                                                          \
                const float *q = base + g->tap[kw];                                                           \
                acc0 = FMA(wt, full ? LOADU(q) : LOADM(q, mk), acc0);                                         \
                acc1 = FMA(wt, full ? LOADU(q + sstep) : LOADM(q + sstep, mk), acc1);                         \
                acc2 = FMA(wt, full ? LOADU(q + 2 * sstep) : LOADM(q + 2 * sstep, mk), acc2);                 \
                acc3 = FMA(wt, full ? LOADU(q + 3 * sstep) : LOADM(q + 3 * sstep, mk), acc3);                 \
            }                                                                                                 \
        }                                                                                                     \
        STOREM(y + dst, acc0, mk);                                                                            \
        STOREM(y + dst + dstep, acc1, mk);                                                                    \
        STOREM(y + dst + 2 * dstep, acc2, mk);                                                                \
        STOREM(y + dst + 3 * dstep, acc3, mk);                                                                \
    }                                                                                                         \
    TARGET static void NAME##_any(float *restrict y, const float *P, const float *restrict w, float bias,     \
                                  const dw_geom *g, int64_t src, int64_t sstep, int64_t dst, int64_t dstep,   \
                                  int64_t cnt)                                                                \
    {                                                                                                         \
        M mk = MASK(cnt);                                                                                     \
        bool full = cnt >= W;                                                                                 \
        if (full && g->kw == 3)                                                                               \
            NAME##_four(y, P, w, bias, g, src, sstep, dst, dstep, mk, 3, true);                               \
        else if (full && g->kw == 5)                                                                          \
            NAME##_four(y, P, w, bias, g, src, sstep, dst, dstep, mk, 5, true);                               \
        else if (full)                                                                                        \
            NAME##_four(y, P, w, bias, g, src, sstep, dst, dstep, mk, g->kw, true);                           \
        else if (g->kw == 3)                                                                                  \
            NAME##_four(y, P, w, bias, g, src, sstep, dst, dstep, mk, 3, false);                              \
        else if (g->kw == 5)                                                                                  \
            NAME##_four(y, P, w, bias, g, src, sstep, dst, dstep, mk, 5, false);                              \
        else                                                                                                  \
            NAME##_four(y, P, w, bias, g, src, sstep, dst, dstep, mk, g->kw, false);                          \
    }                                                                                                         \
    TARGET static void NAME(float *restrict y, const float *P, const float *restrict w, float bias,           \
                            const dw_geom *g)                                                                 \
    {                                                                                                         \
        int64_t vecs = (g->ow + W - 1) / W, rstep = g->sh * g->cols;                                          \
        if (g->oh >= 4) { /* rows four at a time, the last four ending at the last row */                    \
            for (int64_t r = 0; r < g->oh; r += 4) {                                                          \
                int64_t r0 = min64(r, g->oh - 4);                                                             \
                for (int64_t v = 0; v < vecs; v++)                                                            \
                    NAME##_any(y, P, w, bias, g, r0 * rstep + v * W, rstep, r0 * g->ow + v * W, g->ow,        \
                               g->ow - v * W);                                                                \
            }                                                                                                 \
            return;                                                                                           \
        }                                                                                                     \
        for (int64_t r = 0; r < g->oh; r++) {                                                                 \
            if (g->ow >= 4 * W) /* four vectors along the row, the last four ending at its end */            \
                for (int64_t o = 0; o < g->ow; o += 4 * W) {                                                  \
                    int64_t o0 = min64(o, g->ow - 4 * W);                                                     \
                    NAME##_any(y, P, w, bias, g, r * rstep + o0, W, r * g->ow + o0, W, W);                    \
                }                                                                                             \
            else /* one vector at a time */                                                                   \
                for (int64_t v = 0; v < vecs; v++)                                                            \
                    NAME##_any(y, P, w, bias, g, r * rstep + v * W, 0, r * g->ow + v * W, 0, g->ow - v * W); \
        }                                                                                                     \
    }

__attribute__((target("avx512f"), always_inline)) static inline __mmask16 dw_mask16(int64_t cnt)
{
    return cnt >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cnt) - 1u);
}

__attribute__((target("avx512f"), always_inline)) static inline __m512 dw_load16(const float *p, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, p);
}

__attribute__((target("avx512f"), always_inline)) static inline void dw_store16(float *p, __m512 v, __mmask16 m)
{
    _mm512_mask_storeu_ps(p, m, v);
}

__attribute__((target("avx2"), always_inline)) static inline __m256 dw_load8(const float *p, __m256i m)
{
    return _mm256_maskload_ps(p, m);
}

__attribute__((target("avx2"), always_inline)) static inline void dw_store8(float *p, __m256 v, __m256i m)
{
    _mm256_maskstore_ps(p, m, v);
}

DW_RUN(dw_run_avx512, __attribute__((target("avx512f"))), 16, __m512, __mmask16, _mm512_set1_ps, _mm512_fmadd_ps,
       _mm512_loadu_ps, dw_mask16, dw_load16, dw_store16)
DW_RUN(dw_run_avx2, __attribute__((target("avx2,fma"))), 8, __m256, __m256i, _mm256_set1_ps, _mm256_fmadd_ps,
       _mm256_loadu_ps, oq_mask8, dw_load8, dw_store8)
#endif

typedef void dw_run_fn(float *restrict y, const float *P, const float *restrict w, float bias, const dw_geom *g);

/* Of the levels `have` of a depthwise or grouped kernel, those worth picking
 * for geometry g: rows of at most 8 outputs fill 8-wide vectors but leave
 * most lanes of 16-wide ones idle. */
static unsigned dw_levels(unsigned have, const dw_geom *g)
{
    return g->ow <= 8 ? have & ~OQ_ISA_BIT(OQ_ISA_AVX512) : have;
}

static dw_run_fn *const dw_runs[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = dw_run_generic,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = dw_run_avx2,
    [OQ_ISA_AVX512] = dw_run_avx512,
#endif
};

/* ---- grouped, few output channels per group ------------------------------------
 * Groups of up to GRP_MAX_MG output channels (RegNet, ResNeXt) are too small
 * for the GEMM's row strips and pay more for im2col than for the products.
 * Each group's cg input planes get the depthwise padded, phase-split copy
 * (one after another, plane floats apart); output channels then run GRP_CO
 * at a time over two depthwise slots, so each input vector loaded feeds
 * 2 * GRP_CO independent multiply-add chains. Every output starts at its bias
 * and adds its taps input channel by channel, row by row, column by column. */

enum { GRP_CO = 4, GRP_MAX_MG = 32 };

/* GRP_CO output channels of one group: a partial block repeats its last
 * channel, computed and stored again with the same bits. */
typedef struct grp_block {
    float *y[GRP_CO];       /* output planes (oh, ow) */
    const float *w[GRP_CO]; /* their weights (cg, kh, kw) */
    float bias[GRP_CO];
} grp_block;

/* The portable version: one channel, one row at a time (the compiler
 * vectorizes the columns). */
static void grp_run_generic(const grp_block *blk, const float *P, size_t plane, int64_t cg, const dw_geom *g)
{
    int64_t ks = g->kh * g->kw;
    for (int c = 0; c < GRP_CO; c++)
        for (int64_t oh = 0; oh < g->oh; oh++) {
            float *restrict yr = blk->y[c] + oh * g->ow;
            for (int64_t o = 0; o < g->ow; o++) yr[o] = blk->bias[c];
            for (int64_t ci = 0; ci < cg; ci++)
                for (int64_t kh = 0; kh < g->kh; kh++)
                    for (int64_t kw = 0; kw < g->kw; kw++) {
                        const float wt = blk->w[c][ci * ks + kh * g->kw + kw];
                        const float *restrict src = P + ci * plane + g->tap[kw] + (oh * g->sh + kh * g->dh) * g->cols;
                        for (int64_t o = 0; o < g->ow; o++) yr[o] = yr[o] + wt * src[o];
                    }
        }
}

#if OQ_X86_KERNELS
/* GRP_RUN(NAME, TARGET, W, V, ...): the vector version for vectors V of W
 * floats, slots as in DW_RUN, two at a time. */
#define GRP_RUN(NAME, TARGET, W, V, SET1, FMA, LOADM, STOREM)                                                \
    TARGET static void NAME(const grp_block *blk, const float *P, size_t plane, int64_t cg, const dw_geom *g) \
    {                                                                                                         \
        int64_t ks = g->kh * g->kw, vecs = (g->ow + W - 1) / W, r = 0, v = 0;                                 \
        while (r < g->oh) {                                                                                   \
            int64_t src[2], dst[2], cnt[2];                                                                   \
            for (int a = 0; a < 2; a++) {                                                                     \
                cnt[a] = 0, src[a] = 0, dst[a] = 0;                                                           \
                if (r < g->oh) {                                                                              \
                    cnt[a] = min64(W, g->ow - v * W);                                                         \
                    src[a] = r * g->sh * g->cols + v * W;                                                     \
                    dst[a] = r * g->ow + v * W;                                                               \
                    if (++v == vecs) v = 0, r++;                                                              \
                }                                                                                             \
            }                                                                                                 \
            V acc[GRP_CO][2];                                                                                 \
            for (int c = 0; c < GRP_CO; c++) acc[c][0] = acc[c][1] = SET1(blk->bias[c]);                     \
            for (int64_t ci = 0; ci < cg; ci++)                                                               \
                for (int64_t kh = 0; kh < g->kh; kh++)                                                        \
                    for (int64_t kw = 0; kw < g->kw; kw++) {                                                  \
                        const float *row = P + ci * plane + g->tap[kw] + kh * g->dh * g->cols;                \
                        V x0 = LOADM(row + src[0], cnt[0]), x1 = LOADM(row + src[1], cnt[1]);                 \
                        int64_t t = ci * ks + kh * g->kw + kw;                                                \
                        for (int c = 0; c < GRP_CO; c++) {                                                    \
                            V wt = SET1(blk->w[c][t]);                                                        \
                            acc[c][0] = FMA(wt, x0, acc[c][0]);                                               \
                            acc[c][1] = FMA(wt, x1, acc[c][1]);                                               \
                        }                                                                                     \
                    }                                                                                         \
            for (int c = 0; c < GRP_CO; c++) {                                                                \
                STOREM(blk->y[c] + dst[0], acc[c][0], cnt[0]);                                                \
                STOREM(blk->y[c] + dst[1], acc[c][1], cnt[1]);                                                \
            }                                                                                                 \
        }                                                                                                     \
    }

GRP_RUN(grp_run_avx512, __attribute__((target("avx512f"))), 16, __m512, _mm512_set1_ps, _mm512_fmadd_ps, oq_load16,
        oq_store16)
GRP_RUN(grp_run_avx2, __attribute__((target("avx2,fma"))), 8, __m256, _mm256_set1_ps, _mm256_fmadd_ps, oq_load8,
        oq_store8)
#endif

typedef void grp_run_fn(const grp_block *blk, const float *P, size_t plane, int64_t cg, const dw_geom *g);

static grp_run_fn *const grp_runs[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = grp_run_generic,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = grp_run_avx2,
    [OQ_ISA_AVX512] = grp_run_avx512,
#endif
};

/* ---- depthwise, 16 channels at a time ----------------------------------------
 * On small planes a plane-by-plane kernel spends more on each plane's
 * set-up, its padded copy and its part-filled vectors than on the products,
 * and on large ones it is slower too (dwb_fits has the numbers). Here 16
 * channels go through together, a band of output rows at a time:
 * the padded input rows the band reads are transposed from the 16 planes
 * into one tile of pixels, each pixel a vector of the 16 channels
 * (tile[(row * width + col) * 16 + channel], zero padding written out);
 * each output pixel is then a vector that starts at the 16 biases and adds
 * its taps row by row, column by column with one multiply-add each (the
 * arithmetic of the plane-by-plane kernels, so the same bits), 16 pixels of
 * the band at a time; their 16 x 16 block is transposed back into the 16
 * output planes. AVX-512 only; channels past the last block's count are
 * zeros, computed and not stored. */

/* DWB_ROW_MIN: rows of at least this many outputs go a row at a time (see
 * dwb_run_avx512). */
enum { DWB_CH = 16, DWB_TILE_FLOATS = 1 << 15, DWB_ROW_MIN = 12 };

/* Padded columns of the tile (whole phases of dw_geom, so every tap of every
 * output column is inside). */
static int64_t dwb_width(const dw_geom *g) { return g->cols * g->s; }

/* Output rows per band: as many as keep the band's tile within
 * DWB_TILE_FLOATS (128 KiB, in L2 beside the input rows), at least one. */
static int64_t dwb_band(const dw_geom *g)
{
    int64_t rows = DWB_TILE_FLOATS / (dwb_width(g) * DWB_CH) - (g->kh - 1) * g->dh - 1;
    return rows < 0 ? 1 : min64(g->oh, rows / g->sh + 1);
}

/* Padded input rows one band reads. */
static int64_t dwb_band_rows(const dw_geom *g) { return (dwb_band(g) - 1) * g->sh + (g->kh - 1) * g->dh + 1; }

/* Floats of the tile, taps and biases of one block (g from dw_geometry),
 * plus slack to align the tile to 64 bytes and for the reads of a row
 * narrower than 16 outputs, which go up to 16 * s pixels past the row (their
 * lanes are computed and never stored). */
static size_t dwb_ws_floats(const dw_geom *g)
{
    return (size_t)(dwb_band_rows(g) * dwb_width(g) * DWB_CH + g->kh * g->kw * DWB_CH + DWB_CH + 16 * g->s * DWB_CH) + 16;
}

#if OQ_X86_KERNELS
/* r[j] = column j of the 16 x 16 block whose row i is r[i]. */
__attribute__((target("avx512f"), always_inline)) static inline void dwb_transpose(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4i + k], 128-bit lane l: column 4l + k of rows 4i..4i+3 */
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    /* t[8i + k]: columns k and 8 + k of rows 8i..8i+7; t[8i + 4 + k]: columns 4 + k and 12 + k */
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
            t[8 * i + 4 + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
    }
}

/* Tile rows [0, rows) = padded input rows [r0, r0 + rows) of the nch
 * planes x[c * ih * iw] (the rest of the 16 channels zeros). */
__attribute__((target("avx512f"))) static void dwb_fill(float *tile, const float *x, int64_t nch, const dw_geom *g,
                                                       int64_t r0, int64_t rows)
{
    const int64_t width = dwb_width(g), in_plane = g->ih * g->iw;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        float *d = tile + r * width * DWB_CH;
        int64_t ir = r0 + r - g->ph; /* input row, or outside */
        bool inside = ir >= 0 && ir < g->ih;
        if (!inside) {
            for (int64_t col = 0; col < width; col++) _mm512_store_ps(d + col * DWB_CH, zero);
            continue;
        }
        for (int64_t col = 0; col < g->pw; col++) _mm512_store_ps(d + col * DWB_CH, zero);
        for (int64_t col = g->pw + g->iw; col < width; col++) _mm512_store_ps(d + col * DWB_CH, zero);
        for (int64_t c0 = 0; c0 < g->iw; c0 += 16) { /* 16 columns of 16 channels at a time */
            int64_t n = min64(16, g->iw - c0);
            const float *xr = x + ir * g->iw + c0;
            float *dc = d + (g->pw + c0) * DWB_CH;
            __m512 v[16];
            if (n == 16 && nch == DWB_CH) {
                for (int c = 0; c < DWB_CH; c++) v[c] = _mm512_loadu_ps(xr + c * in_plane);
            } else {
                for (int c = 0; c < DWB_CH; c++) v[c] = c < nch ? oq_load16(xr + c * in_plane, n) : zero;
            }
            dwb_transpose(v);
            if (n == 16) {
                for (int j = 0; j < 16; j++) _mm512_store_ps(dc + j * DWB_CH, v[j]);
            } else { /* through memory: a register picked by a variable index compiles to a chain of branches */
                _Alignas(64) float part[16 * DWB_CH];
                for (int j = 0; j < 16; j++) _mm512_store_ps(part + j * DWB_CH, v[j]);
                for (int64_t j = 0; j < n; j++) _mm512_store_ps(dc + j * DWB_CH, _mm512_load_ps(part + j * DWB_CH));
            }
        }
    }
}

/* acc[j] += the taps over the tile's pixel vectors at src + off[j], or,
 * off NULL, at src + j * step (a constant where inlined, so the loads take
 * fixed displacements instead of 16 addresses that do not fit in registers). */
__attribute__((target("avx512f"), always_inline)) static inline void dwb_taps(__m512 acc[16], const float *src,
                                                                              const int64_t *off, int64_t step,
                                                                              const float *taps, const dw_geom *g,
                                                                              int64_t width)
{
    for (int64_t kh = 0; kh < g->kh; kh++)
        for (int64_t kw = 0; kw < g->kw; kw++) {
            const __m512 wt = _mm512_load_ps(taps + (kh * g->kw + kw) * DWB_CH);
            const float *t = src + (kh * g->dh * width + kw * g->dw) * DWB_CH;
            for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(wt, _mm512_load_ps(t + (off ? off[j] : j * step)), acc[j]);
        }
}

/* The epilogue step the depthwise kernel computes in registers, or NULL
 * (then it calls ep->fn). */
static const oq_ew_step *dwb_act(const oq_conv_epilogue *ep)
{
    if (!ep || !ep->step) return NULL;
    oq_ew_kind k = ep->step->kind;
    return k == OQ_EW_RELU || k == OQ_EW_CLIP || k == OQ_EW_HARD_SWISH ? ep->step : NULL;
}

/* acc[j] = act(acc[j]): the float expressions of fuse.c's step_run_inplace
 * (x > 0 ? x : 0 is max(x, 0), x < k0 ? k0 : x is max(k0, x), with the
 * operands in the order that gives the same result for NaN and -0). */
__attribute__((target("avx512f"), always_inline)) static inline void dwb_activate(__m512 acc[16],
                                                                                  const oq_ew_step *act)
{
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512 six = _mm512_set1_ps(6.0f), half = _mm512_set1_ps(0.5f);
    const __m512 k0 = _mm512_set1_ps(act->k0), k1 = _mm512_set1_ps(act->k1);
    switch (act->kind) {
    case OQ_EW_RELU:
        for (int j = 0; j < 16; j++) acc[j] = _mm512_max_ps(acc[j], zero);
        break;
    case OQ_EW_CLIP:
        for (int j = 0; j < 16; j++) acc[j] = _mm512_min_ps(k1, _mm512_max_ps(k0, acc[j]));
        break;
    case OQ_EW_HARD_SWISH:
        for (int j = 0; j < 16; j++) {
            __m512 t = _mm512_add_ps(_mm512_div_ps(acc[j], six), half);
            acc[j] = _mm512_mul_ps(acc[j], _mm512_max_ps(_mm512_min_ps(t, one), zero));
        }
        break;
    default: break;
    }
}

/* Pixels [q, q + n) of output planes y[c * plane] (c < nch) from acc[j],
 * the 16 channels of pixel q + j, after act (may be NULL). */
__attribute__((target("avx512f"), always_inline)) static inline void dwb_store(float *y, int64_t plane, int64_t q,
                                                                               __m512 acc[16], int64_t nch, int64_t n,
                                                                               const oq_ew_step *act)
{
    if (act) dwb_activate(acc, act);
    dwb_transpose(acc);
    if (nch == DWB_CH && n == 16) {
        for (int c = 0; c < DWB_CH; c++) _mm512_storeu_ps(y + c * plane + q, acc[c]);
    } else { /* through memory: a register picked by a variable index compiles to a chain of branches */
        _Alignas(64) float part[DWB_CH * 16];
        for (int c = 0; c < DWB_CH; c++) _mm512_store_ps(part + c * 16, acc[c]);
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        for (int64_t c = 0; c < nch; c++) _mm512_mask_storeu_ps(y + c * plane + q, m, _mm512_load_ps(part + c * 16));
    }
}

/* Output planes y[c * oh * ow] (c < nch) of input planes x[c * ih * iw]
 * with taps w[c * kh * kw] and biases b[c] (b may be NULL); ws holds
 * dwb_ws_floats(g). Rows of 16 outputs or more go 16 outputs of one row at
 * a time (the last 16 ending at the row's end, recomputing a few with the
 * same bits), rows of DWB_ROW_MIN to 15 outputs a row at a time in part of
 * the lanes (one core, 14 outputs a row: 240 channels 5x5/2 from 28x28
 * 0.059 -> 0.046 ms, 672 channels 5x5 on 14x14 0.126 -> 0.114), shorter
 * rows 16 outputs of the band at a time, across rows, each pixel's offset
 * taken from memory.
 * The epilogue ep (may be NULL) is computed in registers where dwb_act
 * says so, else run on each band's rows of each plane once they are final. */
__attribute__((target("avx512f"))) static void dwb_run_avx512(float *y, const float *x, const float *w,
                                                             const float *b, int64_t nch, const dw_geom *g,
                                                             float *ws, const oq_conv_epilogue *ep)
{
    const int64_t width = dwb_width(g), ks = g->kh * g->kw, plane = g->oh * g->ow, band = dwb_band(g);
    float *tile = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *taps = tile + dwb_band_rows(g) * width * DWB_CH, *bias = taps + ks * DWB_CH;
    for (int64_t t = 0; t < ks; t++)
        for (int64_t c = 0; c < DWB_CH; c++) taps[t * DWB_CH + c] = c < nch ? w[c * ks + t] : 0.0f;
    for (int64_t c = 0; c < DWB_CH; c++) bias[c] = c < nch && b ? b[c] : 0.0f;
    const __m512 b16 = _mm512_load_ps(bias);
    const oq_ew_step *act = dwb_act(ep);
    for (int64_t r0 = 0; r0 < g->oh; r0 += band) {
        int64_t r1 = min64(g->oh, r0 + band);
        dwb_fill(tile, x, nch, g, r0 * g->sh, (r1 - 1 - r0) * g->sh + (g->kh - 1) * g->dh + 1);
        __m512 acc[16];
        if (g->ow >= DWB_ROW_MIN) {
            for (int64_t r = r0; r < r1; r++)
                for (int64_t o = 0; o < g->ow; o += 16) {
                    int64_t o0 = max64(0, min64(o, g->ow - 16));
                    const float *src = tile + ((r - r0) * g->sh * width + o0 * g->s) * DWB_CH;
                    for (int j = 0; j < 16; j++) acc[j] = b16;
                    if (g->s == 1)
                        dwb_taps(acc, src, NULL, DWB_CH, taps, g, width);
                    else if (g->s == 2)
                        dwb_taps(acc, src, NULL, 2 * DWB_CH, taps, g, width);
                    else
                        dwb_taps(acc, src, NULL, g->s * DWB_CH, taps, g, width);
                    dwb_store(y, plane, r * g->ow + o0, acc, nch, min64(16, g->ow), act);
                }
        } else {
            int64_t orow = 0, ocol = 0; /* band row and column of pixel q0 */
            for (int64_t q0 = r0 * g->ow; q0 < r1 * g->ow; q0 += 16) {
                int64_t n = min64(16, r1 * g->ow - q0), off[16];
                for (int64_t j = 0, r = orow, col = ocol; j < 16; j++) {
                    off[j] = (r * g->sh * width + col * g->s) * DWB_CH;
                    if (j + 1 < n && ++col == g->ow) col = 0, r++; /* pixels past the band repeat its last one */
                }
                for (ocol += 16; ocol >= g->ow; ocol -= g->ow) orow++;
                for (int j = 0; j < 16; j++) acc[j] = b16;
                dwb_taps(acc, tile, off, 0, taps, g, width);
                dwb_store(y, plane, q0, acc, nch, n, act);
            }
        }
        if (ep && !act)
            for (int64_t c = 0; c < nch; c++) ep->fn(ep->arg, y + c * plane + r0 * g->ow, (r1 - r0) * g->ow);
    }
}
#endif

/* True when the depthwise conv p runs 16 channels at a time: AVX-512
 * enabled and one output channel per input channel, at any plane size. One
 * core (bench_conv), against the plane-by-plane kernel: 960 channels on 7x7
 * 0.107 -> 0.035 ms, 384 on 14x14 0.092 -> 0.040, 96 from 112x112 to 56x56
 * 0.29 -> 0.22, 144 on 56x56 0.26 -> 0.20, 32 on 112x112 0.19 -> 0.16. */
static bool dwb_fits(const oq_conv_params *p)
{
#if OQ_X86_KERNELS
    return p->cout == p->cin && oq_isa_pick(OQ_ISA_BIT(OQ_ISA_BASELINE) | OQ_ISA_BIT(OQ_ISA_AVX512)) == OQ_ISA_AVX512;
#else
    (void)p;
    return false;
#endif
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
    bool swapped;              /* im2col with the GEMM transposed (see conv_swaps) */
    int64_t ntile, nt_count;   /* output positions per tile, tiles per plane */
    int64_t mtile, mt_count;   /* output channels per tile, tiles per group */
    dw_geom dw;                /* depthwise only */
    size_t gws;                /* GEMM workspace floats per part; columns follow */
    const float *wp;           /* weights packed for the GEMM: group g at wp + g * wp_group */
    size_t wp_group;
    size_t wp_floats;          /* all packed weights, plus slack to align them when swapped */
    const oq_conv_epilogue *ep; /* NULL or applied to each finished tile */
} conv_job;

/* Item = (batch, output channel): one output plane; ws holds the padded copy
 * of its input plane. Kernels wider than DW_MAX_KW take the portable loop. */
static void conv_dw_item(void *arg, int64_t i, float *ws)
{
    const conv_job *j = arg;
    int64_t n = i / j->p->cout, co = i % j->p->cout, ci = co / j->mg;
    float *y = j->y + i * j->out_size;
    dw_pad_split(ws, j->x + (n * j->p->cin + ci) * j->in_size, &j->dw);
    dw_run_fn *run = j->dw.kw <= DW_MAX_KW ? dw_runs[oq_isa_pick(dw_levels(OQ_ISA_HAVE(dw_runs, ), &j->dw))]
                                           : dw_run_generic;
    run(y, ws, j->w + co * j->geo.ksize, j->b ? j->b[co] : 0.0f, &j->dw);
    if (j->ep) j->ep->fn(j->ep->arg, y, j->out_size);
}

/* Item = (batch, block of DWB_CH channels), for convs dwb_fits takes. */
static void conv_dwb_item(void *arg, int64_t i, float *ws)
{
#if OQ_X86_KERNELS
    const conv_job *j = arg;
    int64_t blocks = (j->p->cout + DWB_CH - 1) / DWB_CH, n = i / blocks, c0 = (i % blocks) * DWB_CH;
    int64_t nch = min64(DWB_CH, j->p->cout - c0);
    float *y = j->y + (n * j->p->cout + c0) * j->out_size;
    dwb_run_avx512(y, j->x + (n * j->p->cin + c0) * j->in_size, j->w + c0 * j->geo.ksize, j->b ? j->b + c0 : NULL,
                   nch, &j->dw, ws, j->ep);
#else
    (void)arg, (void)i, (void)ws;
#endif
}

/* Item = (batch, group): ws holds the padded copies of the group's cg input
 * planes, which every block of the group's output channels reads. */
static void conv_grp_item(void *arg, int64_t i, float *ws)
{
    const conv_job *j = arg;
    const oq_conv_params *p = j->p;
    int64_t n = i / p->group, g = i % p->group;
    size_t plane = dw_plane_floats(&j->dw);
    dw_pad_split_fn *split = dw_pad_split_pick();
    for (int64_t ci = 0; ci < j->cg; ci++)
        split(ws + ci * plane, j->x + (n * p->cin + g * j->cg + ci) * j->in_size, &j->dw);
    grp_run_fn *run = grp_runs[oq_isa_pick(dw_levels(OQ_ISA_HAVE(grp_runs, ), &j->dw))];
    for (int64_t m0 = 0; m0 < j->mg; m0 += GRP_CO) {
        grp_block blk;
        for (int c = 0; c < GRP_CO; c++) {
            int64_t co = g * j->mg + min64(m0 + c, j->mg - 1);
            blk.y[c] = j->y + (n * p->cout + co) * j->out_size;
            blk.w[c] = j->w + co * j->kdim;
            blk.bias[c] = j->b ? j->b[co] : 0.0f;
        }
        run(&blk, ws, plane, j->cg, &j->dw);
        if (j->ep)
            for (int64_t c = 0; c < min64(GRP_CO, j->mg - m0); c++) j->ep->fn(j->ep->arg, blk.y[c], j->out_size);
    }
}

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* Floats of the packed column tile and, but for 2-D convolutions, its row
 * buffer (see im2col_packed), or when swapped the transposed output tile,
 * plus slack to align the tile to 64 bytes. */
static size_t im2col_ws_floats(const conv_job *j)
{
    if (j->swapped)
        return (size_t)(j->kdim * round_up(j->ntile, OQ_SGEMM_PACK_ROWS) + j->ntile * j->mtile) + 16;
    int64_t rowbuf = j->geo.d == 2 ? 0 : j->geo.ksize * j->ntile;
    return (size_t)(j->kdim * round_up(j->ntile, OQ_SGEMM_NR_MAX) + rowbuf) + 16;
}

static float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

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

/* Write position in one column row of a packed tile (strips of nr
 * positions, `strip` floats apart): the next float to write and the room
 * left in its strip. */
typedef struct strip_cursor {
    float *p;
    int64_t room;
    int64_t nr, strip;
} strip_cursor;

/* Writes n values, src[0], src[s], ..., at the cursor and moves it on; src
 * NULL writes zeros. */
static inline void put_run(strip_cursor *cur, const float *restrict src, int64_t s, int64_t n)
{
    while (n > 0) {
        int64_t m = min64(n, cur->room);
        float *restrict p = cur->p;
        if (!src)
            for (int64_t t = 0; t < m; t++) p[t] = 0.0f;
        else if (s == 1)
            for (int64_t t = 0; t < m; t++) p[t] = src[t];
        else if (s == 2) /* the usual stride, known here so the loop vectorizes */
            for (int64_t t = 0; t < m; t++) p[t] = src[2 * t];
        else
            for (int64_t t = 0; t < m; t++) p[t] = src[t * s];
        if (src) src += m * s;
        n -= m;
        cur->room -= m;
        cur->p += m;
        if (cur->room == 0) {
            cur->p += cur->strip - cur->nr;
            cur->room = cur->nr;
        }
    }
}

/* The same as im2col_packed for 2-D convolutions, written straight into the
 * strips: per (channel, tap) row and per output row of the tile, the columns
 * whose tap falls inside the input are one strided run, the rest zeros. */
static void im2col2d_packed(const conv_job *j, float *restrict dst, const float *xg, int64_t j0, int64_t nt, int nr)
{
    const oq_conv_params *p = j->p;
    const int64_t ih = p->in[0], iw = p->in[1], ow = p->out[1], kh = p->k[0], kw = p->k[1];
    const int64_t sh = p->stride[0], sw = p->stride[1];
    const int64_t strips = (nt + nr - 1) / nr, r0 = j0 / ow, r1 = (j0 + nt - 1) / ow;
    for (int64_t ch = 0; ch < j->cg; ch++) {
        const float *xc = xg + ch * j->in_size;
        for (int64_t a = 0; a < kh; a++)
            for (int64_t b = 0; b < kw; b++) {
                strip_cursor cur = {dst + ((ch * kh + a) * kw + b) * nr, nr, nr, j->kdim * nr};
                int64_t base = b * p->dil[1] - p->pad0[1]; /* input column under output column 0 */
                int64_t lo, hi;
                valid_run(base, sw, iw, ow, &lo, &hi);
                for (int64_t r = r0; r <= r1; r++) {
                    int64_t c0 = r == r0 ? j0 - r * ow : 0, c1 = r == r1 ? j0 + nt - r * ow : ow;
                    int64_t i = r * sh - p->pad0[0] + a * p->dil[0];
                    if (i < 0 || i >= ih) {
                        put_run(&cur, NULL, 0, c1 - c0);
                        continue;
                    }
                    int64_t v0 = max64(c0, min64(lo, c1)), v1 = max64(v0, min64(hi, c1));
                    put_run(&cur, NULL, 0, v0 - c0);
                    if (v1 > v0) put_run(&cur, xc + i * iw + base + v0 * sw, sw, v1 - v0);
                    put_run(&cur, NULL, 0, c1 - v1);
                }
                put_run(&cur, NULL, 0, strips * nr - nt);
            }
    }
}

/* The swapped product of one tile: the positions [j0, j0 + nt) are the rows
 * of the GEMM, packed as its A strips straight from the image, the output
 * channels [m0, m0 + mt) its columns (the weights packed as B strips), so
 * that few positions leave no half-empty 32-wide strips. The product goes to
 * ct (nt x mt), which starts at the bias as the unswapped product's output
 * does (the same operations in the same order: the same bits), and is then
 * transposed into yg (rows out_size apart). */
static void conv_swapped_tile(const conv_job *j, float *yg, const float *xg, const float *wpg, int64_t g, int64_t j0,
                              int64_t nt, int64_t m0, int64_t mt, float *ws)
{
    float *packed = align64(ws + j->gws);
    float *ct = packed + j->kdim * round_up(j->ntile, OQ_SGEMM_PACK_ROWS);
    im2col2d_packed(j, packed, xg, j0, nt, OQ_SGEMM_PACK_ROWS);
    const float *bias = j->b ? j->b + g * j->mg + m0 : NULL;
    if (bias)
        for (int64_t r = 0; r < nt; r++) memcpy(ct + r * mt, bias, (size_t)mt * sizeof(float));
    oq_sgemm_args ga = {false, false, nt, mt, j->kdim, 1.0f, bias ? 1.0f : 0.0f, NULL, 0, NULL, 0, ct, mt};
    oq_sgemm_packed_ab(&ga, packed, wpg, NULL, ws);
    for (int64_t m = 0; m < mt; m++) {
        float *yr = yg + m * j->out_size;
        for (int64_t r = 0; r < nt; r++) yr[r] = ct[r * mt + m];
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
    if (j->swapped) {
        const float *wpg = align64((float *)j->wp) + (size_t)g * j->wp_group + m0 * j->kdim;
        conv_swapped_tile(j, yg, xg, wpg, g, j0, nt, m0, mt, ws);
        if (j->ep)
            for (int64_t m = 0; m < mt; m++) j->ep->fn(j->ep->arg, yg + m * j->out_size, nt);
        return;
    }
    oq_sgemm_args ga = {false, false, mt, nt, j->kdim, 1.0f, 0.0f,
                        j->w + (g * j->mg + m0) * j->kdim, j->kdim, NULL, 0, yg, j->out_size};
    const float *cols = NULL; /* im2col: the packed column tile */
    if (j->direct) {
        ga.b = xg + j0;
        ga.ldb = j->in_size;
    } else {
        float *packed = align64(ws + j->gws);
        if (p->nsp == 2) {
            im2col2d_packed(j, packed, xg, j0, nt, oq_sgemm_nr());
        } else {
            float *rowbuf = packed + j->kdim * round_up(j->ntile, OQ_SGEMM_NR_MAX);
            im2col_packed(j, packed, rowbuf, xg, j0, nt, oq_sgemm_nr());
        }
        cols = packed;
    }
    const float *bias = j->b ? j->b + g * j->mg + m0 : NULL;
    const float *wpg = j->wp + (size_t)g * j->wp_group + m0 * j->kdim;
    if (cols)
        oq_sgemm_packed_ab(&ga, wpg, cols, bias, gemm_ws);
    else
        oq_sgemm_packed(&ga, wpg, bias, gemm_ws);
    if (j->ep)
        for (int64_t m = 0; m < mt; m++) j->ep->fn(j->ep->arg, yg + m * j->out_size, nt);
}

static bool conv_is_dw(const oq_conv_params *p)
{
    return p->cin == p->group && p->nsp <= 2;
}

/* Grouped (not depthwise) with few output channels per group, 1-D or 2-D,
 * kernel rows of at most DW_MAX_KW: the direct kernel above. */
static bool conv_is_grouped(const oq_conv_params *p)
{
    return p->group > 1 && !conv_is_dw(p) && p->nsp <= 2 && p->k[p->nsp - 1] <= DW_MAX_KW &&
           p->cout / p->group <= GRP_MAX_MG;
}

static bool conv_is_direct(const oq_conv_params *p)
{
    for (int a = 0; a < p->nsp; a++)
        if (p->k[a] != 1 || p->stride[a] != 1 || p->pad0[a] != 0 || p->in[a] != p->out[a]) return false;
    return true;
}

/* True when a 2-D im2col convolution runs its GEMM swapped (output
 * positions as the rows of the micro-kernel's 6-row strips, output channels
 * as its 32-wide columns): when that pads the product less by 10% or more
 * (few positions, as on 7x7 planes, waste much of a 32-wide strip) and there
 * are 128 output channels or more. One core, weights packed ahead:
 * 512->512 on 7x7 1.25x faster; 192 channels on 17x17 (8% less padding)
 * and 128->32 on 7x7 (32 channels, one strip) 5-8% slower. Depends on the
 * shape only, so packing and running agree. */
static bool conv_swaps(const oq_conv_params *p, int64_t mg, int64_t out_size)
{
    if (p->nsp != 2 || mg < 128) return false;
    int64_t plain = round_up(mg, OQ_SGEMM_PACK_ROWS) * round_up(out_size, OQ_SGEMM_NR_MAX);
    int64_t swapped = round_up(out_size, OQ_SGEMM_PACK_ROWS) * round_up(mg, OQ_SGEMM_NR_MAX);
    return swapped * 100 <= plain * 90;
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
    j->swapped = !j->direct && conv_swaps(p, j->mg, j->out_size);
    /* im2col: column tiles of about 64K floats (a quarter MiB) stay in L2.
     * Direct: whole planes, cut to give every part two tiles and so that an
     * output tile has at most about 64K floats, which the epilogue then
     * finds in L2 (one core, mobilenet_v2's 16->96 1x1 + Clip on 112x112:
     * 0.839 -> 0.722 ms). */
    int64_t nt = max64(64, ((int64_t)1 << 16) / max64(1, j->kdim));
    if (j->direct) {
        int64_t planes = p->n * p->group, want = parts > 1 ? (2 * parts + planes - 1) / planes : 1;
        nt = min64(max64(64, (j->out_size + want - 1) / want), max64(64, ((int64_t)1 << 16) / max64(1, j->mg)));
    }
    nt = round_up(nt, j->swapped ? OQ_SGEMM_PACK_ROWS : OQ_SGEMM_NR_MAX); /* whole strips */
    j->ntile = min64(nt, max64(1, j->out_size));
    j->nt_count = (j->out_size + j->ntile - 1) / j->ntile;
    j->mtile = max64(1, j->mg);
    j->mt_count = 1;
    int64_t items = p->n * p->group * j->nt_count;
    if (items < 2 * (int64_t)parts && j->mg >= 48) {
        /* Too few tiles to keep every part busy: split output channels too. */
        int64_t want = (2 * parts + items - 1) / items;
        int64_t mt = (j->mg + want - 1) / want;
        mt = round_up(mt, j->swapped ? OQ_SGEMM_NR_MAX : 24); /* whole strips */
        j->mtile = min64(mt, j->mg);
        j->mt_count = (j->mg + j->mtile - 1) / j->mtile;
    }
    if (j->swapped) {
        j->gws = oq_sgemm_ws_floats(j->ntile, j->mtile, j->kdim);
        j->wp_group = oq_sgemm_packed_b_floats(j->kdim, j->mg);
        j->wp_floats = j->wp_group * (size_t)p->group + 16;
    } else {
        j->gws = oq_sgemm_ws_floats(j->mtile, j->ntile, j->kdim);
        j->wp_group = oq_sgemm_packed_a_floats(j->mg, j->kdim);
        j->wp_floats = j->wp_group * (size_t)p->group;
    }
}

size_t oq_conv_ws_floats(const oq_conv_params *p, int parts)
{
    if (parts < 1) parts = 1;
    if (oq_wino_fits(p)) return oq_wino_packed_w_floats(p) + oq_wino_ws_floats(p, parts);
    if (oq_ctile_fits(p)) return oq_ctile_packed_w_floats(p) + oq_ctile_ws_floats(p, parts);
    if (conv_is_dw(p) || conv_is_grouped(p)) {
        dw_geom g = dw_geometry(p);
        size_t planes = conv_is_dw(p) ? 1 : (size_t)(p->cin / p->group);
        size_t per = dw_plane_floats(&g) * planes;
        if (conv_is_dw(p) && dwb_ws_floats(&g) > per) per = dwb_ws_floats(&g); /* either path, picked at run time */
        return per * (size_t)parts;
    }
    conv_job j;
    conv_plan(&j, p, parts);
    size_t per = j.gws + (j.direct ? 0 : im2col_ws_floats(&j));
    return j.wp_floats + per * (size_t)parts;
}

size_t oq_conv_packed_w_floats(const oq_conv_params *p)
{
    if (oq_wino_fits(p)) return oq_wino_packed_w_floats(p);
    if (oq_ctile_fits(p)) return oq_ctile_packed_w_floats(p);
    if (conv_is_dw(p) || conv_is_grouped(p)) return 0;
    conv_job j;
    conv_plan(&j, p, 1);
    return j.wp_floats;
}

void oq_conv_pack_w(float *dst, const float *w, const oq_conv_params *p)
{
    if (oq_wino_fits(p)) {
        oq_wino_pack_w(dst, w, p);
        return;
    }
    if (oq_ctile_fits(p)) {
        oq_ctile_pack_w(dst, w, p);
        return;
    }
    if (conv_is_dw(p) || conv_is_grouped(p)) return;
    conv_job j;
    conv_plan(&j, p, 1);
    for (int64_t g = 0; g < p->group; g++) {
        const float *wg = w + g * j.mg * j.kdim;
        if (j.swapped) { /* op(B) = W_g^T (kdim x mg), strips aligned to 64 bytes */
            oq_sgemm_args ga = {false, true, 1, j.mg, j.kdim, 1.0f, 0.0f, NULL, 0, wg, j.kdim, NULL, 0};
            oq_sgemm_pack_b(align64(dst) + (size_t)g * j.wp_group, &ga);
        } else {
            oq_sgemm_args ga = {false, false, j.mg, 1, j.kdim, 1.0f, 0.0f, wg, j.kdim, NULL, 0, NULL, 0};
            oq_sgemm_pack_a(dst + (size_t)g * j.wp_group, &ga);
        }
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
    if (oq_wino_fits(p)) {
        oq_wino_conv(y, x, wp, b, p, c, parts, ws + oq_wino_packed_w_floats(p), ep);
        return;
    }
    if (oq_ctile_fits(p)) {
        oq_ctile_conv(y, x, wp, b, p, c, parts, ws + oq_ctile_packed_w_floats(p), ep);
        return;
    }
    conv_job j;
    conv_plan(&j, p, parts);
    j.y = y, j.x = x, j.w = w, j.b = b, j.ep = ep;
    if (conv_is_dw(p)) {
        j.dw = dw_geometry(p);
        if (dwb_fits(p))
            oq_run_parts(c, parts, p->n * ((p->cout + DWB_CH - 1) / DWB_CH), ws, dwb_ws_floats(&j.dw), conv_dwb_item,
                         &j);
        else
            oq_run_parts(c, parts, p->n * p->cout, ws, dw_plane_floats(&j.dw), conv_dw_item, &j);
        return;
    }
    if (conv_is_grouped(p)) {
        j.dw = dw_geometry(p);
        oq_run_parts(c, parts, p->n * p->group, ws, dw_plane_floats(&j.dw) * (size_t)j.cg, conv_grp_item, &j);
        return;
    }
    j.wp = wp;
    size_t shared = j.wp_floats;
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
