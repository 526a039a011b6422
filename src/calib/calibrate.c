/* calibrate.c: the float pass over a data set that feeds the calibrator,
 * spread over worker threads by blocks of samples. See oq_calib.h.
 *
 * Samples go in blocks of CALIB_BLOCK consecutive ones. A worker takes the
 * next block, records it with its own session and calibrator and, once every
 * earlier block is in, merges it into the sum. Block 0 starts like a lone
 * calibrator; every other block starts its histograms on the grids sample 0
 * gave, so blocks merge bin for bin. The table thus depends on the data only,
 * never on the thread count or on which worker took which block. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_hash.h"

enum { CALIB_BLOCK = 32 };

typedef struct calib_run calib_run;

typedef struct worker {
    calib_run *run;
    oq_session *s;
    oq_calibrator *cal;
    oq_tensor *ins, *outs;
    const oq_value **in_values;
    int n_in, n_out;
    char hashes[CALIB_BLOCK][65]; /* the current block's sample hashes */
    oq_err err;
    pthread_t thread;
} worker;

struct calib_run {
    const oq_calib_options *opts;
    const oq_dataset *ds;
    int64_t total, n_blocks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: */
    int64_t next_block;    /* the next block to hand out */
    int64_t merged_blocks; /* blocks [0, merged_blocks) are in sum */
    int64_t done;          /* samples recorded, for progress */
    bool seeded;           /* seed holds sample 0's grids */
    oq_calibrator *sum, *seed;
    oq_sha256 data_hash;   /* over the sample hashes, in sample order */
    oq_status st;          /* the failure of the earliest failing sample */
    oq_err err;
    /* the earliest failing sample (INT64_MAX: none); read without mu to stop early */
    _Atomic int64_t failed_at;
};

static void fail(calib_run *r, int64_t sample, const oq_err *err)
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

/* Loads, runs and records sample i into w's calibrator; hash gets its hash. */
static oq_status record_sample(worker *w, int64_t i, char hash[65])
{
    oq_status st = oq_dataset_load(w->run->ds, i, w->ins, &w->err);
    if (st)
        return st;
    st = oq_session_run(w->s, w->ins, w->outs, &w->err);
    if (!st) {
        oq_calibrator_add_inputs(w->cal, w->n_in, w->in_values, w->ins);
        oq_dataset_sample_hash(w->run->ds, w->ins, hash);
    } else {
        oq_err_context(&w->err, "sample %lld", (long long)i);
    }
    for (int k = 0; k < w->n_in; k++)
        oq_tensor_release(&w->ins[k]);
    for (int k = 0; k < w->n_out; k++)
        oq_tensor_release(&w->outs[k]);
    return st;
}

/* Records block b into w's calibrator and merges it into the sum in turn.
 * Returns false when the run failed (here or in an earlier sample). */
static bool record_block(worker *w, int64_t b)
{
    calib_run *r = w->run;
    int64_t first = b * CALIB_BLOCK, end = first + CALIB_BLOCK < r->total ? first + CALIB_BLOCK : r->total;
    if (b > 0) {
        pthread_mutex_lock(&r->mu);
        while (!r->seeded && atomic_load(&r->failed_at) == INT64_MAX)
            pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
    }
    oq_calibrator_restart(w->cal, b > 0 ? r->seed : NULL);
    for (int64_t i = first; i < end; i++) {
        if (atomic_load(&r->failed_at) < i)
            return false;
        if (record_sample(w, i, w->hashes[i - first])) {
            fail(r, i, &w->err);
            return false;
        }
        pthread_mutex_lock(&r->mu);
        if (i == 0) {
            oq_calibrator_restart(r->seed, w->cal);
            r->seeded = true;
            pthread_cond_broadcast(&r->cv);
        }
        r->done++;
        if (r->opts->progress)
            r->opts->progress(r->opts->progress_user, r->done, r->total);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&r->mu);
    while (r->merged_blocks != b && atomic_load(&r->failed_at) >= first)
        pthread_cond_wait(&r->cv, &r->mu);
    bool ok = r->merged_blocks == b;
    if (ok && oq_calibrator_merge(r->sum, w->cal, &w->err)) {
        pthread_mutex_unlock(&r->mu);
        fail(r, first, &w->err);
        return false;
    }
    if (ok) {
        for (int64_t i = first; i < end; i++)
            oq_sha256_update(&r->data_hash, w->hashes[i - first], 64);
        r->merged_blocks++;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void *work(void *arg)
{
    worker *w = arg;
    calib_run *r = w->run;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int64_t b = r->next_block < r->n_blocks && atomic_load(&r->failed_at) == INT64_MAX ? r->next_block++ : -1;
        pthread_mutex_unlock(&r->mu);
        if (b < 0 || !record_block(w, b))
            return NULL;
    }
}

static void worker_release(worker *w)
{
    oq_calibrator_destroy(w->cal);
    oq_session_destroy(w->s);
    free(w->ins);
    free(w->outs);
    free(w->in_values);
}

/* A session of `threads` threads with its own calibrator. */
static oq_status worker_init(worker *w, calib_run *r, const oq_model *m, int threads, oq_err *err)
{
    w->run = r;
    if (!(w->cal = oq_calibrator_create(m, r->opts->bins, r->opts->observe, err)))
        return err->status;
    /* the session computes what the calibrator records on its own and may fuse the rest */
    oq_exec_options eo = {.threads = threads, .observed = oq_calibrator_observed(w->cal)};
    oq_status st = oq_session_create(&w->s, m, &eo, err);
    if (st)
        return st;
    w->n_in = oq_session_input_count(w->s);
    w->n_out = oq_session_output_count(w->s);
    w->ins = calloc((size_t)w->n_in + 1, sizeof *w->ins);
    w->outs = calloc((size_t)w->n_out + 1, sizeof *w->outs);
    w->in_values = calloc((size_t)w->n_in + 1, sizeof *w->in_values);
    if (!w->ins || !w->outs || !w->in_values)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < w->n_in; i++)
        w->in_values[i] = oq_session_input(w->s, i);
    oq_session_set_observer(w->s, oq_calibrator_observe, w->cal);
    return OQ_OK;
}

oq_status oq_calibrate(const oq_model *m, oq_dataset *ds, const oq_calib_options *opts, oq_calib_table **out,
                       oq_err *err)
{
    *out = NULL;
    calib_run r = {.opts = opts, .ds = ds, .total = oq_dataset_count(ds), .failed_at = INT64_MAX};
    if (opts->max_samples && opts->max_samples < r.total)
        r.total = opts->max_samples;
    r.n_blocks = (r.total + CALIB_BLOCK - 1) / CALIB_BLOCK;
    long threads = opts->threads > 0 ? opts->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    /* one worker per block at most; a lone worker's session gets every thread */
    int n_workers = (int)(threads < r.n_blocks ? threads : r.n_blocks > 0 ? r.n_blocks : 1);
    worker *w = calloc((size_t)n_workers, sizeof *w);
    r.sum = oq_calibrator_create(m, opts->bins, opts->observe, err);
    r.seed = r.sum ? oq_calibrator_create(m, opts->bins, opts->observe, err) : NULL;
    oq_sha256_init(&r.data_hash);
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    oq_status st = !w ? oq_errf(err, OQ_ENOMEM, "out of memory") : !r.seed ? err->status : OQ_OK;
    int session_threads = (int)(threads / n_workers);
    for (int k = 0; !st && k < n_workers; k++)
        st = worker_init(&w[k], &r, m, session_threads, err);
    int started = 1;
    if (!st) {
        while (started < n_workers && pthread_create(&w[started].thread, NULL, work, &w[started]) == 0)
            started++;
        work(&w[0]); /* the calling thread is worker 0 */
        for (int k = 1; k < started; k++)
            pthread_join(w[k].thread, NULL);
        if (r.st) {
            *err = r.err;
            st = r.st;
        }
    }
    if (!st && !(*out = oq_calibrator_table(r.sum, &opts->range, err)))
        st = err->status;
    if (!st) {
        (*out)->bins = opts->bins;
        oq_sha256_hex(&r.data_hash, (*out)->data_sha256);
    }
    for (int k = 0; w && k < n_workers; k++)
        worker_release(&w[k]);
    free(w);
    oq_calibrator_destroy(r.sum);
    oq_calibrator_destroy(r.seed);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    return st;
}
