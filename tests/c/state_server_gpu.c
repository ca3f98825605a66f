/* The state query, the attached flag, GPU selection from an injected inventory, and the
 * server functions, which exist in every build and answer EXPMAN_ERR_UNSUPPORTED where the
 * `server` feature is off (these tests link the default build). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>

#include "check.h"

static void write_inventory(const char *path) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("[{\"index\":0,\"uuid\":\"GPU-0\",\"name\":\"Fake\",\"memory_used_mib\":70000,"
          "\"memory_total_mib\":80000,\"utilization_percent\":0},"
          "{\"index\":1,\"uuid\":\"GPU-1\",\"name\":\"Fake\",\"memory_used_mib\":1000,"
          "\"memory_total_mib\":80000,\"utilization_percent\":0},"
          "{\"index\":2,\"uuid\":\"GPU-2\",\"name\":\"Fake\",\"memory_used_mib\":5000,"
          "\"memory_total_mib\":80000,\"utilization_percent\":0}]",
          f);
    CHECK(fclose(f) == 0);
}

int main(void) {
    const char *base = test_base_dir();

    /* State and attached. */
    expman_experiment *exp = NULL;
    CHECK_OK(expman_experiment_create("state", NULL, base, NULL, 0, NULL, NULL, 0, &exp));
    int32_t state = -1;
    CHECK_OK(expman_experiment_state(exp, &state));
    CHECK(state == EXPMAN_STATE_RUNNING);
    bool attached = true;
    CHECK_OK(expman_experiment_attached(exp, &attached));
    CHECK(!attached);
    CHECK_OK(expman_experiment_set_error(exp, "boom"));
    CHECK_OK(expman_experiment_state(exp, &state));
    CHECK(state == EXPMAN_STATE_ERROR);
    CHECK(expman_experiment_state(exp, NULL) == EXPMAN_ERR_NULL);
    CHECK(expman_experiment_state(NULL, &state) == EXPMAN_ERR_NULL);

    expman_experiment *child = NULL;
    CHECK_OK(expman_experiment_attach(expman_experiment_dir(exp), "run_0001", &child));
    CHECK_OK(expman_experiment_attached(child, &attached));
    CHECK(attached);
    expman_experiment_free(child);
    expman_experiment_free(exp);

    /* GPUs: the two with the most free memory, ascending; too many is an error. */
    char inventory[4096];
    snprintf(inventory, sizeof inventory, "%s/gpus.json", base);
    write_inventory(inventory);
    CHECK(setenv("EXPMAN_GPU_INVENTORY", inventory, 1) == 0);
    uint32_t picked[2] = {99, 99};
    CHECK_OK(expman_gpu_pick(2, picked));
    CHECK(picked[0] == 1 && picked[1] == 2);
    uint32_t too_many[4];
    CHECK(expman_gpu_pick(4, too_many) == EXPMAN_ERR_INVALID_STATE);
    CHECK(strstr(expman_last_error(), "only 3") != NULL);
    CHECK(expman_gpu_pick(1, NULL) == EXPMAN_ERR_NULL);
    CHECK_OK(expman_gpu_pick(0, NULL));

    /* Server: present in every build. */
    expman_server *server = NULL;
    expman_status status = expman_server_start(base, NULL, 0, &server);
    if (expman_features() & EXPMAN_FEATURE_SERVER) {
        CHECK_OK(status);
        CHECK(strncmp(expman_server_url(server), "http://127.0.0.1:", 17) == 0);
        expman_server_stop(server);
    } else {
        CHECK(status == EXPMAN_ERR_UNSUPPORTED);
        CHECK(server == NULL);
        CHECK(strstr(expman_last_error(), "server") != NULL);
    }
    CHECK(expman_server_url(NULL) == NULL);
    expman_server_stop(NULL);
    return 0;
}
