/* ops_qdq.c: QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear:
 * per tensor or per axis, 8-, 16- and 4-bit integers, float, float16 and
 * bfloat16 scales; the quantize and dequantize loops are compiled per
 * instruction-set level and give the same bytes on each. */
#include <math.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "exec/fuse.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qops.h"

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

/* ---- Quantize / DequantizeLinear ----------------------------------------------------- */

/* Walk of x viewed as (outer, ch, inner): element i uses parameter
 * (i / inner) % ch. */
typedef struct qdq_job {
    const void *x;
    oq_dtype xdt;
    void *y;
    oq_dtype ydt;
    int64_t ch, inner;
    oq_qparams q;
    oq_qrange r;   /* QuantizeLinear: output range */
} qdq_job;

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
        for (int64_t j = 0; j < n; j++) dst[j] = (float)(oq_nibble_get(x, off + j, dt == OQ_DTYPE_INT4) - zp);
        break;
    }
#undef QLOAD
}

/* Elements [begin, end) in runs that share one parameter, in chunks of OQ_QCHUNK. */
static void qdq_range(void *arg, int64_t begin, int64_t end, bool quantize)
{
    const qdq_job *j = arg;
    oq_quant_store_fn *store = oq_quant_store_kernel();
    dequant_load_fn *load = dequant_load_pick();
    float buf[OQ_QCHUNK];
    for (int64_t i = begin; i < end;) {
        int64_t ci = (i / j->inner) % j->ch;
        int64_t run_end = (i / j->inner + 1) * j->inner;
        if (run_end > end) run_end = end;
        float s = j->q.scale[ci];
        int32_t zp = j->q.zp[ci];
        for (; i < run_end; i += OQ_QCHUNK) {
            int64_t n = run_end - i < OQ_QCHUNK ? run_end - i : OQ_QCHUNK;
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
    if ((st = oq_read_qparams(c, 1, 2, zdt, &j->q))) return st;
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
    if (x->dtype != OQ_DTYPE_FLOAT && !(halfs && oq_is_scale_type(x->dtype)))
        return OQ_KUNSUP(c, "input has element type %s", oq_dtype_name(x->dtype));
    if (s->dtype != x->dtype)
        return OQ_KERR(c, "scale is %s but the input is %s", oq_dtype_name(s->dtype), oq_dtype_name(x->dtype));
    oq_dtype ydt = OQ_DTYPE_UINT8;
    if (z)
        ydt = z->dtype;
    else if (c->opset >= 21)
        ydt = (oq_dtype)oq_node_attr_int(c->node, "output_dtype", OQ_DTYPE_UINT8);
    qdq_job j = {.x = x->data, .xdt = x->dtype, .ydt = ydt};
    bool wide = ydt == OQ_DTYPE_UINT16 || ydt == OQ_DTYPE_INT16 || oq_is_4bit(ydt);
    if (!oq_qtype_range(ydt, &j.r) || (wide && c->opset < 21))
        return OQ_KUNSUP(c, "output element type %s is not supported at opset %lld", oq_dtype_name(ydt),
                         (long long)c->opset);
    oq_status st;
    if ((st = qdq_setup(c, x, ydt, &j))) return st;
    /* every element is written; 4-bit bytes are merged nibble by nibble, so they start at 0 */
    oq_tensor *y = oq_is_4bit(ydt) ? oq_kernel_output(c, 0, ydt, x->rank, x->dims)
                                : oq_kernel_output_raw(c, 0, ydt, x->rank, x->dims);
    if (!y) return c->err->status;
    j.y = y->data;
    int64_t n = oq_tensor_numel(x);
    if (oq_is_4bit(ydt))
        quant_range(&j, 0, n); /* two elements share a byte: stay on one thread */
    else
        oq_par_run(c, n, 4, quant_range, &j);
    return OQ_OK;
}

/* ---- DequantizeLinear with an epilogue: one table lookup per element ------------------------ */

/* Element i of the 8-bit x indexes a table of 256 entries. */
typedef struct byte_map_job {
    const uint8_t *x;
    void *y;
    const void *table; /* float[256] or uint8_t[256] */
} byte_map_job;

static void byte_map_f32(void *arg, int64_t begin, int64_t end)
{
    const byte_map_job *j = arg;
    oq_byte_floats_kernel()((float *)j->y + begin, j->x + begin, j->table, end - begin);
}

/* y[i] = t[x[i]] for i < n: a table of 256 bytes. */
typedef void byte_lookup_fn(uint8_t *y, const uint8_t *x, const uint8_t *t, int64_t n);

static void byte_lookup(uint8_t *y, const uint8_t *x, const uint8_t *t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = t[x[i]];
}

#if OQ_X86_KERNELS
#include <immintrin.h>

/* byte_lookup 64 bytes at a time: the table as 16 rows of 16 bytes, each
 * in every 128-bit lane; an element's high nibble picks the row (a mask per
 * row), its low nibble the byte in it (vpshufb). */
OQ_TARGET_AVX512 static void byte_lookup_avx512(uint8_t *y, const uint8_t *x, const uint8_t *t, int64_t n)
{
    __m512i rows[16];
    for (int h = 0; h < 16; h++) rows[h] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(t + 16 * h)));
    const __m512i nib = _mm512_set1_epi8(15), one = _mm512_set1_epi8(1);
    for (int64_t i = 0; i < n; i += 64) {
        __mmask64 live = n - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - i)) - 1;
        __m512i v = _mm512_maskz_loadu_epi8(live, x + i);
        __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        __m512i r = _mm512_setzero_si512(), h = _mm512_setzero_si512();
        for (int k = 0; k < 16; k++, h = _mm512_add_epi8(h, one))
            r = _mm512_mask_shuffle_epi8(r, _mm512_cmpeq_epi8_mask(hi, h), rows[k], lo);
        _mm512_mask_storeu_epi8(y + i, live, r);
    }
}
#endif

static byte_lookup_fn *const byte_lookup_variants[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = byte_lookup,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX512] = byte_lookup_avx512,
#endif
};

static void byte_map_u8(void *arg, int64_t begin, int64_t end)
{
    const byte_map_job *j = arg;
    byte_lookup_fn *f = byte_lookup_variants[oq_isa_pick(OQ_ISA_HAVE(byte_lookup_variants, ))];
    f((uint8_t *)j->y + begin, j->x + begin, j->table, end - begin);
}

/* The 8-bit output table of QuantizeLinear node qn (one float scale, one
 * 8-bit zero point; the planner checked both) over the 256 floats v, with
 * the quantize loop the node's own kernel uses; *ydt gets its type. */
static void quantize_table(uint8_t t[256], oq_dtype *ydt, const oq_node *qn, const float v[256])
{
    const oq_tensor *s = qn->inputs[1]->constant, *z = qn->inputs[2]->constant;
    oq_qrange r;
    *ydt = z->dtype;
    oq_qtype_range(*ydt, &r);
    int32_t zp = *ydt == OQ_DTYPE_INT8 ? *(const int8_t *)z->data : *(const uint8_t *)z->data;
    oq_quant_store_kernel()(t, *ydt, 0, v, 256, *(const float *)s->data, zp, r);
}

/* DequantizeLinear of the 8-bit x per tensor (params in j) followed by the
 * chain c->epilogue and, when c->quantize is set, by that QuantizeLinear.
 * The result is a function of each element's byte, so the 256 byte values
 * go through the same float steps as the separate kernels' (oq_real_values
 * is the dequantize loop's s * (x - zp)) into a table, and each element is
 * one lookup: the bits of the node-by-node run. The output gets leading
 * ones when the chain's constants have a higher rank than x. */
static oq_status dequantize_mapped(oq_kernel_ctx *c, const oq_tensor *x, const qdq_job *j)
{
    const oq_fusion *ep = c->epilogue;
    if (!oq_is_8bit(x->dtype) || j->q.count != 1 || j->ydt != OQ_DTYPE_FLOAT)
        return OQ_KERR(c, "an epilogue needs 8-bit data, one float scale and one zero point");
    float v[256];
    uint8_t b[256];
    oq_real_values(v, x->dtype, j->q.scale[0], j->q.zp[0]);
    oq_fusion_run_inplace(ep, v, 256);
    oq_dtype ydt = OQ_DTYPE_FLOAT;
    if (c->quantize) quantize_table(b, &ydt, c->quantize, v);
    int64_t dims[OQ_MAX_RANK];
    int lead = ep->const_rank > x->rank ? ep->const_rank - x->rank : 0;
    for (int d = 0; d < lead; d++) dims[d] = 1;
    memcpy(dims + lead, x->dims, (size_t)x->rank * sizeof *dims);
    oq_tensor *y = oq_kernel_output_raw(c, 0, ydt, x->rank + lead, dims); /* every element is written */
    if (!y) return c->err->status;
    byte_map_job m = {x->data, y->data, c->quantize ? (const void *)b : (const void *)v};
    oq_par_run(c, oq_tensor_numel(x), c->quantize ? 2 : 5, c->quantize ? byte_map_u8 : byte_map_f32, &m);
    return OQ_OK;
}

static oq_status k_dequantize_linear(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *s = oq_kernel_require(c, 1), *z = oq_kernel_input(c, 2);
    if (!x || !s) return c->err->status;
    oq_qrange r;
    bool wide = x->dtype == OQ_DTYPE_UINT16 || x->dtype == OQ_DTYPE_INT16 || oq_is_4bit(x->dtype);
    if ((x->dtype != OQ_DTYPE_INT32 && !oq_qtype_range(x->dtype, &r)) || (wide && c->opset < 21))
        return OQ_KUNSUP(c, "input element type %s is not supported at opset %lld", oq_dtype_name(x->dtype),
                         (long long)c->opset);
    if (!oq_is_scale_type(s->dtype) || (s->dtype != OQ_DTYPE_FLOAT && c->opset < 19))
        return OQ_KUNSUP(c, "scale element type %s is not supported", oq_dtype_name(s->dtype));
    qdq_job j = {.x = x->data, .xdt = x->dtype, .ydt = s->dtype};
    oq_status st;
    if ((st = qdq_setup(c, x, x->dtype, &j))) return st;
    if (x->dtype == OQ_DTYPE_INT32 && z) {
        for (int64_t i = 0; i < j.q.count; i++)
            if (j.q.zp[i] != 0) return OQ_KERR(c, "an int32 input needs a zero point of 0");
    }
    if (c->epilogue) return dequantize_mapped(c, x, &j);
    oq_tensor *y = oq_kernel_output_raw(c, 0, s->dtype, x->rank, x->dims); /* every element is written */
    if (!y) return c->err->status;
    j.y = y->data;
    oq_par_run(c, oq_tensor_numel(x), 4, dequant_range, &j);
    return OQ_OK;
}

/* ---- Mul by a gate per plane, then QuantizeLinear: y = quantize(x * gate) ------------------ */

bool oq_gate_fits(const oq_tensor *x, const oq_tensor *gate)
{
    if (x->dtype != OQ_DTYPE_FLOAT || gate->dtype != OQ_DTYPE_FLOAT || x->rank < 2 || gate->rank != x->rank ||
        gate->dims[0] != x->dims[0] || gate->dims[1] != x->dims[1])
        return false;
    for (int d = 2; d < x->rank; d++)
        if (gate->dims[d] != 1) return false;
    return true;
}

/* Planes (n, c) of x, each of `size` floats, times gate[plane], quantized. */
typedef struct gate_job {
    const float *x;
    void *y;
    const float *gate; /* one per plane */
    int64_t size;
    oq_dtype ydt;      /* the QuantizeLinear's output type, scale and zero point */
    float s;
    int32_t zp;
    oq_qrange r;
} gate_job;

/* d[i] = x[i] * g for i < n: the Mul kernel's float product. */
OQ_CLONED(scale_floats, (float *restrict d, const float *restrict x, float g, int64_t n), (d, x, g, n))
{
    for (int64_t i = 0; i < n; i++) d[i] = x[i] * g;
}

static void gate_planes(void *arg, int64_t begin, int64_t end)
{
    const gate_job *j = arg;
    scale_floats_fn *scale = scale_floats_pick();
    oq_quant_store_fn *store = oq_quant_store_kernel();
    float buf[OQ_QCHUNK] __attribute__((aligned(64)));
    for (int64_t pl = begin; pl < end; pl++)
        for (int64_t i = pl * j->size, e = i + j->size; i < e; i += OQ_QCHUNK) {
            int64_t n = e - i < OQ_QCHUNK ? e - i : OQ_QCHUNK;
            scale(buf, j->x + i, j->gate[pl], n);
            store(j->y, j->ydt, i, buf, n, j->s, j->zp, j->r);
        }
}

oq_status oq_gate_quantize(oq_kernel_ctx *c)
{
    const oq_tensor *a = oq_kernel_require(c, 0), *b = oq_kernel_require(c, 1);
    if (!a || !b) return c->err->status;
    const oq_tensor *x = oq_gate_fits(a, b) ? a : b, *gate = x == a ? b : a;
    const oq_node *qn = c->quantize;
    if (!oq_gate_fits(x, gate))
        return OQ_KERR(c, "a product quantized in one pass needs one gate value per plane of the other input");
    const oq_tensor *qz = qn->inputs[2]->constant;
    gate_job j = {.x = x->data, .gate = gate->data, .size = oq_dims_prod(x->dims, 2, x->rank), .ydt = qz->dtype,
                  .s = *(const float *)qn->inputs[1]->constant->data};
    j.zp = j.ydt == OQ_DTYPE_INT8 ? *(const int8_t *)qz->data : *(const uint8_t *)qz->data;
    oq_qtype_range(j.ydt, &j.r);
    oq_tensor *y = oq_kernel_output_raw(c, 0, j.ydt, x->rank, x->dims); /* every element is written */
    if (!y) return c->err->status;
    j.y = y->data;
    oq_par_run(c, x->dims[0] * x->dims[1], j.size, gate_planes, &j);
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

/* ---- the table -------------------------------------------------------------------------- */

#define HALFS (OQ_DT(FLOAT16) | OQ_DT(BFLOAT16))
#define WIDE_Q (OQ_DT(UINT16) | OQ_DT(INT16) | OQ_DT(UINT4) | OQ_DT(INT4))

const oq_op_def oq_ops_qdq[] = {
    {"", "QuantizeLinear", 10, OQ_DT(FLOAT) | OQ_DT_Q8, k_quantize_linear},
    {"", "QuantizeLinear", 19, OQ_DT(FLOAT) | HALFS | OQ_DT_Q8, k_quantize_linear},
    {"", "QuantizeLinear", 21, OQ_DT(FLOAT) | HALFS | OQ_DT_Q8 | WIDE_Q, k_quantize_linear},
    {"", "DequantizeLinear", 10, OQ_DT(FLOAT) | OQ_DT_Q8 | OQ_DT(INT32), k_dequantize_linear},
    {"", "DequantizeLinear", 19, OQ_DT(FLOAT) | HALFS | OQ_DT_Q8 | OQ_DT(INT32), k_dequantize_linear},
    {"", "DequantizeLinear", 21, OQ_DT(FLOAT) | HALFS | OQ_DT_Q8 | OQ_DT(INT32) | WIDE_Q, k_dequantize_linear},
    {"", "DynamicQuantizeLinear", 11, OQ_DT(FLOAT) | OQ_DT(UINT8), k_dynamic_quantize_linear},
};
const int oq_ops_qdq_count = (int)(sizeof oq_ops_qdq / sizeof oq_ops_qdq[0]);
