/* quantize_example.c: a program outside the source tree that quantizes a
 * model through the installed liboq, built with
 *   cc quantize_example.c $(pkg-config --cflags --libs onnxq)
 * by test_install.py, which checks its output against `onnxq quantize`'s.
 *
 *   quantize_example MODEL DATA OUT.onnx OUT.html VERSION
 *
 * Calibrates MODEL on DATA (a data spec, as --data takes), writes the
 * quantized model and the HTML report (VERSION goes into the report), prints
 * the library's warnings, and on failure its error, exiting 1. */
#include <stdio.h>

#include <onnxq/oq_pipeline.h>

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: quantize_example MODEL DATA OUT.onnx OUT.html VERSION\n");
        return 2;
    }
    const char *data[1] = {argv[2]};
    oq_job job = oq_job_default();
    job.model_path = argv[1];
    job.n_data = 1;
    job.data = data;
    job.output_path = argv[3];
    job.html_path = argv[4];
    job.tool_version = argv[5];
    oq_outcome out;
    oq_err err = {0};
    oq_status st = oq_job_run(&job, &out, &err);
    for (int i = 0; i < out.n_warnings; i++)
        fprintf(stderr, "quantize_example: warning: %s\n", out.warnings[i]);
    if (!st && out.report)
        printf("quantized %d of %d nodes\n", out.report->n_quantized, out.report->n_nodes);
    oq_outcome_release(&out);
    if (st) {
        fprintf(stderr, "quantize_example: %s: %s\n", oq_status_name(st), err.msg);
        return 1;
    }
    return 0;
}
