/* image.c: PNG/JPEG decoding and preprocessing into tensors. See oq_image.h. */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jpeglib.h> /* needs stddef.h and stdio.h first */
#include <png.h>

#include "onnxq/oq_file.h"
#include "onnxq/oq_image.h"

#define MAX_PIXELS ((int64_t)1 << 28)
#define SIZE_RULE "at most 2^28 pixels, 3 bytes each within the tensor size limit"

bool oq_is_image_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

void oq_image_release(oq_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* Whether a w x h image is non-empty, at most MAX_PIXELS and its RGB bytes
 * within the tensor size limit. */
static bool size_ok(uint64_t w, uint64_t h)
{
    return w > 0 && h > 0 && w * h <= (uint64_t)MAX_PIXELS && w * h * 3 <= oq_tensor_limit();
}

static oq_status decode_png(oq_image *img, const uint8_t *buf, size_t len, const char *path, oq_err *err)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, buf, len))
        return oq_errf(err, OQ_EINVAL, "%s: not a readable PNG (%s)", path, pi.message);
    if (!size_ok(pi.width, pi.height)) {
        png_image_free(&pi);
        return oq_errf(err, OQ_EINVAL, "%s: PNG of %ux%u pixels is outside the supported size (%s)", path,
                       pi.width, pi.height, SIZE_RULE);
    }
    pi.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc((size_t)PNG_IMAGE_SIZE(pi));
    if (!rgb) {
        png_image_free(&pi);
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", path);
    }
    if (!png_image_finish_read(&pi, NULL, rgb, 0, NULL)) {
        free(rgb);
        oq_status st = oq_errf(err, OQ_EINVAL, "%s: corrupt PNG (%s)", path, pi.message);
        png_image_free(&pi);
        return st;
    }
    img->width = (int)pi.width;
    img->height = (int)pi.height;
    img->rgb = rgb;
    return OQ_OK;
}

typedef struct jpeg_guard {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_guard;

/* libjpeg's default handler exits the process; ours jumps back with the message. */
static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    g->mgr.format_message(cinfo, g->message);
    longjmp(g->jump, 1);
}

/* Warnings (level -1: truncated or corrupt data, which libjpeg would paint
 * grey) fail the decode like errors do; trace messages are dropped. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_fail(cinfo);
}

static oq_status decode_jpeg(oq_image *img, const uint8_t *buf, size_t len, const char *path, oq_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_guard guard;
    uint8_t *volatile rgb = NULL;
    cinfo.err = jpeg_std_error(&guard.mgr);
    guard.mgr.error_exit = jpeg_fail;
    guard.mgr.emit_message = jpeg_message;
    if (setjmp(guard.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return oq_errf(err, OQ_EINVAL, "%s: corrupt JPEG (%s)", path, guard.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (!size_ok(cinfo.output_width, cinfo.output_height) || cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return oq_errf(err, OQ_EINVAL, "%s: JPEG of %ux%u pixels is outside the supported size (%s)", path,
                       cinfo.output_width, cinfo.output_height, SIZE_RULE);
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    rgb = malloc(stride * cinfo.output_height);
    if (!rgb) {
        jpeg_destroy_decompress(&cinfo);
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", path);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    img->width = (int)cinfo.output_width;
    img->height = (int)cinfo.output_height;
    img->rgb = rgb;
    jpeg_destroy_decompress(&cinfo);
    return OQ_OK;
}

oq_status oq_image_load(oq_image *img, const char *path, oq_err *err)
{
    memset(img, 0, sizeof *img);
    uint8_t *buf;
    size_t len;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    st = oq_image_decode(img, buf, len, path, err);
    free(buf);
    return st;
}

oq_status oq_image_decode(oq_image *img, const uint8_t *buf, size_t len, const char *path, oq_err *err)
{
    memset(img, 0, sizeof *img);
    oq_status st;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
        st = decode_png(img, buf, len, path, err);
    else if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        st = decode_jpeg(img, buf, len, path, err);
    else
        st = oq_errf(err, OQ_EINVAL, "%s: not a PNG or JPEG image", path);
    return st;
}

/* ---- preprocessing ------------------------------------------------------------- */

oq_preprocess oq_preprocess_default(void)
{
    oq_preprocess p;
    memset(&p, 0, sizeof p);
    p.layout = OQ_LAYOUT_NCHW;
    p.scale = 1.0f / 255.0f;
    p.std[0] = p.std[1] = p.std[2] = 1.0f;
    return p;
}

/* Bilinear sample of channel c at continuous source coordinates (half-pixel centres). */
static float sample(const oq_image *img, float sx, float sy, int c)
{
    float fx = sx - 0.5f, fy = sy - 0.5f;
    int x0 = (int)(fx < 0 ? -1 : fx), y0 = (int)(fy < 0 ? -1 : fy);
    float ax = fx - (float)x0, ay = fy - (float)y0;
    int x1 = x0 + 1, y1 = y0 + 1;
    x0 = x0 < 0 ? 0 : x0 >= img->width ? img->width - 1 : x0;
    x1 = x1 < 0 ? 0 : x1 >= img->width ? img->width - 1 : x1;
    y0 = y0 < 0 ? 0 : y0 >= img->height ? img->height - 1 : y0;
    y1 = y1 < 0 ? 0 : y1 >= img->height ? img->height - 1 : y1;
    const uint8_t *p = img->rgb;
    size_t w = (size_t)img->width;
    float top = p[(y0 * w + x0) * 3 + c] * (1 - ax) + p[(y0 * w + x1) * 3 + c] * ax;
    float bot = p[(y1 * w + x0) * 3 + c] * (1 - ax) + p[(y1 * w + x1) * 3 + c] * ax;
    return top * (1 - ay) + bot * ay;
}

oq_status oq_preprocess_image(oq_tensor *t, const oq_image *img, const oq_preprocess *p, oq_err *err)
{
    /* size after resizing */
    int rw = img->width, rh = img->height;
    if (p->resize_cover) { /* scaled by the larger of W / width and H / height */
        if ((int64_t)p->resize_w * img->height >= (int64_t)p->resize_h * img->width) {
            rw = p->resize_w;
            rh = (int)((int64_t)img->height * p->resize_w / img->width);
        } else {
            rh = p->resize_h;
            rw = (int)((int64_t)img->width * p->resize_h / img->height);
        }
    } else if (p->resize_w) {
        rw = p->resize_w;
        rh = p->resize_h;
    }
    int ow = p->crop_w ? p->crop_w : rw, oh = p->crop_h ? p->crop_h : rh;
    if (ow > rw || oh > rh || ow < 1 || oh < 1)
        return oq_errf(err, OQ_EINVAL, "crop %dx%d does not fit in the %dx%d image", ow, oh, rw, rh);
    int x_off = (rw - ow) / 2, y_off = (rh - oh) / 2;
    int64_t dims[4] = {1, 3, oh, ow};
    if (p->layout == OQ_LAYOUT_NHWC) {
        dims[1] = oh;
        dims[2] = ow;
        dims[3] = 3;
    }
    oq_status st = oq_tensor_alloc(t, OQ_DTYPE_FLOAT, 4, dims, err);
    if (st)
        return st;
    float *out = t->data;
    float kx = (float)img->width / (float)rw, ky = (float)img->height / (float)rh;
    bool same = rw == img->width && rh == img->height;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            for (int c = 0; c < 3; c++) {
                int src_c = p->bgr ? 2 - c : c;
                float v = same ? img->rgb[((size_t)(y + y_off) * img->width + (x + x_off)) * 3 + src_c]
                               : sample(img, (x + x_off + 0.5f) * kx, (y + y_off + 0.5f) * ky, src_c);
                v = (v * p->scale - p->mean[src_c]) / p->std[src_c];
                size_t idx = p->layout == OQ_LAYOUT_NCHW ? ((size_t)c * oh + y) * ow + x : ((size_t)y * ow + x) * 3 + c;
                out[idx] = v;
            }
        }
    }
    return OQ_OK;
}
