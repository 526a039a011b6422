/* compare.c: a float model and its quantized version compared tensor by
 * tensor on sample data (see oq_compare.h for the matching rules).
 *
 * Setup pairs each tensor of the quantized model with its float counterpart
 * and the parameters that dequantize it. Then, one sample at a time: the float
 * run keeps a copy of each counterpart it computes, the quantized run's
 * observer compares each paired tensor as it appears (an integer tensor whose
 * run-time scale has not appeared yet waits for the end of the run), and the
 * sums of both runs' graph outputs grow. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_compare.h"
#include "onnxq/oq_exec.h"

/* ---- op kinds: resolved once per node ----------------------------------------------- */

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
    OP_KIND_COUNT
} op_kind;

typedef struct op_entry {
    const char *domain, *op_type;
    op_kind kind;
    int out_scale; /* OP_QLINEAR: input index of the output scale */
} op_entry;

#define MS "com.microsoft"
static const op_entry op_entries[] = {
    {"", "QuantizeLinear", OP_QUANTIZE, 0},
    {"", "DequantizeLinear", OP_DEQUANTIZE, 0},
    {"", "DynamicQuantizeLinear", OP_DYNAMIC_QUANTIZE, 0},
    {"", "QLinearConv", OP_QLINEAR, 6},
    {"", "QLinearMatMul", OP_QLINEAR, 6},
    {MS, "QGemm", OP_QLINEAR, 7},
    {MS, "QLinearAdd", OP_QLINEAR, 6},
    {MS, "QLinearMul", OP_QLINEAR, 6},
    {MS, "QLinearSigmoid", OP_QLINEAR, 3},
    {MS, "QLinearLeakyRelu", OP_QLINEAR, 3},
    {MS, "QLinearGlobalAveragePool", OP_QLINEAR, 3},
    {MS, "QLinearConcat", OP_QLINEAR, 0},
    {"", "Identity", OP_MOVE, 0},
    {"", "MaxPool", OP_MOVE, 0},
    {"", "Reshape", OP_MOVE, 0},
    {"", "Flatten", OP_MOVE, 0},
    {"", "Transpose", OP_MOVE, 0},
    {"", "Squeeze", OP_MOVE, 0},
    {"", "Unsqueeze", OP_MOVE, 0},
    {"", "Slice", OP_MOVE, 0},
    {"", "Gather", OP_MOVE, 0},
    {"", "Split", OP_MOVE, 0},
    {"", "Concat", OP_CONCAT, 0},
    {"", "Pad", OP_MOVE, 0},
    {"", "Resize", OP_MOVE, 0},
    {"", "DepthToSpace", OP_MOVE, 0},
    {"", "SpaceToDepth", OP_MOVE, 0},
    {"", "Relu", OP_RELU, 0},
    {"", "Clip", OP_CLIP, 0},
};
#undef MS
#define N_OP_ENTRIES ((int)(sizeof op_entries / sizeof op_entries[0]))

static const op_entry *op_of(const oq_node *n)
{
    static const op_entry other = {"", "", OP_OTHER, 0};
    if (!n)
        return &other;
    for (int i = 0; i < N_OP_ENTRIES; i++)
        if (!strcmp(op_entries[i].op_type, n->op_type) && !strcmp(op_entries[i].domain, n->domain))
            return &op_entries[i];
    return &other;
}

/* The integer types a scale and zero point can dequantize. */
static bool is_integer_q(oq_dtype dt)
{
    return dt == OQ_DTYPE_UINT8 || dt == OQ_DTYPE_INT8 || dt == OQ_DTYPE_UINT16 || dt == OQ_DTYPE_INT16;
}

static const char *const match_names[OQ_MATCH_COUNT] = {
    "quantize", "dequantize", "same_name", "dequantized", "quantized_name", "node_name", "activation_input",
};

const char *oq_compare_match_name(oq_compare_match m)
{
    return m >= 0 && m < OQ_MATCH_COUNT ? match_names[m] : "?";
}

/* ---- pairing: which float tensor each quantized one stands for -------------------------- */

/* How to dequantize an integer tensor: scale and zero point values (zero may
 * be NULL: 0), per tensor or along axis. */
typedef struct qparams {
    const oq_value *scale, *zero;
    int axis;
} qparams;

/* What one value of the quantized graph stands for. */
typedef struct pairing {
    const oq_value *ref;     /* float-model counterpart, or NULL */
    oq_compare_match match;
    qparams own;             /* parameters of the op that made it (scale NULL: none known) */
    qparams via;             /* the parameters the pairing came with (OQ_MATCH_DEQUANTIZED) or own */
} pairing;

/* A float node's name, for lookups by name (ambiguous names are dropped). */
typedef struct named_node {
    const char *name;
    const oq_node *node;
} named_node;

typedef struct matcher {
    const oq_graph *fg, *qg;
    const op_entry **fkind;  /* [fg->n_nodes] by node order */
    pairing *pv;             /* [qg->n_values] */
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

/* The counterpart of NAME_quantized: NAME's, or NULL. */
static const oq_value *quantized_name_of(const matcher *mt, const char *name)
{
    static const char suffix[] = "_quantized";
    size_t n = strlen(name), k = sizeof suffix - 1;
    if (n <= k || strcmp(name + n - k, suffix))
        return NULL;
    char *base = strndup(name, n - k);
    if (!base)
        return NULL;
    const oq_value *f = float_tensor(mt, base);
    free(base);
    return f;
}

static qparams params_at(const oq_node *n, int scale, int zero, bool outputs)
{
    oq_value *const *v = outputs ? n->outputs : n->inputs;
    int count = outputs ? n->n_outputs : n->n_inputs;
    return (qparams){.scale = scale < count ? v[scale] : NULL, .zero = zero < count ? v[zero] : NULL,
                     .axis = (int)oq_node_attr_int(n, "axis", 1)};
}

/* One-element constant scale, for parameters that travel through ops moving elements. */
static bool per_tensor_constant(const qparams *p)
{
    return p->scale && p->scale->constant && oq_tensor_numel(p->scale->constant) == 1 &&
           (!p->zero || (p->zero->constant && oq_tensor_numel(p->zero->constant) == 1));
}

static bool same_params(const qparams *a, const qparams *b)
{
    if (a->scale == b->scale && a->zero == b->zero)
        return true;
    if (!per_tensor_constant(a) || !per_tensor_constant(b))
        return false;
    double za = a->zero ? oq_tensor_get_f64(a->zero->constant, 0) : 0;
    double zb = b->zero ? oq_tensor_get_f64(b->zero->constant, 0) : 0;
    return oq_tensor_get_f64(a->scale->constant, 0) == oq_tensor_get_f64(b->scale->constant, 0) && za == zb;
}

/* Parameters of output k of quantized node n (its inputs already paired). */
static qparams own_params(const matcher *mt, const oq_node *n, int k)
{
    const op_entry *op = op_of(n);
    qparams none = {0};
    switch (op->kind) {
    case OP_QUANTIZE: return k == 0 ? params_at(n, 1, 2, false) : none;
    case OP_DYNAMIC_QUANTIZE: return k == 0 ? params_at(n, 1, 2, true) : none;
    case OP_QLINEAR: return k == 0 ? params_at(n, op->out_scale, op->out_scale + 1, false) : none;
    case OP_MOVE:
    case OP_CONCAT: {
        const oq_value *x = oq_node_input(n, 0);
        if (!x || x->constant || !per_tensor_constant(&mt->pv[x->id].own))
            return none;
        qparams p = mt->pv[x->id].own;
        for (int i = 1; op->kind == OP_CONCAT && i < n->n_inputs; i++)
            if (!n->inputs[i] || !same_params(&p, &mt->pv[n->inputs[i]->id].own))
                return none;
        return p;
    }
    default: return none;
    }
}

/* Counterpart of a value no node of the quantized graph makes (input, constant). */
static void pair_source(matcher *mt, const oq_value *v)
{
    pairing *p = &mt->pv[v->id];
    if ((p->ref = float_tensor(mt, v->name)))
        p->match = OQ_MATCH_SAME_NAME;
    else if ((p->ref = quantized_name_of(mt, v->name)))
        p->match = OQ_MATCH_QUANTIZED_NAME;
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
static bool range_starts_at_zero(const qparams *p)
{
    if (!p->zero)
        return true;
    const oq_tensor *z = p->zero->constant;
    if (!z)
        return false;
    int64_t lowest = z->dtype == OQ_DTYPE_INT8 ? -128 : z->dtype == OQ_DTYPE_INT16 ? -32768 : 0;
    if (!is_integer_q(z->dtype))
        return false;
    for (int64_t i = 0; i < oq_tensor_numel(z); i++)
        if (oq_tensor_get_i64(z, i) != lowest)
            return false;
    return true;
}

/* The output of the activation that alone reads float value f when that
 * activation floors at 0 and an integer tensor at parameters p stands for
 * f: a range starting at 0 applies the activation by saturating, so the
 * tensor holds the activation's output. NULL otherwise. */
static const oq_value *activation_by_range(const matcher *mt, const oq_value *f, const qparams *p)
{
    if (!p->scale || f->n_consumers != 1 || is_graph_output(mt->fg, f) || !range_starts_at_zero(p))
        return NULL;
    const oq_node *a = f->consumers[0];
    return floors_at_zero(a) && a->n_inputs > 0 && a->inputs[0] == f && a->n_outputs > 0 ? a->outputs[0] : NULL;
}

/* The float tensor a DequantizeLinear reading v writes under a float-model
 * name, with that DequantizeLinear's parameters in *p; or NULL. */
static const oq_value *dequantized_as(const matcher *mt, const oq_value *v, qparams *p)
{
    for (int c = 0; c < v->n_consumers; c++) {
        const oq_node *d = v->consumers[c];
        const oq_value *f;
        if (op_of(d)->kind == OP_DEQUANTIZE && d->n_inputs > 0 && d->inputs[0] == v && d->n_outputs > 0 &&
            d->outputs[0] && (f = float_tensor(mt, d->outputs[0]->name))) {
            *p = params_at(d, 1, 2, false);
            return f;
        }
    }
    return NULL;
}

/* Output k of the float node named like quantized node n, or NULL. */
static const oq_value *node_name_twin(const matcher *mt, const oq_node *n, int k)
{
    const oq_node *twin = n->name[0] ? float_node_named(mt, n->name) : NULL;
    return twin && k < twin->n_outputs && twin->outputs[k] ? float_tensor(mt, twin->outputs[k]->name) : NULL;
}

/* Pairs output k of node n of the quantized graph (rules in oq_compare.h). */
static void pair_output(matcher *mt, const oq_node *n, int k)
{
    const oq_value *v = n->outputs[k], *x = oq_node_input(n, 0), *f;
    const op_entry *op = op_of(n);
    pairing *p = &mt->pv[v->id];
    p->own = p->via = own_params(mt, n, k);
    if ((op->kind == OP_QUANTIZE || op->kind == OP_DEQUANTIZE) && k == 0 && x && (f = mt->pv[x->id].ref)) {
        p->ref = f;
        p->match = op->kind == OP_QUANTIZE ? OQ_MATCH_QUANTIZE : OQ_MATCH_DEQUANTIZE;
    } else if ((f = float_tensor(mt, v->name))) {
        const oq_node *a = removed_activation(f, n);
        p->ref = a ? a->inputs[0] : f;
        p->match = a ? OQ_MATCH_ACTIVATION_INPUT : OQ_MATCH_SAME_NAME;
    } else if ((f = dequantized_as(mt, v, &p->via))) {
        p->ref = f;
        p->match = OQ_MATCH_DEQUANTIZED;
    } else if ((f = quantized_name_of(mt, v->name))) {
        p->ref = f;
        p->match = OQ_MATCH_QUANTIZED_NAME;
    } else if ((f = node_name_twin(mt, n, k))) {
        p->ref = f;
        p->match = OQ_MATCH_NODE_NAME;
    }
    const oq_value *act = p->ref ? activation_by_range(mt, p->ref, &p->via) : NULL;
    if (act)
        p->ref = act;
}

static oq_status matcher_init(matcher *mt, const oq_graph *fg, const oq_graph *qg, oq_err *err)
{
    *mt = (matcher){.fg = fg, .qg = qg};
    mt->pv = calloc((size_t)qg->n_values + 1, sizeof *mt->pv);
    mt->by_name = calloc((size_t)fg->n_nodes + 1, sizeof *mt->by_name);
    if (!mt->pv || !mt->by_name)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
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
    return OQ_OK;
}

static void matcher_release(matcher *mt)
{
    free(mt->pv);
    free(mt->by_name);
}

/* ---- per-sample copies ---------------------------------------------------------------------- */

/* A copy of one tensor of the current sample; its storage is reused across samples. */
typedef struct kept {
    oq_tensor t;    /* data is buf (not owned by t); strings are not copied (data NULL) */
    void *buf;
    size_t cap;
    int64_t sample; /* the sample it holds; -1 = none yet */
} kept;

static oq_status keep(kept *k, const oq_tensor *x, int64_t sample, oq_err *err)
{
    size_t bytes = x->dtype == OQ_DTYPE_STRING ? 0 : oq_dtype_storage(x->dtype, oq_tensor_numel(x));
    if (bytes == SIZE_MAX)
        return oq_errf(err, OQ_EINVAL, "tensor size overflows");
    if (bytes > k->cap) {
        void *grown = realloc(k->buf, bytes);
        if (!grown)
            return oq_errf(err, OQ_ENOMEM, "out of memory keeping a tensor of %zu bytes", bytes);
        k->buf = grown;
        k->cap = bytes;
    }
    if (bytes)
        memcpy(k->buf, x->data, bytes);
    k->t = *x;
    k->t.data = bytes ? k->buf : NULL;
    k->t.nbytes = bytes;
    k->t.owns_data = false;
    k->sample = sample;
    return OQ_OK;
}

/* ---- sums ----------------------------------------------------------------------------------- */

typedef struct sums {
    double ff, qq, fq, err2; /* sum f^2, q^2, f q, (f - q)^2 */
    double max_err;
    int64_t elements;
} sums;

static void add_pair(sums *s, double f, double q)
{
    double d = f - q;
    s->ff += f * f;
    s->qq += q * q;
    s->fq += f * q;
    s->err2 += d * d;
    if (fabs(d) > s->max_err)
        s->max_err = fabs(d);
}

static double sqnr_db(const sums *s)
{
    if (!s->elements)
        return NAN;
    if (s->err2 == 0)
        return s->ff > 0 ? INFINITY : 0;
    return 10 * log10(s->ff / s->err2);
}

static double cosine(const sums *s)
{
    if (!s->elements)
        return NAN;
    if (s->ff > 0 && s->qq > 0)
        return s->fq / sqrt(s->ff * s->qq);
    return s->ff == s->qq ? 1 : 0;
}

/* Element i of an integer tensor (8, 16 or 32 bits). */
static int32_t int_at(const oq_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case OQ_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    case OQ_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case OQ_DTYPE_UINT16: return ((const uint16_t *)t->data)[i];
    case OQ_DTYPE_INT16: return ((const int16_t *)t->data)[i];
    case OQ_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    default: return 0;
    }
}

/* Parameters resolved for one integer tensor of one sample. */
typedef struct dequant {
    const float *scale;     /* [channels] */
    const oq_tensor *zero;  /* NULL (0) or [channels] integers */
    int64_t channels, inner; /* element i belongs to channel (i / inner) % channels */
} dequant;

/* Adds f[0..n) against x (float, or integer through d) to s. Integers are
 * dequantized as DequantizeLinear does: float(q - zero) * scale. */
static void add_tensor(sums *s, const float *f, const oq_tensor *x, const dequant *d)
{
    int64_t n = oq_tensor_numel(x);
    s->elements += n;
    if (x->dtype == OQ_DTYPE_FLOAT) {
        const float *q = x->data;
        for (int64_t i = 0; i < n; i++)
            add_pair(s, f[i], q[i]);
    } else if (d->channels == 1 && (x->dtype == OQ_DTYPE_UINT8 || x->dtype == OQ_DTYPE_INT8)) {
        float real[256];
        int32_t z = d->zero ? int_at(d->zero, 0) : 0;
        for (int b = 0; b < 256; b++)
            real[b] = (float)((x->dtype == OQ_DTYPE_INT8 ? (int32_t)(int8_t)b : b) - z) * d->scale[0];
        const uint8_t *q = x->data;
        for (int64_t i = 0; i < n; i++)
            add_pair(s, f[i], real[q[i]]);
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (i / d->inner) % d->channels;
            int32_t z = d->zero ? int_at(d->zero, c) : 0;
            add_pair(s, f[i], (float)(int_at(x, i) - z) * d->scale[c]);
        }
    }
}

static bool same_shape(const oq_tensor *a, const oq_tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* ---- the comparison ------------------------------------------------------------------------ */

/* One paired tensor of the quantized model. */
typedef struct row {
    const oq_value *q, *ref;
    oq_compare_match match;
    qparams p;            /* to dequantize q when it is an integer tensor */
    oq_dtype dtype;       /* q's element type as it ran (UNDEFINED until seen) */
    sums s;
    int64_t samples, mismatched;
    char bad[96];         /* why it cannot be compared ("" while it can) */
    kept pending;         /* q of this sample, waiting for run-time parameters */
} row;

typedef struct output_pair {
    int fi, qi;           /* indices among the float and quantized session outputs */
    sums s;
    bool classifier;
    int64_t agree, total;
} output_pair;

typedef struct cmp {
    const oq_model *fm, *qm;
    oq_session *fs, *qs;
    int n_in;
    int *qin_from;        /* [n_in] quantized input j is fed float input qin_from[j] */
    int *f_input;         /* [fm n_values]: index among the fed inputs, or -1 */
    bool *f_need, *q_need; /* [n_values] the values each session shows its observer */
    int *row_of;          /* [qm n_values]: row index, or -1 */
    bool *is_param;       /* [qm n_values]: a run-time scale or zero point some row needs */
    int n_rows;
    row *rows;
    kept *fkept;          /* [fm n_values] */
    kept *pkept;          /* [qm n_values] */
    int n_out;
    output_pair *outs;
    oq_tensor *ins, *qins, *fouts, *qouts;
    int64_t sample;
    oq_status obs_status; /* the first failure inside an observer */
    oq_err obs_err;
} cmp;

/* The float tensor of counterpart f in this sample, or NULL. */
static const oq_tensor *reference(const cmp *c, const oq_value *f)
{
    if (f->constant)
        return f->constant;
    if (c->f_input[f->id] >= 0)
        return &c->ins[c->f_input[f->id]];
    const kept *k = &c->fkept[f->id];
    return k->sample == c->sample ? &k->t : NULL;
}

/* A scale or zero point of this sample: a constant or a kept run-time value. */
static const oq_tensor *param(const cmp *c, const oq_value *v)
{
    if (!v || v->constant)
        return v ? v->constant : NULL;
    const kept *k = &c->pkept[v->id];
    return k->sample == c->sample ? &k->t : NULL;
}

static bool params_ready(const cmp *c, const qparams *p)
{
    return p->scale && param(c, p->scale) && (!p->zero || param(c, p->zero));
}

static void set_bad(row *r, const char *fmt, const char *a, const char *b)
{
    if (!r->bad[0])
        snprintf(r->bad, sizeof r->bad, fmt, a, b);
}

/* Resolves r's parameters for integer tensor x; false (r marked) when they do not fit. */
static bool resolve_dequant(const cmp *c, row *r, const oq_tensor *x, dequant *d)
{
    const oq_tensor *s = param(c, r->p.scale), *z = param(c, r->p.zero);
    if (!s) {
        set_bad(r, "%s tensor with no known scale", oq_dtype_name(x->dtype), "");
        return false;
    }
    int64_t ns = oq_tensor_numel(s);
    int axis = r->p.axis < 0 ? r->p.axis + x->rank : r->p.axis;
    bool per_axis = ns > 1 && s->rank == 1 && axis >= 0 && axis < x->rank && x->dims[axis] == ns;
    if (s->dtype != OQ_DTYPE_FLOAT || (ns != 1 && !per_axis) ||
        (z && (oq_tensor_numel(z) != ns || !(is_integer_q(z->dtype) || z->dtype == OQ_DTYPE_INT32)))) {
        set_bad(r, "its scale or zero point ('%s') does not fit the tensor", r->p.scale->name, "");
        return false;
    }
    d->scale = s->data;
    d->zero = z;
    d->channels = ns;
    d->inner = 1;
    for (int i = axis + 1; per_axis && i < x->rank; i++)
        d->inner *= x->dims[i];
    return true;
}

/* Compares q tensor x of row r with its float counterpart in this sample. */
static void compare_row(cmp *c, row *r, const oq_tensor *x)
{
    r->dtype = x->dtype;
    if (r->bad[0])
        return;
    const oq_tensor *f = reference(c, r->ref);
    dequant d = {0};
    if (!f)
        set_bad(r, "its float counterpart '%s' was not computed", r->ref->name, "");
    else if (f->dtype != OQ_DTYPE_FLOAT)
        set_bad(r, "its float counterpart '%s' is a %s tensor", r->ref->name, oq_dtype_name(f->dtype));
    else if (x->dtype != OQ_DTYPE_FLOAT && !is_integer_q(x->dtype))
        set_bad(r, "%s tensor", oq_dtype_name(x->dtype), "");
    if (r->bad[0])
        return;
    if (!same_shape(f, x)) {
        r->mismatched++;
        return;
    }
    if (x->dtype != OQ_DTYPE_FLOAT && !resolve_dequant(c, r, x, &d))
        return;
    add_tensor(&r->s, f->data, x, &d);
    r->samples++;
}

static void fail_in_observer(cmp *c, oq_status st)
{
    if (!c->obs_status)
        c->obs_status = st;
}

static void observe_float(void *user, const oq_value *v, const oq_tensor *x)
{
    cmp *c = user;
    if (c->f_need[v->id] && !c->obs_status) {
        oq_status st = keep(&c->fkept[v->id], x, c->sample, &c->obs_err);
        if (st)
            fail_in_observer(c, st);
    }
}

static void observe_quant(void *user, const oq_value *v, const oq_tensor *x)
{
    cmp *c = user;
    oq_status st;
    if (c->obs_status)
        return;
    if (c->is_param[v->id] && (st = keep(&c->pkept[v->id], x, c->sample, &c->obs_err))) {
        fail_in_observer(c, st);
        return;
    }
    if (c->row_of[v->id] < 0)
        return;
    row *r = &c->rows[c->row_of[v->id]];
    if (!is_integer_q(x->dtype) || params_ready(c, &r->p) || !r->p.scale)
        compare_row(c, r, x);
    else if ((st = keep(&r->pending, x, c->sample, &c->obs_err)))
        fail_in_observer(c, st);
}

/* ---- outputs ---------------------------------------------------------------------------------- */

static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void compare_output(output_pair *o, const oq_tensor *f, const oq_tensor *q)
{
    if (f->dtype != OQ_DTYPE_FLOAT || q->dtype != OQ_DTYPE_FLOAT || !same_shape(f, q))
        return;
    dequant none = {0};
    add_tensor(&o->s, f->data, q, &none);
    bool classifier = (f->rank == 2 || f->rank == 3) && f->dims[f->rank - 1] >= 2;
    o->classifier = o->classifier || classifier;
    if (!classifier)
        return;
    int64_t cls = f->dims[f->rank - 1], n = oq_tensor_numel(f);
    for (int64_t row = 0; row < n / cls; row++) {
        o->agree += argmax((const float *)f->data + row * cls, cls) == argmax((const float *)q->data + row * cls, cls);
        o->total++;
    }
}

/* ---- setup -------------------------------------------------------------------------------------- */

/* The fed graph inputs of g (not initializers), in order; count in *n. */
static const oq_value **fed_inputs(const oq_graph *g, int *n, oq_err *err)
{
    const oq_value **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    if (!in) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    *n = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->constant)
            in[(*n)++] = g->inputs[i];
    return in;
}

/* Maps the quantized model's fed inputs onto the float model's by name;
 * fails naming the first input that differs. */
static oq_status map_inputs(cmp *c, oq_err *err)
{
    int nf, nq;
    oq_status st = OQ_OK;
    const oq_value **fi = fed_inputs(c->fm->graph, &nf, err), **qi = fi ? fed_inputs(c->qm->graph, &nq, err) : NULL;
    if (!fi || !qi) {
        free(fi);
        return err->status;
    }
    c->n_in = nf;
    if (!(c->qin_from = calloc((size_t)nf + 1, sizeof *c->qin_from)))
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int j = 0; !st && j < nq; j++) {
        int k = 0;
        while (k < nf && strcmp(fi[k]->name, qi[j]->name))
            k++;
        if (k == nf)
            st = oq_errf(err, OQ_EINVAL, "the quantized model has an input '%s' that the float model does not have",
                         qi[j]->name);
        else if (fi[k]->dtype != qi[j]->dtype)
            st = oq_errf(err, OQ_EINVAL, "input '%s' is %s in the float model but %s in the quantized one",
                         qi[j]->name, oq_dtype_name(fi[k]->dtype), oq_dtype_name(qi[j]->dtype));
        else
            c->qin_from[j] = k;
    }
    if (!st && nq != nf) {
        for (int k = 0; k < nf; k++) {
            int j = 0;
            while (j < nq && strcmp(fi[k]->name, qi[j]->name))
                j++;
            if (j == nq) {
                st = oq_errf(err, OQ_EINVAL, "the float model has an input '%s' that the quantized model does not have",
                             fi[k]->name);
                break;
            }
        }
    }
    for (int k = 0; !st && k < nf; k++)
        c->f_input[fi[k]->id] = k;
    free(fi);
    free(qi);
    return st;
}

/* Rows from the pairing, in graph order, and what each session must show. */
static oq_status plan_rows(cmp *c, const matcher *mt, oq_err *err)
{
    const oq_graph *qg = c->qm->graph;
    if (!(c->rows = calloc((size_t)qg->n_values + 1, sizeof *c->rows)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < qg->n_nodes; i++) {
        const oq_node *n = qg->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            const oq_value *v = n->outputs[k];
            const pairing *p = v ? &mt->pv[v->id] : NULL;
            if (!v || v->constant || !p->ref)
                continue;
            c->row_of[v->id] = c->n_rows;
            c->rows[c->n_rows++] = (row){.q = v, .ref = p->ref, .match = p->match, .p = p->via,
                                         .pending = {.sample = -1}};
            c->q_need[v->id] = true;
            if (!p->ref->constant && c->f_input[p->ref->id] < 0)
                c->f_need[p->ref->id] = true;
            const oq_value *rt[2] = {p->via.scale, p->via.zero};
            for (int j = 0; j < 2; j++)
                if (rt[j] && !rt[j]->constant)
                    c->is_param[rt[j]->id] = c->q_need[rt[j]->id] = true;
        }
    }
    return OQ_OK;
}

/* Graph outputs present in both models by name. */
static oq_status plan_outputs(cmp *c, oq_err *err)
{
    int nf = oq_session_output_count(c->fs), nq = oq_session_output_count(c->qs);
    c->outs = calloc((size_t)nq + 1, sizeof *c->outs);
    c->fouts = calloc((size_t)nf + 1, sizeof *c->fouts);
    c->qouts = calloc((size_t)nq + 1, sizeof *c->qouts);
    if (!c->outs || !c->fouts || !c->qouts)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int j = 0; j < nq; j++)
        for (int i = 0; i < nf; i++)
            if (!strcmp(oq_session_output(c->qs, j)->name, oq_session_output(c->fs, i)->name)) {
                c->outs[c->n_out++] = (output_pair){.fi = i, .qi = j};
                break;
            }
    return OQ_OK;
}

static oq_status cmp_init(cmp *c, const oq_model *fm, const oq_model *qm, const oq_compare_options *o, oq_err *err)
{
    int nf = fm->graph->n_values, nq = qm->graph->n_values;
    *c = (cmp){.fm = fm, .qm = qm, .sample = -1};
    c->f_input = malloc(((size_t)nf + 1) * sizeof *c->f_input);
    c->row_of = malloc(((size_t)nq + 1) * sizeof *c->row_of);
    c->f_need = calloc((size_t)nf + 1, sizeof *c->f_need);
    c->q_need = calloc((size_t)nq + 1, sizeof *c->q_need);
    c->is_param = calloc((size_t)nq + 1, sizeof *c->is_param);
    c->fkept = calloc((size_t)nf + 1, sizeof *c->fkept);
    c->pkept = calloc((size_t)nq + 1, sizeof *c->pkept);
    if (!c->f_input || !c->row_of || !c->f_need || !c->q_need || !c->is_param || !c->fkept || !c->pkept)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < nf; i++) {
        c->f_input[i] = -1;
        c->fkept[i].sample = -1;
    }
    for (int i = 0; i < nq; i++) {
        c->row_of[i] = -1;
        c->pkept[i].sample = -1;
    }
    matcher mt = {0};
    oq_status st = map_inputs(c, err);
    if (!st && !(st = matcher_init(&mt, fm->graph, qm->graph, err)))
        st = plan_rows(c, &mt, err);
    matcher_release(&mt);
    if (st)
        return st;
    oq_exec_options fo = {.threads = o ? o->threads : 0, .observed = c->f_need};
    oq_exec_options qo = {.threads = o ? o->threads : 0, .observed = c->q_need};
    if ((st = oq_session_create(&c->fs, fm, &fo, err)))
        return oq_err_context(err, "float model");
    if ((st = oq_session_create(&c->qs, qm, &qo, err)))
        return oq_err_context(err, "quantized model");
    oq_session_set_observer(c->fs, observe_float, c);
    oq_session_set_observer(c->qs, observe_quant, c);
    c->ins = calloc((size_t)c->n_in + 1, sizeof *c->ins);
    c->qins = calloc((size_t)c->n_in + 1, sizeof *c->qins);
    if (!c->ins || !c->qins)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    return plan_outputs(c, err);
}

static void kept_release(kept *k)
{
    free(k->buf);
}

static void cmp_release(cmp *c)
{
    for (int i = 0; c->fkept && i < c->fm->graph->n_values; i++)
        kept_release(&c->fkept[i]);
    for (int i = 0; c->pkept && i < c->qm->graph->n_values; i++)
        kept_release(&c->pkept[i]);
    for (int i = 0; i < c->n_rows; i++)
        kept_release(&c->rows[i].pending);
    oq_session_destroy(c->fs);
    oq_session_destroy(c->qs);
    free(c->qin_from);
    free(c->f_input);
    free(c->f_need);
    free(c->q_need);
    free(c->row_of);
    free(c->is_param);
    free(c->rows);
    free(c->fkept);
    free(c->pkept);
    free(c->outs);
    free(c->ins);
    free(c->qins);
    free(c->fouts);
    free(c->qouts);
}

/* ---- one sample ------------------------------------------------------------------------------- */

static oq_status run_sample(cmp *c, const oq_dataset *ds, int64_t s, oq_err *err)
{
    int nf = oq_session_output_count(c->fs), nq = oq_session_output_count(c->qs);
    c->sample = s;
    oq_status st = oq_dataset_load(ds, s, c->ins, err);
    if (st)
        return st;
    for (int j = 0; j < c->n_in; j++)
        c->qins[j] = c->ins[c->qin_from[j]];
    if ((st = oq_session_run(c->fs, c->ins, c->fouts, err)))
        oq_err_context(err, "float model");
    else if (!c->obs_status && (st = oq_session_run(c->qs, c->qins, c->qouts, err)))
        oq_err_context(err, "quantized model");
    if (!st && c->obs_status) {
        st = c->obs_status;
        *err = c->obs_err;
    }
    for (int i = 0; !st && i < c->n_rows; i++)
        if (c->rows[i].pending.sample == s)
            compare_row(c, &c->rows[i], &c->rows[i].pending.t);
    for (int i = 0; !st && i < c->n_out; i++)
        compare_output(&c->outs[i], &c->fouts[c->outs[i].fi], &c->qouts[c->outs[i].qi]);
    for (int i = 0; i < nf; i++)
        oq_tensor_release(&c->fouts[i]);
    for (int i = 0; i < nq; i++)
        oq_tensor_release(&c->qouts[i]);
    for (int j = 0; j < c->n_in; j++)
        oq_tensor_release(&c->ins[j]);
    if (st)
        oq_err_context(err, "sample %lld", (long long)s);
    return st;
}

/* ---- the result ------------------------------------------------------------------------------- */

/* The lowest SQNR among the nearest rows that v was computed from (through
 * values without a row), or NAN when there are none. stack and seen have
 * room for every value; seen holds marks below mark. */
static double ancestors_sqnr(const cmp *c, const oq_compare_result *r, const int *tensor_of, const oq_value *v,
                             const oq_value **stack, int *seen, int mark)
{
    int top = 0;
    double lowest = NAN;
    const oq_node *n = v->producer;
    for (int k = 0; n && k < n->n_inputs; k++)
        if (n->inputs[k] && !n->inputs[k]->constant && seen[n->inputs[k]->id] != mark) {
            seen[n->inputs[k]->id] = mark;
            stack[top++] = n->inputs[k];
        }
    while (top) {
        const oq_value *u = stack[--top];
        int t = c->row_of[u->id] >= 0 ? tensor_of[c->row_of[u->id]] : -1;
        if (t >= 0 && r->tensors[t].samples > 0) {
            double q = r->tensors[t].sqnr_db;
            lowest = isnan(lowest) || q < lowest ? q : lowest;
            continue;
        }
        const oq_node *p = u->producer;
        for (int k = 0; p && k < p->n_inputs; k++)
            if (p->inputs[k] && !p->inputs[k]->constant && seen[p->inputs[k]->id] != mark) {
                seen[p->inputs[k]->id] = mark;
                stack[top++] = p->inputs[k];
            }
    }
    return lowest;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* Fills r from the rows and outputs in graph order. */
static oq_status build_result(const cmp *c, oq_compare_result *r, oq_err *err)
{
    const oq_graph *qg = c->qm->graph;
    int n_unpaired = 0;
    for (int i = 0; i < qg->n_nodes; i++)
        n_unpaired += qg->nodes[i]->n_outputs;
    r->tensors = calloc((size_t)c->n_rows + 1, sizeof *r->tensors);
    r->unmatched = calloc((size_t)n_unpaired + 1, sizeof *r->unmatched);
    r->outputs = calloc((size_t)c->n_out + 1, sizeof *r->outputs);
    int *tensor_of = malloc(((size_t)c->n_rows + 1) * sizeof *tensor_of);
    const oq_value **tensor_value = malloc(((size_t)c->n_rows + 1) * sizeof *tensor_value);
    const oq_value **stack = malloc(((size_t)qg->n_values + 1) * sizeof *stack);
    int *seen = calloc((size_t)qg->n_values + 1, sizeof *seen);
    oq_status st = OQ_OK;
    if (!r->tensors || !r->unmatched || !r->outputs || !tensor_of || !tensor_value || !stack || !seen) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < qg->n_nodes; i++) {
        const oq_node *n = qg->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            const oq_value *v = n->outputs[k];
            if (!v || v->constant)
                continue;
            int ri = c->row_of[v->id];
            const row *w = ri >= 0 ? &c->rows[ri] : NULL;
            if (w && !w->bad[0]) {
                tensor_of[ri] = r->n_tensors;
                tensor_value[r->n_tensors] = v;
                oq_compare_tensor *t = &r->tensors[r->n_tensors++];
                *t = (oq_compare_tensor){.match = w->match, .dtype = w->dtype, .samples = w->samples,
                                         .mismatched = w->mismatched, .elements = w->s.elements,
                                         .sqnr_db = sqnr_db(&w->s), .cosine = cosine(&w->s),
                                         .max_abs_error = w->s.elements ? w->s.max_err : NAN, .drop_db = NAN};
                r->n_mismatched += w->mismatched > 0;
                if (!(t->name = strdup(v->name)) || !(t->op_type = strdup(n->op_type)) ||
                    !(t->float_name = strdup(w->ref->name)))
                    st = oq_errf(err, OQ_ENOMEM, "out of memory");
            } else {
                if (w)
                    tensor_of[ri] = -1;
                oq_compare_unmatched *u = &r->unmatched[r->n_unmatched++];
                if (!(u->name = strdup(v->name)) || !(u->op_type = strdup(n->op_type)) ||
                    !(u->reason = dup_or_empty(w ? w->bad : "no float counterpart")))
                    st = oq_errf(err, OQ_ENOMEM, "out of memory");
            }
            if (st)
                goto done;
        }
    }
    for (int i = 0; i < r->n_tensors; i++) {
        oq_compare_tensor *t = &r->tensors[i];
        double before = ancestors_sqnr(c, r, tensor_of, tensor_value[i], stack, seen, i + 1);
        if (isfinite(before) && isfinite(t->sqnr_db))
            t->drop_db = before - t->sqnr_db;
    }
    for (int i = 0; i < c->n_out; i++) {
        const output_pair *o = &c->outs[i];
        oq_compare_output *m = &r->outputs[r->n_outputs++];
        *m = (oq_compare_output){.sqnr_db = sqnr_db(&o->s), .cosine = cosine(&o->s),
                                 .max_abs_error = o->s.elements ? o->s.max_err : NAN, .classifier = o->classifier,
                                 .top1_agree = o->agree, .top1_total = o->total};
        if (!(m->name = strdup(oq_session_output(c->qs, o->qi)->name))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto done;
        }
    }
done:
    free(tensor_of);
    free(tensor_value);
    free(stack);
    free(seen);
    return st;
}

oq_status oq_compare_models(const oq_model *fp32, const oq_model *quant, const oq_dataset *ds,
                            const oq_compare_options *opts, oq_compare_result **out, oq_err *err)
{
    *out = NULL;
    cmp c;
    oq_compare_result *r = calloc(1, sizeof *r);
    oq_status st = r ? cmp_init(&c, fp32, quant, opts, err) : oq_errf(err, OQ_ENOMEM, "out of memory");
    if (!r)
        return st;
    int64_t total = oq_dataset_count(ds);
    if (opts && opts->max_samples > 0 && opts->max_samples < total)
        total = opts->max_samples;
    for (int64_t s = 0; !st && s < total; s++)
        st = run_sample(&c, ds, s, err);
    r->samples = total;
    if (!st)
        st = build_result(&c, r, err);
    cmp_release(&c);
    if (st) {
        oq_compare_result_destroy(r);
        return st;
    }
    *out = r;
    return OQ_OK;
}

void oq_compare_result_destroy(oq_compare_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->tensors && i < r->n_tensors; i++) {
        free(r->tensors[i].name);
        free(r->tensors[i].op_type);
        free(r->tensors[i].float_name);
    }
    for (int i = 0; r->unmatched && i < r->n_unmatched; i++) {
        free(r->unmatched[i].name);
        free(r->unmatched[i].op_type);
        free(r->unmatched[i].reason);
    }
    for (int i = 0; r->outputs && i < r->n_outputs; i++)
        free(r->outputs[i].name);
    free(r->tensors);
    free(r->unmatched);
    free(r->outputs);
    free(r);
}

int oq_compare_first_drop(const oq_compare_result *r, double min_drop_db)
{
    for (int i = 0; i < r->n_tensors; i++)
        if (r->tensors[i].drop_db >= min_drop_db)
            return i;
    return -1;
}
