/* Hyperparameters through the C ABI: created with a JSON object, set one by one with the typed
 * setters, logged as JSON, read back; a second run that changes one keeps the first run's value
 * in status.json's history; EXPMAN_PARAMS is picked up by create (explicit values win); bad
 * names, values and JSON fail with a status and a message naming them, writing nothing. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>

#include "check.h"

/* The file's bytes, or fail (static buffer: one file at a time). */
static const char *slurp(const char *dir, const char *name) {
    static char buf[1 << 16];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) FAIL_AT("cannot open %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The run's parameters as JSON must be exactly `expected`. */
static void check_params(expman_experiment *exp, const char *expected) {
    char *json = NULL;
    CHECK_OK(expman_experiment_params_json(exp, &json));
    if (strcmp(json, expected) != 0) FAIL_AT("params are %s, expected %s", json, expected);
    expman_string_free(json);
}

static expman_status create(const char *base, const char *params, expman_experiment **out) {
    return expman_experiment_create_with_params("params", "./train", base, NULL, 0, NULL, NULL, 0,
                                                params, out);
}

/* Whether `dir` exists and holds anything. */
static int nonempty(const char *dir) {
    char command[4200];
    snprintf(command, sizeof command, "test -z \"$(ls -A '%s' 2>/dev/null)\"", dir);
    return system(command) == 0 ? 0 : 1;
}

int main(void) {
    const char *base = test_base_dir();
    CHECK(unsetenv("EXPMAN_EXPERIMENT_DIR") == 0 && unsetenv("EXPMAN_RUN_ID") == 0);
    CHECK(unsetenv("EXPMAN_PARAMS") == 0);

    /* Created with nested JSON: flattened, ints stay ints, floats floats. */
    expman_experiment *exp = NULL;
    CHECK_OK(create(base, "{\"lr\": 0.1, \"depth\": 18, \"opt\": {\"name\": \"sgd\"}}", &exp));
    check_params(exp, "{\"depth\":18,\"lr\":0.1,\"opt.name\":\"sgd\"}");

    /* The typed setters, and JSON. */
    CHECK_OK(expman_experiment_set_param_f64(exp, "ratio", 2.0));
    CHECK_OK(expman_experiment_set_param_i64(exp, "epochs", 90));
    CHECK_OK(expman_experiment_set_param_bool(exp, "aug", true));
    CHECK_OK(expman_experiment_set_param_str(exp, "opt.name", "adam"));
    CHECK_OK(expman_experiment_log_params_json(exp, "{\"sched\": {\"warmup\": 5}}"));
    const char *all = "{\"aug\":true,\"depth\":18,\"epochs\":90,\"lr\":0.1,\"opt.name\":\"adam\","
                      "\"ratio\":2.0,\"sched.warmup\":5}";
    check_params(exp, all);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", expman_experiment_dir(exp));
    const char *config = slurp(dir, "config.json");
    CHECK(strstr(config, "\"epochs\": 90,\n") != NULL);
    CHECK(strstr(config, "\"ratio\": 2.0,\n") != NULL);
    CHECK(strstr(config, "\"aug\": true,\n") != NULL);

    /* Errors: a status, a message naming the parameter, nothing written. */
    char before[1 << 16];
    snprintf(before, sizeof before, "%s", slurp(dir, "config.json"));
    CHECK_ERR(expman_experiment_set_param_f64(exp, "lr", NAN), EXPMAN_ERR_INVALID_VALUE,
              "parameter lr");
    CHECK_ERR(expman_experiment_set_param_f64(exp, "lr", INFINITY), EXPMAN_ERR_INVALID_VALUE,
              "not finite");
    CHECK_ERR(expman_experiment_set_param_i64(exp, "a..b", 1), EXPMAN_ERR_INVALID_NAME, "a..b");
    CHECK_ERR(expman_experiment_set_param_bool(exp, "new\nline", true), EXPMAN_ERR_INVALID_NAME,
              "control character");
    CHECK_ERR(expman_experiment_set_param_str(exp, "s", NULL), EXPMAN_ERR_NULL, "value");
    CHECK_ERR(expman_experiment_set_param_str(exp, NULL, "x"), EXPMAN_ERR_NULL, "name");
    CHECK_ERR(expman_experiment_log_params_json(exp, "{\"ok\": 1, \"bad\": [1, 2]}"),
              EXPMAN_ERR_INVALID_VALUE, "parameter bad");
    CHECK_ERR(expman_experiment_log_params_json(exp, "{oops"), EXPMAN_ERR_INVALID_VALUE,
              "not valid JSON");
    CHECK_ERR(expman_experiment_params_json(exp, NULL), EXPMAN_ERR_NULL, "out");
    CHECK(strcmp(slurp(dir, "config.json"), before) == 0);
    check_params(exp, all);
    CHECK_OK(expman_experiment_set_finished(exp));
    expman_experiment_free(exp);

    /* A second run changes lr: config.json has the new value, history the old one. */
    CHECK_OK(expman_experiment_open(dir, &exp));
    CHECK_OK(expman_experiment_set_param_f64(exp, "lr", 0.01));
    const char *status = slurp(dir, "status.json");
    const char *history = strstr(status, "\"history\"");
    CHECK(history != NULL);
    CHECK(strstr(history, "\"lr\": 0.1") != NULL);            /* run_0001 keeps its value */
    CHECK(strstr(status, "\"lr\": 0.01") < history);          /* run_0002's own record */
    CHECK(strstr(slurp(dir, "config.json"), "\"lr\": 0.01") != NULL);
    expman_experiment_free(exp);

    /* Bad params at creation: no directory. */
    char fresh[4096];
    snprintf(fresh, sizeof fresh, "%s/fresh", base);
    exp = NULL;
    CHECK_ERR(create(fresh, "{\"layers\": [1]}", &exp), EXPMAN_ERR_INVALID_VALUE, "layers");
    CHECK_ERR(create(fresh, "[]", &exp), EXPMAN_ERR_INVALID_VALUE, "JSON object");
    CHECK(exp == NULL);
    CHECK(!nonempty(fresh));

    /* EXPMAN_PARAMS: recorded by create, explicit params win. */
    CHECK(setenv("EXPMAN_PARAMS", "{\"lr\": 0.5, \"seed\": 7}", 1) == 0);
    CHECK_OK(create(base, "{\"lr\": 0.2}", &exp));
    check_params(exp, "{\"lr\":0.2,\"seed\":7}");
    expman_experiment_free(exp);
    exp = NULL;
    CHECK(setenv("EXPMAN_PARAMS", "{\"lr\": ", 1) == 0);
    CHECK_ERR(create(fresh, NULL, &exp), EXPMAN_ERR_CONFIG, "EXPMAN_PARAMS");
    CHECK_ERR(expman_experiment_create("plain", NULL, fresh, NULL, 0, NULL, NULL, 0, &exp),
              EXPMAN_ERR_CONFIG, "EXPMAN_PARAMS");
    CHECK(exp == NULL);
    CHECK(!nonempty(fresh));
    CHECK(unsetenv("EXPMAN_PARAMS") == 0);

    printf("params: all checks passed\n");
    return 0;
}
