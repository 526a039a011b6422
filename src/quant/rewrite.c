/* rewrite.c: quantization in two steps (see oq_quant.h): oq_quant_prepare
 * readies the float graph (opset, folds) before it is planned, and
 * oq_quant_rewrite executes a plan (oq_plan.h) node by node, through one
 * function per action (qoperator.c, qdq.c, dynamic.c, contrib.c), then
 * restores float values where float readers remain, moves scalar factors into
 * (de)quantization scales, drops what nothing reads and counts the
 * boundaries between float and 8-bit. */
#include <stdlib.h>
#include <string.h>

#include "quant/folds.h"
#include "quant/match.h"
#include "quant/rewrite.h"

/* Quantized ops need opset 10 (QLinear*, per-tensor Q/DQ) and per-axis Q/DQ
 * needs 13; 8-bit MaxPool needs 12. Older models are raised to 13 by the
 * upgrade pass, which rewrites the nodes whose definitions changed. */
#define QUANT_OPSET 13

oq_status oq_quant_prepare(oq_model *m, oq_quant_prep *prep, oq_err *err)
{
    memset(prep, 0, sizeof *prep);
    prep->opset_from = prep->opset_to = oq_model_opset(m, "");
    oq_status st = OQ_OK;
    if (prep->opset_from < QUANT_OPSET && !(st = oq_model_upgrade_opset(m, QUANT_OPSET, err)))
        prep->opset_to = QUANT_OPSET;
    /* hard-swish patterns become one node first, so that --contrib does not
     * take their Add and Mul apart */
    if (st || (st = oq_fuse_hard_swish(m, &prep->opset_to, &prep->n_fused_hard_swish, err)))
        return st;
    return oq_graph_sort(m->graph, err);
}

/* ---- executing the plan ---------------------------------------------------------- */

/* A result entry for candidate n (name, op, the output it writes). */
static oq_status add_result_node(oq_quant_result *res, const oq_node *n, const char *reason, oq_err *err)
{
    oq_quant_node *p = realloc(res->nodes, (size_t)(res->n_nodes + 1) * sizeof *p);
    if (!p)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    res->nodes = p;
    oq_quant_node *q = &p[res->n_nodes++];
    memset(q, 0, sizeof *q);
    q->name = strdup(n->name);
    q->op_type = strdup(n->op_type);
    q->output = strdup(n->n_outputs && n->outputs[0] ? n->outputs[0]->name : "");
    q->reason = reason ? strdup(reason) : NULL;
    if (!q->name || !q->op_type || !q->output || (reason && !q->reason))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    return OQ_OK;
}

/* Carries out the plan's action for node i (n). */
static oq_status execute(rewriter *r, int i, oq_node *n, oq_quant_node *rep)
{
    switch (r->plan->nodes[i].action) {
    case OQ_ACTION_QLINEAR: return oq_rw_qlinear(r, i, n, rep);
    case OQ_ACTION_INTEGER_GEMM: return oq_rw_integer_gemm(r, i, n, rep);
    case OQ_ACTION_QGEMM: return oq_rw_qgemm(r, i, n, rep);
    case OQ_ACTION_QDQ: return oq_rw_qdq(r, i, n, rep);
    case OQ_ACTION_DYNAMIC: return oq_rw_dynamic(r, i, n, rep);
    case OQ_ACTION_PASSTHROUGH: return oq_rw_passthrough(r, n);
    case OQ_ACTION_QLINEAR_CONCAT: return oq_rw_qlinear_concat(r, n);
    case OQ_ACTION_CONTRIB: return oq_rw_contrib(r, i, n);
    case OQ_ACTION_SCALED_TWIN:
    case OQ_ACTION_SHIFTED_TWIN: return oq_rw_input_twin(r, i, n);
    case OQ_ACTION_HARD_SIGMOID: return oq_rw_hard(r, n, false);
    case OQ_ACTION_HARD_SWISH: return oq_rw_hard(r, n, true);
    case OQ_ACTION_EMBEDDING: return oq_rw_embedding(r, n, rep);
    case OQ_ACTION_WEIGHT_ONLY: return oq_rw_weight_only(r, n, rep);
    case OQ_ACTION_NONE:
    case OQ_ACTION_KEEP_FLOAT:
    case OQ_ACTION_FOLDED_CLAMP: /* removed with the node before it */
    case OQ_ACTION_FOLDED_BIAS:  /* taken by the node before it */
    case OQ_ACTION_COUNT: break;
    }
    return OQ_OK;
}

/* Imports the com.microsoft domain, version 1, unless m does; *added says whether it did. */
static oq_status import_contrib(oq_model *m, bool *added, oq_err *err)
{
    *added = false;
    if (oq_model_opset(m, OQ_CONTRIB_DOMAIN))
        return OQ_OK;
    oq_opset *p = realloc(m->opsets, (size_t)(m->n_opsets + 1) * sizeof *p);
    if (!p)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    m->opsets = p;
    if (!(p[m->n_opsets].domain = strdup(OQ_CONTRIB_DOMAIN)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    p[m->n_opsets++].version = 1;
    *added = true;
    return OQ_OK;
}

/* Drops the last opset import (the one import_contrib added) when no node uses its domain. */
static void drop_unused_contrib(oq_model *m)
{
    for (int i = 0; i < m->graph->n_nodes; i++)
        if (strcmp(m->graph->nodes[i]->domain, OQ_CONTRIB_DOMAIN) == 0)
            return;
    free(m->opsets[--m->n_opsets].domain);
}

/* Removes Constant nodes and float initializers nothing reads any more
 * (weights that now have 8-bit copies). */
static void drop_dead_constants(oq_graph *g)
{
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        oq_node *n = g->nodes[i];
        oq_value *v = n->n_outputs ? n->outputs[0] : NULL;
        if (n->kind == OQ_OP_CONSTANT && v && !v->n_consumers && !oq_is_graph_output(g, v))
            oq_graph_remove_node(g, n);
    }
    for (int i = 0; i < g->n_values; i++) {
        oq_value *v = g->values[i];
        if (v->constant && !v->producer && !v->n_consumers && !oq_is_graph_output(g, v) && !oq_is_graph_input(g, v)) {
            oq_tensor_destroy(v->constant);
            v->constant = NULL;
            v->is_initializer = false;
            v->kind = OQ_TYPE_NONE;
        }
    }
    oq_graph_prune(g);
}

/* The plan's nodes, in its order, still in g (the plan must have been made on g or its copy). */
static oq_status snapshot(rewriter *r)
{
    const oq_plan *p = r->plan;
    bool same = r->g->n_nodes == p->n_nodes && r->g->n_values == p->n_values;
    for (int i = 0; same && i < p->n_nodes; i++)
        same = r->g->nodes[i]->kind == p->graph->nodes[i]->kind &&
               !strcmp(r->g->nodes[i]->name, p->graph->nodes[i]->name);
    if (!same)
        return oq_errf(r->err, OQ_EINVAL, "the plan was made for another graph");
    if (!(r->order = calloc((size_t)p->n_nodes + 1, sizeof *r->order)))
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < p->n_nodes; i++)
        r->order[i] = r->g->nodes[i];
    return OQ_OK;
}

static oq_status run(rewriter *r)
{
    const oq_plan *p = r->plan;
    for (int i = 0; i < p->n_nodes; i++) {
        const oq_plan_node *pn = &p->nodes[i];
        oq_node *n = r->order[i];
        oq_quant_node *rep = NULL;
        oq_status st;
        if (pn->candidate) {
            if ((st = add_result_node(r->res, n, pn->reason, r->err)))
                return st;
            rep = &r->res->nodes[r->res->n_nodes - 1];
            if (pn->action == OQ_ACTION_KEEP_FLOAT)
                continue;
        }
        r->current = i;
        if ((st = execute(r, i, n, rep))) {
            if (rep)
                oq_err_context(r->err, "node '%s' (%s)", rep->name, rep->op_type);
            return st;
        }
        if (rep)
            rep->quantized = true;
    }
    return OQ_OK;
}

oq_status oq_quant_rewrite(oq_model *m, const oq_plan *plan, oq_quant_result *result, oq_err *err)
{
    return oq_quant_rewrite_sites(m, plan, result, NULL, err);
}

void oq_bias_sites_release(oq_bias_sites *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->s[i].w_scales);
        free(s->s[i].bias_after);
    }
    free(s->s);
    memset(s, 0, sizeof *s);
}

oq_status oq_quant_rewrite_sites(oq_model *m, const oq_plan *plan, oq_quant_result *result, oq_bias_sites *sites,
                                 oq_err *err)
{
    memset(result, 0, sizeof *result);
    if (sites)
        memset(sites, 0, sizeof *sites);
    const oq_quant_options *o = &plan->opts;
    if (!plan->ranges_known)
        return oq_errf(err, OQ_EINVAL, "the plan was made without calibrated ranges");
    rewriter r = {.m = m, .g = m->graph, .plan = plan, .o = o, .res = result, .sites = sites, .err = err,
                  .act_type = o->act_qmin < 0 ? OQ_DTYPE_INT8 : OQ_DTYPE_UINT8};
    bool qoperator = o->mode == OQ_MODE_STATIC && o->format == OQ_FORMAT_QOPERATOR, contrib_added = false;
    oq_status st = snapshot(&r);
    if (!st && o->contrib)
        st = import_contrib(m, &contrib_added, err);
    if (!st)
        st = run(&r);
    if (!st && qoperator)
        st = oq_rw_restore_float_values(&r);
    if (!st)
        st = oq_fold_factors(r.g, &result->n_folded_factors, err);
    if (!st) {
        drop_dead_constants(r.g);
        st = oq_graph_sort(r.g, err);
    }
    if (!st && qoperator)
        st = oq_rw_count_boundaries(r.g, result, err);
    if (!st && contrib_added)
        drop_unused_contrib(m);
    for (int i = 0; i < r.n_weights; i++)
        oq_weight_quant_release(&r.weights[i].wq);
    free(r.weights);
    for (int i = 0; i < r.n_chunks; i++)
        free(r.info[i]);
    free(r.info);
    free(r.order);
    if (st)
        oq_bias_sites_release(sites);
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
