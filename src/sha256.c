/* sha256.c: SHA-256 per FIPS 180-4 (see oq_hash.h). */
#include "onnxq/oq_hash.h"

#include <stdio.h>
#include <string.h>

#include "cpu_dispatch.h"

static const uint32_t round_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress_one(uint32_t s[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + round_k[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s[0] += a, s[1] += b, s[2] += c, s[3] += d, s[4] += e, s[5] += f, s[6] += g, s[7] += h;
}

/* compress_fn(state, blocks, n): runs the compression function over n
 * consecutive 64-byte blocks. */
typedef void compress_fn(uint32_t s[8], const uint8_t *p, size_t n);

static void compress_portable(uint32_t s[8], const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        compress_one(s, p + 64 * i);
}

#if OQ_X86_KERNELS
#include <immintrin.h>

/* The same with the SHA extensions. sha256rnds2 keeps the working variables
 * as two vectors, ABEF and CDGH (highest lane first), and does two rounds
 * per call with W+K taken from the low half of its third operand;
 * sha256msg1/msg2 compute the message schedule four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t s[8], const uint8_t *p, size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)&s[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&s[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    for (size_t blk = 0; blk < n; blk++, p += 64) {
        __m128i abef0 = abef, cdgh0 = cdgh, w[4];
        for (int t = 0; t < 16; t++) { /* four rounds per step */
            __m128i m;
            if (t < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * t)), bswap);
            } else { /* w[t] = s1(w[t-2]) + w[t-7] + s0(w[t-15]) + w[t-16], for four t at once */
                m = _mm_add_epi32(_mm_sha256msg1_epu32(w[t & 3], w[(t + 1) & 3]),
                                  _mm_alignr_epi8(w[(t + 3) & 3], w[(t + 2) & 3], 4));
                m = _mm_sha256msg2_epu32(m, w[(t + 3) & 3]);
            }
            w[t & 3] = m;
            __m128i wk = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&round_k[4 * t]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&s[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&s[4], _mm_alignr_epi8(dchg, feba, 8));
}
#endif

/* The compression code of each level and its name. */
static const struct {
    compress_fn *fn;
    const char *name;
} impls[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {compress_portable, "portable"},
#if OQ_X86_KERNELS
    [OQ_ISA_SHA] = {compress_shani, "sha-ni"},
#endif
};

static int chosen_impl(void) { return oq_isa_pick(OQ_ISA_HAVE(impls, .fn)); }

const char *oq_sha256_impl_name(void) { return impls[chosen_impl()].name; }

const char *oq_sha256_variant(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? impls[isa].name : NULL; }

void oq_sha256_init(oq_sha256 *h)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h->state, iv, sizeof iv);
    h->total = 0;
    h->fill = 0;
}

void oq_sha256_update(oq_sha256 *h, const void *data, size_t len)
{
    compress_fn *compress = impls[chosen_impl()].fn;
    const uint8_t *p = data;
    h->total += len;
    while (len) {
        if (h->fill == 0 && len >= 64) { /* whole blocks straight from the input */
            size_t blocks = len / 64;
            compress(h->state, p, blocks);
            p += 64 * blocks;
            len -= 64 * blocks;
            continue;
        }
        size_t take = 64 - h->fill < len ? 64 - h->fill : len;
        memcpy(h->block + h->fill, p, take);
        h->fill += take;
        p += take;
        len -= take;
        if (h->fill == 64) {
            compress(h->state, h->block, 1);
            h->fill = 0;
        }
    }
}

void oq_sha256_hex(oq_sha256 *h, char hex[65])
{
    uint64_t bits = h->total * 8;
    uint8_t pad = 0x80;
    oq_sha256_update(h, &pad, 1);
    uint8_t zero = 0;
    while (h->fill != 56)
        oq_sha256_update(h, &zero, 1);
    uint8_t len_be[8];
    for (int i = 0; i < 8; i++)
        len_be[i] = (uint8_t)(bits >> (56 - 8 * i));
    oq_sha256_update(h, len_be, 8);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", h->state[i]);
}
