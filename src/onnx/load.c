/* load.c: ModelProto -> oq_model (see oq_onnx_io.h).
 *
 * Loading unpacks a ModelProto and moves everything into the IR (decoded
 * tensors, owned strings), so the protobuf message is freed before returning:
 * raw_data buffers are taken over, not copied, and external data is mapped
 * read-only (tensors borrow from the mapping, see oq_tensor.mapping).
 *
 * Not modelled, and how each is handled:
 *   - ModelProto.functions, training_info and unknown ModelProto fields: kept
 *     as bytes in oq_model.passthrough and appended to the saved model.
 *   - sparse_initializer: refused (OQ_EUNSUPPORTED).
 *   - sparse / type-proto attributes and attributes of unknown type: kept as
 *     the serialized AttributeProto in oq_attr.raw, written back unchanged.
 *   - non-tensor value types: serialized TypeProto in oq_value.type_bytes.
 *   - metadata_props of graphs, nodes, values and tensors, quantization
 *     annotations, dim denotations and node overloads are dropped.
 *
 * Constant nodes: the tensor of their `value` attribute becomes the output
 * value's constant and the attribute is removed from the node; save.c writes
 * it back from that constant, so edits of the constant are what gets saved. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_hash.h"
#include "onnxq/oq_onnx_io.h"

/* Error context names only the outer subgraph levels, so the cause still fits. */
#define CONTEXT_DEPTH 2

typedef struct load_ctx {
    oq_model *model;
    pb_ext_reader ext;
} load_ctx;

/* Replaces *dst (freed) with a copy of s ("" when NULL). */
static oq_status set_str(char **dst, const char *s, oq_err *err)
{
    char *copy = strdup(s ? s : "");
    if (!copy)
        return oq_errf(err, OQ_ENOMEM, "out of memory copying a string");
    free(*dst);
    *dst = copy;
    return OQ_OK;
}

/* ---- value types --------------------------------------------------------------- */

/* Declares v's type from tp (NULL = leave undeclared). Tensor types with a
 * known element type are modelled; any other TypeProto is kept as bytes. */
static oq_status set_value_type(oq_value *v, const TypeProto *tp, oq_err *err)
{
    if (!tp)
        return OQ_OK;
    const TypeTensor *tt = tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? tp->tensor_type : NULL;
    int elem = tt && tt->has_elem_type ? tt->elem_type : 0;
    if (tt && (elem == 0 || oq_dtype_valid(elem))) {
        const TensorShapeProto *sp = tt->shape;
        if (sp && sp->n_dim > INT_MAX / 2)
            return oq_errf(err, OQ_EINVAL, "value '%s': shape has too many dims", v->name);
        int rank = sp ? (int)sp->n_dim : -1;
        oq_dim *dims = rank > 0 ? calloc((size_t)rank, sizeof *dims) : NULL;
        if (rank > 0 && !dims)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        for (int i = 0; i < rank; i++) {
            const Dimension *d = sp->dim[i];
            dims[i].value = -1;
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0)
                dims[i].value = d->dim_value;
            else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                dims[i].param = d->dim_param; /* borrowed; oq_value_set_tensor_type copies */
        }
        oq_status st = oq_value_set_tensor_type(v, (oq_dtype)elem, rank, dims, err);
        free(dims);
        return st;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    oq_status st = pb_pack_alloc(&tp->base, &bytes, &len, err);
    if (st)
        return st;
    if (v->dims)
        for (int i = 0; i < v->rank; i++)
            free(v->dims[i].param);
    free(v->dims);
    free(v->type_bytes);
    v->dims = NULL;
    v->rank = -1;
    v->dtype = OQ_DTYPE_UNDEFINED;
    v->kind = OQ_TYPE_OPAQUE;
    v->type_bytes = bytes;
    v->type_bytes_len = len;
    return OQ_OK;
}

/* Declares name/type/doc of a ValueInfoProto on its value in g, creating it. */
static oq_value *value_from_info(oq_graph *g, const ValueInfoProto *vi, const char *role, size_t idx, bool retype,
                                 oq_err *err)
{
    if (!vi->name || !*vi->name) {
        oq_errf(err, OQ_EINVAL, "graph %s %zu has no name", role, idx);
        return NULL;
    }
    oq_value *v = oq_graph_value(g, vi->name, err);
    if (!v)
        return NULL;
    if ((retype || v->kind == OQ_TYPE_NONE) && set_value_type(v, vi->type, err))
        return NULL;
    if (vi->doc_string && *vi->doc_string && set_str(&v->doc_string, vi->doc_string, err))
        return NULL;
    return v;
}

/* ---- graphs, nodes, attributes ------------------------------------------------- */

/* Builds a new graph (owned by the caller) from gp; parent is the graph whose
 * node holds it (NULL at top level), depth its nesting. */
static oq_status graph_from_proto(load_ctx *c, GraphProto *gp, oq_graph *parent, int depth, oq_graph **out,
                                  oq_err *err);

/* Serialized copy of ap, for attribute kinds the IR keeps opaque. */
static oq_status attr_keep_raw(const AttributeProto *ap, oq_attr *a, oq_err *err)
{
    return pb_pack_alloc(&ap->base, &a->raw, &a->raw_len, err);
}

/* The attribute type of a proto that predates AttributeProto.type (IR 1). */
static oq_attr_type attr_guess_type(const AttributeProto *ap)
{
    if (ap->has_f)
        return OQ_ATTR_FLOAT;
    if (ap->has_i)
        return OQ_ATTR_INT;
    if (ap->has_s)
        return OQ_ATTR_STRING;
    if (ap->t)
        return OQ_ATTR_TENSOR;
    if (ap->g)
        return OQ_ATTR_GRAPH;
    if (ap->n_floats)
        return OQ_ATTR_FLOATS;
    if (ap->n_ints)
        return OQ_ATTR_INTS;
    if (ap->n_strings)
        return OQ_ATTR_STRINGS;
    if (ap->n_tensors)
        return OQ_ATTR_TENSORS;
    if (ap->n_graphs)
        return OQ_ATTR_GRAPHS;
    return OQ_ATTR_UNDEFINED;
}

/* Fills a (zeroed) from ap. g is the graph holding the node (parent of subgraphs). */
static oq_status attr_from_proto(load_ctx *c, oq_graph *g, AttributeProto *ap, oq_attr *a, int depth,
                                 oq_err *err)
{
    oq_status st;
    if (!ap->name || !*ap->name)
        return oq_errf(err, OQ_EINVAL, "attribute without a name");
    if ((st = set_str(&a->name, ap->name, err)))
        return st;
    if (ap->ref_attr_name && (st = set_str(&a->ref_attr_name, ap->ref_attr_name, err)))
        return st;
    if (ap->doc_string && *ap->doc_string && (st = set_str(&a->doc_string, ap->doc_string, err)))
        return st;
    a->type = ap->has_type ? (oq_attr_type)ap->type : attr_guess_type(ap);
    char what[200];
    snprintf(what, sizeof what, "attribute '%s'", ap->name);
    size_t n = 0;
    switch (a->type) {
    case OQ_ATTR_FLOAT:
        a->f = ap->f;
        return OQ_OK;
    case OQ_ATTR_INT:
        a->i = ap->i;
        return OQ_OK;
    case OQ_ATTR_STRING:
        if (!(a->s = pb_dup_bytes(ap->s.data, ap->s.len)))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        a->s_len = ap->s.len;
        return OQ_OK;
    case OQ_ATTR_TENSOR:
        if (!ap->t)
            return oq_errf(err, OQ_EINVAL, "%s: type TENSOR but no tensor", what);
        return pb_tensor_decode(&c->ext, ap->t, what, &a->t, err);
    case OQ_ATTR_GRAPH:
        if (!ap->g)
            return oq_errf(err, OQ_EINVAL, "%s: type GRAPH but no graph", what);
        return graph_from_proto(c, ap->g, g, depth + 1, &a->g, err);
    case OQ_ATTR_FLOATS:
        n = ap->n_floats;
        break;
    case OQ_ATTR_INTS:
        n = ap->n_ints;
        break;
    case OQ_ATTR_STRINGS:
        n = ap->n_strings;
        break;
    case OQ_ATTR_TENSORS:
        n = ap->n_tensors;
        break;
    case OQ_ATTR_GRAPHS:
        n = ap->n_graphs;
        break;
    default: /* sparse tensors, type protos, unknown kinds: kept serialized */
        return attr_keep_raw(ap, a, err);
    }
    if (n > INT_MAX)
        return oq_errf(err, OQ_EINVAL, "%s: list of %zu entries is too long", what, n);
    size_t esize = a->type == OQ_ATTR_FLOATS ? sizeof(float)
                   : a->type == OQ_ATTR_INTS ? sizeof(int64_t)
                                             : sizeof(void *);
    void *arr = calloc(n ? n : 1, esize);
    if (!arr)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    switch (a->type) {
    case OQ_ATTR_FLOATS:
        a->floats = arr;
        if (n)
            memcpy(a->floats, ap->floats, n * esize);
        a->n = (int)n;
        return OQ_OK;
    case OQ_ATTR_INTS:
        a->ints = arr;
        if (n)
            memcpy(a->ints, ap->ints, n * esize);
        a->n = (int)n;
        return OQ_OK;
    case OQ_ATTR_STRINGS:
        a->strings = arr;
        for (size_t i = 0; i < n; i++, a->n++)
            if (!(a->strings[i] = pb_dup_bytes(ap->strings[i].data, ap->strings[i].len)))
                return oq_errf(err, OQ_ENOMEM, "out of memory");
        return OQ_OK;
    case OQ_ATTR_TENSORS:
        a->tensors = arr;
        for (size_t i = 0; i < n; i++, a->n++) {
            char w[240];
            snprintf(w, sizeof w, "%s tensor %zu", what, i);
            if ((st = pb_tensor_decode(&c->ext, ap->tensors[i], w, &a->tensors[i], err)))
                return st;
        }
        return OQ_OK;
    default: /* GRAPHS */
        a->graphs = arr;
        for (size_t i = 0; i < n; i++, a->n++) {
            if ((st = graph_from_proto(c, ap->graphs[i], g, depth + 1, &a->graphs[i], err))) {
                if (depth <= CONTEXT_DEPTH)
                    oq_err_context(err, "%s graph %zu", what, i);
                return st;
            }
        }
        return OQ_OK;
    }
}

/* The constant a Constant node's value_* attribute stands for, as a new tensor. */
static oq_status constant_from_attr(const oq_attr *a, oq_tensor **out, oq_err *err)
{
    const char *nm = a->name;
    bool list = a->type == OQ_ATTR_FLOATS || a->type == OQ_ATTR_INTS || a->type == OQ_ATTR_STRINGS;
    oq_dtype dt = OQ_DTYPE_UNDEFINED;
    if (!strcmp(nm, "value_float") && a->type == OQ_ATTR_FLOAT)
        dt = OQ_DTYPE_FLOAT;
    else if (!strcmp(nm, "value_floats") && a->type == OQ_ATTR_FLOATS)
        dt = OQ_DTYPE_FLOAT;
    else if (!strcmp(nm, "value_int") && a->type == OQ_ATTR_INT)
        dt = OQ_DTYPE_INT64;
    else if (!strcmp(nm, "value_ints") && a->type == OQ_ATTR_INTS)
        dt = OQ_DTYPE_INT64;
    else if (!strcmp(nm, "value_string") && a->type == OQ_ATTR_STRING)
        dt = OQ_DTYPE_STRING;
    else if (!strcmp(nm, "value_strings") && a->type == OQ_ATTR_STRINGS)
        dt = OQ_DTYPE_STRING;
    *out = NULL;
    if (dt == OQ_DTYPE_UNDEFINED)
        return OQ_OK; /* not a value attribute (or sparse_value): no constant */
    int64_t len = list ? a->n : 1;
    oq_tensor *t = oq_tensor_create(dt, list ? 1 : 0, &len, err);
    if (!t)
        return pb_status_of(err);
    for (int64_t i = 0; i < len; i++) {
        if (dt == OQ_DTYPE_FLOAT)
            ((float *)t->data)[i] = list ? a->floats[i] : a->f;
        else if (dt == OQ_DTYPE_INT64)
            ((int64_t *)t->data)[i] = list ? a->ints[i] : a->i;
        else if (!(((char **)t->data)[i] = strdup(list ? a->strings[i] : a->s))) {
            oq_tensor_destroy(t);
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        }
    }
    *out = t;
    return OQ_OK;
}

/* Appends the node np (index idx in its graph) to g. */
static oq_status node_from_proto(load_ctx *c, oq_graph *g, NodeProto *np, size_t idx, int depth, oq_err *err)
{
    oq_status st;
    const char *name = np->name ? np->name : "";
    char label[300]; /* "node 3 'conv1' (Conv)" or "node 3 (Conv)" for errors */
    const char *op = np->op_type ? np->op_type : "?";
    if (*name)
        snprintf(label, sizeof label, "node %zu '%s' (%s)", idx, name, op);
    else
        snprintf(label, sizeof label, "node %zu (%s)", idx, op);
    if (!np->op_type || !*np->op_type)
        return oq_errf(err, OQ_EINVAL, "%s has no op_type", label);
    if (np->n_input > INT_MAX || np->n_output > INT_MAX)
        return oq_errf(err, OQ_EINVAL, "%s has too many inputs or outputs", label);
    oq_node *n = oq_graph_add_node(g, np->op_type, np->domain, name, (int)np->n_input,
                                   (const char *const *)np->input, (int)np->n_output,
                                   (const char *const *)np->output, err);
    if (!n) {
        oq_err_context(err, "%s", label);
        return pb_status_of(err);
    }
    if (np->doc_string && *np->doc_string && (st = set_str(&n->doc_string, np->doc_string, err)))
        return st;
    bool is_constant = !strcmp(n->op_type, "Constant") && !*n->domain;
    oq_tensor *constant = NULL;
    if (np->n_attribute) {
        if (np->n_attribute > INT_MAX)
            return oq_errf(err, OQ_EINVAL, "%s has too many attributes", label);
        if (!(n->attrs = calloc(np->n_attribute, sizeof *n->attrs)))
            return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        AttributeProto *ap = np->attribute[i];
        if (is_constant && ap->name && !strcmp(ap->name, "value") && ap->t &&
            (!ap->has_type || ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)) {
            oq_tensor_destroy(constant);
            if ((st = pb_tensor_decode(&c->ext, ap->t, "attribute 'value'", &constant, err)))
                goto fail;
            continue;
        }
        oq_attr *a = &n->attrs[n->n_attrs++];
        if ((st = attr_from_proto(c, g, ap, a, depth, err)))
            goto fail;
        if (is_constant && !constant && (st = constant_from_attr(a, &constant, err)))
            goto fail;
    }
    if (is_constant && constant) {
        if (n->n_outputs < 1 || !n->outputs[0]) {
            st = oq_errf(err, OQ_EINVAL, "Constant node without an output");
            goto fail;
        }
        if ((st = oq_graph_set_constant(g, n->outputs[0], constant, false, err)))
            goto fail;
        constant = NULL;
    }
    return OQ_OK;
fail:
    oq_tensor_destroy(constant);
    if (depth <= CONTEXT_DEPTH)
        oq_err_context(err, "%s", label);
    return st;
}

/* Builds a new graph (owned by the caller) from gp. */
static oq_status graph_from_proto(load_ctx *c, GraphProto *gp, oq_graph *parent, int depth, oq_graph **out,
                                  oq_err *err)
{
    oq_status st = OQ_OK;
    *out = NULL;
    if (depth > MAX_GRAPH_DEPTH)
        return oq_errf(err, OQ_EUNSUPPORTED, "subgraphs nested more than %d deep", MAX_GRAPH_DEPTH);
    oq_graph *g = oq_graph_create(c->model, parent);
    if (!g)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    if ((gp->name && (st = set_str(&g->name, gp->name, err))) ||
        (gp->doc_string && (st = set_str(&g->doc_string, gp->doc_string, err))))
        goto fail;
    if (gp->n_sparse_initializer) {
        const TensorProto *vt = gp->sparse_initializer[0]->values;
        st = oq_errf(err, OQ_EUNSUPPORTED, "sparse initializer '%s' is not supported",
                     vt && vt->name ? vt->name : "");
        goto fail;
    }
    /* initializers first, so saving (graph value order) keeps their file order */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        TensorProto *tp = gp->initializer[i];
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", tp->name ? tp->name : "");
        if (!tp->name || !*tp->name) {
            st = oq_errf(err, OQ_EINVAL, "initializer %zu has no name", i);
            goto fail;
        }
        oq_value *v = oq_graph_value(g, tp->name, err);
        if (!v) {
            st = pb_status_of(err);
            goto fail;
        }
        if (v->constant) {
            st = oq_errf(err, OQ_EINVAL, "%s appears twice", what);
            goto fail;
        }
        oq_tensor *t;
        if ((st = pb_tensor_decode(&c->ext, tp, what, &t, err)))
            goto fail;
        if ((st = oq_graph_set_constant(g, v, t, true, err))) {
            oq_tensor_destroy(t);
            goto fail;
        }
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        oq_value *v = value_from_info(g, gp->input[i], "input", i, true, err);
        if (!v || (st = oq_graph_add_input(g, v, err))) {
            st = pb_status_of(err);
            goto fail;
        }
    }
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = node_from_proto(c, g, gp->node[i], i, depth, err)))
            goto fail;
    for (size_t i = 0; i < gp->n_output; i++) {
        oq_value *v = value_from_info(g, gp->output[i], "output", i, true, err);
        if (!v || (st = oq_graph_add_output(g, v, err))) {
            st = pb_status_of(err);
            goto fail;
        }
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        if (!value_from_info(g, gp->value_info[i], "value_info", i, false, err)) {
            st = pb_status_of(err);
            goto fail;
        }
    }
    *out = g;
    return OQ_OK;
fail:
    if (parent && gp->name && *gp->name && depth <= CONTEXT_DEPTH)
        oq_err_context(err, "subgraph '%s'", gp->name);
    oq_graph_destroy(g);
    return st;
}

/* Keeps the ModelProto fields the IR does not model as serialized bytes. */
static oq_status keep_passthrough(oq_model *m, const ModelProto *mp, oq_err *err)
{
    ModelProto rest = ONNX__MODEL_PROTO__INIT;
    rest.n_functions = mp->n_functions;
    rest.functions = mp->functions;
    rest.n_training_info = mp->n_training_info;
    rest.training_info = mp->training_info;
    rest.base.n_unknown_fields = mp->base.n_unknown_fields;
    rest.base.unknown_fields = mp->base.unknown_fields;
    if (protobuf_c_message_get_packed_size(&rest.base) == 0)
        return OQ_OK;
    return pb_pack_alloc(&rest.base, &m->passthrough, &m->passthrough_len, err);
}

/* Fills c->model from mp: model fields, opsets, metadata, kept bytes, then the
 * graph, which is indexed and sorted. */
static oq_status model_from_proto(load_ctx *c, ModelProto *mp, oq_err *err)
{
    oq_model *m = c->model;
    oq_status st;
    if (!mp->graph)
        return oq_errf(err, OQ_EINVAL, "not a valid ONNX model (it has no graph)");
    m->ir_version = mp->ir_version;
    m->model_version = mp->model_version;
    if ((mp->producer_name && (st = set_str(&m->producer_name, mp->producer_name, err))) ||
        (mp->producer_version && (st = set_str(&m->producer_version, mp->producer_version, err))) ||
        (mp->domain && (st = set_str(&m->domain, mp->domain, err))) ||
        (mp->doc_string && (st = set_str(&m->doc_string, mp->doc_string, err))))
        return st;
    if (mp->n_opset_import > INT_MAX || mp->n_metadata_props > INT_MAX)
        return oq_errf(err, OQ_EINVAL, "too many opset imports or metadata entries");
    if (mp->n_opset_import && !(m->opsets = calloc(mp->n_opset_import, sizeof *m->opsets)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const OpsetProto *op = mp->opset_import[i];
        const char *d = op->domain && strcmp(op->domain, "ai.onnx") ? op->domain : "";
        m->opsets[m->n_opsets].version = op->version;
        if ((st = set_str(&m->opsets[m->n_opsets++].domain, d, err)))
            return st;
    }
    if (mp->n_metadata_props && !(m->metadata = calloc(mp->n_metadata_props, sizeof *m->metadata)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        oq_kv *kv = &m->metadata[m->n_metadata++];
        if ((st = set_str(&kv->key, mp->metadata_props[i]->key, err)) ||
            (st = set_str(&kv->value, mp->metadata_props[i]->value, err)))
            return st;
    }
    if ((st = keep_passthrough(m, mp, err)))
        return st;
    if ((st = graph_from_proto(c, mp->graph, NULL, 0, &m->graph, err)))
        return st;
    return oq_graph_sort(m->graph, err);
}

/* Unpacks buf[0..len) into *out (free with onnx__model_proto__free_unpacked
 * and pb_heap) after the nesting pre-check. */
static oq_status unpack_model(const uint8_t *buf, size_t len, ModelProto **out, oq_err *err)
{
    int wire = pb_wire_check(&onnx__model_proto__descriptor, buf, len);
    if (wire == WIRE_TOO_DEEP)
        return oq_errf(err, OQ_EUNSUPPORTED, "messages nested more than %d deep", MAX_MESSAGE_DEPTH);
    if (wire == WIRE_FIELD_ZERO)
        return oq_errf(err, OQ_EINVAL, "not a valid ONNX model (a protobuf field number is 0)");
    if (!(*out = onnx__model_proto__unpack(&pb_heap, len, buf)))
        return oq_errf(err, OQ_EINVAL, "not a valid ONNX model (protobuf parse failed)");
    return OQ_OK;
}

/* Builds *out from mp (freed here, whatever happens); external data resolves
 * against base_dir (NULL refuses it) and is mapped when `map`. */
static oq_status model_from_unpacked(oq_model **out, ModelProto *mp, const char *base_dir, bool map, oq_err *err)
{
    load_ctx c = {.model = oq_model_create(), .ext = {.base_dir = base_dir, .map = map}};
    oq_status st = c.model ? model_from_proto(&c, mp, err) : oq_errf(err, OQ_ENOMEM, "out of memory");
    onnx__model_proto__free_unpacked(mp, &pb_heap);
    pb_ext_reader_release(&c.ext);
    if (st) {
        oq_model_destroy(c.model);
        return st;
    }
    *out = c.model;
    return OQ_OK;
}

oq_status oq_model_load_buffer(oq_model **out, const uint8_t *buf, size_t len, const char *base_dir, oq_err *err)
{
    *out = NULL;
    ModelProto *mp;
    oq_status st = unpack_model(buf, len, &mp, err);
    return st ? st : model_from_unpacked(out, mp, base_dir, true, err);
}

oq_status oq_model_load_hashed(oq_model **out, const char *path, char sha256[65], oq_err *err)
{
    *out = NULL;
    uint8_t *buf;
    size_t len;
    ModelProto *mp = NULL;
    char *dir = NULL;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    if (sha256) {
        oq_sha256 h;
        oq_sha256_init(&h);
        oq_sha256_update(&h, buf, len);
        oq_sha256_hex(&h, sha256);
    }
    st = unpack_model(buf, len, &mp, err);
    free(buf); /* the message holds copies of everything it needs */
    if (!st && !(dir = oq_path_dir(path))) {
        onnx__model_proto__free_unpacked(mp, &pb_heap);
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
    } else if (!st) {
        st = model_from_unpacked(out, mp, dir, true, err);
    }
    if (st)
        oq_err_context(err, "%s", path);
    free(dir);
    return st;
}

oq_status oq_model_load(oq_model **out, const char *path, oq_err *err)
{
    return oq_model_load_hashed(out, path, NULL, err);
}
