/* calibrate.c: the float pass over a data set that feeds the calibrator, in
 * blocks of samples spread over threads (oq_run_sample_blocks). See
 * oq_calib.h.
 *
 * Each worker records a block with its own session and calibrator, and the
 * blocks merge into the sum in order. Block 0 starts like a lone calibrator;
 * every other block starts its histograms on the grids sample 0 gave, so the
 * blocks merge bin for bin. The table thus depends on the data only, never on
 * the thread count or on which worker took which block. */
#include <stdlib.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_exec.h"
#include "onnxq/oq_hash.h"

enum { CALIB_BLOCK = 32 };

typedef struct worker {
    oq_session *s;
    oq_calibrator *cal;
    oq_tensor *ins, *outs;
    const oq_value **in_values;
    int n_in, n_out;
    char hashes[CALIB_BLOCK][65]; /* the current block's sample hashes */
} worker;

typedef struct calib_run {
    const oq_dataset *ds;
    int64_t total;        /* samples to run */
    worker *w;
    oq_calibrator *sum;
    oq_calibrator *seed;  /* empty, on the grids sample 0 gave */
    oq_sha256 data_hash;  /* over the sample hashes, in sample order */
} calib_run;

static oq_status begin_block(void *user, int k, int64_t b, oq_err *err)
{
    (void)err;
    calib_run *r = user;
    oq_calibrator_restart(r->w[k].cal, b > 0 ? r->seed : NULL);
    return OQ_OK;
}

/* Loads, runs and records sample i with worker k and keeps its hash. */
static oq_status record_sample(void *user, int k, int64_t i, oq_err *err)
{
    calib_run *r = user;
    worker *w = &r->w[k];
    oq_status st = oq_dataset_load(r->ds, i, w->ins, err);
    if (st)
        return st;
    st = oq_session_run(w->s, w->ins, w->outs, err);
    if (!st) {
        oq_calibrator_add_inputs(w->cal, w->n_in, w->in_values, w->ins);
        oq_dataset_sample_hash(r->ds, w->ins, w->hashes[i % CALIB_BLOCK]);
    } else {
        oq_err_context(err, "sample %lld", (long long)i);
    }
    for (int j = 0; j < w->n_in; j++)
        oq_tensor_release(&w->ins[j]);
    for (int j = 0; j < w->n_out; j++)
        oq_tensor_release(&w->outs[j]);
    return st;
}

static void take_seed(void *user, int k)
{
    calib_run *r = user;
    oq_calibrator_restart(r->seed, r->w[k].cal);
}

static oq_status fold_block(void *user, int k, int64_t b, oq_err *err)
{
    calib_run *r = user;
    worker *w = &r->w[k];
    oq_status st = oq_calibrator_merge(r->sum, w->cal, err);
    if (st)
        return st;
    int64_t n = r->total - b * CALIB_BLOCK < CALIB_BLOCK ? r->total - b * CALIB_BLOCK : CALIB_BLOCK;
    for (int64_t i = 0; i < n; i++)
        oq_sha256_update(&r->data_hash, w->hashes[i], 64);
    return OQ_OK;
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
static oq_status worker_init(worker *w, const oq_model *m, const oq_calib_options *opts, int threads, oq_err *err)
{
    if (!(w->cal = oq_calibrator_create(m, opts->bins, opts->observe, err)))
        return err->status;
    oq_calibrator_keep_channels(w->cal, opts->channels);
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
    int64_t total = oq_dataset_count(ds);
    if (opts->max_samples && opts->max_samples < total)
        total = opts->max_samples;
    int n_workers, threads_each;
    oq_sample_block_workers(opts->threads, total, CALIB_BLOCK, &n_workers, &threads_each);
    calib_run r = {.ds = ds, .total = total, .w = calloc((size_t)n_workers, sizeof *r.w)};
    r.sum = oq_calibrator_create(m, opts->bins, opts->observe, err);
    r.seed = r.sum ? oq_calibrator_create(m, opts->bins, opts->observe, err) : NULL;
    if (r.sum)
        oq_calibrator_keep_channels(r.sum, opts->channels);
    oq_sha256_init(&r.data_hash);
    oq_status st = !r.w ? oq_errf(err, OQ_ENOMEM, "out of memory") : !r.seed ? err->status : OQ_OK;
    for (int k = 0; !st && k < n_workers; k++)
        st = worker_init(&r.w[k], m, opts, threads_each, err);
    oq_block_fns fns = {.user = &r, .begin = begin_block, .sample = record_sample, .fold = fold_block,
                        .first_sample_done = take_seed, .progress = opts->progress,
                        .progress_user = opts->progress_user};
    if (!st)
        st = oq_run_sample_blocks(total, CALIB_BLOCK, n_workers, &fns, err);
    if (!st && !(*out = oq_calibrator_table(r.sum, &opts->range, err)))
        st = err->status;
    if (!st) {
        (*out)->bins = opts->bins;
        oq_sha256_hex(&r.data_hash, (*out)->data_sha256);
    }
    for (int k = 0; r.w && k < n_workers; k++)
        worker_release(&r.w[k]);
    free(r.w);
    oq_calibrator_destroy(r.sum);
    oq_calibrator_destroy(r.seed);
    return st;
}
