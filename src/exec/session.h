/* session.h: the executor's state, shared by session.c (sessions and
 * running), plan.c (planning) and memory.c (the buffer pool and kernel
 * memory). Internal to src/exec.
 *
 * A session plans every graph of a model once (kernel per node, value
 * lifetimes, subgraphs) and runs it any number of times. Activations live in
 * a buffer pool owned by the session and are reused within a run and across
 * runs. */
#ifndef ONNXQ_EXEC_SESSION_H
#define ONNXQ_EXEC_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "exec/fuse.h"
#include "exec/threadpool.h"
#include "onnxq/oq_exec.h"

/* ---- plans ------------------------------------------------------------------ */

typedef enum slot_kind {
    SLOT_EMPTY = 0,
    SLOT_CONST,  /* borrowed view of value->constant, bound at plan time for good */
    SLOT_VIEW,   /* borrowed view of a caller's tensor (graph input) for one run */
    SLOT_POOLED, /* a pool buffer written by a kernel */
} slot_kind;

/* The run-time home of one value. */
typedef struct slot {
    oq_tensor t;    /* owns_data is always false: the pool or the caller owns data */
    size_t cap;     /* SLOT_POOLED: capacity of t.data (t.nbytes is the exact size) */
    slot_kind kind;
} slot;

typedef struct plan_node {
    const oq_node *node;
    const oq_op_def *op;
    int64_t opset; /* the model's opset for the node's domain */
    bool folded;   /* a Constant whose decoded value is bound at plan time: never runs */
    bool deferred; /* in an elementwise chain: runs with the chain at its last node */
    const oq_fusion *chain; /* set on the last node of a chain run on its own */
    const oq_fusion *epilogue; /* a chain this node's kernel (Conv, DequantizeLinear) applies to its output */
    struct plan_node *quantize; /* a deferred QuantizeLinear of its result this node's kernel runs: after the
                                   epilogue of a DequantizeLinear, or after a squeeze-excite Mul (plan.c) */
    void *cache;   /* oq_kernel_cache: data the kernel derived from constant inputs, kept across runs */
    size_t cache_bytes;
    int n_dead;
    int *dead;     /* [n_dead] ids of values in this graph whose last reader is this node */
} plan_node;

/* One planned graph (the top level or a subgraph). */
typedef struct plan {
    const oq_graph *g;
    plan_node *nodes;         /* [g->n_nodes], graph order */
    const oq_value **outputs; /* [g->n_outputs] graph outputs, resolved through enclosing scopes */
    slot *slots;              /* [g->n_values] indexed by oq_value.id; reused by every run */
    const oq_tensor **args;   /* [max node inputs] kernel input pointers of the running node */
    int *dead_store;          /* storage behind every nodes[i].dead */
    oq_fusion *chains;        /* [n_chains] elementwise chains (top-level graph only) */
    int n_chains;
} plan;

/* A pool buffer not in use. */
typedef struct pool_buf {
    void *data;
    size_t cap;
} pool_buf;

/* A pool buffer held only while one kernel runs: scratch or an omitted output. */
typedef struct held {
    struct held *next;
    oq_tensor t;
    size_t cap;
} held;

struct oq_session {
    const oq_model *model; /* borrowed */
    int n_plans;
    plan **plans;          /* [n_plans]; plans[0] is the top-level graph */
    int n_inputs;
    const oq_value **inputs; /* [n_inputs] fed graph inputs (not initializers) */
    oq_threadpool *tp;
    oq_observer_fn observer;
    void *observer_user;
    bool *observed;        /* NULL or [top-level n_values]: what the observer is shown (pinned in the plan) */
    int n_free, cap_free;
    pool_buf *free_bufs;   /* [n_free] idle pool buffers */
    held *spare;           /* recycled held records */
    size_t cur_bytes, peak_bytes, naive_bytes; /* activation accounting of the current/last run */
};

struct oq_exec_frame {
    oq_session *s;
    plan *p;
    struct oq_exec_frame *parent; /* frame of the enclosing graph, NULL at top level */
    held *held;                   /* scratch and omitted outputs of the running node */
    plan_node *running;           /* the node whose kernel runs */
};

/* ---- planning (plan.c) ---------------------------------------------------------- */

/* Plans g and, recursively, its subgraphs; appends the plans to s->plans,
 * which owns them even when this fails. */
oq_status oq_exec_plan_graph(oq_session *s, const oq_graph *g, oq_err *err);
/* Frees p and what it owns; NULL is a no-op. */
void oq_exec_plan_destroy(plan *p);
/* The plan of graph g in s, or NULL. */
plan *oq_exec_plan_find(const oq_session *s, const oq_graph *g);

/* ---- memory (memory.c) ---------------------------------------------------------- */

/* Takes a buffer of at least `bytes` (best fit among idle buffers, else a new
 * one) and, when `zero`, zero-fills the first `bytes`. Counts the bytes as in use. */
oq_status oq_pool_take(oq_session *s, size_t bytes, bool zero, void **data, size_t *cap, oq_err *err);
/* Returns t's pool buffer (capacity cap) to the pool, freeing owned strings first. */
void oq_pool_give(oq_session *s, oq_tensor *t, size_t cap);
/* Empties a slot, giving a pooled buffer back; constants stay bound. */
void oq_slot_clear(oq_session *s, slot *sl);
/* Makes sl a borrowed view of t. */
void oq_slot_bind_view(slot *sl, const oq_tensor *t, slot_kind kind);
/* Fills t with the header of a (dt, rank, dims) tensor and its exact storage
 * size; `name` is the output's name for errors. */
oq_status oq_output_header(oq_tensor *t, oq_dtype dt, int rank, const int64_t *dims, const char *name,
                           oq_err *err);
/* Gives back every buffer held for the kernel that just ran in f. */
void oq_release_held(struct oq_exec_frame *f);

#endif
