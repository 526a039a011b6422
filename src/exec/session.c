/* session.c: the executor. A session plans every graph of a model once
 * (kernel per node, value lifetimes, subgraphs) and runs it any number of
 * times. Activations live in a buffer pool owned by the session: a kernel's
 * output takes the best-fitting free buffer, and a value's buffer returns to
 * the pool right after its last reader ran, so buffers are reused within a
 * run and across runs. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/fuse.h"
#include "exec/kernel.h"
#include "exec/threadpool.h"
#include "onnxq/oq_exec.h"

/* ---- plans ------------------------------------------------------------------ */

typedef enum slot_kind {
    SLOT_EMPTY = 0,
    SLOT_CONST,  /* borrowed view of value->constant, bound at plan time for good */
    SLOT_VIEW,   /* borrowed view of a caller's tensor (graph input) for one run */
    SLOT_POOLED, /* a pool buffer written by a kernel */
} slot_kind;

/* The run-time home of one value. */
typedef struct slot {
    oq_tensor t;    /* owns_data is always false: the pool or the caller owns data */
    size_t cap;     /* SLOT_POOLED: capacity of t.data (t.nbytes is the exact size) */
    slot_kind kind;
} slot;

typedef struct plan_node {
    const oq_node *node;
    const oq_op_def *op;
    int64_t opset; /* the model's opset for the node's domain */
    bool folded;   /* a Constant whose decoded value is bound at plan time: never runs */
    bool deferred; /* in an elementwise chain: runs with the chain at its last node */
    const oq_fusion *chain; /* set on the last node of a chain run on its own */
    const oq_fusion *epilogue; /* a chain this node's kernel (Conv) applies to its output */
    void *cache;   /* oq_kernel_cache: data the kernel derived from constant inputs, kept across runs */
    size_t cache_bytes;
    int n_dead;
    int *dead;     /* [n_dead] ids of values in this graph whose last reader is this node */
} plan_node;

/* One planned graph (the top level or a subgraph). */
typedef struct plan {
    const oq_graph *g;
    plan_node *nodes;         /* [g->n_nodes], graph order */
    const oq_value **outputs; /* [g->n_outputs] graph outputs, resolved through enclosing scopes */
    slot *slots;              /* [g->n_values] indexed by oq_value.id; reused by every run */
    const oq_tensor **args;   /* [max node inputs] kernel input pointers of the running node */
    int *dead_store;          /* storage behind every nodes[i].dead */
    oq_fusion *chains;        /* [n_chains] elementwise chains (top-level graph only) */
    int n_chains;
} plan;

/* A pool buffer not in use. */
typedef struct pool_buf {
    void *data;
    size_t cap;
} pool_buf;

/* A pool buffer held only while one kernel runs: scratch or an omitted output. */
typedef struct held {
    struct held *next;
    oq_tensor t;
    size_t cap;
} held;

struct oq_session {
    const oq_model *model; /* borrowed */
    int n_plans;
    plan **plans;          /* [n_plans]; plans[0] is the top-level graph */
    int n_inputs;
    const oq_value **inputs; /* [n_inputs] fed graph inputs (not initializers) */
    oq_threadpool *tp;
    oq_observer_fn observer;
    void *observer_user;
    bool *observed;        /* NULL or [top-level n_values]: what the observer is shown (pinned in the plan) */
    int n_free, cap_free;
    pool_buf *free_bufs;   /* [n_free] idle pool buffers */
    held *spare;           /* recycled held records */
    size_t cur_bytes, peak_bytes, naive_bytes; /* activation accounting of the current/last run */
};

struct oq_exec_frame {
    oq_session *s;
    plan *p;
    struct oq_exec_frame *parent; /* frame of the enclosing graph, NULL at top level */
    held *held;                   /* scratch and omitted outputs of the running node */
    plan_node *running;           /* the node whose kernel runs */
};

/* ---- buffer pool -------------------------------------------------------------- */

/* Takes a buffer of at least `bytes` (best fit among idle buffers, else a new
 * one) and, when `zero`, zero-fills the first `bytes`. Counts the bytes as in use. */
static oq_status pool_take(oq_session *s, size_t bytes, bool zero, void **data, size_t *cap, oq_err *err)
{
    int best = -1, biggest_small = -1;
    for (int i = 0; i < s->n_free; i++) {
        size_t c = s->free_bufs[i].cap;
        if (c >= bytes) {
            if (best < 0 || c < s->free_bufs[best].cap)
                best = i;
        } else if (biggest_small < 0 || c > s->free_bufs[biggest_small].cap) {
            biggest_small = i;
        }
    }
    if (best >= 0) {
        *data = s->free_bufs[best].data;
        *cap = s->free_bufs[best].cap;
        s->free_bufs[best] = s->free_bufs[--s->n_free];
    } else {
        /* A new buffer replaces the largest idle one that is too small, so the
         * pool holds no more buffers than a run ever needs at once. */
        if (biggest_small >= 0) {
            free(s->free_bufs[biggest_small].data);
            s->free_bufs[biggest_small] = s->free_bufs[--s->n_free];
        }
        size_t c = bytes ? bytes : 1;
        if (!(*data = malloc(c)))
            return oq_errf(err, OQ_ENOMEM, "cannot allocate %zu bytes", bytes);
        *cap = c;
    }
    if (zero)
        memset(*data, 0, bytes);
    s->cur_bytes += bytes;
    s->naive_bytes += bytes;
    if (s->cur_bytes > s->peak_bytes)
        s->peak_bytes = s->cur_bytes;
    return OQ_OK;
}

/* Returns t's pool buffer (capacity cap) to the pool, freeing owned strings first. */
static void pool_give(oq_session *s, oq_tensor *t, size_t cap)
{
    if (!t->data)
        return;
    if (t->dtype == OQ_DTYPE_STRING) {
        char **str = t->data;
        int64_t n = oq_tensor_numel(t);
        for (int64_t i = 0; i < n; i++)
            free(str[i]);
    }
    s->cur_bytes -= t->nbytes;
    if (s->n_free == s->cap_free) {
        int nc = s->cap_free ? 2 * s->cap_free : 16;
        pool_buf *nb = realloc(s->free_bufs, (size_t)nc * sizeof *nb);
        if (!nb) {
            free(t->data); /* cannot remember it: give it back to the system */
            t->data = NULL;
            return;
        }
        s->free_bufs = nb;
        s->cap_free = nc;
    }
    s->free_bufs[s->n_free++] = (pool_buf){t->data, cap};
    t->data = NULL;
}

static void slot_clear(oq_session *s, slot *sl)
{
    if (sl->kind == SLOT_CONST)
        return;
    if (sl->kind == SLOT_POOLED)
        pool_give(s, &sl->t, sl->cap);
    memset(sl, 0, sizeof *sl);
}

static void bind_view(slot *sl, const oq_tensor *t, slot_kind kind)
{
    sl->t = *t;
    sl->t.owns_data = false;
    sl->cap = 0;
    sl->kind = kind;
}

/* Fills t with the header of a (dt, rank, dims) tensor and its exact storage
 * size; `name` is the output's name for errors. */
static oq_status shape_bytes(oq_tensor *t, oq_dtype dt, int rank, const int64_t *dims, const char *name,
                             oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (!oq_dtype_valid(dt))
        return oq_errf(err, OQ_EINVAL, "invalid output element type %d", (int)dt);
    if (rank < 0 || rank > OQ_MAX_RANK)
        return oq_errf(err, OQ_EUNSUPPORTED, "output rank %d is outside 0..%d", rank, OQ_MAX_RANK);
    int64_t numel = oq_shape_numel(rank, dims);
    if (numel < 0)
        return oq_errf(err, OQ_EINVAL, "output '%s': dims are negative or their product overflows", name);
    size_t bytes = oq_dtype_storage(dt, numel);
    if (bytes == SIZE_MAX || bytes > oq_tensor_limit())
        return oq_errf(err, OQ_ENOMEM, "output '%s' of %lld %s elements exceeds the tensor size limit of %zu bytes",
                       name, (long long)numel, oq_dtype_name(dt), oq_tensor_limit());
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof dims[0]);
    t->nbytes = bytes;
    return OQ_OK;
}

/* A held record holding a fresh pool buffer of `bytes` (zero-filled when
 * `zero`); linked into f->held. */
static held *hold(struct oq_exec_frame *f, size_t bytes, bool zero, oq_err *err)
{
    oq_session *s = f->s;
    held *h = s->spare;
    if (h)
        s->spare = h->next;
    else if (!(h = malloc(sizeof *h))) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    memset(&h->t, 0, sizeof h->t);
    if (pool_take(s, bytes, zero, &h->t.data, &h->cap, err)) {
        h->next = s->spare;
        s->spare = h;
        return NULL;
    }
    h->t.nbytes = bytes;
    h->next = f->held;
    f->held = h;
    return h;
}

static void release_held(struct oq_exec_frame *f)
{
    while (f->held) {
        held *h = f->held;
        f->held = h->next;
        pool_give(f->s, &h->t, h->cap);
        h->next = f->s->spare;
        f->s->spare = h;
    }
}

/* ---- kernel services (kernel.h) ---------------------------------------------------- */

static oq_tensor *kernel_output(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims, bool zero)
{
    struct oq_exec_frame *f = c->frame;
    oq_tensor hdr;
    if (k < 0) {
        oq_errf(c->err, OQ_EINVAL, "output index %d is negative", k);
        return NULL;
    }
    const oq_value *v = k < c->node->n_outputs ? c->node->outputs[k] : NULL;
    if (k == 0 && c->epilogue)
        v = c->epilogue->dst; /* the chain's result is what this node now writes */
    if (shape_bytes(&hdr, dt, rank, dims, v ? v->name : "(unnamed)", c->err))
        return NULL;
    if (!v) {
        held *h = hold(f, hdr.nbytes, zero, c->err);
        if (!h)
            return NULL;
        hdr.data = h->t.data;
        h->t = hdr;
        return &h->t;
    }
    slot *sl = &f->p->slots[v->id];
    slot_clear(f->s, sl); /* a kernel asking twice for one output gets a fresh buffer */
    if (pool_take(f->s, hdr.nbytes, zero, &hdr.data, &sl->cap, c->err))
        return NULL;
    sl->t = hdr;
    sl->kind = SLOT_POOLED;
    return &sl->t;
}

oq_tensor *oq_kernel_output(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims)
{
    return kernel_output(c, k, dt, rank, dims, true);
}

oq_tensor *oq_kernel_output_raw(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims)
{
    return kernel_output(c, k, dt, rank, dims, false);
}

static void *kernel_scratch(oq_kernel_ctx *c, size_t bytes, bool zero)
{
    if (bytes > oq_tensor_limit()) {
        oq_errf(c->err, OQ_ENOMEM, "scratch of %zu bytes exceeds the size limit of %zu bytes", bytes,
                oq_tensor_limit());
        return NULL;
    }
    held *h = hold(c->frame, bytes, zero, c->err);
    return h ? h->t.data : NULL;
}

void *oq_kernel_scratch(oq_kernel_ctx *c, size_t bytes) { return kernel_scratch(c, bytes, true); }

void *oq_kernel_scratch_raw(oq_kernel_ctx *c, size_t bytes) { return kernel_scratch(c, bytes, false); }

bool oq_kernel_input_const(const oq_kernel_ctx *c, int k)
{
    const oq_value *v = k >= 0 && k < c->node->n_inputs ? c->node->inputs[k] : NULL;
    return v && v->constant && c->inputs[k] && c->inputs[k]->data == v->constant->data;
}

const void *oq_kernel_cache(oq_kernel_ctx *c, size_t bytes, void (*fill)(void *dst, void *arg), void *arg)
{
    plan_node *pn = c->frame->running;
    if (!pn->cache || pn->cache_bytes != bytes) {
        free(pn->cache);
        pn->cache_bytes = 0;
        if (!(pn->cache = malloc(bytes ? bytes : 1))) {
            oq_errf(c->err, OQ_ENOMEM, "cannot allocate %zu bytes", bytes);
            return NULL;
        }
        fill(pn->cache, arg);
        pn->cache_bytes = bytes;
    }
    return pn->cache;
}

void oq_parallel_for(oq_kernel_ctx *c, int64_t n, oq_range_fn fn, void *arg)
{
    oq_threadpool_run(c->frame->s->tp, n, fn, arg);
}

int oq_kernel_threads(const oq_kernel_ctx *c) { return oq_threadpool_size(c->frame->s->tp); }

const oq_tensor *oq_kernel_require(oq_kernel_ctx *c, int k)
{
    const oq_tensor *t = oq_kernel_input(c, k);
    if (!t)
        oq_errf(c->err, OQ_EINVAL, "input %d is required but missing", k);
    return t;
}

/* ---- planning ---------------------------------------------------------------- */

static bool is_graph_input(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v)
            return true;
    return false;
}

/* Graph output j of g. A subgraph output that names an outer value may have
 * been recorded as an unproduced local value; that resolves to the outer one. */
static const oq_value *graph_output_value(const oq_graph *g, int j)
{
    const oq_value *v = g->outputs[j];
    if (!g->parent || v->graph != g || v->constant || is_graph_input(g, v))
        return v;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_outputs; k++)
            if (g->nodes[i]->outputs[k] == v)
                return v;
    const oq_value *outer = oq_graph_find(g->parent, v->name);
    return outer ? outer : v;
}

/* Subgraph attributes of n: calls fn(ctx, sub) for each. */
static oq_status for_each_subgraph(const oq_node *n, oq_status (*fn)(void *, const oq_graph *, oq_err *),
                                   void *ctx, oq_err *err)
{
    oq_status st = OQ_OK;
    for (int a = 0; a < n->n_attrs && !st; a++) {
        const oq_attr *at = &n->attrs[a];
        if (at->type == OQ_ATTR_GRAPH && at->g)
            st = fn(ctx, at->g, err);
        else if (at->type == OQ_ATTR_GRAPHS)
            for (int i = 0; i < at->n && !st; i++)
                st = fn(ctx, at->graphs[i], err);
    }
    return st;
}

/* Records, for values of graph `outer`, reads made from inside subgraph `sub`
 * (at any depth) as reads by node `node_index` of `outer`. */
typedef struct outer_reads {
    const oq_graph *outer;
    int node_index;
    int *last_use; /* [outer->n_values] */
    bool *pinned;  /* [outer->n_values] set for every value read */
} outer_reads;

static void note_outer(outer_reads *r, const oq_value *v)
{
    if (v && v->graph == r->outer) {
        r->pinned[v->id] = true;
        if (r->last_use[v->id] < r->node_index)
            r->last_use[v->id] = r->node_index;
    }
}

static oq_status mark_outer_reads(void *ctx, const oq_graph *sub, oq_err *err)
{
    outer_reads *r = ctx;
    for (int j = 0; j < sub->n_outputs; j++)
        note_outer(r, graph_output_value(sub, j));
    for (int i = 0; i < sub->n_nodes; i++) {
        const oq_node *n = sub->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            note_outer(r, n->inputs[k]);
        for_each_subgraph(n, mark_outer_reads, r, err);
    }
    return OQ_OK;
}

static void plan_destroy(plan *p)
{
    if (!p)
        return;
    free(p->outputs);
    free(p->slots);
    free(p->args);
    free(p->dead_store);
    free(p->chains);
    for (int i = 0; p->nodes && i < p->g->n_nodes; i++)
        free(p->nodes[i].cache);
    free(p->nodes);
    free(p);
}

static oq_status plan_graph(oq_session *s, const oq_graph *g, oq_err *err);
static int epilogue_host(const oq_graph *g, const int *producer, const bool *pinned, const oq_fusion *fu);

static oq_status plan_subgraph(void *ctx, const oq_graph *sub, oq_err *err)
{
    return plan_graph(ctx, sub, err);
}

static int64_t node_opset(const oq_session *s, const oq_node *n)
{
    return n->opset ? n->opset : oq_model_opset(s->model, n->domain);
}

/* Plans g and, recursively, its subgraphs; appends the plans to s->plans. */
static oq_status plan_graph(oq_session *s, const oq_graph *g, oq_err *err)
{
    oq_status st = OQ_OK;
    int nv = g->n_values, nn = g->n_nodes;
    int *producer = NULL, *last_use = NULL, *count = NULL;
    bool *pinned = NULL, *kept = NULL;
    int64_t *opsets = NULL;
    plan *p = calloc(1, sizeof *p);
    plan **np = realloc(s->plans, (size_t)(s->n_plans + 1) * sizeof *np);
    if (!p || !np) {
        free(p);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    s->plans = np;
    s->plans[s->n_plans++] = p;
    p->g = g;
    int max_in = 1;
    for (int i = 0; i < nn; i++)
        if (g->nodes[i]->n_inputs > max_in)
            max_in = g->nodes[i]->n_inputs;
    p->nodes = calloc((size_t)(nn ? nn : 1), sizeof *p->nodes);
    p->outputs = calloc((size_t)(g->n_outputs ? g->n_outputs : 1), sizeof *p->outputs);
    p->slots = calloc((size_t)(nv ? nv : 1), sizeof *p->slots);
    p->args = calloc((size_t)max_in, sizeof *p->args);
    producer = malloc((size_t)(nv ? nv : 1) * sizeof *producer);
    last_use = malloc((size_t)(nv ? nv : 1) * sizeof *last_use);
    count = calloc((size_t)(nn ? nn : 1), sizeof *count);
    pinned = calloc((size_t)(nv ? nv : 1), sizeof *pinned);
    kept = calloc((size_t)(nv ? nv : 1), sizeof *kept);
    opsets = calloc((size_t)(nn ? nn : 1), sizeof *opsets);
    if (!p->nodes || !p->outputs || !p->slots || !p->args || !producer || !last_use || !count || !pinned ||
        !kept || !opsets) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < nv; v++)
        producer[v] = last_use[v] = -1;

    /* kernels and producers */
    for (int i = 0; i < nn; i++) {
        const oq_node *n = g->nodes[i];
        plan_node *pn = &p->nodes[i];
        pn->node = n;
        pn->opset = node_opset(s, n);
        if (!(pn->op = oq_op_find(n->domain, n->op_type, pn->opset))) {
            st = oq_errf(err, OQ_EUNSUPPORTED, "node '%s' (%s, opset %lld, domain '%s'): no kernel", n->name,
                         n->op_type, (long long)pn->opset, n->domain);
            goto fail;
        }
        for (int k = 0; k < n->n_outputs; k++) {
            const oq_value *v = n->outputs[k];
            if (!v)
                continue;
            if (v->graph != g || producer[v->id] >= 0) {
                st = oq_errf(err, OQ_EINVAL, "node '%s' (%s) writes '%s', which is %s", n->name, n->op_type,
                             v->name, v->graph != g ? "a value of an enclosing graph" : "written twice");
                goto fail;
            }
            producer[v->id] = i;
        }
    }
    /* constants that no node computes are bound once, for good, and so are
     * the outputs of Constant nodes the loader decoded */
    for (int v = 0; v < nv; v++) {
        const oq_value *val = g->values[v];
        if (val->constant && producer[v] < 0)
            bind_view(&p->slots[v], val->constant, SLOT_CONST);
    }
    for (int i = 0; i < nn; i++) {
        const oq_node *n = g->nodes[i];
        if (n->n_outputs == 1 && n->outputs[0] && n->outputs[0]->constant && !n->domain[0] &&
            !strcmp(n->op_type, "Constant")) {
            bind_view(&p->slots[n->outputs[0]->id], n->outputs[0]->constant, SLOT_CONST);
            p->nodes[i].folded = true;
        }
    }
    /* last readers; inputs must be computed before they are read */
    for (int i = 0; i < nn; i++) {
        const oq_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            const oq_value *v = n->inputs[k];
            if (!v || v->graph != g)
                continue;
            bool ready = producer[v->id] >= 0 ? producer[v->id] < i
                                              : p->slots[v->id].kind == SLOT_CONST || is_graph_input(g, v);
            if (!ready) {
                st = oq_errf(err, OQ_EINVAL, "node '%s' (%s) reads '%s' %s", n->name, n->op_type, v->name,
                             producer[v->id] >= 0 ? "before the node computing it (graph not sorted)"
                                                  : "which no node computes and no input feeds");
                goto fail;
            }
            last_use[v->id] = i;
        }
        outer_reads r = {g, i, last_use, pinned};
        for_each_subgraph(n, mark_outer_reads, &r, err);
    }
    /* values an observer will be shown are computed on their own */
    if (!g->parent && s->observed)
        for (int v = 0; v < nv; v++)
            pinned[v] = pinned[v] || s->observed[v];
    /* graph outputs live until the end of the run */
    for (int j = 0; j < g->n_outputs; j++) {
        p->outputs[j] = graph_output_value(g, j);
        if (p->outputs[j]->graph == g) {
            last_use[p->outputs[j]->id] = nn;
            pinned[p->outputs[j]->id] = true;
        }
    }
    /* a computed value dies after its last reader, or right after its producer if unread */
    int n_dead = 0;
    for (int v = 0; v < nv; v++) {
        if (producer[v] < 0 || last_use[v] >= nn)
            continue;
        if (last_use[v] < producer[v])
            last_use[v] = producer[v];
        count[last_use[v]]++;
        n_dead++;
    }
    if (!(p->dead_store = malloc((size_t)(n_dead ? n_dead : 1) * sizeof *p->dead_store))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0, at = 0; i < nn; i++) {
        p->nodes[i].dead = p->dead_store + at;
        at += count[i];
    }
    for (int v = 0; v < nv; v++)
        if (producer[v] >= 0 && last_use[v] < nn) {
            plan_node *pn = &p->nodes[last_use[v]];
            pn->dead[pn->n_dead++] = v;
        }
    /* elementwise chains of the top-level graph run fused (see run_node) */
    if (!g->parent) {
        for (int i = 0; i < nn; i++)
            opsets[i] = p->nodes[i].opset;
        for (int v = 0; v < nv; v++)
            kept[v] = last_use[v] >= nn;
        if (!oq_fuse_find(g, pinned, kept, opsets, &p->chains, &p->n_chains)) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        for (int c = 0; c < p->n_chains; c++) {
            const oq_fusion *fu = &p->chains[c];
            int at = epilogue_host(g, producer, pinned, fu);
            for (int k = 0; k < fu->n; k++)
                p->nodes[fu->nodes[k]].deferred = at >= 0 || k + 1 < fu->n;
            if (at >= 0)
                p->nodes[at].epilogue = fu;
            else
                p->nodes[fu->nodes[fu->n - 1]].chain = fu;
        }
    }
    /* subgraphs are planned now, not at run time */
    for (int i = 0; i < nn && !st; i++)
        st = for_each_subgraph(g->nodes[i], plan_subgraph, s, err);
fail:
    free(producer);
    free(last_use);
    free(count);
    free(pinned);
    free(kept);
    free(opsets);
    return st; /* p stays in s->plans and is freed with the session */
}

static bool fusion_has(const oq_fusion *fu, int node)
{
    for (int k = 0; k < fu->n; k++)
        if (fu->nodes[k] == node)
            return true;
    return false;
}

/* The Conv node that can run chain fu as its epilogue, or -1: fu's one
 * source is that Conv's only output, read by chain nodes alone. The chain
 * then runs as the Conv writes, at the Conv's turn, which is safe because
 * it reads nothing else but scalar constants. */
static int epilogue_host(const oq_graph *g, const int *producer, const bool *pinned, const oq_fusion *fu)
{
    const oq_value *src = fu->src[0];
    if (fu->n_src != 1 || fu->const_rank > 3 || src->graph != g || pinned[src->id] || producer[src->id] < 0)
        return -1;
    int at = producer[src->id];
    const oq_node *host = g->nodes[at];
    if (host->domain[0] || strcmp(host->op_type, "Conv") || host->n_outputs != 1)
        return -1;
    for (int i = at + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == src && !fusion_has(fu, i))
                return -1;
    return at;
}

static plan *find_plan(const oq_session *s, const oq_graph *g)
{
    for (int i = 0; i < s->n_plans; i++)
        if (s->plans[i]->g == g)
            return s->plans[i];
    return NULL;
}

/* ---- sessions -------------------------------------------------------------- */

int oq_exec_thread_count(int requested)
{
    long threads = requested > 0 ? requested : sysconf(_SC_NPROCESSORS_ONLN);
    return threads < 1 ? 1 : threads > 256 ? 256 : (int)threads;
}

oq_status oq_session_create(oq_session **out, const oq_model *m, const oq_exec_options *opts, oq_err *err)
{
    oq_status st;
    *out = NULL;
    if (!m || !m->graph)
        return oq_errf(err, OQ_EINVAL, "the model has no graph");
    oq_session *s = calloc(1, sizeof *s);
    if (!s)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    s->model = m;
    const oq_graph *g = m->graph;
    if (!(s->inputs = calloc((size_t)(g->n_inputs ? g->n_inputs : 1), sizeof *s->inputs))) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->constant)
            s->inputs[s->n_inputs++] = g->inputs[i];
    if (opts && opts->observed) {
        if (!(s->observed = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *s->observed))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(s->observed, opts->observed, (size_t)g->n_values * sizeof *s->observed);
    }
    if ((st = plan_graph(s, g, err)))
        goto fail;
    if ((st = oq_threadpool_create(&s->tp, oq_exec_thread_count(opts ? opts->threads : 0), err)))
        goto fail;
    *out = s;
    return OQ_OK;
fail:
    oq_session_destroy(s);
    return st;
}

void oq_session_destroy(oq_session *s)
{
    if (!s)
        return;
    oq_threadpool_destroy(s->tp);
    for (int i = 0; i < s->n_plans; i++)
        plan_destroy(s->plans[i]);
    free(s->plans);
    free(s->inputs);
    free(s->observed);
    for (int i = 0; i < s->n_free; i++)
        free(s->free_bufs[i].data);
    free(s->free_bufs);
    while (s->spare) {
        held *h = s->spare;
        s->spare = h->next;
        free(h);
    }
    free(s);
}

int oq_session_input_count(const oq_session *s) { return s->n_inputs; }

const oq_value *oq_session_input(const oq_session *s, int i)
{
    return i >= 0 && i < s->n_inputs ? s->inputs[i] : NULL;
}

int oq_session_output_count(const oq_session *s) { return s->plans[0]->g->n_outputs; }

const oq_value *oq_session_output(const oq_session *s, int i)
{
    return i >= 0 && i < oq_session_output_count(s) ? s->plans[0]->outputs[i] : NULL;
}

void oq_session_set_observer(oq_session *s, oq_observer_fn fn, void *user)
{
    s->observer = fn;
    s->observer_user = user;
}

void oq_session_stats(const oq_session *s, oq_exec_stats *st)
{
    st->peak_bytes = s->peak_bytes;
    st->naive_bytes = s->naive_bytes;
    st->threads = oq_threadpool_size(s->tp);
}

/* ---- running ------------------------------------------------------------------ */

/* The tensor of v as seen from frame f (outer values through parent frames), or NULL if not computed. */
static const oq_tensor *resolve(const struct oq_exec_frame *f, const oq_value *v)
{
    for (; f; f = f->parent)
        if (f->p->g == v->graph) {
            const slot *sl = &f->p->slots[v->id];
            return sl->kind == SLOT_EMPTY ? NULL : &sl->t;
        }
    return NULL;
}

/* Shows computed value v (NULL: none) to the observer, if it watches it. */
static void show(const struct oq_exec_frame *f, const oq_value *v)
{
    const oq_session *s = f->s;
    if (v && !f->parent && s->observer && (!s->observed || s->observed[v->id]))
        s->observer(s->observer_user, v, &f->p->slots[v->id].t);
}

/* Runs node i's kernel (with chain ep as its epilogue when not NULL), shows
 * its outputs to the observer, frees what dies there (and in ep's nodes). */
static oq_status exec_node(struct oq_exec_frame *f, int i, const oq_fusion *ep, oq_err *err)
{
    plan *p = f->p;
    plan_node *pn = &p->nodes[i];
    f->running = pn;
    const oq_node *n = pn->node;
    for (int k = 0; k < n->n_inputs; k++) {
        const oq_value *v = n->inputs[k];
        p->args[k] = v ? resolve(f, v) : NULL;
        if (v && !p->args[k])
            return oq_errf(err, OQ_EINVAL, "node '%s' (%s): input '%s' was not computed", n->name, n->op_type,
                           v->name);
    }
    oq_kernel_ctx c = {
        .node = n,
        .opset = pn->opset,
        .n_inputs = n->n_inputs,
        .inputs = p->args,
        .n_outputs = n->n_outputs,
        .frame = f,
        .err = err,
        .epilogue = ep,
    };
    oq_status st = pn->op->run(&c);
    release_held(f);
    if (st)
        return oq_err_context(err, "node '%s' (%s)", n->name, n->op_type);
    for (int k = 0; k < n->n_outputs; k++) {
        const oq_value *v = k == 0 && ep ? ep->dst : n->outputs[k];
        if (v && p->slots[v->id].kind == SLOT_EMPTY)
            return oq_errf(err, OQ_EINVAL, "node '%s' (%s): the kernel did not write output %d ('%s')", n->name,
                           n->op_type, k, v->name);
    }
    for (int k = 0; k < n->n_outputs; k++)
        show(f, k == 0 && ep ? ep->dst : n->outputs[k]);
    for (int d = 0; d < pn->n_dead; d++)
        slot_clear(f->s, &p->slots[pn->dead[d]]);
    for (int k = 0; ep && k < ep->n; k++) {
        const plan_node *cn = &p->nodes[ep->nodes[k]];
        for (int d = 0; d < cn->n_dead; d++)
            slot_clear(f->s, &p->slots[cn->dead[d]]);
    }
    return OQ_OK;
}

typedef struct chain_job {
    const oq_fusion *fu;
    float *y;
    const float *x[OQ_FUSE_MAX_SRC];
} chain_job;

static void chain_range(void *arg, int64_t begin, int64_t end)
{
    const chain_job *j = arg;
    oq_fusion_run(j->fu, j->y, j->x, begin, end);
}

/* True when every source of fu is a float tensor of the first one's shape,
 * which the scalar constants broadcast into unchanged; fills x. */
static bool chain_sources(const struct oq_exec_frame *f, const oq_fusion *fu, const oq_tensor **x)
{
    for (int r = 0; r < fu->n_src; r++) {
        x[r] = resolve(f, fu->src[r]);
        if (!x[r] || x[r]->dtype != OQ_DTYPE_FLOAT || x[r]->rank != x[0]->rank ||
            memcmp(x[r]->dims, x[0]->dims, (size_t)x[0]->rank * sizeof x[0]->dims[0]))
            return false;
    }
    return x[0]->rank >= fu->const_rank;
}

/* Runs chain fu in one pass over its sources, or node by node when they are
 * not what the fused loop handles (see chain_sources). */
static oq_status run_chain(struct oq_exec_frame *f, const oq_fusion *fu, oq_err *err)
{
    plan *p = f->p;
    const oq_tensor *xs[OQ_FUSE_MAX_SRC] = {NULL};
    if (!chain_sources(f, fu, xs)) {
        oq_status st = OQ_OK;
        for (int k = 0; k < fu->n && !st; k++)
            st = exec_node(f, fu->nodes[k], NULL, err);
        return st;
    }
    const oq_tensor *x = xs[0];
    slot *sl = &p->slots[fu->dst->id];
    oq_tensor hdr;
    oq_status st = shape_bytes(&hdr, OQ_DTYPE_FLOAT, x->rank, x->dims, fu->dst->name, err);
    if (!st) {
        slot_clear(f->s, sl);
        st = pool_take(f->s, hdr.nbytes, false, &hdr.data, &sl->cap, err);
    }
    if (st) {
        const oq_node *n = p->nodes[fu->nodes[fu->n - 1]].node;
        return oq_err_context(err, "node '%s' (%s)", n->name, n->op_type);
    }
    sl->t = hdr;
    sl->kind = SLOT_POOLED;
    chain_job j = {fu, hdr.data, {NULL}};
    for (int r = 0; r < fu->n_src; r++)
        j.x[r] = xs[r]->data;
    int64_t numel = oq_tensor_numel(x);
    if (numel >= ((int64_t)1 << 15) && oq_threadpool_size(f->s->tp) > 1)
        oq_threadpool_run(f->s->tp, numel, chain_range, &j);
    else
        chain_range(&j, 0, numel);
    show(f, fu->dst);
    for (int k = 0; k < fu->n; k++) {
        const plan_node *pn = &p->nodes[fu->nodes[k]];
        for (int d = 0; d < pn->n_dead; d++)
            slot_clear(f->s, &p->slots[pn->dead[d]]);
    }
    return OQ_OK;
}

/* Runs node i in its turn: folded constants only show themselves to the
 * observer; chain nodes wait for the chain's last node, which runs them all,
 * unless an observer watches every value (then every node runs on its own). */
static oq_status run_node(struct oq_exec_frame *f, int i, oq_err *err)
{
    plan *p = f->p;
    const plan_node *pn = &p->nodes[i];
    bool unfused = !f->parent && f->s->observer && !f->s->observed;
    if (pn->folded) {
        show(f, pn->node->outputs[0]);
        return OQ_OK;
    }
    if (!unfused && pn->deferred)
        return OQ_OK;
    if (!unfused && pn->chain)
        return run_chain(f, pn->chain, err);
    return exec_node(f, i, unfused ? NULL : pn->epilogue, err);
}

/* Runs the nodes of f's graph (inputs already bound), copies its outputs into
 * outs[0..n_outputs) as owned tensors, and clears every run-time slot. */
static oq_status run_frame(struct oq_exec_frame *f, oq_tensor *outs, oq_err *err)
{
    oq_status st = OQ_OK;
    const oq_graph *g = f->p->g;
    int j = 0;
    for (int i = 0; i < g->n_nodes && !st; i++)
        st = run_node(f, i, err);
    for (; j < g->n_outputs && !st; j++) {
        const oq_tensor *t = resolve(f, f->p->outputs[j]);
        if (!t)
            st = oq_errf(err, OQ_EINVAL, "graph output '%s' was not computed", f->p->outputs[j]->name);
        else
            st = oq_tensor_copy(&outs[j], t, err);
    }
    if (st)
        for (int k = 0; k < j; k++)
            oq_tensor_release(&outs[k]);
    for (int v = 0; v < g->n_values; v++)
        slot_clear(f->s, &f->p->slots[v]);
    return st;
}

/* Checks a fed tensor against the declared type of input v. */
/* The declaration check plus the integrity of a caller's tensor (valid
 * dtype and rank, storage for its shape). */
static oq_status check_input(const oq_value *v, const oq_tensor *t, oq_err *err)
{
    oq_status st = oq_value_check_tensor(v, t, NULL, err);
    if (st)
        return st;
    if (!oq_dtype_valid(t->dtype))
        return oq_errf(err, OQ_EINVAL, "input '%s' has invalid element type %d", v->name, (int)t->dtype);
    int64_t numel = oq_tensor_numel(t);
    size_t need = oq_dtype_storage(t->dtype, numel);
    if (numel < 0 || need == SIZE_MAX)
        return oq_errf(err, OQ_EINVAL, "input '%s' has negative or overflowing dims", v->name);
    if (need && (!t->data || t->nbytes < need))
        return oq_errf(err, OQ_EINVAL, "input '%s' holds %zu bytes of data, its shape needs %zu", v->name,
                       t->data ? t->nbytes : 0, need);
    return OQ_OK;
}

oq_status oq_session_run(oq_session *s, const oq_tensor *inputs, oq_tensor *outputs, oq_err *err)
{
    plan *p = s->plans[0];
    s->cur_bytes = s->peak_bytes = s->naive_bytes = 0;
    memset(outputs, 0, (size_t)p->g->n_outputs * sizeof *outputs);
    for (int i = 0; i < s->n_inputs; i++) {
        oq_status st = check_input(s->inputs[i], &inputs[i], err);
        if (st)
            return st;
    }
    for (int i = 0; i < s->n_inputs; i++)
        bind_view(&p->slots[s->inputs[i]->id], &inputs[i], SLOT_VIEW);
    struct oq_exec_frame f = {.s = s, .p = p};
    return run_frame(&f, outputs, err);
}

oq_status oq_kernel_run_graph(oq_kernel_ctx *c, const oq_graph *g, int n_inputs, const oq_tensor *const *inputs,
                              oq_tensor *outputs)
{
    plan *p = find_plan(c->frame->s, g);
    if (!p)
        return oq_errf(c->err, OQ_EINVAL, "subgraph '%s' was not planned", g->name ? g->name : "");
    if (n_inputs != g->n_inputs)
        return oq_errf(c->err, OQ_EINVAL, "subgraph '%s' takes %d inputs, got %d", g->name ? g->name : "",
                       g->n_inputs, n_inputs);
    memset(outputs, 0, (size_t)g->n_outputs * sizeof *outputs);
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && p->slots[g->inputs[i]->id].kind != SLOT_CONST)
            bind_view(&p->slots[g->inputs[i]->id], inputs[i], SLOT_VIEW);
    struct oq_exec_frame f = {.s = c->frame->s, .p = p, .parent = c->frame};
    return run_frame(&f, outputs, c->err);
}
