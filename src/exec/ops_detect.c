/* ops_detect.c: the object-detection kernels that detector exports carry
 * after their last convolution: NonMaxSuppression and RoiAlign (float).
 * Both follow ONNX Runtime's CPU kernels where the specification leaves room:
 * NonMaxSuppression's order among equal scores (lower box index first) and
 * its IoU arithmetic, RoiAlign's sampling grid and its max mode (the largest
 * weighted corner, not the largest interpolated value). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/ops.h"
#include "exec/ops_common.h"

/* ---- NonMaxSuppression ------------------------------------------------------- */

/* One candidate box of one (batch, class): its score, index and corners as
 * [y_min, x_min, y_max, x_max], with its area computed once. */
typedef struct nms_box {
    float score;
    int64_t index;
    float c[4];
    float area;
} nms_box;

/* Fills b from the 4 numbers at p in the node's box format: corners in any
 * order (center_point_box 0) or [x_center, y_center, width, height] (1). */
static void nms_box_set(nms_box *b, const float *p, int center_point_box)
{
    if (!center_point_box) {
        b->c[0] = p[0] < p[2] ? p[0] : p[2];
        b->c[2] = p[0] < p[2] ? p[2] : p[0];
        b->c[1] = p[1] < p[3] ? p[1] : p[3];
        b->c[3] = p[1] < p[3] ? p[3] : p[1];
        b->area = (b->c[2] - b->c[0]) * (b->c[3] - b->c[1]);
    } else {
        const float hw = p[2] / 2, hh = p[3] / 2;
        b->c[1] = p[0] - hw;
        b->c[3] = p[0] + hw;
        b->c[0] = p[1] - hh;
        b->c[2] = p[1] + hh;
        b->area = p[2] * p[3];
    }
}

/* True when a and b overlap by more than iou_threshold (intersection over
 * union); boxes that do not overlap never suppress each other. */
static bool nms_suppresses(const nms_box *a, const nms_box *b, float iou_threshold)
{
    const float x0 = a->c[1] > b->c[1] ? a->c[1] : b->c[1];
    const float x1 = a->c[3] < b->c[3] ? a->c[3] : b->c[3];
    if (x1 <= x0)
        return false;
    const float y0 = a->c[0] > b->c[0] ? a->c[0] : b->c[0];
    const float y1 = a->c[2] < b->c[2] ? a->c[2] : b->c[2];
    if (y1 <= y0)
        return false;
    const float inter = (x1 - x0) * (y1 - y0);
    if (inter <= 0.0f)
        return false;
    return inter / (a->area + b->area - inter) > iou_threshold;
}

/* Orders candidates by score, highest first, then by box index, lowest first
 * (a total order, so qsort's instability cannot show). */
static int nms_order(const void *pa, const void *pb)
{
    const nms_box *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Reads the optional scalar input k of type dt into *out; false (c->err set)
 * when it is present but not one element of that type. */
static bool nms_scalar(oq_kernel_ctx *c, int k, oq_dtype dt, void *out, const char *what)
{
    const oq_tensor *t = oq_kernel_input(c, k);
    if (!t)
        return true;
    if (t->dtype != dt || oq_tensor_numel(t) != 1) {
        OQ_KERR(c, "%s must be one %s", what, oq_dtype_name(dt));
        return false;
    }
    memcpy(out, t->data, dt == OQ_DTYPE_INT64 ? sizeof(int64_t) : sizeof(float));
    return true;
}

/* NonMaxSuppression-10/11: boxes [B, N, 4], scores [B, C, N] (float), then the
 * optional max_output_boxes_per_class (int64, default 0: nothing selected),
 * iou_threshold and score_threshold (float; a box is a candidate only when
 * its score is above the latter). Output [M, 3] int64 rows (batch, class,
 * box), by batch, then class, then selection order. */
static oq_status k_non_max_suppression(oq_kernel_ctx *c)
{
    const oq_tensor *boxes = oq_kernel_require(c, 0), *scores = oq_kernel_require(c, 1);
    if (!boxes || !scores)
        return c->err->status;
    if (boxes->dtype != OQ_DTYPE_FLOAT || scores->dtype != OQ_DTYPE_FLOAT)
        return OQ_KUNSUP(c, "boxes and scores of type %s are not supported", oq_dtype_name(boxes->dtype));
    if (boxes->rank != 3 || scores->rank != 3 || boxes->dims[2] != 4)
        return OQ_KERR(c, "boxes must be [batches, boxes, 4] and scores [batches, classes, boxes]");
    if (boxes->dims[0] != scores->dims[0] || boxes->dims[1] != scores->dims[2])
        return OQ_KERR(c, "boxes [%lld, %lld, 4] and scores [%lld, %lld, %lld] disagree",
                       (long long)boxes->dims[0], (long long)boxes->dims[1], (long long)scores->dims[0],
                       (long long)scores->dims[1], (long long)scores->dims[2]);
    int64_t max_out = 0;
    float iou_threshold = 0.0f, score_threshold = 0.0f;
    if (!nms_scalar(c, 2, OQ_DTYPE_INT64, &max_out, "max_output_boxes_per_class") ||
        !nms_scalar(c, 3, OQ_DTYPE_FLOAT, &iou_threshold, "iou_threshold") ||
        !nms_scalar(c, 4, OQ_DTYPE_FLOAT, &score_threshold, "score_threshold"))
        return c->err->status;
    if (!(iou_threshold >= 0.0f && iou_threshold <= 1.0f))
        return OQ_KERR(c, "iou_threshold %g is not in [0, 1]", (double)iou_threshold);
    const int center_point_box = (int)oq_node_attr_int(c->node, "center_point_box", 0);
    if (center_point_box != 0 && center_point_box != 1)
        return OQ_KERR(c, "center_point_box is %d, not 0 or 1", center_point_box);
    const bool thresholded = oq_kernel_input(c, 4) != NULL;
    const int64_t nb = boxes->dims[0], nc = scores->dims[1], n = boxes->dims[1];
    if (max_out < 0)
        max_out = 0;
    const int64_t per_class = max_out < n ? max_out : n;

    /* candidates of one (batch, class), then the selection of all of them */
    nms_box *cand = oq_kernel_scratch_raw(c, (size_t)(n ? n : 1) * sizeof *cand);
    int64_t *sel = oq_kernel_scratch_raw(c, (size_t)(nb * nc * per_class * 3 + 1) * sizeof *sel);
    if (!cand || !sel)
        return c->err->status;
    int64_t total = 0;
    for (int64_t b = 0; b < nb; b++) {
        const float *bx = (const float *)boxes->data + b * n * 4;
        for (int64_t k = 0; k < nc && per_class > 0; k++) {
            const float *sc = (const float *)scores->data + (b * nc + k) * n;
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++)
                if (!thresholded || sc[i] > score_threshold) {
                    cand[m].score = sc[i];
                    cand[m].index = i;
                    nms_box_set(&cand[m], bx + i * 4, center_point_box);
                    m++;
                }
            qsort(cand, (size_t)m, sizeof *cand, nms_order);
            /* the kept boxes of this class are moved to the front of cand */
            int64_t kept = 0;
            for (int64_t i = 0; i < m && kept < per_class; i++) {
                bool keep = true;
                for (int64_t j = 0; j < kept && keep; j++)
                    keep = !nms_suppresses(&cand[i], &cand[j], iou_threshold);
                if (!keep)
                    continue;
                cand[kept++] = cand[i];
                sel[total * 3] = b;
                sel[total * 3 + 1] = k;
                sel[total * 3 + 2] = cand[kept - 1].index;
                total++;
            }
        }
    }
    const int64_t dims[2] = {total, 3};
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_INT64, 2, dims);
    if (!y)
        return c->err->status;
    if (total)
        memcpy(y->data, sel, (size_t)total * 3 * sizeof *sel);
    return OQ_OK;
}

/* ---- RoiAlign ------------------------------------------------------------------ */

/* One bilinear sample: four flat positions in a [H, W] plane and their weights
 * (all zero for a sample outside the plane). */
typedef struct roi_sample {
    int64_t pos[4];
    float w[4];
} roi_sample;

/* The most bilinear samples one ROI may take (48 bytes each). */
#define ROI_MAX_SAMPLES (1 << 22)

/* The sample at (y, x) of a [h, w] plane, clamped as ONNX Runtime clamps. */
static roi_sample roi_sample_at(float y, float x, int64_t h, int64_t w)
{
    roi_sample s = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    if (!(y >= -1.0f && y <= (float)h && x >= -1.0f && x <= (float)w)) /* also NaN */
        return s;
    if (y <= 0)
        y = 0;
    if (x <= 0)
        x = 0;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= h - 1) {
        y1 = y0 = h - 1;
        y = (float)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= w - 1) {
        x1 = x0 = w - 1;
        x = (float)x0;
    } else {
        x1 = x0 + 1;
    }
    const float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    s.pos[0] = y0 * w + x0;
    s.pos[1] = y0 * w + x1;
    s.pos[2] = y1 * w + x0;
    s.pos[3] = y1 * w + x1;
    s.w[0] = hy * hx;
    s.w[1] = hy * lx;
    s.w[2] = ly * hx;
    s.w[3] = ly * lx;
    return s;
}

/* RoiAlign-10/16: X [N, C, H, W] float, rois [R, 4] as (x1, y1, x2, y2) in
 * the input image's coordinates (times spatial_scale), batch_indices [R]
 * int64 -> [R, C, output_height, output_width]: each bin averages (mode
 * "avg") or takes the largest of (mode "max") a grid of bilinear samples,
 * sampling_ratio per side or ceil(bin size) when it is 0. Opset 16's default
 * coordinate_transformation_mode "half_pixel" shifts the ROI by half a pixel
 * and keeps it as small as it is; "output_half_pixel" (opset 10) widens it to
 * at least one pixel. */
static oq_status k_roi_align(oq_kernel_ctx *c)
{
    const oq_tensor *x = oq_kernel_require(c, 0), *rois = oq_kernel_require(c, 1),
                    *bi = oq_kernel_require(c, 2);
    if (!x || !rois || !bi)
        return c->err->status;
    if (x->dtype != OQ_DTYPE_FLOAT || rois->dtype != OQ_DTYPE_FLOAT || bi->dtype != OQ_DTYPE_INT64)
        return OQ_KUNSUP(c, "only float X and rois with int64 batch_indices are supported");
    if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 || bi->rank != 1 || bi->dims[0] != rois->dims[0])
        return OQ_KERR(c, "X must be [N, C, H, W], rois [R, 4] and batch_indices [R]");
    const int64_t oh = oq_node_attr_int(c->node, "output_height", 1);
    const int64_t ow = oq_node_attr_int(c->node, "output_width", 1);
    const int64_t ratio = oq_node_attr_int(c->node, "sampling_ratio", 0);
    const float spatial_scale = oq_node_attr_float(c->node, "spatial_scale", 1.0f);
    const char *mode = oq_node_attr_string(c->node, "mode", "avg");
    const char *ctm = oq_node_attr_string(c->node, "coordinate_transformation_mode",
                                          c->opset >= 16 ? "half_pixel" : "output_half_pixel");
    const bool is_max = strcmp(mode, "max") == 0;
    const bool half_pixel = strcmp(ctm, "half_pixel") == 0;
    if (!is_max && strcmp(mode, "avg") != 0)
        return OQ_KERR(c, "mode \"%s\" is not avg or max", mode);
    if (!half_pixel && strcmp(ctm, "output_half_pixel") != 0)
        return OQ_KERR(c, "coordinate_transformation_mode \"%s\" is not half_pixel or output_half_pixel", ctm);
    if (oh < 1 || ow < 1 || ratio < 0 || oh > ROI_MAX_SAMPLES || ow > ROI_MAX_SAMPLES ||
        oh * ow > ROI_MAX_SAMPLES)
        return OQ_KERR(c, "output %lldx%lld or sampling_ratio %lld is out of range", (long long)oh,
                       (long long)ow, (long long)ratio);
    const int64_t nr = rois->dims[0], ch = x->dims[1], h = x->dims[2], w = x->dims[3];
    const int64_t *bidx = bi->data;
    for (int64_t r = 0; r < nr; r++)
        if (bidx[r] < 0 || bidx[r] >= x->dims[0])
            return OQ_KERR(c, "batch index %lld of ROI %lld is not in [0, %lld)", (long long)bidx[r],
                           (long long)r, (long long)x->dims[0]);
    const int64_t ydims[4] = {nr, ch, oh, ow};
    oq_tensor *y = oq_kernel_output_raw(c, 0, OQ_DTYPE_FLOAT, 4, ydims);
    if (!y)
        return c->err->status;
    const float offset = half_pixel ? 0.5f : 0.0f;
    for (int64_t r = 0; r < nr; r++) {
        const float *roi = (const float *)rois->data + r * 4;
        const float x0 = roi[0] * spatial_scale - offset, y0 = roi[1] * spatial_scale - offset;
        float rw = roi[2] * spatial_scale - offset - x0, rh = roi[3] * spatial_scale - offset - y0;
        if (!half_pixel) {
            rw = rw > 1.0f ? rw : 1.0f;
            rh = rh > 1.0f ? rh : 1.0f;
        }
        const float bh = rh / (float)oh, bw = rw / (float)ow;
        /* the grid as floats first: a huge or NaN ROI must not reach the int cast */
        const float fgh = ratio > 0 ? (float)ratio : ceilf(rh / (float)oh);
        const float fgw = ratio > 0 ? (float)ratio : ceilf(rw / (float)ow);
        if (!(fgh <= ROI_MAX_SAMPLES && fgw <= ROI_MAX_SAMPLES))
            return OQ_KERR(c, "ROI %lld (%g x %g) needs too many samples per bin", (long long)r, (double)rw,
                           (double)rh);
        const int64_t gh = fgh > 0 ? (int64_t)fgh : 0, gw = fgw > 0 ? (int64_t)fgw : 0;
        const int64_t per_bin = gh * gw;
        if (per_bin > ROI_MAX_SAMPLES / (oh * ow))
            return OQ_KERR(c, "ROI %lld needs %lldx%lld samples in each of %lldx%lld bins, more than %d",
                           (long long)r, (long long)gh, (long long)gw, (long long)oh, (long long)ow,
                           ROI_MAX_SAMPLES);
        roi_sample *smp = oq_kernel_scratch_raw(c, (size_t)(oh * ow * (per_bin ? per_bin : 1)) * sizeof *smp);
        if (!smp)
            return c->err->status;
        int64_t k = 0;
        for (int64_t ph = 0; ph < oh; ph++)
            for (int64_t pw = 0; pw < ow; pw++)
                for (int64_t iy = 0; iy < gh; iy++)
                    for (int64_t ix = 0; ix < gw; ix++) {
                        const float sy = y0 + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
                        const float sx = x0 + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
                        smp[k++] = roi_sample_at(sy, sx, h, w);
                    }
        for (int64_t ci = 0; ci < ch; ci++) {
            const float *plane = (const float *)x->data + (bidx[r] * ch + ci) * h * w;
            float *out = (float *)y->data + (r * ch + ci) * oh * ow;
            const roi_sample *s = smp;
            for (int64_t b = 0; b < oh * ow; b++) {
                float v = 0.0f;
                for (int64_t j = 0; j < per_bin; j++, s++) {
                    if (is_max) {
                        float m = s->w[0] * plane[s->pos[0]];
                        for (int q = 1; q < 4; q++)
                            m = oq_max_or(s->w[q] * plane[s->pos[q]], m);
                        v = j ? oq_max_or(m, v) : m;
                    } else {
                        v += s->w[0] * plane[s->pos[0]] + s->w[1] * plane[s->pos[1]] +
                             s->w[2] * plane[s->pos[2]] + s->w[3] * plane[s->pos[3]];
                    }
                }
                out[b] = is_max || !per_bin ? v : v / (float)per_bin; /* an empty grid gives 0 */
            }
        }
    }
    return OQ_OK;
}

const oq_op_def oq_ops_detect[] = {
    {"", "NonMaxSuppression", 10, OQ_DT(FLOAT) | OQ_DT(INT64), k_non_max_suppression},
    {"", "RoiAlign", 10, OQ_DT(FLOAT) | OQ_DT(INT64), k_roi_align},
    {"", "RoiAlign", 16, OQ_DT(FLOAT) | OQ_DT(INT64), k_roi_align}, /* coordinate_transformation_mode */
};
const int oq_ops_detect_count = (int)(sizeof oq_ops_detect / sizeof oq_ops_detect[0]);
