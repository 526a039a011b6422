/* sensitivity.c: the sensitivity analysis (see oq_sensitivity.h): every
 * candidate quantized alone, its outputs against float, re-running only what
 * the candidate changes.
 *
 * For candidate c the pipeline plans and rewrites a "node alone" model Q_c.
 * A node of Q_c is clean when the float graph has the node that writes its
 * outputs, with the same op, attributes, opset and inputs, every input clean
 * or an identical constant: it computes what the float run computed. Clean
 * nodes move to the front of Q_c's node order (they read clean values only,
 * so the order stays topological) and are never run; the values the others
 * read from them, the seeds, come from the float run by name. The float run
 * keeps only seeds of some candidate (and the outputs), for one chunk of
 * samples at a time; every chunk rebuilds the candidates' models. */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/sensitivity_json.h"
#include "onnxq/oq_dataset.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_hash.h"
#include "onnxq/oq_pipeline.h"
#include "onnxq/oq_sensitivity.h"
#include "quant/match.h"

#define DEFAULT_CACHE_BYTES ((size_t)1 << 30)

/* ---- which nodes of a "node alone" model compute what the float graph does --------- */

static bool tensor_equal(const oq_tensor *a, const oq_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank || memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]))
        return false;
    int64_t n = oq_tensor_numel(a);
    if (a->dtype == OQ_DTYPE_STRING) {
        char *const *x = a->data, *const *y = b->data;
        for (int64_t i = 0; i < n; i++)
            if (strcmp(x[i] ? x[i] : "", y[i] ? y[i] : ""))
                return false;
        return true;
    }
    size_t bytes = oq_dtype_storage(a->dtype, n);
    return bytes == 0 || (a->data && b->data && !memcmp(a->data, b->data, bytes));
}

/* Attributes that are equal for sure; graphs and the kinds kept as raw bytes
 * count as different (their node is simply re-run). */
static bool attr_equal(const oq_attr *a, const oq_attr *b)
{
    if (strcmp(a->name, b->name) || a->type != b->type)
        return false;
    switch (a->type) {
    case OQ_ATTR_FLOAT: return !memcmp(&a->f, &b->f, sizeof a->f);
    case OQ_ATTR_INT: return a->i == b->i;
    case OQ_ATTR_STRING: return a->s_len == b->s_len && !memcmp(a->s, b->s, a->s_len);
    case OQ_ATTR_TENSOR: return a->t && b->t && tensor_equal(a->t, b->t);
    case OQ_ATTR_FLOATS: return a->n == b->n && (!a->n || !memcmp(a->floats, b->floats, (size_t)a->n * sizeof *a->floats));
    case OQ_ATTR_INTS: return a->n == b->n && (!a->n || !memcmp(a->ints, b->ints, (size_t)a->n * sizeof *a->ints));
    case OQ_ATTR_STRINGS:
        if (a->n != b->n)
            return false;
        for (int i = 0; i < a->n; i++)
            if (strcmp(a->strings[i], b->strings[i]))
                return false;
        return true;
    default: return false;
    }
}

/* Whether node q (of the quantized graph, clean[] by its value ids so far)
 * computes what float node f computes. */
static bool node_matches(const oq_node *q, const oq_node *f, const bool *clean)
{
    if (q->kind != f->kind || strcmp(q->op_type, f->op_type) || strcmp(q->domain, f->domain) || q->opset != f->opset ||
        q->n_inputs != f->n_inputs || q->n_outputs != f->n_outputs || q->n_attrs != f->n_attrs)
        return false;
    for (int k = 0; k < q->n_outputs; k++) {
        const oq_value *a = q->outputs[k], *b = f->outputs[k];
        if (!a != !b || (a && strcmp(a->name, b->name)))
            return false;
    }
    for (int k = 0; k < q->n_inputs; k++) {
        const oq_value *a = q->inputs[k], *b = f->inputs[k];
        if (!a != !b)
            return false;
        if (!a)
            continue;
        if (strcmp(a->name, b->name) || !a->constant != !b->constant)
            return false;
        if (a->constant ? !tensor_equal(a->constant, b->constant) : !clean[a->id])
            return false;
    }
    for (int k = 0; k < q->n_attrs; k++)
        if (!attr_equal(&q->attrs[k], &f->attrs[k]))
            return false;
    return true;
}

/* A "node alone" model ready to run from the float run's values. */
typedef struct alone {
    oq_quantized *q;
    int split;          /* q's nodes [0, split) are not run, [split, n) are */
    int n_seeds;
    oq_value **seeds;   /* [n_seeds] values of q the run reads from before split */
    int *seed_ref;      /* [n_seeds] the float graph's ids of the same values */
    bool *observed;     /* [n_values of q]: the seeds, so that no fused chain hides one */
} alone;

static void alone_release(alone *a)
{
    oq_quantized_destroy(a->q);
    free(a->seeds);
    free(a->seed_ref);
    free(a->observed);
    memset(a, 0, sizeof *a);
}

/* What alone_split works with: per node of q (by its position before the
 * reordering), whether it runs and the values its subgraphs read. */
typedef struct splitter {
    const oq_graph *g, *ref;
    const bool *kept;    /* [n_values of ref] what the float run keeps */
    int *producer;       /* [n_values of g] position of the node writing it, -1 for inputs and constants */
    bool *clean;         /* [n_values of g] computes what the float graph does */
    bool *run;           /* [n_nodes] */
    int *n_implicit;     /* [n_nodes] */
    oq_value ***implicit; /* [n_nodes] values of g that the node's subgraphs read */
} splitter;

static bool ref_keeps(const splitter *sp, const oq_value *v)
{
    const oq_value *r = oq_graph_find_local(sp->ref, v->name);
    return r && sp->kept[r->id];
}

/* A value the nodes that run read from the others: a seed. */
static bool is_seed(const splitter *sp, const oq_value *v)
{
    return v && !v->constant && v->graph == sp->g && (sp->producer[v->id] < 0 || !sp->run[sp->producer[v->id]]);
}

/* Marks every node reading what a running node computes as running, then the
 * producers of seeds the float run does not keep; again until nothing
 * changes. Returns whether anything changed in the second half. */
static bool spread_run(splitter *sp)
{
    const oq_graph *g = sp->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        for (int k = 0; !sp->run[i] && k < n->n_inputs + sp->n_implicit[i]; k++) {
            const oq_value *v = k < n->n_inputs ? n->inputs[k] : sp->implicit[i][k - n->n_inputs];
            sp->run[i] = v && v->graph == g && sp->producer[v->id] >= 0 && sp->run[sp->producer[v->id]];
        }
    }
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        for (int k = 0; sp->run[i] && k < n->n_inputs + sp->n_implicit[i]; k++) {
            const oq_value *v = k < n->n_inputs ? n->inputs[k] : sp->implicit[i][k - n->n_inputs];
            if (is_seed(sp, v) && sp->producer[v->id] >= 0 && !ref_keeps(sp, v)) {
                sp->run[sp->producer[v->id]] = true;
                changed = true;
            }
        }
    }
    for (int j = 0; j < g->n_outputs; j++) {
        const oq_value *v = g->outputs[j];
        if (is_seed(sp, v) && sp->producer[v->id] >= 0 && !ref_keeps(sp, v)) {
            sp->run[sp->producer[v->id]] = true;
            changed = true;
        }
    }
    return changed;
}

/* Adds v to a's seeds unless it is not one or is there already. */
static oq_status add_seed(alone *a, const splitter *sp, oq_value *v, oq_err *err)
{
    if (!is_seed(sp, v) || a->observed[v->id])
        return OQ_OK;
    const oq_value *r = oq_graph_find_local(sp->ref, v->name);
    if (!r || r->constant || !sp->kept[r->id])
        return oq_errf(err, OQ_EINVAL, "value '%s' of the quantized model is not kept from the float run", v->name);
    a->observed[v->id] = true;
    a->seeds[a->n_seeds] = v;
    a->seed_ref[a->n_seeds++] = r->id;
    return OQ_OK;
}

/* Decides which of q's nodes run (see spread_run; at first those that are
 * not clean), moves the others first and lists the seeds. */
static oq_status alone_split(alone *a, const oq_graph *ref, const bool *kept, oq_err *err)
{
    oq_graph *g = a->q->model->graph;
    int nv = g->n_values, nn = g->n_nodes;
    splitter sp = {.g = g, .ref = ref, .kept = kept};
    sp.producer = malloc(((size_t)nv + 1) * sizeof *sp.producer);
    sp.clean = calloc((size_t)nv + 1, sizeof *sp.clean);
    sp.run = calloc((size_t)nn + 1, sizeof *sp.run);
    sp.n_implicit = calloc((size_t)nn + 1, sizeof *sp.n_implicit);
    sp.implicit = calloc((size_t)nn + 1, sizeof *sp.implicit);
    oq_node **order = malloc(((size_t)nn + 1) * sizeof *order);
    a->observed = calloc((size_t)nv + 1, sizeof *a->observed);
    a->seeds = malloc(((size_t)nv + 1) * sizeof *a->seeds);
    a->seed_ref = malloc(((size_t)nv + 1) * sizeof *a->seed_ref);
    oq_status st = OQ_OK;
    if (!sp.producer || !sp.clean || !sp.run || !sp.n_implicit || !sp.implicit || !order || !a->observed ||
        !a->seeds || !a->seed_ref) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int v = 0; v < nv; v++)
        sp.producer[v] = -1;
    for (int i = 0; i < g->n_inputs; i++)
        sp.clean[g->inputs[i]->id] = true;
    for (int i = 0; !st && i < nn; i++) {
        oq_node *n = g->nodes[i];
        const oq_value *out0 = NULL;
        for (int k = 0; k < n->n_outputs && !out0; k++)
            out0 = n->outputs[k];
        const oq_value *r = out0 ? oq_graph_find_local(ref, out0->name) : NULL;
        bool same = r && r->producer && node_matches(n, r->producer, sp.clean);
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k]) {
                sp.clean[n->outputs[k]->id] = same;
                sp.producer[n->outputs[k]->id] = i;
            }
        sp.run[i] = !same;
        oq_err e = {0}; /* NULL is also "none": a failure shows in e */
        sp.implicit[i] = oq_node_implicit_inputs(n, &sp.n_implicit[i], &e);
        if (e.status)
            st = oq_errf(err, e.status, "%s", e.msg);
    }
    while (!st && spread_run(&sp))
        ;
    if (st)
        goto done;
    /* the nodes that do not run first, then the others, each in their order */
    int at = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nn; i++)
            if (sp.run[i] == (pass == 1))
                order[at++] = g->nodes[i];
    a->split = 0;
    for (int i = 0; i < nn; i++)
        a->split += !sp.run[i];
    for (int i = 0; !st && i < nn; i++) {
        oq_node *n = g->nodes[i];
        for (int k = 0; sp.run[i] && !st && k < n->n_inputs + sp.n_implicit[i]; k++)
            st = add_seed(a, &sp, k < n->n_inputs ? n->inputs[k] : sp.implicit[i][k - n->n_inputs], err);
    }
    for (int j = 0; !st && j < g->n_outputs; j++)
        st = add_seed(a, &sp, g->outputs[j], err);
    memcpy(g->nodes, order, (size_t)nn * sizeof *order);
done:
    for (int i = 0; sp.implicit && i < nn; i++)
        free(sp.implicit[i]);
    free(sp.implicit);
    free(sp.n_implicit);
    free(sp.producer);
    free(sp.clean);
    free(sp.run);
    free(order);
    return st;
}

/* ---- multiply-adds --------------------------------------------------------------------- */

/* Multiply-adds per output element of float Conv/MatMul/Gemm n (its
 * reduction length), from its constant weight or, for two activations, from
 * A's last axis as last_axis (by value id) saw it; 0 when unknown. */
static int64_t reduction_length(const oq_node *n, const int64_t *last_axis)
{
    const oq_value *a = oq_node_input(n, 0), *b = oq_node_input(n, 1);
    const oq_tensor *w = b ? b->constant : NULL;
    switch (n->kind) {
    case OQ_OP_CONV: return w && w->rank >= 1 && w->dims[0] > 0 ? oq_tensor_numel(w) / w->dims[0] : 0;
    case OQ_OP_MATMUL:
        if (w)
            return w->rank >= 2 ? w->dims[w->rank - 2] : w->rank == 1 ? w->dims[0] : 0;
        return a ? last_axis[a->id] : 0;
    case OQ_OP_GEMM:
        if (w && w->rank == 2)
            return w->dims[oq_node_attr_int(n, "transB", 0) ? 1 : 0];
        return a && !oq_node_attr_int(n, "transA", 0) ? last_axis[a->id] : 0;
    default: return 0;
    }
}

/* Multiply-adds of float Conv/ConvTranspose/MatMul/Gemm/LSTM/GRU/RNN n
 * writing out_numel elements, from the latest last axis and element count (by
 * value id) of its inputs: each output element sums reduction_length
 * products, each input element of a ConvTranspose meets C_out/group x kernel
 * weights, and each step of a recurrent op (input elements / input size)
 * multiplies its input and its state by every gate row of W and R. */
static int64_t node_macs(const oq_node *n, int64_t out_numel, const int64_t *last_axis, const int64_t *numel)
{
    if (oq_is_recurrent(n->kind)) {
        const oq_value *x = oq_node_input(n, 0), *wv = oq_node_input(n, 1), *rv = oq_node_input(n, 2);
        const oq_tensor *w = wv ? wv->constant : NULL, *r = rv ? rv->constant : NULL;
        if (!x || !w || !r || w->rank != 3 || r->rank != 3 || w->dims[2] <= 0)
            return 0;
        return numel[x->id] / w->dims[2] * w->dims[0] * w->dims[1] * (w->dims[2] + r->dims[2]);
    }
    if (n->kind == OQ_OP_CONV_TRANSPOSE) {
        const oq_value *x = oq_node_input(n, 0), *b = oq_node_input(n, 1);
        const oq_tensor *w = b ? b->constant : NULL;
        return x && w && w->rank >= 1 && w->dims[0] > 0 ? numel[x->id] * (oq_tensor_numel(w) / w->dims[0]) : 0;
    }
    return out_numel * reduction_length(n, last_axis);
}

static bool weighted(const oq_node *n)
{
    return n->kind == OQ_OP_CONV || n->kind == OQ_OP_CONV_TRANSPOSE || n->kind == OQ_OP_MATMUL ||
           n->kind == OQ_OP_GEMM || oq_is_recurrent(n->kind);
}

/* The first output n writes (a recurrent op may leave out Y), NULL when none. */
static const oq_value *first_output(const oq_node *n)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k])
            return n->outputs[k];
    return NULL;
}

/* ---- the analysis ---------------------------------------------------------------------- */

typedef struct analysis analysis;

/* One analysed candidate of this shard. */
typedef struct cand {
    int node;              /* position in the planned graph */
    int index;             /* among the analysed candidates of the model */
    oq_output_sums *sums;  /* [n_out] over the samples so far */
} cand;

/* A worker of the float runs. */
typedef struct float_worker {
    analysis *a;
    oq_session *s;
    int64_t sample;        /* the one running */
    oq_tensor *ins;        /* [n_in] */
    int64_t *last_axis;    /* [n_values] of the latest tensor of each value */
    int64_t *numel;        /* [n_values] its element count */
    int64_t *macs;         /* [n_nodes] over the current block */
    oq_err err;            /* a copy that failed in the observer */
} float_worker;

struct analysis {
    oq_pipeline *p;
    const oq_graph *ref;          /* the planned float graph */
    oq_dataset *ds;
    int64_t total;                /* samples analysed */
    int n_in, n_out, n_values;
    int n_all;                    /* analysed candidates of the model */
    oq_plan_override *floats;     /* [n_all] every one kept float; candidate i is floats[i] */
    int *cand_node;               /* [n_all] their positions in the planned graph */
    int n_sel;
    cand *sel;                    /* [n_sel] this shard's */
    bool *keep;                   /* [n_values]: what the float run keeps for the "node alone" runs */
    bool *observed;               /* [n_values]: keep, and what the multiply-add counts read */
    int *macs_node;               /* [n_values]: position of the Conv/MatMul/Gemm writing it as output 0, or -1 */
    int64_t *macs;                /* [n_nodes] summed over every sample */
    char (*hashes)[65];           /* [total] of each sample */
    int64_t chunk_begin, chunk_cap;
    oq_tensor *cache;             /* [chunk_cap * n_values] the kept values of the chunk's samples */
    oq_tensor *ref_out;           /* [chunk_cap * n_out] their float outputs */
    int n_workers, threads_each;
    float_worker *fw;             /* [n_workers] */
    pthread_mutex_t stages;       /* the pipeline's stages run one at a time */
};

/* Observer of the float runs: keeps what the analysis needs and counts multiply-adds. */
static void float_observe(void *user, const oq_value *v, const oq_tensor *t)
{
    float_worker *fw = user;
    analysis *a = fw->a;
    if (v->graph != a->ref || v->id >= a->n_values)
        return;
    fw->last_axis[v->id] = t->rank ? t->dims[t->rank - 1] : 1;
    fw->numel[v->id] = oq_tensor_numel(t);
    if (a->keep[v->id] && !fw->err.status) {
        oq_tensor *slot = &a->cache[(fw->sample - a->chunk_begin) * a->n_values + v->id];
        oq_tensor_release(slot);
        if (oq_tensor_copy(slot, t, &fw->err))
            memset(slot, 0, sizeof *slot);
    }
    int node = a->macs_node[v->id];
    if (node >= 0)
        fw->macs[node] += node_macs(a->ref->nodes[node], oq_tensor_numel(t), fw->last_axis, fw->numel);
}

static oq_status float_begin(void *user, int w, int64_t b, oq_err *err)
{
    (void)b;
    (void)err;
    analysis *a = user;
    memset(a->fw[w].macs, 0, (size_t)a->ref->n_nodes * sizeof *a->fw[w].macs);
    return OQ_OK;
}

/* Runs the float model on sample chunk_begin + i, keeping its values and outputs. */
static oq_status float_sample(void *user, int w, int64_t i, oq_err *err)
{
    analysis *a = user;
    float_worker *fw = &a->fw[w];
    int64_t s = a->chunk_begin + i;
    fw->sample = s;
    oq_status st = oq_dataset_load(a->ds, s, fw->ins, err);
    if (st)
        return oq_err_context(err, "sample %lld", (long long)s);
    oq_dataset_sample_hash(a->ds, fw->ins, a->hashes[s]);
    for (int j = 0; !st && j < a->n_in; j++) {
        const oq_value *v = oq_session_input(fw->s, j);
        fw->last_axis[v->id] = fw->ins[j].rank ? fw->ins[j].dims[fw->ins[j].rank - 1] : 1;
        fw->numel[v->id] = oq_tensor_numel(&fw->ins[j]);
        oq_tensor *slot = &a->cache[i * a->n_values + v->id];
        oq_tensor_release(slot);
        if (a->keep[v->id] && (st = oq_tensor_copy(slot, &fw->ins[j], err)))
            memset(slot, 0, sizeof *slot);
    }
    memset(&fw->err, 0, sizeof fw->err);
    if (!st)
        st = oq_session_run(fw->s, fw->ins, &a->ref_out[i * a->n_out], err);
    if (!st && fw->err.status)
        st = oq_errf(err, fw->err.status, "%s", fw->err.msg);
    for (int j = 0; j < a->n_in; j++)
        oq_tensor_release(&fw->ins[j]);
    return st ? oq_err_context(err, "float run of sample %lld", (long long)s) : OQ_OK;
}

static oq_status float_fold(void *user, int w, int64_t b, oq_err *err)
{
    (void)b;
    (void)err;
    analysis *a = user;
    for (int i = 0; i < a->ref->n_nodes; i++)
        a->macs[i] += a->fw[w].macs[i];
    return OQ_OK;
}

/* Empties the chunk's values. */
static void chunk_clear(analysis *a)
{
    for (int64_t i = 0; a->cache && i < a->chunk_cap * a->n_values; i++)
        oq_tensor_release(&a->cache[i]);
    for (int64_t i = 0; a->ref_out && i < a->chunk_cap * a->n_out; i++)
        oq_tensor_release(&a->ref_out[i]);
}

/* Builds candidate c's "node alone" model and readies its run. */
static oq_status alone_build(analysis *a, const cand *c, alone *out, oq_err *err)
{
    memset(out, 0, sizeof *out);
    oq_plan_override *ov = malloc(((size_t)a->n_all + 1) * sizeof *ov);
    if (!ov)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < a->n_all; i++)
        if (i != c->index)
            ov[n++] = a->floats[i];
    oq_plan *plan = NULL;
    pthread_mutex_lock(&a->stages);
    oq_status st = oq_pipeline_plan(a->p, n, ov, &plan, err);
    if (!st)
        st = oq_pipeline_rewrite(a->p, plan, false, &out->q, err);
    pthread_mutex_unlock(&a->stages);
    oq_plan_destroy(plan);
    free(ov);
    if (!st)
        st = alone_split(out, a->ref, a->keep, err);
    if (st) {
        alone_release(out);
        return oq_err_context(err, "node '%s' alone", a->floats[c->index].node);
    }
    return OQ_OK;
}

/* Runs candidate sel[i]'s model over the chunk's samples, adding to its sums. */
static oq_status cand_run(void *user, int w, int64_t i, oq_err *err)
{
    (void)w;
    analysis *a = user;
    cand *c = &a->sel[i];
    alone al;
    oq_session *s = NULL;
    oq_status st = alone_build(a, c, &al, err);
    if (st)
        return st;
    const oq_graph *g = al.q->model->graph;
    oq_exec_options eo = {.threads = a->threads_each, .observed = al.observed};
    st = oq_session_create(&s, al.q->model, &eo, err);
    if (!st && g->n_outputs != a->n_out)
        st = oq_errf(err, OQ_EINVAL, "the quantized model has %d outputs, the float one %d", g->n_outputs, a->n_out);
    int64_t n_samples = a->total - a->chunk_begin < a->chunk_cap ? a->total - a->chunk_begin : a->chunk_cap;
    for (int64_t k = 0; !st && k < n_samples; k++) {
        oq_run_state *rs = NULL;
        const oq_tensor *row = &a->cache[k * a->n_values];
        st = oq_run_state_create(&rs, s, err);
        for (int j = 0; !st && j < al.n_seeds; j++)
            st = oq_run_state_set(rs, al.seeds[j], &row[al.seed_ref[j]], err);
        if (!st)
            st = oq_session_run_steps(s, rs, al.split, g->n_nodes, err);
        for (int j = 0; !st && j < a->n_out; j++) {
            const oq_tensor *ref = &a->ref_out[k * a->n_out + j], *q = oq_run_state_get(rs, g->outputs[j]);
            if (!q)
                st = oq_errf(err, OQ_EINVAL, "output '%s' of the quantized model was not computed", g->outputs[j]->name);
            else
                oq_output_sums_add(&c->sums[j], ref, q);
        }
        oq_run_state_destroy(rs);
        if (st)
            oq_err_context(err, "node '%s' alone, sample %lld", a->floats[c->index].node,
                           (long long)(a->chunk_begin + k));
    }
    oq_session_destroy(s);
    alone_release(&al);
    return st;
}

static oq_status nothing_to_begin(void *user, int w, int64_t b, oq_err *err)
{
    (void)user, (void)w, (void)b, (void)err;
    return OQ_OK;
}

/* ---- setting up ------------------------------------------------------------------------ */

/* The analysed candidates of p's default plan (named uniquely), and this shard's. */
static oq_status find_candidates(analysis *a, int shard_index, int shard_count, oq_err *err)
{
    oq_plan *base = NULL;
    oq_status st = oq_pipeline_plan(a->p, 0, NULL, &base, err);
    if (st)
        return st;
    const oq_graph *g = a->ref;
    a->floats = calloc((size_t)g->n_nodes + 1, sizeof *a->floats);
    a->cand_node = calloc((size_t)g->n_nodes + 1, sizeof *a->cand_node);
    a->sel = calloc((size_t)g->n_nodes + 1, sizeof *a->sel);
    if (!a->floats || !a->cand_node || !a->sel)
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; !st && i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        if (!base->nodes[i].candidate || base->nodes[i].action == OQ_ACTION_KEEP_FLOAT)
            continue;
        for (int k = 0; !st && k < g->n_nodes; k++)
            if (k != i && !strcmp(g->nodes[k]->name, n->name))
                st = oq_errf(err, OQ_EUNSUPPORTED,
                             "node '%s' (%s): another node has the same name; the analysis keeps nodes float by name",
                             n->name, n->op_type);
        if (!st && !n->name[0])
            st = oq_errf(err, OQ_EUNSUPPORTED, "a %s node has no name; the analysis keeps nodes float by name",
                         n->op_type);
        if (st)
            break;
        if (a->n_all % shard_count == shard_index - 1)
            a->sel[a->n_sel++] = (cand){.node = i, .index = a->n_all};
        a->cand_node[a->n_all] = i;
        a->floats[a->n_all++] = (oq_plan_override){n->name, OQ_POLICY_FLOAT, NULL};
    }
    oq_plan_destroy(base);
    for (int i = 0; !st && i < a->n_sel; i++)
        if (!(a->sel[i].sums = calloc((size_t)a->n_out + 1, sizeof *a->sel[i].sums)))
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
    return st;
}

/* What the float run keeps: the graph's inputs and outputs and every value
 * computed before a selected candidate and read at or after it (what its
 * "node alone" model starts from); and what it shows the observer. */
static oq_status plan_keep(analysis *a, oq_err *err)
{
    const oq_graph *g = a->ref;
    int nv = g->n_values;
    int *first = malloc(((size_t)nv + 1) * sizeof *first), *last = malloc(((size_t)nv + 1) * sizeof *last);
    a->keep = calloc((size_t)nv + 1, sizeof *a->keep);
    a->observed = calloc((size_t)nv + 1, sizeof *a->observed);
    a->macs_node = malloc(((size_t)nv + 1) * sizeof *a->macs_node);
    if (!first || !last || !a->keep || !a->observed || !a->macs_node) {
        free(first);
        free(last);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (int v = 0; v < nv; v++) {
        first[v] = -1;
        last[v] = -1;
        a->macs_node[v] = -1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k])
                first[n->outputs[k]->id] = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->graph == g)
                last[n->inputs[k]->id] = i;
        for (int c = 0; c < n->n_attrs; c++) /* values read inside subgraphs: by the node */
            if (n->attrs[c].type == OQ_ATTR_GRAPH || n->attrs[c].type == OQ_ATTR_GRAPHS)
                for (int v = 0; v < nv; v++)
                    if (g->values[v]->n_consumers)
                        for (int u = 0; u < g->values[v]->n_consumers; u++)
                            if (g->values[v]->consumers[u] == n && last[v] < i)
                                last[v] = i;
        const oq_value *out = first_output(n);
        if (weighted(n) && out) {
            a->macs_node[out->id] = i;
            a->observed[out->id] = true;
            const oq_value *b = oq_node_input(n, 1), *x = oq_node_input(n, 0);
            if (x && x->graph == g &&
                (n->kind == OQ_OP_CONV_TRANSPOSE || oq_is_recurrent(n->kind) || (n->kind != OQ_OP_CONV && !(b && b->constant))))
                a->observed[x->id] = true; /* its last axis is the reduction length, or its size counts */
        }
    }
    for (int j = 0; j < g->n_outputs; j++)
        last[g->outputs[j]->id] = g->n_nodes;
    for (int i = 0; i < g->n_inputs; i++)
        a->keep[g->inputs[i]->id] = true;
    for (int j = 0; j < g->n_outputs; j++)
        a->keep[g->outputs[j]->id] = true;
    for (int c = 0; c < a->n_sel; c++)
        for (int v = 0; v < nv; v++)
            if (!g->values[v]->constant && first[v] < a->sel[c].node && last[v] >= a->sel[c].node)
                a->keep[v] = true;
    for (int v = 0; v < nv; v++)
        a->observed[v] |= a->keep[v] && !g->values[v]->constant;
    free(first);
    free(last);
    return OQ_OK;
}

static void float_worker_release(float_worker *fw)
{
    oq_session_destroy(fw->s);
    free(fw->ins);
    free(fw->last_axis);
    free(fw->numel);
    free(fw->macs);
}

static oq_status float_workers_create(analysis *a, int threads, oq_err *err)
{
    int threads_each;
    oq_sample_block_workers(threads, a->total, 1, &a->n_workers, &threads_each);
    if (!(a->fw = calloc((size_t)a->n_workers, sizeof *a->fw)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_exec_options eo = {.threads = threads_each, .observed = a->observed};
    for (int k = 0; k < a->n_workers; k++) {
        float_worker *fw = &a->fw[k];
        fw->a = a;
        oq_status st = oq_session_create(&fw->s, oq_pipeline_prepared(a->p), &eo, err);
        if (st)
            return st;
        oq_session_set_observer(fw->s, float_observe, fw);
        a->n_in = oq_session_input_count(fw->s);
        fw->ins = calloc((size_t)a->n_in + 1, sizeof *fw->ins);
        fw->last_axis = calloc((size_t)a->n_values + 1, sizeof *fw->last_axis);
        fw->numel = calloc((size_t)a->n_values + 1, sizeof *fw->numel);
        fw->macs = calloc((size_t)a->ref->n_nodes + 1, sizeof *fw->macs);
        if (!fw->ins || !fw->last_axis || !fw->numel || !fw->macs)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    return OQ_OK;
}

/* Sizes the chunk from the bytes one sample keeps (sample 0, run once for this). */
static oq_status size_chunk(analysis *a, size_t budget, oq_err *err)
{
    a->chunk_cap = 1;
    a->cache = calloc((size_t)a->n_values + 1, sizeof *a->cache);
    a->ref_out = calloc((size_t)a->n_out + 1, sizeof *a->ref_out);
    if (!a->cache || !a->ref_out)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    oq_status st = float_sample(a, 0, 0, err);
    size_t bytes = 0;
    for (int v = 0; v < a->n_values; v++)
        bytes += a->cache[v].nbytes;
    for (int j = 0; j < a->n_out; j++)
        bytes += a->ref_out[j].nbytes;
    chunk_clear(a);
    free(a->cache);
    free(a->ref_out);
    a->cache = NULL;
    a->ref_out = NULL;
    if (st)
        return st;
    int64_t cap = (int64_t)(budget / (bytes ? bytes : 1));
    a->chunk_cap = cap < 1 ? 1 : cap > a->total ? a->total : cap;
    a->cache = calloc((size_t)(a->chunk_cap * a->n_values) + 1, sizeof *a->cache);
    a->ref_out = calloc((size_t)(a->chunk_cap * a->n_out) + 1, sizeof *a->ref_out);
    return a->cache && a->ref_out ? OQ_OK : oq_errf(err, OQ_ENOMEM, "out of memory");
}

/* What the numbers depend on, as compact JSON text (oq_sensitivity.setup). */
static char *setup_text(const analysis *a, const oq_plan *plan_opts_from, const char *eval_sha256)
{
    const oq_quant_options *o = &plan_opts_from->opts;
    const oq_calib_table *t = oq_pipeline_table(a->p);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model_sha256", oq_pipeline_model_sha256(a->p));
    cJSON_AddBoolToObject(j, "prepared", oq_pipeline_graph_prepared(a->p));
    cJSON *opt = cJSON_AddObjectToObject(j, "options");
    cJSON_AddStringToObject(opt, "mode", o->mode == OQ_MODE_DYNAMIC ? "dynamic" : "static");
    cJSON_AddStringToObject(opt, "format", o->format == OQ_FORMAT_QDQ ? "qdq" : "qoperator");
    cJSON_AddBoolToObject(opt, "contrib", o->contrib);
    cJSON_AddBoolToObject(opt, "per_channel", o->per_channel);
    cJSON_AddStringToObject(opt, "activation_type", o->act_qmin < 0 ? "int8" : "uint8");
    cJSON_AddBoolToObject(opt, "symmetric_activations", o->symmetric_activations);
    cJSON *ops = cJSON_AddArrayToObject(opt, "op_types");
    for (int k = 0; k < OQ_QUANT_OP_TYPE_COUNT; k++)
        if (oq_quant_selects_type(o, k))
            cJSON_AddItemToArray(ops, cJSON_CreateString(oq_quant_op_types[k]));
    cJSON *ex = cJSON_AddArrayToObject(opt, "exclude");
    for (int i = 0; i < o->n_exclude; i++)
        cJSON_AddItemToArray(ex, cJSON_CreateString(o->exclude[i]));
    if (t && o->mode == OQ_MODE_STATIC) {
        cJSON *r = cJSON_AddObjectToObject(j, "ranges");
        cJSON_AddStringToObject(r, "method", oq_calib_method_name(t->range.method));
        cJSON_AddNumberToObject(r, "percentile", t->range.percentile);
        cJSON_AddNumberToObject(r, "bins", t->bins);
        cJSON_AddNumberToObject(r, "calibration_samples", (double)t->samples);
        cJSON_AddStringToObject(r, "calibration_data_sha256", t->data_sha256);
    } else {
        cJSON_AddNullToObject(j, "ranges");
    }
    cJSON *e = cJSON_AddObjectToObject(j, "evaluation");
    cJSON_AddNumberToObject(e, "samples", (double)a->total);
    cJSON_AddStringToObject(e, "data_sha256", eval_sha256);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

/* The result of a finished analysis (caller destroys). */
static oq_status build_result(analysis *a, int shard_index, int shard_count, oq_sensitivity **out, oq_err *err)
{
    const oq_job *job = oq_pipeline_job(a->p);
    oq_sensitivity *s = calloc(1, sizeof *s);
    oq_plan *base = NULL;
    oq_status st = s ? oq_pipeline_plan(a->p, 0, NULL, &base, err) : oq_errf(err, OQ_ENOMEM, "out of memory");
    if (st) {
        free(s);
        return st;
    }
    oq_sha256 h;
    char eval_sha[65];
    oq_sha256_init(&h);
    for (int64_t i = 0; i < a->total; i++)
        oq_sha256_update(&h, a->hashes[i], 64);
    oq_sha256_hex(&h, eval_sha);
    char *setup = setup_text(a, base, eval_sha);
    oq_plan_destroy(base);
    bool bad = !setup;
    s->setup = setup ? strdup(setup) : NULL;
    cJSON_free(setup);
    s->tool_version = strdup(job->tool_version ? job->tool_version : "");
    s->shard_index = shard_index;
    s->shard_count = shard_count;
    s->n_candidates = a->n_all;
    for (int i = 0; i < a->ref->n_nodes; i++)
        if (weighted(a->ref->nodes[i]))
            s->total_macs += (double)a->macs[i];
    s->total_macs = oq_json_number(s->total_macs / (double)a->total);
    s->n_outputs = a->n_out;
    s->output_names = calloc((size_t)a->n_out + 1, sizeof *s->output_names);
    s->nodes = calloc((size_t)a->n_sel + 1, sizeof *s->nodes);
    bad |= !s->setup || !s->tool_version || !s->output_names || !s->nodes;
    for (int j = 0; !bad && j < a->n_out; j++)
        bad |= !(s->output_names[j] = strdup(a->ref->outputs[j]->name));
    for (int i = 0; !bad && i < a->n_sel; i++) {
        const cand *c = &a->sel[i];
        const oq_node *n = a->ref->nodes[c->node];
        oq_sensitivity_node *e = &s->nodes[s->n_nodes++];
        e->name = strdup(n->name);
        e->op_type = strdup(n->op_type);
        e->outputs = calloc((size_t)a->n_out + 1, sizeof *e->outputs);
        bad |= !e->name || !e->op_type || !e->outputs;
        e->index = c->index;
        e->macs = (double)a->macs[c->node] / (double)a->total;
        for (int j = 0; !bad && j < a->n_out; j++)
            oq_output_sums_finish(&c->sums[j], &e->outputs[j]);
    }
    if (bad) {
        oq_sensitivity_destroy(s);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    bool measured = !s->n_nodes;
    for (int i = 0; i < s->n_nodes && !measured; i++)
        for (int j = 0; j < a->n_out && !measured; j++)
            measured = s->nodes[i].outputs[j].compared > 0;
    if (!measured) {
        oq_sensitivity_destroy(s);
        return oq_errf(err, OQ_EUNSUPPORTED,
                       "no output could be measured: nodes are ranked by the SQNR of a float output, and on these "
                       "samples every output is of another type, empty, or shaped differently once quantized");
    }
    oq_sensitivity_settle(s);
    *out = s;
    return OQ_OK;
}

static void analysis_release(analysis *a)
{
    chunk_clear(a);
    free(a->cache);
    free(a->ref_out);
    for (int k = 0; a->fw && k < a->n_workers; k++)
        float_worker_release(&a->fw[k]);
    free(a->fw);
    for (int i = 0; a->sel && i < a->n_sel; i++)
        free(a->sel[i].sums);
    free(a->sel);
    free(a->floats);
    free(a->cand_node);
    free(a->keep);
    free(a->observed);
    free(a->macs_node);
    free(a->macs);
    free(a->hashes);
    oq_dataset_destroy(a->ds);
}

oq_status oq_sensitivity_analyze(oq_pipeline *p, const oq_sensitivity_options *o, oq_sensitivity **out,
                                 oq_err *err)
{
    *out = NULL;
    const oq_job *j = oq_pipeline_job(p);
    const oq_model *m = oq_pipeline_prepared(p);
    int shard_index = o->shard_count ? o->shard_index : 1, shard_count = o->shard_count ? o->shard_count : 1;
    if (shard_count < 1 || shard_index < 1 || shard_index > shard_count)
        return oq_errf(err, OQ_EINVAL, "shard %d of %d: the index must be from 1 to the count", shard_index,
                       shard_count);
    if (!m)
        return oq_errf(err, OQ_EINVAL, "the model was not prepared for planning");
    if (!oq_pipeline_has_samples(p, true))
        return oq_errf(err, OQ_EINVAL, "the sensitivity analysis needs samples (--data or --eval-data)");
    analysis a = {.p = p, .ref = m->graph, .n_values = m->graph->n_values, .n_out = m->graph->n_outputs};
    pthread_mutex_init(&a.stages, NULL);
    oq_status st = oq_pipeline_open_samples(p, m, true, &a.ds, err);
    if (!st) {
        a.total = oq_dataset_count(a.ds);
        if (j->eval_samples && j->eval_samples < a.total)
            a.total = j->eval_samples;
        a.hashes = calloc((size_t)a.total + 1, sizeof *a.hashes);
        a.macs = calloc((size_t)m->graph->n_nodes + 1, sizeof *a.macs);
        if (!a.hashes || !a.macs)
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    if (!st && !a.total)
        st = oq_errf(err, OQ_EINVAL, "the sensitivity analysis needs samples; the data has none");
    if (!st)
        st = find_candidates(&a, shard_index, shard_count, err);
    if (!st)
        st = plan_keep(&a, err);
    if (!st)
        st = float_workers_create(&a, j->threads, err);
    if (!st)
        st = size_chunk(&a, o->cache_bytes ? o->cache_bytes : DEFAULT_CACHE_BYTES, err);
    int n_cand_workers = 1;
    if (!st)
        oq_sample_block_workers(j->threads, a.n_sel, 1, &n_cand_workers, &a.threads_each);
    oq_block_fns floats = {.user = &a, .begin = float_begin, .sample = float_sample, .fold = float_fold};
    oq_block_fns alones = {.user = &a, .begin = nothing_to_begin, .sample = cand_run, .fold = nothing_to_begin};
    for (a.chunk_begin = 0; !st && a.chunk_begin < a.total; a.chunk_begin += a.chunk_cap) {
        int64_t n = a.total - a.chunk_begin < a.chunk_cap ? a.total - a.chunk_begin : a.chunk_cap;
        chunk_clear(&a);
        st = oq_run_sample_blocks(n, 1, a.n_workers, &floats, err);
        if (!st)
            st = oq_run_sample_blocks(a.n_sel, 1, n_cand_workers, &alones, err);
    }
    if (!st)
        st = build_result(&a, shard_index, shard_count, out, err);
    analysis_release(&a);
    pthread_mutex_destroy(&a.stages);
    return st;
}

/* ---- the whole command ----------------------------------------------------------------- */

/* Writes s to the job's output, its page to its html_path and the table to
 * its table_output: all or nothing. */
static oq_status commit_analysis(oq_pipeline *p, const oq_sensitivity *s, oq_err *err)
{
    const oq_job *j = oq_pipeline_job(p);
    const oq_calib_table *t = oq_pipeline_table(p);
    oq_commit *c = NULL;
    uint8_t *text = NULL;
    size_t len;
    oq_status st = oq_commit_create(&c, err);
    if (!st && j->output_path && !(st = oq_sensitivity_serialize(s, &text, &len, err)))
        st = oq_commit_add(c, j->output_path, text, len, err);
    free(text);
    text = NULL;
    if (!st && j->html_path && !(st = oq_sensitivity_html(s, j->model_path, &text, &len, err)))
        st = oq_commit_add(c, j->html_path, text, len, err);
    free(text);
    text = NULL;
    if (!st && t && j->table_output && !(st = oq_calib_table_serialize(t, &text, &len, err)))
        st = oq_commit_add(c, j->table_output, text, len, err);
    free(text);
    if (!st)
        st = oq_commit_finish(c, err);
    oq_commit_destroy(c);
    return st;
}

/* Copies p's warnings into out. */
static oq_status take_warnings(const oq_pipeline *p, oq_outcome *out, oq_err *err)
{
    const char *const *lines;
    int n = oq_pipeline_warnings(p, &lines);
    if (!n)
        return OQ_OK;
    if (!(out->warnings = calloc((size_t)n, sizeof *out->warnings)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (; out->n_warnings < n; out->n_warnings++)
        if (!(out->warnings[out->n_warnings] = strdup(lines[out->n_warnings])))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
    return OQ_OK;
}

oq_status oq_job_analyze(const oq_job *job, const oq_sensitivity_options *o, oq_outcome *out, oq_err *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof *out);
    oq_pipeline *p = NULL;
    oq_status st = oq_pipeline_create(&p, job, err);
    /* as oq_job_run: a plan without a table tells a calibration on data what to record */
    bool plan_first = job->quant.mode == OQ_MODE_STATIC && !job->table_path && !job->all_tensors;
    if (!st)
        st = oq_pipeline_load(p, err);
    if (!st && plan_first)
        st = oq_pipeline_prepare(p, err);
    if (!st)
        st = oq_pipeline_calibrate(p, err);
    if (!st && !plan_first)
        st = oq_pipeline_prepare(p, err);
    if (!st)
        st = oq_sensitivity_analyze(p, o, &out->sensitivity, err);
    if (!st)
        st = commit_analysis(p, out->sensitivity, err);
    oq_err ignored; /* the warnings are a courtesy: out of memory here leaves fewer of them */
    if (p)
        take_warnings(p, out, &ignored);
    oq_pipeline_destroy(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return st;
}
