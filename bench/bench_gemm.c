/* bench_gemm: single-thread GFLOP/s of oq_sgemm with each micro-kernel this
 * CPU can run. Usage: bench_gemm [size...]   default sizes 64 256 512 1024. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exec/gemm.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Times oq_sgemm on n^3 until at least 0.5 s has passed; returns GFLOP/s. */
static double bench(int64_t n, float *a, float *b, float *c, float *ws)
{
    oq_sgemm_args g = {false, false, n, n, n, 1.0f, 0.0f, a, n, b, n, c, n};
    oq_sgemm(&g, ws); /* warm-up */
    int reps = 0;
    double t0 = now_s(), t;
    do {
        oq_sgemm(&g, ws);
        reps++;
        t = now_s() - t0;
    } while (t < 0.5);
    return 2.0 * (double)n * (double)n * (double)n * reps / t * 1e-9;
}

int main(int argc, char **argv)
{
    int64_t def[] = {64, 256, 512, 1024};
    int nsz = argc > 1 ? argc - 1 : 4;
    float *ws = malloc(OQ_SGEMM_WS_FLOATS * sizeof(float));
    if (!ws) return 1;
    printf("single thread; default micro-kernel: %s\n", oq_sgemm_kernel_name());
    for (int s = 0; s < nsz; s++) {
        int64_t n = argc > 1 ? atoll(argv[s + 1]) : def[s];
        if (n <= 0) continue;
        float *a = malloc((size_t)(n * n) * sizeof(float));
        float *b = malloc((size_t)(n * n) * sizeof(float));
        float *c = malloc((size_t)(n * n) * sizeof(float));
        if (!a || !b || !c) {
            free(a), free(b), free(c);
            fprintf(stderr, "bench_gemm: out of memory at n=%lld\n", (long long)n);
            free(ws);
            return 1;
        }
        for (int64_t i = 0; i < n * n; i++) {
            a[i] = (float)((i * 7 % 13) - 6) / 8.0f;
            b[i] = (float)((i * 5 % 11) - 5) / 8.0f;
        }
        for (int l = OQ_ISA_COUNT - 1; l >= 0; l--) /* each micro-kernel this processor runs */
            if (oq_sgemm_variant((oq_isa)l) && oq_cpu_runs((oq_isa)l)) {
                oq_cpu_set_cap((oq_isa)l);
                printf("sgemm %5lld^3 %-18s %7.1f GFLOP/s\n", (long long)n, oq_sgemm_kernel_name(),
                       bench(n, a, b, c, ws));
            }
        oq_cpu_set_cap(OQ_ISA_COUNT - 1);
        free(a), free(b), free(c);
    }
    free(ws);
    return 0;
}
