/* oq_quant.h: quantization parameters: scale/zero-point from ranges, and
 * weight and bias quantization (per tensor or per channel). The graph rewrite
 * builds on these. */
#ifndef ONNXQ_OQ_QUANT_H
#define ONNXQ_OQ_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_qparams {
    float scale;        /* > 0 */
    int32_t zero_point; /* in [qmin, qmax] */
} oq_qparams;

/* Affine parameters mapping [lo, hi] (which must contain 0) onto qmin..qmax so
 * that 0.0 is exactly representable. symmetric: zero point at the middle of
 * the integer range (0 for int8, 128 for uint8) and scale from max(|lo|,|hi|).
 * A zero-width range gets scale 1 (every value quantizes to the zero point). */
oq_qparams oq_qparams_from_range(double lo, double hi, int qmin, int qmax, bool symmetric);

/* round-half-to-even(x / scale) + zero_point, saturated to [qmin, qmax], as
 * ONNX's QuantizeLinear defines it. */
int32_t oq_quantize_value(float x, oq_qparams p, int qmin, int qmax);

typedef struct oq_weight_quant {
    oq_tensor q;        /* int8 weights, same shape as the float ones */
    oq_tensor scales;   /* float, 1-D [channels] (or a scalar when per tensor) */
    oq_tensor zeros;    /* int8 zero points, shaped like scales (all 0: symmetric) */
    double sqnr_db;     /* 10*log10(sum w^2 / sum (w - dequant(q))^2); +inf when exact */
} oq_weight_quant;

/* Quantizes a float weight tensor to int8, symmetric in [-127, 127]: per
 * channel along `axis` when per_channel (channels with all-zero weights get
 * scale 1), else one scale. Fills *out (owned; release with
 * oq_weight_quant_release). */
oq_status oq_quantize_weight(oq_weight_quant *out, const oq_tensor *w, int axis, bool per_channel, oq_err *err);
void oq_weight_quant_release(oq_weight_quant *wq);

/* Quantizes a float bias [channels] to int32 with scale input_scale *
 * weight_scales[c] (weight_scales has 1 or `channels` entries) and zero point
 * 0. Fails with OQ_EINVAL when a value would not fit in int32. */
oq_status oq_quantize_bias(oq_tensor *out, const oq_tensor *bias, float input_scale, const oq_tensor *weight_scales,
                           oq_err *err);

#endif
