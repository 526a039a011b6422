/* ops_qmatmul.c: QLinearMatMul, MatMulInteger and ONNX Runtime's
 * com.microsoft QGemm, on the 8-bit GEMM (qgemm.c) in tiles spread over the
 * session's threads; QLinear outputs are requantized as ONNX Runtime does. */
#include <string.h>

#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qgemm.h"
#include "exec/qops.h"

/* ---- QLinearMatMul and MatMulInteger ---------------------------------------------------- */

enum { TILE_M = 96, TILE_N = 256 };

typedef struct qmm_job {
    oq_qgemm_args g;        /* one product; a, b point at batch 0, c unused */
    int64_t batch;
    const int64_t *a_off;   /* (batch) element offsets of each product's A */
    const int64_t *b_off;   /* (batch) element offsets of B */
    int64_t mt, nt;         /* tiles along m and n */
    const uint8_t *b_packed; /* NULL, or each column tile of a constant 2-D B as oq_qgemm_pack_b leaves it */
    size_t b_tile_bytes;    /* bytes per tile in b_packed (a multiple of 64) */
    void *y;                /* (batch, m, n) int32 or 8-bit */
    oq_qout out;
} qmm_job;

static void qmm_item(void *arg, int64_t it, uint8_t *ws)
{
    const qmm_job *j = arg;
    int64_t tn = it % j->nt, tm = (it / j->nt) % j->mt, bi = it / (j->nt * j->mt);
    int64_t m = j->g.m, n = j->g.n;
    int64_t i0 = tm * TILE_M, c0 = tn * TILE_N;
    oq_qgemm_args g = j->g;
    g.m = m - i0 < TILE_M ? m - i0 : TILE_M;
    g.n = n - c0 < TILE_N ? n - c0 : TILE_N;
    g.a = (const uint8_t *)j->g.a + j->a_off[bi] + i0 * g.lda;
    g.b = (const uint8_t *)j->g.b + j->b_off[bi] + c0;
    if (g.a_zp && g.a_zp_per_row) g.a_zp += i0;
    if (g.b_zp && g.b_zp_per_col) g.b_zp += c0;
    if (j->b_packed) g.b_packed = j->b_packed + tn * j->b_tile_bytes;
    if (!j->out.requant) {
        g.c = (int32_t *)j->y + bi * m * n + i0 * n + c0;
        g.ldc = n;
        oq_qgemm(&g, ws);
        return;
    }
    int32_t *acc = (int32_t *)ws;
    float *mbuf = (float *)(acc + TILE_M * TILE_N);
    g.c = acc;
    g.ldc = g.n;
    oq_qgemm(&g, mbuf + TILE_N);
    oq_qout_write(&j->out, (uint8_t *)j->y + bi * m * n, n, i0, c0, acc, g.n, g.m, g.n, mbuf);
}

/* Zero points of a matmul operand as qgemm wants them: one, or one per
 * row (a) / column (b) when `count` equals that dimension. */
static oq_status mm_zp(oq_kernel_ctx *c, const oq_qparams *q, int64_t dim, const char *what, bool *per)
{
    *per = q->count > 1;
    if (*per && q->count != dim)
        return OQ_KUNSUP(c, "%s has %lld quantization parameters; only 1 or %lld are supported", what,
                         (long long)q->count, (long long)dim);
    return OQ_OK;
}

/* Packs each column tile of the job's B (see qmm_job.b_packed). */
static void pack_b_tiles(void *dst, void *arg)
{
    const qmm_job *j = arg;
    for (int64_t tn = 0; tn < j->nt; tn++) {
        int64_t c0 = tn * TILE_N;
        oq_qgemm_args g = j->g;
        g.n = j->g.n - c0 < TILE_N ? j->g.n - c0 : TILE_N;
        g.b = (const uint8_t *)j->g.b + c0;
        if (g.b_zp && g.b_zp_per_col) g.b_zp += c0;
        oq_qgemm_pack_b((uint8_t *)dst + tn * j->b_tile_bytes, &g);
    }
}

/* Shared by QLinearMatMul (requant) and MatMulInteger: input indices of a, b
 * and their parameters differ, the batching does not. b_const: B and its
 * zero point are constants, so a 2-D B is packed once per session. */
static oq_status run_qmatmul(oq_kernel_ctx *c, const oq_tensor *a, const oq_tensor *b, bool b_const,
                             const oq_qparams *qa, const oq_qparams *qb, oq_dtype ydt, oq_qout *out)
{
    oq_status st;
    oq_matmul_shape ms;
    if ((st = oq_matmul_dims(c, a, b, &ms))) return st;
    int64_t m = ms.m, k = ms.k, n = ms.n, *dims = ms.dims;
    int obr = ms.batch_rank;
    bool a_per, b_per;
    if ((st = mm_zp(c, qa, m, "a", &a_per)) || (st = mm_zp(c, qb, n, "b", &b_per))) return st;
    oq_tensor *y = oq_kernel_output(c, 0, ydt, ms.rank, dims);
    if (!y) return c->err->status;
    int64_t batch = oq_shape_numel(obr, dims);
    if (oq_tensor_numel(y) == 0) return OQ_OK;

    int64_t *offs = oq_kernel_scratch(c, (size_t)batch * 2 * sizeof(int64_t));
    if (!offs) return c->err->status;
    oq_matmul_batch_offsets(a, b, &ms, offs, offs + batch);
    qmm_job j = {
        .g = {.m = m, .n = n, .k = k, .a = a->data, .lda = k, .a_signed = a->dtype == OQ_DTYPE_INT8,
              .a_zp = qa->zp, .a_zp_per_row = a_per, .b = b->data, .ldb = n,
              .b_signed = b->dtype == OQ_DTYPE_INT8, .b_zp = qb->zp, .b_zp_per_col = b_per},
        .batch = batch, .a_off = offs, .b_off = offs + batch,
        .mt = (m + TILE_M - 1) / TILE_M, .nt = (n + TILE_N - 1) / TILE_N,
        .y = y->data, .out = *out,
    };
    if (b_const && b->rank == 2) {
        j.b_tile_bytes = (oq_qgemm_packed_b_bytes(k, n < TILE_N ? n : TILE_N) + 63) / 64 * 64;
        if (!(j.b_packed = oq_kernel_cache(c, (size_t)j.nt * j.b_tile_bytes, pack_b_tiles, &j)))
            return c->err->status;
    }
    int64_t tm = m < TILE_M ? m : TILE_M, tn = n < TILE_N ? n : TILE_N;
    size_t ws = oq_qgemm_ws_bytes(tm, tn, k) + (out->requant ? (size_t)(TILE_M * TILE_N + TILE_N) * 4 : 0);
    return oq_run_items(c, batch * j.mt * j.nt, ws, qmm_item, &j);
}

static oq_status k_qlinear_matmul(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b;
    oq_qparams qa, qb, qy;
    oq_dtype ydt;
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &a)) || (st = oq_require_8bit(c, 3, &b)) ||
        (st = oq_read_qparams(c, 1, 2, a->dtype, &qa)) || (st = oq_read_weight_qparams(c, 4, 5, b->dtype, &qb)) ||
        (st = oq_qlinear_out_type(c, 7, a->dtype, &ydt)) || (st = oq_read_qparams(c, 6, 7, ydt, &qy)))
        return st;
    if (qy.count != 1 && qy.count != qa.count)
        return OQ_KUNSUP(c, "y_scale must be per tensor or per row like a_scale");
    for (int64_t i = 1; i < qy.count; i++)
        if (qy.zp[i] != qy.zp[0]) return OQ_KUNSUP(c, "per-row y_zero_point values must be equal");
    int64_t rows = qa.count > qy.count ? qa.count : qy.count;
    float *rm = oq_kernel_scratch(c, (size_t)rows * 2 * sizeof *rm);
    if (!rm) return c->err->status;
    float *rd = rm + rows;
    bool b_per = qb.count > 1;
    for (int64_t i = 0; i < rows; i++) {
        float as = qa.scale[qa.count > 1 ? i : 0], ys = qy.scale[qy.count > 1 ? i : 0];
        rm[i] = b_per ? as : as * qb.scale[0] / ys;
        rd[i] = ys;
    }
    oq_qout out = {.requant = true, .y_signed = ydt == OQ_DTYPE_INT8, .y_zp = qy.zp[0], .row_mult = rm,
                .row_step = rows > 1, .col_mult = b_per ? qb.scale : NULL, .row_div = rd};
    bool b_const = oq_kernel_input_const(c, 3) && (!oq_kernel_input(c, 5) || oq_kernel_input_const(c, 5));
    return run_qmatmul(c, a, b, b_const, &qa, &qb, ydt, &out);
}

static oq_status k_matmul_integer(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b;
    oq_qparams qa, qb;
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &a)) || (st = oq_require_8bit(c, 1, &b)) || (st = oq_int_zero_points(c, 2, a, &qa)) ||
        (st = oq_int_zero_points(c, 3, b, &qb)))
        return st;
    oq_qout out = {.requant = false};
    bool b_const = oq_kernel_input_const(c, 1) && (!oq_kernel_input(c, 3) || oq_kernel_input_const(c, 3));
    return run_qmatmul(c, a, b, b_const, &qa, &qb, OQ_DTYPE_INT32, &out);
}

/* ---- com.microsoft QGemm (ONNX Runtime contrib op) -------------------------------------- */

/* Y = alpha * a_scale * b_scale[j] * ((A - a_zp)(B - b_zp[j]) + C[j]): float
 * without y_scale, else requantized with y_scale / y_zero_point (ONNX
 * Runtime's order: (alpha * a_scale * b_scale[j]) / y_scale, accumulator
 * plus C converted to float once). A (M, K) and B (K, N) only: transA and
 * transB set, or C shaped (M, N) / (M, 1), are refused as unsupported. */
static oq_status k_qgemm(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b;
    oq_qparams qa, qb, qy = {0};
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &a)) || (st = oq_require_8bit(c, 3, &b)) ||
        (st = oq_read_qparams(c, 1, 2, a->dtype, &qa)) || (st = oq_read_qparams(c, 4, 5, b->dtype, &qb)))
        return st;
    if (oq_node_attr_int(c->node, "transA", 0) || oq_node_attr_int(c->node, "transB", 0))
        return OQ_KUNSUP(c, "transA or transB set (only plain A x B is supported)");
    if (a->rank != 2 || b->rank != 2) return OQ_KERR(c, "A and B must be 2-D, got rank %d and %d", a->rank, b->rank);
    int64_t m = a->dims[0], k = a->dims[1], n = b->dims[1];
    if (b->dims[0] != k) return OQ_KERR(c, "A is (%lld, %lld) but B has %lld rows", (long long)m, (long long)k,
                                        (long long)b->dims[0]);
    if (qa.count != 1) return OQ_KERR(c, "a_scale must be a scalar");
    if (qb.count != 1 && qb.count != n) return OQ_KERR(c, "b_scale has %lld elements, expected 1 or %lld",
                                                       (long long)qb.count, (long long)n);
    const oq_tensor *cb = oq_kernel_input(c, 6);
    if (cb && (cb->dtype != OQ_DTYPE_INT32 || (oq_tensor_numel(cb) != 1 && oq_tensor_numel(cb) != n) ||
               (cb->rank == 2 && cb->dims[0] != 1) || cb->rank > 2))
        return OQ_KUNSUP(c, "C must be int32 of shape (), (N) or (1, N)");
    oq_dtype ydt = OQ_DTYPE_FLOAT;
    if (oq_kernel_input(c, 7)) {
        if ((st = oq_qlinear_out_type(c, 8, OQ_DTYPE_UINT8, &ydt)) || (st = oq_read_qparams(c, 7, 8, ydt, &qy)))
            return st;
        if (qy.count != 1) return OQ_KERR(c, "y_scale must be a scalar");
    }
    int64_t dims[2] = {m, n};
    oq_tensor *y = oq_kernel_output(c, 0, ydt, 2, dims);
    if (!y) return c->err->status;
    if (m == 0 || n == 0) return OQ_OK;
    int32_t *acc = oq_kernel_scratch(c, (size_t)(m * n) * sizeof *acc);
    int32_t *bias = oq_kernel_scratch(c, (size_t)n * sizeof *bias);
    float *mult = oq_kernel_scratch(c, (size_t)n * sizeof *mult);
    void *ws = oq_kernel_scratch(c, oq_qgemm_ws_bytes(m, n, k));
    if (!acc || !bias || !mult || !ws) return c->err->status;
    float alpha = oq_node_attr_float(c->node, "alpha", 1.0f);
    for (int64_t j = 0; j < n; j++) {
        bias[j] = cb ? ((const int32_t *)cb->data)[oq_tensor_numel(cb) == 1 ? 0 : j] : 0;
        mult[j] = alpha * qa.scale[0] * qb.scale[qb.count > 1 ? j : 0];
        if (ydt != OQ_DTYPE_FLOAT) mult[j] /= qy.scale[0];
    }
    oq_qgemm_args g = {.m = m, .n = n, .k = k, .a = a->data, .lda = k, .a_signed = a->dtype == OQ_DTYPE_INT8,
                       .a_zp = qa.zp, .b = b->data, .ldb = n, .b_signed = b->dtype == OQ_DTYPE_INT8,
                       .b_zp = qb.zp, .b_zp_per_col = qb.count > 1, .c = acc, .ldc = n};
    oq_qgemm(&g, ws);
    oq_requant_cols_fn *requant_cols = oq_requant_cols_kernel();
    for (int64_t i = 0; i < m; i++) {
        const int32_t *ar = acc + i * n;
        if (ydt == OQ_DTYPE_FLOAT) {
            float *yr = (float *)y->data + i * n;
            for (int64_t j = 0; j < n; j++) /* int32 sum wraps, as ONNX Runtime's accumulator does */
                yr[j] = (float)(int32_t)((uint32_t)ar[j] + (uint32_t)bias[j]) * mult[j];
        } else {
            requant_cols((uint8_t *)y->data + i * n, ydt == OQ_DTYPE_INT8, ar, n, bias, mult, qy.zp[0]);
        }
    }
    return OQ_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

const oq_op_def oq_ops_qmatmul[] = {
    {"", "QLinearMatMul", 10, OQ_DT(FLOAT) | OQ_DT_Q8, k_qlinear_matmul},
    {"", "MatMulInteger", 10, OQ_DT_Q8 | OQ_DT(INT32), k_matmul_integer},
    {"com.microsoft", "QGemm", 1, OQ_DT(FLOAT) | OQ_DT_Q8 | OQ_DT(INT32), k_qgemm},
};
const int oq_ops_qmatmul_count = (int)(sizeof oq_ops_qmatmul / sizeof oq_ops_qmatmul[0]);
