/* err.c: the error record (see oq_err.h). */
#include "onnxq/oq_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

oq_status oq_errf(oq_err *err, oq_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

oq_status oq_err_context(oq_err *err, const char *fmt, ...)
{
    if (!err)
        return OQ_EINVAL;
    char prefix[OQ_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[2 * OQ_ERR_MSG_MAX + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    memcpy(err->msg, joined, OQ_ERR_MSG_MAX - 1); /* keeps the prefix, truncates the tail */
    err->msg[OQ_ERR_MSG_MAX - 1] = '\0';
    return err->status;
}

const char *oq_status_name(oq_status status)
{
    static const char *const names[OQ_STATUS_COUNT] = {
        [OQ_OK] = "ok",
        [OQ_EINVAL] = "invalid input",
        [OQ_EUNSUPPORTED] = "unsupported",
        [OQ_EIO] = "i/o error",
        [OQ_ENOMEM] = "out of memory or over limit",
    };
    return (unsigned)status < OQ_STATUS_COUNT ? names[status] : "unknown status";
}
