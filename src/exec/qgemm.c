/* qgemm.c: packed, cache-blocked 8-bit GEMM with zero points, its reference,
 * and requantization.
 *
 * Same Goto/BLIS walk as gemm.c: C in NC-wide column panels; per KC-deep
 * slice of K the (KC x NC) slice of B is packed into NR-wide strips, each
 * (MC x KC) block of A into MR-tall strips, and an MR x NR micro-kernel
 * multiplies one A strip by one B strip. Packing widens to int16 and
 * subtracts the zero points, so the kernel sees plain signed values in
 * [-255, 255]; K is packed in pairs so one multiply-add instruction
 * (pmaddwd: two int16 products summed into an int32 lane) does two steps. */
#include "exec/qgemm.h"

#include <math.h>
#include <string.h>

#include "cpu_dispatch.h"

#if OQ_X86_KERNELS
#include <immintrin.h>
#endif

enum { MR = 6, NR = 16, MC = 96, KC = 512, NC = 512 };
_Static_assert(MC % MR == 0 && NC % NR == 0 && KC % 2 == 0, "blocks are whole strips and pairs");
_Static_assert(OQ_QGEMM_WS_MAX >= 2 * ((size_t)MC * KC + (size_t)KC * NC) + 128, "workspace covers both packs");

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

size_t oq_qgemm_ws_bytes(int64_t m, int64_t n, int64_t k)
{
    if (m <= 0 || n <= 0 || k <= 0) return 1;
    int64_t kc = round_up(min64(k, KC), 2), nc = round_up(min64(n, NC), NR), mc = round_up(min64(m, MC), MR);
    return 2 * (size_t)(kc * nc + mc * kc) + 128;
}

/* ---- packing ---------------------------------------------------------------------
 * A strip: dst[pair][r][2] = A[i0+r][p0+2*pair+{0,1}] - za; B strip:
 * dst[pair][c][2] = B[p0+2*pair+{0,1}][j0+c] - zb. Rows, columns and the odd
 * last step past the edge are zero. */

#define DEFINE_PACK(T, SUF)                                                                               \
    static void pack_a_##SUF(int16_t *restrict dst, const oq_qgemm_args *g, int64_t i0, int64_t mc,      \
                             int64_t p0, int64_t kc)                                                      \
    {                                                                                                     \
        int64_t kp = (kc + 1) / 2;                                                                        \
        for (int64_t is = 0; is < mc; is += MR) {                                                         \
            int64_t rows = min64(mc - is, MR);                                                            \
            memset(dst, 0, (size_t)kp * 2 * MR * sizeof *dst);                                            \
            for (int64_t r = 0; r < rows; r++) {                                                          \
                int64_t i = i0 + is + r;                                                                  \
                const T *src = (const T *)g->a + i * g->lda + p0;                                         \
                int32_t z = g->a_zp ? g->a_zp[g->a_zp_per_row ? i : 0] : 0;                               \
                for (int64_t p = 0; p < kc; p++) dst[(p >> 1) * 2 * MR + 2 * r + (p & 1)] = (int16_t)(src[p] - z); \
            }                                                                                             \
            dst += kp * 2 * MR;                                                                           \
        }                                                                                                 \
    }                                                                                                     \
    OQ_CLONED(pack_b_##SUF, (int16_t *restrict dst, const oq_qgemm_args *g, int64_t p0, int64_t kc,      \
                             int64_t j0, int64_t nc), (dst, g, p0, kc, j0, nc))                          \
    {                                                                                                     \
        int16_t zb[NR];                                                                                   \
        for (int64_t js = 0; js < nc; js += NR) {                                                         \
            int64_t cols = min64(nc - js, NR);                                                            \
            for (int64_t c = 0; c < NR; c++)                                                              \
                zb[c] = (int16_t)(c < cols && g->b_zp ? g->b_zp[g->b_zp_per_col ? j0 + js + c : 0] : 0);  \
            const T *src = (const T *)g->b + p0 * g->ldb + j0 + js;                                       \
            for (int64_t p = 0; p < kc; p += 2) {                                                         \
                const T *r0 = src + p * g->ldb, *r1 = p + 1 < kc ? r0 + g->ldb : r0;                      \
                int16_t *d = dst + (p >> 1) * 2 * NR;                                                     \
                if (cols == NR && p + 1 < kc) {                                                           \
                    for (int c = 0; c < NR; c++) {                                                        \
                        d[2 * c] = (int16_t)(r0[c] - zb[c]);                                              \
                        d[2 * c + 1] = (int16_t)(r1[c] - zb[c]);                                          \
                    }                                                                                     \
                    continue;                                                                             \
                }                                                                                         \
                for (int64_t c = 0; c < NR; c++) {                                                        \
                    d[2 * c] = (int16_t)(c < cols ? r0[c] - zb[c] : 0);                                   \
                    d[2 * c + 1] = (int16_t)(c < cols && p + 1 < kc ? r1[c] - zb[c] : 0);                 \
                }                                                                                         \
            }                                                                                             \
            dst += (kc + 1) / 2 * 2 * NR;                                                                 \
        }                                                                                                 \
    }

DEFINE_PACK(uint8_t, u8)
DEFINE_PACK(int8_t, s8)

/* ---- micro-kernels -----------------------------------------------------------------
 * acc[r][c] = sum over kp pairs of a[pair][r] . b[pair][c] (2-element dot
 * products); then c = acc, or c += acc when `add`. c is a full MR x NR tile
 * with row stride ldc. */
typedef void ukernel_fn(int64_t kp, const int16_t *restrict a, const int16_t *restrict b, int32_t *restrict c,
                       int64_t ldc, bool add);

/* Portable: plain loops over a register-sized accumulator block, which the
 * compiler vectorizes along the NR columns. */
static void ukernel_generic(int64_t kp, const int16_t *restrict a, const int16_t *restrict b,
                            int32_t *restrict c, int64_t ldc, bool add)
{
    int32_t acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kp; p++) {
        for (int r = 0; r < MR; r++) {
            int32_t a0 = a[2 * r], a1 = a[2 * r + 1];
            for (int q = 0; q < NR; q++) acc[r][q] += a0 * b[2 * q] + a1 * b[2 * q + 1];
        }
        a += 2 * MR;
        b += 2 * NR;
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NR; q++) c[r * ldc + q] = add ? (int32_t)((uint32_t)c[r * ldc + q] + (uint32_t)acc[r][q]) : acc[r][q];
}

#if OQ_X86_KERNELS
/* Stores the 12 accumulators of a 6 x 16 tile. */
#define STORE_TILE(c, ldc, add, acc)                                                                   \
    for (int r = 0; r < MR; r++) {                                                                     \
        for (int q = 0; q < 2; q++) {                                                                  \
            __m256i *cp = (__m256i *)(c + r * ldc + 8 * q);                                            \
            __m256i v = acc[r][q];                                                                     \
            if (add) v = _mm256_add_epi32(v, _mm256_loadu_si256(cp));                                  \
            _mm256_storeu_si256(cp, v);                                                                \
        }                                                                                              \
    }

/* One broadcast pair of row r of A against the two B vectors. */
static inline int32_t pair_at(const int16_t *a, int r)
{
    int32_t v;
    memcpy(&v, a + 2 * r, sizeof v);
    return v;
}

/* AVX2: 6 rows x 2 vectors of 8 int32 = 12 accumulators; per pair of K two
 * B loads, six broadcasts, twelve pmaddwd. */
__attribute__((target("avx2"))) static void ukernel_avx2(int64_t kp, const int16_t *restrict a,
                                                        const int16_t *restrict b, int32_t *restrict c,
                                                        int64_t ldc, bool add)
{
    __m256i acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t p = 0; p < kp; p++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 16));
        for (int r = 0; r < MR; r++) {
            __m256i ar = _mm256_set1_epi32(pair_at(a, r));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(ar, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(ar, b1));
        }
        a += 2 * MR;
        b += 2 * NR;
    }
    STORE_TILE(c, ldc, add, acc)
}

/* AVX-VNNI: the same tile with vpdpwssd, which fuses the multiply-add and
 * the accumulation into one instruction. */
__attribute__((target("avx2,avxvnni"))) static void ukernel_avxvnni(int64_t kp, const int16_t *restrict a,
                                                                   const int16_t *restrict b,
                                                                   int32_t *restrict c, int64_t ldc, bool add)
{
    __m256i acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t p = 0; p < kp; p++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 16));
        for (int r = 0; r < MR; r++) {
            __m256i ar = _mm256_set1_epi32(pair_at(a, r));
            acc[r][0] = _mm256_dpwssd_avx_epi32(acc[r][0], ar, b0);
            acc[r][1] = _mm256_dpwssd_avx_epi32(acc[r][1], ar, b1);
        }
        a += 2 * MR;
        b += 2 * NR;
    }
    STORE_TILE(c, ldc, add, acc)
}

/* AVX-512 VNNI: one 512-bit B load holds a whole pair-interleaved strip row
 * (16 columns x 2), so the tile is 6 accumulators and a pair of K costs six
 * vpdpwssd. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void ukernel_avx512vnni(
    int64_t kp, const int16_t *restrict a, const int16_t *restrict b, int32_t *restrict c, int64_t ldc, bool add)
{
    __m512i acc[MR];
    for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_si512();
    for (int64_t p = 0; p < kp; p++) {
        __m512i bv = _mm512_load_si512((const void *)b);
        for (int r = 0; r < MR; r++) acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_set1_epi32(pair_at(a, r)), bv);
        a += 2 * MR;
        b += 2 * NR;
    }
    for (int r = 0; r < MR; r++) {
        void *cp = c + r * ldc;
        __m512i v = acc[r];
        if (add) v = _mm512_add_epi32(v, _mm512_loadu_si512(cp));
        _mm512_storeu_si512(cp, v);
    }
}
#endif

/* The micro-kernel of each level, and its name. */
typedef struct kernel_entry {
    ukernel_fn *fn;
    const char *name;
} kernel_entry;

static const kernel_entry kernels[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {ukernel_generic, "generic-6x16"},
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = {ukernel_avx2, "avx2-6x16"},
    [OQ_ISA_AVXVNNI] = {ukernel_avxvnni, "avxvnni-6x16"},
    [OQ_ISA_AVX512VNNI] = {ukernel_avx512vnni, "avx512vnni-6x16"},
#endif
};

static const kernel_entry *pick_kernel(void) { return &kernels[oq_isa_pick(OQ_ISA_HAVE(kernels, .fn))]; }

const char *oq_qgemm_kernel_name(void) { return pick_kernel()->name; }

const char *oq_qgemm_variant(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? kernels[isa].name : NULL; }

/* ---- driver ----------------------------------------------------------------------- */

void oq_qgemm(const oq_qgemm_args *g, void *ws)
{
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) {
        for (int64_t i = 0; i < g->m; i++) memset(g->c + i * g->ldc, 0, (size_t)g->n * sizeof(int32_t));
        return;
    }
    ukernel_fn *kern = pick_kernel()->fn;
    pack_b_u8_fn *pack_b = g->b_signed ? pack_b_s8_pick() : pack_b_u8_pick();
    int64_t m_strips = round_up(g->m, MR); /* rows of a K block of the whole packed A */
    /* 64-byte aligned packs, packed B first (the aligned loads need it). */
    int16_t *bp = (int16_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    int16_t *ap = bp + round_up(min64(g->k, KC), 2) * round_up(min64(g->n, NC), NR);
    int32_t tile[MR * NR];

    for (int64_t j0 = 0; j0 < g->n; j0 += NC) {
        int64_t nc = min64(g->n - j0, NC);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(g->k - p0, KC), kp = (kc + 1) / 2;
            bool add = p0 > 0; /* later K slices accumulate */
            pack_b(bp, g, p0, kc, j0, nc);
            for (int64_t i0 = 0; i0 < g->m; i0 += MC) {
                int64_t mc = min64(g->m - i0, MC);
                const int16_t *ablk = ap;
                if (g->a_packed)
                    ablk = g->a_packed + m_strips * p0 + i0 * kp * 2;
                else if (g->a_signed)
                    pack_a_s8(ap, g, i0, mc, p0, kc);
                else
                    pack_a_u8(ap, g, i0, mc, p0, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = min64(nc - jr, NR);
                    const int16_t *bs = bp + (jr / NR) * kp * 2 * NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = min64(mc - ir, MR);
                        const int16_t *as = ablk + (ir / MR) * kp * 2 * MR;
                        int32_t *cp = g->c + (i0 + ir) * g->ldc + j0 + jr;
                        if (mr == MR && nr == NR) {
                            kern(kp, as, bs, cp, g->ldc, add);
                            continue;
                        }
                        /* Edge tile: run on a full scratch tile, keep the valid part. */
                        kern(kp, as, bs, tile, NR, false);
                        for (int64_t r = 0; r < mr; r++)
                            for (int64_t q = 0; q < nr; q++)
                                cp[r * g->ldc + q] =
                                    add ? (int32_t)((uint32_t)cp[r * g->ldc + q] + (uint32_t)tile[r * NR + q])
                                        : tile[r * NR + q];
                    }
                }
            }
        }
    }
}

size_t oq_qgemm_packed_a_elems(int64_t m, int64_t k) { return (size_t)round_up(m, MR) * (size_t)round_up(k, 2); }

/* K block p0 of the whole A sits at m_strips * p0: earlier blocks are full
 * (KC, even), each as m_strips rows of KC values; oq_qgemm reads it there. */
void oq_qgemm_pack_a(int16_t *dst, const oq_qgemm_args *g)
{
    for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
        int64_t kc = min64(g->k - p0, KC);
        if (g->a_signed)
            pack_a_s8(dst + round_up(g->m, MR) * p0, g, 0, g->m, p0, kc);
        else
            pack_a_u8(dst + round_up(g->m, MR) * p0, g, 0, g->m, p0, kc);
    }
}

void oq_qgemm_ref(const oq_qgemm_args *g)
{
    for (int64_t i = 0; i < g->m; i++) {
        int32_t za = g->a_zp ? g->a_zp[g->a_zp_per_row ? i : 0] : 0;
        for (int64_t j = 0; j < g->n; j++) {
            int32_t zb = g->b_zp ? g->b_zp[g->b_zp_per_col ? j : 0] : 0;
            uint32_t acc = 0; /* wraps like int32 hardware accumulation */
            for (int64_t p = 0; p < g->k; p++) {
                int64_t ai = i * g->lda + p, bi = p * g->ldb + j;
                int32_t av = g->a_signed ? ((const int8_t *)g->a)[ai] : ((const uint8_t *)g->a)[ai];
                int32_t bv = g->b_signed ? ((const int8_t *)g->b)[bi] : ((const uint8_t *)g->b)[bi];
                acc += (uint32_t)((av - za) * (bv - zb));
            }
            g->c[i * g->ldc + j] = (int32_t)acc;
        }
    }
}

/* ---- requantization ----------------------------------------------------------------- */

/* acc + bias in int32, wrapping (no undefined overflow), as a float. */
static inline float biased(int32_t acc, int32_t bias) { return (float)(int32_t)((uint32_t)acc + (uint32_t)bias); }

OQ_CLONED(requant_row, (void *y, bool y_signed, const int32_t *acc, int64_t n, int32_t bias, float mult, int32_t zp),
          (y, y_signed, acc, n, bias, mult, zp))
{
    float lo = (float)((y_signed ? -128 : 0) - zp), hi = (float)((y_signed ? 127 : 255) - zp);
    if (y_signed) {
        int8_t *d = y;
        for (int64_t j = 0; j < n; j++) d[j] = (int8_t)((int32_t)oq_clamp_rint(biased(acc[j], bias) * mult, lo, hi) + zp);
    } else {
        uint8_t *d = y;
        for (int64_t j = 0; j < n; j++) d[j] = (uint8_t)((int32_t)oq_clamp_rint(biased(acc[j], bias) * mult, lo, hi) + zp);
    }
}

OQ_CLONED(requant_cols, (void *y, bool y_signed, const int32_t *acc, int64_t n, const int32_t *bias, const float *mult,
                         int32_t zp), (y, y_signed, acc, n, bias, mult, zp))
{
    float lo = (float)((y_signed ? -128 : 0) - zp), hi = (float)((y_signed ? 127 : 255) - zp);
    for (int64_t j = 0; j < n; j++) {
        float v = oq_clamp_rint(biased(acc[j], bias ? bias[j] : 0) * mult[j], lo, hi);
        int32_t q = (int32_t)v + zp;
        if (y_signed)
            ((int8_t *)y)[j] = (int8_t)q;
        else
            ((uint8_t *)y)[j] = (uint8_t)q;
    }
}

oq_requant_row_fn *oq_requant_row_kernel(void) { return requant_row_pick(); }

oq_requant_cols_fn *oq_requant_cols_kernel(void) { return requant_cols_pick(); }
