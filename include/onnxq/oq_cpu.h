/* oq_cpu.h: the instruction sets onnxq's kernels are compiled for, which of
 * them this processor runs, and a cap on the ones used.
 *
 * Every kernel with several versions (GEMM micro-kernels, vectorized loops,
 * histogram binning, SHA-256) has one per level it was written for, and uses
 * the highest one that is enabled: compiled in, run by this processor (found
 * once, with CPUID), and not above the cap. All versions of a kernel give the
 * same results except the float GEMM, whose FMA versions round differently. */
#ifndef ONNXQ_OQ_CPU_H
#define ONNXQ_OQ_CPU_H

#include <stdbool.h>

#include "onnxq/oq_err.h"

/* In order of preference; a cap at one level allows it and those before it. */
typedef enum oq_isa {
    OQ_ISA_BASELINE,   /* what the build targets (x86-64: SSE2); always enabled */
    OQ_ISA_SHA,        /* x86 SHA extensions, SSSE3 and SSE4.1 */
    OQ_ISA_AVX2,       /* x86-64-v3: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE */
    OQ_ISA_AVXVNNI,    /* x86-64-v3 and AVX-VNNI */
    OQ_ISA_AVX512,     /* x86-64-v4: AVX-512 F, BW, CD, DQ, VL */
    OQ_ISA_AVX512VNNI, /* x86-64-v4 and AVX-512 VNNI */
    OQ_ISA_COUNT
} oq_isa;

/* "baseline", "sha", "avx2", "avxvnni", "avx512", "avx512vnni"; NULL out of range. */
const char *oq_isa_name(oq_isa isa);

/* Detects the processor's instruction sets (once per process) and applies the
 * environment variable ONNXQ_ISA, a level name used as the cap. Fails with
 * OQ_EINVAL, leaving no cap, when ONNXQ_ISA is set to something else. Kernels
 * call it themselves (ignoring that error); a program calls it first to
 * report the error. */
oq_status oq_cpu_init(oq_err *err);

/* True when kernels for isa are compiled into this build and the processor
 * runs them, whatever the cap. */
bool oq_cpu_runs(oq_isa isa);

/* True when kernels use isa: oq_cpu_runs(isa) and isa is not above the cap. */
bool oq_isa_enabled(oq_isa isa);

/* Makes kernels use no level above cap from now on (OQ_ISA_COUNT - 1: no cap),
 * process-wide. Call it while no kernel runs (tests, benchmarks, the CLI's
 * start). */
void oq_cpu_set_cap(oq_isa cap);

#endif
