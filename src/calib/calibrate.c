/* calibrate.c: one float pass over a data set feeding the calibrator. See oq_calib.h. */
#include <stdlib.h>

#include "onnxq/oq_calib.h"
#include "onnxq/oq_exec.h"

oq_status oq_calibrate(const oq_model *m, oq_dataset *ds, const oq_calib_options *opts, oq_calib_table **out,
                       oq_err *err)
{
    *out = NULL;
    oq_session *s = NULL;
    oq_tensor *ins = NULL, *outs = NULL;
    const oq_value **in_values = NULL;
    oq_calibrator *cal = oq_calibrator_create(m, opts->bins, opts->observe, err);
    if (!cal)
        return err->status;
    /* the session computes what the calibrator records on its own and may fuse the rest */
    oq_exec_options eo = {.threads = opts->threads, .observed = oq_calibrator_observed(cal)};
    oq_status st = oq_session_create(&s, m, &eo, err);
    if (st) {
        oq_calibrator_destroy(cal);
        return st;
    }
    int n_in = oq_session_input_count(s), n_out = oq_session_output_count(s);
    ins = calloc((size_t)n_in + 1, sizeof *ins);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    in_values = calloc((size_t)n_in + 1, sizeof *in_values);
    if (!ins || !outs || !in_values) {
        st = oq_errf(err, OQ_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++)
        in_values[i] = oq_session_input(s, i);
    oq_session_set_observer(s, oq_calibrator_observe, cal);
    int64_t total = oq_dataset_count(ds);
    if (opts->max_samples && opts->max_samples < total)
        total = opts->max_samples;
    for (int64_t i = 0; i < total; i++) {
        if ((st = oq_dataset_load(ds, i, ins, err)))
            goto done;
        st = oq_session_run(s, ins, outs, err);
        if (!st)
            oq_calibrator_add_inputs(cal, n_in, in_values, ins);
        for (int k = 0; k < n_in; k++)
            oq_tensor_release(&ins[k]);
        for (int k = 0; k < n_out; k++)
            oq_tensor_release(&outs[k]);
        if (st) {
            oq_err_context(err, "sample %lld", (long long)i);
            goto done;
        }
        if (opts->progress)
            opts->progress(opts->progress_user, i + 1, total);
    }
    if (!(*out = oq_calibrator_table(cal, &opts->range, err))) {
        st = err->status;
        goto done;
    }
    (*out)->bins = opts->bins;
    oq_dataset_hash(ds, (*out)->data_sha256);
done:
    oq_calibrator_destroy(cal);
    free(ins);
    free(outs);
    free(in_values);
    oq_session_destroy(s);
    return st;
}
