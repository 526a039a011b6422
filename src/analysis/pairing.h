/* pairing.h: which float tensor each tensor of a quantized model stands for,
 * and the scale and zero point that dequantize it; the rules are in
 * oq_compare.h. Internal to src/analysis. */
#ifndef ONNXQ_ANALYSIS_PAIRING_H
#define ONNXQ_ANALYSIS_PAIRING_H

#include <stdbool.h>

#include "onnxq/oq_compare.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"

/* How to dequantize an integer tensor: its scale and zero point values (zero
 * NULL: 0), per tensor or along axis (scale NULL: not known). */
typedef struct oq_qparams_ref {
    const oq_value *scale, *zero;
    int axis;
} oq_qparams_ref;

/* What one value of the quantized graph stands for. */
typedef struct oq_pairing {
    const oq_value *ref;    /* its float counterpart (a value of the float graph), or NULL */
    oq_compare_match match; /* the rule that paired it */
    oq_qparams_ref via;     /* the parameters that dequantize it to ref */
    const oq_value *unlike; /* unpaired: a float tensor of its name made from other tensors */
} oq_pairing;

/* The integer types a scale and zero point dequantize here: 8 and 16 bits. */
static inline bool oq_is_scaled_int(oq_dtype dt)
{
    return dt == OQ_DTYPE_UINT8 || dt == OQ_DTYPE_INT8 || dt == OQ_DTYPE_UINT16 || dt == OQ_DTYPE_INT16;
}

/* Pairs every value of quantized graph qg (indexed and sorted) with the
 * tensors of float graph fg. *out: [qg->n_values] by value id, malloc'ed
 * (the caller frees it); its pointers borrow from both graphs. */
oq_status oq_pair_tensors(const oq_graph *fg, const oq_graph *qg, oq_pairing **out, oq_err *err);

#endif
