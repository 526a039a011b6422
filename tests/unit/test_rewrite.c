/* test_rewrite.c: the plan and the rewrite on graphs built by hand, with no
 * ONNX Runtime: Conv + Relu, Gemm with C, one weight read by two Convs,
 * Concat of inputs with unequal and with equal scales, a MatMul of two
 * activations, a MatMul of a rank-3 input followed by the Add of a bias row,
 * and an embedding lookup (Gather from a constant table). Each is calibrated on
 * its samples (minmax, so that nothing is clipped), prepared, planned and
 * rewritten in the QOperator (with and without --contrib), QDQ and dynamic
 * forms; the test checks the ops the output holds and runs both models on
 * the samples: every output element of the quantized model lies within the
 * error its quantization allows of the float one. That bound is computed per
 * element from the float inputs and weights: rounding x to its scale s_x
 * moves a product sum by at most sum |w| s_x / 2, rounding the weights by
 * sum |x| s_w / 2 (plus sum s_x s_w / 4 for both), the int32 bias by
 * s_x s_w / 2, and the output, when it is 8-bit, by s_y / 2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_calib.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_plan.h"
#include "onnxq/oq_quant.h"

#define N_SAMPLES 6

static uint32_t seed = 2024;

static float frand(float lo, float hi)
{
    seed = seed * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(seed >> 8) / (float)(1u << 24);
}

/* ---- building graphs ------------------------------------------------------------- */

static oq_model *model_new(void)
{
    oq_model *m = oq_model_create();
    m->ir_version = 8;
    m->graph = oq_graph_create(m, NULL);
    m->opsets = calloc(1, sizeof *m->opsets);
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = 13;
    m->n_opsets = 1;
    return m;
}

static void add_input(oq_model *m, const char *name, int rank, const int64_t *dims)
{
    oq_err err = {0};
    oq_dim d[OQ_MAX_RANK];
    for (int i = 0; i < rank; i++)
        d[i] = (oq_dim){dims[i], NULL};
    oq_value *v = oq_graph_value(m->graph, name, &err);
    CHECK_OK(oq_value_set_tensor_type(v, OQ_DTYPE_FLOAT, rank, d, &err), &err);
    CHECK_OK(oq_graph_add_input(m->graph, v, &err), &err);
}

/* An initializer of uniform values in [lo, hi]; returns its data. */
static const float *add_weight(oq_model *m, const char *name, int rank, const int64_t *dims, float lo, float hi)
{
    oq_err err = {0};
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, rank, dims, &err);
    for (int64_t i = 0; i < oq_tensor_numel(t); i++)
        ((float *)t->data)[i] = frand(lo, hi);
    oq_value *v = oq_graph_value(m->graph, name, &err);
    CHECK_OK(oq_graph_set_constant(m->graph, v, t, true, &err), &err);
    return t->data;
}

static oq_node *add(oq_model *m, const char *op, int n_in, const char *const *in, const char *out)
{
    oq_err err = {0};
    oq_node *n = oq_graph_add_node(m->graph, op, "", out, n_in, in, 1, &out, &err);
    CHECK(n != NULL);
    return n;
}

static void finish_model(oq_model *m, int n_out, const char *const *outs)
{
    oq_err err = {0};
    for (int i = 0; i < n_out; i++)
        CHECK_OK(oq_graph_add_output(m->graph, oq_graph_find(m->graph, outs[i]), &err), &err);
    CHECK_OK(oq_graph_sort(m->graph, &err), &err);
}

static void conv_attrs(oq_node *n, int k, int pad)
{
    oq_err err = {0};
    int64_t ks[2] = {k, k}, pads[4] = {pad, pad, pad, pad};
    CHECK_OK(oq_node_set_attr_ints(n, "kernel_shape", 2, ks, &err), &err);
    CHECK_OK(oq_node_set_attr_ints(n, "pads", 4, pads, &err), &err);
}

/* ---- samples, calibration and runs ------------------------------------------------- */

typedef struct samples {
    int n_in;
    oq_tensor x[N_SAMPLES][2];
} samples;

/* Samples of uniform [-1, 1] values for m's inputs. */
static samples make_samples(const oq_model *m)
{
    oq_err err = {0};
    samples s = {.n_in = m->graph->n_inputs};
    for (int k = 0; k < N_SAMPLES; k++)
        for (int i = 0; i < s.n_in; i++) {
            const oq_value *v = m->graph->inputs[i];
            int64_t dims[OQ_MAX_RANK];
            for (int d = 0; d < v->rank; d++)
                dims[d] = v->dims[d].value;
            CHECK_OK(oq_tensor_alloc(&s.x[k][i], OQ_DTYPE_FLOAT, v->rank, dims, &err), &err);
            for (int64_t e = 0; e < oq_tensor_numel(&s.x[k][i]); e++)
                ((float *)s.x[k][i].data)[e] = frand(-1, 1);
        }
    return s;
}

static void samples_release(samples *s)
{
    for (int k = 0; k < N_SAMPLES; k++)
        for (int i = 0; i < s->n_in; i++)
            oq_tensor_release(&s->x[k][i]);
}

/* A minmax table over the samples, recorded as a calibration records it. */
static oq_calib_table *calibrate(const oq_model *m, const samples *s, int qmin, int qmax, bool symmetric)
{
    oq_err err = {0};
    oq_calibrator *c = oq_calibrator_create(m, 512, NULL, &err);
    oq_exec_options eo = {.threads = 1, .observed = c ? oq_calibrator_observed(c) : NULL};
    oq_session *ss = NULL;
    CHECK_OK(oq_session_create(&ss, m, &eo, &err), &err);
    if (!c || !ss) {
        oq_calibrator_destroy(c);
        return NULL;
    }
    oq_session_set_observer(ss, oq_calibrator_observe, c);
    const oq_value *in[2] = {oq_session_input(ss, 0), s->n_in > 1 ? oq_session_input(ss, 1) : NULL};
    for (int k = 0; k < N_SAMPLES; k++) {
        oq_tensor out[4];
        CHECK_OK(oq_session_run(ss, s->x[k], out, &err), &err);
        oq_calibrator_add_inputs(c, s->n_in, in, s->x[k]);
        for (int o = 0; o < oq_session_output_count(ss); o++)
            oq_tensor_release(&out[o]);
    }
    oq_range_options r = {OQ_CALIB_MINMAX, 99.999, symmetric, qmin, qmax};
    oq_calib_table *t = oq_calibrator_table(c, &r, &err);
    CHECK(t != NULL);
    oq_session_destroy(ss);
    oq_calibrator_destroy(c);
    return t;
}

/* Runs m on sample k; out gets its outputs (caller releases). */
static void run_model(const oq_model *m, const samples *s, int k, oq_tensor *out)
{
    oq_err err = {0};
    oq_exec_options eo = {.threads = 1};
    oq_session *ss = NULL;
    CHECK_OK(oq_session_create(&ss, m, &eo, &err), &err);
    if (ss)
        CHECK_OK(oq_session_run(ss, s->x[k], out, &err), &err);
    oq_session_destroy(ss);
}

/* ---- the quantization under test ------------------------------------------------- */

typedef struct quantized {
    oq_model *m;            /* the rewritten model */
    oq_plan *plan;          /* planned on the prepared float copy */
    oq_model *prepared;
    oq_quant_result res;
    int ops[OQ_OP_COUNT];   /* node count by kind in the output */
    int others;             /* nodes of unrecognised kinds */
} quantized;

/* Prepares, plans with the table and rewrites a copy of m. */
static quantized quantize(const oq_model *m, const oq_calib_table *t, oq_quant_options o)
{
    oq_err err = {0};
    quantized q = {0};
    oq_quant_prep prep;
    if (t) {
        o.act_qmin = t->range.qmin;
        o.act_qmax = t->range.qmax;
        o.symmetric_activations = t->range.symmetric;
    }
    CHECK_OK(oq_model_clone(&q.prepared, m, &err), &err);
    CHECK_OK(oq_quant_prepare(q.prepared, &prep, &err), &err);
    CHECK_OK(oq_plan_create(&q.plan, q.prepared->graph, &o, t, 0, NULL, &err), &err);
    CHECK_OK(oq_model_clone(&q.m, q.prepared, &err), &err);
    if (q.plan && q.m)
        CHECK_OK(oq_quant_rewrite(q.m, q.plan, &q.res, &err), &err);
    for (int i = 0; q.m && i < q.m->graph->n_nodes; i++) {
        q.ops[q.m->graph->nodes[i]->kind]++;
        q.others += q.m->graph->nodes[i]->kind == OQ_OP_OTHER;
    }
    return q;
}

static void quantized_release(quantized *q)
{
    oq_quant_result_release(&q->res);
    oq_plan_destroy(q->plan);
    oq_model_destroy(q->prepared);
    oq_model_destroy(q->m);
}

static oq_quant_options options(oq_quant_mode mode, oq_quant_format format, bool contrib)
{
    return (oq_quant_options){.mode = mode, .format = format, .contrib = contrib, .per_channel = true,
                              .act_qmax = 255};
}

/* The plan's 8-bit parameters of value `name` of the prepared graph. */
static oq_qparams params_of(const quantized *q, const char *name)
{
    const oq_value *v = oq_graph_find(q->prepared->graph, name);
    return v ? q->plan->values[v->id].params : (oq_qparams){0, 0};
}

static const oq_plan_node *plan_node(const quantized *q, const char *output)
{
    const oq_value *v = oq_graph_find(q->prepared->graph, output);
    for (int i = 0; v && i < q->plan->n_nodes; i++)
        if (q->prepared->graph->nodes[i]->outputs[0] == v)
            return &q->plan->nodes[i];
    return NULL;
}

/* Per-channel weight scales (along axis) as the rewrite quantizes weights. */
static float *weight_scales(const float *w, int rank, const int64_t *dims, int axis)
{
    oq_err err = {0};
    oq_tensor t = {.dtype = OQ_DTYPE_FLOAT, .rank = rank, .data = (void *)w};
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    oq_weight_quant wq;
    CHECK_OK(oq_quantize_weight(&wq, &t, axis, true, NULL, &err), &err);
    float *s = malloc((size_t)dims[axis] * sizeof *s);
    memcpy(s, wq.scales.data, (size_t)dims[axis] * sizeof *s);
    oq_weight_quant_release(&wq);
    return s;
}

/* Bound of one product sum sum_k x[k] w[k] (+ bias): see the top of the file. */
typedef struct sum_bound {
    double sx, sw, sy; /* input, weight and output scales (sy 0: float output) */
    bool bias;
    double acc;        /* accumulated sum |x| sw/2 + |w| sx/2 + sx sw/4 */
} sum_bound;

static void term(sum_bound *b, float x, float w)
{
    b->acc += fabs(x) * b->sw / 2 + fabs(w) * b->sx / 2 + b->sx * b->sw / 4;
}

static double bound_of(const sum_bound *b)
{
    return b->acc + (b->bias ? b->sx * b->sw / 2 : 0) + b->sy / 2 + 1e-5;
}

/* Per-element bounds of a 3x3/1x1 Conv (stride 1, pad p) of x [1, C, H, W] by w [M, C, k, k]. */
static double *conv_bounds(const float *x, int64_t C, int64_t H, int64_t W, const float *w, int64_t M, int k, int p,
                           double sx, const float *sw, double sy, bool bias)
{
    double *out = malloc((size_t)(M * H * W) * sizeof *out);
    for (int64_t m = 0; m < M; m++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                sum_bound b = {sx, sw[m], sy, bias, 0};
                for (int64_t c = 0; c < C; c++)
                    for (int di = 0; di < k; di++)
                        for (int dj = 0; dj < k; dj++) {
                            int64_t ii = i + di - p, jj = j + dj - p;
                            if (ii >= 0 && ii < H && jj >= 0 && jj < W)
                                term(&b, x[(c * H + ii) * W + jj], w[((m * C + c) * k + di) * k + dj]);
                        }
                out[(m * H + i) * W + j] = bound_of(&b);
            }
    return out;
}

/* Every element of got within bound[i] of ref (n elements); returns the worst error over its bound. */
static double worst_ratio(const oq_tensor *ref, const oq_tensor *got, const double *bound, int64_t n)
{
    double worst = 0;
    if (got->dtype != OQ_DTYPE_FLOAT || oq_tensor_numel(got) != n || oq_tensor_numel(ref) != n)
        return INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)((const float *)ref->data)[i] - ((const float *)got->data)[i]);
        worst = fmax(worst, e / bound[i]);
    }
    return worst;
}

/* ---- Conv + Relu ---------------------------------------------------------------------- */

static void test_conv_relu(void)
{
    const int64_t C = 3, M = 4, H = 6, W = 6, xd[4] = {1, C, H, W}, wd[4] = {M, C, 3, 3}, bd[1] = {M};
    oq_model *m = model_new();
    add_input(m, "x", 4, xd);
    const float *w = add_weight(m, "w", 4, wd, -0.5f, 0.5f);
    add_weight(m, "b", 1, bd, -0.2f, 0.2f);
    const char *ci[] = {"x", "w", "b"}, *ri[] = {"c"}, *outs[] = {"y"};
    conv_attrs(add(m, "Conv", 3, ci, "c"), 3, 1);
    add(m, "Relu", 1, ri, "y");
    finish_model(m, 1, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false);
    float *sw = weight_scales(w, 4, wd, 0);

    /* without a table: what calibration must record, the Relu's output for the Conv's */
    oq_err err = {0};
    oq_plan *needs = NULL;
    oq_quant_options o = options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, false);
    CHECK_OK(oq_plan_create(&needs, m->graph, &o, NULL, 0, NULL, &err), &err);
    if (needs) {
        const oq_graph *g = m->graph;
        CHECK(!needs->ranges_known && needs->values[oq_graph_find(g, "x")->id].needs_range &&
              needs->values[oq_graph_find(g, "y")->id].needs_range &&
              !needs->values[oq_graph_find(g, "c")->id].needs_range);
        oq_quant_result r;
        oq_model *copy = NULL;
        CHECK_OK(oq_model_clone(&copy, m, &err), &err);
        CHECK(oq_quant_rewrite(copy, needs, &r, &err) == OQ_EINVAL); /* no parameters: not executable */
        oq_quant_result_release(&r);
        oq_model_destroy(copy);
        oq_plan_destroy(needs);
    }
    /* a node policy keeps the Conv float; an unknown node is refused */
    oq_plan_override keep = {"c", OQ_POLICY_FLOAT, NULL}, unknown = {"nowhere", OQ_POLICY_FLOAT, NULL};
    oq_plan *kept = NULL;
    CHECK_OK(oq_plan_create(&kept, m->graph, &o, t, 1, &keep, &err), &err);
    CHECK(kept && kept->nodes[0].action == OQ_ACTION_KEEP_FLOAT && kept->nodes[0].reason &&
          kept->nodes[1].action == OQ_ACTION_NONE);
    oq_plan_destroy(kept);
    CHECK(oq_plan_create(&kept, m->graph, &o, t, 1, &unknown, &err) == OQ_EINVAL && strstr(err.msg, "nowhere"));

    for (int form = 0; form < 4 && t; form++) {
        bool sym = form == 3;
        oq_calib_table *tt = sym ? calibrate(m, &s, -128, 127, true) : t;
        oq_quant_options qo = form == 1 ? options(OQ_MODE_STATIC, OQ_FORMAT_QDQ, false)
                              : form == 2 ? options(OQ_MODE_DYNAMIC, OQ_FORMAT_QOPERATOR, false)
                                          : options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, false);
        quantized q = quantize(m, form == 2 ? NULL : tt, qo);
        if (!q.m) {
            quantized_release(&q);
            continue;
        }
        const oq_plan_node *conv = plan_node(&q, "c"), *relu = plan_node(&q, "y");
        double sx = 0, sy = 0;
        if (form == 0) { /* QLinearConv with the Relu folded: output uint8 at zero point 0 */
            CHECK(conv && conv->action == OQ_ACTION_QLINEAR && relu && relu->action == OQ_ACTION_FOLDED_CLAMP);
            CHECK(q.ops[OQ_OP_QLINEAR_CONV] == 1 && q.ops[OQ_OP_QUANTIZE_LINEAR] == 1 &&
                  q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 1 && q.m->graph->n_nodes == 3 && !q.ops[OQ_OP_RELU]);
            CHECK(params_of(&q, "y").zero_point == 0);
            sx = params_of(&q, "x").scale;
            sy = params_of(&q, "y").scale;
        } else if (form == 1) { /* QDQ: Q/DQ around the float Conv; the Relu stays, after its DQ */
            CHECK(conv && conv->action == OQ_ACTION_QDQ && q.ops[OQ_OP_CONV] == 1 && q.ops[OQ_OP_RELU] == 1 &&
                  q.ops[OQ_OP_QUANTIZE_LINEAR] == 2 && q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 4);
            sx = params_of(&q, "x").scale;
            sy = params_of(&q, "c").scale;
        } else if (form == 2) { /* dynamic: ConvInteger, float rescale and bias */
            CHECK(conv && conv->action == OQ_ACTION_DYNAMIC && q.ops[OQ_OP_DYNAMIC_QUANTIZE_LINEAR] == 1 &&
                  q.ops[OQ_OP_CONV_INTEGER] == 1 && q.ops[OQ_OP_CAST] == 1 && q.ops[OQ_OP_RELU] == 1 &&
                  !q.ops[OQ_OP_CONV]);
        } else { /* symmetric int8: the clamp cannot fold (0 is not the lowest integer) */
            CHECK(conv && conv->action == OQ_ACTION_QLINEAR && relu && relu->action == OQ_ACTION_NONE &&
                  q.ops[OQ_OP_RELU] == 1 && params_of(&q, "c").zero_point == 0);
            sx = params_of(&q, "x").scale;
            sy = params_of(&q, "c").scale;
        }
        CHECK(q.res.n_nodes == 1 && q.res.nodes[0].quantized);
        double worst = 0;
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            const float *x = s.x[k][0].data;
            if (form == 2) { /* run-time input range: its scale is (max - min) / 255 of this sample */
                float lo = 0, hi = 0;
                for (int64_t i = 0; i < C * H * W; i++)
                    lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
                sx = (hi - lo) / 255;
            }
            double *b = conv_bounds(x, C, H, W, w, M, 3, 1, sx, sw, sy, true);
            worst = fmax(worst, worst_ratio(&ref, &got, b, M * H * W));
            free(b);
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "conv+relu form %d: error %.3g x its bound\n", form, worst);
        quantized_release(&q);
        if (sym)
            oq_calib_table_destroy(tt);
    }
    free(sw);
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- Gemm with C ---------------------------------------------------------------------- */

static void test_gemm(void)
{
    const int64_t N = 3, K = 8, M = 5, xd[2] = {N, K}, wd[2] = {M, K}, cd[1] = {M};
    const float alpha = 0.5f, beta = 2.0f;
    oq_model *m = model_new();
    add_input(m, "x", 2, xd);
    const float *w = add_weight(m, "w", 2, wd, -1, 1);
    const float *c = add_weight(m, "bias", 1, cd, -0.3f, 0.3f);
    const char *gi[] = {"x", "w", "bias"}, *outs[] = {"y"};
    oq_node *gemm = add(m, "Gemm", 3, gi, "y");
    oq_err err = {0};
    CHECK_OK(oq_node_set_attr_int(gemm, "transB", 1, &err), &err);
    CHECK_OK(oq_node_set_attr_float(gemm, "alpha", alpha, &err), &err);
    CHECK_OK(oq_node_set_attr_float(gemm, "beta", beta, &err), &err);
    finish_model(m, 1, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false);
    float wkn[K * M]; /* alpha * w^T, [K, M]: the weight the integer product uses */
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < M; j++)
            wkn[k * M + j] = alpha * w[j * K + k];
    const int64_t kn[2] = {K, M};
    float *sw = weight_scales(wkn, 2, kn, 1);
    (void)c;
    for (int form = 0; form < 3 && t; form++) {
        quantized q = quantize(m, t, form == 2 ? options(OQ_MODE_STATIC, OQ_FORMAT_QDQ, false)
                                               : options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, form == 1));
        if (!q.m) {
            quantized_release(&q);
            continue;
        }
        const oq_plan_node *pn = plan_node(&q, "y");
        double sy = 0;
        if (form == 0) /* MatMulInteger, int32 bias Add, Cast, per-column Mul: float output */
            CHECK(pn && pn->action == OQ_ACTION_INTEGER_GEMM && q.ops[OQ_OP_MATMUL_INTEGER] == 1 &&
                  q.ops[OQ_OP_ADD] == 1 && q.ops[OQ_OP_CAST] == 1 && q.ops[OQ_OP_MUL] == 1 && !q.ops[OQ_OP_GEMM]);
        else if (form == 1) /* QGemm writing the float graph output */
            CHECK(pn && pn->action == OQ_ACTION_QGEMM && q.ops[OQ_OP_QGEMM] == 1 && q.m->graph->n_nodes == 2 &&
                  oq_model_opset(q.m, OQ_CONTRIB_DOMAIN) == 1);
        else { /* QDQ, alpha and beta folded: the Gemm reads dequantized int8 weights and int32 bias and
                  writes the graph output in float, without an output pair */
            CHECK(pn && pn->action == OQ_ACTION_QDQ && pn->float_out && q.ops[OQ_OP_GEMM] == 1 &&
                  q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 3 && q.ops[OQ_OP_QUANTIZE_LINEAR] == 1);
            const oq_value *yv = oq_graph_find(q.m->graph, "y");
            const oq_node *g = yv ? yv->producer : NULL;
            CHECK(g && g->kind == OQ_OP_GEMM && oq_node_attr_float(g, "alpha", 0) == 1.0f &&
                  oq_node_attr_float(g, "beta", 0) == 1.0f);
        }
        double sx = params_of(&q, "x").scale, worst = 0;
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            const float *x = s.x[k][0].data;
            double b[N * M];
            for (int64_t r = 0; r < N; r++)
                for (int64_t j = 0; j < M; j++) {
                    sum_bound sb = {sx, sw[j], sy, true, 0};
                    for (int64_t kk = 0; kk < K; kk++)
                        term(&sb, x[r * K + kk], wkn[kk * M + j]);
                    b[r * M + j] = bound_of(&sb);
                }
            worst = fmax(worst, worst_ratio(&ref, &got, b, N * M));
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "gemm form %d: error %.3g x its bound\n", form, worst);
        quantized_release(&q);
    }
    free(sw);
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- one weight, two Convs -------------------------------------------------------------- */

static void test_shared_weight(void)
{
    const int64_t C = 2, M = 3, H = 5, W = 5, xd[4] = {1, C, H, W}, wd[4] = {M, C, 3, 3}, bd[1] = {M};
    oq_model *m = model_new();
    add_input(m, "x", 4, xd);
    add_input(m, "x2", 4, xd);
    const float *w = add_weight(m, "w", 4, wd, -0.5f, 0.5f);
    add_weight(m, "b1", 1, bd, -0.1f, 0.1f);
    add_weight(m, "b2", 1, bd, -0.1f, 0.1f);
    const char *c1[] = {"x", "w", "b1"}, *c2[] = {"x2", "w", "b2"}, *outs[] = {"y1", "y2"};
    conv_attrs(add(m, "Conv", 3, c1, "y1"), 3, 1);
    conv_attrs(add(m, "Conv", 3, c2, "y2"), 3, 1);
    finish_model(m, 2, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false);
    float *sw = weight_scales(w, 4, wd, 0);
    quantized q = t ? quantize(m, t, options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, false)) : (quantized){0};
    if (q.m) {
        /* one int8 copy of w, read by both QLinearConvs; the float w is gone */
        const oq_graph *g = q.m->graph;
        int int8_weights = 0;
        const oq_value *first = NULL;
        bool shared = true;
        for (int i = 0; i < g->n_values; i++)
            int8_weights += g->values[i]->constant && g->values[i]->constant->dtype == OQ_DTYPE_INT8 &&
                            g->values[i]->constant->rank == 4;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->kind == OQ_OP_QLINEAR_CONV) {
                shared &= !first || g->nodes[i]->inputs[3] == first;
                first = g->nodes[i]->inputs[3];
            }
        CHECK(q.ops[OQ_OP_QLINEAR_CONV] == 2 && int8_weights == 1 && shared && !oq_graph_find(g, "w"));
        double worst = 0;
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref[2], got[2];
            run_model(m, &s, k, ref);
            run_model(q.m, &s, k, got);
            for (int o = 0; o < 2; o++) {
                const char *xn = o ? "x2" : "x", *yn = o ? "y2" : "y1";
                double *b = conv_bounds(s.x[k][o].data, C, H, W, w, M, 3, 1, params_of(&q, xn).scale, sw,
                                        params_of(&q, yn).scale, true);
                worst = fmax(worst, worst_ratio(&ref[o], &got[o], b, M * H * W));
                free(b);
                oq_tensor_release(&ref[o]);
                oq_tensor_release(&got[o]);
            }
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "shared weight: error %.3g x its bound\n", worst);
    }
    quantized_release(&q);
    free(sw);
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- Concat --------------------------------------------------------------------------- */

/* Two 1x1 Convs of x concatenated on channels; with `equal`, both read the same
 * weight (so their ranges and parameters are equal), else the second's weights
 * are 8 times larger. */
static void test_concat(bool equal)
{
    const int64_t C = 2, M = 2, H = 4, W = 4, xd[4] = {1, C, H, W}, wd[4] = {M, C, 1, 1};
    oq_model *m = model_new();
    add_input(m, "x", 4, xd);
    const float *wa = add_weight(m, "wa", 4, wd, -0.5f, 0.5f);
    const float *wb = equal ? wa : add_weight(m, "wb", 4, wd, -4.0f, 4.0f);
    const char *ca[] = {"x", "wa"}, *cb[] = {"x", equal ? "wa" : "wb"}, *ci[] = {"a", "b"}, *outs[] = {"y"};
    conv_attrs(add(m, "Conv", 2, ca, "a"), 1, 0);
    conv_attrs(add(m, "Conv", 2, cb, "b"), 1, 0);
    oq_node *cat = add(m, "Concat", 2, ci, "y");
    oq_err err = {0};
    CHECK_OK(oq_node_set_attr_int(cat, "axis", 1, &err), &err);
    finish_model(m, 1, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false);
    float *swa = weight_scales(wa, 4, wd, 0), *swb = weight_scales(wb, 4, wd, 0);
    for (int contrib = 0; contrib < 2 && t; contrib++) {
        quantized q = quantize(m, t, options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, contrib));
        if (!q.m) {
            quantized_release(&q);
            continue;
        }
        const oq_plan_node *pn = plan_node(&q, "y");
        oq_qparams pa = params_of(&q, "a"), pb = params_of(&q, "b");
        CHECK((pa.scale == pb.scale && pa.zero_point == pb.zero_point) == equal);
        double scat = 0;
        if (equal) /* the Concat runs on the 8-bit tensors as they are */
            CHECK(pn && pn->action == OQ_ACTION_PASSTHROUGH && q.ops[OQ_OP_CONCAT] == 1 &&
                  q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 1 && !q.ops[OQ_OP_QLINEAR_CONCAT]);
        else if (!contrib) /* float Concat of the two dequantized outputs */
            CHECK(pn && pn->action == OQ_ACTION_NONE && q.ops[OQ_OP_CONCAT] == 1 &&
                  q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 2);
        else { /* QLinearConcat requantizes both to the output's calibrated scale */
            CHECK(pn && pn->action == OQ_ACTION_QLINEAR_CONCAT && q.ops[OQ_OP_QLINEAR_CONCAT] == 1 &&
                  !q.ops[OQ_OP_CONCAT] && q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 1 && q.res.n_contrib_ops == 1);
            scat = params_of(&q, "y").scale;
        }
        CHECK(q.ops[OQ_OP_QLINEAR_CONV] == 2 && q.others == 0);
        double worst = 0, sx = params_of(&q, "x").scale;
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            double *ba = conv_bounds(s.x[k][0].data, C, H, W, wa, M, 1, 0, sx, swa, pa.scale, false);
            double *bb = conv_bounds(s.x[k][0].data, C, H, W, wb, M, 1, 0, sx, swb, pb.scale, false);
            double b[2 * M * H * W];
            for (int64_t i = 0; i < M * H * W; i++) {
                b[i] = ba[i] + scat / 2;
                b[M * H * W + i] = bb[i] + scat / 2;
            }
            worst = fmax(worst, worst_ratio(&ref, &got, b, 2 * M * H * W));
            free(ba);
            free(bb);
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "concat (%s scales, contrib %d): error %.3g x its bound\n", equal ? "equal" : "unequal",
                    contrib, worst);
        quantized_release(&q);
    }
    free(swa);
    free(swb);
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- MatMul of two activations ------------------------------------------------------ */

/* a [2, R, K] x b [2, K, C], written to the graph output straight or through
 * a Transpose: either way no op that takes 8-bit tensors reads the product. */
static void test_pair(bool transposed)
{
    const int64_t R = 3, K = 6, C = 4, ad[3] = {2, R, K}, bd[3] = {2, K, C};
    oq_model *m = model_new();
    add_input(m, "a", 3, ad);
    add_input(m, "b", 3, bd);
    const char *mi[] = {"a", "b"}, *ti[] = {"p"}, *outs[] = {transposed ? "y" : "p"};
    add(m, "MatMul", 2, mi, "p");
    if (transposed)
        add(m, "Transpose", 1, ti, "y");
    finish_model(m, 1, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false);
    for (int form = 0; form < 3 && t; form++) {
        quantized q = quantize(m, form == 2 ? NULL : t,
                               form == 1 ? options(OQ_MODE_STATIC, OQ_FORMAT_QDQ, false)
                               : form == 2 ? options(OQ_MODE_DYNAMIC, OQ_FORMAT_QOPERATOR, false)
                                           : options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, false));
        if (!q.m) {
            quantized_release(&q);
            continue;
        }
        const oq_plan_node *pn = plan_node(&q, "p");
        double sy = 0;
        CHECK(pn && pn->candidate && pn->activation_b && !q.ops[OQ_OP_MATMUL] == (form != 1));
        if (form == 0) { /* float straight from the int32 sums; the Transpose moves float */
            CHECK(pn->action == OQ_ACTION_INTEGER_GEMM && q.ops[OQ_OP_MATMUL_INTEGER] == 1 &&
                  q.ops[OQ_OP_CAST] == 1 && q.ops[OQ_OP_MUL] == 1 && q.ops[OQ_OP_QUANTIZE_LINEAR] == 2 &&
                  !q.ops[OQ_OP_DEQUANTIZE_LINEAR]);
        } else if (form == 1) { /* QDQ pairs on both inputs, and on the output unless it is the graph's */
            int pairs = transposed ? 3 : 2;
            CHECK(pn->action == OQ_ACTION_QDQ && pn->float_out == !transposed && q.ops[OQ_OP_MATMUL] == 1 &&
                  q.ops[OQ_OP_QUANTIZE_LINEAR] == pairs && q.ops[OQ_OP_DEQUANTIZE_LINEAR] == pairs);
            sy = transposed ? params_of(&q, "p").scale : 0;
        } else { /* both quantized at run time */
            CHECK(pn->action == OQ_ACTION_DYNAMIC && q.ops[OQ_OP_DYNAMIC_QUANTIZE_LINEAR] == 2 &&
                  q.ops[OQ_OP_MATMUL_INTEGER] == 1 && q.ops[OQ_OP_CAST] == 1);
        }
        CHECK(q.res.n_nodes == 1 && q.res.nodes[0].quantized && q.res.nodes[0].n_scales == 0);
        double worst = 0;
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            const float *a = s.x[k][0].data, *b = s.x[k][1].data;
            double sa = params_of(&q, "a").scale, sb = params_of(&q, "b").scale;
            if (form == 2) { /* run-time ranges */
                float lo[2] = {0, 0}, hi[2] = {0, 0};
                for (int64_t i = 0; i < 2 * R * K; i++)
                    lo[0] = fminf(lo[0], a[i]), hi[0] = fmaxf(hi[0], a[i]);
                for (int64_t i = 0; i < 2 * K * C; i++)
                    lo[1] = fminf(lo[1], b[i]), hi[1] = fmaxf(hi[1], b[i]);
                sa = (hi[0] - lo[0]) / 255;
                sb = (hi[1] - lo[1]) / 255;
            }
            double bnd[2 * R * C];
            for (int64_t h = 0; h < 2; h++)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t c = 0; c < C; c++) {
                        sum_bound sbd = {sa, sb, sy, false, 0};
                        for (int64_t kk = 0; kk < K; kk++)
                            term(&sbd, a[(h * R + r) * K + kk], b[(h * K + kk) * C + c]);
                        /* the Transpose swaps the last two axes of the output */
                        bnd[transposed ? (h * C + c) * R + r : (h * R + r) * C + c] = bound_of(&sbd);
                    }
            worst = fmax(worst, worst_ratio(&ref, &got, bnd, 2 * R * C));
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "activation pair (transposed %d) form %d: error %.3g x its bound\n", transposed, form,
                    worst);
        quantized_release(&q);
    }
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- MatMul + Add of a bias row ------------------------------------------------------- */

/* x [2, R, K] x w [K, N] + b [N] (the constant first in the Add), which
 * preparation cannot make a Gemm: the bias becomes the product's int32 bias. */
static void test_matmul_bias(void)
{
    const int64_t R = 3, K = 8, N = 5, xd[3] = {2, R, K}, wd[2] = {K, N}, bd[1] = {N};
    oq_model *m = model_new();
    add_input(m, "x", 3, xd);
    const float *w = add_weight(m, "w", 2, wd, -1, 1);
    const float *bias = add_weight(m, "bias", 1, bd, -0.5f, 0.5f);
    const char *mi[] = {"x", "w"}, *ai[] = {"bias", "mm"}, *outs[] = {"y"};
    add(m, "MatMul", 2, mi, "mm");
    add(m, "Add", 2, ai, "y");
    finish_model(m, 1, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false);
    float *sw = weight_scales(w, 2, wd, 1);
    for (int form = 0; form < 2 && t; form++) {
        quantized q = quantize(m, t, options(OQ_MODE_STATIC, form ? OQ_FORMAT_QDQ : OQ_FORMAT_QOPERATOR, false));
        if (!q.m) {
            quantized_release(&q);
            continue;
        }
        const oq_plan_node *pn = plan_node(&q, "mm"), *pa = plan_node(&q, "y");
        CHECK(pn && pa && pa->action == OQ_ACTION_FOLDED_BIAS && pn->bias >= 0 &&
              q.prepared->graph->nodes[pn->bias] == oq_graph_find(q.prepared->graph, "y")->producer);
        const oq_value *yv = oq_graph_find(q.m->graph, "y");
        double sy = 0;
        if (form == 0) { /* MatMulInteger, the int32 bias Add, Cast, per-column Mul: no float Add */
            const oq_node *add_node = NULL;
            for (int i = 0; i < q.m->graph->n_nodes; i++)
                if (q.m->graph->nodes[i]->kind == OQ_OP_ADD)
                    add_node = q.m->graph->nodes[i];
            CHECK(pn->action == OQ_ACTION_INTEGER_GEMM && q.ops[OQ_OP_MATMUL_INTEGER] == 1 && q.ops[OQ_OP_ADD] == 1 &&
                  q.ops[OQ_OP_CAST] == 1 && q.ops[OQ_OP_MUL] == 1 && !q.ops[OQ_OP_MATMUL] &&
                  !q.ops[OQ_OP_DEQUANTIZE_LINEAR] && yv && yv->producer && yv->producer->kind == OQ_OP_MUL);
            CHECK(add_node && add_node->inputs[1]->constant && add_node->inputs[1]->constant->dtype == OQ_DTYPE_INT32);
        } else { /* QDQ: the Add reads the bias through an int32 DequantizeLinear and writes the graph
                    output in float (no output pair) */
            CHECK(pn->action == OQ_ACTION_QDQ && pn->float_out && q.ops[OQ_OP_MATMUL] == 1 && q.ops[OQ_OP_ADD] == 1 &&
                  q.ops[OQ_OP_QUANTIZE_LINEAR] == 1 && q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 3 && yv && yv->producer &&
                  yv->producer->kind == OQ_OP_ADD);
            const oq_node *a = yv ? yv->producer : NULL;
            bool int32_bias = false;
            for (int k = 0; a && a->kind == OQ_OP_ADD && k < 2; k++) {
                const oq_node *d = a->inputs[k]->producer;
                int32_bias |= d && d->kind == OQ_OP_DEQUANTIZE_LINEAR && d->inputs[0]->constant &&
                              d->inputs[0]->constant->dtype == OQ_DTYPE_INT32;
            }
            CHECK(int32_bias);
        }
        double sx = params_of(&q, "x").scale, worst = 0;
        (void)bias;
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            const float *x = s.x[k][0].data;
            double bnd[2 * R * N];
            for (int64_t r = 0; r < 2 * R; r++)
                for (int64_t j = 0; j < N; j++) {
                    sum_bound sb = {sx, sw[j], sy, true, 0};
                    for (int64_t kk = 0; kk < K; kk++)
                        term(&sb, x[r * K + kk], w[kk * N + j]);
                    bnd[r * N + j] = bound_of(&sb);
                }
            worst = fmax(worst, worst_ratio(&ref, &got, bnd, 2 * R * N));
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "matmul + bias form %d: error %.3g x its bound\n", form, worst);
        quantized_release(&q);
    }
    free(sw);
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- embedding lookup ----------------------------------------------------------------- */

/* Gather of rows of a constant table [V, D] by int64 ids [2, 3]: int8 rows
 * dequantized after the Gather, in every mode and format; each element
 * within half a step of its row's scale (of the table's with --per-tensor). */
static void test_embedding(void)
{
    const int64_t V = 40, D = 8, td[2] = {V, D}, idd[2] = {2, 3};
    oq_model *m = model_new();
    oq_err err = {0};
    oq_dim d[2] = {{2, NULL}, {3, NULL}};
    oq_value *ids = oq_graph_value(m->graph, "ids", &err);
    CHECK_OK(oq_value_set_tensor_type(ids, OQ_DTYPE_INT64, 2, d, &err), &err);
    CHECK_OK(oq_graph_add_input(m->graph, ids, &err), &err);
    float *table = (float *)add_weight(m, "table", 2, td, -1, 1);
    for (int64_t r = 0; r < V; r++) /* rows of ranges far apart, as trained embeddings have */
        for (int64_t c = 0; c < D; c++)
            table[r * D + c] *= (float)(1 + r % 7) / 4;
    const char *gi[] = {"table", "ids"}, *outs[] = {"y"};
    add(m, "Gather", 2, gi, "y");
    finish_model(m, 1, outs);
    samples s = {.n_in = 1};
    for (int k = 0; k < N_SAMPLES; k++) {
        CHECK_OK(oq_tensor_alloc(&s.x[k][0], OQ_DTYPE_INT64, 2, idd, &err), &err);
        for (int64_t i = 0; i < 6; i++)
            ((int64_t *)s.x[k][0].data)[i] = (int64_t)frand(0, (float)V - 0.01f);
    }
    for (int form = 0; form < 4; form++) {
        oq_quant_options o = form == 1   ? options(OQ_MODE_STATIC, OQ_FORMAT_QDQ, false)
                             : form == 2 ? options(OQ_MODE_DYNAMIC, OQ_FORMAT_QOPERATOR, false)
                                         : options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, false);
        o.per_channel = form != 3;
        oq_calib_table *t = form == 2 ? NULL : calibrate(m, &s, 0, 255, false);
        quantized q = quantize(m, t, o);
        if (!q.m) {
            quantized_release(&q);
            oq_calib_table_destroy(t);
            continue;
        }
        const oq_plan_node *pn = plan_node(&q, "y");
        const oq_value *q_table = oq_graph_find(q.m->graph, "table_quantized");
        CHECK(pn && pn->candidate && pn->action == OQ_ACTION_EMBEDDING && !oq_graph_find(q.m->graph, "table") &&
              q_table && q_table->constant && q_table->constant->dtype == OQ_DTYPE_INT8 && q.others == 0);
        if (form == 3) /* one scale: Gather of the int8 rows, DequantizeLinear */
            CHECK(q.ops[OQ_OP_GATHER] == 1 && q.ops[OQ_OP_DEQUANTIZE_LINEAR] == 1 && q.m->graph->n_nodes == 2);
        else /* the rows and their scales gathered, the rows cast and scaled */
            CHECK(q.ops[OQ_OP_GATHER] == 2 && q.ops[OQ_OP_CAST] == 1 && q.ops[OQ_OP_MUL] == 1 &&
                  q.m->graph->n_nodes == 4);
        CHECK(q.res.n_nodes == 1 && q.res.nodes[0].quantized && q.res.nodes[0].n_scales == (form == 3 ? 1 : V));
        double tmax = 0, worst = 0;
        for (int64_t i = 0; i < V * D; i++)
            tmax = fmax(tmax, fabs(table[i]));
        for (int k = 0; k < N_SAMPLES; k++) {
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            double bnd[6 * D];
            for (int64_t i = 0; i < 6; i++) {
                int64_t r = ((const int64_t *)s.x[k][0].data)[i];
                double rmax = 0;
                for (int64_t c = 0; c < D; c++)
                    rmax = fmax(rmax, fabs(table[r * D + c]));
                for (int64_t c = 0; c < D; c++)
                    bnd[i * D + c] = (form == 3 ? tmax : rmax) / 127 / 2 * 1.0001 + 1e-7;
            }
            worst = fmax(worst, worst_ratio(&ref, &got, bnd, 6 * D));
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        CHECK(worst <= 1.0);
        if (worst > 1.0)
            fprintf(stderr, "embedding form %d: error %.3g x its bound\n", form, worst);
        quantized_release(&q);
        oq_calib_table_destroy(t);
    }
    samples_release(&s);
    oq_model_destroy(m);
}

/* ---- --contrib: Add of a constant -------------------------------------------------- */

/* x -> 1x1 Conv -> Mul by 0.5 -> Add c -> 1x1 Conv -> y, with --contrib: the
 * Mul is a rescaled twin; the Add, with c a whole number of the Mul
 * output's steps, a shifted twin (the same 8-bit tensor, its zero point
 * moved by c / scale, no op); with c half a step off, float between a
 * DequantizeLinear and a QuantizeLinear. */
static void test_constant_add(void)
{
    const int64_t C = 3, M = 4, xd[4] = {1, C, 4, 4}, wd[4] = {M, C, 1, 1}, wd2[4] = {2, M, 1, 1}, kd[1] = {1};
    oq_model *m = model_new();
    add_input(m, "x", 4, xd);
    add_weight(m, "w", 4, wd, -0.5f, 0.5f);
    add_weight(m, "w2", 4, wd2, -0.5f, 0.5f);
    add_weight(m, "half", 1, kd, 0.5f, 0.5f);
    float *c = (float *)add_weight(m, "c", 1, kd, 0.0f, 0.0f);
    const char *ci[] = {"x", "w"}, *mi[] = {"a", "half"}, *ai[] = {"h", "c"}, *c2[] = {"s", "w2"}, *outs[] = {"y"};
    conv_attrs(add(m, "Conv", 2, ci, "a"), 1, 0);
    add(m, "Mul", 2, mi, "h");
    add(m, "Add", 2, ai, "s");
    conv_attrs(add(m, "Conv", 2, c2, "y"), 1, 0);
    finish_model(m, 1, outs);
    samples s = make_samples(m);
    oq_calib_table *t = calibrate(m, &s, 0, 255, false); /* the ranges of a and h do not depend on c */
    quantized q0 = t ? quantize(m, t, options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, true)) : (quantized){0};
    oq_qparams ph = q0.plan ? params_of(&q0, "h") : (oq_qparams){0, 0};
    quantized_release(&q0);
    CHECK(ph.scale > 0 && ph.zero_point >= 3);
    for (int whole = 1; whole >= 0 && ph.scale > 0; whole--) {
        c[0] = (whole ? -3.0f : -2.5f) * ph.scale; /* a zero point 3 (or 2.5) steps up */
        quantized q = quantize(m, t, options(OQ_MODE_STATIC, OQ_FORMAT_QOPERATOR, true));
        const oq_plan_node *pn = q.plan ? plan_node(&q, "s") : NULL;
        oq_qparams ps = q.plan ? params_of(&q, "s") : (oq_qparams){0, 0};
        if (whole)
            CHECK(pn && pn->action == OQ_ACTION_SHIFTED_TWIN && ps.scale == ph.scale &&
                  ps.zero_point == ph.zero_point + 3 && !q.ops[OQ_OP_ADD] && !q.ops[OQ_OP_QLINEAR_ADD] &&
                  q.ops[OQ_OP_QLINEAR_CONV] == 2);
        else
            CHECK(pn && pn->action == OQ_ACTION_NONE && q.ops[OQ_OP_ADD] == 1 && !q.ops[OQ_OP_QLINEAR_ADD] &&
                  q.ops[OQ_OP_QLINEAR_CONV] == 2 && q.ops[OQ_OP_DEQUANTIZE_LINEAR] >= 1);
        for (int k = 0; whole && q.m && k < N_SAMPLES; k++) { /* runs, and its output is the float one's */
            oq_tensor ref, got;
            run_model(m, &s, k, &ref);
            run_model(q.m, &s, k, &got);
            double se = 0, ss = 0;
            for (int64_t i = 0; i < oq_tensor_numel(&ref); i++) {
                double r = ((const float *)ref.data)[i], e = r - ((const float *)got.data)[i];
                se += e * e;
                ss += r * r;
            }
            CHECK(oq_tensor_numel(&got) == oq_tensor_numel(&ref) && se < 0.01 * ss);
            oq_tensor_release(&ref);
            oq_tensor_release(&got);
        }
        quantized_release(&q);
    }
    oq_calib_table_destroy(t);
    samples_release(&s);
    oq_model_destroy(m);
}

int main(void)
{
    test_conv_relu();
    test_gemm();
    test_shared_weight();
    test_concat(false);
    test_concat(true);
    test_pair(false);
    test_pair(true);
    test_matmul_bias();
    test_embedding();
    test_constant_add();
    return check_exit("test_rewrite");
}
