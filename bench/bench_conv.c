/* bench_conv: single-thread speed of the float convolution on layer shapes
 * of the benchmark models: the 3x3 stride-1 layers of VGG-16 and ResNet-50
 * (the Winograd path where it fits, winograd.h), layers typical of PP-OCR
 * det and MobileNetV3, the depthwise layers of MobileNetV2 (every shape,
 * strides 1 and 2) and EfficientNet-B0 (5x5), MobileNetV2's 1x1 layers, and
 * the im2col layers of Inception-v3 (1x7, 7x1, 1x3, 5x5, unpadded 3x3/2),
 * SqueezeNet 1.1 and DenseNet-121 (3x3 on 13x13, and 128->32 from 56x56 to
 * 7x7). As in the executor, the weights are packed once (oq_conv_pack_w) and
 * each call is oq_conv_fast_packed. Each layer runs on the calling thread,
 * timed in that thread's CPU time (time slices lost to other processes do
 * not count) over at least 3 calls filling about 0.3 s; the fastest call
 * counts. GFLOP/s counts the direct convolution's FLOP (2 per multiply-add),
 * whatever the path computes. Prints one JSON line per layer; with a peak in
 * GFLOP/s as argument (bench_peak's), also the fraction of it.
 * Usage: bench_conv [peak_gflops [TEXT]]   (TEXT: only the layers whose name contains it) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/conv.h"
#include "exec/conv_tile.h"
#include "exec/winograd.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct layer {
    const char *name;
    int64_t cin, cout, group, h, w;
    int64_t kh, kw, s, ph, pw; /* kernel, stride, pads on both sides */
} layer;

int main(int argc, char **argv)
{
    static const layer layers[] = {
        {"vgg16 3x3 64->64 @224", 64, 64, 1, 224, 224, 3, 3, 1, 1, 1},
        {"vgg16 3x3 128->128 @112", 128, 128, 1, 112, 112, 3, 3, 1, 1, 1},
        {"vgg16 3x3 256->256 @56", 256, 256, 1, 56, 56, 3, 3, 1, 1, 1},
        {"vgg16 3x3 512->512 @28", 512, 512, 1, 28, 28, 3, 3, 1, 1, 1},
        {"vgg16 3x3 512->512 @14", 512, 512, 1, 14, 14, 3, 3, 1, 1, 1},
        {"resnet50 3x3 64->64 @56", 64, 64, 1, 56, 56, 3, 3, 1, 1, 1},
        {"resnet50 3x3 128->128 @28", 128, 128, 1, 28, 28, 3, 3, 1, 1, 1},
        {"resnet50 3x3 256->256 @14", 256, 256, 1, 14, 14, 3, 3, 1, 1, 1},
        {"resnet50 3x3 512->512 @7", 512, 512, 1, 7, 7, 3, 3, 1, 1, 1},
        {"det 3x3 s1 64->64 @120", 64, 64, 1, 120, 120, 3, 3, 1, 1, 1},
        {"det 3x3 s2 3->16 @960", 3, 16, 1, 960, 960, 3, 3, 2, 1, 1},
        {"1x1 64->128 @120", 64, 128, 1, 120, 120, 1, 1, 1, 0, 0},
        {"dw3x3 128 @120", 128, 128, 128, 120, 120, 3, 3, 1, 1, 1},
        {"dw5x5 s2 240 @28", 240, 240, 240, 28, 28, 5, 5, 2, 2, 2},
        {"mobilenet_v2 dw3x3 32 @112", 32, 32, 32, 112, 112, 3, 3, 1, 1, 1},
        {"mobilenet_v2 dw3x3 s2 96 @112", 96, 96, 96, 112, 112, 3, 3, 2, 1, 1},
        {"mobilenet_v2 dw3x3 144 @56", 144, 144, 144, 56, 56, 3, 3, 1, 1, 1},
        {"mobilenet_v2 dw3x3 s2 144 @56", 144, 144, 144, 56, 56, 3, 3, 2, 1, 1},
        {"mobilenet_v2 dw3x3 192 @28", 192, 192, 192, 28, 28, 3, 3, 1, 1, 1},
        {"mobilenet_v2 dw3x3 s2 192 @28", 192, 192, 192, 28, 28, 3, 3, 2, 1, 1},
        {"mobilenet_v2 dw3x3 384 @14", 384, 384, 384, 14, 14, 3, 3, 1, 1, 1},
        {"mobilenet_v2 dw3x3 576 @14", 576, 576, 576, 14, 14, 3, 3, 1, 1, 1},
        {"mobilenet_v2 dw3x3 s2 576 @14", 576, 576, 576, 14, 14, 3, 3, 2, 1, 1},
        {"mobilenet_v2 dw3x3 960 @7", 960, 960, 960, 7, 7, 3, 3, 1, 1, 1},
        {"mobilenet_v2 1x1 96->576 @14", 96, 576, 1, 14, 14, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 160->960 @7", 160, 960, 1, 7, 7, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 24->144 @56", 24, 144, 1, 56, 56, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 576->96 @14", 576, 96, 1, 14, 14, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 320->1280 @7", 320, 1280, 1, 7, 7, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 16->96 @112", 16, 96, 1, 112, 112, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 64->384 @14", 64, 384, 1, 14, 14, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 960->160 @7", 960, 160, 1, 7, 7, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 960->320 @7", 960, 320, 1, 7, 7, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 32->192 @28", 32, 192, 1, 28, 28, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 384->64 @14", 384, 64, 1, 14, 14, 1, 1, 1, 0, 0},
        {"mobilenet_v2 1x1 144->24 @56", 144, 24, 1, 56, 56, 1, 1, 1, 0, 0},
        {"efficientnet_b0 dw5x5 s2 144 @56", 144, 144, 144, 56, 56, 5, 5, 2, 2, 2},
        {"efficientnet_b0 dw5x5 672 @14", 672, 672, 672, 14, 14, 5, 5, 1, 2, 2},
        {"efficientnet_b0 dw5x5 1152 @7", 1152, 1152, 1152, 7, 7, 5, 5, 1, 2, 2},
        {"1x1 960->160 @7", 960, 160, 1, 7, 7, 1, 1, 1, 0, 0},
        {"inception_v3 1x7 192->192 @17", 192, 192, 1, 17, 17, 1, 7, 1, 0, 3},
        {"inception_v3 7x1 160->192 @17", 160, 192, 1, 17, 17, 7, 1, 1, 3, 0},
        {"inception_v3 1x3 384->384 @8", 384, 384, 1, 8, 8, 1, 3, 1, 0, 1},
        {"inception_v3 5x5 48->64 @35", 48, 64, 1, 35, 35, 5, 5, 1, 2, 2},
        {"inception_v3 3x3/2 192->320 @17 unpadded", 192, 320, 1, 17, 17, 3, 3, 2, 0, 0},
        {"squeezenet1_1 3x3 64->256 @13", 64, 256, 1, 13, 13, 3, 3, 1, 1, 1},
        {"densenet121 3x3 128->32 @56", 128, 32, 1, 56, 56, 3, 3, 1, 1, 1},
        {"densenet121 3x3 128->32 @28", 128, 32, 1, 28, 28, 3, 3, 1, 1, 1},
        {"densenet121 3x3 128->32 @14", 128, 32, 1, 14, 14, 3, 3, 1, 1, 1},
        {"densenet121 3x3 128->32 @7", 128, 32, 1, 7, 7, 3, 3, 1, 1, 1},
    };
    double peak = argc > 1 ? atof(argv[1]) : 0.0;
    const char *only = argc > 2 ? argv[2] : NULL;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        if (only && !strstr(l->name, only)) continue;
        int64_t kh = l->kh, kw = l->kw, ph = l->ph, pw = l->pw;
        oq_conv_params p = {2, 1, l->cin, l->cout, l->group, {l->h, l->w}, {0, 0}, {kh, kw}, {l->s, l->s},
                            {1, 1}, {ph, pw}, {ph, pw}};
        for (int a = 0; a < 2; a++) p.out[a] = (p.in[a] + 2 * p.pad0[a] - p.k[a]) / l->s + 1;
        size_t xs = (size_t)(l->cin * l->h * l->w), ys = (size_t)(l->cout * p.out[0] * p.out[1]);
        size_t wsz = (size_t)(l->cout * (l->cin / l->group) * kh * kw);
        float *x = calloc(xs, sizeof(float)), *w = calloc(wsz, sizeof(float)), *y = malloc(ys * sizeof(float));
        float *ws = malloc(oq_conv_ws_floats(&p, 1) * sizeof(float));
        float *wp = malloc((oq_conv_packed_w_floats(&p) + 1) * sizeof(float));
        if (!x || !w || !y || !ws || !wp) {
            fprintf(stderr, "bench_conv: out of memory\n");
            return 1;
        }
        for (size_t q = 0; q < xs; q++) x[q] = (float)(q % 7) * 0.1f;
        for (size_t q = 0; q < wsz; q++) w[q] = (float)(q % 5) * 0.1f;
        oq_conv_pack_w(wp, w, &p); /* once, as the executor keeps constant weights packed */
        oq_conv_fast_packed(y, x, w, wp, NULL, &p, NULL, 1, ws, NULL);
        double best = 1e30, t_end = now_s() + 0.3;
        int calls = 0;
        do {
            double t0 = now_s();
            oq_conv_fast_packed(y, x, w, wp, NULL, &p, NULL, 1, ws, NULL);
            double t = now_s() - t0;
            best = t < best ? t : best;
        } while (++calls < 3 || now_s() < t_end);
        double flops = 2.0 * (double)ys * (double)(l->cin / l->group) * (double)(kh * kw);
        double g = flops / best * 1e-9;
        printf("{\"layer\": \"%s\", \"path\": \"%s\", \"ms\": %.3f, \"gflops\": %.1f", l->name,
               oq_wino_fits(&p) ? "winograd" : oq_ctile_fits(&p) ? "tile" : "direct", 1e3 * best, g);
        if (peak > 0.0) printf(", \"of_peak\": %.2f", g / peak);
        printf("}\n");
        free(x), free(w), free(y), free(ws), free(wp);
    }
    return 0;
}
