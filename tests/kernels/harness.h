/* harness.h: the kernel harness (suite `kernels`), in the spirit of dav1d's
 * checkasm. Each family is one or more kernels that come in versions per
 * instruction-set level (onnxq/oq_cpu.h). For every level at which a family
 * has a version, the harness caps the process at that level, which forces
 * that version, and runs the family's checks against plain reference code on
 * inputs of edge sizes; a level this processor does not run is reported as
 * skipped, by name. */
#ifndef ONNXQ_TEST_KERNELS_HARNESS_H
#define ONNXQ_TEST_KERNELS_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include <stdio.h>

#include "onnxq/oq_cpu.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

/* Failed checks so far, over every family and level. */
extern int kernel_failures;

/* A failed CHECK prints file:line and the expression and counts a failure. */
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            kernel_failures++;                                                       \
        }                                                                            \
    } while (0)

/* Checks that a call returned OQ_OK, printing the error message otherwise. */
#define CHECK_OK(call, errp)                                                                   \
    do {                                                                                       \
        if ((call) != OQ_OK) {                                                                 \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, (errp)->msg); \
            kernel_failures++;                                                                 \
        }                                                                                      \
    } while (0)

typedef struct kfamily {
    const char *name;
    /* What the family runs at level isa when capped there: the name of the
     * version compiled for isa, or NULL when it has none (it then runs the
     * next level down, already checked). */
    const char *(*variant)(oq_isa isa);
    /* Runs every check with the cap at `level`; returns the number of cases.
     * Failures go through CHECK. */
    int (*check)(oq_isa level);
} kfamily;

/* The levels of loops compiled with OQ_CLONED (src/cpu_dispatch.h): the
 * level's name where there is a clone, else NULL. */
const char *clone_variant(oq_isa isa);

/* Runs fn with the cap at the baseline level, then restores `level`: for
 * checks whose reference is the baseline version itself. */
void at_baseline(oq_isa level, void (*fn)(void *arg), void *arg);

/* Deterministic pseudo-random numbers (xorshift32). */
uint32_t krand(uint32_t *state);
/* Uniform float in [lo, hi). */
float krand_float(uint32_t *state, float lo, float hi);

/* ---- one node through the executor --------------------------------------------- */

/* One input of a one-node model: a name ("" for an omitted optional input),
 * the tensor, and whether it is a constant (an initializer) or fed at run time. */
typedef struct knode_input {
    const char *name;
    const oq_tensor *t;
    bool constant;
} knode_input;

/* Builds a model of one node (op_type in domain at opset, the inputs in
 * order, n_outputs outputs y0, y1, ...), lets set_attrs (may be NULL) add its
 * attributes, runs it with `threads` threads, and moves its outputs into
 * out[0..n_outputs). On failure, returns the status with err set; out holds
 * nothing to release. */
oq_status knode_run(const char *op_type, const char *domain, int opset, const knode_input *in, int n_inputs,
                    oq_status (*set_attrs)(oq_node *n, const void *arg, oq_err *err), const void *arg,
                    int n_outputs, int threads, oq_tensor *out, oq_err *err);

/* ---- the families ------------------------------------------------------------------ */

extern const kfamily kf_sgemm, kf_conv, kf_qgemm, kf_requant, kf_qdq, kf_qconv, kf_qmatmul, kf_elementwise,
    kf_fusion, kf_pool, kf_hist, kf_sha256, kf_winograd, kf_gate;

#endif
