/* bench_qgemm: single-thread GOP/s (2*m*n*k integer ops per call) of oq_qgemm
 * with each micro-kernel this CPU runs, next to oq_sgemm on the same shape.
 * A shape is N (an N^3 product, A uint8 and B int8, as MatMulInteger may
 * have them) or MxNxK (a convolution's product: A the int8 weights of M
 * output channels, zero point 0; B the uint8 im2col columns, zero point 128),
 * timed with A packed on every call and packed once beforehand.
 * Usage: bench_qgemm [shape...]   default: 256 and the shapes of ResNet-50's
 * and MobileNetV2's convolutions in work items of 256 output positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/gemm.h"
#include "exec/qgemm.h"

/* CPU time of this thread: time slices lost to other processes on a shared
 * machine do not count. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
    static const char *const defaults[] = {"256",          "64x256x576",  "128x256x1152", "256x196x2304",
                                           "512x49x4608", "256x256x64",  "2048x49x512",  "96x256x16",
                                           "24x256x144",  "320x49x960"};
    int nsz = argc > 1 ? argc - 1 : (int)(sizeof defaults / sizeof defaults[0]);
    for (int s = 0; s < nsz; s++) {
        const char *arg = argc > 1 ? argv[s + 1] : defaults[s];
        long long dm = 0, dn = 0, dk = 0;
        bool conv = strchr(arg, 'x') != NULL;
        if (conv ? sscanf(arg, "%lldx%lldx%lld", &dm, &dn, &dk) != 3 : sscanf(arg, "%lld", &dn) != 1) continue;
        if (!conv) dm = dk = dn;
        int64_t m = dm, n = dn, k = dk;
        if (m <= 0 || n <= 0 || k <= 0) continue;
        uint8_t *a = malloc((size_t)(m * k)), *b = malloc((size_t)(k * n));
        int32_t *c = malloc((size_t)(m * n) * sizeof *c);
        float *fa = malloc((size_t)(m * k) * sizeof *fa), *fb = malloc((size_t)(k * n) * sizeof *fb);
        float *fc = malloc((size_t)(m * n) * sizeof *fc);
        void *ws = malloc(oq_qgemm_ws_bytes(m, n, k));
        float *fws = malloc(oq_sgemm_ws_floats(m, n, k) * sizeof(float));
        if (!a || !b || !c || !fa || !fb || !fc || !ws || !fws) {
            fprintf(stderr, "bench_qgemm: out of memory at %s\n", arg);
            return 1;
        }
        for (int64_t i = 0; i < m * k; i++) a[i] = (uint8_t)(i * 7 % 251), fa[i] = (float)a[i] / 64.0f;
        for (int64_t i = 0; i < k * n; i++) b[i] = (uint8_t)(i * 5 % 241), fb[i] = (float)b[i] / 64.0f;
        double ops = 2.0 * (double)m * (double)n * (double)k;
        int32_t za = 3, zb = 128, zx = 128;
        qjob q = {{.m = m, .n = n, .k = k, .a = a, .lda = k, .a_zp = &za, .b = b, .ldb = n, .b_signed = true,
                   .b_zp = &zb, .c = c, .ldc = n},
                  ws};
        if (conv) { /* int8 weights (symmetric) times uint8 activations */
            q.g.a_signed = true, q.g.a_zp = NULL;
            q.g.b_signed = false, q.g.b_zp = &zx;
        }
        char name[64];
        snprintf(name, sizeof name, "%s %s", conv ? "s8 x u8" : "u8 x s8", arg);
        for (int l = OQ_ISA_COUNT - 1; l >= 0; l--) { /* each micro-kernel this processor runs */
            if (!oq_qgemm_variant((oq_isa)l) || !oq_cpu_runs((oq_isa)l)) continue;
            oq_cpu_set_cap((oq_isa)l);
            printf("qgemm %-22s %-22s %7.1f GOP/s\n", name, oq_qgemm_kernel_name(), ops * rate(run_q, &q) * 1e-9);
            void *ap = conv ? malloc(oq_qgemm_packed_a_bytes(m, k)) : NULL;
            if (ap) { /* the weights packed once, as QLinearConv keeps them */
                oq_qgemm_pack_a(ap, &q.g);
                q.g.a_packed = ap;
                printf("qgemm %-22s %-22s %7.1f GOP/s (A packed once)\n", name, oq_qgemm_kernel_name(),
                       ops * rate(run_q, &q) * 1e-9);
                q.g.a_packed = NULL;
                free(ap);
            }
        }
        oq_cpu_set_cap(OQ_ISA_COUNT - 1);
        sjob sj = {{false, false, m, n, k, 1.0f, 0.0f, fa, k, fb, n, fc, n}, fws};
        printf("sgemm f32   %-22s %-22s %7.1f GFLOP/s\n", arg, oq_sgemm_kernel_name(), ops * rate(run_s, &sj) * 1e-9);
        free(a), free(b), free(c), free(fa), free(fb), free(fc), free(ws), free(fws);
    }
    return 0;
}
