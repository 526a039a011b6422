/* qops.c: what the quantized kernels share (see qops.h): quantization
 * parameters, the quantize loop compiled per instruction-set level, work
 * items with private scratch, and the requantized output. */
#include "exec/qops.h"

#include <string.h>

#include "cpu_dispatch.h"
#include "exec/qgemm.h"

/* ---- element types ------------------------------------------------------------------- */

bool oq_qtype_range(oq_dtype dt, oq_qrange *r)
{
    switch (dt) {
    case OQ_DTYPE_UINT8: *r = (oq_qrange){0, 255}; return true;
    case OQ_DTYPE_INT8: *r = (oq_qrange){-128, 127}; return true;
    case OQ_DTYPE_UINT16: *r = (oq_qrange){0, 65535}; return true;
    case OQ_DTYPE_INT16: *r = (oq_qrange){-32768, 32767}; return true;
    case OQ_DTYPE_UINT4: *r = (oq_qrange){0, 15}; return true;
    case OQ_DTYPE_INT4: *r = (oq_qrange){-8, 7}; return true;
    default: return false;
    }
}

/* ---- quantization parameters ----------------------------------------------------------- */

/* Reads scale input ks and optional zero-point input kz into scratch arrays.
 * The zero point must have the data type `zdt` (UNDEFINED: any quantized
 * type) and as many elements as the scale, or one when shared_zp. Scales
 * must be float types. */
static oq_status read_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype zdt, bool shared_zp, oq_qparams *q)
{
    const oq_tensor *s = oq_kernel_require(c, ks), *z = oq_kernel_input(c, kz);
    if (!s) return c->err->status;
    if (!oq_is_scale_type(s->dtype))
        return OQ_KUNSUP(c, "input %d (scale) has element type %s", ks, oq_dtype_name(s->dtype));
    int64_t n = oq_tensor_numel(s);
    if (n < 1) return OQ_KERR(c, "input %d (scale) is empty", ks);
    bool one_zp = z && shared_zp && oq_tensor_numel(z) == 1;
    if (z && oq_tensor_numel(z) != n && !one_zp)
        return OQ_KERR(c, "zero point (input %d) has %lld elements, its scale %lld", kz,
                       (long long)oq_tensor_numel(z), (long long)n);
    if (z && zdt != OQ_DTYPE_UNDEFINED && z->dtype != zdt)
        return OQ_KERR(c, "zero point (input %d) is %s, its data is %s", kz, oq_dtype_name(z->dtype),
                       oq_dtype_name(zdt));
    float *sc = oq_kernel_scratch(c, (size_t)n * sizeof *sc);
    int32_t *zp = oq_kernel_scratch(c, (size_t)n * sizeof *zp);
    if (!sc || !zp) return c->err->status;
    /* float scales and 8-bit zero points, the common case, without a
     * conversion per element (per-channel weights: every run of every node) */
    if (s->dtype == OQ_DTYPE_FLOAT)
        memcpy(sc, s->data, (size_t)n * sizeof *sc);
    else
        for (int64_t i = 0; i < n; i++) sc[i] = (float)oq_tensor_get_f64(s, i);
    if (z && !one_zp && z->dtype == OQ_DTYPE_INT8)
        for (int64_t i = 0; i < n; i++) zp[i] = ((const int8_t *)z->data)[i];
    else if (z && !one_zp && z->dtype == OQ_DTYPE_UINT8)
        for (int64_t i = 0; i < n; i++) zp[i] = ((const uint8_t *)z->data)[i];
    else
        for (int64_t i = 0; i < n; i++) zp[i] = z ? (int32_t)oq_tensor_get_i64(z, one_zp ? 0 : i) : 0;
    *q = (oq_qparams){n, sc, zp};
    return OQ_OK;
}

oq_status oq_read_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype zdt, oq_qparams *q)
{
    return read_qparams(c, ks, kz, zdt, false, q);
}

oq_status oq_read_weight_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype zdt, oq_qparams *q)
{
    return read_qparams(c, ks, kz, zdt, true, q);
}

oq_status oq_require_8bit(oq_kernel_ctx *c, int k, const oq_tensor **t)
{
    *t = oq_kernel_require(c, k);
    if (!*t) return c->err->status;
    if (!oq_is_8bit((*t)->dtype))
        return OQ_KUNSUP(c, "input %d has element type %s; only uint8 and int8 are supported", k,
                         oq_dtype_name((*t)->dtype));
    return OQ_OK;
}

/* Output type of a QLinear op: its zero point's type (input k), else the input's. */
oq_status oq_qlinear_out_type(oq_kernel_ctx *c, int k, oq_dtype def, oq_dtype *ydt)
{
    const oq_tensor *z = oq_kernel_input(c, k);
    *ydt = z ? z->dtype : def;
    if (!oq_is_8bit(*ydt)) return OQ_KUNSUP(c, "output element type %s is not supported", oq_dtype_name(*ydt));
    return OQ_OK;
}

/* Zero-point input k of data t for the *Integer ops: optional, t's type. */
oq_status oq_int_zero_points(oq_kernel_ctx *c, int k, const oq_tensor *t, oq_qparams *q)
{
    const oq_tensor *z = oq_kernel_input(c, k);
    *q = (oq_qparams){1, NULL, NULL};
    if (!z) return OQ_OK;
    if (z->dtype != t->dtype)
        return OQ_KERR(c, "zero point (input %d) is %s, its data is %s", k, oq_dtype_name(z->dtype),
                       oq_dtype_name(t->dtype));
    int64_t n = oq_tensor_numel(z);
    if (n < 1) return OQ_KERR(c, "zero point (input %d) is empty", k);
    int32_t *zp = oq_kernel_scratch(c, (size_t)n * sizeof *zp);
    if (!zp) return c->err->status;
    for (int64_t i = 0; i < n; i++) zp[i] = (int32_t)oq_tensor_get_i64(z, i);
    *q = (oq_qparams){n, NULL, zp};
    return OQ_OK;
}

/* ---- quantizing ---------------------------------------------------------------------- */

/* Quantizes n floats into y (type dt) from element off: saturate(rint(x / s) + zp),
 * computed as zp + rint(x / s clamped to the range less zp) (integer bounds). */
OQ_CLONED(quant_store, (void *y, oq_dtype dt, int64_t off, const float *x, int64_t n, float s, int32_t zp, oq_qrange r),
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
        for (int64_t j = 0; j < n; j++) oq_nibble_set(y, off + j, (int32_t)oq_clamp_rint(x[j] / s, lo, hi) + zp);
        break;
    }
#undef QSTORE
}

oq_quant_store_fn *oq_quant_store_kernel(void) { return quant_store_pick(); }

/* t[b] = s * (v - z) for each byte pattern b of type dt (v its value). */
void oq_real_values(float t[256], oq_dtype dt, float s, int32_t z)
{
    for (int b = 0; b < 256; b++) t[b] = s * (float)((dt == OQ_DTYPE_INT8 ? (int32_t)(int8_t)b : b) - z);
}

/* ---- bytes to floats through a table ------------------------------------------------- */

static void byte_floats(float *y, const uint8_t *x, const float *t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = t[x[i]];
}

#if OQ_X86_KERNELS
#include <immintrin.h>

/* byte_floats 16 elements at a time: the table as eight pairs of 16-float
 * registers; each pair's two-source permute picks by the index's low 5 bits,
 * bits 5, 6 and 7 then choose among the eight results (three levels of
 * blends). Faster than a gather on the processors measured. */
OQ_TARGET_AVX512 static void byte_floats_avx512(float *y, const uint8_t *x, const float *t, int64_t n)
{
    __m512 tab[16];
    for (int k = 0; k < 16; k++) tab[k] = _mm512_loadu_ps(t + 16 * k);
    const __m512i b5 = _mm512_set1_epi32(32), b6 = _mm512_set1_epi32(64), b7 = _mm512_set1_epi32(128);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 live = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(live, x + i));
        __m512 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm512_permutex2var_ps(tab[2 * k], idx, tab[2 * k + 1]);
        __mmask16 m5 = _mm512_test_epi32_mask(idx, b5), m6 = _mm512_test_epi32_mask(idx, b6),
                  m7 = _mm512_test_epi32_mask(idx, b7);
        for (int k = 0; k < 4; k++) r[k] = _mm512_mask_blend_ps(m5, r[2 * k], r[2 * k + 1]);
        for (int k = 0; k < 2; k++) r[k] = _mm512_mask_blend_ps(m6, r[2 * k], r[2 * k + 1]);
        _mm512_mask_storeu_ps(y + i, live, _mm512_mask_blend_ps(m7, r[0], r[1]));
    }
}
#endif

static oq_byte_floats_fn *const byte_floats_variants[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = byte_floats,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX512] = byte_floats_avx512,
#endif
};

oq_byte_floats_fn *oq_byte_floats_kernel(void)
{
    return byte_floats_variants[oq_isa_pick(OQ_ISA_HAVE(byte_floats_variants, ))];
}

const char *oq_byte_floats_variant(oq_isa isa)
{
    return isa >= 0 && isa < OQ_ISA_COUNT && byte_floats_variants[isa] ? oq_isa_name(isa) : NULL;
}

/* ---- parallel items with per-part workspace ------------------------------------------- */

typedef struct parts_job {
    int64_t n_items;
    int64_t parts;
    uint8_t *ws;
    size_t ws_bytes; /* per part, a multiple of 64 */
    oq_item_fn item;
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
oq_status oq_run_items(oq_kernel_ctx *c, int64_t n_items, size_t ws_bytes, oq_item_fn item, void *job)
{
    if (n_items <= 0) return OQ_OK;
    int64_t parts = oq_kernel_threads(c);
    if (parts < 1) parts = 1;
    if (parts > n_items) parts = n_items;
    ws_bytes = (ws_bytes + 63) / 64 * 64;
    uint8_t *ws = oq_kernel_scratch_raw(c, (size_t)parts * ws_bytes + 64); /* items write before they read */
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

/* Writes rows [r0, r0+m) x columns [c0, c0+n) of the 1-byte output y (row
 * stride ldy) from acc (m, n; row stride ld_acc). mbuf has n floats of
 * scratch for per-column multipliers. */
void oq_qout_write(const oq_qout *o, uint8_t *y, int64_t ldy, int64_t r0, int64_t c0, const int32_t *acc,
                   int64_t ld_acc, int64_t m, int64_t n, float *mbuf)
{
    oq_requant_row_fn *requant_row = o->col_mult ? NULL : oq_requant_row_kernel();
    oq_requant_cols_fn *requant_cols = o->col_mult ? oq_requant_cols_kernel() : NULL;
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
