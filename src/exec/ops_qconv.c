/* ops_qconv.c: QLinearConv and ConvInteger. Grouped convolutions run on the
 * 8-bit GEMM (qgemm.c), through a byte im2col padded with the input zero
 * point (2-D: from a padded block of the rows a tile reads), or straight on
 * the input for 1x1 kernels; depthwise 2-D ones are
 * summed tap by tap from the input plane, or row by row in registers where
 * AVX2 is enabled. Weights that are constants are packed once per session. */
#include <string.h>

#include "cpu_dispatch.h"
#include "exec/conv.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qgemm.h"
#include "exec/qops.h"

/* ---- QLinearConv and ConvInteger --------------------------------------------------------- */

enum { TILE_P = 256 }; /* output positions per work item */

typedef struct qconv_job {
    oq_conv_params p;
    const uint8_t *x;       /* (n, cin, in...) 8-bit */
    const uint8_t *w;       /* (cout, cin/group, k...) 8-bit */
    bool x_signed, w_signed;
    int32_t x_zp;
    const int32_t *w_zp;    /* NULL, or (cout) when w_zp_per_ch, else (1) */
    bool w_zp_per_ch;
    int64_t cin_g, cout_g;  /* channels per group */
    int64_t kdim;           /* cin_g * prod(k): the GEMM depth */
    int64_t plane_in;       /* prod(in) */
    int64_t plane_out;      /* prod(out) */
    int64_t tile_p;         /* output positions per work item: TILE_P, or whole rows (depthwise: see dw_chunk) */
    int64_t dw_chunk;       /* depthwise: output positions summed and requantized at a time: TILE_P, or whole
                               rows of it; a work item is whole chunks whose padded input rows fit QDW_PAD_BYTES */
    int64_t ptiles;         /* column tiles per (image, group) */
    bool direct;            /* 1x1 taps, stride 1, no pads: x is the GEMM's B */
    bool depthwise;         /* 2-D, one input and one output channel per group: summed tap by tap */
    size_t block_bytes;     /* 2-D im2col: bytes of a work item's padded block (see im2col_block), else 0 */
    bool w_const;           /* weights and their zero points are constants: packed once (w_packed) */
    const uint8_t *w_packed; /* NULL, or each group's weights as oq_qgemm_pack_a leaves them */
    size_t w_packed_group;  /* bytes per group in w_packed (a multiple of 64) */
    void *y;                /* (n, cout, out...) int32 or 8-bit */
    oq_qout out;               /* rows are output channels */
} qconv_job;

/* Lowers output positions [c0, c0+tp) of one image and group to columns:
 * col[r][t] for tap row r = (channel, kernel offset...) is the input byte the
 * tap reads, or `pad` (the input zero point) outside the input. x points at
 * the group's first input channel. */
OQ_CLONED(im2col_bytes, (uint8_t *restrict col, int64_t ldcol, const uint8_t *restrict x, const qconv_job *j, int64_t c0,
                         int64_t tp, uint8_t pad), (col, ldcol, x, j, c0, tp, pad))
{
    const oq_conv_params *p = &j->p;
    int d = p->nsp, last = d - 1;
    int64_t taps = j->kdim / j->cin_g;
    int64_t o0[OQ_MAX_RANK - 2], kc[OQ_MAX_RANK - 2] = {0}; /* c0's coordinates; row r's kernel offset */
    for (int64_t a = last, pos = c0; a >= 0; a--) {
        o0[a] = pos % p->out[a];
        pos /= p->out[a];
    }
    for (int64_t r = 0; r < j->kdim; r++) {
        if (r > 0) /* the next kernel offset, the channel following the last */
            for (int a = last; a >= 0 && ++kc[a] == p->k[a]; a--) kc[a] = 0;
        int64_t ci = r / taps, o[OQ_MAX_RANK - 2];
        memcpy(o, o0, sizeof o);
        const uint8_t *xc = x + ci * j->plane_in;
        uint8_t *dst = col + r * ldcol;
        int64_t s = p->stride[last], base = kc[last] * p->dil[last] - p->pad0[last], in_last = p->in[last];
        /* output columns [lo, hi) along the last dim read inside the input */
        int64_t lo = base >= 0 ? 0 : (-base + s - 1) / s, hi = base > in_last - 1 ? 0 : (in_last - 1 - base) / s + 1;
        for (int64_t t = 0; t < tp;) {
            /* One run along the last spatial dim: the outer coordinates are fixed. */
            int64_t run = p->out[last] - o[last];
            if (run > tp - t) run = tp - t;
            bool inside = true;
            int64_t off = 0;
            for (int a = 0; a < last; a++) {
                int64_t ia = o[a] * p->stride[a] - p->pad0[a] + kc[a] * p->dil[a];
                inside = inside && ia >= 0 && ia < p->in[a];
                off = off * p->in[a] + ia;
            }
            if (!inside) {
                memset(dst + t, pad, (size_t)run);
            } else {
                /* Steps u in [u0, u1) read inside the input; pad around them. */
                const uint8_t *xr = xc + off * in_last;
                int64_t first = base + o[last] * s; /* input index of step 0 */
                int64_t u0 = lo - o[last], u1 = hi - o[last];
                u0 = u0 < 0 ? 0 : u0 > run ? run : u0;
                u1 = u1 < u0 ? u0 : u1 > run ? run : u1;
                if (u0 > 0) memset(dst + t, pad, (size_t)u0);
                if (s == 1) {
                    memcpy(dst + t + u0, xr + first + u0, (size_t)(u1 - u0));
                } else if (s == 2) { /* a constant stride: the loop vectorizes */
                    for (int64_t u = u0; u < u1; u++) dst[t + u] = xr[first + u * 2];
                } else {
                    for (int64_t u = u0; u < u1; u++) dst[t + u] = xr[first + u * s];
                }
                if (run > u1) memset(dst + t + u1, pad, (size_t)(run - u1));
            }
            t += run;
            o[last] += run;
            for (int a = last; a > 0 && o[a] >= p->out[a]; a--) {
                o[a] = 0;
                o[a - 1]++;
            }
        }
    }
}

/* ---- 2-D im2col from a padded block ------------------------------------------------------------
 * The input rows a work item reads, of every channel of its group, are first
 * copied into a block padded with the input zero point on every side; each
 * run of output columns of an im2col row is then a plain strided copy with
 * no bounds to check. Grouped convolutions with few channels per group on
 * small planes (RegNet's) make runs of a few bytes, where im2col_bytes'
 * per-run bounds and calls cost more than the copy. */

enum { BLOCK_MAX_BYTES = 1 << 20, BLOCK_SLACK = 64 }; /* larger blocks take im2col_bytes */

/* The padded input rows output positions [c0, c0 + tp) read: *rows rows
 * from padded row *row0 (input row *row0 - pad0[0]). */
static void block_span(const qconv_job *j, int64_t c0, int64_t tp, int64_t *row0, int64_t *rows)
{
    const oq_conv_params *p = &j->p;
    int64_t ow = p->out[1], oh0 = c0 / ow, oh1 = (c0 + tp - 1) / ow;
    *row0 = oh0 * p->stride[0];
    *rows = (oh1 - oh0) * p->stride[0] + (p->k[0] - 1) * p->dil[0] + 1;
}

/* Bytes of the block of any tile of TILE_P positions or fewer, with slack
 * for 8-byte reads past its end; 0 when that is over BLOCK_MAX_BYTES. */
static size_t padded_block_bytes(const qconv_job *j)
{
    const oq_conv_params *p = &j->p;
    int64_t out_rows = TILE_P / p->out[1] + 2; /* a tile starting mid-row */
    if (out_rows > p->out[0]) out_rows = p->out[0];
    int64_t rows = (out_rows - 1) * p->stride[0] + (p->k[0] - 1) * p->dil[0] + 1;
    int64_t bytes = j->cin_g * rows * (p->in[1] + p->pad0[1] + p->pad1[1]) + BLOCK_SLACK;
    return bytes <= BLOCK_MAX_BYTES ? (size_t)bytes : 0;
}

/* blk (cin_g, rows, padded width) = the group's input x at padded rows
 * [row0, row0 + rows), `pad` outside the input. */
static void block_fill(uint8_t *blk, const uint8_t *x, const qconv_job *j, int64_t row0, int64_t rows, uint8_t pad)
{
    const oq_conv_params *p = &j->p;
    int64_t h = p->in[0], w = p->in[1], left = p->pad0[1], wp = w + left + p->pad1[1];
    for (int64_t ci = 0; ci < j->cin_g; ci++)
        for (int64_t r = 0; r < rows; r++) {
            uint8_t *d = blk + (ci * rows + r) * wp;
            int64_t ih = row0 + r - p->pad0[0];
            if (ih < 0 || ih >= h) {
                memset(d, pad, (size_t)wp);
                continue;
            }
            memset(d, pad, (size_t)left);
            memcpy(d + left, x + ci * j->plane_in + ih * w, (size_t)w);
            memset(d + left + w, pad, (size_t)(wp - left - w));
        }
}

/* im2col_bytes' columns for output positions [c0, c0 + tp) of a 2-D
 * convolution, read from blk as block_fill left it for rows [row0, row0 +
 * rows). Stride-1 runs are copied 8 bytes at a time: a run may write up to
 * 7 bytes past its end, which the next run or row overwrites, so col needs
 * BLOCK_SLACK bytes past its last row, and blk has them past its end. */
OQ_CLONED(im2col_block, (uint8_t *restrict col, int64_t ldcol, const uint8_t *restrict blk, const qconv_job *j,
                         int64_t c0, int64_t tp, int64_t rows), (col, ldcol, blk, j, c0, tp, rows))
{
    const oq_conv_params *p = &j->p;
    int64_t ow = p->out[1], kh = p->k[0], kw = p->k[1], sh = p->stride[0], sw = p->stride[1];
    int64_t wp = p->in[1] + p->pad0[1] + p->pad1[1];
    for (int64_t r = 0; r < j->kdim; r++) {
        int64_t ci = r / (kh * kw), ky = r / kw % kh, kx = r % kw;
        const uint8_t *src = blk + (ci * rows + ky * p->dil[0]) * wp + kx * p->dil[1]; /* output row c0 / ow */
        uint8_t *dst = col + r * ldcol;
        for (int64_t t = 0, x0 = c0 % ow; t < tp; src += sh * wp, x0 = 0) {
            int64_t run = ow - x0 < tp - t ? ow - x0 : tp - t;
            const uint8_t *s = src + x0 * sw;
            uint8_t *d = dst + t;
            if (sw == 1) {
                for (int64_t u = 0; u < run; u += 8) {
                    uint64_t v;
                    memcpy(&v, s + u, 8);
                    memcpy(d + u, &v, 8);
                }
            } else if (sw == 2) { /* a constant stride: the loop vectorizes */
                for (int64_t u = 0; u < run; u++) d[u] = s[u * 2];
            } else {
                for (int64_t u = 0; u < run; u++) d[u] = s[u * sw];
            }
            t += run;
        }
    }
}

enum {
    QDW_MAX_TAPS = 64,    /* kernels up to 8x8 (and 8 rows) take the vector path */
    QDW_PAD_BYTES = 32768, /* input rows of one work item, padded, for the vector path (in L1 with a chunk's sums) */
    QDW_PAD_SLACK = 64,    /* bytes past them the fill writes and the runs read */
    QDW_FLAT_OW = 64       /* stride-1 rows under this many outputs are summed stacked (see qdw_flat) */
};

/* One channel's weights for the runs, made once per work item. */
typedef struct qdw_taps {
    int32_t wt[QDW_MAX_TAPS]; /* (kh, kw): the weight less its zero point */
    int32_t wq[8 * 2];        /* (kh, quad): four int8 wt of a kernel row, zero past kw; when quads */
    bool quads;               /* every wt fits int8 and rows have at most 8 taps: wq is filled */
} qdw_taps;

/* A run of output columns of one depthwise output row, on AVX2: out[o] = sum
 * over the taps of the kernel rows used of wt[tap] * x[tap](o) - corr for o
 * in [0, n), n >= 8, 16 outputs at a time in two registers (8 in one when
 * n < 16; the last ones may overlap those before: they are written, not
 * added). rows[r] points at the padded uint8 input (int8 input is shifted
 * to uint8 when the rows are padded) under output 0 for the r-th
 * kernel row used, with at least 32 readable bytes past the last one a tap
 * reads (the stride-2 loads take 32 bytes at a time); the kernel rows used
 * are kh0, kh0 + 1, ... of w (kw_n taps each); corr is the input zero point
 * times the sum of the weights used. qdw_run_kernel gives NULL where AVX2
 * is not enabled. */
typedef void qdw_run_fn(int32_t *out, const uint8_t *const *rows, const qdw_taps *w, int64_t kh0,
                       int64_t kh_n, int64_t kw_n, int64_t dw, int64_t n, int32_t corr);

#if OQ_X86_KERNELS
#include <immintrin.h>

static inline __attribute__((always_inline, target("avx2"))) void
qdw_run_body(int32_t *out, const uint8_t *const *rows, const qdw_taps *w, int64_t kh0, int64_t kh_n, int64_t kw_n,
             int64_t dw, int64_t n, int32_t corr, int sw)
{
    const int32_t *wt = w->wt + kh0 * kw_n;
    const __m128i evens = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i c = _mm256_set1_epi32(corr);
    for (int64_t o0 = 0; n < 16 && o0 < n; o0 += 8) { /* 8 to 15 outputs: 8 at a time */
        int64_t o = o0 + 8 <= n ? o0 : n - 8;
        __m256i s0 = _mm256_setzero_si256();
        for (int64_t kh = 0; kh < kh_n; kh++)
            for (int64_t kw = 0; kw < kw_n; kw++) {
                const uint8_t *q = rows[kh] + o * sw + kw * dw;
                __m128i b = sw == 1 ? _mm_loadl_epi64((const __m128i *)q)
                                    : _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)q), evens);
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b), _mm256_set1_epi32(wt[kh * kw_n + kw])));
            }
        _mm256_storeu_si256((__m256i *)(out + o), _mm256_sub_epi32(s0, c));
    }
    for (int64_t o0 = 0; n >= 16 && o0 < n; o0 += 16) {
        int64_t o = o0 + 16 <= n ? o0 : n - 16;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (int64_t kh = 0; kh < kh_n; kh++)
            for (int64_t kw = 0; kw < kw_n; kw++) {
                const uint8_t *q = rows[kh] + o * sw + kw * dw;
                __m256i wv = _mm256_set1_epi32(wt[kh * kw_n + kw]);
                __m128i b0, b1;
                if (sw == 1) { /* q[0..16) */
                    b0 = _mm_loadu_si128((const __m128i *)q);
                    b1 = _mm_srli_si128(b0, 8);
                } else { /* q[0], q[2], ..., q[30] */
                    b0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)q), evens);
                    b1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 16)), evens);
                }
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b0), wv));
                s1 = _mm256_add_epi32(s1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b1), wv));
            }
        _mm256_storeu_si256((__m256i *)(out + o), _mm256_sub_epi32(s0, c));
        _mm256_storeu_si256((__m256i *)(out + o + 8), _mm256_sub_epi32(s1, c));
    }
}

#define QDW_RUN(NAME, SW)                                                                               \
    __attribute__((target("avx2"))) static void NAME(int32_t *out, const uint8_t *const *rows, const qdw_taps *w, \
                                                     int64_t kh0, int64_t kh_n, int64_t kw_n, int64_t dw,       \
                                                     int64_t n, int32_t corr)                                   \
    {                                                                                                        \
        qdw_run_body(out, rows, w, kh0, kh_n, kw_n, dw, n, corr, SW);                                        \
    }
QDW_RUN(qdw_run_u8_s1, 1)
QDW_RUN(qdw_run_u8_s2, 2)
#undef QDW_RUN

/* AVX-512 VNNI: 16 outputs a register, four taps of a kernel row a
 * vpdpbusd: each output's four input bytes are gathered from one load by
 * vpermd (the two or three dwords under a 128-bit lane's four outputs) and
 * vpshufb (the byte windows), then multiplied by the four weights. It needs
 * uint8 input, dw 1, w->quads and at least 8 outputs; otherwise the AVX2 run does the row. A row
 * under 16 outputs is one register stored under a mask; the others overlap
 * their last register with the one before. The padded rows have the 32 bytes
 * past the last tap this reads (up to 3 taps past the row's last and, at
 * stride 2, 40 bytes a load, masked; with 8 outputs, 16 read up to 16 taps
 * past the row's last). */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vnni"))) void
qdw_run_vnni_body(int32_t *out, const uint8_t *const *rows, const qdw_taps *w, int64_t kh0, int64_t kh_n,
                  int64_t kw_n, int64_t n, int32_t corr, int sw)
{
    const __m512i perm = sw == 1 ? _mm512_setr_epi32(0, 1, 0, 0, 1, 2, 0, 0, 2, 3, 0, 0, 3, 4, 0, 0)
                                 : _mm512_setr_epi32(0, 1, 2, 0, 2, 3, 4, 0, 4, 5, 6, 0, 6, 7, 8, 0);
    const __m512i win = sw == 1 ? _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6))
                                : _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9));
    const __m512i c = _mm512_set1_epi32(corr);
    int64_t quads = (kw_n + 3) / 4;
    const int32_t *wq = w->wq + kh0 * 2;
    for (int64_t o0 = 0; o0 < n; o0 += 16) {
        int64_t o = o0 + 16 <= n || n < 16 ? o0 : n - 16;
        __m512i s = _mm512_setzero_si512();
        for (int64_t kh = 0; kh < kh_n; kh++)
            for (int64_t t = 0; t < quads; t++) {
                const uint8_t *q = rows[kh] + o * sw + 4 * t;
                __m512i x = sw == 1 ? _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)q))
                                    : _mm512_maskz_loadu_epi8(((__mmask64)1 << 40) - 1, q);
                x = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(perm, x), win);
                s = _mm512_dpbusd_epi32(s, x, _mm512_set1_epi32(wq[kh * 2 + t]));
            }
        _mm512_mask_storeu_epi32(out + o, n < 16 ? (__mmask16)((1u << n) - 1) : (__mmask16)0xffff,
                                 _mm512_sub_epi32(s, c));
    }
}

/* The VNNI run where its conditions hold, else the AVX2 one. */
#define QDW_RUN_VNNI(NAME, SW, FALLBACK)                                                                        \
    __attribute__((target("avx512f,avx512bw,avx512vnni"))) static void NAME(                                    \
        int32_t *out, const uint8_t *const *rows, const qdw_taps *w, int64_t kh0, int64_t kh_n, int64_t kw_n,   \
        int64_t dw, int64_t n, int32_t corr)                                                                    \
    {                                                                                                           \
        if (w->quads && dw == 1 && n >= 8)                                                                      \
            qdw_run_vnni_body(out, rows, w, kh0, kh_n, kw_n, n, corr, SW);                                      \
        else                                                                                                    \
            FALLBACK(out, rows, w, kh0, kh_n, kw_n, dw, n, corr);                                               \
    }
QDW_RUN_VNNI(qdw_run_u8_s1_vnni, 1, qdw_run_u8_s1)
QDW_RUN_VNNI(qdw_run_u8_s2_vnni, 2, qdw_run_u8_s2)
#undef QDW_RUN_VNNI

#endif

/* The run kernels of each level by [stride - 1]; at the baseline there are
 * none and every run goes tap by tap. */
typedef struct qdw_runs {
    qdw_run_fn *fn[2];
    const char *name;
} qdw_runs;

static const qdw_runs qdw_run_table[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {{NULL, NULL}, "tap-by-tap"},
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = {{qdw_run_u8_s1, qdw_run_u8_s2}, "avx2-rows"},
    [OQ_ISA_AVX512VNNI] = {{qdw_run_u8_s1_vnni, qdw_run_u8_s2_vnni}, "avx512vnni-rows"},
#endif
};

const char *oq_qdw_variant(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? qdw_run_table[isa].name : NULL; }

/* The run kernel for stride sw at the enabled level, or NULL. */
static qdw_run_fn *qdw_run_kernel(int64_t sw)
{
    if (sw != 1 && sw != 2)
        return NULL;
    return qdw_run_table[oq_isa_pick(OQ_ISA_HAVE(qdw_run_table, .name))].fn[sw - 1];
}

/* One channel of a depthwise 2-D conv for one work item: its weights and,
 * for the vector runs, the input rows the item's output positions read,
 * copied once with the input zero point in the padding around them (which
 * adds 0). Filled by qdw_prepare, read by qdw_sums. */
typedef struct qdw_channel {
    const qconv_job *j;
    const uint8_t *x;         /* the channel's input plane (H, W) */
    const uint8_t *wc;        /* the channel's weights (KH, KW) */
    int32_t zw;               /* the channel's weight zero point */
    qdw_run_fn *vec;          /* the run kernel, or NULL: tap by tap */
    qdw_taps w;               /* with vec */
    int32_t row_corr[8];      /* with vec: row_corr[kh] = the padded rows' zero point times kernel row kh's weights */
    const uint8_t *padded;    /* with vec: input rows [r0, r1) at stride bw, input column c at c + pw */
    int64_t r0, bw;
    bool flat;                /* with vec: qdw_flat; the rows start at output row oh0's first */
    int64_t oh0;
} qdw_channel;

/* True when the vector runs of depthwise conv p sum a work item's output
 * rows as one run over its padded input rows stacked without gaps: stride 1
 * and rows under QDW_FLAT_OW outputs, where a run a row costs more than its
 * sums. Rows outside the input are then padded too (every kernel row is
 * used), a row is OW + (KW - 1) * dw bytes, and each output row's run is
 * followed by KW - 1 sums across the row's end, which are dropped. */
static bool qdw_flat(const oq_conv_params *p)
{
    return p->stride[0] == 1 && p->stride[1] == 1 && p->out[1] < QDW_FLAT_OW;
}

/* Sums qdw_sums writes for tp output positions: with qdw_flat, tp / OW
 * rows of OW + (KW - 1) * dw (8 at least), else tp. */
static int64_t qdw_acc_ints(const oq_conv_params *p, int64_t tp)
{
    int64_t rows = (p->out[1] + (p->k[1] - 1) * p->dil[1]) * (tp / p->out[1]);
    return qdw_flat(p) && rows + 8 > tp ? rows + 8 : tp;
}

/* Bytes between padded rows of the vector runs (+ 32: see qdw_run_body). */
static int64_t qdw_row_bytes(const oq_conv_params *p)
{
    return (p->out[1] - 1) * p->stride[1] + (p->k[1] - 1) * p->dil[1] + 1 + 32;
}

/* d[0, n) = s[0, n): a row under 32 bytes in two moves of 16, 8 or 4 bytes
 * whose second ends at n (they overlap), which the compiler keeps inline; a
 * depthwise layer has many short rows, where a call to memcpy costs more
 * than the copy. */
static inline __attribute__((always_inline)) void qdw_copy_row(uint8_t *restrict d, const uint8_t *restrict s,
                                                               int64_t n)
{
#define QDW_COPY_TWO(STEP)                              \
    do {                                                \
        memcpy(d, s, (STEP));                           \
        memcpy(d + n - (STEP), s + n - (STEP), (STEP)); \
    } while (0)
    if (n >= 32)
        memcpy(d, s, (size_t)n);
    else if (n >= 16)
        QDW_COPY_TWO(16);
    else if (n >= 8)
        QDW_COPY_TWO(8);
    else if (n >= 4)
        QDW_COPY_TWO(4);
    else
        for (int64_t i = 0; i < n; i++) d[i] = s[i];
#undef QDW_COPY_TWO
}

/* Fills *d for channel ch (input plane x) and output positions [c0, c0+tp)
 * (whole rows when qdw_flat): the weights, and the padded input rows in buf
 * (QDW_PAD_BYTES + QDW_PAD_SLACK) when a vector run kernel is enabled, the
 * kernel fits it and the rows fit buf. */
OQ_CLONED(qdw_prepare, (qdw_channel *restrict d, uint8_t *restrict buf, const uint8_t *restrict x, const qconv_job *j,
                        int64_t ch, int64_t c0, int64_t tp), (d, buf, x, j, ch, c0, tp))
{
    const oq_conv_params *p = &j->p;
    int64_t H = p->in[0], W = p->in[1], OW = p->out[1], KH = p->k[0], KW = p->k[1];
    int64_t sh = p->stride[0], dh = p->dil[0], ph = p->pad0[0], pw = p->pad0[1];
    int32_t zx = j->x_zp;
    d->j = j;
    d->x = x;
    d->wc = j->w + ch * KH * KW;
    d->zw = j->w_zp ? j->w_zp[j->w_zp_per_ch ? ch : 0] : 0;
    bool flat = qdw_flat(p);
    int64_t bw = flat ? OW + (KW - 1) * p->dil[1] : qdw_row_bytes(p);
    int64_t r0 = (c0 / OW) * sh - ph, r1 = ((c0 + tp - 1) / OW) * sh - ph + (KH - 1) * dh + 1;
    if (!flat) {
        r0 = r0 > 0 ? r0 : 0;
        r1 = r1 < H ? r1 : H;
    }
    bool fits = KH * KW <= QDW_MAX_TAPS && KH <= 8 && r1 > r0 && (r1 - r0) * bw <= QDW_PAD_BYTES;
    d->vec = fits ? qdw_run_kernel(p->stride[1]) : NULL;
    if (!d->vec) return;
    d->padded = buf;
    d->r0 = r0;
    d->bw = bw;
    d->flat = flat;
    d->oh0 = c0 / OW;
    qdw_taps *w = &d->w;
    /* int8 input is copied shifted by 128 (x ^ 0x80) with its zero point,
     * which leaves every x - zx as it was and lets the uint8 runs sum it */
    uint8_t flip = j->x_signed ? 0x80 : 0;
    int32_t zr = j->x_signed ? zx + 128 : zx; /* the zero point of the padded rows */
    memset(d->row_corr, 0, sizeof d->row_corr);
    for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++) {
            int64_t k = kh * KW + kw;
            w->wt[k] = (j->w_signed ? (int32_t)(int8_t)d->wc[k] : (int32_t)d->wc[k]) - d->zw;
            d->row_corr[kh] += w->wt[k] * zr;
        }
    w->quads = KW <= 8;
    for (int64_t k = 0; w->quads && k < KH * KW; k++)
        w->quads = w->wt[k] >= -128 && w->wt[k] <= 127;
    for (int64_t kh = 0; w->quads && kh < KH; kh++)
        for (int64_t t = 0; t < 2; t++) {
            uint32_t v = 0;
            for (int64_t e = 0; e < 4; e++)
                v |= (uint32_t)(uint8_t)(4 * t + e < KW ? (int8_t)w->wt[kh * KW + 4 * t + e] : 0) << (8 * e);
            w->wq[kh * 2 + t] = (int32_t)v;
        }
    uint8_t fill[32];
    memset(fill, (uint8_t)zr, sizeof fill);
    int64_t left = pw < bw ? pw : bw, n = W < bw - left ? W : bw - left; /* n < W: columns no tap reads */
    for (int64_t r = r0; r < r1; r++) {
        uint8_t *dst = buf + (r - r0) * bw;
        const uint8_t *s = x + r * W;
        for (int64_t i = 0; i < bw; i += 32) memcpy(dst + i, fill, 32); /* up to 31 bytes past the row */
        if (r < 0 || r >= H) /* flat: a row of the padding */
            continue;
        if (flip)
            for (int64_t i = 0; i < n; i++) dst[left + i] = s[i] ^ flip;
        else
            qdw_copy_row(dst + left, s, n);
    }
}

/* Sums of the depthwise channel d for output positions [c0, c0+tp), a part
 * of those qdw_prepare was given (whole rows when qdw_flat), into acc
 * (qdw_acc_ints(p, tp) ints). With a vector kernel every run
 * of outputs along a row is summed in registers from the padded rows (a run
 * under 8 as 8, past the row's end into the padding); without one every run
 * goes tap by tap: each tap adds (w - zw) * (x - zx) along the run, taps
 * outside the input left out. */
#define QDW_TAP_RUN(XT)                                                                       \
    do {                                                                                      \
        const XT *src = (const XT *)row + off;                                                \
        if (sw == 1)                                                                          \
            for (int64_t o = lo; o < hi; o++) a[o - ow0] += wv * ((int32_t)src[o] - zx);      \
        else                                                                                  \
            for (int64_t o = lo; o < hi; o++) a[o - ow0] += wv * ((int32_t)src[o * sw] - zx); \
    } while (0)

OQ_CLONED(qdw_sums, (int32_t *restrict acc, const qdw_channel *restrict d, int64_t c0, int64_t tp), (acc, d, c0, tp))
{
    const qconv_job *j = d->j;
    const oq_conv_params *p = &j->p;
    int64_t H = p->in[0], W = p->in[1], OW = p->out[1], KH = p->k[0], KW = p->k[1];
    int64_t sh = p->stride[0], sw = p->stride[1], dh = p->dil[0], dw = p->dil[1], ph = p->pad0[0], pw = p->pad0[1];
    int32_t zx = j->x_zp, zw = d->zw;
    const uint8_t *x = d->x, *wc = d->wc;
    qdw_run_fn *vec = d->vec;
    if (vec && d->flat) {
        /* output row c0 / OW + i is at acc + i * bw until the rows are moved together */
        int64_t rows_n = tp / OW, n = (rows_n - 1) * d->bw + OW;
        const uint8_t *rows[8];
        int32_t corr = 0;
        for (int64_t kh = 0; kh < KH; kh++) {
            rows[kh] = d->padded + (c0 / OW - d->oh0 + kh * dh) * d->bw;
            corr += d->row_corr[kh];
        }
        if (n >= 8) {
            vec(acc, rows, &d->w, 0, KH, KW, dw, n, corr);
        } else {
            int32_t eight[8];
            vec(eight, rows, &d->w, 0, KH, KW, dw, 8, corr);
            memcpy(acc, eight, (size_t)n * sizeof *acc);
        }
        for (int64_t i = 1; i < rows_n; i++) memmove(acc + i * OW, acc + i * d->bw, (size_t)OW * sizeof *acc);
        return;
    }
    if (!vec) /* the vector runs write every output */
        memset(acc, 0, (size_t)tp * sizeof *acc);
    for (int64_t t = 0; t < tp;) {
        int64_t oh = (c0 + t) / OW, ow0 = (c0 + t) % OW, run = OW - ow0 < tp - t ? OW - ow0 : tp - t;
        int32_t *a = acc + t;
        if (vec) {
            const uint8_t *rows[8];
            int64_t used = 0, first = -1;
            int32_t corr = 0;
            for (int64_t kh = 0; kh < KH; kh++) {
                int64_t ih = oh * sh - ph + kh * dh;
                if (ih < 0 || ih >= H) continue;
                first = first < 0 ? kh : first;
                rows[used++] = d->padded + (ih - d->r0) * d->bw + ow0 * sw;
                corr += d->row_corr[kh];
            }
            /* (the kernel rows inside the input are consecutive: first, first + 1, ...) */
            if (!used) {
                memset(a, 0, (size_t)run * sizeof *a);
            } else if (run >= 8) {
                vec(a, rows, &d->w, first, used, KW, dw, run, corr);
            } else {
                /* A row under 8 outputs (small planes): 8 are summed, the
                 * row's own kept; the padded row has the bytes the others read. */
                int32_t eight[8];
                vec(eight, rows, &d->w, first, used, KW, dw, 8, corr);
                memcpy(a, eight, (size_t)run * sizeof *a);
            }
            t += run;
            continue;
        }
        for (int64_t kh = 0; kh < KH; kh++) {
            int64_t ih = oh * sh - ph + kh * dh;
            if (ih < 0 || ih >= H) continue;
            const uint8_t *row = x + ih * W;
            for (int64_t kw = 0; kw < KW; kw++) {
                int32_t wv = (j->w_signed ? (int32_t)(int8_t)wc[kh * KW + kw] : (int32_t)wc[kh * KW + kw]) - zw;
                /* output columns o whose tap reads input column o * sw + off inside [0, W) */
                int64_t off = kw * dw - pw;
                int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw, hi = W - 1 - off >= 0 ? (W - 1 - off) / sw + 1 : 0;
                lo = lo > ow0 ? lo : ow0;
                hi = hi < ow0 + run ? hi : ow0 + run;
                if (wv == 0 || lo >= hi) continue;
                if (j->x_signed)
                    QDW_TAP_RUN(int8_t);
                else
                    QDW_TAP_RUN(uint8_t);
            }
        }
        t += run;
    }
}
#undef QDW_TAP_RUN

static void qconv_item(void *arg, int64_t it, uint8_t *ws)
{
    const qconv_job *j = arg;
    int64_t tile = it % j->ptiles, gi = (it / j->ptiles) % j->p.group, ni = it / (j->ptiles * j->p.group);
    int64_t P = j->plane_out, c0 = tile * j->tile_p, tp = P - c0 < j->tile_p ? P - c0 : j->tile_p;
    int64_t ch0 = gi * j->cout_g; /* first output channel of the group */
    const uint8_t *xg = j->x + (ni * j->p.cin + gi * j->cin_g) * j->plane_in;
    int32_t *acc = (int32_t *)ws;
    uint8_t *col = ws + (j->out.requant ? (size_t)j->cout_g * TILE_P * sizeof(int32_t) : 0);
    oq_qgemm_args g = {
        .m = j->cout_g, .n = tp, .k = j->kdim,
        .a = j->w + ch0 * j->kdim, .lda = j->kdim, .a_signed = j->w_signed,
        .a_zp = j->w_zp && j->w_zp_per_ch ? j->w_zp + ch0 : j->w_zp, .a_zp_per_row = j->w_zp_per_ch,
        .b_signed = j->x_signed, .b_zp = &j->x_zp,
        .a_packed = j->w_packed ? j->w_packed + gi * j->w_packed_group : NULL,
    };
    if (j->depthwise) {
        /* the channel's rows are padded once per item, then summed (and requantized) a chunk at a time */
        qdw_channel d;
        qdw_prepare(&d, ws + (size_t)qdw_acc_ints(&j->p, j->dw_chunk) * sizeof(int32_t), xg, j, ch0, c0, tp);
        qdw_sums_fn *sums_fn = qdw_sums_pick();
        for (int64_t k0 = c0; k0 < c0 + tp; k0 += j->dw_chunk) {
            int64_t kn = c0 + tp - k0 < j->dw_chunk ? c0 + tp - k0 : j->dw_chunk;
            sums_fn(acc, &d, k0, kn);
            if (j->out.requant)
                oq_qout_write(&j->out, (uint8_t *)j->y + ni * j->p.cout * P, P, ch0, k0, acc, kn, 1, kn, NULL);
            else
                memcpy((int32_t *)j->y + (ni * j->p.cout + ch0) * P + k0, acc, (size_t)kn * sizeof *acc);
        }
        return;
    }
    uint8_t *gws = col;
    if (j->direct) {
        g.b = xg + c0;
        g.ldb = P;
    } else {
        uint8_t *blk = col + (size_t)j->kdim * TILE_P + BLOCK_SLACK;
        if (j->block_bytes) {
            int64_t row0, rows;
            block_span(j, c0, tp, &row0, &rows);
            block_fill(blk, xg, j, row0, rows, (uint8_t)j->x_zp);
            im2col_block(col, tp, blk, j, c0, tp, rows);
        } else {
            im2col_bytes(col, tp, xg, j, c0, tp, (uint8_t)j->x_zp);
        }
        g.b = col;
        g.ldb = tp;
        gws = blk + j->block_bytes;
    }
    if (!j->out.requant) {
        g.c = (int32_t *)j->y + (ni * j->p.cout + ch0) * P + c0;
        g.ldc = P;
        oq_qgemm(&g, gws);
        return;
    }
    g.c = acc;
    g.ldc = tp;
    oq_qgemm(&g, gws);
    oq_qout_write(&j->out, (uint8_t *)j->y + ni * j->p.cout * P, P, ch0, c0, acc, tp, j->cout_g, tp, NULL);
}

/* Reads an INTS attribute that must have exactly n entries when present;
 * fills v with it or with def. */
static oq_status ints_attr(oq_kernel_ctx *c, const char *name, int n, int64_t def, int64_t *v)
{
    int cnt = 0;
    const int64_t *a = oq_node_attr_ints(c->node, name, &cnt);
    if (a && cnt != n) return OQ_KERR(c, "attribute %s has %d values, expected %d", name, cnt, n);
    for (int i = 0; i < n; i++) v[i] = a ? a[i] : def;
    return OQ_OK;
}

/* Conv geometry from x, w and the node's attributes (group, kernel_shape,
 * strides, dilations, pads, auto_pad), as ONNX Conv defines it. */
static oq_status qconv_setup(oq_kernel_ctx *c, const oq_tensor *x, const oq_tensor *w, qconv_job *j)
{
    oq_conv_params *p = &j->p;
    oq_status st;
    if (x->rank < 3) return OQ_KERR(c, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->rank);
    if (w->rank != x->rank) return OQ_KERR(c, "weight rank %d differs from input rank %d", w->rank, x->rank);
    int d = p->nsp = x->rank - 2;
    p->n = x->dims[0];
    p->cin = x->dims[1];
    p->cout = w->dims[0];
    p->group = oq_node_attr_int(c->node, "group", 1);
    if (p->group < 1 || p->cin % p->group || p->cout % p->group || w->dims[1] * p->group != p->cin)
        return OQ_KERR(c, "group %lld does not fit %lld input channels, weight (%lld, %lld, ...)",
                       (long long)p->group, (long long)p->cin, (long long)w->dims[0], (long long)w->dims[1]);
    int64_t ks[OQ_MAX_RANK], pads[2 * OQ_MAX_RANK];
    if ((st = ints_attr(c, "kernel_shape", d, -1, ks)) || (st = ints_attr(c, "strides", d, 1, p->stride)) ||
        (st = ints_attr(c, "dilations", d, 1, p->dil)) || (st = ints_attr(c, "pads", 2 * d, 0, pads)))
        return st;
    const char *ap = oq_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool upper = !strcmp(ap, "SAME_UPPER"), same = upper || !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same && !valid && strcmp(ap, "NOTSET") && ap[0])
        return OQ_KERR(c, "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
    j->plane_in = j->plane_out = 1;
    int64_t taps = 1;
    bool unit = true;
    for (int a = 0; a < d; a++) {
        p->in[a] = x->dims[2 + a];
        p->k[a] = w->dims[2 + a];
        if (ks[a] >= 0 && ks[a] != p->k[a]) return OQ_KERR(c, "kernel_shape disagrees with the weight shape");
        if (p->k[a] < 1 || p->stride[a] < 1 || p->dil[a] < 1 || pads[a] < 0 || pads[d + a] < 0)
            return OQ_KERR(c, "kernel dims, strides and dilations must be positive and pads non-negative");
        int64_t ext = p->dil[a] * (p->k[a] - 1) + 1;
        if (same) {
            /* Output = ceil(in / stride); the odd pad goes at the end for SAME_UPPER. */
            p->out[a] = (p->in[a] + p->stride[a] - 1) / p->stride[a];
            int64_t total = (p->out[a] - 1) * p->stride[a] + ext - p->in[a];
            if (total < 0) total = 0;
            p->pad0[a] = upper ? total / 2 : total - total / 2;
            p->pad1[a] = total - p->pad0[a];
        } else {
            p->pad0[a] = valid ? 0 : pads[a];
            p->pad1[a] = valid ? 0 : pads[d + a];
            int64_t span = p->in[a] + p->pad0[a] + p->pad1[a] - ext;
            if (span < 0) return OQ_KERR(c, "kernel extent %lld exceeds the padded input along spatial dim %d", (long long)ext, a);
            p->out[a] = span / p->stride[a] + 1;
        }
        unit = unit && p->k[a] == 1 && p->stride[a] == 1 && p->pad0[a] == 0 && p->pad1[a] == 0;
        j->plane_in *= p->in[a];
        j->plane_out *= p->out[a];
        taps *= p->k[a];
    }
    j->cin_g = p->cin / p->group;
    j->cout_g = p->cout / p->group;
    j->kdim = j->cin_g * taps;
    j->direct = unit;
    j->depthwise = d == 2 && j->cin_g == 1 && j->cout_g == 1;
    j->x = x->data;
    j->w = w->data;
    j->x_signed = x->dtype == OQ_DTYPE_INT8;
    j->w_signed = w->dtype == OQ_DTYPE_INT8;
    return OQ_OK;
}

/* Packs each group's weights for the GEMM (see qconv_job.w_packed). */
static void pack_conv_weights(void *dst, void *arg)
{
    const qconv_job *j = arg;
    for (int64_t gi = 0; gi < j->p.group; gi++) {
        int64_t ch0 = gi * j->cout_g;
        oq_qgemm_args a = {.m = j->cout_g, .k = j->kdim, .a = j->w + ch0 * j->kdim, .lda = j->kdim,
                           .a_signed = j->w_signed, .a_zp = j->w_zp && j->w_zp_per_ch ? j->w_zp + ch0 : j->w_zp,
                           .a_zp_per_row = j->w_zp_per_ch};
        oq_qgemm_pack_a((uint8_t *)dst + gi * j->w_packed_group, &a);
    }
}

/* Output positions of a depthwise chunk: whole output rows when one fits
 * in TILE_P, so that rows are not cut short, else TILE_P. */
static int64_t depthwise_chunk(const oq_conv_params *p)
{
    int64_t ow = p->out[1];
    return ow <= TILE_P ? TILE_P / ow * ow : TILE_P;
}

/* Output positions of a depthwise work item: as many whole chunks of chunk
 * positions (whole rows) as have their padded input rows fit QDW_PAD_BYTES,
 * the whole plane when it does, and one chunk at least. */
static int64_t depthwise_tile(const oq_conv_params *p, int64_t chunk)
{
    int64_t ow = p->out[1], plane = p->out[0] * ow;
    if (chunk % ow) return chunk; /* rows longer than a chunk */
    int64_t in_rows = QDW_PAD_BYTES / qdw_row_bytes(p);         /* padded rows that fit */
    int64_t ext = (p->k[0] - 1) * p->dil[0] + 1;                /* input rows an output row reads */
    int64_t out_rows = in_rows < ext ? 0 : (in_rows - ext) / p->stride[0] + 1;
    int64_t tile = out_rows / (chunk / ow) * chunk;
    return tile < chunk ? chunk : tile > plane ? plane : tile;
}

/* Sizes y (n, cout, out...) of type ydt and runs the job over every
 * (image, group, column tile). */
static oq_status qconv_run(oq_kernel_ctx *c, qconv_job *j, oq_dtype ydt)
{
    int64_t dims[OQ_MAX_RANK];
    dims[0] = j->p.n;
    dims[1] = j->p.cout;
    for (int a = 0; a < j->p.nsp; a++) dims[2 + a] = j->p.out[a];
    oq_tensor *y = oq_kernel_output_raw(c, 0, ydt, j->p.nsp + 2, dims); /* the work items write every output */
    if (!y) return c->err->status;
    j->y = y->data;
    int64_t numel = oq_tensor_numel(y);
    if (numel == 0) return OQ_OK;
    if (j->kdim == 0) {
        /* No taps: every sum is 0. */
        if (!j->out.requant) {
            memset(y->data, 0, y->nbytes);
            return OQ_OK;
        }
        for (int64_t i = 0; i < j->p.n * j->p.cout; i++) {
            int32_t zero[1] = {0};
            int64_t ch = i % j->p.cout;
            for (int64_t t = 0; t < j->plane_out; t++)
                oq_qout_write(&j->out, (uint8_t *)j->y + (i / j->p.cout) * j->p.cout * j->plane_out + t, j->plane_out,
                           ch, 0, zero, 1, 1, 1, NULL);
        }
        return OQ_OK;
    }
    if (j->w_const && !j->depthwise) {
        /* packed on the first run and kept by the session */
        j->w_packed_group = (oq_qgemm_packed_a_bytes(j->cout_g, j->kdim) + 63) / 64 * 64;
        j->w_packed = oq_kernel_cache(c, (size_t)j->p.group * j->w_packed_group, pack_conv_weights, j);
        if (!j->w_packed) return c->err->status;
    }
    j->tile_p = TILE_P;
    size_t ws;
    if (j->depthwise) {
        j->dw_chunk = depthwise_chunk(&j->p);
        j->tile_p = depthwise_tile(&j->p, j->dw_chunk);
        ws = (size_t)qdw_acc_ints(&j->p, j->dw_chunk) * sizeof(int32_t) + QDW_PAD_BYTES + QDW_PAD_SLACK;
    } else {
        int64_t tp = j->plane_out < TILE_P ? j->plane_out : TILE_P;
        j->block_bytes = !j->direct && j->p.nsp == 2 ? padded_block_bytes(j) : 0;
        ws = (j->out.requant ? (size_t)j->cout_g * TILE_P * sizeof(int32_t) : 0) +
             (j->direct ? 0 : (size_t)j->kdim * TILE_P + BLOCK_SLACK + j->block_bytes) +
             oq_qgemm_ws_bytes(j->cout_g, tp, j->kdim);
    }
    j->ptiles = (j->plane_out + j->tile_p - 1) / j->tile_p;
    return oq_run_items(c, j->p.n * j->p.group * j->ptiles, ws, qconv_item, j);
}

/* Zero points of the weight: one, or one per output channel. */
static oq_status weight_zp(oq_kernel_ctx *c, const oq_qparams *q, qconv_job *j)
{
    j->w_zp = q->zp;
    j->w_zp_per_ch = q->count > 1;
    if (q->count != 1 && q->count != j->p.cout)
        return OQ_KERR(c, "weight has %lld quantization parameters for %lld output channels", (long long)q->count,
                       (long long)j->p.cout);
    return OQ_OK;
}

static oq_status k_qlinear_conv(oq_kernel_ctx *c)
{
    const oq_tensor *x, *w, *bias = oq_kernel_input(c, 8);
    oq_qparams qx, qw, qy;
    oq_dtype ydt;
    oq_status st;
    qconv_job j = {0};
    if ((st = oq_require_8bit(c, 0, &x)) || (st = oq_require_8bit(c, 3, &w)) ||
        (st = oq_read_qparams(c, 1, 2, x->dtype, &qx)) || (st = oq_read_weight_qparams(c, 4, 5, w->dtype, &qw)) ||
        (st = oq_qlinear_out_type(c, 7, x->dtype, &ydt)) || (st = oq_read_qparams(c, 6, 7, ydt, &qy)) ||
        (st = qconv_setup(c, x, w, &j)) || (st = weight_zp(c, &qw, &j)))
        return st;
    if (qx.count != 1 || qy.count != 1) return OQ_KERR(c, "x and y quantization parameters must be per tensor");
    if (bias && (bias->dtype != OQ_DTYPE_INT32 || bias->rank != 1 || bias->dims[0] != j.p.cout))
        return OQ_KERR(c, "bias must be int32 with %lld entries", (long long)j.p.cout);
    float *mult = oq_kernel_scratch(c, (size_t)j.p.cout * sizeof *mult);
    if (!mult) return c->err->status;
    for (int64_t ch = 0; ch < j.p.cout; ch++) mult[ch] = qx.scale[0] * qw.scale[qw.count > 1 ? ch : 0] / qy.scale[0];
    j.x_zp = qx.zp[0];
    j.w_const = oq_kernel_input_const(c, 3) && (!oq_kernel_input(c, 5) || oq_kernel_input_const(c, 5));
    j.out = (oq_qout){.requant = true, .y_signed = ydt == OQ_DTYPE_INT8, .y_zp = qy.zp[0], .row_mult = mult,
                   .row_step = 1, .bias = bias ? bias->data : NULL};
    return qconv_run(c, &j, ydt);
}

static oq_status k_conv_integer(oq_kernel_ctx *c)
{
    const oq_tensor *x, *w;
    oq_qparams qx, qw;
    oq_status st;
    qconv_job j = {0};
    if ((st = oq_require_8bit(c, 0, &x)) || (st = oq_require_8bit(c, 1, &w)) || (st = oq_int_zero_points(c, 2, x, &qx)) ||
        (st = oq_int_zero_points(c, 3, w, &qw)) || (st = qconv_setup(c, x, w, &j)) || (st = weight_zp(c, &qw, &j)))
        return st;
    if (qx.count != 1) return OQ_KUNSUP(c, "x_zero_point must be a scalar");
    j.x_zp = qx.zp ? qx.zp[0] : 0;
    j.w_const = oq_kernel_input_const(c, 1) && (!oq_kernel_input(c, 3) || oq_kernel_input_const(c, 3));
    j.out = (oq_qout){.requant = false};
    return qconv_run(c, &j, OQ_DTYPE_INT32);
}

/* ---- the table -------------------------------------------------------------------------- */

const oq_op_def oq_ops_qconv[] = {
    {"", "QLinearConv", 10, OQ_DT(FLOAT) | OQ_DT_Q8 | OQ_DT(INT32), k_qlinear_conv},
    {"", "ConvInteger", 10, OQ_DT_Q8 | OQ_DT(INT32), k_conv_integer},
};
const int oq_ops_qconv_count = (int)(sizeof oq_ops_qconv / sizeof oq_ops_qconv[0]);
