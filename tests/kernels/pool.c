/* pool.c: kernel family pool. MaxPool and AveragePool over 2-D planes (the
 * loops compiled per level) as one-node models through the executor,
 * compared bit for bit with plain loops written here: every output visits
 * its window's taps inside the input in row-major order, MaxPool keeps the
 * first largest, AveragePool sums from 0 and divides by the taps inside the
 * input, or with count_include_pad by the taps inside the input and its
 * pads. Shapes: kernels 1 to 7 and 1x7 / 7x1, strides 1 to 3, pads 0 to 3
 * (unequal before and after), dilation 2, ceil_mode, planes narrower than
 * the kernel, rows wider than a vector, "same"-size pooling at stride 1
 * (AveragePool's run over whole rows), and enough planes to split over two
 * threads. */
#include <string.h>

#include "harness.h"

static int cases;

typedef struct pool_case {
    int64_t n, c, ih, iw;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pads[4]; /* top, left, bottom, right */
    bool ceil_mode, include_pad;
} pool_case;

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* Output length along one axis, as ONNX defines it (a window must start
 * inside the input or its leading pad with ceil_mode). */
static int64_t out_len(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1, bool ceil_mode)
{
    int64_t span = in + p0 + p1 - (d * (k - 1) + 1);
    int64_t o = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p0)
        o--;
    return o;
}

static oq_status set_pool_attrs(oq_node *n, const void *arg, oq_err *err)
{
    const pool_case *c = arg;
    int64_t ks[2] = {c->kh, c->kw}, st[2] = {c->sh, c->sw}, dil[2] = {c->dh, c->dw};
    oq_status s;
    if ((s = oq_node_set_attr_ints(n, "kernel_shape", 2, ks, err)) ||
        (s = oq_node_set_attr_ints(n, "strides", 2, st, err)) ||
        (s = oq_node_set_attr_ints(n, "dilations", 2, dil, err)) ||
        (s = oq_node_set_attr_ints(n, "pads", 4, c->pads, err)) ||
        (s = oq_node_set_attr_int(n, "ceil_mode", c->ceil_mode, err)))
        return s;
    if (!strcmp(n->op_type, "AveragePool"))
        s = oq_node_set_attr_int(n, "count_include_pad", c->include_pad, err);
    return s;
}

/* Output (oh, ow) of plane x by the plain loops above. */
static float pool_ref(const pool_case *c, bool is_max, const float *x, int64_t oh, int64_t ow)
{
    int64_t h0 = oh * c->sh - c->pads[0], w0 = ow * c->sw - c->pads[1];
    float acc = 0.0f;
    int64_t inside = 0, rows_incl = 0, cols_incl = 0;
    for (int64_t a = 0; a < c->kh; a++) {
        int64_t h = h0 + a * c->dh;
        rows_incl += h < c->ih + c->pads[2];
        for (int64_t b = 0; b < c->kw; b++) {
            int64_t w = w0 + b * c->dw;
            if (a == 0)
                cols_incl += w < c->iw + c->pads[3];
            if (h < 0 || h >= c->ih || w < 0 || w >= c->iw)
                continue;
            float v = x[h * c->iw + w];
            if (is_max)
                acc = !inside || v > acc ? v : acc;
            else
                acc += v;
            inside++;
        }
    }
    if (is_max)
        return acc;
    int64_t count = c->include_pad ? rows_incl * cols_incl : inside;
    return count > 0 ? acc / (float)count : 0.0f;
}

static void pool_case_run(const pool_case *c, bool is_max, uint32_t *st)
{
    int64_t oh_n = out_len(c->ih, c->kh, c->sh, c->dh, c->pads[0], c->pads[2], c->ceil_mode);
    int64_t ow_n = out_len(c->iw, c->kw, c->sw, c->dw, c->pads[1], c->pads[3], c->ceil_mode);
    int64_t dims[4] = {c->n, c->c, c->ih, c->iw};
    oq_tensor x, y[1];
    oq_err err = {0};
    cases++;
    CHECK_OK(oq_tensor_alloc(&x, OQ_DTYPE_FLOAT, 4, dims, &err), &err);
    if (err.status)
        return;
    int64_t planes = c->n * c->c, in_size = c->ih * c->iw;
    for (int64_t i = 0; i < planes * in_size; i++)
        ((float *)x.data)[i] = krand_float(st, -2.0f, 2.0f);
    knode_input in[1] = {{"x", &x, false}};
    CHECK_OK(knode_run(is_max ? "MaxPool" : "AveragePool", "", 19, in, 1, set_pool_attrs, c, 1, planes > 16 ? 2 : 1,
                       y, &err),
             &err);
    if (!err.status) {
        CHECK(y->rank == 4 && y->dims[2] == oh_n && y->dims[3] == ow_n);
        int bad = 0;
        if (y->rank == 4 && y->dims[2] == oh_n && y->dims[3] == ow_n)
            for (int64_t pl = 0; pl < planes; pl++)
                for (int64_t oh = 0; oh < oh_n; oh++)
                    for (int64_t ow = 0; ow < ow_n; ow++) {
                        float want = pool_ref(c, is_max, (const float *)x.data + pl * in_size, oh, ow);
                        float got = ((const float *)y->data)[(pl * oh_n + oh) * ow_n + ow];
                        bad += memcmp(&want, &got, sizeof want) != 0;
                    }
        if (bad)
            fprintf(stderr, "%s %lldx%lld k%lldx%lld s%lld,%lld d%lld,%lld pads %lld,%lld,%lld,%lld%s%s: %d values differ\n",
                    is_max ? "MaxPool" : "AveragePool", (long long)c->ih, (long long)c->iw, (long long)c->kh,
                    (long long)c->kw, (long long)c->sh, (long long)c->sw, (long long)c->dh, (long long)c->dw,
                    (long long)c->pads[0], (long long)c->pads[1], (long long)c->pads[2], (long long)c->pads[3],
                    c->ceil_mode ? " ceil" : "", c->include_pad ? " include_pad" : "", bad);
        CHECK(bad == 0);
        oq_tensor_release(y);
    }
    oq_tensor_release(&x);
}

static const pool_case pcases[] = {
    /* n, c, ih, iw, kh, kw, sh, sw, dh, dw, pads (t, l, b, r), ceil_mode, include_pad */
    {1, 3, 35, 35, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, false, true},
    {1, 3, 35, 35, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, false, false},
    {1, 2, 17, 17, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, false, false},
    {1, 2, 55, 55, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, true, false},
    {1, 2, 56, 40, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, true, true},
    {2, 2, 9, 33, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, false, true},
    {1, 2, 8, 8, 1, 7, 1, 1, 1, 1, {0, 3, 0, 3}, false, true},
    {1, 2, 8, 8, 7, 1, 1, 1, 1, 1, {3, 0, 3, 0}, false, false},
    {1, 2, 20, 21, 3, 4, 3, 2, 2, 2, {1, 0, 3, 2}, true, true},
    {1, 2, 20, 21, 3, 4, 3, 2, 2, 2, {1, 0, 3, 2}, true, false},
    {1, 2, 4, 5, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}, false, true},
    {1, 2, 4, 5, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}, false, false},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, false, false},
    {1, 2, 3, 70, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, false, false},
    {1, 40, 13, 19, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, false, true},
    {1, 2, 11, 12, 3, 3, 1, 1, 2, 2, {2, 1, 2, 3}, false, true},  /* "same" size, dilated, uneven pads */
    {1, 2, 11, 12, 3, 3, 1, 1, 2, 2, {2, 1, 2, 3}, false, false},
    {1, 40, 13, 19, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, true, false},
};

static int check_pool(oq_isa level)
{
    (void)level;
    cases = 0;
    uint32_t st = 0x2545f491u;
    for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
        pool_case_run(&pcases[i], true, &st);
        pool_case_run(&pcases[i], false, &st);
    }
    return cases;
}

const kfamily kf_pool = {"pool", clone_variant, check_pool};
