/* graph_internal.h: what graph.c shares with graph_clone.c and
 * graph_order.c. Internal to liboq; callers use oq_graph.h. */
#ifndef ONNXQ_GRAPH_INTERNAL_H
#define ONNXQ_GRAPH_INTERNAL_H

#include <stddef.h>

#include "onnxq/oq_graph.h"

/* Grows *arr (elements of `size` bytes, capacity *cap) to hold `need`. 0 on success. */
int oq_grow_array(void **arr, int *cap, int need, size_t size);
/* A new untyped value named `name` in g, which must not hold that name yet. NULL on failure (err set). */
oq_value *oq_graph_value_new(oq_graph *g, const char *name, oq_err *err);
/* A node of op_type in domain with room for its inputs and outputs, not yet in g
 * (its kind and opset resolved). NULL when out of memory. */
oq_node *oq_node_new(oq_graph *g, const char *op_type, const char *domain, const char *name, int n_inputs,
                     int n_outputs);
/* Frees a node that is in no graph's node list. NULL is a no-op. */
void oq_node_free(oq_node *n);

#endif
