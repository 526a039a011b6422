/* pairing.c: which float tensor each tensor of a quantized model stands for,
 * and the scale and zero point that dequantize it (the rules are in
 * oq_compare.h). Works on the two graphs alone, before anything runs. */
#include <stdlib.h>
#include <string.h>

#include "analysis/pairing.h"

/* ---- the ops the rules know --------------------------------------------------------- */

typedef enum op_kind {
    OP_OTHER,
    OP_QUANTIZE,          /* QuantizeLinear: scale and zero point are inputs 1 and 2 */
    OP_DEQUANTIZE,        /* DequantizeLinear: the same */
    OP_DYNAMIC_QUANTIZE,  /* DynamicQuantizeLinear: scale and zero point are outputs 1 and 2 */
    OP_QLINEAR,           /* 8-bit output at the scale and zero point of inputs out_scale, out_scale + 1 */
    OP_MOVE,              /* moves elements unchanged: the output has input 0's parameters */
    OP_CONCAT,            /* the same when every input has the same parameters */
    OP_RELU,              /* Relu and Clip: what an 8-bit range starting at 0 can apply by saturating */
    OP_CLIP,
} op_kind;

typedef struct op_entry {
    const char *domain, *op_type;
    op_kind kind;
    int out_scale;        /* OP_QLINEAR: input index of the output scale */
    /* integer inputs read at a scale and zero point (the two inputs after
     * each): in_count of them (-1: to the last input) from input in_first,
     * every in_step inputs; in_count 0: none */
    int in_first, in_step, in_count;
    const char *float_op; /* OP_QLINEAR: the float op it computes, whose input k is integer input k */
} op_entry;

#define MS "com.microsoft"
static const op_entry op_entries[] = {
    {"", "QuantizeLinear", OP_QUANTIZE, 0, 0, 0, 0, NULL},
    {"", "DequantizeLinear", OP_DEQUANTIZE, 0, 0, 1, 1, NULL},
    {"", "DynamicQuantizeLinear", OP_DYNAMIC_QUANTIZE, 0, 0, 0, 0, NULL},
    {"", "QLinearConv", OP_QLINEAR, 6, 0, 3, 2, "Conv"},
    {"", "QLinearMatMul", OP_QLINEAR, 6, 0, 3, 2, "MatMul"},
    {MS, "QGemm", OP_QLINEAR, 7, 0, 3, 2, "Gemm"},
    {MS, "QLinearAdd", OP_QLINEAR, 6, 0, 3, 2, "Add"},
    {MS, "QLinearMul", OP_QLINEAR, 6, 0, 3, 2, "Mul"},
    {MS, "QLinearSigmoid", OP_QLINEAR, 3, 0, 1, 1, "Sigmoid"},
    {MS, "QLinearLeakyRelu", OP_QLINEAR, 3, 0, 1, 1, "LeakyRelu"},
    {MS, "QLinearGlobalAveragePool", OP_QLINEAR, 3, 0, 1, 1, "GlobalAveragePool"},
    {MS, "QLinearAveragePool", OP_QLINEAR, 3, 0, 1, 1, "AveragePool"},
    {MS, "QLinearConcat", OP_QLINEAR, 0, 2, 3, -1, "Concat"},
    {"", "Identity", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "MaxPool", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Reshape", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Flatten", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Transpose", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Squeeze", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Unsqueeze", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Slice", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Gather", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Split", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Concat", OP_CONCAT, 0, 0, 0, 0, NULL},
    {"", "Pad", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Resize", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "DepthToSpace", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "SpaceToDepth", OP_MOVE, 0, 0, 0, 0, NULL},
    {"", "Relu", OP_RELU, 0, 0, 0, 0, NULL},
    {"", "Clip", OP_CLIP, 0, 0, 0, 0, NULL},
};
#undef MS
#define N_OP_ENTRIES ((int)(sizeof op_entries / sizeof op_entries[0]))

/* The entry of n's op (OP_OTHER when it is not listed). Setup only. */
static const op_entry *op_of(const oq_node *n)
{
    static const op_entry other = {"", "", OP_OTHER, 0, 0, 0, 0, NULL};
    if (!n)
        return &other;
    for (int i = 0; i < N_OP_ENTRIES; i++)
        if (!strcmp(op_entries[i].op_type, n->op_type) && !strcmp(op_entries[i].domain, n->domain))
            return &op_entries[i];
    return &other;
}

static const char *const match_names[] = {
    "quantize", "dequantize", "same_name", "read_as", "name_suffix", "node_name", "activation_input",
};
_Static_assert(sizeof match_names / sizeof match_names[0] == OQ_MATCH_COUNT, "a name for every oq_compare_match");

const char *oq_compare_match_name(oq_compare_match m)
{
    return m >= 0 && m < OQ_MATCH_COUNT ? match_names[m] : "?";
}

/* ---- pairing: which float tensor each quantized one stands for -------------------------- */

/* A float node's name, for lookups by name (ambiguous names are dropped). */
typedef struct named_node {
    const char *name;
    const oq_node *node;
} named_node;

typedef struct matcher {
    const oq_graph *fg, *qg;
    oq_pairing *pv;          /* [qg->n_values] */
    named_node *by_name;     /* [n_named] sorted by name */
    int n_named;
} matcher;

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const named_node *)a)->name, ((const named_node *)b)->name);
}

/* The float node named `name`, or NULL when none or several are. */
static const oq_node *float_node_named(const matcher *mt, const char *name)
{
    if (!name[0])
        return NULL;
    named_node key = {name, NULL};
    const named_node *hit = bsearch(&key, mt->by_name, (size_t)mt->n_named, sizeof key, cmp_named);
    return hit ? hit->node : NULL;
}

/* A float-model value whose tensor is there in every run: a node output, a
 * fed input or a constant. */
static const oq_value *float_tensor(const matcher *mt, const char *name)
{
    const oq_value *f = oq_graph_find_local(mt->fg, name);
    if (!f || f->constant || f->producer)
        return f;
    for (int i = 0; i < mt->fg->n_inputs; i++)
        if (mt->fg->inputs[i] == f)
            return f;
    return NULL;
}

/* The counterpart of NAME + one of the suffixes onnxq and ONNX Runtime's
 * quantizer give the tensors that stand for NAME: NAME's, or NULL. */
static const oq_value *suffixed_name_of(const matcher *mt, const char *name)
{
    static const char *const suffixes[] = {"_quantized", "_dequantized", "_QuantizeLinear_Input",
                                           "_QuantizeLinear_Output", "_DequantizeLinear_Output"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n <= k || strcmp(name + n - k, suffixes[i]))
            continue;
        char *base = strndup(name, n - k);
        const oq_value *f = base ? float_tensor(mt, base) : NULL;
        free(base);
        return f;
    }
    return NULL;
}

/* The float tensor a name stands for by itself: the same name, or a suffixed one. */
static const oq_value *named_tensor(const matcher *mt, const char *name)
{
    const oq_value *f = float_tensor(mt, name);
    return f ? f : suffixed_name_of(mt, name);
}

static oq_qparams_ref params_at(const oq_node *n, int scale, int zero, bool outputs)
{
    oq_value *const *v = outputs ? n->outputs : n->inputs;
    int count = outputs ? n->n_outputs : n->n_inputs;
    return (oq_qparams_ref){.scale = scale < count ? v[scale] : NULL, .zero = zero < count ? v[zero] : NULL,
                     .axis = (int)oq_node_attr_int(n, "axis", 1)};
}

/* One-element constant scale, for parameters that travel through ops moving elements. */
static bool per_tensor_constant(const oq_qparams_ref *p)
{
    return p->scale && p->scale->constant && oq_tensor_numel(p->scale->constant) == 1 &&
           (!p->zero || (p->zero->constant && oq_tensor_numel(p->zero->constant) == 1));
}

static bool same_params(const oq_qparams_ref *a, const oq_qparams_ref *b)
{
    if (a->scale == b->scale && a->zero == b->zero)
        return true;
    if (!per_tensor_constant(a) || !per_tensor_constant(b))
        return false;
    double za = a->zero ? oq_tensor_get_f64(a->zero->constant, 0) : 0;
    double zb = b->zero ? oq_tensor_get_f64(b->zero->constant, 0) : 0;
    return oq_tensor_get_f64(a->scale->constant, 0) == oq_tensor_get_f64(b->scale->constant, 0) && za == zb;
}

/* Parameters of output k of quantized node n by the op's definition (its
 * inputs already paired); none when the op does not tell. */
static oq_qparams_ref own_params(const matcher *mt, const oq_node *n, int k)
{
    const op_entry *op = op_of(n);
    oq_qparams_ref none = {0};
    switch (op->kind) {
    case OP_QUANTIZE: return k == 0 ? params_at(n, 1, 2, false) : none;
    case OP_DYNAMIC_QUANTIZE: return k == 0 ? params_at(n, 1, 2, true) : none;
    case OP_QLINEAR: return k == 0 ? params_at(n, op->out_scale, op->out_scale + 1, false) : none;
    case OP_MOVE:
    case OP_CONCAT: {
        const oq_value *x = oq_node_input(n, 0);
        if (!x || x->constant || !per_tensor_constant(&mt->pv[x->id].via))
            return none;
        oq_qparams_ref p = mt->pv[x->id].via;
        for (int i = 1; op->kind == OP_CONCAT && i < n->n_inputs; i++)
            if (!n->inputs[i] || !same_params(&p, &mt->pv[n->inputs[i]->id].via))
                return none;
        return p;
    }
    default: return none;
    }
}

/* The parameters at which the ops reading integer tensor v with a scale and
 * zero point read it, when they agree; none otherwise. */
static oq_qparams_ref read_params(const oq_value *v)
{
    oq_qparams_ref found = {0}, none = {0};
    for (int c = 0; c < v->n_consumers; c++) {
        const oq_node *d = v->consumers[c];
        const op_entry *op = op_of(d);
        int end = op->in_count < 0 ? d->n_inputs : op->in_first + op->in_step * (op->in_count - 1) + 1;
        for (int i = op->in_first; op->in_count && i < end && i < d->n_inputs; i += op->in_step) {
            if (d->inputs[i] != v)
                continue;
            oq_qparams_ref p = params_at(d, i + 1, i + 2, false);
            if (found.scale && !same_params(&found, &p))
                return none;
            found = p;
        }
    }
    return found;
}

/* What the ops reading integer tensor v with a scale and zero point read it
 * as, when all that tell agree on the float tensor and the parameters: a
 * DequantizeLinear, what its output's name stands for; a QLinear op named like
 * a float node of the op it computes, that node's input at the same place.
 * Sets *p to the parameters; NULL when none tells or they disagree. */
static const oq_value *read_as(const matcher *mt, const oq_value *v, oq_qparams_ref *p)
{
    const oq_value *found = NULL;
    for (int c = 0; c < v->n_consumers; c++) {
        const oq_node *d = v->consumers[c];
        const op_entry *op = op_of(d);
        const oq_node *twin = op->float_op ? float_node_named(mt, d->name) : NULL;
        if (twin && strcmp(twin->op_type, op->float_op))
            twin = NULL;
        int end = op->in_count < 0 ? d->n_inputs : op->in_first + op->in_step * (op->in_count - 1) + 1;
        for (int i = op->in_first; op->in_count && i < end && i < d->n_inputs; i += op->in_step) {
            int j = (i - op->in_first) / op->in_step;
            const oq_value *g = NULL;
            if (d->inputs[i] != v)
                continue;
            if (op->kind == OP_DEQUANTIZE)
                g = d->n_outputs > 0 && d->outputs[0] ? named_tensor(mt, d->outputs[0]->name) : NULL;
            else if (twin && j < twin->n_inputs)
                g = twin->inputs[j];
            if (!g)
                continue;
            oq_qparams_ref q = params_at(d, i + 1, i + 2, false);
            if (found && (g != found || !same_params(p, &q)))
                return NULL;
            found = g;
            *p = q;
        }
    }
    return found;
}

/* Counterpart of a value no node of the quantized graph makes (input,
 * constant): by its name, at the parameters its readers agree on. */
static void pair_source(matcher *mt, const oq_value *v)
{
    oq_pairing *p = &mt->pv[v->id];
    if ((p->ref = float_tensor(mt, v->name)))
        p->match = OQ_MATCH_SAME_NAME;
    else if ((p->ref = suffixed_name_of(mt, v->name)))
        p->match = OQ_MATCH_NAME_SUFFIX;
    p->via = read_params(v);
}

/* True when float node a (Relu, or Clip with a lower bound of 0) maps every
 * negative input to 0. */
static bool floors_at_zero(const oq_node *a)
{
    op_kind k = op_of(a)->kind;
    if (k == OP_RELU)
        return true;
    if (k != OP_CLIP)
        return false;
    if (a->opset < 11)
        return oq_node_attr_float(a, "min", -1) == 0;
    const oq_value *lo = oq_node_input(a, 1);
    return lo && lo->constant && oq_tensor_numel(lo->constant) == 1 && oq_tensor_get_f64(lo->constant, 0) == 0;
}

/* The float activation (Relu, Clip) that made f, when it read the output of
 * an op of quantized node n's type: the layout of a tool that removed the
 * activation (its range applies it) and let n write the activation's name. */
static const oq_node *removed_activation(const oq_value *f, const oq_node *n)
{
    const oq_node *a = f->producer;
    op_kind ka = op_of(a)->kind, kn = op_of(n)->kind;
    if (!a || (ka != OP_RELU && ka != OP_CLIP) || kn == OP_RELU || kn == OP_CLIP)
        return NULL;
    const oq_value *x = oq_node_input(a, 0);
    const oq_node *b = x ? x->producer : NULL;
    return b && !strcmp(b->op_type, n->op_type) && !strcmp(b->domain, n->domain) ? a : NULL;
}

static bool is_graph_output(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

/* True when p's zero points are constants at their type's lowest value (or
 * absent: uint8 0), so that the range starts at 0. */
static bool range_starts_at_zero(const oq_qparams_ref *p)
{
    if (!p->zero)
        return true;
    const oq_tensor *z = p->zero->constant;
    if (!z || !oq_is_scaled_int(z->dtype))
        return false;
    int64_t lowest = z->dtype == OQ_DTYPE_INT8 ? -128 : z->dtype == OQ_DTYPE_INT16 ? -32768 : 0;
    for (int64_t i = 0; i < oq_tensor_numel(z); i++)
        if (oq_tensor_get_i64(z, i) != lowest)
            return false;
    return true;
}

/* The output of the activation flooring at 0 that alone reads float value f, or NULL. */
static const oq_value *sole_floor_activation(const matcher *mt, const oq_value *f)
{
    if (f->n_consumers != 1 || is_graph_output(mt->fg, f))
        return NULL;
    const oq_node *a = f->consumers[0];
    return floors_at_zero(a) && a->n_inputs > 0 && a->inputs[0] == f && a->n_outputs > 0 ? a->outputs[0] : NULL;
}

/* Output k of the float node named like quantized node n, or NULL. */
static const oq_value *node_name_twin(const matcher *mt, const oq_node *n, int k)
{
    const oq_node *twin = float_node_named(mt, n->name);
    return twin && k < twin->n_outputs && twin->outputs[k] ? float_tensor(mt, twin->outputs[k]->name) : NULL;
}

/* False when float tensor f was made by an op of n's type from other tensors
 * than n's inputs stand for (or n reads a tensor that stands for none): a
 * name the quantized model reuses for another value, such as a tensor
 * rescaled by a factor folded into a scale, or a Conv output with a
 * BatchNormalization folded in. */
static bool computed_alike(const matcher *mt, const oq_node *n, const oq_value *f)
{
    const oq_node *fp = f->producer;
    if (!fp || strcmp(fp->op_type, n->op_type) || strcmp(fp->domain, n->domain))
        return true;
    for (int i = 0; i < n->n_inputs; i++) {
        if (!n->inputs[i] || n->inputs[i]->constant)
            continue;
        const oq_value *c = mt->pv[n->inputs[i]->id].ref;
        bool found = false;
        for (int j = 0; c && !found && j < fp->n_inputs; j++)
            found = fp->inputs[j] && (fp->inputs[j] == c || sole_floor_activation(mt, fp->inputs[j]) == c);
        if (!found)
            return false;
    }
    return true;
}

/* Pairs output k of node n of the quantized graph (rules in oq_compare.h)
 * with the parameters that dequantize it to its counterpart: a
 * QuantizeLinear's own; those of the ops that read it as its counterpart;
 * else those of the op that made it. */
static void pair_output(matcher *mt, const oq_node *n, int k)
{
    const oq_value *v = n->outputs[k], *x = oq_node_input(n, 0), *f;
    const op_entry *op = op_of(n);
    const oq_pairing *in = x && k == 0 ? &mt->pv[x->id] : NULL;
    oq_pairing *p = &mt->pv[v->id];
    oq_qparams_ref own = own_params(mt, n, k), dq = params_at(n, 1, 2, false), read;
    if (op->kind == OP_QUANTIZE && in && in->ref) {
        *p = (oq_pairing){.ref = in->ref, .match = OQ_MATCH_QUANTIZE, .via = own};
    } else if (op->kind == OP_DEQUANTIZE && in && in->ref && same_params(&in->via, &dq)) {
        *p = (oq_pairing){.ref = in->ref, .match = OQ_MATCH_DEQUANTIZE};
    } else if ((f = float_tensor(mt, v->name)) && !(p->unlike = computed_alike(mt, n, f) ? NULL : f)) {
        const oq_node *a = removed_activation(f, n);
        if (!a || computed_alike(mt, n, a->inputs[0]))
            *p = (oq_pairing){.ref = a ? a->inputs[0] : f, .via = own,
                           .match = a ? OQ_MATCH_ACTIVATION_INPUT : OQ_MATCH_SAME_NAME};
    } else if ((f = read_as(mt, v, &read))) {
        *p = (oq_pairing){.ref = f, .match = OQ_MATCH_READ_AS, .via = read};
    } else if ((f = suffixed_name_of(mt, v->name))) {
        *p = (oq_pairing){.ref = f, .match = OQ_MATCH_NAME_SUFFIX, .via = own};
    } else if ((f = node_name_twin(mt, n, k)) && computed_alike(mt, n, f)) {
        *p = (oq_pairing){.ref = f, .match = OQ_MATCH_NODE_NAME, .via = own};
    } else {
        p->via = own;
    }
    /* a range starting at 0 applies the Relu that alone reads the counterpart */
    const oq_value *act = p->ref && p->via.scale && range_starts_at_zero(&p->via) ? sole_floor_activation(mt, p->ref)
                                                                                   : NULL;
    if (act)
        p->ref = act;
}

oq_status oq_pair_tensors(const oq_graph *fg, const oq_graph *qg, oq_pairing **out, oq_err *err)
{
    matcher m = {.fg = fg, .qg = qg}, *mt = &m;
    *out = NULL;
    mt->pv = calloc((size_t)qg->n_values + 1, sizeof *mt->pv);
    mt->by_name = calloc((size_t)fg->n_nodes + 1, sizeof *mt->by_name);
    if (!mt->pv || !mt->by_name) {
        free(mt->pv);
        free(mt->by_name);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (int i = 0; i < fg->n_nodes; i++)
        if (fg->nodes[i]->name[0])
            mt->by_name[mt->n_named++] = (named_node){fg->nodes[i]->name, fg->nodes[i]};
    qsort(mt->by_name, (size_t)mt->n_named, sizeof *mt->by_name, cmp_named);
    /* names given to several nodes identify none */
    int kept = 0;
    for (int i = 0; i < mt->n_named;) {
        int j = i + 1;
        while (j < mt->n_named && !strcmp(mt->by_name[j].name, mt->by_name[i].name))
            j++;
        if (j == i + 1)
            mt->by_name[kept++] = mt->by_name[i];
        i = j;
    }
    mt->n_named = kept;
    for (int i = 0; i < qg->n_values; i++)
        if (!qg->values[i]->producer)
            pair_source(mt, qg->values[i]);
    for (int i = 0; i < qg->n_nodes; i++)
        for (int k = 0; k < qg->nodes[i]->n_outputs; k++)
            if (qg->nodes[i]->outputs[k] && !qg->nodes[i]->outputs[k]->constant)
                pair_output(mt, qg->nodes[i], k);
    free(mt->by_name);
    *out = mt->pv;
    return OQ_OK;
}
