/* oq_err.h: status codes and the error record every fallible call fills.
 *
 * Convention: a fallible function returns oq_status and takes `oq_err *err` last.
 * On failure it stores one human-readable line in err->msg (no "onnxq: error:"
 * prefix, no trailing newline) and returns the same non-zero status. Only the
 * CLI prints errors or exits. */
#ifndef ONNXQ_OQ_ERR_H
#define ONNXQ_OQ_ERR_H

#include <stddef.h>

typedef enum oq_status {
    OQ_OK = 0,
    OQ_EINVAL,       /* malformed model, data or argument */
    OQ_EUNSUPPORTED, /* valid ONNX that onnxq does not handle (op, attribute, dtype) */
    OQ_EIO,          /* file system failure */
    OQ_ENOMEM,       /* allocation failed or a size limit was exceeded */
    OQ_STATUS_COUNT
} oq_status;

#define OQ_ERR_MSG_MAX 512

typedef struct oq_err {
    oq_status status;
    char msg[OQ_ERR_MSG_MAX];
} oq_err;

/* Records `status` and the printf-style message in err (err may be NULL).
 * Returns status so callers can write `return oq_errf(err, OQ_EINVAL, ...)`. */
oq_status oq_errf(oq_err *err, oq_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an already-set message, to add where a failure
 * happened (e.g. the node name) as it travels up. Returns err->status. */
oq_status oq_err_context(oq_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short name of a status ("invalid input", ...). */
const char *oq_status_name(oq_status status);

#endif
