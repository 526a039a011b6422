/* ops_elementwise.c: unary activations and math, broadcasting binary
 * arithmetic, comparisons and logic, variadic Sum/Mean/Max/Min, Where.
 *
 * Per-type loops are generated from the dtype lists in ops_common.h; integer
 * arithmetic wraps (computed in unsigned types) and integer division by zero
 * yields 0 instead of trapping. Bool tensors are one byte per element, read
 * as "non-zero is true" and written as 0/1. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "exec/broadcast.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qops.h"
#include "exec/vmath.h"

/* ---- shared state of one elementwise call --------------------------------- */

typedef struct ew_arg {
    oq_bcast b;            /* broadcast walk for binary/ternary ops */
    oq_bcast_visit visit;  /* per-run loop for the input dtype */
    void *out;
    const void *in[OQ_BCAST_MAX_OPS];
    oq_dtype in_dt[OQ_BCAST_MAX_OPS];
    float alpha, beta;     /* unary op parameters (slope, clip bounds, ...) */
    int64_t ilo, ihi;      /* integer clip bounds */
} ew_arg;

static void bcast_chunk(void *arg, int64_t begin, int64_t end)
{
    ew_arg *p = arg;
    oq_bcast_walk(&p->b, begin, end, p->visit, p);
}

static oq_status unsupported_type(oq_kernel_ctx *c, oq_dtype dt)
{
    return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(dt));
}

/* ---- unary ops ----------------------------------------------------------------
 * A unary loop is an oq_range_fn over flat element indices of x and y. */

#define UNARY_BODY(T, R, EXPR)                       \
    {                                                \
        const ew_arg *p = arg;                       \
        const T *xs = p->in[0];                      \
        R *ys = p->out;                              \
        for (int64_t i = begin; i < end; i++) {      \
            const T x = xs[i];                       \
            ys[i] = (R)(EXPR);                       \
        }                                            \
    }

#define UNARY_FN(NAME, DT, T, R, EXPR) \
    static void NAME##_##DT(void *arg, int64_t begin, int64_t end) UNARY_BODY(T, R, EXPR)

/* Float-only ops (x is float; p->alpha/beta are parameters). F_UNARY_V: the
 * loop is plain arithmetic that vectorizes, compiled for wider vectors too
 * (OQ_CLONED); the others call libm per element. */
#define F_UNARY(NAME, EXPR) UNARY_FN(NAME, FLOAT, float, float, EXPR)
#define F_UNARY_V(NAME, EXPR)                                                                        \
    OQ_CLONED(NAME##_FLOAT, (void *arg, int64_t begin, int64_t end), (arg, begin, end))             \
    UNARY_BODY(float, float, EXPR)

static inline float gelu_exact(float x) { return 0.5f * x * (1.0f + oq_verff(x * 0.70710678118654752f)); }
static inline float gelu_tanh(float x)
{
    const float k = 0.79788456080286536f; /* sqrt(2 / pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

F_UNARY_V(relu, x > 0.0f ? x : 0.0f)
F_UNARY_V(leaky_relu, x >= 0.0f ? x : p->alpha * x)
F_UNARY_V(sigmoid, oq_vsigmoidf(x))
F_UNARY_V(hard_sigmoid, oq_max_or(oq_min_or(p->alpha * x + p->beta, 1.0f), 0.0f))
F_UNARY_V(hard_swish, x * oq_max_or(oq_min_or(x / 6.0f + 0.5f, 1.0f), 0.0f))
F_UNARY(tanh, tanhf(x))
F_UNARY_V(erf, oq_verff(x))
F_UNARY_V(gelu, gelu_exact(x))
F_UNARY(gelu_tanh, gelu_tanh(x))
F_UNARY(sqrt, sqrtf(x))
F_UNARY_V(exp, oq_vexpf(x))
F_UNARY(log, logf(x))
F_UNARY(reciprocal, 1.0f / x)
F_UNARY(floor, floorf(x))
F_UNARY(ceil, ceilf(x))
F_UNARY(round, rintf(x)) /* ties to even under the default rounding mode */
F_UNARY(sin, sinf(x))
F_UNARY(cos, cosf(x))
F_UNARY(tan, tanf(x))
F_UNARY(asin, asinf(x))
F_UNARY(acos, acosf(x))
F_UNARY(atan, atanf(x))
F_UNARY(sinh, sinhf(x))
F_UNARY(cosh, coshf(x))
F_UNARY(asinh, asinhf(x))
F_UNARY(acosh, acoshf(x))
F_UNARY(atanh, atanhf(x))
F_UNARY(celu, fmaxf(0.0f, x) + fminf(0.0f, p->alpha * (expf(x / p->alpha) - 1.0f)))
F_UNARY(thresholded_relu, x > p->alpha ? x : 0.0f)
F_UNARY(shrink, x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0.0f)
UNARY_FN(isnan, FLOAT, float, uint8_t, isnan(x))
/* IsInf: alpha/beta are 1 when negative/positive infinities count. */
UNARY_FN(isinf, FLOAT, float, uint8_t, isinf(x) && (x > 0 ? p->beta != 0.0f : p->alpha != 0.0f))
F_UNARY(elu, x >= 0.0f ? x : p->alpha * (expf(x) - 1.0f))
F_UNARY(selu, p->beta * (x > 0.0f ? x : p->alpha * (expf(x) - 1.0f)))
F_UNARY(softplus, x > 20.0f ? x : log1pf(expf(x)))
F_UNARY(softsign, x / (1.0f + fabsf(x)))

/* Clip of floats: min(max(x, lo), hi), NaN passes through (both compares are
 * false). Bounds copied to locals so the loop vectorizes. */
OQ_CLONED(clip_FLOAT, (void *arg, int64_t begin, int64_t end), (arg, begin, end))
{
    const ew_arg *p = arg;
    const float *restrict xs = p->in[0];
    float *restrict ys = p->out;
    const float lo = p->alpha, hi = p->beta;
    for (int64_t i = begin; i < end; i++) {
        float t = xs[i] < lo ? lo : xs[i];
        ys[i] = t > hi ? hi : t;
    }
}

/* min(max(v, lo), hi), so lo > hi gives hi as numpy.clip does. */
static inline int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Ops defined for floats and signed integers: wrap on INT_MIN like two's
 * complement hardware instead of overflowing. */
#define NEG_E(T, M) (T)(0 - (M)x)
#define ABS_E(T, M) (x < 0 ? (T)(0 - (M)x) : x)
#define SIGN_E(T, M) (T)((x > 0) - (x < 0))
#define RELU_E(T, M) (x > 0 ? x : (T)0)
#define CLIPI_E(T, M) (T)clamp_i64((int64_t)x, p->ilo, p->ihi)
#define SIGNED_UNARY_X(OP, T, M, DT) UNARY_FN(OP, DT, T, T, OP##_E(T, M))
OQ_FOR_SINT_TYPES(SIGNED_UNARY_X, NEG)
OQ_FOR_SINT_TYPES(SIGNED_UNARY_X, ABS)
OQ_FOR_SINT_TYPES(SIGNED_UNARY_X, SIGN)
OQ_FOR_SINT_TYPES(SIGNED_UNARY_X, RELU)
OQ_FOR_SINT_TYPES(SIGNED_UNARY_X, CLIPI)
UNARY_FN(CLIPI, UINT8, uint8_t, uint8_t, CLIPI_E(uint8_t, unsigned))
UNARY_FN(NEG, FLOAT, float, float, -x)
UNARY_FN(ABS, FLOAT, float, float, fabsf(x))
UNARY_FN(SIGN, FLOAT, float, float, x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x) /* NaN stays NaN */
UNARY_FN(NEG, DOUBLE, double, double, -x)
UNARY_FN(ABS, DOUBLE, double, double, fabs(x))
UNARY_FN(not, BOOL, uint8_t, uint8_t, x == 0)

#define SINT_ENTRY(OP, T, M, DT) [OQ_DTYPE_##DT] = OP##_##DT,
static const oq_range_fn neg_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_SINT_TYPES(SINT_ENTRY, NEG)[OQ_DTYPE_FLOAT] = NEG_FLOAT, [OQ_DTYPE_DOUBLE] = NEG_DOUBLE};
static const oq_range_fn abs_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_SINT_TYPES(SINT_ENTRY, ABS)[OQ_DTYPE_FLOAT] = ABS_FLOAT, [OQ_DTYPE_DOUBLE] = ABS_DOUBLE};
static const oq_range_fn sign_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_SINT_TYPES(SINT_ENTRY, SIGN)[OQ_DTYPE_FLOAT] = SIGN_FLOAT};
static const oq_range_fn relu_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_SINT_TYPES(SINT_ENTRY, RELU)[OQ_DTYPE_FLOAT] = relu_FLOAT};
static const oq_range_fn clip_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_SINT_TYPES(SINT_ENTRY, CLIPI)[OQ_DTYPE_UINT8] = CLIPI_UINT8, [OQ_DTYPE_FLOAT] = clip_FLOAT};
static const oq_range_fn not_fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_BOOL] = not_BOOL};

/* Runs the loop fns[x.dtype] from input 0 into output 0 of the same shape and
 * the same type (bool when out_bool); p carries the op's parameters. */
static oq_status run_unary_to(oq_kernel_ctx *c, const oq_range_fn *fns, ew_arg *p, bool out_bool)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    oq_range_fn fn = fns[x->dtype];
    if (!fn)
        return unsupported_type(c, x->dtype);
    oq_tensor *y = oq_kernel_output_raw(c, 0, out_bool ? OQ_DTYPE_BOOL : x->dtype, x->rank, x->dims);
    if (!y)
        return c->err->status;
    p->in[0] = x->data;
    p->out = y->data;
    oq_par_run(c, oq_tensor_numel(x), 1, fn, p);
    return OQ_OK;
}

static oq_status run_unary(oq_kernel_ctx *c, const oq_range_fn *fns, ew_arg *p)
{
    return run_unary_to(c, fns, p, false);
}

/* One kernel per float-only op without parameters. */
#define F_UNARY_KERNEL(NAME)                                                  \
    static oq_status k_##NAME(oq_kernel_ctx *c)                              \
    {                                                                        \
        static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = NAME##_FLOAT}; \
        ew_arg p = {0};                                                      \
        return run_unary(c, fns, &p);                                        \
    }
F_UNARY_KERNEL(sigmoid)
F_UNARY_KERNEL(hard_swish)
F_UNARY_KERNEL(tanh)
F_UNARY_KERNEL(erf)
F_UNARY_KERNEL(sqrt)
F_UNARY_KERNEL(exp)
F_UNARY_KERNEL(log)
F_UNARY_KERNEL(reciprocal)
F_UNARY_KERNEL(floor)
F_UNARY_KERNEL(ceil)
F_UNARY_KERNEL(round)
F_UNARY_KERNEL(sin)
F_UNARY_KERNEL(cos)
F_UNARY_KERNEL(tan)
F_UNARY_KERNEL(asin)
F_UNARY_KERNEL(acos)
F_UNARY_KERNEL(atan)
F_UNARY_KERNEL(sinh)
F_UNARY_KERNEL(cosh)
F_UNARY_KERNEL(asinh)
F_UNARY_KERNEL(acosh)
F_UNARY_KERNEL(atanh)
F_UNARY_KERNEL(softplus)
F_UNARY_KERNEL(softsign)

static oq_status k_relu(oq_kernel_ctx *c) { ew_arg p = {0}; return run_unary(c, relu_fns, &p); }
static oq_status k_neg(oq_kernel_ctx *c) { ew_arg p = {0}; return run_unary(c, neg_fns, &p); }
static oq_status k_abs(oq_kernel_ctx *c) { ew_arg p = {0}; return run_unary(c, abs_fns, &p); }
static oq_status k_sign(oq_kernel_ctx *c) { ew_arg p = {0}; return run_unary(c, sign_fns, &p); }
static oq_status k_not(oq_kernel_ctx *c) { ew_arg p = {0}; return run_unary(c, not_fns, &p); }

static oq_status k_leaky_relu(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = leaky_relu_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "alpha", 0.01f)};
    return run_unary(c, fns, &p);
}

static oq_status k_hard_sigmoid(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = hard_sigmoid_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "alpha", 0.2f),
                .beta = oq_node_attr_float(c->node, "beta", 0.5f)};
    return run_unary(c, fns, &p);
}

static oq_status k_elu(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = elu_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "alpha", 1.0f)};
    return run_unary(c, fns, &p);
}

static oq_status k_selu(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = selu_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "alpha", 1.67326319217681884765625f),
                .beta = oq_node_attr_float(c->node, "gamma", 1.05070102214813232421875f)};
    return run_unary(c, fns, &p);
}

static oq_status k_celu(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = celu_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "alpha", 1.0f)};
    if (p.alpha == 0.0f)
        return OQ_KERR(c, "alpha must not be 0");
    return run_unary(c, fns, &p);
}

static oq_status k_thresholded_relu(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = thresholded_relu_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "alpha", 1.0f)};
    return run_unary(c, fns, &p);
}

static oq_status k_shrink(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = shrink_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_float(c->node, "lambd", 0.5f),
                .beta = oq_node_attr_float(c->node, "bias", 0.0f)};
    return run_unary(c, fns, &p);
}

static oq_status k_isnan(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = isnan_FLOAT};
    ew_arg p = {0};
    return run_unary_to(c, fns, &p, true);
}

static oq_status k_isinf(oq_kernel_ctx *c)
{
    static const oq_range_fn fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = isinf_FLOAT};
    ew_arg p = {.alpha = oq_node_attr_int(c->node, "detect_negative", 1) ? 1.0f : 0.0f,
                .beta = oq_node_attr_int(c->node, "detect_positive", 1) ? 1.0f : 0.0f};
    return run_unary_to(c, fns, &p, true);
}

static oq_status k_gelu(oq_kernel_ctx *c)
{
    static const oq_range_fn exact[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = gelu_FLOAT};
    static const oq_range_fn tanh_form[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = gelu_tanh_FLOAT};
    const char *approx = oq_node_attr_string(c->node, "approximate", "none");
    ew_arg p = {0};
    if (strcmp(approx, "tanh") == 0)
        return run_unary(c, tanh_form, &p);
    if (strcmp(approx, "none") != 0)
        return OQ_KERR(c, "approximate must be \"none\" or \"tanh\", not \"%s\"", approx);
    return run_unary(c, exact, &p);
}

/* Clip bound k (1 = min, 2 = max) from an optional scalar input. Sets *f or
 * *i (by x's type) and leaves the default when the input is omitted. */
static oq_status clip_bound(oq_kernel_ctx *c, int k, oq_dtype dt, float *f, int64_t *i)
{
    const oq_tensor *t = oq_kernel_input(c, k);
    if (!t)
        return OQ_OK;
    if (t->dtype != dt)
        return OQ_KERR(c, "%s is %s but the input is %s", k == 1 ? "min" : "max",
                       oq_dtype_name(t->dtype), oq_dtype_name(dt));
    if (oq_tensor_numel(t) != 1)
        return OQ_KERR(c, "%s must be a scalar", k == 1 ? "min" : "max");
    if (dt == OQ_DTYPE_FLOAT)
        *f = ((const float *)t->data)[0];
    else
        *i = oq_tensor_get_i64(t, 0);
    return OQ_OK;
}

/* Clip: bounds are attributes before opset 11, optional inputs from 11. */
static oq_status k_clip(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    ew_arg p = {.alpha = -FLT_MAX, .beta = FLT_MAX, .ilo = INT64_MIN, .ihi = INT64_MAX};
    if (c->opset < 11) {
        p.alpha = oq_node_attr_float(c->node, "min", -FLT_MAX);
        p.beta = oq_node_attr_float(c->node, "max", FLT_MAX);
    } else {
        oq_status st;
        if ((st = clip_bound(c, 1, x->dtype, &p.alpha, &p.ilo)) ||
            (st = clip_bound(c, 2, x->dtype, &p.beta, &p.ihi)))
            return st;
    }
    return run_unary(c, clip_fns, &p);
}

/* ---- binary ops ----------------------------------------------------------------
 * A binary loop is an oq_bcast_visit over one run: x steps by st[0], y by
 * st[1], both 0 or 1, so the four cases get their own simple loops. */

#define BINARY_FN(NAME, DT, T, R, EXPR)                                                        \
    static void NAME##_##DT(void *arg, int64_t oo, const int64_t *io, const int64_t *st,     \
                            int64_t n)                                                         \
    {                                                                                          \
        const ew_arg *p = arg;                                                                 \
        R *o = (R *)p->out + oo;                                                               \
        const T *xs = (const T *)p->in[0] + io[0], *ys = (const T *)p->in[1] + io[1];          \
        if (st[0] && st[1]) {                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const T x = xs[i], y = ys[i];                                                  \
                o[i] = (R)(EXPR);                                                              \
            }                                                                                  \
        } else if (st[0]) {                                                                    \
            const T y = ys[0];                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const T x = xs[i];                                                             \
                o[i] = (R)(EXPR);                                                              \
            }                                                                                  \
        } else if (st[1]) {                                                                    \
            const T x = xs[0];                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                  \
                const T y = ys[i];                                                             \
                o[i] = (R)(EXPR);                                                              \
            }                                                                                  \
        } else {                                                                               \
            const T x = xs[0], y = ys[0];                                                      \
            const R r = (R)(EXPR);                                                             \
            for (int64_t i = 0; i < n; i++)                                                    \
                o[i] = r;                                                                      \
        }                                                                                      \
    }

#define ADD_E(T, M) (T)((M)x + (M)y)
#define SUB_E(T, M) (T)((M)x - (M)y)
#define MUL_E(T, M) (T)((M)x * (M)y)
#define FDIV_E(T, M) x / y
#define SDIV_E(T, M) (y == 0 ? (T)0 : y == -1 ? (T)(0 - (M)x) : (T)(x / y)) /* truncates */
#define UDIV_E(T, M) (y == 0 ? (T)0 : (T)(x / y))
#define FMAX_E(T, M) ((x > y || isnan(x)) ? x : y) /* NaN propagates, as numpy.maximum */
#define FMIN_E(T, M) ((x < y || isnan(x)) ? x : y)
#define IMAX_E(T, M) (x > y ? x : y)
#define IMIN_E(T, M) (x < y ? x : y)
#define EQ_E(T, M) (x == y)
#define LT_E(T, M) (x < y)
#define GT_E(T, M) (x > y)
#define LE_E(T, M) (x <= y)
#define GE_E(T, M) (x >= y)

/* Mod: FMOD takes the dividend's sign (C fmod / %), MOD the divisor's
 * (Python %). Integer x % 0 gives 0. */
#define FFMOD_E(T, M) fmod(x, y)
#define FMOD_E(T, M) mod_float(x, y)
#define SFMOD_E(T, M) (y == 0 || y == -1 ? (T)0 : (T)(x % y))
#define SMOD_E(T, M) mod_signed(x, y)
#define UMOD_E(T, M) (y == 0 ? (T)0 : (T)(x % y))
#define SHL_E(T, M) (y >= sizeof(T) * 8 ? (T)0 : (T)((M)x << y))
#define SHR_E(T, M) (y >= sizeof(T) * 8 ? (T)0 : (T)(x >> y))

static inline double mod_float(double x, double y)
{
    double r = fmod(x, y);
    return (r != 0.0 && (r < 0.0) != (y < 0.0)) ? r + y : r;
}

static inline int64_t mod_signed(int64_t x, int64_t y)
{
    if (y == 0 || y == -1)
        return 0;
    int64_t r = x % y;
    return (r != 0 && (r < 0) != (y < 0)) ? r + y : r;
}

#define BIN_SAME_X(OP, T, M, DT) BINARY_FN(OP, DT, T, T, OP##_E(T, M))
#define BIN_BOOL_X(OP, T, M, DT) BINARY_FN(OP, DT, T, uint8_t, OP##_E(T, M))
#define BIN_ENTRY(OP, T, M, DT) [OQ_DTYPE_##DT] = OP##_##DT,

OQ_FOR_NUM_TYPES(BIN_SAME_X, ADD)
OQ_FOR_NUM_TYPES(BIN_SAME_X, SUB)
OQ_FOR_NUM_TYPES(BIN_SAME_X, MUL)
OQ_FOR_FLOAT_TYPES(BIN_SAME_X, FDIV)
OQ_FOR_SINT_TYPES(BIN_SAME_X, SDIV)
OQ_FOR_UINT_TYPES(BIN_SAME_X, UDIV)
OQ_FOR_FLOAT_TYPES(BIN_SAME_X, FMAX)
OQ_FOR_FLOAT_TYPES(BIN_SAME_X, FMIN)
OQ_FOR_INT_TYPES(BIN_SAME_X, IMAX)
OQ_FOR_INT_TYPES(BIN_SAME_X, IMIN)
OQ_FOR_NUM_TYPES(BIN_BOOL_X, EQ)
OQ_FOR_NUM_TYPES(BIN_BOOL_X, LT)
OQ_FOR_NUM_TYPES(BIN_BOOL_X, GT)
OQ_FOR_NUM_TYPES(BIN_BOOL_X, LE)
OQ_FOR_NUM_TYPES(BIN_BOOL_X, GE)
OQ_FOR_FLOAT_TYPES(BIN_SAME_X, FFMOD)
OQ_FOR_FLOAT_TYPES(BIN_SAME_X, FMOD)
OQ_FOR_SINT_TYPES(BIN_SAME_X, SFMOD)
OQ_FOR_SINT_TYPES(BIN_SAME_X, SMOD)
OQ_FOR_UINT_TYPES(BIN_SAME_X, UMOD)
OQ_FOR_UINT_TYPES(BIN_SAME_X, SHL)
OQ_FOR_UINT_TYPES(BIN_SAME_X, SHR)
BINARY_FN(EQ, BOOL, uint8_t, uint8_t, (x != 0) == (y != 0))
BINARY_FN(AND, BOOL, uint8_t, uint8_t, (x != 0) & (y != 0))
BINARY_FN(OR, BOOL, uint8_t, uint8_t, (x != 0) | (y != 0))
BINARY_FN(XOR, BOOL, uint8_t, uint8_t, (x != 0) ^ (y != 0))
BINARY_FN(PRELU, FLOAT, float, float, x < 0.0f ? x * y : x)

static const oq_bcast_visit add_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, ADD)};
static const oq_bcast_visit sub_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, SUB)};
static const oq_bcast_visit mul_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, MUL)};
static const oq_bcast_visit div_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_FLOAT_TYPES(BIN_ENTRY, FDIV) OQ_FOR_SINT_TYPES(BIN_ENTRY, SDIV)
        OQ_FOR_UINT_TYPES(BIN_ENTRY, UDIV)};
static const oq_bcast_visit max_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_FLOAT_TYPES(BIN_ENTRY, FMAX) OQ_FOR_INT_TYPES(BIN_ENTRY, IMAX)};
static const oq_bcast_visit min_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_FLOAT_TYPES(BIN_ENTRY, FMIN) OQ_FOR_INT_TYPES(BIN_ENTRY, IMIN)};
static const oq_bcast_visit eq_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, EQ)[OQ_DTYPE_BOOL] =
                                                         EQ_BOOL};
static const oq_bcast_visit lt_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, LT)};
static const oq_bcast_visit gt_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, GT)};
static const oq_bcast_visit le_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, LE)};
static const oq_bcast_visit ge_fns[OQ_DTYPE_COUNT] = {OQ_FOR_NUM_TYPES(BIN_ENTRY, GE)};
static const oq_bcast_visit fmod_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_FLOAT_TYPES(BIN_ENTRY, FFMOD) OQ_FOR_SINT_TYPES(BIN_ENTRY, SFMOD)
        OQ_FOR_UINT_TYPES(BIN_ENTRY, UMOD)};
static const oq_bcast_visit mod_fns[OQ_DTYPE_COUNT] = {
    OQ_FOR_FLOAT_TYPES(BIN_ENTRY, FMOD) OQ_FOR_SINT_TYPES(BIN_ENTRY, SMOD)
        OQ_FOR_UINT_TYPES(BIN_ENTRY, UMOD)};
static const oq_bcast_visit shl_fns[OQ_DTYPE_COUNT] = {OQ_FOR_UINT_TYPES(BIN_ENTRY, SHL)};
static const oq_bcast_visit shr_fns[OQ_DTYPE_COUNT] = {OQ_FOR_UINT_TYPES(BIN_ENTRY, SHR)};
static const oq_bcast_visit and_fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_BOOL] = AND_BOOL};
static const oq_bcast_visit or_fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_BOOL] = OR_BOOL};
static const oq_bcast_visit xor_fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_BOOL] = XOR_BOOL};
static const oq_bcast_visit prelu_fns[OQ_DTYPE_COUNT] = {[OQ_DTYPE_FLOAT] = PRELU_FLOAT};

/* Walks out (already allocated, shape (rank, dims)) = visit(in[0..n)) with
 * broadcasting; each input element is touched once per output element. */
static void walk_into(oq_kernel_ctx *c, ew_arg *p, oq_tensor *out, int n, const oq_tensor *const *in)
{
    oq_bcast_init_tensors(&p->b, out->rank, out->dims, n, in);
    for (int k = 0; k < n; k++)
        p->in[k] = in[k]->data;
    p->out = out->data;
    oq_par_run(c, p->b.numel, 1, bcast_chunk, p);
}

/* Output 0 = fns[type](input 0, input 1) broadcast; both inputs share a type;
 * the output is bool when out_bool, else the input type. */
static oq_status run_binary(oq_kernel_ctx *c, const oq_bcast_visit *fns, bool out_bool)
{
    const oq_tensor *in[2] = {oq_kernel_require(c, 0), oq_kernel_require(c, 1)};
    if (!in[0] || !in[1])
        return c->err->status;
    if (in[0]->dtype != in[1]->dtype)
        return OQ_KERR(c, "inputs have different types (%s and %s)", oq_dtype_name(in[0]->dtype),
                       oq_dtype_name(in[1]->dtype));
    ew_arg p = {.visit = fns[in[0]->dtype]};
    if (!p.visit)
        return unsupported_type(c, in[0]->dtype);
    int ranks[2] = {in[0]->rank, in[1]->rank}, rank;
    const int64_t *dims[2] = {in[0]->dims, in[1]->dims};
    int64_t out_dims[OQ_MAX_RANK];
    oq_status st = oq_broadcast_shape(2, ranks, dims, &rank, out_dims, c->err);
    if (st)
        return st;
    oq_tensor *out = oq_kernel_output_raw(c, 0, out_bool ? OQ_DTYPE_BOOL : in[0]->dtype, rank, out_dims);
    if (!out)
        return c->err->status;
    walk_into(c, &p, out, 2, in);
    return OQ_OK;
}

static oq_status k_add(oq_kernel_ctx *c) { return run_binary(c, add_fns, false); }
static oq_status k_sub(oq_kernel_ctx *c) { return run_binary(c, sub_fns, false); }
static oq_status k_mul(oq_kernel_ctx *c)
{
    return c->quantize ? oq_gate_quantize(c) : run_binary(c, mul_fns, false);
}
static oq_status k_div(oq_kernel_ctx *c) { return run_binary(c, div_fns, false); }
static oq_status k_prelu(oq_kernel_ctx *c) { return run_binary(c, prelu_fns, false); }
static oq_status k_equal(oq_kernel_ctx *c) { return run_binary(c, eq_fns, true); }
static oq_status k_less(oq_kernel_ctx *c) { return run_binary(c, lt_fns, true); }
static oq_status k_greater(oq_kernel_ctx *c) { return run_binary(c, gt_fns, true); }
static oq_status k_less_equal(oq_kernel_ctx *c) { return run_binary(c, le_fns, true); }
static oq_status k_greater_equal(oq_kernel_ctx *c) { return run_binary(c, ge_fns, true); }
static oq_status k_and(oq_kernel_ctx *c) { return run_binary(c, and_fns, true); }
static oq_status k_or(oq_kernel_ctx *c) { return run_binary(c, or_fns, true); }
static oq_status k_xor(oq_kernel_ctx *c) { return run_binary(c, xor_fns, true); }

static oq_status k_mod(oq_kernel_ctx *c)
{
    return run_binary(c, oq_node_attr_int(c->node, "fmod", 0) ? fmod_fns : mod_fns, false);
}

static oq_status k_bit_shift(oq_kernel_ctx *c)
{
    const char *dir = oq_node_attr_string(c->node, "direction", "");
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT"))
        return OQ_KERR(c, "direction must be \"LEFT\" or \"RIGHT\", not \"%s\"", dir);
    return run_binary(c, strcmp(dir, "LEFT") ? shr_fns : shl_fns, false);
}

/* ---- Pow -----------------------------------------------------------------------
 * The base type is the output type; the exponent may be any numeric type
 * (opset 12+). float^float has its own loop with shortcuts for the common
 * constant exponents; other pairs read the exponent as double or int64. */

static void pow_ff(void *arg, int64_t oo, const int64_t *io, const int64_t *st, int64_t n)
{
    const ew_arg *p = arg;
    float *o = (float *)p->out + oo;
    const float *xs = (const float *)p->in[0] + io[0], *ys = (const float *)p->in[1] + io[1];
    if (!st[1]) {
        const float y = ys[0];
        const int64_t sx = st[0];
        if (y == 2.0f)
            for (int64_t i = 0; i < n; i++)
                o[i] = xs[i * sx] * xs[i * sx];
        else if (y == 0.5f)
            for (int64_t i = 0; i < n; i++)
                o[i] = sqrtf(xs[i * sx]);
        else if (y == 1.0f)
            for (int64_t i = 0; i < n; i++)
                o[i] = xs[i * sx];
        else
            for (int64_t i = 0; i < n; i++)
                o[i] = powf(xs[i * sx], y);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        o[i] = powf(xs[i * st[0]], ys[i]);
}

static double load_f64(const void *d, oq_dtype dt, int64_t i)
{
    switch (dt) {
    case OQ_DTYPE_FLOAT: return ((const float *)d)[i];
    case OQ_DTYPE_DOUBLE: return ((const double *)d)[i];
    case OQ_DTYPE_INT8: return ((const int8_t *)d)[i];
    case OQ_DTYPE_UINT8: return ((const uint8_t *)d)[i];
    case OQ_DTYPE_INT16: return ((const int16_t *)d)[i];
    case OQ_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case OQ_DTYPE_INT32: return ((const int32_t *)d)[i];
    case OQ_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case OQ_DTYPE_INT64: return (double)((const int64_t *)d)[i];
    case OQ_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    default: return 0.0;
    }
}

/* x^e for integers with wrap-around; negative e truncates the fraction to 0
 * unless |x| == 1. */
static uint64_t ipow(int64_t x, int64_t e)
{
    if (e < 0)
        return x == 1 ? 1u : x == -1 ? (e % 2 ? (uint64_t)-1 : 1u) : 0u;
    uint64_t r = 1, b = (uint64_t)x;
    while (e) {
        if (e & 1)
            r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

static void pow_any(void *arg, int64_t oo, const int64_t *io, const int64_t *st, int64_t n)
{
    const ew_arg *p = arg;
    const oq_dtype bt = p->in_dt[0], et = p->in_dt[1];
    const bool int_exp = !oq_dtype_traits_table[et].is_float;
    for (int64_t i = 0; i < n; i++) {
        const int64_t xi = io[0] + i * st[0], yi = io[1] + i * st[1];
        const double e = load_f64(p->in[1], et, yi);
        switch (bt) {
        case OQ_DTYPE_FLOAT:
            ((float *)p->out)[oo + i] = (float)pow(((const float *)p->in[0])[xi], e);
            break;
        case OQ_DTYPE_DOUBLE:
            ((double *)p->out)[oo + i] = pow(((const double *)p->in[0])[xi], e);
            break;
        case OQ_DTYPE_INT32: {
            const int32_t x = ((const int32_t *)p->in[0])[xi];
            ((int32_t *)p->out)[oo + i] = int_exp ? (int32_t)ipow(x, (int64_t)e) : (int32_t)oq_f64_to_i64_sat(pow(x, e));
            break;
        }
        default: { /* INT64 */
            const int64_t x = ((const int64_t *)p->in[0])[xi];
            ((int64_t *)p->out)[oo + i] = int_exp ? (int64_t)ipow(x, (int64_t)e) : oq_f64_to_i64_sat(pow((double)x, e));
            break;
        }
        }
    }
}

static oq_status k_pow(oq_kernel_ctx *c)
{
    const oq_tensor *in[2] = {oq_kernel_require(c, 0), oq_kernel_require(c, 1)};
    if (!in[0] || !in[1])
        return c->err->status;
    const oq_dtype bt = in[0]->dtype, et = in[1]->dtype;
    if (bt != OQ_DTYPE_FLOAT && bt != OQ_DTYPE_DOUBLE && bt != OQ_DTYPE_INT32 && bt != OQ_DTYPE_INT64)
        return unsupported_type(c, bt);
    if (!(OQ_DT_NUMS & (1u << et)))
        return unsupported_type(c, et);
    if (c->opset < 12 && bt != et)
        return OQ_KERR(c, "base is %s but exponent is %s", oq_dtype_name(bt), oq_dtype_name(et));
    int ranks[2] = {in[0]->rank, in[1]->rank}, rank;
    const int64_t *dims[2] = {in[0]->dims, in[1]->dims};
    int64_t out_dims[OQ_MAX_RANK];
    oq_status st = oq_broadcast_shape(2, ranks, dims, &rank, out_dims, c->err);
    if (st)
        return st;
    oq_tensor *out = oq_kernel_output(c, 0, bt, rank, out_dims);
    if (!out)
        return c->err->status;
    ew_arg p = {.visit = bt == OQ_DTYPE_FLOAT && et == OQ_DTYPE_FLOAT ? pow_ff : pow_any,
                .in_dt = {bt, et}};
    walk_into(c, &p, out, 2, in);
    return OQ_OK;
}

/* ---- variadic Sum, Mean, Max, Min ----------------------------------------------
 * The output takes the broadcast shape of all inputs; it is computed as
 * out = in0 op in1, then out = out op in_k for each further input. */

static oq_status run_variadic(oq_kernel_ctx *c, const oq_bcast_visit *fns, bool mean)
{
    if (c->n_inputs < 1)
        return OQ_KERR(c, "needs at least one input");
    int ranks[OQ_BCAST_MAX_OPS], rank;
    const int64_t *dims[OQ_BCAST_MAX_OPS];
    int64_t out_dims[OQ_MAX_RANK];
    const oq_tensor *first = oq_kernel_require(c, 0);
    if (!first)
        return c->err->status;
    const oq_dtype dt = first->dtype;
    oq_bcast_visit visit = fns[dt];
    if (!visit || (mean && dt != OQ_DTYPE_FLOAT && dt != OQ_DTYPE_DOUBLE))
        return unsupported_type(c, dt);
    /* Broadcast shape, folded one input at a time. */
    rank = first->rank;
    memcpy(out_dims, first->dims, sizeof(int64_t) * (size_t)rank);
    for (int k = 1; k < c->n_inputs; k++) {
        const oq_tensor *t = oq_kernel_require(c, k);
        if (!t)
            return c->err->status;
        if (t->dtype != dt)
            return OQ_KERR(c, "input %d is %s but input 0 is %s", k, oq_dtype_name(t->dtype),
                           oq_dtype_name(dt));
        int64_t prev[OQ_MAX_RANK];
        memcpy(prev, out_dims, sizeof prev);
        ranks[0] = rank;
        dims[0] = prev;
        ranks[1] = t->rank;
        dims[1] = t->dims;
        oq_status st = oq_broadcast_shape(2, ranks, dims, &rank, out_dims, c->err);
        if (st)
            return st;
    }
    oq_tensor *out = oq_kernel_output(c, 0, dt, rank, out_dims);
    if (!out)
        return c->err->status;
    ew_arg p = {.visit = visit};
    if (c->n_inputs == 1) {
        const size_t bytes = oq_dtype_storage(dt, oq_tensor_numel(first));
        if (bytes)
            memcpy(out->data, first->data, bytes);
        return OQ_OK;
    }
    const oq_tensor *pair[2] = {first, c->inputs[1]};
    walk_into(c, &p, out, 2, pair);
    for (int k = 2; k < c->n_inputs; k++) {
        pair[0] = out;
        pair[1] = c->inputs[k];
        walk_into(c, &p, out, 2, pair);
    }
    if (mean) {
        const int64_t n = oq_tensor_numel(out);
        if (dt == OQ_DTYPE_FLOAT) {
            float *o = out->data;
            for (int64_t i = 0; i < n; i++)
                o[i] /= (float)c->n_inputs;
        } else {
            double *o = out->data;
            for (int64_t i = 0; i < n; i++)
                o[i] /= (double)c->n_inputs;
        }
    }
    return OQ_OK;
}

static oq_status k_sum(oq_kernel_ctx *c) { return run_variadic(c, add_fns, false); }
static oq_status k_mean(oq_kernel_ctx *c) { return run_variadic(c, add_fns, true); }
static oq_status k_max(oq_kernel_ctx *c) { return run_variadic(c, max_fns, false); }
static oq_status k_min(oq_kernel_ctx *c) { return run_variadic(c, min_fns, false); }

/* ---- Where ---------------------------------------------------------------------
 * Type-agnostic: elements are copied by size. */

#define WHERE_FN(BITS)                                                                          \
    static void where_##BITS(void *arg, int64_t oo, const int64_t *io, const int64_t *st,     \
                             int64_t n)                                                         \
    {                                                                                           \
        const ew_arg *p = arg;                                                                  \
        uint##BITS##_t *o = (uint##BITS##_t *)p->out + oo;                                      \
        const uint8_t *cs = (const uint8_t *)p->in[0] + io[0];                                  \
        const uint##BITS##_t *xs = (const uint##BITS##_t *)p->in[1] + io[1];                    \
        const uint##BITS##_t *ys = (const uint##BITS##_t *)p->in[2] + io[2];                    \
        for (int64_t i = 0; i < n; i++)                                                         \
            o[i] = cs[i * st[0]] ? xs[i * st[1]] : ys[i * st[2]];                               \
    }
WHERE_FN(8)
WHERE_FN(16)
WHERE_FN(32)
WHERE_FN(64)

static oq_status k_where(oq_kernel_ctx *c)
{
    const oq_tensor *in[3] = {oq_kernel_require(c, 0), oq_kernel_require(c, 1), oq_kernel_require(c, 2)};
    if (!in[0] || !in[1] || !in[2])
        return c->err->status;
    if (in[0]->dtype != OQ_DTYPE_BOOL)
        return OQ_KERR(c, "condition is %s, not bool", oq_dtype_name(in[0]->dtype));
    const oq_dtype dt = in[1]->dtype;
    if (in[2]->dtype != dt)
        return OQ_KERR(c, "X is %s but Y is %s", oq_dtype_name(dt), oq_dtype_name(in[2]->dtype));
    ew_arg p = {0};
    switch (oq_dtype_traits_table[dt].bits) {
    case 8: p.visit = where_8; break;
    case 16: p.visit = where_16; break;
    case 32: p.visit = where_32; break;
    case 64: p.visit = where_64; break;
    default: return unsupported_type(c, dt);
    }
    int ranks[3] = {in[0]->rank, in[1]->rank, in[2]->rank}, rank;
    const int64_t *dims[3] = {in[0]->dims, in[1]->dims, in[2]->dims};
    int64_t out_dims[OQ_MAX_RANK];
    oq_status st = oq_broadcast_shape(3, ranks, dims, &rank, out_dims, c->err);
    if (st)
        return st;
    oq_tensor *out = oq_kernel_output(c, 0, dt, rank, out_dims);
    if (!out)
        return c->err->status;
    walk_into(c, &p, out, 3, in);
    return OQ_OK;
}

/* ---- the table ----------------------------------------------------------------- */

#define F32 OQ_DT(FLOAT)
#define ARITH (OQ_DT_NUMS)
#define CMP (OQ_DT_NUMS | OQ_DT(BOOL))
#define WHERE_DT                                                                                   \
    (OQ_DT_NUMS | OQ_DT(BOOL) | OQ_DT(FLOAT16) | OQ_DT(BFLOAT16) | OQ_DT(COMPLEX64))

const oq_op_def oq_ops_elementwise[] = {
    {"", "Relu", 6, F32 | OQ_DT_SINTS, k_relu},
    {"", "LeakyRelu", 6, F32, k_leaky_relu},
    {"", "PRelu", 7, F32, k_prelu},
    {"", "Clip", 6, F32, k_clip},
    {"", "Clip", 11, F32 | OQ_DT_SINTS | OQ_DT(UINT8), k_clip},
    {"", "Sigmoid", 6, F32, k_sigmoid},
    {"", "HardSigmoid", 6, F32, k_hard_sigmoid},
    {"", "HardSwish", 14, F32, k_hard_swish},
    {"", "Tanh", 6, F32, k_tanh},
    {"", "Erf", 9, F32, k_erf},
    {"", "Gelu", 20, F32, k_gelu},
    {"", "Elu", 6, F32, k_elu},
    {"", "Selu", 6, F32, k_selu},
    {"", "Softplus", 1, F32, k_softplus},
    {"", "Softsign", 1, F32, k_softsign},
    {"", "Sqrt", 6, F32, k_sqrt},
    {"", "Exp", 6, F32, k_exp},
    {"", "Log", 6, F32, k_log},
    {"", "Neg", 6, OQ_DT_FLOATS | OQ_DT_SINTS, k_neg},
    {"", "Abs", 6, OQ_DT_FLOATS | OQ_DT_SINTS, k_abs},
    {"", "Sign", 9, F32 | OQ_DT_SINTS, k_sign},
    {"", "Reciprocal", 6, F32, k_reciprocal},
    {"", "Floor", 6, F32, k_floor},
    {"", "Ceil", 6, F32, k_ceil},
    {"", "Round", 11, F32, k_round},
    {"", "Sin", 7, F32, k_sin},
    {"", "Cos", 7, F32, k_cos},
    {"", "Tan", 7, F32, k_tan},
    {"", "Asin", 7, F32, k_asin},
    {"", "Acos", 7, F32, k_acos},
    {"", "Atan", 7, F32, k_atan},
    {"", "Sinh", 9, F32, k_sinh},
    {"", "Cosh", 9, F32, k_cosh},
    {"", "Asinh", 9, F32, k_asinh},
    {"", "Acosh", 9, F32, k_acosh},
    {"", "Atanh", 9, F32, k_atanh},
    {"", "Celu", 12, F32, k_celu},
    {"", "ThresholdedRelu", 10, F32, k_thresholded_relu},
    {"", "Shrink", 9, F32, k_shrink},
    {"", "IsNaN", 9, F32 | OQ_DT(BOOL), k_isnan},
    {"", "IsInf", 10, F32 | OQ_DT(BOOL), k_isinf},
    {"", "Not", 1, OQ_DT(BOOL), k_not},
    {"", "Add", 7, ARITH, k_add},
    {"", "Sub", 7, ARITH, k_sub},
    {"", "Mul", 7, ARITH, k_mul},
    {"", "Div", 7, ARITH, k_div},
    {"", "Pow", 7, ARITH, k_pow}, /* bases: float, double, int32, int64; exponents: any of ARITH */
    {"", "Mod", 10, ARITH, k_mod},
    {"", "BitShift", 11, OQ_DT_UINTS, k_bit_shift},
    {"", "Max", 6, ARITH, k_max},
    {"", "Min", 6, ARITH, k_min},
    {"", "Sum", 6, ARITH, k_sum},
    {"", "Mean", 6, OQ_DT_FLOATS, k_mean},
    {"", "Equal", 7, CMP, k_equal},
    {"", "Less", 7, CMP, k_less},
    {"", "Greater", 7, CMP, k_greater},
    {"", "LessOrEqual", 12, CMP, k_less_equal},
    {"", "GreaterOrEqual", 12, CMP, k_greater_equal},
    {"", "And", 7, OQ_DT(BOOL), k_and},
    {"", "Or", 7, OQ_DT(BOOL), k_or},
    {"", "Xor", 7, OQ_DT(BOOL), k_xor},
    {"", "Where", 9, WHERE_DT, k_where},
};
const int oq_ops_elementwise_count = (int)(sizeof oq_ops_elementwise / sizeof oq_ops_elementwise[0]);
