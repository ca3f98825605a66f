/* A table read back as column buffers (expman_columns_*), from C under ASan/UBSan: typed values,
 * validity bytes, text (each value followed by its separator byte, or a dictionary's codes),
 * errors with a status and a message, and every buffer released by expman_columns_free.
 * tests/c/run.sh builds the default features: the column reader is in every build. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>

#include "check.h"

static const char TABLE[] =
    "timestamp,run_id,step,loss,flag,code\n"
    "2026-01-01T00:00:00.000001,run_0001,1,0.5,true,007\n"
    "2026-01-01T00:00:00.000002,run_0001,2,NaN,false,\"a,b\"\n"
    "2026-01-01T00:00:00.000003,run_0001,3,,,x\n";

/* Value `i` of a text column (a dictionary's codes looked up), or "" for an empty cell. */
static void text_at(const expman_text *t, size_t row, char *out, size_t size) {
    size_t value = row;
    if (t->codes != NULL) {
        if (t->codes[row] < 0) {
            out[0] = '\0';
            return;
        }
        value = (size_t)t->codes[row];
    }
    CHECK(value < t->n_values);
    size_t start = (size_t)t->offsets[value], len = (size_t)t->offsets[value + 1] - start - 1;
    CHECK(len < size);
    memcpy(out, t->data + start, len);
    out[len] = '\0';
    if (t->sep >= 0) CHECK(t->data[start + len] == (uint8_t)t->sep);
}

int main(void) {
    const char *tmp = getenv("EXPMAN_TEST_TMP");
    CHECK(tmp != NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/run_0001.csv", tmp);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(TABLE, 1, sizeof TABLE - 1, f) == sizeof TABLE - 1);
    CHECK(fclose(f) == 0);

    expman_columns *c = (expman_columns *)&path; /* must stay untouched on failure */
    CHECK_ERR(expman_columns_read(NULL, &c), EXPMAN_ERR_NULL, "csv_path");
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nope.csv", tmp);
    CHECK_ERR(expman_columns_read(missing, &c), EXPMAN_ERR_IO, "nope.csv");
    CHECK(c == (expman_columns *)&path);

    CHECK_OK(expman_columns_read(path, &c));
    CHECK(expman_columns_n_columns(c) == 6);
    CHECK(expman_columns_n_rows(c) == 3);
    CHECK(strcmp(expman_columns_name(c, 3), "loss") == 0);
    CHECK(expman_columns_type(c, 2) == EXPMAN_TYPE_INT);
    CHECK(expman_columns_type(c, 3) == EXPMAN_TYPE_FLOAT);
    CHECK(expman_columns_type(c, 4) == EXPMAN_TYPE_BOOL);
    CHECK(expman_columns_type(c, 5) == EXPMAN_TYPE_STR);

    const void *values = NULL;
    const uint8_t *valid = NULL;
    CHECK_OK(expman_columns_values(c, 2, &values));
    const int64_t *step = values;
    CHECK(step[0] == 1 && step[2] == 3);
    CHECK_OK(expman_columns_valid(c, 2, &valid));
    CHECK(valid == NULL);

    CHECK_OK(expman_columns_values(c, 3, &values));
    const double *loss = values;
    CHECK(loss[0] == 0.5 && isnan(loss[1]) && isnan(loss[2]));
    CHECK_OK(expman_columns_valid(c, 3, &valid));
    CHECK(valid[0] == 1 && valid[1] == 1 && valid[2] == 0);

    CHECK_OK(expman_columns_values(c, 4, &values));
    const uint8_t *flag = values;
    CHECK(flag[0] == 1 && flag[1] == 0 && flag[2] == 0);

    expman_text t;
    char cell[64];
    CHECK_OK(expman_columns_text(c, 5, &t));
    text_at(&t, 0, cell, sizeof cell);
    CHECK(strcmp(cell, "007") == 0);
    text_at(&t, 1, cell, sizeof cell);
    CHECK(strcmp(cell, "a,b") == 0);
    CHECK_OK(expman_columns_text(c, 0, &t));
    text_at(&t, 2, cell, sizeof cell);
    CHECK(strcmp(cell, "2026-01-01T00:00:00.000003") == 0);

    CHECK_ERR(expman_columns_values(c, 5, &values), EXPMAN_ERR_ARGUMENT, "code");
    CHECK_ERR(expman_columns_text(c, 2, &t), EXPMAN_ERR_ARGUMENT, "step");
    CHECK_ERR(expman_columns_valid(c, 6, &valid), EXPMAN_ERR_ARGUMENT, "out of range");
    CHECK_ERR(expman_columns_values(c, 2, NULL), EXPMAN_ERR_NULL, "out");
    CHECK(expman_columns_name(c, 6) == NULL);
    CHECK(expman_columns_type(c, 6) == -1);
    expman_columns_free(c);
    expman_columns_free(NULL);
    printf("columns: ok\n");
    return 0;
}
