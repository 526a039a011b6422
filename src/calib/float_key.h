/* float_key.h: order keys of floats, shared by the histogram and the
 * per-channel extremes. A float's bits with the magnitude bits flipped for
 * negative values order as int32 the way the floats do (-0 just below +0),
 * so min/max become integer reductions that vectorize; float_of_key undoes
 * it. */
#ifndef OQ_CALIB_FLOAT_KEY_H
#define OQ_CALIB_FLOAT_KEY_H

#include <stdint.h>
#include <string.h>

static inline int32_t float_key(int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }

static inline float float_of_key(int32_t key)
{
    int32_t bits = float_key(key);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif
