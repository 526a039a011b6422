/* fuse.c: finding elementwise chains in a graph and running them in one pass. */
#include "exec/fuse.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/ops_common.h"
#include "exec/vmath.h"
#include "cpu_dispatch.h"

/* ---- finding chains ------------------------------------------------------------ */

/* Readers of each value of g: node indices, one entry per reading input. */
typedef struct reader_index {
    int *start; /* [n_values + 1] */
    int *node;  /* [start[n_values]] */
} reader_index;

static bool index_readers(const oq_graph *g, reader_index *r)
{
    int nv = g->n_values;
    r->start = calloc((size_t)nv + 1, sizeof *r->start);
    int total = 0;
    for (int i = 0; i < g->n_nodes; i++) total += g->nodes[i]->n_inputs;
    r->node = malloc((size_t)(total ? total : 1) * sizeof *r->node);
    int *fill = calloc((size_t)(nv ? nv : 1), sizeof *fill);
    if (!r->start || !r->node || !fill) {
        free(fill);
        return false;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++) {
            const oq_value *v = g->nodes[i]->inputs[k];
            if (v && v->graph == g) r->start[v->id + 1]++;
        }
    for (int v = 0; v < nv; v++) r->start[v + 1] += r->start[v];
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++) {
            const oq_value *v = g->nodes[i]->inputs[k];
            if (v && v->graph == g) r->node[r->start[v->id] + fill[v->id]++] = i;
        }
    free(fill);
    return true;
}

/* v's value if it is a float constant with one element; *rank gets its rank. */
static bool scalar_const(const oq_value *v, float *f, int *rank)
{
    const oq_tensor *t = v ? v->constant : NULL;
    if (!t || t->dtype != OQ_DTYPE_FLOAT || oq_tensor_numel(t) != 1 || !t->data) return false;
    *f = *(const float *)t->data;
    if (t->rank > *rank) *rank = t->rank;
    return true;
}

/* The growing chain: its node list plus the values its registers hold. */
typedef struct grow {
    const oq_graph *g;
    const reader_index *ri;
    const bool *pinned;
    const bool *kept;
    const int64_t *opsets;
    const bool *taken;  /* [n_nodes] already in a chain */
    oq_fusion cur;
} grow;

/* The value step k computes. */
static const oq_value *step_value(const grow *w, int k) { return w->g->nodes[w->cur.nodes[k]]->outputs[0]; }

/* The value register r holds. */
static const oq_value *reg_value(const grow *w, int r)
{
    return r < OQ_FUSE_MAX_SRC ? w->cur.src[r] : step_value(w, r - OQ_FUSE_MAX_SRC);
}

/* Operand for value v: an existing register, a scalar constant (-1, value
 * in *k), or a new source appended to *n_src; -2 if none fits. */
static int operand(const grow *w, const oq_value *v, const oq_value **src, int *n_src, float *k, int *const_rank)
{
    if (!v) return -2;
    for (int r = 0; r < *n_src; r++)
        if (src[r] == v) return r;
    for (int i = 0; i < w->cur.n; i++)
        if (w->g->nodes[w->cur.nodes[i]]->outputs[0] == v) return OQ_FUSE_MAX_SRC + i;
    if (scalar_const(v, k, const_rank)) return -1;
    if (v->constant || *n_src == OQ_FUSE_MAX_SRC) return -2;
    src[*n_src] = v;
    return (*n_src)++;
}

/* Compiles node nd into a step of the chain; false if it cannot be one.
 * Operands that are neither registers nor scalar constants become new
 * sources in src / *n_src (a copy of the chain's, kept only if nd joins). */
static bool node_step(const grow *w, const oq_node *nd, int64_t opset, oq_ew_step *st, const oq_value **src,
                      int *n_src, int *const_rank)
{
    static const struct {
        const char *op;
        oq_ew_kind kind;
        int arity;
    } ops[] = {
        {"Add", OQ_EW_ADD, 2},      {"Sub", OQ_EW_SUB, 2},     {"Mul", OQ_EW_MUL, 2},
        {"Div", OQ_EW_DIV, 2},      {"Relu", OQ_EW_RELU, 1},   {"Sigmoid", OQ_EW_SIGMOID, 1},
        {"HardSigmoid", OQ_EW_HARD_SIGMOID, 1}, {"Clip", OQ_EW_CLIP, 1}, {"Erf", OQ_EW_ERF, 1},
        {"HardSwish", OQ_EW_HARD_SWISH, 1},
    };
    if (nd->domain[0] || nd->n_outputs != 1 || !nd->outputs[0] || nd->n_inputs < 1) return false;
    int o = 0, n_ops = (int)(sizeof ops / sizeof ops[0]);
    while (o < n_ops && strcmp(ops[o].op, nd->op_type)) o++;
    if (o == n_ops) return false;
    memset(st, 0, sizeof *st);
    st->kind = ops[o].kind;
    st->b = -1;
    if (ops[o].arity == 2) {
        if (nd->n_inputs != 2) return false;
        st->a = operand(w, nd->inputs[0], src, n_src, &st->k0, const_rank);
        st->b = operand(w, nd->inputs[1], src, n_src, &st->k0, const_rank);
        return st->a >= -1 && st->b >= -1 && (st->a >= 0 || st->b >= 0);
    }
    st->a = operand(w, nd->inputs[0], src, n_src, &st->k0, const_rank);
    if (st->a < 0) return false;
    switch (st->kind) {
    case OQ_EW_HARD_SIGMOID:
        st->k0 = oq_node_attr_float(nd, "alpha", 0.2f);
        st->k1 = oq_node_attr_float(nd, "beta", 0.5f);
        return nd->n_inputs == 1;
    case OQ_EW_CLIP:
        /* bounds: attributes before opset 11, optional constant inputs from 11 */
        st->k0 = -FLT_MAX, st->k1 = FLT_MAX;
        if (opset < 11) {
            st->k0 = oq_node_attr_float(nd, "min", -FLT_MAX);
            st->k1 = oq_node_attr_float(nd, "max", FLT_MAX);
            return nd->n_inputs == 1;
        }
        if (nd->n_inputs > 3) return false;
        if (nd->n_inputs > 1 && nd->inputs[1] && !scalar_const(nd->inputs[1], &st->k0, const_rank)) return false;
        if (nd->n_inputs > 2 && nd->inputs[2] && !scalar_const(nd->inputs[2], &st->k1, const_rank)) return false;
        return true;
    default:
        return nd->n_inputs == 1;
    }
}

static bool in_chain(const oq_fusion *f, int node)
{
    for (int k = 0; k < f->n; k++)
        if (f->nodes[k] == node) return true;
    return false;
}

/* Adds to the chain the lowest-index node after its last one that reads one
 * of its registers and compiles into a step; false if there is none. Node
 * indices grow along the chain, so when the chain runs at its last node's
 * turn every source has been computed. */
static bool add_next(grow *w)
{
    int best = -1, n_regs = OQ_FUSE_MAX_SRC + w->cur.n, after = w->cur.n ? w->cur.nodes[w->cur.n - 1] : -1;
    oq_ew_step best_st = {0};
    const oq_value *best_src[OQ_FUSE_MAX_SRC];
    int best_n_src = 0, best_rank = 0;
    for (int r = 0; r < n_regs; r++) {
        if (r >= w->cur.n_src && r < OQ_FUSE_MAX_SRC) continue;
        const oq_value *v = reg_value(w, r);
        for (int e = w->ri->start[v->id]; e < w->ri->start[v->id + 1]; e++) {
            int j = w->ri->node[e];
            if (j <= after || w->taken[j] || (best >= 0 && j >= best)) continue;
            oq_ew_step st;
            const oq_value *src[OQ_FUSE_MAX_SRC];
            memcpy(src, w->cur.src, sizeof src);
            int n_src = w->cur.n_src, rank = w->cur.const_rank;
            if (node_step(w, w->g->nodes[j], w->opsets[j], &st, src, &n_src, &rank)) {
                best = j, best_st = st, best_rank = rank, best_n_src = n_src;
                memcpy(best_src, src, sizeof best_src);
            }
        }
    }
    if (best < 0) return false;
    w->cur.nodes[w->cur.n] = best;
    w->cur.steps[w->cur.n++] = best_st;
    memcpy(w->cur.src, best_src, sizeof best_src);
    w->cur.n_src = best_n_src;
    w->cur.const_rank = best_rank;
    return true;
}

/* True when only the newest step's value leaves the chain (every other value
 * the chain computes is read by chain nodes alone) and every source lives
 * until the chain runs at its last node: its last reader is a chain node or
 * comes after that node, or it is never freed (graph inputs and outputs). */
static bool closed(const grow *w)
{
    int last = w->cur.nodes[w->cur.n - 1];
    for (int r = 0; r < w->cur.n_src; r++) {
        const oq_value *v = w->cur.src[r];
        int m = -1;
        for (int e = w->ri->start[v->id]; e < w->ri->start[v->id + 1]; e++)
            if (w->ri->node[e] > m) m = w->ri->node[e];
        if (v->producer && !w->kept[v->id] && m < last && !in_chain(&w->cur, m)) return false;
    }
    for (int k = 0; k + 1 < w->cur.n; k++) {
        const oq_value *v = step_value(w, k);
        if (w->pinned[v->id]) return false;
        for (int e = w->ri->start[v->id]; e < w->ri->start[v->id + 1]; e++)
            if (!in_chain(&w->cur, w->ri->node[e])) return false;
    }
    return true;
}

/* Grows the longest closed chain from src into *best: of at least two
 * nodes, or of one node reading src alone (which a Conv or a
 * DequantizeLinear can run as its epilogue). */
static bool grow_from(grow *w, const oq_value *src, oq_fusion *best)
{
    memset(&w->cur, 0, sizeof w->cur);
    w->cur.src[0] = src;
    w->cur.n_src = 1;
    best->n = 0;
    while (w->cur.n < OQ_FUSE_MAX_NODES && add_next(w)) {
        if ((w->cur.n >= 2 || w->cur.n_src == 1) && closed(w)) {
            *best = w->cur;
            best->dst = step_value(w, w->cur.n - 1);
        }
    }
    return best->n >= 1;
}

bool oq_fuse_find(const oq_graph *g, const bool *pinned, const bool *kept, const int64_t *opsets, const bool *held,
                  oq_fusion **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    reader_index ri = {0};
    bool *taken = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *taken);
    bool ok = taken && index_readers(g, &ri);
    if (taken) memcpy(taken, held, (size_t)g->n_nodes * sizeof *taken);
    grow w = {g, &ri, pinned, kept, opsets, taken, {0}};
    int cap = 0;
    /* first sources: graph inputs, then every node output in graph order */
    for (int i = -g->n_inputs; ok && i < g->n_nodes; i++) {
        int n_vals = i < 0 ? 1 : g->nodes[i]->n_outputs;
        for (int k = 0; k < n_vals; k++) {
            const oq_value *v = i < 0 ? g->inputs[g->n_inputs + i] : g->nodes[i]->outputs[k];
            if (v && v->constant) continue;
            oq_fusion f;
            if (!v || !grow_from(&w, v, &f)) continue;
            if (*n_out == cap) {
                cap = cap ? 2 * cap : 16;
                oq_fusion *nf = realloc(*out, (size_t)cap * sizeof *nf);
                if (!nf) {
                    ok = false;
                    break;
                }
                *out = nf;
            }
            (*out)[(*n_out)++] = f;
            for (int j = 0; j < f.n; j++) taken[f.nodes[j]] = true;
        }
    }
    free(taken);
    free(ri.start);
    free(ri.node);
    if (!ok) {
        free(*out);
        *out = NULL;
        *n_out = 0;
    }
    return ok;
}

/* ---- running a chain --------------------------------------------------------------
 * Each step is the same float expression as the separate kernel's, so fused
 * and unfused results agree bit for bit. */

enum { BLK = 256 };

#define EW_BINARY(OP)                                                         \
    do {                                                                      \
        if (a && b)                                                           \
            for (int64_t i = 0; i < n; i++) d[i] = a[i] OP b[i];              \
        else if (a)                                                           \
            for (int64_t i = 0; i < n; i++) d[i] = a[i] OP k0;                \
        else                                                                  \
            for (int64_t i = 0; i < n; i++) d[i] = k0 OP b[i];                \
    } while (0)

/* reg[r] points at the current block of register r (see oq_ew_step). Cloned
 * for wider vectors; the operations, and so the results, are the same. */
OQ_CLONED(step_run, (const oq_ew_step *s, float *restrict d, const float *const *reg, int64_t n), (s, d, reg, n))
{
    const float *a = s->a >= 0 ? reg[s->a] : NULL, *b = s->b >= 0 ? reg[s->b] : NULL;
    const float k0 = s->k0, k1 = s->k1;
    switch (s->kind) {
    case OQ_EW_ADD: EW_BINARY(+); break;
    case OQ_EW_SUB: EW_BINARY(-); break;
    case OQ_EW_MUL: EW_BINARY(*); break;
    case OQ_EW_DIV: EW_BINARY(/); break;
    case OQ_EW_RELU:
        for (int64_t i = 0; i < n; i++) d[i] = a[i] > 0.0f ? a[i] : 0.0f;
        break;
    case OQ_EW_SIGMOID:
        for (int64_t i = 0; i < n; i++) d[i] = oq_vsigmoidf(a[i]);
        break;
    case OQ_EW_ERF:
        for (int64_t i = 0; i < n; i++) d[i] = oq_verff(a[i]);
        break;
    case OQ_EW_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) d[i] = oq_max_or(oq_min_or(k0 * a[i] + k1, 1.0f), 0.0f);
        break;
    case OQ_EW_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) d[i] = a[i] * oq_max_or(oq_min_or(a[i] / 6.0f + 0.5f, 1.0f), 0.0f);
        break;
    case OQ_EW_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float t = a[i] < k0 ? k0 : a[i];
            d[i] = t > k1 ? k1 : t;
        }
        break;
    case OQ_EW_KIND_COUNT: break;
    }
}

#define EW_BINARY_INPLACE(OP)                                                 \
    do {                                                                      \
        if (s->a == 0 && s->b == 0)                                           \
            for (int64_t i = 0; i < n; i++) y[i] = y[i] OP y[i];              \
        else if (s->a == 0)                                                   \
            for (int64_t i = 0; i < n; i++) y[i] = y[i] OP k0;                \
        else                                                                  \
            for (int64_t i = 0; i < n; i++) y[i] = k0 OP y[i];                \
    } while (0)

/* y[i] = step(y[i]) for a step whose operands are source 0 and constants:
 * step_run's expressions, read and written through the one pointer y, so a
 * one-step epilogue (a Clip after a Conv) needs no copy of its input. */
OQ_CLONED(step_run_inplace, (const oq_ew_step *s, float *y, int64_t n), (s, y, n))
{
    const float k0 = s->k0, k1 = s->k1;
    switch (s->kind) {
    case OQ_EW_ADD: EW_BINARY_INPLACE(+); break;
    case OQ_EW_SUB: EW_BINARY_INPLACE(-); break;
    case OQ_EW_MUL: EW_BINARY_INPLACE(*); break;
    case OQ_EW_DIV: EW_BINARY_INPLACE(/); break;
    case OQ_EW_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case OQ_EW_SIGMOID:
        for (int64_t i = 0; i < n; i++) y[i] = oq_vsigmoidf(y[i]);
        break;
    case OQ_EW_ERF:
        for (int64_t i = 0; i < n; i++) y[i] = oq_verff(y[i]);
        break;
    case OQ_EW_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) y[i] = oq_max_or(oq_min_or(k0 * y[i] + k1, 1.0f), 0.0f);
        break;
    case OQ_EW_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] * oq_max_or(oq_min_or(y[i] / 6.0f + 0.5f, 1.0f), 0.0f);
        break;
    case OQ_EW_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float t = y[i] < k0 ? k0 : y[i];
            y[i] = t > k1 ? k1 : t;
        }
        break;
    case OQ_EW_KIND_COUNT: break;
    }
}

/* True when f is x * sigmoid(x) of its source (SiLU as exporters write it:
 * a Sigmoid, then a Mul of its input by its output, in either order). */
static bool fusion_is_silu(const oq_fusion *f)
{
    const oq_ew_step *s = f->steps;
    const int sig = OQ_FUSE_MAX_SRC; /* the register of step 0 */
    return f->n == 2 && s[0].kind == OQ_EW_SIGMOID && s[0].a == 0 && s[1].kind == OQ_EW_MUL &&
           ((s[1].a == 0 && s[1].b == sig) || (s[1].a == sig && s[1].b == 0));
}

/* y[i] = x[i] * sigmoid(x[i]) for i < n, y overlapping no x: the two steps'
 * expressions in one pass (a product does not depend on the order of its
 * operands, so the bits are those of the two steps). */
OQ_CLONED(silu_run, (float *restrict y, const float *restrict x, int64_t n), (y, x, n))
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * oq_vsigmoidf(x[i]);
}

/* The same in place. */
OQ_CLONED(silu_run_inplace, (float *y, int64_t n), (y, n))
{
    for (int64_t i = 0; i < n; i++) y[i] = y[i] * oq_vsigmoidf(y[i]);
}

void oq_fusion_run_inplace(const oq_fusion *f, float *y, int64_t n)
{
    if (fusion_is_silu(f)) {
        silu_run_inplace(y, n);
        return;
    }
    if (f->n == 1) {
        step_run_inplace(&f->steps[0], y, n);
        return;
    }
    float src[BLK] __attribute__((aligned(64)));
    const float *x[1] = {src};
    for (int64_t i0 = 0; i0 < n; i0 += BLK) {
        int64_t len = n - i0 < BLK ? n - i0 : BLK;
        memcpy(src, y + i0, (size_t)len * sizeof(float));
        oq_fusion_run(f, y + i0, x, 0, len);
    }
}

void oq_fusion_run(const oq_fusion *f, float *y, const float *const *x, int64_t begin, int64_t end)
{
    if (fusion_is_silu(f)) {
        silu_run(y + begin, x[0] + begin, end - begin);
        return;
    }
    float buf[OQ_FUSE_MAX_NODES - 1][BLK] __attribute__((aligned(64)));
    const float *reg[OQ_FUSE_MAX_SRC + OQ_FUSE_MAX_NODES] = {0};
    step_run_fn *run = step_run_pick();
    for (int64_t i0 = begin; i0 < end; i0 += BLK) {
        int64_t n = end - i0 < BLK ? end - i0 : BLK;
        for (int r = 0; r < f->n_src; r++) reg[r] = x[r] + i0;
        for (int k = 0; k < f->n; k++) {
            float *d = k == f->n - 1 ? y + i0 : buf[k];
            run(&f->steps[k], d, reg, n);
            reg[OQ_FUSE_MAX_SRC + k] = d;
        }
    }
}
