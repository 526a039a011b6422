/* ops_nn.c: the compute-heavy float kernels: Conv, ConvTranspose, MatMul,
 * Gemm, MaxPool, AveragePool, the global pools and Einsum, and
 * com.microsoft QLinearAveragePool (with the float pools' window geometry).
 *
 * Convolution math lives in conv.c and the matrix multiply in gemm.c; this
 * file reads attributes, checks shapes, sizes outputs and workspaces, and
 * implements pooling and Einsum directly. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "exec/conv.h"
#include "exec/fuse.h"
#include "exec/gemm.h"
#include "exec/kernel.h"
#include "exec/ops.h"
#include "exec/ops_common.h"
#include "exec/qops.h"

/* ---- shared helpers ---------------------------------------------------------- */

/* Sets *out to float input k: required inputs must be present, optional ones
 * may be absent (*out = NULL). Other element types are unsupported. */
static oq_status float_input(oq_kernel_ctx *c, int k, bool required, const oq_tensor **out)
{
    const oq_tensor *t = required ? oq_kernel_require(c, k) : oq_kernel_input(c, k);
    *out = t;
    if (!t) return required ? c->err->status : OQ_OK;
    if (t->dtype != OQ_DTYPE_FLOAT)
        return OQ_KUNSUP(c, "input %d has element type %s; only float is supported", k, oq_dtype_name(t->dtype));
    return OQ_OK;
}

static int n_parts(const oq_kernel_ctx *c)
{
    int t = oq_kernel_threads(c);
    return t < 1 ? 1 : t;
}

/* Scratch of n floats, not cleared (workspaces are written before read), or
 * NULL with c->err set. */
static float *scratch_floats(oq_kernel_ctx *c, size_t n)
{
    return oq_kernel_scratch_raw(c, (n ? n : 1) * sizeof(float));
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Reads an INTS attribute that must have exactly n entries when present;
 * fills v with it or with def. */
static oq_status ints_attr(oq_kernel_ctx *c, const char *name, int n, int64_t def, int64_t *v)
{
    int cnt = 0;
    const int64_t *a = oq_node_attr_ints(c->node, name, &cnt);
    if (a && cnt != n) return OQ_KERR(c, "attribute %s has %d values, expected %d", name, cnt, n);
    for (int i = 0; i < n; i++) v[i] = a ? a[i] : def;
    return OQ_OK;
}

/* ---- spatial attributes (Conv and pools) ------------------------------------ */

/* Fills p's strides, dilations and pads from the node's attributes and
 * computes p->out from p->in and p->k. ceil_mode rounds the output size up
 * (pools), dropping a last window that would start in the end padding. */
static oq_status spatial_setup(oq_kernel_ctx *c, oq_conv_params *p, bool ceil_mode)
{
    int d = p->nsp;
    oq_status st;
    int64_t pads[2 * (OQ_MAX_RANK - 2)];
    if ((st = ints_attr(c, "strides", d, 1, p->stride)) || (st = ints_attr(c, "dilations", d, 1, p->dil)) ||
        (st = ints_attr(c, "pads", 2 * d, 0, pads)))
        return st;
    const char *ap = oq_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER");
    bool valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") && ap[0])
        return OQ_KERR(c, "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
    for (int a = 0; a < d; a++) {
        if (p->stride[a] < 1 || p->dil[a] < 1 || pads[a] < 0 || pads[d + a] < 0)
            return OQ_KERR(c, "strides and dilations must be positive and pads non-negative");
        if (p->k[a] < 1) return OQ_KERR(c, "kernel dim %d is %lld", a, (long long)p->k[a]);
        int64_t ek = p->dil[a] * (p->k[a] - 1) + 1, s = p->stride[a];
        if (same_upper || same_lower) {
            p->out[a] = ceil_div(p->in[a], s);
            int64_t total = (p->out[a] - 1) * s + ek - p->in[a];
            if (total < 0) total = 0;
            p->pad0[a] = same_upper ? total / 2 : total - total / 2;
            p->pad1[a] = total - p->pad0[a];
            continue;
        }
        p->pad0[a] = valid ? 0 : pads[a];
        p->pad1[a] = valid ? 0 : pads[d + a];
        int64_t span = p->in[a] + p->pad0[a] + p->pad1[a] - ek;
        if (span < 0)
            return OQ_KERR(c, "kernel extent %lld exceeds padded input %lld along spatial dim %d", (long long)ek,
                           (long long)(p->in[a] + p->pad0[a] + p->pad1[a]), a);
        if (ceil_mode && !valid) {
            p->out[a] = ceil_div(span, s) + 1;
            if ((p->out[a] - 1) * s >= p->in[a] + p->pad0[a]) p->out[a]--;
        } else {
            p->out[a] = span / s + 1;
        }
    }
    return OQ_OK;
}

/* Output dims (n, ch, out...) of p into dims; returns the rank. */
static int nchw_dims(const oq_conv_params *p, int64_t ch, int64_t *dims)
{
    dims[0] = p->n;
    dims[1] = ch;
    for (int a = 0; a < p->nsp; a++) dims[2 + a] = p->out[a];
    return p->nsp + 2;
}

/* Checks x is (n, c, spatial...) with 1..OQ_MAX_RANK-2 spatial dims and copies them into p. */
static oq_status nchw_input(oq_kernel_ctx *c, const oq_tensor *x, oq_conv_params *p)
{
    if (x->rank < 3) return OQ_KERR(c, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->rank);
    p->nsp = x->rank - 2;
    p->n = x->dims[0];
    p->cin = x->dims[1];
    for (int a = 0; a < p->nsp; a++) p->in[a] = x->dims[2 + a];
    return OQ_OK;
}

/* ---- Conv -------------------------------------------------------------------- */

typedef struct pack_w_arg {
    const float *w;
    const oq_conv_params *p;
} pack_w_arg;

static void chain_in_place(void *arg, float *y, int64_t n) { oq_fusion_run_inplace(arg, y, n); }

static void pack_w_fill(void *dst, void *arg)
{
    const pack_w_arg *a = arg;
    oq_conv_pack_w(dst, a->w, a->p);
}

static oq_status k_conv(oq_kernel_ctx *c)
{
    const oq_tensor *x, *w, *b;
    oq_status st;
    if ((st = float_input(c, 0, true, &x)) || (st = float_input(c, 1, true, &w)) ||
        (st = float_input(c, 2, false, &b)))
        return st;
    oq_conv_params p = {0};
    if ((st = nchw_input(c, x, &p))) return st;
    if (w->rank != x->rank) return OQ_KERR(c, "weight rank %d differs from input rank %d", w->rank, x->rank);
    p.group = oq_node_attr_int(c->node, "group", 1);
    p.cout = w->dims[0];
    if (p.group < 1 || p.cin % p.group || p.cout % p.group || w->dims[1] * p.group != p.cin)
        return OQ_KERR(c, "group %lld does not fit %lld input channels, weight (%lld, %lld, ...)",
                       (long long)p.group, (long long)p.cin, (long long)w->dims[0], (long long)w->dims[1]);
    int64_t ks[OQ_MAX_RANK];
    if ((st = ints_attr(c, "kernel_shape", p.nsp, -1, ks))) return st;
    for (int a = 0; a < p.nsp; a++) {
        p.k[a] = w->dims[2 + a];
        if (ks[a] >= 0 && ks[a] != p.k[a]) return OQ_KERR(c, "kernel_shape disagrees with the weight shape");
    }
    if (b && (b->rank != 1 || b->dims[0] != p.cout))
        return OQ_KERR(c, "bias must be 1-D with %lld entries", (long long)p.cout);
    if ((st = spatial_setup(c, &p, false))) return st;

    int64_t dims[OQ_MAX_RANK];
    int rank = nchw_dims(&p, p.cout, dims);
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, rank, dims); /* every element written */
    if (!y) return c->err->status;
    if (oq_tensor_numel(y) == 0) return OQ_OK;
    if (oq_tensor_numel(x) == 0 || oq_tensor_numel(w) == 0) {
        /* No taps: the output is just the bias. */
        int64_t plane = oq_tensor_numel(y) / (p.n * p.cout);
        float *yd = y->data;
        for (int64_t i = 0; i < p.n * p.cout; i++)
            for (int64_t t = 0; t < plane; t++) yd[i * plane + t] = b ? ((const float *)b->data)[i % p.cout] : 0.0f;
        if (c->epilogue) oq_fusion_run_inplace(c->epilogue, yd, oq_tensor_numel(y));
        return OQ_OK;
    }
    int parts = n_parts(c);
    int64_t macs = oq_tensor_numel(y) * oq_tensor_numel(w) / p.cout;
    if (macs < ((int64_t)1 << 17)) parts = 1; /* not worth waking threads */
    float *ws = scratch_floats(c, oq_conv_ws_floats(&p, parts));
    if (!ws) return c->err->status;
    size_t packed = oq_conv_packed_w_floats(&p);
    if (!packed || oq_kernel_input_const(c, 1)) {
        /* constant weights are packed on the first run and kept by the session;
         * the direct depthwise and grouped convs read w as it is */
        pack_w_arg pa = {w->data, &p};
        const float *wp = packed ? oq_kernel_cache(c, packed * sizeof(float), pack_w_fill, &pa) : NULL;
        if (packed && !wp) return c->err->status;
        const oq_fusion *f = c->epilogue;
        bool one_step = f && f->n == 1 && f->n_src == 1 && f->steps[0].a == 0 && f->steps[0].b < 0;
        oq_conv_epilogue ep = {chain_in_place, (void *)f, one_step ? &f->steps[0] : NULL};
        oq_conv_fast_packed(y->data, x->data, w->data, wp, b ? b->data : NULL, &p, c, parts, ws,
                            c->epilogue ? &ep : NULL);
    } else {
        oq_conv_fast(y->data, x->data, w->data, b ? b->data : NULL, &p, c, parts, ws);
        if (c->epilogue) oq_fusion_run_inplace(c->epilogue, y->data, oq_tensor_numel(y));
    }
    return OQ_OK;
}

/* ---- ConvTranspose --------------------------------------------------------------- */

static oq_status k_conv_transpose(oq_kernel_ctx *c)
{
    const oq_tensor *x, *w, *b;
    oq_status st;
    if ((st = float_input(c, 0, true, &x)) || (st = float_input(c, 1, true, &w)) ||
        (st = float_input(c, 2, false, &b)))
        return st;
    oq_conv_params p = {0};
    if ((st = nchw_input(c, x, &p))) return st;
    int d = p.nsp;
    if (w->rank != x->rank) return OQ_KERR(c, "weight rank %d differs from input rank %d", w->rank, x->rank);
    p.group = oq_node_attr_int(c->node, "group", 1);
    if (p.group < 1 || p.cin % p.group || w->dims[0] != p.cin)
        return OQ_KERR(c, "group %lld and weight (%lld, %lld, ...) do not fit %lld input channels",
                       (long long)p.group, (long long)w->dims[0], (long long)w->dims[1], (long long)p.cin);
    p.cout = w->dims[1] * p.group;
    if (b && (b->rank != 1 || b->dims[0] != p.cout))
        return OQ_KERR(c, "bias must be 1-D with %lld entries", (long long)p.cout);
    int64_t ks[OQ_MAX_RANK], opad[OQ_MAX_RANK], pads[2 * OQ_MAX_RANK];
    if ((st = ints_attr(c, "kernel_shape", d, -1, ks)) || (st = ints_attr(c, "strides", d, 1, p.stride)) ||
        (st = ints_attr(c, "dilations", d, 1, p.dil)) || (st = ints_attr(c, "output_padding", d, 0, opad)) ||
        (st = ints_attr(c, "pads", 2 * d, 0, pads)))
        return st;
    int n_os = 0;
    const int64_t *os = oq_node_attr_ints(c->node, "output_shape", &n_os);
    if (os && n_os != d && n_os != d + 2)
        return OQ_KERR(c, "output_shape has %d values for %d spatial dims", n_os, d);
    if (os) os += n_os - d; /* (N, C, spatial...) forms carry the spatial dims last */
    const char *ap = oq_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same = same_upper || !strcmp(ap, "SAME_LOWER");
    bool valid = !strcmp(ap, "VALID");
    if (!same && !valid && strcmp(ap, "NOTSET") && ap[0])
        return OQ_KERR(c, "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
    for (int a = 0; a < d; a++) {
        p.k[a] = w->dims[2 + a];
        if (ks[a] >= 0 && ks[a] != p.k[a]) return OQ_KERR(c, "kernel_shape disagrees with the weight shape");
        if (p.stride[a] < 1 || p.dil[a] < 1 || opad[a] < 0 || pads[a] < 0 || pads[d + a] < 0)
            return OQ_KERR(c, "strides and dilations must be positive, pads and output_padding non-negative");
        int64_t full = p.stride[a] * (p.in[a] - 1) + opad[a] + p.dil[a] * (p.k[a] - 1) + 1;
        if (os || same) {
            /* The output size is given; the padding follows from it. */
            p.out[a] = os ? os[a] : p.in[a] * p.stride[a];
            /* A larger requested size just extends the end with zeros (bias). */
            int64_t total = full - p.out[a] > 0 ? full - p.out[a] : 0;
            p.pad0[a] = same_upper ? total / 2 : total - total / 2;
            p.pad1[a] = total - p.pad0[a];
        } else {
            p.pad0[a] = valid ? 0 : pads[a];
            p.pad1[a] = valid ? 0 : pads[d + a];
            p.out[a] = full - p.pad0[a] - p.pad1[a];
            if (p.out[a] < 0) return OQ_KERR(c, "pads exceed the output along spatial dim %d", a);
        }
    }
    int64_t dims[OQ_MAX_RANK];
    int rank = nchw_dims(&p, p.cout, dims);
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, rank, dims); /* every element written */
    if (!y) return c->err->status;
    if (oq_tensor_numel(y) == 0) return OQ_OK;
    int parts = n_parts(c);
    float *ws = scratch_floats(c, oq_conv_transpose_ws_floats(&p, parts));
    if (!ws) return c->err->status;
    oq_conv_transpose(y->data, x->data, w->data, b ? b->data : NULL, &p, c, parts, ws);
    return OQ_OK;
}

/* ---- pooling -------------------------------------------------------------------- */

typedef struct pool_job {
    const oq_conv_params *p;
    const void *x;
    void *y;
    int64_t *idx;             /* MaxPool Indices output, or NULL */
    int64_t in_size, out_size;
    bool include_pad;         /* AveragePool count_include_pad */
    bool col_major;           /* MaxPool storage_order = 1 */
} pool_job;

/* Window of output position o along every dim: taps [lo, hi) fall inside the
 * input; `incl` counts taps inside input plus pads (count_include_pad). */
static void pool_window(const oq_conv_params *p, const int64_t *o, int64_t *start, int64_t *lo, int64_t *hi,
                        int64_t *incl)
{
    *incl = 1;
    for (int a = 0; a < p->nsp; a++) {
        int64_t s = o[a] * p->stride[a] - p->pad0[a], dl = p->dil[a];
        start[a] = s;
        lo[a] = s >= 0 ? 0 : ceil_div(-s, dl);
        int64_t h = ceil_div(p->in[a] - s, dl), hp = ceil_div(p->in[a] + p->pad1[a] - s, dl);
        hi[a] = h < p->k[a] ? h : p->k[a];
        if (hi[a] < lo[a]) hi[a] = lo[a];
        *incl *= hp < p->k[a] ? hp : p->k[a];
    }
}

/* Next tap of the window box [lo, hi) in k; false when done. */
static bool window_next(int d, int64_t *k, const int64_t *lo, const int64_t *hi)
{
    for (int a = d - 1; a >= 0; a--) {
        if (++k[a] < hi[a]) return true;
        k[a] = lo[a];
    }
    return false;
}

/* Row-major offset in the input plane of window tap k. */
static int64_t tap_index(const oq_conv_params *p, const int64_t *start, const int64_t *k)
{
    int64_t off = 0;
    for (int a = 0; a < p->nsp; a++) off = off * p->in[a] + start[a] + k[a] * p->dil[a];
    return off;
}

static bool window_empty(int d, const int64_t *lo, const int64_t *hi)
{
    for (int a = 0; a < d; a++)
        if (lo[a] >= hi[a]) return true;
    return false;
}

/* Planes [begin, end) of MaxPool for element type T. */
#define MAXPOOL_PLANES(T, NAME)                                                                  \
    static void NAME(void *arg, int64_t begin, int64_t end)                                     \
    {                                                                                            \
        const pool_job *j = arg;                                                                 \
        const oq_conv_params *p = j->p;                                                          \
        int d = p->nsp;                                                                          \
        for (int64_t pl = begin; pl < end; pl++) {                                               \
            const T *x = (const T *)j->x + pl * j->in_size;                                      \
            T *y = (T *)j->y + pl * j->out_size;                                                 \
            int64_t o[OQ_MAX_RANK] = {0};                                                        \
            for (int64_t i = 0; i < j->out_size; i++) {                                          \
                int64_t start[OQ_MAX_RANK], lo[OQ_MAX_RANK], hi[OQ_MAX_RANK], k[OQ_MAX_RANK], incl; \
                pool_window(p, o, start, lo, hi, &incl);                                         \
                T best = 0;                                                                      \
                int64_t best_at = 0;                                                             \
                bool any = false;                                                                \
                if (!window_empty(d, lo, hi)) {                                                  \
                    memcpy(k, lo, sizeof(int64_t) * (size_t)d);                                  \
                    do {                                                                         \
                        int64_t at = tap_index(p, start, k);                              \
                        if (!any || x[at] > best) best = x[at], best_at = at, any = true;        \
                    } while (window_next(d, k, lo, hi));                                         \
                }                                                                                \
                y[i] = best;                                                                     \
                if (j->idx) {                                                                    \
                    if (j->col_major && any) {                                                   \
                        int64_t co[OQ_MAX_RANK], rem = best_at;                                  \
                        for (int a = d - 1; a >= 0; a--) co[a] = rem % p->in[a], rem /= p->in[a]; \
                        best_at = 0;                                                             \
                        for (int a = d - 1; a >= 0; a--) best_at = best_at * p->in[a] + co[a];   \
                    }                                                                            \
                    j->idx[pl * j->out_size + i] = pl * j->in_size + best_at;                    \
                }                                                                                \
                for (int a = d - 1; a >= 0; a--) {                                               \
                    if (++o[a] < p->out[a]) break;                                               \
                    o[a] = 0;                                                                    \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

MAXPOOL_PLANES(float, maxpool_f32)
MAXPOOL_PLANES(uint8_t, maxpool_u8)
MAXPOOL_PLANES(int8_t, maxpool_i8)

typedef enum pool_step { POOL_COPY, POOL_MAX, POOL_ADD } pool_step;

/* For o < n, with v = x[o * s]: y[o] = v (POOL_COPY), y[o] = max(y[o], v)
 * keeping y[o] unless v is larger (POOL_MAX), or y[o] += v (POOL_ADD).
 * Strides 1 and 2 are written out so that the loops vectorize. */
static inline __attribute__((always_inline)) void pool_row(float *restrict y, const float *restrict x, int64_t s,
                                                          int64_t n, pool_step step)
{
#define POOL_ROW_LOOP(S)                                                                                  \
    for (int64_t o = 0; o < n; o++) {                                                                     \
        float v = x[o * (S)];                                                                             \
        y[o] = step == POOL_COPY ? v : step == POOL_ADD ? y[o] + v : (v > y[o] ? v : y[o]);              \
    }
    if (s == 1)
        POOL_ROW_LOOP(1)
    else if (s == 2)
        POOL_ROW_LOOP(2)
    else
        POOL_ROW_LOOP(s)
#undef POOL_ROW_LOOP
}

/* Blocks of 16 outputs of max_inside at stride S, kept in registers; from
 * 16 outputs on, a last partial block is redone as a whole one ending at n
 * (the outputs it repeats get the same values). */
#define MAX_BLOCK16(S)                                                                                    \
    for (; n >= 16 && done < n; done += 16) {                                                             \
        done = done > n - 16 ? n - 16 : done; /* a last block overlapping the one before */               \
        float acc[16];                                                                                    \
        for (int t = 0; t < 16; t++) acc[t] = x[(done + t) * (S)];                                        \
        for (int64_t a = 0; a < p->k[0]; a++)                                                             \
            for (int64_t b = a ? 0 : 1; b < p->k[1]; b++) {                                               \
                const float *xt = x + done * (S) + a * p->dil[0] * ld + b * p->dil[1];                    \
                for (int t = 0; t < 16; t++) acc[t] = xt[t * (S)] > acc[t] ? xt[t * (S)] : acc[t];       \
            }                                                                                             \
        for (int t = 0; t < 16; t++) y[done + t] = acc[t];                                                \
    }

/* n outputs y[o] of windows wholly inside the input, the first tap of y[o]
 * at x[o * s]: each is the first tap, replaced by every later tap (row by
 * row, rows ld apart, dilations dh, dw) that is larger. */
static inline __attribute__((always_inline)) void max_inside(float *restrict y, const float *x, int64_t s,
                                                            int64_t n, const oq_conv_params *p, int64_t ld)
{
    int64_t done = 0;
    if (s == 1) /* (gcc 12 turns a strided block into scalar code: other strides take the passes below) */
        MAX_BLOCK16(1)
    y += done, x += done * s, n -= done;
    pool_row(y, x, s, n, POOL_COPY);
    for (int64_t a = 0; a < p->k[0]; a++)
        for (int64_t b = a ? 0 : 1; b < p->k[1]; b++)
            pool_row(y, x + a * p->dil[0] * ld + b * p->dil[1], s, n, POOL_MAX);
}
#undef MAX_BLOCK16

/* The output columns [*c0, *c1) of a 2-D pooling whose windows lie wholly
 * inside the input row (w0 >= 0 and w0 + (kw - 1) * dw < iw); empty when
 * there are none. */
static void inside_columns(const oq_conv_params *p, int64_t *c0, int64_t *c1)
{
    const int64_t sw = p->stride[1], ow_n = p->out[1];
    int64_t lim = p->in[1] - 1 - (p->k[1] - 1) * p->dil[1] + p->pad0[1];
    *c0 = min64((p->pad0[1] + sw - 1) / sw, ow_n);
    *c1 = lim < 0 ? *c0 : min64(ow_n, lim / sw + 1);
    if (*c1 < *c0)
        *c1 = *c0;
}

/* The same as maxpool_f32 for 2-D planes without Indices: the window of each
 * output is clipped by plain arithmetic and its taps visited in the same
 * order with the same comparison, so the results are identical. Where a
 * row's windows lie wholly inside the input, the taps go in the outer loop
 * and the outputs of the row in the inner one, which vectorizes. Compiled
 * per level (OQ_CLONED). */
OQ_CLONED(maxpool2d_f32, (void *arg, int64_t begin, int64_t end), (arg, begin, end))
{
    const pool_job *j = arg;
    const oq_conv_params *p = j->p;
    const int64_t ih = p->in[0], iw = p->in[1], kh = p->k[0], kw = p->k[1], dh = p->dil[0], dw = p->dil[1];
    const int64_t sw = p->stride[1], ow_n = p->out[1];
    int64_t c0, c1;
    inside_columns(p, &c0, &c1);
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = (const float *)j->x + pl * j->in_size;
        float *y = (float *)j->y + pl * j->out_size;
        for (int64_t oh = 0; oh < p->out[0]; oh++, y += ow_n) {
            int64_t h0 = oh * p->stride[0] - p->pad0[0];
            int64_t a0 = h0 >= 0 ? 0 : ceil_div(-h0, dh), a1 = min64(kh, ceil_div(ih - h0, dh));
            for (int64_t ow = 0; ow < ow_n; ow++) {
                if (ow == c0 && a0 == 0 && a1 == kh && c1 > c0) {
                    max_inside(y + c0, x + h0 * iw + (c0 * sw - p->pad0[1]), sw, c1 - c0, p, iw);
                    ow = c1 - 1;
                    continue;
                }
                int64_t w0 = ow * sw - p->pad0[1];
                int64_t b0 = w0 >= 0 ? 0 : ceil_div(-w0, dw), b1 = min64(kw, ceil_div(iw - w0, dw));
                float best = 0.0f;
                bool any = false;
                for (int64_t a = a0; a < a1; a++) {
                    int64_t row = (h0 + a * dh) * iw + w0;
                    for (int64_t b = b0; b < b1; b++) {
                        float v = x[row + b * dw];
                        if (!any || v > best) best = v, any = true;
                    }
                }
                y[ow] = best;
            }
        }
    }
}

/* n outputs y[o] of windows wholly inside the input, the first tap of y[o]
 * at x[o * s]: each sums its kh x kw taps (rows ld apart, dilations dh, dw)
 * in order from 0 and divides by their count. */
static inline __attribute__((always_inline)) void avg_inside(float *restrict y, const float *x, int64_t s,
                                                            int64_t n, const oq_conv_params *p, int64_t ld)
{
    const float count = (float)(p->k[0] * p->k[1]);
    int64_t done = 0;
    if (s == 1) /* blocks of 16 outputs summed in registers, the last one overlapping as in max_inside */
        for (; n >= 16 && done < n; done += 16) {
            done = done > n - 16 ? n - 16 : done; /* a last block overlapping the one before */
            float acc[16] = {0};
            for (int64_t a = 0; a < p->k[0]; a++)
                for (int64_t b = 0; b < p->k[1]; b++) {
                    const float *xt = x + done + a * p->dil[0] * ld + b * p->dil[1];
                    for (int t = 0; t < 16; t++) acc[t] += xt[t];
                }
            for (int t = 0; t < 16; t++) y[done + t] = acc[t] / count;
        }
    y += done, x += done * s, n -= done;
    for (int64_t o = 0; o < n; o++) y[o] = 0.0f;
    for (int64_t a = 0; a < p->k[0]; a++)
        for (int64_t b = 0; b < p->k[1]; b++) pool_row(y, x + a * p->dil[0] * ld + b * p->dil[1], s, n, POOL_ADD);
    for (int64_t o = 0; o < n; o++) y[o] = y[o] / count;
}

/* The same as avgpool_f32 for 2-D planes: each output sums its taps in the
 * same order from 0 and divides by the same count, so the results are
 * identical. Where a row's windows lie wholly inside the input, the taps go
 * in the outer loop and the outputs of the row in the inner one, which
 * vectorizes; such a window counts kh * kw taps with or without
 * count_include_pad. At stride 1 with as many output as input columns (a
 * "same" pooling), output o and input o + const line up across rows, so
 * the rows whose windows are inside the input in height run as one long
 * run from their first inside column to their last; the outputs of its
 * other columns, which read across a row's end there, are then redone one
 * by one. Compiled per level (OQ_CLONED). */
OQ_CLONED(avgpool2d_f32, (void *arg, int64_t begin, int64_t end), (arg, begin, end))
{
    const pool_job *j = arg;
    const oq_conv_params *p = j->p;
    const int64_t ih = p->in[0], iw = p->in[1], kh = p->k[0], kw = p->k[1], dh = p->dil[0], dw = p->dil[1];
    const int64_t sw = p->stride[1], ow_n = p->out[1];
    int64_t c0, c1;
    inside_columns(p, &c0, &c1);
    /* the flat run: rows [r0, r1) (inside in height), when the layout allows */
    int64_t r0 = 0, r1 = 0;
    if (p->stride[0] == 1 && sw == 1 && ow_n == iw && c1 > c0) {
        r0 = min64(p->pad0[0], p->out[0]);
        r1 = ih - (kh - 1) * dh + p->pad0[0];
        r1 = r1 < r0 ? r0 : min64(r1, p->out[0]);
    }
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = (const float *)j->x + pl * j->in_size;
        float *y = (float *)j->y + pl * j->out_size;
        if (r1 > r0)
            avg_inside(y + r0 * ow_n + c0, x + (r0 - p->pad0[0]) * iw + (c0 - p->pad0[1]), 1,
                       (r1 - 1 - r0) * ow_n + c1 - c0, p, iw);
        for (int64_t oh = 0; oh < p->out[0]; oh++, y += ow_n) {
            bool flat_done = oh >= r0 && oh < r1; /* columns [c0, c1) of this row are final */
            int64_t h0 = oh * p->stride[0] - p->pad0[0];
            int64_t a0 = h0 >= 0 ? 0 : ceil_div(-h0, dh), a1 = min64(kh, ceil_div(ih - h0, dh));
            if (a1 < a0) a1 = a0;
            /* rows counted with count_include_pad: inside the input or its pads */
            int64_t rows_incl = min64(kh, ceil_div(ih + p->pad1[0] - h0, dh));
            for (int64_t ow = 0; ow < ow_n; ow++) {
                if (ow == c0 && a0 == 0 && a1 == kh && c1 > c0) {
                    if (!flat_done) avg_inside(y + c0, x + h0 * iw + (c0 * sw - p->pad0[1]), sw, c1 - c0, p, iw);
                    ow = c1 - 1;
                    continue;
                }
                int64_t w0 = ow * sw - p->pad0[1];
                int64_t b0 = w0 >= 0 ? 0 : ceil_div(-w0, dw), b1 = min64(kw, ceil_div(iw - w0, dw));
                if (b1 < b0) b1 = b0;
                float sum = 0.0f;
                for (int64_t a = a0; a < a1; a++) {
                    int64_t row = (h0 + a * dh) * iw + w0;
                    for (int64_t b = b0; b < b1; b++) sum += x[row + b * dw];
                }
                int64_t count = j->include_pad ? rows_incl * min64(kw, ceil_div(iw + p->pad1[1] - w0, dw))
                                               : (a1 - a0) * (b1 - b0);
                y[ow] = count > 0 ? sum / (float)count : 0.0f;
            }
        }
    }
}

static void avgpool_f32(void *arg, int64_t begin, int64_t end)
{
    const pool_job *j = arg;
    const oq_conv_params *p = j->p;
    int d = p->nsp;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = (const float *)j->x + pl * j->in_size;
        float *y = (float *)j->y + pl * j->out_size;
        int64_t o[OQ_MAX_RANK] = {0};
        for (int64_t i = 0; i < j->out_size; i++) {
            int64_t start[OQ_MAX_RANK], lo[OQ_MAX_RANK], hi[OQ_MAX_RANK], k[OQ_MAX_RANK], incl, n = 0;
            pool_window(p, o, start, lo, hi, &incl);
            float sum = 0.0f;
            if (!window_empty(d, lo, hi)) {
                memcpy(k, lo, sizeof(int64_t) * (size_t)d);
                do {
                    sum += x[tap_index(p, start, k)];
                    n++;
                } while (window_next(d, k, lo, hi));
            }
            int64_t count = j->include_pad ? incl : n;
            y[i] = count > 0 ? sum / (float)count : 0.0f;
            for (int a = d - 1; a >= 0; a--) {
                if (++o[a] < p->out[a]) break;
                o[a] = 0;
            }
        }
    }
}

/* MaxPool 2-D of 8-bit planes without Indices: the window of each output is
 * clipped by plain arithmetic and its taps compared as maxpool_u8 and
 * maxpool_i8 do, so the results are identical. Where a row's windows lie
 * wholly inside the input, the taps go in the outer loop and the outputs of
 * the row in the inner one, which vectorizes. */
#define MAXPOOL2D_8BIT(T, NAME)                                                                                      \
    static void NAME(void *arg, int64_t begin, int64_t end)                                                    \
    {                                                                                                          \
        const pool_job *j = arg;                                                                               \
        const oq_conv_params *p = j->p;                                                                        \
        const int64_t ih = p->in[0], iw = p->in[1], kh = p->k[0], kw = p->k[1], dh = p->dil[0], dw = p->dil[1]; \
        const int64_t sw = p->stride[1], ow_n = p->out[1];                                                     \
        int64_t c0, c1;                                                                                        \
        inside_columns(p, &c0, &c1);                                                                           \
        for (int64_t pl = begin; pl < end; pl++) {                                                             \
            const T *x = (const T *)j->x + pl * j->in_size;                                                    \
            T *y = (T *)j->y + pl * j->out_size;                                                               \
            for (int64_t oh = 0; oh < p->out[0]; oh++, y += ow_n) {                                            \
                int64_t h0 = oh * p->stride[0] - p->pad0[0];                                                   \
                int64_t a0 = h0 >= 0 ? 0 : ceil_div(-h0, dh), a1 = min64(kh, ceil_div(ih - h0, dh));           \
                for (int64_t ow = 0; ow < ow_n; ow++) {                                                        \
                    if (ow == c0 && a0 == 0 && a1 == kh && c1 > c0) {                                          \
                        /* interior run [c0, c1): the first tap starts every max */                            \
                        const T *xr = x + h0 * iw + (c0 * sw - p->pad0[1]);                                    \
                        for (int64_t o = c0; o < c1; o++) y[o] = xr[(o - c0) * sw];                            \
                        for (int64_t a = 0; a < kh; a++)                                                       \
                            for (int64_t b = a ? 0 : 1; b < kw; b++) {                                         \
                                const T *xt = xr + a * dh * iw + b * dw;                                       \
                                for (int64_t o = c0; o < c1; o++) {                                            \
                                    T v = xt[(o - c0) * sw];                                                   \
                                    y[o] = v > y[o] ? v : y[o];                                                \
                                }                                                                              \
                            }                                                                                  \
                        ow = c1 - 1;                                                                           \
                        continue;                                                                              \
                    }                                                                                          \
                    int64_t w0 = ow * sw - p->pad0[1];                                                         \
                    int64_t b0 = w0 >= 0 ? 0 : ceil_div(-w0, dw), b1 = min64(kw, ceil_div(iw - w0, dw));       \
                    T best = 0;                                                                                \
                    bool any = false;                                                                          \
                    for (int64_t a = a0; a < a1; a++) {                                                        \
                        int64_t row = (h0 + a * dh) * iw + w0;                                                 \
                        for (int64_t b = b0; b < b1; b++) {                                                    \
                            T v = x[row + b * dw];                                                             \
                            if (!any || v > best) best = v, any = true;                                        \
                        }                                                                                      \
                    }                                                                                          \
                    y[ow] = best;                                                                              \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

MAXPOOL2D_8BIT(uint8_t, maxpool2d_u8)
MAXPOOL2D_8BIT(int8_t, maxpool2d_i8)
#undef MAXPOOL2D_8BIT

/* The geometry of the node's pooling window over x (NCHW): kernel_shape,
 * strides, pads, dilations, auto_pad and ceil_mode. */
static oq_status pool_geometry(oq_kernel_ctx *c, const oq_tensor *x, oq_conv_params *p)
{
    oq_status st;
    if ((st = nchw_input(c, x, p))) return st;
    p->cout = p->cin;
    p->group = p->cin;
    int n_ks = 0;
    const int64_t *ks = oq_node_attr_ints(c->node, "kernel_shape", &n_ks);
    if (!ks || n_ks != p->nsp) return OQ_KERR(c, "kernel_shape must list %d spatial dims", p->nsp);
    memcpy(p->k, ks, sizeof(int64_t) * (size_t)p->nsp);
    return spatial_setup(c, p, oq_node_attr_int(c->node, "ceil_mode", 0) != 0);
}

static oq_status run_pool(oq_kernel_ctx *c, bool is_max)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x) return c->err->status;
    oq_range_fn fn = NULL;
    if (x->dtype == OQ_DTYPE_FLOAT) fn = is_max ? maxpool_f32 : avgpool_f32;
    else if (is_max && x->dtype == OQ_DTYPE_UINT8) fn = maxpool_u8;
    else if (is_max && x->dtype == OQ_DTYPE_INT8) fn = maxpool_i8;
    if (!fn) return OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(x->dtype));
    oq_conv_params p = {0};
    oq_status st;
    if ((st = pool_geometry(c, x, &p))) return st;
    pool_job j = {&p, x->data, NULL, NULL, oq_shape_numel(p.nsp, p.in), 0,
                  oq_node_attr_int(c->node, "count_include_pad", 0) != 0,
                  oq_node_attr_int(c->node, "storage_order", 0) != 0};

    int64_t dims[OQ_MAX_RANK];
    int rank = nchw_dims(&p, p.cin, dims);
    oq_tensor *y = oq_kernel_output_raw(c, 0, x->dtype, rank, dims); /* every element written */
    if (!y) return c->err->status;
    j.y = y->data;
    j.out_size = oq_shape_numel(p.nsp, p.out);
    if (is_max && c->n_outputs > 1 && c->node->outputs[1]) {
        oq_tensor *idx = oq_kernel_output_raw(c, 1, OQ_DTYPE_INT64, rank, dims);
        if (!idx) return c->err->status;
        j.idx = idx->data;
    }
    if (oq_tensor_numel(y) == 0) return OQ_OK;
    if (p.nsp == 2 && !j.idx && (fn == maxpool_u8 || fn == maxpool_i8))
        fn = fn == maxpool_u8 ? maxpool2d_u8 : maxpool2d_i8;
    if (fn == maxpool_f32 && p.nsp == 2 && !j.idx) fn = maxpool2d_f32;
    if (fn == avgpool_f32 && p.nsp == 2) fn = avgpool2d_f32;
    int64_t taps = oq_shape_numel(p.nsp, p.k);
    oq_par_run(c, p.n * p.cin, j.out_size * taps, fn, &j);
    return OQ_OK;
}

static oq_status k_maxpool(oq_kernel_ctx *c) { return run_pool(c, true); }
static oq_status k_avgpool(oq_kernel_ctx *c) { return run_pool(c, false); }

/* What one QLinearAveragePool needs to turn window sums into 8-bit outputs. */
typedef struct qavg_out {
    bool include_pad;   /* count_include_pad: divide by the whole kernel */
    int64_t kernel;     /* taps of the whole kernel */
    float ys, yz;       /* y_scale, y_zero_point */
    oq_qrange r;
    bool sgn;           /* int8 output */
} qavg_out;

/* The 8-bit output of a window summing to sum over taps inside the input:
 * round-half-even(sum / count / y_scale + y_zero_point), saturated. */
static inline __attribute__((always_inline)) uint8_t qavg_value(const qavg_out *q, float sum, int64_t taps)
{
    const int64_t count = q->include_pad ? q->kernel : taps;
    float mean = count ? sum / (float)count : 0.0f; /* (a window wholly in the padding) */
    float v = mean / q->ys + q->yz;
    /* saturate, then round half to even by adding and taking away 1.5 x 2^23
     * (exact for |v| <= 2^22; the bounds are whole, so the order is free) */
    v = v < (float)q->r.lo ? (float)q->r.lo : v > (float)q->r.hi ? (float)q->r.hi : v;
    v = (v + 0x1.8p23f) - 0x1.8p23f; /* (IEEE arithmetic: not folded without -ffast-math) */
    return q->sgn ? (uint8_t)(int8_t)v : (uint8_t)v;
}

/* The input columns [*w0, *w1) of output column ow's window (dilation 1). */
static inline __attribute__((always_inline)) void qavg_cols(const oq_conv_params *p, int64_t ow, int64_t *w0,
                                                            int64_t *w1)
{
    int64_t w = ow * p->stride[1] - p->pad0[1];
    *w0 = w < 0 ? 0 : w;
    *w1 = min64(w + p->k[1], p->in[1]);
}

/* One 2-D plane: xf (dequantized, in[0] x in[1]) -> y. Each window's sum runs
 * row by row, left to right; columns whose windows lie inside the row
 * (inside_columns) are summed for all outputs at once, tap column by tap
 * column (the same order per output), the others one by one. acc holds
 * out[1] floats. */
static inline __attribute__((always_inline)) void qavg_plane_2d(const oq_conv_params *p, const qavg_out *q,
                                                                const float *xf, uint8_t *y, float *acc)
{
    const int64_t W = p->in[1], OW = p->out[1], sw = p->stride[1], kw = p->k[1];
    int64_t c0, c1, w0, w1;
    inside_columns(p, &c0, &c1);
    for (int64_t oh = 0; oh < p->out[0]; oh++) {
        int64_t h0 = oh * p->stride[0] - p->pad0[0], h1 = min64(h0 + p->k[0], p->in[0]);
        h0 = h0 < 0 ? 0 : h0;
        for (int64_t ow = 0; ow < OW; ow++) acc[ow] = 0.0f;
        for (int64_t h = h0; h < h1; h++) {
            const float *row = xf + h * W;
            for (int64_t ow = 0; ow < OW; ow++) {
                if (ow == c0 && c1 > c0) { /* the interior, vectorizable */
                    const float *base = row + c0 * sw - p->pad0[1];
                    float *a = acc + c0;
                    for (int64_t t = 0; t < kw; t++) {
                        if (sw == 1)
                            for (int64_t j = 0; j < c1 - c0; j++) a[j] += base[j + t];
                        else
                            for (int64_t j = 0; j < c1 - c0; j++) a[j] += base[j * sw + t];
                    }
                    ow = c1 - 1;
                    continue;
                }
                qavg_cols(p, ow, &w0, &w1);
                for (int64_t w = w0; w < w1; w++) acc[ow] += row[w];
            }
        }
        const int64_t rows = h1 > h0 ? h1 - h0 : 0;
        for (int64_t ow = 0; ow < OW; ow++) {
            if (ow == c0 && c1 > c0) { /* the interior: one count, vectorizable */
                for (int64_t j = c0; j < c1; j++) y[oh * OW + j] = qavg_value(q, acc[j], rows * kw);
                ow = c1 - 1;
                continue;
            }
            qavg_cols(p, ow, &w0, &w1);
            y[oh * OW + ow] = qavg_value(q, acc[ow], rows * (w1 > w0 ? w1 - w0 : 0));
        }
    }
}

/* Any spatial rank: the same sums, tap by tap in row-major order. */
static void qavg_plane_nd(const oq_conv_params *p, const qavg_out *q, const float *xf, uint8_t *y)
{
    const int64_t out_size = oq_shape_numel(p->nsp, p->out);
    for (int64_t i = 0; i < out_size; i++) {
        int64_t o[OQ_MAX_RANK - 2], start[OQ_MAX_RANK - 2], lo[OQ_MAX_RANK - 2], hi[OQ_MAX_RANK - 2];
        int64_t k[OQ_MAX_RANK - 2], incl, taps = 1, rest = i;
        for (int a = p->nsp - 1; a >= 0; a--) {
            o[a] = rest % p->out[a];
            rest /= p->out[a];
        }
        pool_window(p, o, start, lo, hi, &incl);
        float sum = 0.0f;
        if (!window_empty(p->nsp, lo, hi)) {
            memcpy(k, lo, sizeof(int64_t) * (size_t)p->nsp);
            do sum += xf[tap_index(p, start, k)];
            while (window_next(p->nsp, k, lo, hi));
        }
        for (int a = 0; a < p->nsp; a++) taps *= hi[a] - lo[a];
        y[i] = qavg_value(q, sum, taps);
    }
}

/* One QLinearAveragePool's planes. */
typedef struct qavg_job {
    const oq_conv_params *p;
    const qavg_out *q;
    const uint8_t *x;
    uint8_t *y;
    float real[256];        /* the real value of each input byte */
    int64_t in_size, out_size;
} qavg_job;

/* Plane i (an oq_item_fn): dequantized into ws, then pooled. ws holds in_size
 * + out[last] floats. */
OQ_CLONED(qavg_plane, (void *arg, int64_t i, uint8_t *ws), (arg, i, ws))
{
    const qavg_job *j = arg;
    float *xf = (float *)(void *)ws, *acc = xf + j->in_size;
    const uint8_t *xb = j->x + i * j->in_size;
    for (int64_t t = 0; t < j->in_size; t++) xf[t] = j->real[xb[t]];
    if (j->p->nsp == 2)
        qavg_plane_2d(j->p, j->q, xf, j->y + i * j->out_size, acc);
    else
        qavg_plane_nd(j->p, j->q, xf, j->y + i * j->out_size);
}

/* com.microsoft QLinearAveragePool (X, x_scale, x_zero_point?, y_scale,
 * y_zero_point?; AveragePool's attributes but dilations, NCHW only), with
 * ONNX Runtime's arithmetic: each window's dequantized taps summed in float
 * in row-major order, divided by the taps inside the input, or by the whole
 * kernel with count_include_pad (also where a ceil_mode window passes the
 * end padding, which the float AveragePool would not count), then
 * round-half-even(mean / y_scale + y_zero_point), saturated. */
static oq_status k_qlinear_avgpool(oq_kernel_ctx *c)
{
    const oq_tensor *x;
    oq_qparams qx, qy;
    oq_status st;
    if ((st = oq_require_8bit(c, 0, &x)) || (st = oq_read_qparams(c, 1, 2, x->dtype, &qx)) ||
        (st = oq_read_qparams(c, 3, 4, x->dtype, &qy)))
        return st;
    if (qx.count != 1 || qy.count != 1) return OQ_KERR(c, "x_scale and y_scale must be scalars");
    if (oq_node_attr_int(c->node, "channels_last", 0)) return OQ_KUNSUP(c, "channels_last is not supported");
    if (oq_node_attr(c->node, "dilations")) return OQ_KERR(c, "QLinearAveragePool has no dilations");
    oq_conv_params p = {0};
    if ((st = pool_geometry(c, x, &p))) return st;
    int64_t dims[OQ_MAX_RANK];
    int rank = nchw_dims(&p, p.cin, dims);
    oq_tensor *y = oq_kernel_output_raw(c, 0, x->dtype, rank, dims); /* every element written */
    if (!y) return c->err->status;
    const int64_t in_size = oq_shape_numel(p.nsp, p.in), out_size = oq_shape_numel(p.nsp, p.out);
    if (oq_tensor_numel(y) == 0) return OQ_OK;
    qavg_out q = {oq_node_attr_int(c->node, "count_include_pad", 0) != 0, oq_shape_numel(p.nsp, p.k), qy.scale[0],
                  (float)qy.zp[0], {0, 255}, x->dtype == OQ_DTYPE_INT8};
    oq_qtype_range(x->dtype, &q.r);
    qavg_job j = {&p, &q, x->data, y->data, {0}, in_size, out_size};
    oq_real_values(j.real, x->dtype, qx.scale[0], qx.zp[0]);
    return oq_run_items(c, p.n * p.cin, (size_t)(in_size + p.out[p.nsp - 1]) * sizeof(float), qavg_plane_pick(), &j);
}

typedef struct gpool_job {
    const float *x;
    float *y;
    int64_t size; /* elements per plane */
} gpool_job;

/* *y = the mean of x[0..size), summed in double. Cloned for wider vectors:
 * the eight sums are vector lanes either way, so the bits are the same. */
OQ_CLONED(plane_mean, (float *y, const float *x, int64_t size), (y, x, size))
{
    /* eight interleaved double sums, added up at the end: vectorizes */
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= size; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[i + l];
    double s = 0.0;
    for (; i < size; i++) s += x[i];
    for (int l = 0; l < 8; l++) s += acc[l];
    *y = (float)(s / (double)size);
}

static void gavg_planes(void *arg, int64_t begin, int64_t end)
{
    const gpool_job *j = arg;
    plane_mean_fn *mean = plane_mean_pick();
    for (int64_t pl = begin; pl < end; pl++) mean(j->y + pl, j->x + pl * j->size, j->size);
}

static void gmax_planes(void *arg, int64_t begin, int64_t end)
{
    const gpool_job *j = arg;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = j->x + pl * j->size;
        float m = x[0];
        for (int64_t i = 1; i < j->size; i++) m = x[i] > m ? x[i] : m;
        j->y[pl] = m;
    }
}

static oq_status run_global_pool(oq_kernel_ctx *c, oq_range_fn fn)
{
    const oq_tensor *x;
    oq_status st;
    if ((st = float_input(c, 0, true, &x))) return st;
    if (x->rank < 3) return OQ_KERR(c, "input must have rank >= 3 (N, C, spatial...), got rank %d", x->rank);
    int64_t dims[OQ_MAX_RANK];
    for (int a = 0; a < x->rank; a++) dims[a] = a < 2 ? x->dims[a] : 1;
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, x->rank, dims); /* one value per plane */
    if (!y) return c->err->status;
    gpool_job j = {x->data, y->data, oq_shape_numel(x->rank - 2, x->dims + 2)};
    if (j.size == 0) return OQ_KERR(c, "global pooling over an empty spatial extent");
    oq_par_run(c, x->dims[0] * x->dims[1], j.size, fn, &j);
    return OQ_OK;
}

static oq_status k_global_avgpool(oq_kernel_ctx *c) { return run_global_pool(c, gavg_planes); }
static oq_status k_global_maxpool(oq_kernel_ctx *c) { return run_global_pool(c, gmax_planes); }

/* ---- MatMul and Gemm -------------------------------------------------------------- */

typedef struct pack_b_arg {
    const oq_sgemm_args *g;
} pack_b_arg;

static void pack_b_fill(void *dst, void *arg) { oq_sgemm_pack_b(dst, ((const pack_b_arg *)arg)->g); }

/* Runs a batch of products over c's threads with scratch workspace. When B
 * (input b_input of the node) is one constant matrix for the whole batch and
 * the product is not skinny, B is packed on the first run and kept. */
static oq_status gemm_batch(oq_kernel_ctx *c, const oq_sgemm_args *g, int64_t batch, const int64_t *a_off,
                            const int64_t *b_off, const int64_t *c_off, int b_input)
{
    int parts = n_parts(c);
    if (g->m * g->n * g->k * batch < ((int64_t)1 << 18)) parts = 1; /* not worth waking threads */
    const float *bp = NULL;
    if (!b_off && g->m > OQ_SGEMM_SKINNY_M && oq_kernel_input_const(c, b_input)) {
        pack_b_arg pa = {g};
        if (!(bp = oq_kernel_cache(c, oq_sgemm_packed_b_floats(g->k, g->n) * sizeof(float), pack_b_fill, &pa)))
            return c->err->status;
    }
    float *ws = scratch_floats(c, oq_sgemm_batch_ws_floats(g, batch, parts));
    if (!ws) return c->err->status;
    oq_sgemm_batch(parts > 1 ? c : NULL, parts, g, batch, a_off, b_off, c_off, bp, ws);
    return OQ_OK;
}

static oq_status k_matmul(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b;
    oq_status st;
    if ((st = float_input(c, 0, true, &a)) || (st = float_input(c, 1, true, &b))) return st;
    oq_matmul_shape ms;
    if ((st = oq_matmul_dims(c, a, b, &ms))) return st;
    int64_t m = ms.m, k = ms.k, n = ms.n, *dims = ms.dims;
    int rb = ms.rb, obr = ms.batch_rank;
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, ms.rank, dims); /* beta 0: fully written */
    if (!y) return c->err->status;
    int64_t batch = oq_shape_numel(obr, dims);
    if (oq_tensor_numel(y) == 0) return OQ_OK;

    oq_sgemm_args g = {false, false, m, n, k, 1.0f, 0.0f, a->data, k, b->data, n, y->data, n};
    if (rb == 0) {
        /* One B for every batch: stack A's matrices into one tall product. */
        g.m = m * batch;
        return gemm_batch(c, &g, 1, NULL, NULL, NULL, 1);
    }
    int64_t *offs = oq_kernel_scratch(c, (size_t)batch * 3 * sizeof(int64_t));
    if (!offs) return c->err->status;
    oq_matmul_batch_offsets(a, b, &ms, offs, offs + batch);
    for (int64_t i = 0; i < batch; i++)
        offs[2 * batch + i] = i * m * n;
    return gemm_batch(c, &g, batch, offs, offs + batch, offs + 2 * batch, 1);
}

static oq_status k_gemm(oq_kernel_ctx *c)
{
    const oq_tensor *a, *b, *cc;
    oq_status st;
    if ((st = float_input(c, 0, true, &a)) || (st = float_input(c, 1, true, &b)) ||
        (st = float_input(c, 2, c->opset < 11, &cc)))
        return st;
    if (a->rank != 2 || b->rank != 2) return OQ_KERR(c, "Gemm operands must be 2-D");
    bool ta = oq_node_attr_int(c->node, "transA", 0) != 0, tb = oq_node_attr_int(c->node, "transB", 0) != 0;
    float alpha = oq_node_attr_float(c->node, "alpha", 1.0f), beta = oq_node_attr_float(c->node, "beta", 1.0f);
    int64_t m = a->dims[ta ? 1 : 0], k = a->dims[ta ? 0 : 1];
    int64_t kb = b->dims[tb ? 1 : 0], n = b->dims[tb ? 0 : 1];
    if (k != kb) return OQ_KERR(c, "inner dims differ: %lld vs %lld", (long long)k, (long long)kb);
    int64_t dims[2] = {m, n};
    if (cc) {
        if (cc->rank > 2) return OQ_KERR(c, "C must have rank <= 2");
        for (int x = 0; x < cc->rank; x++) {
            int64_t want = dims[2 - cc->rank + x];
            if (cc->dims[x] != 1 && cc->dims[x] != want)
                return OQ_KERR(c, "C dim %lld does not broadcast to %lld", (long long)cc->dims[x], (long long)want);
        }
    }
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_FLOAT, 2, dims);
    if (!y) return c->err->status;
    if (m == 0 || n == 0) return OQ_OK;
    float *yd = y->data;
    if (cc && beta != 0.0f) {
        int64_t s[2];
        oq_broadcast_strides(cc->rank, cc->dims, 2, dims, s);
        const float *cd = cc->data;
        for (int64_t i = 0; i < m; i++)
            for (int64_t jj = 0; jj < n; jj++) yd[i * n + jj] = cd[i * s[0] + jj * s[1]];
    } else {
        beta = 0.0f;
    }
    oq_sgemm_args g = {ta, tb, m, n, k, alpha, beta, a->data, a->dims[1], b->data, b->dims[1], yd, n};
    return gemm_batch(c, &g, 1, NULL, NULL, NULL, 1);
}

/* ---- Einsum -------------------------------------------------------------------------
 * Labels are numbered: 'a'..'z' -> 0..25, 'A'..'Z' -> 26..51, and ellipsis
 * dims 52.. (right-aligned across operands, broadcasting like numpy). */

#define EIN_LABELS (52 + OQ_MAX_RANK)
#define EIN_MAX_OPS 8

typedef struct ein_spec {
    int n_ops;
    int op_rank[EIN_MAX_OPS];
    int op_lab[EIN_MAX_OPS][OQ_MAX_RANK];  /* label of each operand axis */
    int out_rank;
    int out_lab[OQ_MAX_RANK];
    int64_t size[EIN_LABELS];               /* -1 when the label is unused */
    int n_sum;
    int sum_lab[EIN_LABELS];                /* labels summed over */
    int64_t stride[EIN_MAX_OPS][EIN_LABELS];/* element stride of each label per operand (0 = absent/broadcast) */
} ein_spec;

static int ein_label(char ch)
{
    if (ch >= 'a' && ch <= 'z') return ch - 'a';
    if (ch >= 'A' && ch <= 'Z') return 26 + ch - 'A';
    return -1;
}

/* Sort key for implicit output order: numpy orders labels by character code. */
static int ein_order(int lab) { return lab >= 52 ? lab - 100 : lab >= 26 ? lab - 26 : lab + 26; }

/* Parses one term (letters and at most one "...") of length len at s into
 * labels; ell_rank is the number of dims "..." stands for, e_max the widest
 * ellipsis. Returns the rank or -1 on a syntax error. */
static int ein_term(const char *s, int len, int ell_rank, int e_max, int *lab)
{
    int r = 0;
    bool seen = false;
    for (int i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (seen || i + 2 >= len + 0 || s[i + 1] != '.' || s[i + 2] != '.') return -1;
            seen = true;
            for (int e = 0; e < ell_rank; e++) {
                if (r >= OQ_MAX_RANK) return -1;
                lab[r++] = 52 + e_max - ell_rank + e;
            }
            i += 2;
            continue;
        }
        int l = ein_label(s[i]);
        if (l < 0 || r >= OQ_MAX_RANK) return -1;
        lab[r++] = l;
    }
    return r;
}

/* Letters in term s[0..len) (ellipsis excluded) and whether it has "...". */
static int ein_letters(const char *s, int len, bool *ell)
{
    int n = 0;
    *ell = false;
    for (int i = 0; i < len; i++) {
        if (s[i] == '.') *ell = true;
        else n++;
    }
    return n;
}

static oq_status ein_parse(oq_kernel_ctx *c, const char *eq, ein_spec *e, const oq_tensor *const *ops)
{
    char buf[256];
    size_t n = 0;
    for (const char *q = eq; *q; q++) {
        if (*q == ' ') continue;
        if (n + 1 >= sizeof buf) return OQ_KERR(c, "equation is too long");
        buf[n++] = *q;
    }
    buf[n] = 0;
    const char *arrow = strstr(buf, "->");
    int lhs_len = arrow ? (int)(arrow - buf) : (int)n;
    /* Split the left side into terms. */
    int t_start[EIN_MAX_OPS + 1], t_len[EIN_MAX_OPS + 1], nt = 0, st = 0;
    for (int i = 0; i <= lhs_len; i++) {
        if (i == lhs_len || buf[i] == ',') {
            if (nt >= e->n_ops) return OQ_KERR(c, "equation '%s' has more terms than the %d inputs", eq, e->n_ops);
            t_start[nt] = st, t_len[nt] = i - st, nt++;
            st = i + 1;
        }
    }
    if (nt != e->n_ops) return OQ_KERR(c, "equation '%s' has %d terms for %d inputs", eq, nt, e->n_ops);
    int e_max = 0, ell_rank[EIN_MAX_OPS];
    for (int o = 0; o < nt; o++) {
        bool ell;
        int letters = ein_letters(buf + t_start[o], t_len[o], &ell);
        ell_rank[o] = ell ? ops[o]->rank - letters : 0;
        if (ell_rank[o] < 0 || (!ell && letters != ops[o]->rank))
            return OQ_KERR(c, "term %d of '%s' does not match input rank %d", o, eq, ops[o]->rank);
        if (ell_rank[o] > e_max) e_max = ell_rank[o];
    }
    for (int l = 0; l < EIN_LABELS; l++) e->size[l] = -1;
    int count[EIN_LABELS] = {0};
    for (int o = 0; o < nt; o++) {
        e->op_rank[o] = ein_term(buf + t_start[o], t_len[o], ell_rank[o], e_max, e->op_lab[o]);
        if (e->op_rank[o] != ops[o]->rank) return OQ_KERR(c, "cannot parse term %d of '%s'", o, eq);
        for (int x = 0; x < e->op_rank[o]; x++) {
            int l = e->op_lab[o][x];
            int64_t dsz = ops[o]->dims[x];
            count[l]++;
            if (e->size[l] < 0 || e->size[l] == 1) e->size[l] = dsz;
            else if (dsz != 1 && dsz != e->size[l])
                return OQ_KERR(c, "label size mismatch in '%s': %lld vs %lld", eq, (long long)e->size[l], (long long)dsz);
        }
    }
    if (arrow) {
        const char *r = arrow + 2;
        e->out_rank = ein_term(r, (int)strlen(r), e_max, e_max, e->out_lab);
        if (e->out_rank < 0) return OQ_KERR(c, "cannot parse the output of '%s'", eq);
    } else {
        e->out_rank = 0;
        for (int l = 52; l < 52 + e_max; l++) e->out_lab[e->out_rank++] = l;
        int once[52], n_once = 0;
        for (int l = 0; l < 52; l++)
            if (count[l] == 1) once[n_once++] = l;
        for (int i = 1; i < n_once; i++) /* insertion sort by character code */
            for (int q = i; q > 0 && ein_order(once[q]) < ein_order(once[q - 1]); q--) {
                int t = once[q];
                once[q] = once[q - 1], once[q - 1] = t;
            }
        if (e->out_rank + n_once > OQ_MAX_RANK) return OQ_KERR(c, "output of '%s' has too many dims", eq);
        for (int i = 0; i < n_once; i++) e->out_lab[e->out_rank++] = once[i];
    }
    bool in_out[EIN_LABELS] = {false};
    for (int x = 0; x < e->out_rank; x++) {
        int l = e->out_lab[x];
        if (e->size[l] < 0 || in_out[l]) return OQ_KERR(c, "output label %d of '%s' is unknown or repeated", x, eq);
        in_out[l] = true;
    }
    e->n_sum = 0;
    for (int l = 0; l < EIN_LABELS; l++)
        if (e->size[l] >= 0 && !in_out[l]) e->sum_lab[e->n_sum++] = l;
    /* Strides: repeated labels in one operand add up (diagonals); size-1
     * dims broadcast with stride 0. */
    for (int o = 0; o < nt; o++) {
        memset(e->stride[o], 0, sizeof e->stride[o]);
        int64_t s = 1;
        for (int x = e->op_rank[o] - 1; x >= 0; x--) {
            int l = e->op_lab[o][x];
            if (ops[o]->dims[x] == e->size[l]) e->stride[o][l] += s;
            s *= ops[o]->dims[x];
        }
    }
    return OQ_OK;
}

typedef struct ein_job {
    const ein_spec *e;
    const void *in[EIN_MAX_OPS];
    void *y;
} ein_job;

/* General Einsum for element type T: y[i] = sum over the summed labels of
 * the product of the operands, for output elements [begin, end). */
#define EIN_GENERAL(T, NAME)                                                              \
    static void NAME(void *arg, int64_t begin, int64_t end)                              \
    {                                                                                    \
        const ein_job *j = arg;                                                          \
        const ein_spec *e = j->e;                                                        \
        int no = e->n_ops;                                                               \
        bool empty = false;                                                              \
        for (int s = 0; s < e->n_sum; s++) empty = empty || e->size[e->sum_lab[s]] == 0; \
        for (int64_t i = begin; i < end; i++) {                                          \
            int64_t off[EIN_MAX_OPS] = {0}, rem = i, k[EIN_LABELS] = {0};                \
            for (int x = e->out_rank - 1; x >= 0; x--) {                                 \
                int l = e->out_lab[x];                                                   \
                int64_t v = rem % e->size[l];                                            \
                rem /= e->size[l];                                                       \
                for (int o = 0; o < no; o++) off[o] += v * e->stride[o][l];              \
            }                                                                            \
            double acc = 0.0;                                                            \
            for (bool more = !empty; more;) {                                            \
                double prod = 1.0;                                                       \
                for (int o = 0; o < no; o++) prod *= ((const T *)j->in[o])[off[o]];      \
                acc += prod;                                                             \
                more = false;                                                            \
                for (int s = e->n_sum - 1; s >= 0 && !more; s--) {                       \
                    int l = e->sum_lab[s];                                               \
                    for (int o = 0; o < no; o++) off[o] += e->stride[o][l];              \
                    if (++k[s] < e->size[l]) {                                           \
                        more = true;                                                     \
                    } else {                                                             \
                        for (int o = 0; o < no; o++) off[o] -= e->stride[o][l] * e->size[l]; \
                        k[s] = 0;                                                        \
                    }                                                                    \
                }                                                                        \
            }                                                                            \
            ((T *)j->y)[i] = (T)acc;                                                     \
        }                                                                                \
    }

EIN_GENERAL(float, ein_general_f32)
EIN_GENERAL(double, ein_general_f64)

/* dst (contiguous, dims[0..n)) = src read with the given element strides. */
static void strided_copy(float *dst, const float *src, int n, const int64_t *dims, const int64_t *strides)
{
    int64_t total = oq_shape_numel(n, dims), idx[OQ_MAX_RANK] = {0}, off = 0;
    for (int64_t i = 0; i < total; i++) {
        dst[i] = src[off];
        for (int x = n - 1; x >= 0; x--) {
            off += strides[x];
            if (++idx[x] < dims[x]) break;
            off -= strides[x] * dims[x];
            idx[x] = 0;
        }
    }
}

/* Two-operand Einsum shaped like a batched matmul: every label is batch (in
 * A, B and out), m (A and out), n (B and out) or k (A and B); no diagonal and
 * no broadcasting. Permutes A to (batch, m, k), B to (batch, k, n), multiplies
 * and permutes the product into y. Returns OQ_OK with *done false when the
 * equation is not of that shape. */
static oq_status ein_matmul(oq_kernel_ctx *c, const ein_spec *e, const oq_tensor *const *ops, float *y, bool *done)
{
    *done = false;
    if (e->n_ops != 2) return OQ_OK;
    int cls[EIN_LABELS]; /* bit 0: in A, bit 1: in B, bit 2: in out */
    memset(cls, 0, sizeof cls);
    for (int o = 0; o < 2; o++)
        for (int x = 0; x < e->op_rank[o]; x++) {
            int l = e->op_lab[o][x];
            if (cls[l] & (1 << o)) return OQ_OK; /* diagonal */
            if (ops[o]->dims[x] != e->size[l]) return OQ_OK; /* broadcast */
            cls[l] |= 1 << o;
        }
    for (int x = 0; x < e->out_rank; x++) cls[e->out_lab[x]] |= 4;
    int grp[4][OQ_MAX_RANK], ng[4] = {0}; /* batch, m, n, k */
    int64_t gs[4] = {1, 1, 1, 1};
    for (int l = 0; l < EIN_LABELS; l++) {
        if (e->size[l] < 0) continue;
        int gi = cls[l] == 7 ? 0 : cls[l] == 5 ? 1 : cls[l] == 6 ? 2 : cls[l] == 3 ? 3 : -1;
        if (gi < 0) return OQ_OK; /* a label only one operand sums over */
        grp[gi][ng[gi]++] = l;
        gs[gi] *= e->size[l];
    }
    int64_t batch = gs[0], m = gs[1], n = gs[2], k = gs[3];
    float *ap = oq_kernel_scratch(c, (size_t)(batch * m * k + batch * k * n + batch * m * n + 1) * sizeof(float));
    if (!ap) return c->err->status;
    float *bp = ap + batch * m * k, *cp = bp + batch * k * n;
    /* Permuted copies: A as (batch.., m.., k..), B as (batch.., k.., n..). */
    static const int a_order[3] = {0, 1, 3}, b_order[3] = {0, 3, 2};
    for (int o = 0; o < 2; o++) {
        const int *ord = o ? b_order : a_order;
        int64_t dims[OQ_MAX_RANK], strides[OQ_MAX_RANK];
        int r = 0;
        for (int q = 0; q < 3; q++)
            for (int t = 0; t < ng[ord[q]]; t++) {
                dims[r] = e->size[grp[ord[q]][t]];
                strides[r++] = e->stride[o][grp[ord[q]][t]];
            }
        strided_copy(o ? bp : ap, ops[o]->data, r, dims, strides);
    }
    int64_t *offs = oq_kernel_scratch(c, (size_t)(3 * batch) * sizeof(int64_t));
    if (!offs) return c->err->status;
    for (int64_t i = 0; i < batch; i++) offs[i] = i * m * k, offs[batch + i] = i * k * n, offs[2 * batch + i] = i * m * n;
    oq_sgemm_args g = {false, false, m, n, k, 1.0f, 0.0f, ap, k, bp, n, cp, n};
    oq_status st = gemm_batch(c, &g, batch, offs, offs + batch, offs + 2 * batch, -1);
    if (st) return st;
    /* Element stride of each label in cp's (batch.., m.., n..) layout. */
    int64_t cstride[EIN_LABELS] = {0}, s = 1;
    static const int c_order[3] = {2, 1, 0};
    for (int q = 0; q < 3; q++)
        for (int t = ng[c_order[q]] - 1; t >= 0; t--) {
            cstride[grp[c_order[q]][t]] = s;
            s *= e->size[grp[c_order[q]][t]];
        }
    int64_t dims[OQ_MAX_RANK], strides[OQ_MAX_RANK];
    for (int x = 0; x < e->out_rank; x++) dims[x] = e->size[e->out_lab[x]], strides[x] = cstride[e->out_lab[x]];
    strided_copy(y, cp, e->out_rank, dims, strides);
    *done = true;
    return OQ_OK;
}

static oq_status k_einsum(oq_kernel_ctx *c)
{
    const char *eq = oq_node_attr_string(c->node, "equation", NULL);
    if (!eq) return OQ_KERR(c, "missing attribute equation");
    if (c->n_inputs < 1 || c->n_inputs > EIN_MAX_OPS)
        return OQ_KUNSUP(c, "Einsum with %d inputs (1..%d supported)", c->n_inputs, EIN_MAX_OPS);
    static ein_spec zero_spec;
    ein_spec e = zero_spec;
    e.n_ops = c->n_inputs;
    const oq_tensor *ops[EIN_MAX_OPS];
    oq_dtype dt = OQ_DTYPE_UNDEFINED;
    for (int o = 0; o < e.n_ops; o++) {
        if (!(ops[o] = oq_kernel_require(c, o))) return c->err->status;
        if (o == 0) dt = ops[o]->dtype;
        if (ops[o]->dtype != dt || (dt != OQ_DTYPE_FLOAT && dt != OQ_DTYPE_DOUBLE))
            return OQ_KUNSUP(c, "Einsum on %s inputs (float or double, all the same)", oq_dtype_name(ops[o]->dtype));
    }
    oq_status st;
    if ((st = ein_parse(c, eq, &e, ops))) return st;
    int64_t dims[OQ_MAX_RANK];
    for (int x = 0; x < e.out_rank; x++) dims[x] = e.size[e.out_lab[x]];
    oq_tensor *y = oq_kernel_output(c, 0, dt, e.out_rank, dims);
    if (!y) return c->err->status;
    int64_t total = oq_tensor_numel(y);
    if (total == 0) return OQ_OK;
    bool done = false;
    if (dt == OQ_DTYPE_FLOAT && ((st = ein_matmul(c, &e, ops, y->data, &done)) || done)) return st;
    ein_job j = {&e, {0}, y->data};
    for (int o = 0; o < e.n_ops; o++) j.in[o] = ops[o]->data;
    int64_t work = 1;
    for (int s = 0; s < e.n_sum; s++) work *= e.size[e.sum_lab[s]];
    oq_par_run(c, total, work * e.n_ops, dt == OQ_DTYPE_FLOAT ? ein_general_f32 : ein_general_f64, &j);
    return OQ_OK;
}

/* ---- the table ----------------------------------------------------------------- */

#define F32 OQ_DT(FLOAT)

const oq_op_def oq_ops_nn[] = {
    {"", "Conv", 1, F32, k_conv},
    {"", "ConvTranspose", 1, F32, k_conv_transpose},
    {"", "MatMul", 1, F32, k_matmul},
    {"", "Gemm", 7, F32, k_gemm},
    {"", "MaxPool", 1, F32 | OQ_DT(UINT8) | OQ_DT(INT8) | OQ_DT(INT64), k_maxpool},
    {"", "AveragePool", 7, F32, k_avgpool},
    {"com.microsoft", "QLinearAveragePool", 1, F32 | OQ_DT(UINT8) | OQ_DT(INT8), k_qlinear_avgpool},
    {"", "GlobalAveragePool", 1, F32, k_global_avgpool},
    {"", "GlobalMaxPool", 1, F32, k_global_maxpool},
    {"", "Einsum", 12, F32 | OQ_DT(DOUBLE), k_einsum},
};
const int oq_ops_nn_count = (int)(sizeof oq_ops_nn / sizeof oq_ops_nn[0]);
