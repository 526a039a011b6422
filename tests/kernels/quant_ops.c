/* quant_ops.c: kernel families qdq, qconv and qmatmul, run as one-node
 * models through the executor and compared, byte for byte, with plain
 * reference loops written from the ONNX definitions.
 * qdq: QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear (the
 * quantize and dequantize loops compiled per level) on lengths of 1, around
 * every vector width and the 256-element chunk, and large enough to split
 * over threads; per tensor and per axis; 8-, 16- and 4-bit types; NaN,
 * infinities and exact ties; and a DequantizeLinear whose elementwise chain
 * (and QuantizeLinear) the executor runs as a table of 256 entries.
 * qconv: QLinearConv and ConvInteger: depthwise (tap by tap, and the rows
 * summed in registers: rows under 8, 8 to 15 and 16 or more outputs, strides
 * 1 and 2, dilation, kernels past the register path's limit, planes
 * whose rows a work item sums in several chunks, stride-1 rows summed
 * stacked as one run), im2col
 * (strides, pads, groups, 1-D; 2-D from a padded block and, for a block too
 * large, without), the direct 1x1 path, constant weights (packed
 * once) and weights fed at run time.
 * qmatmul: QLinearMatMul, MatMulInteger and com.microsoft QGemm with per-tensor
 * and per-column parameters, batches, and shapes off the GEMM tile.
 * gate: the byte-to-float table lookup, and a squeeze-excite block as the
 * quantizer leaves it (Mul by a gate per plane, then QuantizeLinear, run in
 * one pass; the GlobalAveragePool's mean) fused and node by node. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/qops.h"
#include "harness.h"

static int cases; /* run by the current check */

/* ---- tensors --------------------------------------------------------------------- */

static oq_tensor make(oq_dtype dt, int rank, const int64_t *dims)
{
    oq_tensor t;
    oq_err err = {0};
    if (oq_tensor_alloc(&t, dt, rank, dims, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    return t;
}

static oq_tensor scalar_f(float v)
{
    oq_tensor t = make(OQ_DTYPE_FLOAT, 0, NULL);
    *(float *)t.data = v;
    return t;
}

static int32_t qmin(oq_dtype dt)
{
    switch (dt) {
    case OQ_DTYPE_INT8: return -128;
    case OQ_DTYPE_INT16: return -32768;
    case OQ_DTYPE_INT4: return -8;
    default: return 0;
    }
}

static int32_t qmax(oq_dtype dt)
{
    switch (dt) {
    case OQ_DTYPE_UINT8: return 255;
    case OQ_DTYPE_INT8: return 127;
    case OQ_DTYPE_UINT16: return 65535;
    case OQ_DTYPE_INT16: return 32767;
    case OQ_DTYPE_UINT4: return 15;
    default: return 7;
    }
}

/* Integer element i of t (any integer type, 4-bit included). */
static int32_t get_i(const oq_tensor *t, int64_t i) { return (int32_t)oq_tensor_get_i64(t, i); }

/* Sets integer element i of t (8-, 16-, 32- or 4-bit; v in range). */
static void set_i(oq_tensor *t, int64_t i, int32_t v)
{
    switch (t->dtype) {
    case OQ_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case OQ_DTYPE_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case OQ_DTYPE_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case OQ_DTYPE_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case OQ_DTYPE_INT32: ((int32_t *)t->data)[i] = v; break;
    default: { /* 4-bit, low nibble first */
        uint8_t *d = t->data;
        int sh = (int)(i & 1) * 4;
        d[i >> 1] = (uint8_t)((d[i >> 1] & ~(15 << sh)) | ((v & 15) << sh));
    }
    }
}

/* A rank-0 tensor of integer type dt holding v. */
static oq_tensor scalar_i(oq_dtype dt, int32_t v)
{
    oq_tensor t = make(dt, 0, NULL);
    set_i(&t, 0, v);
    return t;
}

static int32_t clamp_i(double v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : (int32_t)v; }

/* QuantizeLinear of one float: saturate(rint(x / s) + zp); NaN saturates low. */
static int32_t quantize_ref(float x, float s, int32_t zp, oq_dtype dt)
{
    float t = x / s;
    if (isnan(t))
        return qmin(dt);
    return clamp_i((double)rintf(t) + zp, qmin(dt), qmax(dt));
}

/* Requantization of an exact int32 sum (see qgemm.h). */
static int32_t requant_ref(int32_t acc, int32_t bias, float mult, int32_t zp, oq_dtype dt)
{
    float v = (float)(int32_t)((uint32_t)acc + (uint32_t)bias) * mult;
    return clamp_i((double)rintf(v) + zp, qmin(dt), qmax(dt));
}

/* Bytes of random values of dt (8-bit), or of small int32/int16 values. */
static void fill_ints(oq_tensor *t, uint32_t *st)
{
    int64_t n = oq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int32_t lo = qmin(t->dtype), hi = t->dtype == OQ_DTYPE_INT32 ? 100000 : qmax(t->dtype);
        if (t->dtype == OQ_DTYPE_INT32)
            lo = -100000;
        set_i(t, i, lo + (int32_t)(krand(st) % (uint32_t)(hi - lo + 1)));
    }
}

static int mismatches(const oq_tensor *got, const int32_t *want, int64_t n, const char *what)
{
    int bad = 0;
    if (oq_tensor_numel(got) != n) {
        fprintf(stderr, "%s: %lld outputs, expected %lld\n", what, (long long)oq_tensor_numel(got), (long long)n);
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        if (get_i(got, i) != want[i]) {
            if (!bad)
                fprintf(stderr, "%s: [%lld] is %d, expected %d\n", what, (long long)i, get_i(got, i), want[i]);
            bad++;
        }
    return bad;
}

/* ---- qdq ------------------------------------------------------------------------- */

typedef struct axis_attr {
    int64_t axis;
} axis_attr;

static oq_status set_axis(oq_node *n, const void *arg, oq_err *err)
{
    return oq_node_set_attr_int(n, "axis", ((const axis_attr *)arg)->axis, err);
}

/* Quantize and dequantize x of shape (2, ch, inner) as type dt at opset,
 * per tensor (ch == 0: shape (inner)) or along axis 1. */
static void qdq_case(oq_dtype dt, int opset, int64_t ch, int64_t inner, int threads, uint32_t *st)
{
    int64_t dims[3] = {2, ch, inner}, numel = ch ? 2 * ch * inner : inner, per = ch ? ch : 1;
    int rank = ch ? 3 : 1;
    if (!ch)
        dims[0] = inner;
    oq_tensor x = make(OQ_DTYPE_FLOAT, rank, dims), s = make(OQ_DTYPE_FLOAT, ch ? 1 : 0, &per),
              z = make(dt, ch ? 1 : 0, &per);
    int32_t *want = malloc((size_t)numel * sizeof *want);
    oq_tensor y[1], back[1];
    oq_err err = {0};
    char what[96];
    snprintf(what, sizeof what, "%s opset %d ch %lld inner %lld threads %d", oq_dtype_name(dt), opset, (long long)ch,
             (long long)inner, threads);
    cases++;
    for (int64_t c = 0; c < per; c++) {
        ((float *)s.data)[c] = krand_float(st, 0.01f, 0.2f);
        set_i(&z, c, qmin(dt) + (int32_t)(krand(st) % (uint32_t)(qmax(dt) - qmin(dt) + 1)));
    }
    for (int64_t i = 0; i < numel; i++) {
        int64_t c = ch ? (i / inner) % ch : 0;
        float sc = ((float *)s.data)[c], v;
        uint32_t r = krand(st) % 64;
        if (r == 0)
            v = NAN;
        else if (r == 1)
            v = r % 2 ? INFINITY : -INFINITY;
        else if (r == 2)
            v = -0.0f;
        else if (r < 12) /* exactly halfway between two steps */
            v = ((float)(int32_t)(krand(st) % 41) - 20.5f) * sc;
        else
            v = krand_float(st, -1.2f, 1.2f) * sc * (float)(qmax(dt) - qmin(dt));
        ((float *)x.data)[i] = v;
        want[i] = quantize_ref(v, sc, get_i(&z, c), dt);
    }
    axis_attr ax = {1};
    knode_input in[3] = {{"x", &x, false}, {"s", &s, true}, {"z", &z, true}};
    CHECK_OK(knode_run("QuantizeLinear", "", opset, in, 3, ch ? set_axis : NULL, &ax, 1, threads, y, &err), &err);
    if (!err.status) {
        snprintf(what + strlen(what), sizeof what - strlen(what), " quantize");
        CHECK(mismatches(y, want, numel, what) == 0);
        /* and back: (q - zp) * s */
        knode_input din[3] = {{"q", y, false}, {"s", &s, true}, {"z", &z, true}};
        CHECK_OK(knode_run("DequantizeLinear", "", opset, din, 3, ch ? set_axis : NULL, &ax, 1, threads, back, &err),
                 &err);
        if (!err.status) {
            int bad = 0;
            for (int64_t i = 0; i < numel; i++) {
                int64_t c = ch ? (i / inner) % ch : 0;
                float w = (float)(get_i(y, i) - get_i(&z, c)) * ((float *)s.data)[c];
                bad += memcmp(&w, (float *)back->data + i, sizeof w) != 0;
            }
            if (bad)
                fprintf(stderr, "%s: dequantize: %d values differ\n", what, bad);
            CHECK(bad == 0);
            oq_tensor_release(back);
        }
        oq_tensor_release(y);
    }
    free(want);
    oq_tensor_release(&x);
    oq_tensor_release(&s);
    oq_tensor_release(&z);
}

/* DequantizeLinear of int32 data (zero point 0, as ONNX requires). */
static void dequant_int32_case(int64_t n, uint32_t *st)
{
    oq_tensor x = make(OQ_DTYPE_INT32, 1, &n), s = scalar_f(0.0371f), y[1];
    oq_err err = {0};
    cases++;
    fill_ints(&x, st);
    knode_input in[2] = {{"x", &x, false}, {"s", &s, true}};
    CHECK_OK(knode_run("DequantizeLinear", "", 13, in, 2, NULL, NULL, 1, 1, y, &err), &err);
    if (!err.status) {
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float w = (float)get_i(&x, i) * 0.0371f;
            bad += memcmp(&w, (float *)y->data + i, sizeof w) != 0;
        }
        CHECK(bad == 0);
        oq_tensor_release(y);
    }
    oq_tensor_release(&x);
    oq_tensor_release(&s);
}

/* DynamicQuantizeLinear: scale and zero point from the range (with 0 in it),
 * then QuantizeLinear's rounding into uint8. */
static void dynamic_case(int64_t n, int threads, uint32_t *st)
{
    oq_tensor x = make(OQ_DTYPE_FLOAT, 1, &n), y[3];
    oq_err err = {0};
    cases++;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = krand_float(st, -3.0f, 5.0f);
        ((float *)x.data)[i] = v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
    int32_t zp = clamp_i(rintf(-lo / scale), 0, 255);
    knode_input in[1] = {{"x", &x, false}};
    CHECK_OK(knode_run("DynamicQuantizeLinear", "", 11, in, 1, NULL, NULL, 3, threads, y, &err), &err);
    if (!err.status) {
        CHECK(*(float *)y[1].data == scale && get_i(&y[2], 0) == zp);
        int32_t *want = malloc((size_t)n * sizeof *want);
        for (int64_t i = 0; i < n; i++)
            want[i] = quantize_ref(((float *)x.data)[i], scale, zp, OQ_DTYPE_UINT8);
        CHECK(mismatches(&y[0], want, n, "DynamicQuantizeLinear") == 0);
        free(want);
        for (int k = 0; k < 3; k++)
            oq_tensor_release(&y[k]);
    }
    oq_tensor_release(&x);
}

/* ---- DequantizeLinear with an elementwise chain and a QuantizeLinear after it ---- */

/* Adds constant `name` (a copy of t) to g. */
static bool add_const(oq_graph *g, const char *name, const oq_tensor *t, oq_err *err)
{
    oq_value *v = oq_graph_value(g, name, err);
    oq_tensor *c = v ? malloc(sizeof *c) : NULL;
    if (!c) return false;
    if (oq_tensor_copy(c, t, err) || oq_graph_set_constant(g, v, c, true, err)) {
        free(c);
        return false;
    }
    return true;
}

/* An opset-14 model with an empty graph, or NULL when out of memory. */
static oq_model *empty_model(void)
{
    oq_model *m = oq_model_create();
    if (!m || !(m->opsets = calloc(1, sizeof *m->opsets)) || !(m->opsets[0].domain = strdup(""))) {
        oq_model_destroy(m);
        return NULL;
    }
    m->n_opsets = 1;
    m->opsets[0].version = 14;
    m->ir_version = 8;
    if (!(m->graph = oq_graph_create(m, NULL))) {
        oq_model_destroy(m);
        return NULL;
    }
    return m;
}

/* x (n values of 8-bit dt) -> DequantizeLinear(s, z) -> d; a = d + 3;
 * h = HardSwish(a); m = h * d; then, with `quantize`, y = QuantizeLinear(m,
 * s2, z2), else y = m. The executor runs the chain as a 256-entry table in
 * the DequantizeLinear's kernel. */
static oq_model *mapped_model(oq_dtype dt, int64_t n, bool quantize, const oq_tensor *consts, oq_err *err)
{
    oq_model *m = empty_model();
    if (!m) goto fail;
    oq_graph *g = m->graph;
    oq_dim d[1] = {{n, NULL}};
    oq_value *x = oq_graph_value(g, "x", err);
    if (!x || oq_value_set_tensor_type(x, dt, 1, d, err) || oq_graph_add_input(g, x, err)) goto fail;
    static const char *const cnames[5] = {"s", "z", "three", "s2", "z2"};
    for (int k = 0; k < 5; k++)
        if (!add_const(g, cnames[k], &consts[k], err)) goto fail;
    static const struct {
        const char *op, *in[3], *out;
    } nodes[] = {
        {"DequantizeLinear", {"x", "s", "z"}, "d"}, {"Add", {"d", "three"}, "a"}, {"HardSwish", {"a"}, "h"},
        {"Mul", {"h", "d"}, "m"}, {"QuantizeLinear", {"m", "s2", "z2"}, "y"},
    };
    int n_nodes = quantize ? 5 : 4;
    for (int i = 0; i < n_nodes; i++) {
        int n_in = nodes[i].in[2] ? 3 : nodes[i].in[1] ? 2 : 1;
        const char *out[1] = {nodes[i].out};
        if (!oq_graph_add_node(g, nodes[i].op, "", nodes[i].out, n_in, nodes[i].in, 1, out, err)) goto fail;
    }
    if (oq_graph_add_output(g, oq_graph_find(g, quantize ? "y" : "m"), err) || oq_graph_sort(g, err)) goto fail;
    return m;
fail:
    if (!err->status) oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_model_destroy(m);
    return NULL;
}

static void count_values(void *user, const oq_value *v, const oq_tensor *t)
{
    (void)v, (void)t;
    ++*(int *)user;
}

/* mapped_model's output for every byte of x, run fused (one table lookup per
 * element) and node by node (an observer watching every value), equals the
 * float operations of the separate kernels done here, byte for byte. The
 * fused run makes no float value but the output. */
static void mapped_case(oq_dtype dt, int64_t n, bool quantize, int threads, uint32_t *st)
{
    oq_tensor consts[5] = {scalar_f(krand_float(st, 0.02f, 0.1f)), scalar_i(dt, dt == OQ_DTYPE_INT8 ? -7 : 121),
                           scalar_f(3.0f), scalar_f(krand_float(st, 0.01f, 0.05f)), scalar_i(OQ_DTYPE_UINT8, 13)};
    oq_tensor x = make(dt, 1, &n), y[2];
    oq_err err = {0};
    char what[96];
    snprintf(what, sizeof what, "mapped %s n %lld%s threads %d", oq_dtype_name(dt), (long long)n,
             quantize ? " quantized" : "", threads);
    cases++;
    fill_ints(&x, st);
    float s = *(float *)consts[0].data, s2 = *(float *)consts[3].data;
    int32_t z = get_i(&consts[1], 0);
    int32_t *want = malloc((size_t)n * sizeof *want);
    float *want_f = malloc((size_t)n * sizeof *want_f);
    for (int64_t i = 0; i < n; i++) {
        float d = (float)(get_i(&x, i) - z) * s, a = d + 3.0f;
        float h = a * fmaxf(fminf(a / 6.0f + 0.5f, 1.0f), 0.0f);
        want_f[i] = h * d;
        want[i] = quantize_ref(want_f[i], s2, 13, OQ_DTYPE_UINT8);
    }
    oq_model *m = mapped_model(dt, n, quantize, consts, &err);
    CHECK_OK(m ? OQ_OK : err.status, &err);
    for (int observed = 0; m && observed < 2; observed++) {
        oq_session *sess = NULL;
        oq_exec_options opts = {.threads = threads};
        int seen = 0;
        CHECK_OK(oq_session_create(&sess, m, &opts, &err), &err);
        if (!sess) break;
        if (observed) oq_session_set_observer(sess, count_values, &seen);
        CHECK_OK(oq_session_run(sess, &x, &y[observed], &err), &err);
        oq_exec_stats es;
        oq_session_stats(sess, &es);
        oq_session_destroy(sess);
        if (err.status) break;
        /* observed, every node's value is seen; fused, no float value of n
         * elements besides the output is made (kernels' scratch is a few bytes) */
        size_t out_bytes = (size_t)n * (quantize ? 1 : sizeof(float));
        CHECK(observed ? seen == (quantize ? 5 : 4) : n < 64 || es.naive_bytes < out_bytes + (size_t)n * sizeof(float));
        if (quantize) {
            snprintf(what + strlen(what), sizeof what - strlen(what), observed ? " observed" : "");
            CHECK(mismatches(&y[observed], want, n, what) == 0);
        } else {
            CHECK(oq_tensor_numel(&y[observed]) == n &&
                  memcmp(y[observed].data, want_f, (size_t)n * sizeof(float)) == 0);
        }
        oq_tensor_release(&y[observed]);
    }
    oq_model_destroy(m);
    free(want);
    free(want_f);
    oq_tensor_release(&x);
    for (int k = 0; k < 5; k++) oq_tensor_release(&consts[k]);
}

static int check_qdq(oq_isa level)
{
    (void)level;
    static const int64_t lengths[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 65, 255, 256, 257, 1000, 70001};
    uint32_t st = 7;
    cases = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        int64_t n = lengths[li];
        int threads = n > 60000 ? 2 : 1;
        qdq_case(OQ_DTYPE_UINT8, 13, 0, n, threads, &st);
        qdq_case(OQ_DTYPE_INT8, 13, 0, n, threads, &st);
        qdq_case(OQ_DTYPE_INT16, 21, 0, n, threads, &st);
        qdq_case(OQ_DTYPE_UINT4, 21, 0, n, 1, &st);
        qdq_case(OQ_DTYPE_INT4, 21, 0, n, 1, &st);
        dequant_int32_case(n, &st);
        dynamic_case(n, threads, &st);
        mapped_case(OQ_DTYPE_UINT8, n, true, threads, &st);
        mapped_case(OQ_DTYPE_INT8, n, true, threads, &st);
        mapped_case(OQ_DTYPE_INT8, n, false, threads, &st);
    }
    /* per axis: runs shorter than, around and longer than the chunk */
    static const int64_t inners[] = {1, 5, 17, 256, 300};
    for (size_t k = 0; k < sizeof inners / sizeof inners[0]; k++) {
        qdq_case(OQ_DTYPE_UINT8, 13, 3, inners[k], 1, &st);
        qdq_case(OQ_DTYPE_INT8, 13, 4, inners[k], 2, &st);
        qdq_case(OQ_DTYPE_UINT16, 21, 3, inners[k], 1, &st);
    }
    return cases;
}

const kfamily kf_qdq = {"qdq", clone_variant, check_qdq};

/* ---- gate: a squeeze-excite block's Mul run with its QuantizeLinear ------------------ */

/* The byte-to-float table lookup (oq_byte_floats_kernel) against t[x[i]],
 * bit for bit, on every byte value, lengths around the vector width, and
 * tables holding NaN, infinities and -0. */
static void lookup_case(int64_t n, uint32_t *st)
{
    float t[256];
    for (int b = 0; b < 256; b++) t[b] = krand_float(st, -50.0f, 50.0f);
    t[3] = NAN, t[130] = INFINITY, t[200] = -INFINITY, t[255] = -0.0f;
    uint8_t *x = malloc((size_t)n + 1);
    float *y = malloc(((size_t)n + 1) * sizeof *y);
    for (int64_t i = 0; i < n; i++) x[i] = i < 256 ? (uint8_t)i : (uint8_t)krand(st);
    y[n] = 7.0f; /* past the end: must stay */
    oq_byte_floats_kernel()(y, x, t, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(&y[i], &t[x[i]], sizeof(float)) != 0;
    CHECK(bad == 0 && y[n] == 7.0f);
    cases++;
    free(x);
    free(y);
}

/* What a squeeze-excite model looks like after quantization, as built by
 * se_model: x = HardSwish(DequantizeLinear(xb, s, z)), or a float input x;
 * m = GlobalAveragePool(x); gate = HardSigmoid(m), or a float input g of
 * shape (1, 1, h, w) that is no gate per plane; y = QuantizeLinear(Mul(x,
 * gate) or Mul(gate, x), s2, z2). Outputs y and m. */
typedef struct se_case {
    int64_t n, c, h, w;
    oq_dtype xdt;  /* 8-bit: x from bytes; FLOAT: x is the input */
    oq_dtype ydt;  /* QuantizeLinear's output type */
    bool gate_first, plain_gate;
    int threads;
} se_case;

static oq_model *se_model(const se_case *k, const oq_tensor *consts, oq_err *err)
{
    oq_model *m = empty_model();
    if (!m) goto fail;
    oq_graph *g = m->graph;
    bool bytes = k->xdt != OQ_DTYPE_FLOAT;
    oq_dim d[4] = {{k->n, NULL}, {k->c, NULL}, {k->h, NULL}, {k->w, NULL}}, dg[4] = {{1, NULL}, {1, NULL}, {k->h, NULL}, {k->w, NULL}};
    oq_value *x = oq_graph_value(g, bytes ? "xb" : "x", err);
    if (!x || oq_value_set_tensor_type(x, k->xdt, 4, d, err) || oq_graph_add_input(g, x, err)) goto fail;
    if (k->plain_gate) {
        oq_value *gv = oq_graph_value(g, "gate", err);
        if (!gv || oq_value_set_tensor_type(gv, OQ_DTYPE_FLOAT, 4, dg, err) || oq_graph_add_input(g, gv, err))
            goto fail;
    }
    static const char *const cnames[4] = {"s", "z", "s2", "z2"};
    for (int i = 0; i < 4; i++)
        if (!add_const(g, cnames[i], &consts[i], err)) goto fail;
    const char *mul_in[2] = {k->gate_first ? "gate" : "x", k->gate_first ? "x" : "gate"};
    const struct {
        const char *op, *in[3], *out;
    } nodes[] = {
        {"DequantizeLinear", {"xb", "s", "z"}, "d"}, {"HardSwish", {"d"}, "x"},
        {"GlobalAveragePool", {"x"}, "m"},           {"HardSigmoid", {"m"}, "gate"},
        {"Mul", {mul_in[0], mul_in[1]}, "p"},        {"QuantizeLinear", {"p", "s2", "z2"}, "y"},
    };
    for (int i = bytes ? 0 : 2; i < 6; i++) {
        if (i == 3 && k->plain_gate) continue;
        int n_in = nodes[i].in[2] ? 3 : nodes[i].in[1] ? 2 : 1;
        const char *out[1] = {nodes[i].out};
        if (!oq_graph_add_node(g, nodes[i].op, "", nodes[i].out, n_in, nodes[i].in, 1, out, err)) goto fail;
    }
    if (oq_graph_add_output(g, oq_graph_find(g, "y"), err) || oq_graph_add_output(g, oq_graph_find(g, "m"), err) ||
        oq_graph_sort(g, err))
        goto fail;
    return m;
fail:
    if (!err->status) oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_model_destroy(m);
    return NULL;
}

/* The mean of x[0..n) as the executor sums it: eight interleaved double
 * sums, the rest, then the eight. */
static float mean_ref(const float *x, int64_t n)
{
    double acc[8] = {0}, s = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[i + l];
    for (; i < n; i++) s += x[i];
    for (int l = 0; l < 8; l++) s += acc[l];
    return (float)(s / (double)n);
}

/* se_model run fused (the Mul quantizes its product per plane; the
 * DequantizeLinear's HardSwish is a table) and node by node (an observer
 * watching every value) against the float operations of the separate
 * kernels done here: y and m equal, byte for byte. */
static void se_run_case(const se_case *k, uint32_t *st)
{
    bool bytes = k->xdt != OQ_DTYPE_FLOAT;
    int64_t hw = k->h * k->w, planes = k->n * k->c, numel = planes * hw;
    int64_t dims[4] = {k->n, k->c, k->h, k->w}, gdims[4] = {1, 1, k->h, k->w};
    oq_tensor consts[4] = {scalar_f(krand_float(st, 0.02f, 0.1f)),
                           scalar_i(bytes ? k->xdt : OQ_DTYPE_UINT8, k->xdt == OQ_DTYPE_INT8 ? -7 : 121),
                           scalar_f(krand_float(st, 0.01f, 0.05f)), scalar_i(k->ydt, k->ydt == OQ_DTYPE_INT8 ? -3 : 13)};
    oq_tensor in[2] = {make(k->xdt, 4, dims), make(OQ_DTYPE_FLOAT, 4, gdims)}, y[2][2];
    float s = *(float *)consts[0].data, s2 = *(float *)consts[2].data;
    int32_t z = get_i(&consts[1], 0), z2 = get_i(&consts[3], 0);
    float *x = malloc((size_t)numel * sizeof *x), *mean = malloc((size_t)planes * sizeof *mean);
    int32_t *want = malloc((size_t)numel * sizeof *want);
    if (bytes) fill_ints(&in[0], st);
    for (int64_t i = 0; i < numel; i++) {
        if (!bytes) {
            x[i] = ((float *)in[0].data)[i] = krand_float(st, -4.0f, 6.0f);
            continue;
        }
        float d = (float)(get_i(&in[0], i) - z) * s;
        x[i] = d * fmaxf(fminf(d / 6.0f + 0.5f, 1.0f), 0.0f);
    }
    for (int64_t i = 0; i < hw; i++) ((float *)in[1].data)[i] = krand_float(st, 0.0f, 1.0f);
    for (int64_t pl = 0; pl < planes; pl++) {
        mean[pl] = mean_ref(x + pl * hw, hw);
        float gate = fmaxf(fminf(0.2f * mean[pl] + 0.5f, 1.0f), 0.0f);
        for (int64_t i = 0; i < hw; i++) {
            float g = k->plain_gate ? ((float *)in[1].data)[i] : gate;
            want[pl * hw + i] = quantize_ref(x[pl * hw + i] * g, s2, z2, k->ydt);
        }
    }
    oq_err err = {0};
    char what[160];
    snprintf(what, sizeof what, "se %s->%s n %lld c %lld %lldx%lld%s%s threads %d", oq_dtype_name(k->xdt),
             oq_dtype_name(k->ydt), (long long)k->n, (long long)k->c, (long long)k->h, (long long)k->w,
             k->gate_first ? " gate first" : "", k->plain_gate ? " plain gate" : "", k->threads);
    cases++;
    oq_model *m = se_model(k, consts, &err);
    CHECK_OK(m ? OQ_OK : err.status, &err);
    for (int observed = 0; m && observed < 2; observed++) {
        oq_session *sess = NULL;
        oq_exec_options opts = {.threads = k->threads};
        int seen = 0;
        CHECK_OK(oq_session_create(&sess, m, &opts, &err), &err);
        if (!sess) break;
        if (observed) oq_session_set_observer(sess, count_values, &seen);
        CHECK_OK(oq_session_run(sess, in, y[observed], &err), &err);
        oq_exec_stats es;
        oq_session_stats(sess, &es);
        oq_session_destroy(sess);
        if (err.status) break;
        /* fused, the float product (numel floats) is not made: only x (from
         * bytes), m, the gate, y and a few bytes of kernel scratch */
        size_t made = (size_t)numel * ((bytes ? sizeof(float) : 0) + 1) + (size_t)planes * 2 * sizeof(float);
        CHECK(observed || k->plain_gate || es.naive_bytes < made + (size_t)numel * sizeof(float));
        char w2[200];
        snprintf(w2, sizeof w2, "%s%s", what, observed ? " observed" : "");
        CHECK(mismatches(&y[observed][0], want, numel, w2) == 0);
        CHECK(oq_tensor_numel(&y[observed][1]) == planes &&
              memcmp(y[observed][1].data, mean, (size_t)planes * sizeof *mean) == 0);
        for (int o = 0; o < 2; o++) oq_tensor_release(&y[observed][o]);
    }
    oq_model_destroy(m);
    free(x);
    free(mean);
    free(want);
    for (int i = 0; i < 2; i++) oq_tensor_release(&in[i]);
    for (int i = 0; i < 4; i++) oq_tensor_release(&consts[i]);
}

static int check_gate(oq_isa level)
{
    (void)level;
    uint32_t st = 11;
    cases = 0;
    static const int64_t lengths[] = {0, 1, 5, 15, 16, 17, 31, 64, 255, 256, 257, 1000};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) lookup_case(lengths[i], &st);
    /* planes of 1 element, under, around and over the 256-element chunk and
     * the eight sums; batches; both Mul orders; int8 in and out; a product
     * large enough to split over threads; a gate that is not per plane */
    static const se_case se[] = {
        {1, 3, 1, 1, OQ_DTYPE_UINT8, OQ_DTYPE_UINT8, false, false, 1},
        {1, 5, 3, 5, OQ_DTYPE_UINT8, OQ_DTYPE_UINT8, false, false, 1},
        {2, 4, 4, 4, OQ_DTYPE_INT8, OQ_DTYPE_UINT8, true, false, 1},
        {1, 3, 16, 16, OQ_DTYPE_UINT8, OQ_DTYPE_INT8, false, false, 1},
        {1, 3, 1, 257, OQ_DTYPE_FLOAT, OQ_DTYPE_UINT8, true, false, 1},
        {1, 17, 3, 96, OQ_DTYPE_UINT8, OQ_DTYPE_UINT8, false, false, 2},
        {2, 88, 12, 48, OQ_DTYPE_INT8, OQ_DTYPE_INT8, true, false, 2},
        {1, 6, 7, 7, OQ_DTYPE_UINT8, OQ_DTYPE_UINT8, false, true, 1},
        {1, 4, 2, 9, OQ_DTYPE_FLOAT, OQ_DTYPE_UINT8, true, true, 2},
    };
    for (size_t i = 0; i < sizeof se / sizeof se[0]; i++) se_run_case(&se[i], &st);
    return cases;
}

static const char *gate_variant(oq_isa isa)
{
    return oq_byte_floats_variant(isa) ? oq_byte_floats_variant(isa) : clone_variant(isa);
}

const kfamily kf_gate = {"gate", gate_variant, check_gate};

/* ---- qconv ----------------------------------------------------------------------- */

/* One 8-bit convolution case: x (1, cin, [h,] w), weights (cout, cin/group,
 * [kh,] kw). Spatial arrays hold (h, w); a 1-D case uses index 1 only. */
typedef struct qconv_case {
    int nsp;                 /* 1 or 2 spatial dims */
    int64_t cin, cout, group;
    int64_t in[2], k[2], s[2], d[2], p0[2], p1[2];
} qconv_case;

typedef struct conv_attrs {
    const qconv_case *c;
} conv_attrs;

static oq_status set_conv_attrs(oq_node *n, const void *arg, oq_err *err)
{
    const qconv_case *c = ((const conv_attrs *)arg)->c;
    int64_t pads[4];
    int first = 2 - c->nsp;
    for (int a = 0; a < c->nsp; a++) {
        pads[a] = c->p0[first + a];
        pads[c->nsp + a] = c->p1[first + a];
    }
    oq_status st;
    if ((st = oq_node_set_attr_int(n, "group", c->group, err)) ||
        (st = oq_node_set_attr_ints(n, "strides", c->nsp, c->s + first, err)) ||
        (st = oq_node_set_attr_ints(n, "dilations", c->nsp, c->d + first, err)) ||
        (st = oq_node_set_attr_ints(n, "pads", 2 * c->nsp, pads, err)))
        return st;
    return OQ_OK;
}

/* Output size along spatial dim a. */
static int64_t conv_out(const qconv_case *c, int a)
{
    return (c->in[a] + c->p0[a] + c->p1[a] - c->d[a] * (c->k[a] - 1) - 1) / c->s[a] + 1;
}

/* The exact sums sum (x - zx) * (w - zw[co]) of every output, taps outside the
 * input left out; acc has cout * oh * ow entries. */
static void conv_sums(int32_t *acc, const qconv_case *c, const oq_tensor *x, int32_t zx, const oq_tensor *w,
                      const int32_t *zw)
{
    int two = c->nsp == 2;
    int64_t ih = two ? c->in[0] : 1, iw = c->in[1], kh = two ? c->k[0] : 1, kw = c->k[1];
    int64_t oh = two ? conv_out(c, 0) : 1, ow = conv_out(c, 1);
    int64_t cg = c->cin / c->group, mg = c->cout / c->group;
    for (int64_t co = 0; co < c->cout; co++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xo = 0; xo < ow; xo++) {
                int32_t sum = 0;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t a = 0; a < kh; a++)
                        for (int64_t b = 0; b < kw; b++) {
                            int64_t iy = two ? y * c->s[0] - c->p0[0] + a * c->d[0] : 0;
                            int64_t ix = xo * c->s[1] - c->p0[1] + b * c->d[1];
                            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw)
                                continue;
                            int64_t xc = (co / mg) * cg + ci;
                            sum += (get_i(x, (xc * ih + iy) * iw + ix) - zx) *
                                   (get_i(w, ((co * cg + ci) * kh + a) * kw + b) - zw[co]);
                        }
                acc[(co * oh + y) * ow + xo] = sum;
            }
}

/* QLinearConv (x type xdt, weights wdt, per-channel weight scales and zero
 * points when per_ch, bias) or, when integer, ConvInteger (uint8, scalar zero
 * points); weights constant or fed. */
static void qconv_case_run(const qconv_case *c, oq_dtype xdt, oq_dtype wdt, bool per_ch, bool w_const,
                           bool integer, int threads, uint32_t *st)
{
    int two = c->nsp == 2;
    int64_t xd[4] = {1, c->cin, c->in[0], c->in[1]}, wd[4] = {c->cout, c->cin / c->group, c->k[0], c->k[1]};
    if (!two) {
        xd[2] = c->in[1];
        wd[2] = c->k[1];
    }
    int64_t oh = two ? conv_out(c, 0) : 1, ow = conv_out(c, 1), nout = c->cout * oh * ow;
    int64_t nw = per_ch ? c->cout : 1;
    oq_tensor x = make(xdt, c->nsp + 2, xd), w = make(wdt, c->nsp + 2, wd);
    oq_tensor zx = scalar_i(xdt, xdt == OQ_DTYPE_INT8 ? -3 : 121), sx = scalar_f(0.0213f);
    oq_tensor zw = make(wdt, per_ch ? 1 : 0, &nw), sw = make(OQ_DTYPE_FLOAT, per_ch ? 1 : 0, &nw);
    oq_dtype ydt = xdt;
    oq_tensor zy = scalar_i(ydt, ydt == OQ_DTYPE_INT8 ? 5 : 130), sy = scalar_f(0.0917f);
    oq_tensor b = make(OQ_DTYPE_INT32, 1, &c->cout), y[1];
    int32_t *acc = malloc((size_t)nout * sizeof *acc), *want = malloc((size_t)nout * sizeof *want);
    int32_t zwv[512];
    oq_err err = {0};
    cases++;
    fill_ints(&x, st);
    fill_ints(&w, st);
    for (int64_t k = 0; k < nw; k++) {
        /* ConvInteger with uint8 weights takes any zero point; QLinearConv's int8 weights use 0 */
        set_i(&zw, k, wdt == OQ_DTYPE_UINT8 ? (int32_t)(krand(st) % 256) : 0);
        ((float *)sw.data)[k] = krand_float(st, 0.002f, 0.02f);
    }
    for (int64_t co = 0; co < c->cout; co++) {
        zwv[co] = get_i(&zw, per_ch ? co : 0);
        ((int32_t *)b.data)[co] = (int32_t)(krand(st) % 20001) - 10000;
    }
    conv_sums(acc, c, &x, get_i(&zx, 0), &w, zwv);
    int64_t plane = oh * ow;
    for (int64_t i = 0; i < nout; i++) {
        int64_t co = i / plane;
        float mult = ((float *)sx.data)[0] * ((float *)sw.data)[per_ch ? co : 0] / ((float *)sy.data)[0];
        want[i] = integer ? acc[i] : requant_ref(acc[i], ((int32_t *)b.data)[co], mult, get_i(&zy, 0), ydt);
    }
    conv_attrs at = {c};
    char what[160];
    snprintf(what, sizeof what, "%s %dd cin %lld cout %lld group %lld in %lldx%lld k %lldx%lld s %lld d %lld %s%s",
             integer ? "ConvInteger" : "QLinearConv", c->nsp, (long long)c->cin, (long long)c->cout,
             (long long)c->group, (long long)c->in[0], (long long)c->in[1], (long long)c->k[0], (long long)c->k[1],
             (long long)c->s[1], (long long)c->d[1], oq_dtype_name(xdt), w_const ? " const w" : "");
    if (integer) {
        knode_input in[4] = {{"x", &x, false}, {"w", &w, w_const}, {"zx", &zx, true}, {"zw", &zw, true}};
        CHECK_OK(knode_run("ConvInteger", "", 10, in, 4, set_conv_attrs, &at, 1, threads, y, &err), &err);
    } else {
        knode_input in[9] = {{"x", &x, false}, {"sx", &sx, true}, {"zx", &zx, true},
                             {"w", &w, w_const}, {"sw", &sw, true}, {"zw", &zw, true},
                             {"sy", &sy, true}, {"zy", &zy, true}, {"b", &b, true}};
        CHECK_OK(knode_run("QLinearConv", "", 10, in, 9, set_conv_attrs, &at, 1, threads, y, &err), &err);
    }
    if (!err.status) {
        CHECK(mismatches(y, want, nout, what) == 0);
        oq_tensor_release(y);
    }
    free(acc);
    free(want);
    oq_tensor *all[] = {&x, &w, &zx, &sx, &zw, &sw, &zy, &sy, &b};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        oq_tensor_release(all[k]);
}

static const qconv_case qconv_cases[] = {
    /* nsp cin cout g    in          k         s       d       p0      p1 */
    /* depthwise: rows under 8, 8 to 15, 16 and more outputs; strides 1 and 2 */
    {2, 3, 3, 3, {6, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 4, 4, 4, {7, 12}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 3, 3, 3, {9, 37}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 3, 3, 3, {11, 37}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},
    {2, 2, 2, 2, {12, 26}, {3, 3}, {2, 2}, {1, 1}, {0, 1}, {1, 0}},
    {2, 3, 3, 3, {10, 44}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},
    {2, 2, 2, 2, {13, 50}, {5, 5}, {2, 2}, {1, 1}, {2, 1}, {1, 2}},
    {2, 2, 2, 2, {9, 33}, {3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}},     /* dilated */
    {2, 2, 2, 2, {1, 17}, {1, 7}, {1, 1}, {1, 1}, {0, 3}, {0, 3}},     /* one row, 1x7 */
    {2, 2, 2, 2, {12, 30}, {9, 9}, {1, 1}, {1, 1}, {4, 4}, {4, 4}},    /* 81 taps: tap by tap */
    {2, 2, 2, 2, {3, 300}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},    /* rows longer than a work item */
    {2, 2, 2, 2, {8, 20}, {3, 3}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},     /* stride 3: tap by tap */
    {2, 4, 4, 4, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},      /* small planes: rows under 8 */
    {2, 3, 3, 3, {8, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},
    {2, 2, 2, 2, {7, 6}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},
    {2, 2, 2, 2, {5, 3}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},      /* rows of 3 bytes */
    /* a plane whose padded rows pass a work item's buffer: items of many chunks of rows */
    {2, 3, 3, 3, {300, 120}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 2, 2, 2, {301, 121}, {5, 5}, {2, 2}, {1, 1}, {2, 2}, {2, 2}},
    /* stride 1, rows under 64 outputs: a work item's rows summed as one run (padding rows included),
     * in chunks of rows; over two work items; one row of 5 outputs */
    {2, 3, 3, 3, {200, 40}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 2, 2, 2, {600, 50}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},
    {2, 2, 2, 2, {1, 5}, {1, 3}, {1, 1}, {1, 1}, {0, 1}, {0, 1}},
    /* im2col and the GEMM */
    {2, 5, 7, 1, {9, 11}, {3, 3}, {2, 1}, {1, 1}, {1, 0}, {0, 1}},
    {2, 6, 4, 2, {8, 9}, {3, 2}, {1, 2}, {1, 2}, {1, 1}, {1, 1}},
    {2, 4, 8, 2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},      /* grouped, two output channels a group */
    {1, 3, 5, 1, {1, 29}, {1, 4}, {1, 3}, {1, 2}, {0, 3}, {0, 1}},     /* 1-D */
    {2, 16, 24, 1, {7, 9}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},    /* 1x1: x is the GEMM's B */
    {2, 3, 70, 1, {17, 19}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},   /* several column tiles */
    /* im2col from the padded block: RegNet's eight channels a group on a small plane; strides 3 and 2,
     * dilations and uneven pads over tiles that start mid-row; a block too large (im2col_bytes) */
    {2, 16, 16, 2, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 8, 8, 1, {40, 40}, {3, 3}, {3, 2}, {2, 1}, {2, 0}, {1, 3}},
    {2, 4, 4, 1, {9, 30}, {2, 3}, {1, 3}, {1, 1}, {0, 1}, {0, 2}},
    {2, 64, 2, 1, {3, 6000}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
};

static int check_qconv(oq_isa level)
{
    (void)level;
    uint32_t st = 11;
    cases = 0;
    for (size_t i = 0; i < sizeof qconv_cases / sizeof qconv_cases[0]; i++) {
        const qconv_case *c = &qconv_cases[i];
        int threads = i % 3 == 2 ? 2 : 1;
        qconv_case_run(c, OQ_DTYPE_UINT8, OQ_DTYPE_INT8, true, true, false, threads, &st);
        qconv_case_run(c, OQ_DTYPE_INT8, OQ_DTYPE_INT8, i % 2 == 0, i % 2 == 1, false, threads, &st);
        qconv_case_run(c, OQ_DTYPE_UINT8, OQ_DTYPE_UINT8, false, i % 2 == 0, true, threads, &st);
    }
    return cases;
}

/* The depthwise sums (their own loops and, at AVX2 and up, the rows summed
 * in registers), im2col and the requantization are compiled per level. */
static const char *qconv_variant(oq_isa isa)
{
    const char *dw = oq_qdw_variant(isa);
    return dw ? dw : clone_variant(isa);
}

const kfamily kf_qconv = {"qconv", qconv_variant, check_qconv};

/* ---- qmatmul --------------------------------------------------------------------- */

/* The exact sums of (a - za[i]) (b - zb[j]) for one (m, k) x (k, n) product. */
static void mm_sums(int32_t *acc, const oq_tensor *a, int64_t a_off, const int32_t *za, bool za_rows,
                    const oq_tensor *b, int64_t b_off, const int32_t *zb, bool zb_cols, int64_t m, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (int64_t p = 0; p < k; p++)
                s += (get_i(a, a_off + i * k + p) - za[za_rows ? i : 0]) *
                     (get_i(b, b_off + p * n + j) - zb[zb_cols ? j : 0]);
            acc[i * n + j] = s;
        }
}

/* QLinearMatMul of a (batch, m, k) by b (k, n), and MatMulInteger of the same
 * (uint8 operands), with b's parameters per column when per_col. */
static void qmatmul_case(int64_t batch, int64_t m, int64_t n, int64_t k, oq_dtype adt, oq_dtype bdt, bool per_col,
                         uint32_t *st)
{
    int64_t ad[3] = {batch, m, k}, bd[2] = {k, n}, nb = per_col ? n : 1, nout = batch * m * n;
    oq_tensor a = make(adt, 3, ad), b = make(bdt, 2, bd), sa = scalar_f(0.031f), za = scalar_i(adt, 17);
    oq_tensor sb = make(OQ_DTYPE_FLOAT, per_col ? 1 : 0, &nb), zb = make(bdt, per_col ? 1 : 0, &nb);
    oq_tensor sy = scalar_f(0.57f), zy = scalar_i(adt, adt == OQ_DTYPE_INT8 ? -9 : 99), y[1];
    int32_t *acc = malloc((size_t)nout * sizeof *acc), *want = malloc((size_t)nout * sizeof *want), zbv[600];
    int32_t zav = get_i(&za, 0);
    oq_err err = {0};
    cases++;
    fill_ints(&a, st);
    fill_ints(&b, st);
    for (int64_t j = 0; j < nb; j++) {
        ((float *)sb.data)[j] = krand_float(st, 0.005f, 0.05f);
        set_i(&zb, j, bdt == OQ_DTYPE_UINT8 ? (int32_t)(krand(st) % 256) : 0);
    }
    for (int64_t j = 0; j < n; j++)
        zbv[j] = get_i(&zb, per_col ? j : 0);
    for (int64_t bi = 0; bi < batch; bi++)
        mm_sums(acc + bi * m * n, &a, bi * m * k, &zav, false, &b, 0, zbv, true, m, n, k);
    for (int64_t i = 0; i < nout; i++) {
        int64_t j = i % n;
        float as = 0.031f, bs = ((float *)sb.data)[per_col ? j : 0], ys = 0.57f;
        float mult = as * bs / ys;
        want[i] = requant_ref(acc[i], 0, mult, get_i(&zy, 0), adt);
    }
    char what[128];
    snprintf(what, sizeof what, "QLinearMatMul %lldx(%lldx%lld)x(%lldx%lld) %s x %s%s", (long long)batch,
             (long long)m, (long long)k, (long long)k, (long long)n, oq_dtype_name(adt), oq_dtype_name(bdt),
             per_col ? " per column" : "");
    knode_input in[8] = {{"a", &a, false}, {"sa", &sa, true}, {"za", &za, true}, {"b", &b, true},
                         {"sb", &sb, true}, {"zb", &zb, true}, {"sy", &sy, true}, {"zy", &zy, true}};
    CHECK_OK(knode_run("QLinearMatMul", "", 10, in, 8, NULL, NULL, 1, 2, y, &err), &err);
    if (!err.status) {
        CHECK(mismatches(y, want, nout, what) == 0);
        oq_tensor_release(y);
    }
    for (int b_const = 0; b_const < 2 && adt == OQ_DTYPE_UINT8 && bdt == OQ_DTYPE_UINT8; b_const++) {
        /* b fed at run time (packed per call), and constant (packed once) */
        knode_input iin[4] = {{"a", &a, false}, {"b", &b, b_const}, {"za", &za, true}, {"zb", &zb, true}};
        CHECK_OK(knode_run("MatMulInteger", "", 10, iin, 4, NULL, NULL, 1, 1, y, &err), &err);
        if (!err.status) {
            snprintf(what, sizeof what, "MatMulInteger %lldx%lldx%lld%s", (long long)m, (long long)n, (long long)k,
                     b_const ? " constant b" : "");
            CHECK(mismatches(y, acc, nout, what) == 0);
            oq_tensor_release(y);
        }
    }
    free(acc);
    free(want);
    oq_tensor *all[] = {&a, &b, &sa, &za, &sb, &zb, &sy, &zy};
    for (size_t q = 0; q < sizeof all / sizeof all[0]; q++)
        oq_tensor_release(all[q]);
}

/* com.microsoft QGemm: A (m, k) uint8 by B (k, n) int8 with per-column
 * parameters, C (n) int32, alpha; float output, and requantized output. */
static void qgemm_op_case(int64_t m, int64_t n, int64_t k, bool requant, uint32_t *st)
{
    int64_t ad[2] = {m, k}, bd[2] = {k, n}, nout = m * n;
    oq_tensor a = make(OQ_DTYPE_UINT8, 2, ad), b = make(OQ_DTYPE_INT8, 2, bd), sa = scalar_f(0.02f);
    oq_tensor za = scalar_i(OQ_DTYPE_UINT8, 128), sb = make(OQ_DTYPE_FLOAT, 1, &n), zb = make(OQ_DTYPE_INT8, 1, &n);
    oq_tensor cb = make(OQ_DTYPE_INT32, 1, &n), sy = scalar_f(0.3f), zy = scalar_i(OQ_DTYPE_UINT8, 64), y[1];
    int32_t *acc = malloc((size_t)nout * sizeof *acc), zbv[600], zav = 128;
    oq_err err = {0};
    cases++;
    fill_ints(&a, st);
    fill_ints(&b, st);
    fill_ints(&cb, st);
    for (int64_t j = 0; j < n; j++) {
        ((float *)sb.data)[j] = krand_float(st, 0.005f, 0.05f);
        zbv[j] = 0;
    }
    mm_sums(acc, &a, 0, &zav, false, &b, 0, zbv, true, m, n, k);
    int bad = 0;
    knode_input in[9] = {{"a", &a, false}, {"sa", &sa, true}, {"za", &za, true}, {"b", &b, true}, {"sb", &sb, true},
                         {"zb", &zb, true}, {"c", &cb, true}, {"sy", &sy, true}, {"zy", &zy, true}};
    CHECK_OK(knode_run("QGemm", "com.microsoft", 1, in, requant ? 9 : 7, NULL, NULL, 1, 1, y, &err), &err);
    if (!err.status) {
        for (int64_t i = 0; i < nout; i++) {
            int64_t j = i % n;
            float mult = 1.0f * 0.02f * ((float *)sb.data)[j];
            int32_t sum = (int32_t)((uint32_t)acc[i] + (uint32_t)((int32_t *)cb.data)[j]);
            if (requant) {
                bad += get_i(y, i) != requant_ref(acc[i], ((int32_t *)cb.data)[j], mult / 0.3f, 64, OQ_DTYPE_UINT8);
            } else {
                float w = (float)sum * mult;
                bad += memcmp(&w, (float *)y->data + i, sizeof w) != 0;
            }
        }
        if (bad)
            fprintf(stderr, "QGemm %lldx%lldx%lld%s: %d values differ\n", (long long)m, (long long)n, (long long)k,
                    requant ? " requantized" : "", bad);
        CHECK(bad == 0);
        oq_tensor_release(y);
    }
    free(acc);
    oq_tensor *all[] = {&a, &b, &sa, &za, &sb, &zb, &cb, &sy, &zy};
    for (size_t q = 0; q < sizeof all / sizeof all[0]; q++)
        oq_tensor_release(all[q]);
}

static int check_qmatmul(oq_isa level)
{
    (void)level;
    static const int64_t shapes[][4] = {
        /* batch m n k */
        {1, 1, 1, 1}, {1, 1, 17, 3}, {2, 7, 5, 9}, {1, 6, 16, 2}, {3, 13, 33, 31}, {1, 97, 35, 70}, {1, 5, 300, 17},
    };
    uint32_t st = 5;
    cases = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t *d = shapes[s];
        qmatmul_case(d[0], d[1], d[2], d[3], OQ_DTYPE_UINT8, OQ_DTYPE_INT8, false, &st);
        qmatmul_case(d[0], d[1], d[2], d[3], OQ_DTYPE_UINT8, OQ_DTYPE_INT8, true, &st);
        qmatmul_case(d[0], d[1], d[2], d[3], OQ_DTYPE_INT8, OQ_DTYPE_INT8, true, &st);
        qmatmul_case(d[0], d[1], d[2], d[3], OQ_DTYPE_UINT8, OQ_DTYPE_UINT8, false, &st);
        qgemm_op_case(d[1], d[2], d[3], false, &st);
        qgemm_op_case(d[1], d[2], d[3], true, &st);
    }
    return cases;
}

const kfamily kf_qmatmul = {"qmatmul", clone_variant, check_qmatmul};
