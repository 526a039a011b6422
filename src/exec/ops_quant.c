/* ops_quant.c: the quantized kernels: QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, QLinearMatMul, MatMulInteger, QLinearConv and
 * ConvInteger, and ONNX Runtime's com.microsoft QGemm, QLinearConcat and the
 * elementwise and pooling QLinear ops (QLinearAdd, ...).
 *
 * Products run on the 8-bit GEMM in qgemm.c (zero points are folded into its
 * packing), convolutions through a byte im2col padded with the input zero
 * point, and QLinear outputs through oq_requant_* (float multiplier, ties to
 * even, saturate), the way ONNX Runtime computes them. Integer accumulation
 * is exact, so results never depend on the thread count. */
#include <math.h>
#include <string.h>

#include "exec/broadcast.h"
#include "exec/conv.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qgemm.h"
#include "cpu_dispatch.h"

/* ---- element types ------------------------------------------------------------------- */

/* Range of the integer types quantization produces or reads. */
typedef struct qrange {
    int32_t lo, hi;
} qrange;

static bool qtype_range(oq_dtype dt, qrange *r)
{
    switch (dt) {
    case OQ_DTYPE_UINT8: *r = (qrange){0, 255}; return true;
    case OQ_DTYPE_INT8: *r = (qrange){-128, 127}; return true;
    case OQ_DTYPE_UINT16: *r = (qrange){0, 65535}; return true;
    case OQ_DTYPE_INT16: *r = (qrange){-32768, 32767}; return true;
    case OQ_DTYPE_UINT4: *r = (qrange){0, 15}; return true;
    case OQ_DTYPE_INT4: *r = (qrange){-8, 7}; return true;
    default: return false;
    }
}

static bool is_8bit(oq_dtype dt) { return dt == OQ_DTYPE_UINT8 || dt == OQ_DTYPE_INT8; }
static bool is_4bit(oq_dtype dt) { return dt == OQ_DTYPE_UINT4 || dt == OQ_DTYPE_INT4; }
static bool is_scale_type(oq_dtype dt)
{
    return dt == OQ_DTYPE_FLOAT || dt == OQ_DTYPE_FLOAT16 || dt == OQ_DTYPE_BFLOAT16;
}

/* Element i of a packed 4-bit tensor (low nibble first), sign-extended for int4. */
static int32_t nibble_get(const uint8_t *d, int64_t i, bool sgn)
{
    int32_t v = (d[i >> 1] >> ((i & 1) * 4)) & 15;
    return sgn ? (v ^ 8) - 8 : v;
}

static void nibble_set(uint8_t *d, int64_t i, int32_t v)
{
    int sh = (int)(i & 1) * 4;
    d[i >> 1] = (uint8_t)((d[i >> 1] & ~(15 << sh)) | ((v & 15) << sh));
}

/* n floats of src (float, float16 or bfloat16) from element off into dst. */
static void load_floats(float *dst, const void *src, oq_dtype dt, int64_t off, int64_t n)
{
    if (dt == OQ_DTYPE_FLOAT) {
        memcpy(dst, (const float *)src + off, (size_t)n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)src + off;
    for (int64_t j = 0; j < n; j++) dst[j] = dt == OQ_DTYPE_FLOAT16 ? oq_f16_to_f32(h[j]) : oq_bf16_to_f32(h[j]);
}

/* n floats from src into dst (float, float16 or bfloat16) at element off. */
static void store_floats(void *dst, oq_dtype dt, int64_t off, const float *src, int64_t n)
{
    if (dt == OQ_DTYPE_FLOAT) {
        memcpy((float *)dst + off, src, (size_t)n * sizeof(float));
        return;
    }
    uint16_t *h = (uint16_t *)dst + off;
    for (int64_t j = 0; j < n; j++) h[j] = dt == OQ_DTYPE_FLOAT16 ? oq_f32_to_f16(src[j]) : oq_f32_to_bf16(src[j]);
}

/* ---- quantization parameters ----------------------------------------------------------- */

/* Scale and zero point of one tensor: one value, or one per index of a dimension. */
typedef struct qparams {
    int64_t count;      /* 1 (per tensor) or the size of the quantized dimension */
    const float *scale; /* (count) */
    const int32_t *zp;  /* (count) */
} qparams;

/* Reads scale input ks and optional zero-point input kz into scratch arrays.
 * The zero point must have the data type `zdt` (UNDEFINED: any quantized
 * type) and as many elements as the scale. Scales must be float types. */
static oq_status read_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype zdt, qparams *q)
{
    const oq_tensor *s = oq_kernel_require(c, ks), *z = oq_kernel_input(c, kz);
    if (!s) return c->err->status;
    if (!is_scale_type(s->dtype))
        return OQ_KUNSUP(c, "input %d (scale) has element type %s", ks, oq_dtype_name(s->dtype));
    int64_t n = oq_tensor_numel(s);
    if (n < 1) return OQ_KERR(c, "input %d (scale) is empty", ks);
    if (z && oq_tensor_numel(z) != n)
        return OQ_KERR(c, "zero point (input %d) has %lld elements, its scale %lld", kz,
                       (long long)oq_tensor_numel(z), (long long)n);
    if (z && zdt != OQ_DTYPE_UNDEFINED && z->dtype != zdt)
        return OQ_KERR(c, "zero point (input %d) is %s, its data is %s", kz, oq_dtype_name(z->dtype),
                       oq_dtype_name(zdt));
    float *sc = oq_kernel_scratch(c, (size_t)n * sizeof *sc);
    int32_t *zp = oq_kernel_scratch(c, (size_t)n * sizeof *zp);
    if (!sc || !zp) return c->err->status;
    for (int64_t i = 0; i < n; i++) {
        sc[i] = (float)oq_tensor_get_f64(s, i);
        zp[i] = z ? (int32_t)oq_tensor_get_i64(z, i) : 0;
    }
    *q = (qparams){n, sc, zp};
    return OQ_OK;
}

/* ---- Quantize / DequantizeLinear ----------------------------------------------------- */

/* Walk of x viewed as (outer, ch, inner): element i uses parameter
 * (i / inner) % ch. */
typedef struct qdq_job {
    const void *x;
    oq_dtype xdt;
    void *y;
    oq_dtype ydt;
    int64_t ch, inner;
    qparams q;
    qrange r;         /* QuantizeLinear: output range */
} qdq_job;

#define CHUNK 256

/* Quantizes n floats into y (type dt) from element off: saturate(rint(x / s) + zp),
 * computed as zp + rint(x / s clamped to the range less zp) (integer bounds). */
OQ_CLONED(quant_store, (void *y, oq_dtype dt, int64_t off, const float *x, int64_t n, float s, int32_t zp, qrange r),
          (y, dt, off, x, n, s, zp, r))
{
    float lo = (float)(r.lo - zp), hi = (float)(r.hi - zp);
#define QSTORE(T)                                                                                \
    do {                                                                                         \
        T *d = (T *)y + off;                                                                     \
        for (int64_t j = 0; j < n; j++) d[j] = (T)((int32_t)oq_clamp_rint(x[j] / s, lo, hi) + zp); \
    } while (0)
    switch (dt) {
    case OQ_DTYPE_UINT8: QSTORE(uint8_t); break;
    case OQ_DTYPE_INT8: QSTORE(int8_t); break;
    case OQ_DTYPE_UINT16: QSTORE(uint16_t); break;
    case OQ_DTYPE_INT16: QSTORE(int16_t); break;
    default:
        for (int64_t j = 0; j < n; j++) nibble_set(y, off + j, (int32_t)oq_clamp_rint(x[j] / s, lo, hi) + zp);
        break;
    }
#undef QSTORE
}

/* n values (x - zp) of x (type dt) from element off, as floats. */
OQ_CLONED(dequant_load, (float *dst, const void *x, oq_dtype dt, int64_t off, int64_t n, int32_t zp),
          (dst, x, dt, off, n, zp))
{
#define QLOAD(T)                                                                    \
    do {                                                                            \
        const T *s = (const T *)x + off;                                            \
        for (int64_t j = 0; j < n; j++) dst[j] = (float)((int32_t)s[j] - zp);       \
    } while (0)
    switch (dt) {
    case OQ_DTYPE_UINT8: QLOAD(uint8_t); break;
    case OQ_DTYPE_INT8: QLOAD(int8_t); break;
    case OQ_DTYPE_UINT16: QLOAD(uint16_t); break;
    case OQ_DTYPE_INT16: QLOAD(int16_t); break;
    case OQ_DTYPE_INT32:
        for (int64_t j = 0; j < n; j++) dst[j] = (float)((int64_t)((const int32_t *)x)[off + j] - zp);
        break;
    default:
        for (int64_t j = 0; j < n; j++) dst[j] = (float)(nibble_get(x, off + j, dt == OQ_DTYPE_INT4) - zp);
        break;
    }
#undef QLOAD
}

/* t[b] = s * (v - z) for each byte pattern b of type dt (v its value). */
static void real_values(float t[256], oq_dtype dt, float s, int32_t z)
{
    for (int b = 0; b < 256; b++) t[b] = s * (float)((dt == OQ_DTYPE_INT8 ? (int32_t)(int8_t)b : b) - z);
}

/* Elements [begin, end) in runs that share one parameter, in chunks of CHUNK. */
static void qdq_range(void *arg, int64_t begin, int64_t end, bool quantize)
{
    const qdq_job *j = arg;
    quant_store_fn *store = quant_store_pick();
    dequant_load_fn *load = dequant_load_pick();
    float buf[CHUNK];
    for (int64_t i = begin; i < end;) {
        int64_t ci = (i / j->inner) % j->ch;
        int64_t run_end = (i / j->inner + 1) * j->inner;
        if (run_end > end) run_end = end;
        float s = j->q.scale[ci];
        int32_t zp = j->q.zp[ci];
        for (; i < run_end; i += CHUNK) {
            int64_t n = run_end - i < CHUNK ? run_end - i : CHUNK;
            if (quantize) {
                load_floats(buf, j->x, j->xdt, i, n);
                store(j->y, j->ydt, i, buf, n, s, zp, j->r);
            } else {
                load(buf, j->x, j->xdt, i, n, zp);
                for (int64_t t = 0; t < n; t++) buf[t] *= s;
                store_floats(j->y, j->ydt, i, buf, n);
            }
        }
        i = run_end;
    }
}

static void quant_range(void *arg, int64_t b, int64_t e) { qdq_range(arg, b, e, true); }
static void dequant_range(void *arg, int64_t b, int64_t e) { qdq_range(arg, b, e, false); }

/* Shared setup: parameters of inputs 1 (scale) and 2 (zero point) for data
 * x, per tensor or along `axis` (opset 13+); fills j's layout. */
static oq_status qdq_setup(oq_kernel_ctx *c, const oq_tensor *x, oq_dtype zdt, qdq_job *j)
{
    oq_status st;
    if (c->opset >= 21 && oq_node_attr_int(c->node, "block_size", 0) != 0)
        return OQ_KUNSUP(c, "blocked quantization (block_size) is not supported");
    if ((st = read_qparams(c, 1, 2, zdt, &j->q))) return st;
    const oq_tensor *s = oq_kernel_input(c, 1);
    j->ch = 1;
    j->inner = oq_tensor_numel(x) > 0 ? oq_tensor_numel(x) : 1; /* per tensor: one run */
    if (j->q.count == 1) return OQ_OK;
    if (c->opset < 13) return OQ_KERR(c, "scale must have one element before opset 13");
    if (s->rank != 1) return OQ_KERR(c, "scale must be a scalar or 1-D, got rank %d", s->rank);
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", 1), x->rank);
    if (axis < 0) return c->err->status;
    if (x->dims[axis] != j->q.count)
        return OQ_KERR(c, "scale has %lld elements, axis %d of the input %lld", (long long)j->q.count, axis,
                       (long long)x->dims[axis]);
    j->ch = x->dims[axis];
    j->inner = oq_dims_prod(x->dims, axis + 1, x->rank);
    return OQ_OK;
}

static oq_status k_quantize_linear(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *s = oq_kernel_require(c, 1), *z = oq_kernel_input(c, 2);
    if (!x || !s) return c->err->status;
    bool halfs = c->opset >= 19;
    if (x->dtype != OQ_DTYPE_FLOAT && !(halfs && is_scale_type(x->dtype)))
        return OQ_KUNSUP(c, "input has element type %s", oq_dtype_name(x->dtype));
    if (s->dtype != x->dtype)
        return OQ_KERR(c, "scale is %s but the input is %s", oq_dtype_name(s->dtype), oq_dtype_name(x->dtype));
    oq_dtype ydt = OQ_DTYPE_UINT8;
    if (z)
        ydt = z->dtype;
    else if (c->opset >= 21)
        ydt = (oq_dtype)oq_node_attr_int(c->node, "output_dtype", OQ_DTYPE_UINT8);
    qdq_job j = {.x = x->data, .xdt = x->dtype, .ydt = ydt};
    bool wide = ydt == OQ_DTYPE_UINT16 || ydt == OQ_DTYPE_INT16 || is_4bit(ydt);
    if (!qtype_range(ydt, &j.r) || (wide && c->opset < 21))
        return OQ_KUNSUP(c, "output element type %s is not supported at opset %lld", oq_dtype_name(ydt),
                         (long long)c->opset);
    oq_status st;
    if ((st = qdq_setup(c, x, ydt, &j))) return st;
    /* every element is written; 4-bit bytes are merged nibble by nibble, so they start at 0 */
    oq_tensor *y = is_4bit(ydt) ? oq_kernel_output(c, 0, ydt, x->rank, x->dims)
                                : oq_kernel_output_raw(c, 0, ydt, x->rank, x->dims);
    if (!y) return c->err->status;
    j.y = y->data;
    int64_t n = oq_tensor_numel(x);
    if (is_4bit(ydt))
        quant_range(&j, 0, n); /* two elements share a byte: stay on one thread */
    else
        oq_par_run(c, n, 4, quant_range, &j);
    return OQ_OK;
}

static oq_status k_dequantize_linear(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *s = oq_kernel_require(c, 1), *z = oq_kernel_input(c, 2);
    if (!x || !s) return c->err->status;
    qrange r;
    bool wide = x->dtype == OQ_DTYPE_UINT16 || x->dtype == OQ_DTYPE_INT16 || is_4bit(x->dtype);
    if ((x->dtype != OQ_DTYPE_INT32 && !qtype_range(x->dtype, &r)) || (wide && c->opset < 21))
        return OQ_KUNSUP(c, "input element type %s is not supported at opset %lld", oq_dtype_name(x->dtype),
                         (long long)c->opset);
    if (!is_scale_type(s->dtype) || (s->dtype != OQ_DTYPE_FLOAT && c->opset < 19))
        return OQ_KUNSUP(c, "scale element type %s is not supported", oq_dtype_name(s->dtype));
    qdq_job j = {.x = x->data, .xdt = x->dtype, .ydt = s->dtype};
    oq_status st;
    if ((st = qdq_setup(c, x, x->dtype, &j))) return st;
    if (x->dtype == OQ_DTYPE_INT32 && z) {
        for (int64_t i = 0; i < j.q.count; i++)
            if (j.q.zp[i] != 0) return OQ_KERR(c, "an int32 input needs a zero point of 0");
    }
    oq_tensor *y = oq_kernel_output_raw(c, 0, s->dtype, x->rank, x->dims); /* every element is written */
    if (!y) return c->err->status;
    j.y = y->data;
    oq_par_run(c, oq_tensor_numel(x), 4, dequant_range, &j);
    return OQ_OK;
}

/* ---- DynamicQuantizeLinear -------------------------------------------------------------- */

static oq_status k_dynamic_quantize_linear(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x) return c->err->status;
    if (x->dtype != OQ_DTYPE_FLOAT) return OQ_KUNSUP(c, "input has element type %s", oq_dtype_name(x->dtype));
    int64_t n = oq_tensor_numel(x);
    const float *xd = x->data;
    /* The range always includes 0 so that 0 is exactly representable; NaNs are ignored. */
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        lo = oq_min_or(xd[i], lo);
        hi = oq_max_or(xd[i], hi);
    }
    /* scale = (max - min) / 255; an all-zero input gets scale 1 (like ONNX
     * Runtime) instead of the 0 that would divide by zero. */
    float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
    float zpf = fminf(fmaxf(rintf(-lo / scale), 0.0f), 255.0f);
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_UINT8, x->rank, x->dims); /* every element is written */
    if (!y) return c->err->status;
    oq_tensor *ys = oq_kernel_output(c, 1, OQ_DTYPE_FLOAT, 0, NULL);
    if (!ys) return c->err->status;
    oq_tensor *yz = oq_kernel_output(c, 2, OQ_DTYPE_UINT8, 0, NULL);
    if (!yz) return c->err->status;
    *(float *)ys->data = scale;
    *(uint8_t *)yz->data = (uint8_t)zpf;
    int32_t zp = (int32_t)zpf;
    qdq_job j = {.x = xd, .xdt = OQ_DTYPE_FLOAT, .y = y->data, .ydt = OQ_DTYPE_UINT8, .ch = 1, .inner = n > 0 ? n : 1,
                 .q = {1, &scale, &zp}, .r = {0, 255}};
    oq_par_run(c, n, 4, quant_range, &j);
    return OQ_OK;
}

/* ---- parallel items with per-part workspace ------------------------------------------- */

typedef void (*item_fn)(void *job, int64_t i, uint8_t *ws);

typedef struct parts_job {
    int64_t n_items;
    int64_t parts;
    uint8_t *ws;
    size_t ws_bytes; /* per part, a multiple of 64 */
    item_fn item;
    void *job;
} parts_job;

static void parts_range(void *arg, int64_t begin, int64_t end)
{
    const parts_job *pj = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t i0 = pj->n_items * p / pj->parts, i1 = pj->n_items * (p + 1) / pj->parts;
        for (int64_t i = i0; i < i1; i++) pj->item(pj->job, i, pj->ws + (size_t)p * pj->ws_bytes);
    }
}

/* Runs item(job, i, ws_p) for i in [0, n_items) in contiguous parts across
 * the session's threads; each part gets ws_bytes of private 64-byte aligned
 * scratch. */
static oq_status run_items(oq_kernel_ctx *c, int64_t n_items, size_t ws_bytes, item_fn item, void *job)
{
    if (n_items <= 0) return OQ_OK;
    int64_t parts = oq_kernel_threads(c);
    if (parts < 1) parts = 1;
    if (parts > n_items) parts = n_items;
    ws_bytes = (ws_bytes + 63) / 64 * 64;
    uint8_t *ws = oq_kernel_scratch(c, (size_t)parts * ws_bytes + 64);
    if (!ws) return c->err->status;
    ws = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    parts_job pj = {n_items, parts, ws, ws_bytes, item, job};
    if (parts > 1)
        oq_parallel_for(c, parts, parts_range, &pj);
    else
        parts_range(&pj, 0, 1);
    return OQ_OK;
}

/* ---- requantized output ------------------------------------------------------------------ */

/* How int32 accumulators become the output: copied (the *Integer ops) or
 * requantized (the QLinear ops). Row r's multiplier is row_mult[r * row_step]
 * or, with per-column scales, row_mult[r * row_step] * col_mult[j] /
 * row_div[r * row_step]: ONNX Runtime's order a_scale * b_scale / y_scale. */
typedef struct qout {
    bool requant;
    bool y_signed;
    int32_t y_zp;
    const float *row_mult; /* (rows or 1) */
    int64_t row_step;      /* 1 when row_mult (and row_div) are per row, else 0 */
    const float *col_mult; /* NULL, or (cols) */
    const float *row_div;  /* with col_mult: (rows or 1) */
    const int32_t *bias;   /* NULL, or (rows) added before scaling */
} qout;

/* Writes rows [r0, r0+m) x columns [c0, c0+n) of the 1-byte output y (row
 * stride ldy) from acc (m, n; row stride ld_acc). mbuf has n floats of
 * scratch for per-column multipliers. */
static void qout_write(const qout *o, uint8_t *y, int64_t ldy, int64_t r0, int64_t c0, const int32_t *acc,
                       int64_t ld_acc, int64_t m, int64_t n, float *mbuf)
{
    oq_requant_row_fn *requant_row = oq_requant_row_kernel();
    oq_requant_cols_fn *requant_cols = oq_requant_cols_kernel();
    for (int64_t i = 0; i < m; i++) {
        int64_t ri = (r0 + i) * o->row_step;
        uint8_t *yr = y + (r0 + i) * ldy + c0;
        if (!o->col_mult) {
            requant_row(yr, o->y_signed, acc + i * ld_acc, n, o->bias ? o->bias[r0 + i] : 0, o->row_mult[ri],
                           o->y_zp);
            continue;
        }
        for (int64_t t = 0; t < n; t++) mbuf[t] = o->row_mult[ri] * o->col_mult[c0 + t] / o->row_div[ri];
        requant_cols(yr, o->y_signed, acc + i * ld_acc, n, NULL, mbuf, o->y_zp);
    }
}

/* ---- QLinearMatMul and MatMulInteger ---------------------------------------------------- */

enum { TILE_M = 96, TILE_N = 256 };

typedef struct qmm_job {
    oq_qgemm_args g;        /* one product; a, b point at batch 0, c unused */
    int64_t batch;
    const int64_t *a_off;   /* (batch) element offsets of each product's A */
    const int64_t *b_off;   /* (batch) element offsets of B */
    int64_t mt, nt;         /* tiles along m and n */
    void *y;                /* (batch, m, n) int32 or 8-bit */
    qout out;
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
    qout_write(&j->out, (uint8_t *)j->y + bi * m * n, n, i0, c0, acc, g.n, g.m, g.n, mbuf);
}

/* Zero points of a matmul operand as qgemm wants them: one, or one per
 * row (a) / column (b) when `count` equals that dimension. */
static oq_status mm_zp(oq_kernel_ctx *c, const qparams *q, int64_t dim, const char *what, bool *per)
{
    *per = q->count > 1;
    if (*per && q->count != dim)
        return OQ_KUNSUP(c, "%s has %lld quantization parameters; only 1 or %lld are supported", what,
                         (long long)q->count, (long long)dim);
    return OQ_OK;
}

/* Shared by QLinearMatMul (requant) and MatMulInteger: input indices of a, b
 * and their parameters differ, the batching does not. */
static oq_status run_qmatmul(oq_kernel_ctx *c, const oq_tensor *a, const oq_tensor *b, const qparams *qa,
                             const qparams *qb, oq_dtype ydt, qout *out)
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
    int64_t tm = m < TILE_M ? m : TILE_M, tn = n < TILE_N ? n : TILE_N;
    size_t ws = oq_qgemm_ws_bytes(tm, tn, k) + (out->requant ? (size_t)(TILE_M * TILE_N + TILE_N) * 4 : 0);
    return run_items(c, batch * j.mt * j.nt, ws, qmm_item, &j);
}

static oq_status require_8bit(oq_kernel_ctx *c, int k, const oq_tensor **t)
{
    *t = oq_kernel_require(c, k);
    if (!*t) return c->err->status;
    if (!is_8bit((*t)->dtype))
        return OQ_KUNSUP(c, "input %d has element type %s; only uint8 and int8 are supported", k,
                         oq_dtype_name((*t)->dtype));
    return OQ_OK;
}

/* Output type of a QLinear op: its zero point's type (input k), else the input's. */
static oq_status qlinear_out_type(oq_kernel_ctx *c, int k, oq_dtype def, oq_dtype *ydt)
{
    const oq_tensor *z = oq_kernel_input(c, k);
    *ydt = z ? z->dtype : def;
    if (!is_8bit(*ydt)) return OQ_KUNSUP(c, "output element type %s is not supported", oq_dtype_name(*ydt));
    return OQ_OK;
}

static oq_status k_qlinear_matmul(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b;
    qparams qa, qb, qy;
    oq_dtype ydt;
    oq_status st;
    if ((st = require_8bit(c, 0, &a)) || (st = require_8bit(c, 3, &b)) ||
        (st = read_qparams(c, 1, 2, a->dtype, &qa)) || (st = read_qparams(c, 4, 5, b->dtype, &qb)) ||
        (st = qlinear_out_type(c, 7, a->dtype, &ydt)) || (st = read_qparams(c, 6, 7, ydt, &qy)))
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
    qout out = {.requant = true, .y_signed = ydt == OQ_DTYPE_INT8, .y_zp = qy.zp[0], .row_mult = rm,
                .row_step = rows > 1, .col_mult = b_per ? qb.scale : NULL, .row_div = rd};
    return run_qmatmul(c, a, b, &qa, &qb, ydt, &out);
}

/* Zero-point input k of data t for the *Integer ops: optional, t's type. */
static oq_status int_zero_points(oq_kernel_ctx *c, int k, const oq_tensor *t, qparams *q)
{
    const oq_tensor *z = oq_kernel_input(c, k);
    *q = (qparams){1, NULL, NULL};
    if (!z) return OQ_OK;
    if (z->dtype != t->dtype)
        return OQ_KERR(c, "zero point (input %d) is %s, its data is %s", k, oq_dtype_name(z->dtype),
                       oq_dtype_name(t->dtype));
    int64_t n = oq_tensor_numel(z);
    if (n < 1) return OQ_KERR(c, "zero point (input %d) is empty", k);
    int32_t *zp = oq_kernel_scratch(c, (size_t)n * sizeof *zp);
    if (!zp) return c->err->status;
    for (int64_t i = 0; i < n; i++) zp[i] = (int32_t)oq_tensor_get_i64(z, i);
    *q = (qparams){n, NULL, zp};
    return OQ_OK;
}

static oq_status k_matmul_integer(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b;
    qparams qa, qb;
    oq_status st;
    if ((st = require_8bit(c, 0, &a)) || (st = require_8bit(c, 1, &b)) || (st = int_zero_points(c, 2, a, &qa)) ||
        (st = int_zero_points(c, 3, b, &qb)))
        return st;
    qout out = {.requant = false};
    return run_qmatmul(c, a, b, &qa, &qb, OQ_DTYPE_INT32, &out);
}

/* ---- QLinearConv and ConvInteger --------------------------------------------------------- */

enum { TILE_P = 256 }; /* output positions per work item */

typedef struct qconv_job {
    oq_conv_params p;
    const uint8_t *x;       /* (n, cin, in...) 8-bit */
    const uint8_t *w;       /* (cout, cin/group, k...) 8-bit */
    bool x_signed, w_signed;
    int32_t x_zp;
    const int32_t *w_zp;    /* NULL, or (cout) when w_zp_per_ch, else (1) */
    bool w_zp_per_ch;
    int64_t cin_g, cout_g;  /* channels per group */
    int64_t kdim;           /* cin_g * prod(k): the GEMM depth */
    int64_t plane_in;       /* prod(in) */
    int64_t plane_out;      /* prod(out) */
    int64_t tile_p;         /* output positions per work item: TILE_P, or whole rows of it (depthwise) */
    int64_t ptiles;         /* column tiles per (image, group) */
    bool direct;            /* 1x1 taps, stride 1, no pads: x is the GEMM's B */
    bool depthwise;         /* 2-D, one input and one output channel per group: summed tap by tap */
    bool w_const;           /* weights and their zero points are constants: packed once (w_packed) */
    const int16_t *w_packed; /* NULL, or each group's weights as oq_qgemm_pack_a leaves them */
    size_t w_packed_group;  /* int16 elements per group in w_packed */
    void *y;                /* (n, cout, out...) int32 or 8-bit */
    qout out;               /* rows are output channels */
} qconv_job;

/* Lowers output positions [c0, c0+tp) of one image and group to columns:
 * col[r][t] for tap row r = (channel, kernel offset...) is the input byte the
 * tap reads, or `pad` (the input zero point) outside the input. x points at
 * the group's first input channel. */
OQ_CLONED(im2col_bytes, (uint8_t *restrict col, int64_t ldcol, const uint8_t *restrict x, const qconv_job *j, int64_t c0,
                         int64_t tp, uint8_t pad), (col, ldcol, x, j, c0, tp, pad))
{
    const oq_conv_params *p = &j->p;
    int d = p->nsp, last = d - 1;
    int64_t taps = j->kdim / j->cin_g;
    for (int64_t r = 0; r < j->kdim; r++) {
        int64_t ci = r / taps, rem = r % taps, kc[OQ_MAX_RANK - 2], o[OQ_MAX_RANK - 2];
        for (int a = last; a >= 0; a--) {
            kc[a] = rem % p->k[a];
            rem /= p->k[a];
        }
        int64_t pos = c0;
        for (int a = last; a >= 0; a--) {
            o[a] = pos % p->out[a];
            pos /= p->out[a];
        }
        const uint8_t *xc = x + ci * j->plane_in;
        uint8_t *dst = col + r * ldcol;
        int64_t s = p->stride[last], base = kc[last] * p->dil[last] - p->pad0[last], in_last = p->in[last];
        for (int64_t t = 0; t < tp;) {
            /* One run along the last spatial dim: the outer coordinates are fixed. */
            int64_t run = p->out[last] - o[last];
            if (run > tp - t) run = tp - t;
            bool inside = true;
            int64_t off = 0;
            for (int a = 0; a < last; a++) {
                int64_t ia = o[a] * p->stride[a] - p->pad0[a] + kc[a] * p->dil[a];
                inside = inside && ia >= 0 && ia < p->in[a];
                off = off * p->in[a] + ia;
            }
            if (!inside) {
                memset(dst + t, pad, (size_t)run);
            } else {
                /* Steps u in [u0, u1) read inside the input; pad around them. */
                const uint8_t *xr = xc + off * in_last;
                int64_t first = base + o[last] * s; /* input index of step 0 */
                int64_t u0 = first >= 0 ? 0 : (-first + s - 1) / s;
                int64_t u1 = first > in_last - 1 ? 0 : (in_last - 1 - first) / s + 1;
                if (u0 > run) u0 = run;
                if (u1 > run) u1 = run;
                if (u1 < u0) u1 = u0;
                memset(dst + t, pad, (size_t)u0);
                if (s == 1) {
                    memcpy(dst + t + u0, xr + first + u0, (size_t)(u1 - u0));
                } else {
                    for (int64_t u = u0; u < u1; u++) dst[t + u] = xr[first + u * s];
                }
                memset(dst + t + u1, pad, (size_t)(run - u1));
            }
            t += run;
            o[last] += run;
            for (int a = last; a > 0 && o[a] >= p->out[a]; a--) {
                o[a] = 0;
                o[a - 1]++;
            }
        }
    }
}

/* A run of output columns of one depthwise output row, on AVX2: out[o] = sum
 * over the taps of the kernel rows used of wt[tap] * x[tap](o) - corr for o
 * in [0, n), n >= 8, 16 outputs at a time in two registers (8 in one when
 * n < 16; the last ones may overlap those before: they are written, not
 * added). rows[r] points at the padded input under output 0 for the r-th
 * kernel row used, with at least 32 readable bytes past the last one a tap
 * reads (the stride-2 loads take 32 bytes at a time); wt points at that row's
 * weights less their zero point (kw_n each); corr is the input zero point
 * times the sum of the weights used. qdw_run_kernel gives NULL where AVX2
 * is not enabled. */
typedef void qdw_run_fn(int32_t *out, const uint8_t *const *rows, const int32_t *wt, int64_t kh_n,
                       int64_t kw_n, int64_t dw, int64_t n, int32_t corr);

#if OQ_X86_KERNELS
#include <immintrin.h>

static inline __attribute__((always_inline, target("avx2"))) __m256i qdw_widen(__m128i b, bool x_signed)
{
    return x_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

static inline __attribute__((always_inline, target("avx2"))) void
qdw_run_body(int32_t *out, const uint8_t *const *rows, const int32_t *wt, int64_t kh_n, int64_t kw_n, int64_t dw,
             int64_t n, int32_t corr, int sw, bool x_signed)
{
    const __m128i evens = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i c = _mm256_set1_epi32(corr);
    for (int64_t o0 = 0; n < 16 && o0 < n; o0 += 8) { /* 8 to 15 outputs: 8 at a time */
        int64_t o = o0 + 8 <= n ? o0 : n - 8;
        __m256i s0 = _mm256_setzero_si256();
        for (int64_t kh = 0; kh < kh_n; kh++)
            for (int64_t kw = 0; kw < kw_n; kw++) {
                const uint8_t *q = rows[kh] + o * sw + kw * dw;
                __m128i b = sw == 1 ? _mm_loadl_epi64((const __m128i *)q)
                                    : _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)q), evens);
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(qdw_widen(b, x_signed), _mm256_set1_epi32(wt[kh * kw_n + kw])));
            }
        _mm256_storeu_si256((__m256i *)(out + o), _mm256_sub_epi32(s0, c));
    }
    for (int64_t o0 = 0; n >= 16 && o0 < n; o0 += 16) {
        int64_t o = o0 + 16 <= n ? o0 : n - 16;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (int64_t kh = 0; kh < kh_n; kh++)
            for (int64_t kw = 0; kw < kw_n; kw++) {
                const uint8_t *q = rows[kh] + o * sw + kw * dw;
                __m256i w = _mm256_set1_epi32(wt[kh * kw_n + kw]);
                __m128i b0, b1;
                if (sw == 1) { /* q[0..16) */
                    b0 = _mm_loadu_si128((const __m128i *)q);
                    b1 = _mm_srli_si128(b0, 8);
                } else { /* q[0], q[2], ..., q[30] */
                    b0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)q), evens);
                    b1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 16)), evens);
                }
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(qdw_widen(b0, x_signed), w));
                s1 = _mm256_add_epi32(s1, _mm256_mullo_epi32(qdw_widen(b1, x_signed), w));
            }
        _mm256_storeu_si256((__m256i *)(out + o), _mm256_sub_epi32(s0, c));
        _mm256_storeu_si256((__m256i *)(out + o + 8), _mm256_sub_epi32(s1, c));
    }
}

#define QDW_RUN(NAME, SW, SIGNED)                                                                       \
    __attribute__((target("avx2"))) static void NAME(int32_t *out, const uint8_t *const *rows, const int32_t *wt, \
                                                     int64_t kh_n, int64_t kw_n, int64_t dw, int64_t n,        \
                                                     int32_t corr)                                              \
    {                                                                                                        \
        qdw_run_body(out, rows, wt, kh_n, kw_n, dw, n, corr, SW, SIGNED);                                    \
    }
QDW_RUN(qdw_run_u8_s1, 1, false)
QDW_RUN(qdw_run_u8_s2, 2, false)
QDW_RUN(qdw_run_s8_s1, 1, true)
QDW_RUN(qdw_run_s8_s2, 2, true)
#undef QDW_RUN

#endif

/* The run kernels of each level by [signed][stride - 1]; at the baseline
 * there are none and every run goes tap by tap. */
typedef struct qdw_runs {
    qdw_run_fn *fn[2][2];
    const char *name;
} qdw_runs;

static const qdw_runs qdw_run_table[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {{{NULL, NULL}, {NULL, NULL}}, "tap-by-tap"},
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = {{{qdw_run_u8_s1, qdw_run_u8_s2}, {qdw_run_s8_s1, qdw_run_s8_s2}}, "avx2-rows"},
#endif
};

/* The run kernel for stride sw and signedness at the enabled level, or NULL. */
static qdw_run_fn *qdw_run_kernel(int64_t sw, bool x_signed)
{
    if (sw != 1 && sw != 2)
        return NULL;
    return qdw_run_table[oq_isa_pick(OQ_ISA_HAVE(qdw_run_table, .name))].fn[x_signed][sw - 1];
}

enum {
    QDW_MAX_TAPS = 64,    /* kernels up to 8x8 (and 8 rows) take the vector path */
    QDW_PAD_BYTES = 16384 /* input rows of one work item, padded, for the vector path */
};

/* Sums of a depthwise 2-D conv (input channel = output channel = ch) for
 * output positions [c0, c0+tp) into acc, straight from the input plane x.
 * With a vector kernel (qdw_run_kernel), the input rows the positions read are
 * first copied with the input zero point in the padding around them, which
 * adds 0; then every run of at least 8 outputs along a row is summed in
 * registers. Shorter runs, and everything without a vector kernel, go tap by
 * tap: each tap adds (w - zw) * (x - zx) along the run, taps outside the
 * input left out. */
#define QDW_TAP_RUN(XT)                                                                       \
    do {                                                                                      \
        const XT *src = (const XT *)row + off;                                                \
        if (sw == 1)                                                                          \
            for (int64_t o = lo; o < hi; o++) a[o - ow0] += wv * ((int32_t)src[o] - zx);      \
        else                                                                                  \
            for (int64_t o = lo; o < hi; o++) a[o - ow0] += wv * ((int32_t)src[o * sw] - zx); \
    } while (0)

OQ_CLONED(qdw_sums, (int32_t *restrict acc, const uint8_t *restrict x, const qconv_job *j, int64_t ch, int64_t c0,
                     int64_t tp), (acc, x, j, ch, c0, tp))
{
    const oq_conv_params *p = &j->p;
    int64_t H = p->in[0], W = p->in[1], OW = p->out[1], KH = p->k[0], KW = p->k[1];
    int64_t sh = p->stride[0], sw = p->stride[1], dh = p->dil[0], dw = p->dil[1], ph = p->pad0[0], pw = p->pad0[1];
    int32_t zx = j->x_zp, zw = j->w_zp ? j->w_zp[j->w_zp_per_ch ? ch : 0] : 0;
    const uint8_t *wc = j->w + ch * KH * KW;
    /* the padded rows: input rows [r0, r1) at stride bw, input column c at c + pw */
    uint8_t padded[QDW_PAD_BYTES];
    int64_t bw = (OW - 1) * sw + (KW - 1) * dw + 1 + 32; /* + 32: see qdw_run_body */
    int64_t r0 = (c0 / OW) * sh - ph, r1 = ((c0 + tp - 1) / OW) * sh - ph + (KH - 1) * dh + 1;
    r0 = r0 > 0 ? r0 : 0;
    r1 = r1 < H ? r1 : H;
    bool fits = KH * KW <= QDW_MAX_TAPS && KH <= 8 && OW >= 8 && r1 > r0 && (r1 - r0) * bw <= QDW_PAD_BYTES;
    qdw_run_fn *vec = fits ? qdw_run_kernel(sw, j->x_signed) : NULL;
    int32_t wt[QDW_MAX_TAPS], row_corr[8] = {0}; /* row_corr[kh]: zx times kernel row kh's weights */
    for (int64_t k = 0; vec && k < KH * KW; k++) {
        wt[k] = (j->w_signed ? (int32_t)(int8_t)wc[k] : (int32_t)wc[k]) - zw;
        row_corr[k / KW] += wt[k] * zx;
    }
    for (int64_t r = r0; vec && r < r1; r++) {
        uint8_t *d = padded + (r - r0) * bw;
        int64_t left = pw < bw ? pw : bw, n = W < bw - left ? W : bw - left; /* n < W: columns no tap reads */
        memset(d, (uint8_t)zx, (size_t)left);
        memcpy(d + left, x + r * W, (size_t)n);
        memset(d + left + n, (uint8_t)zx, (size_t)(bw - left - n));
    }
    memset(acc, 0, (size_t)tp * sizeof *acc);
    for (int64_t t = 0; t < tp;) {
        int64_t oh = (c0 + t) / OW, ow0 = (c0 + t) % OW, run = OW - ow0 < tp - t ? OW - ow0 : tp - t;
        int32_t *a = acc + t;
        if (vec && run >= 8) {
            const uint8_t *rows[8];
            int64_t used = 0, first = -1;
            int32_t corr = 0;
            for (int64_t kh = 0; kh < KH; kh++) {
                int64_t ih = oh * sh - ph + kh * dh;
                if (ih < 0 || ih >= H) continue;
                first = first < 0 ? kh : first;
                rows[used++] = padded + (ih - r0) * bw + ow0 * sw;
                corr += row_corr[kh];
            }
            /* (the kernel rows inside the input are consecutive: first, first + 1, ...) */
            if (used)
                vec(a, rows, wt + first * KW, used, KW, dw, run, corr);
            t += run;
            continue;
        }
        for (int64_t kh = 0; kh < KH; kh++) {
            int64_t ih = oh * sh - ph + kh * dh;
            if (ih < 0 || ih >= H) continue;
            const uint8_t *row = x + ih * W;
            for (int64_t kw = 0; kw < KW; kw++) {
                int32_t wv = (j->w_signed ? (int32_t)(int8_t)wc[kh * KW + kw] : (int32_t)wc[kh * KW + kw]) - zw;
                /* output columns o whose tap reads input column o * sw + off inside [0, W) */
                int64_t off = kw * dw - pw;
                int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw, hi = W - 1 - off >= 0 ? (W - 1 - off) / sw + 1 : 0;
                lo = lo > ow0 ? lo : ow0;
                hi = hi < ow0 + run ? hi : ow0 + run;
                if (wv == 0 || lo >= hi) continue;
                if (j->x_signed)
                    QDW_TAP_RUN(int8_t);
                else
                    QDW_TAP_RUN(uint8_t);
            }
        }
        t += run;
    }
}
#undef QDW_TAP_RUN

static void qconv_item(void *arg, int64_t it, uint8_t *ws)
{
    const qconv_job *j = arg;
    int64_t tile = it % j->ptiles, gi = (it / j->ptiles) % j->p.group, ni = it / (j->ptiles * j->p.group);
    int64_t P = j->plane_out, c0 = tile * j->tile_p, tp = P - c0 < j->tile_p ? P - c0 : j->tile_p;
    int64_t ch0 = gi * j->cout_g; /* first output channel of the group */
    const uint8_t *xg = j->x + (ni * j->p.cin + gi * j->cin_g) * j->plane_in;
    int32_t *acc = (int32_t *)ws;
    uint8_t *col = ws + (j->out.requant ? (size_t)j->cout_g * TILE_P * sizeof(int32_t) : 0);
    oq_qgemm_args g = {
        .m = j->cout_g, .n = tp, .k = j->kdim,
        .a = j->w + ch0 * j->kdim, .lda = j->kdim, .a_signed = j->w_signed,
        .a_zp = j->w_zp && j->w_zp_per_ch ? j->w_zp + ch0 : j->w_zp, .a_zp_per_row = j->w_zp_per_ch,
        .b_signed = j->x_signed, .b_zp = &j->x_zp,
        .a_packed = j->w_packed ? j->w_packed + gi * j->w_packed_group : NULL,
    };
    if (j->depthwise) {
        int32_t *sums = j->out.requant ? acc : (int32_t *)j->y + (ni * j->p.cout + ch0) * P + c0;
        qdw_sums(sums, xg, j, ch0, c0, tp);
        if (j->out.requant)
            qout_write(&j->out, (uint8_t *)j->y + ni * j->p.cout * P, P, ch0, c0, acc, tp, 1, tp, NULL);
        return;
    }
    uint8_t *gws = col;
    if (j->direct) {
        g.b = xg + c0;
        g.ldb = P;
    } else {
        im2col_bytes(col, tp, xg, j, c0, tp, (uint8_t)j->x_zp);
        g.b = col;
        g.ldb = tp;
        gws = col + (size_t)j->kdim * TILE_P;
    }
    if (!j->out.requant) {
        g.c = (int32_t *)j->y + (ni * j->p.cout + ch0) * P + c0;
        g.ldc = P;
        oq_qgemm(&g, gws);
        return;
    }
    g.c = acc;
    g.ldc = tp;
    oq_qgemm(&g, gws);
    qout_write(&j->out, (uint8_t *)j->y + ni * j->p.cout * P, P, ch0, c0, acc, tp, j->cout_g, tp, NULL);
}

/* Reads an INTS attribute that must have exactly n entries when present;
 * fills v with it or with def. */
static oq_status ints_attr(oq_kernel_ctx *c, const char *name, int n, int64_t def, int64_t *v)
{
    int cnt = 0;
    const int64_t *a = oq_node_attr_ints(c->node, name, &cnt);
    if (a && cnt != n) return OQ_KERR(c, "attribute %s has %d values, expected %d", name, cnt, n);
    for (int i = 0; i < n; i++) v[i] = a ? a[i] : def;
    return OQ_OK;
}

/* Conv geometry from x, w and the node's attributes (group, kernel_shape,
 * strides, dilations, pads, auto_pad), as ONNX Conv defines it. */
static oq_status qconv_setup(oq_kernel_ctx *c, const oq_tensor *x, const oq_tensor *w, qconv_job *j)
{
    oq_conv_params *p = &j->p;
    oq_status st;
    if (x->rank < 3) return OQ_KERR(c, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->rank);
    if (w->rank != x->rank) return OQ_KERR(c, "weight rank %d differs from input rank %d", w->rank, x->rank);
    int d = p->nsp = x->rank - 2;
    p->n = x->dims[0];
    p->cin = x->dims[1];
    p->cout = w->dims[0];
    p->group = oq_node_attr_int(c->node, "group", 1);
    if (p->group < 1 || p->cin % p->group || p->cout % p->group || w->dims[1] * p->group != p->cin)
        return OQ_KERR(c, "group %lld does not fit %lld input channels, weight (%lld, %lld, ...)",
                       (long long)p->group, (long long)p->cin, (long long)w->dims[0], (long long)w->dims[1]);
    int64_t ks[OQ_MAX_RANK], pads[2 * OQ_MAX_RANK];
    if ((st = ints_attr(c, "kernel_shape", d, -1, ks)) || (st = ints_attr(c, "strides", d, 1, p->stride)) ||
        (st = ints_attr(c, "dilations", d, 1, p->dil)) || (st = ints_attr(c, "pads", 2 * d, 0, pads)))
        return st;
    const char *ap = oq_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool upper = !strcmp(ap, "SAME_UPPER"), same = upper || !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same && !valid && strcmp(ap, "NOTSET") && ap[0])
        return OQ_KERR(c, "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
    j->plane_in = j->plane_out = 1;
    int64_t taps = 1;
    bool unit = true;
    for (int a = 0; a < d; a++) {
        p->in[a] = x->dims[2 + a];
        p->k[a] = w->dims[2 + a];
        if (ks[a] >= 0 && ks[a] != p->k[a]) return OQ_KERR(c, "kernel_shape disagrees with the weight shape");
        if (p->k[a] < 1 || p->stride[a] < 1 || p->dil[a] < 1 || pads[a] < 0 || pads[d + a] < 0)
            return OQ_KERR(c, "kernel dims, strides and dilations must be positive and pads non-negative");
        int64_t ext = p->dil[a] * (p->k[a] - 1) + 1;
        if (same) {
            /* Output = ceil(in / stride); the odd pad goes at the end for SAME_UPPER. */
            p->out[a] = (p->in[a] + p->stride[a] - 1) / p->stride[a];
            int64_t total = (p->out[a] - 1) * p->stride[a] + ext - p->in[a];
            if (total < 0) total = 0;
            p->pad0[a] = upper ? total / 2 : total - total / 2;
            p->pad1[a] = total - p->pad0[a];
        } else {
            p->pad0[a] = valid ? 0 : pads[a];
            p->pad1[a] = valid ? 0 : pads[d + a];
            int64_t span = p->in[a] + p->pad0[a] + p->pad1[a] - ext;
            if (span < 0) return OQ_KERR(c, "kernel extent %lld exceeds the padded input along spatial dim %d", (long long)ext, a);
            p->out[a] = span / p->stride[a] + 1;
        }
        unit = unit && p->k[a] == 1 && p->stride[a] == 1 && p->pad0[a] == 0 && p->pad1[a] == 0;
        j->plane_in *= p->in[a];
        j->plane_out *= p->out[a];
        taps *= p->k[a];
    }
    j->cin_g = p->cin / p->group;
    j->cout_g = p->cout / p->group;
    j->kdim = j->cin_g * taps;
    j->direct = unit;
    j->depthwise = d == 2 && j->cin_g == 1 && j->cout_g == 1;
    j->x = x->data;
    j->w = w->data;
    j->x_signed = x->dtype == OQ_DTYPE_INT8;
    j->w_signed = w->dtype == OQ_DTYPE_INT8;
    return OQ_OK;
}

/* Packs each group's weights for the GEMM (see qconv_job.w_packed). */
static void pack_conv_weights(void *dst, void *arg)
{
    const qconv_job *j = arg;
    for (int64_t gi = 0; gi < j->p.group; gi++) {
        int64_t ch0 = gi * j->cout_g;
        oq_qgemm_args a = {.m = j->cout_g, .k = j->kdim, .a = j->w + ch0 * j->kdim, .lda = j->kdim,
                           .a_signed = j->w_signed, .a_zp = j->w_zp && j->w_zp_per_ch ? j->w_zp + ch0 : j->w_zp,
                           .a_zp_per_row = j->w_zp_per_ch};
        oq_qgemm_pack_a((int16_t *)dst + gi * j->w_packed_group, &a);
    }
}

/* Sizes y (n, cout, out...) of type ydt and runs the job over every
 * (image, group, column tile). */
static oq_status qconv_run(oq_kernel_ctx *c, qconv_job *j, oq_dtype ydt)
{
    int64_t dims[OQ_MAX_RANK];
    dims[0] = j->p.n;
    dims[1] = j->p.cout;
    for (int a = 0; a < j->p.nsp; a++) dims[2 + a] = j->p.out[a];
    oq_tensor *y = oq_kernel_output(c, 0, ydt, j->p.nsp + 2, dims);
    if (!y) return c->err->status;
    j->y = y->data;
    int64_t numel = oq_tensor_numel(y);
    if (numel == 0) return OQ_OK;
    if (j->kdim == 0) {
        /* No taps: every sum is 0. */
        if (!j->out.requant) return OQ_OK; /* outputs are zero-filled */
        for (int64_t i = 0; i < j->p.n * j->p.cout; i++) {
            int32_t zero[1] = {0};
            int64_t ch = i % j->p.cout;
            for (int64_t t = 0; t < j->plane_out; t++)
                qout_write(&j->out, (uint8_t *)j->y + (i / j->p.cout) * j->p.cout * j->plane_out + t, j->plane_out,
                           ch, 0, zero, 1, 1, 1, NULL);
        }
        return OQ_OK;
    }
    if (j->w_const && !j->depthwise) {
        /* packed on the first run and kept by the session */
        j->w_packed_group = oq_qgemm_packed_a_elems(j->cout_g, j->kdim);
        j->w_packed = oq_kernel_cache(c, (size_t)j->p.group * j->w_packed_group * sizeof(int16_t), pack_conv_weights, j);
        if (!j->w_packed) return c->err->status;
    }
    /* depthwise work items hold whole output rows when one fits, so that rows are not cut short */
    int64_t ow = j->p.out[j->p.nsp - 1];
    j->tile_p = j->depthwise && ow <= TILE_P ? TILE_P / ow * ow : TILE_P;
    j->ptiles = (j->plane_out + j->tile_p - 1) / j->tile_p;
    int64_t tp = j->plane_out < TILE_P ? j->plane_out : TILE_P;
    size_t ws = (j->out.requant ? (size_t)j->cout_g * TILE_P * sizeof(int32_t) : 0) +
                (j->direct ? 0 : (size_t)j->kdim * TILE_P) + oq_qgemm_ws_bytes(j->cout_g, tp, j->kdim);
    return run_items(c, j->p.n * j->p.group * j->ptiles, ws, qconv_item, j);
}

/* Zero points of the weight: one, or one per output channel. */
static oq_status weight_zp(oq_kernel_ctx *c, const qparams *q, qconv_job *j)
{
    j->w_zp = q->zp;
    j->w_zp_per_ch = q->count > 1;
    if (q->count != 1 && q->count != j->p.cout)
        return OQ_KERR(c, "weight has %lld quantization parameters for %lld output channels", (long long)q->count,
                       (long long)j->p.cout);
    return OQ_OK;
}

static oq_status k_qlinear_conv(oq_kernel_ctx *c)
{
    const oq_tensor *x, *w, *bias = oq_kernel_input(c, 8);
    qparams qx, qw, qy;
    oq_dtype ydt;
    oq_status st;
    qconv_job j = {0};
    if ((st = require_8bit(c, 0, &x)) || (st = require_8bit(c, 3, &w)) ||
        (st = read_qparams(c, 1, 2, x->dtype, &qx)) || (st = read_qparams(c, 4, 5, w->dtype, &qw)) ||
        (st = qlinear_out_type(c, 7, x->dtype, &ydt)) || (st = read_qparams(c, 6, 7, ydt, &qy)) ||
        (st = qconv_setup(c, x, w, &j)) || (st = weight_zp(c, &qw, &j)))
        return st;
    if (qx.count != 1 || qy.count != 1) return OQ_KERR(c, "x and y quantization parameters must be per tensor");
    if (bias && (bias->dtype != OQ_DTYPE_INT32 || bias->rank != 1 || bias->dims[0] != j.p.cout))
        return OQ_KERR(c, "bias must be int32 with %lld entries", (long long)j.p.cout);
    float *mult = oq_kernel_scratch(c, (size_t)j.p.cout * sizeof *mult);
    if (!mult) return c->err->status;
    for (int64_t ch = 0; ch < j.p.cout; ch++) mult[ch] = qx.scale[0] * qw.scale[qw.count > 1 ? ch : 0] / qy.scale[0];
    j.x_zp = qx.zp[0];
    j.w_const = oq_kernel_input_const(c, 3) && (!oq_kernel_input(c, 5) || oq_kernel_input_const(c, 5));
    j.out = (qout){.requant = true, .y_signed = ydt == OQ_DTYPE_INT8, .y_zp = qy.zp[0], .row_mult = mult,
                   .row_step = 1, .bias = bias ? bias->data : NULL};
    return qconv_run(c, &j, ydt);
}

static oq_status k_conv_integer(oq_kernel_ctx *c)
{
    const oq_tensor *x, *w;
    qparams qx, qw;
    oq_status st;
    qconv_job j = {0};
    if ((st = require_8bit(c, 0, &x)) || (st = require_8bit(c, 1, &w)) || (st = int_zero_points(c, 2, x, &qx)) ||
        (st = int_zero_points(c, 3, w, &qw)) || (st = qconv_setup(c, x, w, &j)) || (st = weight_zp(c, &qw, &j)))
        return st;
    if (qx.count != 1) return OQ_KUNSUP(c, "x_zero_point must be a scalar");
    j.x_zp = qx.zp ? qx.zp[0] : 0;
    j.w_const = oq_kernel_input_const(c, 1) && (!oq_kernel_input(c, 3) || oq_kernel_input_const(c, 3));
    j.out = (qout){.requant = false};
    return qconv_run(c, &j, OQ_DTYPE_INT32);
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
    qparams qa, qb, qy = {0};
    oq_status st;
    if ((st = require_8bit(c, 0, &a)) || (st = require_8bit(c, 3, &b)) ||
        (st = read_qparams(c, 1, 2, a->dtype, &qa)) || (st = read_qparams(c, 4, 5, b->dtype, &qb)))
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
        if ((st = qlinear_out_type(c, 8, OQ_DTYPE_UINT8, &ydt)) || (st = read_qparams(c, 7, 8, ydt, &qy)))
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

/* ---- com.microsoft QLinearConcat (ONNX Runtime contrib op) ------------------------------ */

/* Inputs: y_scale, y_zero_point, then (x, x_scale, x_zero_point) per tensor;
 * attribute axis. Each x is brought to y's parameters through a 256-entry
 * table: quantize(x_scale * (v - x_zp)) with QuantizeLinear's rounding (the
 * way ONNX Runtime builds it), or copied when the parameters are equal. */
static oq_status k_qlinear_concat(oq_kernel_ctx *c)
{
    oq_status st;
    qparams qy;
    const oq_tensor *yz = oq_kernel_require(c, 1);
    if (!yz) return c->err->status;
    oq_dtype ydt = yz->dtype;
    qrange r;
    if (!is_8bit(ydt) || !qtype_range(ydt, &r))
        return OQ_KUNSUP(c, "y_zero_point of type %s (8-bit only)", oq_dtype_name(ydt));
    if ((st = read_qparams(c, 0, 1, ydt, &qy))) return st;
    if (qy.count != 1) return OQ_KERR(c, "y_scale must be a scalar");
    if (c->n_inputs < 5 || (c->n_inputs - 2) % 3) return OQ_KERR(c, "inputs must be y_scale, y_zero_point, then (x, scale, zero point) triples");
    int n_x = (c->n_inputs - 2) / 3;
    const oq_tensor *x0;
    if ((st = require_8bit(c, 2, &x0))) return st;
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x0->rank);
    if (axis < 0) return c->err->status;
    int64_t dims[OQ_MAX_RANK], outer = 1, inner = 1;
    memcpy(dims, x0->dims, (size_t)x0->rank * sizeof *dims);
    dims[axis] = 0;
    for (int i = 0; i < axis; i++) outer *= x0->dims[i];
    for (int i = axis + 1; i < x0->rank; i++) inner *= x0->dims[i];
    for (int k = 0; k < n_x; k++) {
        const oq_tensor *x;
        if ((st = require_8bit(c, 2 + 3 * k, &x))) return st;
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
        qparams qx;
        if ((st = read_qparams(c, 3 + 3 * k, 4 + 3 * k, ydt, &qx))) return st;
        if (qx.count != 1) return OQ_KERR(c, "x_scale of input %d must be a scalar", 2 + 3 * k);
        bool copy = qx.scale[0] == qy.scale[0] && qx.zp[0] == qy.zp[0];
        if (!copy) { /* table index: the byte's bit pattern */
            float v[256];
            real_values(v, ydt, qx.scale[0], qx.zp[0]);
            quant_store(table, ydt, 0, v, 256, qy.scale[0], qy.zp[0], r);
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
    qparams q;
    oq_status st = read_qparams(c, ks, kz, dt, &q);
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
    qrange r;
    quant_store_fn *store;
} qbin_job;

/* One broadcast run (an oq_bcast_visit): y = quantize(ta[a] + tb[b]), or of ta[a] * tb[b] (mul). */
static void qbin_run(void *arg, int64_t out_off, const int64_t *in_off, const int64_t *step, int64_t len)
{
    const qbin_job *j = arg;
    float buf[CHUNK];
    const uint8_t *a = j->a + in_off[0], *x = j->x + in_off[1];
    for (int64_t i = 0; i < len; i += CHUNK) {
        int64_t n = len - i < CHUNK ? len - i : CHUNK;
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
    if ((st = require_8bit(c, 0, &in[0])) || (st = require_8bit(c, 3, &in[1]))) return st;
    oq_dtype dt = in[0]->dtype;
    if (in[1]->dtype != dt)
        return OQ_KERR(c, "A is %s but B is %s", oq_dtype_name(dt), oq_dtype_name(in[1]->dtype));
    float sa = 1, sb = 1, *ta = oq_kernel_scratch(c, 512 * sizeof *ta);
    int32_t za = 0, zb = 0;
    qbin_job j = {.mul = mul, .dt = dt, .ta = ta, .tb = ta ? ta + 256 : NULL, .store = quant_store_pick()};
    if (!ta) return c->err->status;
    if ((st = scalar_qparams(c, 1, 2, dt, &sa, &za)) || (st = scalar_qparams(c, 4, 5, dt, &sb, &zb)) ||
        (st = scalar_qparams(c, 6, 7, dt, &j.ys, &j.yz)))
        return st;
    real_values(ta, dt, sa, za);
    real_values(ta + 256, dt, sb, zb);
    qtype_range(dt, &j.r);
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
    if ((st = require_8bit(c, 0, &x))) return st;
    float xs = 1, ys = 1, alpha = oq_node_attr_float(c->node, "alpha", 0.01f), v[256];
    int32_t xz = 0, yz = 0;
    if ((st = scalar_qparams(c, 1, 2, x->dtype, &xs, &xz)) || (st = scalar_qparams(c, 3, 4, x->dtype, &ys, &yz)))
        return st;
    uint8_t *table = oq_kernel_scratch(c, 256);
    oq_tensor *y = table ? oq_kernel_output_raw(c, 0, x->dtype, x->rank, x->dims) : NULL;
    if (!y) return c->err->status;
    qrange r = {0, 255};
    qtype_range(x->dtype, &r);
    real_values(v, x->dtype, xs, xz);
    for (int b = 0; b < 256; b++) v[b] = sigmoid ? 1.0f / (1.0f + expf(-v[b])) : v[b] < 0 ? alpha * v[b] : v[b];
    quant_store(table, x->dtype, 0, v, 256, ys, yz, r);
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
    if ((st = require_8bit(c, 0, &x))) return st;
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
    qrange r = {0, 255};
    qtype_range(x->dtype, &r);
    bool sgn = x->dtype == OQ_DTYPE_INT8;
    /* element (b, k, p) of batch b, channel k, plane position p */
    int64_t ch_step = last ? 1 : plane, pos_step = last ? ch : 1;
    quant_store_fn *store = quant_store_pick();
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

#define Q8 (OQ_DT(UINT8) | OQ_DT(INT8))
#define HALFS (OQ_DT(FLOAT16) | OQ_DT(BFLOAT16))
#define WIDE_Q (OQ_DT(UINT16) | OQ_DT(INT16) | OQ_DT(UINT4) | OQ_DT(INT4))

const oq_op_def oq_ops_quant[] = {
    {"", "QuantizeLinear", 10, OQ_DT(FLOAT) | Q8, k_quantize_linear},
    {"", "QuantizeLinear", 19, OQ_DT(FLOAT) | HALFS | Q8, k_quantize_linear},
    {"", "QuantizeLinear", 21, OQ_DT(FLOAT) | HALFS | Q8 | WIDE_Q, k_quantize_linear},
    {"", "DequantizeLinear", 10, OQ_DT(FLOAT) | Q8 | OQ_DT(INT32), k_dequantize_linear},
    {"", "DequantizeLinear", 19, OQ_DT(FLOAT) | HALFS | Q8 | OQ_DT(INT32), k_dequantize_linear},
    {"", "DequantizeLinear", 21, OQ_DT(FLOAT) | HALFS | Q8 | OQ_DT(INT32) | WIDE_Q, k_dequantize_linear},
    {"", "DynamicQuantizeLinear", 11, OQ_DT(FLOAT) | OQ_DT(UINT8), k_dynamic_quantize_linear},
    {"", "QLinearMatMul", 10, OQ_DT(FLOAT) | Q8, k_qlinear_matmul},
    {"", "MatMulInteger", 10, Q8 | OQ_DT(INT32), k_matmul_integer},
    {"", "QLinearConv", 10, OQ_DT(FLOAT) | Q8 | OQ_DT(INT32), k_qlinear_conv},
    {"", "ConvInteger", 10, Q8 | OQ_DT(INT32), k_conv_integer},
    {"com.microsoft", "QGemm", 1, OQ_DT(FLOAT) | Q8 | OQ_DT(INT32), k_qgemm},
    {"com.microsoft", "QLinearConcat", 1, OQ_DT(FLOAT) | Q8, k_qlinear_concat},
    {"com.microsoft", "QLinearAdd", 1, OQ_DT(FLOAT) | Q8, k_qlinear_add},
    {"com.microsoft", "QLinearMul", 1, OQ_DT(FLOAT) | Q8, k_qlinear_mul},
    {"com.microsoft", "QLinearSigmoid", 1, OQ_DT(FLOAT) | Q8, k_qlinear_sigmoid},
    {"com.microsoft", "QLinearLeakyRelu", 1, OQ_DT(FLOAT) | Q8, k_qlinear_leaky_relu},
    {"com.microsoft", "QLinearGlobalAveragePool", 1, OQ_DT(FLOAT) | Q8, k_qlinear_global_average_pool},
};
const int oq_ops_quant_count = (int)(sizeof oq_ops_quant / sizeof oq_ops_quant[0]);
