/* oq_hash.h: SHA-256, for the model and data fingerprints in tables and reports. */
#ifndef ONNXQ_OQ_HASH_H
#define ONNXQ_OQ_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_cpu.h"

typedef struct oq_sha256 {
    uint32_t state[8];
    uint64_t total;     /* bytes hashed so far */
    uint8_t block[64];  /* pending partial block */
    size_t fill;
} oq_sha256;

void oq_sha256_init(oq_sha256 *h);
void oq_sha256_update(oq_sha256 *h, const void *data, size_t len);
/* Finishes the hash and writes 64 lowercase hex digits + NUL into hex. */
void oq_sha256_hex(oq_sha256 *h, char hex[65]);

/* The compression code in use: "sha-ni" (x86 SHA extensions, when level
 * OQ_ISA_SHA is enabled; oq_cpu.h) or "portable". */
const char *oq_sha256_impl_name(void);
/* The compression code compiled for level isa, or NULL when it has none. */
const char *oq_sha256_variant(oq_isa isa);

#endif
