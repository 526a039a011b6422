/* ops_control.c: control flow (If, Loop) and small structural ops: Identity,
 * Constant, Dropout (inference), Shape, Size, ConstantOfShape, Range, Cast,
 * CastLike. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/kernel.h"
#include "exec/ops.h"

/* Every dtype onnxq knows: ops that only move bytes accept them all. */
#define DT_ANY (((1u << OQ_DTYPE_COUNT) - 1) & ~1u)
/* The types Cast converts between. */
#define DT_CASTABLE                                                                                        \
    (OQ_DT(FLOAT) | OQ_DT(DOUBLE) | OQ_DT(FLOAT16) | OQ_DT(BFLOAT16) | OQ_DT(INT8) | OQ_DT(INT16) |      \
     OQ_DT(INT32) | OQ_DT(INT64) | OQ_DT(UINT8) | OQ_DT(UINT16) | OQ_DT(UINT32) | OQ_DT(UINT64) | OQ_DT(BOOL))

/* ---- helpers ------------------------------------------------------------------- */

/* Copies src's elements into y (same dtype and element count); strings are duplicated. */
static oq_status copy_elems(oq_kernel_ctx *c, oq_tensor *y, const oq_tensor *src)
{
    int64_t n = oq_tensor_numel(src);
    if (src->dtype == OQ_DTYPE_STRING) {
        char *const *from = src->data;
        char **to = y->data;
        for (int64_t i = 0; i < n; i++)
            if (!(to[i] = strdup(from[i] ? from[i] : "")))
                return oq_errf(c->err, OQ_ENOMEM, "out of memory copying strings");
    } else if (n > 0) {
        memcpy(y->data, src->data, oq_dtype_storage(src->dtype, n));
    }
    return OQ_OK;
}

/* Output k becomes a copy of src. */
static oq_status copy_to_output(oq_kernel_ctx *c, int k, const oq_tensor *src)
{
    oq_tensor *y = oq_kernel_output(c, k, src->dtype, src->rank, src->dims);
    return y ? copy_elems(c, y, src) : c->err->status;
}

/* Reads a scalar (or one-element) input as int64. */
static oq_status scalar_i64(oq_kernel_ctx *c, const oq_tensor *t, const char *what, int64_t *out)
{
    if (oq_tensor_numel(t) != 1 || t->dtype == OQ_DTYPE_STRING)
        return OQ_KERR(c, "%s must be a numeric tensor of one element", what);
    *out = oq_tensor_get_i64(t, 0);
    return OQ_OK;
}

static const oq_graph *graph_attr(oq_kernel_ctx *c, const char *name)
{
    const oq_attr *a = oq_node_attr(c->node, name);
    if (!a || a->type != OQ_ATTR_GRAPH || !a->g) {
        OQ_KERR(c, "attribute '%s' (a graph) is required", name);
        return NULL;
    }
    return a->g;
}

/* ---- If --------------------------------------------------------------------------- */

static oq_status op_if(oq_kernel_ctx *c)
{
    const oq_tensor *cond = oq_kernel_require(c, 0);
    int64_t flag = 0;
    oq_status st;
    if (!cond)
        return c->err->status;
    if ((st = scalar_i64(c, cond, "cond", &flag)))
        return st;
    const oq_graph *branch = graph_attr(c, flag ? "then_branch" : "else_branch");
    if (!branch)
        return c->err->status;
    if (branch->n_outputs < c->n_outputs)
        return OQ_KERR(c, "%s has %d outputs, the node %d", flag ? "then_branch" : "else_branch", branch->n_outputs,
                       c->n_outputs);
    oq_tensor *outs = calloc((size_t)(branch->n_outputs ? branch->n_outputs : 1), sizeof *outs);
    if (!outs)
        return oq_errf(c->err, OQ_ENOMEM, "out of memory");
    if ((st = oq_kernel_run_graph(c, branch, 0, NULL, outs)))
        goto fail;
    for (int k = 0; k < c->n_outputs && !st; k++)
        st = copy_to_output(c, k, &outs[k]);
fail:
    for (int k = 0; k < branch->n_outputs; k++)
        oq_tensor_release(&outs[k]);
    free(outs);
    return st;
}

/* ---- Loop ------------------------------------------------------------------------- */

/* Per-iteration values of one scan output, stacked at the end. */
typedef struct scan_list {
    int n, cap;
    oq_tensor *items; /* [n] owned */
} scan_list;

static oq_status scan_push(oq_kernel_ctx *c, scan_list *l, oq_tensor *t)
{
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 8;
        oq_tensor *ni = realloc(l->items, (size_t)nc * sizeof *ni);
        if (!ni)
            return oq_errf(c->err, OQ_ENOMEM, "out of memory");
        l->items = ni;
        l->cap = nc;
    }
    l->items[l->n++] = *t;
    memset(t, 0, sizeof *t);
    return OQ_OK;
}

/* Output k = the items of l stacked along a new leading axis. With no
 * iterations the output is empty, typed from the body's declaration `decl`. */
static oq_status scan_stack(oq_kernel_ctx *c, int k, const scan_list *l, const oq_value *decl)
{
    int64_t dims[OQ_MAX_RANK] = {0};
    if (l->n == 0) {
        int rank = decl->rank >= 0 && decl->rank < OQ_MAX_RANK ? decl->rank : 0;
        for (int d = 0; d < rank; d++)
            dims[d + 1] = decl->dims[d].value > 0 ? decl->dims[d].value : 0;
        oq_dtype dt = decl->dtype != OQ_DTYPE_UNDEFINED ? decl->dtype : OQ_DTYPE_FLOAT;
        return oq_kernel_output(c, k, dt, rank + 1, dims) ? OQ_OK : c->err->status;
    }
    const oq_tensor *first = &l->items[0];
    if (first->rank + 1 > OQ_MAX_RANK)
        return OQ_KUNSUP(c, "scan output %d would exceed rank %d", k, OQ_MAX_RANK);
    for (int i = 1; i < l->n; i++) {
        const oq_tensor *t = &l->items[i];
        if (t->dtype != first->dtype || t->rank != first->rank ||
            memcmp(t->dims, first->dims, (size_t)first->rank * sizeof t->dims[0]))
            return OQ_KERR(c, "scan output %d changes type or shape at iteration %d", k, i);
    }
    dims[0] = l->n;
    memcpy(dims + 1, first->dims, (size_t)first->rank * sizeof dims[0]);
    oq_tensor *y = oq_kernel_output(c, k, first->dtype, first->rank + 1, dims);
    if (!y)
        return c->err->status;
    int64_t per = oq_tensor_numel(first);
    size_t bytes = oq_dtype_storage(first->dtype, per);
    for (int i = 0; i < l->n; i++) {
        oq_tensor dst = *y; /* a view of item i's place in y */
        dst.rank = first->rank;
        memcpy(dst.dims, first->dims, sizeof dst.dims);
        dst.data = (char *)y->data + (size_t)i * bytes;
        oq_status st = copy_elems(c, &dst, &l->items[i]);
        if (st)
            return st;
    }
    return OQ_OK;
}

/* Loop: inputs (M?, cond?, v_initial...), body (iter, cond, v...) -> (cond,
 * v..., scan...), outputs (v_final..., scan_outputs...). Runs while
 * (M absent or iter < M) and (cond absent or cond); without a cond input the
 * body's cond output is ignored. */
static oq_status op_loop(oq_kernel_ctx *c)
{
    oq_status st = OQ_OK;
    const oq_graph *body = graph_attr(c, "body");
    if (!body)
        return c->err->status;
    int n_carried = c->n_inputs - 2;
    int n_scan = body->n_outputs - 1 - n_carried;
    if (n_carried < 0 || n_scan < 0 || body->n_inputs != 2 + n_carried || c->n_outputs > n_carried + n_scan)
        return OQ_KERR(c, "body has %d inputs and %d outputs, which does not fit %d loop-carried values and %d "
                          "node outputs", body->n_inputs, body->n_outputs, n_carried, c->n_outputs);
    const oq_tensor *tm = oq_kernel_input(c, 0), *tcond = oq_kernel_input(c, 1);
    int64_t trips = INT64_MAX, flag = 1;
    if (tm && (st = scalar_i64(c, tm, "M", &trips)))
        return st;
    if (tcond && (st = scalar_i64(c, tcond, "cond", &flag)))
        return st;

    int64_t iter = 0;
    uint8_t cond_byte = 1;
    oq_tensor iter_t = {.dtype = OQ_DTYPE_INT64, .rank = 0, .data = &iter, .nbytes = sizeof iter};
    oq_tensor cond_t = {.dtype = OQ_DTYPE_BOOL, .rank = 0, .data = &cond_byte, .nbytes = 1};
    const oq_tensor **body_in = calloc((size_t)(2 + n_carried), sizeof *body_in);
    oq_tensor *body_out = calloc((size_t)body->n_outputs, sizeof *body_out);
    oq_tensor *carried = calloc((size_t)(n_carried ? n_carried : 1), sizeof *carried); /* owned */
    scan_list *scans = calloc((size_t)(n_scan ? n_scan : 1), sizeof *scans);
    if (!body_in || !body_out || !carried || !scans) {
        st = oq_errf(c->err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    body_in[0] = &iter_t;
    body_in[1] = &cond_t;
    for (int k = 0; k < n_carried; k++)
        if (!(body_in[2 + k] = oq_kernel_input(c, 2 + k))) {
            st = OQ_KERR(c, "loop-carried input %d is missing", k);
            goto fail;
        }
    for (; iter < trips && flag; iter++) {
        cond_byte = flag != 0;
        if ((st = oq_kernel_run_graph(c, body, 2 + n_carried, body_in, body_out)))
            goto fail;
        if (tcond && (st = scalar_i64(c, &body_out[0], "the body's cond output", &flag)))
            goto fail;
        oq_tensor_release(&body_out[0]);
        for (int k = 0; k < n_carried; k++) {
            oq_tensor_release(&carried[k]);
            carried[k] = body_out[1 + k];
            memset(&body_out[1 + k], 0, sizeof body_out[1 + k]);
            body_in[2 + k] = &carried[k];
        }
        for (int j = 0; j < n_scan; j++)
            if ((st = scan_push(c, &scans[j], &body_out[1 + n_carried + j])))
                goto fail;
    }
    for (int k = 0; k < n_carried && k < c->n_outputs && !st; k++)
        st = copy_to_output(c, k, body_in[2 + k]);
    for (int j = 0; j < n_scan && n_carried + j < c->n_outputs && !st; j++)
        st = scan_stack(c, n_carried + j, &scans[j], body->outputs[1 + n_carried + j]);
fail:
    for (int k = 0; body_out && k < body->n_outputs; k++)
        oq_tensor_release(&body_out[k]);
    for (int k = 0; carried && k < n_carried; k++)
        oq_tensor_release(&carried[k]);
    for (int j = 0; scans && j < n_scan; j++) {
        for (int i = 0; i < scans[j].n; i++)
            oq_tensor_release(&scans[j].items[i]);
        free(scans[j].items);
    }
    free(scans);
    free(carried);
    free(body_out);
    free(body_in);
    return st;
}

/* ---- Identity, Constant, Dropout ---------------------------------------------------- */

static oq_status op_identity(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    return x ? copy_to_output(c, 0, x) : c->err->status;
}

/* Constant: the loader decoded the value into the output's constant; a node
 * built in memory may instead carry only its attribute. */
static oq_status op_constant(oq_kernel_ctx *c)
{
    const oq_value *v = c->n_outputs > 0 ? c->node->outputs[0] : NULL;
    if (v && v->constant)
        return copy_to_output(c, 0, v->constant);
    const oq_attr *a = oq_node_attr(c->node, "value");
    if (a && a->type == OQ_ATTR_TENSOR && a->t)
        return copy_to_output(c, 0, a->t);
    int64_t n = 1;
    oq_tensor *y;
    if ((a = oq_node_attr(c->node, "value_float")) && a->type == OQ_ATTR_FLOAT) {
        if (!(y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, 0, NULL)))
            return c->err->status;
        *(float *)y->data = a->f;
    } else if ((a = oq_node_attr(c->node, "value_int")) && a->type == OQ_ATTR_INT) {
        if (!(y = oq_kernel_output(c, 0, OQ_DTYPE_INT64, 0, NULL)))
            return c->err->status;
        *(int64_t *)y->data = a->i;
    } else if ((a = oq_node_attr(c->node, "value_floats")) && a->type == OQ_ATTR_FLOATS) {
        n = a->n;
        if (!(y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, 1, &n)))
            return c->err->status;
        memcpy(y->data, a->floats, (size_t)n * sizeof(float));
    } else if ((a = oq_node_attr(c->node, "value_ints")) && a->type == OQ_ATTR_INTS) {
        n = a->n;
        if (!(y = oq_kernel_output(c, 0, OQ_DTYPE_INT64, 1, &n)))
            return c->err->status;
        memcpy(y->data, a->ints, (size_t)n * sizeof(int64_t));
    } else {
        return OQ_KUNSUP(c, "no decoded value and no value/value_float(s)/value_int(s) attribute "
                            "(string and sparse constants are not supported)");
    }
    return OQ_OK;
}

/* Dropout at inference is the identity; its mask is all true (all ones of
 * the data type before opset 10). Training mode with a non-zero ratio is random
 * and not supported. */
static oq_status op_dropout(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    bool training;
    double ratio;
    if (c->opset >= 12) {
        const oq_tensor *r = oq_kernel_input(c, 1), *tm = oq_kernel_input(c, 2);
        ratio = r && oq_tensor_numel(r) > 0 ? oq_tensor_get_f64(r, 0) : 0.5;
        training = tm && oq_tensor_numel(tm) > 0 && oq_tensor_get_i64(tm, 0) != 0;
    } else {
        ratio = oq_node_attr_float(c->node, "ratio", 0.5f);
        training = c->opset < 7 && oq_node_attr_int(c->node, "is_test", 0) == 0;
    }
    if (training && ratio != 0)
        return OQ_KUNSUP(c, "training-mode dropout with ratio %g is random", ratio);
    oq_status st = copy_to_output(c, 0, x);
    if (st || c->n_outputs < 2 || !c->node->outputs[1])
        return st;
    oq_dtype mdt = c->opset >= 10 ? OQ_DTYPE_BOOL : x->dtype;
    oq_tensor *mask = oq_kernel_output(c, 1, mdt, x->rank, x->dims);
    if (!mask)
        return c->err->status;
    int64_t n = oq_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        switch (mdt) {
        case OQ_DTYPE_BOOL: ((uint8_t *)mask->data)[i] = 1; break;
        case OQ_DTYPE_FLOAT: ((float *)mask->data)[i] = 1.0f; break;
        case OQ_DTYPE_DOUBLE: ((double *)mask->data)[i] = 1.0; break;
        case OQ_DTYPE_FLOAT16: ((uint16_t *)mask->data)[i] = oq_f32_to_f16(1.0f); break;
        case OQ_DTYPE_BFLOAT16: ((uint16_t *)mask->data)[i] = oq_f32_to_bf16(1.0f); break;
        default: return OQ_KUNSUP(c, "mask of type %s", oq_dtype_name(mdt));
        }
    }
    return OQ_OK;
}

/* ---- Shape, Size, ConstantOfShape, Range ------------------------------------------- */

static oq_status op_shape(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int64_t r = x->rank, start = 0, end = r;
    if (c->opset >= 15) {
        start = oq_node_attr_int(c->node, "start", 0);
        end = oq_node_attr_int(c->node, "end", r);
    }
    if (start < 0)
        start += r;
    if (end < 0)
        end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t n = end > start ? end - start : 0;
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_INT64, 1, &n);
    if (!y)
        return c->err->status;
    if (n)
        memcpy(y->data, x->dims + start, (size_t)n * sizeof(int64_t));
    return OQ_OK;
}

static oq_status op_size(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_INT64, 0, NULL);
    if (!y)
        return c->err->status;
    *(int64_t *)y->data = oq_tensor_numel(x);
    return OQ_OK;
}

static oq_status op_constant_of_shape(oq_kernel_ctx *c)
{
    const oq_tensor *shape = oq_kernel_require(c, 0);
    if (!shape)
        return c->err->status;
    if (shape->dtype != OQ_DTYPE_INT64 || shape->rank != 1)
        return OQ_KERR(c, "the shape input must be a 1-D int64 tensor");
    int64_t rank = shape->dims[0];
    if (rank > OQ_MAX_RANK)
        return OQ_KUNSUP(c, "output rank %lld exceeds %d", (long long)rank, OQ_MAX_RANK);
    const oq_attr *a = oq_node_attr(c->node, "value");
    const oq_tensor *val = a && a->type == OQ_ATTR_TENSOR ? a->t : NULL;
    if (val && (oq_tensor_numel(val) != 1 || !(DT_CASTABLE & (1u << val->dtype))))
        return OQ_KUNSUP(c, "value must be one numeric or bool element, got %lld of %s",
                         (long long)oq_tensor_numel(val), oq_dtype_name(val->dtype));
    oq_tensor *y = oq_kernel_output(c, 0, val ? val->dtype : OQ_DTYPE_FLOAT, (int)rank, shape->data);
    if (!y)
        return c->err->status;
    if (!val)
        return OQ_OK; /* the default value is float 0 and outputs start zeroed */
    size_t esz = oq_dtype_storage(val->dtype, 1);
    int64_t n = oq_tensor_numel(y);
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)y->data + (size_t)i * esz, val->data, esz);
    return OQ_OK;
}

/* Range: ceil((limit - start) / delta) elements start, start + delta, ... */
static oq_status op_range(oq_kernel_ctx *c)
{
    const oq_tensor *t0 = oq_kernel_require(c, 0), *t1 = oq_kernel_require(c, 1), *t2 = oq_kernel_require(c, 2);
    if (!t0 || !t1 || !t2)
        return c->err->status;
    oq_dtype dt = t0->dtype;
    if (t1->dtype != dt || t2->dtype != dt || oq_tensor_numel(t0) != 1 || oq_tensor_numel(t1) != 1 ||
        oq_tensor_numel(t2) != 1)
        return OQ_KERR(c, "start, limit and delta must be one-element tensors of one type");
    bool is_float = dt == OQ_DTYPE_FLOAT || dt == OQ_DTYPE_DOUBLE;
    int64_t n;
    if (is_float) {
        double start = oq_tensor_get_f64(t0, 0), limit = oq_tensor_get_f64(t1, 0), delta = oq_tensor_get_f64(t2, 0);
        double count = ceil((limit - start) / delta);
        if (delta == 0 || isnan(count))
            return OQ_KERR(c, "delta must be non-zero and the bounds finite");
        if (count > (double)oq_tensor_limit())
            return oq_errf(c->err, OQ_ENOMEM, "range of %g elements exceeds the size limit", count);
        n = count > 0 ? (int64_t)count : 0;
    } else {
        int64_t start = oq_tensor_get_i64(t0, 0), limit = oq_tensor_get_i64(t1, 0), delta = oq_tensor_get_i64(t2, 0);
        if (delta == 0)
            return OQ_KERR(c, "delta must be non-zero");
        double diff = (double)limit - (double)start; /* exact enough to pick the sign and size */
        if (fabs(diff / (double)delta) > (double)oq_tensor_limit())
            return oq_errf(c->err, OQ_ENOMEM, "range exceeds the size limit");
        int64_t d = limit - start;
        if (delta > 0)
            n = d > 0 ? (d + delta - 1) / delta : 0;
        else
            n = d < 0 ? (d + delta + 1) / delta : 0;
    }
    oq_tensor *y = oq_kernel_output(c, 0, dt, 1, &n);
    if (!y)
        return c->err->status;
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case OQ_DTYPE_FLOAT:
            ((float *)y->data)[i] = *(const float *)t0->data + (float)i * *(const float *)t2->data;
            break;
        case OQ_DTYPE_DOUBLE:
            ((double *)y->data)[i] = *(const double *)t0->data + (double)i * *(const double *)t2->data;
            break;
        case OQ_DTYPE_INT16:
            ((int16_t *)y->data)[i] = (int16_t)(*(const int16_t *)t0->data + i * *(const int16_t *)t2->data);
            break;
        case OQ_DTYPE_INT32:
            ((int32_t *)y->data)[i] = (int32_t)(*(const int32_t *)t0->data + i * *(const int32_t *)t2->data);
            break;
        case OQ_DTYPE_INT64:
            ((int64_t *)y->data)[i] = *(const int64_t *)t0->data + i * *(const int64_t *)t2->data;
            break;
        default: return OQ_KUNSUP(c, "type %s", oq_dtype_name(dt));
        }
    }
    return OQ_OK;
}

/* ---- Cast, CastLike ---------------------------------------------------------------- */

/* One element in transit: integers keep all 64 bits, floats go through double. */
typedef enum num_kind { NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT } num_kind;
typedef struct num {
    num_kind kind;
    int64_t i;
    uint64_t u;
    double d;
} num;

static num read_num(const oq_tensor *t, int64_t k)
{
    const void *p = t->data;
    num v = {NUM_FLOAT, 0, 0, 0};
    switch (t->dtype) {
    case OQ_DTYPE_FLOAT: v.d = ((const float *)p)[k]; break;
    case OQ_DTYPE_DOUBLE: v.d = ((const double *)p)[k]; break;
    case OQ_DTYPE_FLOAT16: v.d = oq_f16_to_f32(((const uint16_t *)p)[k]); break;
    case OQ_DTYPE_BFLOAT16: v.d = oq_bf16_to_f32(((const uint16_t *)p)[k]); break;
    case OQ_DTYPE_INT8: v = (num){NUM_SIGNED, ((const int8_t *)p)[k], 0, 0}; break;
    case OQ_DTYPE_INT16: v = (num){NUM_SIGNED, ((const int16_t *)p)[k], 0, 0}; break;
    case OQ_DTYPE_INT32: v = (num){NUM_SIGNED, ((const int32_t *)p)[k], 0, 0}; break;
    case OQ_DTYPE_INT64: v = (num){NUM_SIGNED, ((const int64_t *)p)[k], 0, 0}; break;
    case OQ_DTYPE_BOOL: v = (num){NUM_UNSIGNED, 0, ((const uint8_t *)p)[k] != 0, 0}; break;
    case OQ_DTYPE_UINT8: v = (num){NUM_UNSIGNED, 0, ((const uint8_t *)p)[k], 0}; break;
    case OQ_DTYPE_UINT16: v = (num){NUM_UNSIGNED, 0, ((const uint16_t *)p)[k], 0}; break;
    case OQ_DTYPE_UINT32: v = (num){NUM_UNSIGNED, 0, ((const uint32_t *)p)[k], 0}; break;
    case OQ_DTYPE_UINT64: v = (num){NUM_UNSIGNED, 0, ((const uint64_t *)p)[k], 0}; break;
    default: break; /* excluded by the caller's type check */
    }
    return v;
}

static float num_f32(num v)
{
    return v.kind == NUM_FLOAT ? (float)v.d : v.kind == NUM_SIGNED ? (float)v.i : (float)v.u;
}

static double num_f64(num v)
{
    return v.kind == NUM_FLOAT ? v.d : v.kind == NUM_SIGNED ? (double)v.i : (double)v.u;
}

/* The value as 64 integer bits (narrower targets keep the low bits). Floats
 * truncate toward zero; NaN gives 0 and out-of-range values saturate, where C
 * leaves the conversion undefined. */
static uint64_t num_bits(num v)
{
    if (v.kind == NUM_SIGNED)
        return (uint64_t)v.i;
    if (v.kind == NUM_UNSIGNED)
        return v.u;
    if (isnan(v.d))
        return 0;
    if (v.d >= 18446744073709551616.0)
        return UINT64_MAX;
    if (v.d >= 9223372036854775808.0)
        return (uint64_t)v.d;
    if (v.d < -9223372036854775808.0)
        return (uint64_t)INT64_MIN;
    return (uint64_t)(int64_t)v.d;
}

/* Cast to bfloat16 keeps the high 16 bits (NaN stays NaN), as ONNX's Cast
 * conformance data for these opsets expects; oq_f32_to_bf16 rounds instead. */
static uint16_t f32_to_bf16_truncate(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)(u >> 16);
}

static void write_num(oq_tensor *t, int64_t k, num v)
{
    void *p = t->data;
    switch (t->dtype) {
    case OQ_DTYPE_FLOAT: ((float *)p)[k] = num_f32(v); break;
    case OQ_DTYPE_DOUBLE: ((double *)p)[k] = num_f64(v); break;
    case OQ_DTYPE_FLOAT16: ((uint16_t *)p)[k] = oq_f32_to_f16(num_f32(v)); break;
    case OQ_DTYPE_BFLOAT16: ((uint16_t *)p)[k] = f32_to_bf16_truncate(num_f32(v)); break;
    case OQ_DTYPE_BOOL:
        ((uint8_t *)p)[k] = v.kind == NUM_FLOAT ? v.d != 0 : v.kind == NUM_SIGNED ? v.i != 0 : v.u != 0;
        break;
    case OQ_DTYPE_INT8: ((int8_t *)p)[k] = (int8_t)num_bits(v); break;
    case OQ_DTYPE_INT16: ((int16_t *)p)[k] = (int16_t)num_bits(v); break;
    case OQ_DTYPE_INT32: ((int32_t *)p)[k] = (int32_t)num_bits(v); break;
    case OQ_DTYPE_INT64: ((int64_t *)p)[k] = (int64_t)num_bits(v); break;
    case OQ_DTYPE_UINT8: ((uint8_t *)p)[k] = (uint8_t)num_bits(v); break;
    case OQ_DTYPE_UINT16: ((uint16_t *)p)[k] = (uint16_t)num_bits(v); break;
    case OQ_DTYPE_UINT32: ((uint32_t *)p)[k] = (uint32_t)num_bits(v); break;
    case OQ_DTYPE_UINT64: ((uint64_t *)p)[k] = num_bits(v); break;
    default: break; /* excluded by the caller's type check */
    }
}

/* Output 0 = x converted to type `to`. */
static oq_status cast_to(oq_kernel_ctx *c, const oq_tensor *x, int64_t to)
{
    if (!oq_dtype_valid((int)to) || !(DT_CASTABLE & (1u << to)))
        return OQ_KUNSUP(c, "cast to %s", oq_dtype_valid((int)to) ? oq_dtype_name((oq_dtype)to) : "an unknown type");
    if (!(DT_CASTABLE & (1u << x->dtype)))
        return OQ_KUNSUP(c, "cast from %s", oq_dtype_name(x->dtype));
    oq_tensor *y = oq_kernel_output(c, 0, (oq_dtype)to, x->rank, x->dims);
    if (!y)
        return c->err->status;
    if (x->dtype == y->dtype)
        return copy_elems(c, y, x);
    int64_t n = oq_tensor_numel(x);
    if (x->dtype == OQ_DTYPE_INT32 && y->dtype == OQ_DTYPE_FLOAT) {
        /* the integer GEMMs' outputs: the same rounding as write_num's, in a loop that vectorizes */
        const int32_t *xs = x->data;
        float *ys = y->data;
        for (int64_t k = 0; k < n; k++) ys[k] = (float)xs[k];
        return OQ_OK;
    }
    for (int64_t k = 0; k < n; k++)
        write_num(y, k, read_num(x, k));
    return OQ_OK;
}

static oq_status op_cast(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    const oq_attr *to = oq_node_attr(c->node, "to");
    if (!x)
        return c->err->status;
    if (!to || to->type != OQ_ATTR_INT)
        return OQ_KERR(c, "attribute 'to' (an int) is required");
    return cast_to(c, x, to->i);
}

static oq_status op_cast_like(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *like = oq_kernel_require(c, 1);
    return x && like ? cast_to(c, x, like->dtype) : c->err->status;
}

/* ---- table ------------------------------------------------------------------------ */

const oq_op_def oq_ops_control[] = {
    {"", "If", 1, DT_ANY, op_if},
    {"", "Loop", 1, DT_ANY, op_loop},
    {"", "Identity", 1, DT_ANY, op_identity},
    {"", "Constant", 1, DT_ANY, op_constant},
    {"", "Dropout", 1, OQ_DT(FLOAT) | OQ_DT(DOUBLE) | OQ_DT(FLOAT16) | OQ_DT(BFLOAT16) | OQ_DT(BOOL), op_dropout},
    {"", "Shape", 1, DT_ANY, op_shape},
    {"", "Size", 1, DT_ANY, op_size},
    {"", "ConstantOfShape", 9, DT_CASTABLE, op_constant_of_shape},
    {"", "Range", 11, OQ_DT(FLOAT) | OQ_DT(DOUBLE) | OQ_DT(INT16) | OQ_DT(INT32) | OQ_DT(INT64), op_range},
    {"", "Cast", 6, DT_CASTABLE, op_cast},
    {"", "CastLike", 15, DT_CASTABLE, op_cast_like},
};
const int oq_ops_control_count = (int)(sizeof oq_ops_control / sizeof oq_ops_control[0]);
