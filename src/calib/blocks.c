/* blocks.c: samples in blocks of consecutive ones spread over worker threads,
 * each block folded into the total in block order. See oq_dataset.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_exec.h"

typedef struct block_run block_run;

typedef struct worker {
    block_run *run;
    int index;
    oq_err err;
    pthread_t thread;
} worker;

struct block_run {
    const oq_block_fns *fns;
    int64_t total, block_size, n_blocks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: */
    int64_t next_block; /* the next block to hand out */
    int64_t folded;     /* blocks [0, folded) are in the total */
    int64_t done;       /* samples run, for progress */
    bool first_done;    /* first_sample_done has run */
    oq_status st;       /* the earliest failure */
    oq_err err;
    /* the sample that failure came from (INT64_MAX: none); also read without mu to stop early */
    _Atomic int64_t failed_at;
};

static void fail(block_run *r, int64_t sample, const oq_err *err)
{
    pthread_mutex_lock(&r->mu);
    if (sample < atomic_load(&r->failed_at)) {
        atomic_store(&r->failed_at, sample);
        r->st = err->status;
        r->err = *err;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Runs block b on worker w and folds it in turn. False when the run failed
 * (in this block or in an earlier sample). */
static bool run_block(worker *w, int64_t b)
{
    block_run *r = w->run;
    const oq_block_fns *f = r->fns;
    int64_t first = b * r->block_size, end = first + r->block_size < r->total ? first + r->block_size : r->total;
    if (b > 0 && f->first_sample_done) {
        pthread_mutex_lock(&r->mu);
        while (!r->first_done && atomic_load(&r->failed_at) == INT64_MAX)
            pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
    }
    if (atomic_load(&r->failed_at) < first)
        return false;
    if (f->begin(f->user, w->index, b, &w->err)) {
        fail(r, first, &w->err);
        return false;
    }
    for (int64_t i = first; i < end; i++) {
        if (atomic_load(&r->failed_at) < i)
            return false;
        if (f->sample(f->user, w->index, i, &w->err)) {
            fail(r, i, &w->err);
            return false;
        }
        pthread_mutex_lock(&r->mu);
        if (i == 0 && f->first_sample_done) {
            f->first_sample_done(f->user, w->index);
            r->first_done = true;
            pthread_cond_broadcast(&r->cv);
        }
        r->done++;
        if (f->progress)
            f->progress(f->progress_user, r->done, r->total);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&r->mu);
    /* wait for every earlier block to fold, unless one of them failed */
    while (r->folded != b && atomic_load(&r->failed_at) >= first)
        pthread_cond_wait(&r->cv, &r->mu);
    bool ok = r->folded == b;
    if (ok && f->fold(f->user, w->index, b, &w->err)) {
        pthread_mutex_unlock(&r->mu);
        fail(r, first, &w->err);
        return false;
    }
    if (ok) {
        r->folded++;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void *work(void *arg)
{
    worker *w = arg;
    block_run *r = w->run;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int64_t b = r->next_block < r->n_blocks && atomic_load(&r->failed_at) == INT64_MAX ? r->next_block++ : -1;
        pthread_mutex_unlock(&r->mu);
        if (b < 0 || !run_block(w, b))
            return NULL;
    }
}

void oq_sample_block_workers(int threads, int64_t total, int64_t block_size, int *n_workers, int *threads_each)
{
    int t = oq_exec_thread_count(threads);
    int64_t blocks = block_size > 0 && total > 0 ? (total + block_size - 1) / block_size : 1;
    *n_workers = (int)(t < blocks ? t : blocks);
    *threads_each = t / *n_workers;
}

oq_status oq_run_sample_blocks(int64_t total, int64_t block_size, int n_workers, const oq_block_fns *fns,
                               oq_err *err)
{
    if (total <= 0)
        return OQ_OK;
    if (block_size < 1 || n_workers < 1)
        return oq_errf(err, OQ_EINVAL, "block size and worker count must be positive");
    block_run r = {.fns = fns, .total = total, .block_size = block_size, .failed_at = INT64_MAX};
    r.n_blocks = (total + block_size - 1) / block_size;
    worker *w = calloc((size_t)n_workers, sizeof *w);
    if (!w)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    for (int k = 0; k < n_workers; k++)
        w[k] = (worker){.run = &r, .index = k};
    /* a thread that cannot start leaves its blocks to the others */
    int started = 1;
    while (started < n_workers && pthread_create(&w[started].thread, NULL, work, &w[started]) == 0)
        started++;
    work(&w[0]);
    for (int k = 1; k < started; k++)
        pthread_join(w[k].thread, NULL);
    oq_status st = r.st;
    if (st)
        *err = r.err;
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    free(w);
    return st;
}
