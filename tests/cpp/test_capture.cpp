// Experiment::capture_output(): a C++ program's output (std::cout, std::cerr, printf, a child
// process) is in the run's log and still on the original descriptors; the destructor stops the
// capture. The capturing code runs in a forked child whose fds 1 and 2 are a pipe this process
// reads, standing for the terminal.
#include "check.hpp"

#include <cstdio>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace {

const char* const kLogged[] = {
    "std::cout line",
    "std::cerr line",
    "printf line",
    "child process line",
};

[[noreturn]] void child(const std::filesystem::path& dir) {
    {
        auto exp = expman::Experiment::open(dir);  // run_0002
        exp.capture_output();
        std::cout << kLogged[0] << "\n";
        std::cerr << kLogged[1] << std::endl;
        std::printf("%s\n", kLogged[2]);
        std::fflush(stdout);
        if (std::system("echo child process line") != 0) std::_Exit(3);
        std::cout << "cout still buffered when the destructor runs\n";
    }  // the destructor ends the run and stops the capture
    std::cout << "after the destructor" << std::endl;
    std::exit(0);
}

std::string read_fd(int fd) {
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);
    std::filesystem::path dir;
    {
        auto first = expman::Experiment::create("capture", "test_capture", base);
        dir = first.dir();
    }
    int out[2];
    CHECK(pipe(out) == 0);
    std::cout.flush();
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]);
        if (dup2(out[1], 1) != 1 || dup2(out[1], 2) != 2) std::_Exit(4);
        close(out[1]);
        child(dir);
    }
    CHECK(pid > 0);
    close(out[1]);
    std::string terminal = read_fd(out[0]);
    close(out[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    std::string log = check::read_file(dir / "logs" / "run_0002.log");
    for (const char* line : kLogged) {
        if (log.find(line) == std::string::npos) check::fail(__FILE__, __LINE__, "log lacks " + std::string(line) + ":\n" + log);
        if (terminal.find(line) == std::string::npos) check::fail(__FILE__, __LINE__, "terminal lacks " + std::string(line) + ":\n" + terminal);
    }
    CHECK(log.find("cout still buffered when the destructor runs") != std::string::npos);
    CHECK(log.find("after the destructor") == std::string::npos);
    CHECK(terminal.find("after the destructor") != std::string::npos);
    CHECK_EQ(check::run_state(dir), std::string("Finished"));
    return check::finish("test_capture");
}
