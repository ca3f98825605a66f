/* expman_experiment_capture_output(): a C program's output (printf still in stdio's buffer, a
 * raw write(2), stderr, a child process) is in the run's log after a plain exit(), and still
 * on the original descriptors. The capturing program is a forked child whose fds 1 and 2 are a
 * pipe the parent reads, so the parent sees both what the "terminal" got and the log. */
#define _POSIX_C_SOURCE 200809L

#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Reachable from a global, so the leak checker does not count the handle the child never
 * frees: it exits with the capture running, which is the case under test. */
static expman_experiment *g_running;

static char *read_all(int fd) {
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    buf[len] = '\0';
    return buf;
}

static char *read_file(const char *path) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "rb");
    if (f == NULL) FAIL_AT("cannot open %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *const LINES[] = {
    "printf still in the stdio buffer at exit",
    "a raw write to fd 1",
    "fprintf to stderr",
    "echo of a child process",
};

static void child(const char *dir) {
    CHECK_OK(expman_experiment_open(dir, &g_running));
    /* Before the capture, and not flushed: it was printed before, so it is not in the log. */
    printf("before the capture\n");
    CHECK_OK(expman_experiment_capture_output(g_running));
    printf("%s\n", LINES[0]); /* a pipe: fully buffered, flushed only at exit */
    const char raw[] = "a raw write to fd 1\n";
    CHECK(write(1, raw, sizeof raw - 1) == (ssize_t)(sizeof raw - 1));
    fprintf(stderr, "%s\n", LINES[2]);
    fflush(stdout);
    CHECK(system("echo echo of a child process") == 0);
    printf("%s\n", LINES[0]);
    exit(0); /* no free, no stop: the atexit hook does it */
}

int main(void) {
    const char *base = test_base_dir();
    expman_experiment *exp = NULL;
    CHECK_OK(expman_experiment_create("capture", "./capture", base, NULL, 0, NULL, NULL, 0, &exp));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", expman_experiment_dir(exp));
    /* NULL is an error, not a crash. */
    CHECK_ERR(expman_experiment_capture_output(NULL), EXPMAN_ERR_NULL, "exp");
    CHECK_ERR(expman_experiment_stop_capture(NULL), EXPMAN_ERR_NULL, "exp");
    /* Stopping without a capture does nothing. */
    CHECK_OK(expman_experiment_stop_capture(exp));
    expman_experiment_free(exp);

    int out[2];
    CHECK(pipe(out) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(out[0]);
        CHECK(dup2(out[1], 1) == 1 && dup2(out[1], 2) == 2);
        close(out[1]);
        child(dir);
    }
    close(out[1]);
    char *terminal = read_all(out[0]);
    close(out[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL_AT("the capturing child failed (status %d):\n%s", status, terminal);
    for (size_t i = 0; i < sizeof LINES / sizeof *LINES; i++)
        if (strstr(terminal, LINES[i]) == NULL)
            FAIL_AT("\"%s\" missing from the original stdout/stderr:\n%s", LINES[i], terminal);

    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/logs/run_0002.log", dir);
    char *log = read_file(log_path);
    for (size_t i = 0; i < sizeof LINES / sizeof *LINES; i++)
        if (strstr(log, LINES[i]) == NULL)
            FAIL_AT("\"%s\" missing from %s:\n%s", LINES[i], log_path, log);
    /* The unflushed printf appears twice (printed twice), the rest once. */
    CHECK(strstr(strstr(log, LINES[0]) + 1, LINES[0]) != NULL);
    CHECK(strstr(log, "before the capture") == NULL);
    return 0;
}
