/* bench_conv: single-thread speed of oq_conv_fast on layer shapes of the
 * benchmark models: the 3x3 stride-1 layers of VGG-16 and ResNet-50 (the
 * Winograd path where it fits, winograd.h) and layers typical of PP-OCR det
 * and MobileNetV3. Each layer runs on the calling thread, timed in that
 * thread's CPU time (time slices lost to other processes do not count) over
 * at least 3 calls filling about 0.3 s; the fastest call counts.
 * GFLOP/s counts the direct convolution's FLOP (2 per multiply-add), whatever
 * the path computes. Prints one JSON line per layer; with a peak in GFLOP/s
 * as argument (bench_peak's), also the fraction of it.
 * Usage: bench_conv [peak_gflops] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exec/conv.h"
#include "exec/winograd.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct layer {
    const char *name;
    int64_t cin, cout, group, h, w, k, s;
} layer;

int main(int argc, char **argv)
{
    static const layer layers[] = {
        {"vgg16 3x3 64->64 @224", 64, 64, 1, 224, 224, 3, 1},
        {"vgg16 3x3 128->128 @112", 128, 128, 1, 112, 112, 3, 1},
        {"vgg16 3x3 256->256 @56", 256, 256, 1, 56, 56, 3, 1},
        {"vgg16 3x3 512->512 @28", 512, 512, 1, 28, 28, 3, 1},
        {"vgg16 3x3 512->512 @14", 512, 512, 1, 14, 14, 3, 1},
        {"resnet50 3x3 64->64 @56", 64, 64, 1, 56, 56, 3, 1},
        {"resnet50 3x3 128->128 @28", 128, 128, 1, 28, 28, 3, 1},
        {"resnet50 3x3 256->256 @14", 256, 256, 1, 14, 14, 3, 1},
        {"resnet50 3x3 512->512 @7", 512, 512, 1, 7, 7, 3, 1},
        {"det 3x3 s1 64->64 @120", 64, 64, 1, 120, 120, 3, 1},
        {"det 3x3 s2 3->16 @960", 3, 16, 1, 960, 960, 3, 2},
        {"1x1 64->128 @120", 64, 128, 1, 120, 120, 1, 1},
        {"dw3x3 128 @120", 128, 128, 128, 120, 120, 3, 1},
        {"dw5x5 s2 240 @28", 240, 240, 240, 28, 28, 5, 2},
        {"1x1 960->160 @7", 960, 160, 1, 7, 7, 1, 1},
    };
    double peak = argc > 1 ? atof(argv[1]) : 0.0;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        oq_conv_params p = {2, 1, l->cin, l->cout, l->group, {l->h, l->w}, {0, 0}, {l->k, l->k}, {l->s, l->s},
                            {1, 1}, {l->k / 2, l->k / 2}, {l->k / 2, l->k / 2}};
        for (int a = 0; a < 2; a++) p.out[a] = (p.in[a] + 2 * (l->k / 2) - l->k) / l->s + 1;
        size_t xs = (size_t)(l->cin * l->h * l->w), ys = (size_t)(l->cout * p.out[0] * p.out[1]);
        size_t wsz = (size_t)(l->cout * (l->cin / l->group) * l->k * l->k);
        float *x = calloc(xs, sizeof(float)), *w = calloc(wsz, sizeof(float)), *y = malloc(ys * sizeof(float));
        float *ws = malloc(oq_conv_ws_floats(&p, 1) * sizeof(float));
        if (!x || !w || !y || !ws) {
            fprintf(stderr, "bench_conv: out of memory\n");
            return 1;
        }
        for (size_t q = 0; q < xs; q++) x[q] = (float)(q % 7) * 0.1f;
        for (size_t q = 0; q < wsz; q++) w[q] = (float)(q % 5) * 0.1f;
        oq_conv_fast(y, x, w, NULL, &p, NULL, 1, ws);
        double best = 1e30, t_end = now_s() + 0.3;
        int calls = 0;
        do {
            double t0 = now_s();
            oq_conv_fast(y, x, w, NULL, &p, NULL, 1, ws);
            double t = now_s() - t0;
            best = t < best ? t : best;
        } while (++calls < 3 || now_s() < t_end);
        double flops = 2.0 * (double)ys * (double)(l->cin / l->group) * (double)(l->k * l->k);
        double g = flops / best * 1e-9;
        printf("{\"layer\": \"%s\", \"path\": \"%s\", \"ms\": %.3f, \"gflops\": %.1f", l->name,
               oq_wino_fits(&p) ? "winograd" : "direct", 1e3 * best, g);
        if (peak > 0.0) printf(", \"of_peak\": %.2f", g / peak);
        printf("}\n");
        free(x), free(w), free(y), free(ws);
    }
    return 0;
}
