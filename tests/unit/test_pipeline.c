/* test_pipeline.c: the pipeline's stages on the bundled digit CNN and its
 * samples, the way a sensitivity analysis uses them: one load, one
 * calibration, then several plans rewritten and evaluated in one process,
 * each from the same prepared model. The default plan's model must be
 * byte-identical to what oq_job_run writes; a plan that keeps conv1 float
 * quantizes one candidate less and leaves the earlier plan's results alone;
 * running the first plan again gives the same bytes.
 *
 * usage: test_pipeline REPO_ROOT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_pipeline.h"

static char model[1024], data[1024];

static oq_job job_for(const char *output)
{
    static const char *specs[1];
    specs[0] = data;
    oq_job j = oq_job_default();
    j.model_path = model;
    j.output_path = output;
    j.n_data = 1;
    j.data = specs;
    j.threads = 1;
    j.tool_version = "test";
    return j;
}

static int quantized_count(const oq_quantized *q)
{
    int n = 0;
    for (int i = 0; i < q->result.n_nodes; i++)
        n += q->result.nodes[i].quantized;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_pipeline REPO_ROOT\n");
        return 2;
    }
    snprintf(model, sizeof model, "%s/models/example/tiny_cnn.onnx", argv[1]);
    snprintf(data, sizeof data, "%s/calibration/example", argv[1]);
    oq_err err = {0};

    /* the one-shot run, into a temporary folder */
    char dir[] = "/tmp/oq-pipeline-XXXXXX", out[1100];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(out, sizeof out, "%s/q.onnx", dir);
    oq_job job = job_for(out);
    oq_outcome outcome;
    CHECK_OK(oq_job_run(&job, &outcome, &err), &err);
    CHECK(outcome.report && outcome.report->n_quantized == 3 && outcome.n_warnings == 0);
    oq_outcome_release(&outcome);
    uint8_t *written = NULL;
    size_t n_written = 0;
    CHECK_OK(oq_read_file(out, &written, &n_written, &err), &err);
    unlink(out);
    rmdir(dir);

    /* the same by stages, without writing anything */
    oq_job staged = job_for(NULL);
    oq_pipeline *p = NULL;
    oq_plan *all = NULL, *keep = NULL;
    oq_quantized *qa = NULL, *qk = NULL, *qa2 = NULL;
    oq_eval ea = {0}, ek = {0};
    bool eva = false, evk = false;
    CHECK_OK(oq_pipeline_create(&p, &staged, &err), &err);
    if (p && !oq_pipeline_load(p, &err) && !oq_pipeline_prepare(p, &err) && !oq_pipeline_calibrate(p, &err)) {
        const oq_calib_table *t = oq_pipeline_table(p);
        CHECK(t && t->samples == 16 && t->n_entries == 6);
        oq_plan_override conv1 = {"conv1", OQ_POLICY_FLOAT, NULL};
        CHECK_OK(oq_pipeline_plan(p, 0, NULL, &all, &err), &err);
        CHECK_OK(oq_pipeline_plan(p, 1, &conv1, &keep, &err), &err);
        if (all && keep) {
            CHECK_OK(oq_pipeline_rewrite(p, all, false, &qa, &err), &err);
            CHECK_OK(oq_pipeline_rewrite(p, keep, false, &qk, &err), &err);
            CHECK_OK(oq_pipeline_rewrite(p, all, false, &qa2, &err), &err);
        }
        if (qa && qk && qa2) {
            CHECK(qa->n_bytes == n_written && !memcmp(qa->bytes, written, n_written));
            CHECK(qa2->n_bytes == qa->n_bytes && !memcmp(qa2->bytes, qa->bytes, qa->n_bytes));
            CHECK(quantized_count(qa) == 3 && quantized_count(qk) == 2 && !qk->result.nodes[0].quantized &&
                  !strcmp(qk->result.nodes[0].reason, "kept float by its node policy"));
            CHECK_OK(oq_pipeline_evaluate(p, qa, &ea, &eva, &err), &err);
            CHECK_OK(oq_pipeline_evaluate(p, qk, &ek, &evk, &err), &err);
            CHECK(eva && evk && ea.samples == 16 && ek.samples == 16 && ea.n_outputs == 1);
            CHECK(ea.outputs && ek.outputs && ea.outputs[0].cosine > 0.99 && ek.outputs[0].cosine > 0.99);
            /* conv1 float: its per-node output SQNR is not measured, the others are */
            CHECK(ek.node_sqnr_db && ek.node_sqnr_db[0] != ek.node_sqnr_db[0] &&
                  ek.node_sqnr_db[1] == ek.node_sqnr_db[1]);
        }
    }
    const char *const *lines;
    CHECK(!p || oq_pipeline_warnings(p, &lines) == 0);
    oq_eval_release(&ea);
    oq_eval_release(&ek);
    oq_quantized_destroy(qa);
    oq_quantized_destroy(qk);
    oq_quantized_destroy(qa2);
    oq_plan_destroy(all);
    oq_plan_destroy(keep);
    oq_pipeline_destroy(p);
    free(written);

    /* a job whose output names its model is refused before anything is read */
    oq_job bad = job_for(model);
    CHECK(oq_pipeline_create(&p, &bad, &err) == OQ_EINVAL && strstr(err.msg, "choose another output path"));
    return check_exit("test_pipeline");
}
