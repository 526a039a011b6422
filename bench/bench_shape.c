/* bench_shape: throughput of data-movement kernels (Transpose, Resize) run
 * as chains of nodes in a session, with a memcpy of the same bytes for scale.
 * Times are process CPU time (summed over threads).
 * Usage: bench_shape [threads]   (default 1; 0 = all cores) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxq/oq_exec.h"

/* Process CPU time: the build machine is shared, so wall time is noisy. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bench_case {
    const char *name;
    const char *op;
    oq_dtype dt;
    int rank;
    int64_t dims[4];
    const char *attr;        /* INTS attribute name or NULL */
    int n_attr;
    int64_t attr_v[4];
    const char *mode;        /* Resize mode or NULL */
    float scales[4];         /* Resize scales (constant input) */
} bench_case;

#define DEPTH 8 /* nodes per chain: the graph-output copy is paid once, not per node */

/* Adds a constant float vector named `name` to g. */
static oq_status add_floats(oq_graph *g, const char *name, const float *v, int64_t n, oq_err *err)
{
    oq_tensor *t = oq_tensor_create(OQ_DTYPE_FLOAT, 1, &n, err);
    oq_value *val = oq_graph_value(g, name, err);
    if (!t || !val) {
        oq_tensor_destroy(t);
        return err->status;
    }
    memcpy(t->data, v, (size_t)n * sizeof *v);
    return oq_graph_set_constant(g, val, t, true, err);
}

/* Builds a chain of DEPTH nodes of case c from graph input "x": Transpose
 * alternates perm and its inverse, Resize alternates scales and their
 * inverse, so shapes return to the input's every two nodes. */
static oq_model *build(const bench_case *c, oq_err *err)
{
    oq_model *m = oq_model_create();
    if (!m)
        return NULL;
    m->ir_version = 8;
    m->n_opsets = 1;
    m->opsets = calloc(1, sizeof *m->opsets);
    if (!m->opsets || !(m->opsets[0].domain = strdup("")))
        goto fail;
    m->opsets[0].version = 13;
    oq_graph *g = m->graph = oq_graph_create(m, NULL);
    if (!g)
        goto fail;
    oq_dim dims[4];
    for (int i = 0; i < c->rank; i++)
        dims[i] = (oq_dim){c->dims[i], NULL};
    oq_value *x = oq_graph_value(g, "t0", err);
    if (!x || oq_value_set_tensor_type(x, c->dt, c->rank, dims, err) || oq_graph_add_input(g, x, err))
        goto fail;
    float inv_scales[4];
    int64_t inv_perm[4];
    for (int i = 0; i < 4; i++)
        inv_scales[i] = c->scales[i] ? 1.0f / c->scales[i] : 0;
    for (int i = 0; i < c->n_attr; i++)
        inv_perm[c->attr_v[i]] = i;
    if (c->mode && (add_floats(g, "up", c->scales, 4, err) || add_floats(g, "down", inv_scales, 4, err)))
        goto fail;
    for (int k = 0; k < DEPTH; k++) {
        char in[16], out[16];
        snprintf(in, sizeof in, "t%d", k);
        snprintf(out, sizeof out, "t%d", k + 1);
        const char *ins[3] = {in, "", k % 2 ? "down" : "up"};
        const char *outs[1] = {out};
        oq_node *n = oq_graph_add_node(g, c->op, "", out, c->mode ? 3 : 1, ins, 1, outs, err);
        if (!n || (c->attr && oq_node_set_attr_ints(n, c->attr, c->n_attr, k % 2 ? inv_perm : c->attr_v, err)) ||
            (c->mode && oq_node_set_attr_string(n, "mode", c->mode, err)))
            goto fail;
    }
    char last[16];
    snprintf(last, sizeof last, "t%d", DEPTH);
    oq_value *y = oq_graph_value(g, last, err);
    if (!y || oq_graph_add_output(g, y, err))
        goto fail;
    return m;
fail:
    oq_model_destroy(m);
    return NULL;
}

int main(int argc, char **argv)
{
    static const bench_case cases[] = {
        {"transpose identity (plain copy) 6.5MB f32", "Transpose", OQ_DTYPE_FLOAT, 4, {1, 64, 160, 160}, "perm", 4, {0, 1, 2, 3}, NULL, {0}},
        {"transpose 2-D 512x768 f32", "Transpose", OQ_DTYPE_FLOAT, 3, {1, 512, 768}, "perm", 3, {0, 2, 1}, NULL, {0}},
        {"transpose heads (8,128,12,64) 0213 f32", "Transpose", OQ_DTYPE_FLOAT, 4, {8, 128, 12, 64}, "perm", 4, {0, 2, 1, 3}, NULL, {0}},
        {"transpose NCHW->NHWC 64x160x160 f32", "Transpose", OQ_DTYPE_FLOAT, 4, {1, 64, 160, 160}, "perm", 4, {0, 2, 3, 1}, NULL, {0}},
        {"transpose NCHW->NHWC 64x160x160 u8", "Transpose", OQ_DTYPE_UINT8, 4, {1, 64, 160, 160}, "perm", 4, {0, 2, 3, 1}, NULL, {0}},
        {"transpose NHWC->NCHW 160x160x64 f32", "Transpose", OQ_DTYPE_FLOAT, 4, {1, 160, 160, 64}, "perm", 4, {0, 3, 1, 2}, NULL, {0}},
        {"resize nearest 2x 64x80x80 f32", "Resize", OQ_DTYPE_FLOAT, 4, {1, 64, 80, 80}, NULL, 0, {0}, "nearest", {1, 1, 2, 2}},
        {"resize nearest 2x 64x80x80 u8", "Resize", OQ_DTYPE_UINT8, 4, {1, 64, 80, 80}, NULL, 0, {0}, "nearest", {1, 1, 2, 2}},
        {"resize linear 2x 64x80x80 f32", "Resize", OQ_DTYPE_FLOAT, 4, {1, 64, 80, 80}, NULL, 0, {0}, "linear", {1, 1, 2, 2}},
    };
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    oq_err err = {0};
    printf("%-42s %10s %10s %10s\n", "case", "ms", "GB/s", "memcpy GB/s");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bench_case *c = &cases[k];
        oq_model *m = build(c, &err);
        oq_session *s = NULL;
        oq_tensor x = {0}, y = {0};
        if (!m || oq_session_create(&s, m, &(oq_exec_options){.threads = threads}, &err) ||
            oq_tensor_alloc(&x, c->dt, c->rank, c->dims, &err)) {
            fprintf(stderr, "%s: %s\n", c->name, err.msg);
            oq_session_destroy(s);
            oq_model_destroy(m);
            return 1;
        }
        for (size_t i = 0; i < x.nbytes; i++)
            ((unsigned char *)x.data)[i] = (unsigned char)(i * 7);
        int reps = 0;
        double t0 = now_s(), t;
        do {
            if (oq_session_run(s, &x, &y, &err)) {
                fprintf(stderr, "%s: %s\n", c->name, err.msg);
                return 1;
            }
            oq_tensor_release(&y);
            reps++;
            t = now_s() - t0;
        } while (t < 0.5);
        /* per node; a node reads and writes about the input's bytes on average */
        const double per = t / reps / DEPTH, bytes = 2.0 * (double)x.nbytes;
        /* memcpy of the input's size, for scale */
        const size_t out_bytes = x.nbytes;
        char *a = malloc(out_bytes), *b = malloc(out_bytes);
        memset(a, 1, out_bytes);
        memset(b, 2, out_bytes);
        int mreps = 0;
        double m0 = now_s(), mt;
        do {
            memcpy(b, a, out_bytes);
            a[mreps % out_bytes] = b[(mreps * 31) % out_bytes];
            mreps++;
            mt = now_s() - m0;
        } while (mt < 0.2);
        printf("%-42s %10.3f %10.2f %10.2f\n", c->name, per * 1e3, bytes / per / 1e9,
               2.0 * (double)out_bytes / (mt / mreps) / 1e9);
        free(a);
        free(b);
        oq_tensor_release(&x);
        oq_session_destroy(s);
        oq_model_destroy(m);
    }
    return 0;
}
