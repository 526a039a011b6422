/* bench_conv: single-thread time and GFLOP/s of oq_conv_fast on layer shapes
 * typical of PP-OCR det and MobileNetV3. Usage: bench_conv */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exec/conv.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct layer {
    const char *name;
    int64_t cin, cout, group, h, w, k, s;
} layer;

int main(void)
{
    static const layer layers[] = {
        {"3x3 s2 3->16 @960", 3, 16, 1, 960, 960, 3, 2},
        {"3x3 s1 64->64 @120", 64, 64, 1, 120, 120, 3, 1},
        {"1x1 64->128 @120", 64, 128, 1, 120, 120, 1, 1},
        {"dw3x3 128 @120", 128, 128, 128, 120, 120, 3, 1},
        {"dw5x5 s2 240 @28", 240, 240, 240, 28, 28, 5, 2},
        {"1x1 960->160 @7", 960, 160, 1, 7, 7, 1, 1},
    };
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
        int reps = 0;
        double t0 = now_s(), t;
        do {
            oq_conv_fast(y, x, w, NULL, &p, NULL, 1, ws);
            reps++;
            t = now_s() - t0;
        } while (t < 0.3);
        double flops = 2.0 * (double)ys * (double)(l->cin / l->group) * (double)(l->k * l->k);
        printf("%-22s %8.3f ms  %6.1f GFLOP/s\n", l->name, 1e3 * t / reps, flops * reps / t * 1e-9);
        free(x), free(w), free(y), free(ws);
    }
    return 0;
}
