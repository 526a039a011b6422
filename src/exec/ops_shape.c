/* ops_shape.c: shape and data-movement kernels: Reshape, Flatten, Squeeze,
 * Unsqueeze, Transpose, Concat, Split, Slice, Gather, GatherElements, GatherND,
 * ScatterND, ScatterElements, Trilu, Compress, NonZero, EyeLike, OneHot,
 * Expand, Tile, Pad, DepthToSpace, SpaceToDepth (Resize and Upsample live in
 * ops_resize.c). Elements are moved by size, never interpreted, except for a
 * Pad constant given as a float attribute, a scatter's reduction and the
 * values NonZero, EyeLike and OneHot read or write.
 *
 * Two engines do the copying: oq_view_copy walks any strided view (Transpose,
 * Slice, Expand, Tile, DepthToSpace, constant Pad), oq_gather_maps reads
 * through per-dim index tables (edge/reflect/wrap Pad, nearest Resize). */
#include <math.h>
#include <string.h>

#include "exec/ops.h"
#include "exec/shape_util.h"

/* ---- element helpers -------------------------------------------------------- */

int oq_move_esize(oq_dtype dt)
{
    if (!oq_dtype_valid(dt) || !(OQ_DT_MOVABLE & (1u << dt)))
        return 0;
    return (int)(oq_dtype_traits_table[dt].bits / 8);
}

int oq_move_esize_of(oq_kernel_ctx *c, const oq_tensor *t)
{
    int es = oq_move_esize(t->dtype);
    if (!es)
        OQ_KUNSUP(c, "element type %s is not supported", oq_dtype_name(t->dtype));
    return es;
}

static double clamp_round(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

bool oq_store_f64(oq_dtype dt, double v, void *dst)
{
    switch (dt) {
    case OQ_DTYPE_FLOAT: *(float *)dst = (float)v; return true;
    case OQ_DTYPE_DOUBLE: *(double *)dst = v; return true;
    case OQ_DTYPE_FLOAT16: *(uint16_t *)dst = oq_f32_to_f16((float)v); return true;
    case OQ_DTYPE_BFLOAT16: *(uint16_t *)dst = oq_f32_to_bf16((float)v); return true;
    case OQ_DTYPE_BOOL: *(uint8_t *)dst = v != 0; return true;
    case OQ_DTYPE_UINT8: *(uint8_t *)dst = (uint8_t)clamp_round(v, 0, UINT8_MAX); return true;
    case OQ_DTYPE_INT8: *(int8_t *)dst = (int8_t)clamp_round(v, INT8_MIN, INT8_MAX); return true;
    case OQ_DTYPE_UINT16: *(uint16_t *)dst = (uint16_t)clamp_round(v, 0, UINT16_MAX); return true;
    case OQ_DTYPE_INT16: *(int16_t *)dst = (int16_t)clamp_round(v, INT16_MIN, INT16_MAX); return true;
    case OQ_DTYPE_INT32: *(int32_t *)dst = (int32_t)clamp_round(v, INT32_MIN, INT32_MAX); return true;
    case OQ_DTYPE_UINT32: *(uint32_t *)dst = (uint32_t)clamp_round(v, 0, UINT32_MAX); return true;
    /* 2^63 and 2^64 are exact doubles; stay strictly below them. */
    case OQ_DTYPE_INT64:
        *(int64_t *)dst = (int64_t)clamp_round(v, -9223372036854775808.0, 9223372036854774784.0);
        return true;
    case OQ_DTYPE_UINT64:
        *(uint64_t *)dst = (uint64_t)clamp_round(v, 0, 18446744073709549568.0);
        return true;
    default: return false;
    }
}

void oq_fill_elems(void *dst, const void *val, int esize, int64_t n)
{
    switch (esize) {
    case 1: memset(dst, *(const uint8_t *)val, (size_t)n); break;
    case 2: {
        uint16_t v, *d = dst;
        memcpy(&v, val, 2);
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
        break;
    }
    case 4: {
        uint32_t v, *d = dst;
        memcpy(&v, val, 4);
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
        break;
    }
    default: {
        uint64_t v, *d = dst;
        memcpy(&v, val, 8);
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
        break;
    }
    }
}

void oq_dense_strides(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

/* Copies n elements from src (step ss) to dst (step ds), steps in elements. */
static void copy_run(char *dst, int64_t ds, const char *src, int64_t ss, int64_t n, int esize)
{
    if (ds == 1 && ss == 1) {
        memcpy(dst, src, (size_t)(n * esize));
        return;
    }
    if (ds == 1 && ss == 0) {
        oq_fill_elems(dst, src, esize, n);
        return;
    }
#define COPY_RUN(T)                                   \
    do {                                              \
        T *d = (T *)dst;                              \
        const T *s = (const T *)src;                  \
        for (int64_t i = 0; i < n; i++)               \
            d[i * ds] = s[i * ss];                    \
    } while (0)
    switch (esize) {
    case 1: COPY_RUN(uint8_t); break;
    case 2: COPY_RUN(uint16_t); break;
    case 4: COPY_RUN(uint32_t); break;
    default: COPY_RUN(uint64_t); break;
    }
#undef COPY_RUN
}

/* ---- strided view copy ------------------------------------------------------- */

/* Tiles of a transposing copy: TILE_K elements along the dim read
 * contiguously by TILE_L along the dim written contiguously, so both the
 * strided reads and the strided writes stay in cache. TILE_L stays small
 * because the strided source rows often sit a multiple of 4 KiB apart and
 * compete for the same cache sets (64x16 measured best of 8..128 squares). */
#define TILE_K 64
#define TILE_L 16
/* Below this many bytes a copy runs on the calling thread. */
#define PARALLEL_BYTES ((int64_t)1 << 18)

typedef struct view_job {
    char *dst;
    const char *src;
    int esize;
    const oq_view *v;
    int kdim;        /* tiled copy: the dim read with source stride 1, else -1 */
    int64_t n_kblk;  /* tiled copy: tiles along kdim */
} view_job;

/* Rows [begin, end) of the walk: a row is one position of every dim but the
 * last, copied as one run along the last dim. */
static void view_rows(void *arg, int64_t begin, int64_t end)
{
    const view_job *j = arg;
    const oq_view *v = j->v;
    const int last = v->rank - 1;
    int64_t idx[OQ_VIEW_MAX_RANK], soff = 0, doff = 0, rem = begin;
    for (int i = last - 1; i >= 0; i--) {
        idx[i] = rem % v->dims[i];
        rem /= v->dims[i];
        soff += idx[i] * v->src_st[i];
        doff += idx[i] * v->dst_st[i];
    }
    for (int64_t r = begin; r < end; r++) {
        copy_run(j->dst + doff * j->esize, v->dst_st[last], j->src + soff * j->esize, v->src_st[last],
                 v->dims[last], j->esize);
        for (int i = last - 1; i >= 0; i--) {
            soff += v->src_st[i];
            doff += v->dst_st[i];
            if (++idx[i] < v->dims[i])
                break;
            soff -= v->src_st[i] * v->dims[i];
            doff -= v->dst_st[i] * v->dims[i];
            idx[i] = 0;
        }
    }
}

/* Items [begin, end) of a tiled copy: an item is one position of the dims
 * other than kdim and the last, times one tile row along kdim. Within a tile,
 * reads walk kdim (source stride 1) and writes walk the last dim. */
static void view_tiles(void *arg, int64_t begin, int64_t end)
{
    const view_job *j = arg;
    const oq_view *v = j->v;
    const int last = v->rank - 1, k = j->kdim;
    const int64_t nk = v->dims[k], nl = v->dims[last];
    const int64_t dk = v->dst_st[k], dl = v->dst_st[last], sl = v->src_st[last];
    for (int64_t item = begin; item < end; item++) {
        int64_t rem = item / j->n_kblk, k0 = (item % j->n_kblk) * TILE_K;
        int64_t soff = 0, doff = 0;
        for (int i = last - 1; i >= 0; i--) {
            if (i == k)
                continue;
            int64_t x = rem % v->dims[i];
            rem /= v->dims[i];
            soff += x * v->src_st[i];
            doff += x * v->dst_st[i];
        }
        const int64_t k1 = k0 + TILE_K < nk ? k0 + TILE_K : nk;
        for (int64_t l0 = 0; l0 < nl; l0 += TILE_L) {
            const int64_t l1 = l0 + TILE_L < nl ? l0 + TILE_L : nl;
            for (int64_t kk = k0; kk < k1; kk++) {
                char *d = j->dst + (doff + kk * dk + l0 * dl) * j->esize;
                const char *s = j->src + (soff + kk + l0 * sl) * j->esize;
                copy_run(d, dl, s, sl, l1 - l0, j->esize);
            }
        }
    }
}

/* Drops unit dims and merges neighbours that walk both buffers contiguously
 * with respect to each other. Returns false when the walk is empty. */
static bool view_normalize(oq_view *v)
{
    int r = 0;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] == 0)
            return false;
        if (v->dims[i] == 1)
            continue;
        if (r > 0 && v->src_st[r - 1] == v->src_st[i] * v->dims[i] &&
            v->dst_st[r - 1] == v->dst_st[i] * v->dims[i]) {
            v->dims[r - 1] *= v->dims[i];
            v->src_st[r - 1] = v->src_st[i];
            v->dst_st[r - 1] = v->dst_st[i];
            continue;
        }
        v->dims[r] = v->dims[i];
        v->src_st[r] = v->src_st[i];
        v->dst_st[r] = v->dst_st[i];
        r++;
    }
    if (r == 0) {
        v->dims[0] = 1;
        v->src_st[0] = v->dst_st[0] = 1;
        r = 1;
    }
    v->rank = r;
    return true;
}

void oq_view_copy(oq_kernel_ctx *c, void *dst, const void *src, int esize, oq_view *v)
{
    if (!view_normalize(v))
        return;
    const int last = v->rank - 1;
    view_job j = {dst, src, esize, v, -1, 0};
    int64_t total = 1;
    for (int i = 0; i < v->rank; i++)
        total *= v->dims[i];
    /* A transposing walk (strided reads along the last dim, some other dim
     * read contiguously) goes tile by tile. */
    if (v->src_st[last] != 1 && v->src_st[last] != 0 && v->dims[last] >= 4) {
        for (int i = 0; i < last; i++)
            if (v->src_st[i] == 1 && v->dims[i] >= 4)
                j.kdim = i;
    }
    oq_range_fn fn;
    int64_t items;
    if (j.kdim >= 0) {
        j.n_kblk = (v->dims[j.kdim] + TILE_K - 1) / TILE_K;
        items = total / v->dims[j.kdim] / v->dims[last] * j.n_kblk;
        fn = view_tiles;
    } else {
        items = total / v->dims[last];
        fn = view_rows;
    }
    if (total * esize < PARALLEL_BYTES || items < 2)
        fn(&j, 0, items);
    else
        oq_parallel_for(c, items, fn, &j);
}

/* ---- index-map gather ----------------------------------------------------------- */

typedef struct maps_job {
    char *dst;
    const char *src;
    int esize, rank;
    const int64_t *dims;
    const int64_t *const *maps;
} maps_job;

static void maps_rows(void *arg, int64_t begin, int64_t end)
{
    const maps_job *j = arg;
    const int last = j->rank - 1;
    const int64_t n = j->dims[last];
    const int64_t *m = j->maps[last];
    int64_t idx[OQ_MAX_RANK], rem = begin;
    for (int i = last - 1; i >= 0; i--) {
        idx[i] = rem % j->dims[i];
        rem /= j->dims[i];
    }
    for (int64_t r = begin; r < end; r++) {
        int64_t base = 0;
        for (int i = 0; i < last; i++)
            base += j->maps[i][idx[i]];
#define GATHER_ROW(T)                                          \
    do {                                                       \
        T *d = (T *)j->dst + r * n;                            \
        const T *s = (const T *)j->src + base;                 \
        for (int64_t x = 0; x < n; x++)                        \
            d[x] = s[m[x]];                                    \
    } while (0)
        switch (j->esize) {
        case 1: GATHER_ROW(uint8_t); break;
        case 2: GATHER_ROW(uint16_t); break;
        case 4: GATHER_ROW(uint32_t); break;
        default: GATHER_ROW(uint64_t); break;
        }
#undef GATHER_ROW
        for (int i = last - 1; i >= 0; i--) {
            if (++idx[i] < j->dims[i])
                break;
            idx[i] = 0;
        }
    }
}

void oq_gather_maps(oq_kernel_ctx *c, void *dst, const void *src, int esize, int rank,
                    const int64_t *dims, const int64_t *const *maps)
{
    int64_t total = oq_shape_numel(rank, dims);
    if (total <= 0)
        return;
    if (rank == 0) {
        memcpy(dst, src, (size_t)esize);
        return;
    }
    maps_job j = {dst, src, esize, rank, dims, maps};
    int64_t rows = total / dims[rank - 1];
    if (total * esize < PARALLEL_BYTES || rows < 2)
        maps_rows(&j, 0, rows);
    else
        oq_parallel_for(c, rows, maps_rows, &j);
}

/* ---- small parsing helpers ---------------------------------------------------- */

/* Normalizes axis a (negative counts from the end) against rank; fails when out of range. */
static oq_status norm_axis(oq_kernel_ctx *c, int64_t a, int rank, int *out)
{
    *out = 0;
    if (a < -rank || a >= rank)
        return OQ_KERR(c, "axis %lld is out of range for rank %d", (long long)a, rank);
    *out = (int)(a < 0 ? a + rank : a);
    return OQ_OK;
}

/* Reads a 1-D (or scalar) integer tensor of at most max entries into out. */
static oq_status read_ints(oq_kernel_ctx *c, const oq_tensor *t, const char *what, int max, int64_t *out,
                           int *n)
{
    if (oq_dtype_traits_table[t->dtype].is_float || t->dtype == OQ_DTYPE_STRING ||
        t->dtype == OQ_DTYPE_BOOL)
        return OQ_KERR(c, "%s must be an integer tensor, got %s", what, oq_dtype_name(t->dtype));
    if (t->rank > 1)
        return OQ_KERR(c, "%s must be 1-D, got rank %d", what, t->rank);
    int64_t numel = oq_tensor_numel(t);
    if (numel > max)
        return OQ_KERR(c, "%s has %lld entries, more than %d", what, (long long)numel, max);
    for (int64_t i = 0; i < numel; i++)
        out[i] = oq_tensor_get_i64(t, i);
    *n = (int)numel;
    return OQ_OK;
}

/* Axes from an INTS attribute (opset < 13 style) or an optional input k
 * (opset >= 13 style). *n = -1 when neither is given. */
static oq_status read_axes(oq_kernel_ctx *c, bool from_input, int k, int max, int64_t *axes, int *n)
{
    *n = -1;
    if (from_input) {
        const oq_tensor *t = oq_kernel_input(c, k);
        return t ? read_ints(c, t, "axes", max, axes, n) : OQ_OK;
    }
    int cnt;
    const int64_t *a = oq_node_attr_ints(c->node, "axes", &cnt);
    if (!oq_node_attr(c->node, "axes"))
        return OQ_OK;
    if (cnt > max)
        return OQ_KERR(c, "axes has %d entries, more than %d", cnt, max);
    if (cnt)
        memcpy(axes, a, (size_t)cnt * sizeof *a);
    *n = cnt;
    return OQ_OK;
}

/* Output k with x's type and the given shape, and its element size; NULL on failure. */
static oq_tensor *output_like(oq_kernel_ctx *c, int k, const oq_tensor *x, int rank, const int64_t *dims)
{
    if (rank > OQ_MAX_RANK) {
        OQ_KUNSUP(c, "output rank %d exceeds the supported %d", rank, OQ_MAX_RANK);
        return NULL;
    }
    return oq_kernel_output(c, k, x->dtype, rank, dims);
}

/* Output 0 with x's element type and dims, filled with a copy of x's data. */
static oq_status copy_to_shape(oq_kernel_ctx *c, const oq_tensor *x, int rank, const int64_t *dims)
{
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    int64_t n = oq_shape_numel(rank, dims);
    if (n != oq_tensor_numel(x))
        return OQ_KERR(c, "cannot reshape %lld elements into %lld", (long long)oq_tensor_numel(x),
                       (long long)n);
    oq_tensor *y = output_like(c, 0, x, rank, dims);
    if (!y)
        return c->err->status;
    if (n > 0)
        memcpy(y->data, x->data, (size_t)(n * es));
    return OQ_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ------------------------------------- */

/* Reshape-5/14: shape input; 0 copies the input dim unless allowzero, -1 is inferred. */
static oq_status k_reshape(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *s = oq_kernel_require(c, 1);
    if (!x || !s)
        return c->err->status;
    int64_t dims[OQ_MAX_RANK];
    int n;
    oq_status st = read_ints(c, s, "shape", OQ_MAX_RANK, dims, &n);
    if (st)
        return st;
    const bool allowzero = c->opset >= 14 && oq_node_attr_int(c->node, "allowzero", 0);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return OQ_KERR(c, "shape[%d] = 0 copies a dim the rank-%d input lacks", i, x->rank);
            dims[i] = x->dims[i];
        }
        if (dims[i] == -1) {
            if (infer >= 0)
                return OQ_KERR(c, "shape has more than one -1");
            infer = i;
            continue;
        }
        if (dims[i] < 0)
            return OQ_KERR(c, "shape[%d] = %lld is invalid", i, (long long)dims[i]);
        if (dims[i] && known > INT64_MAX / dims[i])
            return OQ_KERR(c, "the dims of shape multiply past 2^63");
        known *= dims[i];
    }
    if (infer >= 0) {
        int64_t numel = oq_tensor_numel(x);
        if (known == 0 || numel % known)
            return OQ_KERR(c, "cannot infer the -1 dim: %lld elements over %lld", (long long)numel,
                           (long long)known);
        dims[infer] = numel / known;
    }
    return copy_to_shape(c, x, n, dims);
}

/* Flatten: (prod dims[0..axis), prod dims[axis..)). */
static oq_status k_flatten(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int64_t a = oq_node_attr_int(c->node, "axis", 1);
    if (a < -x->rank || a > x->rank)
        return OQ_KERR(c, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    if (a < 0)
        a += x->rank;
    int64_t dims[2] = {1, 1};
    for (int i = 0; i < x->rank; i++)
        dims[i >= a] *= x->dims[i];
    return copy_to_shape(c, x, 2, dims);
}

static oq_status squeeze_run(oq_kernel_ctx *c, bool axes_input)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int64_t axes[OQ_MAX_RANK];
    int n;
    oq_status st = read_axes(c, axes_input, 1, OQ_MAX_RANK, axes, &n);
    if (st)
        return st;
    bool drop[OQ_MAX_RANK] = {false};
    if (n < 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    }
    for (int k = 0; k < n; k++) {
        int a;
        if ((st = norm_axis(c, axes[k], x->rank, &a)))
            return st;
        if (x->dims[a] != 1)
            return OQ_KERR(c, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = true;
    }
    int64_t dims[OQ_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dims[r++] = x->dims[i];
    return copy_to_shape(c, x, r, dims);
}
static oq_status k_squeeze_1(oq_kernel_ctx *c) { return squeeze_run(c, false); }
static oq_status k_squeeze_13(oq_kernel_ctx *c) { return squeeze_run(c, true); }

static oq_status unsqueeze_run(oq_kernel_ctx *c, bool axes_input)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int64_t axes[OQ_MAX_RANK];
    int n;
    oq_status st = read_axes(c, axes_input, 1, OQ_MAX_RANK, axes, &n);
    if (st)
        return st;
    if (n < 0)
        return OQ_KERR(c, "axes is required");
    const int r = x->rank + n;
    if (r > OQ_MAX_RANK)
        return OQ_KUNSUP(c, "output rank %d exceeds the supported %d", r, OQ_MAX_RANK);
    bool ins[OQ_MAX_RANK] = {false};
    for (int k = 0; k < n; k++) {
        int a;
        if ((st = norm_axis(c, axes[k], r, &a)))
            return st;
        if (ins[a])
            return OQ_KERR(c, "axis %d is repeated", a);
        ins[a] = true;
    }
    int64_t dims[OQ_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = ins[i] ? 1 : x->dims[j++];
    return copy_to_shape(c, x, r, dims);
}
static oq_status k_unsqueeze_1(oq_kernel_ctx *c) { return unsqueeze_run(c, false); }
static oq_status k_unsqueeze_13(oq_kernel_ctx *c) { return unsqueeze_run(c, true); }

/* ---- Transpose, DepthToSpace, SpaceToDepth ------------------------------------ */

/* Copies x, viewed as the dense shape (vrank, vdims), permuted by perm into a
 * new output 0 of shape (out_rank, out_dims) (same element count). */
static oq_status permute_copy(oq_kernel_ctx *c, const oq_tensor *x, int vrank, const int64_t *vdims,
                              const int *perm, int out_rank, const int64_t *out_dims)
{
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    oq_tensor *y = output_like(c, 0, x, out_rank, out_dims);
    if (!y)
        return c->err->status;
    int64_t xst[OQ_VIEW_MAX_RANK];
    oq_dense_strides(vrank, vdims, xst);
    oq_view v = {.rank = vrank};
    for (int i = 0; i < vrank; i++) {
        v.dims[i] = vdims[perm[i]];
        v.src_st[i] = xst[perm[i]];
    }
    oq_dense_strides(vrank, v.dims, v.dst_st);
    oq_view_copy(c, y->data, x->data, es, &v);
    return OQ_OK;
}

static oq_status k_transpose(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int n, perm[OQ_MAX_RANK];
    const int64_t *p = oq_node_attr_ints(c->node, "perm", &n);
    if (!p)
        n = x->rank;
    if (n != x->rank)
        return OQ_KERR(c, "perm has %d entries for a rank-%d input", n, x->rank);
    bool seen[OQ_MAX_RANK] = {false};
    int64_t dims[OQ_MAX_RANK];
    for (int i = 0; i < n; i++) {
        int64_t a = p ? p[i] : n - 1 - i;
        if (a < 0 || a >= n || seen[a])
            return OQ_KERR(c, "perm is not a permutation of 0..%d", n - 1);
        seen[a] = true;
        perm[i] = (int)a;
        dims[i] = x->dims[a];
    }
    return permute_copy(c, x, x->rank, x->dims, perm, n, dims);
}

/* DepthToSpace: DCR views (N, C, H, W) as (N, b, b, C/b^2, H, W) and permutes
 * it to (N, C/b^2, H, b, W, b); CRD views it as (N, C/b^2, b, b, H, W). */
static oq_status k_depth_to_space(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int64_t b = oq_node_attr_int(c->node, "blocksize", 0);
    const char *mode = c->opset >= 11 ? oq_node_attr_string(c->node, "mode", "DCR") : "DCR";
    if (x->rank != 4)
        return OQ_KERR(c, "input must be 4-D, got rank %d", x->rank);
    if (b <= 0 || x->dims[1] % (b * b))
        return OQ_KERR(c, "blocksize %lld does not divide channels %lld", (long long)b,
                       (long long)x->dims[1]);
    const int64_t n = x->dims[0], cc = x->dims[1] / (b * b), h = x->dims[2], w = x->dims[3];
    const int64_t out[4] = {n, cc, h * b, w * b};
    if (!strcmp(mode, "DCR")) {
        const int64_t v[6] = {n, b, b, cc, h, w};
        const int perm[6] = {0, 3, 4, 1, 5, 2};
        return permute_copy(c, x, 6, v, perm, 4, out);
    }
    if (!strcmp(mode, "CRD")) {
        const int64_t v[6] = {n, cc, b, b, h, w};
        const int perm[6] = {0, 1, 4, 2, 5, 3};
        return permute_copy(c, x, 6, v, perm, 4, out);
    }
    return OQ_KERR(c, "unknown mode '%s'", mode);
}

/* SpaceToDepth views (N, C, H, W) as (N, C, H/b, b, W/b, b) and permutes it to
 * (N, b, b, C, H/b, W/b). */
static oq_status k_space_to_depth(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int64_t b = oq_node_attr_int(c->node, "blocksize", 0);
    if (x->rank != 4)
        return OQ_KERR(c, "input must be 4-D, got rank %d", x->rank);
    if (b <= 0 || x->dims[2] % b || x->dims[3] % b)
        return OQ_KERR(c, "blocksize %lld does not divide %lldx%lld", (long long)b, (long long)x->dims[2],
                       (long long)x->dims[3]);
    const int64_t n = x->dims[0], ch = x->dims[1], h = x->dims[2] / b, w = x->dims[3] / b;
    const int64_t v[6] = {n, ch, h, b, w, b};
    const int perm[6] = {0, 3, 5, 1, 2, 4};
    const int64_t out[4] = {n, ch * b * b, h, w};
    return permute_copy(c, x, 6, v, perm, 4, out);
}

/* ---- Concat, Split ------------------------------------------------------------- */

static oq_status k_concat(oq_kernel_ctx *c)
{
    const oq_tensor *x0 = oq_kernel_require(c, 0);
    if (!x0)
        return c->err->status;
    int es = oq_move_esize_of(c, x0);
    if (!es)
        return c->err->status;
    int axis;
    oq_status st = norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x0->rank, &axis);
    if (st)
        return st;
    int64_t dims[OQ_MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (int k = 0; k < c->n_inputs; k++) {
        const oq_tensor *x = oq_kernel_require(c, k);
        if (!x)
            return c->err->status;
        if (x->rank != x0->rank || x->dtype != x0->dtype)
            return OQ_KERR(c, "input %d is %s rank %d, input 0 is %s rank %d", k, oq_dtype_name(x->dtype),
                           x->rank, oq_dtype_name(x0->dtype), x0->rank);
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->dims[i] != x0->dims[i])
                return OQ_KERR(c, "input %d has dim %d = %lld, input 0 has %lld", k, i,
                               (long long)x->dims[i], (long long)x0->dims[i]);
        dims[axis] += x->dims[axis];
    }
    oq_tensor *y = oq_kernel_output_raw(c, 0, x0->dtype, x0->rank, dims); /* the inputs fill it */
    if (!y)
        return c->err->status;
    int64_t outer = 1, inner = es;
    for (int i = 0; i < axis; i++)
        outer *= dims[i];
    for (int i = axis + 1; i < x0->rank; i++)
        inner *= dims[i];
    const int64_t out_row = dims[axis] * inner;
    int64_t at = 0;
    for (int k = 0; k < c->n_inputs; k++) {
        const oq_tensor *x = c->inputs[k];
        const int64_t row = x->dims[axis] * inner;
        for (int64_t o = 0; o < outer && row > 0; o++)
            memcpy((char *)y->data + o * out_row + at, (const char *)x->data + o * row, (size_t)row);
        at += row;
    }
    return OQ_OK;
}

/* Split along axis into c->n_outputs parts. Sizes come from the `split`
 * attribute (opset < 13) or input 1 (opset >= 13); without them the parts are
 * equal, or from opset 18 (num_outputs) ceil-sized with a smaller last part. */
static oq_status split_run(oq_kernel_ctx *c, bool split_input)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    int axis;
    oq_status st = norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x->rank, &axis);
    if (st)
        return st;
    const int nout = c->n_outputs;
    const int64_t len = x->dims[axis];
    int64_t *sizes = oq_kernel_scratch(c, (size_t)nout * sizeof *sizes);
    if (!sizes)
        return c->err->status;
    int n = -1;
    if (split_input) {
        const oq_tensor *t = oq_kernel_input(c, 1);
        if (t && (st = read_ints(c, t, "split", nout, sizes, &n)))
            return st;
    } else if (oq_node_attr(c->node, "split")) {
        const int64_t *a = oq_node_attr_ints(c->node, "split", &n);
        if (n > nout)
            return OQ_KERR(c, "split has %d entries for %d outputs", n, nout);
        if (n)
            memcpy(sizes, a, (size_t)n * sizeof *sizes);
    }
    if (n >= 0) {
        int64_t sum = 0;
        for (int k = 0; k < n; k++) {
            if (sizes[k] < 0)
                return OQ_KERR(c, "split[%d] = %lld is negative", k, (long long)sizes[k]);
            sum += sizes[k];
        }
        if (n != nout || sum != len)
            return OQ_KERR(c, "split sizes (%d entries, sum %lld) do not cover %d outputs of dim %lld", n,
                           (long long)sum, nout, (long long)len);
    } else if (c->opset >= 18 && oq_node_attr(c->node, "num_outputs")) {
        const int64_t chunk = (len + nout - 1) / nout;
        for (int k = 0; k < nout; k++) {
            int64_t left = len - chunk * k;
            sizes[k] = left < 0 ? 0 : left < chunk ? left : chunk;
        }
    } else {
        if (len % nout)
            return OQ_KERR(c, "dim %lld does not split into %d equal parts", (long long)len, nout);
        for (int k = 0; k < nout; k++)
            sizes[k] = len / nout;
    }
    int64_t outer = 1, inner = es;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    const int64_t in_row = len * inner;
    int64_t at = 0;
    for (int k = 0; k < nout; k++) {
        int64_t dims[OQ_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = sizes[k];
        oq_tensor *y = output_like(c, k, x, x->rank, dims);
        if (!y)
            return c->err->status;
        const int64_t row = sizes[k] * inner;
        for (int64_t o = 0; o < outer && row > 0; o++)
            memcpy((char *)y->data + o * row, (const char *)x->data + o * in_row + at, (size_t)row);
        at += row;
    }
    return OQ_OK;
}
static oq_status k_split_2(oq_kernel_ctx *c) { return split_run(c, false); }
static oq_status k_split_13(oq_kernel_ctx *c) { return split_run(c, true); }

/* ---- Slice ------------------------------------------------------------------- */

/* Slice: starts/ends/axes attributes (opset < 10) or inputs 1..4 (starts,
 * ends, axes, steps). Starts and ends are clamped into range; negative steps
 * walk backwards. */
static oq_status slice_run(oq_kernel_ctx *c, bool from_inputs)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    const int r = x->rank;
    int64_t starts[OQ_MAX_RANK], ends[OQ_MAX_RANK], axes[OQ_MAX_RANK], steps[OQ_MAX_RANK];
    int ns, ne, na = -1, nst = -1;
    oq_status st;
    if (from_inputs) {
        const oq_tensor *ts = oq_kernel_require(c, 1), *te = oq_kernel_require(c, 2);
        if (!ts || !te)
            return c->err->status;
        if ((st = read_ints(c, ts, "starts", r, starts, &ns)) || (st = read_ints(c, te, "ends", r, ends, &ne)))
            return st;
        const oq_tensor *ta = oq_kernel_input(c, 3), *tp = oq_kernel_input(c, 4);
        if (ta && (st = read_ints(c, ta, "axes", r, axes, &na)))
            return st;
        if (tp && (st = read_ints(c, tp, "steps", r, steps, &nst)))
            return st;
    } else {
        const int64_t *a = oq_node_attr_ints(c->node, "starts", &ns);
        const int64_t *b = oq_node_attr_ints(c->node, "ends", &ne);
        if (ns > r || ne > r)
            return OQ_KERR(c, "starts/ends have more entries than rank %d", r);
        if (ns)
            memcpy(starts, a, (size_t)ns * sizeof *a);
        if (ne)
            memcpy(ends, b, (size_t)ne * sizeof *b);
        if ((st = read_axes(c, false, 0, r, axes, &na)))
            return st;
    }
    if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return OQ_KERR(c, "starts, ends, axes and steps differ in length");
    int64_t xst[OQ_MAX_RANK], begin[OQ_MAX_RANK], step[OQ_MAX_RANK], dims[OQ_MAX_RANK];
    bool seen[OQ_MAX_RANK] = {false};
    oq_dense_strides(r, x->dims, xst);
    for (int i = 0; i < r; i++) {
        begin[i] = 0;
        step[i] = 1;
        dims[i] = x->dims[i];
    }
    for (int k = 0; k < ns; k++) {
        int a;
        if ((st = norm_axis(c, na >= 0 ? axes[k] : k, r, &a)))
            return st;
        if (seen[a])
            return OQ_KERR(c, "axis %d is repeated", a);
        seen[a] = true;
        const int64_t len = x->dims[a], s = nst >= 0 ? steps[k] : 1;
        if (s == 0)
            return OQ_KERR(c, "step is 0 on axis %d", a);
        int64_t b = starts[k], e = ends[k], cnt;
        b = b < 0 ? b + len : b;
        e = e < 0 ? e + len : e;
        if (s > 0) {
            b = b < 0 ? 0 : b > len ? len : b;
            e = e < 0 ? 0 : e > len ? len : e;
            cnt = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > len - 1 ? len - 1 : b;
            e = e < -1 ? -1 : e > len - 1 ? len - 1 : e;
            cnt = b > e ? (b - e - s - 1) / -s : 0;
        }
        begin[a] = cnt ? b : 0;
        step[a] = s;
        dims[a] = cnt;
    }
    oq_tensor *y = output_like(c, 0, x, r, dims);
    if (!y)
        return c->err->status;
    oq_view v = {.rank = r};
    int64_t off = 0;
    for (int i = 0; i < r; i++) {
        off += begin[i] * xst[i];
        v.dims[i] = dims[i];
        v.src_st[i] = step[i] * xst[i];
    }
    oq_dense_strides(r, dims, v.dst_st);
    oq_view_copy(c, y->data, (const char *)x->data + off * es, es, &v);
    return OQ_OK;
}
static oq_status k_slice_1(oq_kernel_ctx *c) { return slice_run(c, false); }
static oq_status k_slice_10(oq_kernel_ctx *c) { return slice_run(c, true); }

/* ---- Gather, GatherElements ------------------------------------------------------ */

static bool is_index_type(oq_dtype dt) { return dt == OQ_DTYPE_INT32 || dt == OQ_DTYPE_INT64; }

/* Index i of an int32/int64 tensor. */
static inline int64_t index_at(const oq_tensor *t, int64_t i)
{
    return t->dtype == OQ_DTYPE_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

/* Gather: y = x[:axis] + indices.shape + x[axis+1:], copying whole inner blocks. */
static oq_status k_gather(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *ind = oq_kernel_require(c, 1);
    if (!x || !ind)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    if (!is_index_type(ind->dtype))
        return OQ_KERR(c, "indices must be int32 or int64, got %s", oq_dtype_name(ind->dtype));
    int axis;
    oq_status st = norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x->rank, &axis);
    if (st)
        return st;
    const int r = x->rank - 1 + ind->rank;
    if (r > OQ_MAX_RANK)
        return OQ_KUNSUP(c, "output rank %d exceeds the supported %d", r, OQ_MAX_RANK);
    int64_t dims[OQ_MAX_RANK];
    int d = 0;
    for (int i = 0; i < axis; i++)
        dims[d++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++)
        dims[d++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        dims[d++] = x->dims[i];
    const int64_t len = x->dims[axis], nidx = oq_tensor_numel(ind);
    for (int64_t k = 0; k < nidx; k++) {
        int64_t v = index_at(ind, k);
        if (v < -len || v >= len)
            return OQ_KERR(c, "index %lld is out of range for dim %lld", (long long)v, (long long)len);
    }
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, r, dims);
    if (!y)
        return c->err->status;
    int64_t outer = 1, inner = es;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    char *out = y->data;
    for (int64_t o = 0; o < outer; o++) {
        const char *src = (const char *)x->data + o * len * inner;
        for (int64_t k = 0; k < nidx; k++) {
            int64_t v = index_at(ind, k);
            memcpy(out, src + (v < 0 ? v + len : v) * inner, (size_t)inner);
            out += inner;
        }
    }
    return OQ_OK;
}

/* Advances idx, an index into ind's shape, to the next element in row-major
 * order; *base follows it as an offset into data (strides xst) that leaves
 * out the axis dim, where the index's value goes. */
static void elements_next(const oq_tensor *ind, int axis, const int64_t *xst, int64_t *idx, int64_t *base)
{
    for (int i = ind->rank - 1; i >= 0; i--) {
        if (i != axis)
            *base += xst[i];
        if (++idx[i] < ind->dims[i])
            return;
        if (i != axis)
            *base -= xst[i] * ind->dims[i];
        idx[i] = 0;
    }
}

/* GatherElements: y[i] = x[i with i[axis] replaced by indices[i]]. */
static oq_status k_gather_elements(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *ind = oq_kernel_require(c, 1);
    if (!x || !ind)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    if (!is_index_type(ind->dtype))
        return OQ_KERR(c, "indices must be int32 or int64, got %s", oq_dtype_name(ind->dtype));
    if (ind->rank != x->rank || x->rank == 0)
        return OQ_KERR(c, "indices rank %d differs from data rank %d", ind->rank, x->rank);
    int axis;
    oq_status st = norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x->rank, &axis);
    if (st)
        return st;
    for (int i = 0; i < x->rank; i++)
        if (i != axis && ind->dims[i] > x->dims[i])
            return OQ_KERR(c, "indices dim %d (%lld) exceeds data dim %lld", i, (long long)ind->dims[i],
                           (long long)x->dims[i]);
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, ind->rank, ind->dims);
    if (!y)
        return c->err->status;
    const int64_t n = oq_tensor_numel(ind), len = x->dims[axis];
    int64_t xst[OQ_MAX_RANK], idx[OQ_MAX_RANK] = {0}, base = 0;
    oq_dense_strides(x->rank, x->dims, xst);
    for (int64_t k = 0; k < n; k++) {
        int64_t v = index_at(ind, k);
        if (v < -len || v >= len)
            return OQ_KERR(c, "index %lld is out of range for dim %lld", (long long)v, (long long)len);
        v = v < 0 ? v + len : v;
        memcpy((char *)y->data + k * es, (const char *)x->data + (base + v * xst[axis]) * es, (size_t)es);
        elements_next(ind, axis, xst, idx, &base);
    }
    return OQ_OK;
}

/* ---- GatherND, ScatterND, ScatterElements ---------------------------------------- */

/* How a scatter combines an update with the element already there. */
typedef enum scatter_reduction { SCATTER_NONE, SCATTER_ADD, SCATTER_MUL, SCATTER_MAX, SCATTER_MIN } scatter_reduction;

/* The node's "reduction" attribute (opset 16 on; "none" before), or
 * OQ_EUNSUPPORTED for one the executor cannot apply to t's element type
 * (reductions are arithmetic: float, double, int32 and int64). */
static oq_status scatter_reduction_of(oq_kernel_ctx *c, const oq_tensor *t, scatter_reduction *out)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *s = oq_node_attr_string(c->node, "reduction", "none");
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (!strcmp(s, names[k])) {
            *out = (scatter_reduction)k;
            if (k != SCATTER_NONE && t->dtype != OQ_DTYPE_FLOAT && t->dtype != OQ_DTYPE_DOUBLE &&
                t->dtype != OQ_DTYPE_INT32 && t->dtype != OQ_DTYPE_INT64)
                return OQ_KUNSUP(c, "reduction '%s' on %s is not supported", s, oq_dtype_name(t->dtype));
            return OQ_OK;
        }
    return OQ_KERR(c, "unknown reduction '%s'", s);
}

/* Sums and products are taken in U: the type itself for floats, the unsigned
 * type of the same width for integers, which wrap where signed ones would
 * overflow (undefined behaviour). */
#define SCATTER_COMBINE(T, U)                                                                    \
    for (int64_t i = 0; i < n; i++) {                                                            \
        T a = ((T *)dst)[i], b = ((const T *)src)[i];                                            \
        ((T *)dst)[i] = red == SCATTER_ADD   ? (T)((U)a + (U)b)                                  \
                        : red == SCATTER_MUL ? (T)((U)a * (U)b)                                  \
                        : red == SCATTER_MAX ? (a > b ? a : b)                                   \
                                             : (a < b ? a : b);                                  \
    }

/* Writes n elements of src into dst, or combines them with what dst holds. */
static void scatter_elems(void *dst, const void *src, int64_t n, int es, oq_dtype dt, scatter_reduction red)
{
    if (red == SCATTER_NONE) {
        memcpy(dst, src, (size_t)(n * es));
        return;
    }
    switch (dt) {
    case OQ_DTYPE_FLOAT: SCATTER_COMBINE(float, float) break;
    case OQ_DTYPE_DOUBLE: SCATTER_COMBINE(double, double) break;
    case OQ_DTYPE_INT32: SCATTER_COMBINE(int32_t, uint32_t) break;
    default: SCATTER_COMBINE(int64_t, uint64_t) break; /* int64: scatter_reduction_of let no other type through */
    }
}
#undef SCATTER_COMBINE

/* A scatter's data, indices and updates (inputs 0-2), its element size and
 * reduction, checked: indices int32/int64, updates of data's type. */
static oq_status scatter_operands(oq_kernel_ctx *c, const oq_tensor **x, const oq_tensor **ind, const oq_tensor **u,
                                  int *es, scatter_reduction *red)
{
    if (!(*x = oq_kernel_require(c, 0)) || !(*ind = oq_kernel_require(c, 1)) || !(*u = oq_kernel_require(c, 2)))
        return c->err->status;
    if (!(*es = oq_move_esize_of(c, *x)))
        return c->err->status;
    oq_status st = scatter_reduction_of(c, *x, red);
    if (st)
        return st;
    if (!is_index_type((*ind)->dtype))
        return OQ_KERR(c, "indices must be int32 or int64, got %s", oq_dtype_name((*ind)->dtype));
    if ((*u)->dtype != (*x)->dtype)
        return OQ_KERR(c, "updates are %s, data %s", oq_dtype_name((*u)->dtype), oq_dtype_name((*x)->dtype));
    return OQ_OK;
}

/* Output 0 as a copy of x, which the scatter then writes into. */
static oq_tensor *scatter_output(oq_kernel_ctx *c, const oq_tensor *x, int es)
{
    oq_tensor *y = oq_kernel_output_raw(c, 0, x->dtype, x->rank, x->dims);
    if (y && y->data != x->data && oq_tensor_numel(x) > 0)
        memcpy(y->data, x->data, (size_t)(oq_tensor_numel(x) * es));
    return y;
}

/* The element offset in x of the slice that index tuple t (ind's last dim,
 * starting at element first) addresses, counting the k dims from dim from;
 * -1 with c->err set when an index is out of range. st: x's dense strides. */
static int64_t tuple_offset(oq_kernel_ctx *c, const oq_tensor *x, const int64_t *st, int from, const oq_tensor *ind,
                            int64_t first, int k)
{
    int64_t off = 0;
    for (int j = 0; j < k; j++) {
        int64_t v = index_at(ind, first + j), len = x->dims[from + j];
        if (v < -len || v >= len) {
            OQ_KERR(c, "index %lld is out of range for dim %lld", (long long)v, (long long)len);
            return -1;
        }
        off += (v < 0 ? v + len : v) * st[from + j];
    }
    return off;
}

/* GatherND-11/12/13: indices [b..., n..., k] pick slices x[b..., i_1..i_k, ...]
 * of x's dims after batch_dims + k; y = indices.shape[:-1] + x.shape[b+k:]. */
static oq_status k_gather_nd(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *ind = oq_kernel_require(c, 1);
    if (!x || !ind)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    if (!is_index_type(ind->dtype))
        return OQ_KERR(c, "indices must be int32 or int64, got %s", oq_dtype_name(ind->dtype));
    const int64_t b = oq_node_attr_int(c->node, "batch_dims", 0);
    if (ind->rank < 1 || b < 0 || b >= ind->rank || b >= x->rank)
        return OQ_KERR(c, "batch_dims %lld does not fit data rank %d and indices rank %d", (long long)b, x->rank,
                       ind->rank);
    const int64_t k = ind->dims[ind->rank - 1];
    if (k < 1 || b + k > x->rank)
        return OQ_KERR(c, "index tuples of %lld do not fit data rank %d after %lld batch dims", (long long)k,
                       x->rank, (long long)b);
    for (int i = 0; i < b; i++)
        if (ind->dims[i] != x->dims[i])
            return OQ_KERR(c, "batch dim %d: indices %lld, data %lld", i, (long long)ind->dims[i],
                           (long long)x->dims[i]);
    int64_t dims[2 * OQ_MAX_RANK], st[OQ_MAX_RANK];
    int r = 0;
    for (int i = 0; i < ind->rank - 1; i++)
        dims[r++] = ind->dims[i];
    for (int i = (int)(b + k); i < x->rank; i++)
        dims[r++] = x->dims[i];
    oq_tensor *y = output_like(c, 0, x, r, dims);
    if (!y)
        return c->err->status;
    oq_dense_strides(x->rank, x->dims, st);
    const int64_t batches = oq_shape_numel((int)b, x->dims);
    const int64_t per_batch = batches ? oq_tensor_numel(ind) / k / batches : 0;
    const int64_t inner = oq_shape_numel(x->rank - (int)(b + k), x->dims + b + k);
    char *out = y->data;
    for (int64_t bi = 0; bi < batches; bi++)
        for (int64_t t = 0; t < per_batch; t++) {
            int64_t off = tuple_offset(c, x, st, (int)b, ind, (bi * per_batch + t) * k, (int)k);
            if (off < 0)
                return c->err->status;
            off += bi * (b ? st[b - 1] : 0);
            memcpy(out, (const char *)x->data + off * es, (size_t)(inner * es));
            out += inner * es;
        }
    return OQ_OK;
}

/* ScatterND-11/13/16/18: y = data with the slices that indices' tuples address
 * replaced by (or combined with) updates [indices.shape[:-1], data.shape[k:]];
 * later updates win where tuples repeat. */
static oq_status k_scatter_nd(oq_kernel_ctx *c)
{
    const oq_tensor *x, *ind, *u;
    int es;
    scatter_reduction red;
    oq_status st = scatter_operands(c, &x, &ind, &u, &es, &red);
    if (st)
        return st;
    const int64_t k = ind->rank ? ind->dims[ind->rank - 1] : 0;
    if (k < 1 || k > x->rank)
        return OQ_KERR(c, "index tuples of %lld do not fit data rank %d", (long long)k, x->rank);
    bool fits = u->rank == ind->rank - 1 + x->rank - (int)k;
    for (int i = 0; fits && i < u->rank; i++)
        fits = u->dims[i] == (i < ind->rank - 1 ? ind->dims[i] : x->dims[k + i - (ind->rank - 1)]);
    if (!fits)
        return OQ_KERR(c, "updates' shape does not match indices.shape[:-1] + data.shape[%lld:]", (long long)k);
    oq_tensor *y = scatter_output(c, x, es);
    if (!y)
        return c->err->status;
    const int64_t inner = oq_shape_numel(x->rank - (int)k, x->dims + k), tuples = oq_tensor_numel(ind) / k;
    int64_t xst[OQ_MAX_RANK];
    oq_dense_strides(x->rank, x->dims, xst);
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = tuple_offset(c, x, xst, 0, ind, t * k, (int)k);
        if (off < 0)
            return c->err->status;
        scatter_elems((char *)y->data + off * es, (const char *)u->data + t * inner * es, inner, es, x->dtype, red);
    }
    return OQ_OK;
}

/* ScatterElements-11/13/16/18 (and Scatter-9): y = data with
 * y[i with i[axis] = indices[i]] set to (or combined with) updates[i]. */
static oq_status k_scatter_elements(oq_kernel_ctx *c)
{
    const oq_tensor *x, *ind, *u;
    int es;
    scatter_reduction red;
    oq_status st = scatter_operands(c, &x, &ind, &u, &es, &red);
    if (st)
        return st;
    if (ind->rank != x->rank || u->rank != x->rank || x->rank == 0)
        return OQ_KERR(c, "data, indices and updates must have one rank (%d, %d, %d)", x->rank, ind->rank, u->rank);
    int axis;
    if ((st = norm_axis(c, oq_node_attr_int(c->node, "axis", 0), x->rank, &axis)))
        return st;
    for (int i = 0; i < x->rank; i++)
        if (u->dims[i] != ind->dims[i] || (i != axis && ind->dims[i] > x->dims[i]))
            return OQ_KERR(c, "indices dim %d (%lld) does not fit updates (%lld) and data (%lld)", i,
                           (long long)ind->dims[i], (long long)u->dims[i], (long long)x->dims[i]);
    oq_tensor *y = scatter_output(c, x, es);
    if (!y)
        return c->err->status;
    const int64_t n = oq_tensor_numel(ind), len = x->dims[axis];
    int64_t xst[OQ_MAX_RANK], idx[OQ_MAX_RANK] = {0}, base = 0;
    oq_dense_strides(x->rank, x->dims, xst);
    for (int64_t e = 0; e < n; e++) {
        int64_t v = index_at(ind, e);
        if (v < -len || v >= len)
            return OQ_KERR(c, "index %lld is out of range for dim %lld", (long long)v, (long long)len);
        v = v < 0 ? v + len : v;
        scatter_elems((char *)y->data + (base + v * xst[axis]) * es, (const char *)u->data + e * es, 1, es,
                      x->dtype, red);
        elements_next(ind, axis, xst, idx, &base);
    }
    return OQ_OK;
}

/* ---- Trilu, Compress, NonZero, EyeLike, OneHot ------------------------------------- */

/* Diagonal offset k limited to [-rows - 1, cols + 1]: beyond that every row
 * keeps all or nothing, and i + k cannot overflow. */
static int64_t clamp_diagonal(int64_t k, int64_t rows, int64_t cols)
{
    return k < -rows - 1 ? -rows - 1 : k > cols + 1 ? cols + 1 : k;
}

/* Trilu-14: the upper (j - i >= k) or lower (j - i <= k) triangle of each
 * matrix in the last two dims; the rest is zero. */
static oq_status k_trilu(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *kt = oq_kernel_input(c, 1);
    if (!x)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    if (x->rank < 2)
        return OQ_KERR(c, "input rank %d is below 2", x->rank);
    if (kt && oq_tensor_numel(kt) != 1)
        return OQ_KERR(c, "k must hold one element");
    const int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    const int64_t k = clamp_diagonal(kt ? oq_tensor_get_i64(kt, 0) : 0, rows, cols);
    const bool upper = oq_node_attr_int(c->node, "upper", 1) != 0;
    oq_tensor *y = output_like(c, 0, x, x->rank, x->dims); /* zero-filled */
    if (!y)
        return c->err->status;
    const int64_t plane = rows * cols, mats = plane > 0 ? oq_tensor_numel(x) / plane : 0;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            /* kept columns: [i + k, cols) for upper, [0, i + k] for lower */
            int64_t lo = upper ? i + k : 0, hi = upper ? cols : i + k + 1;
            lo = lo < 0 ? 0 : lo > cols ? cols : lo;
            hi = hi < 0 ? 0 : hi > cols ? cols : hi;
            if (hi > lo) {
                size_t at = (size_t)(((m * rows + i) * cols + lo) * es);
                memcpy((char *)y->data + at, (const char *)x->data + at, (size_t)((hi - lo) * es));
            }
        }
    return OQ_OK;
}

/* Whether element i of t (a numeric or bool tensor) is non-zero; NaN is. */
static bool nonzero_at(const oq_tensor *t, int64_t i)
{
    double v = oq_tensor_get_f64(t, i);
    return v != 0 || isnan(v);
}

/* Compress-9/11: the slices along axis (or, without axis, the elements of the
 * flattened input) whose entry in the 1-D bool condition is true; entries
 * past the condition's end count as false. */
static oq_status k_compress(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *cond = oq_kernel_require(c, 1);
    if (!x || !cond)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    if (cond->dtype != OQ_DTYPE_BOOL || cond->rank != 1)
        return OQ_KERR(c, "condition must be a 1-D bool tensor");
    const oq_attr *a = oq_node_attr(c->node, "axis");
    int axis = -1;
    if (a) {
        oq_status st = norm_axis(c, a->i, x->rank, &axis);
        if (st)
            return st;
    }
    const int64_t len = axis < 0 ? oq_tensor_numel(x) : x->dims[axis];
    if (cond->dims[0] > len)
        return OQ_KERR(c, "condition has %lld entries for %lld", (long long)cond->dims[0], (long long)len);
    const uint8_t *keep = cond->data;
    int64_t kept = 0;
    for (int64_t i = 0; i < cond->dims[0]; i++)
        kept += keep[i] != 0;
    int64_t dims[OQ_MAX_RANK];
    int r = axis < 0 ? 1 : x->rank;
    if (axis < 0)
        dims[0] = kept;
    else {
        memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
        dims[axis] = kept;
    }
    oq_tensor *y = output_like(c, 0, x, r, dims);
    if (!y)
        return c->err->status;
    int64_t outer = 1, inner = es;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; axis >= 0 && i < x->rank; i++)
        inner *= x->dims[i];
    char *out = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < cond->dims[0]; i++)
            if (keep[i]) {
                memcpy(out, (const char *)x->data + (o * len + i) * inner, (size_t)inner);
                out += inner;
            }
    return OQ_OK;
}

/* NonZero-9/13: [rank, n] int64, the coordinates of the n non-zero elements in
 * row-major order (a scalar counts as rank 1). */
static oq_status k_nonzero(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    const int64_t n = oq_tensor_numel(x);
    const int r = x->rank ? x->rank : 1;
    int64_t found = 0;
    for (int64_t i = 0; i < n; i++)
        found += nonzero_at(x, i);
    int64_t dims[2] = {r, found}, xd[OQ_MAX_RANK], st[OQ_MAX_RANK];
    oq_tensor *y = oq_kernel_output(c, 0, OQ_DTYPE_INT64, 2, dims);
    if (!y)
        return c->err->status;
    if (x->rank)
        memcpy(xd, x->dims, (size_t)x->rank * sizeof *xd);
    else
        xd[0] = 1;
    oq_dense_strides(r, xd, st);
    int64_t *out = y->data, j = 0;
    for (int64_t i = 0; i < n; i++)
        if (nonzero_at(x, i)) {
            for (int d = 0; d < r; d++)
                out[d * found + j] = i / st[d] % xd[d];
            j++;
        }
    return OQ_OK;
}

/* EyeLike-9: zeros shaped like the 2-D input, ones on diagonal k, of the
 * "dtype" attribute's type (the input's by default). */
static oq_status k_eye_like(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    if (x->rank != 2)
        return OQ_KERR(c, "input rank %d is not 2", x->rank);
    const oq_attr *a = oq_node_attr(c->node, "dtype");
    oq_dtype dt = a ? (oq_dtype)a->i : x->dtype;
    char one[8];
    if (!oq_dtype_valid(dt) || !oq_move_esize(dt) || !oq_store_f64(dt, 1.0, one))
        return OQ_KUNSUP(c, "output type %s is not supported", oq_dtype_valid(dt) ? oq_dtype_name(dt) : "unknown");
    const int es = oq_move_esize(dt);
    oq_tensor *y = oq_kernel_output(c, 0, dt, 2, x->dims);
    if (!y)
        return c->err->status;
    const int64_t rows = x->dims[0], cols = x->dims[1];
    const int64_t k = clamp_diagonal(oq_node_attr_int(c->node, "k", 0), rows, cols);
    for (int64_t i = 0; i < rows; i++)
        if (i + k >= 0 && i + k < cols)
            memcpy((char *)y->data + (i * cols + i + k) * es, one, (size_t)es);
    return OQ_OK;
}

/* OneHot-9/11: indices -> the values input's "off" everywhere and "on" at
 * index (a negative one counts from depth; out of range stays all off) along
 * a new axis of length depth. */
static oq_status k_one_hot(oq_kernel_ctx *c)
{
    const oq_tensor *ind = oq_kernel_require(c, 0), *dt = oq_kernel_require(c, 1), *val = oq_kernel_require(c, 2);
    if (!ind || !dt || !val)
        return c->err->status;
    int es = oq_move_esize_of(c, val);
    if (!es)
        return c->err->status;
    if (oq_tensor_numel(dt) != 1 || oq_tensor_numel(val) != 2)
        return OQ_KERR(c, "depth must hold one element and values two");
    const double dd = oq_tensor_get_f64(dt, 0);
    if (!(dd >= 1) || dd > (double)oq_tensor_limit())
        return OQ_KERR(c, "depth %g is not a positive count", dd);
    const int64_t depth = (int64_t)dd;
    const int r = ind->rank + 1;
    if (r > OQ_MAX_RANK)
        return OQ_KUNSUP(c, "output rank %d exceeds the supported %d", r, OQ_MAX_RANK);
    int axis;
    oq_status st = norm_axis(c, oq_node_attr_int(c->node, "axis", -1), r, &axis);
    if (st)
        return st;
    int64_t dims[OQ_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = i == axis ? depth : ind->dims[j++];
    oq_tensor *y = output_like(c, 0, val, r, dims);
    if (!y)
        return c->err->status;
    oq_fill_elems(y->data, val->data, es, oq_tensor_numel(y));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= dims[i];
    for (int i = axis + 1; i < r; i++)
        inner *= dims[i];
    const char *on = (const char *)val->data + es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double v = trunc(oq_tensor_get_f64(ind, o * inner + i));
            if (v < 0)
                v += (double)depth;
            if (v >= 0 && v < (double)depth)
                memcpy((char *)y->data + ((o * depth + (int64_t)v) * inner + i) * es, on, (size_t)es);
        }
    return OQ_OK;
}

/* ---- Expand, Tile --------------------------------------------------------------- */

static oq_status k_expand(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *s = oq_kernel_require(c, 1);
    if (!x || !s)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    int64_t shape[OQ_MAX_RANK], dims[OQ_MAX_RANK];
    int n, r;
    oq_status st = read_ints(c, s, "shape", OQ_MAX_RANK, shape, &n);
    if (st)
        return st;
    const int ranks[2] = {x->rank, n};
    const int64_t *all[2] = {x->dims, shape};
    if ((st = oq_broadcast_shape(2, ranks, all, &r, dims, c->err)))
        return st;
    oq_tensor *y = output_like(c, 0, x, r, dims);
    if (!y)
        return c->err->status;
    oq_view v = {.rank = r};
    memcpy(v.dims, dims, (size_t)r * sizeof *dims);
    oq_broadcast_strides(x->rank, x->dims, r, dims, v.src_st);
    oq_dense_strides(r, dims, v.dst_st);
    oq_view_copy(c, y->data, x->data, es, &v);
    return OQ_OK;
}

/* Tile walks a rank-2r view (repeat_0, dim_0, repeat_1, dim_1, ...) whose
 * repeat dims have source stride 0. */
static oq_status k_tile(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *rep = oq_kernel_require(c, 1);
    if (!x || !rep)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    int64_t reps[OQ_MAX_RANK], dims[OQ_MAX_RANK], xst[OQ_MAX_RANK];
    int n;
    oq_status st = read_ints(c, rep, "repeats", OQ_MAX_RANK, reps, &n);
    if (st)
        return st;
    if (n != x->rank)
        return OQ_KERR(c, "repeats has %d entries for a rank-%d input", n, x->rank);
    oq_dense_strides(x->rank, x->dims, xst);
    oq_view v = {.rank = 2 * n};
    for (int i = 0; i < n; i++) {
        if (reps[i] < 0)
            return OQ_KERR(c, "repeats[%d] = %lld is negative", i, (long long)reps[i]);
        if (x->dims[i] && reps[i] > INT64_MAX / x->dims[i])
            return OQ_KERR(c, "repeats[%d] = %lld makes dim %d pass 2^63", i, (long long)reps[i], i);
        dims[i] = reps[i] * x->dims[i];
        v.dims[2 * i] = reps[i];
        v.dims[2 * i + 1] = x->dims[i];
        v.src_st[2 * i] = 0;
        v.src_st[2 * i + 1] = xst[i];
    }
    oq_tensor *y = output_like(c, 0, x, n, dims);
    if (!y)
        return c->err->status;
    oq_dense_strides(v.rank, v.dims, v.dst_st);
    oq_view_copy(c, y->data, x->data, es, &v);
    return OQ_OK;
}

/* ---- Pad ---------------------------------------------------------------------- */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

/* Input coordinate that output coordinate o (already shifted by the begin pad,
 * so i = o - begin) reads along a dim of length len. len > 0. */
static int64_t pad_source(pad_mode m, int64_t i, int64_t len)
{
    if (i >= 0 && i < len)
        return i;
    switch (m) {
    case PAD_EDGE: return i < 0 ? 0 : len - 1;
    case PAD_WRAP: return ((i % len) + len) % len;
    default: { /* reflect without repeating the edge: period 2(len-1) */
        if (len == 1)
            return 0;
        const int64_t p = 2 * (len - 1);
        int64_t j = ((i % p) + p) % p;
        return j < len ? j : p - j;
    }
    }
}

/* Pad-2 (pads, value attributes), Pad-11 (pads, constant_value inputs),
 * Pad-18 (axes input), Pad-19 (wrap mode). Negative pads crop. */
static oq_status pad_run(oq_kernel_ctx *c, bool from_inputs)
{
    const oq_tensor *x = oq_kernel_require(c, 0);
    if (!x)
        return c->err->status;
    int es = oq_move_esize_of(c, x);
    if (!es)
        return c->err->status;
    const int r = x->rank;
    const char *ms = oq_node_attr_string(c->node, "mode", "constant");
    pad_mode mode;
    if (!strcmp(ms, "constant"))
        mode = PAD_CONSTANT;
    else if (!strcmp(ms, "reflect"))
        mode = PAD_REFLECT;
    else if (!strcmp(ms, "edge"))
        mode = PAD_EDGE;
    else if (!strcmp(ms, "wrap") && c->opset >= 19)
        mode = PAD_WRAP;
    else
        return OQ_KERR(c, "unknown mode '%s'", ms);
    int64_t pads[2 * OQ_MAX_RANK], axes[OQ_MAX_RANK];
    int np, na = -1;
    oq_status st;
    uint64_t value = 0; /* the pad element, esize bytes */
    if (from_inputs) {
        const oq_tensor *tp = oq_kernel_require(c, 1);
        if (!tp)
            return c->err->status;
        if ((st = read_ints(c, tp, "pads", 2 * r, pads, &np)))
            return st;
        const oq_tensor *tv = oq_kernel_input(c, 2), *ta = oq_kernel_input(c, 3);
        if (tv && oq_tensor_numel(tv) > 0) {
            if (tv->dtype != x->dtype)
                return OQ_KERR(c, "constant_value is %s, data is %s", oq_dtype_name(tv->dtype),
                               oq_dtype_name(x->dtype));
            memcpy(&value, tv->data, (size_t)es);
        }
        if (ta && (st = read_ints(c, ta, "axes", r, axes, &na)))
            return st;
    } else {
        const int64_t *p = oq_node_attr_ints(c->node, "pads", &np);
        if (np > 2 * r)
            return OQ_KERR(c, "pads has %d entries for rank %d", np, r);
        if (np)
            memcpy(pads, p, (size_t)np * sizeof *p);
        double v = oq_node_attr_float(c->node, "value", 0.0f);
        if (v != 0 && !oq_store_f64(x->dtype, v, &value))
            return OQ_KUNSUP(c, "cannot convert the pad value to %s", oq_dtype_name(x->dtype));
    }
    const int n = na >= 0 ? na : r;
    if (np != 2 * n)
        return OQ_KERR(c, "pads has %d entries, expected %d", np, 2 * n);
    int64_t lo[OQ_MAX_RANK] = {0}, hi[OQ_MAX_RANK] = {0}, dims[OQ_MAX_RANK];
    bool seen[OQ_MAX_RANK] = {false};
    for (int k = 0; k < n; k++) {
        int a;
        if ((st = norm_axis(c, na >= 0 ? axes[k] : k, r, &a)))
            return st;
        if (seen[a])
            return OQ_KERR(c, "axis %d is repeated", a);
        seen[a] = true;
        lo[a] = pads[k];
        hi[a] = pads[n + k];
    }
    for (int i = 0; i < r; i++) {
        if (__builtin_add_overflow(x->dims[i], lo[i], &dims[i]) || __builtin_add_overflow(dims[i], hi[i], &dims[i]))
            return OQ_KERR(c, "pads make dim %d pass the int64 range", i);
        if (dims[i] < 0)
            return OQ_KERR(c, "pads make dim %d negative", i);
        if (mode != PAD_CONSTANT && x->dims[i] == 0 && dims[i] > 0)
            return OQ_KERR(c, "cannot %s-pad the empty dim %d", ms, i);
    }
    oq_tensor *y = oq_kernel_output(c, 0, x->dtype, r, dims);
    if (!y)
        return c->err->status;
    const int64_t total = oq_shape_numel(r, dims);
    if (total == 0)
        return OQ_OK;
    int64_t xst[OQ_MAX_RANK];
    oq_dense_strides(r, x->dims, xst);
    if (mode == PAD_CONSTANT) {
        /* Fill, then copy the part of x that lands inside y. */
        oq_fill_elems(y->data, &value, es, total);
        oq_view v = {.rank = r};
        int64_t yst[OQ_MAX_RANK], soff = 0, doff = 0;
        oq_dense_strides(r, dims, yst);
        for (int i = 0; i < r; i++) {
            int64_t o0 = lo[i] > 0 ? lo[i] : 0, o1 = x->dims[i] + lo[i];
            o1 = o1 < dims[i] ? o1 : dims[i];
            v.dims[i] = o1 > o0 ? o1 - o0 : 0;
            v.src_st[i] = xst[i];
            v.dst_st[i] = yst[i];
            soff += (o0 - lo[i]) * xst[i];
            doff += o0 * yst[i];
        }
        oq_view_copy(c, (char *)y->data + doff * es, (const char *)x->data + soff * es, es, &v);
        return OQ_OK;
    }
    int64_t sum = 0;
    for (int i = 0; i < r; i++)
        sum += dims[i];
    int64_t *tab = oq_kernel_scratch(c, (size_t)sum * sizeof *tab);
    if (!tab)
        return c->err->status;
    const int64_t *maps[OQ_MAX_RANK];
    for (int i = 0; i < r; i++) {
        maps[i] = tab;
        for (int64_t o = 0; o < dims[i]; o++)
            tab[o] = pad_source(mode, o - lo[i], x->dims[i]) * xst[i];
        tab += dims[i];
    }
    oq_gather_maps(c, y->data, x->data, es, r, dims, maps);
    return OQ_OK;
}
static oq_status k_pad_2(oq_kernel_ctx *c) { return pad_run(c, false); }
static oq_status k_pad_11(oq_kernel_ctx *c) { return pad_run(c, true); }

/* ---- the table ------------------------------------------------------------------ */

#define RESIZE_TYPES                                                                          \
    (OQ_DT(FLOAT) | OQ_DT(UINT8) | OQ_DT(INT8) | OQ_DT(UINT16) | OQ_DT(INT16) | OQ_DT(INT32) | \
     OQ_DT(INT64) | OQ_DT(BOOL) | OQ_DT(FLOAT16) | OQ_DT(DOUBLE) | OQ_DT(UINT32) |            \
     OQ_DT(UINT64) | OQ_DT(BFLOAT16))

/* Types with a numeric value (bool counts as 0 and 1). */
#define NUMERIC_TYPES (RESIZE_TYPES | OQ_DT(UINT32) | OQ_DT(UINT64))

const oq_op_def oq_ops_shape[] = {
    {"", "Reshape", 5, OQ_DT_MOVABLE, k_reshape},
    {"", "Reshape", 14, OQ_DT_MOVABLE, k_reshape}, /* allowzero */
    {"", "Flatten", 1, OQ_DT_MOVABLE, k_flatten},
    {"", "Squeeze", 1, OQ_DT_MOVABLE, k_squeeze_1},
    {"", "Squeeze", 13, OQ_DT_MOVABLE, k_squeeze_13},
    {"", "Unsqueeze", 1, OQ_DT_MOVABLE, k_unsqueeze_1},
    {"", "Unsqueeze", 13, OQ_DT_MOVABLE, k_unsqueeze_13},
    {"", "Transpose", 1, OQ_DT_MOVABLE, k_transpose},
    {"", "Concat", 4, OQ_DT_MOVABLE, k_concat},
    {"", "Split", 2, OQ_DT_MOVABLE, k_split_2},
    {"", "Split", 13, OQ_DT_MOVABLE, k_split_13},
    {"", "Split", 18, OQ_DT_MOVABLE, k_split_13}, /* num_outputs */
    {"", "Slice", 1, OQ_DT_MOVABLE, k_slice_1},
    {"", "Slice", 10, OQ_DT_MOVABLE, k_slice_10},
    {"", "Gather", 1, OQ_DT_MOVABLE, k_gather},
    {"", "GatherElements", 11, OQ_DT_MOVABLE, k_gather_elements},
    {"", "GatherND", 11, OQ_DT_MOVABLE, k_gather_nd}, /* batch_dims from 12 */
    {"", "Scatter", 9, OQ_DT_MOVABLE, k_scatter_elements},
    {"", "ScatterElements", 11, OQ_DT_MOVABLE, k_scatter_elements}, /* reduction from 16 */
    {"", "ScatterND", 11, OQ_DT_MOVABLE, k_scatter_nd},             /* reduction from 16 */
    {"", "Trilu", 14, OQ_DT_MOVABLE, k_trilu},
    {"", "Compress", 9, OQ_DT_MOVABLE, k_compress}, /* negative axis from 11 */
    {"", "NonZero", 9, NUMERIC_TYPES, k_nonzero},
    {"", "EyeLike", 9, NUMERIC_TYPES, k_eye_like},
    {"", "OneHot", 9, NUMERIC_TYPES, k_one_hot}, /* negative indices from 11 */
    {"", "Expand", 8, OQ_DT_MOVABLE, k_expand},
    {"", "Tile", 6, OQ_DT_MOVABLE, k_tile},
    {"", "Pad", 2, OQ_DT_MOVABLE, k_pad_2},
    {"", "Pad", 11, OQ_DT_MOVABLE, k_pad_11},
    {"", "Pad", 18, OQ_DT_MOVABLE, k_pad_11}, /* axes input; wrap from 19 */
    {"", "DepthToSpace", 1, OQ_DT_MOVABLE, k_depth_to_space}, /* CRD mode from 11 */
    {"", "SpaceToDepth", 1, OQ_DT_MOVABLE, k_space_to_depth},
    {"", "Upsample", 7, RESIZE_TYPES, oq_kernel_upsample}, /* scales input from 9 */
    {"", "Resize", 10, RESIZE_TYPES, oq_kernel_resize},
    {"", "Resize", 11, RESIZE_TYPES, oq_kernel_resize},
    {"", "Resize", 13, RESIZE_TYPES, oq_kernel_resize},
    {"", "Resize", 18, RESIZE_TYPES, oq_kernel_resize},
    {"", "Resize", 19, RESIZE_TYPES, oq_kernel_resize},
    {"", "GridSample", 16, OQ_DT(FLOAT), oq_kernel_grid_sample}, /* modes linear and cubic named so from 20 */
};
const int oq_ops_shape_count = (int)(sizeof oq_ops_shape / sizeof oq_ops_shape[0]);
