/* embedding.c: a Gather that looks rows up in a constant float table (an
 * embedding) reads an int8 copy of the table instead, quantized symmetrically
 * per row, and the rows it gathers are dequantized right after it:
 *
 *   Gather(table_int8, ids)  -> Cast(float) -> Mul -> y
 *   Gather(row_scales, ids) ----------------'
 *
 * row_scales is [V, 1], so the gathered scales broadcast over each row. This
 * is DequantizeLinear written out (float(q) * scale, zero point 0): opset 13's
 * DequantizeLinear takes a scale per index of one axis, and after the Gather
 * the rows are no longer an axis of a constant. Dequantizing the table first
 * and gathering the floats would give the same numbers but cost a pass over
 * the whole table per run. With one scale for the table (--per-tensor) it is
 * a plain DequantizeLinear. The form is the same in every mode and format:
 * nothing about it depends on activation ranges. (ONNX Runtime 1.20.1's
 * com.microsoft GatherBlockQuantized takes 4-bit tables only: uint8 and int8
 * data are refused when the model loads, so --contrib has no 8-bit form of
 * its own.) See rewrite.h. */
#include <stdio.h>
#include <string.h>

#include "quant/rewrite.h"

/* qw's per-row scales as a [V, 1] initializer, made once per table. */
static oq_status row_scales(rewriter *r, qweight *qw, oq_value **out)
{
    if (!qw->row_scale) {
        int64_t dims[2] = {oq_tensor_numel(&qw->wq.scales), 1};
        oq_tensor t;
        char base[512];
        oq_status st = oq_tensor_copy(&t, &qw->wq.scales, r->err);
        if (st)
            return st;
        t.rank = 2;
        memcpy(t.dims, dims, sizeof dims);
        snprintf(base, sizeof base, "%s_row_scale", qw->src->name);
        if ((st = oq_rw_initializer_from(r, base, &t, &qw->row_scale)))
            return st;
    }
    *out = qw->row_scale;
    return OQ_OK;
}

oq_status oq_rw_embedding(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    oq_value *ids = n->inputs[1], *y = n->outputs[0], *rows, *wz;
    qweight *qw;
    oq_node *g;
    oq_status st = oq_rw_weight(r, n->inputs[0], 0, NULL, &qw);
    if (st || (st = oq_rw_value(r, y->name, "_quantized", &rows)))
        return st;
    oq_value *gin[2] = {qw->q, ids};
    if ((st = oq_rw_node(r, OQ_OP_GATHER, 2, gin, 1, &rows, &g)) || (st = oq_rw_inherit_name(r, g, n)))
        return st;
    oq_graph_remove_node(r->g, n); /* y's writer goes before the dequantization writes it */
    if (oq_tensor_numel(&qw->wq.scales) == 1) { /* one scale: DequantizeLinear */
        if ((st = oq_rw_weight_zero(r, OQ_DTYPE_INT8, &wz)))
            return st;
        oq_value *din[3] = {rows, qw->scale, wz};
        if ((st = oq_rw_node(r, OQ_OP_DEQUANTIZE_LINEAR, 3, din, 1, &y, NULL)))
            return st;
    } else {
        oq_value *scales, *row_scale, *rows_f;
        oq_node *cast;
        if ((st = row_scales(r, qw, &scales)) || (st = oq_rw_value(r, y->name, "_scale", &row_scale)) ||
            (st = oq_rw_value(r, y->name, "_int", &rows_f)))
            return st;
        oq_value *sin[2] = {scales, ids}, *min[2] = {rows_f, row_scale};
        if ((st = oq_rw_node(r, OQ_OP_GATHER, 2, sin, 1, &row_scale, NULL)) ||
            (st = oq_rw_node(r, OQ_OP_CAST, 1, &rows, 1, &rows_f, &cast)) ||
            (st = oq_node_set_attr_int(cast, "to", OQ_DTYPE_FLOAT, r->err)) ||
            (st = oq_rw_node(r, OQ_OP_MUL, 2, min, 1, &y, NULL)))
            return st;
    }
    oq_rw_report_weight(rep, qw);
    return OQ_OK;
}
