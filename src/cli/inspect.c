/* inspect.c: `onnxq inspect MODEL [--json]`, a summary of a model.
 *
 * The summary is built once as a cJSON object; --json prints it and the text
 * form is rendered from the same object, so the two always agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "onnxq/oq_onnx_io.h"

const char cli_inspect_help[] =
    "Usage: onnxq inspect MODEL [--json]\n"
    "\n"
    "Summarizes an ONNX model: IR version, producer, opsets, graph inputs and\n"
    "outputs, operator histogram, parameters and quantizable operators.\n"
    "\n"
    "Options:\n"
    "  --json      print the summary as one JSON object\n"
    "  -h, --help  show this help and exit\n"
    "\n"
    "JSON keys (always present, in this order):\n"
    "  model              the MODEL path as given\n"
    "  ir_version         integer\n"
    "  producer_name      string, \"\" when absent\n"
    "  producer_version   string, \"\" when absent\n"
    "  opsets             object: domain (\"ai.onnx\" for the default) -> version\n"
    "  inputs             graph inputs that are not initializers, in graph order\n"
    "  outputs            graph outputs, in graph order\n"
    "                     each an object {name, kind, dtype, shape}:\n"
    "                       kind   \"tensor\", \"non-tensor\" or \"undeclared\"\n"
    "                       dtype  ONNX element type name (\"float\") or null\n"
    "                       shape  array of dims, or null when no shape is declared;\n"
    "                              a dim is an integer, a string (symbolic) or null (unknown)\n"
    "  node_count         nodes in the top-level graph (subgraphs not counted)\n"
    "  op_types           object: op type -> node count, keys sorted; ops outside\n"
    "                     the default domain are keyed \"domain:op_type\"\n"
    "  initializer_count  graph initializers\n"
    "  constant_tensors   constant tensors: initializers and Constant-node outputs\n"
    "  parameter_count    elements in all constant tensors\n"
    "  parameter_bytes    storage bytes of all constant tensors\n"
    "  quantizable        object with keys MatMul, Gemm, Conv, ConvTranspose, LSTM, GRU,\n"
    "                     RNN, Einsum, each {total, constant_weight}: nodes of that op,\n"
    "                     and those whose weight input (B, or W; either operand of an\n"
    "                     Einsum) is a constant, or an Identity of one, and so can be\n"
    "                     quantized ahead of time\n"
    "                     (the text form lists the ops the model has)\n";

/* ---- building the summary ----------------------------------------------------------- */

static cJSON *value_json(const oq_value *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v->name);
    const char *kind = v->kind == OQ_TYPE_TENSOR ? "tensor" : v->kind == OQ_TYPE_OPAQUE ? "non-tensor"
                                                                                       : "undeclared";
    cJSON_AddStringToObject(o, "kind", kind);
    if (v->kind == OQ_TYPE_TENSOR && v->dtype != OQ_DTYPE_UNDEFINED)
        cJSON_AddStringToObject(o, "dtype", oq_dtype_name(v->dtype));
    else
        cJSON_AddNullToObject(o, "dtype");
    if (v->kind == OQ_TYPE_TENSOR && v->rank >= 0) {
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int i = 0; i < v->rank; i++) {
            const oq_dim *d = &v->dims[i];
            if (d->value >= 0)
                cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)d->value));
            else if (d->param && d->param[0])
                cJSON_AddItemToArray(shape, cJSON_CreateString(d->param));
            else
                cJSON_AddItemToArray(shape, cJSON_CreateNull());
        }
    } else {
        cJSON_AddNullToObject(o, "shape");
    }
    return o;
}

typedef struct op_count {
    char *key; /* "Conv" or "domain:op_type" */
    long count;
} op_count;

static int op_count_cmp(const void *a, const void *b)
{
    return strcmp(((const op_count *)a)->key, ((const op_count *)b)->key);
}

/* Adds the sorted op histogram of g to o as "op_types". */
static oq_status add_op_types(cJSON *o, const oq_graph *g, oq_err *err)
{
    op_count *ops = calloc((size_t)g->n_nodes + 1, sizeof *ops);
    int n_ops = 0;
    oq_status st = OQ_OK;
    if (!ops)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        size_t len = strlen(n->domain) + strlen(n->op_type) + 2;
        char *key = malloc(len);
        if (!key) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        if (n->domain[0])
            snprintf(key, len, "%s:%s", n->domain, n->op_type);
        else
            snprintf(key, len, "%s", n->op_type);
        int k = 0;
        while (k < n_ops && strcmp(ops[k].key, key))
            k++;
        if (k < n_ops) {
            free(key);
        } else {
            ops[n_ops].key = key;
            n_ops++;
        }
        ops[k].count++;
    }
    qsort(ops, (size_t)n_ops, sizeof *ops, op_count_cmp);
    cJSON *h = cJSON_AddObjectToObject(o, "op_types");
    for (int k = 0; k < n_ops; k++)
        cJSON_AddNumberToObject(h, ops[k].key, (double)ops[k].count);
fail:
    for (int k = 0; k < n_ops; k++)
        free(ops[k].key);
    free(ops);
    return st;
}

/* Ops whose weight input can be quantized when it is a constant, and its
 * index (-1: either of two, as an Einsum's kernel). */
static const struct {
    const char *op_type;
    int weight_input;
} quant_ops[] = {{"MatMul", 1}, {"Gemm", 1}, {"Conv", 1},  {"ConvTranspose", 1},
                 {"LSTM", 1},   {"GRU", 1},  {"RNN", 1},   {"Einsum", -1}};
#define N_QUANT_OPS ((int)(sizeof quant_ops / sizeof quant_ops[0]))

/* Whether v is a constant, or an Identity's copy of one (PyTorch exports a
 * weight that two nodes share so; preparing the model removes the Identity). */
static bool constant_weight(const oq_value *v)
{
    while (v && !v->constant && v->producer && v->producer->kind == OQ_OP_IDENTITY)
        v = oq_node_input(v->producer, 0);
    return v && v->constant;
}

static void add_quantizable(cJSON *o, const oq_graph *g)
{
    cJSON *q = cJSON_AddObjectToObject(o, "quantizable");
    for (int k = 0; k < N_QUANT_OPS; k++) {
        long total = 0, constant = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const oq_node *n = g->nodes[i];
            if (n->domain[0] || strcmp(n->op_type, quant_ops[k].op_type))
                continue;
            total++;
            int wi = quant_ops[k].weight_input;
            const oq_value *w = oq_node_input(n, wi < 0 ? 0 : wi), *w2 = wi < 0 ? oq_node_input(n, 1) : NULL;
            if (constant_weight(w) || constant_weight(w2))
                constant++;
        }
        cJSON *e = cJSON_AddObjectToObject(q, quant_ops[k].op_type);
        cJSON_AddNumberToObject(e, "total", (double)total);
        cJSON_AddNumberToObject(e, "constant_weight", (double)constant);
    }
}

/* Builds the summary of m loaded from path into *out (caller deletes). */
static oq_status build_summary(cJSON **out, const oq_model *m, const char *path, oq_err *err)
{
    const oq_graph *g = m->graph;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    cJSON_AddStringToObject(o, "model", path);
    cJSON_AddNumberToObject(o, "ir_version", (double)m->ir_version);
    cJSON_AddStringToObject(o, "producer_name", m->producer_name ? m->producer_name : "");
    cJSON_AddStringToObject(o, "producer_version", m->producer_version ? m->producer_version : "");
    cJSON *opsets = cJSON_AddObjectToObject(o, "opsets");
    for (int i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain && m->opsets[i].domain[0] ? m->opsets[i].domain : "ai.onnx";
        if (!cJSON_HasObjectItem(opsets, d))
            cJSON_AddNumberToObject(opsets, d, (double)m->opsets[i].version);
    }
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->constant)
            cJSON_AddItemToArray(inputs, value_json(g->inputs[i]));
    cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
    for (int i = 0; i < g->n_outputs; i++)
        cJSON_AddItemToArray(outputs, value_json(g->outputs[i]));
    cJSON_AddNumberToObject(o, "node_count", g->n_nodes);
    oq_status st = add_op_types(o, g, err);
    if (st) {
        cJSON_Delete(o);
        return st;
    }
    long n_init = 0;
    for (int i = 0; i < g->n_values; i++)
        n_init += g->values[i]->constant && g->values[i]->is_initializer;
    cJSON_AddNumberToObject(o, "initializer_count", (double)n_init);
    int64_t n_tensors, n_elements, n_bytes;
    oq_graph_param_stats(g, &n_tensors, &n_elements, &n_bytes);
    cJSON_AddNumberToObject(o, "constant_tensors", (double)n_tensors);
    cJSON_AddNumberToObject(o, "parameter_count", (double)n_elements);
    cJSON_AddNumberToObject(o, "parameter_bytes", (double)n_bytes);
    add_quantizable(o, g);
    *out = o;
    return OQ_OK;
}

/* ---- text rendering --------------------------------------------------------------------- */

#define KEY_WIDTH 16 /* column where values start */
#define LINE_WIDTH 100

/* 1234567 -> "1,234,567" */
static void format_count(double v, char *buf, size_t cap)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t len = strlen(digits), n = 0;
    for (size_t i = 0; i < len && n + 2 < cap; i++) {
        if (i && (len - i) % 3 == 0)
            buf[n++] = ',';
        buf[n++] = digits[i];
    }
    buf[n] = '\0';
}

static void format_bytes(double b, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

/* Text of one JSON shape: "[N, 3, ?]" or "?". */
static void format_json_shape(const cJSON *shape, char *buf, size_t cap)
{
    if (!cJSON_IsArray(shape)) {
        snprintf(buf, cap, "?");
        return;
    }
    size_t n = (size_t)snprintf(buf, cap, "[");
    const cJSON *d;
    int i = 0;
    cJSON_ArrayForEach(d, shape) {
        if (n >= cap)
            break;
        const char *sep = i++ ? ", " : "";
        int w;
        if (cJSON_IsNumber(d))
            w = snprintf(buf + n, cap - n, "%s%.0f", sep, d->valuedouble);
        else if (cJSON_IsString(d))
            w = snprintf(buf + n, cap - n, "%s%s", sep, d->valuestring);
        else
            w = snprintf(buf + n, cap - n, "%s?", sep);
        n += (size_t)w;
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* Prints a list of value objects as aligned "name  dtype  shape" rows. */
static void print_values(const char *key, const cJSON *list)
{
    int count = cJSON_GetArraySize(list), name_w = 0, type_w = 0;
    printf("%-*s%d\n", KEY_WIDTH, key, count);
    const cJSON *v;
    cJSON_ArrayForEach(v, list) {
        const cJSON *dt = cJSON_GetObjectItem(v, "dtype");
        int nw = (int)strlen(cJSON_GetObjectItem(v, "name")->valuestring);
        int tw = cJSON_IsString(dt) ? (int)strlen(dt->valuestring) : 12;
        name_w = nw > name_w ? nw : name_w;
        type_w = tw > type_w ? tw : type_w;
    }
    cJSON_ArrayForEach(v, list) {
        const cJSON *dt = cJSON_GetObjectItem(v, "dtype");
        const char *kind = cJSON_GetObjectItem(v, "kind")->valuestring;
        const char *type = cJSON_IsString(dt) ? dt->valuestring : !strcmp(kind, "non-tensor") ? "(non-tensor)" : "?";
        char shape[512];
        format_json_shape(cJSON_GetObjectItem(v, "shape"), shape, sizeof shape);
        if (!strcmp(kind, "non-tensor"))
            printf("  %-*s  %s\n", name_w, cJSON_GetObjectItem(v, "name")->valuestring, type);
        else
            printf("  %-*s  %-*s  %s\n", name_w, cJSON_GetObjectItem(v, "name")->valuestring, type_w, type, shape);
    }
}

/* Prints "key" then the items, wrapping continuation lines at KEY_WIDTH. */
static void print_wrapped(const char *key, char **items, int n)
{
    printf("%-*s", KEY_WIDTH, key);
    int col = KEY_WIDTH;
    for (int i = 0; i < n; i++) {
        int len = (int)strlen(items[i]) + (i + 1 < n ? 1 : 0);
        if (i && col + 1 + len > LINE_WIDTH) {
            printf("\n%-*s", KEY_WIDTH, "");
            col = KEY_WIDTH;
        } else if (i) {
            putchar(' ');
            col++;
        }
        printf("%s%s", items[i], i + 1 < n ? "," : "");
        col += len;
    }
    putchar('\n');
}

/* Prints the entries of a JSON object of numbers as "key value" items. */
static oq_status print_object_items(const char *key, const cJSON *obj, oq_err *err)
{
    int n = cJSON_GetArraySize(obj), k = 0;
    char **items = calloc((size_t)n + 1, sizeof *items);
    oq_status st = OQ_OK;
    if (!items)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, obj) {
        size_t len = strlen(e->string) + 24;
        items[k] = malloc(len);
        if (!items[k]) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(items[k], len, "%s %.0f", e->string, e->valuedouble);
        k++;
    }
    if (n)
        print_wrapped(key, items, n);
    else
        printf("%-*s-\n", KEY_WIDTH, key);
fail:
    for (int i = 0; i < k; i++)
        free(items[i]);
    free(items);
    return st;
}

static oq_status print_text(const cJSON *o, oq_err *err)
{
#define NUM(k) (cJSON_GetObjectItem(o, k)->valuedouble)
#define STR(k) (cJSON_GetObjectItem(o, k)->valuestring)
    oq_status st;
    printf("%-*s%s\n", KEY_WIDTH, "model", STR("model"));
    printf("%-*s%.0f\n", KEY_WIDTH, "ir version", NUM("ir_version"));
    const char *pn = STR("producer_name"), *pv = STR("producer_version");
    printf("%-*s%s%s%s\n", KEY_WIDTH, "producer", pn[0] || pv[0] ? pn : "-", pv[0] ? " " : "", pv);
    if ((st = print_object_items("opsets", cJSON_GetObjectItem(o, "opsets"), err)))
        return st;
    print_values("inputs", cJSON_GetObjectItem(o, "inputs"));
    print_values("outputs", cJSON_GetObjectItem(o, "outputs"));
    printf("%-*s%.0f\n", KEY_WIDTH, "nodes", NUM("node_count"));
    if ((st = print_object_items("op types", cJSON_GetObjectItem(o, "op_types"), err)))
        return st;
    printf("%-*s%.0f\n", KEY_WIDTH, "initializers", NUM("initializer_count"));
    char count[40], bytes[40];
    format_count(NUM("parameter_count"), count, sizeof count);
    format_bytes(NUM("parameter_bytes"), bytes, sizeof bytes);
    printf("%-*s%s in %.0f constant tensor%s, %s\n", KEY_WIDTH, "parameters", count, NUM("constant_tensors"),
           NUM("constant_tensors") == 1 ? "" : "s", bytes);
    printf("%-*s", KEY_WIDTH, "quantizable");
    const cJSON *q;
    int i = 0;
    cJSON_ArrayForEach(q, cJSON_GetObjectItem(o, "quantizable")) {
        if (cJSON_GetObjectItem(q, "total")->valuedouble > 0)
            printf("%s%s %.0f/%.0f", i++ ? ", " : "", q->string,
                   cJSON_GetObjectItem(q, "constant_weight")->valuedouble, cJSON_GetObjectItem(q, "total")->valuedouble);
    }
    printf(i ? "  (constant weight / total)\n" : "none of MatMul, Gemm, Conv, ConvTranspose, LSTM, GRU, RNN, Einsum\n");
    return OQ_OK;
#undef NUM
#undef STR
}

/* ---- the command ------------------------------------------------------------------------ */

enum { OPT_JSON = 1, OPT_HELP };

static const cli_opt inspect_opts[] = {
    {"json", 0, false, OPT_JSON},
    {"help", 'h', false, OPT_HELP},
};

int cli_inspect(int argc, char **argv)
{
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, "inspect", inspect_opts, (int)(sizeof inspect_opts / sizeof inspect_opts[0]));
    const char *model_path = NULL, *val;
    bool json = false;
    int id;
    while ((id = cli_next(&p, &val)) != CLI_END) {
        switch (id) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case OPT_HELP: fputs(cli_inspect_help, stdout); return CLI_EXIT_OK;
        case OPT_JSON: json = true; break;
        case CLI_POSITIONAL:
            if (model_path)
                return cli_usage("inspect: expected one MODEL, got '%s' and '%s'", model_path, val);
            model_path = val;
            break;
        }
    }
    if (!model_path)
        return cli_usage("inspect: missing MODEL");

    oq_err err = {0};
    oq_model *m = NULL;
    cJSON *summary = NULL;
    int rc = CLI_EXIT_OK;
    if (oq_model_load(&m, model_path, &err) || build_summary(&summary, m, model_path, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if (json) {
        char *text = cJSON_Print(summary);
        if (!text) {
            cli_error("out of memory");
            rc = CLI_EXIT_FAIL;
            goto done;
        }
        puts(text);
        cJSON_free(text);
    } else if (print_text(summary, &err)) {
        rc = cli_fail(&err);
    }
done:
    cJSON_Delete(summary);
    oq_model_destroy(m);
    return rc;
}
