/* save.c: oq_model -> ModelProto, serialization and atomic saving (see
 * oq_onnx_io.h).
 *
 * Saving builds a fresh message tree whose nodes all live in one arena, packs
 * it and frees the arena; large buffers (tensor data, names) are borrowed from
 * the IR, never copied. A Constant node's tensor lives on its output value
 * (load.c moves it there); it is written back from that value, in the form
 * (value or value_float(s)/value_int(s)/value_string(s)) the node had. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/proto.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_onnx_io.h"

/* ---- types ---------------------------------------------------------------------- */

/* TypeProto declaring v's type in c's arena (its kept bytes for opaque types);
 * NULL for an untyped value or on failure (err set). */
static TypeProto *type_to_proto(pb_save_ctx *c, const oq_value *v)
{
    if (v->kind == OQ_TYPE_OPAQUE) {
        ProtobufCAllocator al = pb_arena_allocator(&c->a);
        TypeProto *tp = onnx__type_proto__unpack(&al, v->type_bytes_len, v->type_bytes);
        if (!tp)
            oq_errf(c->err, OQ_EINVAL, "value '%s': its kept type does not parse", v->name);
        return tp;
    }
    if (v->kind != OQ_TYPE_TENSOR)
        return NULL;
    TypeProto *tp = NEW_MSG(c, TypeProto, ONNX__TYPE_PROTO__INIT);
    TypeTensor *tt = NEW_MSG(c, TypeTensor, ONNX__TYPE_PROTO__TENSOR__INIT);
    if (!tp || !tt)
        return NULL;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = v->dtype != OQ_DTYPE_UNDEFINED;
    tt->elem_type = (int32_t)v->dtype;
    if (v->rank < 0)
        return tp;
    TensorShapeProto *sp = NEW_MSG(c, TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
    if (!sp || !(sp->dim = pb_arr_new(c, (size_t)v->rank, sizeof *sp->dim)))
        return NULL;
    sp->n_dim = (size_t)v->rank;
    for (int i = 0; i < v->rank; i++) {
        Dimension *d = NEW_MSG(c, Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
        if (!d)
            return NULL;
        if (v->dims[i].value >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v->dims[i].value;
        } else if (v->dims[i].param) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = v->dims[i].param;
        }
        sp->dim[i] = d;
    }
    tt->shape = sp;
    return tp;
}

/* ValueInfoProto for v (name, doc, type; strings borrowed); NULL sets err. */
static ValueInfoProto *value_info_to_proto(pb_save_ctx *c, const oq_value *v)
{
    ValueInfoProto *vi = NEW_MSG(c, ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
    if (!vi)
        return NULL;
    vi->name = v->name;
    vi->doc_string = pb_opt_str(v->doc_string);
    if (v->kind != OQ_TYPE_NONE && !(vi->type = type_to_proto(c, v)))
        return NULL;
    return vi;
}

/* ---- nodes and graphs ------------------------------------------------------------ */

static GraphProto *graph_to_proto(pb_save_ctx *c, const oq_graph *g);

/* AttributeProto for a (kept bytes re-parsed into the arena for opaque kinds,
 * lists and tensors borrowed); NULL sets err. */
static AttributeProto *attr_to_proto(pb_save_ctx *c, const oq_attr *a)
{
    if (a->raw) {
        ProtobufCAllocator al = pb_arena_allocator(&c->a);
        AttributeProto *ap = onnx__attribute_proto__unpack(&al, a->raw_len, a->raw);
        if (!ap)
            oq_errf(c->err, OQ_EINVAL, "attribute '%s': its kept bytes do not parse", a->name);
        return ap;
    }
    AttributeProto *ap = NEW_MSG(c, AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!ap)
        return NULL;
    ap->name = a->name;
    ap->ref_attr_name = pb_opt_str(a->ref_attr_name);
    ap->doc_string = pb_opt_str(a->doc_string);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    if (a->ref_attr_name && *a->ref_attr_name)
        return ap; /* a reference carries no value */
    size_t n = a->n > 0 ? (size_t)a->n : 0;
    switch (a->type) {
    case OQ_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case OQ_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case OQ_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)(a->s ? a->s : "");
        ap->s.len = a->s ? a->s_len : 0;
        break;
    case OQ_ATTR_TENSOR:
        if (!a->t || !(ap->t = pb_tensor_encode(c, a->t, NULL)))
            return a->t ? NULL : (oq_errf(c->err, OQ_EINVAL, "attribute '%s' has no tensor", a->name), NULL);
        break;
    case OQ_ATTR_GRAPH:
        if (!a->g || !(ap->g = graph_to_proto(c, a->g)))
            return a->g ? NULL : (oq_errf(c->err, OQ_EINVAL, "attribute '%s' has no graph", a->name), NULL);
        break;
    case OQ_ATTR_FLOATS:
        ap->n_floats = n;
        ap->floats = a->floats;
        break;
    case OQ_ATTR_INTS:
        ap->n_ints = n;
        ap->ints = a->ints;
        break;
    case OQ_ATTR_STRINGS:
        if (!(ap->strings = pb_arr_new(c, n, sizeof *ap->strings)))
            return NULL;
        ap->n_strings = n;
        for (size_t i = 0; i < n; i++) {
            ap->strings[i].data = (uint8_t *)a->strings[i];
            ap->strings[i].len = strlen(a->strings[i]);
        }
        break;
    case OQ_ATTR_TENSORS:
        if (!(ap->tensors = pb_arr_new(c, n, sizeof *ap->tensors)))
            return NULL;
        ap->n_tensors = n;
        for (size_t i = 0; i < n; i++)
            if (!(ap->tensors[i] = pb_tensor_encode(c, a->tensors[i], NULL)))
                return NULL;
        break;
    case OQ_ATTR_GRAPHS:
        if (!(ap->graphs = pb_arr_new(c, n, sizeof *ap->graphs)))
            return NULL;
        ap->n_graphs = n;
        for (size_t i = 0; i < n; i++)
            if (!(ap->graphs[i] = graph_to_proto(c, a->graphs[i])))
                return NULL;
        break;
    default:
        oq_errf(c->err, OQ_EINVAL, "attribute '%s' has type %d but no kept bytes", a->name, (int)a->type);
        return NULL;
    }
    return ap;
}

/* Attribute carrying a Constant node's tensor k, written in the form `form`
 * (a value_* attribute of the node) when the tensor still fits that form,
 * else as `value`. NULL form means `value`. */
static AttributeProto *constant_attr(pb_save_ctx *c, const oq_tensor *k, const oq_attr *form)
{
    AttributeProto *ap = NEW_MSG(c, AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!ap)
        return NULL;
    ap->has_type = 1;
    if (form) {
        bool list = form->type == OQ_ATTR_FLOATS || form->type == OQ_ATTR_INTS || form->type == OQ_ATTR_STRINGS;
        oq_dtype want = form->type == OQ_ATTR_FLOAT || form->type == OQ_ATTR_FLOATS ? OQ_DTYPE_FLOAT
                        : form->type == OQ_ATTR_INT || form->type == OQ_ATTR_INTS ? OQ_DTYPE_INT64
                                                                                  : OQ_DTYPE_STRING;
        if (k->dtype == want && k->rank == (list ? 1 : 0)) {
            ap->name = form->name;
            ap->type = (Onnx__AttributeProto__AttributeType)form->type;
            size_t n = (size_t)oq_tensor_numel(k);
            switch (form->type) {
            case OQ_ATTR_FLOAT:
                ap->has_f = 1;
                ap->f = *(const float *)k->data;
                break;
            case OQ_ATTR_INT:
                ap->has_i = 1;
                ap->i = *(const int64_t *)k->data;
                break;
            case OQ_ATTR_STRING: {
                const char *s = ((char *const *)k->data)[0];
                ap->has_s = 1;
                ap->s.data = (uint8_t *)(s ? s : "");
                ap->s.len = s ? strlen(s) : 0;
                break;
            }
            case OQ_ATTR_FLOATS:
                ap->n_floats = n;
                ap->floats = k->data;
                break;
            case OQ_ATTR_INTS:
                ap->n_ints = n;
                ap->ints = k->data;
                break;
            default: /* STRINGS */
                if (!(ap->strings = pb_arr_new(c, n, sizeof *ap->strings)))
                    return NULL;
                ap->n_strings = n;
                for (size_t i = 0; i < n; i++) {
                    const char *s = ((char *const *)k->data)[i];
                    ap->strings[i].data = (uint8_t *)(s ? s : "");
                    ap->strings[i].len = s ? strlen(s) : 0;
                }
            }
            return ap;
        }
    }
    ap->name = "value";
    ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    return (ap->t = pb_tensor_encode(c, k, NULL)) ? ap : NULL;
}

/* True for the value_* attribute names a Constant node may carry its tensor in. */
static bool is_constant_form(const char *name)
{
    static const char *const forms[] = {"value_float", "value_floats", "value_int",
                                        "value_ints",  "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (!strcmp(name, forms[i]))
            return true;
    return false;
}

/* NodeProto for n; a Constant node gets its tensor back from its output value.
 * NULL sets err. */
static NodeProto *node_to_proto(pb_save_ctx *c, const oq_node *n)
{
    NodeProto *np = NEW_MSG(c, NodeProto, ONNX__NODE_PROTO__INIT);
    if (!np || !(np->input = pb_arr_new(c, (size_t)n->n_inputs, sizeof(char *))) ||
        !(np->output = pb_arr_new(c, (size_t)n->n_outputs, sizeof(char *))) ||
        !(np->attribute = pb_arr_new(c, (size_t)n->n_attrs + 1, sizeof *np->attribute)))
        return NULL;
    np->n_input = (size_t)n->n_inputs;
    np->n_output = (size_t)n->n_outputs;
    for (int i = 0; i < n->n_inputs; i++)
        np->input[i] = n->inputs[i] ? n->inputs[i]->name : "";
    for (int i = 0; i < n->n_outputs; i++)
        np->output[i] = n->outputs[i] ? n->outputs[i]->name : "";
    np->name = pb_opt_str(n->name);
    np->op_type = n->op_type;
    np->domain = pb_opt_str(n->domain);
    np->doc_string = pb_opt_str(n->doc_string);

    const oq_tensor *k = NULL; /* a Constant node's tensor lives on its output value */
    if (!strcmp(n->op_type, "Constant") && (!n->domain || !*n->domain) && n->n_outputs > 0 && n->outputs[0])
        k = n->outputs[0]->constant;
    bool written = false;
    for (int i = 0; i < n->n_attrs; i++) {
        const oq_attr *a = &n->attrs[i];
        AttributeProto *ap;
        if (k && !written && (!strcmp(a->name, "value") || is_constant_form(a->name))) {
            ap = constant_attr(c, k, strcmp(a->name, "value") ? a : NULL);
            written = true;
        } else if (k && (!strcmp(a->name, "value") || is_constant_form(a->name))) {
            continue; /* a second value attribute: the constant is already written */
        } else {
            ap = attr_to_proto(c, a);
        }
        if (!ap)
            return NULL;
        np->attribute[np->n_attribute++] = ap;
    }
    if (k && !written && !oq_node_attr(n, "sparse_value")) {
        if (!(np->attribute[np->n_attribute] = constant_attr(c, k, NULL)))
            return NULL;
        np->n_attribute++;
    }
    return np;
}

/* GraphProto for g and its subgraphs: nodes in g's order, initializers and
 * value_info in value order. NULL sets err. */
static GraphProto *graph_to_proto(pb_save_ctx *c, const oq_graph *g)
{
    GraphProto *gp = NEW_MSG(c, GraphProto, ONNX__GRAPH_PROTO__INIT);
    size_t nv = (size_t)g->n_values;
    unsigned char *io = pb_arr_new(c, nv, 1);       /* values declared as graph input or output */
    unsigned char *produced = pb_arr_new(c, nv, 1); /* values some node of g writes */
    if (!gp || !io || !produced || !(gp->node = pb_arr_new(c, (size_t)g->n_nodes, sizeof *gp->node)) ||
        !(gp->input = pb_arr_new(c, (size_t)g->n_inputs, sizeof *gp->input)) ||
        !(gp->output = pb_arr_new(c, (size_t)g->n_outputs, sizeof *gp->output)) ||
        !(gp->initializer = pb_arr_new(c, nv, sizeof *gp->initializer)) ||
        !(gp->value_info = pb_arr_new(c, nv, sizeof *gp->value_info)))
        return NULL;
    gp->name = g->name ? g->name : "";
    gp->doc_string = pb_opt_str(g->doc_string);
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        if (!(gp->node[gp->n_node++] = node_to_proto(c, n)))
            return NULL;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] && n->outputs[k]->graph == g)
                produced[n->outputs[k]->id] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        if (!(gp->input[gp->n_input++] = value_info_to_proto(c, g->inputs[i])))
            return NULL;
        if (g->inputs[i]->graph == g)
            io[g->inputs[i]->id] = 1;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        if (!(gp->output[gp->n_output++] = value_info_to_proto(c, g->outputs[i])))
            return NULL;
        if (g->outputs[i]->graph == g)
            io[g->outputs[i]->id] = 1;
    }
    for (size_t i = 0; i < nv; i++) {
        const oq_value *v = g->values[i];
        /* initializers, and constants whose Constant node is gone (else they would be lost) */
        if (v->constant && (v->is_initializer || !produced[i])) {
            if (!(gp->initializer[gp->n_initializer++] = pb_tensor_encode(c, v->constant, v->name)))
                return NULL;
        } else if (v->kind != OQ_TYPE_NONE && !io[i]) {
            if (!(gp->value_info[gp->n_value_info++] = value_info_to_proto(c, v)))
                return NULL;
        }
    }
    return gp;
}

/* ModelProto for m (without its passthrough bytes); NULL sets err. */
static ModelProto *model_to_proto(pb_save_ctx *c, const oq_model *m)
{
    ModelProto *mp = NEW_MSG(c, ModelProto, ONNX__MODEL_PROTO__INIT);
    if (!mp || !(mp->opset_import = pb_arr_new(c, (size_t)m->n_opsets, sizeof *mp->opset_import)) ||
        !(mp->metadata_props = pb_arr_new(c, (size_t)m->n_metadata, sizeof *mp->metadata_props)))
        return NULL;
    mp->has_ir_version = 1;
    mp->ir_version = m->ir_version;
    mp->producer_name = pb_opt_str(m->producer_name);
    mp->producer_version = pb_opt_str(m->producer_version);
    mp->domain = pb_opt_str(m->domain);
    mp->has_model_version = m->model_version != 0;
    mp->model_version = m->model_version;
    mp->doc_string = pb_opt_str(m->doc_string);
    for (int i = 0; i < m->n_opsets; i++) {
        OpsetProto *op = NEW_MSG(c, OpsetProto, ONNX__OPERATOR_SET_ID_PROTO__INIT);
        if (!op)
            return NULL;
        op->domain = m->opsets[i].domain ? m->opsets[i].domain : "";
        op->has_version = 1;
        op->version = m->opsets[i].version;
        mp->opset_import[mp->n_opset_import++] = op;
    }
    for (int i = 0; i < m->n_metadata; i++)
        if (!(mp->metadata_props[mp->n_metadata_props++] = pb_entry_new(c, m->metadata[i].key, m->metadata[i].value)))
            return NULL;
    if (!m->graph) {
        oq_errf(c->err, OQ_EINVAL, "the model has no graph");
        return NULL;
    }
    if (!(mp->graph = graph_to_proto(c, m->graph)))
        return NULL;
    return mp;
}

/* ---- serialization ------------------------------------------------------------ */


/* Bytes of mp serialized with m's passthrough fields after it. */
static size_t model_bytes(const ModelProto *mp, const oq_model *m)
{
    return protobuf_c_message_get_packed_size(&mp->base) + m->passthrough_len;
}

oq_status oq_model_serialize(const oq_model *m, uint8_t **buf, size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    pb_save_ctx c = {.err = err};
    oq_status st = OQ_OK;
    ModelProto *mp = model_to_proto(&c, m);
    size_t n = mp ? model_bytes(mp, m) : 0;
    uint8_t *out = NULL;
    if (!mp)
        st = pb_status_of(err);
    else if (n > OQ_PROTOBUF_LIMIT)
        st = oq_errf(err, OQ_EUNSUPPORTED,
                     "the model serializes to %zu bytes, more than protobuf's 2 GB limit: save it to a file, "
                     "which keeps its constants in external data",
                     n);
    else if (!(out = malloc(n ? n : 1)))
        st = oq_errf(err, OQ_ENOMEM, "out of memory serializing %zu bytes", n);
    else {
        size_t k = protobuf_c_message_pack(&mp->base, out);
        if (m->passthrough_len) /* concatenated messages merge: these fields join the model */
            memcpy(out + k, m->passthrough, m->passthrough_len);
        *buf = out;
        *len = n;
    }
    pb_arena_free(&c.a);
    return st;
}

/* protobuf-c output buffer that streams into a file (a failure sticks in the file). */
typedef struct file_sink {
    ProtobufCBuffer base;
    oq_out *file;
    oq_err *err;
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_sink *s = (file_sink *)b;
    (void)oq_out_write(s->file, data, len, s->err);
}

/* Writes mp and m's passthrough bytes to the output `out`. */
static oq_status write_model(const ModelProto *mp, const oq_model *m, oq_out *out, oq_err *err)
{
    file_sink sink = {{.append = sink_append}, out, err};
    protobuf_c_message_pack_to_buffer(&mp->base, &sink.base);
    return oq_out_write(out, m->passthrough, m->passthrough_len, err);
}

/* Saves m to path and, when a tensor goes there, its external data to
 * path.data (see oq_model_save): in outputs of commit when it is set (its
 * oq_commit_finish renames them, the data first), else through temporaries
 * renamed here, the data first, so the new model never meets old data. */
static oq_status save_model(const oq_model *m, const char *path, const oq_save_options *opts, oq_commit *commit,
                            oq_err *err)
{
    pb_save_ctx c = {.err = err, .ext_threshold = opts ? opts->external_threshold : 0, .commit = commit};
    oq_out *model = NULL;
    char *data_path = NULL;
    ModelProto *mp = NULL;
    oq_status st = OQ_OK;
    if (!c.ext_threshold) { /* automatic: inline when protobuf can read it */
        if (!(mp = model_to_proto(&c, m))) {
            st = pb_status_of(err);
            goto done;
        }
        if (model_bytes(mp, m) > OQ_PROTOBUF_LIMIT) {
            pb_arena_free(&c.a);
            mp = NULL;
            c.ext_threshold = OQ_EXTERNAL_THRESHOLD;
        }
    }
    if (c.ext_threshold) {
        size_t n = strlen(path) + 6;
        if (!(data_path = malloc(n))) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(data_path, n, "%s.data", path);
        const char *slash = strrchr(data_path, '/');
        c.ext_location = slash ? slash + 1 : data_path;
        c.ext_path = data_path;
        if (!(mp = model_to_proto(&c, m))) {
            st = pb_status_of(err);
            goto done;
        }
        if (model_bytes(mp, m) > OQ_PROTOBUF_LIMIT) {
            st = oq_errf(err, OQ_EUNSUPPORTED,
                         "the model is %zu bytes even with its constants of %zu bytes or more in external data, "
                         "more than protobuf's 2 GB limit",
                         model_bytes(mp, m), c.ext_threshold);
            goto done;
        }
    }
    if (commit) { /* the commit owns both files and renames them */
        if (!(st = oq_commit_open(commit, path, &model, err)))
            st = write_model(mp, m, model, err);
        goto done;
    }
    if ((st = oq_out_open(&model, path, err)) || (st = write_model(mp, m, model, err)))
        goto done;
    /* both complete before either replaces anything */
    if ((c.ext && (st = oq_out_finish(c.ext, err))) || (st = oq_out_finish(model, err)) ||
        (c.ext && (st = oq_out_commit(c.ext, err))))
        goto done;
    st = oq_out_commit(model, err);
done:
    if (!commit) {
        oq_out_destroy(model);
        oq_out_destroy(c.ext);
    }
    pb_arena_free(&c.a);
    free(data_path);
    return st;
}

oq_status oq_model_save(const oq_model *m, const char *path, const oq_save_options *opts, oq_err *err)
{
    return save_model(m, path, opts, NULL, err);
}

oq_status oq_model_save_commit(const oq_model *m, oq_commit *commit, const char *path, const oq_save_options *opts,
                               oq_err *err)
{
    return save_model(m, path, opts, commit, err);
}

oq_status oq_model_serialized_size(const oq_model *m, size_t *len, oq_err *err)
{
    pb_save_ctx c = {.err = err};
    ModelProto *mp = model_to_proto(&c, m);
    *len = mp ? model_bytes(mp, m) : 0;
    oq_status st = mp ? OQ_OK : pb_status_of(err);
    pb_arena_free(&c.a);
    return st;
}
