/* prepare.c: graph preparation (see oq_prepare.h): the pass order, and the
 * graph queries and edits the passes have in common. */
#include "prepare/prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables ---------------------------------------------------------------------- */

const oq_prepare_stat_info oq_prepare_stats[OQ_PREPARE_STAT_COUNT] = {
    [OQ_PREPARE_INPUTS_MADE_CONSTANT] = {"inputs_made_constant", "weight inputs made constant"},
    [OQ_PREPARE_IDENTITIES_REMOVED] = {"identities_removed", "Identity/Dropout removed"},
    [OQ_PREPARE_CONSTANTS_FOLDED] = {"constants_folded", "nodes folded into constants"},
    [OQ_PREPARE_FOLDS_OVER_LIMIT] = {"folds_over_size_limit", "left unfolded (too large)"},
    [OQ_PREPARE_CONV_ADDS_FOLDED] = {"conv_adds_folded", "Add folded into Conv bias"},
    [OQ_PREPARE_BATCHNORMS_FOLDED] = {"batchnorms_folded", "BatchNormalization folded"},
    [OQ_PREPARE_MATMUL_ADDS_TO_GEMM] = {"matmul_adds_to_gemm", "MatMul+Add made Gemm"},
    [OQ_PREPARE_DEAD_NODES_REMOVED] = {"dead_nodes_removed", "unused nodes removed"},
    [OQ_PREPARE_INITIALIZERS_REMOVED] = {"initializers_removed", "unused initializers removed"},
    [OQ_PREPARE_NODES_NAMED] = {"nodes_named", "unnamed nodes named"},
};

/* ---- graph queries --------------------------------------------------------------- */

bool prep_is_input(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v)
            return true;
    return false;
}

bool prep_is_output(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

bool prep_is_constant(const oq_graph *g, const oq_value *v)
{
    return v && v->constant && !prep_is_input(g, v);
}

const oq_tensor *prep_float_constant(const oq_graph *g, const oq_value *v)
{
    return prep_is_constant(g, v) && v->constant->dtype == OQ_DTYPE_FLOAT ? v->constant : NULL;
}

/* Whether n holds a subgraph (If, Loop, Scan), which may read values of n's graph by name. */
static bool has_subgraph(const oq_node *n)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == OQ_ATTR_GRAPH || n->attrs[a].type == OQ_ATTR_GRAPHS)
            return true;
    return false;
}

oq_node *prep_sole_reader(const oq_graph *g, const oq_value *v)
{
    if (!v || v->n_consumers != 1 || prep_is_output(g, v) || has_subgraph(v->consumers[0]))
        return NULL;
    return v->consumers[0];
}

bool prep_read_by_subgraph(const oq_graph *g, const oq_value *v)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        if (!has_subgraph(n))
            continue;
        int count;
        oq_err ignored;
        oq_value **impl = oq_node_implicit_inputs(n, &count, &ignored);
        bool found = !impl && count; /* out of memory: say yes, so nothing is touched */
        for (int k = 0; k < count && !found; k++)
            found = impl[k] == v;
        free(impl);
        if (found)
            return true;
    }
    return false;
}

/* ---- graph edits ----------------------------------------------------------------- */

oq_tensor *prep_box(oq_tensor *t, oq_err *err)
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

oq_value *prep_new_constant(prep_ctx *c, const char *base, oq_tensor *t)
{
    char *name = oq_graph_unique_name(c->g, base);
    oq_value *v = name ? oq_graph_value(c->g, name, c->err) : NULL;
    if (!name)
        oq_errf(c->err, OQ_ENOMEM, "out of memory");
    free(name);
    if (!v) {
        oq_tensor_destroy(t);
        return NULL;
    }
    oq_dim dims[OQ_MAX_RANK];
    for (int i = 0; i < t->rank; i++)
        dims[i] = (oq_dim){t->dims[i], NULL};
    if (oq_graph_set_constant(c->g, v, t, true, c->err) ||
        oq_value_set_tensor_type(v, t->dtype, t->rank, dims, c->err))
        return NULL;
    return v;
}

/* ---- names ----------------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Gives each node of the top-level graph without a name one, OpType_I (I its
 * index), with _2, _3, ... appended while another node has it: the analysis
 * and --exclude keep nodes float by name. The model's names and those given
 * so far are kept sorted in `taken`, so each lookup is a binary search. */
static oq_status name_unnamed_nodes(prep_ctx *c)
{
    oq_graph *g = c->g;
    int unnamed = 0, n_taken = 0;
    for (int i = 0; i < g->n_nodes; i++)
        unnamed += !g->nodes[i]->name[0];
    if (!unnamed)
        return OQ_OK;
    char **taken = malloc((size_t)g->n_nodes * sizeof *taken);
    if (!taken)
        return oq_errf(c->err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->name[0])
            taken[n_taken++] = g->nodes[i]->name;
    qsort(taken, (size_t)n_taken, sizeof *taken, cmp_name);
    oq_status st = OQ_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        oq_node *n = g->nodes[i];
        if (n->name[0])
            continue;
        size_t cap = strlen(n->op_type) + 48;
        char *name = malloc(cap);
        if (!name) {
            st = oq_errf(c->err, OQ_ENOMEM, "out of memory");
            break;
        }
        snprintf(name, cap, "%s_%d", n->op_type, i);
        for (int k = 2; bsearch(&name, taken, (size_t)n_taken, sizeof *taken, cmp_name); k++)
            snprintf(name, cap, "%s_%d_%d", n->op_type, i, k);
        free(n->name);
        n->name = name;
        int at = n_taken;
        while (at > 0 && strcmp(taken[at - 1], name) > 0)
            at--;
        memmove(taken + at + 1, taken + at, (size_t)(n_taken - at) * sizeof *taken);
        taken[at] = name;
        n_taken++;
        c->r->counts[OQ_PREPARE_NODES_NAMED]++;
    }
    free(taken);
    return st;
}

/* ---- driver ---------------------------------------------------------------------- */

/* An IR < 4 model must list every initializer as a graph input; once some are
 * not (inputs made constant, folded values), it says IR 4, which dropped that
 * rule and changed nothing else. */
static void raise_ir_version(prep_ctx *c)
{
    if (c->m->ir_version >= 4)
        return;
    for (int i = 0; i < c->g->n_values; i++) {
        const oq_value *v = c->g->values[i];
        bool saved_as_initializer = v->constant && (v->is_initializer || !v->producer);
        if (saved_as_initializer && !prep_is_input(c->g, v)) {
            c->m->ir_version = 4;
            c->r->ir_raised = true;
            return;
        }
    }
}

oq_status oq_prepare_model(oq_model *m, const oq_prepare_options *o, oq_prepare_result *r, oq_err *err)
{
    memset(r, 0, sizeof *r);
    if (!m || !m->graph)
        return oq_errf(err, OQ_EINVAL, "the model has no graph");
    prep_ctx c = {
        .m = m,
        .g = m->graph,
        .fold_max_bytes = o && o->fold_max_bytes ? o->fold_max_bytes : OQ_PREPARE_FOLD_BYTES_DEFAULT,
        .r = r,
        .err = err,
    };
    r->nodes_before = c.g->n_nodes;
    oq_status st;
    if ((st = oq_graph_sort(c.g, err)) || (st = prep_inputs_to_constants(&c)) || (st = prep_remove_dead(&c)) ||
        (st = prep_remove_identities(&c)) || (st = prep_fold_constants(&c)) ||
        (st = prep_fold_into_producers(&c)) || (st = prep_matmul_add_to_gemm(&c)) || (st = prep_remove_dead(&c)))
        return st;
    raise_ir_version(&c);
    oq_graph_prune(c.g);
    if ((st = oq_graph_sort(c.g, err)) || (st = name_unnamed_nodes(&c)))
        return st;
    r->nodes_after = c.g->n_nodes;
    return OQ_OK;
}

int oq_prepare_release_inputs(oq_model *m, int n, const char *const *names)
{
    int released = 0;
    if (!m || !m->graph)
        return 0;
    oq_graph *g = m->graph;
    for (int i = 0; i < g->n_inputs; i++) {
        oq_value *v = g->inputs[i];
        for (int k = 0; k < n && v->constant; k++) {
            if (strcmp(names[k], v->name))
                continue;
            oq_tensor_destroy(v->constant);
            v->constant = NULL;
            v->is_initializer = false;
            released++;
        }
    }
    return released;
}
