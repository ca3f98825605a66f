// Uses the installed headers and library: one row, read back.
#include <expman.hpp>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    unsetenv("EXPMAN_EXPERIMENT_DIR");
    unsetenv("EXPMAN_RUN_ID");
    auto exp = expman::Experiment::create("consumer", "consumer", argv[1]);
    exp.save_row({{"installed", true}, {"version", expman::version()}});
    const auto rows = exp.load_metrics().n_rows();
    std::cout << "consumer: expman " << expman::version() << ", " << rows << " row\n";
    return rows == 1 ? 0 : 1;
}
