/* fuzz_tensor_pb.c: bytes -> TensorProto (ONNX test data, input_0.pb) -> tensor. */
#include <stdint.h>
#include <stdlib.h>

#include "onnxq/oq_onnx_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oq_set_tensor_limit((size_t)1 << 20);
    oq_tensor t;
    char *name = NULL;
    oq_err err = {0};
    if (!oq_tensor_parse_pb(&t, &name, data, size, "fuzz.pb", NULL, &err)) {
        oq_tensor_release(&t);
        free(name);
    }
    return 0;
}
