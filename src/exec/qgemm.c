/* qgemm.c: packed, cache-blocked 8-bit GEMM with zero points, its reference,
 * and requantization.
 *
 * Same Goto/BLIS walk as gemm.c: C in NC-wide column panels; per KC-deep
 * slice of K the (KC x NC) slice of B is packed into strips a micro-kernel
 * width wide, each (MC x KC) block of A into strips a micro-kernel tall, and
 * the micro-kernel multiplies one A strip by one B strip. Two packed formats:
 * - pairs: packing widens to int16 and subtracts the zero points, so the
 *   kernel sees plain signed values in [-255, 255]; K goes in pairs so one
 *   pmaddwd (two int16 products summed into an int32 lane) does two steps.
 * - quads (AVX-512 VNNI): bytes stay bytes, A made int8 and B uint8 (an
 *   operand of the other signedness is moved by 128, and its zero point
 *   with it); K goes in groups of four so one vpdpbusd (four u8 x s8
 *   products summed into an int32 lane) does four steps. The zero points are
 *   applied when a tile is stored, from row sums of A and column sums of B
 *   kept beside each strip:
 *     sum (a - za)(b - zb) = sum a*b - zb * sum a - za * (sum b - kc * zb),
 *   exact in wrapping int32 arithmetic, like the reference. */
#include "exec/qgemm.h"

#include <math.h>
#include <string.h>

#include "cpu_dispatch.h"

#if OQ_X86_KERNELS
#include <immintrin.h>
#endif

enum { MR = 6, NR = 16, MC = 96, KC = 512, NC = 512 };
enum { QMR = 8, QNR = 32 }; /* the quads micro-kernel's tile */
_Static_assert(MC % MR == 0 && NC % NR == 0 && KC % 2 == 0, "blocks are whole strips and pairs");
_Static_assert(MC % QMR == 0 && NC % QNR == 0 && KC % 4 == 0, "blocks are whole strips and quads");
_Static_assert(OQ_QGEMM_WS_MAX >= 2 * ((size_t)MC * KC + (size_t)KC * NC) + 128, "workspace covers both packs");

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* Bytes of one packed quads strip of kc steps of K: the bytes, then int32
 * sums[width] and zero points[width] (see the quads packing below). */
static int64_t quad_strip_bytes(int64_t kc, int64_t width) { return round_up(kc, 4) * width + 2 * width * 4; }

/* Bytes of the pairs packs (B slice, then A block) for blocks (kc, nc, mc). */
static size_t pairs_ws(int64_t kc, int64_t nc, int64_t mc)
{
    return 2 * (size_t)(round_up(kc, 2) * round_up(nc, NR) + round_up(mc, MR) * round_up(kc, 2));
}

/* Bytes of the quads packs, B slice rounded to 64 so that A follows aligned. */
static size_t quads_ws(int64_t kc, int64_t nc, int64_t mc)
{
    return (size_t)(round_up(round_up(nc, QNR) / QNR * quad_strip_bytes(kc, QNR), 64) +
                    round_up(mc, QMR) / QMR * quad_strip_bytes(kc, QMR));
}

size_t oq_qgemm_ws_bytes(int64_t m, int64_t n, int64_t k)
{
    if (m <= 0 || n <= 0 || k <= 0) return 1;
    int64_t kc = min64(k, KC), nc = min64(n, NC), mc = min64(m, MC);
    size_t p = pairs_ws(kc, nc, mc), q = quads_ws(kc, nc, mc);
    return (p > q ? p : q) + 128;
}
_Static_assert(2 * ((size_t)MC * KC + (size_t)KC * NC) >= (size_t)KC * NC + (size_t)NC / QNR * 2 * QNR * 4 + (size_t)MC * KC + (size_t)MC / QMR * 2 * QMR * 4,
               "the quads packs fit in the pairs workspace bound");

/* ---- pairs packing ---------------------------------------------------------------
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

/* ---- pairs micro-kernels -----------------------------------------------------------
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
#endif

/* ---- quads: packing and micro-kernel (AVX-512 VNNI) -------------------------------
 * A strip (QMR rows): bytes[quad][r][4] = a'[i0+r][p0+4*quad+{0..3}] as int8,
 * then int32 sum[r] = sum over the slice of a'[i0+r][.] and zp[r] = za'. B
 * strip (QNR columns): bytes[quad][c][4] = b'[p0+4*quad+{0..3}][j0+c] as
 * uint8, then int32 sum[c] = sum over the slice of b'[.][j0+c] - kc * zb' and
 * zp[c] = zb'. a' = a and za' = za for int8 A; a' = a - 128, za' = za - 128
 * for uint8 A; b' = b for uint8 B, b' = b + 128, zb' = zb + 128 for int8 B.
 * Rows, columns and steps past the edge are zero bytes with zero sums and
 * zero points. Sums wrap in uint32, as the products they correct do. */
#if OQ_X86_KERNELS

/* Zero point of A row i and of B column j, as the quads format moves them. */
static int32_t quad_za(const oq_qgemm_args *g, int64_t i)
{
    int32_t z = g->a_zp ? g->a_zp[g->a_zp_per_row ? i : 0] : 0;
    return g->a_signed ? z : z - 128;
}
static int32_t quad_zb(const oq_qgemm_args *g, int64_t j)
{
    int32_t z = g->b_zp ? g->b_zp[g->b_zp_per_col ? j : 0] : 0;
    return g->b_signed ? z + 128 : z;
}

/* Packs rows [i0, i0+mc) of A, K steps [p0, p0+kc), as strips into dst:
 * each row 64 bytes at a time (a masked load at its end), summed with
 * vpdpbusd of ones by its bytes, its quads moved to their strip slots. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void pack_a_quads(
    uint8_t *restrict dst, const oq_qgemm_args *g, int64_t i0, int64_t mc, int64_t p0, int64_t kc)
{
    int64_t kq = (kc + 3) / 4, sb = quad_strip_bytes(kc, QMR);
    const __m512i flip = _mm512_set1_epi8((char)(g->a_signed ? 0 : 0x80)), ones = _mm512_set1_epi8(1);
    for (int64_t is = 0; is < mc; is += QMR) {
        int64_t rows = min64(mc - is, QMR);
        int32_t sums[QMR] = {0}, zps[QMR] = {0};
        if (rows < QMR) memset(dst, 0, (size_t)(kq * 4 * QMR));
        for (int64_t r = 0; r < rows; r++) {
            int64_t i = i0 + is + r;
            const uint8_t *src = (const uint8_t *)g->a + i * g->lda + p0;
            __m512i sum = _mm512_setzero_si512();
            for (int64_t p = 0; p < kc; p += 64) {
                __mmask64 valid = kc - p >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (kc - p)) - 1;
                __m512i v = _mm512_maskz_mov_epi8(valid, _mm512_xor_si512(_mm512_maskz_loadu_epi8(valid, src + p), flip));
                sum = _mm512_dpbusd_epi32(sum, ones, v);
                uint32_t quads[16];
                _mm512_storeu_si512(quads, v);
                int64_t n = min64(16, kq - p / 4);
                uint8_t *d = dst + (p / 4) * 4 * QMR + 4 * r;
                for (int64_t t = 0; t < n; t++) memcpy(d + t * 4 * QMR, &quads[t], 4);
            }
            sums[r] = _mm512_reduce_add_epi32(sum);
            zps[r] = quad_za(g, i);
        }
        memcpy(dst + kq * 4 * QMR, sums, sizeof sums);
        memcpy(dst + kq * 4 * QMR + sizeof sums, zps, sizeof zps);
        dst += sb;
    }
}

/* Packs columns [j0, j0+nc) of B, K steps [p0, p0+kc), as strips into dst:
 * per quad, four rows of 32 bytes (masked loads past the last column, zero
 * rows past kc) interleaved in registers, and summed with vpdpbusd against
 * ones. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void pack_b_quads(
    uint8_t *restrict dst, const oq_qgemm_args *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc)
{
    _Static_assert(QNR == 32, "one strip row is one 32-byte load");
    int64_t kq = (kc + 3) / 4, sb = quad_strip_bytes(kc, QNR);
    const __m256i flip = _mm256_set1_epi8((char)(g->b_signed ? 0x80 : 0)), ones = _mm256_set1_epi8(1);
    for (int64_t js = 0; js < nc; js += QNR) {
        int64_t cols = min64(nc - js, QNR);
        __mmask32 valid = cols == QNR ? ~(__mmask32)0 : ((__mmask32)1 << cols) - 1;
        const uint8_t *src = (const uint8_t *)g->b + p0 * g->ldb + j0 + js;
        __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                        _mm256_setzero_si256()}; /* column sums, columns 0-7, 8-15, 16-23, 24-31 */
        for (int64_t q = 0; q < kq; q++) {
            __m256i x[4];
            for (int e = 0; e < 4; e++)
                x[e] = 4 * q + e < kc ? _mm256_maskz_mov_epi8(valid, _mm256_xor_si256(_mm256_maskz_loadu_epi8(
                                                                         valid, src + (4 * q + e) * g->ldb), flip))
                                      : _mm256_setzero_si256();
            /* per 128-bit lane: bytes of rows 0,1 and 2,3 interleaved, then the pairs */
            __m256i t01l = _mm256_unpacklo_epi8(x[0], x[1]), t01h = _mm256_unpackhi_epi8(x[0], x[1]);
            __m256i t23l = _mm256_unpacklo_epi8(x[2], x[3]), t23h = _mm256_unpackhi_epi8(x[2], x[3]);
            __m256i q0 = _mm256_unpacklo_epi16(t01l, t23l); /* columns 0-3 | 16-19 */
            __m256i q1 = _mm256_unpackhi_epi16(t01l, t23l); /* 4-7 | 20-23 */
            __m256i q2 = _mm256_unpacklo_epi16(t01h, t23h); /* 8-11 | 24-27 */
            __m256i q3 = _mm256_unpackhi_epi16(t01h, t23h); /* 12-15 | 28-31 */
            __m256i o[4] = {_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q2, q3, 0x20),
                            _mm256_permute2x128_si256(q0, q1, 0x31), _mm256_permute2x128_si256(q2, q3, 0x31)};
            __m256i *d = (__m256i *)(dst + q * 4 * QNR);
            for (int v = 0; v < 4; v++) {
                _mm256_store_si256(d + v, o[v]);
                s[v] = _mm256_dpbusd_epi32(s[v], o[v], ones);
            }
        }
        int32_t sums[QNR], zps[QNR];
        for (int v = 0; v < 4; v++) _mm256_storeu_si256((__m256i *)(sums + 8 * v), s[v]);
        for (int64_t c = 0; c < QNR; c++) {
            zps[c] = c < cols ? quad_zb(g, j0 + js + c) : 0;
            sums[c] = (int32_t)((uint32_t)sums[c] - (uint32_t)kc * (uint32_t)zps[c]);
        }
        memcpy(dst + kq * 4 * QNR, sums, sizeof sums);
        memcpy(dst + kq * 4 * QNR + sizeof sums, zps, sizeof zps);
        dst += sb;
    }
}

/* QMR rows x QNR columns = 8 x 2 accumulators of 16 int32; per quad of K two
 * B loads, eight broadcasts of four A bytes, sixteen vpdpbusd. The store
 * subtracts zb'[c] * asum[r] + za'[r] * bsum[c] (the strips' sums) and
 * writes c = tile, or c += tile when `add`. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void ukernel_quads_avx512vnni(
    int64_t kq, const uint8_t *restrict a, const uint8_t *restrict b, int32_t *restrict c, int64_t ldc, bool add)
{
    __m512i acc[QMR][2];
    for (int r = 0; r < QMR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    const uint8_t *ap = a, *bp = b;
    for (int64_t p = 0; p < kq; p++) {
        __m512i b0 = _mm512_load_si512((const void *)bp), b1 = _mm512_load_si512((const void *)(bp + 64));
        for (int r = 0; r < QMR; r++) {
            int32_t quad;
            memcpy(&quad, ap + 4 * r, sizeof quad);
            __m512i ar = _mm512_set1_epi32(quad);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, ar);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, ar);
        }
        ap += 4 * QMR;
        bp += 4 * QNR;
    }
    const int32_t *asum = (const int32_t *)(a + kq * 4 * QMR), *aza = asum + QMR;
    const int32_t *bsum = (const int32_t *)(b + kq * 4 * QNR), *bzb = bsum + QNR;
    __m512i bs0 = _mm512_loadu_si512(bsum), bs1 = _mm512_loadu_si512(bsum + 16);
    __m512i bz0 = _mm512_loadu_si512(bzb), bz1 = _mm512_loadu_si512(bzb + 16);
    for (int r = 0; r < QMR; r++) {
        __m512i as = _mm512_set1_epi32(asum[r]), az = _mm512_set1_epi32(aza[r]);
        __m512i v0 = _mm512_sub_epi32(acc[r][0], _mm512_add_epi32(_mm512_mullo_epi32(bz0, as), _mm512_mullo_epi32(az, bs0)));
        __m512i v1 = _mm512_sub_epi32(acc[r][1], _mm512_add_epi32(_mm512_mullo_epi32(bz1, as), _mm512_mullo_epi32(az, bs1)));
        int32_t *cp = c + r * ldc;
        if (add) {
            v0 = _mm512_add_epi32(v0, _mm512_loadu_si512(cp));
            v1 = _mm512_add_epi32(v1, _mm512_loadu_si512(cp + 16));
        }
        _mm512_storeu_si512(cp, v0);
        _mm512_storeu_si512(cp + 16, v1);
    }
}
#endif

/* The micro-kernel of each level: one of the two formats, and its name. */
typedef void ukernel_quads_fn(int64_t kq, const uint8_t *restrict a, const uint8_t *restrict b, int32_t *restrict c,
                              int64_t ldc, bool add);
typedef struct kernel_entry {
    ukernel_fn *pairs;
    ukernel_quads_fn *quads;
    const char *name;
} kernel_entry;

static const kernel_entry kernels[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {ukernel_generic, NULL, "generic-6x16"},
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = {ukernel_avx2, NULL, "avx2-6x16"},
    [OQ_ISA_AVXVNNI] = {ukernel_avxvnni, NULL, "avxvnni-6x16"},
    [OQ_ISA_AVX512VNNI] = {NULL, ukernel_quads_avx512vnni, "avx512vnni-u8s8-8x32"},
#endif
};

static const kernel_entry *pick_kernel(void) { return &kernels[oq_isa_pick(OQ_ISA_HAVE(kernels, .name))]; }

const char *oq_qgemm_kernel_name(void) { return pick_kernel()->name; }

const char *oq_qgemm_variant(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? kernels[isa].name : NULL; }

/* ---- drivers ---------------------------------------------------------------------- */

/* An operand packed whole (oq_qgemm_pack_a, oq_qgemm_pack_b) starts with a
 * header naming its format; the packed strips follow at PACK_HEADER bytes. */
enum { PACK_HEADER = 64 };
enum { FORMAT_PAIRS = 0x51503136u, FORMAT_QUADS = 0x51513834u };

static uint32_t format_of(const kernel_entry *ke) { return ke->quads ? FORMAT_QUADS : FORMAT_PAIRS; }

/* Writes the header of an operand packed whole for kernel ke at dst; returns
 * where its strips go. */
static uint8_t *write_pack_header(void *dst, const kernel_entry *ke)
{
    uint32_t format = format_of(ke);
    memset(dst, 0, PACK_HEADER);
    memcpy(dst, &format, sizeof format);
    return (uint8_t *)dst + PACK_HEADER;
}

/* The packed strips of an operand packed whole (g->a_packed or
 * g->b_packed) when it was packed in `format`, else NULL. */
static const uint8_t *packed_strips(const void *packed, uint32_t format)
{
    uint32_t have;
    if (!packed) return NULL;
    memcpy(&have, packed, sizeof have);
    return have == format ? (const uint8_t *)packed + PACK_HEADER : NULL;
}

/* Bytes of B's K slice of kc steps over a panel of nc columns, packed as
 * quads or as pairs. A B packed whole holds its slices in the order the
 * drivers take them (panels outer, slices inner), one after the other. */
static int64_t b_slice_bytes(bool quads, int64_t kc, int64_t nc)
{
    return quads ? round_up(nc, QNR) / QNR * quad_strip_bytes(kc, QNR) : 2 * round_up(kc, 2) * round_up(nc, NR);
}

/* Writes an mr x nr corner of a full tile t (row stride ldt) into c: c = t,
 * or c += t when `add`. */
static void store_edge(int32_t *c, int64_t ldc, const int32_t *t, int64_t ldt, int64_t mr, int64_t nr, bool add)
{
    for (int64_t r = 0; r < mr; r++)
        for (int64_t q = 0; q < nr; q++)
            c[r * ldc + q] = add ? (int32_t)((uint32_t)c[r * ldc + q] + (uint32_t)t[r * ldt + q]) : t[r * ldt + q];
}

static void drive_pairs(const oq_qgemm_args *g, void *ws, ukernel_fn *kern)
{
    pack_b_u8_fn *pack_b = g->b_signed ? pack_b_s8_pick() : pack_b_u8_pick();
    const int16_t *a_packed = (const int16_t *)packed_strips(g->a_packed, FORMAT_PAIRS);
    const uint8_t *b_next = packed_strips(g->b_packed, FORMAT_PAIRS);
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
            const int16_t *bblk = bp;
            if (b_next) {
                bblk = (const int16_t *)b_next;
                b_next += b_slice_bytes(false, kc, nc);
            } else {
                pack_b(bp, g, p0, kc, j0, nc);
            }
            for (int64_t i0 = 0; i0 < g->m; i0 += MC) {
                int64_t mc = min64(g->m - i0, MC);
                const int16_t *ablk = ap;
                if (a_packed)
                    ablk = a_packed + m_strips * p0 + i0 * kp * 2;
                else if (g->a_signed)
                    pack_a_s8(ap, g, i0, mc, p0, kc);
                else
                    pack_a_u8(ap, g, i0, mc, p0, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = min64(nc - jr, NR);
                    const int16_t *bs = bblk + (jr / NR) * kp * 2 * NR;
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
                        store_edge(cp, g->ldc, tile, NR, mr, nr, add);
                    }
                }
            }
        }
    }
}

#if OQ_X86_KERNELS
/* The same walk over the quads format. A K slice of the whole packed A sits
 * after the full slices before it, each of m_strips strips of KC steps. */
static void drive_quads(const oq_qgemm_args *g, void *ws, ukernel_quads_fn *kern)
{
    const uint8_t *a_packed = packed_strips(g->a_packed, FORMAT_QUADS);
    const uint8_t *b_next = packed_strips(g->b_packed, FORMAT_QUADS);
    int64_t m_strips = round_up(g->m, QMR) / QMR;
    uint8_t *bp = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    int64_t kc0 = min64(g->k, KC);
    uint8_t *ap = bp + round_up(round_up(min64(g->n, NC), QNR) / QNR * quad_strip_bytes(kc0, QNR), 64);
    int32_t tile[QMR * QNR];

    for (int64_t j0 = 0; j0 < g->n; j0 += NC) {
        int64_t nc = min64(g->n - j0, NC);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(g->k - p0, KC), kq = (kc + 3) / 4;
            int64_t asb = quad_strip_bytes(kc, QMR), bsb = quad_strip_bytes(kc, QNR);
            bool add = p0 > 0;
            const uint8_t *bblk = bp;
            if (b_next) {
                bblk = b_next;
                b_next += b_slice_bytes(true, kc, nc);
            } else {
                pack_b_quads(bp, g, p0, kc, j0, nc);
            }
            for (int64_t i0 = 0; i0 < g->m; i0 += MC) {
                int64_t mc = min64(g->m - i0, MC);
                const uint8_t *ablk = ap;
                if (a_packed)
                    ablk = a_packed + (p0 / KC) * m_strips * quad_strip_bytes(KC, QMR) + (i0 / QMR) * asb;
                else
                    pack_a_quads(ap, g, i0, mc, p0, kc);
                for (int64_t jr = 0; jr < nc; jr += QNR) {
                    int64_t nr = min64(nc - jr, QNR);
                    const uint8_t *bs = bblk + (jr / QNR) * bsb;
                    for (int64_t ir = 0; ir < mc; ir += QMR) {
                        int64_t mr = min64(mc - ir, QMR);
                        const uint8_t *as = ablk + (ir / QMR) * asb;
                        int32_t *cp = g->c + (i0 + ir) * g->ldc + j0 + jr;
                        if (mr == QMR && nr == QNR) {
                            kern(kq, as, bs, cp, g->ldc, add);
                            continue;
                        }
                        kern(kq, as, bs, tile, QNR, false);
                        store_edge(cp, g->ldc, tile, QNR, mr, nr, add);
                    }
                }
            }
        }
    }
}
#endif

void oq_qgemm(const oq_qgemm_args *g, void *ws)
{
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) {
        for (int64_t i = 0; i < g->m; i++) memset(g->c + i * g->ldc, 0, (size_t)g->n * sizeof(int32_t));
        return;
    }
    const kernel_entry *ke = pick_kernel();
#if OQ_X86_KERNELS
    if (ke->quads) {
        drive_quads(g, ws, ke->quads);
        return;
    }
#endif
    drive_pairs(g, ws, ke->pairs);
}

size_t oq_qgemm_packed_a_bytes(int64_t m, int64_t k)
{
    if (pick_kernel()->quads) {
        int64_t slices = (k + KC - 1) / KC, last = k - (slices - 1) * KC;
        int64_t strips = round_up(m, QMR) / QMR;
        return PACK_HEADER + (size_t)(strips * ((slices - 1) * quad_strip_bytes(KC, QMR) + quad_strip_bytes(last, QMR)));
    }
    return PACK_HEADER + 2 * (size_t)round_up(m, MR) * (size_t)round_up(k, 2);
}

/* Pairs: K block p0 of the whole A sits at m_strips * p0 int16s: earlier
 * blocks are full (KC, even), each as m_strips rows of KC values. Quads: see
 * drive_quads. */
void oq_qgemm_pack_a(void *dst, const oq_qgemm_args *g)
{
    const kernel_entry *ke = pick_kernel();
    uint8_t *strips = write_pack_header(dst, ke);
    for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
        int64_t kc = min64(g->k - p0, KC);
#if OQ_X86_KERNELS
        if (ke->quads) {
            pack_a_quads(strips + (p0 / KC) * (round_up(g->m, QMR) / QMR) * quad_strip_bytes(KC, QMR), g, 0, g->m, p0,
                         kc);
            continue;
        }
#endif
        int16_t *d = (int16_t *)strips + round_up(g->m, MR) * p0;
        if (g->a_signed)
            pack_a_s8(d, g, 0, g->m, p0, kc);
        else
            pack_a_u8(d, g, 0, g->m, p0, kc);
    }
}

size_t oq_qgemm_packed_b_bytes(int64_t k, int64_t n)
{
    bool quads = pick_kernel()->quads != NULL;
    int64_t bytes = PACK_HEADER;
    for (int64_t j0 = 0; j0 < n; j0 += NC)
        for (int64_t p0 = 0; p0 < k; p0 += KC) bytes += b_slice_bytes(quads, min64(k - p0, KC), min64(n - j0, NC));
    return (size_t)bytes;
}

void oq_qgemm_pack_b(void *dst, const oq_qgemm_args *g)
{
    const kernel_entry *ke = pick_kernel();
    uint8_t *next = write_pack_header(dst, ke);
    for (int64_t j0 = 0; j0 < g->n; j0 += NC)
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(g->k - p0, KC), nc = min64(g->n - j0, NC);
#if OQ_X86_KERNELS
            if (ke->quads)
                pack_b_quads(next, g, p0, kc, j0, nc);
            else
#endif
                (g->b_signed ? pack_b_s8_pick() : pack_b_u8_pick())((int16_t *)next, g, p0, kc, j0, nc);
            next += b_slice_bytes(ke->quads != NULL, kc, nc);
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
