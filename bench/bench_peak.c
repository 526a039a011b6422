/* bench_peak: the FP32 multiply-add peak of one core, measured: independent
 * chains of vector FMAs on registers only (no memory traffic), for each
 * vector width this processor and build run. Prints one JSON line per width
 * and, last, {"peak_gflops": best} (a multiply-add counted as two FLOP).
 * Usage: bench_peak [seconds per width, default 0.3] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "onnxq/oq_cpu.h"

#if defined(__x86_64__) && OQ_X86_KERNELS
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#if HAVE_X86
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sink so the compiler keeps the chains. */
static volatile float sink;

/* 12 independent accumulator chains of FMAs, `iters` steps each; returns
 * the FLOP executed. Twelve chains cover the latency (4-5 cycles) times
 * the throughput (2 per cycle) of current cores. */
#if HAVE_X86
/* FMA_CHAINS(T, FMA, SET1): the 12 chains as named variables, kept in
 * registers by an empty asm that claims to read and write each of them. */
#define FMA_CHAINS(T, FMA, SET1, CONSTRAINT)                                                       \
    T m = SET1(0.999999f), c = SET1(1e-7f);                                                        \
    T a0 = SET1(0.f), a1 = SET1(1.f), a2 = SET1(2.f), a3 = SET1(3.f), a4 = SET1(4.f), a5 = SET1(5.f); \
    T a6 = SET1(6.f), a7 = SET1(7.f), a8 = SET1(8.f), a9 = SET1(9.f), a10 = SET1(10.f), a11 = SET1(11.f); \
    for (long it = 0; it < iters; it++) {                                                          \
        a0 = FMA(a0, m, c), a1 = FMA(a1, m, c), a2 = FMA(a2, m, c), a3 = FMA(a3, m, c);           \
        a4 = FMA(a4, m, c), a5 = FMA(a5, m, c), a6 = FMA(a6, m, c), a7 = FMA(a7, m, c);           \
        a8 = FMA(a8, m, c), a9 = FMA(a9, m, c), a10 = FMA(a10, m, c), a11 = FMA(a11, m, c);       \
        __asm__ volatile("" : "+" CONSTRAINT(a0), "+" CONSTRAINT(a1), "+" CONSTRAINT(a2), "+" CONSTRAINT(a3), \
                         "+" CONSTRAINT(a4), "+" CONSTRAINT(a5), "+" CONSTRAINT(a6), "+" CONSTRAINT(a7),     \
                         "+" CONSTRAINT(a8), "+" CONSTRAINT(a9), "+" CONSTRAINT(a10), "+" CONSTRAINT(a11));  \
    }

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters)
{
    FMA_CHAINS(__m256, _mm256_fmadd_ps, _mm256_set1_ps, "x")
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    sink = _mm256_cvtss_f32(s);
    return (double)iters * 12 * 8 * 2;
}

__attribute__((target("avx512f"))) static double fma_avx512(long iters)
{
    FMA_CHAINS(__m512, _mm512_fmadd_ps, _mm512_set1_ps, "v")
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    sink = _mm512_reduce_add_ps(s);
    return (double)iters * 12 * 16 * 2;
}
#endif

/* Best GFLOP/s of fn over repeated timed batches filling `seconds`. */
static double measure(double (*fn)(long), double seconds)
{
    long iters = 1 << 20;
    double best = 0.0, t_end = now_s() + seconds;
    fn(iters); /* warm-up: clocks up, code paged in */
    do {
        double t0 = now_s();
        double flop = fn(iters);
        double g = flop / (now_s() - t0) * 1e-9;
        if (g > best)
            best = g;
    } while (now_s() < t_end);
    return best;
}
#endif

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    if (!(seconds > 0.0) || seconds > 60.0) {
        fprintf(stderr, "usage: bench_peak [seconds per width, (0, 60]]\n");
        return 2;
    }
    double best = 0.0;
#if HAVE_X86
    if (oq_cpu_runs(OQ_ISA_AVX2)) {
        double g = measure(fma_avx2, seconds);
        printf("{\"width\": \"avx2-fma-256\", \"gflops\": %.1f}\n", g);
        best = g > best ? g : best;
    }
    if (oq_cpu_runs(OQ_ISA_AVX512)) {
        double g = measure(fma_avx512, seconds);
        printf("{\"width\": \"avx512f-512\", \"gflops\": %.1f}\n", g);
        best = g > best ? g : best;
    }
#endif
    if (best == 0.0) {
        fprintf(stderr, "bench_peak: no vector FMA kernel for this build or processor\n");
        return 1;
    }
    printf("{\"peak_gflops\": %.1f}\n", best);
    return 0;
}
