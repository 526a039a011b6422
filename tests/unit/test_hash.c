/* test_hash.c: SHA-256 against the published FIPS 180-2 example digests
 * (each implementation against the portable one: kernel family sha256). */
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

int main(void)
{
    test_known_digests();
    return check_exit("test_hash");
}
