/* conv.h: float N-D convolution and transposed convolution, shared by the
 * Conv/ConvTranspose kernels, the unit tests and the quantizer. Internal to src.
 *
 * Layouts are ONNX's: x (n, cin, in...), y (n, cout, out...), Conv weights
 * (cout, cin/group, k...), ConvTranspose weights (cin, cout/group, k...). */
#ifndef ONNXQ_EXEC_CONV_H
#define ONNXQ_EXEC_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "exec/fuse.h"
#include "exec/kernel.h"

typedef struct oq_conv_params {
    int nsp;                          /* spatial rank, 1..OQ_MAX_RANK-2 */
    int64_t n, cin, cout, group;
    int64_t in[OQ_MAX_RANK - 2];      /* input spatial dims */
    int64_t out[OQ_MAX_RANK - 2];     /* output spatial dims */
    int64_t k[OQ_MAX_RANK - 2];       /* kernel spatial dims */
    int64_t stride[OQ_MAX_RANK - 2];
    int64_t dil[OQ_MAX_RANK - 2];
    int64_t pad0[OQ_MAX_RANK - 2];    /* padding before each spatial dim */
    int64_t pad1[OQ_MAX_RANK - 2];    /* padding after */
} oq_conv_params;

/* ---- Conv ----------------------------------------------------------------------- */

/* Plain nested loops over every output and tap: the oracle. b may be NULL. */
void oq_conv_ref(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p);

/* Floats of workspace oq_conv_fast needs when run in `parts` parallel parts. */
size_t oq_conv_ws_floats(const oq_conv_params *p, int parts);
/* Fast conv: depthwise and grouped with at most 32 output channels per group
 * direct for 1-D/2-D, 3x3 stride-1 by Winograd
 * F(4x4, 3x3) where it pays (winograd.h: about ten times the direct sum's
 * rounding, a few 1e-6 of the output's range), other 2-D stride-1 kernels
 * direct with 32-channel register tiles where they pay (conv_tile.h), 1x1
 * stride-1 as a GEMM on x, otherwise im2col tiles + GEMM. The work is cut into `parts` parts run with
 * oq_parallel_for on c (c == NULL runs them in turn on the caller). ws holds
 * oq_conv_ws_floats(p, parts) floats. The result does not depend on parts. */
void oq_conv_fast(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p,
                  oq_kernel_ctx *c, int parts, float *ws);

/* Floats of w packed for the GEMM (0 for the direct depthwise and grouped
 * convs, which read w as is). */
size_t oq_conv_packed_w_floats(const oq_conv_params *p);
/* Packs w into dst (oq_conv_packed_w_floats(p) floats), once for any number of calls. */
void oq_conv_pack_w(float *dst, const float *w, const oq_conv_params *p);
/* An elementwise function applied in place to n contiguous final outputs.
 * When fn is exactly one step of source 0 and constants (see fuse.h), step
 * (else NULL) describes it, and a kernel may instead compute that step's
 * float expression itself on outputs still in registers (Relu, Clip and
 * HardSwish in the depthwise kernel), with the same bits. */
typedef struct oq_conv_epilogue {
    void (*fn)(void *arg, float *y, int64_t n);
    void *arg;
    const oq_ew_step *step;
} oq_conv_epilogue;

/* oq_conv_fast with w already packed into wp by oq_conv_pack_w (the
 * depthwise path still reads w). Same ws, same results. ep (may be NULL) is
 * applied to each tile of y as soon as it is final, while it is still in
 * cache, instead of in another pass over y. */
void oq_conv_fast_packed(float *y, const float *x, const float *w, const float *wp, const float *b,
                         const oq_conv_params *p, oq_kernel_ctx *c, int parts, float *ws,
                         const oq_conv_epilogue *ep);

/* ---- ConvTranspose ---------------------------------------------------------------- */

size_t oq_conv_transpose_ws_floats(const oq_conv_params *p, int parts);
/* Transposed conv as GEMM (w^T x) + col2im, parallel over (batch, group,
 * output-channel block). Same conventions as oq_conv_fast; p->out must
 * already account for pads and output_padding. */
void oq_conv_transpose(float *y, const float *x, const float *w, const float *b, const oq_conv_params *p,
                       oq_kernel_ctx *c, int parts, float *ws);

#endif
