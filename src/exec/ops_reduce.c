/* ops_reduce.c: Reduce* over axes, ArgMax/ArgMin, TopK and CumSum.
 *
 * Reductions accumulate in double for float inputs and in 64-bit integers
 * (wrapping) for integer inputs, then convert once per output. When the
 * reduced axes form the trailing block of the (merged) shape, each output is
 * one contiguous row and rows run in parallel; other axis sets walk the input
 * once, accumulating into a per-output scratch array. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/broadcast.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"

/* ---- accumulation ----------------------------------------------------------- */

/* How elements combine into an accumulator. */
enum red_kind { K_SUM, K_SUMSQ, K_L1, K_PROD, K_MAX, K_MIN, K_SUMEXP };

/* What the op does with the accumulator at the end. */
enum red_op { R_SUM, R_MEAN, R_SUMSQ, R_L1, R_L2, R_PROD, R_MAX, R_MIN, R_LOGSUM, R_LOGSUMEXP };

static const enum red_kind red_kind_of[] = {
    [R_SUM] = K_SUM, [R_MEAN] = K_SUM, [R_SUMSQ] = K_SUMSQ, [R_L1] = K_L1, [R_L2] = K_SUMSQ,
    [R_PROD] = K_PROD, [R_MAX] = K_MAX, [R_MIN] = K_MIN, [R_LOGSUM] = K_SUM, [R_LOGSUMEXP] = K_SUMEXP,
};

static inline double comb_f(enum red_kind k, double a, double v, double aux)
{
    switch (k) {
    case K_SUM: return a + v;
    case K_SUMSQ: return a + v * v;
    case K_L1: return a + fabs(v);
    case K_PROD: return a * v;
    case K_MAX: return (v > a || isnan(v)) ? v : a;
    case K_MIN: return (v < a || isnan(v)) ? v : a;
    case K_SUMEXP: return a + exp(v - aux);
    }
    return a;
}

static inline int64_t comb_i(enum red_kind k, int64_t a, int64_t v, double aux)
{
    (void)aux;
    switch (k) {
    case K_SUM: return (int64_t)((uint64_t)a + (uint64_t)v);
    case K_SUMSQ: return (int64_t)((uint64_t)a + (uint64_t)v * (uint64_t)v);
    case K_L1: return (int64_t)((uint64_t)a + (v < 0 ? 0 - (uint64_t)v : (uint64_t)v));
    case K_PROD: return (int64_t)((uint64_t)a * (uint64_t)v);
    case K_MAX: return v > a ? v : a;
    case K_MIN: return v < a ? v : a;
    case K_SUMEXP: break;
    }
    return a;
}

static double ident_f(enum red_kind k)
{
    return k == K_PROD ? 1.0 : k == K_MAX ? -INFINITY : k == K_MIN ? INFINITY : 0.0;
}

static int64_t ident_i(enum red_kind k)
{
    return k == K_PROD ? 1 : k == K_MAX ? INT64_MIN : k == K_MIN ? INT64_MAX : 0;
}

/* aux is the row maximum for LogSumExp. */
static double fin_f(enum red_op op, double a, int64_t count, double aux)
{
    switch (op) {
    case R_MEAN: return a / (double)count;
    case R_L2: return sqrt(a);
    case R_LOGSUM: return log(a);
    case R_LOGSUMEXP: return isinf(aux) ? aux : aux + log(a);
    default: return a;
    }
}

static int64_t fin_i(enum red_op op, int64_t a, int64_t count, double aux)
{
    (void)aux;
    switch (op) {
    case R_MEAN: return count ? a / count : 0;
    case R_L2: return (int64_t)sqrt((double)a);
    default: return a;
    }
}

typedef struct red_arg {
    enum red_op op;
    enum red_kind kind;
    const void *x;      /* input, dense */
    void *y;            /* output, dense (out numel) */
    void *acc;          /* general path: (out numel) accumulators, double or int64 */
    const double *aux;  /* general path, LogSumExp: (out numel) maxima; else NULL */
    int64_t n;          /* rows path: row length */
    int64_t count;      /* input elements per output */
} red_arg;

/* Per type T with accumulator A (double or int64_t), combine COMB, identity
 * IDENT and finalizer FIN:
 *   rows_DT:   oq_range_fn over rows (each output reduces one contiguous row);
 *   visit_DT:  oq_bcast_visit over the input, operand 0 = accumulator array;
 *   finish_DT: accumulators -> output. */
#define REDUCE_FNS(T, A, DT, COMB, IDENT, FIN)                                                  \
    static A row_##DT(enum red_kind k, const T *v, int64_t n, double aux)                        \
    {                                                                                           \
        A a = IDENT(k);                                                                         \
        switch (k) {                                                                            \
        case K_SUM: for (int64_t i = 0; i < n; i++) a = COMB(K_SUM, a, (A)v[i], aux); break;     \
        case K_SUMSQ: for (int64_t i = 0; i < n; i++) a = COMB(K_SUMSQ, a, (A)v[i], aux); break; \
        case K_L1: for (int64_t i = 0; i < n; i++) a = COMB(K_L1, a, (A)v[i], aux); break;       \
        case K_PROD: for (int64_t i = 0; i < n; i++) a = COMB(K_PROD, a, (A)v[i], aux); break;   \
        case K_MAX: for (int64_t i = 0; i < n; i++) a = COMB(K_MAX, a, (A)v[i], aux); break;     \
        case K_MIN: for (int64_t i = 0; i < n; i++) a = COMB(K_MIN, a, (A)v[i], aux); break;     \
        case K_SUMEXP:                                                                          \
            for (int64_t i = 0; i < n; i++) a = COMB(K_SUMEXP, a, (A)v[i], aux);                 \
            break;                                                                              \
        }                                                                                       \
        return a;                                                                               \
    }                                                                                           \
    static void rows_##DT(void *arg, int64_t r0, int64_t r1)                                    \
    {                                                                                           \
        const red_arg *p = arg;                                                                 \
        for (int64_t r = r0; r < r1; r++) {                                                     \
            const T *v = (const T *)p->x + r * p->n;                                            \
            double aux = 0.0;                                                                   \
            A a;                                                                                \
            if (p->kind == K_SUMEXP) {                                                          \
                aux = (double)row_##DT(K_MAX, v, p->n, 0.0);                                    \
                a = isinf(aux) ? (A)0 : row_##DT(K_SUMEXP, v, p->n, aux);                       \
            } else {                                                                            \
                a = row_##DT(p->kind, v, p->n, 0.0);                                            \
            }                                                                                   \
            ((T *)p->y)[r] = (T)FIN(p->op, a, p->count, aux);                                   \
        }                                                                                       \
    }                                                                                           \
    static void visit_##DT(void *arg, int64_t xo, const int64_t *ao, const int64_t *st,         \
                           int64_t n)                                                           \
    {                                                                                           \
        const red_arg *p = arg;                                                                 \
        const T *v = (const T *)p->x + xo;                                                      \
        A *acc = (A *)p->acc + ao[0];                                                           \
        if (st[0] == 0) {                                                                       \
            const double aux = p->aux ? p->aux[ao[0]] : 0.0;                                    \
            A r = row_##DT(p->kind, v, n, aux);                                                 \
            acc[0] = p->kind == K_PROD ? COMB(K_PROD, acc[0], r, aux)                           \
                     : p->kind == K_MAX ? COMB(K_MAX, acc[0], r, aux)                           \
                     : p->kind == K_MIN ? COMB(K_MIN, acc[0], r, aux)                           \
                                        : COMB(K_SUM, acc[0], r, aux);                          \
            return;                                                                             \
        }                                                                                       \
        for (int64_t i = 0; i < n; i++)                                                         \
            acc[i] = COMB(p->kind, acc[i], (A)v[i], p->aux ? p->aux[ao[0] + i] : 0.0);         \
    }                                                                                           \
    static void finish_##DT(const red_arg *p, int64_t m)                                        \
    {                                                                                           \
        const A *acc = p->acc;                                                                  \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const double aux = p->aux ? p->aux[i] : 0.0;                                        \
            ((T *)p->y)[i] = (T)FIN(p->op, acc[i], p->count, aux);                              \
        }                                                                                       \
    }

REDUCE_FNS(float, double, FLOAT, comb_f, ident_f, fin_f)
REDUCE_FNS(double, double, DOUBLE, comb_f, ident_f, fin_f)
REDUCE_FNS(int32_t, int64_t, INT32, comb_i, ident_i, fin_i)
REDUCE_FNS(int64_t, int64_t, INT64, comb_i, ident_i, fin_i)

typedef struct red_type {
    oq_range_fn rows;
    oq_bcast_visit visit;
    void (*finish)(const red_arg *p, int64_t m);
    bool is_float;
} red_type;

#define RED_TYPE(DT, F) [OQ_DTYPE_##DT] = {rows_##DT, visit_##DT, finish_##DT, F}
static const red_type red_types[OQ_DTYPE_COUNT] = {
    RED_TYPE(FLOAT, true), RED_TYPE(DOUBLE, true), RED_TYPE(INT32, false), RED_TYPE(INT64, false)};

/* ---- Reduce* -------------------------------------------------------------------- */

/* Marks reduced axes in red[rank] from the axes input (when given) or
 * attribute. Sets *none when no axes were named. */
static oq_status read_axes(oq_kernel_ctx *c, int rank, bool *red, bool *none)
{
    const oq_tensor *t = oq_kernel_input(c, 1);
    int n = 0;
    const int64_t *attr = NULL;
    if (t) {
        if (t->dtype != OQ_DTYPE_INT64)
            return OQ_KERR(c, "axes must be int64, not %s", oq_dtype_name(t->dtype));
        n = (int)oq_tensor_numel(t);
    } else {
        attr = oq_node_attr_ints(c->node, "axes", &n);
    }
    memset(red, 0, sizeof(bool) * (size_t)rank);
    *none = n == 0;
    for (int i = 0; i < n; i++) {
        int a = oq_norm_axis(c, t ? ((const int64_t *)t->data)[i] : attr[i], rank);
        if (a < 0)
            return c->err->status;
        red[a] = true;
    }
    return OQ_OK;
}

static oq_status run_reduce(oq_kernel_ctx *c, enum red_op op)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    const red_type *ty = &red_types[x->dtype];
    if (!ty->rows)
        return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(x->dtype));
    if (!ty->is_float && (op == R_LOGSUM || op == R_LOGSUMEXP))
        return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(x->dtype));
    bool red[OQ_MAX_RANK], none;
    oq_status st = read_axes(c, x->rank, red, &none);
    if (st)
        return st;
    const bool keepdims = oq_node_attr_int(c->node, "keepdims", 1) != 0;
    if (none && oq_node_attr_int(c->node, "noop_with_empty_axes", 0)) {
        oq_tensor *y = oq_kernel_output(c, 0, x->dtype, x->rank, x->dims);
        if (!y)
            return c->err->status;
        const size_t bytes = oq_dtype_storage(x->dtype, oq_tensor_numel(x));
        if (bytes)
            memcpy(y->data, x->data, bytes);
        return OQ_OK;
    }
    int64_t kdims[OQ_MAX_RANK], ydims[OQ_MAX_RANK];
    int yrank = 0;
    int64_t count = 1;
    for (int i = 0; i < x->rank; i++) {
        if (none)
            red[i] = true;
        kdims[i] = red[i] ? 1 : x->dims[i];
        if (red[i])
            count *= x->dims[i];
        if (!red[i] || keepdims)
            ydims[yrank++] = kdims[i];
    }
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, yrank, ydims);
    if (!y)
        return c->err->status;
    const int64_t m = oq_tensor_numel(y), xn = oq_tensor_numel(x);
    red_arg p = {.op = op, .kind = red_kind_of[op], .x = x->data, .y = y->data, .count = count};

    /* Rows path: the walk of x against the kept-dims output merges to
     * (rows, n) with the output stepping over rows only. */
    oq_bcast b;
    const int64_t *kd = kdims;
    oq_bcast_init(&b, x->rank, x->dims, 1, &x->rank, &kd);
    bool rows = (b.rank == 1 && b.strides[0][0] == 0) ||
                (b.rank == 2 && b.strides[0][0] == 1 && b.strides[0][1] == 0) ||
                (b.rank == 1 && b.strides[0][0] == 1);
    if (xn == 0 || rows) {
        p.n = m ? xn / m : 0;
        oq_par_run(c, m, p.n, ty->rows, &p);
        return OQ_OK;
    }
    /* General path: accumulate into scratch (8 bytes per output). */
    p.acc = oq_kernel_scratch(c, sizeof(double) * (size_t)m * (op == R_LOGSUMEXP ? 2 : 1));
    if (!p.acc)
        return c->err->status;
    double *accf = p.acc;
    int64_t *acci = p.acc;
    if (op == R_LOGSUMEXP) { /* pass 1: maxima into the second half */
        p.kind = K_MAX;
        for (int64_t i = 0; i < m; i++)
            accf[i] = -INFINITY;
        oq_bcast_walk(&b, 0, xn, ty->visit, &p);
        double *mx = accf + m;
        memcpy(mx, accf, sizeof(double) * (size_t)m);
        p.aux = mx;
        p.kind = K_SUMEXP;
    }
    for (int64_t i = 0; i < m; i++) {
        if (ty->is_float)
            accf[i] = ident_f(p.kind);
        else
            acci[i] = ident_i(p.kind);
    }
    oq_bcast_walk(&b, 0, xn, ty->visit, &p);
    ty->finish(&p, m);
    return OQ_OK;
}

static oq_status k_reduce_sum(oq_kernel_ctx *c) { return run_reduce(c, R_SUM); }
static oq_status k_reduce_mean(oq_kernel_ctx *c) { return run_reduce(c, R_MEAN); }
static oq_status k_reduce_sum_square(oq_kernel_ctx *c) { return run_reduce(c, R_SUMSQ); }
static oq_status k_reduce_l1(oq_kernel_ctx *c) { return run_reduce(c, R_L1); }
static oq_status k_reduce_l2(oq_kernel_ctx *c) { return run_reduce(c, R_L2); }
static oq_status k_reduce_prod(oq_kernel_ctx *c) { return run_reduce(c, R_PROD); }
static oq_status k_reduce_max(oq_kernel_ctx *c) { return run_reduce(c, R_MAX); }
static oq_status k_reduce_min(oq_kernel_ctx *c) { return run_reduce(c, R_MIN); }
static oq_status k_reduce_log_sum(oq_kernel_ctx *c) { return run_reduce(c, R_LOGSUM); }
static oq_status k_reduce_log_sum_exp(oq_kernel_ctx *c) { return run_reduce(c, R_LOGSUMEXP); }

/* ---- ArgMax / ArgMin --------------------------------------------------------------
 * x viewed as (outer, n, inner) around the axis; output (outer, inner) int64. */

typedef struct arg_arg {
    const void *x;
    int64_t *y;     /* (outer, inner) */
    int64_t n, inner;
    bool is_max, last; /* select_last_index: ties pick the last position */
} arg_arg;

/* `better` is true when v should replace best: strictly better, or equal
 * and ties go to the last index. NaN counts as the extreme value. */
#define ARG_FN(T, DT)                                                                  \
    static void argx_##DT(void *arg, int64_t o0, int64_t o1)                          \
    {                                                                                  \
        const arg_arg *p = arg;                                                        \
        for (int64_t o = o0; o < o1; o++) {                                            \
            for (int64_t j = 0; j < p->inner; j++) {                                   \
                const T *v = (const T *)p->x + o * p->n * p->inner + j;               \
                T best = v[0];                                                         \
                int64_t bi = 0;                                                        \
                for (int64_t k = 1; k < p->n; k++) {                                   \
                    const T e = v[k * p->inner];                                       \
                    bool better;                                                       \
                    if (best != best)                                                  \
                        better = false;                                                \
                    else if (e != e)                                                   \
                        better = true;                                                 \
                    else                                                               \
                        better = p->is_max ? (e > best || (p->last && e == best))      \
                                           : (e < best || (p->last && e == best));     \
                    if (better) {                                                      \
                        best = e;                                                      \
                        bi = k;                                                        \
                    }                                                                  \
                }                                                                      \
                p->y[o * p->inner + j] = bi;                                           \
            }                                                                          \
        }                                                                              \
    }
ARG_FN(float, FLOAT)
ARG_FN(double, DOUBLE)
ARG_FN(int32_t, INT32)
ARG_FN(int64_t, INT64)
ARG_FN(uint8_t, UINT8)
ARG_FN(int8_t, INT8)

static const oq_range_fn arg_fns[OQ_DTYPE_COUNT] = {
    [OQ_DTYPE_FLOAT] = argx_FLOAT, [OQ_DTYPE_DOUBLE] = argx_DOUBLE, [OQ_DTYPE_INT32] = argx_INT32,
    [OQ_DTYPE_INT64] = argx_INT64, [OQ_DTYPE_UINT8] = argx_UINT8,   [OQ_DTYPE_INT8] = argx_INT8,
};

static oq_status run_arg(oq_kernel_ctx *c, bool is_max)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    oq_range_fn fn = arg_fns[x->dtype];
    if (!fn)
        return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(x->dtype));
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x->rank);
    if (axis < 0)
        return c->err->status;
    if (x->dims[axis] == 0)
        return OQ_KERR(c, "cannot take %s over an empty axis", is_max ? "ArgMax" : "ArgMin");
    const bool keepdims = oq_node_attr_int(c->node, "keepdims", 1) != 0;
    int64_t ydims[OQ_MAX_RANK];
    int yrank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis)
            ydims[yrank++] = x->dims[i];
        else if (keepdims)
            ydims[yrank++] = 1;
    }
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_INT64, yrank, ydims);
    if (!y)
        return c->err->status;
    if (oq_tensor_numel(y) == 0) /* nothing to do, however many empty lines */
        return OQ_OK;
    arg_arg p = {.x = x->data, .y = y->data, .n = x->dims[axis],
                 .inner = oq_dims_prod(x->dims, axis + 1, x->rank), .is_max = is_max,
                 .last = oq_node_attr_int(c->node, "select_last_index", 0) != 0};
    oq_par_run(c, oq_dims_prod(x->dims, 0, axis), p.n * p.inner, fn, &p);
    return OQ_OK;
}

static oq_status k_argmax(oq_kernel_ctx *c) { return run_arg(c, true); }
static oq_status k_argmin(oq_kernel_ctx *c) { return run_arg(c, false); }

/* ---- TopK -----------------------------------------------------------------------
 * Each (outer, inner) slice along the axis is sorted by (value, index), with
 * ties going to the lower index; the first K are written. Results are always
 * sorted, which sorted=0 allows. */

typedef struct topk_item {
    double f;     /* float inputs */
    int64_t i;    /* integer inputs */
    int64_t idx;  /* position along the axis */
} topk_item;

/* NaN sorts as larger than every number. */
static int cmp_f(const topk_item *a, const topk_item *b)
{
    const bool na = isnan(a->f), nb = isnan(b->f);
    if (na || nb)
        return na == nb ? 0 : na ? 1 : -1;
    return (a->f > b->f) - (a->f < b->f);
}

static int topk_f_desc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = cmp_f(b, a);
    return r ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

static int topk_f_asc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = cmp_f(a, b);
    return r ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

static int topk_i_desc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = (b->i > a->i) - (b->i < a->i);
    return r ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

static int topk_i_asc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = (a->i > b->i) - (a->i < b->i);
    return r ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

static oq_status k_topk(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    const oq_dtype dt = x->dtype;
    if (dt != OQ_DTYPE_FLOAT && dt != OQ_DTYPE_DOUBLE && dt != OQ_DTYPE_INT32 && dt != OQ_DTYPE_INT64)
        return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(dt));
    int axis = oq_norm_axis(c, oq_node_attr_int(c->node, "axis", -1), x->rank);
    if (axis < 0)
        return c->err->status;
    int64_t k;
    if (c->opset >= 10) {
        const oq_tensor *kt = oq_kernel_require(c, 1);
        if (!kt)
            return c->err->status;
        if (kt->dtype != OQ_DTYPE_INT64 || oq_tensor_numel(kt) != 1)
            return OQ_KERR(c, "K must be a single int64");
        k = ((const int64_t *)kt->data)[0];
    } else {
        k = oq_node_attr_int(c->node, "k", -1);
    }
    const int64_t n = x->dims[axis];
    if (k < 0 || k > n)
        return OQ_KERR(c, "K is %lld but the axis has %lld elements", (long long)k, (long long)n);
    const bool largest = oq_node_attr_int(c->node, "largest", 1) != 0;
    int64_t ydims[OQ_MAX_RANK];
    memcpy(ydims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    ydims[axis] = k;
    oq_tensor *vals = oq_kernel_output(c, 0, dt, x->rank, ydims);
    if (!vals)
        return c->err->status;
    oq_tensor *idxs = oq_kernel_output(c, 1, OQ_DTYPE_INT64, x->rank, ydims);
    if (!idxs)
        return c->err->status;
    topk_item *items = oq_kernel_scratch(c, sizeof(topk_item) * (size_t)(n ? n : 1));
    if (!items)
        return c->err->status;
    const bool is_float = dt == OQ_DTYPE_FLOAT || dt == OQ_DTYPE_DOUBLE;
    int (*cmp)(const void *, const void *) =
        is_float ? (largest ? topk_f_desc : topk_f_asc) : (largest ? topk_i_desc : topk_i_asc);
    const int64_t outer = oq_dims_prod(x->dims, 0, axis), inner = oq_dims_prod(x->dims, axis + 1, x->rank);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            const int64_t base = o * n * inner + j;
            for (int64_t e = 0; e < n; e++) {
                const int64_t at = base + e * inner;
                topk_item *it = &items[e];
                it->idx = e;
                switch (dt) {
                case OQ_DTYPE_FLOAT: it->f = ((const float *)x->data)[at]; break;
                case OQ_DTYPE_DOUBLE: it->f = ((const double *)x->data)[at]; break;
                case OQ_DTYPE_INT32: it->i = ((const int32_t *)x->data)[at]; break;
                default: it->i = ((const int64_t *)x->data)[at]; break;
                }
            }
            qsort(items, (size_t)n, sizeof *items, cmp);
            const int64_t ybase = o * k * inner + j;
            for (int64_t e = 0; e < k; e++) {
                const int64_t at = ybase + e * inner;
                const topk_item *it = &items[e];
                ((int64_t *)idxs->data)[at] = it->idx;
                switch (dt) {
                case OQ_DTYPE_FLOAT: ((float *)vals->data)[at] = (float)it->f; break;
                case OQ_DTYPE_DOUBLE: ((double *)vals->data)[at] = it->f; break;
                case OQ_DTYPE_INT32: ((int32_t *)vals->data)[at] = (int32_t)it->i; break;
                default: ((int64_t *)vals->data)[at] = it->i; break;
                }
            }
        }
    }
    return OQ_OK;
}

/* ---- CumSum ---------------------------------------------------------------------
 * x viewed as (outer, n, inner) around the axis; each (outer, inner) line is
 * summed in order (or reversed), optionally excluding the current element. */

typedef struct cum_arg {
    const void *x;
    void *y;
    int64_t n, inner;
    bool exclusive, reverse;
} cum_arg;

#define CUM_FN(T, A, DT, ADD)                                                           \
    static void cum_##DT(void *arg, int64_t o0, int64_t o1)                            \
    {                                                                                   \
        const cum_arg *p = arg;                                                         \
        for (int64_t o = o0; o < o1; o++) {                                             \
            for (int64_t j = 0; j < p->inner; j++) {                                    \
                const T *v = (const T *)p->x + o * p->n * p->inner + j;                \
                T *w = (T *)p->y + o * p->n * p->inner + j;                            \
                A s = 0;                                                                \
                for (int64_t e = 0; e < p->n; e++) {                                    \
                    const int64_t at = (p->reverse ? p->n - 1 - e : e) * p->inner;     \
                    const A cur = (A)v[at];                                             \
                    if (p->exclusive) {                                                 \
                        w[at] = (T)s;                                                   \
                        s = ADD(s, cur);                                                \
                    } else {                                                            \
                        s = ADD(s, cur);                                                \
                        w[at] = (T)s;                                                   \
                    }                                                                   \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }
#define ADD_F(a, b) ((a) + (b))
#define ADD_I(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
CUM_FN(float, double, FLOAT, ADD_F)
CUM_FN(double, double, DOUBLE, ADD_F)
CUM_FN(int32_t, int64_t, INT32, ADD_I)
CUM_FN(int64_t, int64_t, INT64, ADD_I)

static const oq_range_fn cum_fns[OQ_DTYPE_COUNT] = {
    [OQ_DTYPE_FLOAT] = cum_FLOAT, [OQ_DTYPE_DOUBLE] = cum_DOUBLE,
    [OQ_DTYPE_INT32] = cum_INT32, [OQ_DTYPE_INT64] = cum_INT64};

static oq_status k_cumsum(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *at = oq_kernel_require(c, 1);
    if (!x || !at)
        return c->err->status;
    oq_range_fn fn = cum_fns[x->dtype];
    if (!fn)
        return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(x->dtype));
    if ((at->dtype != OQ_DTYPE_INT32 && at->dtype != OQ_DTYPE_INT64) || oq_tensor_numel(at) != 1)
        return OQ_KERR(c, "axis must be a single int32 or int64");
    int axis = oq_norm_axis(c, oq_tensor_get_i64(at, 0), x->rank);
    if (axis < 0)
        return c->err->status;
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, x->rank, x->dims);
    if (!y)
        return c->err->status;
    if (oq_tensor_numel(y) == 0)
        return OQ_OK;
    cum_arg p = {.x = x->data, .y = y->data, .n = x->dims[axis],
                 .inner = oq_dims_prod(x->dims, axis + 1, x->rank),
                 .exclusive = oq_node_attr_int(c->node, "exclusive", 0) != 0,
                 .reverse = oq_node_attr_int(c->node, "reverse", 0) != 0};
    oq_par_run(c, oq_dims_prod(x->dims, 0, axis), p.n * p.inner, fn, &p);
    return OQ_OK;
}

/* ---- the table --------------------------------------------------------------------
 * Reduce* take axes as an attribute before ReduceSum-13 / other Reduce*-18 and
 * as an optional input after; the kernel reads whichever the node has. */

#define RED_DT (OQ_DT(FLOAT) | OQ_DT(DOUBLE) | OQ_DT(INT32) | OQ_DT(INT64))
#define RED_F_DT (OQ_DT(FLOAT) | OQ_DT(DOUBLE) | OQ_DT(INT64)) /* int64: the axes input only */

const oq_op_def oq_ops_reduce[] = {
    {"", "ReduceSum", 1, RED_DT, k_reduce_sum},
    {"", "ReduceSum", 13, RED_DT, k_reduce_sum},
    {"", "ReduceMean", 1, RED_DT, k_reduce_mean},
    {"", "ReduceMean", 18, RED_DT, k_reduce_mean},
    {"", "ReduceSumSquare", 1, RED_DT, k_reduce_sum_square},
    {"", "ReduceSumSquare", 18, RED_DT, k_reduce_sum_square},
    {"", "ReduceL1", 1, RED_DT, k_reduce_l1},
    {"", "ReduceL1", 18, RED_DT, k_reduce_l1},
    {"", "ReduceL2", 1, RED_DT, k_reduce_l2},
    {"", "ReduceL2", 18, RED_DT, k_reduce_l2},
    {"", "ReduceProd", 1, RED_DT, k_reduce_prod},
    {"", "ReduceProd", 18, RED_DT, k_reduce_prod},
    {"", "ReduceMax", 1, RED_DT, k_reduce_max},
    {"", "ReduceMax", 18, RED_DT, k_reduce_max},
    {"", "ReduceMin", 1, RED_DT, k_reduce_min},
    {"", "ReduceMin", 18, RED_DT, k_reduce_min},
    {"", "ReduceLogSum", 1, RED_F_DT, k_reduce_log_sum},
    {"", "ReduceLogSum", 18, RED_F_DT, k_reduce_log_sum},
    {"", "ReduceLogSumExp", 1, RED_F_DT, k_reduce_log_sum_exp},
    {"", "ReduceLogSumExp", 18, RED_F_DT, k_reduce_log_sum_exp},
    {"", "ArgMax", 1, RED_DT | OQ_DT(UINT8) | OQ_DT(INT8), k_argmax},
    {"", "ArgMin", 1, RED_DT | OQ_DT(UINT8) | OQ_DT(INT8), k_argmin},
    {"", "TopK", 1, RED_DT, k_topk},
    {"", "TopK", 10, RED_DT, k_topk},
    {"", "CumSum", 11, RED_DT, k_cumsum},
};
const int oq_ops_reduce_count = (int)(sizeof oq_ops_reduce / sizeof oq_ops_reduce[0]);
