/* One experiment shared by threads, as the header promises it may be: 8 threads save 250
 * rows each into the run's table (by id, one call per row) and into a named table (typed
 * values with text), while another thread reads the table back. Every row must arrive whole,
 * in each thread's order. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "check.h"

enum { THREADS = 8, ROWS = 250 };

static expman_experiment *experiment;
static expman_table *own, *named;
static uint32_t own_ids[2], named_ids[2];

static void *writer(void *arg) {
    int index = (int)(intptr_t)arg;
    char text[64];
    for (int r = 0; r < ROWS; r++) {
        const double values[2] = {index, r};
        CHECK_OK(expman_table_save_row_f64(own, own_ids, values, 2));
        int len = snprintf(text, sizeof text, "thread %d, row \"%d\"", index, r);
        expman_value typed[2] = {{.kind = EXPMAN_VALUE_INT, .i = index},
                                 {.kind = EXPMAN_VALUE_STR, .s = text, .s_len = (size_t)len}};
        CHECK_OK(expman_table_save_row_values(named, named_ids, typed, 2));
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++) {
        expman_metrics *m = NULL;
        expman_status status = expman_experiment_load_metrics(experiment, NULL, &m);
        /* Before the first row the file does not exist yet. */
        CHECK(status == EXPMAN_OK || status == EXPMAN_ERR_IO);
        if (status == EXPMAN_OK) {
            CHECK(expman_metrics_n_rows(m) <= THREADS * ROWS);
            expman_metrics_free(m);
        }
    }
    return NULL;
}

int main(void) {
    CHECK_OK(expman_experiment_create("threads", NULL, test_base_dir(), NULL, 0, NULL, NULL, 0,
                                      &experiment));
    CHECK_OK(expman_experiment_metrics(experiment, &own));
    CHECK_OK(expman_experiment_table(experiment, "events", &named));
    CHECK_OK(expman_table_field_id(own, "thread", &own_ids[0]));
    CHECK_OK(expman_table_field_id(own, "row", &own_ids[1]));
    CHECK_OK(expman_table_field_id(named, "thread", &named_ids[0]));
    CHECK_OK(expman_table_field_id(named, "text", &named_ids[1]));

    pthread_t threads[THREADS + 1];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, writer, (void *)(intptr_t)i) == 0);
    CHECK(pthread_create(&threads[THREADS], NULL, reader, NULL) == 0);
    for (int i = 0; i <= THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);

    expman_metrics *m = NULL;
    CHECK_OK(expman_experiment_load_metrics(experiment, NULL, &m));
    CHECK(expman_metrics_n_rows(m) == THREADS * ROWS);
    static double thread_col[THREADS * ROWS], row_col[THREADS * ROWS];
    CHECK_OK(expman_metrics_column_f64(m, 2, thread_col, THREADS * ROWS));
    CHECK_OK(expman_metrics_column_f64(m, 3, row_col, THREADS * ROWS));
    int next[THREADS] = {0};
    for (int i = 0; i < THREADS * ROWS; i++) {
        int t = (int)thread_col[i];
        CHECK(t >= 0 && t < THREADS);
        CHECK(row_col[i] == next[t]);
        next[t]++;
    }
    expman_metrics_free(m);

    CHECK_OK(expman_experiment_load_metrics(experiment, "events", &m));
    CHECK(expman_metrics_n_rows(m) == THREADS * ROWS);
    for (int t = 0; t < THREADS; t++) next[t] = 0;
    for (size_t i = 0; i < THREADS * ROWS; i++) {
        expman_value thread, text;
        CHECK_OK(expman_metrics_get(m, i, 2, &thread));
        CHECK_OK(expman_metrics_get(m, i, 3, &text));
        CHECK(thread.kind == EXPMAN_VALUE_INT && text.kind == EXPMAN_VALUE_STR);
        char expected[64];
        snprintf(expected, sizeof expected, "thread %d, row \"%d\"", (int)thread.i,
                 next[thread.i]++);
        CHECK(strcmp(text.s, expected) == 0);
    }
    expman_metrics_free(m);
    expman_experiment_free(experiment);
    return 0;
}
