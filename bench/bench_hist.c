/* bench_hist: ns per value of oq_hist_add_scratch for each binning kernel the
 * processor runs, on tensors shaped like a CNN's activations once the
 * histogram has its range (the calibrator's steady state): after a ReLU
 * (half exact zeros), before one (no zeros), and a heavy-tailed ReLU output
 * (most values in the first bins). Usage: bench_hist [values] [bins] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "onnxq/oq_calib.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Deterministic standard normal samples (Box-Muller over a fixed LCG). */
static float normal(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = ((*s >> 11) + 1.0) / 9007199254740993.0;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = (*s >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

enum { TENSORS = 8, REPEATS = 20 };

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 36864;
    int bins = argc > 2 ? atoi(argv[2]) : 2048;
    static const char *const kinds[] = {"relu", "dense", "relu^4"};
    float *x = malloc((size_t)n * TENSORS * sizeof *x);
    uint32_t *scratch = calloc(oq_hist_scratch_size(bins), sizeof *scratch);
    if (n < 1 || !x || !scratch) {
        fprintf(stderr, "bench_hist: bad size or out of memory\n");
        return 1;
    }
    printf("%lld values per tensor, %d bins, best of %d passes over %d tensors\n", (long long)n, bins, REPEATS,
           TENSORS);
    for (int kind = 0; kind < 3; kind++) {
        uint64_t seed = 1;
        for (int64_t i = 0; i < n * TENSORS; i++) {
            float v = normal(&seed);
            x[i] = kind == 1 ? v : v < 0 ? 0.0f : kind == 0 ? v : v * v * v * v * 0.01f;
        }
        for (int l = OQ_ISA_COUNT - 1; l >= 0; l--) { /* each binning kernel this processor runs */
            if (!oq_hist_variant((oq_isa)l) || !oq_cpu_runs((oq_isa)l))
                continue;
            oq_cpu_set_cap((oq_isa)l);
            oq_hist h;
            oq_err err = {0};
            if (oq_hist_init(&h, bins, &err)) {
                fprintf(stderr, "bench_hist: %s\n", err.msg);
                return 1;
            }
            for (int t = 0; t < TENSORS; t++) /* the range settles */
                oq_hist_add_scratch(&h, x + (size_t)t * n, n, scratch);
            double best = INFINITY;
            for (int r = 0; r < REPEATS; r++) {
                double t0 = now_s();
                for (int t = 0; t < TENSORS; t++)
                    oq_hist_add_scratch(&h, x + (size_t)t * n, n, scratch);
                best = fmin(best, now_s() - t0);
            }
            printf("%-7s %-7s %6.3f ns/value\n", kinds[kind], oq_hist_impl_name(), best * 1e9 / ((double)n * TENSORS));
            oq_hist_release(&h);
        }
    }
    oq_cpu_set_cap(OQ_ISA_COUNT - 1);
    free(scratch);
    free(x);
    return 0;
}
