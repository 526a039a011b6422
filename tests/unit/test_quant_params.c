/* test_quant_params.c: scale/zero-point selection, weight and bias quantization. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "onnxq/oq_quant.h"

static void test_ranges(void)
{
    oq_qparams p = oq_qparams_from_range(-1.0, 3.0, 0, 255, false);
    CHECK(fabsf(p.scale - 4.0f / 255) < 1e-9f && p.zero_point == 64);
    CHECK(oq_quantize_value(0.0f, p, 0, 255) == p.zero_point); /* zero is exact */
    CHECK(oq_quantize_value(100.0f, p, 0, 255) == 255 && oq_quantize_value(-100.0f, p, 0, 255) == 0);
    p = oq_qparams_from_range(0.5, 2.0, 0, 255, false); /* widened to include 0 */
    CHECK(p.zero_point == 0 && fabsf(p.scale - 2.0f / 255) < 1e-9f);
    p = oq_qparams_from_range(-2.0, 1.0, -128, 127, true);
    CHECK(p.zero_point == 0 && fabsf(p.scale - 2.0f / 127) < 1e-9f);
    p = oq_qparams_from_range(-2.0, 1.0, 0, 255, true);
    CHECK(p.zero_point == 128);
    p = oq_qparams_from_range(0, 0, 0, 255, false);
    CHECK(p.scale == 1.0f && p.zero_point == 0);
    /* ties round to even, as QuantizeLinear does */
    oq_qparams unit = {1.0f, 0};
    CHECK(oq_quantize_value(2.5f, unit, -128, 127) == 2 && oq_quantize_value(3.5f, unit, -128, 127) == 4);
    CHECK(oq_quantize_value(-2.5f, unit, -128, 127) == -2);
}

static void test_weights(void)
{
    oq_err err = {0};
    /* two output channels of very different magnitude */
    int64_t dims[2] = {2, 64};
    oq_tensor w;
    CHECK_OK(oq_tensor_alloc(&w, OQ_DTYPE_FLOAT, 2, dims, &err), &err);
    float *x = w.data;
    for (int i = 0; i < 64; i++) {
        x[i] = 100.0f * sinf((float)i);
        x[64 + i] = 0.01f * cosf((float)i * 0.7f);
    }
    oq_weight_quant pc, pt;
    CHECK_OK(oq_quantize_weight(&pc, &w, 0, true, NULL, &err), &err);
    CHECK_OK(oq_quantize_weight(&pt, &w, 0, false, NULL, &err), &err);
    CHECK(pc.scales.rank == 1 && pc.scales.dims[0] == 2 && pt.scales.rank == 0);
    const float *s = pc.scales.data;
    const int8_t *q = pc.q.data;
    int qmax = 0;
    for (int i = 0; i < 128; i++)
        qmax = q[i] > qmax ? q[i] : -q[i] > qmax ? -q[i] : qmax;
    CHECK(qmax == 127);                       /* full range used, never -128 */
    CHECK(fabsf(s[1] - 0.01f / 127) < 1e-6f); /* the small channel keeps its resolution */
    CHECK(pc.sqnr_db > 35 && pc.sqnr_db > pt.sqnr_db);
    /* per-channel error of the small channel stays within half a step */
    for (int i = 0; i < 64; i++)
        CHECK(fabsf(x[64 + i] - q[64 + i] * s[1]) <= 0.5f * s[1] + 1e-9f);
    oq_weight_quant_release(&pt);

    /* a conv weight (out, in, kh, kw): channels along axis 0 */
    int64_t cdims[4] = {3, 2, 2, 2};
    oq_tensor cw;
    CHECK_OK(oq_tensor_alloc(&cw, OQ_DTYPE_FLOAT, 4, cdims, &err), &err);
    for (int i = 0; i < 24; i++)
        ((float *)cw.data)[i] = (float)((i / 8) + 1) * (i % 2 ? 1 : -1); /* channel c: +-(c+1) */
    oq_weight_quant cq;
    CHECK_OK(oq_quantize_weight(&cq, &cw, 0, true, NULL, &err), &err);
    for (int c = 0; c < 3; c++)
        CHECK(fabsf(((float *)cq.scales.data)[c] - (c + 1) / 127.0f) < 1e-7f);
    CHECK(cq.sqnr_db > 100); /* representable up to float rounding of the scale */
    oq_weight_quant_release(&cq);
    /* a floor raises a channel's scale (here channel 1 of 3) and nothing else */
    float floors[3] = {0, 1.0f, 0};
    CHECK_OK(oq_quantize_weight(&cq, &cw, 0, true, floors, &err), &err);
    CHECK(((float *)cq.scales.data)[1] == 1.0f && fabsf(((float *)cq.scales.data)[2] - 3 / 127.0f) < 1e-7f);
    CHECK(((int8_t *)cq.q.data)[8] == -2); /* -2 at scale 1 */
    oq_weight_quant_release(&cq);
    oq_tensor_release(&cw);

    /* bias at input_scale * weight_scale */
    int64_t bd[1] = {2};
    oq_tensor b, qb;
    CHECK_OK(oq_tensor_alloc(&b, OQ_DTYPE_FLOAT, 1, bd, &err), &err);
    ((float *)b.data)[0] = 1.0f;
    ((float *)b.data)[1] = -0.5f;
    CHECK_OK(oq_quantize_bias(&qb, &b, 0.1f, &pc.scales, &err), &err);
    const int32_t *bq = qb.data;
    CHECK(bq[0] == (int32_t)nearbyint(1.0 / (0.1 * s[0])) && bq[1] == (int32_t)nearbyint(-0.5 / (0.1 * s[1])));
    oq_tensor_release(&qb);
    ((float *)b.data)[0] = 1e30f;
    CHECK(oq_quantize_bias(&qb, &b, 1e-6f, &pc.scales, &err) == OQ_EINVAL);
    oq_tensor_release(&b);
    oq_weight_quant_release(&pc);
    oq_tensor_release(&w);
}

int main(void)
{
    test_ranges();
    test_weights();
    return check_exit("test_quant_params");
}
