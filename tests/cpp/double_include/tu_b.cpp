// Second translation unit including expman.hpp; see tu_a.cpp.
#include <expman.hpp>

#include "tus.hpp"

std::size_t tu_b_count_rows(const std::string& dir) {
    auto exp = expman::Experiment::open(dir);  // run_0002
    exp.set_finished();
    std::string first = (std::filesystem::path(dir) / "metrics" / "run_0001.csv").string();
    return expman::Metrics::read(first).n_rows();
}
