/* builders.c: what every rewrite action builds with: per-value 8-bit info,
 * initializers, values and nodes, activation parameters and the
 * QuantizeLinear that makes a float value's twin. See rewrite.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rewrite.h"

enum { INFO_CHUNK = 256 };

oq_status oq_rw_info(rewriter *r, const oq_value *v, qinfo **out)
{
    int c = v->id / INFO_CHUNK;
    if (c >= r->n_chunks) {
        qinfo **p = realloc(r->info, (size_t)(c + 1) * sizeof *p);
        if (!p)
            return oq_errf(r->err, OQ_ENOMEM, "out of memory");
        memset(p + r->n_chunks, 0, (size_t)(c + 1 - r->n_chunks) * sizeof *p);
        r->info = p;
        r->n_chunks = c + 1;
    }
    if (!r->info[c] && !(r->info[c] = calloc(INFO_CHUNK, sizeof **r->info)))
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    *out = &r->info[c][v->id % INFO_CHUNK];
    return OQ_OK;
}

const qinfo *oq_rw_info_if_any(const rewriter *r, const oq_value *v)
{
    int c = v->id / INFO_CHUNK;
    return c < r->n_chunks && r->info[c] ? &r->info[c][v->id % INFO_CHUNK] : NULL;
}

oq_status oq_rw_initializer(rewriter *r, const char *base, oq_tensor *t, oq_value **out)
{
    return oq_graph_add_initializer(r->g, base, t, out, r->err);
}

oq_status oq_rw_initializer_from(rewriter *r, const char *base, oq_tensor *t, oq_value **out)
{
    oq_tensor *b = malloc(sizeof *b);
    if (!b) {
        oq_tensor_release(t);
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    }
    *b = *t;
    memset(t, 0, sizeof *t);
    return oq_rw_initializer(r, base, b, out);
}

oq_status oq_rw_scalar(rewriter *r, const char *base, oq_dtype dt, double value, oq_value **out)
{
    oq_tensor *t = oq_tensor_create(dt, 0, NULL, r->err);
    if (!t)
        return r->err->status;
    switch (dt) {
    case OQ_DTYPE_FLOAT: *(float *)t->data = (float)value; break;
    case OQ_DTYPE_UINT8: *(uint8_t *)t->data = (uint8_t)value; break;
    case OQ_DTYPE_INT8: *(int8_t *)t->data = (int8_t)value; break;
    case OQ_DTYPE_INT32: *(int32_t *)t->data = (int32_t)value; break;
    default: oq_tensor_destroy(t); return oq_errf(r->err, OQ_EINVAL, "no scalar of type %s", oq_dtype_name(dt));
    }
    return oq_rw_initializer(r, base, t, out);
}

oq_status oq_rw_value(rewriter *r, const char *base, const char *suffix, oq_value **out)
{
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *want = malloc(n);
    if (!want)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    snprintf(want, n, "%s%s", base, suffix);
    oq_status st = oq_graph_new_value(r->g, want, out, r->err);
    free(want);
    return st;
}

oq_status oq_rw_node(rewriter *r, oq_op_kind kind, int n_in, oq_value *const *in, int n_out, oq_value *const *out,
                     oq_node **node)
{
    const char *op = oq_op_kinds[kind].op_type, *first = out[0] ? out[0]->name : "";
    size_t len = strlen(first) + strlen(op) + 2;
    char *name = malloc(len);
    if (!name)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    snprintf(name, len, "%s_%s", first, op);
    oq_node *n = oq_graph_add_op(r->g, kind, name, n_in, in, n_out, out, r->err);
    free(name);
    if (!n)
        return r->err->status;
    if (node)
        *node = n;
    return OQ_OK;
}

oq_status oq_rw_inherit_name(rewriter *r, oq_node *repl, const oq_node *orig)
{
    if (!orig->name[0])
        return OQ_OK;
    char *name = strdup(orig->name);
    if (!name)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    free(repl->name);
    repl->name = name;
    return OQ_OK;
}

oq_status oq_rw_copy_conv_attrs(rewriter *r, oq_node *q, const oq_node *n)
{
    for (int i = 0; i < n->n_attrs; i++) {
        const oq_attr *a = &n->attrs[i];
        oq_status st = a->type == OQ_ATTR_INT      ? oq_node_set_attr_int(q, a->name, a->i, r->err)
                       : a->type == OQ_ATTR_INTS   ? oq_node_set_attr_ints(q, a->name, a->n, a->ints, r->err)
                       : a->type == OQ_ATTR_STRING ? oq_node_set_attr_string(q, a->name, a->s, r->err)
                                                   : oq_errf(r->err, OQ_EUNSUPPORTED,
                                                             "Conv attribute '%s' of an unexpected type", a->name);
        if (st)
            return st;
    }
    return OQ_OK;
}

oq_status oq_rw_params(rewriter *r, const oq_value *v, qinfo **out)
{
    qinfo *qi;
    oq_status st = oq_rw_info(r, v, &qi);
    if (st)
        return st;
    if (!qi->has_params) {
        const oq_plan *p = r->plan;
        if (v->graph != r->g || v->id >= p->n_values || !p->values[v->id].has_params)
            return oq_errf(r->err, OQ_EINVAL, "no calibration range for '%s'", v->name);
        qi->p = p->values[v->id].params;
        qi->has_params = true;
    }
    if (!qi->scale) {
        char base[512];
        snprintf(base, sizeof base, "%s_scale", v->name);
        if ((st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, qi->p.scale, &qi->scale)))
            return st;
        snprintf(base, sizeof base, "%s_zero_point", v->name);
        if ((st = oq_rw_scalar(r, base, r->act_type, qi->p.zero_point, &qi->zp)))
            return st;
    }
    *out = qi;
    return OQ_OK;
}

oq_status oq_rw_quantized(rewriter *r, oq_value *v, oq_value **twin)
{
    qinfo *qi;
    oq_value *q;
    oq_status st = oq_rw_params(r, v, &qi);
    if (st)
        return st;
    if (!qi->twin) {
        oq_value *in[3] = {v, qi->scale, qi->zp};
        if ((st = oq_rw_value(r, v->name, "_quantized", &q)) ||
            (st = oq_rw_node(r, OQ_OP_QUANTIZE_LINEAR, 3, in, 1, &q, NULL)))
            return st;
        qi->twin = q;
    }
    *twin = qi->twin;
    return OQ_OK;
}

oq_status oq_rw_set_twin(rewriter *r, const oq_value *v, oq_value *tw, oq_qparams p, oq_value *scale, oq_value *zp)
{
    char base[512];
    oq_status st;
    qinfo *vi;
    if (!scale) {
        snprintf(base, sizeof base, "%s_scale", v->name);
        if ((st = oq_rw_scalar(r, base, OQ_DTYPE_FLOAT, p.scale, &scale)))
            return st;
    }
    if (!zp) {
        snprintf(base, sizeof base, "%s_zero_point", v->name);
        if ((st = oq_rw_scalar(r, base, r->act_type, p.zero_point, &zp)))
            return st;
    }
    if ((st = oq_rw_info(r, v, &vi)))
        return st;
    *vi = (qinfo){.twin = tw, .scale = scale, .zp = zp, .p = p, .has_params = true};
    return OQ_OK;
}

oq_status oq_rw_twin_output(rewriter *r, oq_quant_node *rep, const oq_value *y, oq_value *yq)
{
    qinfo *yi;
    oq_status st = oq_rw_info(r, y, &yi);
    if (st)
        return st;
    yi->twin = yq;
    free(rep->output);
    rep->output = strdup(y->name);
    rep->twin = strdup(yq->name);
    if (!rep->output || !rep->twin)
        return oq_errf(r->err, OQ_ENOMEM, "out of memory");
    rep->out_scale = yi->p.scale;
    rep->out_zero_point = yi->p.zero_point;
    return OQ_OK;
}
