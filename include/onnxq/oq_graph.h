/* oq_graph.h: the in-memory model: values, nodes, attributes, constants,
 * subgraphs, topological order, producers/consumers and a mutation API.
 *
 * Producer and consumer links are kept valid by every edit of the API below
 * (adding, removing and rewiring nodes), so passes never re-index. Two things
 * need oq_graph_index (or oq_graph_sort) afterwards: setting a node's subgraph
 * attributes by hand (the loader does, then sorts), and edits inside a
 * subgraph, which do not update the enclosing graph's links to the node that
 * holds the subgraph.
 *
 * Ownership: an oq_model owns its oq_graph; a graph owns its values, nodes and
 * their attributes (which own subgraphs and attribute tensors). Values with a
 * constant own the decoded tensor. Strings are owned, NUL-terminated copies.
 * Nothing here points into protobuf messages. */
#ifndef ONNXQ_OQ_GRAPH_H
#define ONNXQ_OQ_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_op_kind.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_graph oq_graph;
typedef struct oq_node oq_node;

/* One dim of a declared shape: a number, a symbolic name, or unknown. */
typedef struct oq_dim {
    int64_t value; /* >= 0 when known, -1 otherwise */
    char *param;   /* symbolic name ("batch"), or NULL */
} oq_dim;

/* What ValueInfoProto.type held. Tensors are modelled; other kinds (sequence,
 * map, optional, sparse) are kept as serialized TypeProto bytes for saving. */
typedef enum oq_type_kind {
    OQ_TYPE_NONE = 0, /* no type declared */
    OQ_TYPE_TENSOR,
    OQ_TYPE_OPAQUE, /* non-tensor TypeProto, kept as bytes in type_bytes */
} oq_type_kind;

typedef struct oq_value {
    char *name;
    oq_graph *graph;    /* owner */
    int id;             /* index in graph->values; stable until oq_graph_prune */
    oq_type_kind kind;
    oq_dtype dtype;     /* OQ_DTYPE_UNDEFINED when not declared */
    int rank;           /* -1 when the shape is not declared */
    oq_dim *dims;       /* [rank] */
    uint8_t *type_bytes;      /* OQ_TYPE_OPAQUE: serialized TypeProto */
    size_t type_bytes_len;
    char *doc_string;
    oq_tensor *constant; /* initializer or Constant-node output, decoded; owned */
    bool is_initializer; /* constant came from graph.initializer (saved there) */
    oq_node *producer;   /* node writing it, or NULL (inputs, initializers, outer scope) */
    int n_consumers;     /* nodes reading it (also through a subgraph), each once */
    oq_node **consumers;
} oq_value;

/* AttributeProto.AttributeType numbers. */
typedef enum oq_attr_type {
    OQ_ATTR_UNDEFINED = 0,
    OQ_ATTR_FLOAT = 1,
    OQ_ATTR_INT = 2,
    OQ_ATTR_STRING = 3,
    OQ_ATTR_TENSOR = 4,
    OQ_ATTR_GRAPH = 5,
    OQ_ATTR_FLOATS = 6,
    OQ_ATTR_INTS = 7,
    OQ_ATTR_STRINGS = 8,
    OQ_ATTR_TENSORS = 9,
    OQ_ATTR_GRAPHS = 10,
    OQ_ATTR_SPARSE_TENSOR = 11,
    OQ_ATTR_SPARSE_TENSORS = 12,
    OQ_ATTR_TYPE_PROTO = 13,
    OQ_ATTR_TYPE_PROTOS = 14,
    OQ_ATTR_TYPE_COUNT
} oq_attr_type;

typedef struct oq_attr {
    char *name;
    oq_attr_type type;
    float f;
    int64_t i;
    char *s;          /* STRING: bytes + NUL */
    size_t s_len;
    oq_tensor *t;     /* TENSOR (owned) */
    oq_graph *g;      /* GRAPH (owned) */
    int n;            /* element count of the list kinds below */
    float *floats;
    int64_t *ints;
    char **strings;
    oq_tensor **tensors;
    oq_graph **graphs;
    char *ref_attr_name; /* inside functions */
    char *doc_string;
    uint8_t *raw;        /* sparse/type-proto kinds: the serialized AttributeProto */
    size_t raw_len;
} oq_attr;

struct oq_node {
    char *name;
    char *op_type;
    char *domain;       /* "" for the default ONNX domain ("ai.onnx" is normalized to "") */
    oq_op_kind kind;    /* (domain, op_type) resolved; change op_type with oq_node_set_op_type */
    char *doc_string;
    oq_graph *graph;    /* owner */
    int n_inputs;
    oq_value **inputs;  /* NULL for an omitted optional input ("") */
    int n_outputs;
    oq_value **outputs; /* NULL for an omitted optional output */
    int n_attrs;
    oq_attr *attrs;
    int64_t opset;      /* the model's opset for this node's domain, 0 if none imported */
    int order;          /* scratch for sorting/scheduling */
};

struct oq_graph {
    char *name;
    char *doc_string;
    oq_graph *parent;   /* enclosing graph for subgraphs, NULL at top level */
    struct oq_model *model;
    int n_nodes, cap_nodes;
    oq_node **nodes;    /* topological after oq_graph_sort */
    int n_values, cap_values;
    oq_value **values;  /* every value named in this graph; see oq_graph_find */
    int n_inputs;
    oq_value **inputs;
    int n_outputs;
    oq_value **outputs;
    void *index;        /* private name -> value hash */
};

typedef struct oq_opset {
    char *domain;  /* "" for ai.onnx */
    int64_t version;
} oq_opset;

typedef struct oq_kv {
    char *key;
    char *value;
} oq_kv;

typedef struct oq_model {
    int64_t ir_version;
    char *producer_name;
    char *producer_version;
    char *domain;
    int64_t model_version;
    char *doc_string;
    int n_opsets;
    oq_opset *opsets;
    int n_metadata;
    oq_kv *metadata;
    oq_graph *graph;
    /* Serialized ModelProto fields the IR does not model (functions,
     * training_info, unknown fields), re-emitted verbatim on save. */
    uint8_t *passthrough;
    size_t passthrough_len;
} oq_model;

/* ---- lifetime -------------------------------------------------------------- */

oq_model *oq_model_create(void);
void oq_model_destroy(oq_model *m);
/* Deep copy of m into *out (caller destroys): every graph, value, node,
 * attribute and constant, with the same value ids and node order, indexed.
 * Constants mapped from external data are shared, not copied: the copy's
 * tensors are read-only views of the same mapping (oq_tensor_share). */
oq_status oq_model_clone(oq_model **out, const oq_model *m, oq_err *err);
/* New empty graph; parent may be NULL. destroy(NULL) is a no-op. */
oq_graph *oq_graph_create(oq_model *model, oq_graph *parent);
void oq_graph_destroy(oq_graph *g);

/* Opset version the model imports for domain ("" or "ai.onnx" for the default). 0 if none. */
int64_t oq_model_opset(const oq_model *m, const char *domain);

/* ---- values ---------------------------------------------------------------- */

/* Value named `name` in g only (not enclosing graphs), or NULL. */
oq_value *oq_graph_find_local(const oq_graph *g, const char *name);
/* Value named `name` in g or, for subgraphs, the nearest enclosing graph. */
oq_value *oq_graph_find(const oq_graph *g, const char *name);
/* Returns the value named `name` in g, creating an untyped one if absent. NULL on OOM. */
oq_value *oq_graph_value(oq_graph *g, const char *name, oq_err *err);
/* A name not yet used in g or its enclosing graphs, of the form base or base_N (owned by caller). */
char *oq_graph_unique_name(const oq_graph *g, const char *base);
/* Checks tensor t against v's declaration: v must not be a non-tensor type;
 * dtype when declared; rank and fixed dims when a shape is declared
 * (symbolic and unknown dims match anything). src (may be NULL) names where
 * t came from (a file), for the message. */
oq_status oq_value_check_tensor(const oq_value *v, const oq_tensor *t, const char *src, oq_err *err);
/* Checks tensors t[0..n) fed to inputs vs[0..n) (each already checked as
 * above) against each other: dims declared with the same symbolic name (a
 * sequence length "seq" of token ids and their attention mask) must be
 * equal. */
oq_status oq_values_check_shared_dims(int n, const oq_value *const *vs, const oq_tensor *t, oq_err *err);
/* Declares the value's tensor type; dims may be NULL when rank < 0. */
oq_status oq_value_set_tensor_type(oq_value *v, oq_dtype dt, int rank, const oq_dim *dims, oq_err *err);
/* Adds (or replaces) a constant: takes ownership of t. as_initializer chooses
 * where it is saved: graph.initializer (true) or left to a Constant node. */
oq_status oq_graph_set_constant(oq_graph *g, oq_value *v, oq_tensor *t, bool as_initializer, oq_err *err);
/* A new untyped value in g named base, or base_N when base is taken. */
oq_status oq_graph_new_value(oq_graph *g, const char *base, oq_value **out, oq_err *err);
/* A new initializer in g named base (or base_N) holding t, typed after t.
 * Takes ownership of t, also on failure. */
oq_status oq_graph_add_initializer(oq_graph *g, const char *base, oq_tensor *t, oq_value **out, oq_err *err);
oq_status oq_graph_add_input(oq_graph *g, oq_value *v, oq_err *err);
oq_status oq_graph_add_output(oq_graph *g, oq_value *v, oq_err *err);

/* ---- nodes ----------------------------------------------------------------- */

/* Appends a node. Input names resolve in g, then enclosing graphs, else a new
 * value in g; output names resolve in g only, else a new value ("" or NULL =
 * omitted optional). The node name is copied (NULL = ""). Returns NULL on failure. */
oq_node *oq_graph_add_node(oq_graph *g, const char *op_type, const char *domain, const char *name,
                           int n_inputs, const char *const *inputs, int n_outputs,
                           const char *const *outputs, oq_err *err);
/* Appends a node of a recognised kind (not OQ_OP_OTHER) reading and writing
 * the given values (NULL = omitted): inputs of g or an enclosing graph,
 * outputs of g. The name is copied (NULL = ""). NULL on failure (err set). */
oq_node *oq_graph_add_op(oq_graph *g, oq_op_kind kind, const char *name, int n_inputs, oq_value *const *inputs,
                         int n_outputs, oq_value *const *outputs, oq_err *err);
/* Removes and frees a node (its values stay, possibly unused; see oq_graph_prune). */
void oq_graph_remove_node(oq_graph *g, oq_node *n);
/* Makes every node input and graph output that reads `from` read `to` instead. */
oq_status oq_graph_replace_uses(oq_graph *g, oq_value *from, oq_value *to, oq_err *err);
/* Sets node input k (k may equal n_inputs to append). */
oq_status oq_node_set_input(oq_node *n, int k, oq_value *v, oq_err *err);
/* Makes output k (< n_outputs) of n write v instead; v becomes n's when no
 * other node writes it (else the next oq_graph_index reports both writers). */
void oq_node_set_output(oq_node *n, int k, oq_value *v);
/* Renames n's operator (same domain) and resolves its kind again. */
oq_status oq_node_set_op_type(oq_node *n, const char *op_type, oq_err *err);

/* Attribute setters: replace an attribute of the same name or append one. */
oq_status oq_node_set_attr_int(oq_node *n, const char *name, int64_t v, oq_err *err);
oq_status oq_node_set_attr_float(oq_node *n, const char *name, float v, oq_err *err);
oq_status oq_node_set_attr_string(oq_node *n, const char *name, const char *v, oq_err *err);
oq_status oq_node_set_attr_ints(oq_node *n, const char *name, int count, const int64_t *v, oq_err *err);
/* Takes ownership of t. */
oq_status oq_node_set_attr_tensor(oq_node *n, const char *name, oq_tensor *t, oq_err *err);

/* Removes n's attribute `name` (and what it owns); no-op when absent. */
void oq_node_remove_attr(oq_node *n, const char *name);

/* Attribute lookup; NULL when absent. */
const oq_attr *oq_node_attr(const oq_node *n, const char *name);
/* Typed getters with defaults for absent attributes (type mismatches also give the default). */
int64_t oq_node_attr_int(const oq_node *n, const char *name, int64_t def);
float oq_node_attr_float(const oq_node *n, const char *name, float def);
const char *oq_node_attr_string(const oq_node *n, const char *name, const char *def);
/* INTS attribute: sets *count and returns the array (borrowed), or NULL with *count = 0. */
const int64_t *oq_node_attr_ints(const oq_node *n, const char *name, int *count);

/* Node input k's value, or NULL when k is out of range or the input is omitted. */
static inline oq_value *oq_node_input(const oq_node *n, int k)
{
    return k < n->n_inputs ? n->inputs[k] : NULL;
}

/* ---- structure ------------------------------------------------------------- */

/* Rebuilds producer and consumer links for g's values (not subgraphs') from
 * scratch; consumers include nodes reading a value implicitly through a
 * subgraph. Fails if two nodes write the same value or a node writes a graph
 * input or initializer. */
oq_status oq_graph_index(oq_graph *g, oq_err *err);
/* Orders g->nodes topologically (stable: file order among ready nodes).
 * Fails naming a node when an input names no value or the graph has a cycle,
 * and naming a graph output that no node, input or constant provides.
 * Subgraphs are sorted too. Implies oq_graph_index. */
oq_status oq_graph_sort(oq_graph *g, oq_err *err);
/* Removes values that nothing produces, reads or declares (after mutation),
 * renumbering value ids. */
void oq_graph_prune(oq_graph *g);

/* Values of n's own graph (or further out) that n's subgraph attributes read
 * without naming them as node inputs: the implicit inputs of If/Loop/Scan.
 * Returns a malloc'ed array (caller frees; NULL when none) and sets *count. */
oq_value **oq_node_implicit_inputs(const oq_node *n, int *count, oq_err *err);

/* Counts of parameters: elements and storage bytes over all constants in g
 * (initializers and Constant-node values; not subgraphs). */
void oq_graph_param_stats(const oq_graph *g, int64_t *n_tensors, int64_t *n_elements, int64_t *n_bytes);

#endif
