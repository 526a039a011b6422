/* conv_tile.c: direct 2-D stride-1 convolution with a register tile of 32
 * output channels (see conv_tile.h). */
#include "exec/conv_tile.h"

#include <string.h>

#include "exec/gemm.h"
#include "exec/winograd.h"
#include "cpu_dispatch.h"

#if OQ_X86_KERNELS
#include <immintrin.h>
#endif

/* CT_CO output channels per block; at most CT_POS positions per tile, in at
 * most CT_MAX_RT rows (CT_POS x 2 vectors of accumulators, 2 of weights: 30
 * of AVX-512's 32 registers); a band's padded copy within CT_COPY_FLOATS
 * (256 KiB, beside a block's weights in L2) when a band of CT_MAX_RT rows
 * allows. */
enum { CT_CO = 32, CT_POS = 14, CT_MAX_RT = 4, CT_COPY_FLOATS = 1 << 16 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* What a tile kernel reads: the band's padded copy has cin planes of
 * `plane` floats, rows of `cols` floats. */
typedef struct ct_geom {
    int64_t cin, plane, cols;
    int64_t kh, kw, dh, dw;
} ct_geom;

typedef struct ct_plan {
    ct_geom g;
    int64_t cout, blocks;     /* blocks of CT_CO output channels */
    int64_t ih, iw, oh, ow;
    int64_t ph, pw;           /* padding before rows and columns */
    int64_t rt, ct;           /* tile: rt rows of ct positions */
    int64_t band, bands;      /* output rows per item, items per image */
} ct_plan;

/* The tiling of p for `parts` parts: rows shorter than CT_POS go several
 * rows to a tile, longer ones in near-equal pieces; bands are as tall as
 * the copy's budget allows, cut so that every part gets two when the image
 * has the rows. */
static ct_plan ct_plan_of(const oq_conv_params *p, int parts)
{
    ct_plan c = {{p->cin, 0, 0, p->k[0], p->k[1], p->dil[0], p->dil[1]},
                 p->cout, (p->cout + CT_CO - 1) / CT_CO, p->in[0], p->in[1], p->out[0], p->out[1],
                 p->pad0[0], p->pad0[1], 1, 1, 1, 1};
    c.g.cols = c.ow + (c.g.kw - 1) * c.g.dw;
    if (c.ow >= CT_POS) {
        int64_t pieces = (c.ow + CT_POS - 1) / CT_POS;
        c.ct = (c.ow + pieces - 1) / pieces;
    } else {
        c.ct = c.ow;
        c.rt = min64(CT_MAX_RT, CT_POS / c.ow);
    }
    int64_t halo = (c.g.kh - 1) * c.g.dh, per_row = c.g.cin * c.g.cols;
    int64_t band = max64(c.rt, CT_COPY_FLOATS / max64(1, per_row) - halo);
    if (parts > 1) {
        int64_t want = (2 * parts + p->n - 1) / p->n;
        band = min64(band, max64(c.rt, (c.oh + want - 1) / want));
    }
    band = min64(c.oh, band / c.rt * c.rt);
    c.band = max64(1, band);
    c.bands = (c.oh + c.band - 1) / c.band;
    c.g.plane = (c.band + halo) * c.g.cols;
    return c;
}

/* 2-D, ungrouped, stride 1, a kernel of more than one tap, not taken by
 * Winograd (faster on 256->256 at 14x14, even on 64->256 at 13x13), and
 * blocks of 32 output channels at least three quarters used. One core,
 * against im2col + GEMM (bench_conv, thread CPU time): 3x3 128->32 on 7x7
 * 0.118 -> 0.042 ms, 3x3 512->512 on 7x7 3.06 -> 2.14, Inception-v3's 1x7
 * 192->192 on 17x17 1.71 -> 1.35, 7x1 160->192 1.37 -> 1.13, 1x3 384->384 on
 * 8x8 0.646 -> 0.535, 5x5 48->64 on 35x35 2.33 -> 1.67; capped at AVX2
 * (ONNXQ_ISA=avx2, same core) 0.126 -> 0.042, 3.15 -> 2.99, 1.69 -> 1.64,
 * 1.35 -> 1.76 (slower), 0.644 -> 0.701 (slower), 2.51 -> 2.18. */
bool oq_ctile_fits(const oq_conv_params *p)
{
    if (p->nsp != 2 || p->group != 1 || p->stride[0] != 1 || p->stride[1] != 1) return false;
    if (p->out[0] < 1 || p->out[1] < 1) return false;
    if (p->k[0] * p->k[1] < 2 || oq_wino_fits(p)) return false;
    int64_t padded = (p->cout + CT_CO - 1) / CT_CO * CT_CO;
    return p->cout >= CT_CO && 3 * padded <= 4 * p->cout;
}

size_t oq_ctile_packed_w_floats(const oq_conv_params *p)
{
    return (size_t)(((p->cout + CT_CO - 1) / CT_CO) * CT_CO * p->cin * p->k[0] * p->k[1]);
}

void oq_ctile_pack_w(float *dst, const float *w, const oq_conv_params *p)
{
    int64_t taps = p->cin * p->k[0] * p->k[1], blocks = (p->cout + CT_CO - 1) / CT_CO;
    for (int64_t blk = 0; blk < blocks; blk++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t c = 0; c < CT_CO; c++) {
                int64_t co = blk * CT_CO + c;
                dst[(blk * taps + t) * CT_CO + c] = co < p->cout ? w[co * taps + t] : 0.0f;
            }
}

/* Floats of one part's workspace: the band's copy, the tile's outputs and
 * the block's biases, plus slack to align them to 64 bytes. */
static size_t ct_part_floats(const ct_plan *c)
{
    return (size_t)(c->g.cin * c->g.plane + CT_POS * CT_CO + CT_CO) + 16;
}

size_t oq_ctile_ws_floats(const oq_conv_params *p, int parts)
{
    if (parts < 1) parts = 1;
    ct_plan c = ct_plan_of(p, parts);
    return ct_part_floats(&c) * (size_t)parts;
}

/* ---- tile kernels ----------------------------------------------------------------
 * out[(r * ct + j) * CT_CO + c] (r < rt, j < ct, c < CT_CO) = bias[c] plus,
 * channel by channel, tap row by tap row, tap by tap, w times the input under
 * output (r, j); P points at the copy's element under output (0, 0) of the
 * tile for tap (0, 0), w at the block's packed weights. */
typedef void ct_run_fn(float *restrict out, const float *P, const float *restrict w, const float *restrict bias,
                       const ct_geom *g, int64_t rt, int64_t ct);

/* The portable version (the compiler vectorizes the channel loop). */
static void ct_run_generic(float *restrict out, const float *P, const float *restrict w, const float *restrict bias,
                           const ct_geom *g, int64_t rt, int64_t ct)
{
    for (int64_t q = 0; q < rt * ct; q++)
        for (int c = 0; c < CT_CO; c++) out[q * CT_CO + c] = bias[c];
    for (int64_t ci = 0; ci < g->cin; ci++)
        for (int64_t a = 0; a < g->kh; a++)
            for (int64_t b = 0; b < g->kw; b++, w += CT_CO) {
                const float *src = P + ci * g->plane + a * g->dh * g->cols + b * g->dw;
                for (int64_t r = 0; r < rt; r++)
                    for (int64_t j = 0; j < ct; j++) {
                        float v = src[r * g->cols + j], *o = out + (r * ct + j) * CT_CO;
                        for (int c = 0; c < CT_CO; c++) o[c] += v * w[c];
                    }
            }
}

#if OQ_X86_KERNELS
/* The AVX-512 version for a tile of RT x CT (compile-time constants once
 * inlined, so the accumulators stay in registers): each input is broadcast
 * straight from the copy into its two multiply-adds. */
__attribute__((target("avx512f"), always_inline)) static inline void ct_tile_avx512(
    float *restrict out, const float *P, const float *restrict w, const float *restrict bias, const ct_geom *g,
    const int RT, const int CT)
{
    __m512 acc[CT_POS][2];
    const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
    for (int q = 0; q < RT * CT; q++) acc[q][0] = b0, acc[q][1] = b1;
    for (int64_t ci = 0; ci < g->cin; ci++)
        for (int64_t a = 0; a < g->kh; a++) {
            const float *row = P + ci * g->plane + a * g->dh * g->cols;
            for (int64_t b = 0; b < g->kw; b++, w += CT_CO) {
                const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
                const float *src = row + b * g->dw;
                for (int r = 0; r < RT; r++)
                    for (int j = 0; j < CT; j++) {
                        const __m512 v = _mm512_set1_ps(src[r * g->cols + j]);
                        acc[r * CT + j][0] = _mm512_fmadd_ps(v, w0, acc[r * CT + j][0]);
                        acc[r * CT + j][1] = _mm512_fmadd_ps(v, w1, acc[r * CT + j][1]);
                    }
            }
        }
    for (int q = 0; q < RT * CT; q++) {
        _mm512_storeu_ps(out + q * CT_CO, acc[q][0]);
        _mm512_storeu_ps(out + q * CT_CO + 16, acc[q][1]);
    }
}

typedef void ct_fixed_fn(float *restrict out, const float *P, const float *restrict w, const float *restrict bias,
                         const ct_geom *g);
#define CT_FIXED(RT, CT)                                                                                       \
    __attribute__((target("avx512f"))) static void ct_avx512_##RT##x##CT(                                      \
        float *restrict out, const float *P, const float *restrict w, const float *restrict bias, const ct_geom *g) \
    {                                                                                                          \
        ct_tile_avx512(out, P, w, bias, g, RT, CT);                                                            \
    }
CT_FIXED(1, 1) CT_FIXED(1, 2) CT_FIXED(1, 3) CT_FIXED(1, 4) CT_FIXED(1, 5) CT_FIXED(1, 6) CT_FIXED(1, 7)
CT_FIXED(1, 8) CT_FIXED(1, 9) CT_FIXED(1, 10) CT_FIXED(1, 11) CT_FIXED(1, 12) CT_FIXED(1, 13) CT_FIXED(1, 14)
CT_FIXED(2, 1) CT_FIXED(2, 2) CT_FIXED(2, 3) CT_FIXED(2, 4) CT_FIXED(2, 5) CT_FIXED(2, 6) CT_FIXED(2, 7)
CT_FIXED(3, 1) CT_FIXED(3, 2) CT_FIXED(3, 3) CT_FIXED(3, 4)
CT_FIXED(4, 1) CT_FIXED(4, 2) CT_FIXED(4, 3)
#undef CT_FIXED

/* The kernel of each tile shape: ct_fixed[rt - 1][ct - 1], rt * ct <= CT_POS. */
static ct_fixed_fn *const ct_fixed[CT_MAX_RT][CT_POS] = {
    {ct_avx512_1x1, ct_avx512_1x2, ct_avx512_1x3, ct_avx512_1x4, ct_avx512_1x5, ct_avx512_1x6, ct_avx512_1x7,
     ct_avx512_1x8, ct_avx512_1x9, ct_avx512_1x10, ct_avx512_1x11, ct_avx512_1x12, ct_avx512_1x13, ct_avx512_1x14},
    {ct_avx512_2x1, ct_avx512_2x2, ct_avx512_2x3, ct_avx512_2x4, ct_avx512_2x5, ct_avx512_2x6, ct_avx512_2x7},
    {ct_avx512_3x1, ct_avx512_3x2, ct_avx512_3x3, ct_avx512_3x4},
    {ct_avx512_4x1, ct_avx512_4x2, ct_avx512_4x3},
};

static void ct_run_avx512(float *restrict out, const float *P, const float *restrict w, const float *restrict bias,
                          const ct_geom *g, int64_t rt, int64_t ct)
{
    ct_fixed[rt - 1][ct - 1](out, P, w, bias, g);
}

/* The AVX2 version for N (1..3) positions of one row: four vectors of
 * accumulators each, four of weights (AVX2's 16 registers). */
__attribute__((target("avx2,fma"), always_inline)) static inline void ct_row_avx2(
    float *restrict out, const float *P, const float *restrict w, const float *restrict bias, const ct_geom *g,
    const int N)
{
    __m256 acc[3][4];
    for (int j = 0; j < N; j++)
        for (int v = 0; v < 4; v++) acc[j][v] = _mm256_loadu_ps(bias + 8 * v);
    for (int64_t ci = 0; ci < g->cin; ci++)
        for (int64_t a = 0; a < g->kh; a++) {
            const float *row = P + ci * g->plane + a * g->dh * g->cols;
            for (int64_t b = 0; b < g->kw; b++, w += CT_CO) {
                __m256 wv[4];
                for (int v = 0; v < 4; v++) wv[v] = _mm256_loadu_ps(w + 8 * v);
                const float *src = row + b * g->dw;
                for (int j = 0; j < N; j++) {
                    const __m256 x = _mm256_broadcast_ss(src + j);
                    for (int v = 0; v < 4; v++) acc[j][v] = _mm256_fmadd_ps(x, wv[v], acc[j][v]);
                }
            }
        }
    for (int j = 0; j < N; j++)
        for (int v = 0; v < 4; v++) _mm256_storeu_ps(out + j * CT_CO + 8 * v, acc[j][v]);
}

/* The tile, three positions of a row at a time. */
__attribute__((target("avx2,fma"))) static void ct_run_avx2(float *restrict out, const float *P,
                                                            const float *restrict w, const float *restrict bias,
                                                            const ct_geom *g, int64_t rt, int64_t ct)
{
    for (int64_t r = 0; r < rt; r++)
        for (int64_t j = 0; j < ct; j += 3) {
            float *o = out + (r * ct + j) * CT_CO;
            const float *src = P + r * g->cols + j;
            switch (min64(3, ct - j)) {
            case 1: ct_row_avx2(o, src, w, bias, g, 1); break;
            case 2: ct_row_avx2(o, src, w, bias, g, 2); break;
            default: ct_row_avx2(o, src, w, bias, g, 3); break;
            }
        }
}
#endif

static ct_run_fn *const ct_runs[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = ct_run_generic,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = ct_run_avx2,
    [OQ_ISA_AVX512] = ct_run_avx512,
#endif
};

/* ---- driver ---------------------------------------------------------------------- */

typedef struct ct_job {
    ct_plan c;
    float *y;
    const float *x, *wp, *b;
    const oq_conv_epilogue *ep;
} ct_job;

/* Padded input rows [r0, r0 + rows) of the nc planes of x (planes ih x iw)
 * into copy (planes of c->g.plane floats, rows of c->g.cols): zeros where
 * they fall outside the input. */
static void ct_copy_band(float *restrict copy, const float *restrict x, const ct_plan *c, int64_t r0, int64_t rows)
{
    int64_t cols = c->g.cols, lo = min64(c->pw, cols), hi = max64(lo, min64(cols, c->pw + c->iw));
    for (int64_t ci = 0; ci < c->g.cin; ci++)
        for (int64_t r = 0; r < rows; r++) {
            float *d = copy + ci * c->g.plane + r * cols;
            int64_t iy = r0 + r - c->ph;
            if (iy < 0 || iy >= c->ih) {
                memset(d, 0, (size_t)cols * sizeof(float));
                continue;
            }
            memset(d, 0, (size_t)lo * sizeof(float));
            memcpy(d + lo, x + (ci * c->ih + iy) * c->iw + (lo - c->pw), (size_t)(hi - lo) * sizeof(float));
            memset(d + hi, 0, (size_t)(cols - hi) * sizeof(float));
        }
}

/* Item = (image, band of output rows): copies the band's input, then runs
 * every block of output channels over it, tile by tile. */
static void ct_item(void *arg, int64_t i, float *ws)
{
    const ct_job *j = arg;
    const ct_plan *c = &j->c;
    int64_t n = i / c->bands, r0 = i % c->bands * c->band, r1 = min64(c->oh, r0 + c->band);
    int64_t out_size = c->oh * c->ow, taps = c->g.cin * c->g.kh * c->g.kw;
    float *copy = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *tile = copy + c->g.cin * c->g.plane, *bias = tile + CT_POS * CT_CO;
    ct_copy_band(copy, j->x + n * c->g.cin * c->ih * c->iw, c, r0, r1 - r0 + (c->g.kh - 1) * c->g.dh);
    ct_run_fn *run = ct_runs[oq_isa_pick(OQ_ISA_HAVE(ct_runs, ))];
    for (int64_t blk = 0; blk < c->blocks; blk++) {
        int64_t co0 = blk * CT_CO, nco = min64(CT_CO, c->cout - co0);
        for (int64_t k = 0; k < CT_CO; k++) bias[k] = j->b && k < nco ? j->b[co0 + k] : 0.0f;
        float *yb = j->y + (n * c->cout + co0) * out_size;
        for (int64_t y0 = r0; y0 < r1; y0 += c->rt) {
            int64_t rt = min64(c->rt, r1 - y0);
            for (int64_t x0 = 0; x0 < c->ow; x0 += c->ct) {
                int64_t ct = min64(c->ct, c->ow - x0);
                run(tile, copy + (y0 - r0) * c->g.cols + x0, j->wp + blk * taps * CT_CO, bias, &c->g, rt, ct);
                for (int64_t k = 0; k < nco; k++)
                    for (int64_t r = 0; r < rt; r++)
                        for (int64_t q = 0; q < ct; q++)
                            yb[k * out_size + (y0 + r) * c->ow + x0 + q] = tile[(r * ct + q) * CT_CO + k];
            }
        }
        if (j->ep)
            for (int64_t k = 0; k < nco; k++) j->ep->fn(j->ep->arg, yb + k * out_size + r0 * c->ow, (r1 - r0) * c->ow);
    }
}

void oq_ctile_conv(float *y, const float *x, const float *wp, const float *b, const oq_conv_params *p,
                   oq_kernel_ctx *c, int parts, float *ws, const oq_conv_epilogue *ep)
{
    if (parts < 1) parts = 1;
    ct_job j = {ct_plan_of(p, parts), y, x, wp, b, ep};
    oq_run_parts(c, parts, p->n * j.c.bands, ws, ct_part_floats(&j.c), ct_item, &j);
}
