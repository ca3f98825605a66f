/* The logging round trip through the C ABI: create an experiment, log rows by name, by id and
 * as typed values (text with commas, quotes and newlines; NaN and infinities), read them back
 * cell by cell and as columns, use a named table, end the run, start the next one, and attach
 * to a run through the scheduler's environment variables. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static const char *const TRICKY = "ResNet, \"v2\"\nsecond line\r\nthird";

/* Column index by name, or fail. */
static size_t column(const expman_metrics *m, const char *name) {
    for (size_t c = 0; c < expman_metrics_n_columns(m); c++) {
        const char *column_name = expman_metrics_column_name(m, c);
        CHECK(column_name != NULL);
        if (strcmp(column_name, name) == 0) return c;
    }
    FAIL_AT("no column %s", name);
}

/* The text cell at (row, col) must be exactly `expected` (compared with its length). */
static void check_text(const expman_metrics *m, size_t row, size_t col, const char *expected) {
    expman_value v;
    CHECK_OK(expman_metrics_get(m, row, col, &v));
    CHECK(v.kind == EXPMAN_VALUE_STR);
    if (v.s_len != strlen(expected))
        FAIL_AT("cell (%zu, %zu) is \"%s\", expected \"%s\"", row, col, v.s, expected);
    CHECK(memcmp(v.s, expected, v.s_len) == 0);
    CHECK(v.s[v.s_len] == '\0'); /* text cells are NUL-terminated too */
}

static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

int main(void) {
    const char *base = test_base_dir();

    CHECK(expman_abi_version() == EXPMAN_ABI_VERSION);
    CHECK(strlen(expman_version()) > 0);
    CHECK((expman_features() & ~(uint32_t)(EXPMAN_FEATURE_GPU | EXPMAN_FEATURE_SCHEDULER |
                                           EXPMAN_FEATURE_SERVER | EXPMAN_FEATURE_ARROW)) == 0);
    CHECK(strcmp(expman_last_error(), "") == 0);

    /* Create. */
    const char *tags[] = {"cnn", "baseline"};
    const uint32_t gpus[] = {0, 1};
    expman_experiment *exp = NULL;
    CHECK_OK(expman_experiment_create("mnist", "python train.py --lr 0.1", base, tags, 2,
                                      "round trip", gpus, 2, &exp));
    CHECK(exp != NULL);
    CHECK(strcmp(expman_experiment_run_id(exp), "run_0001") == 0);
    CHECK(strcmp(expman_experiment_name(exp), "mnist") == 0);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", expman_experiment_dir(exp));
    CHECK(strncmp(dir, base, strlen(base)) == 0);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_OK(expman_experiment_set_running(exp, (uint32_t)getpid()));

    /* By name. */
    expman_table *t = NULL;
    CHECK_OK(expman_experiment_metrics(exp, &t));
    CHECK_OK(expman_table_set_str(t, "model", TRICKY));
    CHECK_OK(expman_table_set_i64(t, "batch_size", -128));
    CHECK_OK(expman_table_set_bool(t, "augment", true));
    CHECK_OK(expman_table_set_null(t, "note"));
    CHECK_OK(expman_table_save_row(t));

    /* By id: NaN and infinities. */
    uint32_t ids[2];
    CHECK_OK(expman_table_field_id(t, "epoch", &ids[0]));
    CHECK_OK(expman_table_field_id(t, "loss", &ids[1]));
    const double rows[4][2] = {{1, 0.1}, {2, NAN}, {3, INFINITY}, {4, -INFINITY}};
    for (int r = 0; r < 4; r++) CHECK_OK(expman_table_save_row_f64(t, ids, rows[r], 2));

    /* Typed values; the text is not NUL-terminated where it ends. */
    uint32_t vids[3];
    CHECK_OK(expman_table_field_id(t, "model", &vids[0]));
    CHECK_OK(expman_table_field_id(t, "batch_size", &vids[1]));
    CHECK_OK(expman_table_field_id(t, "augment", &vids[2]));
    const char text[] = "a,\"b\"\nc|ignored";
    expman_value values[3] = {
        {.kind = EXPMAN_VALUE_STR, .s = text, .s_len = 7},
        {.kind = EXPMAN_VALUE_INT, .i = INT64_MIN},
        {.kind = EXPMAN_VALUE_BOOL, .i = 0},
    };
    CHECK_OK(expman_table_save_row_values(t, vids, values, 3));
    /* Set without saving, then add a field by name and save. */
    expman_value empty = {.kind = EXPMAN_VALUE_STR, .s = NULL, .s_len = 0};
    CHECK_OK(expman_table_set_values(t, vids, &empty, 1));
    CHECK_OK(expman_table_set_f64(t, "loss", 0.25));
    CHECK_OK(expman_table_save_row(t));
    /* A cleared row is not saved. */
    CHECK_OK(expman_table_set_f64(t, "loss", 99));
    CHECK_OK(expman_table_clear_row(t));
    CHECK_OK(expman_table_save_row(t));

    /* A named table. */
    expman_table *progress = NULL, *same = NULL;
    CHECK_OK(expman_experiment_table(exp, "progress", &progress));
    CHECK_OK(expman_experiment_table(exp, "progress", &same));
    CHECK(progress == same && progress != t);
    uint32_t step;
    CHECK_OK(expman_table_field_id(progress, "step", &step));
    for (int i = 0; i < 3; i++) {
        double v = i;
        CHECK_OK(expman_table_save_row_f64(progress, &step, &v, 1));
    }

    /* Read the run's table back. */
    expman_metrics *m = NULL;
    CHECK_OK(expman_experiment_load_metrics(exp, NULL, &m));
    CHECK(expman_metrics_n_rows(m) == 7);
    CHECK(expman_metrics_n_columns(m) == 8);
    CHECK(strcmp(expman_metrics_column_name(m, 0), "timestamp") == 0);
    CHECK(strcmp(expman_metrics_column_name(m, 1), "run_id") == 0);
    size_t model = column(m, "model"), batch = column(m, "batch_size");
    size_t augment = column(m, "augment"), loss = column(m, "loss"), note = column(m, "note");
    CHECK(expman_metrics_column_type(m, model) == EXPMAN_TYPE_STR);
    CHECK(expman_metrics_column_type(m, batch) == EXPMAN_TYPE_INT);
    CHECK(expman_metrics_column_type(m, augment) == EXPMAN_TYPE_BOOL);
    CHECK(expman_metrics_column_type(m, loss) == EXPMAN_TYPE_FLOAT);
    CHECK(expman_metrics_column_type(m, note) == EXPMAN_TYPE_NULL);
    check_text(m, 0, 1, "run_0001");
    check_text(m, 0, model, TRICKY);
    check_text(m, 5, model, "a,\"b\"\nc");
    expman_value v;
    CHECK_OK(expman_metrics_get(m, 6, model, &v));
    CHECK(v.kind == EXPMAN_VALUE_NULL); /* an empty string reads back as an empty cell */
    CHECK_OK(expman_metrics_get(m, 0, batch, &v));
    CHECK(v.kind == EXPMAN_VALUE_INT && v.i == -128 && v.s == NULL);
    CHECK_OK(expman_metrics_get(m, 5, batch, &v));
    CHECK(v.kind == EXPMAN_VALUE_INT && v.i == INT64_MIN);
    CHECK_OK(expman_metrics_get(m, 0, augment, &v));
    CHECK(v.kind == EXPMAN_VALUE_BOOL && v.i == 1);
    CHECK_OK(expman_metrics_get(m, 0, note, &v));
    CHECK(v.kind == EXPMAN_VALUE_NULL);
    CHECK_OK(expman_metrics_get(m, 2, loss, &v));
    CHECK(v.kind == EXPMAN_VALUE_FLOAT && isnan(v.f));
    double col[7];
    CHECK_OK(expman_metrics_column_f64(m, loss, col, 7));
    CHECK(isnan(col[0]) && col[1] == 0.1 && isnan(col[2]));
    CHECK(isinf(col[3]) && col[3] > 0 && isinf(col[4]) && col[4] < 0);
    CHECK(isnan(col[5]) && col[6] == 0.25);
    CHECK_OK(expman_metrics_column_f64(m, augment, col, 7));
    CHECK(col[0] == 1.0 && isnan(col[1]) && col[5] == 0.0);
    expman_metrics_free(m);

    /* The named table, by path. */
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics/progress.csv", dir);
    CHECK_OK(expman_metrics_read(path, &m));
    CHECK(expman_metrics_n_rows(m) == 3);
    check_text(m, 2, 1, "run_0001");
    CHECK_OK(expman_metrics_get(m, 2, column(m, "step"), &v));
    CHECK(v.kind == EXPMAN_VALUE_FLOAT && v.f == 2.0);
    expman_metrics_free(m);

    /* Status and log. */
    CHECK_OK(expman_experiment_append_log(exp, "epoch 4 done"));
    CHECK_OK(expman_experiment_set_sync(exp, 1, 0));
    CHECK_OK(expman_experiment_set_finished(exp));
    snprintf(path, sizeof path, "%s/logs/experiment.log", dir);
    CHECK(file_contains(path, "[run_0001] epoch 4 done"));
    snprintf(path, sizeof path, "%s/status.json", dir);
    CHECK(file_contains(path, "Finished"));
    expman_experiment_free(exp);

    /* The next run, then attach to it as a scheduled job would: create() honours the
     * scheduler's environment variables. */
    expman_experiment *next = NULL;
    CHECK_OK(expman_experiment_open(dir, &next));
    CHECK(strcmp(expman_experiment_run_id(next), "run_0002") == 0);
    CHECK(setenv("EXPMAN_EXPERIMENT_DIR", dir, 1) == 0);
    CHECK(setenv("EXPMAN_RUN_ID", "run_0002", 1) == 0);
    expman_experiment *job = NULL;
    CHECK_OK(expman_experiment_create("ignored", NULL, base, NULL, 0, NULL, NULL, 0, &job));
    CHECK(unsetenv("EXPMAN_EXPERIMENT_DIR") == 0 && unsetenv("EXPMAN_RUN_ID") == 0);
    CHECK(strcmp(expman_experiment_run_id(job), "run_0002") == 0);
    CHECK(strcmp(expman_experiment_dir(job), dir) == 0);
    expman_table *job_table = NULL;
    CHECK_OK(expman_experiment_metrics(job, &job_table));
    CHECK_OK(expman_table_set_str(job_table, "phase", "from the job"));
    CHECK_OK(expman_table_save_row(job_table));
    expman_experiment_free(job);
    CHECK_OK(expman_experiment_load_metrics(next, NULL, &m));
    CHECK(expman_metrics_n_rows(m) == 1);
    check_text(m, 0, column(m, "phase"), "from the job");
    expman_metrics_free(m);
    /* The attach by name. */
    expman_experiment *attached = NULL;
    CHECK_OK(expman_experiment_attach(dir, "run_0001", &attached));
    CHECK(strcmp(expman_experiment_run_id(attached), "run_0001") == 0);
    CHECK_OK(expman_experiment_load_metrics(attached, NULL, &m));
    CHECK(expman_metrics_n_rows(m) == 7);
    expman_metrics_free(m);
    expman_experiment_free(attached);
    expman_experiment_free(next);
    return 0;
}
