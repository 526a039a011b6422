/* weight_only.c: a candidate that ONNX has no 8-bit form of (ConvTranspose)
 * outside the QDQ format keeps its float input, output and arithmetic, and
 * reads its weight from an int8 copy, per output channel, through a
 * DequantizeLinear:
 *
 *   DequantizeLinear(w_int8, scales, zero points; axis 1) -> ConvTranspose(x, ., bias)
 *
 * The file shrinks as with any quantized weight; the runtime dequantizes the
 * weight (or folds the DequantizeLinear of a constant once). ConvTranspose's
 * weight is [C_in, C_out, k...] for one group, so its output channels are
 * axis 1. See rewrite.h. */
#include "quant/rewrite.h"

oq_status oq_rw_weight_only(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    const int axis = 1;
    oq_value *w = n->inputs[1], *zp, *wdq;
    qweight *qw;
    oq_status st = oq_rw_weight(r, w, axis, NULL, &qw);
    if (st || (st = oq_rw_weight_zero_points(r, qw, &zp)) ||
        (st = oq_rw_dequantize_constant(r, qw->q, qw->scale, zp, axis, w->name, &wdq)) ||
        (st = oq_node_set_input(n, 1, wdq, r->err)))
        return st;
    oq_rw_report_weight(rep, qw);
    return OQ_OK;
}
