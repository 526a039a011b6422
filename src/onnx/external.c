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
#include "onnxq/oq_file.h"

/* ================================================================================
 * Reading
 * ================================================================================ */

struct pb_ext_file {
    dev_t dev;
    ino_t ino;
    oq_mapping *map;
};

void pb_ext_reader_release(pb_ext_reader *r)
{
    for (int i = 0; i < r->n_files; i++)
        oq_mapping_release(r->files[i].map);
    free(r->files);
    free(r->base_real);
    r->files = NULL;
    r->n_files = r->cap_files = 0;
    r->base_real = NULL;
}

/* Bytes an element of dt must be aligned to in memory (for C's typed access). */
static size_t element_alignment(oq_dtype dt)
{
    unsigned bits = oq_dtype_traits_table[dt].bits;
    return bits >= 64 ? 8 : bits >= 32 ? 4 : bits >= 16 ? 2 : 1;
}

/* The mapping of the file open on fd (described by sb), made on first use
 * and kept in r; `loc` names it in errors. */
static oq_status file_mapping(pb_ext_reader *r, int fd, const struct stat *sb, const char *what, const char *loc,
                              oq_mapping **out, oq_err *err)
{
    for (int i = 0; i < r->n_files; i++) {
        if (r->files[i].dev == sb->st_dev && r->files[i].ino == sb->st_ino) {
            *out = r->files[i].map;
            return OQ_OK;
        }
    }
    if (r->n_files == r->cap_files) {
        int cap = r->cap_files ? 2 * r->cap_files : 4;
        pb_ext_file *grown = realloc(r->files, (size_t)cap * sizeof *grown);
        if (!grown)
            return oq_errf(err, OQ_ENOMEM, "out of memory");
        r->files = grown;
        r->cap_files = cap;
    }
    oq_status st = oq_mapping_open(out, fd, (uint64_t)sb->st_size, loc, err);
    if (st)
        return oq_err_context(err, "%s: external data", what);
    r->files[r->n_files++] = (pb_ext_file){sb->st_dev, sb->st_ino, *out};
    return OQ_OK;
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

/* Reads want bytes at offset of the file open on fd into dst. */
static oq_status read_range(int fd, uint8_t *dst, uint64_t offset, size_t want, const char *what, const char *loc,
                            oq_err *err)
{
    for (size_t got = 0; got < want;) {
        ssize_t k = pread(fd, dst + got, want - got, (off_t)(offset + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return oq_errf(err, OQ_EIO, "%s: reading external data '%s': %s", what, loc,
                           k < 0 ? strerror(errno) : "file shrank");
        got += (size_t)k;
    }
    return OQ_OK;
}

oq_status pb_read_external(pb_ext_reader *r, const TensorProto *tp, const char *what, oq_tensor *t, oq_err *err)
{
    size_t want = t->nbytes;
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
    if (r->map && want && offset % element_alignment(t->dtype) == 0) {
        oq_mapping *map = NULL;
        st = file_mapping(r, fd, &sb, what, loc, &map, err);
        if (!st && offset + want > oq_mapping_size(map)) /* mapped for an earlier tensor, and grown since */
            st = oq_errf(err, OQ_EIO, "%s: external data file '%s' changed while the model was loading", what, loc);
        if (!st) {
            oq_mapping_retain(map);
            t->mapping = map;
            t->data = (void *)(oq_mapping_data(map) + offset);
        }
    } else if (!(t->data = malloc(want ? want : 1))) {
        st = oq_errf(err, OQ_ENOMEM, "%s: cannot allocate %zu bytes", what, want);
    } else {
        t->owns_data = true;
        st = read_range(fd, t->data, offset, want, what, loc, err);
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

/* Bytes of a tensor written at a time. */
#define WRITE_PIECE ((size_t)16 << 20)

oq_status pb_write_external(pb_save_ctx *c, const oq_tensor *t, size_t bytes, TensorProto *tp)
{
    static const uint8_t zeros[8];
    oq_status st = OQ_OK;
    if (!c->ext) /* the first tensor to go there */
        st = c->commit ? oq_commit_open(c->commit, c->ext_path, &c->ext, c->err)
                       : oq_out_open(&c->ext, c->ext_path, c->err);
    if (st)
        return st;
    size_t pad = (size_t)(-oq_out_size(c->ext) % element_alignment(t->dtype));
    st = oq_out_write(c->ext, zeros, pad, c->err);
    uint64_t offset = oq_out_size(c->ext);
    for (size_t done = 0; !st && done < bytes;) { /* in pieces, so a mapped tensor's pages leave as they go */
        size_t n = bytes - done < WRITE_PIECE ? bytes - done : WRITE_PIECE;
        st = oq_out_write(c->ext, (const uint8_t *)t->data + done, n, c->err);
        if (t->mapping)
            oq_mapping_forget(t->mapping, (const uint8_t *)t->data + done, n);
        done += n;
    }
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
