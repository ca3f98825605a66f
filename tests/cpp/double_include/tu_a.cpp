// First of two translation units that include expman.hpp (with main.cpp, three): everything the
// header defines must be inline or a template, or linking them together fails with duplicate
// symbols. Compiled with -Wall -Wextra -Werror -pedantic.
#include <expman.hpp>
#include <expman.hpp>  // and it must survive being included twice

#include "tus.hpp"

std::string tu_a_create(const std::filesystem::path& base) {
    auto exp = expman::Experiment::create("double_include", "tu_a", base, {"cpp"});
    exp.upd_row({{"written_by", "tu_a"}, {"x", 1.5}});
    exp.save_row();
    exp.set_finished();
    return exp.dir().string();
}
