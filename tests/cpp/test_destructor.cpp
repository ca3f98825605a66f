// The destructor of an Experiment that started its run ends it: Finished when the scope is left
// normally, Error when it is left by an exception. Runs the destructor does not own (attach) or
// that were already ended are left alone.
#include "check.hpp"

#include <stdexcept>

#include <unistd.h>

namespace {

struct Boom : std::runtime_error {
    Boom() : std::runtime_error("boom") {}
};

std::string error_of(const std::filesystem::path& dir) {
    auto json = check::read_file(dir / "status.json");
    const std::string key = "\"error\": ";
    auto at = json.find(key);
    return at == std::string::npos ? std::string() : json.substr(at + key.size(),
                                                                 json.find('\n', at) - at - key.size());
}

// Creates and destroys an experiment inside a destructor that runs during unwinding: the
// experiment's own scope is left normally, so it must be Finished, not Error.
struct CreatesDuringUnwinding {
    std::filesystem::path base;
    std::filesystem::path* dir;
    ~CreatesDuringUnwinding() {
        auto exp = expman::Experiment::create("unwinding_inner", "test_destructor", base);
        *dir = exp.dir();
    }
};

}  // namespace

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);
    std::filesystem::path dir;

    // Normal scope exit -> Finished.
    {
        auto exp = expman::Experiment::create("dtor_normal", "test_destructor", base);
        dir = exp.dir();
        CHECK_EQ(check::run_state(dir), std::string("Running"));
        exp.save_row({{"epoch", 1}});
    }
    CHECK_EQ(check::run_state(dir), std::string("Finished"));

    // Exception -> Error, with a message saying so.
    try {
        auto exp = expman::Experiment::create("dtor_throw", "test_destructor", base);
        dir = exp.dir();
        exp.save_row({{"epoch", 1}});
        throw Boom();
    } catch (const Boom&) {
    }
    CHECK_EQ(check::run_state(dir), std::string("Error"));
    CHECK(error_of(dir).find("exception") != std::string::npos);

    // An expman::Error escaping works the same way.
    try {
        auto exp = expman::Experiment::create("dtor_expman_error", "test_destructor", base);
        dir = exp.dir();
        exp.set("bad\nfield", 1.0);
    } catch (const expman::Error&) {
    }
    CHECK_EQ(check::run_state(dir), std::string("Error"));

    // Explicit endings are kept.
    {
        auto exp = expman::Experiment::create("dtor_set_error", "test_destructor", base);
        dir = exp.dir();
        exp.set_error("diverged at epoch 3");
    }
    CHECK_EQ(check::run_state(dir), std::string("Error"));
    CHECK(error_of(dir).find("diverged at epoch 3") != std::string::npos);
    try {
        auto exp = expman::Experiment::create("dtor_finished_then_throw", "test_destructor", base);
        dir = exp.dir();
        exp.set_finished();
        throw Boom();
    } catch (const Boom&) {
    }
    CHECK_EQ(check::run_state(dir), std::string("Finished"));

    // set_running after an ending re-arms the destructor.
    {
        auto exp = expman::Experiment::create("dtor_rearm", "test_destructor", base);
        dir = exp.dir();
        exp.set_error("first attempt failed");
        exp.set_running(static_cast<std::uint32_t>(getpid()));
        CHECK_EQ(check::run_state(dir), std::string("Running"));
    }
    CHECK_EQ(check::run_state(dir), std::string("Finished"));

    // open() starts a run of its own: the destructor ends it.
    {
        auto exp = expman::Experiment::open(dir);
        CHECK_EQ(exp.run_id(), std::string("run_0002"));
        CHECK_EQ(check::run_state(dir), std::string("Running"));
    }
    CHECK_EQ(check::run_state(dir), std::string("Finished"));

    // attach() never changes the status, even on an exception: it belongs to the run's creator.
    {
        auto owner = expman::Experiment::create("dtor_attach", "test_destructor", base);
        dir = owner.dir();
        {
            auto attached = expman::Experiment::attach(dir, owner.run_id());
            CHECK(!attached.owns_status());
            attached.save_row({{"from", "attached"}});
        }
        CHECK_EQ(check::run_state(dir), std::string("Running"));
        try {
            auto attached = expman::Experiment::attach(dir, owner.run_id());
            throw Boom();
        } catch (const Boom&) {
        }
        CHECK_EQ(check::run_state(dir), std::string("Running"));
        CHECK_EQ(owner.load_metrics().n_rows(), std::size_t{1});
    }
    CHECK_EQ(check::run_state(dir), std::string("Finished"));

    // Under the scheduler (EXPMAN_EXPERIMENT_DIR and EXPMAN_RUN_ID set), create() attaches, and
    // the status stays the scheduler's.
    {
        auto owner = expman::Experiment::create("dtor_env", "test_destructor", base);
        dir = owner.dir();
        setenv("EXPMAN_EXPERIMENT_DIR", dir.c_str(), 1);
        setenv("EXPMAN_RUN_ID", owner.run_id().c_str(), 1);
        {
            auto job = expman::Experiment::create("ignored", "job", base / "elsewhere");
            unsetenv("EXPMAN_EXPERIMENT_DIR");
            unsetenv("EXPMAN_RUN_ID");
            CHECK(job.dir() == dir);
            CHECK_EQ(job.run_id(), owner.run_id());
            CHECK(!job.owns_status());
        }
        CHECK_EQ(check::run_state(dir), std::string("Running"));
        CHECK(!std::filesystem::exists(base / "elsewhere"));
    }
    CHECK_EQ(check::run_state(dir), std::string("Finished"));

    // The baseline is taken where the object is constructed: moved into a scope that throws,
    // the run ends as Error; the moved-from object does nothing.
    {
        auto outer = expman::Experiment::create("dtor_moved", "test_destructor", base);
        dir = outer.dir();
        try {
            auto inner = std::move(outer);
            throw Boom();
        } catch (const Boom&) {
        }
        CHECK_EQ(check::run_state(dir), std::string("Error"));
    }
    CHECK_EQ(check::run_state(dir), std::string("Error"));

    // Created and destroyed inside a destructor running during unwinding: Finished.
    std::filesystem::path inner_dir;
    try {
        CreatesDuringUnwinding guard{base, &inner_dir};
        throw Boom();
    } catch (const Boom&) {
    }
    CHECK(!inner_dir.empty());
    if (!inner_dir.empty()) CHECK_EQ(check::run_state(inner_dir), std::string("Finished"));

    return check::finish("destructor");
}
