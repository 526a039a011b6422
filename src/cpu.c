/* cpu.c: which instruction-set levels this processor runs (found once with
 * CPUID and XGETBV), the cap on those kernels use, and ONNXQ_ISA. */
#include "cpu_dispatch.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if OQ_X86_KERNELS
#include <cpuid.h>
#endif

static const char *const isa_names[OQ_ISA_COUNT] = {
    [OQ_ISA_BASELINE] = "baseline", [OQ_ISA_SHA] = "sha",       [OQ_ISA_AVX2] = "avx2",
    [OQ_ISA_AVXVNNI] = "avxvnni",   [OQ_ISA_AVX512] = "avx512", [OQ_ISA_AVX512VNNI] = "avx512vnni",
};

const char *oq_isa_name(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT ? isa_names[isa] : NULL; }

#if OQ_X86_KERNELS
/* Bit b of a CPUID register. */
static bool bit(unsigned word, int b) { return (word >> b) & 1u; }

/* The levels this processor runs, as OQ_ISA_BITs: each needs every feature
 * the compiler may use for it (x86-64-v3 and -v4 as gcc and clang define
 * them) and the operating system saving the vector registers (XCR0). */
static unsigned detect(void)
{
    unsigned have = OQ_ISA_BIT(OQ_ISA_BASELINE), a, b, c, d;
    /* (__get_cpuid_max returns unsigned in gcc's cpuid.h, int in clang's) */
    if ((unsigned)__get_cpuid_max(0, NULL) < 7 || !__get_cpuid(1, &a, &b, &c, &d))
        return have;
    bool sse3 = bit(c, 0), ssse3 = bit(c, 9), fma = bit(c, 12), cx16 = bit(c, 13), sse41 = bit(c, 19);
    bool sse42 = bit(c, 20), movbe = bit(c, 22), popcnt = bit(c, 23), osxsave = bit(c, 27), avx = bit(c, 28);
    bool f16c = bit(c, 29);
    uint64_t xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = (uint64_t)hi << 32 | lo;
    }
    bool ymm_saved = (xcr0 & 0x06) == 0x06, zmm_saved = (xcr0 & 0xe6) == 0xe6;
    unsigned max7 = 0;
    if (!__get_cpuid_count(7, 0, &max7, &b, &c, &d))
        b = c = 0;
    bool bmi1 = bit(b, 3), avx2 = bit(b, 5), bmi2 = bit(b, 8), f512 = bit(b, 16), dq512 = bit(b, 17);
    bool cd512 = bit(b, 28), sha = bit(b, 29), bw512 = bit(b, 30), vl512 = bit(b, 31), vnni512 = bit(c, 11);
    bool avxvnni = false;
    if (max7 >= 1) {
        __get_cpuid_count(7, 1, &a, &b, &c, &d);
        avxvnni = bit(a, 4);
    }
    bool lahf = false, lzcnt = false;
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000001u && __get_cpuid(0x80000001u, &a, &b, &c, &d)) {
        lahf = bit(c, 0);
        lzcnt = bit(c, 5);
    }
    bool v2 = cx16 && lahf && popcnt && sse3 && sse41 && sse42 && ssse3;
    bool v3 = v2 && ymm_saved && avx && avx2 && bmi1 && bmi2 && f16c && fma && lzcnt && movbe;
    bool v4 = v3 && zmm_saved && f512 && bw512 && cd512 && dq512 && vl512;
    if (sha && sse41 && ssse3)
        have |= OQ_ISA_BIT(OQ_ISA_SHA);
    if (v3)
        have |= OQ_ISA_BIT(OQ_ISA_AVX2);
    if (v3 && avxvnni)
        have |= OQ_ISA_BIT(OQ_ISA_AVXVNNI);
    if (v4)
        have |= OQ_ISA_BIT(OQ_ISA_AVX512);
    if (v4 && vnni512)
        have |= OQ_ISA_BIT(OQ_ISA_AVX512VNNI);
    return have;
}
#else
static unsigned detect(void) { return OQ_ISA_BIT(OQ_ISA_BASELINE); }
#endif

/* 0 until the first detection; then the levels run here, and the levels
 * enabled (those at or below the cap). First callers racing store the same
 * values; one that reads the enabled levels before they are stored gets the
 * baseline, whose results are the same. */
static _Atomic unsigned runs_mask;
_Atomic unsigned oq_isa_enabled_bits;

/* The levels up to and including cap, as OQ_ISA_BITs. */
static unsigned below(oq_isa cap) { return (OQ_ISA_BIT(cap) << 1) - 1u; }

/* The level ONNXQ_ISA names into *cap; false when it is set to no level's name. */
static bool env_cap(oq_isa *cap)
{
    const char *env = getenv("ONNXQ_ISA");
    *cap = OQ_ISA_COUNT - 1;
    if (!env || !*env)
        return true;
    for (int l = 0; l < OQ_ISA_COUNT; l++)
        if (!strcmp(env, isa_names[l])) {
            *cap = (oq_isa)l;
            return true;
        }
    return false;
}

oq_status oq_cpu_init(oq_err *err)
{
    oq_isa cap;
    bool valid = env_cap(&cap);
    if (!atomic_load_explicit(&runs_mask, memory_order_relaxed)) {
        unsigned runs = detect();
        atomic_store_explicit(&runs_mask, runs, memory_order_relaxed);
        atomic_store_explicit(&oq_isa_enabled_bits, runs & below(cap), memory_order_relaxed);
    }
    if (valid)
        return OQ_OK;
    char names[128] = "";
    for (int l = 0; l < OQ_ISA_COUNT; l++) {
        strcat(names, l ? ", " : "");
        strcat(names, isa_names[l]);
    }
    return oq_errf(err, OQ_EINVAL, "ONNXQ_ISA is '%s'; expected one of %s", getenv("ONNXQ_ISA"), names);
}

unsigned oq_isa_detect(void)
{
    oq_cpu_init(NULL);
    return atomic_load_explicit(&oq_isa_enabled_bits, memory_order_relaxed);
}

bool oq_cpu_runs(oq_isa isa)
{
    oq_isa_enabled_mask(); /* detects */
    return isa >= 0 && isa < OQ_ISA_COUNT && (atomic_load_explicit(&runs_mask, memory_order_relaxed) >> isa & 1u);
}

bool oq_isa_enabled(oq_isa isa) { return isa >= 0 && isa < OQ_ISA_COUNT && (oq_isa_enabled_mask() >> isa & 1u); }

void oq_cpu_set_cap(oq_isa cap)
{
    if (cap < 0 || cap >= OQ_ISA_COUNT)
        cap = OQ_ISA_COUNT - 1;
    oq_isa_enabled_mask(); /* detects */
    atomic_store_explicit(&oq_isa_enabled_bits, atomic_load_explicit(&runs_mask, memory_order_relaxed) & below(cap),
                          memory_order_relaxed);
}
