/* match.c: graph queries shared by the quantization files (see match.h). */
#include "quant/match.h"

#include <math.h>
#include <string.h>

bool oq_is_graph_output(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

bool oq_is_graph_input(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v)
            return true;
    return false;
}

oq_node *oq_sole_reader(const oq_graph *g, const oq_value *v)
{
    return v && v->n_consumers == 1 && !oq_is_graph_output(g, v) ? v->consumers[0] : NULL;
}

bool oq_is_clamp_of(const oq_node *a, const oq_value *x)
{
    if (!a || a->n_inputs < 1 || a->inputs[0] != x || a->n_outputs < 1 || !a->outputs[0])
        return false;
    if (a->kind == OQ_OP_RELU)
        return true;
    if (a->kind != OQ_OP_CLIP)
        return false;
    for (int k = 1; k < a->n_inputs; k++) /* min/max: inputs from opset 11, attributes before */
        if (a->inputs[k] && !a->inputs[k]->constant)
            return false;
    return true;
}

bool oq_is_float_constant(const oq_value *v)
{
    return v && v->constant && v->constant->dtype == OQ_DTYPE_FLOAT;
}

static bool has_axes_at(const oq_value *v, int depth)
{
    if (!v || depth > 32)
        return false;
    if (v->rank >= 1 || (v->constant && v->constant->rank >= 1))
        return true;
    const oq_node *p = v->producer;
    if (!p)
        return false;
    switch (p->kind) {
    case OQ_OP_QLINEAR_ADD: /* 8-bit twins (--contrib): the data operands */
    case OQ_OP_QLINEAR_CONCAT:
    case OQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL:
    case OQ_OP_QLINEAR_LEAKY_RELU:
    case OQ_OP_QLINEAR_MUL:
    case OQ_OP_QLINEAR_SIGMOID:
        return has_axes_at(p->inputs[0], depth + 1) || (p->n_inputs >= 8 && has_axes_at(p->inputs[3], depth + 1));
    case OQ_OP_CONV:
    case OQ_OP_QLINEAR_CONV:
    case OQ_OP_CONV_INTEGER:
    case OQ_OP_MAX_POOL:
    case OQ_OP_AVERAGE_POOL:
    case OQ_OP_GLOBAL_AVERAGE_POOL:
    case OQ_OP_CONV_TRANSPOSE:
    case OQ_OP_BATCH_NORMALIZATION:
        return true;
    case OQ_OP_DEQUANTIZE_LINEAR:
    case OQ_OP_QUANTIZE_LINEAR:
    case OQ_OP_HARD_SWISH:
    case OQ_OP_HARD_SIGMOID:
    case OQ_OP_RELU:
    case OQ_OP_CLIP:
    case OQ_OP_SIGMOID:
    case OQ_OP_ADD:
    case OQ_OP_SUB:
    case OQ_OP_MUL:
    case OQ_OP_DIV:
        for (int k = 0; k < p->n_inputs && k < 2; k++)
            if (has_axes_at(p->inputs[k], depth + 1))
                return true;
        return false;
    default:
        return false;
    }
}

bool oq_has_axes(const oq_value *v) { return has_axes_at(v, 0); }

float oq_scalar_operand(const oq_value *v, const oq_value *x)
{
    if (!oq_is_float_constant(v) || oq_tensor_numel(v->constant) != 1 || v->constant->rank > 1 ||
        (v->constant->rank == 1 && !oq_has_axes(x)))
        return NAN;
    return ((const float *)v->constant->data)[0];
}

bool oq_is_scalar_value(const oq_value *v, const oq_value *x, float value)
{
    float k = oq_scalar_operand(v, x);
    return fabsf(k - value) <= 1e-6f * fabsf(value);
}

oq_value *oq_other_operand(const oq_node *n, oq_op_kind op, const oq_value *x)
{
    if (!n || n->kind != op || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0])
        return NULL;
    if (n->inputs[0] == x && n->inputs[1] != x)
        return n->inputs[1];
    if (n->inputs[1] == x && n->inputs[0] != x && op != OQ_OP_SUB && op != OQ_OP_DIV)
        return n->inputs[0];
    return NULL;
}

oq_qparams oq_constant_qparams(const oq_tensor *c, const oq_quant_options *o)
{
    const float *d = c->data;
    int64_t n = oq_tensor_numel(c);
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = d[i] < lo ? d[i] : lo;
        hi = d[i] > hi ? d[i] : hi;
    }
    return oq_qparams_from_range(lo, hi, o->act_qmin, o->act_qmax, o->symmetric_activations);
}

const char *const oq_quant_op_types[OQ_QUANT_OP_TYPE_COUNT] = {
    "Conv", "ConvTranspose", "MatMul", "Gemm", "Gather", "LSTM", "GRU", "RNN", "Einsum", "Add",
};

bool oq_quant_selects(const oq_quant_options *o, oq_op_kind kind)
{
    int n = o->n_op_types ? o->n_op_types : OQ_QUANT_OP_TYPE_COUNT;
    for (int i = 0; i < n; i++)
        if (oq_op_kind_of("", o->n_op_types ? o->op_types[i] : oq_quant_op_types[i]) == kind && kind != OQ_OP_OTHER)
            return true;
    return false;
}

bool oq_quant_selects_type(const oq_quant_options *o, int k)
{
    return oq_quant_selects(o, oq_op_kind_of("", oq_quant_op_types[k]));
}

const char *oq_einsum_weight(const oq_node *n, int *input, int *axis)
{
    if (n->n_inputs != 2 || !n->inputs[0] || !n->inputs[1])
        return "Einsum of other than two operands";
    int k = oq_is_float_constant(n->inputs[1]) ? 1 : oq_is_float_constant(n->inputs[0]) ? 0 : -1;
    if (k < 0)
        return "no operand is a float constant";
    if (n->inputs[1 - k]->constant)
        return "both operands are constants";
    /* "a,b->c" without spaces: the operands' labels and the output's */
    char eq[128], *term[3] = {NULL, NULL, NULL};
    size_t len = 0;
    for (const char *e = oq_node_attr_string(n, "equation", ""); *e && len + 1 < sizeof eq; e++)
        if (*e != ' ')
            eq[len++] = *e;
    eq[len] = '\0';
    char *arrow = strstr(eq, "->"), *comma = strchr(eq, ',');
    if (!arrow || !comma || comma > arrow || strchr(comma + 1, ','))
        return "Einsum equation without two operands and an explicit output";
    *comma = *arrow = '\0';
    term[0] = eq, term[1] = comma + 1, term[2] = arrow + 2;
    const oq_tensor *w = n->inputs[k]->constant;
    if (strstr(term[k], "...") || (int)strlen(term[k]) != w->rank)
        return "Einsum weight labels that are not one per axis";
    int best = -1;
    for (int i = 0; i < w->rank; i++)
        if (strchr(term[2], term[k][i]) && !strchr(term[1 - k], term[k][i]) &&
            (best < 0 || w->dims[i] > w->dims[best]))
            best = i;
    if (best < 0)
        return "Einsum weight without an output axis of its own";
    *input = k;
    *axis = best;
    return NULL;
}

bool oq_table_add(const oq_node *n, int *input, int *axis)
{
    const oq_value *a = oq_node_input(n, 0), *b = oq_node_input(n, 1);
    if (n->kind != OQ_OP_ADD || n->n_inputs != 2 || !a || !b || n->n_outputs != 1 || !n->outputs[0])
        return false;
    int k = oq_is_float_constant(b) ? 1 : oq_is_float_constant(a) ? 0 : -1;
    if (k < 0 || n->inputs[1 - k]->constant)
        return false;
    const oq_tensor *t = n->inputs[k]->constant;
    int long_axes = 0, rows = -1;
    for (int i = 0; i < t->rank; i++) {
        long_axes += t->dims[i] > 1;
        if (i < t->rank - 1 && (rows < 0 || t->dims[i] >= t->dims[rows]))
            rows = i;
    }
    if (long_axes < 2)
        return false;
    *input = k;
    *axis = rows;
    return true;
}

bool oq_is_recurrent(oq_op_kind kind)
{
    return kind == OQ_OP_LSTM || kind == OQ_OP_GRU || kind == OQ_OP_RNN;
}

bool oq_quant_excludes(const oq_quant_options *o, const oq_node *n)
{
    for (int i = 0; i < o->n_exclude; i++)
        if (strcmp(o->exclude[i], n->name) == 0)
            return true;
    return false;
}
