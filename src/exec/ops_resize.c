/* ops_resize.c: Resize (opsets 10, 11, 13, 18, 19), Upsample (7, 9) and
 * GridSample (16, 20; 4-D, sampled point by point at the grid's positions).
 *
 * Every output coordinate along a dim maps to a source coordinate through the
 * coordinate transformation mode. Nearest rounds it to an index and gathers
 * (any element type, bytewise). Linear and cubic are separable: the tensor is
 * resampled one dim at a time in fp32 with per-dim tap tables (2 or 4 taps),
 * which handles any rank. tf_crop_and_resize positions outside the input get
 * extrapolation_value in a final pass. */
#include <math.h>
#include <string.h>

#include "exec/shape_util.h"

typedef enum rs_mode { RS_NEAREST, RS_LINEAR, RS_CUBIC } rs_mode;

typedef enum rs_coord {
    CT_HALF_PIXEL,
    CT_HALF_PIXEL_SYMMETRIC,
    CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS,
    CT_ASYMMETRIC,
    CT_TF_HALF_PIXEL_FOR_NN,
    CT_TF_CROP_AND_RESIZE,
} rs_coord;

typedef enum rs_round {
    NR_ROUND_PREFER_FLOOR,
    NR_ROUND_PREFER_CEIL,
    NR_FLOOR,
    NR_CEIL,
} rs_round;

typedef struct rs_params {
    rs_mode mode;
    rs_coord coord;
    rs_round round;
    double cubic_a;         /* cubic kernel coefficient */
    bool exclude_outside;   /* cubic: drop taps outside the input and renormalize */
    double extrapolation;   /* tf_crop_and_resize value outside the input */
    int rank;
    int64_t in[OQ_MAX_RANK];      /* (rank) input dims */
    int64_t out[OQ_MAX_RANK];     /* (rank) output dims */
    double scale[OQ_MAX_RANK];    /* (rank) out/in ratio the transforms use */
    double out_len[OQ_MAX_RANK];  /* (rank) scale * in: align_corners and crop use it unrounded */
    double roi_lo[OQ_MAX_RANK];   /* (rank) tf_crop_and_resize box start, normalized */
    double roi_hi[OQ_MAX_RANK];   /* (rank) box end */
} rs_params;

/* Source coordinate of output coordinate x along dim d. */
static double source_coord(const rs_params *p, int d, int64_t x)
{
    const double s = p->scale[d], in = (double)p->in[d], ol = p->out_len[d], xd = (double)x;
    switch (p->coord) {
    case CT_HALF_PIXEL: return (xd + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        const double adj = (double)p->out[d] / (s * in), center = in / 2;
        return center * (1 - adj) + (xd + 0.5) / s - 0.5;
    }
    case CT_PYTORCH_HALF_PIXEL: return p->out[d] > 1 ? (xd + 0.5) / s - 0.5 : 0;
    case CT_ALIGN_CORNERS: return ol == 1 ? 0 : xd * (in - 1) / (ol - 1);
    case CT_ASYMMETRIC: return xd / s;
    case CT_TF_HALF_PIXEL_FOR_NN: return (xd + 0.5) / s;
    case CT_TF_CROP_AND_RESIZE: {
        const double lo = p->roi_lo[d], hi = p->roi_hi[d];
        const double off = lo * (in - 1);
        return ol == 1 ? off + (hi - lo) * (in - 1) / 2 : off + xd * (hi - lo) * (in - 1) / (ol - 1);
    }
    }
    return 0;
}

/* True when source coordinate v lies outside the input (only tf_crop_and_resize extrapolates). */
static bool outside(const rs_params *p, int d, double v)
{
    return p->coord == CT_TF_CROP_AND_RESIZE && (v < 0 || v > (double)(p->in[d] - 1));
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

static int64_t nearest_index(const rs_params *p, int d, double v)
{
    const double f = floor(v), frac = v - f;
    int64_t i = (int64_t)f;
    if (frac > 0) {
        switch (p->round) {
        case NR_ROUND_PREFER_FLOOR: i += frac > 0.5; break;
        case NR_ROUND_PREFER_CEIL: i += frac >= 0.5; break;
        case NR_FLOOR: break;
        case NR_CEIL: i += 1; break;
        }
    }
    return clamp_index(i, p->in[d]);
}

/* The cubic convolution kernel of Keys with coefficient a, at distance t >= 0. */
static double cubic_weight(double a, double t)
{
    if (t <= 1)
        return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2)
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0;
}

/* Taps of output coordinate x along dim d for linear (2) or cubic (4):
 * clamped input indices and weights. */
static void make_taps(const rs_params *p, int d, double v, int64_t *idx, float *w)
{
    const double f = floor(v), r = v - f;
    const int64_t i0 = (int64_t)f, n = p->in[d];
    if (p->mode == RS_LINEAR) {
        idx[0] = clamp_index(i0, n);
        idx[1] = clamp_index(i0 + 1, n);
        w[0] = (float)(1 - r);
        w[1] = (float)r;
        return;
    }
    double wd[4], sum = 0;
    for (int t = 0; t < 4; t++) {
        const int64_t i = i0 - 1 + t;
        wd[t] = cubic_weight(p->cubic_a, fabs(r - (t - 1)));
        if (p->exclude_outside && (i < 0 || i >= n))
            wd[t] = 0;
        sum += wd[t];
        idx[t] = clamp_index(i, n);
    }
    for (int t = 0; t < 4; t++)
        w[t] = (float)(p->exclude_outside && sum != 0 ? wd[t] / sum : wd[t]);
}

/* ---- element conversion for the fp32 path ------------------------------------- */

/* Converts n elements of type dt at src to fp32. */
static void load_f32(oq_dtype dt, const void *src, int64_t n, float *dst)
{
#define LOAD(T)                                      \
    for (int64_t i = 0; i < n; i++)                  \
        dst[i] = (float)((const T *)src)[i];         \
    break
    switch (dt) {
    case OQ_DTYPE_FLOAT: memcpy(dst, src, (size_t)n * sizeof *dst); break;
    case OQ_DTYPE_DOUBLE: LOAD(double);
    case OQ_DTYPE_UINT8: LOAD(uint8_t);
    case OQ_DTYPE_BOOL: LOAD(uint8_t);
    case OQ_DTYPE_INT8: LOAD(int8_t);
    case OQ_DTYPE_UINT16: LOAD(uint16_t);
    case OQ_DTYPE_INT16: LOAD(int16_t);
    case OQ_DTYPE_INT32: LOAD(int32_t);
    case OQ_DTYPE_UINT32: LOAD(uint32_t);
    case OQ_DTYPE_INT64: LOAD(int64_t);
    case OQ_DTYPE_UINT64: LOAD(uint64_t);
    case OQ_DTYPE_FLOAT16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = oq_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    case OQ_DTYPE_BFLOAT16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = oq_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    default: break;
    }
#undef LOAD
}

/* ---- separable resampling ------------------------------------------------------ */

typedef struct pass_job {
    const float *src;
    float *dst;
    int64_t len;        /* input extent of the resampled dim */
    int64_t out;        /* output extent of the resampled dim */
    int64_t inner;      /* elements after the dim */
    int taps;           /* 2 or 4 */
    const int64_t *idx; /* (out, taps) input indices */
    const float *w;     /* (out, taps) weights */
} pass_job;

/* Output rows [begin, end): row = (outer position, output coordinate). */
static void pass_rows(void *arg, int64_t begin, int64_t end)
{
    const pass_job *j = arg;
    const int64_t inner = j->inner;
    for (int64_t row = begin; row < end; row++) {
        const int64_t o = row / j->out, x = row % j->out;
        const float *s = j->src + o * j->len * inner;
        const int64_t *ix = j->idx + x * j->taps;
        const float *w = j->w + x * j->taps;
        float *d = j->dst + row * inner;
        if (inner == 1) {
            float acc = 0;
            for (int t = 0; t < j->taps; t++)
                acc += w[t] * s[ix[t]];
            *d = acc;
            continue;
        }
        for (int64_t i = 0; i < inner; i++)
            d[i] = w[0] * s[ix[0] * inner + i];
        for (int t = 1; t < j->taps; t++) {
            const float wt = w[t], *st = s + ix[t] * inner;
            if (wt == 0)
                continue;
            for (int64_t i = 0; i < inner; i++)
                d[i] += wt * st[i];
        }
    }
}

/* True when dim d maps every output coordinate onto itself. */
static bool identity_dim(const rs_params *p, int d)
{
    if (p->in[d] != p->out[d])
        return false;
    for (int64_t x = 0; x < p->out[d]; x++)
        if (source_coord(p, d, x) != (double)x)
            return false;
    return true;
}

static oq_status resize_nearest(oq_kernel_ctx *c, const rs_params *p, const oq_tensor *x, oq_tensor *y, int es)
{
    int64_t sum = 0, xst[OQ_MAX_RANK];
    for (int d = 0; d < p->rank; d++)
        sum += p->out[d];
    int64_t *tab = oq_kernel_scratch(c, (size_t)(sum > 0 ? sum : 1) * sizeof *tab);
    if (!tab)
        return c->err->status;
    oq_dense_strides(p->rank, p->in, xst);
    const int64_t *maps[OQ_MAX_RANK];
    for (int d = 0; d < p->rank; d++) {
        maps[d] = tab;
        for (int64_t o = 0; o < p->out[d]; o++)
            tab[o] = nearest_index(p, d, source_coord(p, d, o)) * xst[d];
        tab += p->out[d];
    }
    oq_gather_maps(c, y->data, x->data, es, p->rank, p->out, maps);
    return OQ_OK;
}

static oq_status resize_filter(oq_kernel_ctx *c, const rs_params *p, const oq_tensor *x, oq_tensor *y, int es)
{
    const int r = p->rank, taps = p->mode == RS_LINEAR ? 2 : 4;
    const bool is_f32 = x->dtype == OQ_DTYPE_FLOAT;
    /* Dims to resample, shrinking ones first so later passes touch less data. */
    int order[OQ_MAX_RANK], n_pass = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < r; d++)
            if ((p->out[d] < p->in[d]) == (pass == 0) && !identity_dim(p, d))
                order[n_pass++] = d;
    if (n_pass == 0) {
        memcpy(y->data, x->data, (size_t)(oq_tensor_numel(x) * es));
        return OQ_OK;
    }
    /* Largest intermediate tensor, for the ping-pong buffers. */
    int64_t cur[OQ_MAX_RANK], biggest = oq_tensor_numel(x), max_out = 0;
    memcpy(cur, p->in, sizeof cur);
    for (int k = 0; k < n_pass; k++) {
        cur[order[k]] = p->out[order[k]];
        int64_t n = oq_shape_numel(r, cur);
        biggest = n > biggest ? n : biggest;
        max_out = p->out[order[k]] > max_out ? p->out[order[k]] : max_out;
    }
    float *buf[2] = {oq_kernel_scratch(c, (size_t)biggest * sizeof(float)),
                     oq_kernel_scratch(c, (size_t)biggest * sizeof(float))};
    int64_t *idx = oq_kernel_scratch(c, (size_t)(max_out * taps) * sizeof *idx);
    float *w = oq_kernel_scratch(c, (size_t)(max_out * taps) * sizeof *w);
    if (!buf[0] || !buf[1] || !idx || !w)
        return c->err->status;
    const float *src = x->data;
    if (!is_f32) {
        load_f32(x->dtype, x->data, oq_tensor_numel(x), buf[1]);
        src = buf[1];
    }
    memcpy(cur, p->in, sizeof cur);
    for (int k = 0; k < n_pass; k++) {
        const int d = order[k];
        for (int64_t o = 0; o < p->out[d]; o++)
            make_taps(p, d, source_coord(p, d, o), idx + o * taps, w + o * taps);
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < d; i++)
            outer *= cur[i];
        for (int i = d + 1; i < r; i++)
            inner *= cur[i];
        float *dst = (k == n_pass - 1 && is_f32) ? (float *)y->data : buf[k & 1];
        pass_job j = {src, dst, cur[d], p->out[d], inner, taps, idx, w};
        const int64_t rows = outer * p->out[d];
        if (rows * inner < 4096)
            pass_rows(&j, 0, rows);
        else
            oq_parallel_for(c, rows, pass_rows, &j);
        cur[d] = p->out[d];
        src = dst;
    }
    if (!is_f32) {
        const int64_t n = oq_tensor_numel(y);
        for (int64_t i = 0; i < n; i++)
            oq_store_f64(y->dtype, src[i], (char *)y->data + i * es);
    }
    return OQ_OK;
}

/* Sets every output position whose source lies outside the input (tf_crop_and_resize) to the extrapolation value. */
static oq_status extrapolate(oq_kernel_ctx *c, const rs_params *p, oq_tensor *y, int es)
{
    uint64_t value = 0;
    if (!oq_store_f64(y->dtype, p->extrapolation, &value))
        return OQ_KUNSUP(c, "extrapolation_value cannot be stored as %s", oq_dtype_name(y->dtype));
    for (int d = 0; d < p->rank; d++) {
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < d; i++)
            outer *= p->out[i];
        for (int i = d + 1; i < p->rank; i++)
            inner *= p->out[i];
        for (int64_t x = 0; x < p->out[d]; x++) {
            if (!outside(p, d, source_coord(p, d, x)))
                continue;
            for (int64_t o = 0; o < outer; o++)
                oq_fill_elems((char *)y->data + ((o * p->out[d] + x) * inner) * es, &value, es, inner);
        }
    }
    return OQ_OK;
}

/* Allocates the output for p and fills it. */
static oq_status resize_exec(oq_kernel_ctx *c, const rs_params *p, const oq_tensor *x)
{
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    if (p->mode != RS_NEAREST && x->dtype == OQ_DTYPE_BOOL)
        return OQ_KERR(c, "linear and cubic modes need a numeric input, got bool");
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, p->rank, p->out);
    if (!y)
        return c->err->status;
    if (oq_tensor_numel(y) == 0)
        return OQ_OK;
    if (oq_tensor_numel(x) == 0)
        return OQ_KERR(c, "cannot resize an empty input to a non-empty output");
    oq_status st = p->mode == RS_NEAREST ? resize_nearest(c, p, x, y, es) : resize_filter(c, p, x, y, es);
    if (!st && p->coord == CT_TF_CROP_AND_RESIZE)
        st = extrapolate(c, p, y, es);
    return st;
}

/* ---- attributes and inputs -------------------------------------------------------- */

static oq_status parse_mode(oq_kernel_ctx *c, rs_params *p, bool upsample)
{
    const char *m = oq_node_attr_string(c->node, "mode", "nearest");
    if (!strcmp(m, "nearest"))
        p->mode = RS_NEAREST;
    else if (!strcmp(m, "linear") || (upsample && !strcmp(m, "bilinear")))
        p->mode = RS_LINEAR;
    else if (!strcmp(m, "cubic") && !upsample && c->opset >= 11)
        p->mode = RS_CUBIC;
    else
        return OQ_KERR(c, "unknown mode '%s'", m);
    return OQ_OK;
}

/* Sets out dims and scales for the rank-r input from scales (or sizes when
 * scales is NULL) given for every dim. */
static void set_scales(rs_params *p, const double *scales, const int64_t *sizes)
{
    for (int d = 0; d < p->rank; d++) {
        if (scales) {
            p->scale[d] = scales[d];
            p->out_len[d] = scales[d] * (double)p->in[d];
            p->out[d] = oq_f64_to_i64_sat(floor(p->out_len[d])); /* huge: refused by the size limit */
        } else {
            p->out[d] = sizes[d];
            p->out_len[d] = (double)sizes[d];
            p->scale[d] = p->in[d] ? (double)sizes[d] / (double)p->in[d] : 1;
        }
    }
}

static oq_status check_scales(oq_kernel_ctx *c, const rs_params *p)
{
    for (int d = 0; d < p->rank; d++)
        if (!(p->scale[d] > 0) || p->out[d] < 0)
            return OQ_KERR(c, "scale %g (output dim %lld) is invalid on dim %d", p->scale[d],
                           (long long)p->out[d], d);
    return OQ_OK;
}

/* Upsample-7 (scales attribute) and Upsample-9 (scales input): asymmetric
 * coordinates, nearest rounds down (what ONNX's version converter maps them to). */
oq_status oq_kernel_upsample(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    rs_params p = {.coord = CT_ASYMMETRIC, .round = NR_FLOOR, .rank = x->rank};
    oq_status st = parse_mode(c, &p, true);
    if (st)
        return st;
    memcpy(p.in, x->dims, sizeof p.in);
    double scales[OQ_MAX_RANK];
    if (c->opset >= 9) {
        const oq_tensor *s = oq_kernel_require(c, 1);
        if (!s)
            return c->err->status;
        if (oq_tensor_numel(s) != x->rank)
            return OQ_KERR(c, "scales has %lld entries for rank %d", (long long)oq_tensor_numel(s), x->rank);
        for (int d = 0; d < x->rank; d++)
            scales[d] = oq_tensor_get_f64(s, d);
    } else {
        const oq_attr *a = oq_node_attr(c->node, "scales");
        const int n = a && a->type == OQ_ATTR_FLOATS ? a->n : 0;
        if (n != x->rank)
            return OQ_KERR(c, "scales has %d entries for rank %d", n, x->rank);
        for (int d = 0; d < x->rank; d++)
            scales[d] = a->floats[d];
    }
    set_scales(&p, scales, NULL);
    if ((st = check_scales(c, &p)))
        return st;
    return resize_exec(c, &p, x);
}

static oq_status parse_coord(oq_kernel_ctx *c, rs_params *p)
{
    static const struct {
        const char *name;
        rs_coord v;
    } names[] = {
        {"half_pixel", CT_HALF_PIXEL},
        {"half_pixel_symmetric", CT_HALF_PIXEL_SYMMETRIC},
        {"pytorch_half_pixel", CT_PYTORCH_HALF_PIXEL},
        {"align_corners", CT_ALIGN_CORNERS},
        {"asymmetric", CT_ASYMMETRIC},
        {"tf_half_pixel_for_nn", CT_TF_HALF_PIXEL_FOR_NN},
        {"tf_crop_and_resize", CT_TF_CROP_AND_RESIZE},
    };
    const char *s = oq_node_attr_string(c->node, "coordinate_transformation_mode", "half_pixel");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strcmp(s, names[i].name)) {
            p->coord = names[i].v;
            return OQ_OK;
        }
    }
    return OQ_KERR(c, "unknown coordinate_transformation_mode '%s'", s);
}

static oq_status parse_round(oq_kernel_ctx *c, rs_params *p)
{
    const char *s = oq_node_attr_string(c->node, "nearest_mode", "round_prefer_floor");
    if (!strcmp(s, "round_prefer_floor"))
        p->round = NR_ROUND_PREFER_FLOOR;
    else if (!strcmp(s, "round_prefer_ceil"))
        p->round = NR_ROUND_PREFER_CEIL;
    else if (!strcmp(s, "floor"))
        p->round = NR_FLOOR;
    else if (!strcmp(s, "ceil"))
        p->round = NR_CEIL;
    else
        return OQ_KERR(c, "unknown nearest_mode '%s'", s);
    return OQ_OK;
}

/* Resize-10: (X, scales), asymmetric coordinates, nearest rounds down.
 * Resize-11+: (X, roi, scales,
 * sizes), one of scales or sizes non-empty; from 18 they may list only the
 * dims named by `axes`, and sizes may keep the aspect ratio. */
oq_status oq_kernel_resize(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    const int r = x->rank;
    rs_params p = {.rank = r, .cubic_a = -0.75};
    memcpy(p.in, x->dims, sizeof p.in);
    oq_status st = parse_mode(c, &p, false);
    if (st)
        return st;
    double scales[OQ_MAX_RANK];
    if (c->opset < 11) {
        p.coord = CT_ASYMMETRIC;
        p.round = NR_FLOOR;
        const oq_tensor *s = oq_kernel_require(c, 1);
        if (!s)
            return c->err->status;
        if (oq_tensor_numel(s) != r)
            return OQ_KERR(c, "scales has %lld entries for rank %d", (long long)oq_tensor_numel(s), r);
        for (int d = 0; d < r; d++)
            scales[d] = oq_tensor_get_f64(s, d);
        set_scales(&p, scales, NULL);
        if ((st = check_scales(c, &p)))
            return st;
        return resize_exec(c, &p, x);
    }
    if ((st = parse_coord(c, &p)) || (st = parse_round(c, &p)))
        return st;
    p.cubic_a = oq_node_attr_float(c->node, "cubic_coeff_a", -0.75f);
    p.exclude_outside = oq_node_attr_int(c->node, "exclude_outside", 0) != 0;
    p.extrapolation = oq_node_attr_float(c->node, "extrapolation_value", 0.0f);
    /* Which dims the scales/sizes/roi entries describe. */
    int axes[OQ_MAX_RANK], na = r;
    int n_attr_axes = 0;
    const int64_t *aa = c->opset >= 18 ? oq_node_attr_ints(c->node, "axes", &n_attr_axes) : NULL;
    if (aa) {
        if (n_attr_axes > r)
            return OQ_KERR(c, "axes has %d entries for rank %d", n_attr_axes, r);
        na = n_attr_axes;
        bool seen[OQ_MAX_RANK] = {false};
        for (int k = 0; k < na; k++) {
            int64_t a = aa[k] < 0 ? aa[k] + r : aa[k];
            if (a < 0 || a >= r || seen[a])
                return OQ_KERR(c, "axes entry %lld is out of range or repeated", (long long)aa[k]);
            seen[a] = true;
            axes[k] = (int)a;
        }
    } else {
        for (int k = 0; k < r; k++)
            axes[k] = k;
    }
    const oq_tensor *roi = oq_kernel_input(c, 1), *ts = oq_kernel_input(c, 2), *tz = oq_kernel_input(c, 3);
    const bool has_scales = ts && oq_tensor_numel(ts) > 0, has_sizes = tz && oq_tensor_numel(tz) > 0;
    if (has_scales == has_sizes)
        return OQ_KERR(c, "exactly one of scales and sizes must be given");
    const oq_tensor *given = has_scales ? ts : tz;
    if (oq_tensor_numel(given) != na)
        return OQ_KERR(c, "%s has %lld entries, expected %d", has_scales ? "scales" : "sizes",
                       (long long)oq_tensor_numel(given), na);
    int64_t sizes[OQ_MAX_RANK];
    for (int d = 0; d < r; d++) {
        scales[d] = 1;
        sizes[d] = x->dims[d];
        p.roi_lo[d] = 0;
        p.roi_hi[d] = 1;
    }
    for (int k = 0; k < na; k++) {
        if (has_scales)
            scales[axes[k]] = oq_tensor_get_f64(ts, k);
        else
            sizes[axes[k]] = oq_tensor_get_i64(tz, k);
    }
    if (p.coord == CT_TF_CROP_AND_RESIZE) {
        if (!roi || oq_tensor_numel(roi) != 2 * na)
            return OQ_KERR(c, "tf_crop_and_resize needs roi with %d entries", 2 * na);
        for (int k = 0; k < na; k++) {
            p.roi_lo[axes[k]] = oq_tensor_get_f64(roi, k);
            p.roi_hi[axes[k]] = oq_tensor_get_f64(roi, na + k);
        }
    }
    const char *keep = c->opset >= 18 ? oq_node_attr_string(c->node, "keep_aspect_ratio_policy", "stretch")
                                      : "stretch";
    if (has_sizes && strcmp(keep, "stretch")) {
        const bool larger = !strcmp(keep, "not_smaller");
        if (!larger && strcmp(keep, "not_larger"))
            return OQ_KERR(c, "unknown keep_aspect_ratio_policy '%s'", keep);
        double s = larger ? 0 : INFINITY;
        for (int k = 0; k < na; k++) {
            const int d = axes[k];
            if (x->dims[d] == 0)
                continue;
            double q = (double)sizes[d] / (double)x->dims[d];
            s = larger ? fmax(s, q) : fmin(s, q);
        }
        for (int k = 0; k < na; k++) {
            const int d = axes[k];
            scales[d] = s;
            sizes[d] = oq_f64_to_i64_sat(floor(s * (double)x->dims[d] + 0.5));
        }
        set_scales(&p, NULL, sizes);
        for (int k = 0; k < na; k++)
            p.scale[axes[k]] = s;
    } else {
        set_scales(&p, has_scales ? scales : NULL, sizes);
    }
    if ((st = check_scales(c, &p)))
        return st;
    /* Antialiasing only changes linear/cubic filters when downsampling. */
    if (p.mode != RS_NEAREST && c->opset >= 18 && oq_node_attr_int(c->node, "antialias", 0)) {
        for (int d = 0; d < r; d++)
            if (p.scale[d] < 1)
                return OQ_KUNSUP(c, "antialias=1 when downsampling is not supported");
    }
    return resize_exec(c, &p, x);
}

/* ---- GridSample ---------------------------------------------------------------- */

typedef enum gs_padding { GS_ZEROS, GS_BORDER, GS_REFLECTION } gs_padding;

typedef struct gs_params {
    rs_mode mode;
    gs_padding padding;
    bool align_corners;
    int64_t h, w;
    float border[4]; /* x_min, y_min, x_max, y_max: the reflection bounds */
} gs_params;

/* A normalized grid coordinate in [-1, 1] as a position along a dim of n. */
static float gs_denormalize(float v, int64_t n, bool align_corners)
{
    return align_corners ? (v + 1) / 2.0f * (float)(n - 1) : ((v + 1) * (float)n - 1) / 2.0f;
}

/* x folded back into [lo, hi] by reflecting at the nearer bound as often as it takes. */
static float gs_reflect(float x, float lo, float hi)
{
    const float range = hi - lo;
    if (x < lo) {
        const float d = lo - x;
        const int k = (int)(d / range);
        const float r = d - (float)k * range;
        return k % 2 == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        const float d = x - hi;
        const int k = (int)(d / range);
        const float r = d - (float)k * range;
        return k % 2 == 0 ? hi - r : lo + r;
    }
    return x;
}

/* The pixel at row r, column q of a [h, w] plane under the padding mode. */
static float gs_pixel(const gs_params *p, const float *plane, int64_t r, int64_t q)
{
    switch (p->padding) {
    case GS_ZEROS:
        return q >= 0 && q < p->w && r >= 0 && r < p->h ? plane[r * p->w + q] : 0.0f;
    case GS_BORDER:
        q = q < 0 ? 0 : q >= p->w ? p->w - 1 : q;
        r = r < 0 ? 0 : r >= p->h ? p->h - 1 : r;
        return plane[r * p->w + q];
    default:
        q = (int64_t)gs_reflect((float)q, p->border[0], p->border[2]);
        r = (int64_t)gs_reflect((float)r, p->border[1], p->border[3]);
        return plane[r * p->w + q];
    }
}

/* Keys' cubic convolution weights (a = -0.75) of the 4 taps around fraction t. */
static void gs_cubic_weights(float t, float k[4])
{
    const float a = -0.75f;
    t = fabsf(t);
    k[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
    k[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    k[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
    k[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

/* The value of plane at the grid point (gx, gy). A position too far out for
 * an index (or NaN) takes the padding's value just past the plane's edge. */
static float gs_sample(const gs_params *p, const float *plane, float gx, float gy)
{
    const float x = gs_denormalize(gx, p->w, p->align_corners), y = gs_denormalize(gy, p->h, p->align_corners);
    const float lim = (float)((int64_t)1 << 40);
    if (!(fabsf(x) < lim && fabsf(y) < lim))
        return p->padding == GS_ZEROS ? 0.0f : gs_pixel(p, plane, y > 0 ? p->h : -1, x > 0 ? p->w : -1);
    if (p->mode == RS_NEAREST)
        return gs_pixel(p, plane, (int64_t)nearbyintf(y), (int64_t)nearbyintf(x));
    const int64_t x1 = (int64_t)floorf(x), y1 = (int64_t)floorf(y);
    if (p->mode == RS_LINEAR) {
        const float dx2 = (float)(x1 + 1) - x, dx1 = x - (float)x1, dy2 = (float)(y1 + 1) - y, dy1 = y - (float)y1;
        return dy2 * (dx2 * gs_pixel(p, plane, y1, x1) + dx1 * gs_pixel(p, plane, y1, x1 + 1)) +
               dy1 * (dx2 * gs_pixel(p, plane, y1 + 1, x1) + dx1 * gs_pixel(p, plane, y1 + 1, x1 + 1));
    }
    float kx[4], ky[4], v[4];
    gs_cubic_weights(x - (float)x1, kx);
    gs_cubic_weights(y - (float)y1, ky);
    for (int i = 0; i < 4; i++) {
        float s[4];
        for (int j = 0; j < 4; j++)
            s[j] = gs_pixel(p, plane, y1 - 1 + i, x1 - 1 + j);
        v[i] = kx[0] * s[0] + kx[1] * s[1] + kx[2] * s[2] + kx[3] * s[3];
    }
    return ky[0] * v[0] + ky[1] * v[1] + ky[2] * v[2] + ky[3] * v[3];
}

/* GridSample-16/20, 4-D: X [N, C, H, W] float sampled at grid [N, Ho, Wo, 2]
 * ((x, y) in [-1, 1]) -> [N, C, Ho, Wo]; modes bilinear/linear, nearest
 * (half to even), bicubic/cubic; padding zeros, border or reflection; the
 * arithmetic of ONNX Runtime's CPU kernel (reflection folds the integer taps). */
oq_status oq_kernel_grid_sample(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *grid = oq_kernel_require(c, 1);
    if (!x || !grid)
        return c->err->status;
    if (x->dtype != OQ_DTYPE_FLOAT || grid->dtype != OQ_DTYPE_FLOAT)
        return OQ_KUNSUP(c, "only float X and grid are supported");
    if (x->rank != 4)
        return OQ_KUNSUP(c, "X of rank %d: only 4-D inputs are supported", x->rank);
    if (grid->rank != 4 || grid->dims[0] != x->dims[0] || grid->dims[3] != 2)
        return OQ_KERR(c, "grid must be [N, H_out, W_out, 2] with X's N");
    gs_params p = {.align_corners = oq_node_attr_int(c->node, "align_corners", 0) != 0,
                   .h = x->dims[2], .w = x->dims[3]};
    const char *mode = oq_node_attr_string(c->node, "mode", c->opset >= 20 ? "linear" : "bilinear");
    const char *pad = oq_node_attr_string(c->node, "padding_mode", "zeros");
    if (!strcmp(mode, "bilinear") || !strcmp(mode, "linear"))
        p.mode = RS_LINEAR;
    else if (!strcmp(mode, "nearest"))
        p.mode = RS_NEAREST;
    else if (!strcmp(mode, "bicubic") || !strcmp(mode, "cubic"))
        p.mode = RS_CUBIC;
    else
        return OQ_KERR(c, "unknown mode '%s'", mode);
    if (!strcmp(pad, "zeros"))
        p.padding = GS_ZEROS;
    else if (!strcmp(pad, "border"))
        p.padding = GS_BORDER;
    else if (!strcmp(pad, "reflection"))
        p.padding = GS_REFLECTION;
    else
        return OQ_KERR(c, "unknown padding_mode '%s'", pad);
    if (p.align_corners) {
        p.border[0] = p.border[1] = 0.0f;
        p.border[2] = (float)(p.w - 1);
        p.border[3] = (float)(p.h - 1);
    } else {
        p.border[0] = p.border[1] = -0.5f;
        p.border[2] = (float)p.w - 0.5f;
        p.border[3] = (float)p.h - 0.5f;
    }
    const int64_t n = x->dims[0], ch = x->dims[1], ho = grid->dims[1], wo = grid->dims[2];
    if ((p.h == 0 || p.w == 0) && p.padding != GS_ZEROS && n * ch * ho * wo != 0)
        return OQ_KERR(c, "an empty input has no border to pad with");
    const int64_t ydims[4] = {n, ch, ho, wo};
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, 4, ydims);
    if (!y)
        return c->err->status;
    if (p.h == 0 || p.w == 0) {
        memset(y->data, 0, (size_t)oq_tensor_numel(y) * sizeof(float));
        return OQ_OK;
    }
    for (int64_t b = 0; b < n; b++) {
        const float *g = (const float *)grid->data + b * ho * wo * 2;
        for (int64_t k = 0; k < ch; k++) {
            const float *plane = (const float *)x->data + (b * ch + k) * p.h * p.w;
            float *out = (float *)y->data + (b * ch + k) * ho * wo;
            for (int64_t i = 0; i < ho * wo; i++)
                out[i] = gs_sample(&p, plane, g[2 * i], g[2 * i + 1]);
        }
    }
    return OQ_OK;
}
