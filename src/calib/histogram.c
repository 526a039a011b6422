/* histogram.c: growing histograms and the range methods computed from them
 * (minmax, percentile, entropy, mse). See oq_calib.h. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/float_key.h"
#include "cpu_dispatch.h"
#include "onnxq/oq_calib.h"

static const char *const method_names[OQ_CALIB_METHOD_COUNT] = {
    [OQ_CALIB_MINMAX] = "minmax",
    [OQ_CALIB_PERCENTILE] = "percentile",
    [OQ_CALIB_ENTROPY] = "entropy",
    [OQ_CALIB_MSE] = "mse",
};

const char *oq_calib_method_name(oq_calib_method m)
{
    return (unsigned)m < OQ_CALIB_METHOD_COUNT ? method_names[m] : "?";
}

oq_calib_method oq_calib_method_parse(const char *name)
{
    for (int m = 0; m < OQ_CALIB_METHOD_COUNT; m++)
        if (strcmp(name, method_names[m]) == 0)
            return (oq_calib_method)m;
    return OQ_CALIB_METHOD_COUNT;
}

/* ---- the histogram ------------------------------------------------------------ */

oq_status oq_hist_init(oq_hist *h, int nbins, oq_err *err)
{
    memset(h, 0, sizeof *h);
    if (nbins < 2 || nbins % 2 || nbins > (1 << 24))
        return oq_errf(err, OQ_EINVAL, "histogram bins must be an even number from 2 to %d, got %d", 1 << 24, nbins);
    h->counts = calloc((size_t)nbins, sizeof *h->counts);
    if (!h->counts)
        return oq_errf(err, OQ_ENOMEM, "out of memory for a %d-bin histogram", nbins);
    h->nbins = nbins;
    h->min = INFINITY;
    h->max = -INFINITY;
    return OQ_OK;
}

void oq_hist_release(oq_hist *h)
{
    if (!h)
        return;
    free(h->counts);
    memset(h, 0, sizeof *h);
}

/* Doubles the bin width keeping lo (grow right) or keeping hi (grow left):
 * pairs of bins merge exactly, half the bins become empty. */
static void hist_double(oq_hist *h, bool grow_left)
{
    int n = h->nbins, half = n / 2;
    double *c = h->counts;
    if (grow_left) {
        for (int j = half - 1; j >= 0; j--) /* new bin half+j = old 2j + 2j+1 */
            c[half + j] = c[2 * j] + c[2 * j + 1];
        for (int j = 0; j < half; j++)
            c[j] = 0;
        h->lo -= n * h->width;
    } else {
        for (int j = 0; j < half; j++)
            c[j] = c[2 * j] + c[2 * j + 1];
        for (int j = half; j < n; j++)
            c[j] = 0;
    }
    h->width *= 2;
}

/* ---- binning ---------------------------------------------------------------------
 *
 * A binning kernel takes a block of values and, in one vector pass, computes
 * the bin of each value and the order keys of the extremes (float_key), and
 * sets the exact zeros apart. Zeros (about half
 * of a tensor after a ReLU) are all in one bin, so they are only counted; the
 * bins of the other values are packed into k and counted one by one into four
 * 32-bit sub-histograms in turn, so runs of equal values do not wait on one
 * counter. The sub-histograms are scratch shared by every histogram of a
 * caller (oq_hist_add_scratch) and added to the double counts once per call,
 * over the bins the call touched only.
 *
 * Once a histogram has a range, a call bins and finds the extremes in that one
 * pass; only when a block holds a value outside the range (or NaN/Inf) does it
 * drop what it counted and go the careful way: scan for the extremes, grow the
 * range, bin. Either way every value lands in the same bin as it would with a
 * scan first, so the counts do not depend on the kernel or the path. */
enum { BIN_BLOCK = 256, BIN_SLACK = 16 };

/* The grid as the kernels see it: bin = (int)(((double)x - lo) * inv),
 * clamped to [0, last]. The vector kernels first try it in float, twice:
 * t_lo = x * inv_f - lo_inv_up and t_hi = x * inv_f - lo_inv_down (one FMA
 * each), with lo_inv_up/down = lo inv +/- m, m = 2^-21 (bins + |lo| inv + 1).
 * For a value inside the grid (t, the double result, in [0, bins)), t_lo and
 * t_hi are within 2^-23 (|t| + |lo| inv + m) of t - m and t + m (the
 * roundings of inv_f, of lo_inv_up/down and of the FMA; |x| inv is at most
 * |t| + |lo| inv), which is below m / 2, so t_lo < t < t_hi; truncation being
 * monotone, when t_lo and t_hi truncate alike t does too. That holds for all but a few values in a thousand; a
 * vector holding one is done in double. When m is 0.25 or more (|lo| inv
 * that large), lo_inv_up is NaN: t_lo truncates to INT32_MIN, never to t_hi's
 * bin, so every vector takes the double path. */
typedef struct bin_grid {
    double lo, inv;
    int last;
    float inv_f, lo_inv_up, lo_inv_down; /* see above; lo_inv_up NaN: float never used */
} bin_grid;

static bin_grid grid_of(const oq_hist *h)
{
    bin_grid g = {h->lo, 1.0 / h->width, h->nbins - 1, 0, NAN, 0};
    double margin = ldexp(h->nbins + fabs(h->lo) * g.inv + 1, -21);
    g.inv_f = (float)g.inv;
    g.lo_inv_down = (float)(h->lo * g.inv - margin);
    if (margin < 0.25)
        g.lo_inv_up = (float)(h->lo * g.inv + margin);
    return g;
}

/* What a kernel saw in the values it binned. A NaN or infinity shows as an
 * extreme outside every finite range. */
typedef struct bin_seen {
    int32_t key_min, key_max; /* float_key of the extremes */
    int64_t zeros;            /* values equal to 0 (either sign): not in k */
} bin_seen;

static const bin_seen bin_seen_none = {INT32_MAX, INT32_MIN, 0};

/* The bin of one value on g (any value: NaN and far values clamp). */
static inline int32_t bin_of(float x, const bin_grid *g)
{
    double t = ((double)x - g->lo) * g->inv;
    return !(t >= 0) ? 0 : t >= g->last ? g->last : (int32_t)t;
}

/* The plain kernel for one value (the reference for the vector ones): k[*m]
 * is written always, kept (*m advanced) unless x is a zero. */
static inline void bin_one(int32_t *k, int *m, float x, const bin_grid *g, bin_seen *s)
{
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t key = float_key(bits);
    s->key_min = key < s->key_min ? key : s->key_min;
    s->key_max = key > s->key_max ? key : s->key_max;
    k[*m] = bin_of(x, g);
    *m += x != 0;
}

/* bin_block_fn(k, x, n, g, s): bins x[0..n) (n <= BIN_BLOCK) on g, writes
 * the bins of the values that are not zeros to k[0..m) in order and returns
 * m; folds the extremes into *s (not the zeros: n - m). k has room for
 * BIN_BLOCK + BIN_SLACK. */
typedef int bin_block_fn(int32_t *k, const float *x, int n, const bin_grid *g, bin_seen *s);

static int bin_block_plain(int32_t *k, const float *x, int n, const bin_grid *g, bin_seen *s)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        bin_one(k, &m, x[i], g, s);
    return m;
}

#if OQ_X86_KERNELS
#include <immintrin.h>

/* pack_lanes[mask]: nibble j is the lane of mask's j-th set bit (AVX2 has no
 * compress instruction; a permutation does it). */
static const uint32_t pack_lanes[256] = {
    0x00000000, 0x00000000, 0x00000001, 0x00000010, 0x00000002, 0x00000020, 0x00000021, 0x00000210,
    0x00000003, 0x00000030, 0x00000031, 0x00000310, 0x00000032, 0x00000320, 0x00000321, 0x00003210,
    0x00000004, 0x00000040, 0x00000041, 0x00000410, 0x00000042, 0x00000420, 0x00000421, 0x00004210,
    0x00000043, 0x00000430, 0x00000431, 0x00004310, 0x00000432, 0x00004320, 0x00004321, 0x00043210,
    0x00000005, 0x00000050, 0x00000051, 0x00000510, 0x00000052, 0x00000520, 0x00000521, 0x00005210,
    0x00000053, 0x00000530, 0x00000531, 0x00005310, 0x00000532, 0x00005320, 0x00005321, 0x00053210,
    0x00000054, 0x00000540, 0x00000541, 0x00005410, 0x00000542, 0x00005420, 0x00005421, 0x00054210,
    0x00000543, 0x00005430, 0x00005431, 0x00054310, 0x00005432, 0x00054320, 0x00054321, 0x00543210,
    0x00000006, 0x00000060, 0x00000061, 0x00000610, 0x00000062, 0x00000620, 0x00000621, 0x00006210,
    0x00000063, 0x00000630, 0x00000631, 0x00006310, 0x00000632, 0x00006320, 0x00006321, 0x00063210,
    0x00000064, 0x00000640, 0x00000641, 0x00006410, 0x00000642, 0x00006420, 0x00006421, 0x00064210,
    0x00000643, 0x00006430, 0x00006431, 0x00064310, 0x00006432, 0x00064320, 0x00064321, 0x00643210,
    0x00000065, 0x00000650, 0x00000651, 0x00006510, 0x00000652, 0x00006520, 0x00006521, 0x00065210,
    0x00000653, 0x00006530, 0x00006531, 0x00065310, 0x00006532, 0x00065320, 0x00065321, 0x00653210,
    0x00000654, 0x00006540, 0x00006541, 0x00065410, 0x00006542, 0x00065420, 0x00065421, 0x00654210,
    0x00006543, 0x00065430, 0x00065431, 0x00654310, 0x00065432, 0x00654320, 0x00654321, 0x06543210,
    0x00000007, 0x00000070, 0x00000071, 0x00000710, 0x00000072, 0x00000720, 0x00000721, 0x00007210,
    0x00000073, 0x00000730, 0x00000731, 0x00007310, 0x00000732, 0x00007320, 0x00007321, 0x00073210,
    0x00000074, 0x00000740, 0x00000741, 0x00007410, 0x00000742, 0x00007420, 0x00007421, 0x00074210,
    0x00000743, 0x00007430, 0x00007431, 0x00074310, 0x00007432, 0x00074320, 0x00074321, 0x00743210,
    0x00000075, 0x00000750, 0x00000751, 0x00007510, 0x00000752, 0x00007520, 0x00007521, 0x00075210,
    0x00000753, 0x00007530, 0x00007531, 0x00075310, 0x00007532, 0x00075320, 0x00075321, 0x00753210,
    0x00000754, 0x00007540, 0x00007541, 0x00075410, 0x00007542, 0x00075420, 0x00075421, 0x00754210,
    0x00007543, 0x00075430, 0x00075431, 0x00754310, 0x00075432, 0x00754320, 0x00754321, 0x07543210,
    0x00000076, 0x00000760, 0x00000761, 0x00007610, 0x00000762, 0x00007620, 0x00007621, 0x00076210,
    0x00000763, 0x00007630, 0x00007631, 0x00076310, 0x00007632, 0x00076320, 0x00076321, 0x00763210,
    0x00000764, 0x00007640, 0x00007641, 0x00076410, 0x00007642, 0x00076420, 0x00076421, 0x00764210,
    0x00007643, 0x00076430, 0x00076431, 0x00764310, 0x00076432, 0x00764320, 0x00764321, 0x07643210,
    0x00000765, 0x00007650, 0x00007651, 0x00076510, 0x00007652, 0x00076520, 0x00076521, 0x00765210,
    0x00007653, 0x00076530, 0x00076531, 0x00765310, 0x00076532, 0x00765320, 0x00765321, 0x07653210,
    0x00007654, 0x00076540, 0x00076541, 0x00765410, 0x00076542, 0x00765420, 0x00765421, 0x07654210,
    0x00076543, 0x00765430, 0x00765431, 0x07654310, 0x00765432, 0x07654320, 0x07654321, 0x76543210,
};

__attribute__((target("avx2,fma,popcnt"))) static int bin_block_avx2(int32_t *k, const float *x, int n,
                                                                 const bin_grid *g, bin_seen *s)
{
    const __m256d lo = _mm256_set1_pd(g->lo), inv = _mm256_set1_pd(g->inv);
    const __m256 inv_f = _mm256_set1_ps(g->inv_f), up = _mm256_set1_ps(g->lo_inv_up);
    const __m256 down = _mm256_set1_ps(g->lo_inv_down);
    const __m256i last = _mm256_set1_epi32(g->last), magn = _mm256_set1_epi32(0x7fffffff);
    const __m256i nibble = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i kmin = _mm256_set1_epi32(INT32_MAX), kmax = _mm256_set1_epi32(INT32_MIN);
    int m = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256i bits = _mm256_castps_si256(v);
        __m256i key = _mm256_xor_si256(bits, _mm256_and_si256(_mm256_srai_epi32(bits, 31), magn));
        kmin = _mm256_min_epi32(kmin, key);
        kmax = _mm256_max_epi32(kmax, key);
        int nz = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));
        __m256i kk = _mm256_cvttps_epi32(_mm256_fmsub_ps(v, inv_f, up));
        __m256i k_hi = _mm256_cvttps_epi32(_mm256_fmsub_ps(v, inv_f, down));
        int safe = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(kk, k_hi)));
        if (nz & ~safe) {
            __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            __m128i k0 = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_sub_pd(d0, lo), inv));
            __m128i k1 = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_sub_pd(d1, lo), inv));
            kk = _mm256_inserti128_si256(_mm256_castsi128_si256(k0), k1, 1);
        }
        kk = _mm256_min_epi32(_mm256_max_epi32(kk, _mm256_setzero_si256()), last);
        __m256i perm = _mm256_srlv_epi32(_mm256_set1_epi32((int)pack_lanes[nz]), nibble);
        _mm256_storeu_si256((__m256i *)(k + m), _mm256_permutevar8x32_epi32(kk, perm));
        m += __builtin_popcount((unsigned)nz);
    }
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, kmin);
    for (int j = 0; j < 8; j++)
        s->key_min = lanes[j] < s->key_min ? lanes[j] : s->key_min;
    _mm256_storeu_si256((__m256i *)lanes, kmax);
    for (int j = 0; j < 8; j++)
        s->key_max = lanes[j] > s->key_max ? lanes[j] : s->key_max;
    for (; i < n; i++)
        bin_one(k, &m, x[i], g, s);
    return m;
}

__attribute__((target("avx512f,fma,popcnt"))) static int bin_block_avx512(int32_t *k, const float *x, int n,
                                                                     const bin_grid *g, bin_seen *s)
{
    const __m512d lo = _mm512_set1_pd(g->lo), inv = _mm512_set1_pd(g->inv);
    const __m512 inv_f = _mm512_set1_ps(g->inv_f), up = _mm512_set1_ps(g->lo_inv_up);
    const __m512 down = _mm512_set1_ps(g->lo_inv_down);
    const __m512i last = _mm512_set1_epi32(g->last), magn = _mm512_set1_epi32(0x7fffffff);
    __m512i kmin = _mm512_set1_epi32(INT32_MAX), kmax = _mm512_set1_epi32(INT32_MIN);
    int m = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512i bits = _mm512_castps_si512(v);
        __m512i key = _mm512_xor_si512(bits, _mm512_and_si512(_mm512_srai_epi32(bits, 31), magn));
        kmin = _mm512_min_epi32(kmin, key);
        kmax = _mm512_max_epi32(kmax, key);
        __mmask16 nz = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        __m512i kk = _mm512_cvttps_epi32(_mm512_fmsub_ps(v, inv_f, up));
        __m512i k_hi = _mm512_cvttps_epi32(_mm512_fmsub_ps(v, inv_f, down));
        __mmask16 safe = _mm512_cmpeq_epi32_mask(kk, k_hi);
        if (nz & ~safe) {
            __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
            __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), d1 = _mm512_cvtps_pd(hi);
            __m256i k0 = _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_sub_pd(d0, lo), inv));
            __m256i k1 = _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_sub_pd(d1, lo), inv));
            kk = _mm512_inserti64x4(_mm512_castsi256_si512(k0), k1, 1);
        }
        kk = _mm512_min_epi32(_mm512_max_epi32(kk, _mm512_setzero_si512()), last);
        _mm512_storeu_si512(k + m, _mm512_maskz_compress_epi32(nz, kk));
        m += __builtin_popcount(nz);
    }
    int32_t kmin_s = _mm512_reduce_min_epi32(kmin), kmax_s = _mm512_reduce_max_epi32(kmax);
    s->key_min = kmin_s < s->key_min ? kmin_s : s->key_min;
    s->key_max = kmax_s > s->key_max ? kmax_s : s->key_max;
    for (; i < n; i++)
        bin_one(k, &m, x[i], g, s);
    return m;
}
#endif

/* The binning kernel of each level and its name. */
static const struct {
    bin_block_fn *fn;
    const char *name;
} bin_impls[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = {bin_block_plain, "plain"},
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = {bin_block_avx2, "avx2"},
    [OQ_ISA_AVX512] = {bin_block_avx512, "avx512"},
#endif
};

static int chosen_bin_impl(void) { return oq_isa_pick(OQ_ISA_HAVE(bin_impls, .fn)); }

const char *oq_hist_impl_name(void) { return bin_impls[chosen_bin_impl()].name; }

const char *oq_hist_variant(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? bin_impls[isa].name : NULL; }

/* Bins x[0..n) on h's grid: into sub (four sub-histograms of h->nbins) or,
 * when sub is NULL, straight into h->counts; the zeros are left in
 * seen->zeros for flush_bins. With check, stops at the first block holding a
 * value that is NaN/Inf or outside the grid and returns false, having
 * counted only the blocks before it; *seen covers the blocks counted. */
static bool bin_values(oq_hist *h, const float *x, int64_t n, uint32_t *sub, bool check, bin_seen *seen)
{
    bin_block_fn *bin_block = bin_impls[chosen_bin_impl()].fn;
    const bin_grid g = grid_of(h);
    const double hi = h->lo + h->nbins * h->width;
    int32_t k[BIN_BLOCK + BIN_SLACK];
    uint32_t *s0 = sub, *s1 = NULL, *s2 = NULL, *s3 = NULL;
    if (sub) {
        s1 = sub + h->nbins;
        s2 = s1 + h->nbins;
        s3 = s2 + h->nbins;
    }
    *seen = bin_seen_none;
    for (int64_t i = 0; i < n; i += BIN_BLOCK) {
        int len = n - i < BIN_BLOCK ? (int)(n - i) : BIN_BLOCK;
        bin_seen b = bin_seen_none;
        int m = bin_block(k, x + i, len, &g, &b);
        if (check && !(float_of_key(b.key_min) >= h->lo && float_of_key(b.key_max) < hi))
            return false; /* (NaN compares false) */
        seen->key_min = b.key_min < seen->key_min ? b.key_min : seen->key_min;
        seen->key_max = b.key_max > seen->key_max ? b.key_max : seen->key_max;
        seen->zeros += len - m;
        int j = 0;
        if (!sub) {
            for (; j < m; j++)
                h->counts[k[j]] += 1;
            continue;
        }
        for (; j + 4 <= m; j += 4) {
            s0[k[j]]++;
            s1[k[j + 1]]++;
            s2[k[j + 2]]++;
            s3[k[j + 3]]++;
        }
        for (; j < m; j++)
            s0[k[j]]++;
    }
    return true;
}

/* Moves what bin_values counted into h->counts (add) or drops it (!add):
 * the sub-histogram bins between the bins of seen's extremes (every bin the
 * values fell in) are zeroed either way. */
static void flush_bins(oq_hist *h, uint32_t *sub, const bin_seen *seen, bool add)
{
    if (seen->key_min > seen->key_max)
        return; /* nothing was binned */
    const bin_grid g = grid_of(h);
    int kmin = bin_of(float_of_key(seen->key_min), &g), kmax = bin_of(float_of_key(seen->key_max), &g);
    if (add && seen->zeros)
        h->counts[bin_of(0.0f, &g)] += (double)seen->zeros;
    if (!sub)
        return;
    const uint32_t *s0 = sub, *s1 = sub + h->nbins, *s2 = s1 + h->nbins, *s3 = s2 + h->nbins;
    for (int b = kmin; add && b <= kmax; b++) /* (each below 2^31) */
        h->counts[b] += ((double)(int32_t)s0[b] + (int32_t)s1[b]) + ((double)(int32_t)s2[b] + (int32_t)s3[b]);
    for (int l = 0; l < 4; l++)
        memset(sub + (size_t)l * h->nbins + kmin, 0, (size_t)(kmax - kmin + 1) * sizeof *sub);
}

/* Adds the finite values of x[0..n) to the bins (the range already covers
 * them), one at a time: for the rare tensor with NaN or Inf values. */
static void bin_some_finite(oq_hist *h, const float *x, int64_t n)
{
    const bin_grid g = grid_of(h);
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            h->counts[bin_of(x[i], &g)] += 1;
}

/* Extremes and non-finite count of x[0..n) in one pass that vectorizes. Exact
 * for the finite values when none is NaN or infinite. */
static inline __attribute__((always_inline)) int64_t scan_body(const float *x, int64_t n, float *pmin, float *pmax)
{
    int32_t kmin = INT32_MAX, kmax = INT32_MIN;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t b;
        memcpy(&b, &x[i], sizeof b);
        nonfinite += (b & 0x7f800000) == 0x7f800000;
        int32_t key = float_key(b);
        kmin = key < kmin ? key : kmin;
        kmax = key > kmax ? key : kmax;
    }
    *pmin = float_of_key(kmin);
    *pmax = float_of_key(kmax);
    return nonfinite;
}

typedef int64_t scan_fn(const float *x, int64_t n, float *pmin, float *pmax);

static int64_t scan_plain(const float *x, int64_t n, float *pmin, float *pmax)
{
    return scan_body(x, n, pmin, pmax);
}

#if OQ_X86_KERNELS
__attribute__((target("avx2"))) static int64_t scan_avx2(const float *x, int64_t n, float *pmin, float *pmax)
{
    return scan_body(x, n, pmin, pmax);
}
#endif

static scan_fn *const scans[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = scan_plain,
#if OQ_X86_KERNELS
    [OQ_ISA_AVX2] = scan_avx2,
#endif
};

/* Exact extremes of the finite values of x[0..n) (n > 0) and their count. */
static int64_t scan_finite(const float *x, int64_t n, float *pmin, float *pmax)
{
    int64_t nonfinite = scans[oq_isa_pick(OQ_ISA_HAVE(scans, ))](x, n, pmin, pmax);
    if (nonfinite) { /* rare: redo it carefully */
        float mn = INFINITY, mx = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            if (isfinite(x[i])) {
                mn = x[i] < mn ? x[i] : mn;
                mx = x[i] > mx ? x[i] : mx;
            }
        *pmin = mn;
        *pmax = mx;
    }
    return n - nonfinite;
}

/* Folds finite values' extremes and count into h's. */
static void note_extremes(oq_hist *h, float bmin, float bmax, int64_t finite)
{
    h->count += (double)finite;
    if (bmin < h->min)
        h->min = bmin;
    if (bmax > h->max)
        h->max = bmax;
}

/* The careful way: extremes first, then the range grown to cover them, then
 * the bins (sub: NULL or zeroed scratch, as for bin_values). */
static void add_scanned(oq_hist *h, const float *x, int64_t n, uint32_t *sub)
{
    float bmin, bmax;
    int64_t finite = scan_finite(x, n, &bmin, &bmax);
    h->nonfinite += (double)(n - finite);
    if (!finite)
        return;
    note_extremes(h, bmin, bmax, finite);
    if (h->width == 0) {
        double span = (double)bmax - (double)bmin;
        double floor_width = fmax(fabs((double)bmin), 1.0) * 1e-7 / h->nbins;
        h->lo = bmin;
        h->width = fmax(span / h->nbins * (1 + 1e-9), floor_width);
    }
    while (bmin < h->lo)
        hist_double(h, true);
    while (bmax >= h->lo + h->nbins * h->width)
        hist_double(h, false);
    if (finite < n) {
        bin_some_finite(h, x, n);
        return;
    }
    /* a 32-bit counter sees at most 2^31 values between flushes */
    for (int64_t i = 0; i < n; i += (int64_t)1 << 31) {
        int64_t len = n - i < ((int64_t)1 << 31) ? n - i : (int64_t)1 << 31;
        bin_seen seen;
        bin_values(h, x + i, len, sub, false, &seen);
        flush_bins(h, sub, &seen, true);
    }
}

void oq_hist_add_scratch(oq_hist *h, const float *x, int64_t n, uint32_t *sub)
{
    if (n <= 0)
        return;
    if (sub && h->width > 0 && n <= ((int64_t)1 << 31)) {
        bin_seen seen;
        bool inside = bin_values(h, x, n, sub, true, &seen);
        flush_bins(h, sub, &seen, inside);
        if (inside) {
            note_extremes(h, float_of_key(seen.key_min), float_of_key(seen.key_max), n);
            return;
        }
    }
    add_scanned(h, x, n, sub);
}

void oq_hist_add(oq_hist *h, const float *x, int64_t n)
{
    uint32_t *sub = n >= 256 ? calloc(oq_hist_scratch_size(h->nbins), sizeof *sub) : NULL;
    oq_hist_add_scratch(h, x, n, sub);
    free(sub);
}

size_t oq_hist_scratch_size(int nbins) { return (size_t)nbins * 4; }

/* Adds src's bins into dst when each falls wholly into one of dst's (dst's
 * width a power-of-two multiple of src's, the edges on a common lattice, as
 * for histograms restarted from one grid): the counts stay whole. Returns
 * false, adding nothing, when the grids do not line up. */
static bool add_aligned(oq_hist *dst, const oq_hist *src)
{
    double ratio = dst->width / src->width, offset = (src->lo - dst->lo) / src->width;
    if (!(ratio >= 0.5 && ratio < 1e9 && fabs(offset) < 1e15))
        return false;
    int64_t r = llround(ratio), o = llround(offset);
    if ((r & (r - 1)) != 0 || fabs(ratio - (double)r) > 1e-9 * (double)r || fabs(offset - (double)o) > 1e-6)
        return false;
    for (int i = 0; i < src->nbins; i++) {
        if (src->counts[i] == 0)
            continue;
        int64_t at = o + i, k = at >= 0 ? at / r : -((-at + r - 1) / r);
        dst->counts[k < 0 ? 0 : k >= dst->nbins ? dst->nbins - 1 : k] += src->counts[i];
    }
    return true;
}

/* Adds src's bins into dst by spreading each over the dst bins it overlaps,
 * in proportion to the overlap. */
static void add_spread(oq_hist *dst, const oq_hist *src)
{
    for (int i = 0; i < src->nbins; i++) {
        double c = src->counts[i];
        if (c == 0)
            continue;
        double a = src->lo + i * src->width, b = a + src->width;
        int k0 = (int)floor((a - dst->lo) / dst->width), k1 = (int)floor((b - dst->lo) / dst->width);
        for (int k = k0; k <= k1; k++) {
            int kk = k < 0 ? 0 : k >= dst->nbins ? dst->nbins - 1 : k;
            double l = dst->lo + k * dst->width, r = l + dst->width;
            double overlap = fmin(b, r) - fmax(a, l);
            if (overlap > 0)
                dst->counts[kk] += c * overlap / src->width;
        }
    }
}

void oq_hist_restart(oq_hist *h, const oq_hist *grid)
{
    memset(h->counts, 0, (size_t)h->nbins * sizeof *h->counts);
    h->lo = grid && grid->nbins == h->nbins ? grid->lo : 0;
    h->width = grid && grid->nbins == h->nbins ? grid->width : 0;
    h->min = INFINITY;
    h->max = -INFINITY;
    h->count = 0;
    h->nonfinite = 0;
}

oq_status oq_hist_merge(oq_hist *dst, const oq_hist *src, oq_err *err)
{
    if (dst->nbins != src->nbins)
        return oq_errf(err, OQ_EINVAL, "cannot merge histograms of %d and %d bins", dst->nbins, src->nbins);
    dst->nonfinite += src->nonfinite;
    if (src->width == 0 || src->count == 0)
        return OQ_OK;
    if (dst->width == 0) {
        memcpy(dst->counts, src->counts, (size_t)src->nbins * sizeof *src->counts);
        dst->lo = src->lo;
        dst->width = src->width;
        dst->min = src->min;
        dst->max = src->max;
        dst->count = src->count;
        return OQ_OK;
    }
    dst->count += src->count;
    dst->min = fmin(dst->min, src->min);
    dst->max = fmax(dst->max, src->max);
    double src_hi = src->lo + src->nbins * src->width;
    while (src->width > dst->width * 1.000001 && dst->width * 2 <= src->width * 1.000001)
        hist_double(dst, false); /* coarsen dst to at least src's resolution */
    while (src->lo < dst->lo)
        hist_double(dst, true);
    while (src_hi > dst->lo + dst->nbins * dst->width)
        hist_double(dst, false);
    if (!add_aligned(dst, src))
        add_spread(dst, src);
    return OQ_OK;
}

/* ---- range methods -------------------------------------------------------------- */

/* Value below which a fraction q of the counts lies (linear within a bin). */
static double hist_quantile(const oq_hist *h, double q)
{
    double target = q * h->count, acc = 0;
    for (int i = 0; i < h->nbins; i++) {
        double c = h->counts[i];
        if (c > 0 && acc + c >= target) {
            double v = h->lo + (i + (target - acc) / c) * h->width;
            return fmin(fmax(v, h->min), h->max);
        }
        acc += c;
    }
    return h->max;
}

/* Folds h into `n` bins of |x| over [0, amax]; returns amax. */
static double fold_abs(const oq_hist *h, double *abs_bins, int n)
{
    double amax = fmax(fabs(h->min), fabs(h->max));
    memset(abs_bins, 0, (size_t)n * sizeof *abs_bins);
    if (amax == 0)
        return 0;
    for (int i = 0; i < h->nbins; i++) {
        if (h->counts[i] == 0)
            continue;
        double centre = fabs(h->lo + (i + 0.5) * h->width);
        double pos = centre / amax * n; /* past n when bins reach beyond [min, max] */
        abs_bins[pos >= n ? n - 1 : (int)pos] += h->counts[i];
    }
    return amax;
}

/* Smallest t with a fraction q of |x| at or below t. */
static double abs_quantile(const double *bins, int n, double amax, double total, double q)
{
    double target = q * total, acc = 0;
    for (int i = 0; i < n; i++) {
        if (bins[i] > 0 && acc + bins[i] >= target)
            return (i + (target - acc) / bins[i]) * amax / n;
        acc += bins[i];
    }
    return amax;
}

/* KL divergence between P, the first i bins with the mass beyond them
 * (`tail`) folded into bin i-1, and Q, the unclipped bins[0..i) merged into
 * `levels` groups with each group's mass spread evenly over the bins where P
 * is nonzero: what quantizing to `levels` steps with threshold i loses.
 * p and qd are scratch of n entries. */
static double kl_at(const double *bins, int i, double tail, int levels, double *p, double *qd)
{
    memcpy(p, bins, (size_t)i * sizeof *p);
    p[i - 1] += tail;
    for (int g = 0; g < levels; g++) {
        int a = (int)((int64_t)g * i / levels), b = (int)((int64_t)(g + 1) * i / levels);
        double mass = 0;
        int nonzero = 0;
        for (int k = a; k < b; k++) {
            mass += bins[k];
            nonzero += p[k] > 0;
        }
        for (int k = a; k < b; k++)
            qd[k] = p[k] > 0 ? mass / nonzero : 0;
    }
    double sp = 0, sq = 0;
    for (int k = 0; k < i; k++) {
        sp += p[k];
        sq += qd[k];
    }
    double kl = 0;
    for (int k = 0; k < i && sp > 0 && sq > 0; k++) {
        if (p[k] <= 0)
            continue;
        double pk = p[k] / sp, qk = qd[k] / sq;
        kl += pk * log(pk / fmax(qk, 1e-4 * pk)); /* floor where Q lost P's tail bin */
    }
    return kl;
}

/* KL-divergence threshold search over |x| bins, after TensorRT's calibrator:
 * the candidate threshold (in bins, from `levels` to n) of least kl_at. A
 * coarse pass over about 128 evenly spaced candidates, then every candidate
 * around the best coarse one, keeps the cost near O(bins) per tensor. */
static double entropy_threshold(const double *bins, int n, double amax, int levels)
{
    if (levels < 1 || n <= levels)
        return amax;
    double *p = malloc((size_t)n * sizeof *p), *qd = malloc((size_t)n * sizeof *qd);
    double *tail = malloc((size_t)(n + 1) * sizeof *tail); /* tail[i] = mass of bins i.. */
    if (!p || !qd || !tail) {
        free(p);
        free(qd);
        free(tail);
        return amax;
    }
    tail[n] = 0;
    for (int i = n - 1; i >= 0; i--)
        tail[i] = tail[i + 1] + bins[i];
    int step = (n - levels) / 128 > 1 ? (n - levels) / 128 : 1, best = n;
    double best_kl = INFINITY;
    for (int i = levels; i <= n; i += step) {
        double kl = kl_at(bins, i, tail[i], levels, p, qd);
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    int lo = best - step > levels ? best - step : levels, hi = best + step < n ? best + step : n;
    for (int i = lo; step > 1 && i <= hi; i++) {
        double kl = kl_at(bins, i, tail[i], levels, p, qd);
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    free(p);
    free(qd);
    free(tail);
    return (double)best * amax / n;
}

/* Expected squared error of quantizing h to [lo, hi] on qmin..qmax (bin centres). */
static double quant_error(const oq_hist *h, double lo, double hi, int qmin, int qmax)
{
    double scale = (hi - lo) / (qmax - qmin);
    if (scale <= 0)
        return INFINITY;
    double zp = nearbyint(qmin - lo / scale), err = 0;
    for (int i = 0; i < h->nbins; i++) {
        if (h->counts[i] == 0)
            continue;
        double x = h->lo + (i + 0.5) * h->width;
        double q = fmin(fmax(nearbyint(x / scale) + zp, qmin), qmax);
        double d = x - (q - zp) * scale;
        err += h->counts[i] * d * d;
    }
    return err;
}

oq_status oq_hist_range(const oq_hist *h, const oq_range_options *opt, double *lo_out, double *hi_out, oq_err *err)
{
    double lo = 0, hi = 0;
    *lo_out = *hi_out = 0;
    if (h->width == 0 || h->count <= 0)
        return OQ_OK;
    int abs_n = h->nbins;
    double *abs_bins = NULL;
    /* percentile of |x| and entropy work on the histogram folded onto |x| */
    bool folded = opt->method == OQ_CALIB_ENTROPY || (opt->method == OQ_CALIB_PERCENTILE && opt->symmetric);
    if (folded && !(abs_bins = malloc((size_t)abs_n * sizeof *abs_bins)))
        return oq_errf(err, OQ_ENOMEM, "out of memory choosing a range");
    switch (opt->method) {
    case OQ_CALIB_MINMAX:
    case OQ_CALIB_METHOD_COUNT:
        lo = h->min;
        hi = h->max;
        break;
    case OQ_CALIB_PERCENTILE: {
        double q = opt->percentile / 100.0;
        if (opt->symmetric) {
            double amax = fold_abs(h, abs_bins, abs_n);
            hi = abs_quantile(abs_bins, abs_n, amax, h->count, q);
            lo = -hi;
        } else {
            lo = h->min < 0 ? hist_quantile(h, 1 - q) : h->min;
            hi = h->max > 0 ? hist_quantile(h, q) : h->max;
        }
        break;
    }
    case OQ_CALIB_ENTROPY: {
        double amax = fold_abs(h, abs_bins, abs_n);
        bool one_sided = h->min >= 0 && !opt->symmetric;
        int levels = one_sided ? (opt->qmax - opt->qmin + 1) : (opt->qmax - opt->qmin + 1) / 2;
        double t = entropy_threshold(abs_bins, abs_n, amax, levels);
        lo = opt->symmetric ? -t : fmax(h->min, -t);
        hi = opt->symmetric ? t : fmin(h->max, t);
        break;
    }
    case OQ_CALIB_MSE: {
        /* coordinate descent: best upper clip for the current lower one, then
         * the reverse; each side tries 100 shrink factors of the observed extreme */
        double amax = fmax(fabs(h->min), fabs(h->max));
        lo = opt->symmetric ? -amax : fmin(h->min, 0);
        hi = opt->symmetric ? amax : fmax(h->max, 0);
        double best = quant_error(h, lo, hi, opt->qmin, opt->qmax);
        for (int round = 0; round < (opt->symmetric ? 1 : 3); round++) {
            for (int side = 0; side < 2; side++) {
                double base = side ? fmin(h->min, 0) : fmax(h->max, 0);
                if (opt->symmetric)
                    base = amax;
                for (int step = 1; step < 100 && base != 0; step++) {
                    double a = 1.0 - step * 0.0099; /* down to 2% of the extreme */
                    double l = opt->symmetric ? -base * a : side ? base * a : lo;
                    double r = opt->symmetric ? base * a : side ? hi : base * a;
                    double e = quant_error(h, l, r, opt->qmin, opt->qmax);
                    if (e < best) {
                        best = e;
                        lo = l;
                        hi = r;
                    }
                }
                if (opt->symmetric)
                    break;
            }
        }
        break;
    }
    }
    free(abs_bins);
    if (opt->symmetric) {
        double a = fmax(fabs(lo), fabs(hi));
        lo = -a;
        hi = a;
    }
    *lo_out = fmin(lo, 0);
    *hi_out = fmax(hi, 0);
    return OQ_OK;
}
