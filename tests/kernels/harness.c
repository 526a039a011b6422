/* harness.c: the kernel harness's driver (see harness.h).
 *
 * usage: check_kernels [FAMILY...]   (none: every family)
 * Prints one line per family and level: the version's name and "ok (N
 * cases)", "FAILED", or "skipped: this processor does not run LEVEL". Exits 1
 * if any check failed or a family name is unknown. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "onnxq/oq_exec.h"

int kernel_failures;

static const kfamily *const families[] = {
    &kf_sgemm, &kf_conv,       &kf_qgemm,  &kf_requant, &kf_qdq,    &kf_qconv,
    &kf_qmatmul, &kf_elementwise, &kf_fusion, &kf_pool, &kf_hist, &kf_sha256, &kf_winograd, &kf_gate,
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

const char *clone_variant(oq_isa isa)
{
    return isa >= 0 && isa < OQ_ISA_COUNT && (OQ_CLONE_LEVELS >> isa & 1u) ? oq_isa_name(isa) : NULL;
}

void at_baseline(oq_isa level, void (*fn)(void *arg), void *arg)
{
    oq_cpu_set_cap(OQ_ISA_BASELINE);
    fn(arg);
    oq_cpu_set_cap(level);
}

uint32_t krand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

float krand_float(uint32_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)(krand(state) >> 8) / (float)(1u << 24);
}

/* ---- one node through the executor --------------------------------------------- */

static oq_model *knode_model(const char *op_type, const char *domain, int opset, const knode_input *in, int n_in,
                             oq_status (*set_attrs)(oq_node *, const void *, oq_err *), const void *arg,
                             int n_out, oq_err *err)
{
    oq_model *m = oq_model_create();
    if (!m || !(m->opsets = calloc(2, sizeof *m->opsets)) || !(m->opsets[0].domain = strdup("")) ||
        !(m->opsets[1].domain = strdup("com.microsoft"))) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    m->n_opsets = 2;
    m->opsets[0].version = opset;
    m->opsets[1].version = 1;
    m->ir_version = 8;
    if (!(m->graph = oq_graph_create(m, NULL))) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        goto fail;
    }
    oq_graph *g = m->graph;
    const char *in_names[16], *out_names[4] = {"y0", "y1", "y2", "y3"};
    if (n_in > 16 || n_out > 4) {
        oq_errf(err, OQ_EINVAL, "too many inputs or outputs");
        goto fail;
    }
    for (int i = 0; i < n_in; i++) {
        in_names[i] = in[i].name;
        if (!in[i].name[0])
            continue;
        oq_value *v = oq_graph_value(g, in[i].name, err);
        if (!v)
            goto fail;
        oq_dim d[OQ_MAX_RANK];
        for (int k = 0; k < in[i].t->rank; k++)
            d[k] = (oq_dim){in[i].t->dims[k], NULL};
        if (oq_value_set_tensor_type(v, in[i].t->dtype, in[i].t->rank, d, err))
            goto fail;
        if (in[i].constant) {
            oq_tensor *c = malloc(sizeof *c);
            if (!c) {
                oq_errf(err, OQ_ENOMEM, "out of memory");
                goto fail;
            }
            if (oq_tensor_copy(c, in[i].t, err) || oq_graph_set_constant(g, v, c, true, err)) {
                free(c);
                goto fail;
            }
        } else if (oq_graph_add_input(g, v, err)) {
            goto fail;
        }
    }
    oq_node *n = oq_graph_add_node(g, op_type, domain, "node", n_in, in_names, n_out, out_names, err);
    if (!n || (set_attrs && set_attrs(n, arg, err)))
        goto fail;
    for (int k = 0; k < n_out; k++)
        if (oq_graph_add_output(g, oq_graph_find(g, out_names[k]), err))
            goto fail;
    if (oq_graph_sort(g, err))
        goto fail;
    return m;
fail:
    oq_model_destroy(m);
    return NULL;
}

oq_status knode_run(const char *op_type, const char *domain, int opset, const knode_input *in, int n_inputs,
                    oq_status (*set_attrs)(oq_node *n, const void *arg, oq_err *err), const void *arg,
                    int n_outputs, int threads, oq_tensor *out, oq_err *err)
{
    oq_session *s = NULL;
    oq_tensor feed[16];
    int n_feed = 0;
    oq_status st;
    oq_model *m = knode_model(op_type, domain, opset, in, n_inputs, set_attrs, arg, n_outputs, err);
    if (!m)
        return err->status;
    for (int i = 0; i < n_inputs; i++)
        if (in[i].name[0] && !in[i].constant)
            feed[n_feed++] = *in[i].t;
    oq_exec_options opts = {.threads = threads};
    if (!(st = oq_session_create(&s, m, &opts, err)))
        st = oq_session_run(s, feed, out, err);
    oq_session_destroy(s);
    oq_model_destroy(m);
    return st;
}

/* ---- main ------------------------------------------------------------------------ */

/* Runs family f at every level it has a version for, best first. */
static void run_family(const kfamily *f)
{
    for (int l = OQ_ISA_COUNT - 1; l >= 0; l--) {
        oq_isa isa = (oq_isa)l;
        const char *v = f->variant(isa);
        if (!v)
            continue;
        if (!oq_cpu_runs(isa)) {
            printf("%-12s %-11s %-20s skipped: this processor does not run %s\n", f->name, oq_isa_name(isa), v,
                   oq_isa_name(isa));
            continue;
        }
        oq_cpu_set_cap(isa);
        int before = kernel_failures;
        int cases = f->check(isa);
        if (kernel_failures == before)
            printf("%-12s %-11s %-20s ok (%d cases)\n", f->name, oq_isa_name(isa), v, cases);
        else
            printf("%-12s %-11s %-20s FAILED (%d failed checks)\n", f->name, oq_isa_name(isa), v,
                   kernel_failures - before);
        fflush(stdout);
    }
    oq_cpu_set_cap(OQ_ISA_COUNT - 1);
}

int main(int argc, char **argv)
{
    oq_err err = {0};
    if (oq_cpu_init(&err)) {
        fprintf(stderr, "check_kernels: %s\n", err.msg);
        return 1;
    }
    int unknown = 0;
    for (int i = 1; i < argc; i++) {
        int k = 0;
        while (k < N_FAMILIES && strcmp(families[k]->name, argv[i]))
            k++;
        if (k == N_FAMILIES) {
            fprintf(stderr, "check_kernels: no family '%s'\n", argv[i]);
            unknown++;
        }
    }
    if (unknown)
        return 1;
    for (int k = 0; k < N_FAMILIES; k++) {
        bool wanted = argc == 1;
        for (int i = 1; i < argc; i++)
            wanted = wanted || !strcmp(families[k]->name, argv[i]);
        if (wanted)
            run_family(families[k]);
    }
    return kernel_failures ? 1 : 0;
}
