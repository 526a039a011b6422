/* bench_qgemm: single-thread GOP/s (2*m*n*k integer ops per call) of oq_qgemm
 * with each micro-kernel this CPU runs, next to oq_sgemm on the same shape.
 * Usage: bench_qgemm [size...]   default size 256. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exec/gemm.h"
#include "exec/qgemm.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Calls fn(arg) until at least 0.5 s has passed; returns calls per second. */
static double rate(void (*fn)(void *), void *arg)
{
    fn(arg); /* warm-up */
    int reps = 0;
    double t0 = now_s(), t;
    do {
        fn(arg);
        reps++;
        t = now_s() - t0;
    } while (t < 0.5);
    return reps / t;
}

typedef struct qjob {
    oq_qgemm_args g;
    void *ws;
} qjob;
static void run_q(void *arg) { oq_qgemm(&((qjob *)arg)->g, ((qjob *)arg)->ws); }

typedef struct sjob {
    oq_sgemm_args g;
    float *ws;
} sjob;
static void run_s(void *arg) { oq_sgemm(&((sjob *)arg)->g, ((sjob *)arg)->ws); }

int main(int argc, char **argv)
{
    int nsz = argc > 1 ? argc - 1 : 1;
    for (int s = 0; s < nsz; s++) {
        int64_t n = argc > 1 ? atoll(argv[s + 1]) : 256;
        if (n <= 0) continue;
        size_t nn = (size_t)(n * n);
        uint8_t *a = malloc(nn), *b = malloc(nn);
        int32_t *c = malloc(nn * sizeof *c);
        float *fa = malloc(nn * sizeof *fa), *fb = malloc(nn * sizeof *fb), *fc = malloc(nn * sizeof *fc);
        void *ws = malloc(oq_qgemm_ws_bytes(n, n, n));
        float *fws = malloc(oq_sgemm_ws_floats(n, n, n) * sizeof(float));
        if (!a || !b || !c || !fa || !fb || !fc || !ws || !fws) {
            fprintf(stderr, "bench_qgemm: out of memory at n=%lld\n", (long long)n);
            return 1;
        }
        for (size_t i = 0; i < nn; i++) {
            a[i] = (uint8_t)(i * 7 % 251), b[i] = (uint8_t)(i * 5 % 241);
            fa[i] = (float)a[i] / 64.0f, fb[i] = (float)b[i] / 64.0f;
        }
        double ops = 2.0 * (double)n * (double)n * (double)n;
        int32_t za = 3, zb = 128;
        qjob q = {{.m = n, .n = n, .k = n, .a = a, .lda = n, .a_zp = &za, .b = b, .ldb = n, .b_signed = true,
                   .b_zp = &zb, .c = c, .ldc = n},
                  ws};
        for (int l = OQ_ISA_COUNT - 1; l >= 0; l--) { /* each micro-kernel this processor runs */
            if (!oq_qgemm_variant((oq_isa)l) || !oq_cpu_runs((oq_isa)l)) continue;
            oq_cpu_set_cap((oq_isa)l);
            printf("qgemm u8 x s8 %5lld^3 %-14s %7.1f GOP/s\n", (long long)n, oq_qgemm_kernel_name(),
                   ops * rate(run_q, &q) * 1e-9);
        }
        oq_cpu_set_cap(OQ_ISA_COUNT - 1);
        sjob sj = {{false, false, n, n, n, 1.0f, 0.0f, fa, n, fb, n, fc, n}, fws};
        printf("sgemm f32     %5lld^3 %-14s %7.1f GFLOP/s\n", (long long)n, oq_sgemm_kernel_name(),
               ops * rate(run_s, &sj) * 1e-9);
        free(a), free(b), free(c), free(fa), free(fb), free(fc), free(ws), free(fws);
    }
    return 0;
}
