/* rewrite.c: the quantization rewrite of a float graph (see oq_quant.h).
 *
 * QOperator format: every quantized value v gets an 8-bit twin (with scale
 * and zero-point initializers). Conv and MatMul become QLinearConv and
 * QLinearMatMul reading and writing twins; Gemm becomes MatMulInteger plus an
 * int32 bias Add, a Cast and a per-column rescale (standard ops that ONNX
 * Runtime's CPU provider runs, exact in the integer part). A Relu/Clip that
 * alone reads a quantized output folds into its range. Data-movement ops whose
 * input has a twin run on the twin. QuantizeLinear is inserted where a float
 * value enters the 8-bit domain, DequantizeLinear (writing the original float
 * name) where float consumers or graph outputs need it back.
 *
 * QDQ format: each quantized node reads DequantizeLinear(QuantizeLinear(x))
 * and weights stored as int8 + a per-channel DequantizeLinear; its output
 * gets a QuantizeLinear/DequantizeLinear pair, the layout runtimes fuse.
 *
 * Dynamic mode: no ranges ahead of time. Each input activation goes through
 * DynamicQuantizeLinear (uint8, parameters computed per run); MatMul and Gemm
 * become MatMulInteger with int8 weights, Conv becomes ConvInteger with uint8
 * weights at zero point 128 (ONNX Runtime's CPU ConvInteger takes uint8 x
 * uint8 and one weight zero point only). Weight scales stay per channel: the
 * int32 result is cast to float and multiplied by activation scale x channel
 * scales, then the float bias is added. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_quant.h"

/* Per float value of the graph: its quantized twin (QOperator) and its parameters. */
typedef struct qinfo {
    oq_value *twin;       /* 8-bit version, or NULL */
    oq_value *scale, *zp; /* scalar initializers, created on demand */
    oq_qparams p;
    bool has_params;
} qinfo;

/* A quantized weight, shared by every node that reads the same constant. */
typedef struct qweight {
    const oq_value *src;
    int axis;
    oq_value *q, *scale, *zp; /* initializers */
    oq_value *q_u8;           /* q + 128 as uint8 (dynamic ConvInteger), made on demand */
    oq_weight_quant wq;       /* keeps scales for bias quantization and the report */
} qweight;

typedef struct rewriter {
    oq_model *m;
    oq_graph *g;
    const oq_calib_table *table;
    const oq_quant_options *o;
    oq_quant_result *res;
    int n_chunks;
    qinfo **info;         /* [n_chunks] blocks of INFO_CHUNK, by value id; blocks never move */
    int n_weights;
    qweight *weights;
    oq_dtype act_type;    /* UINT8 or INT8 */
    oq_err *err;
} rewriter;

/* ---- small builders ------------------------------------------------------------- */

enum { INFO_CHUNK = 256 };

/* v's info (zeroed at first), or NULL when out of memory. The pointer stays
 * valid for the whole rewrite: the graph may grow, the blocks do not move. */
static qinfo *info_of(rewriter *r, const oq_value *v)
{
    int c = v->id / INFO_CHUNK;
    if (c >= r->n_chunks) {
        qinfo **p = realloc(r->info, (size_t)(c + 1) * sizeof *p);
        if (!p)
            return NULL;
        memset(p + r->n_chunks, 0, (size_t)(c + 1 - r->n_chunks) * sizeof *p);
        r->info = p;
        r->n_chunks = c + 1;
    }
    if (!r->info[c] && !(r->info[c] = calloc(INFO_CHUNK, sizeof **r->info)))
        return NULL;
    return &r->info[c][v->id % INFO_CHUNK];
}

/* v's info when some was made, else NULL (allocates nothing). */
static const qinfo *info_if_any(const rewriter *r, const oq_value *v)
{
    int c = v->id / INFO_CHUNK;
    return c < r->n_chunks && r->info[c] ? &r->info[c][v->id % INFO_CHUNK] : NULL;
}

/* New initializer named after base (made unique) holding t (ownership taken). */
static oq_value *add_initializer(rewriter *r, const char *base, oq_tensor *t)
{
    if (!t)
        return NULL;
    char *name = oq_graph_unique_name(r->g, base);
    oq_value *v = name ? oq_graph_value(r->g, name, r->err) : NULL;
    free(name);
    if (!v) {
        oq_tensor_destroy(t);
        return NULL;
    }
    oq_dim dims[OQ_MAX_RANK];
    for (int i = 0; i < t->rank; i++)
        dims[i] = (oq_dim){t->dims[i], NULL};
    if (oq_graph_set_constant(r->g, v, t, true, r->err) || oq_value_set_tensor_type(v, t->dtype, t->rank, dims, r->err))
        return NULL;
    return v;
}

static oq_value *scalar_initializer(rewriter *r, const char *base, oq_dtype dt, double value)
{
    oq_tensor *t = oq_tensor_create(dt, 0, NULL, r->err);
    if (!t)
        return NULL;
    switch (dt) {
    case OQ_DTYPE_FLOAT: *(float *)t->data = (float)value; break;
    case OQ_DTYPE_UINT8: *(uint8_t *)t->data = (uint8_t)value; break;
    case OQ_DTYPE_INT8: *(int8_t *)t->data = (int8_t)value; break;
    case OQ_DTYPE_INT32: *(int32_t *)t->data = (int32_t)value; break;
    default: oq_tensor_destroy(t); oq_errf(r->err, OQ_EINVAL, "no scalar of type %s", oq_dtype_name(dt)); return NULL;
    }
    return add_initializer(r, base, t);
}

/* Tensor moved into a heap object (for add_initializer). */
static oq_tensor *boxed(oq_tensor *t, oq_err *err)
{
    oq_tensor *b = malloc(sizeof *b);
    if (!b) {
        oq_tensor_release(t);
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    *b = *t;
    memset(t, 0, sizeof *t);
    return b;
}

/* A new untyped value named after base. */
static oq_value *new_value(rewriter *r, const char *base, const char *suffix)
{
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *want = malloc(n);
    if (!want) {
        oq_errf(r->err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(want, n, "%s%s", base, suffix);
    char *name = oq_graph_unique_name(r->g, want);
    free(want);
    oq_value *v = name ? oq_graph_value(r->g, name, r->err) : NULL;
    free(name);
    return v;
}

#define MAX_NODE_INPUTS 32 /* QLinearConcat of 10 tensors: 2 + 3 x 10 */
#define CONTRIB_DOMAIN "com.microsoft" /* ONNX Runtime's contrib ops */

/* Appends a node of op in domain ("" for ai.onnx) reading and writing the
 * given values (NULL = omitted), named after its first output
 * ("<output>_<op>"), which is unique. */
static oq_node *add_node_in(rewriter *r, const char *domain, const char *op, int n_in, oq_value *const *in, int n_out,
                            oq_value *const *out)
{
    const char *in_names[MAX_NODE_INPUTS], *out_names[4];
    for (int i = 0; i < n_in; i++)
        in_names[i] = in[i] ? in[i]->name : "";
    for (int i = 0; i < n_out; i++)
        out_names[i] = out[i] ? out[i]->name : "";
    size_t len = strlen(out_names[0]) + strlen(op) + 2;
    char *name = malloc(len);
    if (!name) {
        oq_errf(r->err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(name, len, "%s_%s", out_names[0], op);
    oq_node *n = oq_graph_add_node(r->g, op, domain, name, n_in, in_names, n_out, out_names, r->err);
    free(name);
    return n;
}

static oq_node *add_node(rewriter *r, const char *op, int n_in, oq_value *const *in, int n_out, oq_value *const *out)
{
    return add_node_in(r, "", op, n_in, in, n_out, out);
}

/* Gives the node that replaces `orig` the original's name, when it had one. */
static oq_status inherit_name(oq_node *repl, const oq_node *orig, oq_err *err)
{
    if (!orig->name[0])
        return OQ_OK;
    char *name = strdup(orig->name);
    if (!name)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    free(repl->name);
    repl->name = name;
    return OQ_OK;
}

/* ---- graph queries ---------------------------------------------------------------- */

static bool is_graph_output(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

static bool is_default_op(const oq_node *n, const char *op)
{
    return n && !n->domain[0] && strcmp(n->op_type, op) == 0;
}

/* The single node reading v, when that is its only use. */
static oq_node *sole_reader(const oq_graph *g, const oq_value *v)
{
    return v && v->n_consumers == 1 && !is_graph_output(g, v) ? v->consumers[0] : NULL;
}

/* Whether a is a Relu, or a Clip with constant bounds, reading x: a clamp whose
 * output range also serves x (quantizing x to that range, then clamping, gives
 * what clamping, then quantizing gives). */
static bool is_clamp_of(const oq_node *a, const oq_value *x)
{
    if (!a || a->n_inputs < 1 || a->inputs[0] != x || a->n_outputs < 1 || !a->outputs[0])
        return false;
    if (is_default_op(a, "Relu"))
        return true;
    if (!is_default_op(a, "Clip"))
        return false;
    for (int k = 1; k < a->n_inputs; k++) /* min/max: inputs from opset 11, attributes before */
        if (a->inputs[k] && !a->inputs[k]->constant)
            return false;
    return true;
}

/* ---- activation parameters ------------------------------------------------------- */

/* Range-derived parameters for v, from the calibration table: the range of
 * the Relu/Clip that alone reads v when there is one (see is_clamp_of), else
 * v's own. False when neither is in the table. */
static bool act_params(rewriter *r, const oq_value *v, oq_qparams *p)
{
    const oq_node *next = sole_reader(r->g, v);
    const oq_calib_entry *e = is_clamp_of(next, v) ? oq_calib_table_find(r->table, next->outputs[0]->name) : NULL;
    if (!e && !(e = oq_calib_table_find(r->table, v->name)))
        return false;
    *p = oq_qparams_from_range(e->range[0], e->range[1], r->o->act_qmin, r->o->act_qmax, r->o->symmetric_activations);
    return true;
}

/* Makes sure v's scale and zero-point initializers exist (params from the table,
 * or already set by a producer). */
static oq_status ensure_params(rewriter *r, const oq_value *v, qinfo **out)
{
    qinfo *qi = info_of(r, v);
    if (!qi)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    if (!qi->has_params) {
        if (!act_params(r, v, &qi->p))
            return oq_errf(r->err, OQ_EINVAL, "no calibration range for '%s'", v->name);
        qi->has_params = true;
    }
    if (!qi->scale) {
        char base[512];
        snprintf(base, sizeof base, "%s_scale", v->name);
        qi->scale = scalar_initializer(r, base, OQ_DTYPE_FLOAT, qi->p.scale);
        snprintf(base, sizeof base, "%s_zero_point", v->name);
        qi->zp = qi->scale ? scalar_initializer(r, base, r->act_type, qi->p.zero_point) : NULL;
        if (!qi->zp)
            return r->err->status ? r->err->status : OQ_ENOMEM;
    }
    *out = qi;
    return OQ_OK;
}

/* The 8-bit twin of float value v, inserting QuantizeLinear when v has none yet. */
static oq_value *quantized(rewriter *r, oq_value *v)
{
    qinfo *qi;
    if (ensure_params(r, v, &qi))
        return NULL;
    if (qi->twin)
        return qi->twin;
    oq_value *q = new_value(r, v->name, "_quantized");
    oq_value *in[3] = {v, qi->scale, qi->zp};
    if (!q || !add_node(r, "QuantizeLinear", 3, in, 1, &q))
        return NULL;
    qi->twin = q;
    return q;
}

/* ---- weights ------------------------------------------------------------------------ */

/* Floors for the weight scales of channels 0..n so that bias * factor,
 * quantized at input_scale x weight scale, stays within +-2^30 (headroom for
 * the int32 accumulator). NULL when there is no bias; caller frees. */
static float *bias_floors(const oq_value *b, float factor, float input_scale, int64_t n)
{
    if (!b)
        return NULL;
    float *f = calloc((size_t)(n ? n : 1), sizeof *f);
    int64_t nb = oq_tensor_numel(b->constant);
    for (int64_t c = 0; f && c < n; c++)
        f[c] = (float)(fabs(factor * oq_tensor_get_f64(b->constant, nb == 1 ? 0 : c)) / ((double)input_scale * 1073741824.0));
    return f;
}

/* Quantized form of constant weight w along axis (per channel unless the
 * options say otherwise), with scales at least `floors` (may be NULL). */
static qweight *quantized_weight(rewriter *r, const oq_value *w, int axis, const float *floors)
{
    for (int i = 0; i < r->n_weights; i++) {
        qweight *qw = &r->weights[i];
        if (qw->src != w || qw->axis != axis)
            continue;
        const float *s = qw->wq.scales.data;
        int64_t ns = oq_tensor_numel(&qw->wq.scales);
        for (int64_t c = 0; floors && c < w->constant->dims[axis]; c++)
            if (s[ns == 1 ? 0 : c] < floors[c]) {
                oq_errf(r->err, OQ_EUNSUPPORTED, "weight '%s' is shared by nodes whose biases need different scales",
                        w->name);
                return NULL;
            }
        return qw;
    }
    qweight *grown = realloc(r->weights, (size_t)(r->n_weights + 1) * sizeof *grown);
    if (!grown) {
        oq_errf(r->err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    r->weights = grown;
    qweight *qw = &r->weights[r->n_weights];
    memset(qw, 0, sizeof *qw);
    qw->src = w;
    qw->axis = axis;
    if (oq_quantize_weight(&qw->wq, w->constant, axis, r->o->per_channel, floors, r->err))
        return NULL;
    r->n_weights++;
    char base[512];
    oq_tensor t;
    snprintf(base, sizeof base, "%s_quantized", w->name);
    if (oq_tensor_copy(&t, &qw->wq.q, r->err) || !(qw->q = add_initializer(r, base, boxed(&t, r->err))))
        return NULL;
    snprintf(base, sizeof base, "%s_scale", w->name);
    if (oq_tensor_copy(&t, &qw->wq.scales, r->err) || !(qw->scale = add_initializer(r, base, boxed(&t, r->err))))
        return NULL;
    snprintf(base, sizeof base, "%s_zero_point", w->name);
    if (oq_tensor_copy(&t, &qw->wq.zeros, r->err) || !(qw->zp = add_initializer(r, base, boxed(&t, r->err))))
        return NULL;
    return qw;
}

/* int32 bias initializer for float constant bias b at input_scale * weight scales. */
static oq_value *quantized_bias(rewriter *r, const oq_value *b, float input_scale, const qweight *qw)
{
    oq_tensor t;
    if (oq_quantize_bias(&t, b->constant, input_scale, &qw->wq.scales, r->err))
        return NULL;
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", b->name);
    return add_initializer(r, base, boxed(&t, r->err));
}

/* ---- the report ------------------------------------------------------------------- */

static oq_quant_node *report_node(rewriter *r, const oq_node *n)
{
    oq_quant_result *res = r->res;
    oq_quant_node *p = realloc(res->nodes, (size_t)(res->n_nodes + 1) * sizeof *p);
    if (!p)
        return NULL;
    res->nodes = p;
    oq_quant_node *q = &p[res->n_nodes++];
    memset(q, 0, sizeof *q);
    q->name = strdup(n->name);
    q->op_type = strdup(n->op_type);
    q->output = strdup(n->n_outputs && n->outputs[0] ? n->outputs[0]->name : "");
    return q;
}

static void report_weight(oq_quant_node *q, const qweight *qw)
{
    const oq_tensor *s = &qw->wq.scales;
    int64_t n = oq_tensor_numel(s);
    const float *f = s->data;
    q->n_scales = (int)n;
    q->scale_min = q->scale_max = f[0];
    for (int64_t i = 1; i < n; i++) {
        q->scale_min = fminf(q->scale_min, f[i]);
        q->scale_max = fmaxf(q->scale_max, f[i]);
    }
    q->weight_sqnr_db = qw->wq.sqnr_db;
}

/* ---- selection -------------------------------------------------------------------- */

static bool is_selected(const rewriter *r, const char *op)
{
    static const char *const defaults[] = {"Conv", "MatMul", "Gemm"};
    int n = r->o->n_op_types ? r->o->n_op_types : 3;
    const char *const *list = r->o->n_op_types ? r->o->op_types : defaults;
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], op) == 0)
            return true;
    return false;
}

static bool is_excluded(const rewriter *r, const oq_node *n)
{
    for (int i = 0; i < r->o->n_exclude; i++)
        if (strcmp(r->o->exclude[i], n->name) == 0)
            return true;
    return false;
}

static bool is_float_constant(const oq_value *v)
{
    return v && v->constant && v->constant->dtype == OQ_DTYPE_FLOAT;
}

/* Why node n cannot be quantized (NULL when it can): checks its weight and
 * bias are float constants of the expected rank and its activations have ranges. */
static const char *blocker(rewriter *r, const oq_node *n)
{
    oq_qparams p;
    const oq_value *x = oq_node_input(n, 0), *w = oq_node_input(n, 1);
    if (is_excluded(r, n))
        return "excluded by --exclude";
    if (!x || !w || !n->outputs[0])
        return "missing input or output";
    if (!is_float_constant(w))
        return "weight is not a float constant";
    if (r->o->mode == OQ_MODE_STATIC && !act_params(r, x, &p))
        return "input has no calibration range";
    if (r->o->mode == OQ_MODE_STATIC && !act_params(r, n->outputs[0], &p))
        return "output has no calibration range";
    const oq_tensor *wt = w->constant;
    if (strcmp(n->op_type, "Conv") == 0) {
        const oq_value *b = oq_node_input(n, 2);
        if (wt->rank < 3)
            return "Conv weight has rank < 3";
        if (b && (!is_float_constant(b) || b->constant->rank != 1))
            return "bias is not a 1-D float constant";
    } else if (strcmp(n->op_type, "MatMul") == 0) {
        if (wt->rank != 2)
            return "MatMul weight is not 2-D";
    } else { /* Gemm */
        const oq_value *c = oq_node_input(n, 2);
        if (wt->rank != 2)
            return "Gemm weight is not 2-D";
        if (oq_node_attr_int(n, "transA", 0))
            return "Gemm with transA=1";
        int64_t cols = oq_node_attr_int(n, "transB", 0) ? wt->dims[0] : wt->dims[1];
        if (c && (!is_float_constant(c) || (oq_tensor_numel(c->constant) != cols && oq_tensor_numel(c->constant) != 1) ||
                  c->constant->rank > 2 || (c->constant->rank == 2 && c->constant->dims[0] != 1)))
            return "Gemm C is not a constant bias of shape [N] or [1, N]";
    }
    return NULL;
}

/* The Relu/Clip that alone reads n's output and can fold into its range, or NULL. */
static oq_node *foldable_activation(rewriter *r, oq_node *n)
{
    oq_value *y = n->outputs[0];
    oq_node *a = sole_reader(r->g, y);
    oq_qparams p;
    if (r->o->symmetric_activations || !is_clamp_of(a, y) || !act_params(r, a->outputs[0], &p))
        return NULL;
    /* folding replaces the clamp at 0 by saturation: only exact when 0 maps to qmin */
    if (strcmp(a->op_type, "Relu") == 0 && p.zero_point != r->o->act_qmin)
        return NULL;
    return a;
}

/* Records that float value y is now computed as its 8-bit twin yq (whose
 * parameters are already in y's info), in the node's report entry too. */
static void set_twin_output(rewriter *r, oq_quant_node *rep, const oq_value *y, oq_value *yq)
{
    qinfo *yi = info_of(r, y);
    yi->twin = yq;
    free(rep->output);
    rep->output = strdup(y->name);
    rep->twin = strdup(yq->name);
    rep->out_scale = yi->p.scale;
    rep->out_zero_point = yi->p.zero_point;
}

/* ---- QOperator rewrites ----------------------------------------------------------------- */

/* Gives q Conv n's attributes (pads, strides, ...), which mean the same for
 * QLinearConv and ConvInteger. */
static oq_status copy_conv_attrs(rewriter *r, oq_node *q, const oq_node *n)
{
    for (int i = 0; i < n->n_attrs; i++) {
        const oq_attr *a = &n->attrs[i];
        oq_status st = a->type == OQ_ATTR_INT      ? oq_node_set_attr_int(q, a->name, a->i, r->err)
                       : a->type == OQ_ATTR_INTS   ? oq_node_set_attr_ints(q, a->name, a->n, a->ints, r->err)
                       : a->type == OQ_ATTR_STRING ? oq_node_set_attr_string(q, a->name, a->s, r->err)
                                                   : oq_errf(r->err, OQ_EUNSUPPORTED, "Conv attribute '%s' of an unexpected type", a->name);
        if (st)
            return st;
    }
    return OQ_OK;
}

/* Gemm n's weight as a float [K, N] initializer (MatMul layout) with alpha
 * folded in; *n_cols gets N. */
static oq_value *gemm_weight_kn(rewriter *r, const oq_node *n, int64_t *n_cols)
{
    const oq_value *w = n->inputs[1];
    bool trans_b = oq_node_attr_int(n, "transB", 0) != 0;
    float alpha = oq_node_attr_float(n, "alpha", 1.0f);
    const oq_tensor *wt = w->constant;
    int64_t rows = wt->dims[0], cols = wt->dims[1], K = trans_b ? cols : rows, N = trans_b ? rows : cols;
    int64_t kn[2] = {K, N};
    oq_tensor *wkn = oq_tensor_create(OQ_DTYPE_FLOAT, 2, kn, r->err);
    if (!wkn)
        return NULL;
    const float *src = wt->data;
    float *dst = wkn->data;
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++)
            dst[k * N + j] = alpha * (trans_b ? src[j * cols + k] : src[k * cols + j]);
    char base[512];
    snprintf(base, sizeof base, "%s_kn", w->name);
    *n_cols = N;
    return add_initializer(r, base, wkn);
}

/* Gemm n's beta * C as a float [N] tensor (caller destroys), or NULL with
 * *err untouched when n has no C. */
static oq_tensor *gemm_bias(rewriter *r, const oq_node *n, int64_t N)
{
    const oq_value *c = oq_node_input(n, 2);
    if (!c)
        return NULL;
    float beta = oq_node_attr_float(n, "beta", 1.0f);
    int64_t nd[1] = {N};
    oq_tensor *cb = oq_tensor_create(OQ_DTYPE_FLOAT, 1, nd, r->err);
    int64_t cn = oq_tensor_numel(c->constant);
    for (int64_t j = 0; cb && j < N; j++)
        ((float *)cb->data)[j] = beta * (float)oq_tensor_get_f64(c->constant, cn == 1 ? 0 : j);
    return cb;
}

/* Replaces Conv or MatMul n (and a folded activation) by QLinearConv/QLinearMatMul. */
static oq_status rewrite_qlinear(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    bool conv = strcmp(n->op_type, "Conv") == 0;
    oq_value *x = n->inputs[0], *w = n->inputs[1], *b = conv ? oq_node_input(n, 2) : NULL;
    oq_node *act = foldable_activation(r, n);
    oq_value *y = act ? act->outputs[0] : n->outputs[0];
    int axis = conv ? 0 : 1;
    qinfo *xi, *yi;
    if (ensure_params(r, x, &xi))
        return r->err->status;
    float *floors = bias_floors(b, 1.0f, xi->p.scale, w->constant->dims[axis]);
    qweight *qw = quantized_weight(r, w, axis, floors);
    free(floors);
    oq_value *xq = qw ? quantized(r, x) : NULL;
    if (!xq || ensure_params(r, x, &xi) || ensure_params(r, y, &yi))
        return r->err->status ? r->err->status : OQ_ENOMEM;
    oq_value *xs = xi->scale, *xz = xi->zp;
    float x_scale = xi->p.scale;
    oq_value *bq = b ? quantized_bias(r, b, x_scale, qw) : NULL;
    if (b && !bq)
        return r->err->status;
    oq_value *yq = new_value(r, y->name, "_quantized");
    if (!yq)
        return r->err->status;
    oq_value *in[9] = {xq, xs, xz, qw->q, qw->scale, qw->zp, yi->scale, yi->zp, bq};
    oq_node *q = add_node(r, conv ? "QLinearConv" : "QLinearMatMul", conv ? (bq ? 9 : 8) : 8, in, 1, &yq);
    if (!q || inherit_name(q, n, r->err))
        return r->err->status;
    if (conv && copy_conv_attrs(r, q, n))
        return r->err->status;
    set_twin_output(r, rep, y, yq);
    report_weight(rep, qw);
    if (act)
        oq_graph_remove_node(r->g, act);
    oq_graph_remove_node(r->g, n);
    return OQ_OK;
}

/* Gemm n's operands for an integer product: its weight as int8 [K, N] per
 * column (*N columns; alpha folded in, scales floored so that beta * C fits
 * in int32) and its input in 8 bits (*xq, parameters in *xi). NULL on failure
 * (r->err says why, or nothing when out of memory). */
static qweight *gemm_operands(rewriter *r, oq_node *n, int64_t *N, oq_value **xq, qinfo **xi)
{
    oq_value *x = n->inputs[0];
    /* the integer ops want B as [K, N]: transpose and fold alpha into the float weights first */
    oq_value *wf = gemm_weight_kn(r, n, N);
    if (!wf || ensure_params(r, x, xi))
        return NULL;
    float *floors = bias_floors(oq_node_input(n, 2), oq_node_attr_float(n, "beta", 1.0f), (*xi)->p.scale, *N);
    qweight *qw = quantized_weight(r, wf, 1, floors);
    free(floors);
    *xq = qw ? quantized(r, x) : NULL;
    if (!*xq || ensure_params(r, x, xi))
        return NULL;
    return qw;
}

/* beta * C of Gemm n (which has a C) as an int32 initializer at x_scale *
 * the weight's per-column scales. NULL on failure (r->err set). */
static oq_value *gemm_bias_int32(rewriter *r, oq_node *n, int64_t N, float x_scale, const qweight *qw)
{
    oq_tensor *cb = gemm_bias(r, n, N), bt;
    if (!cb)
        return NULL;
    oq_status st = oq_quantize_bias(&bt, cb, x_scale, &qw->wq.scales, r->err);
    oq_tensor_destroy(cb);
    if (st)
        return NULL;
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", oq_node_input(n, 2)->name);
    return add_initializer(r, base, boxed(&bt, r->err));
}

/* Replaces Gemm n by MatMulInteger -> (+ int32 bias) -> Cast -> Mul (float out, same name). */
static oq_status rewrite_gemm(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    oq_value *c = oq_node_input(n, 2), *y = n->outputs[0];
    char base[512];
    int64_t N = 0;
    oq_value *xq;
    qinfo *xi;
    qweight *qw = gemm_operands(r, n, &N, &xq, &xi);
    if (!qw)
        return r->err->status ? r->err->status : OQ_ENOMEM;
    float x_scale = xi->p.scale;
    oq_value *xz = xi->zp;
    /* a scalar zero point for B: the weights are symmetric */
    oq_value *wz = scalar_initializer(r, "zero_point_int8", OQ_DTYPE_INT8, 0);
    oq_value *acc = new_value(r, y->name, "_int32");
    oq_value *mm_in[4] = {xq, qw->q, xz, wz};
    oq_node *mm = wz && acc ? add_node(r, "MatMulInteger", 4, mm_in, 1, &acc) : NULL;
    if (!mm || inherit_name(mm, n, r->err))
        return r->err->status;
    if (c) {
        oq_value *bv = gemm_bias_int32(r, n, N, x_scale, qw); /* beta * C at x_scale * w_scale[j] */
        if (!bv)
            return r->err->status;
        oq_value *sum = new_value(r, y->name, "_int32_bias");
        oq_value *add_in[2] = {acc, bv};
        if (!sum || !add_node(r, "Add", 2, add_in, 1, &sum))
            return r->err->status;
        acc = sum;
    }
    oq_value *accf = new_value(r, y->name, "_float");
    oq_node *cast = accf ? add_node(r, "Cast", 1, &acc, 1, &accf) : NULL;
    if (!cast || oq_node_set_attr_int(cast, "to", OQ_DTYPE_FLOAT, r->err))
        return r->err->status;
    /* per-column output scale x_scale * w_scale[j] */
    int64_t ns = oq_tensor_numel(&qw->wq.scales);
    int64_t sd[1] = {ns};
    oq_tensor *os = oq_tensor_create(OQ_DTYPE_FLOAT, ns > 1 ? 1 : 0, sd, r->err);
    if (!os)
        return r->err->status;
    for (int64_t j = 0; j < ns; j++)
        ((float *)os->data)[j] = x_scale * ((const float *)qw->wq.scales.data)[j];
    snprintf(base, sizeof base, "%s_output_scale", n->name);
    oq_value *osv = add_initializer(r, base, os);
    oq_graph_remove_node(r->g, n);
    oq_value *mul_in[2] = {accf, osv};
    if (!osv || !add_node(r, "Mul", 2, mul_in, 1, &y))
        return r->err->status;
    report_weight(rep, qw);
    return OQ_OK;
}

/* Replaces Gemm n (and a folded activation) by com.microsoft QGemm: 8-bit
 * input, int8 [K, N] weights per column, int32 bias at input x weight scale,
 * 8-bit output (float when n writes a graph output). */
static oq_status rewrite_qgemm(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    oq_value *c = oq_node_input(n, 2);
    bool float_out = is_graph_output(r->g, n->outputs[0]);
    oq_node *act = float_out ? NULL : foldable_activation(r, n);
    oq_value *y = act ? act->outputs[0] : n->outputs[0];
    int64_t N = 0;
    oq_value *xq;
    qinfo *xi, *yi = NULL;
    qweight *qw = gemm_operands(r, n, &N, &xq, &xi);
    if (!qw || (!float_out && ensure_params(r, y, &yi)))
        return r->err->status ? r->err->status : OQ_ENOMEM;
    oq_value *xs = xi->scale, *xz = xi->zp, *bq = NULL;
    if (c && !(bq = gemm_bias_int32(r, n, N, xi->p.scale, qw)))
        return r->err->status;
    oq_value *out = float_out ? y : new_value(r, y->name, "_quantized");
    if (!out)
        return r->err->status;
    yi = float_out ? NULL : info_of(r, y);
    oq_value *in[9] = {xq, xs, xz, qw->q, qw->scale, qw->zp, bq, yi ? yi->scale : NULL, yi ? yi->zp : NULL};
    char *name = strdup(n->name); /* n goes first: with a float output QGemm writes n's output */
    if (!name)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    oq_graph_remove_node(r->g, n);
    oq_node *q = add_node_in(r, CONTRIB_DOMAIN, "QGemm", float_out ? 7 : 9, in, 1, &out);
    if (!q) {
        free(name);
        return r->err->status;
    }
    if (name[0]) {
        free(q->name);
        q->name = name;
    } else {
        free(name);
    }
    report_weight(rep, qw);
    if (!float_out) {
        set_twin_output(r, rep, y, out);
        if (act)
            oq_graph_remove_node(r->g, act);
    }
    return OQ_OK;
}

/* ---- dynamic mode ------------------------------------------------------------------------ */

/* The DynamicQuantizeLinear of activation x (one per value, made on first
 * use): twin = uint8 data, scale and zp = its run-time parameters. */
static qinfo *dynamic_activation(rewriter *r, oq_value *x)
{
    qinfo *qi = info_of(r, x);
    if (qi && qi->twin)
        return qi;
    oq_value *q = qi ? new_value(r, x->name, "_quantized") : NULL;
    oq_value *s = q ? new_value(r, x->name, "_scale") : NULL;
    oq_value *z = s ? new_value(r, x->name, "_zero_point") : NULL;
    oq_value *out[3] = {q, s, z};
    if (!z || !add_node(r, "DynamicQuantizeLinear", 1, &x, 3, out)) {
        if (!r->err->status)
            oq_errf(r->err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    qi->twin = q;
    qi->scale = s;
    qi->zp = z;
    return qi;
}

/* qw's weights shifted to uint8 (q + 128) for ConvInteger, made once. */
static oq_value *weight_u8(rewriter *r, qweight *qw)
{
    if (qw->q_u8)
        return qw->q_u8;
    const oq_tensor *q = &qw->wq.q;
    oq_tensor *u = oq_tensor_create(OQ_DTYPE_UINT8, q->rank, q->dims, r->err);
    if (!u)
        return NULL;
    for (int64_t i = 0; i < oq_tensor_numel(q); i++)
        ((uint8_t *)u->data)[i] = (uint8_t)(((const int8_t *)q->data)[i] + 128);
    char base[512];
    snprintf(base, sizeof base, "%s_quantized_u8", qw->src->name);
    return qw->q_u8 = add_initializer(r, base, u);
}

/* A float initializer holding v[0..n) shaped [n, 1 x trailing] (a scalar when
 * n is 1 and trailing is 0), to broadcast per channel against an output
 * whose channel axis has `trailing` axes after it. */
static oq_value *channel_initializer(rewriter *r, const char *base, const float *v, int64_t n, int trailing)
{
    int64_t dims[OQ_MAX_RANK] = {n};
    int rank = n == 1 && trailing == 0 ? 0 : 1 + trailing;
    for (int i = 1; i < rank; i++)
        dims[i] = 1;
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, rank, dims, r->err);
    if (!t)
        return NULL;
    memcpy(t->data, v, (size_t)n * sizeof *v);
    return add_initializer(r, base, t);
}

/* Replaces Conv/MatMul/Gemm n by DynamicQuantizeLinear(x) -> ConvInteger or
 * MatMulInteger -> Cast -> Mul by x_scale * weight scales -> Add float bias,
 * writing n's output name. */
static oq_status rewrite_dynamic(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    bool conv = strcmp(n->op_type, "Conv") == 0, gemm = strcmp(n->op_type, "Gemm") == 0;
    oq_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
    int64_t channels = 0;
    oq_tensor *bias = NULL; /* float [channels] */
    if (gemm) {
        if (!(w = gemm_weight_kn(r, n, &channels)))
            return r->err->status;
        bias = gemm_bias(r, n, channels);
        if (!bias && oq_node_input(n, 2))
            return r->err->status;
    } else if (conv && oq_node_input(n, 2)) {
        bias = malloc(sizeof *bias);
        if (!bias)
            return oq_errf(r->err, OQ_ENOMEM, "out of memory");
        if (oq_tensor_copy(bias, oq_node_input(n, 2)->constant, r->err)) {
            free(bias);
            return r->err->status;
        }
    }
    int axis = conv ? 0 : 1;
    /* channel axis of the output, counted from the end: Conv's is 1 of [N, C, spatial...] */
    int trailing = conv ? w->constant->rank - 2 : 0;
    qweight *qw = quantized_weight(r, w, axis, NULL);
    qinfo *xi = qw ? dynamic_activation(r, x) : NULL;
    oq_value *wq = !xi ? NULL : conv ? weight_u8(r, qw) : qw->q;
    oq_value *wz = !wq ? NULL
                   : conv ? scalar_initializer(r, "zero_point_uint8_128", OQ_DTYPE_UINT8, 128)
                          : scalar_initializer(r, "zero_point_int8", OQ_DTYPE_INT8, 0);
    oq_value *acc = wz ? new_value(r, y->name, "_int32") : NULL;
    oq_value *in[4] = {xi ? xi->twin : NULL, wq, xi ? xi->zp : NULL, wz};
    oq_node *q = acc ? add_node(r, conv ? "ConvInteger" : "MatMulInteger", 4, in, 1, &acc) : NULL;
    if (!q || inherit_name(q, n, r->err) || (conv && copy_conv_attrs(r, q, n)))
        goto fail;
    oq_value *accf = new_value(r, y->name, "_float");
    oq_node *cast = accf ? add_node(r, "Cast", 1, &acc, 1, &accf) : NULL;
    if (!cast || oq_node_set_attr_int(cast, "to", OQ_DTYPE_FLOAT, r->err))
        goto fail;
    /* scale = x_scale (run time) * per-channel weight scales */
    char base[512];
    snprintf(base, sizeof base, "%s_weight_scale", n->name);
    oq_value *ws = channel_initializer(r, base, qw->wq.scales.data, oq_tensor_numel(&qw->wq.scales), trailing);
    oq_value *scale = ws ? new_value(r, y->name, "_scale") : NULL;
    oq_value *smul_in[2] = {xi->scale, ws};
    if (!scale || !add_node(r, "Mul", 2, smul_in, 1, &scale))
        goto fail;
    oq_value *scaled = bias ? new_value(r, y->name, "_unbiased") : y;
    oq_value *mul_in[2] = {accf, scale};
    if (!scaled || !add_node(r, "Mul", 2, mul_in, 1, &scaled))
        goto fail;
    if (bias) {
        snprintf(base, sizeof base, "%s_bias", n->name);
        oq_value *bv = channel_initializer(r, base, bias->data, oq_tensor_numel(bias), trailing);
        oq_value *add_in[2] = {scaled, bv};
        if (!bv || !add_node(r, "Add", 2, add_in, 1, &y))
            goto fail;
        oq_tensor_destroy(bias);
    }
    report_weight(rep, qw);
    oq_graph_remove_node(r->g, n);
    return OQ_OK;
fail:
    oq_tensor_destroy(bias);
    return r->err->status ? r->err->status : oq_errf(r->err, OQ_ENOMEM, "out of memory");
}

/* Gives float value v the 8-bit twin tw at parameters p, read through the
 * given scale and zero-point initializers; each that is NULL is made here. */
static bool set_twin(rewriter *r, const oq_value *v, oq_value *tw, oq_qparams p, oq_value *scale, oq_value *zp)
{
    char base[512];
    if (!scale) {
        snprintf(base, sizeof base, "%s_scale", v->name);
        if (!(scale = scalar_initializer(r, base, OQ_DTYPE_FLOAT, p.scale)))
            return false;
    }
    if (!zp) {
        snprintf(base, sizeof base, "%s_zero_point", v->name);
        if (!(zp = scalar_initializer(r, base, r->act_type, p.zero_point)))
            return false;
    }
    qinfo *vi = info_of(r, v);
    if (!vi)
        return false;
    *vi = (qinfo){.twin = tw, .scale = scale, .zp = zp, .p = p, .has_params = true};
    return true;
}

/* Ops that move 8-bit data unchanged (same scale in and out), with the
 * opset from which the default domain allows 8-bit types for them. */
static const struct {
    const char *op;
    int min_opset;
} passthrough_ops[] = {
    {"MaxPool", 12},   {"Reshape", 5},       {"Flatten", 11},      {"Transpose", 1}, {"Squeeze", 11},
    {"Unsqueeze", 11}, {"Slice", 10},        {"Gather", 11},       {"Split", 11},    {"Pad", 11},
    {"Identity", 1},   {"DepthToSpace", 11}, {"SpaceToDepth", 11}, {"Resize", 11},   {"Concat", 11},
};

/* Runs n on 8-bit twins in place when it only moves data and its float input
 * has a twin. Returns true when rewritten. */
static bool try_passthrough(rewriter *r, oq_node *n, oq_status *st)
{
    *st = OQ_OK;
    int min_opset = -1;
    for (size_t i = 0; i < sizeof passthrough_ops / sizeof passthrough_ops[0]; i++)
        if (strcmp(n->op_type, passthrough_ops[i].op) == 0)
            min_opset = passthrough_ops[i].min_opset;
    if (min_opset < 0 || n->domain[0] || n->opset < min_opset || !n->inputs[0])
        return false;
    qinfo *in = info_of(r, n->inputs[0]);
    if (!in || !in->twin)
        return false;
    bool concat = strcmp(n->op_type, "Concat") == 0;
    if (strcmp(n->op_type, "MaxPool") == 0 && n->n_outputs > 1 && n->outputs[1])
        return false; /* Indices output */
    if (strcmp(n->op_type, "Resize") == 0 && strcmp(oq_node_attr_string(n, "mode", "nearest"), "nearest") != 0)
        return false;
    if (strcmp(n->op_type, "Pad") == 0) {
        if (strcmp(oq_node_attr_string(n, "mode", "constant"), "constant") != 0)
            return false;
        const oq_value *pv = oq_node_input(n, 2);
        if (pv && (!pv->constant || oq_tensor_get_f64(pv->constant, 0) != 0))
            return false;
    }
    /* every other float input must be a twin of the same parameters (Concat) */
    for (int k = 1; concat && k < n->n_inputs; k++) {
        qinfo *o = n->inputs[k] ? info_of(r, n->inputs[k]) : NULL;
        if (!o || !o->twin || o->p.scale != in->p.scale || o->p.zero_point != in->p.zero_point)
            return false;
    }
    oq_qparams p = in->p;
    oq_value *scale = in->scale, *zp = in->zp;
    for (int k = 0; k < (concat ? n->n_inputs : 1); k++)
        if ((*st = oq_node_set_input(n, k, info_of(r, n->inputs[k])->twin, r->err)))
            return true;
    if (strcmp(n->op_type, "Pad") == 0 && oq_node_input(n, 2) && (*st = oq_node_set_input(n, 2, zp, r->err)))
        return true;
    for (int k = 0; k < n->n_outputs; k++) {
        oq_value *y = n->outputs[k];
        if (!y)
            continue;
        oq_value *yq = new_value(r, y->name, "_quantized");
        if (!yq || !set_twin(r, y, yq, p, scale, zp)) {
            *st = r->err->status ? r->err->status : OQ_ENOMEM;
            return true;
        }
        oq_node_set_output(n, k, yq);
    }
    return true;
}

/* Gives float values whose producer became 8-bit a DequantizeLinear writing
 * the original name, where something still reads the float value. */
static oq_status restore_float_values(rewriter *r)
{
    oq_status st = oq_graph_index(r->g, r->err);
    int n = r->g->n_values;
    for (int i = 0; !st && i < n; i++) {
        oq_value *v = r->g->values[i];
        const qinfo *qi = info_if_any(r, v);
        if (!qi || !qi->twin || v->producer || v->constant || (!v->n_consumers && !is_graph_output(r->g, v)))
            continue;
        bool is_input = false;
        for (int k = 0; k < r->g->n_inputs; k++)
            is_input |= r->g->inputs[k] == v;
        if (is_input)
            continue;
        oq_value *in[3] = {qi->twin, qi->scale, qi->zp};
        if (!add_node(r, "DequantizeLinear", 3, in, 1, &v))
            st = r->err->status;
    }
    return st;
}

/* ---- QDQ --------------------------------------------------------------------------------- */

/* DequantizeLinear(QuantizeLinear(v)) for activation v, shared per value. */
static oq_value *qdq_activation(rewriter *r, oq_value *v)
{
    qinfo *qi;
    if (ensure_params(r, v, &qi))
        return NULL;
    if (qi->twin)
        return qi->twin; /* for QDQ the twin is the dequantized value */
    oq_value *q = new_value(r, v->name, "_quantized"), *dq = new_value(r, v->name, "_dequantized");
    oq_value *qin[3] = {v, qi->scale, qi->zp}, *din[3] = {q, qi->scale, qi->zp};
    if (!q || !dq || !add_node(r, "QuantizeLinear", 3, qin, 1, &q) ||
        !add_node(r, "DequantizeLinear", 3, din, 1, &dq))
        return NULL;
    qi->twin = dq;
    return dq;
}

/* int8 constant + DequantizeLinear (with axis) standing for float constant w. */
static oq_value *qdq_constant(rewriter *r, oq_value *q, oq_value *scale, oq_value *zp, int axis, const char *base)
{
    oq_value *dq = new_value(r, base, "_dequantized");
    oq_value *in[3] = {q, scale, zp};
    oq_node *n = dq ? add_node(r, "DequantizeLinear", 3, in, 1, &dq) : NULL;
    if (!n || (oq_tensor_numel(scale->constant) > 1 && oq_node_set_attr_int(n, "axis", axis, r->err)))
        return NULL;
    return dq;
}

/* A new initializer holding float constant v times factor. */
static oq_value *scaled_constant(rewriter *r, const oq_value *v, float factor)
{
    oq_tensor t;
    if (oq_tensor_copy(&t, v->constant, r->err))
        return NULL;
    float *f = t.data;
    for (int64_t i = 0; i < oq_tensor_numel(&t); i++)
        f[i] *= factor;
    char base[512];
    snprintf(base, sizeof base, "%s_scaled", v->name);
    return add_initializer(r, base, boxed(&t, r->err));
}

/* Folds Gemm's alpha into the weights and beta into C, so the quantized
 * bias scale is exactly input scale x weight scale (what fused runtimes assume). */
static oq_status fold_gemm_factors(rewriter *r, oq_node *n)
{
    float alpha = oq_node_attr_float(n, "alpha", 1.0f), beta = oq_node_attr_float(n, "beta", 1.0f);
    oq_value *c = oq_node_input(n, 2);
    if (alpha != 1.0f) {
        oq_value *w = scaled_constant(r, n->inputs[1], alpha);
        if (!w || oq_node_set_input(n, 1, w, r->err) || oq_node_set_attr_float(n, "alpha", 1.0f, r->err))
            return r->err->status ? r->err->status : OQ_ENOMEM;
    }
    if (beta != 1.0f && c) {
        oq_value *b = scaled_constant(r, c, beta);
        if (!b || oq_node_set_input(n, 2, b, r->err) || oq_node_set_attr_float(n, "beta", 1.0f, r->err))
            return r->err->status ? r->err->status : OQ_ENOMEM;
    }
    return OQ_OK;
}

static oq_status rewrite_qdq(rewriter *r, oq_node *n, oq_quant_node *rep)
{
    bool conv = strcmp(n->op_type, "Conv") == 0, gemm = strcmp(n->op_type, "Gemm") == 0;
    int axis = conv ? 0 : gemm && oq_node_attr_int(n, "transB", 0) ? 0 : 1;
    if (gemm && fold_gemm_factors(r, n))
        return r->err->status;
    oq_value *x = n->inputs[0], *w = n->inputs[1], *b = conv || gemm ? oq_node_input(n, 2) : NULL;
    qinfo *xi0;
    if (ensure_params(r, x, &xi0))
        return r->err->status;
    bool bias_fits = b && b->constant->rank == 1 && (conv || oq_tensor_numel(b->constant) == w->constant->dims[axis]);
    float *floors = bias_fits ? bias_floors(b, 1.0f, xi0->p.scale, w->constant->dims[axis]) : NULL;
    qweight *qw = quantized_weight(r, w, axis, floors);
    free(floors);
    oq_value *xdq = qw ? qdq_activation(r, x) : NULL;
    if (!xdq)
        return r->err->status ? r->err->status : OQ_ENOMEM;
    oq_value *wdq = qdq_constant(r, qw->q, qw->scale, qw->zp, axis, w->name);
    if (!wdq || oq_node_set_input(n, 0, xdq, r->err) || oq_node_set_input(n, 1, wdq, r->err))
        return r->err->status ? r->err->status : OQ_ENOMEM;
    if (bias_fits) {
        qinfo *xi = info_of(r, x);
        oq_tensor t;
        if (oq_quantize_bias(&t, b->constant, xi->p.scale, &qw->wq.scales, r->err))
            return r->err->status;
        /* the bias scale x_scale * w_scale as a constant of its own */
        oq_tensor bs;
        if (oq_tensor_copy(&bs, &qw->wq.scales, r->err))
            return r->err->status;
        for (int64_t j = 0; j < oq_tensor_numel(&bs); j++)
            ((float *)bs.data)[j] *= xi->p.scale;
        int64_t nz = oq_tensor_numel(&bs), zd[1] = {nz};
        oq_tensor *zeros = oq_tensor_create(OQ_DTYPE_INT32, bs.rank, zd, r->err);
        char base[512];
        snprintf(base, sizeof base, "%s_quantized", b->name);
        oq_value *bq = add_initializer(r, base, boxed(&t, r->err));
        snprintf(base, sizeof base, "%s_scale", b->name);
        oq_value *bsv = add_initializer(r, base, boxed(&bs, r->err));
        snprintf(base, sizeof base, "%s_zero_point", b->name);
        oq_value *bz = zeros ? add_initializer(r, base, zeros) : NULL;
        oq_value *bdq = bq && bsv && bz ? qdq_constant(r, bq, bsv, bz, 0, b->name) : NULL;
        if (!bdq || oq_node_set_input(n, 2, bdq, r->err))
            return r->err->status ? r->err->status : OQ_ENOMEM;
    }
    /* output: n writes a fresh value; Q/DQ restore the original name */
    oq_value *y = n->outputs[0];
    qinfo *yi;
    if (ensure_params(r, y, &yi))
        return r->err->status;
    oq_value *pre = new_value(r, y->name, "_float"), *q = new_value(r, y->name, "_quantized");
    if (!pre || !q)
        return r->err->status;
    oq_node_set_output(n, 0, pre);
    oq_value *qin[3] = {pre, yi->scale, yi->zp}, *din[3] = {q, yi->scale, yi->zp};
    if (!add_node(r, "QuantizeLinear", 3, qin, 1, &q) ||
        !add_node(r, "DequantizeLinear", 3, din, 1, &y))
        return r->err->status;
    yi->twin = y; /* already in QDQ form: consumers read it as is */
    report_weight(rep, qw);
    return OQ_OK;
}

/* ---- float glue between 8-bit ops ------------------------------------------------------- */

/* Whether value v certainly has at least one axis (so that a one-element [1]
 * constant broadcast against it leaves its shape alone): declared so, or
 * written by a Conv-like op or by elementwise ops from such a value. */
static bool has_axes(const oq_value *v, int depth)
{
    if (!v || depth > 32)
        return false;
    if (v->rank >= 1 || (v->constant && v->constant->rank >= 1))
        return true;
    const oq_node *p = v->producer;
    if (p && !strcmp(p->domain, CONTRIB_DOMAIN) && !strncmp(p->op_type, "QLinear", 7)) /* 8-bit twins (--contrib) */
        return has_axes(p->inputs[0], depth + 1) || (p->n_inputs >= 8 && has_axes(p->inputs[3], depth + 1));
    if (!p || p->domain[0])
        return false;
    static const char *const spatial[] = {"Conv", "QLinearConv", "ConvInteger", "MaxPool", "AveragePool",
                                          "GlobalAveragePool", "ConvTranspose", "BatchNormalization"};
    static const char *const elementwise[] = {"DequantizeLinear", "QuantizeLinear", "HardSwish", "HardSigmoid",
                                              "Relu", "Clip", "Sigmoid", "Add", "Sub", "Mul", "Div"};
    for (size_t i = 0; i < sizeof spatial / sizeof spatial[0]; i++)
        if (!strcmp(p->op_type, spatial[i]))
            return true;
    for (size_t i = 0; i < sizeof elementwise / sizeof elementwise[0]; i++)
        if (!strcmp(p->op_type, elementwise[i])) {
            for (int k = 0; k < p->n_inputs && k < 2; k++)
                if (has_axes(p->inputs[k], depth + 1))
                    return true;
            return false;
        }
    return false;
}

/* The value of v when it is a one-element float constant that leaves the shape
 * of x, which it is broadcast against, alone; NAN otherwise. */
static float scalar_operand(const oq_value *v, const oq_value *x)
{
    if (!is_float_constant(v) || oq_tensor_numel(v->constant) != 1 || v->constant->rank > 1 ||
        (v->constant->rank == 1 && !has_axes(x, 0)))
        return NAN;
    return ((const float *)v->constant->data)[0];
}

/* For binary node n (default domain op `op`) reading x once: its other input, or NULL. */
static oq_value *other_operand(const oq_node *n, const char *op, const oq_value *x)
{
    if (!is_default_op(n, op) || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0])
        return NULL;
    if (n->inputs[0] == x && n->inputs[1] != x)
        return n->inputs[1];
    if (n->inputs[1] == x && n->inputs[0] != x && strcmp(op, "Sub") && strcmp(op, "Div"))
        return n->inputs[0];
    return NULL;
}

/* The one-element float scale of (De)QuantizeLinear n, or NAN. */
static float qdq_scale(const oq_node *n)
{
    const oq_value *s = oq_node_input(n, 1);
    return n->n_inputs >= 2 && is_float_constant(s) && oq_tensor_numel(s->constant) == 1
               ? ((const float *)s->constant->data)[0]
               : NAN;
}

/* Moves positive factor c of Mul node m into the (De)QuantizeLinear next to
 * it, when the integers stay the same:
 *   DequantizeLinear(q, s, z) -> Mul(c)          =>  DequantizeLinear(q, s * c, z)
 *   Mul(x, c) -> QuantizeLinear(s, z)            =>  QuantizeLinear(x, s / c, z)
 *   Mul(x, c) -> Add(b) -> QuantizeLinear(s, z)  =>  Add(x, b / c) -> QuantizeLinear(s / c, z)
 * each value in between read by the next node alone. Returns true when m is gone. */
static bool fold_factor(rewriter *r, oq_node *m, oq_status *st)
{
    *st = OQ_OK;
    if (!is_default_op(m, "Mul") || m->n_inputs != 2 || m->n_outputs != 1 || !m->outputs[0])
        return false;
    for (int xi = 0; xi < 2; xi++) {
        oq_value *x = m->inputs[xi], *y = m->outputs[0];
        float c = scalar_operand(m->inputs[1 - xi], x);
        if (!(c > 0.0f) || !isfinite(c) || m->inputs[1 - xi] == x)
            continue;
        oq_node *dq = x->producer, *next = sole_reader(r->g, y), *q = NULL, *add = NULL;
        float s = NAN, b = NAN;
        char base[512];
        if (is_default_op(dq, "DequantizeLinear") && sole_reader(r->g, x) == m && isfinite(s = qdq_scale(dq) * c) &&
            s > 0.0f) {
            snprintf(base, sizeof base, "%s_scale", y->name);
            oq_value *sv = scalar_initializer(r, base, OQ_DTYPE_FLOAT, s);
            if (!sv || oq_node_set_input(dq, 1, sv, r->err)) {
                *st = r->err->status ? r->err->status : OQ_ENOMEM;
                return false;
            }
            oq_graph_remove_node(r->g, m);
            oq_node_set_output(dq, 0, y);
            return true;
        }
        oq_value *shift = other_operand(next, "Add", y);
        oq_node *after = shift ? sole_reader(r->g, next->outputs[0]) : NULL;
        if (is_default_op(next, "QuantizeLinear") && next->inputs[0] == y)
            q = next;
        else if (isfinite(b = scalar_operand(shift, x)) && is_default_op(after, "QuantizeLinear") &&
                 after->inputs[0] == next->outputs[0])
            add = next, q = after;
        if (!q || !isfinite(s = qdq_scale(q) / c) || !(s > 0.0f))
            continue;
        snprintf(base, sizeof base, "%s_scale", q->outputs[0]->name);
        oq_value *sv = scalar_initializer(r, base, OQ_DTYPE_FLOAT, s), *bv = NULL;
        if (sv && add) {
            snprintf(base, sizeof base, "%s_shift", add->outputs[0]->name);
            bv = scalar_initializer(r, base, OQ_DTYPE_FLOAT, b / c);
        }
        if (!sv || (add && !bv) || oq_node_set_input(q, 1, sv, r->err) ||
            (add && (oq_node_set_input(add, 0, x, r->err) || oq_node_set_input(add, 1, bv, r->err))) ||
            (!add && oq_node_set_input(q, 0, x, r->err))) {
            *st = r->err->status ? r->err->status : OQ_ENOMEM;
            return false;
        }
        oq_graph_remove_node(r->g, m);
        return true;
    }
    return false;
}

/* Whether v is the one-element float constant `value` (within float rounding). */
static bool is_scalar_value(const oq_value *v, const oq_value *x, float value)
{
    float k = scalar_operand(v, x);
    return fabsf(k - value) <= 1e-6f * fabsf(value);
}

/* When node a starts a hard-swish of some x, x * Clip(x + 3, 0, 6) / 6 (the
 * division also as * 1/6, or applied to the Clip first) or x * HardSigmoid(x)
 * with alpha 1/6 and beta 1/2, each intermediate value read by the next node
 * alone: its x, the nodes (*n_parts of them) and the value it ends in. */
static const oq_value *hard_swish_at(const oq_graph *g, oq_node *a, oq_node **parts, int *n_parts, oq_value **out)
{
    oq_value *x = NULL;
    oq_node *gate = NULL; /* the node whose output is the 0..1 (or 0..6) factor */
    bool six = true;
    *n_parts = 0;
    if (is_default_op(a, "HardSigmoid") && a->n_inputs == 1 && a->n_outputs >= 1 && a->outputs[0] &&
        fabsf(oq_node_attr_float(a, "alpha", 0.2f) - 1.0f / 6.0f) <= 1e-6f &&
        oq_node_attr_float(a, "beta", 0.5f) == 0.5f) {
        x = a->inputs[0];
        gate = a;
        six = false;
        parts[(*n_parts)++] = a;
    } else if (is_default_op(a, "Add") && a->n_inputs == 2) {
        for (int k = 0; k < 2 && !x; k++)
            if (is_scalar_value(other_operand(a, "Add", a->inputs[k]), a->inputs[k], 3.0f))
                x = a->inputs[k];
        oq_node *clip = x ? sole_reader(g, a->outputs[0]) : NULL;
        if (!is_default_op(clip, "Clip") || clip->inputs[0] != a->outputs[0] || !clip->outputs[0])
            return NULL;
        bool bounds = clip->n_inputs == 3 /* from opset 11; attributes before (seen by calibration) */
                          ? is_scalar_value(clip->inputs[1], x, 0.0f) && is_scalar_value(clip->inputs[2], x, 6.0f)
                          : clip->n_inputs == 1 && oq_node_attr_float(clip, "min", -1.0f) == 0.0f &&
                                oq_node_attr_float(clip, "max", -1.0f) == 6.0f;
        if (!bounds)
            return NULL;
        gate = clip;
        parts[(*n_parts)++] = a;
        parts[(*n_parts)++] = clip;
        /* Clip(..) / 6 first, then the product */
        oq_node *div = sole_reader(g, clip->outputs[0]);
        oq_value *k = other_operand(div, "Div", clip->outputs[0]);
        if (k && is_scalar_value(k, x, 6.0f)) {
            gate = div;
            six = false;
            parts[(*n_parts)++] = div;
        }
    }
    if (!gate || !x)
        return NULL;
    oq_node *mul = sole_reader(g, gate->outputs[0]);
    if (other_operand(mul, "Mul", gate->outputs[0]) != x)
        return NULL;
    parts[(*n_parts)++] = mul;
    *out = mul->outputs[0];
    if (six) {
        oq_node *div = sole_reader(g, mul->outputs[0]);
        oq_value *k = other_operand(div, "Div", mul->outputs[0]);
        bool by_div = k && is_scalar_value(k, x, 6.0f);
        if (!by_div && !((k = other_operand(div, "Mul", mul->outputs[0])) && is_scalar_value(k, x, 1.0f / 6.0f)))
            return NULL;
        parts[(*n_parts)++] = div;
        *out = div->outputs[0];
    }
    return x;
}

/* Replaces every hard-swish pattern (see hard_swish_at) by one HardSwish node,
 * raising the opset to 14 first when the model's is older; leaves the graph
 * alone when that is not possible. */
static oq_status fuse_hard_swish(rewriter *r)
{
    oq_status st = oq_graph_index(r->g, r->err);
    oq_node *parts[6];
    oq_value *out;
    int n_parts, found = 0;
    for (int i = 0; !st && i < r->g->n_nodes; i++)
        found += hard_swish_at(r->g, r->g->nodes[i], parts, &n_parts, &out) != NULL;
    if (st || !found)
        return st;
    if (oq_model_opset(r->m, "") < 14) {
        oq_err quiet = {0};
        if (oq_model_upgrade_opset(r->m, 14, &quiet))
            return OQ_OK;
        r->res->opset_to = 14;
        if ((st = oq_graph_index(r->g, r->err)))
            return st;
    }
    for (int i = 0; !st && i < r->g->n_nodes; i++) {
        const oq_value *x = hard_swish_at(r->g, r->g->nodes[i], parts, &n_parts, &out);
        if (!x)
            continue;
        oq_value *in = (oq_value *)x;
        for (int k = 0; k < n_parts; k++)
            oq_graph_remove_node(r->g, parts[k]);
        if (!add_node(r, "HardSwish", 1, &in, 1, &out))
            return r->err->status ? r->err->status : OQ_ENOMEM;
        r->res->n_fused_hard_swish++;
        st = oq_graph_index(r->g, r->err);
        i = -1; /* the node list changed: start over (each pass removes a pattern) */
    }
    return st;
}

/* Tidies the float ops left between 8-bit ones: factors into (De)QuantizeLinear
 * scales (fold_factor). */
static oq_status simplify_float_glue(rewriter *r)
{
    oq_status st = oq_graph_index(r->g, r->err);
    for (int i = 0; !st && i < r->g->n_nodes;) {
        if (fold_factor(r, r->g->nodes[i], &st) && !st) {
            r->res->n_folded_factors++;
            st = oq_graph_index(r->g, r->err);
            continue; /* the same index holds the next node */
        }
        i++;
    }
    return st;
}

/* ---- com.microsoft QLinear ops (--contrib) -------------------------------------------- */

/* Float ops that ONNX Runtime's com.microsoft domain runs on 8-bit tensors
 * (--contrib), with the QLinear op and its number of data inputs. */
static const struct {
    const char *op, *qop;
    int arity;
} contrib_ops[] = {
    {"Add", "QLinearAdd", 2},
    {"Mul", "QLinearMul", 2},
    {"Sigmoid", "QLinearSigmoid", 1},
    {"LeakyRelu", "QLinearLeakyRelu", 1},
    {"GlobalAveragePool", "QLinearGlobalAveragePool", 1},
};
enum { N_CONTRIB_OPS = sizeof contrib_ops / sizeof contrib_ops[0] };

/* Whether constant v can be an operand of a contrib op: float and finite. */
static bool contrib_constant(const oq_value *v)
{
    if (!is_float_constant(v) || !oq_tensor_numel(v->constant))
        return false;
    const float *d = v->constant->data;
    for (int64_t i = 0; i < oq_tensor_numel(v->constant); i++)
        if (!isfinite(d[i]))
            return false;
    return true;
}

/* The entry of contrib_ops node n may become, or -1, by its structure: a
 * default-domain op with one output whose data inputs are activations or
 * (Add, Mul) usable constants, at least one an activation. A Mul by a
 * one-element constant is left to try_scaled_twin or fold_factor, which
 * make it free. */
static int contrib_entry(const oq_node *n)
{
    for (int e = 0; e < N_CONTRIB_OPS; e++) {
        if (!is_default_op(n, contrib_ops[e].op) || n->n_inputs != contrib_ops[e].arity || n->n_outputs != 1 ||
            !n->outputs[0])
            continue;
        int activations = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            const oq_value *v = n->inputs[k];
            if (v && !v->constant)
                activations++;
            else if (!contrib_constant(v) || (!strcmp(n->op_type, "Mul") && oq_tensor_numel(v->constant) == 1))
                return -1;
        }
        return activations ? e : -1;
    }
    return -1;
}

/* Constant v quantized per tensor to the activation type on its own range
 * (widened to hold 0), kept as v's twin so that readers share it. */
static oq_value *quantized_constant(rewriter *r, const oq_value *v)
{
    qinfo *qi = info_of(r, v);
    if (!qi)
        return NULL;
    if (qi->twin)
        return qi->twin;
    const oq_tensor *c = v->constant;
    const float *d = c->data;
    int64_t n = oq_tensor_numel(c);
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = d[i] < lo ? d[i] : lo;
        hi = d[i] > hi ? d[i] : hi;
    }
    oq_qparams p = oq_qparams_from_range(lo, hi, r->o->act_qmin, r->o->act_qmax, r->o->symmetric_activations);
    oq_tensor *t = oq_tensor_create(r->act_type, c->rank, c->dims, r->err);
    for (int64_t i = 0; t && i < n; i++) {
        int32_t q = oq_quantize_value(d[i], p, r->o->act_qmin, r->o->act_qmax);
        if (r->act_type == OQ_DTYPE_INT8)
            ((int8_t *)t->data)[i] = (int8_t)q;
        else
            ((uint8_t *)t->data)[i] = (uint8_t)q;
    }
    char base[512];
    snprintf(base, sizeof base, "%s_quantized", v->name);
    oq_value *tw = add_initializer(r, base, t);
    if (!tw)
        return NULL;
    qi->twin = tw;
    qi->p = p;
    qi->has_params = true;
    return ensure_params(r, v, &qi) ? NULL : tw;
}

/* Output parameters p of contrib node n, adjusted for an Add of an 8-bit x
 * and a constant: when the output's scale is within a factor 1.25 of x's (as
 * it is for an Add of a scalar: its range is x's shifted), every output is
 * x's integer plus the same fraction of a step rounded the same way, a bias
 * that adds up through the layers after it (on PP-OCRv4 rec: 99% of words
 * read -> 82%). A scale 1.25 x x's spreads the fractions over five values,
 * which rounding leaves unbiased, for 25% coarser steps. */
static oq_qparams constant_add_params(rewriter *r, const oq_node *n, oq_qparams p)
{
    const oq_value *x = n->inputs[0]->constant ? n->inputs[1] : n->inputs[0];
    const qinfo *xi = info_of(r, x);
    if (strcmp(n->op_type, "Add") || !(n->inputs[0]->constant || n->inputs[1]->constant) || !xi || !xi->has_params)
        return p;
    double ratio = p.scale / xi->p.scale;
    if (ratio <= 0.8 || ratio >= 1.25)
        return p;
    double lo = p.scale * (r->o->act_qmin - p.zero_point), hi = p.scale * (r->o->act_qmax - p.zero_point);
    double widen = 1.25 / ratio;
    return oq_qparams_from_range(lo * widen, hi * widen, r->o->act_qmin, r->o->act_qmax, r->o->symmetric_activations);
}

/* With --contrib: Add, Mul, Sigmoid, LeakyRelu or GlobalAveragePool whose
 * activations all have 8-bit twins (see contrib_entry) becomes the
 * com.microsoft QLinear op, output at its calibrated range (a Relu/Clip that
 * alone reads it folds in, as for QLinearConv). Without a range for the
 * output in the table it stays float and is counted in n_contrib_no_range.
 * Returns true when rewritten. */
static bool try_qlinear_contrib(rewriter *r, oq_node *n, oq_status *st)
{
    *st = OQ_OK;
    int e = r->o->contrib ? contrib_entry(n) : -1;
    if (e < 0)
        return false;
    for (int k = 0; k < n->n_inputs; k++) {
        qinfo *qi = n->inputs[k]->constant ? NULL : info_of(r, n->inputs[k]);
        if (!n->inputs[k]->constant && (!qi || !qi->twin))
            return false;
    }
    oq_node *act = foldable_activation(r, n);
    oq_value *y = act ? act->outputs[0] : n->outputs[0];
    oq_qparams p;
    if (!act_params(r, y, &p)) {
        r->res->n_contrib_no_range++;
        return false;
    }
    oq_value *in[8];
    int n_in = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        oq_value *x = n->inputs[k];
        oq_value *xq = x->constant ? quantized_constant(r, x) : info_of(r, x)->twin;
        qinfo *xi;
        if (!xq || ensure_params(r, x, &xi))
            goto fail;
        in[n_in++] = xq;
        in[n_in++] = xi->scale;
        in[n_in++] = xi->zp;
    }
    oq_qparams py = constant_add_params(r, n, p);
    qinfo *yi = info_of(r, y);
    oq_value *yq = NULL;
    if (!yi)
        goto fail;
    yi->p = py;
    yi->has_params = true;
    if (ensure_params(r, y, &yi) || !(yq = new_value(r, y->name, "_quantized")))
        goto fail;
    in[n_in++] = yi->scale;
    in[n_in++] = yi->zp;
    oq_node *q = add_node_in(r, CONTRIB_DOMAIN, contrib_ops[e].qop, n_in, in, 1, &yq);
    if (!q || inherit_name(q, n, r->err))
        goto fail;
    if (!strcmp(n->op_type, "LeakyRelu") &&
        oq_node_set_attr_float(q, "alpha", oq_node_attr_float(n, "alpha", 0.01f), r->err))
        goto fail;
    yi->twin = yq;
    if (act)
        oq_graph_remove_node(r->g, act);
    oq_graph_remove_node(r->g, n);
    r->res->n_contrib_ops++;
    return true;
fail:
    *st = r->err->status ? r->err->status : oq_errf(r->err, OQ_ENOMEM, "out of memory");
    return true;
}

/* With --contrib: a Concat whose inputs all have 8-bit twins of differing
 * parameters becomes com.microsoft QLinearConcat, which brings each input to
 * the output's calibrated parameters. Returns true when rewritten. */
static bool try_qlinear_concat(rewriter *r, oq_node *n, oq_status *st)
{
    *st = OQ_OK;
    oq_value *y = n->n_outputs ? n->outputs[0] : NULL;
    oq_qparams p;
    if (!r->o->contrib || strcmp(n->op_type, "Concat") || n->domain[0] || !y || n->n_inputs < 1 ||
        2 + 3 * n->n_inputs > MAX_NODE_INPUTS || !act_params(r, y, &p))
        return false;
    for (int k = 0; k < n->n_inputs; k++) {
        qinfo *qi = n->inputs[k] ? info_of(r, n->inputs[k]) : NULL;
        if (!qi || !qi->twin)
            return false;
    }
    qinfo *yi;
    oq_value *yq = NULL;
    if ((*st = ensure_params(r, y, &yi)) || !(yq = new_value(r, y->name, "_quantized"))) {
        *st = r->err->status ? r->err->status : OQ_ENOMEM;
        return true;
    }
    oq_value *in[MAX_NODE_INPUTS] = {yi->scale, yi->zp};
    for (int k = 0; k < n->n_inputs; k++) {
        qinfo *qi = info_of(r, n->inputs[k]);
        in[2 + 3 * k] = qi->twin;
        in[3 + 3 * k] = qi->scale;
        in[4 + 3 * k] = qi->zp;
    }
    oq_node *q = add_node_in(r, CONTRIB_DOMAIN, "QLinearConcat", 2 + 3 * n->n_inputs, in, 1, &yq);
    if (!q || inherit_name(q, n, r->err) || oq_node_set_attr_int(q, "axis", oq_node_attr_int(n, "axis", 0), r->err)) {
        *st = r->err->status ? r->err->status : OQ_ENOMEM;
        return true;
    }
    yi->twin = yq;
    oq_graph_remove_node(r->g, n);
    r->res->n_contrib_ops++;
    return true;
}

/* One-element 8-bit constant holding `value`, as the (data, scale, zero
 * point) triple of a QLinear operand: quantized_constant of a float
 * initializer made for it (which the cleanup drops, unread). */
static bool const_operand(rewriter *r, const char *base, float value, oq_value **in)
{
    oq_value *f = scalar_initializer(r, base, OQ_DTYPE_FLOAT, value);
    in[0] = f ? quantized_constant(r, f) : NULL;
    const qinfo *fi = in[0] ? info_of(r, f) : NULL;
    if (!fi)
        return false;
    in[1] = fi->scale;
    in[2] = fi->zp;
    return true;
}

/* With --contrib: a Mul of an 8-bit value by a positive one-element constant c
 * needs no op: its twin is the same tensor read at scale x c. Counted as a
 * folded factor. Returns true when n is gone. */
static bool try_scaled_twin(rewriter *r, oq_node *n, oq_status *st)
{
    *st = OQ_OK;
    if (!r->o->contrib || !is_default_op(n, "Mul") || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0])
        return false;
    for (int k = 0; k < 2; k++) {
        oq_value *x = n->inputs[k];
        const oq_value *c_in = n->inputs[1 - k];
        qinfo *xi = x->constant ? NULL : info_of(r, x);
        if (!xi || !xi->twin || !is_float_constant(c_in) || oq_tensor_numel(c_in->constant) != 1)
            continue;
        /* x's producer may be gone: its twin's (indexed here) tells the shape as well */
        if ((*st = oq_graph_index(r->g, r->err)))
            return true;
        float c = scalar_operand(c_in, has_axes(x, 0) ? x : xi->twin);
        if (!(c > 0) || !isfinite(c))
            continue;
        if (ensure_params(r, x, &xi)) {
            *st = r->err->status;
            return true;
        }
        oq_qparams p = {xi->p.scale * c, xi->p.zero_point};
        if (!set_twin(r, n->outputs[0], xi->twin, p, NULL, xi->zp)) {
            *st = r->err->status ? r->err->status : oq_errf(r->err, OQ_ENOMEM, "out of memory");
            return true;
        }
        oq_graph_remove_node(r->g, n);
        r->res->n_folded_factors++;
        return true;
    }
    return false;
}

/* With --contrib: HardSwish and HardSigmoid of an 8-bit value, built from
 * QLinearAdd and QLinearMul with the clamps done by saturation (so only for
 * asymmetric activations, where 0 is the lowest integer):
 *   HardSigmoid(x) = QLinearAdd(x read at scale x alpha, beta), output on [0, 1]
 *   HardSwish(x)   = QLinearMul(x, g) at output scale x 6, g = QLinearAdd(x, 3) on [0, 6]
 * HardSwish's output takes its calibrated range (none in the table: it stays
 * float, counted in n_contrib_no_range). Returns true when rewritten. */
static bool try_qlinear_hard(rewriter *r, oq_node *n, oq_status *st)
{
    *st = OQ_OK;
    bool swish = is_default_op(n, "HardSwish");
    if (!r->o->contrib || r->o->symmetric_activations || (!swish && !is_default_op(n, "HardSigmoid")) ||
        n->n_inputs != 1 || n->n_outputs != 1 || !n->outputs[0] || !n->inputs[0])
        return false;
    oq_value *x = n->inputs[0], *y = n->outputs[0];
    qinfo *xi = info_of(r, x);
    float alpha = oq_node_attr_float(n, "alpha", 0.2f), beta = oq_node_attr_float(n, "beta", 0.5f);
    if (!xi || !xi->twin || (!swish && !(alpha > 0 && isfinite(alpha) && isfinite(beta))))
        return false;
    oq_qparams py;
    if (swish && !act_params(r, y, &py)) {
        r->res->n_contrib_no_range++;
        return false;
    }
    if (ensure_params(r, x, &xi))
        goto fail;
    oq_value *xq = xi->twin, *xs = xi->scale, *xz = xi->zp, *k[3], *in[8], *yq = new_value(r, y->name, "_quantized");
    oq_qparams pg = oq_qparams_from_range(0, swish ? 6 : 1, r->o->act_qmin, r->o->act_qmax, false);
    char base[512];
    snprintf(base, sizeof base, "%s_%s", y->name, swish ? "three" : "beta");
    if (!yq || !const_operand(r, base, swish ? 3.0f : beta, k))
        goto fail;
    if (!swish) { /* x at scale x alpha, + beta, on [0, 1] */
        snprintf(base, sizeof base, "%s_alpha_scale", x->name);
        if (!(xs = scalar_initializer(r, base, OQ_DTYPE_FLOAT, xi->p.scale * alpha)) || !set_twin(r, y, yq, pg, NULL, NULL))
            goto fail;
        qinfo *yi = info_of(r, y);
        oq_value *add[8] = {xq, xs, xz, k[0], k[1], k[2], yi->scale, yi->zp};
        memcpy(in, add, sizeof in);
    } else { /* g = x + 3 on [0, 6]; y = x * g / 6 */
        oq_value *g = new_value(r, y->name, "_gate");
        snprintf(base, sizeof base, "%s_gate_scale", y->name);
        oq_value *gs = g ? scalar_initializer(r, base, OQ_DTYPE_FLOAT, pg.scale) : NULL;
        snprintf(base, sizeof base, "%s_gate_zero_point", y->name);
        oq_value *gz = gs ? scalar_initializer(r, base, r->act_type, pg.zero_point) : NULL;
        oq_value *add[8] = {xq, xs, xz, k[0], k[1], k[2], gs, gz};
        qinfo *yi;
        if (!gz || !add_node_in(r, CONTRIB_DOMAIN, "QLinearAdd", 8, add, 1, &g) || ensure_params(r, y, &yi))
            goto fail;
        snprintf(base, sizeof base, "%s_scale_x6", y->name);
        oq_value *ys6 = scalar_initializer(r, base, OQ_DTYPE_FLOAT, 6.0 * yi->p.scale);
        if (!ys6)
            goto fail;
        oq_value *mul[8] = {xq, xs, xz, g, gs, gz, ys6, yi->zp};
        memcpy(in, mul, sizeof in);
        yi->twin = yq;
    }
    oq_node *q = add_node_in(r, CONTRIB_DOMAIN, swish ? "QLinearMul" : "QLinearAdd", 8, in, 1, &yq);
    if (!q || inherit_name(q, n, r->err))
        goto fail;
    oq_graph_remove_node(r->g, n);
    r->res->n_contrib_ops++;
    return true;
fail:
    *st = r->err->status ? r->err->status : oq_errf(r->err, OQ_ENOMEM, "out of memory");
    return true;
}

/* ---- Conv + BatchNormalization folding ------------------------------------------------ */

/* Float constant 1-D of n elements, or NULL. */
static const float *channel_constant(const oq_value *v, int64_t n)
{
    if (!is_float_constant(v) || v->constant->rank != 1 || v->constant->dims[0] != n)
        return NULL;
    return v->constant->data;
}

/* Whether inference-mode BatchNormalization bn can fold into the Conv that
 * alone feeds it (stored in *conv): constant weight, and bias and statistics
 * with one value per output channel. The graph decides, not the options. */
static bool batchnorm_folds(const oq_graph *g, const oq_node *bn, oq_node **conv)
{
    const oq_value *x = bn->n_inputs ? bn->inputs[0] : NULL;
    *conv = x ? x->producer : NULL;
    if (!is_default_op(bn, "BatchNormalization") || bn->n_inputs != 5 || !bn->n_outputs || !bn->outputs[0] ||
        oq_node_attr_int(bn, "training_mode", 0) || !is_default_op(*conv, "Conv") || sole_reader(g, x) != bn)
        return false;
    for (int k = 1; k < bn->n_outputs; k++)
        if (bn->outputs[k] && (bn->outputs[k]->n_consumers || is_graph_output(g, bn->outputs[k])))
            return false;
    const oq_value *w = oq_node_input(*conv, 1), *b = oq_node_input(*conv, 2);
    if (!is_float_constant(w) || w->constant->rank < 3)
        return false;
    int64_t ch = w->constant->dims[0];
    for (int k = 1; k < 5; k++)
        if (!channel_constant(bn->inputs[k], ch))
            return false;
    return !b || channel_constant(b, ch);
}

/* Folds bn into its Conv (see batchnorm_folds) when that Conv is selected:
 * W[c] * s[c] and (B[c] - mean[c]) * s[c] + beta[c] with s = gamma /
 * sqrt(var + epsilon), as new initializers; the Conv then writes bn's output
 * and bn goes. False (graph untouched) when it does not fold. */
static bool fold_batchnorm(rewriter *r, oq_node *bn, oq_status *st)
{
    *st = OQ_OK;
    oq_node *conv;
    if (!batchnorm_folds(r->g, bn, &conv) || !is_selected(r, "Conv") || is_excluded(r, conv))
        return false;
    oq_value *y = bn->outputs[0];
    const oq_value *w = oq_node_input(conv, 1), *b = oq_node_input(conv, 2);
    int64_t ch = w->constant->dims[0], inner = oq_tensor_numel(w->constant) / (ch ? ch : 1);
    const float *gamma = channel_constant(bn->inputs[1], ch), *beta = channel_constant(bn->inputs[2], ch),
                *mean = channel_constant(bn->inputs[3], ch), *var = channel_constant(bn->inputs[4], ch),
                *bias = b ? channel_constant(b, ch) : NULL;
    float eps = oq_node_attr_float(bn, "epsilon", 1e-5f);
    oq_tensor wt, *bt = oq_tensor_create(OQ_DTYPE_FLOAT, 1, &ch, r->err);
    if (!bt || oq_tensor_copy(&wt, w->constant, r->err)) {
        oq_tensor_destroy(bt);
        *st = r->err->status;
        return true;
    }
    for (int64_t c = 0; c < ch; c++) {
        float sc = gamma[c] / sqrtf(var[c] + eps);
        for (int64_t i = 0; i < inner; i++)
            ((float *)wt.data)[c * inner + i] *= sc;
        ((float *)bt->data)[c] = ((bias ? bias[c] : 0.0f) - mean[c]) * sc + beta[c];
    }
    char base[512];
    snprintf(base, sizeof base, "%s_bn_folded", w->name);
    oq_value *wv = add_initializer(r, base, boxed(&wt, r->err)), *bv = NULL;
    snprintf(base, sizeof base, "%s_bn_bias", bn->outputs[0]->name);
    if (wv)
        bv = add_initializer(r, base, bt);
    else
        oq_tensor_destroy(bt);
    if (!bv || oq_node_set_input(conv, 1, wv, r->err) || oq_node_set_input(conv, 2, bv, r->err)) {
        *st = r->err->status ? r->err->status : OQ_ENOMEM;
        return true;
    }
    oq_graph_remove_node(r->g, bn);
    oq_node_set_output(conv, 0, y);
    return true;
}

/* Folds every Conv -> BatchNormalization pair; counts them in r->res. */
static oq_status fold_batchnorms(rewriter *r)
{
    oq_status st = oq_graph_index(r->g, r->err);
    for (int i = 0; !st && i < r->g->n_nodes;) {
        oq_node *n = r->g->nodes[i];
        if (strcmp(n->op_type, "BatchNormalization") == 0 && fold_batchnorm(r, n, &st)) {
            if (!st) {
                r->res->n_folded_bn++;
                st = oq_graph_index(r->g, r->err);
            }
            continue; /* n is gone: the same index holds the next node */
        }
        i++;
    }
    return st;
}

/* ---- where float and 8-bit meet ------------------------------------------------------- */

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (oq_node *const *)a, y = (uintptr_t) * (oq_node *const *)b;
    return x < y ? -1 : x > y;
}

static int by_count_then_name(const void *a, const void *b)
{
    const oq_glue_op *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->op_type, y->op_type);
}

static bool is_boundary(const oq_node *n)
{
    return (is_default_op(n, "QuantizeLinear") || is_default_op(n, "DequantizeLinear")) && n->n_inputs &&
           n->inputs[0] && !n->inputs[0]->constant;
}

/* Fills the boundary counts of r->res (see oq_quant_result) from the final graph. */
static oq_status count_boundaries(rewriter *r)
{
    oq_status st = oq_graph_index(r->g, r->err);
    int n_glue = 0;
    oq_node **glue = malloc((size_t)(2 * r->g->n_nodes + 1) * sizeof *glue);
    if (!st && !glue)
        st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
    for (int i = 0; !st && i < r->g->n_nodes; i++) {
        oq_node *n = r->g->nodes[i];
        if (!is_boundary(n))
            continue;
        if (is_default_op(n, "QuantizeLinear")) {
            r->res->n_boundary_quantize++;
            oq_node *p = n->inputs[0]->producer;
            if (p && !is_boundary(p))
                glue[n_glue++] = p;
            continue;
        }
        r->res->n_boundary_dequantize++;
        for (int k = 0; n->n_outputs && n->outputs[0] && k < n->outputs[0]->n_consumers; k++)
            if (!is_boundary(n->outputs[0]->consumers[k]) && n_glue < 2 * r->g->n_nodes)
                glue[n_glue++] = n->outputs[0]->consumers[k];
    }
    if (!st && n_glue > 1)
        qsort(glue, (size_t)n_glue, sizeof *glue, by_address);
    for (int i = 0; !st && i < n_glue; i++) {
        if (i && glue[i] == glue[i - 1])
            continue;
        oq_quant_result *res = r->res;
        int k = 0;
        while (k < res->n_glue_ops && strcmp(res->glue_ops[k].op_type, glue[i]->op_type))
            k++;
        if (k == res->n_glue_ops) {
            oq_glue_op *grown = realloc(res->glue_ops, (size_t)(k + 1) * sizeof *grown);
            char *op = strdup(glue[i]->op_type);
            if (grown)
                res->glue_ops = grown;
            if (!grown || !op) {
                free(op);
                st = oq_errf(r->err, OQ_ENOMEM, "out of memory");
                break;
            }
            res->glue_ops[res->n_glue_ops++] = (oq_glue_op){op, 0};
        }
        res->glue_ops[k].count++;
    }
    if (!st && r->res->n_glue_ops > 1)
        qsort(r->res->glue_ops, (size_t)r->res->n_glue_ops, sizeof *r->res->glue_ops, by_count_then_name);
    free(glue);
    return st;
}

/* ---- what calibration must record ------------------------------------------------------ */

void oq_quant_range_values(const oq_graph *g, bool contrib, bool *want)
{
    memset(want, 0, (size_t)g->n_values * sizeof *want);
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        bool weighted = is_default_op(n, "Conv") || is_default_op(n, "MatMul") || is_default_op(n, "Gemm");
        bool moves = false;
        for (size_t k = 0; k < sizeof passthrough_ops / sizeof passthrough_ops[0]; k++)
            moves = moves || is_default_op(n, passthrough_ops[k].op);
        if (!weighted && !moves)
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && !n->inputs[k]->constant && n->inputs[k]->graph == g)
                want[n->inputs[k]->id] = true;
        for (int k = weighted; k < n->n_outputs; k++)
            if (n->outputs[k])
                want[n->outputs[k]->id] = true;
        if (!weighted || !n->n_outputs || !n->outputs[0])
            continue;
        /* the value the op writes after folds: Conv -> BatchNormalization, then
         * the output of a Relu/Clip in place of its input (see is_clamp_of) */
        const oq_value *y = n->outputs[0];
        const oq_node *next = sole_reader(g, y);
        oq_node *conv;
        if (next && batchnorm_folds(g, next, &conv)) {
            y = next->outputs[0];
            next = sole_reader(g, y);
        }
        want[(is_clamp_of(next, y) ? next->outputs[0] : y)->id] = true;
    }
    if (!contrib)
        return;
    /* With contrib, 8-bit values spread (may8, in graph order) through what
     * --contrib rewrites: a Mul by a positive scalar and HardSigmoid (no range
     * needed), hard-swishes and the contrib ops whose activations may all be
     * 8-bit (their outputs' ranges recorded). Without memory for may8, every
     * such value is recorded: more than needed, never less. */
    bool *may8 = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *may8);
    if (may8)
        memcpy(may8, want, (size_t)g->n_values * sizeof *may8);
    else
        may8 = want;
#define MAY8(v) ((v) && (v)->graph == g && may8[(v)->id])
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i], *parts[6];
        int n_parts;
        oq_value *out = NULL;
        const oq_value *x = hard_swish_at(g, n, parts, &n_parts, &out);
        if (!x && is_default_op(n, "HardSwish") && n->n_inputs == 1 && n->n_outputs == 1) {
            x = n->inputs[0];
            out = n->outputs[0];
        }
        if (x || out) {
            if (MAY8(x) && out)
                want[out->id] = may8[out->id] = true;
            continue;
        }
        const oq_value *y = n->n_outputs == 1 ? n->outputs[0] : NULL;
        if (!y)
            continue;
        bool scaled = is_default_op(n, "Mul") && n->n_inputs == 2 &&
                      ((MAY8(n->inputs[0]) && scalar_operand(n->inputs[1], n->inputs[0]) > 0) ||
                       (MAY8(n->inputs[1]) && scalar_operand(n->inputs[0], n->inputs[1]) > 0));
        if (scaled || (is_default_op(n, "HardSigmoid") && n->n_inputs == 1 && MAY8(n->inputs[0]))) {
            may8[y->id] = true;
            continue;
        }
        if (contrib_entry(n) < 0)
            continue;
        bool ready = true;
        for (int k = 0; k < n->n_inputs; k++)
            ready = ready && (n->inputs[k]->constant || MAY8(n->inputs[k]));
        const oq_node *next = sole_reader(g, y);
        const oq_value *ranged = is_clamp_of(next, y) ? next->outputs[0] : y; /* whose range the output takes */
        if (ready)
            want[ranged->id] = may8[ranged->id] = may8[y->id] = true;
    }
#undef MAY8
    if (may8 != want)
        free(may8);
}

/* ---- cleanup --------------------------------------------------------------------------- */

/* Removes Constant nodes nothing reads any more (weights that moved to initializers). */
static void drop_dead_constants(oq_graph *g)
{
    oq_err ignored;
    if (oq_graph_index(g, &ignored))
        return;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        oq_node *n = g->nodes[i];
        oq_value *v = n->n_outputs ? n->outputs[0] : NULL;
        if (strcmp(n->op_type, "Constant") == 0 && v && !v->n_consumers && !is_graph_output(g, v))
            oq_graph_remove_node(g, n);
    }
    for (int i = 0; i < g->n_values; i++) { /* unread float initializers go too */
        oq_value *v = g->values[i];
        bool is_input = false;
        for (int k = 0; k < g->n_inputs; k++)
            is_input |= g->inputs[k] == v;
        if (v->constant && !v->producer && !v->n_consumers && !is_graph_output(g, v) && !is_input) {
            oq_tensor_destroy(v->constant);
            v->constant = NULL;
            v->is_initializer = false;
            v->kind = OQ_TYPE_NONE;
        }
    }
    oq_graph_prune(g);
}

/* ---- driver ---------------------------------------------------------------------------- */


/* Imports CONTRIB_DOMAIN version 1 into m unless it is imported already. *added says whether it was. */
static oq_status import_contrib(oq_model *m, bool *added, oq_err *err)
{
    *added = false;
    if (oq_model_opset(m, CONTRIB_DOMAIN))
        return OQ_OK;
    oq_opset *p = realloc(m->opsets, (size_t)(m->n_opsets + 1) * sizeof *p);
    if (!p)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    m->opsets = p;
    if (!(p[m->n_opsets].domain = strdup(CONTRIB_DOMAIN)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    p[m->n_opsets++].version = 1;
    *added = true;
    return OQ_OK;
}

/* Drops the last opset import (the one import_contrib added) when no node uses its domain. */
static void drop_unused_contrib(oq_model *m)
{
    for (int i = 0; i < m->graph->n_nodes; i++)
        if (strcmp(m->graph->nodes[i]->domain, CONTRIB_DOMAIN) == 0)
            return;
    free(m->opsets[--m->n_opsets].domain);
}

/* Quantized ops need opset 10 (QLinear*, per-tensor Q/DQ) and per-axis Q/DQ
 * needs 13; 8-bit MaxPool needs 12. Older models are raised to 13 by the
 * upgrade pass, which rewrites the nodes whose definitions changed. */
#define QUANT_OPSET 13

oq_status oq_quantize_model(oq_model *m, const oq_calib_table *table, const oq_quant_options *opts,
                            oq_quant_result *result, oq_err *err)
{
    memset(result, 0, sizeof *result);
    rewriter r = {.m = m, .g = m->graph, .table = table, .o = opts, .res = result, .err = err};
    r.act_type = opts->act_qmin < 0 ? OQ_DTYPE_INT8 : OQ_DTYPE_UINT8;
    result->opset_from = result->opset_to = oq_model_opset(m, "");
    oq_status st = OQ_OK;
    if (result->opset_from < QUANT_OPSET && !(st = oq_model_upgrade_opset(m, QUANT_OPSET, err)))
        result->opset_to = QUANT_OPSET;
    bool contrib_added = false;
    if (!st && opts->contrib)
        st = import_contrib(m, &contrib_added, err);
    /* hard-swish patterns become one node first, so that --contrib does not
     * take their Add and Mul apart */
    if (st || (st = fold_batchnorms(&r)) || (st = fuse_hard_swish(&r)) || (st = oq_graph_sort(r.g, err)))
        return st;
    /* a snapshot of the node list: the rewrite adds and removes nodes as it goes */
    int n0 = r.g->n_nodes;
    oq_node **order = malloc((size_t)(n0 ? n0 : 1) * sizeof *order);
    if (!order)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    memcpy(order, r.g->nodes, (size_t)n0 * sizeof *order);
    for (int i = 0; i < n0 && !st; i++) {
        oq_node *n = order[i];
        bool alive = false; /* folded activations are removed before their turn */
        for (int k = 0; k < r.g->n_nodes && !alive; k++)
            alive = r.g->nodes[k] == n;
        if (!alive)
            continue;
        if (!is_selected(&r, n->op_type) || n->domain[0] ||
            (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "MatMul") && strcmp(n->op_type, "Gemm"))) {
            if (opts->mode == OQ_MODE_STATIC && opts->format == OQ_FORMAT_QOPERATOR && !try_passthrough(&r, n, &st) &&
                !st && !try_qlinear_concat(&r, n, &st) && !st && !try_qlinear_contrib(&r, n, &st) && !st &&
                !try_scaled_twin(&r, n, &st) && !st)
                try_qlinear_hard(&r, n, &st);
            continue;
        }
        oq_quant_node *rep = report_node(&r, n);
        if (!rep) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            break;
        }
        const char *why = blocker(&r, n);
        if (why) {
            rep->reason = strdup(why);
            continue;
        }
        if ((st = oq_graph_index(r.g, err)))
            break;
        if (opts->mode == OQ_MODE_DYNAMIC)
            st = rewrite_dynamic(&r, n, rep);
        else if (opts->format == OQ_FORMAT_QDQ)
            st = rewrite_qdq(&r, n, rep);
        else if (strcmp(n->op_type, "Gemm") == 0)
            st = opts->contrib ? rewrite_qgemm(&r, n, rep) : rewrite_gemm(&r, n, rep);
        else
            st = rewrite_qlinear(&r, n, rep);
        if (!st)
            rep->quantized = true;
        else
            oq_err_context(err, "node '%s' (%s)", rep->name, rep->op_type);
    }
    free(order);
    if (!st && opts->mode == OQ_MODE_STATIC && opts->format == OQ_FORMAT_QOPERATOR)
        st = restore_float_values(&r);
    if (!st)
        st = simplify_float_glue(&r);
    if (!st) {
        drop_dead_constants(r.g);
        st = oq_graph_sort(r.g, err);
    }
    if (!st && opts->mode == OQ_MODE_STATIC && opts->format == OQ_FORMAT_QOPERATOR)
        st = count_boundaries(&r);
    if (!st && contrib_added)
        drop_unused_contrib(m);
    for (int i = 0; i < r.n_weights; i++)
        oq_weight_quant_release(&r.weights[i].wq);
    free(r.weights);
    for (int i = 0; i < r.n_chunks; i++)
        free(r.info[i]);
    free(r.info);
    return st;
}

void oq_quant_result_release(oq_quant_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_nodes; i++) {
        free(r->nodes[i].name);
        free(r->nodes[i].op_type);
        free(r->nodes[i].reason);
        free(r->nodes[i].output);
        free(r->nodes[i].twin);
    }
    free(r->nodes);
    for (int i = 0; i < r->n_glue_ops; i++)
        free(r->glue_ops[i].op_type);
    free(r->glue_ops);
    memset(r, 0, sizeof *r);
}
