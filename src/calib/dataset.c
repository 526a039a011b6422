/* dataset.c: calibration/evaluation samples from test-data folders, images,
 * .npy stacks, and samples held in memory. See oq_dataset.h. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnxq/oq_dataset.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_hash.h"
#include "onnxq/oq_image.h"
#include "onnxq/oq_npy.h"
#include "onnxq/oq_onnx_io.h"

typedef struct npy_source {
    const oq_value *input; /* which model input this stack feeds */
    char *path;
    oq_npy_file file;      /* (samples, ...), read one sample at a time */
    bool open;
    bool add_batch;        /* each sample lacks the input's leading (symbolic) dim: it becomes 1 */
} npy_source;

/* ---- samples held in memory ---------------------------------------------------------- */

typedef struct named_tensor {
    char *name;
    oq_tensor t; /* owned */
} named_tensor;

typedef struct memory_sample {
    int n;
    named_tensor *tensors; /* [n] */
} memory_sample;

struct oq_samples {
    int64_t n, cap;
    memory_sample *samples; /* [n] */
};

oq_status oq_samples_create(oq_samples **out, oq_err *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? OQ_OK : oq_errf(err, OQ_ENOMEM, "out of memory");
}

void oq_samples_destroy(oq_samples *s)
{
    if (!s)
        return;
    for (int64_t i = 0; i < s->n; i++) {
        for (int k = 0; k < s->samples[i].n; k++) {
            free(s->samples[i].tensors[k].name);
            oq_tensor_release(&s->samples[i].tensors[k].t);
        }
        free(s->samples[i].tensors);
    }
    free(s->samples);
    free(s);
}

oq_status oq_samples_begin(oq_samples *s, oq_err *err)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 16;
        memory_sample *grown = realloc(s->samples, (size_t)cap * sizeof *grown);
        if (!grown)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        s->samples = grown;
        s->cap = cap;
    }
    s->samples[s->n++] = (memory_sample){0};
    return OQ_OK;
}

oq_status oq_samples_put(oq_samples *s, const char *name, oq_dtype dtype, int rank, const int64_t *dims,
                         const void *data, oq_err *err)
{
    if (!s->n)
        return oq_errf(err, OQ_EINVAL, "input '%s' given before any sample was begun", name);
    memory_sample *m = &s->samples[s->n - 1];
    for (int k = 0; k < m->n; k++)
        if (strcmp(m->tensors[k].name, name) == 0)
            return oq_errf(err, OQ_EINVAL, "sample %lld: input '%s' given twice", (long long)(s->n - 1), name);
    if (!oq_dtype_valid((int)dtype) || dtype == OQ_DTYPE_STRING)
        return oq_errf(err, OQ_EINVAL, "sample %lld: input '%s' has an element type onnxq cannot feed (%d)",
                       (long long)(s->n - 1), name, (int)dtype);
    if (rank < 0 || rank > OQ_MAX_RANK)
        return oq_errf(err, OQ_EINVAL, "sample %lld: input '%s' has rank %d (at most %d)", (long long)(s->n - 1), name,
                       rank, OQ_MAX_RANK);
    named_tensor *grown = realloc(m->tensors, (size_t)(m->n + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    m->tensors = grown;
    named_tensor *e = &m->tensors[m->n];
    *e = (named_tensor){0};
    oq_status st = oq_tensor_alloc(&e->t, dtype, rank, dims, err);
    if (st)
        return oq_err_context(err, "sample %lld: input '%s'", (long long)(s->n - 1), name);
    if (!(e->name = strdup(name))) {
        oq_tensor_release(&e->t);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    size_t bytes = oq_dtype_storage(dtype, oq_tensor_numel(&e->t));
    if (bytes)
        memcpy(e->t.data, data, bytes);
    m->n++;
    return OQ_OK;
}

int64_t oq_samples_count(const oq_samples *s) { return s->n; }

/* Sample i's tensor for input `name`, or NULL. */
static const oq_tensor *sample_tensor(const oq_samples *s, int64_t i, const char *name)
{
    for (int k = 0; k < s->samples[i].n; k++)
        if (strcmp(s->samples[i].tensors[k].name, name) == 0)
            return &s->samples[i].tensors[k].t;
    return NULL;
}

/* ---- data sets ---------------------------------------------------------------------------- */

struct oq_dataset {
    int n_inputs;
    const oq_value **inputs; /* [n_inputs] copy of the caller's list (values borrowed) */
    const oq_samples *memory; /* samples held in memory, when the data set is made of them */
    int64_t n_dirs;
    char **dirs;           /* [n_dirs] sample folders or image files, when folder specs are used */
    oq_preprocess pre;     /* for image samples */
    int n_npy;
    npy_source *npy;       /* [n_inputs], when .npy specs are used */
    int64_t n_samples;
};

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* True when dir holds input_0.pb. */
static bool is_sample_dir(const char *dir)
{
    char *p = join(dir, "input_0.pb");
    struct stat st;
    bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

static oq_status add_dir(oq_dataset *d, char *dir, oq_err *err)
{
    char **p = realloc(d->dirs, (size_t)(d->n_dirs + 1) * sizeof *p);
    if (!p) {
        free(dir);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    d->dirs = p;
    d->dirs[d->n_dirs++] = dir;
    return OQ_OK;
}

/* Adds the sample folders named by one folder spec. */
static oq_status add_folder_spec(oq_dataset *d, const char *spec, oq_err *err)
{
    if (!is_dir(spec))
        return oq_errf(err, OQ_EINVAL,
                       "%s: not a folder (data is a test-data folder, a folder of them or of images, or [NAME=]FILE.npy)",
                       spec);
    if (is_sample_dir(spec)) {
        char *copy = strdup(spec);
        return copy ? add_dir(d, copy, err) : oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    DIR *dh = opendir(spec);
    if (!dh)
        return oq_errf(err, OQ_EIO, "%s: cannot read folder", spec);
    char **names = NULL;
    size_t n = 0, cap = 0;
    oq_status st = OQ_OK;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = join(spec, e->d_name);
        if (!sub) {
            st = oq_errf(err, OQ_ENOMEM, "out of memory");
            break;
        }
        if (is_dir(sub) ? !is_sample_dir(sub) : !oq_is_image_path(sub)) {
            free(sub);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *grown);
            if (!grown) {
                free(sub);
                st = oq_errf(err, OQ_ENOMEM, "out of memory");
                break;
            }
            names = grown;
        }
        names[n++] = sub;
    }
    closedir(dh);
    if (!st && n == 0)
        st = oq_errf(err, OQ_EINVAL, "%s: no samples (expected input_0.pb, subfolders that hold it, or PNG/JPEG images)",
                     spec);
    if (!st)
        qsort(names, n, sizeof *names, cmp_str);
    size_t i = 0;
    for (; !st && i < n; i++)
        st = add_dir(d, names[i], err);
    for (; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/* Writes "[S, N, 16]" into buf: `lead` (NULL = none) then dims[from..rank) of
 * v's declared shape, symbolic dims by name and unknown ones as "?". */
static const char *declared_shape(char *buf, size_t cap, const char *lead, const oq_value *v, int from)
{
    size_t n = (size_t)snprintf(buf, cap, "[%s", lead ? lead : "");
    for (int i = from; i < v->rank && n < cap; i++) {
        const char *sep = i > from || lead ? ", " : "";
        if (v->dims[i].param)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, v->dims[i].param);
        else if (v->dims[i].value < 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s?", sep);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", sep, (long long)v->dims[i].value);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

/* Decides how s's array holds samples for its input: [S, ...input shape], or,
 * when the input's first dim is symbolic, unknown or a fixed 1 (a batch of
 * one, as most exporters write it), also [S, ...the rest] (each sample gets a
 * leading dim of 1). Fails naming file, input and both forms when the
 * array's shape fits neither; an input without a declared shape takes the
 * samples as they are. */
static oq_status npy_layout(npy_source *s, oq_err *err)
{
    const oq_value *v = s->input;
    const oq_npy_file *f = &s->file;
    if (v->kind != OQ_TYPE_TENSOR || v->rank < 0)
        return OQ_OK;
    bool open_first = v->rank >= 1 && (v->dims[0].value < 0 || v->dims[0].value == 1);
    int from = f->rank == v->rank + 1 ? 0 : open_first && f->rank == v->rank ? 1 : -1;
    for (int i = from; from >= 0 && i < v->rank; i++)
        if (v->dims[i].value >= 0 && f->dims[1 + i - from] != v->dims[i].value)
            from = -1;
    if (from >= 0) {
        s->add_batch = from == 1;
        return OQ_OK;
    }
    char got[160], want[160], stacked[160], rest[160];
    size_t n = (size_t)snprintf(got, sizeof got, "[");
    for (int i = 0; i < f->rank && n < sizeof got; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)f->dims[i]);
    if (n < sizeof got)
        snprintf(got + n, sizeof got - n, "]");
    return oq_errf(err, OQ_EINVAL, "%s: shape %s does not hold samples of input '%s' %s: expected %s%s%s (S samples)",
                   s->path, got, v->name, declared_shape(want, sizeof want, NULL, v, 0),
                   declared_shape(stacked, sizeof stacked, "S", v, 0), open_first ? " or " : "",
                   open_first ? declared_shape(rest, sizeof rest, "S", v, 1) : "");
}

bool oq_data_spec_holds(const char *spec, const char *path)
{
    const char *eq = strchr(spec, '='), *at = eq ? eq + 1 : spec;
    return is_dir(at) ? oq_path_inside(path, at) : oq_same_file(path, at);
}

/* Whether spec names a .npy file without an input name: FILE.npy, which a
 * model of one input reads as NAME=FILE.npy. */
static bool bare_npy_spec(const char *spec)
{
    size_t n = strlen(spec);
    return !strchr(spec, '=') && n > 4 && !strcmp(spec + n - 4, ".npy") && !is_dir(spec);
}

static oq_status add_npy_spec(oq_dataset *d, const char *spec, oq_err *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq && d->n_inputs != 1)
        return oq_errf(err, OQ_EINVAL, "%s: the model has %d inputs: name the one it feeds (NAME=%s)", spec,
                       d->n_inputs, spec);
    size_t name_len = eq ? (size_t)(eq - spec) : strlen(d->inputs[0]->name);
    const char *name = eq ? spec : d->inputs[0]->name, *path = eq ? eq + 1 : spec;
    int k = -1;
    for (int i = 0; i < d->n_inputs && k < 0; i++)
        if (strlen(d->inputs[i]->name) == name_len && strncmp(d->inputs[i]->name, name, name_len) == 0)
            k = i;
    if (k < 0)
        return oq_errf(err, OQ_EINVAL, "%s: the model has no input named '%.*s'", spec, (int)name_len, name);
    npy_source *s = &d->npy[k];
    if (s->path)
        return oq_errf(err, OQ_EINVAL, "input '%s' is given twice", d->inputs[k]->name);
    if (!(s->path = strdup(path)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    s->input = d->inputs[k];
    oq_status st = oq_npy_open(&s->file, s->path, err);
    if (st)
        return st;
    s->open = true;
    if (s->file.rank < 1)
        return oq_errf(err, OQ_EINVAL, "%s: expected samples stacked on a leading axis, got a scalar", s->path);
    if (s->file.dims[0] < 1)
        return oq_errf(err, OQ_EINVAL, "%s holds no samples: its leading axis, the sample axis, has length 0",
                       s->path);
    if ((st = npy_layout(s, err)))
        return st;
    d->n_npy++;
    return OQ_OK;
}

oq_status oq_dataset_open(oq_dataset **out, int n_specs, const char *const *specs, int n_inputs,
                          const oq_value *const *inputs, const oq_preprocess *pre, oq_err *err)
{
    *out = NULL;
    oq_dataset *d = calloc(1, sizeof *d);
    if (!d || !(d->npy = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *d->npy))) {
        free(d);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    d->n_inputs = n_inputs;
    if (!(d->inputs = calloc((size_t)n_inputs + 1, sizeof *d->inputs))) {
        free(d->npy);
        free(d);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    memcpy(d->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    d->pre = pre ? *pre : oq_preprocess_default();
    oq_status st = OQ_OK;
    int n_npy_specs = 0;
    for (int i = 0; i < n_specs; i++)
        n_npy_specs += strchr(specs[i], '=') != NULL || bare_npy_spec(specs[i]);
    if (n_specs == 0)
        st = oq_errf(err, OQ_EINVAL, "no data given");
    else if (n_npy_specs && n_npy_specs != n_specs)
        st = oq_errf(err, OQ_EINVAL, "data folders and .npy files cannot be mixed");
    for (int i = 0; !st && i < n_specs; i++)
        st = n_npy_specs ? add_npy_spec(d, specs[i], err) : add_folder_spec(d, specs[i], err);
    if (!st && n_npy_specs) {
        for (int k = 0; !st && k < n_inputs; k++) {
            if (!d->npy[k].path)
                st = oq_errf(err, OQ_EINVAL, "input '%s' has no NAME=FILE.npy data", inputs[k]->name);
            else if (k && d->npy[k].file.dims[0] != d->npy[0].file.dims[0])
                st = oq_errf(err, OQ_EINVAL, "%s holds %lld samples but %s holds %lld", d->npy[k].path,
                             (long long)d->npy[k].file.dims[0], d->npy[0].path, (long long)d->npy[0].file.dims[0]);
        }
        if (!st)
            d->n_samples = n_inputs ? d->npy[0].file.dims[0] : 0;
    } else if (!st) {
        d->n_samples = d->n_dirs;
        for (int64_t i = 0; !st && i < d->n_dirs; i++)
            if (oq_is_image_path(d->dirs[i]) && n_inputs != 1)
                st = oq_errf(err, OQ_EINVAL, "%s: image data needs a model with one input, this one has %d", d->dirs[i],
                             n_inputs);
    }
    if (st) {
        oq_dataset_destroy(d);
        return st;
    }
    *out = d;
    return OQ_OK;
}

void oq_dataset_destroy(oq_dataset *d)
{
    if (!d)
        return;
    for (int64_t i = 0; i < d->n_dirs; i++)
        free(d->dirs[i]);
    free(d->dirs);
    for (int k = 0; d->npy && k < d->n_inputs; k++) {
        free(d->npy[k].path);
        if (d->npy[k].open)
            oq_npy_close(&d->npy[k].file);
    }
    free(d->npy);
    free(d->inputs);
    free(d);
}

int64_t oq_dataset_count(const oq_dataset *d) { return d->n_samples; }

static void hash_tensor(oq_sha256 *h, const oq_tensor *t)
{
    int32_t head[2] = {(int32_t)t->dtype, t->rank};
    oq_sha256_update(h, head, sizeof head);
    oq_sha256_update(h, t->dims, (size_t)t->rank * sizeof t->dims[0]);
    if (t->dtype != OQ_DTYPE_STRING)
        oq_sha256_update(h, t->data, oq_dtype_storage(t->dtype, oq_tensor_numel(t)));
}

/* Decodes and preprocesses one image sample into *t. */
static oq_status load_image(const oq_dataset *d, const char *path, oq_tensor *t, oq_err *err)
{
    oq_image img;
    oq_status st = oq_image_load(&img, path, err);
    if (!st)
        st = oq_preprocess_image(t, &img, &d->pre, err);
    oq_image_release(&img);
    if (st == OQ_EINVAL && !strstr(err->msg, path))
        oq_err_context(err, "%s", path);
    return st;
}

/* Fails when test-data folder dir holds input_N.pb for a model of n inputs:
 * a sample made for another model must not pass with a part ignored. */
static oq_status refuse_extra_input(const char *dir, int n, oq_err *err)
{
    char file[32];
    snprintf(file, sizeof file, "input_%d.pb", n);
    char *path = join(dir, file);
    if (!path)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    struct stat sb;
    oq_status st = stat(path, &sb) == 0
                       ? oq_errf(err, OQ_EINVAL, "%s: the model has %d input%s, nothing to feed this file", path, n,
                                 n == 1 ? "" : "s")
                       : OQ_OK;
    free(path);
    return st;
}

oq_status oq_dataset_load(const oq_dataset *d, int64_t i, oq_tensor *tensors, oq_err *err)
{
    memset(tensors, 0, (size_t)d->n_inputs * sizeof *tensors);
    if (i < 0 || i >= d->n_samples)
        return oq_errf(err, OQ_EINVAL, "sample %lld is out of range", (long long)i);
    oq_status st = OQ_OK;
    int k = 0;
    for (; !st && k < d->n_inputs; k++) {
        char *path = NULL;
        if (d->memory) {
            char what[48];
            snprintf(what, sizeof what, "sample %lld", (long long)i);
            st = oq_tensor_copy(&tensors[k], sample_tensor(d->memory, i, d->inputs[k]->name), err);
            if (!st)
                st = oq_value_check_tensor(d->inputs[k], &tensors[k], what, err);
        } else if (d->n_npy) {
            st = oq_npy_read_sample(&d->npy[k].file, i, &tensors[k], d->npy[k].path, err);
            if (!st && d->npy[k].add_batch) { /* rank < file rank <= OQ_MAX_RANK */
                oq_tensor *t = &tensors[k];
                memmove(t->dims + 1, t->dims, (size_t)t->rank * sizeof t->dims[0]);
                t->dims[0] = 1;
                t->rank++;
            }
            if (!st)
                st = oq_value_check_tensor(d->inputs[k], &tensors[k], d->npy[k].path, err);
        } else if (oq_is_image_path(d->dirs[i])) {
            st = load_image(d, d->dirs[i], &tensors[k], err);
            if (!st)
                st = oq_value_check_tensor(d->inputs[k], &tensors[k], d->dirs[i], err);
        } else {
            char file[32];
            snprintf(file, sizeof file, "input_%d.pb", k);
            if (!(path = join(d->dirs[i], file)))
                st = oq_errf(err, OQ_ENOMEM, "out of memory");
            if (!st)
                st = oq_tensor_load_pb(&tensors[k], NULL, path, err);
            if (!st)
                st = oq_value_check_tensor(d->inputs[k], &tensors[k], path, err);
        }
        free(path);
    }
    if (!st && !d->memory && !d->n_npy && !oq_is_image_path(d->dirs[i]))
        st = refuse_extra_input(d->dirs[i], d->n_inputs, err);
    if (!st && (st = oq_values_check_shared_dims(d->n_inputs, (const oq_value *const *)d->inputs, tensors, err)))
        oq_err_context(err, "sample %lld", (long long)i);
    if (st) {
        for (int j = 0; j < k; j++)
            oq_tensor_release(&tensors[j]);
        return st;
    }
    return OQ_OK;
}

void oq_dataset_sample_hash(const oq_dataset *d, const oq_tensor *tensors, char hex[65])
{
    oq_sha256 h;
    oq_sha256_init(&h);
    for (int k = 0; k < d->n_inputs; k++)
        hash_tensor(&h, &tensors[k]);
    oq_sha256_hex(&h, hex);
}

/* Fills the layout and size p leaves unset from a one-input model's input
 * declaration: a fixed size is the resize, exact, or with a crop the smallest
 * of the image's aspect that covers it (the crop then cuts it to size). */
static void preprocess_defaults(oq_preprocess *p, const oq_value *input, bool layout_given, bool resize_given)
{
    if (!input || input->rank != 4)
        return;
    const oq_dim *dims = input->dims;
    bool nhwc = dims[3].value == 3 && dims[1].value != 3;
    if (!layout_given)
        p->layout = nhwc ? OQ_LAYOUT_NHWC : OQ_LAYOUT_NCHW;
    int hi = p->layout == OQ_LAYOUT_NHWC ? 1 : 2;
    if (!resize_given && dims[hi].value > 0 && dims[hi + 1].value > 0) {
        p->resize_w = (int)dims[hi + 1].value;
        p->resize_h = (int)dims[hi].value;
        p->resize_cover = p->crop_w > 0;
    }
}

/* The inputs of m a caller feeds (graph inputs that are not initializers),
 * in *inputs (malloc'ed, caller frees), and their count. */
static oq_status fed_inputs(const oq_model *m, const oq_value ***inputs, int *n, oq_err *err)
{
    const oq_graph *g = m->graph;
    *n = 0;
    if (!(*inputs = calloc((size_t)g->n_inputs + 1, sizeof **inputs)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->constant)
            (*inputs)[(*n)++] = g->inputs[i];
    return OQ_OK;
}

oq_status oq_dataset_open_for_model(oq_dataset **out, const oq_model *m, int n_specs, const char *const *specs,
                                    const oq_preprocess *pre, bool layout_given, bool resize_given, oq_err *err)
{
    const oq_value **inputs;
    int n;
    *out = NULL;
    oq_status st = fed_inputs(m, &inputs, &n, err);
    if (st)
        return st;
    oq_preprocess p = pre ? *pre : oq_preprocess_default();
    preprocess_defaults(&p, n == 1 ? inputs[0] : NULL, layout_given, resize_given);
    st = oq_dataset_open(out, n_specs, specs, n, inputs, &p, err);
    free(inputs);
    return st;
}

oq_status oq_dataset_open_samples(oq_dataset **out, const oq_samples *s, int n_inputs, const oq_value *const *inputs,
                                  oq_err *err)
{
    *out = NULL;
    if (!s->n)
        return oq_errf(err, OQ_EINVAL, "no samples given");
    for (int64_t i = 0; i < s->n; i++) {
        for (int k = 0; k < n_inputs; k++)
            if (!sample_tensor(s, i, inputs[k]->name))
                return oq_errf(err, OQ_EINVAL, "sample %lld has no tensor for input '%s'", (long long)i,
                               inputs[k]->name);
        for (int t = 0; t < s->samples[i].n; t++) {
            int k = 0;
            while (k < n_inputs && strcmp(inputs[k]->name, s->samples[i].tensors[t].name))
                k++;
            if (k == n_inputs)
                return oq_errf(err, OQ_EINVAL, "sample %lld: the model has no input named '%s'", (long long)i,
                               s->samples[i].tensors[t].name);
        }
    }
    oq_dataset *d = calloc(1, sizeof *d);
    if (!d || !(d->inputs = calloc((size_t)n_inputs + 1, sizeof *d->inputs))) {
        free(d);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    memcpy(d->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    d->n_inputs = n_inputs;
    d->memory = s;
    d->n_samples = s->n;
    d->pre = oq_preprocess_default();
    *out = d;
    return OQ_OK;
}

oq_status oq_dataset_open_samples_for_model(oq_dataset **out, const oq_model *m, const oq_samples *s, oq_err *err)
{
    const oq_value **inputs;
    int n;
    *out = NULL;
    oq_status st = fed_inputs(m, &inputs, &n, err);
    if (!st)
        st = oq_dataset_open_samples(out, s, n, inputs, err);
    free(inputs);
    return st;
}

oq_status oq_labels_read(const char *path, int64_t **out, int64_t *n, oq_err *err)
{
    uint8_t *buf;
    size_t len;
    *out = NULL;
    *n = 0;
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    int64_t cap = 64, cnt = 0;
    int64_t *labels = malloc((size_t)cap * sizeof *labels);
    char *text = malloc(len + 1);
    if (!labels || !text) {
        free(buf);
        free(labels);
        free(text);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    free(buf);
    int line = 1;
    for (char *p = text; *p; line++) {
        char *end = strchr(p, '\n');
        if (end)
            *end = '\0';
        size_t n_chars = strlen(p);
        while (n_chars && strchr(" \t\r", p[n_chars - 1]))
            p[--n_chars] = '\0';
        char *token = strrchr(p, ' ');
        char *tab = strrchr(p, '\t');
        token = tab > token ? tab : token;
        token = token ? token + 1 : p;
        char *q;
        long long v = strtoll(token, &q, 10);
        if (q == token || *q) {
            st = oq_errf(err, OQ_EINVAL, "%s:%d: expected a class number at the end of the line", path, line);
            break;
        }
        if (cnt == cap) {
            int64_t *grown = realloc(labels, (size_t)(cap *= 2) * sizeof *grown);
            if (!grown) {
                st = oq_errf(err, OQ_ENOMEM, "out of memory");
                break;
            }
            labels = grown;
        }
        labels[cnt++] = v;
        if (!end)
            break;
        p = end + 1;
    }
    free(text);
    if (st) {
        free(labels);
        return st;
    }
    *out = labels;
    *n = cnt;
    return OQ_OK;
}
