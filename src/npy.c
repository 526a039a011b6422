/* npy.c: numpy .npy reader and writer (see oq_npy.h).
 *
 * Layout of a file: the magic "\x93NUMPY", a major and minor version byte, the
 * header length (2 bytes little-endian in version 1, 4 bytes in 2 and 3), the
 * header (a Python dict literal with keys descr, fortran_order and shape,
 * padded with spaces and ended by '\n'), then the raw array data. */
#include "onnxq/oq_npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnxq/oq_file.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- dtypes -------------------------------------------------------------------- */

/* numpy type letter and item size for each dtype onnxq can exchange. */
typedef struct npy_type {
    char kind; /* 'f', 'i', 'u' or 'b' */
    unsigned size;
    oq_dtype dtype;
} npy_type;

static const npy_type npy_types[] = {
    {'f', 2, OQ_DTYPE_FLOAT16}, {'f', 4, OQ_DTYPE_FLOAT},  {'f', 8, OQ_DTYPE_DOUBLE},
    {'i', 1, OQ_DTYPE_INT8},    {'i', 2, OQ_DTYPE_INT16},  {'i', 4, OQ_DTYPE_INT32},
    {'i', 8, OQ_DTYPE_INT64},   {'u', 1, OQ_DTYPE_UINT8},  {'u', 2, OQ_DTYPE_UINT16},
    {'u', 4, OQ_DTYPE_UINT32},  {'u', 8, OQ_DTYPE_UINT64}, {'b', 1, OQ_DTYPE_BOOL},
};
#define NPY_TYPE_COUNT (sizeof npy_types / sizeof npy_types[0])

static const npy_type *npy_type_of_dtype(oq_dtype dt)
{
    for (size_t i = 0; i < NPY_TYPE_COUNT; i++)
        if (npy_types[i].dtype == dt)
            return &npy_types[i];
    return NULL;
}

/* Maps a descr string such as "<f4" or "|u1" to a dtype. */
static oq_status npy_parse_descr(const char *descr, oq_dtype *dt, const char *what, oq_err *err)
{
    char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return oq_errf(err, OQ_EINVAL, "%s: bad dtype '%s' in .npy header", what, descr);
    char kind = descr[1];
    char *end = NULL;
    unsigned long size = kind ? strtoul(descr + 2, &end, 10) : 0;
    if (!kind || !end || end == descr + 2 || *end)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: .npy dtype '%s' is not supported", what, descr);
    if (order == '>' && size > 1)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: big-endian .npy data ('%s') is not supported; "
                       "save it little-endian", what, descr);
    for (size_t i = 0; i < NPY_TYPE_COUNT; i++) {
        if (npy_types[i].kind == kind && npy_types[i].size == size) {
            *dt = npy_types[i].dtype;
            return OQ_OK;
        }
    }
    return oq_errf(err, OQ_EUNSUPPORTED, "%s: .npy dtype '%s' is not supported "
                   "(float16/32/64, int8..64, uint8..64 and bool are)", what, descr);
}

/* ---- header parsing ---------------------------------------------------------------
 * A cursor over the header text; each parse step skips leading blanks. */

typedef struct npy_cursor {
    const char *start, *p, *end;
    const char *what; /* source name for errors */
} npy_cursor;

static void npy_skip_space(npy_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Consumes character ch if it comes next; returns whether it did. */
static bool npy_accept(npy_cursor *c, char ch)
{
    npy_skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static oq_status npy_bad_header(npy_cursor *c, const char *expected, oq_err *err)
{
    return oq_errf(err, OQ_EINVAL, "%s: bad .npy header: expected %s at header offset %td", c->what,
                   expected, c->p - c->start);
}

/* Reads a quoted Python string without escapes into out[0..cap). */
static oq_status npy_string(npy_cursor *c, char *out, size_t cap, oq_err *err)
{
    npy_skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return npy_bad_header(c, "a quoted string", err);
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= cap)
            return npy_bad_header(c, "a short string without escapes", err);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return npy_bad_header(c, "a closing quote", err);
    c->p++;
    out[n] = '\0';
    return OQ_OK;
}

/* Reads True or False. */
static oq_status npy_bool(npy_cursor *c, bool *v, oq_err *err)
{
    npy_skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && !memcmp(c->p, "True", 4)) {
        c->p += 4;
        *v = true;
        return OQ_OK;
    }
    if (left >= 5 && !memcmp(c->p, "False", 5)) {
        c->p += 5;
        *v = false;
        return OQ_OK;
    }
    return npy_bad_header(c, "True or False", err);
}

/* Reads a tuple of non-negative integers, e.g. "()", "(3,)" or "(2, 3)". */
static oq_status npy_shape(npy_cursor *c, int *rank, int64_t *dims, oq_err *err)
{
    if (!npy_accept(c, '('))
        return npy_bad_header(c, "a shape tuple", err);
    *rank = 0;
    while (!npy_accept(c, ')')) {
        npy_skip_space(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return npy_bad_header(c, "a non-negative dimension", err);
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return oq_errf(err, OQ_EINVAL, "%s: .npy dimension is too large", c->what);
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') /* written by Python 2 */
            c->p++;
        if (*rank == OQ_MAX_RANK)
            return oq_errf(err, OQ_EUNSUPPORTED, "%s: .npy array has more than %d dimensions", c->what,
                           OQ_MAX_RANK);
        dims[(*rank)++] = v;
        if (!npy_accept(c, ',')) {
            if (!npy_accept(c, ')'))
                return npy_bad_header(c, "',' or ')' in the shape", err);
            break;
        }
    }
    return OQ_OK;
}

typedef struct npy_header {
    char descr[32];
    bool fortran_order;
    int rank;
    int64_t dims[OQ_MAX_RANK];
} npy_header;

/* Parses the dict literal text[0..len) into h; all three keys are required. */
static oq_status npy_parse_header(const char *text, size_t len, npy_header *h, const char *what, oq_err *err)
{
    npy_cursor c = {text, text, text + len, what};
    bool seen_descr = false, seen_order = false, seen_shape = false;
    oq_status st;
    if (!npy_accept(&c, '{'))
        return npy_bad_header(&c, "'{'", err);
    while (!npy_accept(&c, '}')) {
        char key[32];
        if ((st = npy_string(&c, key, sizeof key, err)))
            return st;
        if (!npy_accept(&c, ':'))
            return npy_bad_header(&c, "':'", err);
        if (!strcmp(key, "descr")) {
            npy_skip_space(&c);
            if (c.p < c.end && *c.p == '[')
                return oq_errf(err, OQ_EUNSUPPORTED, "%s: structured .npy dtypes are not supported", what);
            if ((st = npy_string(&c, h->descr, sizeof h->descr, err)))
                return st;
            seen_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if ((st = npy_bool(&c, &h->fortran_order, err)))
                return st;
            seen_order = true;
        } else if (!strcmp(key, "shape")) {
            if ((st = npy_shape(&c, &h->rank, h->dims, err)))
                return st;
            seen_shape = true;
        } else {
            return oq_errf(err, OQ_EINVAL, "%s: bad .npy header: unexpected key '%s'", what, key);
        }
        if (!npy_accept(&c, ',')) {
            if (!npy_accept(&c, '}'))
                return npy_bad_header(&c, "',' or '}'", err);
            break;
        }
    }
    if (!seen_descr || !seen_order || !seen_shape)
        return oq_errf(err, OQ_EINVAL, "%s: bad .npy header: missing '%s'", what,
                       !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
    return OQ_OK;
}

/* ---- reading ------------------------------------------------------------------- */

/* Parses the magic, version and header at the start of buf[0..len): sets the
 * element type, shape and the offset of the data. */
static oq_status npy_parse_prefix(const uint8_t *buf, size_t len, oq_dtype *dt, int *rank, int64_t *dims,
                                  size_t *data_offset, const char *what, oq_err *err)
{
    if (len < 10 || memcmp(buf, npy_magic, sizeof npy_magic))
        return oq_errf(err, OQ_EINVAL, "%s: not an .npy file (bad magic)", what);
    unsigned major = buf[6];
    size_t pre, hlen;
    if (major == 1) {
        pre = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return oq_errf(err, OQ_EINVAL, "%s: truncated .npy header", what);
        pre = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: .npy format version %u is not supported", what, major);
    }
    if (hlen > len - pre)
        return oq_errf(err, OQ_EINVAL, "%s: truncated .npy header", what);

    npy_header h = {0};
    oq_status st = npy_parse_header((const char *)buf + pre, hlen, &h, what, err);
    if (st)
        return st;
    if (h.fortran_order)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: Fortran-order .npy arrays are not supported; "
                       "save a C-order array (numpy.ascontiguousarray)", what);
    if ((st = npy_parse_descr(h.descr, dt, what, err)))
        return st;
    *rank = h.rank;
    memcpy(dims, h.dims, sizeof h.dims);
    *data_offset = pre + hlen;
    return OQ_OK;
}

/* Checks that `have` data bytes are exactly what the shape needs; sets *need. */
static oq_status npy_check_size(oq_dtype dt, int rank, const int64_t *dims, uint64_t have, size_t *need,
                                const char *what, oq_err *err)
{
    int64_t numel = oq_shape_numel(rank, dims);
    *need = oq_dtype_storage(dt, numel);
    if (numel < 0 || *need == SIZE_MAX)
        return oq_errf(err, OQ_EINVAL, "%s: .npy shape is too large", what);
    if (have < *need)
        return oq_errf(err, OQ_EINVAL, "%s: truncated .npy data: %llu bytes, the shape needs %zu", what,
                       (unsigned long long)have, *need);
    if (have > *need)
        return oq_errf(err, OQ_EINVAL, "%s: %llu unexpected bytes after the .npy data", what,
                       (unsigned long long)(have - *need));
    return OQ_OK;
}

/* Copies n bytes of element data into t, normalizing bools to 0/1. */
static void npy_store(oq_tensor *t, const uint8_t *data, size_t n)
{
    if (t->dtype == OQ_DTYPE_BOOL) {
        uint8_t *out = t->data;
        for (size_t i = 0; i < n; i++)
            out[i] = data[i] != 0;
    } else if (n) {
        memcpy(t->data, data, n);
    }
}

oq_status oq_npy_parse(oq_tensor *t, const uint8_t *buf, size_t len, const char *what, oq_err *err)
{
    memset(t, 0, sizeof *t);
    oq_dtype dt = OQ_DTYPE_UNDEFINED;
    int rank = 0;
    int64_t dims[OQ_MAX_RANK];
    size_t off, need;
    oq_status st = npy_parse_prefix(buf, len, &dt, &rank, dims, &off, what, err);
    if (st || (st = npy_check_size(dt, rank, dims, len - off, &need, what, err)))
        return st;
    if ((st = oq_tensor_alloc(t, dt, rank, dims, err)))
        return oq_err_context(err, "%s", what);
    npy_store(t, buf + off, need);
    return OQ_OK;
}

/* ---- reading one sample at a time ----------------------------------------------- */

#define NPY_MAX_PREFIX (1u << 20) /* headers longer than 1 MiB are refused */

oq_status oq_npy_open(oq_npy_file *f, const char *path, oq_err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return oq_errf(err, OQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    uint8_t *buf = NULL;
    oq_status st = OQ_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = oq_errf(err, OQ_EIO, "%s: not a readable regular file", path);
        goto fail;
    }
    size_t want = (uint64_t)sb.st_size < NPY_MAX_PREFIX ? (size_t)sb.st_size : NPY_MAX_PREFIX;
    buf = malloc(want ? want : 1);
    ssize_t got = buf ? pread(fd, buf, want, 0) : -1;
    if (got < 0 || (size_t)got != want) {
        st = oq_errf(err, OQ_EIO, "%s: cannot read the .npy header", path);
        goto fail;
    }
    size_t off, need;
    if ((st = npy_parse_prefix(buf, want, &f->dtype, &f->rank, f->dims, &off, path, err)) ||
        (st = npy_check_size(f->dtype, f->rank, f->dims, (uint64_t)sb.st_size - off, &need, path, err)))
        goto fail;
    free(buf);
    f->fd = fd;
    f->data_offset = off;
    return OQ_OK;
fail:
    free(buf);
    close(fd);
    return st;
}

oq_status oq_npy_read_sample(const oq_npy_file *f, int64_t i, oq_tensor *t, const char *what, oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (f->rank < 1 || i < 0 || i >= f->dims[0])
        return oq_errf(err, OQ_EINVAL, "%s: sample %lld is outside the leading axis", what, (long long)i);
    oq_status st = oq_tensor_alloc(t, f->dtype, f->rank - 1, f->dims + 1, err);
    if (st)
        return oq_err_context(err, "%s", what);
    size_t n = t->nbytes;
    uint8_t *tmp = f->dtype == OQ_DTYPE_BOOL ? malloc(n ? n : 1) : t->data;
    ssize_t got = tmp ? pread(f->fd, tmp, n, (off_t)(f->data_offset + (uint64_t)i * n)) : -1;
    if (got < 0 || (size_t)got != n) {
        if (tmp != t->data)
            free(tmp);
        oq_tensor_release(t);
        return oq_errf(err, OQ_EIO, "%s: cannot read sample %lld", what, (long long)i);
    }
    if (tmp != t->data) {
        npy_store(t, tmp, n);
        free(tmp);
    }
    return OQ_OK;
}

void oq_npy_close(oq_npy_file *f)
{
    if (f && f->fd >= 0)
        close(f->fd);
    if (f)
        f->fd = -1;
}

oq_status oq_npy_load(oq_tensor *t, const char *path, oq_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(t, 0, sizeof *t);
    oq_status st = oq_read_file(path, &buf, &len, err);
    if (st)
        return st;
    st = oq_npy_parse(t, buf, len, path, err);
    free(buf);
    return st;
}

/* ---- writing ------------------------------------------------------------------- */

oq_status oq_npy_serialize(const oq_tensor *t, uint8_t **buf, size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    const npy_type *nt = npy_type_of_dtype(t->dtype);
    if (!nt)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s tensors cannot be written as .npy", oq_dtype_name(t->dtype));

    /* With at most OQ_MAX_RANK dims the header always fits version 1's 16-bit length. */
    char header[512];
    int n = snprintf(header, sizeof header, "{'descr': '%c%c%u', 'fortran_order': False, 'shape': (",
                     nt->size == 1 ? '|' : '<', nt->kind, nt->size);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, i ? ", %lld" : "%lld", (long long)t->dims[i]);
    n += snprintf(header + n, sizeof header - (size_t)n, t->rank == 1 ? ",), }" : "), }");
    /* Pad with spaces so the data starts on a 64-byte boundary; '\n' ends the header. */
    size_t hlen = (size_t)n + 1;
    hlen += (64 - (10 + hlen) % 64) % 64;

    size_t data_len = oq_dtype_storage(t->dtype, oq_tensor_numel(t));
    if (data_len == SIZE_MAX)
        return oq_errf(err, OQ_EINVAL, "tensor shape is invalid");
    uint8_t *out = malloc(10 + hlen + data_len);
    if (!out)
        return oq_errf(err, OQ_ENOMEM, "cannot allocate %zu bytes for .npy data", 10 + hlen + data_len);
    memcpy(out, npy_magic, sizeof npy_magic);
    out[6] = 1;
    out[7] = 0;
    out[8] = (uint8_t)(hlen & 0xFF);
    out[9] = (uint8_t)(hlen >> 8);
    memcpy(out + 10, header, (size_t)n);
    memset(out + 10 + n, ' ', hlen - (size_t)n - 1);
    out[10 + hlen - 1] = '\n';
    if (data_len)
        memcpy(out + 10 + hlen, t->data, data_len);
    *buf = out;
    *len = 10 + hlen + data_len;
    return OQ_OK;
}

oq_status oq_npy_save(const oq_tensor *t, const char *path, oq_err *err)
{
    uint8_t *buf;
    size_t len;
    oq_status st = oq_npy_serialize(t, &buf, &len, err);
    if (st)
        return oq_err_context(err, "%s", path);
    st = oq_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}
