/* oq_exec.h: the built-in executor. A session plans a model once (node order,
 * kernels, value lifetimes) and runs it on any number of inputs; shapes are
 * computed at run time, so dynamic and symbolic dims work. */
#ifndef ONNXQ_OQ_EXEC_H
#define ONNXQ_OQ_EXEC_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_session oq_session;

typedef struct oq_exec_options {
    int threads; /* worker threads; 0 = number of online cores */
    /* NULL, or [n_values of the top-level graph] by value id: the values an
     * observer will be shown. They are always computed on their own; the
     * others may be fused away. NULL: an observer is shown every value and
     * nothing is fused while one is set. Borrowed for the call only. */
    const bool *observed;
} oq_exec_options;

/* The threads a session runs for oq_exec_options.threads = requested: that
 * many, or every online core for 0; at least 1 and at most 256. */
int oq_exec_thread_count(int requested);

/* Called after each node for each of its outputs (top-level graph only; with
 * oq_exec_options.observed, for those values only), with the value and its
 * computed tensor (borrowed: valid only during the call). */
typedef void (*oq_observer_fn)(void *user, const oq_value *value, const oq_tensor *tensor);

/* Plans m for execution. m is borrowed and must outlive the session. Fails
 * naming the first node whose op, opset or domain has no kernel. */
oq_status oq_session_create(oq_session **out, const oq_model *m, const oq_exec_options *opts, oq_err *err);
void oq_session_destroy(oq_session *s);

/* Graph inputs the caller must feed (inputs that are not initializers), in graph order. */
int oq_session_input_count(const oq_session *s);
const oq_value *oq_session_input(const oq_session *s, int i);
int oq_session_output_count(const oq_session *s);
const oq_value *oq_session_output(const oq_session *s, int i);

void oq_session_set_observer(oq_session *s, oq_observer_fn fn, void *user);

/* Runs once. inputs[i] feeds oq_session_input(s, i) (borrowed; dtype and rank
 * are checked against the declaration). outputs[0..output_count) are set to
 * owned tensors the caller releases. */
oq_status oq_session_run(oq_session *s, const oq_tensor *inputs, oq_tensor *outputs, oq_err *err);

typedef struct oq_exec_stats {
    size_t peak_bytes;  /* most activation bytes held at once in the last run */
    size_t naive_bytes; /* sum of all activation sizes in the last run (no reuse) */
    int threads;
} oq_exec_stats;
void oq_session_stats(const oq_session *s, oq_exec_stats *st);

/* ---- running in steps ----------------------------------------------------------
 * For analyses that run one model many times from a known point (one node
 * changed and only what follows it re-run; layer after layer over many
 * samples), the values of a run in progress are kept between calls in an
 * oq_run_state, one per sample. A step is a top-level node, in graph order.
 * Where an elementwise chain runs fused (see oq_exec_options.observed), its
 * intermediate values are never held: a caller that sets or reads one
 * observes it. */
typedef struct oq_run_state oq_run_state;

/* An empty state for s (caller destroys it, before s). */
oq_status oq_run_state_create(oq_run_state **out, oq_session *s, oq_err *err);
void oq_run_state_destroy(oq_run_state *rs);
/* Checks and copies inputs[0..oq_session_input_count) into rs, as oq_session_run takes them. */
oq_status oq_run_state_feed(oq_run_state *rs, const oq_tensor *inputs, oq_err *err);
/* Sets value v (of the top-level graph, not a constant) in rs to a copy of t,
 * e.g. a value another run computed. */
oq_status oq_run_state_set(oq_run_state *rs, const oq_value *v, const oq_tensor *t, oq_err *err);
/* v's tensor in rs (borrowed, valid until rs changes), or NULL when rs does not hold it. */
const oq_tensor *oq_run_state_get(const oq_run_state *rs, const oq_value *v);
/* Runs nodes [begin, end) of the top-level graph on rs's values; a node
 * reading a value rs does not hold fails naming it. Afterwards rs holds what
 * those nodes computed that a node from `end` on still reads, the graph's
 * outputs, and what it held that no node in the range read last. The
 * observer is called as in oq_session_run. */
oq_status oq_session_run_steps(oq_session *s, oq_run_state *rs, int begin, int end, oq_err *err);

/* ---- the op table ----------------------------------------------------------
 * One table lists every (domain, op) the executor claims, the opsets it
 * implements and the element types it accepts. Tests read their claims from here. */
typedef struct oq_kernel_ctx oq_kernel_ctx;
typedef oq_status (*oq_kernel_fn)(oq_kernel_ctx *c);

#define OQ_DT(x) (1u << OQ_DTYPE_##x)
typedef struct oq_op_def {
    const char *domain;  /* "" for ai.onnx, "com.microsoft" for contrib */
    const char *op_type;
    int min_opset;       /* first opset version whose semantics the kernel implements */
    uint32_t dtypes;     /* OQ_DT mask: every input/output type the kernel accepts */
    oq_kernel_fn run;
} oq_op_def;

int oq_op_count(void);
const oq_op_def *oq_op_at(int i);
/* The kernel for (domain, op_type) at the model's opset, or NULL. */
const oq_op_def *oq_op_find(const char *domain, const char *op_type, int64_t opset);

#endif
