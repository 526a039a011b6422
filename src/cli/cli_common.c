/* cli_common.c: error lines, option parsing and shape formatting shared by
 * the onnxq subcommands (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors -------------------------------------------------------------------- */

/* Prints "onnxq: error: " + the formatted message as exactly one line. */
static void cli_verror(const char *fmt, va_list ap)
{
    char msg[2 * OQ_ERR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    fflush(stdout);
    fprintf(stderr, "onnxq: error: %s\n", msg);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(fmt, ap);
    va_end(ap);
}

int cli_fail(const oq_err *err)
{
    cli_error("%s", err->msg[0] ? err->msg : oq_status_name(err->status));
    return CLI_EXIT_FAIL;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

/* ---- option parsing ---------------------------------------------------------------- */

void cli_parser_init(cli_parser *p, int argc, char **argv, int first, const char *cmd, const cli_opt *opts,
                     int n_opts)
{
    *p = (cli_parser){.argc = argc, .argv = argv, .i = first, .cmd = cmd, .opts = opts, .n_opts = n_opts};
}

/* Finds a long option by the name part of "--name" or "--name=value". */
static const cli_opt *find_long(const cli_parser *p, const char *name, size_t len)
{
    for (int k = 0; k < p->n_opts; k++)
        if (p->opts[k].long_name && strlen(p->opts[k].long_name) == len &&
            !strncmp(p->opts[k].long_name, name, len))
            return &p->opts[k];
    return NULL;
}

static const cli_opt *find_short(const cli_parser *p, char c)
{
    for (int k = 0; k < p->n_opts; k++)
        if (p->opts[k].short_name == c)
            return &p->opts[k];
    return NULL;
}

int cli_next(cli_parser *p, const char **value)
{
    *value = NULL;
    if (p->i >= p->argc)
        return CLI_END;
    const char *a = p->argv[p->i++];
    if (p->only_positional || a[0] != '-' || a[1] == '\0') {
        *value = a;
        return CLI_POSITIONAL;
    }
    if (!strcmp(a, "--")) {
        p->only_positional = true;
        return cli_next(p, value);
    }
    const cli_opt *o;
    const char *inline_value = NULL;
    if (a[1] == '-') {
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        o = find_long(p, a + 2, len);
        if (!o) {
            cli_usage("%s: unknown option '%.*s'", p->cmd, (int)(len + 2), a);
            return CLI_BAD;
        }
        if (eq && !o->takes_value) {
            cli_usage("%s: option '--%s' takes no value", p->cmd, o->long_name);
            return CLI_BAD;
        }
        inline_value = eq ? eq + 1 : NULL;
    } else {
        o = find_short(p, a[1]);
        if (!o || (a[2] && !o->takes_value)) {
            cli_usage("%s: unknown option '%s'", p->cmd, a);
            return CLI_BAD;
        }
        inline_value = a[2] ? a + 2 : NULL;
    }
    if (o->takes_value) {
        if (!inline_value) {
            if (p->i >= p->argc) {
                cli_usage("%s: option '%s' needs a value", p->cmd, a);
                return CLI_BAD;
            }
            inline_value = p->argv[p->i++];
        }
        *value = inline_value;
    }
    return o->id;
}

bool cli_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- files and time ---------------------------------------------------------------- */

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- formatting -------------------------------------------------------------------- */

/* Appends printf output to buf[*n..cap), never overrunning. */
static void append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n = *n + (size_t)w < cap ? *n + (size_t)w : cap;
}

void cli_format_value_shape(const oq_value *v, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    if (v->kind != OQ_TYPE_TENSOR || v->rank < 0) {
        append(buf, cap, &n, "?");
        return;
    }
    append(buf, cap, &n, "[");
    for (int i = 0; i < v->rank; i++) {
        const oq_dim *d = &v->dims[i];
        const char *sep = i ? ", " : "";
        if (d->value >= 0)
            append(buf, cap, &n, "%s%lld", sep, (long long)d->value);
        else if (d->param && d->param[0])
            append(buf, cap, &n, "%s%s", sep, d->param);
        else
            append(buf, cap, &n, "%s?", sep);
    }
    append(buf, cap, &n, "]");
}

void cli_format_dims(int rank, const int64_t *dims, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    append(buf, cap, &n, "[");
    for (int i = 0; i < rank; i++)
        append(buf, cap, &n, i ? ", %lld" : "%lld", (long long)dims[i]);
    append(buf, cap, &n, "]");
}

const char *cli_value_type_name(const oq_value *v)
{
    if (v->kind == OQ_TYPE_OPAQUE)
        return "(non-tensor)";
    if (v->kind != OQ_TYPE_TENSOR || v->dtype == OQ_DTYPE_UNDEFINED)
        return "?";
    return oq_dtype_name(v->dtype);
}
