/* main.c: the onnxq entry point: global options, help and subcommand dispatch. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "onnxq/oq_cpu.h"

#ifndef OQ_VERSION
#error "OQ_VERSION must be defined by the build (meson passes the project version)"
#endif

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name; handles --help */
} cli_command;

static const cli_command commands[] = {
    {"inspect", "summarize a model: inputs, outputs, operators, parameters", cli_inspect},
    {"prepare", "write the prepared float model (folds, fusions, dead code removed)", cli_prepare},
    {"run", "execute a model on input tensors with the built-in executor", cli_run},
    {"calibrate", "record activation ranges over sample data (and merge tables)", cli_calibrate},
    {"convert", "rewrite a model to INT8 with a calibration table, with a report", cli_convert},
    {"quantize", "calibrate and convert in one run", cli_quantize},
    {"compare", "compare a quantized model with its float model, tensor by tensor", cli_compare},
    {"analyze", "rank the nodes by how much quantizing each alone costs (and merge shards)", cli_analyze},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static const char main_help_head[] =
    "Usage: onnxq COMMAND [ARGS...]\n"
    "       onnxq help [COMMAND]\n"
    "       onnxq --version\n"
    "       onnxq --max-tensor-bytes N COMMAND [ARGS...]\n"
    "\n"
    "onnxq quantizes ONNX models to INT8 after training (calibrate, then convert),\n"
    "and inspects and runs models with its own C executor.\n"
    "\n"
    "Commands:\n";

static const char main_help_tail[] =
    "  help       show this help, or a command's help\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help and exit\n"
    "  --version   print the version and exit\n"
    "  --max-tensor-bytes N\n"
    "              refuse any one tensor (or file read whole) larger than N bytes;\n"
    "              N may end in K, M or G (powers of 1024). Default 4G, or the\n"
    "              environment variable ONNXQ_MAX_TENSOR_BYTES\n"
    "\n"
    "Environment:\n"
    "  ONNXQ_ISA   use no kernels above this instruction-set level: baseline, sha,\n"
    "              avx2, avxvnni, avx512 or avx512vnni (default: the best this\n"
    "              processor runs; results are the same except float GEMM rounding)\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  bad input (unreadable or invalid model or data) or a failure while running\n"
    "  2  usage error (unknown command or option, missing or malformed argument)\n"
    "\n"
    "Errors are reported as one line on stderr: \"onnxq: error: MESSAGE\".\n"
    "Run 'onnxq COMMAND --help' for the options of a command.\n";

static void print_main_help(void)
{
    fputs(main_help_head, stdout);
    for (int i = 0; i < N_COMMANDS; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs(main_help_tail, stdout);
}

static const cli_command *find_command(const char *name)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* `onnxq help [COMMAND]` */
static int help_command(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help();
        return CLI_EXIT_OK;
    }
    if (argc > 2)
        return cli_usage("help: expected at most one command name");
    if (!strcmp(argv[1], "help")) {
        print_main_help();
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(argv[1]);
    if (!c)
        return cli_usage("help: unknown command '%s'", argv[1]);
    char *help_argv[] = {argv[1], "--help", NULL};
    return c->run(2, help_argv);
}

/* Parses a byte count "N", "NK", "NM" or "NG" (powers of 1024), N >= 1. */
static bool parse_bytes(const char *s, size_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (errno || *end || v == 0 || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

/* Applies ONNXQ_MAX_TENSOR_BYTES, then a leading --max-tensor-bytes; *used
 * counts the argv entries the option took. Returns CLI_EXIT_OK or a usage error. */
static int tensor_limit_options(int argc, char **argv, int *used)
{
    size_t bytes;
    const char *env = getenv("ONNXQ_MAX_TENSOR_BYTES");
    *used = 0;
    if (env && *env) {
        if (!parse_bytes(env, &bytes))
            return cli_usage("ONNXQ_MAX_TENSOR_BYTES expects a byte count such as 4G or 1048576, got '%s'", env);
        oq_set_tensor_limit(bytes);
    }
    if (argc < 2 || strncmp(argv[1], "--max-tensor-bytes", 18) != 0 || (argv[1][18] && argv[1][18] != '='))
        return CLI_EXIT_OK;
    const char *v = argv[1][18] == '=' ? argv[1] + 19 : argc > 2 ? argv[2] : NULL;
    if (!parse_bytes(v, &bytes))
        return cli_usage("--max-tensor-bytes expects a byte count such as 4G or 1048576, got '%s'", v ? v : "");
    oq_set_tensor_limit(bytes);
    *used = argv[1][18] == '=' ? 1 : 2;
    return CLI_EXIT_OK;
}

static int dispatch(int argc, char **argv)
{
    oq_err err = {0};
    if (oq_cpu_init(&err))
        return cli_usage("%s", err.msg);
    int used, rc = tensor_limit_options(argc, argv, &used);
    if (rc != CLI_EXIT_OK)
        return rc;
    argc -= used;
    argv += used;
    if (argc < 2)
        return cli_usage("missing command (run 'onnxq --help' for the list)");
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        print_main_help();
        return CLI_EXIT_OK;
    }
    if (!strcmp(a, "--version")) {
        puts("onnxq " OQ_VERSION);
        return CLI_EXIT_OK;
    }
    if (a[0] == '-')
        return cli_usage("unknown option '%s'", a);
    if (!strcmp(a, "help"))
        return help_command(argc - 1, argv + 1);
    const cli_command *c = find_command(a);
    if (!c)
        return cli_usage("unknown command '%s' (run 'onnxq --help' for the list)", a);
    return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    int rc = dispatch(argc, argv);
    /* A full disk or closed pipe must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == CLI_EXIT_OK)
            cli_error("cannot write to standard output");
        return rc == CLI_EXIT_OK ? CLI_EXIT_FAIL : rc;
    }
    return rc;
}
