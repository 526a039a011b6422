/* qops.h: what the quantized kernels share: the ops of ops_qdq.c,
 * ops_qmatmul.c, ops_qconv.c and ops_qcontrib.c (implemented in qops.c).
 * Internal to src/exec.
 *
 * Products run on the 8-bit GEMM in qgemm.c (zero points are folded into its
 * packing) and QLinear outputs through oq_requant_* (float multiplier, ties to
 * even, saturate), the way ONNX Runtime computes them. Integer accumulation
 * is exact, so results never depend on the thread count. */
#ifndef ONNXQ_EXEC_QOPS_H
#define ONNXQ_EXEC_QOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "exec/kernel.h"
#include "onnxq/oq_cpu.h"

/* Floats a quantize or dequantize loop converts per call. */
#define OQ_QCHUNK 256

/* The 8-bit integer types, for the op tables' dtype masks. */
#define OQ_DT_Q8 (OQ_DT(UINT8) | OQ_DT(INT8))

/* ---- element types ------------------------------------------------------------------- */

/* Range of the integer types quantization produces or reads. */
typedef struct oq_qrange {
    int32_t lo, hi;
} oq_qrange;

/* The range of integer type dt into *r; false when dt is not one quantization uses. */
bool oq_qtype_range(oq_dtype dt, oq_qrange *r);

static inline bool oq_is_8bit(oq_dtype dt) { return dt == OQ_DTYPE_UINT8 || dt == OQ_DTYPE_INT8; }
static inline bool oq_is_4bit(oq_dtype dt) { return dt == OQ_DTYPE_UINT4 || dt == OQ_DTYPE_INT4; }
static inline bool oq_is_scale_type(oq_dtype dt)
{
    return dt == OQ_DTYPE_FLOAT || dt == OQ_DTYPE_FLOAT16 || dt == OQ_DTYPE_BFLOAT16;
}

/* Element i of a packed 4-bit tensor (low nibble first), sign-extended for int4. */
static inline int32_t oq_nibble_get(const uint8_t *d, int64_t i, bool sgn)
{
    int32_t v = (d[i >> 1] >> ((i & 1) * 4)) & 15;
    return sgn ? (v ^ 8) - 8 : v;
}

static inline void oq_nibble_set(uint8_t *d, int64_t i, int32_t v)
{
    int sh = (int)(i & 1) * 4;
    d[i >> 1] = (uint8_t)((d[i >> 1] & ~(15 << sh)) | ((v & 15) << sh));
}

/* ---- quantization parameters ----------------------------------------------------------- */

/* Scale and zero point of one tensor: one value, or one per index of a dimension. */
typedef struct oq_qparams {
    int64_t count;      /* 1 (per tensor) or the size of the quantized dimension */
    const float *scale; /* (count) */
    const int32_t *zp;  /* (count) */
} oq_qparams;

/* Name of the depthwise QLinearConv row kernels of level isa ("avx2-rows",
 * ...), or NULL when it has none (the next level down's are used). */
const char *oq_qdw_variant(oq_isa isa);

/* Reads scale input ks and optional zero-point input kz into kernel scratch.
 * The zero point must have the data type `zdt` (UNDEFINED: any quantized
 * type) and as many elements as the scale. Scales must be float types. */
oq_status oq_read_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype zdt, oq_qparams *q);
/* The same for the weight operand of QLinearConv and QLinearMatMul, whose
 * zero point may also be one value for all of per-channel scales (ONNX lets
 * either be a scalar or 1-D; ONNX Runtime takes the mix). */
oq_status oq_read_weight_qparams(oq_kernel_ctx *c, int ks, int kz, oq_dtype zdt, oq_qparams *q);

/* Input k, which must be present and uint8 or int8, into *t. */
oq_status oq_require_8bit(oq_kernel_ctx *c, int k, const oq_tensor **t);

/* Output type of a QLinear op: its zero point's type (input k), else def. */
oq_status oq_qlinear_out_type(oq_kernel_ctx *c, int k, oq_dtype def, oq_dtype *ydt);

/* Zero-point input k of data t for the *Integer ops: optional, t's type;
 * scale stays NULL. */
oq_status oq_int_zero_points(oq_kernel_ctx *c, int k, const oq_tensor *t, oq_qparams *q);

/* ---- quantizing ---------------------------------------------------------------------- */

/* Quantizes n floats of x into y (type dt) from element off:
 * saturate(rint(x / s) + zp) into range r; NaN saturates low. */
typedef void oq_quant_store_fn(void *y, oq_dtype dt, int64_t off, const float *x, int64_t n, float s, int32_t zp,
                               oq_qrange r);
/* The version for the enabled instruction sets (all give the same bytes);
 * callers take it once, before their loop. */
oq_quant_store_fn *oq_quant_store_kernel(void);

/* t[b] = s * (v - z) for each byte pattern b of type dt (v its value). */
void oq_real_values(float t[256], oq_dtype dt, float s, int32_t z);

/* y[i] = t[x[i]] for i < n: bytes to floats through a table of 256 (the
 * values of an 8-bit tensor after its DequantizeLinear and what follows it
 * element by element). */
typedef void oq_byte_floats_fn(float *y, const uint8_t *x, const float *t, int64_t n);
/* The version for the enabled instruction sets (all give the same floats);
 * callers take it once, before their loop. */
oq_byte_floats_fn *oq_byte_floats_kernel(void);
/* Name of oq_byte_floats_kernel's version at level isa, or NULL when it has
 * none (the next level down's is used). */
const char *oq_byte_floats_variant(oq_isa isa);

/* ---- a product by a gate per plane, quantized (ops_qdq.c) ------------------------------ */

/* True when x and gate are float and gate holds one value per (n, c) plane
 * of x: x's rank, x's first two dimensions, ones after. */
bool oq_gate_fits(const oq_tensor *x, const oq_tensor *gate);
/* The kernel of a Mul that the executor runs with the QuantizeLinear of its
 * product (c->quantize; per tensor, 8-bit, constant parameters), as in a
 * squeeze-excite block: one input must be a gate of the other
 * (oq_gate_fits, in either order). Each output byte is quantize(x * gate),
 * the bytes of the two separate kernels, without the float product. */
oq_status oq_gate_quantize(oq_kernel_ctx *c);

/* ---- parallel items with per-part workspace ------------------------------------------- */

typedef void (*oq_item_fn)(void *job, int64_t i, uint8_t *ws);

/* Runs item(job, i, ws_p) for i in [0, n_items) in contiguous parts across
 * the session's threads; each part gets ws_bytes of private 64-byte aligned
 * scratch. */
oq_status oq_run_items(oq_kernel_ctx *c, int64_t n_items, size_t ws_bytes, oq_item_fn item, void *job);

/* ---- requantized output ------------------------------------------------------------------ */

/* How int32 accumulators become the output: copied (the *Integer ops) or
 * requantized (the QLinear ops). Row r's multiplier is row_mult[r * row_step]
 * or, with per-column scales, row_mult[r * row_step] * col_mult[j] /
 * row_div[r * row_step]: ONNX Runtime's order a_scale * b_scale / y_scale. */
typedef struct oq_qout {
    bool requant;
    bool y_signed;
    int32_t y_zp;
    const float *row_mult; /* (rows or 1) */
    int64_t row_step;      /* 1 when row_mult (and row_div) are per row, else 0 */
    const float *col_mult; /* NULL, or (cols) */
    const float *row_div;  /* with col_mult: (rows or 1) */
    const int32_t *bias;   /* NULL, or (rows) added before scaling */
} oq_qout;

/* Writes rows [r0, r0+m) x columns [c0, c0+n) of the 1-byte output y (row
 * stride ldy) from acc (m, n; row stride ld_acc). mbuf has n floats of
 * scratch for per-column multipliers. */
void oq_qout_write(const oq_qout *o, uint8_t *y, int64_t ldy, int64_t r0, int64_t c0, const int32_t *acc,
                   int64_t ld_acc, int64_t m, int64_t n, float *mbuf);

#endif
