/* file.c: whole-file reads and atomic writes (see oq_file.h). */
#include "onnxq/oq_file.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Writes buf to a new temporary file beside path; *tmp gets its name (caller frees). */
static oq_status write_temporary(const char *path, const uint8_t *buf, size_t len, char **tmp, oq_err *err)
{
    size_t n = strlen(path);
    char *name = malloc(n + 16);
    if (!name)
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", path);
    snprintf(name, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(name);
    if (fd < 0) {
        oq_status st = oq_errf(err, OQ_EIO, "%s: cannot create: %s", path, strerror(errno));
        free(name);
        return st;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto fail;
        done += (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    *tmp = name;
    return OQ_OK;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(name);
    free(name);
    return oq_errf(err, OQ_EIO, "%s: cannot write: %s", path, strerror(e));
}

typedef struct commit_file {
    char *path;
    char *tmp;    /* the new content, until renamed */
    char *backup; /* a hard link to what path held before, while renames may still fail */
    bool existed; /* path existed when the renames began */
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
        if (c->files[i].tmp)
            unlink(c->files[i].tmp);
        if (c->files[i].backup)
            unlink(c->files[i].backup);
        free(c->files[i].tmp);
        free(c->files[i].backup);
        free(c->files[i].path);
    }
    free(c->files);
    free(c);
}

oq_status oq_commit_add(oq_commit *c, const char *path, const uint8_t *buf, size_t len, oq_err *err)
{
    commit_file *grown = realloc(c->files, (size_t)(c->n + 1) * sizeof *grown);
    if (!grown)
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    c->files = grown;
    commit_file *f = &c->files[c->n];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path)))
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    c->n++;
    return write_temporary(path, buf, len, &f->tmp, err);
}

/* Links a copy of f's existing destination under a fresh name beside it. */
static oq_status keep_backup(commit_file *f, oq_err *err)
{
    size_t n = strlen(f->path);
    if (!(f->backup = malloc(n + 16)))
        return oq_errf(err, OQ_ENOMEM, "%s: out of memory", f->path);
    snprintf(f->backup, n + 16, "%s.bakXXXXXX", f->path);
    int fd = mkstemp(f->backup); /* reserves a unique name, replaced by the link */
    if (fd >= 0) {
        close(fd);
        unlink(f->backup);
    }
    if (fd < 0 || link(f->path, f->backup) != 0) {
        oq_status st = oq_errf(err, OQ_EIO, "%s: cannot keep its old content while writing: %s", f->path,
                               strerror(errno));
        free(f->backup);
        f->backup = NULL;
        return st;
    }
    return OQ_OK;
}

oq_status oq_commit_finish(oq_commit *c, oq_err *err)
{
    /* a backup of every existing destination but the last renamed, which has nothing after it to fail */
    for (int i = 0; i < c->n; i++) {
        struct stat sb;
        commit_file *f = &c->files[i];
        f->existed = lstat(f->path, &sb) == 0;
        if (f->existed && !S_ISDIR(sb.st_mode) && i < c->n - 1) {
            oq_status st = keep_backup(f, err);
            if (st)
                return st;
        }
    }
    for (int i = 0; i < c->n; i++) {
        commit_file *f = &c->files[i];
        if (rename(f->tmp, f->path) != 0) {
            oq_status st = oq_errf(err, OQ_EIO, "%s: cannot write: %s", f->path, strerror(errno));
            for (int j = 0; j < i; j++) { /* put back what the earlier renames replaced */
                commit_file *d = &c->files[j];
                if (d->backup && rename(d->backup, d->path) == 0) {
                    free(d->backup);
                    d->backup = NULL;
                } else if (!d->existed) {
                    unlink(d->path);
                }
            }
            return st;
        }
        free(f->tmp);
        f->tmp = NULL;
    }
    return OQ_OK;
}

oq_status oq_write_file_atomic(const char *path, const uint8_t *buf, size_t len, oq_err *err)
{
    oq_commit *c;
    oq_status st = oq_commit_create(&c, err);
    if (!st && !(st = oq_commit_add(c, path, buf, len, err)))
        st = oq_commit_finish(c, err);
    oq_commit_destroy(c);
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
