/* fuzz_npy.c: bytes -> .npy tensor, both whole (oq_npy_parse) and as a
 * sample file read one leading-axis element at a time (oq_npy_open on a memfd). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "onnxq/oq_npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_samples(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.npy", 0);
    if (fd < 0)
        return;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        oq_npy_file f;
        oq_err err = {0};
        if (!oq_npy_open(&f, path, &err)) {
            int64_t n = f.rank > 0 ? f.dims[0] : 0;
            int64_t pick[2] = {0, n - 1};
            for (int k = 0; k < 2; k++) {
                oq_tensor t;
                if (!oq_npy_read_sample(&f, pick[k], &t, path, &err))
                    oq_tensor_release(&t);
            }
            oq_npy_close(&f);
        }
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oq_set_tensor_limit((size_t)1 << 20);
    oq_tensor t;
    oq_err err = {0};
    if (!oq_npy_parse(&t, data, size, "fuzz.npy", &err))
        oq_tensor_release(&t);
    read_samples(data, size);
    return 0;
}
