/* oq_upgrade.c: test helper. Loads an ONNX model, raises its default-domain
 * opset with oq_model_upgrade_opset and saves it, so python scripts can check
 * the result with onnx's checker and by running it.
 *
 * usage: oq_upgrade IN.onnx OUT.onnx TARGET_OPSET
 * Exit status 0 on success; 3 when the pass refuses the model (OQ_EUNSUPPORTED);
 * 1 for other errors (message on stderr). */
#include <stdio.h>
#include <stdlib.h>

#include "onnxq/oq_graph.h"
#include "onnxq/oq_onnx_io.h"
#include "onnxq/oq_quant.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s IN.onnx OUT.onnx TARGET_OPSET\n", argv[0]);
        return 2;
    }
    oq_err err = {0};
    oq_model *m = NULL;
    oq_status st = oq_model_load(&m, argv[1], &err);
    if (!st)
        st = oq_model_upgrade_opset(m, strtoll(argv[3], NULL, 10), &err);
    if (!st)
        st = oq_model_save(m, argv[2], NULL, &err);
    oq_model_destroy(m);
    if (st) {
        fprintf(stderr, "oq_upgrade: %s\n", err.msg);
        return st == OQ_EUNSUPPORTED ? 3 : 1;
    }
    return 0;
}
