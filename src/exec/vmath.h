/* vmath.h: exp, sigmoid, tanh and erf for float loops the compiler vectorizes.
 * Internal to src/exec.
 *
 * libm's expf and erff are calls the compiler cannot vectorize; these are
 * plain arithmetic and bit moves, so a loop over them becomes vector code
 * (and, compiled per level with OQ_CLONED, gives the same bits at every
 * level, as the build keeps float arithmetic as written). Accuracy, measured
 * against double precision over dense grids of their whole range: exp within
 * 1 ulp, erf within 2.5 ulp (absolute error below 1.4e-7), tanh within 1.5 ulp.
 * NaN stays NaN. */
#ifndef ONNXQ_EXEC_VMATH_H
#define ONNXQ_EXEC_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The float whose bits are b, and the bits of f. */
static inline float oq_float_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline uint32_t oq_float_to_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* e^x: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two for an exact
 * product), e^r by Cephes' minimax polynomial, times 2^n applied in two
 * halves so every scale is a normal float. n is read from the bits of the
 * rounded float, never converted (NaN stays defined). Beyond the float range:
 * +inf above 88.72283, 0 below -87.33654 (where e^x is subnormal). */
static inline float oq_vexpf(float x)
{
    const float hi = 88.72283f, lo = -87.33654f, magic = 12582912.0f; /* 1.5 * 2^23: rounds to an integer */
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    float t = xc * 1.44269504f + magic, n = t - magic;
    float r = xc - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    uint32_t ni = oq_float_to_bits(t) - oq_float_to_bits(magic); /* n, two's complement */
    uint32_t n1 = (uint32_t)((int32_t)ni >> 1), n2 = ni - n1;
    float y = p * oq_float_from_bits((n1 + 127u) << 23) * oq_float_from_bits((n2 + 127u) << 23);
    y = x > hi ? INFINITY : y;
    return x < lo ? 0.0f : y;
}

/* 1 / (1 + e^-x). */
static inline float oq_vsigmoidf(float x) { return 1.0f / (1.0f + oq_vexpf(-x)); }

/* tanh(x): for |x| < 0.625 an odd polynomial (Cephes' tanhf coefficients),
 * above 1 - 2 / (e^2|x| + 1) with the sign of x (1 where e^2|x| overflows). */
static inline float oq_vtanhf(float x)
{
    float ax = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = x * (1.0f + p * z); /* (keeps the sign of -0) */
    float big = copysignf(1.0f - 2.0f / (oq_vexpf(2.0f * ax) + 1.0f), x);
    return ax < 0.625f ? small : big;
}

/* erf(x): for |x| <= 0.921875, x P(x^2) (degree 5); above, 1 - e^Q(|x|)
 * (Q of degree 6 fitting log erfc, clamped at |x| = 3.925, where erf rounds
 * to 1); the sign of x restored. Polynomials fitted for this function. */
static inline float oq_verff(float x)
{
    float a = fabsf(x), s = a * a;
    float p = -5.990891950e-4f;
    p = p * s + 4.993188661e-3f;
    p = p * s - 2.676662244e-2f;
    p = p * s + 1.128181666e-1f;
    p = p * s - 3.761249483e-1f;
    p = p * s + 1.128379107e+0f;
    float small = a * p;
    float ac = a > 3.925f ? 3.925f : a; /* NaN stays NaN */
    float q = 1.946572738e-4f;
    q = q * ac - 3.030910389e-3f;
    q = q * ac + 2.217890136e-2f;
    q = q * ac - 1.038342118e-1f;
    q = q * ac - 6.372905970e-1f;
    q = q * ac - 1.127612829e+0f;
    q = q * ac - 2.104827872e-4f;
    float big = 1.0f - oq_vexpf(q);
    return copysignf(a <= 0.921875f ? small : big, x);
}

#endif
