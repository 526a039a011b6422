/* oq_image.h: PNG/JPEG decoding (libpng, libjpeg-turbo) and the preprocessing
 * that turns an image into a model input tensor. */
#ifndef ONNXQ_OQ_IMAGE_H
#define ONNXQ_OQ_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_image {
    int width, height;
    uint8_t *rgb; /* (height, width, 3), owned */
} oq_image;

/* True when path ends in .png, .jpg or .jpeg (any case). */
bool oq_is_image_path(const char *path);
/* Decodes a PNG or JPEG file (by content) to 8-bit RGB; gray and palette
 * images are expanded, alpha is dropped. Refuses images above 2^28 pixels or
 * whose RGB bytes exceed the tensor size limit, and truncated or corrupt data
 * (libjpeg's warnings are errors). */
oq_status oq_image_load(oq_image *img, const char *path, oq_err *err);
/* Same from buf[0..len) (borrowed); `what` names it in errors. */
oq_status oq_image_decode(oq_image *img, const uint8_t *buf, size_t len, const char *what, oq_err *err);
void oq_image_release(oq_image *img);

typedef enum oq_layout { OQ_LAYOUT_NCHW, OQ_LAYOUT_NHWC } oq_layout;

typedef struct oq_preprocess {
    int resize_w, resize_h; /* bilinear resize to this size first; 0 = keep */
    bool resize_cover;      /* instead, to the smallest size of the image's aspect that covers
                               resize_w x resize_h (N x N: the shorter side becomes N) */
    int crop_w, crop_h;     /* centre crop after resizing; 0 = none */
    oq_layout layout;
    float scale;            /* pixel (0..255) times scale, then (x - mean) / std */
    float mean[3], std[3];  /* of R, G and B, whatever the channel order */
    bool bgr;               /* channel order BGR instead of RGB */
} oq_preprocess;

/* The identity preprocessing: no resize or crop, NCHW, scale 1/255, mean 0, std 1, RGB. */
oq_preprocess oq_preprocess_default(void);
/* Applies p to img and writes a float tensor (1, 3, H, W) or (1, H, W, 3). */
oq_status oq_preprocess_image(oq_tensor *t, const oq_image *img, const oq_preprocess *p, oq_err *err);

#endif
