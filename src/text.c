/* text.c: the growing text buffer of report renderings (see text.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Makes room for n more bytes and the NUL; false (and t->bad) on failure. */
static bool reserve(oq_text *t, size_t n)
{
    if (t->bad)
        return false;
    if (t->len + n + 1 <= t->cap)
        return true;
    size_t cap = (t->len + n + 1) * 2;
    char *s = realloc(t->s, cap);
    if (!s) {
        t->bad = true;
        return false;
    }
    t->s = s;
    t->cap = cap;
    return true;
}

void oq_text_printf(oq_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->bad = true;
        return;
    }
    if (!reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void oq_text_append(oq_text *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

oq_status oq_text_finish(oq_text *t, char **out, size_t *len, oq_err *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (!t->bad && !t->s)
        reserve(t, 0);
    if (t->bad) {
        oq_text_release(t);
        return oq_errf(err, OQ_ENOMEM, "out of memory");
    }
    t->s[t->len] = '\0';
    *out = t->s;
    if (len)
        *len = t->len;
    *t = (oq_text){0};
    return OQ_OK;
}

void oq_text_release(oq_text *t)
{
    free(t->s);
    *t = (oq_text){0};
}
