/* ops_qcontrib.c: ONNX Runtime's com.microsoft QLinear ops on 8-bit
 * tensors: QLinearConcat, QLinearAdd, QLinearMul, QLinearSigmoid,
 * QLinearLeakyRelu and QLinearGlobalAveragePool, each the float op on the
 * dequantized inputs, quantized with QuantizeLinear's rounding. */
#include <math.h>
#include <string.h>

#include "exec/broadcast.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qops.h"

/* ---- com.microsoft QLinearConcat (ONNX Runtime contrib op) ------------------------------ */

/* Inputs: y_scale, y_zero_point, then (x, x_scale, x_zero_point) per tensor;
 * attribute axis. Each x is brought to y's parameters through a 256-entry
 * table: quantize(x_scale * (v - x_zp)) with QuantizeLinear's rounding (the
 * way ONNX Runtime builds it), or copied when the parameters are equal. */
static oq_status k_qlinear_concat(oq_kernel_ctx *c)
{
    oq_status st;
    oq_qparams qy;
    const oq_tensor *yz = oq_kernel_require(c, 1);
    if (!yz) return c->err->status;
    oq_dtype ydt = yz->dtype;
    oq_qrange r;
    if (!oq_is_8bit(ydt) || !oq_qtype_range(ydt, &r))
        return OQ_KUNSUP(c, "y_zero_point of type %s (8-bit only)", oq_dtype_name(ydt));
    if ((st = oq_read_qparams(c, 0, 1, ydt, &qy))) return st;
    if (qy.count != 1) return OQ_KERR(c, "y_scale must be a scalar");
    if (c->n_inputs < 5 || (c->n_inputs - 2) % 3) return OQ_KERR(c, "inputs must be y_scale, y_zero_point, then (x, scale, zero point) triples");
    int n_x = (c->n_inputs - 2) / 3;
    const oq_tensor *x0;
    if ((st = oq_require_8bit(c, 2, &x0))) return st;
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x0->rank);
    if (axis < 0) return c->err->status;
    int64_t dims[OQ_MAX_RANK], outer = 1, inner = 1;
    memcpy(dims, x0->dims, (size_t)x0->rank * sizeof *dims);
    dims[axis] = 0;
    for (int i = 0; i < axis; i++) outer *= x0->dims[i];
    for (int i = axis + 1; i < x0->rank; i++) inner *= x0->dims[i];
    for (int k = 0; k < n_x; k++) {
        const oq_tensor *x;
        if ((st = oq_require_8bit(c, 2 + 3 * k, &x))) return st;
        if (x->dtype != ydt) return OQ_KERR(c, "input %d is %s, the output %s", 2 + 3 * k, oq_dtype_name(x->dtype), oq_dtype_name(ydt));
        if (x->rank != x0->rank) return OQ_KERR(c, "input %d has rank %d, input 2 rank %d", 2 + 3 * k, x->rank, x0->rank);
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->dims[i] != x0->dims[i])
                return OQ_KERR(c, "input %d differs from input 2 in dimension %d", 2 + 3 * k, i);
        dims[axis] += x->dims[axis];
    }
    oq_tensor *y = oq_kernel_output(c, 0, ydt, x0->rank, dims);
    uint8_t *table = oq_kernel_scratch(c, 256);
    if (!y || !table) return c->err->status;
    int64_t y_pitch = dims[axis] * inner, off = 0;
    for (int k = 0; k < n_x; k++) {
        const oq_tensor *x = oq_kernel_input(c, 2 + 3 * k);
        oq_qparams qx;
        if ((st = oq_read_qparams(c, 3 + 3 * k, 4 + 3 * k, ydt, &qx))) return st;
        if (qx.count != 1) return OQ_KERR(c, "x_scale of input %d must be a scalar", 2 + 3 * k);
        bool copy = qx.scale[0] == qy.scale[0] && qx.zp[0] == qy.zp[0];
        if (!copy) { /* table index: the byte's bit pattern */
            float v[256];
            oq_real_values(v, ydt, qx.scale[0], qx.zp[0]);
            oq_quant_store_kernel()(table, ydt, 0, v, 256, qy.scale[0], qy.zp[0], r);
        }
        int64_t pitch = x->dims[axis] * inner;
        for (int64_t o = 0; o < outer; o++) {
            const uint8_t *src = (const uint8_t *)x->data + o * pitch;
            uint8_t *dst = (uint8_t *)y->data + o * y_pitch + off;
            if (copy)
                memcpy(dst, src, (size_t)pitch);
            else
                for (int64_t i = 0; i < pitch; i++) dst[i] = table[src[i]];
        }
        off += pitch;
    }
    return OQ_OK;
}

/* ---- com.microsoft elementwise and pooling ops on 8-bit tensors ------------------------------
 *
 * QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu and
 * QLinearGlobalAveragePool (ONNX Runtime contrib ops): each computes the
 * float op on the dequantized inputs and quantizes the result with
 * QuantizeLinear's rounding. Inputs and output share one 8-bit type;
 * parameters are per tensor; omitted zero points are 0. */

/* Scale input ks (a scalar) and optional zero point kz (type dt) of one operand. */
static oq_status scalar_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype dt, float *s, int32_t *z)
{
    oq_qparams q;
    oq_status st = oq_read_qparams(c, ks, kz, dt, &q);
    if (st) return st;
    if (q.count != 1) return OQ_KUNSUP(c, "input %d (scale) must be a scalar", ks);
    *s = q.scale[0];
    *z = q.zp[0];
    return OQ_OK;
}

typedef struct qbin_job {
    oq_bcast b;
    const uint8_t *a, *x;   /* the two operands' bytes */
    uint8_t *y;
    const float *ta, *tb;   /* [256] real values of each operand's bytes */
    bool mul;
    oq_dtype dt;
    float ys;
    int32_t yz;
    oq_qrange r;
    oq_quant_store_fn *store;
} qbin_job;

/* One broadcast run (an oq_bcast_visit): y = quantize(ta[a] + tb[b]), or of ta[a] * tb[b] (mul). */
static void qbin_run(void *arg, int64_t out_off, const int64_t *in_off, const int64_t *step, int64_t len)
{
    const qbin_job *j = arg;
    float buf[OQ_QCHUNK];
    const uint8_t *a = j->a + in_off[0], *x = j->x + in_off[1];
    for (int64_t i = 0; i < len; i += OQ_QCHUNK) {
        int64_t n = len - i < OQ_QCHUNK ? len - i : OQ_QCHUNK;
        for (int64_t t = 0; t < n; t++) {
            float u = j->ta[a[(i + t) * step[0]]], v = j->tb[x[(i + t) * step[1]]];
            buf[t] = j->mul ? u * v : u + v;
        }
        j->store(j->y, j->dt, out_off + i, buf, n, j->ys, j->yz, j->r);
    }
}

static void qbin_range(void *arg, int64_t begin, int64_t end)
{
    const qbin_job *j = arg;
    oq_bcast_walk(&j->b, begin, end, qbin_run, arg);
}

/* Inputs A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale,
 * C_zero_point?; numpy broadcasting. */
static oq_status qlinear_binary(oq_kernel_ctx *c, bool mul)
{
    const oq_tensor *in[2];
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &in[0])) || (st = oq_require_8bit(c, 3, &in[1]))) return st;
    oq_dtype dt = in[0]->dtype;
    if (in[1]->dtype != dt)
        return OQ_KERR(c, "A is %s but B is %s", oq_dtype_name(dt), oq_dtype_name(in[1]->dtype));
    float sa = 1, sb = 1, *ta = oq_kernel_scratch(c, 512 * sizeof *ta);
    int32_t za = 0, zb = 0;
    qbin_job j = {.mul = mul, .dt = dt, .ta = ta, .tb = ta ? ta + 256 : NULL, .store = oq_quant_store_kernel()};
    if (!ta) return c->err->status;
    if ((st = scalar_qparams(c, 1, 2, dt, &sa, &za)) || (st = scalar_qparams(c, 4, 5, dt, &sb, &zb)) ||
        (st = scalar_qparams(c, 6, 7, dt, &j.ys, &j.yz)))
        return st;
    oq_real_values(ta, dt, sa, za);
    oq_real_values(ta + 256, dt, sb, zb);
    oq_qtype_range(dt, &j.r);
    int ranks[2] = {in[0]->rank, in[1]->rank}, rank;
    const int64_t *dims[2] = {in[0]->dims, in[1]->dims};
    int64_t out_dims[OQ_MAX_RANK];
    if ((st = oq_broadcast_shape(2, ranks, dims, &rank, out_dims, c->err))) return st;
    oq_tensor *y = oq_kernel_output_raw(c, 0, dt, rank, out_dims);
    if (!y) return c->err->status;
    oq_bcast_init_tensors(&j.b, rank, out_dims, 2, in);
    j.a = in[0]->data;
    j.x = in[1]->data;
    j.y = y->data;
    oq_par_run(c, j.b.numel, 4, qbin_range, &j);
    return OQ_OK;
}

static oq_status k_qlinear_add(oq_kernel_ctx *c) { return qlinear_binary(c, false); }
static oq_status k_qlinear_mul(oq_kernel_ctx *c) { return qlinear_binary(c, true); }

typedef struct qlut_job {
    const uint8_t *x, *table;
    uint8_t *y;
} qlut_job;

/* y[i] = table[x[i]] over [begin, end). */
static void qlut_range(void *arg, int64_t begin, int64_t end)
{
    const qlut_job *j = arg;
    for (int64_t i = begin; i < end; i++) j->y[i] = j->table[j->x[i]];
}

/* Inputs X, X_scale, X_zero_point?, Y_scale, Y_zero_point?: y = quantize(f(x))
 * through a table of the 256 possible inputs. alpha is LeakyRelu's slope. */
static oq_status qlinear_unary(oq_kernel_ctx *c, bool sigmoid)
{
    const oq_tensor *x;
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &x))) return st;
    float xs = 1, ys = 1, alpha = oq_node_attr_float(c->node, "alpha", 0.01f), v[256];
    int32_t xz = 0, yz = 0;
    if ((st = scalar_qparams(c, 1, 2, x->dtype, &xs, &xz)) || (st = scalar_qparams(c, 3, 4, x->dtype, &ys, &yz)))
        return st;
    uint8_t *table = oq_kernel_scratch(c, 256);
    oq_tensor *y = table ? oq_kernel_output_raw(c, 0, x->dtype, x->rank, x->dims) : NULL;
    if (!y) return c->err->status;
    oq_qrange r = {0, 255};
    oq_qtype_range(x->dtype, &r);
    oq_real_values(v, x->dtype, xs, xz);
    for (int b = 0; b < 256; b++) v[b] = sigmoid ? 1.0f / (1.0f + expf(-v[b])) : v[b] < 0 ? alpha * v[b] : v[b];
    oq_quant_store_kernel()(table, x->dtype, 0, v, 256, ys, yz, r);
    qlut_job j = {x->data, table, y->data};
    oq_par_run(c, oq_tensor_numel(x), 1, qlut_range, &j);
    return OQ_OK;
}

static oq_status k_qlinear_sigmoid(oq_kernel_ctx *c) { return qlinear_unary(c, true); }
static oq_status k_qlinear_leaky_relu(oq_kernel_ctx *c) { return qlinear_unary(c, false); }

/* Inputs X, x_scale, x_zero_point, y_scale, y_zero_point; attribute
 * channels_last (X is N, C, D1.. or N, D1.., C). Y keeps N and C, other dims 1:
 * the mean over each channel's plane, quantized. */
static oq_status k_qlinear_global_average_pool(oq_kernel_ctx *c)
{
    const oq_tensor *x;
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &x))) return st;
    if (x->rank < 3) return OQ_KERR(c, "input must have rank 3 or more, got %d", x->rank);
    float xs = 1, ys = 1;
    int32_t xz = 0, yz = 0;
    if ((st = scalar_qparams(c, 1, 2, x->dtype, &xs, &xz)) || (st = scalar_qparams(c, 3, 4, x->dtype, &ys, &yz)))
        return st;
    bool last = oq_node_attr_int(c->node, "channels_last", 0) != 0;
    int ch_axis = last ? x->rank - 1 : 1;
    int64_t dims[OQ_MAX_RANK], n = x->dims[0], ch = x->dims[ch_axis];
    int64_t plane = n > 0 && ch > 0 ? oq_tensor_numel(x) / (n * ch) : 0;
    for (int i = 0; i < x->rank; i++) dims[i] = i == 0 || i == ch_axis ? x->dims[i] : 1;
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, x->rank, dims);
    if (!y) return c->err->status;
    if (!plane) return OQ_OK;
    oq_qrange r = {0, 255};
    oq_qtype_range(x->dtype, &r);
    bool sgn = x->dtype == OQ_DTYPE_INT8;
    /* element (b, k, p) of batch b, channel k, plane position p */
    int64_t ch_step = last ? 1 : plane, pos_step = last ? ch : 1;
    oq_quant_store_fn *store = oq_quant_store_kernel();
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < ch; k++) {
            const uint8_t *p = (const uint8_t *)x->data + b * ch * plane + k * ch_step;
            int64_t sum = 0;
            for (int64_t i = 0; i < plane; i++) sum += sgn ? (int8_t)p[i * pos_step] : p[i * pos_step];
            float mean = xs * (float)((double)(sum - (int64_t)xz * plane) / (double)plane);
            store(y->data, x->dtype, b * ch + k, &mean, 1, ys, yz, r);
        }
    return OQ_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

const oq_op_def oq_ops_qcontrib[] = {
    {"com.microsoft", "QLinearConcat", 1, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_concat},
    {"com.microsoft", "QLinearAdd", 1, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_add},
    {"com.microsoft", "QLinearMul", 1, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_mul},
    {"com.microsoft", "QLinearSigmoid", 1, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_sigmoid},
    {"com.microsoft", "QLinearLeakyRelu", 1, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_leaky_relu},
    {"com.microsoft", "QLinearGlobalAveragePool", 1, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_global_average_pool},
};
const int oq_ops_qcontrib_count = (int)(sizeof oq_ops_qcontrib / sizeof oq_ops_qcontrib[0]);
