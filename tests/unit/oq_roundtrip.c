/* oq_roundtrip.c: test helper. Loads an ONNX model with onnxq and saves it
 * again, so python scripts can check what the loader understood and what the
 * saver writes.
 *
 * usage: oq_roundtrip IN.onnx OUT.onnx [EXTERNAL_THRESHOLD_BYTES]
 * Exit status 0 on success; 1 with the error on stderr otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include "onnxq/oq_graph.h"
#include "onnxq/oq_onnx_io.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s IN.onnx OUT.onnx [EXTERNAL_THRESHOLD_BYTES]\n", argv[0]);
        return 2;
    }
    oq_save_options opts = {.external_threshold = argc == 4 ? (size_t)strtoull(argv[3], NULL, 10) : 0};
    oq_err err = {0};
    oq_model *m = NULL;
    if (oq_model_load(&m, argv[1], &err) || oq_model_save(m, argv[2], &opts, &err)) {
        fprintf(stderr, "oq_roundtrip: %s\n", err.msg);
        oq_model_destroy(m);
        return 1;
    }
    oq_model_destroy(m);
    return 0;
}
