/* fold.c: constant folding. A node whose inputs are all constants is run
 * alone, by the executor's own kernel, in a one-node session, and replaced by
 * the constants it computes: the values are exactly those a run would compute,
 * and no op is implemented twice. Shape of a graph input whose declared shape
 * is fully static (the executor refuses any other) is the one fold computed
 * here. Before running a node, the size of its outputs is bounded from its
 * inputs (fold_rule), so that a fold never allocates, or stores in the
 * model, more than the size bound allows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_exec.h"
#include "prepare/prepare.h"

/* ---- size bounds ---------------------------------------------------------------- */

/* How a node's output size is bounded before it runs. */
typedef enum fold_rule {
    FOLD_NEVER = 0,         /* not folded (random, stateful, control flow, or not worth it) */
    FOLD_AT_MOST_INPUT,     /* at most as many elements as input 0 (reshapes, casts, unary, reductions) */
    FOLD_BROADCAST,         /* the broadcast shape of all inputs */
    FOLD_CONCAT,            /* the sum of the inputs' elements */
    FOLD_GATHER,            /* indices x one slice of the data */
    FOLD_SHAPE,             /* Shape of a value whose shape is static: input need not be constant */
    FOLD_CONSTANT_OF_SHAPE, /* the product of input 0's values */
    FOLD_EXPAND,            /* input 0 broadcast to input 1's values */
    FOLD_TILE,              /* input 0 times the product of input 1's values */
    FOLD_RANGE,             /* ceil((limit - start) / delta) */
} fold_rule;

/* The default-domain ops folding evaluates, by kind; every other kind is FOLD_NEVER. */
static const fold_rule fold_rules[OQ_OP_COUNT] = {
    [OQ_OP_ADD] = FOLD_BROADCAST,
    [OQ_OP_FLATTEN] = FOLD_AT_MOST_INPUT,
    [OQ_OP_RESHAPE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SHAPE] = FOLD_SHAPE,
    [OQ_OP_ABS] = FOLD_AT_MOST_INPUT,
    [OQ_OP_AND] = FOLD_BROADCAST,
    [OQ_OP_CAST] = FOLD_AT_MOST_INPUT,
    [OQ_OP_CAST_LIKE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_CEIL] = FOLD_AT_MOST_INPUT,
    [OQ_OP_CLIP] = FOLD_AT_MOST_INPUT,
    [OQ_OP_CONCAT] = FOLD_CONCAT,
    [OQ_OP_CONSTANT_OF_SHAPE] = FOLD_CONSTANT_OF_SHAPE,
    [OQ_OP_DIV] = FOLD_BROADCAST,
    [OQ_OP_EQUAL] = FOLD_BROADCAST,
    [OQ_OP_ERF] = FOLD_AT_MOST_INPUT,
    [OQ_OP_EXP] = FOLD_AT_MOST_INPUT,
    [OQ_OP_EXPAND] = FOLD_EXPAND,
    [OQ_OP_FLOOR] = FOLD_AT_MOST_INPUT,
    [OQ_OP_GATHER] = FOLD_GATHER,
    [OQ_OP_GREATER] = FOLD_BROADCAST,
    [OQ_OP_GREATER_OR_EQUAL] = FOLD_BROADCAST,
    [OQ_OP_IS_INF] = FOLD_AT_MOST_INPUT,
    [OQ_OP_IS_NAN] = FOLD_AT_MOST_INPUT,
    [OQ_OP_LESS] = FOLD_BROADCAST,
    [OQ_OP_LESS_OR_EQUAL] = FOLD_BROADCAST,
    [OQ_OP_LOG] = FOLD_AT_MOST_INPUT,
    [OQ_OP_MAX] = FOLD_BROADCAST,
    [OQ_OP_MEAN] = FOLD_BROADCAST,
    [OQ_OP_MIN] = FOLD_BROADCAST,
    [OQ_OP_MOD] = FOLD_BROADCAST,
    [OQ_OP_MUL] = FOLD_BROADCAST,
    [OQ_OP_NEG] = FOLD_AT_MOST_INPUT,
    [OQ_OP_NOT] = FOLD_AT_MOST_INPUT,
    [OQ_OP_OR] = FOLD_BROADCAST,
    [OQ_OP_POW] = FOLD_BROADCAST,
    [OQ_OP_RANGE] = FOLD_RANGE,
    [OQ_OP_RECIPROCAL] = FOLD_AT_MOST_INPUT,
    [OQ_OP_REDUCE_MAX] = FOLD_AT_MOST_INPUT,
    [OQ_OP_REDUCE_MEAN] = FOLD_AT_MOST_INPUT,
    [OQ_OP_REDUCE_MIN] = FOLD_AT_MOST_INPUT,
    [OQ_OP_REDUCE_PROD] = FOLD_AT_MOST_INPUT,
    [OQ_OP_REDUCE_SUM] = FOLD_AT_MOST_INPUT,
    [OQ_OP_RELU] = FOLD_AT_MOST_INPUT,
    [OQ_OP_ROUND] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SIGMOID] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SIGN] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SIZE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SLICE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SPLIT] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SQRT] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SQUEEZE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_SUB] = FOLD_BROADCAST,
    [OQ_OP_SUM] = FOLD_BROADCAST,
    [OQ_OP_TANH] = FOLD_AT_MOST_INPUT,
    [OQ_OP_TILE] = FOLD_TILE,
    [OQ_OP_TRANSPOSE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_UNSQUEEZE] = FOLD_AT_MOST_INPUT,
    [OQ_OP_WHERE] = FOLD_BROADCAST,
    [OQ_OP_XOR] = FOLD_BROADCAST,
};

/* a * b, or -1 when either is negative or the product passes INT64_MAX. */
static int64_t mul_bounded(int64_t a, int64_t b)
{
    if (a < 0 || b < 0 || (b && a > INT64_MAX / b))
        return -1;
    return a * b;
}

/* Bytes per element of dt, rounded up (packed 4-bit types count 1). */
static size_t element_bytes(oq_dtype dt)
{
    unsigned bits = oq_dtype_valid(dt) ? oq_dtype_traits_table[dt].bits : 0;
    return (bits + 7) / 8;
}

/* The int64 values of constant 1-D tensor t into out[0..*n) (at most OQ_MAX_RANK); false otherwise. */
static bool shape_values(const oq_tensor *t, int64_t *out, int *n)
{
    if (t->dtype != OQ_DTYPE_INT64 || t->rank != 1 || t->dims[0] > OQ_MAX_RANK)
        return false;
    *n = (int)t->dims[0];
    for (int i = 0; i < *n; i++)
        out[i] = ((const int64_t *)t->data)[i];
    return true;
}

/* Elements n's outputs will have at most, from its constant inputs; -1 when
 * the rule cannot tell (the node is then not folded). */
static int64_t output_elements(const oq_node *n, fold_rule rule)
{
    const oq_tensor *in[8] = {0};
    for (int k = 0; k < n->n_inputs && k < 8; k++)
        in[k] = n->inputs[k] ? n->inputs[k]->constant : NULL;
    int64_t dims[OQ_MAX_RANK], out[OQ_MAX_RANK];
    int rank, out_rank;
    switch (rule) {
    case FOLD_AT_MOST_INPUT: {
        int64_t e = in[0] ? oq_tensor_numel(in[0]) : -1;
        return e < 1 ? (e == 0 ? 1 : -1) : e; /* Size of an empty tensor is one element */
    }
    case FOLD_BROADCAST: {
        if (n->n_inputs > 8)
            return -1;
        int ranks[8];
        const int64_t *shapes[8];
        int count = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            if (!in[k])
                continue;
            ranks[count] = in[k]->rank;
            shapes[count++] = in[k]->dims;
        }
        oq_err ignored;
        if (!count || oq_broadcast_shape(count, ranks, shapes, &out_rank, out, &ignored))
            return -1;
        return oq_shape_numel(out_rank, out);
    }
    case FOLD_CONCAT: {
        int64_t sum = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            const oq_tensor *t = n->inputs[k] ? n->inputs[k]->constant : NULL;
            int64_t e = t ? oq_tensor_numel(t) : 0;
            if (e < 0 || sum > INT64_MAX - e)
                return -1;
            sum += e;
        }
        return sum;
    }
    case FOLD_GATHER: {
        if (!in[0] || !in[1])
            return -1;
        int64_t axis = oq_node_attr_int(n, "axis", 0), slice = 1;
        axis += axis < 0 ? in[0]->rank : 0;
        if (axis < 0 || axis >= in[0]->rank)
            return -1;
        for (int d = 0; d < in[0]->rank; d++)
            if (d != axis)
                slice = mul_bounded(slice, in[0]->dims[d]);
        return mul_bounded(oq_tensor_numel(in[1]), slice);
    }
    case FOLD_CONSTANT_OF_SHAPE: {
        if (!in[0] || !shape_values(in[0], dims, &rank))
            return -1;
        int64_t e = 1;
        for (int d = 0; d < rank; d++)
            e = mul_bounded(e, dims[d]);
        return e;
    }
    case FOLD_EXPAND: {
        if (!in[0] || !in[1] || !shape_values(in[1], dims, &rank))
            return -1;
        for (int d = 0; d < rank; d++)
            if (dims[d] < 0)
                return -1;
        int ranks[2] = {in[0]->rank, rank};
        const int64_t *shapes[2] = {in[0]->dims, dims};
        oq_err ignored;
        if (oq_broadcast_shape(2, ranks, shapes, &out_rank, out, &ignored))
            return -1;
        return oq_shape_numel(out_rank, out);
    }
    case FOLD_TILE: {
        if (!in[0] || !in[1] || !shape_values(in[1], dims, &rank))
            return -1;
        int64_t e = oq_tensor_numel(in[0]);
        for (int d = 0; d < rank; d++)
            e = mul_bounded(e, dims[d]);
        return e;
    }
    case FOLD_RANGE: {
        if (!in[0] || !in[1] || !in[2] || oq_tensor_numel(in[0]) != 1 || oq_tensor_numel(in[1]) != 1 ||
            oq_tensor_numel(in[2]) != 1)
            return -1;
        double start = oq_tensor_get_f64(in[0], 0), limit = oq_tensor_get_f64(in[1], 0),
               delta = oq_tensor_get_f64(in[2], 0), count = ceil((limit - start) / delta);
        if (!isfinite(count) || count > 9e18)
            return -1;
        return count > 0 ? (int64_t)count + 1 : 1; /* one spare element for rounding */
    }
    case FOLD_NEVER:
    case FOLD_SHAPE:
        break;
    }
    return -1;
}

/* Bytes one output element of n takes at most: the element type of input 0
 * (or of the input or attribute the op takes its output type from). */
static size_t output_element_bytes(const oq_node *n, oq_op_kind op)
{
    const oq_attr *a;
    int64_t to;
    switch (op) {
    case OQ_OP_CAST:
        to = oq_node_attr_int(n, "to", 0);
        return oq_dtype_valid((int)to) ? element_bytes((oq_dtype)to) : 0;
    case OQ_OP_CONSTANT_OF_SHAPE:
        a = oq_node_attr(n, "value");
        return a && a->type == OQ_ATTR_TENSOR && a->t ? element_bytes(a->t->dtype) : sizeof(float);
    case OQ_OP_SHAPE:
    case OQ_OP_SIZE: return sizeof(int64_t);
    case OQ_OP_CAST_LIKE:
    case OQ_OP_WHERE: return n->n_inputs > 1 && n->inputs[1] ? element_bytes(n->inputs[1]->constant->dtype) : 0;
    default: return n->n_inputs && n->inputs[0] ? element_bytes(n->inputs[0]->constant->dtype) : 0;
    }
}

/* ---- evaluation ------------------------------------------------------------------ */

/* Runs n alone on its constant inputs: a model of one node whose inputs are
 * borrowed views of n's constants and whose attributes and opset imports are
 * borrowed from n and c->m for the call. outs[i] receives n's i-th present
 * output (owned). */
static oq_status evaluate(const prep_ctx *c, oq_node *n, oq_tensor *outs, oq_err *err)
{
    oq_status st = OQ_OK;
    oq_session *s = NULL;
    oq_node *tn = NULL;
    oq_model *tm = oq_model_create();
    const char **names = calloc((size_t)(n->n_inputs + n->n_outputs) + 1, sizeof *names);
    if (!tm || !names || !(tm->graph = oq_graph_create(tm, NULL))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    tm->ir_version = c->m->ir_version;
    tm->n_opsets = c->m->n_opsets;
    tm->opsets = c->m->opsets;
    oq_graph *tg = tm->graph;
    for (int k = 0; k < n->n_inputs; k++)
        names[k] = n->inputs[k] ? n->inputs[k]->name : "";
    for (int k = 0; k < n->n_outputs; k++)
        names[n->n_inputs + k] = n->outputs[k] ? n->outputs[k]->name : "";
    if (!(tn = oq_graph_add_node(tg, n->op_type, n->domain, n->name, n->n_inputs, names, n->n_outputs,
                                 names + n->n_inputs, err))) {
        st = err->status;
        goto done;
    }
    tn->attrs = n->attrs;
    tn->n_attrs = n->n_attrs;
    for (int k = 0; k < n->n_inputs && !st; k++) {
        if (!tn->inputs[k] || tn->inputs[k]->constant)
            continue;
        oq_tensor *view = malloc(sizeof *view);
        if (!view) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            break;
        }
        *view = *n->inputs[k]->constant;
        view->owns_data = false; /* borrowed: releasing it neither frees nor unmaps the data */
        view->mapping = NULL;
        st = oq_graph_set_constant(tg, tn->inputs[k], view, true, err);
    }
    for (int k = 0; k < tn->n_outputs && !st; k++)
        if (tn->outputs[k])
            st = oq_graph_add_output(tg, tn->outputs[k], err);
    oq_exec_options opts = {.threads = 1};
    if (st || (st = oq_graph_sort(tg, err)) || (st = oq_session_create(&s, tm, &opts, err)))
        goto done;
    st = oq_session_run(s, NULL, outs, err);
done:
    oq_session_destroy(s);
    if (tn) { /* the borrowed attributes go back to n */
        tn->attrs = NULL;
        tn->n_attrs = 0;
    }
    if (tm) {
        tm->opsets = NULL;
        tm->n_opsets = 0;
    }
    oq_model_destroy(tm);
    free(names);
    return st;
}

/* ---- folds ----------------------------------------------------------------------- */

/* The output of Shape node n when its input is a graph input whose declared
 * shape is static (fed tensors must match it), with Shape-15's start and end,
 * as a new int64 tensor in *out; *out = NULL when the shape is not fully known. */
static oq_status static_shape_of(const prep_ctx *c, const oq_node *n, oq_tensor **out, oq_err *err)
{
    const oq_value *x = oq_node_input(n, 0);
    *out = NULL;
    if (!x || !prep_is_input(c->g, x) || x->constant || x->kind != OQ_TYPE_TENSOR || x->rank < 0)
        return OQ_OK;
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d].value < 0 || x->dims[d].param)
            return OQ_OK;
    int64_t r = x->rank, start = 0, end = r;
    if (n->opset >= 15) {
        start = oq_node_attr_int(n, "start", 0);
        end = oq_node_attr_int(n, "end", r);
    }
    start += start < 0 ? r : 0;
    end += end < 0 ? r : 0;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t len = end > start ? end - start : 0;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_INT64, 1, &len, err);
    if (!t)
        return err->status;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)t->data)[i] = x->dims[start + i].value;
    *out = t;
    return OQ_OK;
}

/* Whether every present input of n is a constant (at least one is) and none is a string. */
static bool inputs_constant(const oq_graph *g, const oq_node *n)
{
    int present = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const oq_value *v = n->inputs[k];
        if (!v)
            continue;
        if (!prep_is_constant(g, v) || v->constant->dtype == OQ_DTYPE_STRING)
            return false;
        present++;
    }
    return present > 0;
}

/* Replaces n by its outputs outs[0..n_outputs) (taking ownership). */
static oq_status replace_by_constants(prep_ctx *c, oq_node *n, oq_tensor *outs)
{
    oq_status st = OQ_OK;
    for (int k = 0, j = 0; k < n->n_outputs; k++) {
        if (!n->outputs[k])
            continue;
        oq_tensor *t = st ? NULL : prep_box(&outs[j], c->err);
        oq_tensor_release(&outs[j++]);
        if (!st && (!t || (st = oq_graph_set_constant(c->g, n->outputs[k], t, true, c->err))))
            st = c->err->status;
    }
    if (!st) {
        oq_graph_remove_node(c->g, n);
        c->r->counts[OQ_PREPARE_CONSTANTS_FOLDED]++;
    }
    return st;
}

/* Folds n if it can be: *folded says whether it went. Failures to evaluate
 * (no kernel, a kernel refusing its inputs) leave n in place, so running the
 * prepared model reports them as running the original would. */
static oq_status fold_node(prep_ctx *c, oq_node *n, bool *folded)
{
    *folded = false;
    oq_op_kind op = n->kind;
    fold_rule rule = fold_rules[op];
    int n_out = 0;
    for (int k = 0; k < n->n_outputs; k++) {
        if (n->outputs[k] && prep_is_output(c->g, n->outputs[k]))
            return OQ_OK; /* graph outputs stay computed by nodes */
        n_out += n->outputs[k] != NULL;
    }
    if (rule == FOLD_NEVER || !n_out)
        return OQ_OK;
    oq_tensor *outs = calloc((size_t)n_out, sizeof *outs);
    if (!outs)
        return oq_errf(c->err, OQ_ENOMEM, "out of memory");
    oq_status st = OQ_OK;
    if (rule == FOLD_SHAPE && !inputs_constant(c->g, n)) {
        oq_tensor *t;
        if ((st = static_shape_of(c, n, &t, c->err)) || !t)
            goto done;
        outs[0] = *t;
        free(t);
    } else {
        if (!inputs_constant(c->g, n) || !oq_op_find(n->domain, n->op_type, n->opset))
            goto done;
        size_t in_bytes = 0;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k])
                in_bytes += n->inputs[k]->constant->nbytes;
        size_t allowed = in_bytes > c->fold_max_bytes ? in_bytes : c->fold_max_bytes;
        int64_t elements = rule == FOLD_SHAPE ? OQ_MAX_RANK : output_elements(n, rule);
        size_t esz = output_element_bytes(n, op);
        if (elements < 0 || !esz || (uint64_t)elements > allowed / esz) {
            c->r->counts[OQ_PREPARE_FOLDS_OVER_LIMIT] += elements >= 0 && esz;
            goto done;
        }
        oq_err local = {0};
        if (evaluate(c, n, outs, &local))
            goto done; /* leave it to the run to report */
        size_t out_bytes = 0;
        for (int k = 0; k < n_out; k++)
            out_bytes += outs[k].nbytes;
        if (out_bytes > allowed) {
            c->r->counts[OQ_PREPARE_FOLDS_OVER_LIMIT]++;
            goto done;
        }
    }
    st = replace_by_constants(c, n, outs);
    *folded = !st;
    free(outs);
    return st;
done:
    for (int k = 0; k < n_out; k++)
        oq_tensor_release(&outs[k]);
    free(outs);
    return st;
}

oq_status prep_fold_constants(prep_ctx *c)
{
    oq_graph *g = c->g;
    for (int i = 0; i < g->n_nodes;) { /* in graph order, so chains of folds take one sweep */
        bool folded;
        oq_status st = fold_node(c, g->nodes[i], &folded);
        if (st)
            return st;
        i += !folded; /* a folded node is gone: the same index holds the next one */
    }
    return OQ_OK;
}
