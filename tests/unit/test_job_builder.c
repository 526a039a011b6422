/* test_job_builder.c: oq_job_builder (options by name into an oq_job) and
 * oq_samples (samples held in memory) on their own: every option lands in
 * the job field the command line sets, lists append and flags clear,
 * malformed values and unknown names fail naming the option; samples are
 * copied in, refused when malformed, and a data set over them feeds each
 * model input its own tensor and names the sample in its errors. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_job_builder.h"
#include "onnxq/oq_version.h"

static oq_job_builder *b;
static oq_err err;

static bool set(const char *name, const char *value) { return oq_job_builder_set(b, name, value, &err) == OQ_OK; }

/* value is refused, with a message naming the option */
static bool refused(const char *name, const char *value) { return !set(name, value) && strstr(err.msg, name) != NULL; }

static void options(void)
{
    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    const oq_job *j = oq_job_builder_job(b);
    oq_job d = oq_job_default();
    CHECK(j->bins == d.bins && j->quant.per_channel && j->tool_version && strcmp(j->tool_version, oq_version()) == 0);

    char path[] = "model.onnx";
    CHECK(set("model", path) && set("output", "q.onnx") && set("report", "r.json") && set("html", "r.html") &&
          set("calib", "t.json") && set("labels", "l.txt"));
    path[0] = 'X'; /* the builder keeps its own copy */
    CHECK(!strcmp(j->model_path, "model.onnx") && !strcmp(j->output_path, "q.onnx") &&
          !strcmp(j->report_path, "r.json") && !strcmp(j->html_path, "r.html") && !strcmp(j->table_path, "t.json") &&
          !strcmp(j->labels_path, "l.txt"));
    CHECK(set("data", "a") && set("data", "x=b.npy") && set("eval-data", "c"));
    CHECK(j->n_data == 2 && !strcmp(j->data[0], "a") && !strcmp(j->data[1], "x=b.npy") && j->n_eval == 1 &&
          !strcmp(j->eval_data[0], "c"));
    CHECK(set("mode", "dynamic") && j->quant.mode == OQ_MODE_DYNAMIC && set("mode", "static") &&
          j->quant.mode == OQ_MODE_STATIC);
    CHECK(set("format", "qdq") && j->quant.format == OQ_FORMAT_QDQ);
    CHECK(set("contrib", NULL) && j->quant.contrib && set("contrib", "false") && !j->quant.contrib);
    CHECK(set("per-tensor", "true") && !j->quant.per_channel && set("per-tensor", "false") && j->quant.per_channel);
    CHECK(set("activation-type", "int8") && j->range.range.qmin == -128 && j->range.range.qmax == 127 &&
          j->range.act_type_given);
    CHECK(set("symmetric-activations", NULL) && j->range.range.symmetric && j->range.symmetric_given);
    CHECK(set("symmetric", "false") && !j->range.range.symmetric);
    CHECK(set("op-types", "Conv,,Gemm") && j->quant.n_op_types == 2 && !strcmp(j->quant.op_types[1], "Gemm"));
    CHECK(set("op-types", "MatMul") && j->quant.n_op_types == 1 && !strcmp(j->quant.op_types[0], "MatMul"));
    /* the default --help names: each one accepted */
    CHECK(set("op-types", "Conv,ConvTranspose,MatMul,Gemm,Gather,LSTM,GRU,RNN,Einsum") && j->quant.n_op_types == 9 &&
          !strcmp(j->quant.op_types[1], "ConvTranspose"));
    CHECK(set("exclude", "a,b") && set("exclude", "c") && j->quant.n_exclude == 3 && !strcmp(j->quant.exclude[2], "c"));
    CHECK(set("method", "entropy") && j->range.range.method == OQ_CALIB_ENTROPY && j->range.method_given);
    CHECK(set("percentile", "99.9") && j->range.range.percentile == 99.9 && j->range.percentile_given);
    CHECK(set("bins", "512") && j->bins == 512 && set("samples", "7") && j->max_samples == 7);
    CHECK(set("eval-samples", "5") && j->eval_samples == 5 && set("threads", "3") && j->threads == 3);
    CHECK(set("all-tensors", NULL) && j->all_tensors && set("no-prepare", "1") && j->no_prepare);
    CHECK(set("resize", "256") && j->pre.resize_w == 256 && j->pre.resize_h == 256 && j->pre.resize_cover && j->resize_given);
    CHECK(set("crop", "224x200") && j->pre.crop_w == 224 && j->pre.crop_h == 200);
    CHECK(set("layout", "nhwc") && j->pre.layout == OQ_LAYOUT_NHWC && j->layout_given);
    CHECK(set("scale", "0.5") && j->pre.scale == 0.5f && set("bgr", NULL) && j->pre.bgr);
    CHECK(set("scale", "1/255") && j->pre.scale == oq_preprocess_default().scale && set("scale", "3/0.5") &&
          j->pre.scale == 6.0f);
    CHECK(set("mean", "1,2,3") && j->pre.mean[2] == 3.0f && set("std", "0.5,0.25,2") && j->pre.std[1] == 0.25f);

    CHECK(refused("mode", "fast") && refused("format", NULL) && refused("bins", "15") && refused("bins", "17") &&
          refused("percentile", "50") && refused("percentile", "nan") && refused("samples", "0") &&
          refused("threads", "-1") && refused("activation-type", "int4") && refused("method", "best") &&
          refused("resize", "0") && refused("crop", "3x") && refused("layout", "chw") && refused("scale", "0") &&
          refused("scale", "1/0") && refused("scale", "1/") && refused("scale", "/255") && refused("scale", "1/2/3") &&
          refused("scale", "-1/255") && refused("scale", "1e-50") && refused("scale", "1e39") &&
          refused("mean", "1,2") && refused("std", "1,0,1") && refused("contrib", "maybe") && refused("data", NULL));
    CHECK(!set("op-types", "Relu") && strstr(err.msg, "'Relu'") && strstr(err.msg, "Conv, ConvTranspose, MatMul"));
    CHECK(!set("op-types", "") && strstr(err.msg, "one or more") && !set("op-types", ",") && strstr(err.msg, "','"));
    CHECK(!set("colour", "red") && strstr(err.msg, "unknown option 'colour'"));
    oq_job_builder_destroy(b);
    oq_job_builder_destroy(NULL);
}

/* The option table: set knows every name in it; the
 * accuracy targets; the checks across options. */
static void targets_and_checks(void)
{
    const oq_job_option *opts;
    int n = oq_job_builder_options(&opts);
    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    int unknown = 0;
    for (int i = 0; i < n; i++)
        if (!set(opts[i].name, opts[i].takes_value ? NULL : "true") && strstr(err.msg, "unknown option"))
            unknown++;
    CHECK(n > 30 && unknown == 0);
    oq_job_builder_destroy(b);

    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    const oq_job *j = oq_job_builder_job(b);
    CHECK(set("data", "d") && set("min-sqnr", "21.5") && j->target.kind == OQ_TARGET_MIN_SQNR && j->target.value == 21.5);
    CHECK(!set("max-drop", "1") && strstr(err.msg, "one accuracy target") && j->target.kind == OQ_TARGET_MIN_SQNR);
    CHECK_OK(oq_job_builder_check(b, &err), &err);
    CHECK(set("sensitivity", "s.json") && !strcmp(j->sensitivity_path, "s.json"));
    CHECK_OK(oq_job_builder_check(b, &err), &err);
    oq_job_builder_destroy(b);

    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    j = oq_job_builder_job(b);
    CHECK(refused("min-agreement", "101") && refused("max-drop", "-1") && refused("min-sqnr", "inf") &&
          j->target.kind == OQ_TARGET_NONE);
    CHECK(set("max-drop", "0.5") && j->target.kind == OQ_TARGET_MAX_DROP);
    CHECK(oq_job_builder_check(b, &err) == OQ_EINVAL && strstr(err.msg, "--max-drop needs evaluation samples"));
    CHECK(set("eval-data", "e") && oq_job_builder_check(b, &err) == OQ_EINVAL && strstr(err.msg, "needs --labels"));
    CHECK(set("labels", "l.txt") && oq_job_builder_check(b, &err) == OQ_OK);
    oq_job_builder_destroy(b);

    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    CHECK(set("sensitivity", "s.json") && oq_job_builder_check(b, &err) == OQ_EINVAL &&
          strstr(err.msg, "needs an accuracy target"));
    oq_job_builder_destroy(b);

    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    CHECK(set("mode", "dynamic") && oq_job_builder_check(b, &err) == OQ_OK);
    CHECK(set("percentile", "99.9") && set("method", "minmax") && oq_job_builder_check(b, &err) == OQ_EINVAL &&
          strstr(err.msg, "--percentile does not apply"));
    oq_job_builder_destroy(b);

    CHECK_OK(oq_job_builder_create(&b, &err), &err);
    CHECK(set("mode", "dynamic") && set("format", "qoperator") && oq_job_builder_check(b, &err) == OQ_EINVAL &&
          strstr(err.msg, "--format"));
    oq_job_builder_destroy(b);
}

static void samples(void)
{
    oq_samples *s;
    CHECK_OK(oq_samples_create(&s, &err), &err);
    float x[4] = {1, 2, 3, 4};
    int64_t dims[2] = {1, 4}, bad[2] = {1, -1};
    CHECK(oq_samples_put(s, "x", OQ_DTYPE_FLOAT, 2, dims, x, &err) == OQ_EINVAL); /* no sample begun */
    CHECK_OK(oq_samples_begin(s, &err), &err);
    CHECK_OK(oq_samples_put(s, "x", OQ_DTYPE_FLOAT, 2, dims, x, &err), &err);
    x[0] = 100; /* copied in */
    CHECK(oq_samples_put(s, "x", OQ_DTYPE_FLOAT, 2, dims, x, &err) == OQ_EINVAL && strstr(err.msg, "twice"));
    CHECK(oq_samples_put(s, "y", OQ_DTYPE_STRING, 2, dims, x, &err) == OQ_EINVAL);
    CHECK(oq_samples_put(s, "y", (oq_dtype)99, 2, dims, x, &err) == OQ_EINVAL);
    CHECK(oq_samples_put(s, "y", OQ_DTYPE_FLOAT, OQ_MAX_RANK + 1, dims, x, &err) == OQ_EINVAL);
    CHECK(oq_samples_put(s, "y", OQ_DTYPE_FLOAT, 2, bad, x, &err) != OQ_OK && strstr(err.msg, "'y'"));
    CHECK_OK(oq_samples_begin(s, &err), &err);
    CHECK_OK(oq_samples_put(s, "x", OQ_DTYPE_FLOAT, 2, dims, x, &err), &err);
    CHECK(oq_samples_count(s) == 2);

    /* a data set over them, for a model input x [N, 4] */
    oq_graph *g = oq_graph_create(NULL, NULL);
    oq_value *in = g ? oq_graph_value(g, "x", &err) : NULL;
    oq_dim d[2] = {{-1, "N"}, {4, NULL}};
    CHECK(in && oq_value_set_tensor_type(in, OQ_DTYPE_FLOAT, 2, d, &err) == OQ_OK);
    const oq_value *inputs[1] = {in};
    oq_dataset *ds = NULL;
    CHECK_OK(oq_dataset_open_samples(&ds, s, 1, inputs, &err), &err);
    oq_tensor t;
    CHECK(ds && oq_dataset_count(ds) == 2);
    CHECK(ds && oq_dataset_load(ds, 0, &t, &err) == OQ_OK && ((float *)t.data)[0] == 1 && t.dims[1] == 4);
    if (ds)
        oq_tensor_release(&t);
    CHECK(ds && oq_dataset_load(ds, 1, &t, &err) == OQ_OK && ((float *)t.data)[0] == 100);
    if (ds)
        oq_tensor_release(&t);
    oq_dataset_destroy(ds);

    /* a sample that lacks the input or has one more, a wrong shape, no samples */
    oq_value *other = g ? oq_graph_value(g, "z", &err) : NULL;
    const oq_value *z_only[1] = {other};
    CHECK(oq_dataset_open_samples(&ds, s, 1, z_only, &err) == OQ_EINVAL && strstr(err.msg, "input 'z'"));
    oq_samples *three;
    CHECK_OK(oq_samples_create(&three, &err), &err);
    CHECK(oq_dataset_open_samples(&ds, three, 1, inputs, &err) == OQ_EINVAL && strstr(err.msg, "no samples"));
    int64_t wide[2] = {1, 5};
    float w[5] = {0};
    CHECK_OK(oq_samples_begin(three, &err), &err);
    CHECK_OK(oq_samples_put(three, "x", OQ_DTYPE_FLOAT, 2, wide, w, &err), &err);
    CHECK_OK(oq_dataset_open_samples(&ds, three, 1, inputs, &err), &err);
    CHECK(ds && oq_dataset_load(ds, 0, &t, &err) == OQ_EINVAL && strstr(err.msg, "sample 0"));
    oq_dataset_destroy(ds);
    CHECK_OK(oq_samples_put(three, "extra", OQ_DTYPE_FLOAT, 2, wide, w, &err), &err);
    CHECK(oq_dataset_open_samples(&ds, three, 1, inputs, &err) == OQ_EINVAL && strstr(err.msg, "'extra'"));
    oq_samples_destroy(three);
    oq_graph_destroy(g);
    oq_samples_destroy(s);
    oq_samples_destroy(NULL);
}

int main(void)
{
    options();
    targets_and_checks();
    samples();
    return check_exit("job_builder");
}
