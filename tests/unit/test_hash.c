/* test_hash.c: SHA-256 against the published FIPS 180-2 example digests, and
 * every implementation the processor runs against the portable one over all
 * lengths around the block size and every way of splitting the input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_hash.h"

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
    digest("abc", 3, 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    digest("", 0, 1, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(two, strlen(two), 7, hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    digest(million, 1000000, 1000000, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    free(million);
}

static void test_implementations_agree(void)
{
    enum { N = 1000 };
    unsigned char *buf = malloc(N);
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        buf[i] = (unsigned char)(s >> 24);
    }
    const char *native = oq_sha256_impl_name();
    printf("sha256 implementation: %s\n", native);
    const char *names[] = {"portable", "sha-ni"};
    for (size_t len = 0; len < N; len += len < 200 ? 1 : 97) {
        char want[65], got[65];
        CHECK(oq_sha256_force_impl("portable"));
        digest(buf, len, N, want);
        for (int k = 0; k < 2; k++) {
            if (!oq_sha256_force_impl(names[k]))
                continue; /* not runnable here */
            const size_t pieces[] = {1, 63, 64, 65, N};
            for (int q = 0; q < 5; q++) {
                digest(buf, len, pieces[q], got);
                if (strcmp(got, want))
                    fprintf(stderr, "%s: length %zu in pieces of %zu differs\n", names[k], len, pieces[q]);
                CHECK(!strcmp(got, want));
            }
        }
    }
    CHECK(oq_sha256_force_impl(native));
    CHECK(!oq_sha256_force_impl("md5"));
    free(buf);
}

int main(void)
{
    test_known_digests();
    test_implementations_agree();
    test_known_digests(); /* again with the native implementation */
    return check_exit("test_hash");
}
