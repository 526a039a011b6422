/* gemm.c: packed, cache-blocked SGEMM and its reference.
 *
 * Goto/BLIS structure: C is walked in NC-wide column panels; for each KC-deep
 * slice of K, the (KC x NC) slice of op(B) is packed into NR-wide strips, then
 * each (MC x KC) block of op(A) is packed into MR-tall strips, and an
 * MR x NR micro-kernel multiplies one A strip by one B strip, keeping the
 * MR x NR accumulators in vector registers. Edge tiles are padded with zeros
 * when packing and clipped when storing. MR is 6 for every micro-kernel; NR
 * is the micro-kernel's (16, or 32 for AVX-512), picked per product from
 * the enabled instruction sets. */
#include "exec/gemm.h"

#include <string.h>

#include "cpu_dispatch.h"

#if OQ_X86_KERNELS
#include <immintrin.h>

#include "exec/vmask.h"
#endif

enum { MR = OQ_SGEMM_PACK_ROWS, NR_MAX = OQ_SGEMM_NR_MAX, MC = 120, KC = 256, NC = 2048 };
_Static_assert(MC % MR == 0 && NC % NR_MAX == 0, "blocks are whole strips");
_Static_assert(OQ_SGEMM_WS_FLOATS >= (size_t)MC * KC + (size_t)KC * NC + 16, "workspace covers both packs");

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

size_t oq_sgemm_ws_floats(int64_t m, int64_t n, int64_t k)
{
    if (m <= 0 || n <= 0 || k <= 0) return 1;
    int64_t kc = min64(k, KC), nc = round_up(min64(n, NC), NR_MAX), mc = round_up(min64(m, MC), MR);
    return (size_t)(kc * nc + mc * kc) + 16;
}

/* ---- packing ------------------------------------------------------------------ */

/* Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) as strips of MR rows:
 * dst[strip][p][r], zero rows past mc. Packed whole (mc = m, kc = k), the
 * strip of rows [i, i+MR) at depth p0 starts at dst + i*k + p0*MR. */
static void pack_a(float *restrict dst, const oq_sgemm_args *g, int64_t i0, int64_t mc, int64_t p0,
                   int64_t kc)
{
    for (int64_t is = 0; is < mc; is += MR) {
        int64_t rows = mc - is < MR ? mc - is : MR;
        if (!g->trans_a) {
            const float *src = g->a + (i0 + is) * g->lda + p0;
            for (int64_t p = 0; p < kc; p++) {
                int64_t r = 0;
                for (; r < rows; r++) dst[p * MR + r] = src[r * g->lda + p];
                for (; r < MR; r++) dst[p * MR + r] = 0.0f;
            }
        } else {
            const float *src = g->a + p0 * g->lda + i0 + is;
            for (int64_t p = 0; p < kc; p++) {
                int64_t r = 0;
                for (; r < rows; r++) dst[p * MR + r] = src[p * g->lda + r];
                for (; r < MR; r++) dst[p * MR + r] = 0.0f;
            }
        }
        dst += kc * MR;
    }
}

/* Copies rows of N floats (N a compile-time constant so the copy is a few
 * vector moves): dst[p][0..N) = src[p * ld + 0..N) for p < kc. */
static inline __attribute__((always_inline)) void copy_rows(float *restrict dst, const float *restrict src,
                                                            int64_t ld, int64_t kc, int N)
{
    for (int64_t p = 0; p < kc; p++) memcpy(dst + p * N, src + p * ld, (size_t)N * sizeof(float));
}

/* Packs depth [p0, p0+kc) x columns [j0, j0+nc) of op(B) as strips of nr
 * columns: dst[strip][p][c], zero columns past nc. */
static void pack_b(float *restrict dst, const oq_sgemm_args *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                   int nr)
{
    for (int64_t js = 0; js < nc; js += nr) {
        int64_t cols = nc - js < nr ? nc - js : nr;
        if (!g->trans_b) {
            const float *src = g->b + p0 * g->ldb + j0 + js;
            if (cols == 16 && nr == 16) {
                copy_rows(dst, src, g->ldb, kc, 16);
            } else if (cols == 32 && nr == 32) {
                copy_rows(dst, src, g->ldb, kc, 32);
            } else {
                for (int64_t p = 0; p < kc; p++) {
                    int64_t c = 0;
                    for (; c < cols; c++) dst[p * nr + c] = src[p * g->ldb + c];
                    for (; c < nr; c++) dst[p * nr + c] = 0.0f;
                }
            }
        } else {
            const float *src = g->b + (j0 + js) * g->ldb + p0;
            for (int64_t p = 0; p < kc; p++) {
                int64_t c = 0;
                for (; c < cols; c++) dst[p * nr + c] = src[c * g->ldb + p];
                for (; c < nr; c++) dst[p * nr + c] = 0.0f;
            }
        }
        dst += kc * nr;
    }
}

/* ---- micro-kernels -------------------------------------------------------------
 * acc = sum_p a[p][0..MR) (outer) b[p][0..NR) (NR of the kernel); then
 * c = alpha * acc + beta * c (beta == 0: c is not read), plus bias[r] on
 * row r when bias (MR floats) is not NULL. a, b are packed strips, c is a
 * full MR x NR tile with row stride ldc. */
typedef void ukernel_fn(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                       int64_t ldc, float alpha, float beta, const float *bias);

/* Portable version: GCC vector extensions, 4-wide (SSE on x86-64, NEON on arm64). */
typedef float v4f __attribute__((vector_size(16)));
typedef float v4f_u __attribute__((vector_size(16), aligned(4)));
enum { NR = 16 }; /* of the generic and AVX2 kernels */

static void ukernel_generic(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                            int64_t ldc, float alpha, float beta, const float *bias)
{
    v4f acc[MR][NR / 4];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++) {
        v4f bv[NR / 4];
        memcpy(bv, b + p * NR, sizeof bv);
        for (int r = 0; r < MR; r++) {
            float ar = a[p * MR + r];
            v4f av = {ar, ar, ar, ar};
            for (int q = 0; q < NR / 4; q++) acc[r][q] += av * bv[q];
        }
    }
    v4f al = {alpha, alpha, alpha, alpha}, be = {beta, beta, beta, beta};
    for (int r = 0; r < MR; r++) {
        for (int q = 0; q < NR / 4; q++) {
            v4f_u *cp = (v4f_u *)(c + r * ldc + 4 * q);
            v4f v = al * acc[r][q];
            if (beta != 0.0f) v += be * *cp;
            if (bias) v += (v4f){bias[r], bias[r], bias[r], bias[r]};
            *cp = v;
        }
    }
}

#if OQ_X86_KERNELS
/* AVX2 + FMA: 6 rows x 2 vectors of 8 = 12 accumulators, 2 B loads and 6
 * broadcasts per step. */
__attribute__((target("avx2,fma"))) static void ukernel_avx2(int64_t kc, const float *restrict a,
                                                            const float *restrict b, float *restrict c,
                                                            int64_t ldc, float alpha, float beta,
                                                            const float *bias)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 ar;
        ar = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(ar, b0, c00); c01 = _mm256_fmadd_ps(ar, b1, c01);
        ar = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(ar, b0, c10); c11 = _mm256_fmadd_ps(ar, b1, c11);
        ar = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(ar, b0, c20); c21 = _mm256_fmadd_ps(ar, b1, c21);
        ar = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(ar, b0, c30); c31 = _mm256_fmadd_ps(ar, b1, c31);
        ar = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(ar, b0, c40); c41 = _mm256_fmadd_ps(ar, b1, c41);
        ar = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(ar, b0, c50); c51 = _mm256_fmadd_ps(ar, b1, c51);
        a += MR;
        b += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 al = _mm256_set1_ps(alpha), be = _mm256_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        for (int q = 0; q < 2; q++) {
            __m256 v = _mm256_mul_ps(al, acc[r][q]);
            if (beta != 0.0f) v = _mm256_fmadd_ps(be, _mm256_loadu_ps(cr + 8 * q), v);
            if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[r]));
            _mm256_storeu_ps(cr + 8 * q, v);
        }
    }
}

/* AVX-512: 6 rows x 2 vectors of 16 = 12 accumulators, 2 B loads and 6
 * broadcasts per step; B rows of 32 are ldb apart (32 in a packed strip). */
__attribute__((target("avx512f"), always_inline)) static inline void
avx512_body(int64_t kc, const float *restrict a, const float *restrict b, int64_t ldb, float *restrict c,
            int64_t ldc, float alpha, float beta, const float *bias)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
    __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
    __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
    __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 ar;
        ar = _mm512_set1_ps(a[0]); c00 = _mm512_fmadd_ps(ar, b0, c00); c01 = _mm512_fmadd_ps(ar, b1, c01);
        ar = _mm512_set1_ps(a[1]); c10 = _mm512_fmadd_ps(ar, b0, c10); c11 = _mm512_fmadd_ps(ar, b1, c11);
        ar = _mm512_set1_ps(a[2]); c20 = _mm512_fmadd_ps(ar, b0, c20); c21 = _mm512_fmadd_ps(ar, b1, c21);
        ar = _mm512_set1_ps(a[3]); c30 = _mm512_fmadd_ps(ar, b0, c30); c31 = _mm512_fmadd_ps(ar, b1, c31);
        ar = _mm512_set1_ps(a[4]); c40 = _mm512_fmadd_ps(ar, b0, c40); c41 = _mm512_fmadd_ps(ar, b1, c41);
        ar = _mm512_set1_ps(a[5]); c50 = _mm512_fmadd_ps(ar, b0, c50); c51 = _mm512_fmadd_ps(ar, b1, c51);
        a += MR;
        b += ldb;
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        for (int q = 0; q < 2; q++) {
            __m512 v = _mm512_mul_ps(al, acc[r][q]);
            if (beta != 0.0f) v = _mm512_fmadd_ps(be, _mm512_loadu_ps(cr + 16 * q), v);
            if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[r]));
            _mm512_storeu_ps(cr + 16 * q, v);
        }
    }
}

__attribute__((target("avx512f"))) static void ukernel_avx512(int64_t kc, const float *restrict a,
                                                             const float *restrict b, float *restrict c,
                                                             int64_t ldc, float alpha, float beta,
                                                             const float *bias)
{
    avx512_body(kc, a, b, 32, c, ldc, alpha, beta, bias);
}

/* The same reading B unpacked: 32 columns of row-major op(B), rows ldb apart. */
__attribute__((target("avx512f"))) static void ukernel_avx512_rows(int64_t kc, const float *restrict a,
                                                                  const float *restrict b, int64_t ldb,
                                                                  float *restrict c, int64_t ldc, float alpha,
                                                                  float beta, const float *bias)
{
    avx512_body(kc, a, b, ldb, c, ldc, alpha, beta, bias);
}

/* The first `cols` (< 32) columns of an MR x 32 tile, B read unpacked with
 * masks, C written with masks: one vector per row when cols <= 16. Each
 * element gets the arithmetic of the full kernel. */
__attribute__((target("avx512f"), always_inline)) static inline void
avx512_rows_part(int64_t kc, const float *restrict a, const float *restrict b, int64_t ldb, float *restrict c,
                 int64_t ldc, float alpha, float beta, const float *bias, int64_t cols, bool two)
{
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffffu : (1u << cols) - 1u);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xffffu : cols > 16 ? (1u << (cols - 16)) - 1u : 0u);
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = two ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            if (two) acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
        a += MR;
        b += ldb;
    }
    __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        for (int q = 0; q < (two ? 2 : 1); q++) {
            __mmask16 m = q ? m1 : m0;
            __m512 v = _mm512_mul_ps(al, acc[r][q]);
            if (beta != 0.0f) v = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m, cr + 16 * q), v);
            if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[r]));
            _mm512_mask_storeu_ps(cr + 16 * q, m, v);
        }
    }
}

__attribute__((target("avx512f"))) static void ukernel_avx512_rows_part(int64_t kc, const float *restrict a,
                                                                       const float *restrict b, int64_t ldb,
                                                                       float *restrict c, int64_t ldc,
                                                                       float alpha, float beta, const float *bias,
                                                                       int64_t cols)
{
    if (cols > 16)
        avx512_rows_part(kc, a, b, ldb, c, ldc, alpha, beta, bias, cols, true);
    else
        avx512_rows_part(kc, a, b, ldb, c, ldc, alpha, beta, bias, cols, false);
}
#endif

/* The micro-kernel of each level, its width and its name. */
typedef struct ukernel {
    ukernel_fn *fn;
    int nr;
    const char *name;
} ukernel;

static const ukernel kernels[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {ukernel_generic, NR, "generic-vec4-6x16"},
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = {ukernel_avx2, NR, "avx2-fma-6x16"},
    [OQ_ISA_AVX512] = {ukernel_avx512, 32, "avx512f-6x32"},
#endif
};

static const ukernel *pick_kernel(void) { return &kernels[oq_isa_pick(OQ_ISA_HAVE(kernels, .fn))]; }

const char *oq_sgemm_kernel_name(void) { return pick_kernel()->name; }

const char *oq_sgemm_variant(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? kernels[isa].name : NULL; }

/* ---- skinny products: at most OQ_SGEMM_SKINNY_M rows ---------------------------
 * A fully-connected layer at batch 1 reads each element of B once, so packing
 * B costs as much as the product. These kernels stream op(B) in place: with
 * B as stored, a block of columns accumulates every row of A along all of K;
 * with B transposed, each C element is a dot product of two contiguous rows.
 * Either way an element's arithmetic depends only on its row, its column, K
 * and the options, never on which columns share a call. */
typedef void skinny_fn(const oq_sgemm_args *g);

/* c = alpha * acc + beta * c, the way the micro-kernels finish a tile. */
static inline float finish(float acc, float alpha, float beta, const float *c)
{
    float v = alpha * acc;
    return beta != 0.0f ? v + beta * *c : v;
}

static void skinny_generic(const oq_sgemm_args *g)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            float acc = 0.0f;
            for (int64_t p = 0; p < g->k; p++) {
                float av = g->trans_a ? g->a[p * g->lda + i] : g->a[i * g->lda + p];
                float bv = g->trans_b ? g->b[j * g->ldb + p] : g->b[p * g->ldb + j];
                acc += av * bv;
            }
            float *cp = g->c + i * g->ldc + j;
            *cp = finish(acc, g->alpha, g->beta, cp);
        }
}

#if OQ_X86_KERNELS
/* Element (i, p) of op(A). */
static inline float a_at(const oq_sgemm_args *g, int64_t i, int64_t p)
{
    return g->trans_a ? g->a[p * g->lda + i] : g->a[i * g->lda + p];
}

/* SKINNY_BODY(W, V, ...): the two skinny kernels for vectors V of W floats;
 * LOADM/STOREM load and store the first `cnt` lanes, REDUCE sums the lanes. */
#define SKINNY_BODY(NAME, TARGET, W, V, ZERO, SET1, FMA, MUL, LOADM, STOREM, REDUCE)                          \
    TARGET static void NAME##_rows(const oq_sgemm_args *g, int64_t j0, int64_t cols)                          \
    {                                                                                                         \
        /* up to 4 vectors of columns [j0, j0+cols) for every row of A */                                    \
        V acc[OQ_SGEMM_SKINNY_M][4];                                                                          \
        int nv = (int)((cols + W - 1) / W);                                                                   \
        for (int64_t i = 0; i < g->m; i++)                                                                    \
            for (int v = 0; v < 4; v++) acc[i][v] = ZERO;                                                     \
        for (int64_t p = 0; p < g->k; p++) {                                                                  \
            const float *br = g->b + p * g->ldb + j0;                                                         \
            V b[4];                                                                                           \
            for (int v = 0; v < nv; v++) b[v] = LOADM(br + v * W, cols - v * W);                              \
            for (int64_t i = 0; i < g->m; i++) {                                                              \
                V ar = SET1(a_at(g, i, p));                                                                   \
                for (int v = 0; v < nv; v++) acc[i][v] = FMA(ar, b[v], acc[i][v]);                            \
            }                                                                                                 \
        }                                                                                                     \
        V al = SET1(g->alpha), be = SET1(g->beta);                                                            \
        for (int64_t i = 0; i < g->m; i++)                                                                    \
            for (int v = 0; v < nv; v++) {                                                                    \
                float *cp = g->c + i * g->ldc + j0 + v * W;                                                   \
                int64_t cnt = cols - v * W;                                                                   \
                V r = MUL(al, acc[i][v]);                                                                     \
                if (g->beta != 0.0f) r = FMA(be, LOADM(cp, cnt), r);                                          \
                STOREM(cp, r, cnt);                                                                           \
            }                                                                                                 \
    }                                                                                                         \
    TARGET static void NAME##_dots(const oq_sgemm_args *g, int64_t j)                                         \
    {                                                                                                         \
        /* C[i][j] for every i: dot products of row i of A (contiguous, !trans_a) and row j of B */          \
        V acc[OQ_SGEMM_SKINNY_M];                                                                             \
        for (int64_t i = 0; i < g->m; i++) acc[i] = ZERO;                                                     \
        const float *br = g->b + j * g->ldb;                                                                  \
        for (int64_t p = 0; p < g->k; p += W) {                                                               \
            V b = LOADM(br + p, g->k - p);                                                                    \
            for (int64_t i = 0; i < g->m; i++) acc[i] = FMA(LOADM(g->a + i * g->lda + p, g->k - p), b, acc[i]); \
        }                                                                                                     \
        for (int64_t i = 0; i < g->m; i++) {                                                                  \
            float *cp = g->c + i * g->ldc + j;                                                                \
            *cp = finish(REDUCE(acc[i]), g->alpha, g->beta, cp);                                              \
        }                                                                                                     \
    }                                                                                                         \
    TARGET static void NAME(const oq_sgemm_args *g)                                                           \
    {                                                                                                         \
        if (g->trans_b && !g->trans_a) {                                                                      \
            for (int64_t j = 0; j < g->n; j++) NAME##_dots(g, j);                                             \
            return;                                                                                           \
        }                                                                                                     \
        if (g->trans_b) {                                                                                     \
            skinny_generic(g);                                                                                \
            return;                                                                                           \
        }                                                                                                     \
        for (int64_t j0 = 0; j0 < g->n; j0 += 4 * W) NAME##_rows(g, j0, min64(4 * W, g->n - j0));            \
    }

static inline __attribute__((target("avx2,fma"), always_inline)) float reduce8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

SKINNY_BODY(skinny_avx512, __attribute__((target("avx512f"))), 16, __m512, _mm512_setzero_ps(), _mm512_set1_ps,
            _mm512_fmadd_ps, _mm512_mul_ps, oq_load16, oq_store16, _mm512_reduce_add_ps)
SKINNY_BODY(skinny_avx2, __attribute__((target("avx2,fma"))), 8, __m256, _mm256_setzero_ps(), _mm256_set1_ps,
            _mm256_fmadd_ps, _mm256_mul_ps, oq_load8, oq_store8, reduce8)
#endif

static skinny_fn *const skinny_kernels[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = skinny_generic,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = skinny_avx2,
    [OQ_ISA_AVX512] = skinny_avx512,
#endif
};

void oq_sgemm_skinny(const oq_sgemm_args *g)
{
    if (g->m <= 0 || g->n <= 0) return;
    skinny_kernels[oq_isa_pick(OQ_ISA_HAVE(skinny_kernels, ))](g);
}

/* ---- driver ------------------------------------------------------------------- */

size_t oq_sgemm_packed_a_floats(int64_t m, int64_t k)
{
    return m > 0 && k > 0 ? (size_t)(round_up(m, MR) * k) : 1;
}

void oq_sgemm_pack_a(float *dst, const oq_sgemm_args *g)
{
    if (g->m > 0 && g->k > 0) pack_a(dst, g, 0, g->m, 0, g->k);
}

/* C = beta * C (+ bias[i] on row i, bias may be NULL) for the degenerate
 * k == 0 case. */
static void scale_c(const oq_sgemm_args *g, const float *bias)
{
    for (int64_t i = 0; i < g->m; i++) {
        float *cr = g->c + i * g->ldc;
        for (int64_t j = 0; j < g->n; j++) {
            cr[j] = g->beta == 0.0f ? 0.0f : g->beta * cr[j];
            if (bias) cr[j] += bias[i];
        }
    }
}

/* The driver; pa is NULL or op(A) packed whole (oq_sgemm_pack_a), pb NULL
 * or op(B) packed whole (oq_sgemm_packed_b layout), bias NULL or one value
 * per row of C added with the first K slice. */
static void sgemm(const oq_sgemm_args *g, const float *pa, const float *pb, const float *bias, float *ws)
{
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) {
        scale_c(g, bias);
        return;
    }
    const ukernel uk = *pick_kernel();
    const int nr_k = uk.nr;
#if OQ_X86_KERNELS
    /* Few rows of A reuse each packed strip of B only a few times, and a
     * narrow B (a 1x1 conv on a small plane) costs more to pack, with its
     * zero-filled last strip, than it saves: then the AVX-512 kernel reads
     * the 32-column strips of a row-major B in place, a narrower last one
     * with masks (one vector per row up to 16 columns). Same arithmetic
     * either way. */
    const bool b_in_place = !pb && !g->trans_b && uk.fn == ukernel_avx512 && (g->m <= 64 || g->n <= 256);
#else
    const bool b_in_place = false;
#endif
    /* 64-byte aligned pack buffers, packed B first, sized as in oq_sgemm_ws_floats. */
    float *bp = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *ap = bp + min64(g->k, KC) * round_up(min64(g->n, NC), NR_MAX);
    float tile[MR * NR_MAX];

    for (int64_t j0 = 0; j0 < g->n; j0 += NC) {
        int64_t nc = g->n - j0 < NC ? g->n - j0 : NC;
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = g->k - p0 < KC ? g->k - p0 : KC;
            float beta = p0 == 0 ? g->beta : 1.0f; /* later K slices accumulate */
            if (!pb && !b_in_place) pack_b(bp, g, p0, kc, j0, nc, nr_k);
            for (int64_t i0 = 0; i0 < g->m; i0 += MC) {
                int64_t mc = g->m - i0 < MC ? g->m - i0 : MC;
                if (!pa) pack_a(ap, g, i0, mc, p0, kc);
                for (int64_t jr = 0; jr < nc; jr += nr_k) {
                    int64_t nr = nc - jr < nr_k ? nc - jr : nr_k;
                    const float *bs = pb ? pb + (j0 + jr) * g->k + p0 * nr_k : bp + (jr / nr_k) * kc * nr_k;
                    /* b_in_place: the strip in B itself, a narrower last one read with masks */
                    const float *brow = b_in_place ? g->b + p0 * g->ldb + j0 + jr : NULL;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        const float *as = pa ? pa + (i0 + ir) * g->k + p0 * MR : ap + (ir / MR) * kc * MR;
                        float *cp = g->c + (i0 + ir) * g->ldc + j0 + jr;
                        float bias_edge[MR] = {0}; /* the rows of a last, partial strip */
                        const float *bs_rows = p0 == 0 && bias ? bias + i0 + ir : NULL;
                        if (bs_rows && mr < MR) bs_rows = memcpy(bias_edge, bs_rows, (size_t)mr * sizeof(float));
#if OQ_X86_KERNELS
                        if (brow && mr == MR && nr == nr_k) {
                            ukernel_avx512_rows(kc, as, brow, g->ldb, cp, g->ldc, g->alpha, beta, bs_rows);
                            continue;
                        }
                        if (brow && mr == MR) {
                            ukernel_avx512_rows_part(kc, as, brow, g->ldb, cp, g->ldc, g->alpha, beta, bs_rows,
                                                     nr);
                            continue;
                        }
#endif
                        if (mr == MR && nr == nr_k && !brow) {
                            uk.fn(kc, as, bs, cp, g->ldc, g->alpha, beta, bs_rows);
                            continue;
                        }
                        /* Edge tile: run on a full scratch tile, copy the valid part. */
                        for (int64_t r = 0; r < mr; r++)
                            for (int64_t q = 0; q < nr; q++)
                                tile[r * nr_k + q] = beta == 0.0f ? 0.0f : cp[r * g->ldc + q];
#if OQ_X86_KERNELS
                        if (brow && nr == nr_k)
                            ukernel_avx512_rows(kc, as, brow, g->ldb, tile, nr_k, g->alpha, beta, bs_rows);
                        else if (brow)
                            ukernel_avx512_rows_part(kc, as, brow, g->ldb, tile, nr_k, g->alpha, beta, bs_rows,
                                                     nr);
                        else
#endif
                            uk.fn(kc, as, bs, tile, nr_k, g->alpha, beta, bs_rows);
                        for (int64_t r = 0; r < mr; r++)
                            memcpy(cp + r * g->ldc, tile + r * nr_k, (size_t)nr * sizeof(float));
                    }
                }
            }
        }
    }
}

void oq_sgemm(const oq_sgemm_args *g, float *ws) { sgemm(g, NULL, NULL, NULL, ws); }

void oq_sgemm_packed(const oq_sgemm_args *g, const float *ap, const float *row_bias, float *ws)
{
    sgemm(g, ap, NULL, row_bias, ws);
}

int oq_sgemm_nr(void) { return pick_kernel()->nr; }

void oq_sgemm_packed_ab(const oq_sgemm_args *g, const float *ap, const float *bp, const float *row_bias, float *ws)
{
    sgemm(g, ap, bp, row_bias, ws);
}

size_t oq_sgemm_packed_b_floats(int64_t k, int64_t n)
{
    int nr = oq_sgemm_nr();
    return k > 0 && n > 0 ? (size_t)(round_up(n, nr) * k + nr) : (size_t)nr;
}

void oq_sgemm_pack_b(float *dst, const oq_sgemm_args *g)
{
    if (g->k > 0 && g->n > 0) pack_b(dst, g, 0, g->k, 0, g->n, oq_sgemm_nr());
}

void oq_sgemm_packed_b(const oq_sgemm_args *g, const float *bp, float *ws) { sgemm(g, NULL, bp, NULL, ws); }

void oq_sgemm_ref(const oq_sgemm_args *g)
{
    for (int64_t i = 0; i < g->m; i++) {
        for (int64_t j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < g->k; p++) {
                float av = g->trans_a ? g->a[p * g->lda + i] : g->a[i * g->lda + p];
                float bv = g->trans_b ? g->b[j * g->ldb + p] : g->b[p * g->ldb + j];
                acc += (double)av * bv;
            }
            float *cp = g->c + i * g->ldc + j;
            float v = g->alpha * (float)acc;
            *cp = g->beta == 0.0f ? v : v + g->beta * *cp;
        }
    }
}

/* ---- parallel use ---------------------------------------------------------------- */

typedef struct parts_job {
    int64_t n_items;
    int parts;
    float *ws;
    size_t ws_floats; /* per part */
    void (*item)(void *job, int64_t i, float *ws);
    void *job;
} parts_job;

static void parts_run(void *arg, int64_t begin, int64_t end)
{
    const parts_job *pj = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t i0 = pj->n_items * p / pj->parts, i1 = pj->n_items * (p + 1) / pj->parts;
        for (int64_t i = i0; i < i1; i++) pj->item(pj->job, i, pj->ws ? pj->ws + (size_t)p * pj->ws_floats : NULL);
    }
}

void oq_run_parts(oq_kernel_ctx *c, int parts, int64_t n_items, float *ws, size_t ws_floats,
                  void (*item)(void *job, int64_t i, float *ws), void *job)
{
    if (n_items <= 0) return;
    if (parts < 1) parts = 1;
    if (parts > n_items) parts = (int)n_items;
    parts_job pj = {n_items, parts, ws, ws_floats, item, job};
    if (c && parts > 1)
        oq_parallel_for(c, parts, parts_run, &pj);
    else
        parts_run(&pj, 0, parts);
}

typedef struct batch_job {
    const oq_sgemm_args *g;
    const int64_t *a_off, *b_off, *c_off;
    const float *bp;            /* NULL or op(B) packed whole (one B for the batch) */
    bool skinny;                /* few rows: oq_sgemm_skinny, split by columns only */
    int64_t mtile, mt_count, ntile, nt_count;
} batch_job;

/* Tiling of each product for `parts` parts: split the longer of m and n
 * (always n for skinny products, so every tile takes the skinny path). */
static void batch_plan(batch_job *j, const oq_sgemm_args *g, int64_t batch, int parts)
{
    j->g = g;
    j->mtile = g->m, j->mt_count = 1;
    j->ntile = g->n, j->nt_count = 1;
    j->skinny = g->m <= OQ_SGEMM_SKINNY_M;
    if (parts < 1) parts = 1;
    if (batch >= 2 * (int64_t)parts || g->m <= 0 || g->n <= 0) return;
    int64_t want = (2 * parts + batch - 1) / batch;
    if (g->n >= g->m || j->skinny) {
        int64_t t = round_up((g->n + want - 1) / want, 2 * NR_MAX);
        j->ntile = min64(t, g->n);
        j->nt_count = (g->n + j->ntile - 1) / j->ntile;
    } else {
        int64_t t = round_up((g->m + want - 1) / want, 4 * MR);
        j->mtile = min64(t, g->m);
        j->mt_count = (g->m + j->mtile - 1) / j->mtile;
    }
}

size_t oq_sgemm_batch_ws_floats(const oq_sgemm_args *g, int64_t batch, int parts)
{
    batch_job j;
    batch_plan(&j, g, batch, parts);
    if (parts < 1) parts = 1;
    return j.skinny ? 1 : oq_sgemm_ws_floats(j.mtile, j.ntile, g->k) * (size_t)parts;
}

static void batch_item(void *arg, int64_t i, float *ws)
{
    const batch_job *j = arg;
    const oq_sgemm_args *g = j->g;
    int64_t nt_i = i % j->nt_count, mt_i = (i / j->nt_count) % j->mt_count, bi = i / (j->nt_count * j->mt_count);
    int64_t i0 = mt_i * j->mtile, j0 = nt_i * j->ntile;
    oq_sgemm_args t = *g;
    t.m = min64(j->mtile, g->m - i0);
    t.n = min64(j->ntile, g->n - j0);
    t.a = g->a + (j->a_off ? j->a_off[bi] : 0) + (g->trans_a ? i0 : i0 * g->lda);
    t.b = g->b + (j->b_off ? j->b_off[bi] : 0) + (g->trans_b ? j0 * g->ldb : j0);
    t.c = g->c + (j->c_off ? j->c_off[bi] : 0) + i0 * g->ldc + j0;
    if (j->skinny)
        oq_sgemm_skinny(&t);
    else if (j->bp)
        oq_sgemm_packed_b(&t, j->bp + j0 * g->k, ws); /* j0 is a whole number of strips */
    else
        oq_sgemm(&t, ws);
}

void oq_sgemm_batch(oq_kernel_ctx *c, int parts, const oq_sgemm_args *g, int64_t batch, const int64_t *a_off,
                    const int64_t *b_off, const int64_t *c_off, const float *bp, float *ws)
{
    batch_job j;
    batch_plan(&j, g, batch, parts);
    j.a_off = a_off, j.b_off = b_off, j.c_off = c_off, j.bp = b_off ? NULL : bp;
    if (parts < 1) parts = 1;
    size_t per = j.skinny ? 0 : oq_sgemm_ws_floats(j.mtile, j.ntile, g->k);
    oq_run_parts(c, parts, batch * j.mt_count * j.nt_count, ws, per, batch_item, &j);
}
