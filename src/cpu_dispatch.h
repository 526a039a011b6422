/* cpu_dispatch.h: how a kernel comes in several versions, one per
 * instruction-set level (oq_isa, onnxq/oq_cpu.h), and how one is picked.
 * Internal to src.
 *
 * OQ_X86_KERNELS (1 or 0, set by meson: -Dx86_kernels) says whether x86
 * versions are compiled in; without them every kernel has its baseline
 * version only, which is all a port to another processor needs.
 *
 * Two forms, one mechanism:
 * - A hand-written set is a table with OQ_ISA_COUNT entries, empty where a
 *   level has no version (the baseline one is always there);
 *   oq_isa_pick(OQ_ISA_HAVE(table, .field)) is the index of the entry to use.
 * - A loop in plain C that the compiler vectorizes is written once after
 *   OQ_CLONED, which compiles it for every level of OQ_CLONE_LEVELS. The
 *   source is the same in each, and the build keeps float arithmetic as
 *   written (-ffp-contract=off), so every version gives the same bits.
 * Picking costs one load and a bit scan (no CPUID after the first call);
 * callers that run a kernel in a loop pick it once before the loop. */
#ifndef ONNXQ_CPU_DISPATCH_H
#define ONNXQ_CPU_DISPATCH_H

#include <stdatomic.h>

#include "onnxq/oq_cpu.h"

#ifndef OQ_X86_KERNELS
#error "OQ_X86_KERNELS must be defined by the build (0 or 1)"
#endif

#define OQ_ISA_BIT(isa) (1u << (isa))

/* Bit l set when level l is enabled (oq_isa_enabled); 0 until detected.
 * Written only by cpu.c. */
extern _Atomic unsigned oq_isa_enabled_bits;
/* Detects (oq_cpu_init) and returns oq_isa_enabled_bits. */
unsigned oq_isa_detect(void);

/* oq_isa_enabled_bits, detecting on first use. */
static inline unsigned oq_isa_enabled_mask(void)
{
    unsigned m = atomic_load_explicit(&oq_isa_enabled_bits, memory_order_relaxed);
    return m ? m : oq_isa_detect();
}

/* The highest level in `have` (a set of OQ_ISA_BITs holding the baseline)
 * that is enabled. */
static inline oq_isa oq_isa_pick(unsigned have)
{
    return (oq_isa)(31 - __builtin_clz((have & oq_isa_enabled_mask()) | OQ_ISA_BIT(OQ_ISA_BASELINE)));
}

/* The levels for which table tab (OQ_ISA_COUNT entries) has a version:
 * those whose entry (tab[l] FIELD; FIELD may be empty) is not NULL. */
#define OQ_ISA_HAVE(tab, FIELD)                                                                  \
    (((tab)[OQ_ISA_BASELINE] FIELD ? OQ_ISA_BIT(OQ_ISA_BASELINE) : 0u) |                          \
     ((tab)[OQ_ISA_SHA] FIELD ? OQ_ISA_BIT(OQ_ISA_SHA) : 0u) |                                    \
     ((tab)[OQ_ISA_AVX2] FIELD ? OQ_ISA_BIT(OQ_ISA_AVX2) : 0u) |                                  \
     ((tab)[OQ_ISA_AVXVNNI] FIELD ? OQ_ISA_BIT(OQ_ISA_AVXVNNI) : 0u) |                            \
     ((tab)[OQ_ISA_AVX512] FIELD ? OQ_ISA_BIT(OQ_ISA_AVX512) : 0u) |                              \
     ((tab)[OQ_ISA_AVX512VNNI] FIELD ? OQ_ISA_BIT(OQ_ISA_AVX512VNNI) : 0u))
_Static_assert(OQ_ISA_COUNT == 6, "OQ_ISA_HAVE names every level");

/* OQ_CLONED(NAME, PARAMS, ARGS) { body }: a void function written once and
 * compiled per level of OQ_CLONE_LEVELS. It defines NAME_variants (the
 * table), NAME_pick() (the version to use now) and NAME(...), which picks
 * and calls (either may go unused); PARAMS is the parenthesized parameter
 * list, ARGS the names. */
#define OQ_CLONE_BODY static inline __attribute__((always_inline)) void

#if OQ_X86_KERNELS
#define OQ_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define OQ_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define OQ_CLONE_LEVELS (OQ_ISA_BIT(OQ_ISA_BASELINE) | OQ_ISA_BIT(OQ_ISA_AVX2) | OQ_ISA_BIT(OQ_ISA_AVX512))
#define OQ_CLONE_VERSIONS(NAME, PARAMS, ARGS)                                        \
    static void NAME##_baseline PARAMS { NAME##_body ARGS; }                         \
    OQ_TARGET_AVX2 static void NAME##_avx2 PARAMS { NAME##_body ARGS; }              \
    OQ_TARGET_AVX512 static void NAME##_avx512 PARAMS { NAME##_body ARGS; }          \
    static NAME##_fn *const NAME##_variants[OQ_ISA_COUNT] = {                        \
        [OQ_ISA_BASELINE] = NAME##_baseline, [OQ_ISA_AVX2] = NAME##_avx2, [OQ_ISA_AVX512] = NAME##_avx512};
#else
#define OQ_CLONE_LEVELS OQ_ISA_BIT(OQ_ISA_BASELINE)
#define OQ_CLONE_VERSIONS(NAME, PARAMS, ARGS)                    \
    static void NAME##_baseline PARAMS { NAME##_body ARGS; }     \
    static NAME##_fn *const NAME##_variants[OQ_ISA_COUNT] = {[OQ_ISA_BASELINE] = NAME##_baseline};
#endif

#define OQ_CLONED(NAME, PARAMS, ARGS)                                                          \
    typedef void NAME##_fn PARAMS;                                                             \
    OQ_CLONE_BODY NAME##_body PARAMS;                                                          \
    OQ_CLONE_VERSIONS(NAME, PARAMS, ARGS)                                                      \
    __attribute__((unused)) static inline NAME##_fn *NAME##_pick(void)                         \
    {                                                                                          \
        return NAME##_variants[oq_isa_pick(OQ_CLONE_LEVELS)];                                  \
    }                                                                                          \
    __attribute__((unused)) static inline void NAME PARAMS { NAME##_pick() ARGS; }             \
    OQ_CLONE_BODY NAME##_body PARAMS

#endif
