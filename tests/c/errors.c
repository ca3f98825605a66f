/* Every error path of the C ABI, from C: NULL pointers, invalid UTF-8, bad value kinds and
 * sync modes, field ids of another table, out-of-range indexes, errors of the core (missing
 * directory, refused names), and _free(NULL). Each failure must return its status, name the
 * argument, field or path in expman_last_error(), and leave outputs untouched. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>

#include "check.h"

static const char BAD_UTF8[] = "bad\xff";

int main(void) {
    const char *base = test_base_dir();
    CHECK(strcmp(expman_last_error(), "") == 0); /* nothing failed yet on this thread */

    /* _free(NULL) is a no-op. */
    expman_experiment_free(NULL);
    expman_metrics_free(NULL);

    /* Creation: NULL and bad UTF-8 arguments; the output stays as it was. */
    expman_experiment *sentinel = (expman_experiment *)&base; /* any non-NULL address */
    expman_experiment *out = sentinel;
    CHECK_ERR(expman_experiment_create(NULL, NULL, base, NULL, 0, NULL, NULL, 0, &out),
              EXPMAN_ERR_NULL, "expman_experiment_create: argument `name` is NULL");
    CHECK_ERR(expman_experiment_create("n", NULL, NULL, NULL, 0, NULL, NULL, 0, &out),
              EXPMAN_ERR_NULL, "`base_dir`");
    CHECK_ERR(expman_experiment_create("n", NULL, base, NULL, 0, NULL, NULL, 0, NULL),
              EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_experiment_create("n", NULL, base, NULL, 3, NULL, NULL, 0, &out),
              EXPMAN_ERR_NULL, "`tags`");
    const char *tags[] = {"ok", NULL};
    CHECK_ERR(expman_experiment_create("n", NULL, base, tags, 2, NULL, NULL, 0, &out),
              EXPMAN_ERR_NULL, "`tags[1]`");
    CHECK_ERR(expman_experiment_create("n", NULL, base, NULL, 0, NULL, NULL, 2, &out),
              EXPMAN_ERR_NULL, "`gpu_ids`");
    CHECK_ERR(expman_experiment_create(BAD_UTF8, NULL, base, NULL, 0, NULL, NULL, 0, &out),
              EXPMAN_ERR_UTF8, "`name` is not valid UTF-8");
    CHECK_ERR(expman_experiment_create("n", BAD_UTF8, base, NULL, 0, NULL, NULL, 0, &out),
              EXPMAN_ERR_UTF8, "`command`");
    CHECK_ERR(expman_experiment_create("n", NULL, base, NULL, 0, BAD_UTF8, NULL, 0, &out),
              EXPMAN_ERR_UTF8, "`description`");
    CHECK_ERR(expman_experiment_create("a/b", NULL, base, NULL, 0, NULL, NULL, 0, &out),
              EXPMAN_ERR_INVALID_NAME, "\"a/b\"");
    CHECK(out == sentinel);
    CHECK_ERR(expman_experiment_open(NULL, &out), EXPMAN_ERR_NULL, "`dir`");
    CHECK_ERR(expman_experiment_open(base, NULL), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_experiment_open("/nonexistent/expman-c-test", &out), EXPMAN_ERR_NOT_FOUND,
              "/nonexistent/expman-c-test");
    CHECK_ERR(expman_experiment_attach(base, NULL, &out), EXPMAN_ERR_NULL, "`run_id`");
    CHECK_ERR(expman_experiment_attach(base, BAD_UTF8, &out), EXPMAN_ERR_UTF8, "`run_id`");
    CHECK(out == sentinel);

    expman_experiment *exp = NULL;
    CHECK_OK(expman_experiment_create("errors", NULL, base, NULL, 0, NULL, NULL, 0, &exp));
    /* A failure's message stays until the next failure: success does not clear it. */
    CHECK_ERR(expman_experiment_attach(expman_experiment_dir(exp), "run_zero", &out),
              EXPMAN_ERR_INVALID_NAME, "run_zero");
    CHECK(strstr(expman_last_error(), "run_zero") != NULL);
    {
        /* printf("%d %s", f(), expman_last_error()) may take the message before f() runs (C
         * leaves the order open): that message must outlive f()'s failure. It was freed by it
         * (a use-after-free under ASan). */
        const char *before = expman_last_error();
        CHECK(expman_experiment_attach(expman_experiment_dir(exp), "run_zer0", &out) ==
              EXPMAN_ERR_INVALID_NAME);
        CHECK(strstr(before, "run_zero") != NULL);
        CHECK(strstr(expman_last_error(), "run_zer0") != NULL);
    }
    /* A well-formed id of a run that was never allocated: refused, nothing created. */
    CHECK_ERR(expman_experiment_attach(expman_experiment_dir(exp), "run_0005", &out),
              EXPMAN_ERR_NOT_FOUND, "run_0005 does not exist");
    CHECK(out == sentinel);
    {
        char log[4096];
        snprintf(log, sizeof log, "%s/logs/run_0005.log", expman_experiment_dir(exp));
        FILE *f = fopen(log, "r");
        CHECK(f == NULL);
    }

    /* Experiment getters and setters. */
    CHECK(expman_experiment_run_id(NULL) == NULL);
    CHECK(strstr(expman_last_error(), "`exp`") != NULL);
    CHECK(expman_experiment_dir(NULL) == NULL);
    CHECK(expman_experiment_name(NULL) == NULL);
    CHECK_ERR(expman_experiment_set_sync(NULL, 0, 0), EXPMAN_ERR_NULL, "`exp`");
    CHECK_ERR(expman_experiment_set_sync(exp, 3, 0), EXPMAN_ERR_ARGUMENT, "sync mode 3");
    CHECK_ERR(expman_experiment_set_sync(exp, -1, 0), EXPMAN_ERR_ARGUMENT, "sync mode -1");
    CHECK_ERR(expman_experiment_set_running(NULL, 1), EXPMAN_ERR_NULL, "`exp`");
    /* 0, C's "don't know", names no process: the run read as Error at once. */
    CHECK_ERR(expman_experiment_set_running(exp, 0), EXPMAN_ERR_INVALID_VALUE, "0 is no process");
    CHECK_ERR(expman_experiment_set_finished(NULL), EXPMAN_ERR_NULL, "`exp`");
    CHECK_ERR(expman_experiment_set_error(exp, NULL), EXPMAN_ERR_NULL, "`message`");
    CHECK_ERR(expman_experiment_set_error(exp, BAD_UTF8), EXPMAN_ERR_UTF8, "`message`");
    CHECK_ERR(expman_experiment_append_log(NULL, "x"), EXPMAN_ERR_NULL, "`exp`");
    CHECK_ERR(expman_experiment_append_log(exp, BAD_UTF8), EXPMAN_ERR_UTF8, "`message`");

    expman_table *table_sentinel = (expman_table *)&base;
    expman_table *t = table_sentinel;
    CHECK_ERR(expman_experiment_metrics(NULL, &t), EXPMAN_ERR_NULL, "`exp`");
    CHECK_ERR(expman_experiment_metrics(exp, NULL), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_experiment_table(exp, NULL, &t), EXPMAN_ERR_NULL, "`name`");
    CHECK_ERR(expman_experiment_table(exp, BAD_UTF8, &t), EXPMAN_ERR_UTF8, "`name`");
    CHECK_ERR(expman_experiment_table(exp, "run_0007", &t), EXPMAN_ERR_INVALID_NAME, "run_0007");
    CHECK_ERR(expman_experiment_table(exp, "../up", &t), EXPMAN_ERR_INVALID_NAME, "../up");
    CHECK(t == table_sentinel);
    expman_metrics *m = NULL;
    CHECK_ERR(expman_experiment_load_metrics(exp, NULL, NULL), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_experiment_load_metrics(exp, BAD_UTF8, &m), EXPMAN_ERR_UTF8, "`table`");
    CHECK(m == NULL);
    /* A table never written (no saved row yet) reads as empty, as in every binding. */
    CHECK_OK(expman_experiment_load_metrics(exp, NULL, &m));
    CHECK(expman_metrics_n_rows(m) == 0 && expman_metrics_n_columns(m) == 2);
    expman_metrics_free(m);
    m = NULL;
    CHECK_OK(expman_experiment_load_metrics(exp, "never_written", &m));
    CHECK(expman_metrics_n_rows(m) == 0 && expman_metrics_n_columns(m) == 2);
    expman_metrics_free(m);
    m = NULL;
    CHECK_ERR(expman_experiment_set_sync(exp, EXPMAN_SYNC_INTERVAL + 1, 0), EXPMAN_ERR_ARGUMENT,
              "sync mode");
    CHECK_OK(expman_experiment_set_sync(exp, EXPMAN_SYNC_WRITE_THROUGH, 0));

    /* Tables. */
    expman_table *own = NULL, *other = NULL;
    CHECK_OK(expman_experiment_metrics(exp, &own));
    CHECK_OK(expman_experiment_table(exp, "other", &other));
    uint32_t id = 12345;
    CHECK_ERR(expman_table_field_id(NULL, "x", &id), EXPMAN_ERR_NULL, "`table`");
    CHECK_ERR(expman_table_field_id(own, NULL, &id), EXPMAN_ERR_NULL, "`name`");
    CHECK_ERR(expman_table_field_id(own, "x", NULL), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_table_field_id(own, BAD_UTF8, &id), EXPMAN_ERR_UTF8, "`name`");
    CHECK_ERR(expman_table_field_id(own, "timestamp", &id), EXPMAN_ERR_INVALID_NAME, "timestamp");
    CHECK_ERR(expman_table_field_id(own, "", &id), EXPMAN_ERR_INVALID_NAME, "empty");
    {
        /* One byte more than EXPMAN_MAX_FIELD_NAME_LEN, quoted shortly in the message. */
        char name[EXPMAN_MAX_FIELD_NAME_LEN + 2];
        memset(name, 'f', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        CHECK_ERR(expman_table_field_id(own, name, &id), EXPMAN_ERR_INVALID_NAME,
                  "at most 256 bytes");
        CHECK(strlen(expman_last_error()) < 500);
    }
    CHECK(id == 12345);
    CHECK_ERR(expman_table_set_f64(NULL, "x", 1), EXPMAN_ERR_NULL, "`table`");
    CHECK_ERR(expman_table_set_f64(own, NULL, 1), EXPMAN_ERR_NULL, "`name`");
    CHECK_ERR(expman_table_set_i64(own, BAD_UTF8, 1), EXPMAN_ERR_UTF8, "`name`");
    CHECK_ERR(expman_table_set_bool(own, NULL, true), EXPMAN_ERR_NULL, "`name`");
    CHECK_ERR(expman_table_set_null(own, NULL), EXPMAN_ERR_NULL, "`name`");
    CHECK_ERR(expman_table_set_str(own, "x", NULL), EXPMAN_ERR_NULL, "`v`");
    CHECK_ERR(expman_table_set_str(own, "x", BAD_UTF8), EXPMAN_ERR_UTF8, "`v`");
    CHECK_ERR(expman_table_set_str(own, "run_id", "x"), EXPMAN_ERR_INVALID_NAME, "run_id");
    CHECK_ERR(expman_table_save_row(NULL), EXPMAN_ERR_NULL, "`table`");
    CHECK_ERR(expman_table_clear_row(NULL), EXPMAN_ERR_NULL, "`table`");
    CHECK_ERR(expman_table_sync(NULL), EXPMAN_ERR_NULL, "`table`");

    uint32_t a, b, c;
    CHECK_OK(expman_table_field_id(own, "a", &a));
    CHECK_OK(expman_table_field_id(other, "b", &b));
    CHECK_OK(expman_table_field_id(other, "c", &c)); /* id 1: unknown to `own` */
    const double one[2] = {1.0, 2.0};
    const uint32_t foreign[2] = {a, c};
    CHECK_ERR(expman_table_save_row_f64(own, foreign, one, 2), EXPMAN_ERR_ARGUMENT, "field id 1");
    CHECK_ERR(expman_table_save_row_f64(own, foreign, one, 2), EXPMAN_ERR_ARGUMENT, "run_0001.csv");
    const uint32_t huge = UINT32_MAX;
    CHECK_ERR(expman_table_save_row_f64(own, &huge, one, 1), EXPMAN_ERR_ARGUMENT, "4294967295");
    CHECK_ERR(expman_table_save_row_f64(own, NULL, one, 1), EXPMAN_ERR_NULL, "`ids`");
    CHECK_ERR(expman_table_save_row_f64(own, &a, NULL, 1), EXPMAN_ERR_NULL, "`values`");
    CHECK_ERR(expman_table_save_row_f64(NULL, &a, one, 1), EXPMAN_ERR_NULL, "`table`");

    expman_value values[2] = {{.kind = EXPMAN_VALUE_FLOAT, .f = 1.0},
                              {.kind = 5, .i = 0}};
    /* Bad kinds, both ends of the range. */
    const uint32_t aa[2] = {a, a};
    CHECK_ERR(expman_table_save_row_values(own, aa, values, 2), EXPMAN_ERR_ARGUMENT,
              "values[1].kind is 5");
    values[1].kind = -1;
    CHECK_ERR(expman_table_set_values(own, aa, values, 2), EXPMAN_ERR_ARGUMENT,
              "values[1].kind is -1");
    /* Text: NULL bytes with a length, invalid UTF-8; the message names the field. */
    values[1] = (expman_value){.kind = EXPMAN_VALUE_STR, .s = NULL, .s_len = 3};
    CHECK_ERR(expman_table_set_values(own, aa, values, 2), EXPMAN_ERR_NULL, "values[1].s");
    values[1] = (expman_value){.kind = EXPMAN_VALUE_STR, .s = BAD_UTF8, .s_len = 4};
    CHECK_ERR(expman_table_save_row_values(own, aa, values, 2), EXPMAN_ERR_UTF8,
              "text for field \"a\"");
    CHECK_ERR(expman_table_save_row_values(own, foreign, values, 2), EXPMAN_ERR_ARGUMENT,
              "field id 1");
    CHECK_ERR(expman_table_set_values(own, NULL, values, 2), EXPMAN_ERR_NULL, "`ids`");
    CHECK_ERR(expman_table_set_values(own, aa, NULL, 2), EXPMAN_ERR_NULL, "`values`");
    /* n = 0 with NULL arrays is an empty call. */
    CHECK_OK(expman_table_set_values(own, NULL, NULL, 0));
    CHECK_OK(expman_table_save_row_f64(own, NULL, NULL, 0));

    /* None of the refused calls left anything pending: a save writes one row, of `a` only. */
    CHECK_OK(expman_table_set_f64(own, "a", 5.0));
    CHECK_OK(expman_table_save_row(own));
    CHECK_OK(expman_experiment_load_metrics(exp, NULL, &m));
    CHECK(expman_metrics_n_rows(m) == 1);
    CHECK(expman_metrics_n_columns(m) == 3);

    /* Metrics: NULL and out-of-range. */
    expman_value v = {.kind = 77};
    double col[2] = {7.0, 7.0};
    CHECK(expman_metrics_n_rows(NULL) == 0);
    CHECK(expman_metrics_n_columns(NULL) == 0);
    CHECK(expman_metrics_column_name(NULL, 0) == NULL);
    CHECK(strstr(expman_last_error(), "`m`") != NULL);
    CHECK(expman_metrics_column_name(m, 3) == NULL);
    CHECK(strstr(expman_last_error(), "column 3 is out of range") != NULL);
    CHECK(expman_metrics_column_type(NULL, 0) == -1);
    CHECK(expman_metrics_column_type(m, 3) == -1);
    CHECK(expman_metrics_column_type(m, SIZE_MAX) == -1);
    CHECK_ERR(expman_metrics_get(NULL, 0, 0, &v), EXPMAN_ERR_NULL, "`m`");
    CHECK_ERR(expman_metrics_get(m, 0, 0, NULL), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_metrics_get(m, 1, 0, &v), EXPMAN_ERR_ARGUMENT, "row 1 is out of range");
    CHECK_ERR(expman_metrics_get(m, 0, 3, &v), EXPMAN_ERR_ARGUMENT, "column 3 is out of range");
    CHECK(v.kind == 77);
    CHECK_ERR(expman_metrics_column_f64(NULL, 2, col, 1), EXPMAN_ERR_NULL, "`m`");
    CHECK_ERR(expman_metrics_column_f64(m, 2, NULL, 1), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_metrics_column_f64(m, 2, col, 2), EXPMAN_ERR_ARGUMENT, "n is 2");
    CHECK_ERR(expman_metrics_column_f64(m, 3, col, 1), EXPMAN_ERR_ARGUMENT, "column 3");
    CHECK_ERR(expman_metrics_column_f64(m, 1, col, 1), EXPMAN_ERR_ARGUMENT, "\"run_id\"");
    CHECK(col[0] == 7.0 && col[1] == 7.0);
    CHECK_OK(expman_metrics_column_f64(m, 2, col, 1));
    CHECK(col[0] == 5.0);
    expman_metrics_free(m);
    m = NULL;
    CHECK_ERR(expman_metrics_read(NULL, &m), EXPMAN_ERR_NULL, "`csv_path`");
    CHECK_ERR(expman_metrics_read("/nonexistent/x.csv", NULL), EXPMAN_ERR_NULL, "`out`");
    CHECK_ERR(expman_metrics_read("/nonexistent/x.csv", &m), EXPMAN_ERR_IO, "/nonexistent/x.csv");
    CHECK(m == NULL);

    expman_experiment_free(exp);
    return 0;
}
