/* fuzz_image.c: bytes -> PNG or JPEG (chosen by content) -> RGB -> a small
 * preprocessed tensor (resize of the short side, centre crop, normalization). */
#include <stdint.h>

#include "onnxq/oq_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oq_set_tensor_limit((size_t)4 << 20); /* bounds the work a tiny header can ask for */
    oq_image img;
    oq_err err = {0};
    if (oq_image_decode(&img, data, size, "fuzz.img", &err))
        return 0;
    oq_preprocess p = oq_preprocess_default();
    p.resize_w = p.resize_h = 7;
    p.resize_cover = true;
    p.crop_w = p.crop_h = 5;
    oq_tensor t;
    if (!oq_preprocess_image(&t, &img, &p, &err))
        oq_tensor_release(&t);
    oq_image_release(&img);
    return 0;
}
