/* boundaries.c: where float and 8-bit meet in a rewritten QOperator graph:
 * the QuantizeLinear and DequantizeLinear nodes on activations, and the float
 * ops next to them by type. See rewrite.h and oq_quant_result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rewrite.h"

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
    return (n->kind == OQ_OP_QUANTIZE_LINEAR || n->kind == OQ_OP_DEQUANTIZE_LINEAR) && n->n_inputs && n->inputs[0] &&
           !n->inputs[0]->constant;
}

/* Counts one more float node of n's op type in res->glue_ops. */
static oq_status count_glue(oq_quant_result *res, const oq_node *n, oq_err *err)
{
    int k = 0;
    while (k < res->n_glue_ops && strcmp(res->glue_ops[k].op_type, n->op_type))
        k++;
    if (k == res->n_glue_ops) {
        oq_glue_op *grown = realloc(res->glue_ops, (size_t)(k + 1) * sizeof *grown);
        if (grown)
            res->glue_ops = grown;
        char *op = grown ? strdup(n->op_type) : NULL;
        if (!op)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        res->glue_ops[res->n_glue_ops++] = (oq_glue_op){op, 0};
    }
    res->glue_ops[k].count++;
    return OQ_OK;
}

oq_status oq_rw_count_boundaries(const oq_graph *g, oq_quant_result *res, oq_err *err)
{
    int n_glue = 0;
    oq_node **glue = malloc((size_t)(2 * g->n_nodes + 1) * sizeof *glue);
    if (!glue)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        oq_node *n = g->nodes[i];
        if (!is_boundary(n))
            continue;
        if (n->kind == OQ_OP_QUANTIZE_LINEAR) {
            res->n_boundary_quantize++;
            oq_node *p = n->inputs[0]->producer;
            if (p && !is_boundary(p))
                glue[n_glue++] = p;
            continue;
        }
        res->n_boundary_dequantize++;
        for (int k = 0; n->n_outputs && n->outputs[0] && k < n->outputs[0]->n_consumers; k++)
            if (!is_boundary(n->outputs[0]->consumers[k]) && n_glue < 2 * g->n_nodes)
                glue[n_glue++] = n->outputs[0]->consumers[k];
    }
    if (n_glue > 1)
        qsort(glue, (size_t)n_glue, sizeof *glue, by_address);
    oq_status st = OQ_OK;
    for (int i = 0; !st && i < n_glue; i++)
        if (!i || glue[i] != glue[i - 1])
            st = count_glue(res, glue[i], err);
    if (!st && res->n_glue_ops > 1)
        qsort(res->glue_ops, (size_t)res->n_glue_ops, sizeof *res->glue_ops, by_count_then_name);
    free(glue);
    return st;
}
