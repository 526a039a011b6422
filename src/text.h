/* text.h: a growing text buffer for the renderings of reports (summary
 * lines, HTML). Writes after an allocation failure are dropped and the
 * failure is reported once, by oq_text_finish. Internal to liboq. */
#ifndef ONNXQ_TEXT_H
#define ONNXQ_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/oq_err.h"

typedef struct oq_text {
    char *s; /* NUL-terminated once anything was written */
    size_t len, cap;
    bool bad; /* an allocation failed: the text is incomplete */
} oq_text;

/* Appends printf-style text. */
void oq_text_printf(oq_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes of s. */
void oq_text_append(oq_text *t, const char *s, size_t n);
/* Hands the text to the caller (*out, malloc'ed, NUL-terminated; *len may be
 * NULL) and empties t; fails with OQ_ENOMEM, freeing it, when a write was dropped. */
oq_status oq_text_finish(oq_text *t, char **out, size_t *len, oq_err *err);
/* Frees the text. */
void oq_text_release(oq_text *t);

#endif
