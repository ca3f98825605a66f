// The double-include test (wasmtime's): tu_a.cpp and tu_b.cpp both include expman.hpp and are
// linked with this file, which includes it too.
#include "../check.hpp"
#include "tus.hpp"

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);
    std::string dir = tu_a_create(base);
    CHECK_EQ(tu_b_count_rows(dir), std::size_t{1});
    CHECK_EQ(check::run_state(dir), std::string("Finished"));
    CHECK_EQ(expman::abi_version(), std::uint32_t{EXPMAN_ABI_VERSION});
    CHECK(!expman::version().empty());
    return check::finish("double_include");
}
