/* plan.c: planning (see session.h). Once per session, every graph of the
 * model (subgraphs too) gets a plan: a kernel per node, constants bound for
 * good, when each value dies, and which elementwise chains run fused. */
#include <stdlib.h>
#include <string.h>

#include "exec/fuse.h"
#include "exec/session.h"

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

void oq_exec_plan_destroy(plan *p)
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

static int epilogue_host(const oq_graph *g, const int *producer, const bool *pinned, const oq_fusion *fu);
static int quantize_after(const oq_graph *g, const bool *pinned, const oq_fusion *fu);

/* A squeeze-excite block with a quantized output, as quantizers write it
 * around float islands: x is read by a GlobalAveragePool (pool) and by a Mul
 * (mul) by a gate computed from the pool, and only a QuantizeLinear
 * (quantize) reads the product. */
typedef struct se_block {
    int mul, pool, quantize;
} se_block;

static bool se_candidate(const oq_graph *g, const int *producer, const bool *pinned, int m, se_block *b);
static void se_plan(plan *p, const se_block *b);

static oq_status plan_subgraph(void *ctx, const oq_graph *sub, oq_err *err)
{
    return oq_exec_plan_graph(ctx, sub, err);
}

static int64_t node_opset(const oq_session *s, const oq_node *n)
{
    return n->opset ? n->opset : oq_model_opset(s->model, n->domain);
}

/* Plans g and, recursively, its subgraphs; appends the plans to s->plans. */
oq_status oq_exec_plan_graph(oq_session *s, const oq_graph *g, oq_err *err)
{
    oq_status st = OQ_OK;
    int nv = g->n_values, nn = g->n_nodes;
    int *producer = NULL, *last_use = NULL, *count = NULL;
    bool *pinned = NULL, *kept = NULL, *held = NULL;
    int64_t *opsets = NULL;
    se_block *se = NULL;
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
    held = calloc((size_t)(nn ? nn : 1), sizeof *held);
    se = malloc((size_t)(nn ? nn : 1) * sizeof *se);
    if (!p->nodes || !p->outputs || !p->slots || !p->args || !producer || !last_use || !count || !pinned ||
        !kept || !opsets || !held || !se) {
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
            oq_slot_bind_view(&p->slots[v], val->constant, SLOT_CONST);
    }
    for (int i = 0; i < nn; i++) {
        const oq_node *n = g->nodes[i];
        if (n->n_outputs == 1 && n->outputs[0] && n->outputs[0]->constant && !n->domain[0] &&
            !strcmp(n->op_type, "Constant")) {
            oq_slot_bind_view(&p->slots[n->outputs[0]->id], n->outputs[0]->constant, SLOT_CONST);
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
    /* elementwise chains of the top-level graph run fused (see run_node),
     * and so do the Mul and QuantizeLinear of squeeze-excite blocks */
    if (!g->parent) {
        for (int i = 0; i < nn; i++)
            opsets[i] = p->nodes[i].opset;
        for (int v = 0; v < nv; v++)
            kept[v] = last_use[v] >= nn;
        int n_se = 0;
        for (int i = 0; i < nn; i++)
            if (se_candidate(g, producer, pinned, i, &se[n_se])) {
                held[i] = true;
                n_se++;
            }
        if (!oq_fuse_find(g, pinned, kept, opsets, held, &p->chains, &p->n_chains)) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        for (int c = 0; c < p->n_chains; c++) {
            const oq_fusion *fu = &p->chains[c];
            int at = epilogue_host(g, producer, pinned, fu);
            if (at < 0 && fu->n == 1)
                continue; /* one node on its own runs as it is */
            for (int k = 0; k < fu->n; k++)
                p->nodes[fu->nodes[k]].deferred = at >= 0 || k + 1 < fu->n;
            if (at < 0) {
                p->nodes[fu->nodes[fu->n - 1]].chain = fu;
                continue;
            }
            p->nodes[at].epilogue = fu;
            int q = g->nodes[at]->kind == OQ_OP_DEQUANTIZE_LINEAR ? quantize_after(g, pinned, fu) : -1;
            if (q >= 0) {
                p->nodes[at].quantize = &p->nodes[q];
                p->nodes[q].deferred = true;
            }
        }
        for (int k = 0; k < n_se; k++)
            se_plan(p, &se[k]);
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
    free(held);
    free(se);
    return st; /* p stays in s->plans and is freed with the session */
}

static bool fusion_has(const oq_fusion *fu, int node)
{
    for (int k = 0; k < fu->n; k++)
        if (fu->nodes[k] == node)
            return true;
    return false;
}

/* True when inputs 1 and 2 of Quantize- or DequantizeLinear node n are
 * constants holding one float scale and one 8-bit zero point: per tensor,
 * so that 256 byte values are all the 8-bit side can hold. */
static bool byte_qparams(const oq_node *n)
{
    const oq_tensor *s = n->n_inputs == 3 && n->inputs[1] ? n->inputs[1]->constant : NULL;
    const oq_tensor *z = n->n_inputs == 3 && n->inputs[2] ? n->inputs[2]->constant : NULL;
    return s && z && s->data && z->data && s->dtype == OQ_DTYPE_FLOAT && oq_tensor_numel(s) == 1 &&
           (z->dtype == OQ_DTYPE_UINT8 || z->dtype == OQ_DTYPE_INT8) && oq_tensor_numel(z) == 1;
}

/* The node that can run chain fu as its epilogue, or -1: fu's one source
 * is that node's only output, read by chain nodes alone, and the node is a
 * Conv or a DequantizeLinear of 8-bit data per tensor (whose kernel turns
 * the chain into a table of 256 entries). The chain then runs as the host
 * writes, at the host's turn, which is safe because it reads nothing else
 * but scalar constants. */
static int epilogue_host(const oq_graph *g, const int *producer, const bool *pinned, const oq_fusion *fu)
{
    const oq_value *src = fu->src[0];
    if (fu->n_src != 1 || fu->const_rank > 3 || src->graph != g || pinned[src->id] || producer[src->id] < 0)
        return -1;
    int at = producer[src->id];
    const oq_node *host = g->nodes[at];
    if (host->n_outputs != 1 ||
        !(host->kind == OQ_OP_CONV || (host->kind == OQ_OP_DEQUANTIZE_LINEAR && byte_qparams(host))))
        return -1;
    for (int i = at + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == src && !fusion_has(fu, i))
                return -1;
    return at;
}

/* The QuantizeLinear node that reads v, computed by node `at`, or -1: v is
 * pinned by nothing and read by that node alone, as its data, and the node
 * quantizes per tensor to 8 bits (byte_qparams). Its inputs are then all
 * known at `at`'s turn, so that node's kernel can run it too. */
static int quantize_reader(const oq_graph *g, const bool *pinned, const oq_value *v, int at)
{
    if (pinned[v->id])
        return -1;
    int found = -1;
    for (int i = at + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == v) {
                if (found >= 0 || k != 0)
                    return -1;
                found = i;
            }
    if (found < 0 || g->nodes[found]->n_outputs != 1 || !g->nodes[found]->outputs[0] ||
        g->nodes[found]->kind != OQ_OP_QUANTIZE_LINEAR ||
        !byte_qparams(g->nodes[found]))
        return -1;
    return found;
}

/* The QuantizeLinear node that the DequantizeLinear hosting chain fu can
 * run after the chain, or -1 (quantize_reader of the chain's result). */
static int quantize_after(const oq_graph *g, const bool *pinned, const oq_fusion *fu)
{
    return quantize_reader(g, pinned, fu->dst, fu->nodes[fu->n - 1]);
}

/* True when node m is the Mul of an se_block (filled into *b). That Mul
 * then joins no elementwise chain. */
static bool se_candidate(const oq_graph *g, const int *producer, const bool *pinned, int m, se_block *b)
{
    const oq_node *n = g->nodes[m];
    if (n->kind != OQ_OP_MUL || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0] || !n->inputs[0] ||
        !n->inputs[1] || n->inputs[0] == n->inputs[1] || n->inputs[0]->graph != g || n->inputs[1]->graph != g)
        return false;
    int q = quantize_reader(g, pinned, n->outputs[0], m);
    for (int k = 0; k < 2 && q >= 0; k++) {
        const oq_value *x = n->inputs[k];
        if (x->constant || pinned[x->id])
            continue;
        int pool = -1, reads = 0;
        for (int i = producer[x->id] + 1; i < g->n_nodes; i++) /* from 0 for a graph input */
            for (int j = 0; j < g->nodes[i]->n_inputs; j++)
                if (g->nodes[i]->inputs[j] == x) {
                    reads++;
                    if (i < m && j == 0 && g->nodes[i]->kind == OQ_OP_GLOBAL_AVERAGE_POOL &&
                        g->nodes[i]->n_inputs == 1 && g->nodes[i]->n_outputs == 1)
                        pool = i;
                }
        if (reads == 2 && pool >= 0) {
            *b = (se_block){m, pool, q};
            return true;
        }
    }
    return false;
}

/* Plans se_block b: its Mul runs the QuantizeLinear after it (deferred),
 * so the float product is never made (oq_gate_quantize; the executor runs
 * the two apart when the gate turns out not to be one value per plane). */
static void se_plan(plan *p, const se_block *b)
{
    p->nodes[b->quantize].deferred = true;
    p->nodes[b->mul].quantize = &p->nodes[b->quantize];
}

plan *oq_exec_plan_find(const oq_session *s, const oq_graph *g)
{
    for (int i = 0; i < s->n_plans; i++)
        if (s->plans[i]->g == g)
            return s->plans[i];
    return NULL;
}
