/* external.c: tensor data kept in files beside the model (TensorProto
 * data_location EXTERNAL): reading it with its path and bounds checks, and
 * writing it when saving (see proto.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/proto.h"

/* ================================================================================
 * Reading
 * ================================================================================ */

void pb_ext_reader_release(pb_ext_reader *r)
{
    free(r->base_real);
    r->base_real = NULL;
}

/* Parses a non-negative decimal for external_data offset/length. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Refuses locations that are absolute or contain a ".." component. */
static bool location_is_local(const char *loc)
{
    if (loc[0] == '/')
        return false;
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

oq_status pb_read_external(pb_ext_reader *r, const TensorProto *tp, const char *what, oq_tensor *t, size_t want,
                           oq_err *err)
{
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    char *path = NULL, *real = NULL;
    int fd = -1;
    oq_status st = OQ_OK;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const EntryProto *e = tp->external_data[i];
        if (!e->key)
            continue;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            off_s = e->value;
        else if (!strcmp(e->key, "length"))
            len_s = e->value;
    }
    if (t->dtype == OQ_DTYPE_STRING)
        return oq_errf(err, OQ_EUNSUPPORTED, "%s: string tensors cannot use external data", what);
    if (!loc || !*loc)
        return oq_errf(err, OQ_EINVAL, "%s: external data has no location", what);
    if (!r->base_dir)
        return oq_errf(err, OQ_EINVAL, "%s: external data '%s' needs the model's folder (loaded from memory)",
                       what, loc);
    if (!location_is_local(loc))
        return oq_errf(err, OQ_EINVAL, "%s: external data location '%s' leaves the model's folder", what, loc);
    uint64_t offset = 0, length = 0;
    if (off_s && !parse_u64(off_s, &offset))
        return oq_errf(err, OQ_EINVAL, "%s: external data offset '%s' is not a number", what, off_s);
    if (len_s && !parse_u64(len_s, &length))
        return oq_errf(err, OQ_EINVAL, "%s: external data length '%s' is not a number", what, len_s);

    if (!r->base_real && !(r->base_real = realpath(r->base_dir, NULL)))
        return oq_errf(err, OQ_EIO, "%s: cannot resolve the model's folder '%s': %s", what, r->base_dir,
                       strerror(errno));
    size_t n = strlen(r->base_dir) + strlen(loc) + 2;
    if (!(path = malloc(n)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s", r->base_dir, loc);
    if (!(real = realpath(path, NULL))) {
        st = oq_errf(err, OQ_EIO, "%s: external data file '%s': %s", what, loc, strerror(errno));
        goto fail;
    }
    size_t bl = strlen(r->base_real);
    bool inside = strncmp(real, r->base_real, bl) == 0 &&
                  (real[bl] == '/' || (bl > 0 && r->base_real[bl - 1] == '/'));
    if (!inside) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data file '%s' resolves outside the model's folder", what, loc);
        goto fail;
    }
    struct stat sb;
    if ((fd = open(real, O_RDONLY)) < 0 || fstat(fd, &sb) != 0) {
        st = oq_errf(err, OQ_EIO, "%s: external data file '%s': %s", what, loc, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data file '%s' is not a regular file", what, loc);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (offset > size) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data offset %llu is past the end of '%s' (%llu bytes)", what,
                     (unsigned long long)offset, loc, (unsigned long long)size);
        goto fail;
    }
    if (!len_s)
        length = size - offset;
    if (length > size - offset) {
        st = oq_errf(err, OQ_EINVAL, "%s: external data range [%llu, %llu+%llu) passes the end of '%s' (%llu bytes)",
                     what, (unsigned long long)offset, (unsigned long long)offset, (unsigned long long)length, loc,
                     (unsigned long long)size);
        goto fail;
    }
    if (length != want) {
        char ts[160];
        st = oq_errf(err, OQ_EINVAL, "%s: external data has %llu bytes, expected %zu for %s", what,
                     (unsigned long long)length, want, pb_type_str(ts, sizeof ts, t->dtype, t->rank, t->dims));
        goto fail;
    }
    for (size_t got = 0; got < want;) {
        ssize_t k = pread(fd, (uint8_t *)t->data + got, want - got, (off_t)(offset + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            st = oq_errf(err, OQ_EIO, "%s: reading external data '%s': %s", what, loc,
                         k < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)k;
    }
fail:
    if (fd >= 0)
        close(fd);
    free(real);
    free(path);
    return st;
}

/* ================================================================================
 * Writing
 * ================================================================================ */

/* Decimal v in c's arena; NULL sets err. */
static char *arena_printf_u64(pb_save_ctx *c, uint64_t v)
{
    char *s = pb_arena_alloc(&c->a, 24);
    if (!s) {
        oq_errf(c->err, OQ_ENOMEM, "out of memory building the model");
        return NULL;
    }
    snprintf(s, 24, "%llu", (unsigned long long)v);
    return s;
}

/* Appends len bytes to the external data buffer; *offset receives their position. */
static oq_status ext_append(pb_save_ctx *c, const void *data, size_t len, uint64_t *offset)
{
    if (c->ext_cap - c->ext_len < len) {
        size_t cap = c->ext_cap ? c->ext_cap : 1 << 20;
        while (cap - c->ext_len < len) {
            if (cap > SIZE_MAX / 2)
                return oq_errf(c->err, OQ_ENOMEM, "external data is too large");
            cap *= 2;
        }
        uint8_t *p = realloc(c->ext, cap);
        if (!p)
            return oq_errf(c->err, OQ_ENOMEM, "out of memory for %zu bytes of external data", cap);
        c->ext = p;
        c->ext_cap = cap;
    }
    memcpy(c->ext + c->ext_len, data, len);
    *offset = c->ext_len;
    c->ext_len += len;
    return OQ_OK;
}

oq_status pb_write_external(pb_save_ctx *c, const oq_tensor *t, size_t bytes, TensorProto *tp)
{
    uint64_t offset = 0;
    oq_status st = ext_append(c, t->data, bytes, &offset);
    if (st)
        return st;
    EntryProto **e = pb_arr_new(c, 3, sizeof *e);
    char *off_s = arena_printf_u64(c, offset), *len_s = arena_printf_u64(c, bytes);
    if (!e || !off_s || !len_s || !(e[0] = pb_entry_new(c, "location", c->ext_location)) ||
        !(e[1] = pb_entry_new(c, "offset", off_s)) || !(e[2] = pb_entry_new(c, "length", len_s)))
        return pb_status_of(c->err);
    tp->external_data = e;
    tp->n_external_data = 3;
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    return OQ_OK;
}
