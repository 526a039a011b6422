/* check.h: minimal assertions for the C unit tests. A failed CHECK prints
 * file:line and the expression and marks the test failed; main returns
 * check_exit() so meson sees the result. */
#ifndef ONNXQ_TEST_CHECK_H
#define ONNXQ_TEST_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                        \
        }                                                                            \
    } while (0)

/* Checks that a call returned OQ_OK, printing the error message otherwise. */
#define CHECK_OK(call, errp)                                                                         \
    do {                                                                                             \
        if ((call) != OQ_OK) {                                                                       \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, (errp)->msg);       \
            check_failures++;                                                                        \
        }                                                                                            \
    } while (0)

static inline int check_exit(const char *name)
{
    printf("%s: %s\n", name, check_failures ? "FAILED" : "ok");
    return check_failures ? 1 : 0;
}

#endif
