/* file.c: whole-file reads, read-only mappings, output files renamed into
 * place, and several outputs committed together (see oq_file.h). */
#include "onnxq/oq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnxq/oq_tensor.h"

oq_status oq_read_file(const char *path, uint8_t **buf, size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return oq_errf(err, OQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return oq_errf(err, OQ_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return oq_errf(err, OQ_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > oq_tensor_limit()) {
        close(fd);
        return oq_errf(err, OQ_ENOMEM, "%s: file of %lld bytes exceeds the size limit of %zu bytes", path,
                       (long long)st.st_size, oq_tensor_limit());
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) {
        close(fd);
        return oq_errf(err, OQ_ENOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(data);
            close(fd);
            return oq_errf(err, OQ_EIO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = data;
    *len = size;
    return OQ_OK;
}

oq_status oq_write_file_atomic(const char *path, const uint8_t *buf, size_t len, oq_err *err)
{
    oq_out *f = NULL;
    oq_status st;
    if (!(st = oq_out_open(&f, path, err)) && !(st = oq_out_write(f, buf, len, err)))
        st = oq_out_commit(f, err);
    oq_out_destroy(f);
    return st;
}

bool oq_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return !strcmp(a, b) ||
           (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

char *oq_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return dir;
}

bool oq_path_inside(const char *path, const char *dir)
{
    char *parent = oq_path_dir(path);
    char *real_dir = realpath(dir, NULL), *real_parent = parent ? realpath(parent, NULL) : NULL;
    size_t n = real_dir ? strlen(real_dir) : 0;
    bool inside = real_dir && real_parent && !strncmp(real_parent, real_dir, n) &&
                  (real_parent[n] == '\0' || real_parent[n] == '/' || (n == 1 && real_dir[0] == '/'));
    free(parent);
    free(real_dir);
    free(real_parent);
    return inside;
}

/* ---- read-only mappings --------------------------------------------------------- */

struct oq_mapping {
    atomic_int refs;
    uint8_t *addr;
    size_t len;
    dev_t dev; /* the file mapped */
    ino_t ino;
};

oq_status oq_mapping_open(oq_mapping **out, int fd, uint64_t size, const char *path, oq_err *err)
{
    *out = NULL;
    if (size == 0 || size > SIZE_MAX)
        return oq_errf(err, OQ_EINVAL, "%s: cannot map %llu bytes", path, (unsigned long long)size);
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return oq_errf(err, OQ_EIO, "%s: cannot map: %s", path, strerror(errno));
    oq_mapping *m = malloc(sizeof *m);
    if (!m)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    void *addr = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
        free(m);
        return oq_errf(err, errno == ENOMEM ? OQ_ENOMEM : OQ_EIO, "%s: cannot map: %s", path, strerror(errno));
    }
    atomic_init(&m->refs, 1);
    m->addr = addr;
    m->len = (size_t)size;
    m->dev = sb.st_dev;
    m->ino = sb.st_ino;
    *out = m;
    return OQ_OK;
}

const uint8_t *oq_mapping_data(const oq_mapping *m) { return m->addr; }
uint64_t oq_mapping_size(const oq_mapping *m) { return m->len; }

bool oq_mapping_of_file(const oq_mapping *m, const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_dev == m->dev && sb.st_ino == m->ino;
}

void oq_mapping_retain(oq_mapping *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void oq_mapping_release(oq_mapping *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    munmap(m->addr, m->len);
    free(m);
}

void oq_mapping_forget(oq_mapping *m, const void *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    uintptr_t base = (uintptr_t)m->addr, end = base + m->len;
    if (lo < base)
        lo = base;
    if (hi > end)
        hi = end;
    if (lo < hi) /* a hint: on failure the pages just stay */
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ---- output files ----------------------------------------------------------------- */

#define OUT_BUFFER (1 << 20)

struct oq_out {
    char *path, *tmp;
    int fd;          /* -1 once closed */
    bool committed;
    oq_status failed; /* first failure; later calls repeat it */
    uint8_t *buf;    /* [OUT_BUFFER] pending bytes */
    size_t used;
    uint64_t size;   /* bytes written, pending included */
};

/* Records a write failure of f (errno e) and returns it. */
static oq_status out_fail(oq_out *f, int e, oq_err *err)
{
    f->failed = oq_errf(err, OQ_EIO, "%s: cannot write: %s", f->path, strerror(e));
    return f->failed;
}

/* Writes p[0..n) to f's descriptor. */
static oq_status out_raw(oq_out *f, const uint8_t *p, size_t n, oq_err *err)
{
    while (n) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return out_fail(f, errno, err);
        p += w;
        n -= (size_t)w;
    }
    return OQ_OK;
}

oq_status oq_out_open(oq_out **out, const char *path, oq_err *err)
{
    *out = NULL;
    oq_out *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (f)
        f->fd = -1;
    if (!f || !(f->path = strdup(path)) || !(f->buf = malloc(OUT_BUFFER)) || !(f->tmp = malloc(n + 16))) {
        oq_out_destroy(f);
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp, n + 16, "%s.tmpXXXXXX", path);
    struct stat sb; /* a folder in the way would only be found by the rename */
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        free(f->tmp);
        f->tmp = NULL;
        oq_out_destroy(f);
        return oq_errf(err, OQ_EIO, "%s: cannot create: %s", path, strerror(EISDIR));
    }
    if ((f->fd = mkstemp(f->tmp)) < 0) {
        oq_status st = oq_errf(err, OQ_EIO, "%s: cannot create: %s", path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        oq_out_destroy(f);
        return st;
    }
    *out = f;
    return OQ_OK;
}

oq_status oq_out_write(oq_out *f, const void *p, size_t n, oq_err *err)
{
    if (f->failed || f->fd < 0)
        return f->failed ? f->failed : oq_errf(err, OQ_EINVAL, "%s: written after it was finished", f->path);
    f->size += n;
    if (OUT_BUFFER - f->used > n) {
        if (n)
            memcpy(f->buf + f->used, p, n);
        f->used += n;
        return OQ_OK;
    }
    oq_status st = out_raw(f, f->buf, f->used, err);
    f->used = 0;
    if (st)
        return st;
    if (n >= OUT_BUFFER / 2)
        return out_raw(f, p, n, err);
    memcpy(f->buf, p, n);
    f->used = n;
    return OQ_OK;
}

uint64_t oq_out_size(const oq_out *f) { return f->size; }

const char *oq_out_path(const oq_out *f) { return f->path; }

oq_status oq_out_finish(oq_out *f, oq_err *err)
{
    if (f->failed || f->fd < 0)
        return f->failed;
    oq_status st = out_raw(f, f->buf, f->used, err);
    f->used = 0;
    if (st)
        return st;
    if (fchmod(f->fd, 0644) != 0 || fsync(f->fd) != 0)
        return out_fail(f, errno, err);
    int fd = f->fd;
    f->fd = -1;
    return close(fd) != 0 ? out_fail(f, errno, err) : OQ_OK;
}

oq_status oq_out_commit(oq_out *f, oq_err *err)
{
    oq_status st = oq_out_finish(f, err);
    if (st)
        return st;
    if (rename(f->tmp, f->path) != 0)
        return out_fail(f, errno, err);
    f->committed = true;
    return OQ_OK;
}

void oq_out_destroy(oq_out *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp && !f->committed)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f->buf);
    free(f);
}

/* ---- several files, all or none ------------------------------------------------------ */

typedef struct commit_file {
    oq_out *out;  /* the new content under its temporary name, until renamed */
    char *backup; /* a hard link to what the path held before, while renames may still fail */
    bool existed; /* the path existed when the renames began */
} commit_file;

struct oq_commit {
    int n;
    commit_file *files;
};

oq_status oq_commit_create(oq_commit **out, oq_err *err)
{
    if (!(*out = calloc(1, sizeof **out)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    return OQ_OK;
}

void oq_commit_destroy(oq_commit *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        if (c->files[i].backup)
            unlink(c->files[i].backup);
        free(c->files[i].backup);
        oq_out_destroy(c->files[i].out);
    }
    free(c->files);
    free(c);
}

oq_status oq_commit_open(oq_commit *c, const char *path, oq_out **out, oq_err *err)
{
    *out = NULL;
    commit_file *grown = realloc(c->files, (size_t)(c->n + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    c->files = grown;
    commit_file *f = &c->files[c->n];
    memset(f, 0, sizeof *f);
    oq_status st = oq_out_open(&f->out, path, err);
    if (st)
        return st;
    c->n++;
    *out = f->out;
    return OQ_OK;
}

oq_status oq_commit_add(oq_commit *c, const char *path, const uint8_t *buf, size_t len, oq_err *err)
{
    oq_out *f;
    oq_status st = oq_commit_open(c, path, &f, err);
    return st ? st : oq_out_write(f, buf, len, err);
}

/* Links a copy of f's existing destination under a fresh name beside it. */
static oq_status keep_backup(commit_file *f, oq_err *err)
{
    const char *path = oq_out_path(f->out);
    size_t n = strlen(path);
    if (!(f->backup = malloc(n + 16)))
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", path);
    snprintf(f->backup, n + 16, "%s.bakXXXXXX", path);
    int fd = mkstemp(f->backup); /* reserves a unique name, replaced by the link */
    if (fd >= 0) {
        close(fd);
        unlink(f->backup);
    }
    if (fd < 0 || link(path, f->backup) != 0) {
        oq_status st = oq_errf(err, OQ_EIO, "%s: cannot keep its old content while writing: %s", path,
                               strerror(errno));
        free(f->backup);
        f->backup = NULL;
        return st;
    }
    return OQ_OK;
}

oq_status oq_commit_finish(oq_commit *c, oq_err *err)
{
    oq_status st;
    for (int i = 0; i < c->n; i++) /* every write that can fail, before any rename */
        if ((st = oq_out_finish(c->files[i].out, err)))
            return st;
    /* a backup of every existing destination but the last renamed, which has nothing after it to fail */
    for (int i = 0; i < c->n; i++) {
        struct stat sb;
        commit_file *f = &c->files[i];
        f->existed = lstat(oq_out_path(f->out), &sb) == 0;
        if (f->existed && !S_ISDIR(sb.st_mode) && i < c->n - 1 && (st = keep_backup(f, err)))
            return st;
    }
    for (int i = 0; i < c->n; i++) {
        if ((st = oq_out_commit(c->files[i].out, err))) {
            for (int j = 0; j < i; j++) { /* put back what the earlier renames replaced */
                commit_file *d = &c->files[j];
                const char *path = oq_out_path(d->out);
                if (d->backup && rename(d->backup, path) == 0) {
                    free(d->backup);
                    d->backup = NULL;
                } else if (!d->existed) {
                    unlink(path);
                }
            }
            return st;
        }
    }
    return OQ_OK;
}
