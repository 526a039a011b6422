/* session.c: the executor's sessions (see session.h; planning is in plan.c,
 * memory in memory.c) and running: nodes in graph order, elementwise chains
 * fused, subgraphs on request of their node's kernel, the observer shown
 * what it watches. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/fuse.h"
#include "exec/kernel.h"
#include "exec/qops.h"
#include "exec/session.h"
#include "exec/threadpool.h"
#include "onnxq/oq_exec.h"

/* ---- kernel services (kernel.h) ---------------------------------------------------- */

bool oq_kernel_input_const(const oq_kernel_ctx *c, int k)
{
    const oq_value *v = k >= 0 && k < c->node->n_inputs ? c->node->inputs[k] : NULL;
    return v && v->constant && c->inputs[k] && c->inputs[k]->data == v->constant->data;
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
    if ((st = oq_exec_plan_graph(s, g, err)))
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
        oq_exec_plan_destroy(s->plans[i]);
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

/* Frees the values whose last reader is pn. */
static void clear_dead(struct oq_exec_frame *f, const plan_node *pn)
{
    for (int d = 0; d < pn->n_dead; d++)
        oq_slot_clear(f->s, &f->p->slots[pn->dead[d]]);
}

/* Runs node i's kernel (when `fused`, with what the plan moved into it: its
 * epilogue chain and the QuantizeLinear after it), shows its outputs to the
 * observer, frees what dies there (and in the nodes moved into it). */
static oq_status exec_node(struct oq_exec_frame *f, int i, bool fused, oq_err *err)
{
    plan *p = f->p;
    plan_node *pn = &p->nodes[i];
    const oq_fusion *ep = fused ? pn->epilogue : NULL;
    const plan_node *quant = fused ? pn->quantize : NULL;
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
        .quantize = quant ? quant->node : NULL,
    };
    oq_status st = pn->op->run(&c);
    oq_release_held(f);
    if (st)
        return oq_err_context(err, "node '%s' (%s)", n->name, n->op_type);
    for (int k = 0; k < n->n_outputs; k++) {
        const oq_value *v = oq_kernel_written_value(&c, k);
        if (v && p->slots[v->id].kind == SLOT_EMPTY)
            return oq_errf(err, OQ_EINVAL, "node '%s' (%s): the kernel did not write output %d ('%s')", n->name,
                           n->op_type, k, v->name);
    }
    for (int k = 0; k < n->n_outputs; k++)
        show(f, oq_kernel_written_value(&c, k));
    clear_dead(f, pn);
    for (int k = 0; ep && k < ep->n; k++)
        clear_dead(f, &p->nodes[ep->nodes[k]]);
    if (quant)
        clear_dead(f, quant);
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
            st = exec_node(f, fu->nodes[k], false, err);
        return st;
    }
    const oq_tensor *x = xs[0];
    slot *sl = &p->slots[fu->dst->id];
    oq_tensor hdr;
    oq_status st = oq_output_header(&hdr, OQ_DTYPE_FLOAT, x->rank, x->dims, fu->dst->name, err);
    if (!st) {
        oq_slot_clear(f->s, sl);
        st = oq_pool_take(f->s, hdr.nbytes, false, &hdr.data, &sl->cap, err);
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
    for (int k = 0; k < fu->n; k++)
        clear_dead(f, &p->nodes[fu->nodes[k]]);
    return OQ_OK;
}

/* True when node pn, a Mul given the QuantizeLinear after it (plan.c:
 * squeeze-excite), can run it: one input is a gate of the other
 * (oq_gate_fits); else the two run apart, as written. */
static bool gate_fits(const struct oq_exec_frame *f, const plan_node *pn)
{
    const oq_tensor *a = resolve(f, pn->node->inputs[0]), *b = resolve(f, pn->node->inputs[1]);
    return a && b && (oq_gate_fits(a, b) || oq_gate_fits(b, a));
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
    if (!unfused && pn->quantize && pn->node->kind == OQ_OP_MUL && !gate_fits(f, pn)) {
        oq_status st = exec_node(f, i, false, err);
        return st ? st : exec_node(f, (int)(pn->quantize - p->nodes), false, err);
    }
    return exec_node(f, i, !unfused, err);
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
        oq_slot_clear(f->s, &f->p->slots[v]);
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
        oq_slot_bind_view(&p->slots[s->inputs[i]->id], &inputs[i], SLOT_VIEW);
    struct oq_exec_frame f = {.s = s, .p = p};
    return run_frame(&f, outputs, err);
}

oq_status oq_kernel_run_graph(oq_kernel_ctx *c, const oq_graph *g, int n_inputs, const oq_tensor *const *inputs,
                              oq_tensor *outputs)
{
    plan *p = oq_exec_plan_find(c->frame->s, g);
    if (!p)
        return oq_errf(c->err, OQ_EINVAL, "subgraph '%s' was not planned", g->name ? g->name : "");
    if (n_inputs != g->n_inputs)
        return oq_errf(c->err, OQ_EINVAL, "subgraph '%s' takes %d inputs, got %d", g->name ? g->name : "",
                       g->n_inputs, n_inputs);
    memset(outputs, 0, (size_t)g->n_outputs * sizeof *outputs);
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && p->slots[g->inputs[i]->id].kind != SLOT_CONST)
            oq_slot_bind_view(&p->slots[g->inputs[i]->id], inputs[i], SLOT_VIEW);
    struct oq_exec_frame f = {.s = c->frame->s, .p = p, .parent = c->frame};
    return run_frame(&f, outputs, c->err);
}

/* ---- running in steps --------------------------------------------------------------- */

struct oq_run_state {
    oq_session *s;  /* borrowed: a state is destroyed before its session */
    int n_values;
    slot *slots;    /* [n_values of the top-level graph]: empty or a pool buffer */
};

oq_status oq_run_state_create(oq_run_state **out, oq_session *s, oq_err *err)
{
    *out = NULL;
    oq_run_state *rs = calloc(1, sizeof *rs);
    int n = s->plans[0]->g->n_values;
    if (!rs || !(rs->slots = calloc((size_t)(n ? n : 1), sizeof *rs->slots))) {
        free(rs);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    rs->s = s;
    rs->n_values = n;
    *out = rs;
    return OQ_OK;
}

void oq_run_state_destroy(oq_run_state *rs)
{
    if (!rs)
        return;
    for (int v = 0; v < rs->n_values; v++)
        oq_slot_clear(rs->s, &rs->slots[v]);
    free(rs->slots);
    free(rs);
}

/* Whether v is a value rs can hold: one of the top-level graph's, not a constant. */
static bool state_value(const oq_run_state *rs, const oq_value *v)
{
    return v && v->graph == rs->s->plans[0]->g && v->id < rs->n_values && !v->constant;
}

oq_status oq_run_state_set(oq_run_state *rs, const oq_value *v, const oq_tensor *t, oq_err *err)
{
    if (!state_value(rs, v))
        return oq_errf(err, OQ_EINVAL, "'%s' is not a computed value of the session's graph", v ? v->name : "");
    slot *sl = &rs->slots[v->id];
    oq_slot_clear(rs->s, sl);
    oq_tensor hdr;
    oq_status st = oq_output_header(&hdr, t->dtype, t->rank, t->dims, v->name, err);
    if (!st)
        st = oq_pool_take(rs->s, hdr.nbytes, false, &hdr.data, &sl->cap, err);
    if (st)
        return st;
    if (hdr.dtype == OQ_DTYPE_STRING) {
        int64_t n = oq_tensor_numel(&hdr);
        char **dst = hdr.data;
        char *const *src = t->data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = NULL;
        sl->t = hdr;
        sl->kind = SLOT_POOLED;
        for (int64_t i = 0; i < n; i++)
            if (!(dst[i] = strdup(src[i] ? src[i] : "")))
                return oq_errf(err, OQ_ENOMEM, "out of memory");
        return OQ_OK;
    }
    if (hdr.nbytes)
        memcpy(hdr.data, t->data, hdr.nbytes);
    sl->t = hdr;
    sl->kind = SLOT_POOLED;
    return OQ_OK;
}

oq_status oq_run_state_feed(oq_run_state *rs, const oq_tensor *inputs, oq_err *err)
{
    const oq_session *s = rs->s;
    oq_status st = OQ_OK;
    for (int i = 0; i < s->n_inputs && !st; i++)
        st = check_input(s->inputs[i], &inputs[i], err);
    for (int i = 0; i < s->n_inputs && !st; i++)
        st = oq_run_state_set(rs, s->inputs[i], &inputs[i], err);
    return st;
}

const oq_tensor *oq_run_state_get(const oq_run_state *rs, const oq_value *v)
{
    return state_value(rs, v) && rs->slots[v->id].kind != SLOT_EMPTY ? &rs->slots[v->id].t : NULL;
}

oq_status oq_session_run_steps(oq_session *s, oq_run_state *rs, int begin, int end, oq_err *err)
{
    plan *p = s->plans[0];
    if (rs->s != s)
        return oq_errf(err, OQ_EINVAL, "the run state belongs to another session");
    if (begin < 0 || end < begin || end > p->g->n_nodes)
        return oq_errf(err, OQ_EINVAL, "steps [%d, %d) are outside the graph's %d nodes", begin, end, p->g->n_nodes);
    /* the state's values move into the plan's slots for the run, and back after */
    for (int v = 0; v < rs->n_values; v++)
        if (rs->slots[v].kind != SLOT_EMPTY) {
            p->slots[v] = rs->slots[v];
            memset(&rs->slots[v], 0, sizeof rs->slots[v]);
        }
    struct oq_exec_frame f = {.s = s, .p = p};
    oq_status st = OQ_OK;
    for (int i = begin; i < end && !st; i++)
        st = run_node(&f, i, err);
    for (int v = 0; v < rs->n_values; v++)
        if (p->slots[v].kind == SLOT_POOLED) {
            rs->slots[v] = p->slots[v];
            memset(&p->slots[v], 0, sizeof p->slots[v]);
        }
    return st;
}
