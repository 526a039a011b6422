/* plan.c: the quantization plan (see oq_plan.h).
 *
 * The plan walks the prepared graph once, in topological order, as the
 * rewrite will, and keeps per value what the rewrite would know at that
 * point: whether the value is carried as an 8-bit tensor and with which
 * parameters. Per node it picks one action: the candidates (Conv, MatMul,
 * Gemm) by mode and format unless something blocks them, the other ops (QOperator
 * format only) by what reaches them in 8 bits, through the table below. Each
 * range it reads from the table is marked as needed; without a table every
 * range it asks for is assumed present, and decisions that depend on the
 * parameters take the branch that keeps more values 8-bit, so the marked set
 * is what any table could be asked for. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_plan.h"
#include "quant/match.h"

/* ---- how each op kind is quantized ------------------------------------------------ */

typedef enum op_role {
    ROLE_NONE,
    ROLE_WEIGHTED,    /* candidate: input 0 and the output need ranges, input 1 a constant weight */
    ROLE_WEIGHT_ONLY, /* candidate with no 8-bit form in ONNX (ConvTranspose): in the QOperator format and in
                         dynamic mode only its weight is quantized, read through a DequantizeLinear; in the QDQ
                         format it is quantized like a Conv */
    ROLE_FLOAT_OP,    /* LSTM, GRU, RNN, Einsum: no 8-bit form in any format; only their constant weights are
                         quantized, read through DequantizeLinears, in every mode and format */
    ROLE_PASSTHROUGH, /* moves 8-bit data unchanged (from opset min_opset): no range */
    ROLE_CONTRIB,     /* --contrib: a com.microsoft QLinear op (qop) when its `arity` inputs are 8-bit or
                         constants: the output needs a range */
    ROLE_HARD,        /* --contrib: HardSigmoid (no range: [0, 1] by saturation), HardSwish (output range) */
} op_role;

static const struct op_quant {
    op_role role;
    int min_opset;   /* ROLE_PASSTHROUGH: first default-domain opset with 8-bit types for it */
    oq_op_kind qop;  /* ROLE_CONTRIB */
    int arity;       /* ROLE_CONTRIB: data inputs */
} op_quant[OQ_OP_COUNT] = {
    [OQ_OP_CONV] = {ROLE_WEIGHTED, 0, OQ_OP_OTHER, 0},
    [OQ_OP_CONV_TRANSPOSE] = {ROLE_WEIGHT_ONLY, 0, OQ_OP_OTHER, 0},
    [OQ_OP_LSTM] = {ROLE_FLOAT_OP, 0, OQ_OP_OTHER, 0},
    [OQ_OP_GRU] = {ROLE_FLOAT_OP, 0, OQ_OP_OTHER, 0},
    [OQ_OP_RNN] = {ROLE_FLOAT_OP, 0, OQ_OP_OTHER, 0},
    [OQ_OP_EINSUM] = {ROLE_FLOAT_OP, 0, OQ_OP_OTHER, 0},
    [OQ_OP_MATMUL] = {ROLE_WEIGHTED, 0, OQ_OP_OTHER, 0},
    [OQ_OP_GEMM] = {ROLE_WEIGHTED, 0, OQ_OP_OTHER, 0},
    [OQ_OP_MAX_POOL] = {ROLE_PASSTHROUGH, 12, OQ_OP_OTHER, 0},
    [OQ_OP_RESHAPE] = {ROLE_PASSTHROUGH, 5, OQ_OP_OTHER, 0},
    [OQ_OP_FLATTEN] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_TRANSPOSE] = {ROLE_PASSTHROUGH, 1, OQ_OP_OTHER, 0},
    [OQ_OP_SQUEEZE] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_UNSQUEEZE] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_SLICE] = {ROLE_PASSTHROUGH, 10, OQ_OP_OTHER, 0},
    [OQ_OP_GATHER] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_SPLIT] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_PAD] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_IDENTITY] = {ROLE_PASSTHROUGH, 1, OQ_OP_OTHER, 0},
    [OQ_OP_DEPTH_TO_SPACE] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_SPACE_TO_DEPTH] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_RESIZE] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0},
    [OQ_OP_CONCAT] = {ROLE_PASSTHROUGH, 11, OQ_OP_OTHER, 0}, /* also QLinearConcat with --contrib */
    [OQ_OP_ADD] = {ROLE_CONTRIB, 0, OQ_OP_QLINEAR_ADD, 2},
    [OQ_OP_MUL] = {ROLE_CONTRIB, 0, OQ_OP_QLINEAR_MUL, 2}, /* by a positive scalar: a rescaled twin */
    [OQ_OP_SIGMOID] = {ROLE_CONTRIB, 0, OQ_OP_QLINEAR_SIGMOID, 1},
    [OQ_OP_LEAKY_RELU] = {ROLE_CONTRIB, 0, OQ_OP_QLINEAR_LEAKY_RELU, 1},
    [OQ_OP_GLOBAL_AVERAGE_POOL] = {ROLE_CONTRIB, 0, OQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL, 1},
    [OQ_OP_HARD_SIGMOID] = {ROLE_HARD, 0, OQ_OP_OTHER, 0},
    [OQ_OP_HARD_SWISH] = {ROLE_HARD, 0, OQ_OP_OTHER, 0},
};

static const char *const action_names[OQ_ACTION_COUNT] = {
    "none", "keep_float", "qlinear", "integer_gemm", "qgemm", "qdq", "dynamic", "passthrough",
    "qlinear_concat", "contrib", "scaled_twin", "shifted_twin", "hard_sigmoid", "hard_swish", "folded_clamp", "folded_bias",
    "embedding", "weight_only",
};

const char *oq_action_name(oq_action a) { return a >= 0 && a < OQ_ACTION_COUNT ? action_names[a] : "?"; }

#define MAX_CONCAT_INPUTS 10 /* QLinearConcat takes 2 + 3 x inputs, and nodes are built with at most 32 */

/* ---- the walk ---------------------------------------------------------------------- */

typedef struct node_slot {
    const oq_node *node;
    int index;
} node_slot;

/* The range a group of values shares (see share_concat_ranges), kept at the group's root. */
typedef struct share_range {
    double lo, hi;
    bool has_concat; /* a Concat ties the group: it is used */
    bool complete;   /* every value its data comes from has a range */
} share_range;

typedef struct planner {
    oq_plan *p;
    const oq_graph *g;
    const oq_quant_options *o;
    const oq_calib_table *table; /* NULL: every range assumed present */
    oq_node_policy *policy;      /* [n_nodes] */
    const char **policy_reason;  /* [n_nodes] the reason an OQ_POLICY_FLOAT node reports */
    node_slot *by_address;       /* [n_nodes] sorted by node address: node -> index */
    int *group;                  /* [n_values] shared-range groups (union-find parents), or NULL */
    share_range *shared;         /* [n_values] the range of each group, at its root */
    bool selected[OQ_OP_COUNT];
    bool *reaches_8bit;          /* [n_values] eight_bit_reader of each value a node writes */
    oq_err *err;
} planner;

static int slot_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const node_slot *)a)->node, y = (uintptr_t)((const node_slot *)b)->node;
    return x < y ? -1 : x > y;
}

/* Index of node n in the planned graph (n is one of its nodes). */
static int index_of(const planner *pl, const oq_node *n)
{
    node_slot key = {n, 0};
    const node_slot *s = bsearch(&key, pl->by_address, (size_t)pl->p->n_nodes, sizeof key, slot_cmp);
    return s ? s->index : -1;
}

static oq_plan_value *val(const planner *pl, const oq_value *v) { return &pl->p->values[v->id]; }

/* Whether a table entry saw no values at all (a tensor empty in every
 * sample): it has no range. */
static bool empty_entry(const oq_calib_entry *e) { return e->hist.count == 0 && e->hist.nonfinite == 0; }

/* Whether the table has a range for v (r: it); marks v as needed. Without a
 * table: whether a calibration could record it (a top-level activation),
 * range unknown ([0, 0]). */
static bool table_range(planner *pl, const oq_value *v, double r[2])
{
    bool recordable = !v->constant && v->graph == pl->g; /* what a calibration can record */
    if (recordable)
        val(pl, v)->needs_range = true;
    r[0] = r[1] = 0;
    if (!pl->table)
        return recordable;
    const oq_calib_entry *e = oq_calib_table_find(pl->table, v->name);
    if (!e || empty_entry(e))
        return false;
    r[0] = e->range[0];
    r[1] = e->range[1];
    return true;
}

/* Parameters of the range [lo, hi] (without a table: unknown, a placeholder). */
static oq_qparams range_params(const planner *pl, double lo, double hi)
{
    return pl->table ? oq_qparams_from_range(lo, hi, pl->o->act_qmin, pl->o->act_qmax, pl->o->symmetric_activations)
                     : (oq_qparams){1.0f, 0};
}

/* table_range, as parameters. */
static bool table_params(planner *pl, const oq_value *v, oq_qparams *p)
{
    double r[2];
    if (!table_range(pl, v, r))
        return false;
    *p = range_params(pl, r[0], r[1]);
    return true;
}

static int group_root(const planner *pl, int id)
{
    while (pl->group[id] != id)
        id = pl->group[id] = pl->group[pl->group[id]];
    return id;
}

/* The group range v takes part in, or NULL (no group, or one no Concat ties). */
static const share_range *shared_range(const planner *pl, const oq_value *v)
{
    if (!pl->group || v->constant || v->graph != pl->g)
        return NULL;
    const share_range *r = &pl->shared[group_root(pl, v->id)];
    return r->has_concat ? r : NULL;
}

/* Parameters of v from the range of its group when it has a complete one
 * (false otherwise). */
static bool group_params(const planner *pl, const oq_value *v, oq_qparams *p)
{
    const share_range *r = shared_range(pl, v);
    if (!r || !r->complete)
        return false;
    *p = range_params(pl, r->lo, r->hi);
    return true;
}

/* The Relu/Clip that alone reads v and whose output's range act_params gives
 * v (its index), or -1. */
static int range_clamp(planner *pl, const oq_value *v)
{
    oq_qparams p;
    const oq_node *next = oq_sole_reader(pl->g, v);
    if (group_params(pl, v, &p) || !oq_is_clamp_of(next, v) ||
        !(group_params(pl, next->outputs[0], &p) || table_params(pl, next->outputs[0], &p)))
        return -1;
    return index_of(pl, next);
}

/* Range-derived parameters for v: its group's range when it shares one
 * (share_concat_ranges), else the range of the Relu/Clip that alone reads v
 * when there is one (see oq_is_clamp_of; that one's group range if it
 * shares one), else v's own. */
static bool act_params(planner *pl, const oq_value *v, oq_qparams *p)
{
    if (group_params(pl, v, p))
        return true;
    int k = range_clamp(pl, v);
    const oq_value *c = k >= 0 ? pl->g->nodes[k]->outputs[0] : NULL;
    if (c && (group_params(pl, c, p) || table_params(pl, c, p)))
        return true;
    return table_params(pl, v, p);
}

/* Gives v parameters unless a producer already did. The checks before
 * every call make sure the range exists. */
static oq_status ensure_params(planner *pl, const oq_value *v)
{
    oq_plan_value *pv = val(pl, v);
    if (pv->has_params)
        return OQ_OK;
    if (!act_params(pl, v, &pv->params))
        return oq_errf(pl->err, OQ_EINVAL, "no calibration range for '%s'", v->name);
    pv->has_params = true;
    return OQ_OK;
}

/* v becomes an 8-bit tensor at parameters p. */
static void set_8bit(planner *pl, const oq_value *v, oq_qparams p)
{
    oq_plan_value *pv = val(pl, v);
    pv->is8 = pv->has_params = true;
    pv->params = p;
}

/* The Relu/Clip that alone reads node i's output and can fold into its
 * range (its index), or -1. */
static int foldable_clamp(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    const oq_value *y = n->outputs[0];
    const oq_node *a = oq_sole_reader(pl->g, y);
    oq_qparams p;
    if (pl->o->symmetric_activations || !oq_is_clamp_of(a, y))
        return -1;
    int k = index_of(pl, a);
    if (k < 0 || pl->policy[k] == OQ_POLICY_FLOAT || !act_params(pl, a->outputs[0], &p))
        return -1;
    /* folding replaces the clamp at 0 by saturation: only exact when 0 maps to qmin */
    if (a->kind == OQ_OP_RELU && pl->table && p.zero_point != pl->o->act_qmin)
        return -1;
    return k;
}

/* Marks clamp k as folded into node i's output; returns the value the output now is. */
static const oq_value *fold_clamp(planner *pl, int i, int k)
{
    pl->p->nodes[i].clamp = k;
    if (k < 0)
        return pl->g->nodes[i]->outputs[0];
    pl->p->nodes[k].action = OQ_ACTION_FOLDED_CLAMP;
    return pl->g->nodes[k]->outputs[0];
}

/* The Add that alone reads MatMul i's output and adds to it a float constant
 * row of its N columns ([N] or [1, N]): a bias the quantized product takes
 * in (the Add goes, or reads the bias as int32), or -1. */
static int bias_add(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    const oq_value *y = n->outputs[0], *w = n->inputs[1];
    const oq_node *a = oq_sole_reader(pl->g, y);
    if (n->kind != OQ_OP_MATMUL || !w->constant || !a || a->kind != OQ_OP_ADD || a->opset < 7 || a->n_inputs != 2 ||
        a->n_outputs != 1 || !a->outputs[0])
        return -1;
    const oq_value *c = a->inputs[a->inputs[0] == y ? 1 : 0];
    int64_t cols = w->constant->dims[1];
    if (!oq_is_float_constant(c) || c->constant->rank < 1 || c->constant->rank > 2 ||
        oq_tensor_numel(c->constant) != cols || c->constant->dims[c->constant->rank - 1] != cols)
        return -1;
    int k = index_of(pl, a);
    return k >= 0 && pl->policy[k] != OQ_POLICY_FLOAT ? k : -1;
}

/* Marks Add k as folded into node i as its bias. */
static void fold_bias(planner *pl, int i, int k)
{
    pl->p->nodes[i].bias = k;
    pl->p->nodes[k].action = OQ_ACTION_FOLDED_BIAS;
}

/* Whether MatMul n multiplies two activations (B is not a constant). */
static bool two_activations(const oq_node *n)
{
    const oq_value *b = oq_node_input(n, 1);
    return n->kind == OQ_OP_MATMUL && b && !b->constant && oq_node_input(n, 0) && !n->inputs[0]->constant;
}

/* Whether candidate n has only its weights quantized (ROLE_FLOAT_OP; ROLE_WEIGHT_ONLY outside the QDQ format). */
static bool weight_only(const planner *pl, const oq_node *n)
{
    op_role role = op_quant[n->kind].role;
    return role == ROLE_FLOAT_OP ||
           (role == ROLE_WEIGHT_ONLY && (pl->o->mode == OQ_MODE_DYNAMIC || pl->o->format != OQ_FORMAT_QDQ));
}

/* Whether Gather n looks rows up in a constant float table [V, d] by
 * activation indices: an embedding, quantized as a weight (oq_plan.h). */
static bool embedding_lookup(const oq_node *n)
{
    const oq_value *t = oq_node_input(n, 0), *ids = oq_node_input(n, 1);
    if (n->kind != OQ_OP_GATHER || !oq_is_float_constant(t) || t->constant->rank != 2 || !ids || ids->constant ||
        n->n_outputs != 1 || !n->outputs[0])
        return false;
    int64_t axis = oq_node_attr_int(n, "axis", 0);
    return axis == 0 || axis == -2;
}

/* Why embedding Gather i cannot be quantized (NULL when it can). Rows of
 * fewer than 4 values, or tables of fewer than 256, stay float: with a scale
 * per row and three more nodes the file would not shrink. */
static const char *embedding_blocker(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    const oq_tensor *t = n->inputs[0]->constant;
    if (oq_quant_excludes(pl->o, n))
        return "excluded by --exclude";
    if (pl->policy[i] == OQ_POLICY_FLOAT)
        return pl->policy_reason[i];
    if (t->dims[1] < 4 || oq_tensor_numel(t) < 256)
        return "embedding table too small to shrink";
    return NULL;
}

/* Why table Add i (oq_table_add) cannot be quantized (NULL when it can):
 * tables as small as embedding_blocker's stay float, and so do masks: NaN
 * or infinite values (-inf) no scale represents, and sentinel values such
 * as -10000 or the lowest float set a row's scale so coarse that whatever
 * else the row holds (a relative-position bias added into the mask) rounds
 * to 0, while the lowest float times its scale overflows to -inf. Learned
 * tables hold values far below TABLE_SENTINEL. */
enum { TABLE_SENTINEL = 1000 };

static const char *table_blocker(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    int input, axis;
    oq_table_add(n, &input, &axis);
    const oq_tensor *t = n->inputs[input]->constant;
    const float *d = t->data;
    if (oq_quant_excludes(pl->o, n))
        return "excluded by --exclude";
    if (pl->policy[i] == OQ_POLICY_FLOAT)
        return pl->policy_reason[i];
    if (t->dims[t->rank - 1] < 4 || oq_tensor_numel(t) < 256)
        return "constant table too small to shrink";
    for (int64_t k = 0; k < oq_tensor_numel(t); k++)
        if (!(fabsf(d[k]) < TABLE_SENTINEL))
            return isfinite(d[k]) ? "constant table holds mask values (1000 or more in size)"
                                  : "constant table has NaN or infinite values";
    return NULL;
}

/* Why candidate n cannot be quantized (NULL when it can): its weight and
 * bias must be float constants of the expected rank (or, for a MatMul, B an
 * activation like A) and its activations must have ranges. */
static const char *blocker(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    const oq_value *x = oq_node_input(n, 0), *w = oq_node_input(n, 1);
    oq_qparams p;
    bool statics = pl->o->mode == OQ_MODE_STATIC && !weight_only(pl, n), pair = two_activations(n);
    if (oq_quant_excludes(pl->o, n))
        return "excluded by --exclude";
    if (pl->policy[i] == OQ_POLICY_FLOAT)
        return pl->policy_reason[i];
    if (n->kind == OQ_OP_EINSUM) {
        int input, axis;
        return oq_einsum_weight(n, &input, &axis);
    }
    bool recurrent = oq_is_recurrent(n->kind); /* may leave out any one output */
    if (!x || !w || !(recurrent ? n->n_outputs > 0 : n->outputs[0] != NULL))
        return "missing input or output";
    if (!pair && !oq_is_float_constant(w))
        return "weight is not a float constant";
    if (statics && x->constant)
        return "input is a constant (the node gives the same output for every sample)";
    if (statics && !act_params(pl, x, &p))
        return "input has no calibration range";
    if (statics && pair && !act_params(pl, w, &p))
        return "input B has no calibration range";
    if (statics && !act_params(pl, n->outputs[0], &p))
        return "output has no calibration range";
    if (pair)
        return NULL;
    const oq_tensor *wt = w->constant;
    if (recurrent) {
        const oq_value *r = oq_node_input(n, 2);
        if (!r || !oq_is_float_constant(r))
            return "recurrence weight R is not a float constant";
        if (wt->rank != 3 || r->constant->rank != 3)
            return "weights W and R are not 3-D";
    } else if (n->kind == OQ_OP_CONV || n->kind == OQ_OP_CONV_TRANSPOSE) {
        const oq_value *b = oq_node_input(n, 2);
        if (wt->rank < 3)
            return n->kind == OQ_OP_CONV ? "Conv weight has rank < 3" : "ConvTranspose weight has rank < 3";
        if (n->kind == OQ_OP_CONV_TRANSPOSE && oq_node_attr_int(n, "group", 1) != 1)
            return "grouped ConvTranspose (its output channels have no weight axis of their own)";
        if (b && (!oq_is_float_constant(b) || b->constant->rank != 1))
            return "bias is not a 1-D float constant";
    } else if (n->kind == OQ_OP_MATMUL) {
        if (wt->rank != 2)
            return "MatMul weight is not 2-D";
    } else { /* Gemm */
        const oq_value *c = oq_node_input(n, 2);
        if (wt->rank != 2)
            return "Gemm weight is not 2-D";
        if (oq_node_attr_int(n, "transA", 0))
            return "Gemm with transA=1";
        int64_t cols = oq_node_attr_int(n, "transB", 0) ? wt->dims[0] : wt->dims[1];
        if (c && (!oq_is_float_constant(c) ||
                  (oq_tensor_numel(c->constant) != cols && oq_tensor_numel(c->constant) != 1) ||
                  c->constant->rank > 2 || (c->constant->rank == 2 && c->constant->dims[0] != 1)))
            return "Gemm C is not a constant bias of shape [N] or [1, N]";
    }
    return NULL;
}

static bool contrib_shaped(const oq_node *n);

/* Whether --contrib can run n on an 8-bit input: a contrib op's shape, or an
 * Add of a finite one-element constant or a Mul by a positive one (what
 * plan_shifted_twin and plan_scaled_twin need before the ranges are known;
 * a shift that is no whole number of steps still leaves the Add float). An
 * Add of a larger constant (a position table) has neither and stays float. */
static bool contrib_reader(const oq_node *n)
{
    if (contrib_shaped(n) || op_quant[n->kind].role == ROLE_HARD)
        return true;
    if ((n->kind != OQ_OP_ADD && n->kind != OQ_OP_MUL) || n->n_inputs != 2)
        return false;
    for (int k = 0; k < 2; k++) {
        const oq_value *c = n->inputs[k];
        if (!c || !oq_is_float_constant(c) || oq_tensor_numel(c->constant) != 1)
            continue;
        float v = ((const float *)c->constant->data)[0];
        if (isfinite(v) && (n->kind == OQ_OP_ADD || v > 0))
            return true;
    }
    return false;
}

/* Whether a node that can take an 8-bit tensor reads v: a candidate of the
 * options (Conv, MatMul, Gemm), with --contrib an op that has a com.microsoft
 * QLinear form (contrib_reader), or an op that moves data to such a node
 * (through any number of Reshapes, Gathers or Concats: pl->reaches_8bit,
 * filled by find_8bit_readers). A quantized op or a Concat whose output
 * nothing of the kind reads is better off writing float: a detector's score
 * tensor moved through Gathers to NonMaxSuppression stays float, and so does
 * a ViT's Concat of the class token and the patches that a position table is
 * added to (its shared scale cost the class token 30 dB). */
static bool eight_bit_reader(const planner *pl, const oq_value *v)
{
    for (int k = 0; k < v->n_consumers; k++) {
        const oq_node *c = v->consumers[k];
        op_role role = op_quant[c->kind].role;
        if ((role == ROLE_WEIGHTED && pl->selected[c->kind]) || (pl->o->contrib && contrib_reader(c)))
            return true;
        if (role == ROLE_PASSTHROUGH && c->opset >= op_quant[c->kind].min_opset)
            for (int j = 0; j < c->n_outputs; j++)
                if (c->outputs[j] && pl->reaches_8bit[c->outputs[j]->id])
                    return true;
    }
    return false;
}

/* Fills pl->reaches_8bit for every value a node writes, last node first, so
 * that what a value's readers write is known before the value is. */
static void find_8bit_readers(planner *pl)
{
    for (int i = pl->g->n_nodes - 1; i >= 0; i--) {
        const oq_node *n = pl->g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k])
                pl->reaches_8bit[n->outputs[k]->id] = eight_bit_reader(pl, n->outputs[k]);
    }
}

/* Whether n moves the values of input 0 into its outputs unchanged, so that
 * it can run on the 8-bit tensor (Concat: on every input's). */
static bool moves_data(const oq_node *n)
{
    const struct op_quant *q = &op_quant[n->kind];
    if (q->role != ROLE_PASSTHROUGH || n->opset < q->min_opset || !oq_node_input(n, 0))
        return false;
    if (n->kind == OQ_OP_MAX_POOL && n->n_outputs > 1 && n->outputs[1])
        return false; /* Indices output */
    if (n->kind == OQ_OP_RESIZE && strcmp(oq_node_attr_string(n, "mode", "nearest"), "nearest") != 0)
        return false;
    if (n->kind == OQ_OP_PAD) {
        if (strcmp(oq_node_attr_string(n, "mode", "constant"), "constant") != 0)
            return false;
        const oq_value *pv = oq_node_input(n, 2);
        if (pv && (!pv->constant || oq_tensor_get_f64(pv->constant, 0) != 0))
            return false;
    }
    return true;
}

/* ---- shared ranges around Concat ------------------------------------------------ */

static void group_join(planner *pl, const oq_value *a, const oq_value *b)
{
    int ra = group_root(pl, a->id), rb = group_root(pl, b->id);
    if (ra != rb)
        pl->group[ra > rb ? ra : rb] = ra < rb ? ra : rb; /* the lower id is the root: order-independent */
}

/* Whether Concat n can tie its values into one group: its inputs and output
 * are activations of the top-level graph, and an op that takes 8-bit tensors
 * reads its output. */
static bool concat_groups(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    if (n->kind != OQ_OP_CONCAT || pl->policy[i] == OQ_POLICY_FLOAT || !moves_data(n) || n->n_outputs != 1 ||
        !n->outputs[0] || n->outputs[0]->graph != pl->g || !eight_bit_reader(pl, n->outputs[0]))
        return false;
    for (int k = 0; k < n->n_inputs; k++)
        if (!n->inputs[k] || n->inputs[k]->constant || n->inputs[k]->graph != pl->g)
            return false;
    return true;
}

/* A Concat runs on 8-bit tensors only when its inputs and output share one
 * scale and zero point. Before the walk, each Concat that an 8-bit op reads
 * ties its inputs and output into a group, and each data-movement op ties
 * its input to its outputs (they hold the same values, at the same
 * parameters). Every member of a group that a Concat ties takes the union of
 * the calibrated ranges of the members the group's values come from (those
 * no tie writes: what a tie writes holds values of its inputs, and 0, which
 * every range holds). A Concat's inputs are then quantized once, at the
 * parameters of its output, instead of at their own, read back to float,
 * concatenated and quantized again. A group with a source the table has no
 * range for is left out: its members keep their own parameters; a source
 * that was empty in every sample counts for nothing. */
static oq_status share_concat_ranges(planner *pl)
{
    const oq_graph *g = pl->g;
    oq_status st = OQ_OK;
    bool *written = calloc((size_t)g->n_values + 1, sizeof *written); /* by a tie */
    pl->group = malloc(((size_t)g->n_values + 1) * sizeof *pl->group);
    pl->shared = calloc((size_t)g->n_values + 1, sizeof *pl->shared);
    if (!written || !pl->group || !pl->shared) {
        st = oq_errf(pl->err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++)
        pl->group[v] = v;
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        if (concat_groups(pl, i)) {
            for (int k = 0; k < n->n_inputs; k++)
                group_join(pl, n->inputs[k], n->outputs[0]);
            written[n->outputs[0]->id] = true;
        } else if (n->kind != OQ_OP_CONCAT && pl->policy[i] != OQ_POLICY_FLOAT && moves_data(n) &&
                   !n->inputs[0]->constant && n->inputs[0]->graph == g) {
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k]) {
                    group_join(pl, n->inputs[0], n->outputs[k]);
                    written[n->outputs[k]->id] = true;
                }
        }
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (concat_groups(pl, i)) {
            share_range *r = &pl->shared[group_root(pl, g->nodes[i]->outputs[0]->id)];
            *r = (share_range){.lo = INFINITY, .hi = -INFINITY, .has_concat = true, .complete = true};
        }
    for (int v = 0; v < g->n_values; v++) {
        share_range *r = &pl->shared[group_root(pl, v)];
        const oq_value *x = g->values[v];
        if (!r->has_concat || written[v] || x->constant || x->graph != g)
            continue;
        const oq_calib_entry *e = pl->table ? oq_calib_table_find(pl->table, x->name) : NULL;
        if (e && empty_entry(e))
            continue; /* empty in every sample (a KV cache's past at the first step): adds no values */
        double range[2];
        if (!table_range(pl, x, range)) {
            r->complete = false;
            continue;
        }
        r->lo = fmin(r->lo, range[0]);
        r->hi = fmax(r->hi, range[1]);
    }
done:
    free(written);
    return st;
}

/* The activation inputs of candidate n become 8-bit tensors: x, and B of a
 * MatMul of two activations. */
static oq_status quantize_inputs(planner *pl, const oq_node *n, const oq_plan_node *pn)
{
    const oq_value *x = n->inputs[0], *b = n->inputs[1];
    oq_status st = ensure_params(pl, x);
    if (st)
        return st;
    set_8bit(pl, x, val(pl, x)->params);
    if (pn->activation_b) {
        if ((st = ensure_params(pl, b)))
            return st;
        set_8bit(pl, b, val(pl, b)->params);
    }
    return OQ_OK;
}

/* Candidate i, which nothing blocks: its action and what it does to its values. */
static oq_status plan_candidate(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    oq_plan_node *pn = &pl->p->nodes[i];
    const oq_value *x = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    oq_status st;
    pn->activation_b = two_activations(n);
    if (n->kind == OQ_OP_GATHER) { /* weight only: the same in every mode and format */
        pn->action = OQ_ACTION_EMBEDDING;
        return OQ_OK;
    }
    int table_input, table_axis;
    if (oq_table_add(n, &table_input, &table_axis) || weight_only(pl, n)) { /* a table Add: in every mode and format */
        pn->action = OQ_ACTION_WEIGHT_ONLY;
        return OQ_OK;
    }
    if (pl->o->mode == OQ_MODE_DYNAMIC) {
        pn->action = OQ_ACTION_DYNAMIC;
        return OQ_OK;
    }
    int bias = pn->activation_b ? -1 : bias_add(pl, i);
    oq_qparams p;
    if (pl->o->format == OQ_FORMAT_QDQ && bias >= 0 && !act_params(pl, pl->g->nodes[bias]->outputs[0], &p))
        bias = -1; /* a table made without the Add's output: the pair stays after the MatMul */
    if (pl->o->format == OQ_FORMAT_QDQ) {
        pn->action = OQ_ACTION_QDQ;
        if (bias >= 0) { /* the Add reads the bias as int32; the output pair follows it */
            fold_bias(pl, i, bias);
            y = pl->g->nodes[bias]->outputs[0];
        }
        if ((st = ensure_params(pl, x)) || (pn->activation_b && (st = ensure_params(pl, b))))
            return st;
        pn->float_out = (n->kind == OQ_OP_MATMUL || n->kind == OQ_OP_GEMM) && oq_is_graph_output(pl->g, y);
        pn->clamp = pn->float_out ? -1 : range_clamp(pl, y); /* the pair takes its range; the Relu/Clip stays */
        return ensure_params(pl, y);
    }
    /* float out of the int32 sums: a Gemm (without --contrib), a MatMul whose
     * bias Add folds in, or one whose output only float ops read (unless a
     * Relu/Clip folds into its 8-bit output); QGemm writes float when its
     * output is a graph output */
    bool gemm = n->kind == OQ_OP_GEMM, chain = (gemm && !pl->o->contrib) || bias >= 0;
    bool float_out = gemm && oq_is_graph_output(pl->g, y);
    int clamp = chain || float_out ? -1 : foldable_clamp(pl, i);
    if (chain || (n->kind == OQ_OP_MATMUL && clamp < 0 && !eight_bit_reader(pl, y))) {
        pn->action = OQ_ACTION_INTEGER_GEMM;
        if (bias >= 0)
            fold_bias(pl, i, bias);
        return quantize_inputs(pl, n, pn);
    }
    pn->action = gemm ? OQ_ACTION_QGEMM : OQ_ACTION_QLINEAR;
    y = fold_clamp(pl, i, float_out ? -1 : clamp);
    if ((st = quantize_inputs(pl, n, pn)) || float_out)
        return st;
    if ((st = ensure_params(pl, y)))
        return st;
    set_8bit(pl, y, val(pl, y)->params);
    return OQ_OK;
}

/* Whether every input of Concat n is 8-bit at the parameters p (its first's,
 * or its group's); in a group, float inputs become 8-bit at p. */
static bool concat_inputs_8bit(planner *pl, const oq_node *n, oq_qparams *p)
{
    bool shared = group_params(pl, n->outputs[0], p);
    if (!shared) {
        if (!val(pl, n->inputs[0])->is8)
            return false;
        *p = val(pl, n->inputs[0])->params;
    }
    for (int k = 0; k < n->n_inputs; k++) {
        const oq_value *v = n->inputs[k];
        const oq_plan_value *o = v ? val(pl, v) : NULL;
        if (!o || (!o->is8 && (!shared || v->constant)))
            return false;
        if (o->is8 && pl->table && (o->params.scale != p->scale || o->params.zero_point != p->zero_point))
            return false;
    }
    for (int k = 0; shared && k < n->n_inputs; k++)
        if (!val(pl, n->inputs[k])->is8)
            set_8bit(pl, n->inputs[k], *p);
    return true;
}

/* Data movement on the 8-bit tensor: every output gets the input's parameters. */
static bool plan_passthrough(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    if (!moves_data(n))
        return false;
    oq_qparams p = val(pl, n->inputs[0])->params;
    if (n->kind == OQ_OP_CONCAT) {
        if (!n->n_outputs || !n->outputs[0] || !concat_inputs_8bit(pl, n, &p))
            return false;
        /* without a table the parameters may differ: --contrib then reads the output's range */
        oq_qparams unused;
        if (!pl->table && pl->o->contrib)
            act_params(pl, n->outputs[0], &unused);
    } else if (!val(pl, n->inputs[0])->is8) {
        return false;
    }
    pl->p->nodes[i].action = OQ_ACTION_PASSTHROUGH;
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k])
            set_8bit(pl, n->outputs[k], p);
    return true;
}

/* --contrib: a Concat of 8-bit inputs of differing parameters. */
static oq_status plan_qlinear_concat(planner *pl, int i, bool *done)
{
    const oq_node *n = pl->g->nodes[i];
    const oq_value *y = n->n_outputs ? n->outputs[0] : NULL;
    oq_qparams p;
    *done = false;
    if (!pl->o->contrib || n->kind != OQ_OP_CONCAT || !y || n->n_inputs < 1 || n->n_inputs > MAX_CONCAT_INPUTS)
        return OQ_OK;
    for (int k = 0; k < n->n_inputs; k++)
        if (!n->inputs[k] || !val(pl, n->inputs[k])->is8)
            return OQ_OK;
    if (!act_params(pl, y, &p))
        return OQ_OK;
    oq_status st = ensure_params(pl, y);
    if (st)
        return st;
    set_8bit(pl, y, val(pl, y)->params);
    pl->p->nodes[i].action = OQ_ACTION_QLINEAR_CONCAT;
    pl->p->n_contrib_ops++;
    *done = true;
    return OQ_OK;
}

/* Whether constant v can be an operand of a contrib op: float and finite. */
static bool contrib_constant(const oq_value *v)
{
    if (!oq_is_float_constant(v) || !oq_tensor_numel(v->constant))
        return false;
    const float *d = v->constant->data;
    for (int64_t i = 0; i < oq_tensor_numel(v->constant); i++)
        if (!isfinite(d[i]))
            return false;
    return true;
}

/* Whether n has the structure of a contrib op (op_quant role ROLE_CONTRIB):
 * one output, data inputs that are activations or (Mul) usable constants, at
 * least one an activation. A Mul by a one-element constant is left to the
 * rescaled twin or the float glue, which make it free; an Add of a constant
 * to the shifted twin or to float (plan_shifted_twin says why). */
static bool contrib_shaped(const oq_node *n)
{
    const struct op_quant *q = &op_quant[n->kind];
    if (q->role != ROLE_CONTRIB || n->n_inputs != q->arity || n->n_outputs != 1 || !n->outputs[0])
        return false;
    int activations = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const oq_value *v = n->inputs[k];
        if (v && !v->constant)
            activations++;
        else if (n->kind == OQ_OP_ADD || !contrib_constant(v) || oq_tensor_numel(v->constant) == 1)
            return false;
    }
    return activations > 0;
}

/* --contrib: Add, Mul, Sigmoid, LeakyRelu or GlobalAveragePool whose
 * activations are all 8-bit, at its output's calibrated range (a Relu/Clip
 * that alone reads it folds in). Without that range it stays float (no_range). */
static oq_status plan_contrib(planner *pl, int i, bool *done)
{
    const oq_node *n = pl->g->nodes[i];
    oq_plan_node *pn = &pl->p->nodes[i];
    *done = false;
    if (!pl->o->contrib || !contrib_shaped(n))
        return OQ_OK;
    for (int k = 0; k < n->n_inputs; k++)
        if (!n->inputs[k]->constant && !val(pl, n->inputs[k])->is8)
            return OQ_OK;
    int clamp = foldable_clamp(pl, i);
    const oq_value *y = clamp >= 0 ? pl->g->nodes[clamp]->outputs[0] : n->outputs[0];
    oq_qparams p;
    if (!act_params(pl, y, &p)) {
        pn->no_range = true;
        pl->p->n_contrib_no_range++;
        return OQ_OK;
    }
    fold_clamp(pl, i, clamp);
    for (int k = 0; k < n->n_inputs; k++) /* constant operands are quantized on their own range */
        if (n->inputs[k]->constant && !val(pl, n->inputs[k])->is8)
            set_8bit(pl, n->inputs[k], oq_constant_qparams(n->inputs[k]->constant, pl->o));
    set_8bit(pl, y, p);
    pn->action = OQ_ACTION_CONTRIB;
    pl->p->n_contrib_ops++;
    *done = true;
    return OQ_OK;
}

/* --contrib: a Mul of an 8-bit value by a positive one-element constant c:
 * the output is the same tensor read at scale x c. */
static bool plan_scaled_twin(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    if (!pl->o->contrib || n->kind != OQ_OP_MUL || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0])
        return false;
    for (int k = 0; k < 2; k++) {
        const oq_value *x = n->inputs[k], *c_in = n->inputs[1 - k];
        if (!x || x->constant || !val(pl, x)->is8 || !oq_is_float_constant(c_in) ||
            oq_tensor_numel(c_in->constant) != 1)
            continue;
        float c = oq_scalar_operand(c_in, x);
        if (!(c > 0) || !isfinite(c))
            continue;
        oq_qparams px = val(pl, x)->params;
        set_8bit(pl, n->outputs[0], (oq_qparams){px.scale * c, px.zero_point});
        pl->p->nodes[i].action = OQ_ACTION_SCALED_TWIN;
        pl->p->nodes[i].operand = k;
        pl->p->n_scaled_twins++;
        return true;
    }
    return false;
}

/* How far a shift may be from a whole number of steps, in steps: the rest
 * is a bias of every element, here under 1/64 step, a twentieth of the
 * standard deviation of one rounding (0.29 step). */
#define SHIFT_TOLERANCE (1.0 / 64)

/* --contrib: an Add of a one-element constant c to an 8-bit value x (s, z)
 * when c is a whole number k of x's steps (within SHIFT_TOLERANCE) and z - k
 * is a zero point of the type: the output is x's tensor read at zero point
 * z - k, exactly, with no op. Any other Add of a constant stays float. Run as
 * a QLinearAdd it would round every output once more (an 8-bit tensor
 * requantized to about its own scale: every output is its input's integer
 * plus the same fraction of a step, rounded the same way, a bias that adds up
 * through the layers; spread by a coarser output scale, still an extra
 * rounding at a coarser step): measured on PP-OCRv4 rec, whose blocks each
 * add two scalars, that cost 2.5 points of held-out words where the same
 * Adds in float cost none (docs/quantization.md). Without a table the
 * parameters are unknown and the twin, which keeps x 8-bit, is planned. */
static bool plan_shifted_twin(planner *pl, int i)
{
    const oq_node *n = pl->g->nodes[i];
    if (!pl->o->contrib || n->kind != OQ_OP_ADD || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0])
        return false;
    for (int k = 0; k < 2; k++) {
        const oq_value *x = n->inputs[k], *c_in = n->inputs[1 - k];
        if (!x || x->constant || !val(pl, x)->is8)
            continue;
        float c = oq_scalar_operand(c_in, x);
        if (!isfinite(c))
            continue;
        oq_qparams px = val(pl, x)->params;
        double steps = pl->table ? c / px.scale : 0, whole = nearbyint(steps);
        double zero_point = px.zero_point - whole;
        if (fabs(steps - whole) > SHIFT_TOLERANCE || zero_point < pl->o->act_qmin || zero_point > pl->o->act_qmax)
            continue;
        set_8bit(pl, n->outputs[0], (oq_qparams){px.scale, (int32_t)zero_point});
        pl->p->nodes[i].action = OQ_ACTION_SHIFTED_TWIN;
        pl->p->nodes[i].operand = k;
        pl->p->n_shifted_twins++;
        return true;
    }
    return false;
}

/* --contrib, asymmetric activations: HardSigmoid and HardSwish of an 8-bit
 * value, clamped by saturation (0 must be the lowest integer). HardSwish's
 * output takes its calibrated range (none in the table: float, no_range). */
static oq_status plan_hard(planner *pl, int i, bool *done)
{
    const oq_node *n = pl->g->nodes[i];
    oq_plan_node *pn = &pl->p->nodes[i];
    bool swish = n->kind == OQ_OP_HARD_SWISH;
    *done = false;
    if (!pl->o->contrib || pl->o->symmetric_activations || op_quant[n->kind].role != ROLE_HARD ||
        n->n_inputs != 1 || n->n_outputs != 1 || !n->outputs[0] || !n->inputs[0] || !val(pl, n->inputs[0])->is8)
        return OQ_OK;
    const oq_value *y = n->outputs[0];
    float alpha = oq_node_attr_float(n, "alpha", 0.2f), beta = oq_node_attr_float(n, "beta", 0.5f);
    if (!swish && !(alpha > 0 && isfinite(alpha) && isfinite(beta)))
        return OQ_OK;
    oq_qparams py;
    if (swish && !act_params(pl, y, &py)) {
        pn->no_range = true;
        pl->p->n_contrib_no_range++;
        return OQ_OK;
    }
    if (swish) {
        oq_status st = ensure_params(pl, y);
        if (st)
            return st;
        set_8bit(pl, y, val(pl, y)->params);
    } else {
        set_8bit(pl, y, oq_qparams_from_range(0, 1, pl->o->act_qmin, pl->o->act_qmax, false));
    }
    pn->action = swish ? OQ_ACTION_HARD_SWISH : OQ_ACTION_HARD_SIGMOID;
    pl->p->n_contrib_ops++;
    *done = true;
    return OQ_OK;
}

/* A node that is not a candidate, in the static QOperator format. */
static oq_status plan_other(planner *pl, int i)
{
    bool done = plan_passthrough(pl, i);
    oq_status st = OQ_OK;
    if (!done)
        st = plan_qlinear_concat(pl, i, &done);
    if (!st && !done)
        st = plan_contrib(pl, i, &done);
    if (!st && !done)
        done = plan_scaled_twin(pl, i) || plan_shifted_twin(pl, i);
    if (!st && !done)
        st = plan_hard(pl, i, &done);
    return st;
}

/* Whether Einsum n reads a float constant (a kernel) beside an activation: the
 * Einsums that are candidates (an attention Einsum of two activations is not). */
static bool einsum_kernel(const oq_node *n)
{
    const oq_value *a = oq_node_input(n, 0), *b = oq_node_input(n, 1);
    return n->n_inputs == 2 && a && b && (oq_is_float_constant(a) != oq_is_float_constant(b));
}

static oq_status walk(planner *pl)
{
    oq_plan *p = pl->p;
    bool qoperator = pl->o->mode == OQ_MODE_STATIC && pl->o->format == OQ_FORMAT_QOPERATOR;
    for (int i = 0; i < p->n_nodes; i++) {
        const oq_node *n = pl->g->nodes[i];
        oq_plan_node *pn = &p->nodes[i];
        if (pn->action == OQ_ACTION_FOLDED_CLAMP || pn->action == OQ_ACTION_FOLDED_BIAS)
            continue; /* planned with the node before it */
        oq_status st = OQ_OK;
        int table_input, table_axis;
        bool embedding = embedding_lookup(n), table = oq_table_add(n, &table_input, &table_axis);
        op_role role = op_quant[n->kind].role;
        if ((role != ROLE_WEIGHTED && role != ROLE_WEIGHT_ONLY && role != ROLE_FLOAT_OP && !embedding && !table) ||
            (n->kind == OQ_OP_EINSUM && !einsum_kernel(n)) || !pl->selected[n->kind]) {
            if (qoperator && pl->policy[i] != OQ_POLICY_FLOAT)
                st = plan_other(pl, i);
        } else {
            pn->candidate = true;
            p->n_candidates++;
            if ((pn->reason = embedding ? embedding_blocker(pl, i) : table ? table_blocker(pl, i) : blocker(pl, i)))
                pn->action = OQ_ACTION_KEEP_FLOAT;
            else
                st = plan_candidate(pl, i);
        }
        if (st)
            return oq_err_context(pl->err, "node '%s' (%s)", n->name, n->op_type);
    }
    return OQ_OK;
}

/* ---- lifetime ---------------------------------------------------------------------- */

oq_status oq_plan_create(oq_plan **out, const oq_graph *g, const oq_quant_options *opts, const oq_calib_table *table,
                         int n_overrides, const oq_plan_override *overrides, oq_err *err)
{
    *out = NULL;
    oq_plan *p = calloc(1, sizeof *p);
    planner pl = {.p = p, .g = g, .o = opts, .err = err};
    oq_status st = OQ_OK;
    if (p) {
        p->graph = g;
        p->opts = *opts;
        p->n_nodes = g->n_nodes;
        p->n_values = g->n_values;
        p->nodes = calloc((size_t)g->n_nodes + 1, sizeof *p->nodes);
        p->values = calloc((size_t)g->n_values + 1, sizeof *p->values);
        pl.policy = calloc((size_t)g->n_nodes + 1, sizeof *pl.policy);
        pl.policy_reason = calloc((size_t)g->n_nodes + 1, sizeof *pl.policy_reason);
        pl.by_address = malloc(((size_t)g->n_nodes + 1) * sizeof *pl.by_address);
        pl.reaches_8bit = calloc((size_t)g->n_values + 1, sizeof *pl.reaches_8bit);
    }
    if (!p || !p->nodes || !p->values || !pl.policy || !pl.policy_reason || !pl.by_address || !pl.reaches_8bit) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    bool statics = opts->mode == OQ_MODE_STATIC;
    pl.table = statics ? table : NULL;
    p->ranges_known = !statics || table;
    for (int k = 0; k < OQ_OP_COUNT; k++)
        pl.selected[k] = oq_quant_selects(opts, (oq_op_kind)k);
    for (int i = 0; i < g->n_nodes; i++) {
        pl.by_address[i] = (node_slot){g->nodes[i], i};
        p->nodes[i].clamp = p->nodes[i].bias = -1;
    }
    qsort(pl.by_address, (size_t)g->n_nodes, sizeof *pl.by_address, slot_cmp);
    find_8bit_readers(&pl);
    for (int k = 0; k < n_overrides; k++) {
        int found = -1;
        for (int i = 0; i < g->n_nodes && found < 0; i++)
            if (!strcmp(g->nodes[i]->name, overrides[k].node))
                found = i;
        if (found < 0 || overrides[k].policy < 0 || overrides[k].policy >= OQ_POLICY_COUNT) {
            st = found < 0 ? oq_errf(err, OQ_EINVAL, "no node named '%s' in the model", overrides[k].node)
                           : oq_errf(err, OQ_EINVAL, "node '%s': unknown policy %d", overrides[k].node,
                                     (int)overrides[k].policy);
            goto done;
        }
        pl.policy[found] = overrides[k].policy;
        pl.policy_reason[found] = overrides[k].reason ? overrides[k].reason : "kept float by its node policy";
    }
    if (statics && opts->format == OQ_FORMAT_QOPERATOR && (st = share_concat_ranges(&pl)))
        goto done;
    st = walk(&pl);
done:
    free(pl.policy);
    free(pl.policy_reason);
    free(pl.by_address);
    free(pl.reaches_8bit);
    free(pl.group);
    free(pl.shared);
    if (st) {
        oq_plan_destroy(p);
        return st;
    }
    *out = p;
    return OQ_OK;
}

void oq_plan_destroy(oq_plan *p)
{
    if (!p)
        return;
    free(p->nodes);
    free(p->values);
    free(p);
}
