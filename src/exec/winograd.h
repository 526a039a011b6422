/* winograd.h: 3x3 stride-1 convolution by Winograd's minimal filtering
 * F(4x4, 3x3) (Lavin and Gray, 2015). Internal to src/exec; conv.c decides
 * when to use it (oq_wino_fits) and calls it like its other paths.
 *
 * Each 4x4 output tile is A^T [(G g G^T) . (B^T d B)] A for the 6x6 input
 * patch d under it: per tile and channel pair, 36 multiplies instead of 144,
 * done as 36 GEMMs (one per point of the 6x6 transform domain) of the
 * transformed weights (cout x cin) by the transformed inputs (cin x tiles).
 * The transforms are plain float arithmetic compiled per level (the same bits
 * at every level); the GEMMs are oq_sgemm's. The transforms' rounding costs
 * about ten times the direct sum's: on real layers up to 7e-6 of the output's
 * largest magnitude against 3e-7 (bench/wino_error.py); the kernel harness
 * bounds each output at 64 ulps of its magnitude sum. An output does not
 * depend on how tiles are blocked or split across threads. */
#ifndef ONNXQ_EXEC_WINOGRAD_H
#define ONNXQ_EXEC_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>

#include "exec/conv.h"

/* True when conv p is a 2-D 3x3 stride-1 undilated ungrouped conv with
 * enough output tiles (16: 13x13 outputs) and channels (16 in and out) for
 * the transforms to pay. */
bool oq_wino_fits(const oq_conv_params *p);

/* Floats of p's weights transformed and packed for the GEMMs. */
size_t oq_wino_packed_w_floats(const oq_conv_params *p);
/* Transforms and packs w (cout, cin, 3, 3) into dst (oq_wino_packed_w_floats). */
void oq_wino_pack_w(float *dst, const float *w, const oq_conv_params *p);

/* Floats of workspace oq_wino_conv needs when run in `parts` parts. */
size_t oq_wino_ws_floats(const oq_conv_params *p, int parts);
/* y = conv(x, w) + b (b may be NULL) from the packed weights wp, in `parts`
 * parts on c's threads (c NULL: in turn on the caller); ep (may be NULL) is
 * applied to every output row once it is final. */
void oq_wino_conv(float *y, const float *x, const float *wp, const float *b, const oq_conv_params *p,
                  oq_kernel_ctx *c, int parts, float *ws, const oq_conv_epilogue *ep);

#endif
