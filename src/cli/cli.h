/* cli.h: what the onnxq subcommands share: exit codes, error lines, option
 * parsing and shape formatting. The CLI is the only part of onnxq that prints
 * for the user or exits. */
#ifndef ONNXQ_CLI_H
#define ONNXQ_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "onnxq/oq_err.h"
#include "onnxq/oq_graph.h"
#include "onnxq/oq_tensor.h"

/* Exit status, as documented in `onnxq --help`. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,  /* bad input or model, or a failure while running */
    CLI_EXIT_USAGE = 2, /* unknown command or option, missing or malformed argument */
};

/* ---- errors ------------------------------------------------------------------
 * Every error is one line on stderr: "onnxq: error: MESSAGE". */

/* Prints the error line (newlines in the message become spaces). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints err's message and returns CLI_EXIT_FAIL. */
int cli_fail(const oq_err *err);
/* Prints a usage error and returns CLI_EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- option parsing --------------------------------------------------------------
 * Options may come before, after or between positional arguments; "--" ends
 * them. Long options take their value as "--opt VALUE" or "--opt=VALUE",
 * short ones as "-o VALUE" or "-oVALUE". */

typedef struct cli_opt {
    const char *long_name; /* without the leading "--" */
    char short_name;       /* 0 when there is none */
    bool takes_value;
    int id;                /* > 0, returned by cli_next */
} cli_opt;

typedef struct cli_parser {
    int argc;
    char **argv;
    int i;                 /* next argv index */
    bool only_positional;  /* "--" was seen */
    const char *cmd;       /* subcommand name, for error messages */
    const cli_opt *opts;
    int n_opts;
} cli_parser;

#define CLI_POSITIONAL 0 /* cli_next: a positional argument in *value */
#define CLI_END (-1)     /* cli_next: no more arguments */
#define CLI_BAD (-2)     /* cli_next: a usage error was printed */

/* Starts parsing argv[first..argc) for subcommand cmd with the given option table. */
void cli_parser_init(cli_parser *p, int argc, char **argv, int first, const char *cmd, const cli_opt *opts,
                     int n_opts);
/* Returns the next option's id (its value, if any, in *value), CLI_POSITIONAL,
 * CLI_END, or CLI_BAD after printing a usage error. */
int cli_next(cli_parser *p, const char **value);

/* Parses a whole decimal integer in [min, max]; false if s is anything else. */
bool cli_parse_int(const char *s, long min, long max, long *out);

/* ---- files and time ------------------------------------------------------------------ */

/* Seconds on the monotonic clock, for timing. */
double cli_now_s(void);

/* ---- formatting ------------------------------------------------------------------- */

/* Writes a declared shape as "[N, 3, ?, 224]" (unknown dims "?", symbolic dims
 * by name) or "?" when no shape is declared. Truncates to cap bytes. */
void cli_format_value_shape(const oq_value *v, char *buf, size_t cap);
/* Writes a tensor shape as "[2, 3]" ("[]" for a scalar). */
void cli_format_dims(int rank, const int64_t *dims, char *buf, size_t cap);
/* Element type of a declared value: its dtype name, "(non-tensor)" or "?" when undeclared. */
const char *cli_value_type_name(const oq_value *v);

/* ---- subcommands -------------------------------------------------------------------
 * Each takes the arguments after "onnxq" (argv[0] is the subcommand name) and
 * returns the exit status. */

int cli_inspect(int argc, char **argv);
int cli_prepare(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_calibrate(int argc, char **argv);
int cli_convert(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_compare(int argc, char **argv);
int cli_analyze(int argc, char **argv);

extern const char cli_inspect_help[];
extern const char cli_run_help[];
extern const char cli_prepare_help[];

#endif
