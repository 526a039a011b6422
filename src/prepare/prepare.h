/* prepare.h: what the passes of graph preparation share (see oq_prepare.h).
 * Internal to src/prepare. */
#ifndef ONNXQ_PREPARE_PREPARE_H
#define ONNXQ_PREPARE_PREPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/oq_graph.h"
#include "onnxq/oq_prepare.h"

/* The kind of node n (oq_node.kind, resolved when the node was made), or
 * OQ_OP_OTHER for no node. */
static inline oq_op_kind prep_kind(const oq_node *n)
{
    return n ? n->kind : OQ_OP_OTHER;
}

/* State of one oq_prepare_model call. */
typedef struct prep_ctx {
    oq_model *m;
    oq_graph *g;             /* m->graph */
    size_t fold_max_bytes;   /* resolved oq_prepare_options.fold_max_bytes */
    oq_prepare_result *r;
    oq_err *err;
} prep_ctx;

/* ---- graph queries (producer and consumer links are kept valid by every edit) ------ */

bool prep_is_input(const oq_graph *g, const oq_value *v);
bool prep_is_output(const oq_graph *g, const oq_value *v);
/* A constant of g that no caller can override: v has a constant and is not a graph input. */
bool prep_is_constant(const oq_graph *g, const oq_value *v);
/* The float constant v (see prep_is_constant) as a tensor, or NULL. */
const oq_tensor *prep_float_constant(const oq_graph *g, const oq_value *v);
/* The one node that reads v, when it is v's only use, reads it as a plain
 * input (not from inside a subgraph) and v is not a graph output; else NULL. */
oq_node *prep_sole_reader(const oq_graph *g, const oq_value *v);
/* True when a subgraph of some node of g reads v. */
bool prep_read_by_subgraph(const oq_graph *g, const oq_value *v);

/* ---- graph edits ----------------------------------------------------------------- */

/* A new initializer holding t (ownership taken, also on failure), named base
 * or base_N when base is taken, with its tensor type declared. NULL with err set. */
oq_value *prep_new_constant(prep_ctx *c, const char *base, oq_tensor *t);
/* Moves *t into a new heap tensor (ownership passes; *t is cleared). NULL with err set. */
oq_tensor *prep_box(oq_tensor *t, oq_err *err);

/* ---- the passes: each counts what it did in c->r ----------------------------------- */

/* cleanup.c */
oq_status prep_inputs_to_constants(prep_ctx *c);
oq_status prep_remove_identities(prep_ctx *c);
oq_status prep_remove_dead(prep_ctx *c);
/* fold.c */
oq_status prep_fold_constants(prep_ctx *c);
/* affine.c */
oq_status prep_fold_into_producers(prep_ctx *c);
oq_status prep_matmul_add_to_gemm(prep_ctx *c);

#endif
