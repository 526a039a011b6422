/* simd.h: OQ_VECTOR_CLONES, for hot loops written in plain C that the
 * compiler vectorizes. Internal to src/exec.
 *
 * A function marked with it is compiled three times, for AVX-512 (x86-64-v4),
 * AVX2 (x86-64-v3) and the baseline, and the loader picks the one the
 * processor runs. The C source is the same in each, and the build keeps float
 * arithmetic as written (C11 mode: no fused multiply-add contraction), so the
 * three give the same results. */
#ifndef ONNXQ_EXEC_SIMD_H
#define ONNXQ_EXEC_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#define OQ_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OQ_VECTOR_CLONES
#endif

#endif
