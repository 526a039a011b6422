/* params.c: scale/zero-point selection and weight/bias quantization. See oq_quant.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_quant.h"

oq_qparams oq_qparams_from_range(double lo, double hi, int qmin, int qmax, bool symmetric)
{
    lo = fmin(lo, 0);
    hi = fmax(hi, 0);
    oq_qparams p;
    if (symmetric) {
        double a = fmax(-lo, hi);
        int32_t mid = (int32_t)((qmin + qmax + 1) / 2); /* 0 for -128..127, 128 for 0..255 */
        int32_t half = qmax - mid;                      /* 127 either way */
        p.scale = a > 0 ? (float)(a / half) : 1.0f;
        p.zero_point = mid;
        return p;
    }
    double span = hi - lo;
    if (!(span > 0)) {
        p.scale = 1.0f;
        p.zero_point = qmin > 0 ? qmin : qmax < 0 ? qmax : 0;
        return p;
    }
    p.scale = (float)(span / (qmax - qmin));
    double zp = nearbyint(qmin - lo / p.scale);
    p.zero_point = (int32_t)fmin(fmax(zp, qmin), qmax);
    return p;
}

int32_t oq_quantize_value(float x, oq_qparams p, int qmin, int qmax)
{
    double q = nearbyint((double)x / p.scale) + p.zero_point;
    return (int32_t)fmin(fmax(q, qmin), qmax);
}

void oq_weight_quant_release(oq_weight_quant *wq)
{
    if (!wq)
        return;
    oq_tensor_release(&wq->q);
    oq_tensor_release(&wq->scales);
    oq_tensor_release(&wq->zeros);
}

oq_status oq_quantize_weight(oq_weight_quant *out, const oq_tensor *w, int axis, bool per_channel,
                             const float *min_scales, oq_err *err)
{
    memset(out, 0, sizeof *out);
    if (w->dtype != OQ_DTYPE_FLOAT)
        return oq_errf(err, OQ_EUNSUPPORTED, "weights of type %s cannot be quantized (float only)",
                       oq_dtype_name(w->dtype));
    if (per_channel && (axis < 0 || axis >= w->rank))
        return oq_errf(err, OQ_EINVAL, "channel axis %d is outside the weight's rank %d", axis, w->rank);
    int64_t channels = per_channel ? w->dims[axis] : 1;
    int64_t inner = 1; /* elements after the axis */
    for (int i = axis + 1; per_channel && i < w->rank; i++)
        inner *= w->dims[i];
    int64_t numel = oq_tensor_numel(w);
    int64_t sdims[1] = {channels};
    oq_status st;
    if ((st = oq_tensor_alloc(&out->q, OQ_DTYPE_INT8, w->rank, w->dims, err)) ||
        (st = oq_tensor_alloc(&out->scales, OQ_DTYPE_FLOAT, per_channel ? 1 : 0, sdims, err)) ||
        (st = oq_tensor_alloc(&out->zeros, OQ_DTYPE_INT8, per_channel ? 1 : 0, sdims, err))) {
        oq_weight_quant_release(out);
        return st;
    }
    const float *x = w->data;
    float *scales = out->scales.data;
    int8_t *q = out->q.data;
    /* channel of element i: (i / inner) % channels */
    for (int64_t c = 0; c < channels; c++)
        scales[c] = 0;
    for (int64_t i = 0; i < numel; i++) {
        int64_t c = per_channel ? (i / inner) % channels : 0;
        float a = fabsf(x[i]);
        if (a > scales[c])
            scales[c] = a;
    }
    for (int64_t c = 0; c < channels; c++)
        scales[c] = scales[c] > 0 ? scales[c] / 127.0f : 1.0f;
    for (int64_t c = 0; min_scales && c < w->dims[axis]; c++) {
        float *s = &scales[per_channel ? c : 0];
        if (min_scales[c] > *s)
            *s = min_scales[c];
    }
    double signal = 0, noise = 0;
    for (int64_t i = 0; i < numel; i++) {
        int64_t c = per_channel ? (i / inner) % channels : 0;
        oq_qparams p = {scales[c], 0};
        int32_t v = oq_quantize_value(x[i], p, -127, 127);
        q[i] = (int8_t)v;
        double d = (double)x[i] - (double)v * scales[c];
        signal += (double)x[i] * x[i];
        noise += d * d;
    }
    out->sqnr_db = noise > 0 ? 10 * log10(signal / noise) : INFINITY;
    return OQ_OK;
}

oq_status oq_quantize_bias(oq_tensor *out, const oq_tensor *bias, float input_scale, const oq_tensor *weight_scales,
                           oq_err *err)
{
    if (bias->dtype != OQ_DTYPE_FLOAT || bias->rank < 1 || oq_tensor_numel(bias) != bias->dims[bias->rank - 1])
        return oq_errf(err, OQ_EUNSUPPORTED, "bias must be a float row ([channels] or [1, channels])");
    int64_t n = bias->dims[bias->rank - 1], ns = oq_tensor_numel(weight_scales);
    if (ns != 1 && ns != n)
        return oq_errf(err, OQ_EINVAL, "bias has %lld channels but the weights have %lld scales", (long long)n,
                       (long long)ns);
    oq_status st = oq_tensor_alloc(out, OQ_DTYPE_INT32, bias->rank, bias->dims, err);
    if (st)
        return st;
    const float *b = bias->data, *ws = weight_scales->data;
    int32_t *q = out->data;
    for (int64_t c = 0; c < n; c++) {
        double scale = (double)input_scale * ws[ns == 1 ? 0 : c];
        double v = nearbyint(b[c] / scale);
        if (!(fabs(v) <= 2147483647.0)) {
            oq_tensor_release(out);
            return oq_errf(err, OQ_EINVAL, "bias[%lld] = %g does not fit in int32 at scale %g", (long long)c, b[c],
                           scale);
        }
        q[c] = (int32_t)v;
    }
    return OQ_OK;
}
