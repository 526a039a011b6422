/* op_table.c: the one registry of kernels. Each op family (ops_*.c) exports an
 * array of oq_op_def; this file lists the families and searches them. Lookups
 * happen once per node at plan time, so a linear scan with string compares is
 * fine here and nowhere else. */
#include <string.h>

#include "exec/ops.h"

typedef struct op_family {
    const oq_op_def *defs; /* [*count] */
    const int *count;
} op_family;

static const op_family families[] = {
    {oq_ops_control, &oq_ops_control_count},
    {oq_ops_elementwise, &oq_ops_elementwise_count},
    {oq_ops_reduce, &oq_ops_reduce_count},
    {oq_ops_norm, &oq_ops_norm_count},
    {oq_ops_nn, &oq_ops_nn_count},
    {oq_ops_rnn, &oq_ops_rnn_count},
    {oq_ops_shape, &oq_ops_shape_count},
    {oq_ops_detect, &oq_ops_detect_count},
    {oq_ops_qdq, &oq_ops_qdq_count},
    {oq_ops_qmatmul, &oq_ops_qmatmul_count},
    {oq_ops_qconv, &oq_ops_qconv_count},
    {oq_ops_qcontrib, &oq_ops_qcontrib_count},
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

int oq_op_count(void)
{
    int n = 0;
    for (int f = 0; f < N_FAMILIES; f++)
        n += *families[f].count;
    return n;
}

/* Entry i of the concatenation of all families, or NULL when out of range. */
const oq_op_def *oq_op_at(int i)
{
    if (i < 0)
        return NULL;
    for (int f = 0; f < N_FAMILIES; f++) {
        if (i < *families[f].count)
            return &families[f].defs[i];
        i -= *families[f].count;
    }
    return NULL;
}

/* Among entries for (domain, op_type), the one with the largest min_opset that
 * is still <= opset: the newest semantics the model's opset asks for. */
const oq_op_def *oq_op_find(const char *domain, const char *op_type, int64_t opset)
{
    const oq_op_def *best = NULL;
    if (!domain || !strcmp(domain, "ai.onnx"))
        domain = "";
    for (int f = 0; f < N_FAMILIES; f++) {
        for (int i = 0; i < *families[f].count; i++) {
            const oq_op_def *d = &families[f].defs[i];
            if (d->min_opset > opset || strcmp(d->op_type, op_type) || strcmp(d->domain, domain))
                continue;
            if (!best || d->min_opset > best->min_opset)
                best = d;
        }
    }
    return best;
}
