/* opset.c: raising a model's default-domain ("" / ai.onnx) opset import (see
 * oq_model_upgrade_opset in oq_quant.h).
 *
 * The table below lists, for every default-domain operator whose definition
 * changed between opsets 2 and 14, the version of each change and what it
 * takes to carry a node across it: nothing (only types or defaults that the
 * old model could not have used changed), a rewrite (attributes that became
 * inputs, an operator renamed, a changed axis meaning kept with extra nodes),
 * or a refusal naming the node. A node is walked through every change of its
 * operator after the imported opset and up to the target, in version order,
 * so an Upsample-7 becomes Upsample-9, then Resize-10, then Resize-11.
 * Operators that never changed in that span are left as they are. If/Loop/Scan
 * bodies are converted the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_quant.h"

#define OPSET_MAX_TARGET 14

typedef struct upgrader upgrader;
/* Carries node n across one change of its operator (to `version`). */
typedef oq_status (*change_fn)(upgrader *u, oq_node *n, int64_t version, oq_err *err);

typedef struct op_change {
    const char *op;
    int version;    /* the since_version of the new definition */
    change_fn fn;   /* NULL: the old node means the same under the new definition */
} op_change;

struct upgrader {
    oq_model *m;
    int64_t from, target;
    bool added;     /* initializers were added (IR version 4+ keeps them out of graph inputs) */
};

/* ---- small helpers ----------------------------------------------------------- */

static bool is_op(const oq_node *n, const char *op) { return !strcmp(n->op_type, op); }

/* The node's name, or its first output's when it has none. */
static const char *label(const oq_node *n)
{
    return n->name[0] || n->n_outputs < 1 || !n->outputs[0] ? n->name : n->outputs[0]->name;
}

static oq_status refuse(const oq_node *n, int64_t version, const char *why, oq_err *err)
{
    return oq_errf(err, OQ_EUNSUPPORTED, "node '%s' (%s): cannot carry it to opset %lld: %s", label(n), n->op_type,
                   (long long)version, why);
}

/* True when v is read by a node (also through a subgraph) or is an output of its graph. */
static bool value_used(const oq_value *v)
{
    if (!v)
        return false;
    if (v->n_consumers > 0)
        return true;
    for (int i = 0; i < v->graph->n_outputs; i++)
        if (v->graph->outputs[i] == v)
            return true;
    return false;
}

/* Rank of v when a declaration or a constant tells it, else -1. */
static int value_rank(const oq_value *v)
{
    if (v->constant)
        return v->constant->rank;
    return v->kind == OQ_TYPE_TENSOR ? v->rank : -1;
}

/* Element type of v: declared, constant, or followed back through producers
 * whose first output has their first input's type (and Cast). UNDEFINED when
 * nothing says. */
static oq_dtype value_dtype(const oq_value *v)
{
    static const char *const same_as_x[] = {
        "Abs", "Add", "AveragePool", "BatchNormalization", "Ceil", "Clip", "Concat", "Conv", "ConvTranspose",
        "DepthToSpace", "Div", "Dropout", "Elu", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm",
        "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "Hardmax", "Identity", "InstanceNormalization", "LRN",
        "LeakyRelu", "Log", "LogSoftmax", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mul", "Neg", "PRelu", "Pad",
        "Pow", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
        "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "Selu", "Sigmoid",
        "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh",
        "Tile", "Transpose", "Unsqueeze", "Upsample",
    };
    /* a DAG: following first inputs back always ends */
    while (v) {
        if (v->constant)
            return v->constant->dtype;
        if (v->kind == OQ_TYPE_TENSOR && v->dtype != OQ_DTYPE_UNDEFINED)
            return v->dtype;
        const oq_node *p = v->producer;
        if (!p || p->domain[0])
            return OQ_DTYPE_UNDEFINED;
        if (is_op(p, "Cast")) {
            int64_t to = oq_node_attr_int(p, "to", 0);
            return oq_dtype_valid((int)to) ? (oq_dtype)to : OQ_DTYPE_UNDEFINED;
        }
        if (p->n_outputs < 1 || (p->outputs[0] != v && !is_op(p, "Split")))
            return OQ_DTYPE_UNDEFINED;
        bool same = false;
        for (size_t i = 0; i < sizeof same_as_x / sizeof same_as_x[0] && !same; i++)
            same = is_op(p, same_as_x[i]);
        if (!same)
            return OQ_DTYPE_UNDEFINED;
        v = oq_node_input(p, 0);
    }
    return OQ_DTYPE_UNDEFINED;
}

/* New initializer in n's graph holding t (ownership taken), named after n's
 * first output and `suffix`; NULL on failure. */
static oq_value *add_constant(upgrader *u, oq_node *n, const char *suffix, oq_tensor *t, oq_err *err)
{
    if (!t)
        return NULL;
    const char *base = n->n_outputs > 0 && n->outputs[0] ? n->outputs[0]->name : n->name;
    char *want = malloc(strlen(base) + strlen(suffix) + 2);
    char *name = NULL;
    if (want) {
        sprintf(want, "%s_%s", base, suffix);
        name = oq_graph_unique_name(n->graph, want);
    }
    free(want);
    oq_value *v = name ? oq_graph_value(n->graph, name, err) : NULL;
    if (!name)
        oq_errf(err, OQ_ENOMEM, "out of memory");
    free(name);
    if (!v || oq_graph_set_constant(n->graph, v, t, true, err)) {
        if (!v)
            oq_tensor_destroy(t);
        return NULL;
    }
    oq_dim dims[OQ_MAX_RANK];
    for (int i = 0; i < t->rank; i++)
        dims[i] = (oq_dim){.value = t->dims[i]};
    if (oq_value_set_tensor_type(v, t->dtype, t->rank, dims, err))
        return NULL;
    u->added = true;
    return v;
}

/* Sets input k of n to v, appending omitted inputs up to k. */
static oq_status set_input(oq_node *n, int k, oq_value *v, oq_err *err)
{
    oq_status st;
    while (n->n_inputs < k)
        if ((st = oq_node_set_input(n, n->n_inputs, NULL, err)))
            return st;
    return oq_node_set_input(n, k, v, err);
}

/* Moves INTS attribute `attr` of n into a 1-D int64 initializer at input k and
 * removes the attribute. Absent attribute: nothing (the input stays omitted). */
static oq_status ints_attr_to_input(upgrader *u, oq_node *n, const char *attr, int k, oq_err *err)
{
    const oq_attr *a = oq_node_attr(n, attr);
    if (!a)
        return OQ_OK;
    if (a->type != OQ_ATTR_INTS && a->type != OQ_ATTR_INT)
        return oq_errf(err, OQ_EINVAL, "node '%s' (%s): attribute '%s' is not a list of integers", label(n),
                       n->op_type, attr);
    const bool one = a->type == OQ_ATTR_INT;
    int64_t len = one ? 1 : a->n;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_INT64, 1, &len, err);
    if (!t)
        return err->status;
    if (one)
        ((int64_t *)t->data)[0] = a->i;
    else if (len)
        memcpy(t->data, a->ints, (size_t)len * sizeof(int64_t));
    oq_value *v = add_constant(u, n, attr, t, err);
    if (!v)
        return err->status;
    oq_node_remove_attr(n, attr);
    return set_input(n, k, v, err);
}

/* A rank-0 tensor of dt holding x; NULL (error set) for a non-float dt. */
static oq_tensor *float_scalar(oq_dtype dt, double x, const oq_node *n, oq_err *err)
{
    if (dt != OQ_DTYPE_FLOAT && dt != OQ_DTYPE_DOUBLE && dt != OQ_DTYPE_FLOAT16) {
        oq_errf(err, OQ_EUNSUPPORTED, "node '%s' (%s): its input's element type is %s, not a float type the old %s took",
                label(n), n->op_type, dt == OQ_DTYPE_UNDEFINED ? "unknown" : oq_dtype_name(dt), n->op_type);
        return NULL;
    }
    oq_tensor *t = oq_tensor_create(dt, 0, NULL, err);
    if (!t)
        return NULL;
    if (dt == OQ_DTYPE_FLOAT)
        *(float *)t->data = (float)x;
    else if (dt == OQ_DTYPE_DOUBLE)
        *(double *)t->data = x;
    else
        *(uint16_t *)t->data = oq_f32_to_f16((float)x);
    return t;
}

/* ---- changes --------------------------------------------------------------------- */

/* The op does not exist at the imported opset: the model is not valid ONNX there. */
static oq_status op_absent(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    return oq_errf(err, OQ_EINVAL, "node '%s' (%s): the operator first appears in opset %lld, the model imports %lld",
                   label(n), n->op_type, (long long)version, (long long)u->from);
}

static oq_status not_convertible(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    char why[96];
    snprintf(why, sizeof why, "%s changed meaning at opset %lld in a way onnxq does not rewrite", n->op_type,
             (long long)version);
    return refuse(n, version, why, err);
}

/* Opset 6 dropped the legacy `consumed_inputs` hint (it never changed results). */
static oq_status drop_consumed_inputs(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u, (void)version, (void)err;
    oq_node_remove_attr(n, "consumed_inputs");
    return OQ_OK;
}

/* Cast-6 takes `to` as a number; Cast-1 took a type name. */
static oq_status cast_6(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    const oq_attr *a = oq_node_attr(n, "to");
    if (a && a->type == OQ_ATTR_STRING)
        return refuse(n, version, "attribute 'to' names a type as a string (Cast-1)", err);
    return OQ_OK;
}

/* Concat-4 requires `axis`; Concat-1 defaulted to 1. */
static oq_status concat_4(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u, (void)version;
    return oq_node_attr(n, "axis") ? OQ_OK : oq_node_set_attr_int(n, "axis", 1, err);
}

/* Reshape-5 reads the shape from input 1 instead of attribute `shape`. */
static oq_status reshape_5(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)version;
    oq_node_remove_attr(n, "consumed_inputs");
    return ints_attr_to_input(u, n, "shape", 1, err);
}

/* BatchNormalization-7 and Dropout-7 have no `is_test`: they always mean
 * inference, which is what is_test = 1 (or an absent attribute, as ONNX's own
 * converter reads it) asked for. Training mode has no equivalent. */
static oq_status drop_is_test(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    const oq_attr *a = oq_node_attr(n, "is_test");
    if (a && a->type == OQ_ATTR_INT && a->i == 0)
        return refuse(n, version, "is_test = 0 (training mode) has no equivalent after opset 6", err);
    oq_node_remove_attr(n, "is_test");
    oq_node_remove_attr(n, "consumed_inputs");
    return OQ_OK;
}

/* Opset 7 replaced the `broadcast`/`axis` attributes of the binary operators
 * by numpy broadcasting. Without broadcast the shapes were equal; with it,
 * B's dims lined up with A's starting at `axis` (default: the trailing dims),
 * which numpy broadcasting also does once B has rank(A) - axis dims, so B
 * gets trailing 1s when it is a constant. */
static oq_status legacy_broadcast(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    const bool bcast = oq_node_attr_int(n, "broadcast", 0) != 0;
    const oq_attr *ax = oq_node_attr(n, "axis");
    if (bcast && ax) {
        oq_value *a = oq_node_input(n, 0), *b = oq_node_input(n, 1);
        int ra = a ? value_rank(a) : -1, rb = b ? value_rank(b) : -1;
        int64_t axis = ax->i;
        if (ra < 0 || rb < 0)
            return refuse(n, version, "legacy broadcast with an axis needs both input ranks declared", err);
        if (axis < 0)
            axis += ra;
        if (axis < 0 || axis + rb > ra)
            return refuse(n, version, "legacy broadcast axis does not fit the input ranks", err);
        if (axis + rb < ra) {
            if (!b->constant)
                return refuse(n, version, "legacy broadcast along a middle axis needs B to be a constant", err);
            oq_tensor *t = malloc(sizeof *t);
            if (!t || oq_tensor_copy(t, b->constant, err)) {
                free(t);
                return t ? err->status : oq_errf(err, OQ_ENOMEM, "out of memory");
            }
            for (int d = rb; d < ra - (int)axis; d++)
                t->dims[d] = 1;
            t->rank = ra - (int)axis;
            oq_value *v = add_constant(u, n, "b", t, err);
            if (!v)
                return err->status;
            n->inputs[1] = v;
        }
    }
    oq_node_remove_attr(n, "broadcast");
    oq_node_remove_attr(n, "axis");
    oq_node_remove_attr(n, "consumed_inputs");
    return OQ_OK;
}

/* Gemm-7 broadcasts C without being asked. */
static oq_status gemm_7(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u, (void)version, (void)err;
    oq_node_remove_attr(n, "broadcast");
    return OQ_OK;
}

/* RNN/GRU/LSTM-7 dropped `output_sequence` (Y is produced when named). */
static oq_status rnn_7(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    if (oq_node_attr(n, "output_sequence"))
        return refuse(n, version, "attribute 'output_sequence' has no equivalent", err);
    return OQ_OK;
}

/* BatchNormalization-9 dropped `spatial` (always 1 now). */
/* BatchNormalization-14 keeps only Y outside training mode: the old optional
 * outputs (running and saved statistics) must be unused. */
static oq_status batchnorm_14(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    for (int k = 1; k < n->n_outputs; k++)
        if (n->outputs[k])
            return refuse(n, version, "it writes the training-mode statistics outputs", err);
    return OQ_OK;
}

static oq_status batchnorm_9(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    if (oq_node_attr_int(n, "spatial", 1) != 1)
        return refuse(n, version, "spatial = 0 (per-element statistics) has no equivalent", err);
    oq_node_remove_attr(n, "spatial");
    return OQ_OK;
}

/* Upsample-9 reads `scales` from input 1. */
static oq_status upsample_9(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    const oq_attr *a = oq_node_attr(n, "scales");
    if (!a || a->type != OQ_ATTR_FLOATS)
        return refuse(n, version, "attribute 'scales' is missing", err);
    int64_t len = a->n;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, 1, &len, err);
    if (!t)
        return err->status;
    if (len)
        memcpy(t->data, a->floats, (size_t)len * sizeof(float));
    oq_value *v = add_constant(u, n, "scales", t, err);
    if (!v)
        return err->status;
    oq_node_remove_attr(n, "scales");
    return set_input(n, 1, v, err);
}

/* Upsample is deprecated from opset 10; Resize-10 is the same operator. */
static oq_status upsample_10(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u, (void)version;
    return oq_node_set_op_type(n, "Resize", err);
}

/* Scatter is deprecated from opset 11; ScatterElements-11 is the same operator. */
static oq_status scatter_11(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u, (void)version;
    return oq_node_set_op_type(n, "ScatterElements", err);
}

/* Dropout-10 made the mask output bool (it was the data type, and undefined
 * in inference); a mask nothing reads is dropped, a read one refused. */
static oq_status dropout_mask(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u;
    if (n->n_outputs > 1 && n->outputs[1]) {
        if (value_used(n->outputs[1]))
            return refuse(n, version, "its mask output is read and changed type", err);
        oq_node_set_output(n, 1, NULL);
        n->n_outputs = 1;
    }
    return OQ_OK;
}

/* Slice-10 reads starts/ends/axes from inputs 1..3. */
static oq_status slice_10(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    if (!oq_node_attr(n, "starts") || !oq_node_attr(n, "ends"))
        return refuse(n, version, "attribute 'starts' or 'ends' is missing", err);
    oq_status st;
    if ((st = ints_attr_to_input(u, n, "starts", 1, err)) || (st = ints_attr_to_input(u, n, "ends", 2, err)) ||
        (st = ints_attr_to_input(u, n, "axes", 3, err)))
        return st;
    return OQ_OK;
}

/* TopK-10 reads k from input 1 (int64, shape [1]). */
static oq_status topk_10(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    if (!oq_node_attr(n, "k"))
        return refuse(n, version, "attribute 'k' is missing", err);
    return ints_attr_to_input(u, n, "k", 1, err);
}

/* Resize-11 says how coordinates map and how nearest rounds; Resize-10 (and
 * Upsample) mapped x_out / scale and rounded down when enlarging. When
 * shrinking, runtimes disagree on the rounding, so only constant scales
 * that are all >= 1 are carried over. roi is input 1 from opset 11 (unused
 * here: an empty tensor), scales move to input 2. */
static oq_status resize_11(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    oq_value *scales = oq_node_input(n, 1);
    if (!scales || !scales->constant)
        return refuse(n, version, "Resize-10 scales must be a constant to choose its rounding", err);
    const oq_tensor *s = scales->constant;
    if (s->dtype != OQ_DTYPE_FLOAT)
        return refuse(n, version, "Resize-10 scales are not float", err);
    for (int64_t i = 0; i < oq_tensor_numel(s); i++)
        if (!(((const float *)s->data)[i] >= 1.0f))
            return refuse(n, version, "Resize-10 downsampling rounds differently across runtimes", err);
    const char *mode = oq_node_attr_string(n, "mode", "nearest");
    if (strcmp(mode, "nearest") && strcmp(mode, "linear"))
        return refuse(n, version, "unknown Resize-10 mode", err);
    int64_t zero = 0;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, 1, &zero, err);
    oq_value *roi = add_constant(u, n, "roi", t, err);
    if (!roi)
        return err->status;
    oq_status st;
    if ((st = set_input(n, 2, scales, err)) || (st = set_input(n, 1, roi, err)) ||
        (st = oq_node_set_attr_string(n, "coordinate_transformation_mode", "asymmetric", err)))
        return st;
    if (!strcmp(mode, "nearest") && (st = oq_node_set_attr_string(n, "nearest_mode", "floor", err)))
        return st;
    return OQ_OK;
}

/* Clip-11 reads min/max from optional scalar inputs of the data type. */
static oq_status clip_11(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)version;
    const oq_attr *lo = oq_node_attr(n, "min"), *hi = oq_node_attr(n, "max");
    oq_node_remove_attr(n, "consumed_inputs");
    if (!lo && !hi)
        return OQ_OK;
    oq_dtype dt = value_dtype(oq_node_input(n, 0));
    const char *names[2] = {"min", "max"};
    const oq_attr *attrs[2] = {lo, hi};
    for (int k = 0; k < 2; k++) {
        if (!attrs[k])
            continue;
        oq_value *v = add_constant(u, n, names[k], float_scalar(dt, attrs[k]->f, n, err), err);
        if (!v || set_input(n, 1 + k, v, err))
            return err->status;
    }
    oq_node_remove_attr(n, "min");
    oq_node_remove_attr(n, "max");
    return OQ_OK;
}

/* Pad-11 reads pads (int64) and the constant value (data type) from inputs. */
static oq_status pad_11(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    if (!oq_node_attr(n, "pads"))
        return refuse(n, version, "attribute 'pads' is missing", err);
    oq_status st = ints_attr_to_input(u, n, "pads", 1, err);
    const oq_attr *val = oq_node_attr(n, "value");
    if (st || !val)
        return st;
    oq_value *v = add_constant(u, n, "value", float_scalar(value_dtype(oq_node_input(n, 0)), val->f, n, err), err);
    if (!v || set_input(n, 2, v, err))
        return err->status;
    oq_node_remove_attr(n, "value");
    return OQ_OK;
}

/* Dropout-12 reads `ratio` from input 1 and defines the inference mask (all
 * true), which runtimes filled differently before; a read mask is refused. */
static oq_status dropout_12(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    if (n->n_outputs > 1 && value_used(n->outputs[1]))
        return refuse(n, version, "its mask output is read, and runtimes disagree on it before opset 12", err);
    const oq_attr *a = oq_node_attr(n, "ratio");
    if (!a)
        return OQ_OK;
    oq_value *v = add_constant(u, n, "ratio", float_scalar(OQ_DTYPE_FLOAT, a->f, n, err), err);
    if (!v || set_input(n, 1, v, err))
        return err->status;
    oq_node_remove_attr(n, "ratio");
    return OQ_OK;
}

/* Squeeze/Unsqueeze/ReduceSum-13 read axes from input 1. */
static oq_status axes_13(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)version;
    return ints_attr_to_input(u, n, "axes", 1, err);
}

/* Split-13 reads the part sizes from input 1. */
static oq_status split_13(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)version;
    return ints_attr_to_input(u, n, "split", 1, err);
}

/* Before opset 13, Softmax/LogSoftmax/Hardmax coerced the input to 2-D at
 * `axis` (default 1) and normalized each row; from 13 they normalize along
 * `axis` (default -1). The same axis means the same when it is the last one;
 * otherwise the old meaning is kept literally:
 *   Shape(x) -> s;  Flatten(x, axis) -> f;  op(f, axis=-1) -> r;  Reshape(r, s) -> y */
static oq_status softmax_13(upgrader *u, oq_node *n, int64_t version, oq_err *err)
{
    (void)u, (void)version;
    oq_value *x = oq_node_input(n, 0), *y = n->n_outputs > 0 ? n->outputs[0] : NULL;
    if (!x || !y)
        return oq_errf(err, OQ_EINVAL, "node '%s' (%s): input or output missing", label(n), n->op_type);
    int64_t axis = oq_node_attr_int(n, "axis", 1);
    int rank = value_rank(x);
    if (axis < 0 && rank >= 0)
        axis += rank;
    if (axis == -1 || (rank >= 0 && axis == rank - 1))
        return oq_node_set_attr_int(n, "axis", -1, err);

    oq_status st = OQ_OK;
    char *names[3] = {NULL, NULL, NULL}; /* shape, flat, result */
    static const char *const suffix[3] = {"shape", "flat", "rows"};
    for (int k = 0; k < 3; k++) {
        char *want = malloc(strlen(y->name) + 8);
        if (want)
            sprintf(want, "%s_%s", y->name, suffix[k]);
        names[k] = want ? oq_graph_unique_name(n->graph, want) : NULL;
        free(want);
        if (!names[k]) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        if (!oq_graph_value(n->graph, names[k], err)) { /* reserve the name */
            st = err->status;
            goto fail;
        }
    }
    oq_graph *g = n->graph;
    const char *shape_in[1] = {x->name}, *shape_out[1] = {names[0]};
    const char *flat_out[1] = {names[1]}, *rs_in[2] = {names[2], names[0]}, *rs_out[1] = {y->name};
    oq_node *shp = oq_graph_add_node(g, "Shape", "", names[0], 1, shape_in, 1, shape_out, err);
    oq_node *flat = shp ? oq_graph_add_node(g, "Flatten", "", names[1], 1, shape_in, 1, flat_out, err) : NULL;
    if (!flat || (st = oq_node_set_attr_int(flat, "axis", axis, err))) {
        st = err->status;
        goto fail;
    }
    /* x may live in an enclosing graph: the new nodes read the same value */
    shp->inputs[0] = x;
    flat->inputs[0] = x;
    oq_value *rows = oq_graph_find_local(g, names[2]);
    n->inputs[0] = oq_graph_find_local(g, names[1]);
    oq_node_set_output(n, 0, rows);
    if (!oq_graph_add_node(g, "Reshape", "", names[2], 2, rs_in, 1, rs_out, err) ||
        (st = oq_node_set_attr_int(n, "axis", -1, err))) {
        st = err->status;
        goto fail;
    }
fail:
    for (int k = 0; k < 3; k++)
        free(names[k]);
    return st;
}

/* Every change of a default-domain operator definition from opset 2 to 13,
 * in version order per operator (from the ONNX operator changelog). */
static const op_change changes[] = {
    {"Abs", 6, drop_consumed_inputs}, {"Abs", 13, NULL},
    {"Acos", 7, op_absent},
    {"Acosh", 9, op_absent},
    {"Add", 6, drop_consumed_inputs}, {"Add", 7, legacy_broadcast}, {"Add", 13, NULL}, {"Add", 14, NULL},
    {"And", 7, legacy_broadcast},
    {"ArgMax", 11, NULL}, {"ArgMax", 12, NULL}, {"ArgMax", 13, NULL},
    {"ArgMin", 11, NULL}, {"ArgMin", 12, NULL}, {"ArgMin", 13, NULL},
    {"Asin", 7, op_absent},
    {"Asinh", 9, op_absent},
    {"Atan", 7, op_absent},
    {"Atanh", 9, op_absent},
    {"AveragePool", 7, NULL}, {"AveragePool", 10, NULL}, {"AveragePool", 11, NULL},
    {"BatchNormalization", 6, drop_consumed_inputs}, {"BatchNormalization", 7, drop_is_test},
    {"BatchNormalization", 9, batchnorm_9}, {"BatchNormalization", 14, batchnorm_14},
    {"BitShift", 11, op_absent},
    {"Cast", 6, cast_6}, {"Cast", 9, NULL}, {"Cast", 13, NULL},
    {"Ceil", 6, drop_consumed_inputs}, {"Ceil", 13, NULL},
    {"Celu", 12, op_absent},
    {"Clip", 6, drop_consumed_inputs}, {"Clip", 11, clip_11}, {"Clip", 12, NULL}, {"Clip", 13, NULL},
    {"Compress", 9, op_absent}, {"Compress", 11, NULL},
    {"Concat", 4, concat_4}, {"Concat", 11, NULL}, {"Concat", 13, NULL},
    {"ConcatFromSequence", 11, op_absent},
    {"Constant", 9, NULL}, {"Constant", 11, NULL}, {"Constant", 12, NULL}, {"Constant", 13, NULL},
    {"ConstantOfShape", 9, op_absent},
    {"Conv", 11, NULL},
    {"ConvInteger", 10, op_absent},
    {"ConvTranspose", 11, NULL},
    {"Cos", 7, op_absent},
    {"Cosh", 9, op_absent},
    {"CumSum", 11, op_absent}, {"CumSum", 14, NULL},
    {"DepthToSpace", 11, NULL}, {"DepthToSpace", 13, NULL},
    {"DequantizeLinear", 10, op_absent}, {"DequantizeLinear", 13, NULL},
    {"Det", 11, op_absent},
    {"Div", 6, drop_consumed_inputs}, {"Div", 7, legacy_broadcast}, {"Div", 13, NULL}, {"Div", 14, NULL},
    {"Dropout", 6, drop_consumed_inputs}, {"Dropout", 7, drop_is_test}, {"Dropout", 10, dropout_mask},
    {"Dropout", 12, dropout_12}, {"Dropout", 13, NULL},
    {"DynamicQuantizeLinear", 11, op_absent},
    {"Einsum", 12, op_absent},
    {"Elu", 6, drop_consumed_inputs},
    {"Equal", 7, legacy_broadcast}, {"Equal", 11, NULL}, {"Equal", 13, NULL},
    {"Erf", 9, op_absent}, {"Erf", 13, NULL},
    {"Exp", 6, drop_consumed_inputs}, {"Exp", 13, NULL},
    {"Expand", 8, op_absent}, {"Expand", 13, NULL},
    {"EyeLike", 9, op_absent},
    {"Flatten", 9, NULL}, {"Flatten", 11, NULL}, {"Flatten", 13, NULL},
    {"Floor", 6, drop_consumed_inputs}, {"Floor", 13, NULL},
    {"GRU", 3, not_convertible}, {"GRU", 7, rnn_7}, {"GRU", 14, NULL},
    {"Gather", 11, NULL}, {"Gather", 13, NULL},
    {"GatherElements", 11, op_absent}, {"GatherElements", 13, NULL},
    {"GatherND", 11, op_absent}, {"GatherND", 12, NULL}, {"GatherND", 13, NULL},
    {"Gemm", 6, drop_consumed_inputs}, {"Gemm", 7, gemm_7}, {"Gemm", 9, NULL}, {"Gemm", 11, NULL},
    {"Gemm", 13, NULL},
    {"GlobalLpPool", 2, NULL},
    {"Greater", 7, legacy_broadcast}, {"Greater", 9, NULL}, {"Greater", 13, NULL},
    {"GreaterOrEqual", 12, op_absent},
    {"HardSigmoid", 6, drop_consumed_inputs},
    {"HardSwish", 14, op_absent},
    {"Hardmax", 11, NULL}, {"Hardmax", 13, softmax_13},
    {"Identity", 13, NULL}, {"Identity", 14, NULL},
    {"If", 11, NULL}, {"If", 13, NULL},
    {"InstanceNormalization", 6, drop_consumed_inputs},
    {"IsInf", 10, op_absent},
    {"IsNaN", 9, op_absent}, {"IsNaN", 13, NULL},
    {"LRN", 13, NULL},
    {"LSTM", 7, rnn_7}, {"LSTM", 14, NULL},
    {"LeakyRelu", 6, drop_consumed_inputs},
    {"Less", 7, legacy_broadcast}, {"Less", 9, NULL}, {"Less", 13, NULL},
    {"LessOrEqual", 12, op_absent},
    {"Log", 6, drop_consumed_inputs}, {"Log", 13, NULL},
    {"LogSoftmax", 11, NULL}, {"LogSoftmax", 13, softmax_13},
    {"Loop", 11, NULL}, {"Loop", 13, NULL},
    {"LpPool", 2, NULL}, {"LpPool", 11, NULL},
    {"MatMul", 9, NULL}, {"MatMul", 13, NULL},
    {"MatMulInteger", 10, op_absent},
    {"Max", 6, drop_consumed_inputs}, {"Max", 8, NULL}, {"Max", 12, NULL}, {"Max", 13, NULL},
    {"MaxPool", 8, NULL}, {"MaxPool", 10, NULL}, {"MaxPool", 11, NULL}, {"MaxPool", 12, NULL},
    {"MaxUnpool", 9, op_absent}, {"MaxUnpool", 11, NULL},
    {"Mean", 6, drop_consumed_inputs}, {"Mean", 8, NULL}, {"Mean", 13, NULL},
    {"MeanVarianceNormalization", 9, op_absent}, {"MeanVarianceNormalization", 13, NULL},
    {"Min", 6, drop_consumed_inputs}, {"Min", 8, NULL}, {"Min", 12, NULL}, {"Min", 13, NULL},
    {"Mod", 10, op_absent}, {"Mod", 13, NULL},
    {"Mul", 6, drop_consumed_inputs}, {"Mul", 7, legacy_broadcast}, {"Mul", 13, NULL}, {"Mul", 14, NULL},
    {"Multinomial", 7, op_absent},
    {"Neg", 6, drop_consumed_inputs}, {"Neg", 13, NULL},
    {"NegativeLogLikelihoodLoss", 12, op_absent}, {"NegativeLogLikelihoodLoss", 13, NULL},
    {"NonMaxSuppression", 10, op_absent}, {"NonMaxSuppression", 11, NULL},
    {"NonZero", 9, op_absent}, {"NonZero", 13, NULL},
    {"OneHot", 9, op_absent}, {"OneHot", 11, NULL},
    {"Or", 7, legacy_broadcast},
    {"PRelu", 6, drop_consumed_inputs}, {"PRelu", 7, NULL}, {"PRelu", 9, NULL},
    {"Pad", 2, not_convertible}, {"Pad", 11, pad_11}, {"Pad", 13, NULL},
    {"Pow", 7, legacy_broadcast}, {"Pow", 12, NULL}, {"Pow", 13, NULL},
    {"QLinearConv", 10, op_absent},
    {"QLinearMatMul", 10, op_absent},
    {"QuantizeLinear", 10, op_absent}, {"QuantizeLinear", 13, NULL},
    {"RNN", 7, rnn_7}, {"RNN", 14, NULL},
    {"Range", 11, op_absent},
    {"Reciprocal", 6, drop_consumed_inputs}, {"Reciprocal", 13, NULL},
    {"ReduceL1", 11, NULL}, {"ReduceL1", 13, NULL},
    {"ReduceL2", 11, NULL}, {"ReduceL2", 13, NULL},
    {"ReduceLogSum", 11, NULL}, {"ReduceLogSum", 13, NULL},
    {"ReduceLogSumExp", 11, NULL}, {"ReduceLogSumExp", 13, NULL},
    {"ReduceMax", 11, NULL}, {"ReduceMax", 12, NULL}, {"ReduceMax", 13, NULL},
    {"ReduceMean", 11, NULL}, {"ReduceMean", 13, NULL},
    {"ReduceMin", 11, NULL}, {"ReduceMin", 12, NULL}, {"ReduceMin", 13, NULL},
    {"ReduceProd", 11, NULL}, {"ReduceProd", 13, NULL},
    {"ReduceSum", 11, NULL}, {"ReduceSum", 13, axes_13},
    {"ReduceSumSquare", 11, NULL}, {"ReduceSumSquare", 13, NULL},
    {"Relu", 6, drop_consumed_inputs}, {"Relu", 13, NULL}, {"Relu", 14, NULL},
    {"Reshape", 5, reshape_5}, {"Reshape", 13, NULL}, {"Reshape", 14, NULL},
    {"Resize", 10, op_absent}, {"Resize", 11, resize_11}, {"Resize", 13, NULL},
    {"ReverseSequence", 10, op_absent},
    {"RoiAlign", 10, op_absent},
    {"Round", 11, op_absent},
    {"Scan", 8, op_absent}, {"Scan", 9, not_convertible}, {"Scan", 11, NULL},
    {"Scatter", 9, op_absent}, {"Scatter", 11, scatter_11},
    {"ScatterElements", 11, op_absent}, {"ScatterElements", 13, NULL},
    {"ScatterND", 11, op_absent}, {"ScatterND", 13, NULL},
    {"Selu", 6, drop_consumed_inputs},
    {"SequenceAt", 11, op_absent},
    {"SequenceConstruct", 11, op_absent},
    {"SequenceEmpty", 11, op_absent},
    {"SequenceErase", 11, op_absent},
    {"SequenceInsert", 11, op_absent},
    {"SequenceLength", 11, op_absent},
    {"Shape", 13, NULL},
    {"Shrink", 9, op_absent},
    {"Sigmoid", 6, drop_consumed_inputs}, {"Sigmoid", 13, NULL},
    {"Sign", 9, op_absent}, {"Sign", 13, NULL},
    {"Sin", 7, op_absent},
    {"Sinh", 9, op_absent},
    {"Size", 13, NULL},
    {"Slice", 10, slice_10}, {"Slice", 11, NULL}, {"Slice", 13, NULL},
    {"Softmax", 11, NULL}, {"Softmax", 13, softmax_13},
    {"SoftmaxCrossEntropyLoss", 12, op_absent}, {"SoftmaxCrossEntropyLoss", 13, NULL},
    {"SpaceToDepth", 13, NULL},
    {"Split", 2, not_convertible}, {"Split", 11, NULL}, {"Split", 13, split_13},
    {"SplitToSequence", 11, op_absent},
    {"Sqrt", 6, drop_consumed_inputs}, {"Sqrt", 13, NULL},
    {"Squeeze", 11, NULL}, {"Squeeze", 13, axes_13},
    {"StringNormalizer", 10, op_absent},
    {"Sub", 6, drop_consumed_inputs}, {"Sub", 7, legacy_broadcast}, {"Sub", 13, NULL}, {"Sub", 14, NULL},
    {"Sum", 6, drop_consumed_inputs}, {"Sum", 8, NULL}, {"Sum", 13, NULL},
    {"Tan", 7, op_absent},
    {"Tanh", 6, drop_consumed_inputs}, {"Tanh", 13, NULL},
    {"TfIdfVectorizer", 9, op_absent},
    {"ThresholdedRelu", 10, op_absent},
    {"Tile", 6, not_convertible}, {"Tile", 13, NULL},
    {"TopK", 10, topk_10}, {"TopK", 11, NULL},
    {"Transpose", 13, NULL},
    {"Trilu", 14, op_absent},
    {"Unique", 11, op_absent},
    {"Unsqueeze", 11, NULL}, {"Unsqueeze", 13, axes_13},
    {"Upsample", 7, not_convertible}, {"Upsample", 9, upsample_9}, {"Upsample", 10, upsample_10},
    {"Where", 9, op_absent},
    {"Xor", 7, legacy_broadcast},
};

/* The first change of `op` after version `after` and at most `upto`, or NULL. */
static const op_change *next_change(const char *op, int64_t after, int64_t upto)
{
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        if (changes[i].version > after && changes[i].version <= upto && !strcmp(changes[i].op, op))
            return &changes[i];
    return NULL;
}

/* ---- the pass ---------------------------------------------------------------------- */

static oq_status upgrade_graph(upgrader *u, oq_graph *g, oq_err *err);

static oq_status upgrade_node(upgrader *u, oq_node *n, oq_err *err)
{
    oq_status st;
    for (int i = 0; i < n->n_attrs; i++) {
        oq_attr *a = &n->attrs[i];
        if (a->type == OQ_ATTR_GRAPH && a->g && (st = upgrade_graph(u, a->g, err)))
            return st;
        for (int k = 0; a->type == OQ_ATTR_GRAPHS && k < a->n; k++)
            if ((st = upgrade_graph(u, a->graphs[k], err)))
                return st;
    }
    if (n->domain[0])
        return OQ_OK;
    int64_t at = u->from;
    for (const op_change *c; (c = next_change(n->op_type, at, u->target)); at = c->version)
        if (c->fn && (st = c->fn(u, n, c->version, err)))
            return st;
    return OQ_OK;
}

static oq_status upgrade_graph(upgrader *u, oq_graph *g, oq_err *err)
{
    oq_status st = oq_graph_index(g, err);
    /* nodes added on the way are already written for the target opset */
    const int n0 = g->n_nodes;
    for (int i = 0; i < n0 && !st; i++)
        st = upgrade_node(u, g->nodes[i], err);
    return st;
}

/* Records the new default-domain opset on every node of g and its subgraphs. */
static void set_node_opsets(oq_graph *g, int64_t version)
{
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i];
        if (!n->domain[0])
            n->opset = version;
        for (int k = 0; k < n->n_attrs; k++) {
            oq_attr *a = &n->attrs[k];
            if (a->type == OQ_ATTR_GRAPH && a->g)
                set_node_opsets(a->g, version);
            for (int j = 0; a->type == OQ_ATTR_GRAPHS && j < a->n; j++)
                set_node_opsets(a->graphs[j], version);
        }
    }
}

oq_status oq_model_upgrade_opset(oq_model *m, int64_t target, oq_err *err)
{
    oq_err local = {0}; /* the helpers read err->status */
    if (!err)
        err = &local;
    oq_opset *imp = NULL;
    for (int i = 0; i < m->n_opsets; i++)
        if (!m->opsets[i].domain || !m->opsets[i].domain[0] || !strcmp(m->opsets[i].domain, "ai.onnx"))
            imp = &m->opsets[i];
    if (!imp)
        return oq_errf(err, OQ_EINVAL, "the model imports no default-domain (ai.onnx) opset");
    if (target < imp->version)
        return oq_errf(err, OQ_EINVAL, "the model imports opset %lld; cannot lower it to %lld", (long long)imp->version,
                       (long long)target);
    if (target > OPSET_MAX_TARGET)
        return oq_errf(err, OQ_EUNSUPPORTED, "upgrading to opset %lld is not supported (at most %d)",
                       (long long)target, OPSET_MAX_TARGET);
    if (target == imp->version)
        return OQ_OK;
    upgrader u = {.m = m, .from = imp->version, .target = target};
    oq_status st = upgrade_graph(&u, m->graph, err);
    if (st)
        return st;
    imp->version = target;
    set_node_opsets(m->graph, target);
    /* the IR version ONNX released with the target opset (and 4+ once initializers were added) */
    static const int64_t ir_for_opset[OPSET_MAX_TARGET + 1] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 7, 7};
    int64_t ir = ir_for_opset[target];
    if (u.added && ir < 4)
        ir = 4;
    if (m->ir_version < ir)
        m->ir_version = ir;
    return oq_graph_sort(m->graph, err);
}
