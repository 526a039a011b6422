/* qgemm.c: kernel families qgemm and requant. qgemm: the blocked 8-bit GEMM
 * (each micro-kernel, and the B packing compiled per level) against its
 * reference on shapes of 1, odd shapes, shapes off the 6 x 16 and 8 x 32
 * tiles and past every block, all four signedness combinations, every
 * combination of no / scalar / per-row zero points of A with no / scalar /
 * per-column ones of B, sums that wrap, and strided operands. requant:
 * requantization against the formula it implements, on lengths around every
 * vector width,
 * and its rounding (ties to even), saturation and negative values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/qgemm.h"
#include "harness.h"

static int cases; /* run by the current check */

/* Deterministic pseudo-random bytes (xorshift). */
static uint32_t rng_state = 0x12345678u;
static uint8_t rnd8(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)(rng_state >> 24);
}

/* Zero points of an operand: none, one for all, or one per row (A) / column (B). */
enum { ZP_NONE, ZP_ONE, ZP_EACH, ZP_MODES };

/* Compares oq_qgemm, with A packed per call, A packed once beforehand
 * (oq_qgemm_pack_a), and A and B packed once beforehand (oq_qgemm_pack_b),
 * with oq_qgemm_ref on one shape; lda/ldb/ldc are padded
 * past the logical widths to catch stride mistakes. `extreme` fills A and B
 * with the bytes and zero points farthest apart (every product -65025), so
 * that long sums wrap. Returns mismatches. */
static int compare_one(int64_t m, int64_t n, int64_t k, bool as, bool bs, int za_mode, int zb_mode, bool extreme)
{
    int64_t lda = k + 3, ldb = n + 5, ldc = n + 2;
    uint8_t *a = malloc((size_t)(m * lda + 1));
    uint8_t *b = malloc((size_t)(k * ldb + 1));
    int32_t *c1 = malloc((size_t)(m * ldc + 1) * sizeof *c1);
    int32_t *c2 = malloc((size_t)(m * ldc + 1) * sizeof *c2);
    int32_t *c3 = malloc((size_t)(m * ldc + 1) * sizeof *c3);
    int32_t *c4 = malloc((size_t)(m * ldc + 1) * sizeof *c4);
    void *ap = malloc(oq_qgemm_packed_a_bytes(m, k));
    void *bpk = aligned_alloc(64, (oq_qgemm_packed_b_bytes(k, n) + 63) / 64 * 64);
    int32_t *za = malloc((size_t)m * sizeof *za);
    int32_t *zb = malloc((size_t)n * sizeof *zb);
    void *ws = malloc(oq_qgemm_ws_bytes(m, n, k));
    int bad = -1;
    cases++;
    if (!a || !b || !c1 || !c2 || !c3 || !c4 || !ap || !bpk || !za || !zb || !ws) goto fail;
    for (int64_t i = 0; i < m * lda; i++) a[i] = extreme ? (as ? 0x80 : 0) : rnd8();
    for (int64_t i = 0; i < k * ldb; i++) b[i] = extreme ? (bs ? 0x7f : 0xff) : rnd8();
    /* Zero points in the operand's own range: 0..255 for uint8, -128..127 for int8. */
    for (int64_t i = 0; i < m; i++) za[i] = extreme ? (as ? 127 : 255) : as ? (int8_t)rnd8() : rnd8();
    for (int64_t j = 0; j < n; j++) zb[j] = extreme ? (bs ? -128 : 0) : bs ? (int8_t)rnd8() : rnd8();
    oq_qgemm_args g = {
        .m = m, .n = n, .k = k,
        .a = a, .lda = lda, .a_signed = as,
        .a_zp = za_mode != ZP_NONE ? za : NULL, .a_zp_per_row = za_mode == ZP_EACH,
        .b = b, .ldb = ldb, .b_signed = bs,
        .b_zp = zb_mode != ZP_NONE ? zb : NULL, .b_zp_per_col = zb_mode == ZP_EACH,
        .c = c1, .ldc = ldc,
    };
    /* Sentinels in the padding columns must survive. */
    for (int64_t i = 0; i < m * ldc; i++) c1[i] = c2[i] = c3[i] = c4[i] = 0x5a5a5a5a;
    oq_qgemm(&g, ws);
    g.c = c2;
    oq_qgemm_ref(&g);
    oq_qgemm_pack_a(ap, &g);
    g.c = c3;
    g.a_packed = ap;
    oq_qgemm(&g, ws);
    oq_qgemm_pack_b(bpk, &g);
    g.c = c4;
    g.b_packed = bpk;
    oq_qgemm(&g, ws);
    bad = 0;
    for (int64_t i = 0; i < m * ldc; i++) bad += (c1[i] != c2[i]) + (c3[i] != c2[i]) + (c4[i] != c2[i]);
    if (bad)
        fprintf(stderr, "mismatch m=%lld n=%lld k=%lld a_signed=%d b_signed=%d zero points %d/%d%s: %d values\n",
                (long long)m, (long long)n, (long long)k, as, bs, za_mode, zb_mode, extreme ? " (extreme)" : "", bad);
fail:
    free(a), free(b), free(c1), free(c2), free(c3), free(c4), free(ap), free(bpk), free(za), free(zb), free(ws);
    return bad;
}

static void test_fast_vs_ref(void)
{
    /* Edges of every block size and tile: MR=6, NR=16 (pairs), 8 x 32 (quads),
     * MC=96, KC=512, NC=512, and K not a multiple of 2 or 4. */
    static const int64_t shapes[][3] = {
        {1, 1, 1},    {1, 17, 3},   {7, 1, 5},     {6, 16, 2},   {5, 15, 9},    {13, 33, 31},
        {97, 35, 513}, {12, 530, 7}, {100, 520, 1030}, {64, 64, 64}, {3, 700, 1}, {200, 3, 600},
        {8, 32, 4},   {9, 31, 6},   {16, 64, 515}, {17, 65, 1027},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int signs = 0; signs < 4; signs++)
            for (int zp = 0; zp < ZP_MODES * ZP_MODES; zp++)
                CHECK(compare_one(shapes[s][0], shapes[s][1], shapes[s][2], signs & 1, signs >> 1, zp % ZP_MODES,
                                  zp / ZP_MODES, false) == 0);
    /* Sums past the int32 range wrap as in the reference. */
    for (int signs = 0; signs < 4; signs++)
        CHECK(compare_one(3, 33, 40001, signs & 1, signs >> 1, ZP_EACH, ZP_ONE, true) == 0);
}

/* A hand-computed product: ((1-2)*(4-1) + (3-2)*(6-1)) = 2, with int8 data. */
static void test_known_value(void)
{
    int8_t a[2] = {1, 3}, b[2] = {4, 6};
    int32_t za = 2, zb = 1, c = 0;
    oq_qgemm_args g = {.m = 1, .n = 1, .k = 2, .a = a, .lda = 2, .a_signed = true, .a_zp = &za,
                       .b = b, .ldb = 1, .b_signed = true, .b_zp = &zb, .c = &c, .ldc = 1};
    _Alignas(64) unsigned char ws[1024];
    cases++;
    CHECK(oq_qgemm_ws_bytes(1, 1, 2) <= sizeof ws);
    oq_qgemm(&g, ws);
    CHECK(c == 2);
    /* k == 0 gives zeros. */
    c = 7;
    g.k = 0;
    oq_qgemm(&g, ws);
    CHECK(c == 0);
}

static void test_requant_known(void)
{
    oq_requant_row_fn *row = oq_requant_row_kernel();
    oq_requant_cols_fn *cols = oq_requant_cols_kernel();
    cases++;
    /* Ties go to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2, -2.5 -> -2. */
    int32_t acc[] = {1, 3, 5, -1, -3, -5, 7};
    uint8_t yu[7];
    row(yu, false, acc, 7, 0, 0.5f, 10);
    uint8_t want_u[] = {10, 12, 12, 10, 8, 8, 14};
    CHECK(!memcmp(yu, want_u, sizeof yu));

    /* Bias is added before scaling: (acc + 1) * 0.5 = 1, 2, 3, 0, -1, -2, 4. */
    int8_t ys[7];
    row(ys, true, acc, 7, 1, 0.5f, -3);
    int8_t want_s[] = {-2, -1, 0, -3, -4, -5, 1};
    CHECK(!memcmp(ys, want_s, sizeof ys));

    /* Saturation both ways, including values far outside int32 * mult range
     * and the zero point pushing past the bounds. */
    int32_t big[] = {INT32_MAX, INT32_MIN, 300, -300, 127, -129, 0};
    int8_t s8[7];
    row(s8, true, big, 7, 0, 1.0f, 0);
    int8_t want_s8[] = {127, -128, 127, -128, 127, -128, 0};
    CHECK(!memcmp(s8, want_s8, sizeof s8));
    uint8_t u8[7];
    row(u8, false, big, 7, 0, 1.0f, 128);
    uint8_t want_u8[] = {255, 0, 255, 0, 255, 0, 128};
    CHECK(!memcmp(u8, want_u8, sizeof u8));

    /* Per-column bias and multipliers; negative multiplier flips sign. */
    int32_t sums[] = {10, 10, 10, -7};
    int32_t bias[] = {0, 5, -10, 0};
    float mult[] = {0.25f, 0.1f, 1.0f, -1.0f};
    uint8_t yc[4];
    cols(yc, false, sums, 4, bias, mult, 100);
    /* 2.5 -> 2; 1.5 -> 2; 0; 7 */
    uint8_t want_c[] = {102, 102, 100, 107};
    CHECK(!memcmp(yc, want_c, sizeof yc));
    int8_t yc8[4];
    cols(yc8, true, sums, 4, NULL, mult, 0);
    /* 2.5 -> 2; 1; 10; 7 */
    int8_t want_c8[] = {2, 1, 10, 7};
    CHECK(!memcmp(yc8, want_c8, sizeof yc8));
}

/* y = saturate(rint((float)(acc + bias) * mult) + zp), written plainly. */
static int32_t requant_ref(int32_t acc, int32_t bias, float mult, int32_t zp, bool y_signed)
{
    float v = (float)(int32_t)((uint32_t)acc + (uint32_t)bias) * mult;
    double q = (double)rintf(v) + zp, lo = y_signed ? -128 : 0, hi = y_signed ? 127 : 255;
    return (int32_t)(q < lo ? lo : q > hi ? hi : q);
}

/* Both requantizers on every length around the vector widths, against the
 * reference; values past the end must stay untouched. */
static void test_requant_lengths(void)
{
    static const int64_t lengths[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 1000, 4099};
    enum { MAXN = 4099 };
    int32_t *acc = malloc(MAXN * sizeof *acc), *bias = malloc(MAXN * sizeof *bias);
    float *mult = malloc(MAXN * sizeof *mult);
    uint8_t *y = malloc(MAXN + 1);
    oq_requant_row_fn *row = oq_requant_row_kernel();
    oq_requant_cols_fn *cols = oq_requant_cols_kernel();
    uint32_t st = 99;
    if (!acc || !bias || !mult || !y) {
        CHECK(!"out of memory");
        goto done;
    }
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int64_t n = lengths[li];
        for (int sg = 0; sg < 2; sg++) {
            cases++;
            for (int64_t j = 0; j < n; j++) {
                uint32_t r = krand(&st);
                /* mostly small sums; some at the int32 limits, some exact ties */
                acc[j] = r % 11 == 0 ? (int32_t)(r % 2 ? INT32_MAX - (int32_t)(r >> 24) : INT32_MIN + (int32_t)(r >> 24))
                                     : (int32_t)(krand(&st) % 20001) - 10000;
                bias[j] = (int32_t)(krand(&st) % 2001) - 1000;
                mult[j] = r % 7 == 0 ? 0.5f : krand_float(&st, -0.05f, 0.05f);
            }
            int32_t zp = sg ? (int32_t)(krand(&st) % 256) - 128 : (int32_t)(krand(&st) % 256);
            int bad = 0;
            y[n] = 0xa5;
            row(y, sg, acc, n, bias[0], mult[0], zp);
            for (int64_t j = 0; j < n; j++)
                bad += (sg ? (int32_t)(int8_t)y[j] : y[j]) != requant_ref(acc[j], bias[0], mult[0], zp, sg);
            y[n] = 0xa5;
            cols(y, sg, acc, n, bias, mult, zp);
            for (int64_t j = 0; j < n; j++)
                bad += (sg ? (int32_t)(int8_t)y[j] : y[j]) != requant_ref(acc[j], bias[j], mult[j], zp, sg);
            cols(y, sg, acc, n, NULL, mult, zp);
            for (int64_t j = 0; j < n; j++)
                bad += (sg ? (int32_t)(int8_t)y[j] : y[j]) != requant_ref(acc[j], 0, mult[j], zp, sg);
            if (bad)
                fprintf(stderr, "requant n=%lld signed=%d: %d values differ from the formula\n", (long long)n, sg, bad);
            CHECK(bad == 0);
            CHECK(y[n] == 0xa5);
        }
    }
done:
    free(acc), free(bias), free(mult), free(y);
}

static int check_qgemm(oq_isa level)
{
    (void)level;
    cases = 0;
    rng_state = 0x12345678u;
    test_known_value();
    test_fast_vs_ref();
    return cases;
}

static int check_requant(oq_isa level)
{
    (void)level;
    cases = 0;
    test_requant_known();
    test_requant_lengths();
    return cases;
}

/* qgemm runs the micro-kernels and the B packing clones. */
static const char *qgemm_variant(oq_isa isa)
{
    const char *k = oq_qgemm_variant(isa);
    return k ? k : clone_variant(isa);
}

const kfamily kf_qgemm = {"qgemm", qgemm_variant, check_qgemm};
const kfamily kf_requant = {"requant", clone_variant, check_requant};
