/* sha256.c: kernel family sha256: each SHA-256 implementation against the
 * published FIPS 180-2 example digests, and against the portable one (the
 * baseline) over every length around the 64-byte block, in pieces of every
 * size around it. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnxq/oq_hash.h"

static int cases; /* run by the current check */

static void digest(const void *data, size_t len, size_t piece, char hex[65])
{
    oq_sha256 h;
    oq_sha256_init(&h);
    const unsigned char *p = data;
    for (size_t off = 0; off < len; off += piece)
        oq_sha256_update(&h, p + off, len - off < piece ? len - off : piece);
    oq_sha256_hex(&h, hex);
}

static void test_known_digests(void)
{
    char hex[65];
    cases++;
    digest("abc", 3, 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    digest("", 0, 1, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(two, strlen(two), 7, hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

enum { N = 1000 };

/* want[len]: the portable digest of buf's first len bytes. */
typedef struct ref_digests {
    const unsigned char *buf;
    char (*want)[65];
} ref_digests;

static void portable_digests(void *arg)
{
    ref_digests *r = arg;
    for (size_t len = 0; len < N; len++)
        digest(r->buf, len, N, r->want[len]);
}

static void test_against_portable(oq_isa level)
{
    unsigned char *buf = malloc(N);
    char (*want)[65] = malloc(N * sizeof *want);
    uint32_t s = 12345;
    if (!buf || !want) {
        CHECK(!"out of memory");
        goto done;
    }
    for (int i = 0; i < N; i++)
        buf[i] = (unsigned char)krand(&s);
    ref_digests r = {buf, want};
    at_baseline(level, portable_digests, &r);
    for (size_t len = 0; len < N; len += len < 200 ? 1 : 97) {
        const size_t pieces[] = {1, 63, 64, 65, N};
        for (int q = 0; q < 5; q++) {
            char got[65];
            cases++;
            digest(buf, len, pieces[q], got);
            if (strcmp(got, want[len]))
                fprintf(stderr, "%s: length %zu in pieces of %zu differs\n", oq_sha256_impl_name(), len, pieces[q]);
            CHECK(!strcmp(got, want[len]));
        }
    }
done:
    free(buf);
    free(want);
}

static int check_sha256(oq_isa level)
{
    cases = 0;
    test_known_digests();
    test_against_portable(level);
    return cases;
}

const kfamily kf_sha256 = {"sha256", oq_sha256_variant, check_sha256};
