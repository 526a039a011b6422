/* oq_calib.h: activation statistics and range selection.
 *
 * A histogram per observed tensor is grown in place (bins merge in pairs when
 * data falls outside), so memory is O(tensors x bins) whatever the number of
 * samples. Every range method works from the histogram, so one pass over the
 * data serves them all, and tables made on shards of the data merge. */
#ifndef ONNXQ_OQ_CALIB_H
#define ONNXQ_OQ_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_cpu.h"
#include "onnxq/oq_dataset.h"
#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

typedef struct oq_hist {
    int nbins;        /* even, >= 2 */
    double lo;        /* left edge of bin 0 */
    double width;     /* bin width; 0 while nothing finite was seen */
    double *counts;   /* [nbins]; doubles so merged tables can split bins */
    double min, max;  /* exact extremes of the finite values seen */
    double count;     /* finite values seen */
    double nonfinite; /* NaN/Inf values seen (ignored in ranges) */
} oq_hist;

oq_status oq_hist_init(oq_hist *h, int nbins, oq_err *err);
void oq_hist_release(oq_hist *h);
/* Adds n float values, growing the range as needed. */
void oq_hist_add(oq_hist *h, const float *x, int64_t n);
/* The same without allocating: scratch holds oq_hist_scratch_size(h->nbins)
 * zeros and is all zeros again on return (one scratch can serve every
 * histogram of that many bins or fewer, one call at a time). */
void oq_hist_add_scratch(oq_hist *h, const float *x, int64_t n, uint32_t *scratch);
size_t oq_hist_scratch_size(int nbins);
/* The binning kernel in use: "avx512", "avx2" or "plain" (the one of the
 * highest enabled instruction-set level that has one; oq_cpu.h). Counts never
 * depend on it. */
const char *oq_hist_impl_name(void);
/* The binning kernel compiled for level isa, or NULL when it has none. */
const char *oq_hist_variant(oq_isa isa);
/* Adds src into dst (same nbins): min/max/count exactly; the bins onto a grid
 * covering both, exactly when the grids line up (as after oq_hist_restart
 * from one grid), else by proportional overlap. */
oq_status oq_hist_merge(oq_hist *dst, const oq_hist *src, oq_err *err);
/* Empties h, keeping grid's bins (lo and width; none if grid is NULL or has
 * another bin count). Histograms restarted from one grid keep lining up as
 * they grow (with a power-of-two bin count, until their range has grown that
 * many times over; oq_hist_merge checks). */
void oq_hist_restart(oq_hist *h, const oq_hist *grid);

typedef enum oq_calib_method {
    OQ_CALIB_MINMAX,
    OQ_CALIB_PERCENTILE,
    OQ_CALIB_ENTROPY,
    OQ_CALIB_MSE,
    OQ_CALIB_METHOD_COUNT
} oq_calib_method;

/* "minmax", "percentile", "entropy", "mse". */
const char *oq_calib_method_name(oq_calib_method m);
/* Parses a method name; returns OQ_CALIB_METHOD_COUNT when unknown. */
oq_calib_method oq_calib_method_parse(const char *name);

typedef struct oq_range_options {
    oq_calib_method method;
    double percentile; /* for OQ_CALIB_PERCENTILE, in (50, 100] */
    bool symmetric;    /* range symmetric around 0 */
    int qmin, qmax;    /* target integer range, e.g. 0..255 or -128..127 */
} oq_range_options;

/* Chooses the clipping range [*lo, *hi] for h by the given method. The range
 * always contains 0 and is never empty (a tensor seen only as 0 gets [0, 0]).
 * A histogram with no finite values gives [0, 0]. Fails only when out of memory. */
oq_status oq_hist_range(const oq_hist *h, const oq_range_options *opt, double *lo, double *hi, oq_err *err);

/* ---- per-channel extremes ------------------------------------------------------ */

/* The extremes of each channel (axis 1, as in an NCHW activation) of a tensor,
 * kept for the tensors that cross-layer equalization may scale (oq_correct.h). */
typedef struct oq_channel_stats {
    int64_t n;           /* channels; 0 while none were seen */
    double *min, *max;   /* [n] finite values only; +inf/-inf for a channel never seen finite */
} oq_channel_stats;

void oq_channel_stats_release(oq_channel_stats *s);
/* Adds tensor t's channels (axis 1 of a float tensor of rank >= 2) to s; a
 * tensor with another channel count than s already holds marks s unusable
 * (n = -1). Fails only when out of memory. */
oq_status oq_channel_stats_add(oq_channel_stats *s, const oq_tensor *t, oq_err *err);
/* Adds src into dst (both kept for the same tensor). */
oq_status oq_channel_stats_merge(oq_channel_stats *dst, const oq_channel_stats *src, oq_err *err);

/* Cross-layer equalization never scales a channel by more than this. */
#define OQ_EQUALIZE_MAX_SCALE 64.0

/* ---- calibration table ------------------------------------------------------ */

typedef struct oq_calib_entry {
    char *name;
    oq_hist hist;
    double range[2]; /* chosen by the table's method */
    /* for tensors cross-layer equalization may scale: the extremes of each
     * channel, and the scale chosen for each with the range (n == 0: none) */
    oq_channel_stats channels;
    double *scales;  /* [channels.n] or NULL; see oq_calib_table_compute_ranges */
} oq_calib_entry;

typedef struct oq_calib_table {
    char model_sha256[65];
    char data_sha256[65];
    int64_t samples;
    bool prepared;           /* recorded on the model after graph preparation (oq_prepare.h): its value names */
    oq_range_options range;
    int bins;
    int n_entries;
    oq_calib_entry *entries; /* in graph value order */
} oq_calib_table;

#define OQ_CALIB_TABLE_VERSION 1

oq_calib_table *oq_calib_table_create(int bins, const oq_range_options *range);
void oq_calib_table_destroy(oq_calib_table *t);
/* Entry for name, or NULL. */
const oq_calib_entry *oq_calib_table_find(const oq_calib_table *t, const char *name);
/* Recomputes every entry's range with the table's range options, and the
 * equalization scales of entries with per-channel extremes: each channel is
 * stretched until its extremes reach the entry's range on one side (s_c =
 * min(hi / max_c, lo / min_c) over the sides it has values on), never
 * shrunk, and at most OQ_EQUALIZE_MAX_SCALE. */
oq_status oq_calib_table_compute_ranges(oq_calib_table *t, oq_err *err);

/* The table as JSON text (deterministic bytes, ending in a newline) in a
 * malloc'ed buffer the caller frees. */
oq_status oq_calib_table_serialize(const oq_calib_table *t, uint8_t **buf, size_t *len, oq_err *err);
/* Writes the table as JSON (oq_calib_table_serialize) to path atomically. */
oq_status oq_calib_table_save(const oq_calib_table *t, const char *path, oq_err *err);
/* Reads and validates a table written by oq_calib_table_save. */
oq_status oq_calib_table_load(oq_calib_table **out, const char *path, oq_err *err);
/* Same from the JSON text buf[0..len) (borrowed); `what` names it in errors. */
oq_status oq_calib_table_parse(oq_calib_table **out, const uint8_t *buf, size_t len, const char *what, oq_err *err);
/* Merges src into dst. Both must come from the same model, record the same
 * options (prepared, bins, method, percentile, symmetric, qmin/qmax) and the
 * same tensors, else it fails naming the first difference, with dst_name and
 * src_name for the tables (dst before any change). Samples add, histograms
 * merge, the data hash covers both, ranges are recomputed. */
oq_status oq_calib_table_merge(oq_calib_table *dst, const oq_calib_table *src, const char *dst_name,
                               const char *src_name, oq_err *err);

/* ---- collecting statistics from the executor -------------------------------- */

typedef struct oq_calibrator oq_calibrator;

/* Observes the float values of m's top-level graph that are not constants
 * (graph inputs and node outputs) and that observe[v->id] selects (NULL: all
 * of them). m is borrowed; observe is read during the call only. */
oq_calibrator *oq_calibrator_create(const oq_model *m, int bins, const bool *observe, oq_err *err);
/* Also keeps per-channel extremes (oq_channel_stats) of the observed values
 * that channels[v->id] selects (read during the call only). */
void oq_calibrator_keep_channels(oq_calibrator *c, const bool *channels);
/* [n_values of the top-level graph] by value id: the values c records (for
 * oq_exec_options.observed). Owned by c. */
const bool *oq_calibrator_observed(const oq_calibrator *c);
void oq_calibrator_destroy(oq_calibrator *c);
/* Observer callback for oq_session_set_observer (user = the calibrator). */
void oq_calibrator_observe(void *user, const oq_value *value, const oq_tensor *tensor);
/* Records one sample's graph inputs (the executor reports node outputs only)
 * and counts the sample. */
void oq_calibrator_add_inputs(oq_calibrator *c, int n, const oq_value *const *values, const oq_tensor *tensors);
/* Empties c's statistics. Each histogram keeps the grid of its twin in
 * grid_from (a calibrator of the same model and bins; NULL: no grid), so
 * that what c records next merges exactly into grid_from's kin. */
void oq_calibrator_restart(oq_calibrator *c, const oq_calibrator *grid_from);
/* Adds src's statistics and sample count into dst (same model and bins). */
oq_status oq_calibrator_merge(oq_calibrator *dst, const oq_calibrator *src, oq_err *err);
/* Moves the statistics into a new table (caller destroys) with ranges computed. */
oq_calib_table *oq_calibrator_table(oq_calibrator *c, const oq_range_options *range, oq_err *err);

/* ---- the whole calibration pass ----------------------------------------------- */

typedef void (*oq_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct oq_calib_options {
    int bins;
    oq_range_options range;
    int64_t max_samples;     /* 0 = every sample of the data set */
    int threads;             /* executor threads; 0 = all cores */
    const bool *observe;     /* NULL (every float activation) or by value id: what to record */
    const bool *channels;    /* NULL, or by value id: recorded values whose per-channel extremes are kept too */
    oq_progress_fn progress; /* may be NULL; called after each sample */
    void *progress_user;
} oq_calib_options;

/* Runs m in float over the data set's samples with a calibrator attached and
 * returns the table (caller destroys) with ranges, sample count and data
 * hash filled in (the model hash is the caller's: it hashes the file). */
oq_status oq_calibrate(const oq_model *m, oq_dataset *ds, const oq_calib_options *opts, oq_calib_table **out,
                       oq_err *err);

#endif
