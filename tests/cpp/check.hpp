// A minimal test harness for the C++ tests: CHECK macros, a fresh work directory per test and
// status.json inspection. Each test is one executable run by ctest with its work directory as
// argv[1]; a failed CHECK prints where and exits 1.
#ifndef EXPMAN_TESTS_CHECK_HPP
#define EXPMAN_TESTS_CHECK_HPP

#include <expman.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace check {

inline int failures = 0;

inline void fail(const char* file, int line, const std::string& what) {
    std::cerr << file << ":" << line << ": FAILED: " << what << "\n";
    ++failures;
}

/// The test's own empty directory (argv[1]), and no scheduler variables that would make
/// Experiment::create attach instead of create.
inline std::filesystem::path setup(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " WORK_DIR\n";
        std::exit(2);
    }
    unsetenv("EXPMAN_EXPERIMENT_DIR");
    unsetenv("EXPMAN_RUN_ID");
    std::filesystem::path dir = std::filesystem::absolute(argv[1]);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

inline int finish(const char* name) {
    if (failures == 0) {
        std::cout << name << ": all checks passed\n";
        return 0;
    }
    std::cerr << name << ": " << failures << " check(s) failed\n";
    return 1;
}

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The "status" of status.json ("Running", "Finished", ...): serde_json's pretty format writes
/// `"status": "<state>"` as the first field.
inline std::string run_state(const std::filesystem::path& experiment_dir) {
    std::string json = read_file(experiment_dir / "status.json");
    const std::string key = "\"status\": \"";
    auto at = json.find(key);
    if (at == std::string::npos) return "<no status in " + json + ">";
    at += key.size();
    return json.substr(at, json.find('"', at) - at);
}

}  // namespace check

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) check::fail(__FILE__, __LINE__, #cond);                 \
    } while (0)

#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        const auto& check_a_ = (a);                                                      \
        const auto& check_b_ = (b);                                                      \
        if (!(check_a_ == check_b_)) {                                                   \
            std::ostringstream check_msg_;                                               \
            check_msg_ << #a " == " #b " (" << check_a_ << " vs " << check_b_ << ")";    \
            check::fail(__FILE__, __LINE__, check_msg_.str());                           \
        }                                                                                \
    } while (0)

/// Runs `stmt`, which must throw expman::Error with `status`; the message must name `needle`.
#define CHECK_THROWS_EXPMAN(stmt, status_, needle)                                           \
    do {                                                                                     \
        bool check_thrown_ = false;                                                          \
        try {                                                                                \
            (void)(stmt);                                                                    \
        } catch (const expman::Error& check_e_) {                                            \
            check_thrown_ = true;                                                            \
            if (check_e_.status() != (status_)) {                                            \
                check::fail(__FILE__, __LINE__,                                              \
                            std::string(#stmt " threw status ") +                            \
                                std::to_string(check_e_.code()) + ": " + check_e_.what());   \
            } else if (std::string(check_e_.what()).find(needle) == std::string::npos) {     \
                check::fail(__FILE__, __LINE__,                                              \
                            std::string(#stmt ": message lacks \"") + (needle) +             \
                                "\": " + check_e_.what());                                   \
            }                                                                                \
        }                                                                                    \
        if (!check_thrown_) check::fail(__FILE__, __LINE__, #stmt " did not throw");         \
    } while (0)

#endif  // EXPMAN_TESTS_CHECK_HPP
