/* Run-id allocation under contention, through the ABI only: 16 processes each start 20 runs
 * of one experiment with expman_experiment_open, all at once, and log one row per run. The
 * parent then checks that the ids handed out are distinct and dense (run_0002 ..= run_0321
 * after its own run_0001, no gaps), that the next run is run_0322, and that every run's table
 * holds exactly the row its owner wrote. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

enum { PROCESSES = 16, RUNS_PER_PROCESS = 20, TOTAL = PROCESSES * RUNS_PER_PROCESS };

/* What a child reports for each run: fixed-size, written with one write(2) to a pipe (well
 * under PIPE_BUF, so reports never interleave). */
struct report {
    int32_t child;
    uint32_t run;
};

static uint32_t run_number(const char *run_id) {
    CHECK(strncmp(run_id, "run_", 4) == 0);
    return (uint32_t)strtoul(run_id + 4, NULL, 10);
}

static void child(int index, const char *dir, int go_fd, int report_fd) {
    /* Wait until every process exists, so the opens contend instead of running in turn. */
    char byte;
    CHECK(read(go_fd, &byte, 1) == 0);
    for (int r = 0; r < RUNS_PER_PROCESS; r++) {
        expman_experiment *exp = NULL;
        CHECK_OK(expman_experiment_open(dir, &exp));
        struct report report = {index, run_number(expman_experiment_run_id(exp))};
        expman_table *t = NULL;
        CHECK_OK(expman_experiment_metrics(exp, &t));
        uint32_t ids[2];
        CHECK_OK(expman_table_field_id(t, "child", &ids[0]));
        CHECK_OK(expman_table_field_id(t, "round", &ids[1]));
        const double values[2] = {index, r};
        CHECK_OK(expman_table_save_row_f64(t, ids, values, 2));
        CHECK_OK(expman_experiment_set_finished(exp));
        expman_experiment_free(exp);
        CHECK(write(report_fd, &report, sizeof report) == (ssize_t)sizeof report);
    }
}

int main(void) {
    const char *base = test_base_dir();
    expman_experiment *exp = NULL;
    CHECK_OK(expman_experiment_create("race", NULL, base, NULL, 0, NULL, NULL, 0, &exp));
    CHECK(strcmp(expman_experiment_run_id(exp), "run_0001") == 0);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", expman_experiment_dir(exp));

    int go[2], reports[2];
    CHECK(pipe(go) == 0 && pipe(reports) == 0);
    pid_t pids[PROCESSES];
    for (int i = 0; i < PROCESSES; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            close(go[1]);
            close(reports[0]);
            expman_experiment_free(exp); /* the parent's handle, copied by fork */
            child(i, dir, go[0], reports[1]);
            exit(0);
        }
    }
    close(go[0]);
    close(reports[1]);
    close(go[1]); /* go: every child's read returns 0 now */

    static struct report got[TOTAL + 1];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(reports[0], &got[n], sizeof got[n]);
        if (r == 0) break;
        if (r < 0 && errno == EINTR) continue;
        CHECK(r == (ssize_t)sizeof got[n]);
        CHECK(n < TOTAL);
        n++;
    }
    close(reports[0]);
    for (int i = 0; i < PROCESSES; i++) {
        int status;
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            FAIL_AT("child %d failed (status %d); see its message above", i, status);
    }
    CHECK(n == TOTAL);

    /* Distinct and dense: every id in 2..=TOTAL+1 exactly once. */
    static int owner[TOTAL + 2];
    for (size_t i = 0; i < TOTAL + 2; i++) owner[i] = -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t run = got[i].run;
        if (run < 2 || run > TOTAL + 1) FAIL_AT("run id %u is outside 2..=%d", run, TOTAL + 1);
        if (owner[run] != -1)
            FAIL_AT("run_%04u was given to both child %d and child %d", run, owner[run],
                    got[i].child);
        owner[run] = got[i].child;
    }

    /* The next run follows the last one. */
    expman_experiment *next = NULL;
    CHECK_OK(expman_experiment_open(dir, &next));
    char expected[32];
    snprintf(expected, sizeof expected, "run_%04d", TOTAL + 2);
    CHECK(strcmp(expman_experiment_run_id(next), expected) == 0);
    expman_experiment_free(next);

    /* Each run's table has its owner's one row. */
    for (uint32_t run = 2; run <= TOTAL + 1; run++) {
        char name[32];
        snprintf(name, sizeof name, "run_%04u", run);
        expman_metrics *m = NULL;
        CHECK_OK(expman_experiment_load_metrics(exp, name, &m));
        CHECK(expman_metrics_n_rows(m) == 1);
        CHECK(expman_metrics_n_columns(m) == 4);
        expman_value v;
        CHECK_OK(expman_metrics_get(m, 0, 1, &v));
        CHECK(v.kind == EXPMAN_VALUE_STR && strcmp(v.s, name) == 0);
        double child_index;
        CHECK_OK(expman_metrics_column_f64(m, 2, &child_index, 1));
        CHECK(child_index == owner[run]);
        expman_metrics_free(m);
    }
    expman_experiment_free(exp);
    printf("%d processes x %d opens: run_0002..run_%04d, distinct and dense\n", PROCESSES,
           RUNS_PER_PROCESS, TOTAL + 1);
    return 0;
}
