/* weight_only.c: a candidate that ONNX has no 8-bit form of keeps its float
 * inputs, outputs and arithmetic, and reads its weights from int8 copies,
 * per output channel, through DequantizeLinears:
 *
 *   DequantizeLinear(w_int8, scales, zero points; axis 1) -> ConvTranspose(x, ., bias)
 *   DequantizeLinear(W_int8 ...; axis 1), DequantizeLinear(R_int8 ...; axis 1) -> LSTM(x, ., ., B, ...)
 *   Einsum(x, DequantizeLinear(w_int8 ...; the weight's output axis))
 *
 * The file shrinks as with any quantized weight; the runtime dequantizes the
 * weights (or folds the DequantizeLinear of a constant once). ConvTranspose's
 * weight is [C_in, C_out, k...] for one group, so its output channels are
 * axis 1 (outside the QDQ format only); LSTM, GRU and RNN's W [directions,
 * gates x hidden, input] and R [directions, gates x hidden, hidden] have one
 * row per gate unit on axis 1 (in every format); an Einsum's constant operand
 * is quantized along the output axis oq_einsum_weight finds; a table Add's
 * table (a learned position embedding) has a scale per row, like an
 * embedding table (both in every format):
 *
 *   Add(x, DequantizeLinear(table_int8 ...; its rows' axis))
 *
 * See rewrite.h. */
#include "quant/match.h"
#include "quant/rewrite.h"

oq_status oq_rw_weight_only(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    int axis = 1, first = 1, last = oq_is_recurrent(n->kind) ? 2 : 1;
    if (n->kind == OQ_OP_EINSUM) { /* the planner checked it */
        oq_einsum_weight(n, &first, &axis);
        last = first;
    } else if (n->kind == OQ_OP_ADD) {
        oq_table_add(n, &first, &axis);
        last = first;
    }
    for (int k = first; k <= last; k++) {
        oq_value *w = n->inputs[k], *zp, *wdq;
        qweight *qw;
        oq_status st = oq_rw_weight(r, w, axis, NULL, &qw);
        if (st || (st = oq_rw_weight_zero_points(r, qw, &zp)) ||
            (st = oq_rw_dequantize_constant(r, qw->q, qw->scale, zp, axis, w->name, &wdq)) ||
            (st = oq_node_set_input(n, k, wdq, r->err)))
            return st;
        oq_rw_report_weight(rep, qw);
    }
    return OQ_OK;
}
