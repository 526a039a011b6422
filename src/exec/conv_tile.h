/* conv_tile.h: direct 2-D stride-1 convolution with a register tile of 32
 * output channels. Internal to src/exec; conv.c decides when to use it
 * (oq_ctile_fits) and calls it like its other paths.
 *
 * The weights are packed once, 32 output channels at a time, tap by tap
 * ((block, cin, kh, kw, 32), zeros past cout). An image is copied band of
 * rows by band into the workspace with its padding written out; a tile of up
 * to 14 output positions (up to 4 rows of a plane, or a piece of one row)
 * times 32 channels then stays in registers while every input channel and
 * tap adds to it: per tap, the 32 weights and one broadcast input per
 * position (AVX-512: the whole tile at once; AVX2, with half the registers:
 * three positions of a row at a time). The input is read once per 32 output channels, the weights
 * once per tile, and no column matrix is written, which is what makes it pay
 * on the few output channels and small planes where im2col + GEMM leaves its
 * strips half empty. An output does not depend on how the work is split. */
#ifndef ONNXQ_EXEC_CONV_TILE_H
#define ONNXQ_EXEC_CONV_TILE_H

#include <stdbool.h>
#include <stddef.h>

#include "exec/conv.h"

/* True when conv p is 2-D, ungrouped, stride 1 and of a shape this path
 * runs faster than im2col + GEMM (see conv_tile.c). Depends on the shape
 * only, so packing and running agree. */
bool oq_ctile_fits(const oq_conv_params *p);

/* Floats of p's weights packed for the tile kernel. */
size_t oq_ctile_packed_w_floats(const oq_conv_params *p);
/* Packs w (cout, cin, kh, kw) into dst (oq_ctile_packed_w_floats(p) floats). */
void oq_ctile_pack_w(float *dst, const float *w, const oq_conv_params *p);

/* Floats of workspace oq_ctile_conv needs when run in `parts` parts. */
size_t oq_ctile_ws_floats(const oq_conv_params *p, int parts);
/* y = conv(x, w) + b (b may be NULL) from the packed weights wp, in `parts`
 * parts on c's threads (c NULL: in turn on the caller); ep (may be NULL) is
 * applied to every band of output rows of a channel once it is final. */
void oq_ctile_conv(float *y, const float *x, const float *wp, const float *b, const oq_conv_params *p,
                   oq_kernel_ctx *c, int parts, float *ws, const oq_conv_epilogue *ep);

#endif
