/* kernel.h: what a kernel sees. Internal to src/exec.
 *
 * A kernel reads its inputs, validates attributes and shapes, asks the
 * executor for each output with oq_kernel_output (the executor owns and
 * recycles the memory), and fills it. Kernels never allocate outputs, never
 * free inputs and keep no state between calls. Errors go through c->err with
 * a message saying what is wrong; the executor adds the node name and op. */
#ifndef ONNXQ_EXEC_KERNEL_H
#define ONNXQ_EXEC_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxq/oq_exec.h"

struct oq_exec_frame; /* executor-private state of one graph run */

struct oq_kernel_ctx {
    const oq_node *node;
    int64_t opset;                 /* the model's opset for the node's domain */
    int n_inputs;
    const oq_tensor *const *inputs; /* [n_inputs]; NULL for omitted optional inputs */
    int n_outputs;                 /* node->n_outputs */
    struct oq_exec_frame *frame;
    oq_err *err;
    /* NULL, or an elementwise chain (fuse.h) the executor moved into this
     * node: output 0 is then the chain's result, and the kernel (Conv and
     * DequantizeLinear are given one) applies the chain to its output before
     * returning. */
    const struct oq_fusion *epilogue;
    /* NULL, or a per-tensor QuantizeLinear of the node's result that the
     * executor also moved into this node: output 0 is then that node's
     * output. DequantizeLinear gets one after its epilogue; the Mul of a
     * squeeze-excite block gets one for its product (oq_gate_quantize). */
    const oq_node *quantize;
};

/* Input k or NULL when omitted or absent. */
static inline const oq_tensor *oq_kernel_input(const oq_kernel_ctx *c, int k)
{
    return k < c->n_inputs ? c->inputs[k] : NULL;
}

/* Allocates output k with the given type and shape and returns it, contents
 * zero-filled, or NULL with c->err set. An omitted optional output still gets
 * a scratch tensor, so kernels need no special case. */
oq_tensor *oq_kernel_output(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims);
/* The same without the zero fill (the buffer holds stale data): only for
 * kernels that write every element of the output. */
oq_tensor *oq_kernel_output_raw(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims);
/* The value output k of c's node is written to: for output 0, the result of
 * the epilogue's chain, or of the QuantizeLinear after it, when the executor
 * moved them into the node; NULL past the node's outputs. */
const oq_value *oq_kernel_written_value(const oq_kernel_ctx *c, int k);

/* Zero-filled scratch memory valid until the kernel returns; NULL with c->err
 * set on failure. The _raw form skips the fill. */
void *oq_kernel_scratch(oq_kernel_ctx *c, size_t bytes);
void *oq_kernel_scratch_raw(oq_kernel_ctx *c, size_t bytes);

/* True when input k is a constant of the model (an initializer or a decoded
 * Constant node), the same tensor on every run. */
bool oq_kernel_input_const(const oq_kernel_ctx *c, int k);

/* Memory that stays with the running node across runs: filled by fill(dst,
 * arg) the first time, and again whenever `bytes` changes; returned as is
 * otherwise; 64-byte aligned. Only for data derived from constant inputs
 * (e.g. weights packed for the GEMM). The session owns it. NULL with c->err
 * set on failure. */
const void *oq_kernel_cache(oq_kernel_ctx *c, size_t bytes, void (*fill)(void *dst, void *arg), void *arg);

/* Runs fn over [0, n) split into contiguous chunks across the session's
 * threads; fn must write disjoint memory per index. Results must not depend on
 * the number of threads. */
typedef void (*oq_range_fn)(void *arg, int64_t begin, int64_t end);
void oq_parallel_for(oq_kernel_ctx *c, int64_t n, oq_range_fn fn, void *arg);
int oq_kernel_threads(const oq_kernel_ctx *c);

/* Runs subgraph g (an If branch or Loop body) with the given inputs bound to
 * g->inputs in order; outer-scope values resolve through the caller's frame.
 * outputs[0..g->n_outputs) receive owned tensors the kernel must release. */
oq_status oq_kernel_run_graph(oq_kernel_ctx *c, const oq_graph *g, int n_inputs,
                              const oq_tensor *const *inputs, oq_tensor *outputs);

/* Error helpers: format into c->err and return the status. */
#define OQ_KERR(c, ...) oq_errf((c)->err, OQ_EINVAL, __VA_ARGS__)
#define OQ_KUNSUP(c, ...) oq_errf((c)->err, OQ_EUNSUPPORTED, __VA_ARGS__)

/* Requires input k to be present; returns it or NULL with c->err set. */
const oq_tensor *oq_kernel_require(oq_kernel_ctx *c, int k);

#endif
