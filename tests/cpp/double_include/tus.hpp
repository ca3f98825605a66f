#ifndef EXPMAN_TESTS_TUS_HPP
#define EXPMAN_TESTS_TUS_HPP
#include <cstddef>
#include <filesystem>
#include <string>

std::string tu_a_create(const std::filesystem::path& base);
std::size_t tu_b_count_rows(const std::string& dir);
#endif
