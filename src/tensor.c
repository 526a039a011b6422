/* tensor.c: dtype traits, dense tensors, half-precision conversion, broadcasting. */
#include "onnxq/oq_tensor.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnxq/oq_file.h"

/* ---- dtype traits ------------------------------------------------------------- */

const oq_dtype_traits oq_dtype_traits_table[OQ_DTYPE_COUNT] = {
    [OQ_DTYPE_UNDEFINED] = {"undefined", 0, false, false},
    [OQ_DTYPE_FLOAT] = {"float", 32, true, true},
    [OQ_DTYPE_UINT8] = {"uint8", 8, false, false},
    [OQ_DTYPE_INT8] = {"int8", 8, false, true},
    [OQ_DTYPE_UINT16] = {"uint16", 16, false, false},
    [OQ_DTYPE_INT16] = {"int16", 16, false, true},
    [OQ_DTYPE_INT32] = {"int32", 32, false, true},
    [OQ_DTYPE_INT64] = {"int64", 64, false, true},
    [OQ_DTYPE_STRING] = {"string", 0, false, false},
    [OQ_DTYPE_BOOL] = {"bool", 8, false, false},
    [OQ_DTYPE_FLOAT16] = {"float16", 16, true, true},
    [OQ_DTYPE_DOUBLE] = {"double", 64, true, true},
    [OQ_DTYPE_UINT32] = {"uint32", 32, false, false},
    [OQ_DTYPE_UINT64] = {"uint64", 64, false, false},
    [OQ_DTYPE_COMPLEX64] = {"complex64", 64, true, true},
    [OQ_DTYPE_COMPLEX128] = {"complex128", 128, true, true},
    [OQ_DTYPE_BFLOAT16] = {"bfloat16", 16, true, true},
    [OQ_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 8, true, true},
    [OQ_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8, true, true},
    [OQ_DTYPE_FLOAT8E5M2] = {"float8e5m2", 8, true, true},
    [OQ_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8, true, true},
    [OQ_DTYPE_UINT4] = {"uint4", 4, false, false},
    [OQ_DTYPE_INT4] = {"int4", 4, false, true},
};
static_assert(sizeof oq_dtype_traits_table / sizeof oq_dtype_traits_table[0] == OQ_DTYPE_COUNT,
              "one traits entry per dtype");

const char *oq_dtype_name(oq_dtype dt)
{
    return (unsigned)dt < OQ_DTYPE_COUNT ? oq_dtype_traits_table[dt].name : "?";
}

/* ---- sizes and limits ---------------------------------------------------------- */

static size_t tensor_limit = OQ_TENSOR_LIMIT_DEFAULT;

void oq_set_tensor_limit(size_t bytes) { tensor_limit = bytes; }
size_t oq_tensor_limit(void) { return tensor_limit; }

int64_t oq_shape_numel(int rank, const int64_t *dims)
{
    /* The product of the non-zero dims must fit as well, even when a zero
     * dim makes the count 0: then any product of some of the dims of a
     * tensor that exists (strides, outer and inner sizes) fits too. */
    int64_t n = 1;
    bool empty = false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] == 0) {
            empty = true;
            continue;
        }
        if (n > INT64_MAX / dims[i])
            return -1;
        n *= dims[i];
    }
    return empty ? 0 : n;
}

size_t oq_dtype_storage(oq_dtype dt, int64_t numel)
{
    if (numel < 0 || (unsigned)dt >= OQ_DTYPE_COUNT)
        return SIZE_MAX;
    uint64_t bits = dt == OQ_DTYPE_STRING ? 8 * sizeof(char *) : oq_dtype_traits_table[dt].bits;
    if (bits && (uint64_t)numel > UINT64_MAX / bits)
        return SIZE_MAX;
    uint64_t bytes = ((uint64_t)numel * bits + 7) / 8;
    return bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
}

/* ---- lifetime ------------------------------------------------------------------ */

oq_status oq_tensor_alloc(oq_tensor *t, oq_dtype dt, int rank, const int64_t *dims, oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (!oq_dtype_valid(dt))
        return oq_errf(err, OQ_EINVAL, "invalid element type %d", (int)dt);
    if (rank < 0 || rank > OQ_MAX_RANK)
        return oq_errf(err, OQ_EUNSUPPORTED, "rank %d is outside 0..%d", rank, OQ_MAX_RANK);
    int64_t numel = oq_shape_numel(rank, dims);
    if (numel < 0)
        return oq_errf(err, OQ_EINVAL, "dims are negative or their product overflows");
    size_t bytes = oq_dtype_storage(dt, numel);
    if (bytes == SIZE_MAX || bytes > tensor_limit)
        return oq_errf(err, OQ_ENOMEM, "tensor of %lld %s elements exceeds the size limit of %zu bytes",
                       (long long)numel, oq_dtype_name(dt), tensor_limit);
    void *data = calloc(bytes ? bytes : 1, 1);
    if (!data)
        return oq_errf(err, OQ_ENOMEM, "cannot allocate %zu bytes", bytes);
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof dims[0]);
    t->data = data;
    t->nbytes = bytes;
    t->owns_data = true;
    return OQ_OK;
}

void oq_tensor_release(oq_tensor *t)
{
    if (!t)
        return;
    if (t->mapping) {
        oq_mapping_forget(t->mapping, t->data, t->nbytes);
        oq_mapping_release(t->mapping);
    } else if (t->owns_data && t->data) {
        if (t->dtype == OQ_DTYPE_STRING) {
            char **s = t->data;
            int64_t n = oq_tensor_numel(t);
            for (int64_t i = 0; i < n; i++)
                free(s[i]);
        }
        free(t->data);
    }
    memset(t, 0, sizeof *t);
}

oq_status oq_tensor_copy(oq_tensor *dst, const oq_tensor *src, oq_err *err)
{
    oq_status st = oq_tensor_alloc(dst, src->dtype, src->rank, src->dims, err);
    if (st)
        return st;
    if (src->dtype == OQ_DTYPE_STRING) {
        char **from = src->data, **to = dst->data;
        int64_t n = oq_tensor_numel(src);
        for (int64_t i = 0; i < n; i++) {
            to[i] = strdup(from[i] ? from[i] : "");
            if (!to[i]) {
                oq_tensor_release(dst);
                return oq_errf(err, OQ_ENOMEM, "out of memory copying strings");
            }
        }
    } else if (dst->nbytes) {
        memcpy(dst->data, src->data, dst->nbytes);
    }
    return OQ_OK;
}

oq_status oq_tensor_share(oq_tensor *dst, const oq_tensor *src, oq_err *err)
{
    if (!src->mapping)
        return oq_tensor_copy(dst, src, err);
    *dst = *src;
    oq_mapping_retain(dst->mapping);
    return OQ_OK;
}

oq_tensor *oq_tensor_create(oq_dtype dt, int rank, const int64_t *dims, oq_err *err)
{
    oq_tensor *t = malloc(sizeof *t);
    if (!t) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    if (oq_tensor_alloc(t, dt, rank, dims, err)) {
        free(t);
        return NULL;
    }
    return t;
}

void oq_tensor_destroy(oq_tensor *t)
{
    if (!t)
        return;
    oq_tensor_release(t);
    free(t);
}

/* ---- element access (slow path) ------------------------------------------------ */

static int8_t nibble(const oq_tensor *t, int64_t i)
{
    uint8_t byte = ((const uint8_t *)t->data)[i / 2];
    uint8_t v = (i & 1) ? (byte >> 4) : (byte & 0xF);
    if (t->dtype == OQ_DTYPE_INT4 && (v & 0x8))
        return (int8_t)(v | 0xF0);
    return (int8_t)v;
}

double oq_tensor_get_f64(const oq_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case OQ_DTYPE_FLOAT: return ((const float *)d)[i];
    case OQ_DTYPE_DOUBLE: return ((const double *)d)[i];
    case OQ_DTYPE_FLOAT16: return oq_f16_to_f32(((const uint16_t *)d)[i]);
    case OQ_DTYPE_BFLOAT16: return oq_bf16_to_f32(((const uint16_t *)d)[i]);
    case OQ_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    default: return (double)oq_tensor_get_i64(t, i);
    }
}

int64_t oq_tensor_get_i64(const oq_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case OQ_DTYPE_UINT8: return ((const uint8_t *)d)[i];
    case OQ_DTYPE_INT8: return ((const int8_t *)d)[i];
    case OQ_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case OQ_DTYPE_INT16: return ((const int16_t *)d)[i];
    case OQ_DTYPE_INT32: return ((const int32_t *)d)[i];
    case OQ_DTYPE_INT64: return ((const int64_t *)d)[i];
    case OQ_DTYPE_BOOL: return ((const uint8_t *)d)[i] != 0;
    case OQ_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case OQ_DTYPE_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case OQ_DTYPE_UINT4:
    case OQ_DTYPE_INT4: return nibble(t, i);
    case OQ_DTYPE_FLOAT:
    case OQ_DTYPE_DOUBLE:
    case OQ_DTYPE_FLOAT16:
    case OQ_DTYPE_BFLOAT16: return oq_f64_to_i64_sat(oq_tensor_get_f64(t, i));
    default: return 0;
    }
}

int64_t oq_f64_to_i64_sat(double v)
{
    if (isnan(v))
        return 0;
    if (v >= 9.2233720368547758e18)
        return INT64_MAX;
    if (v <= -9.2233720368547758e18)
        return INT64_MIN;
    return (int64_t)v;
}

/* ---- half precision -------------------------------------------------------------- */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float oq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    if (exp == 0x1F) /* inf / nan */
        return bits_f32(sign | 0x7F800000u | (mant << 13));
    if (exp == 0) { /* zero / subnormal: mant * 2^-24 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t oq_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) /* inf or nan (keep nan quiet) */
        return sign | 0x7C00 | (abs > 0x7F800000u ? 0x200 : 0);
    if (abs >= 0x477FF000u) /* rounds to >= 65520: overflow to inf */
        return sign | 0x7C00;
    if (abs < 0x38800000u) { /* below 2^-14: subnormal or zero in half */
        /* value / 2^-24, rounded to nearest even */
        float scaled = bits_f32(abs) * 16777216.0f;
        float r = nearbyintf(scaled);
        return sign | (uint16_t)r;
    }
    /* normal: drop 13 mantissa bits with round-to-nearest-even */
    uint32_t rounded = abs + 0xFFFu + ((abs >> 13) & 1u);
    return sign | (uint16_t)((rounded - 0x38000000u) >> 13);
}

float oq_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t oq_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* nan stays nan */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- broadcasting ---------------------------------------------------------------- */

oq_status oq_broadcast_shape(int n, const int *ranks, const int64_t *const *dims, int *out_rank,
                             int64_t *out_dims, oq_err *err)
{
    int rank = 0;
    for (int k = 0; k < n; k++) {
        if (ranks[k] > OQ_MAX_RANK)
            return oq_errf(err, OQ_EUNSUPPORTED, "rank %d is above %d", ranks[k], OQ_MAX_RANK);
        if (ranks[k] > rank)
            rank = ranks[k];
    }
    for (int i = 0; i < rank; i++) {
        int64_t d = 1;
        for (int k = 0; k < n; k++) {
            int j = i - (rank - ranks[k]);
            if (j < 0)
                continue;
            int64_t e = dims[k][j];
            if (e == d || e == 1)
                continue;
            if (d != 1)
                return oq_errf(err, OQ_EINVAL, "shapes cannot broadcast: dim %d is %lld in one input and %lld in another",
                               i, (long long)d, (long long)e);
            d = e;
        }
        out_dims[i] = d;
    }
    *out_rank = rank;
    return OQ_OK;
}

void oq_broadcast_strides(int rank, const int64_t *dims, int out_rank, const int64_t *out_dims,
                          int64_t *out_strides)
{
    int64_t stride = 1;
    for (int i = out_rank - 1; i >= 0; i--) {
        int j = i - (out_rank - rank);
        if (j < 0) {
            out_strides[i] = 0;
            continue;
        }
        out_strides[i] = (dims[j] == 1 && out_dims[i] != 1) ? 0 : stride;
        stride *= dims[j];
    }
}
