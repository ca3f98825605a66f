/* A C program built against an installed expman with pkg-config (tests/install/run.sh): creates
 * a run, saves one row, reads it back through the C ABI. Exits non-zero, saying why, on any
 * failure. */
#define _POSIX_C_SOURCE 200809L

#include <expman.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) {
    fprintf(stderr, "consumer.c: %s failed: %s\n", what, expman_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_DIR\n", argv[0]);
        return 2;
    }
    unsetenv("EXPMAN_EXPERIMENT_DIR");
    unsetenv("EXPMAN_RUN_ID");
    unsetenv("EXPMAN_PARAMS");
    expman_experiment *exp = NULL;
    if (expman_experiment_create("c_consumer", "consumer", argv[1], NULL, 0, NULL, NULL, 0,
                                 &exp) != EXPMAN_OK)
        return fail("expman_experiment_create");
    expman_table *metrics = NULL;
    if (expman_experiment_metrics(exp, &metrics) != EXPMAN_OK)
        return fail("expman_experiment_metrics");
    if (expman_table_set_f64(metrics, "loss", 0.25) != EXPMAN_OK)
        return fail("expman_table_set_f64");
    if (expman_table_save_row(metrics) != EXPMAN_OK) return fail("expman_table_save_row");
    expman_metrics *m = NULL;
    if (expman_experiment_load_metrics(exp, NULL, &m) != EXPMAN_OK)
        return fail("expman_experiment_load_metrics");
    const size_t rows = expman_metrics_n_rows(m);
    printf("c consumer: expman %s, %s, %zu row\n", expman_version(),
           expman_experiment_run_id(exp), rows);
    expman_metrics_free(m);
    if (expman_experiment_set_finished(exp) != EXPMAN_OK)
        return fail("expman_experiment_set_finished");
    expman_experiment_free(exp);
    return rows == 1 ? 0 : 1;
}
