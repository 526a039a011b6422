/* threadpool.c: persistent workers woken per job by a generation counter.
 *
 * A job is cut into at most n_threads fixed chunks (chunk_range), and
 * whoever is free claims the next unclaimed one under the mutex: the caller
 * and the workers alike. So the caller never sits idle waiting for a worker
 * that the OS has not scheduled yet (on a busy machine that can take
 * milliseconds): it runs the unclaimed chunks itself and only waits for
 * chunks a worker has already started. Which thread runs a chunk changes
 * nothing in its result. An idle worker first watches for the next job for
 * SPIN_NS before it sleeps, since a model's kernels come back to back and a
 * wake-up through the kernel costs more than most of them. */
#include "exec/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

enum { SPIN_NS = 100000 };

struct oq_threadpool {
    int n_threads;        /* workers + the calling thread */
    pthread_t *workers;   /* [n_threads - 1] */
    int n_started;        /* workers successfully created */
    pthread_mutex_t mu;   /* guards everything below */
    pthread_cond_t wake;  /* workers wait here for a new generation */
    pthread_cond_t done;  /* the caller waits here for unfinished == 0 */
    _Atomic uint64_t generation; /* bumped once per job; also read unlocked while spinning */
    _Atomic bool quit;
    /* the current job */
    oq_range_fn fn;
    void *arg;
    int64_t n;
    int chunks;
    int next;             /* first unclaimed chunk */
    int unfinished;       /* chunks not finished yet */
};

typedef struct worker_arg {
    oq_threadpool *tp;
} worker_arg;

/* Set while a thread is inside a job, so nested parallel_for calls run inline. */
static _Thread_local bool in_job;

/* Chunk j of [0, n) split into `chunks` near-equal contiguous parts. */
static void chunk_range(int64_t n, int chunks, int j, int64_t *begin, int64_t *end)
{
    int64_t base = n / chunks, rem = n % chunks;
    *begin = j * base + (j < rem ? j : rem);
    *end = *begin + base + (j < rem ? 1 : 0);
}

/* With tp->mu held: runs unclaimed chunks of the current job until none is
 * left, unlocking around each; returns with tp->mu held. */
static void claim_chunks(oq_threadpool *tp)
{
    while (tp->next < tp->chunks) {
        int c = tp->next++;
        oq_range_fn fn = tp->fn;
        void *arg = tp->arg;
        int64_t b, e;
        chunk_range(tp->n, tp->chunks, c, &b, &e);
        pthread_mutex_unlock(&tp->mu);
        in_job = true;
        fn(arg, b, e);
        in_job = false;
        pthread_mutex_lock(&tp->mu);
        if (--tp->unfinished == 0)
            pthread_cond_signal(&tp->done);
    }
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Without tp->mu: returns once a job after `seen` (or quit) is posted, or
 * after SPIN_NS without one. */
static void spin_for_job(oq_threadpool *tp, uint64_t seen)
{
    int64_t until = now_ns() + SPIN_NS;
    for (int i = 1;; i++) {
        if (atomic_load_explicit(&tp->generation, memory_order_relaxed) != seen ||
            atomic_load_explicit(&tp->quit, memory_order_relaxed))
            return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (i % 64 == 0 && now_ns() > until)
            return;
    }
}

static void *worker_main(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    free(p);
    oq_threadpool *tp = wa.tp;
    uint64_t seen = 0;
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        if (tp->generation == seen && !tp->quit) {
            pthread_mutex_unlock(&tp->mu);
            spin_for_job(tp, seen);
            pthread_mutex_lock(&tp->mu);
        }
        while (tp->generation == seen && !tp->quit)
            pthread_cond_wait(&tp->wake, &tp->mu);
        if (tp->quit)
            break;
        seen = tp->generation;
        claim_chunks(tp);
    }
    pthread_mutex_unlock(&tp->mu);
    return NULL;
}

oq_status oq_threadpool_create(oq_threadpool **out, int n_threads, oq_err *err)
{
    *out = NULL;
    if (n_threads < 1)
        return oq_errf(err, OQ_EINVAL, "thread count %d must be at least 1", n_threads);
    oq_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done, NULL);
    if (n_threads > 1 && !(tp->workers = calloc((size_t)n_threads - 1, sizeof *tp->workers))) {
        oq_threadpool_destroy(tp);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa)
            wa->tp = tp;
        if (!wa || pthread_create(&tp->workers[i - 1], NULL, worker_main, wa)) {
            free(wa);
            oq_threadpool_destroy(tp);
            return oq_errf(err, OQ_ENOMEM, "cannot start worker thread %d of %d", i, n_threads - 1);
        }
        tp->n_started++;
    }
    *out = tp;
    return OQ_OK;
}

void oq_threadpool_destroy(oq_threadpool *tp)
{
    if (!tp)
        return;
    pthread_mutex_lock(&tp->mu);
    tp->quit = true;
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 0; i < tp->n_started; i++)
        pthread_join(tp->workers[i], NULL);
    pthread_cond_destroy(&tp->done);
    pthread_cond_destroy(&tp->wake);
    pthread_mutex_destroy(&tp->mu);
    free(tp->workers);
    free(tp);
}

int oq_threadpool_size(const oq_threadpool *tp) { return tp ? tp->n_threads : 1; }

void oq_threadpool_run(oq_threadpool *tp, int64_t n, oq_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (!tp || tp->n_threads == 1 || n == 1 || in_job) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&tp->mu);
    tp->fn = fn;
    tp->arg = arg;
    tp->n = n;
    tp->chunks = n < tp->n_threads ? (int)n : tp->n_threads;
    tp->next = 0;
    tp->unfinished = tp->chunks;
    tp->generation++;
    pthread_cond_broadcast(&tp->wake);
    claim_chunks(tp);
    while (tp->unfinished > 0)
        pthread_cond_wait(&tp->done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}
