/* run_node_tests.c: runs ONNX's operator conformance cases (one folder per
 * case: model.onnx + test_data_set_N/{input,output}_M.pb) on the executor.
 *
 * A case is skipped when one of its ops is not in the op table or one of its
 * value types is outside that op's dtype mask; a kernel answering
 * OQ_EUNSUPPORTED on a claimed case is counted as unsupported, not passed.
 * Everything else that does not match is a failure. Each case runs in a child
 * process so a crash fails that case only.
 *
 * usage: run_node_tests [--floor FILE] [data_dir] [name_filter]
 *   data_dir defaults to /usr/share/libonnx-testdata/data/node; an argument
 *   that is not a folder is a substring filter on case names. With --floor,
 *   a whole run (no filter) also fails when fewer cases pass than the line
 *   "passed N" of FILE records, so a kernel that starts to answer
 *   "unsupported" (or a case that stops being claimed) cannot pass silently. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnxq/oq_exec.h"
#include "onnxq/oq_onnx_io.h"

#define DEFAULT_DIR "/usr/share/libonnx-testdata/data/node"
#define CASE_SECONDS 120

typedef enum verdict { V_PASS = 0, V_FAIL, V_SKIP, V_UNSUP, V_COUNT } verdict;

/* The outcome of one case: a verdict and one line saying why. */
typedef struct outcome {
    verdict v;
    char why[768];
} outcome;

static verdict say(outcome *o, verdict v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static verdict say(outcome *o, verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->why, sizeof o->why, fmt, ap);
    va_end(ap);
    return o->v = v;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of the entries of dir starting with prefix (all when NULL); caller frees. */
static char **list_dir(const char *dir, const char *prefix, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (prefix && strncmp(e->d_name, prefix, strlen(prefix))))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(names, (size_t)*n, sizeof *names, cmp_str);
    return names;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- claims ------------------------------------------------------------------ */

static int64_t node_opset(const oq_model *m, const oq_node *n)
{
    return n->opset ? n->opset : oq_model_opset(m, n->domain);
}

/* Skips (returns V_SKIP) when a node of g or its subgraphs is not claimed by
 * the op table or uses a type outside its op's mask. */
static verdict check_claims(const oq_model *m, const oq_graph *g, outcome *o)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const oq_node *n = g->nodes[i];
        const oq_op_def *def = oq_op_find(n->domain, n->op_type, node_opset(m, n));
        if (!def)
            return say(o, V_SKIP, "op %s%s%s not claimed", n->domain, *n->domain ? "." : "", n->op_type);
        for (int k = 0; k < n->n_inputs + n->n_outputs; k++) {
            const oq_value *v = k < n->n_inputs ? n->inputs[k] : n->outputs[k - n->n_inputs];
            if (!v)
                continue;
            if (v->kind == OQ_TYPE_OPAQUE)
                return say(o, V_SKIP, "type non-tensor not claimed for %s", n->op_type);
            oq_dtype dt = v->dtype != OQ_DTYPE_UNDEFINED ? v->dtype
                          : v->constant                  ? v->constant->dtype
                                                         : OQ_DTYPE_UNDEFINED;
            if (oq_dtype_valid(dt) && !(def->dtypes & (1u << dt)))
                return say(o, V_SKIP, "type %s not claimed for %s", oq_dtype_name(dt), n->op_type);
        }
        for (int a = 0; a < n->n_attrs; a++) {
            const oq_attr *at = &n->attrs[a];
            verdict v = V_PASS;
            if (at->type == OQ_ATTR_GRAPH && at->g)
                v = check_claims(m, at->g, o);
            for (int j = 0; at->type == OQ_ATTR_GRAPHS && j < at->n && v == V_PASS; j++)
                v = check_claims(m, at->graphs[j], o);
            if (v != V_PASS)
                return v;
        }
    }
    return V_PASS;
}

/* ---- comparison ---------------------------------------------------------------- */

/* Absolute tolerance of float comparisons (plus 1e-4 relative). */
static double abs_tol = 1e-5;

/* Cases whose reference outputs are themselves inexact. ONNX 1.12's window
 * data is off by up to 7e-5 from the window formulas (e.g. hann(10)[8] is
 * stored as 0.34556198; 0.5 - 0.5 cos(2 pi 8 / 10) = 0.3454915, which float32
 * evaluation of the expanded graph reproduces), so they get a looser bound.
 * RoiAlign's and bicubic GridSample's outputs are stored to 4 decimals (ONNX
 * Runtime 1.20 is 8.4e-5 and 5e-5 off them; our kernels are within 5e-7 of
 * ONNX Runtime on the same inputs). */
static const struct loose {
    const char *prefix;
    double abs_tol;
} loose_cases[] = {
    {"test_blackmanwindow", 2e-4},
    {"test_hammingwindow", 2e-4},
    {"test_hannwindow", 2e-4},
    {"test_roialign", 1e-4},
    {"test_gridsample_bicubic", 1e-4},
};

static double case_abs_tol(const char *name)
{
    for (size_t i = 0; i < sizeof loose_cases / sizeof loose_cases[0]; i++)
        if (!strncmp(name, loose_cases[i].prefix, strlen(loose_cases[i].prefix)))
            return loose_cases[i].abs_tol;
    return 1e-5;
}

static bool close_enough(double got, double exp)
{
    if (isnan(exp) || isnan(got))
        return isnan(exp) && isnan(got);
    if (got == exp)
        return true;
    return fabs(got - exp) <= abs_tol + 1e-4 * fabs(exp);
}

/* Element i as double for floating types (complex: part i%2 of element i/2). */
static double float_at(const oq_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case OQ_DTYPE_FLOAT:
    case OQ_DTYPE_COMPLEX64: return ((const float *)t->data)[i];
    case OQ_DTYPE_DOUBLE:
    case OQ_DTYPE_COMPLEX128: return ((const double *)t->data)[i];
    case OQ_DTYPE_FLOAT16: return oq_f16_to_f32(((const uint16_t *)t->data)[i]);
    case OQ_DTYPE_BFLOAT16: return oq_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default: return oq_tensor_get_f64(t, i);
    }
}

static void shape_str(const oq_tensor *t, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < t->rank && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, d ? ",%lld" : "%lld", (long long)t->dims[d]);
    if (at < len)
        snprintf(buf + at, len - at, ")");
}

/* V_PASS when got matches exp, else V_FAIL naming the first difference. */
static verdict compare(const char *name, const oq_tensor *got, const oq_tensor *exp, outcome *o)
{
    if (got->dtype != exp->dtype)
        return say(o, V_FAIL, "output '%s': type %s, expected %s", name, oq_dtype_name(got->dtype),
                   oq_dtype_name(exp->dtype));
    if (got->rank != exp->rank || memcmp(got->dims, exp->dims, (size_t)exp->rank * sizeof exp->dims[0])) {
        char a[128], b[128];
        shape_str(got, a, sizeof a);
        shape_str(exp, b, sizeof b);
        return say(o, V_FAIL, "output '%s': shape %s, expected %s", name, a, b);
    }
    int64_t n = oq_tensor_numel(exp);
    const oq_dtype_traits *tr = &oq_dtype_traits_table[exp->dtype];
    bool is_complex = exp->dtype == OQ_DTYPE_COMPLEX64 || exp->dtype == OQ_DTYPE_COMPLEX128;
    if (is_complex)
        n *= 2;
    for (int64_t i = 0; i < n; i++) {
        if (exp->dtype == OQ_DTYPE_STRING) {
            const char *g = ((char *const *)got->data)[i], *e = ((char *const *)exp->data)[i];
            if (strcmp(g ? g : "", e ? e : ""))
                return say(o, V_FAIL, "output '%s' [%lld]: got \"%.40s\", expected \"%.40s\"", name, (long long)i,
                           g ? g : "", e ? e : "");
        } else if (tr->is_float) {
            double g = float_at(got, i), e = float_at(exp, i);
            if (!close_enough(g, e))
                return say(o, V_FAIL, "output '%s' [%lld]: got %.9g, expected %.9g", name,
                           (long long)(is_complex ? i / 2 : i), g, e);
        } else {
            int64_t g = oq_tensor_get_i64(got, i), e = oq_tensor_get_i64(exp, i);
            if (g != e)
                return say(o, V_FAIL, "output '%s' [%lld]: got %lld, expected %lld", name, (long long)i,
                           (long long)g, (long long)e);
        }
    }
    return V_PASS;
}

/* ---- one case ------------------------------------------------------------------ */

typedef struct pb_set {
    int n;
    oq_tensor *t; /* [n] */
    char **names; /* [n] */
} pb_set;

static void pb_set_free(pb_set *s)
{
    for (int i = 0; i < s->n; i++) {
        oq_tensor_release(&s->t[i]);
        free(s->names[i]);
    }
    free(s->t);
    free(s->names);
    memset(s, 0, sizeof *s);
}

/* Loads dir/<prefix>_0.pb, _1.pb, ... until one is missing. */
static verdict pb_set_load(pb_set *s, const char *dir, const char *prefix, outcome *o)
{
    char path[4096];
    memset(s, 0, sizeof *s);
    for (;;) {
        if (snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, s->n) >= (int)sizeof path || !is_file(path))
            return V_PASS;
        oq_tensor *nt = realloc(s->t, (size_t)(s->n + 1) * sizeof *nt);
        char **nn = nt ? realloc(s->names, (size_t)(s->n + 1) * sizeof *nn) : NULL;
        if (nt)
            s->t = nt;
        if (!nn)
            return say(o, V_FAIL, "out of memory");
        s->names = nn;
        oq_err err = {0};
        if (oq_tensor_load_pb(&s->t[s->n], &s->names[s->n], path, &err))
            return say(o, err.status == OQ_EUNSUPPORTED ? V_SKIP : V_FAIL, "%s_%d.pb: %s", prefix, s->n, err.msg);
        s->n++;
    }
}

/* ONNX's test data stores bfloat16 tensors as uint16 (numpy has no
 * bfloat16); reads such a tensor as the bfloat16 the graph declares. */
static void fix_bf16(oq_tensor *t, oq_dtype declared)
{
    if (t->dtype == OQ_DTYPE_UINT16 && declared == OQ_DTYPE_BFLOAT16)
        t->dtype = OQ_DTYPE_BFLOAT16;
}

/* Whether t fits the declaration of v (type, rank, fixed dims). A few ONNX
 * cases ship data that contradicts their own model; those are skipped. */
static bool fits_declaration(const oq_tensor *t, const oq_value *v)
{
    if (v->dtype != OQ_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return false;
    if (v->rank < 0)
        return true;
    if (t->rank != v->rank)
        return false;
    for (int d = 0; d < v->rank; d++)
        if (v->dims[d].value >= 0 && v->dims[d].value != t->dims[d])
            return false;
    return true;
}

/* Index in s of the tensor for value v: by name, else by position i. */
static int pb_match(const pb_set *s, const oq_value *v, int i)
{
    for (int k = 0; k < s->n; k++)
        if (s->names[k][0] && !strcmp(s->names[k], v->name))
            return k;
    return i < s->n ? i : -1;
}

static verdict run_data_set(oq_session *sess, const char *dir, outcome *o)
{
    pb_set in, exp;
    oq_tensor *feed = NULL, *got = NULL;
    int n_in = oq_session_input_count(sess), n_out = oq_session_output_count(sess);
    verdict v;
    if ((v = pb_set_load(&in, dir, "input", o)) || (v = pb_set_load(&exp, dir, "output", o)))
        goto done;
    feed = calloc((size_t)(n_in ? n_in : 1), sizeof *feed);
    got = calloc((size_t)(n_out ? n_out : 1), sizeof *got);
    if (!feed || !got) {
        v = say(o, V_FAIL, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++) {
        int k = pb_match(&in, oq_session_input(sess, i), i);
        if (k < 0) {
            v = say(o, V_FAIL, "no data for input '%s'", oq_session_input(sess, i)->name);
            goto done;
        }
        feed[i] = in.t[k];
        fix_bf16(&feed[i], oq_session_input(sess, i)->dtype);
        if (!fits_declaration(&feed[i], oq_session_input(sess, i))) {
            v = say(o, V_SKIP, "test data for input '%s' contradicts the model's declared type or shape",
                    oq_session_input(sess, i)->name);
            goto done;
        }
    }
    oq_err err = {0};
    if (oq_session_run(sess, feed, got, &err)) {
        v = err.status == OQ_EUNSUPPORTED ? say(o, V_UNSUP, "unsupported attribute: %s", err.msg)
                                          : say(o, V_FAIL, "run: %s", err.msg);
        goto done;
    }
    if (exp.n != n_out) {
        v = say(o, V_FAIL, "%d expected outputs for %d graph outputs", exp.n, n_out);
        goto done;
    }
    for (int i = 0; i < n_out && !v; i++) {
        const oq_value *ov = oq_session_output(sess, i);
        oq_tensor want = exp.t[pb_match(&exp, ov, i)];
        fix_bf16(&want, got[i].dtype);
        v = compare(ov->name, &got[i], &want, o);
    }
done:
    for (int i = 0; got && i < n_out; i++)
        oq_tensor_release(&got[i]);
    free(got);
    free(feed);
    pb_set_free(&in);
    pb_set_free(&exp);
    return v;
}

static verdict run_case(const char *case_dir, outcome *o)
{
    char path[4096];
    oq_model *m = NULL;
    oq_session *sess = NULL;
    oq_err err = {0};
    verdict v = V_PASS;
    if (snprintf(path, sizeof path, "%s/model.onnx", case_dir) >= (int)sizeof path)
        return say(o, V_FAIL, "path too long");
    if (oq_model_load(&m, path, &err)) {
        v = say(o, err.status == OQ_EUNSUPPORTED ? V_SKIP : V_FAIL, "load: %s", err.msg);
        goto done;
    }
    if ((v = check_claims(m, m->graph, o)))
        goto done;
    oq_exec_options opts = {.threads = 0};
    if (oq_session_create(&sess, m, &opts, &err)) {
        v = say(o, err.status == OQ_EUNSUPPORTED ? V_UNSUP : V_FAIL, "plan: %s", err.msg);
        goto done;
    }
    int n_sets;
    char **sets = list_dir(case_dir, "test_data_set_", &n_sets);
    for (int i = 0; i < n_sets && !v; i++) {
        if (snprintf(path, sizeof path, "%s/%s", case_dir, sets[i]) >= (int)sizeof path)
            v = say(o, V_FAIL, "path too long");
        else if ((v = run_data_set(sess, path, o)) && v != V_SKIP) {
            size_t len = strlen(o->why);
            snprintf(o->why + len, sizeof o->why - len, " (%s)", sets[i]);
        }
    }
    free_names(sets, n_sets);
    if (!v && !n_sets)
        v = say(o, V_FAIL, "no test_data_set_* folders");
done:
    oq_session_destroy(sess);
    oq_model_destroy(m);
    return v;
}

/* Runs one case in a child process; a crash or timeout is a failure. */
static verdict run_isolated(const char *case_dir, outcome *o)
{
    int fds[2];
    if (pipe(fds))
        return say(o, V_FAIL, "pipe failed");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return say(o, V_FAIL, "fork failed");
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(CASE_SECONDS);
        const char *base = strrchr(case_dir, '/');
        abs_tol = case_abs_tol(base ? base + 1 : case_dir);
        outcome r = {V_PASS, ""};
        run_case(case_dir, &r);
        ssize_t w = write(fds[1], &r, sizeof r);
        close(fds[1]);
        exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    outcome r;
    size_t got = 0;
    ssize_t k;
    while (got < sizeof r && (k = read(fds[0], (char *)&r + got, sizeof r - got)) > 0)
        got += (size_t)k;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        return say(o, V_FAIL, WTERMSIG(status) == SIGALRM ? "timed out after %d s" : "crashed (signal %d)",
                   WTERMSIG(status) == SIGALRM ? CASE_SECONDS : WTERMSIG(status));
    if (got != sizeof r)
        return say(o, V_FAIL, "child exited with status %d before reporting", WEXITSTATUS(status));
    if (WEXITSTATUS(status))
        return say(o, V_FAIL, "child exited with status %d (sanitizer report above?)", WEXITSTATUS(status));
    *o = r;
    return o->v;
}

/* ---- main --------------------------------------------------------------------------- */

/* Skip reasons with how many cases gave each. */
typedef struct reason {
    char *text;
    int count;
} reason;

static int cmp_reason(const void *a, const void *b)
{
    const reason *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->text, y->text);
}

/* File scope so that forked children, which never free the parent's lists,
 * still see them as reachable (no false leak reports under sanitizers). */
static char **cases;
static reason *reasons;

/* The "passed N" line of floor file path into *floor; false (with a message)
 * when the file cannot be read or has no such line. */
static bool read_floor(const char *path, int *floor)
{
    FILE *f = fopen(path, "r");
    char line[256];
    bool found = false;
    if (!f) {
        perror(path);
        return false;
    }
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "passed %d", floor) == 1 && *floor >= 0;
    fclose(f);
    if (!found)
        fprintf(stderr, "onnx-node: %s has no line 'passed N'\n", path);
    return found;
}

int main(int argc, char **argv)
{
    const char *dir = DEFAULT_DIR, *filter = NULL, *floor_file = NULL;
    int floor = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--floor") && i + 1 < argc)
            floor_file = argv[++i];
        else if (is_dir(argv[i]))
            dir = argv[i];
        else
            filter = argv[i];
    }
    if (floor_file && !read_floor(floor_file, &floor))
        return 1;
    int n_cases;
    cases = list_dir(dir, NULL, &n_cases);
    if (!cases) {
        fprintf(stderr, "onnx-node: cannot read %s\n", dir);
        return 1;
    }
    int counts[V_COUNT] = {0};
    static const char *const tag[V_COUNT] = {"PASS", "FAIL", "SKIP", "UNSUPPORTED"};
    int n_reasons = 0;
    for (int i = 0; i < n_cases; i++) {
        char case_dir[4096];
        if (snprintf(case_dir, sizeof case_dir, "%s/%s", dir, cases[i]) >= (int)sizeof case_dir)
            continue;
        if ((filter && !strstr(cases[i], filter)) || !is_dir(case_dir))
            continue;
        outcome o = {V_PASS, ""};
        verdict v = run_isolated(case_dir, &o);
        counts[v]++;
        if (v == V_PASS)
            continue;
        printf("%s %s: %s\n", tag[v], cases[i], o.why);
        if (v == V_FAIL)
            continue;
        int r = 0;
        while (r < n_reasons && strcmp(reasons[r].text, o.why))
            r++;
        if (r == n_reasons) {
            reason *nr = realloc(reasons, (size_t)(n_reasons + 1) * sizeof *nr);
            if (!nr || !(nr[r].text = strdup(o.why))) {
                reasons = nr ? nr : reasons;
                continue;
            }
            reasons = nr;
            reasons[n_reasons++].count = 0;
        }
        reasons[r].count++;
    }
    if (n_reasons)
        qsort(reasons, (size_t)n_reasons, sizeof *reasons, cmp_reason);
    for (int r = 0; r < n_reasons; r++) {
        printf("skip reason (%d cases): %s\n", reasons[r].count, reasons[r].text);
        free(reasons[r].text);
    }
    free(reasons);
    free_names(cases, n_cases);
    printf("onnx-node: %d passed, %d failed, %d unsupported (claimed, refused at run time), %d skipped (not claimed)\n",
           counts[V_PASS], counts[V_FAIL], counts[V_UNSUP], counts[V_SKIP]);
    bool below = false;
    if (floor >= 0 && !filter) {
        below = counts[V_PASS] < floor;
        if (below)
            printf("onnx-node: FAILED: %d cases passed, fewer than the floor of %d in %s\n", counts[V_PASS], floor,
                   floor_file);
        else if (counts[V_PASS] > floor)
            printf("onnx-node: %d cases passed, more than the floor of %d: raise it in %s\n", counts[V_PASS], floor,
                   floor_file);
        else
            printf("onnx-node: the floor of %d passing cases (%s) holds\n", floor, floor_file);
    }
    return counts[V_FAIL] || below ? 1 : 0;
}
