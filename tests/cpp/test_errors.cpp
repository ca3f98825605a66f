// Failures surface as expman::Error carrying the C status and the library's message, which names
// the culprit (the field, the name, the path) and what to do.
#include "check.hpp"

#include <limits>
#include <thread>

using expman::Status;

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);
    auto exp = expman::Experiment::create("errors", "test_errors", base);

    // Field names.
    CHECK_THROWS_EXPMAN(exp.set("bad\nname", 1.0), Status::InvalidName, "bad\\nname");
    CHECK_THROWS_EXPMAN(exp.set("", 1.0), Status::InvalidName, "empty");
    CHECK_THROWS_EXPMAN(exp.upd_row({{"ok", 1}, {"run_id", 2}}), Status::InvalidName, "run_id");
    CHECK_THROWS_EXPMAN(exp.metrics().field_id("timestamp"), Status::InvalidName, "timestamp");
    // upd_row sets fields in order: "ok" above stays pending, as in the Rust API.
    exp.save_row();
    CHECK_EQ(exp.load_metrics().n_rows(), std::size_t{1});

    // Experiment names.
    CHECK_THROWS_EXPMAN(expman::Experiment::create("../escape", "x", base), Status::InvalidName,
                        "..");
    CHECK_THROWS_EXPMAN(expman::Experiment::create("", "x", base), Status::InvalidName, "empty");
    CHECK_THROWS_EXPMAN(expman::Experiment::create("a/b", "x", base), Status::InvalidName,
                        "separator");

    // Directories that are not experiments.
    std::filesystem::create_directories(base / "not_an_experiment");
    CHECK_THROWS_EXPMAN(expman::Experiment::open(base / "not_an_experiment"), Status::NotFound,
                        "config.json");
    CHECK_THROWS_EXPMAN(expman::Experiment::open(base / "missing"), Status::NotFound,
                        "missing");
    CHECK_THROWS_EXPMAN(expman::Experiment::attach(exp.dir(), "run_x"), Status::InvalidName,
                        "run_x");

    // Tables.
    CHECK_THROWS_EXPMAN(exp.table("run_0001"), Status::InvalidName, "run_0001");
    CHECK_THROWS_EXPMAN(exp.table("../up"), Status::InvalidName, "..");
    // A table never written reads as empty, as in every binding.
    CHECK_EQ(exp.load_table("never_written").n_rows(), std::size_t{0});
    CHECK_THROWS_EXPMAN(expman::Metrics::read(base / "nope.csv"), Status::Io, "nope.csv");

    // Arguments the wrapper checks itself.
    auto row = exp.f64_row({"a", "b"});
    CHECK_THROWS_EXPMAN(row.save({1.0}), Status::BadArgument, "1 values for 2 fields");
    CHECK_THROWS_EXPMAN(expman::Value(std::numeric_limits<std::uint64_t>::max()),
                        Status::BadArgument, "int64_t");
    CHECK_THROWS_EXPMAN(exp.set_sync(static_cast<expman::Sync>(9)), Status::BadArgument,
                        "sync mode 9");

    // The C codes, and catching as std::exception.
    try {
        exp.set("tab\there", 1);
        CHECK(false);
    } catch (const std::exception& e) {
        CHECK(std::string(e.what()).find("field name") != std::string::npos);
        const auto* error = dynamic_cast<const expman::Error*>(&e);
        CHECK(error != nullptr);
        if (error) CHECK_EQ(error->code(), EXPMAN_ERR_INVALID_NAME);
    }

    // The last error is per thread: two threads failing at once each see their own message.
    std::string seen[2];
    auto fail_with = [&](int k, const char* name) {
        for (int i = 0; i < 200; ++i) {
            try {
                (void)expman::Experiment::open(base / name);
            } catch (const expman::Error& e) {
                if (std::string(e.what()).find(name) == std::string::npos) seen[k] = e.what();
            }
        }
    };
    std::thread t1(fail_with, 0, "first_missing_dir");
    std::thread t2(fail_with, 1, "second_missing_dir");
    t1.join();
    t2.join();
    CHECK_EQ(seen[0], std::string());
    CHECK_EQ(seen[1], std::string());

    // After all that, the experiment still works.
    exp.save_row({{"fine", true}});
    CHECK_EQ(exp.load_metrics().n_rows(), std::size_t{2});
    exp.set_finished();
    return check::finish("errors");
}
