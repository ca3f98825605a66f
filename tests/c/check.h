/* Assertions shared by the C ABI tests. Each test is one program: it exits 0 when every check
 * passes, and on the first failed check prints where, what, and expman's last error. */
#ifndef EXPMAN_TEST_CHECK_H
#define EXPMAN_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expman.h"

#define FAIL_AT(...)                                                                   \
    do {                                                                               \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fprintf(stderr, "\n  expman_last_error(): %s\n", expman_last_error());         \
        exit(1);                                                                       \
    } while (0)

/* A condition that must hold. */
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) FAIL_AT("CHECK failed: %s", #cond);                               \
    } while (0)

/* A call that must succeed. */
#define CHECK_OK(call)                                                                 \
    do {                                                                               \
        expman_status status_ = (call);                                                \
        if (status_ != EXPMAN_OK) FAIL_AT("%s returned %d", #call, (int)status_);      \
    } while (0)

/* A call that must fail with `code`, its last error mentioning `needle`. */
#define CHECK_ERR(call, code, needle)                                                  \
    do {                                                                               \
        expman_status status_ = (call);                                                \
        if (status_ != (code))                                                         \
            FAIL_AT("%s returned %d, expected %s (%d)", #call, (int)status_, #code,    \
                    (int)(code));                                                      \
        if (strstr(expman_last_error(), (needle)) == NULL)                             \
            FAIL_AT("%s: the last error does not mention \"%s\"", #call, (needle));    \
    } while (0)

/* The directory this test may write in (the driver sets EXPMAN_TEST_TMP). */
static inline const char *test_base_dir(void) {
    const char *base = getenv("EXPMAN_TEST_TMP");
    if (base == NULL || base[0] == '\0') {
        fprintf(stderr, "EXPMAN_TEST_TMP is not set; run the C tests with tests/c/run.sh\n");
        exit(2);
    }
    return base;
}

#endif /* EXPMAN_TEST_CHECK_H */
