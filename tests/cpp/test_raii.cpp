// RAII and move semantics of expman::Experiment: one owner per C handle, moved-from objects are
// empty and refuse use, nothing is freed twice or leaked. Built with AddressSanitizer (leaks
// included) and UBSan, so a double free or a use after free fails the test.
#include "check.hpp"

#include <type_traits>
#include <utility>
#include <vector>

static_assert(!std::is_copy_constructible_v<expman::Experiment>, "Experiment must not copy");
static_assert(!std::is_copy_assignable_v<expman::Experiment>, "Experiment must not copy");
static_assert(std::is_nothrow_move_constructible_v<expman::Experiment>, "moves are noexcept");
static_assert(std::is_nothrow_move_assignable_v<expman::Experiment>, "moves are noexcept");
static_assert(std::is_trivially_copyable_v<expman::Table>, "Table is a cheap view");

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);

    // Move construction: the handle changes owner, the source is empty.
    {
        auto a = expman::Experiment::create("raii", "test_raii", base);
        const std::string run = a.run_id();
        expman_experiment* raw = a.raw();
        auto table = a.table("progress");  // a view: survives moving the experiment
        expman::Experiment b(std::move(a));
        CHECK(!a);  // NOLINT(bugprone-use-after-move): the point of the test
        CHECK(static_cast<bool>(b));
        CHECK(a.raw() == nullptr);
        CHECK(b.raw() == raw);
        CHECK_EQ(b.run_id(), run);
        CHECK_THROWS_EXPMAN(a.run_id(), expman::Status::InvalidState, "moved from");
        CHECK_THROWS_EXPMAN(a.save_row(), expman::Status::InvalidState, "moved from");
        CHECK_THROWS_EXPMAN(a.set_finished(), expman::Status::InvalidState, "moved from");
        table.save_row({{"step", 1}, {"loss", 0.5}});
        CHECK_EQ(b.load_table("progress").n_rows(), std::size_t{1});
    }  // b ends the run; a does nothing

    // Move assignment: the target's own run ends first (Finished), then it owns the source's.
    {
        auto a = expman::Experiment::create("raii_assign_a", "test_raii", base);
        auto b = expman::Experiment::create("raii_assign_b", "test_raii", base);
        const auto dir_a = a.dir();
        const auto dir_b = b.dir();
        CHECK_EQ(check::run_state(dir_a), std::string("Running"));
        a = std::move(b);
        CHECK_EQ(check::run_state(dir_a), std::string("Finished"));
        CHECK_EQ(check::run_state(dir_b), std::string("Running"));
        CHECK(a.dir() == dir_b);
        CHECK(!b);  // NOLINT(bugprone-use-after-move)
        // Self-move through a reference (a compiler would flag the direct spelling): no change.
        expman::Experiment& same = a;
        a = std::move(same);
        CHECK(static_cast<bool>(a));
        CHECK(a.dir() == dir_b);
        // Assigning into a moved-from object works like construction.
        b = std::move(a);
        CHECK(static_cast<bool>(b));
        CHECK(!a);  // NOLINT(bugprone-use-after-move)
    }

    // A vector that reallocates moves its experiments; each handle is freed exactly once.
    {
        std::vector<expman::Experiment> many;
        for (int i = 0; i < 12; ++i) {
            many.push_back(expman::Experiment::create("raii_vec", "test_raii", base));
            many.back().upd_row({{"i", i}});
            many.back().save_row();
        }
        for (auto& exp : many) CHECK_EQ(exp.load_metrics().n_rows(), std::size_t{1});
        many.erase(many.begin() + 3);  // move-assigns the tail down
        CHECK_EQ(many.size(), std::size_t{11});
        for (auto& exp : many) CHECK(static_cast<bool>(exp));
    }

    // release() hands the C handle over; the object then owns nothing.
    {
        auto a = expman::Experiment::create("raii_release", "test_raii", base);
        const auto dir = a.dir();
        expman_experiment* raw = a.release();
        CHECK(!a);
        CHECK(raw != nullptr);
        CHECK_EQ(expman_experiment_set_finished(raw), EXPMAN_OK);
        expman_experiment_free(raw);
        CHECK_EQ(check::run_state(dir), std::string("Finished"));
    }

    // Metrics own their data: usable after the experiment is gone.
    expman::Metrics kept;
    {
        auto a = expman::Experiment::create("raii_metrics", "test_raii", base);
        a.upd_row({{"name", "kept after free"}, {"x", 2.5}});
        a.save_row();
        kept = a.load_metrics();
    }
    CHECK_EQ(kept.at(0, "name").as_string(), std::string("kept after free"));
    CHECK_EQ(kept.at(0, "x").as_double(), 2.5);

    // F64Row and Table copies are views; copying them copies no handle.
    {
        auto a = expman::Experiment::create("raii_views", "test_raii", base);
        auto row = a.f64_row({"u", "v"});
        auto row2 = row;
        row.save({1.0, 2.0});
        row2.save({3.0, 4.0});
        CHECK_EQ(a.load_metrics().n_rows(), std::size_t{2});
    }

    return check::finish("raii");
}
