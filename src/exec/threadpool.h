/* threadpool.h: a small persistent pthread pool for oq_parallel_for.
 * Internal to src/exec. */
#ifndef ONNXQ_EXEC_THREADPOOL_H
#define ONNXQ_EXEC_THREADPOOL_H

#include <stdint.h>

#include "exec/kernel.h"

typedef struct oq_threadpool oq_threadpool;

/* Starts n_threads - 1 workers (the caller is the n-th thread); n_threads >= 1.
 * *out is owned by the caller (oq_threadpool_destroy). */
oq_status oq_threadpool_create(oq_threadpool **out, int n_threads, oq_err *err);
/* Stops and joins the workers. NULL is a no-op. */
void oq_threadpool_destroy(oq_threadpool *tp);
int oq_threadpool_size(const oq_threadpool *tp);

/* Calls fn over [0, n) in at most size(tp) contiguous chunks, chunk j always
 * covering the same indices for a given (n, size); returns when all finished.
 * Runs inline when the pool has one thread, n <= 1, or when called from inside
 * another oq_threadpool_run (nested parallelism). Not reentrant from two
 * unrelated threads at once: one caller per pool. */
void oq_threadpool_run(oq_threadpool *tp, int64_t n, oq_range_fn fn, void *arg);

#endif
