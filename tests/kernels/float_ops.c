/* float_ops.c: kernel families elementwise and fusion, the float loops
 * compiled per level, compared bit for bit with the same arithmetic written
 * as plain scalar code, on lengths of 1, around every vector width and the
 * fused block of 256, and large enough to split over threads, with NaN,
 * infinities and -0 among the values.
 * elementwise: Relu, LeakyRelu, HardSigmoid, HardSwish, Clip, Sigmoid, Exp,
 * Erf and Gelu as one-node models through the executor (the last four against
 * vmath.h's functions run as scalar code), and vmath.h's accuracy against
 * libm in double.
 * fusion: oq_fusion_run over hand-built chains using every step kind (scalar
 * constant on either side, one or two sources), whole and from an offset. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/fuse.h"
#include "exec/vmath.h"
#include "harness.h"

#define TANH_ULPS 1.5 /* oq_vtanhf: 1.21 ulp measured */

static int cases; /* run by the current check */

static const int64_t lengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 255, 256, 257, 1000, 70001};
enum { N_LENGTHS = sizeof lengths / sizeof lengths[0], MAX_LEN = 70001 };

static float max_or(float x, float lo) { return x > lo ? x : lo; }
static float min_or(float x, float hi) { return x < hi ? x : hi; }

/* Random values with, now and then, NaN, infinities, -0 and exact zeros. */
static void fill_floats(float *x, int64_t n, uint32_t *st)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = krand(st) % 50;
        x[i] = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : r == 3 ? -0.0f : r == 4 ? 0.0f
                                                                        : krand_float(st, -8.0f, 8.0f);
    }
}

/* Same bits, or both NaN. */
static bool same(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a); }

/* ---- elementwise ------------------------------------------------------------------ */

typedef enum unary_kind {
    U_RELU, U_LEAKY, U_HSIG, U_HSWISH, U_CLIP, U_SIGMOID, U_EXP, U_ERF, U_GELU, U_COUNT
} unary_kind;

static const struct {
    const char *op;
    int opset;
} unary_ops[U_COUNT] = {
    [U_RELU] = {"Relu", 14},      [U_LEAKY] = {"LeakyRelu", 16}, [U_HSIG] = {"HardSigmoid", 6},
    [U_HSWISH] = {"HardSwish", 14}, [U_CLIP] = {"Clip", 13},     [U_SIGMOID] = {"Sigmoid", 13},
    [U_EXP] = {"Exp", 13},        [U_ERF] = {"Erf", 13},         [U_GELU] = {"Gelu", 20},
};

typedef struct unary_params {
    float alpha, beta; /* LeakyRelu slope; HardSigmoid alpha, beta; Clip bounds */
} unary_params;

static float unary_ref(unary_kind k, float x, const unary_params *p)
{
    switch (k) {
    case U_RELU: return x > 0.0f ? x : 0.0f;
    case U_LEAKY: return x >= 0.0f ? x : p->alpha * x;
    case U_HSIG: return max_or(min_or(p->alpha * x + p->beta, 1.0f), 0.0f);
    case U_HSWISH: return x * max_or(min_or(x / 6.0f + 0.5f, 1.0f), 0.0f);
    case U_SIGMOID: return oq_vsigmoidf(x);
    case U_EXP: return oq_vexpf(x);
    case U_ERF: return oq_verff(x);
    case U_GELU: return 0.5f * x * (1.0f + oq_verff(x * 0.70710678118654752f));
    default: {
        float t = x < p->alpha ? p->alpha : x;
        return t > p->beta ? p->beta : t;
    }
    }
}

static oq_status set_unary_attrs(oq_node *n, const void *arg, oq_err *err)
{
    const unary_params *p = arg;
    const char *op = n->op_type;
    if (!strcmp(op, "LeakyRelu"))
        return oq_node_set_attr_float(n, "alpha", p->alpha, err);
    if (!strcmp(op, "HardSigmoid")) {
        oq_status st = oq_node_set_attr_float(n, "alpha", p->alpha, err);
        return st ? st : oq_node_set_attr_float(n, "beta", p->beta, err);
    }
    return OQ_OK;
}

static void unary_case(unary_kind k, int64_t n, const unary_params *p, uint32_t *st)
{
    oq_tensor x, lo, hi, y[1];
    oq_err err = {0};
    cases++;
    CHECK_OK(oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 1, &n, &err), &err);
    CHECK_OK(oq_tensor_alloc(&lo, OQ_DTYPE_FLOAT, 0, NULL, &err), &err);
    CHECK_OK(oq_tensor_alloc(&hi, OQ_DTYPE_FLOAT, 0, NULL, &err), &err);
    if (err.status)
        return;
    fill_floats(x.data, n, st);
    *(float *)lo.data = p->alpha;
    *(float *)hi.data = p->beta;
    knode_input in[3] = {{"x", &x, false}, {"lo", &lo, true}, {"hi", &hi, true}};
    CHECK_OK(knode_run(unary_ops[k].op, "", unary_ops[k].opset, in, k == U_CLIP ? 3 : 1, set_unary_attrs, p, 1,
                       n > 60000 ? 2 : 1, y, &err),
             &err);
    if (!err.status) {
        int bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += !same(((float *)y->data)[i], unary_ref(k, ((float *)x.data)[i], p));
        if (bad)
            fprintf(stderr, "%s n=%lld: %d values differ\n", unary_ops[k].op, (long long)n, bad);
        CHECK(bad == 0);
        oq_tensor_release(y);
    }
    oq_tensor_release(&x);
    oq_tensor_release(&lo);
    oq_tensor_release(&hi);
}

/* Ulps between f and the double d, in units of f's own spacing near d. */
static double ulps(float f, double d)
{
    float df = (float)d;
    double sp = nextafterf(fabsf(df), INFINITY) - fabsf(df);
    return fabs((double)f - d) / (sp > 0 ? sp : FLT_MIN);
}

/* vmath.h against libm in double: exp within 1 ulp over its whole range, erf
 * within 2.5 ulp and tanh within TANH_ULPS (points spread over every binade,
 * plus the range limits),
 * the special values, and sigmoid at its extremes. */
static void vmath_accuracy(void)
{
    double worst_exp = 0, worst_erf = 0, worst_tanh = 0;
    for (int e = -40; e <= 7; e++)
        for (int i = 0; i < 4096; i++) {
            float x = ldexpf(1.0f + (float)i / 4096.0f, e);
            for (int sgn = 0; sgn < 2; sgn++, x = -x) {
                if (fabsf(x) < 87.0f) {
                    double u = ulps(oq_vexpf(x), exp((double)x));
                    worst_exp = u > worst_exp ? u : worst_exp;
                }
                double v = ulps(oq_verff(x), erf((double)x));
                worst_erf = v > worst_erf ? v : worst_erf;
                double t = ulps(oq_vtanhf(x), tanh((double)x));
                worst_tanh = t > worst_tanh ? t : worst_tanh;
            }
        }
    cases++;
    if (worst_exp > 1.0 || worst_erf > 2.5 || worst_tanh > TANH_ULPS || getenv("VMATH_PRINT"))
        fprintf(stderr, "vmath: exp %.2f ulp, erf %.2f ulp, tanh %.2f ulp\n", worst_exp, worst_erf, worst_tanh);
    CHECK(worst_exp <= 1.0 && worst_erf <= 2.5 && worst_tanh <= TANH_ULPS);
    CHECK(oq_vtanhf(INFINITY) == 1.0f && oq_vtanhf(-INFINITY) == -1.0f && oq_vtanhf(20.0f) == 1.0f &&
          isnan(oq_vtanhf(NAN)) && oq_vtanhf(0.0f) == 0.0f && signbit(oq_vtanhf(-0.0f)));
    CHECK(oq_vexpf(88.8f) == INFINITY && oq_vexpf(INFINITY) == INFINITY && oq_vexpf(-INFINITY) == 0.0f);
    CHECK(oq_vexpf(-88.0f) == 0.0f && ulps(oq_vexpf(88.7f), exp((double)88.7f)) <= 1.0 && oq_vexpf(0.0f) == 1.0f);
    CHECK(isnan(oq_vexpf(NAN)) && isnan(oq_verff(NAN)) && isnan(oq_vsigmoidf(NAN)));
    CHECK(oq_verff(INFINITY) == 1.0f && oq_verff(-INFINITY) == -1.0f && oq_verff(10.0f) == 1.0f);
    CHECK(oq_verff(0.0f) == 0.0f && signbit(oq_verff(-0.0f)));
    CHECK(oq_vsigmoidf(-100.0f) == 0.0f && oq_vsigmoidf(100.0f) == 1.0f && oq_vsigmoidf(0.0f) == 0.5f);
}

static int check_elementwise(oq_isa level)
{
    (void)level;
    static const unary_params params[U_COUNT] = {
        [U_RELU] = {0, 0},          [U_LEAKY] = {0.1f, 0},   [U_HSIG] = {0.2f, 0.5f},
        [U_HSWISH] = {0, 0},        [U_CLIP] = {-1.5f, 6.0f},
    };
    uint32_t st = 3;
    cases = 0;
    vmath_accuracy();
    for (int k = 0; k < U_COUNT; k++)
        for (int li = 0; li < N_LENGTHS; li++)
            unary_case((unary_kind)k, lengths[li], &params[k], &st);
    return cases;
}

const kfamily kf_elementwise = {"elementwise", clone_variant, check_elementwise};

/* ---- fusion ------------------------------------------------------------------------ */

/* The step's result from its operands' values (a constant operand is k0). */
static float step_ref(const oq_ew_step *s, const float *reg)
{
    float a = s->a >= 0 ? reg[s->a] : s->k0, b = s->b >= 0 ? reg[s->b] : s->k0;
    switch (s->kind) {
    case OQ_EW_ADD: return a + b;
    case OQ_EW_SUB: return a - b;
    case OQ_EW_MUL: return a * b;
    case OQ_EW_DIV: return a / b;
    case OQ_EW_RELU: return a > 0.0f ? a : 0.0f;
    case OQ_EW_SIGMOID: return oq_vsigmoidf(a);
    case OQ_EW_ERF: return oq_verff(a);
    case OQ_EW_HARD_SIGMOID: return max_or(min_or(s->k0 * a + s->k1, 1.0f), 0.0f);
    case OQ_EW_HARD_SWISH: return a * max_or(min_or(a / 6.0f + 0.5f, 1.0f), 0.0f);
    default: {
        float t = a < s->k0 ? s->k0 : a;
        return t > s->k1 ? s->k1 : t;
    }
    }
}

enum { S0 = 0, S1 = 1, R = OQ_FUSE_MAX_SRC }; /* sources, and the register of step 0 */

/* Chains of one and two sources that use every kind of step. */
static const oq_fusion chains[] = {
    {.n = 8, .n_src = 1, .steps = {
        {OQ_EW_ADD, S0, -1, 3.0f, 0},         /* x + 3 */
        {OQ_EW_CLIP, R + 0, -1, 0.0f, 6.0f},  /* clip(., 0, 6) */
        {OQ_EW_MUL, S0, R + 1, 0, 0},         /* x * . */
        {OQ_EW_DIV, R + 2, -1, 6.0f, 0},      /* . / 6: hard-swish */
        {OQ_EW_SUB, -1, R + 3, 1.0f, 0},      /* 1 - . */
        {OQ_EW_HARD_SIGMOID, R + 4, -1, 0.2f, 0.5f},
        {OQ_EW_SIGMOID, R + 5, -1, 0, 0},
        {OQ_EW_MUL, -1, R + 6, 1.5f, 0},      /* 1.5 * . */
    }},
    {.n = 6, .n_src = 2, .steps = {
        {OQ_EW_MUL, S0, -1, 0.75f, 0},        /* x * 0.75 */
        {OQ_EW_ADD, R + 0, S1, 0, 0},         /* . + y: a residual add */
        {OQ_EW_RELU, R + 1, -1, 0, 0},
        {OQ_EW_SUB, R + 2, S1, 0, 0},         /* . - y */
        {OQ_EW_DIV, -1, R + 3, 2.0f, 0},      /* 2 / . */
        {OQ_EW_ADD, -1, R + 4, -0.25f, 0},    /* -0.25 + . */
    }},
    {.n = 5, .n_src = 1, .steps = {
        {OQ_EW_DIV, S0, -1, 1.4142135f, 0},   /* x / sqrt(2) */
        {OQ_EW_ERF, R + 0, -1, 0, 0},
        {OQ_EW_ADD, R + 1, -1, 1.0f, 0},
        {OQ_EW_MUL, S0, R + 2, 0, 0},
        {OQ_EW_MUL, R + 3, -1, 0.5f, 0},      /* GELU as exporters write it */
    }},
    {.n = 2, .n_src = 1, .steps = {
        {OQ_EW_SIGMOID, S0, -1, 0, 0},
        {OQ_EW_MUL, S0, R + 0, 0, 0},         /* x * sigmoid(x): SiLU, run as one loop */
    }},
    {.n = 2, .n_src = 1, .steps = {
        {OQ_EW_SIGMOID, S0, -1, 0, 0},
        {OQ_EW_MUL, R + 0, S0, 0, 0},         /* sigmoid(x) * x: the same */
    }},
    {.n = 2, .n_src = 1, .steps = {
        {OQ_EW_SIGMOID, S0, -1, 0, 0},
        {OQ_EW_MUL, R + 0, R + 0, 0, 0},      /* sigmoid(x)^2: not SiLU */
    }},
    {.n = 2, .n_src = 1, .steps = {
        {OQ_EW_RELU, S0, -1, 0, 0},           /* -0 and NaN become +0 */
        {OQ_EW_CLIP, R + 0, -1, -1.0f, 5.0f}, /* and pass the clip unchanged */
    }},
    /* one step: in place, oq_fusion_run_inplace runs it straight over y */
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_CLIP, S0, -1, 0.0f, 6.0f}}},
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_SIGMOID, S0, -1, 0, 0}}},
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_HARD_SIGMOID, S0, -1, 0.2f, 0.5f}}},
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_HARD_SWISH, S0, -1, 0, 0}}},
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_RELU, S0, -1, 0, 0}}},
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_ERF, S0, -1, 0, 0}}},
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_SUB, -1, S0, 1.0f, 0}}},    /* 1 - x */
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_DIV, S0, -1, 6.0f, 0}}},    /* x / 6 */
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_MUL, S0, S0, 0, 0}}},       /* x * x */
    {.n = 1, .n_src = 1, .steps = {{OQ_EW_ADD, -1, S0, 3.0f, 0}}},    /* 3 + x */
};

static void fusion_case(const oq_fusion *f, int64_t n, int64_t begin, uint32_t *st, float *x0, float *x1, float *y)
{
    cases++;
    fill_floats(x0, n, st);
    fill_floats(x1, n, st);
    const float *x[2] = {x0, x1};
    memset(y, 0, (size_t)n * sizeof *y);
    oq_fusion_run(f, y, x, begin, n);
    int bad = 0;
    for (int64_t i = 0; i < begin; i++)
        bad += y[i] != 0.0f || signbit(y[i]); /* outside the range: untouched */
    for (int64_t i = begin; i < n; i++) {
        float reg[R + OQ_FUSE_MAX_NODES] = {x0[i], x1[i]};
        for (int k = 0; k < f->n; k++)
            reg[R + k] = step_ref(&f->steps[k], reg);
        bad += !same(y[i], reg[R + f->n - 1]);
    }
    if (f->n_src == 1) { /* and in place */
        memcpy(y, x0, (size_t)n * sizeof *y);
        oq_fusion_run_inplace(f, y, n);
        for (int64_t i = 0; i < n; i++) {
            float reg[R + OQ_FUSE_MAX_NODES] = {x0[i]};
            for (int k = 0; k < f->n; k++)
                reg[R + k] = step_ref(&f->steps[k], reg);
            bad += !same(y[i], reg[R + f->n - 1]);
        }
    }
    if (bad)
        fprintf(stderr, "fusion chain of %d steps n=%lld from %lld: %d values differ\n", f->n, (long long)n,
                (long long)begin, bad);
    CHECK(bad == 0);
}

static int check_fusion(oq_isa level)
{
    (void)level;
    float *x0 = malloc(MAX_LEN * sizeof *x0), *x1 = malloc(MAX_LEN * sizeof *x1), *y = malloc(MAX_LEN * sizeof *y);
    uint32_t st = 5;
    cases = 0;
    if (!x0 || !x1 || !y) {
        CHECK(!"out of memory");
    } else {
        for (size_t c = 0; c < sizeof chains / sizeof chains[0]; c++)
            for (int li = 0; li < N_LENGTHS; li++) {
                fusion_case(&chains[c], lengths[li], 0, &st, x0, x1, y);
                if (lengths[li] > 3)
                    fusion_case(&chains[c], lengths[li], 3, &st, x0, x1, y);
            }
    }
    free(x0), free(x1), free(y);
    return cases;
}

const kfamily kf_fusion = {"fusion", clone_variant, check_fusion};
