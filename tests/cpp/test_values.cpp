// Values of every kind survive the round trip C++ -> CSV -> C++, and the Value type converts
// from the C++ types a training loop has at hand.
#include "check.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using Kind = expman::Value::Kind;

// Implicit conversions, checked at compile time.
static_assert(std::is_convertible_v<double, expman::Value>);
static_assert(std::is_convertible_v<int, expman::Value>);
static_assert(std::is_convertible_v<std::int64_t, expman::Value>);
static_assert(std::is_convertible_v<bool, expman::Value>);
static_assert(std::is_convertible_v<const char*, expman::Value>);
static_assert(std::is_convertible_v<std::string, expman::Value>);
static_assert(std::is_convertible_v<std::nullptr_t, expman::Value>);

std::ostream& operator<<(std::ostream& out, Kind kind) { return out << static_cast<int>(kind); }

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);

    // The kind each C++ type becomes: notably a string literal is text, not bool.
    CHECK_EQ(expman::Value().kind(), Kind::Null);
    CHECK_EQ(expman::Value(nullptr).kind(), Kind::Null);
    CHECK_EQ(expman::Value(true).kind(), Kind::Bool);
    CHECK_EQ(expman::Value(1).kind(), Kind::Int);
    CHECK_EQ(expman::Value(1L).kind(), Kind::Int);
    CHECK_EQ(expman::Value(1ULL).kind(), Kind::Int);
    CHECK_EQ(expman::Value(std::size_t{7}).kind(), Kind::Int);
    CHECK_EQ(expman::Value(static_cast<std::uint8_t>(7)).kind(), Kind::Int);
    CHECK_EQ(expman::Value(1.5f).kind(), Kind::Float);
    CHECK_EQ(expman::Value(1.5).kind(), Kind::Float);
    CHECK_EQ(expman::Value("text").kind(), Kind::Str);
    CHECK_EQ(expman::Value(std::string("text")).kind(), Kind::Str);
    CHECK_EQ(expman::Value(std::string_view("text")).kind(), Kind::Str);
    CHECK(expman::Value(static_cast<const char*>(nullptr)).is_null());
    CHECK_EQ(expman::Value(3u).as_int(), 3);
    CHECK(std::isnan(expman::Value("x").as_double()));
    CHECK_EQ(expman::Value(std::int64_t{4}).as_double(), 4.0);

    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    const std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();
    const std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
    const std::string tricky = "comma, \"quotes\"\nnew line";
    const std::string unicode = "naïve 日本語 ✓";

    auto exp = expman::Experiment::create("values", "test_values", base, {"cpp", "values"},
                                          "every kind of cell", {0, 3});
    // Row 1: one column per case, every cell set through upd_row (typed C setters).
    exp.upd_row({
        {"null", nullptr},
        {"flag", true},
        {"int_min", i64_min},
        {"int_max", i64_max},
        {"small_int", -7},
        {"float", 0.1},
        {"big_float", 1e300},
        {"whole_float", 2.0},
        {"nan", nan},
        {"inf", inf},
        {"neg_inf", -inf},
        {"text", "plain"},
        {"tricky", tricky},
        {"unicode", unicode},
    });
    exp.save_row();
    // Row 2: the same columns through set() and other C++ types; a new column widens the table.
    exp.set("null", expman::Value())
        .set("flag", false)
        .set("int_min", 0)
        .set("int_max", 1ULL)
        .set("small_int", static_cast<short>(3))
        .set("float", -0.25f)
        .set("big_float", -1e-300)
        .set("whole_float", 3.0)
        .set("nan", 1.0)
        .set("inf", 0.5)
        .set("neg_inf", -inf)
        .set("text", std::string("from std::string"))
        .set("tricky", std::string_view("a,b"))
        .set("unicode", "ü")
        .set("added_later", 42);
    exp.save_row();

    auto m = exp.load_metrics();
    CHECK_EQ(m.n_rows(), std::size_t{2});
    CHECK_EQ(m.columns.at(0), std::string("timestamp"));
    CHECK_EQ(m.columns.at(1), std::string("run_id"));
    CHECK_EQ(m.at(0, "run_id").as_string(), exp.run_id());
    auto type_of = [&](const char* column) { return m.types.at(*m.column_index(column)); };
    CHECK_EQ(type_of("null"), Kind::Null);
    CHECK_EQ(type_of("flag"), Kind::Bool);
    CHECK_EQ(type_of("int_min"), Kind::Int);
    CHECK_EQ(type_of("int_max"), Kind::Int);
    CHECK_EQ(type_of("small_int"), Kind::Int);
    CHECK_EQ(type_of("float"), Kind::Float);
    CHECK_EQ(type_of("whole_float"), Kind::Float);
    CHECK_EQ(type_of("nan"), Kind::Float);
    CHECK_EQ(type_of("neg_inf"), Kind::Float);
    CHECK_EQ(type_of("text"), Kind::Str);
    CHECK_EQ(type_of("added_later"), Kind::Int);

    CHECK(m.at(0, "null").is_null());
    CHECK(m.at(1, "null").is_null());
    CHECK_EQ(m.at(0, "flag").as_bool(), true);
    CHECK_EQ(m.at(1, "flag").as_bool(), false);
    CHECK_EQ(m.at(0, "int_min").as_int(), i64_min);
    CHECK_EQ(m.at(0, "int_max").as_int(), i64_max);
    CHECK_EQ(m.at(1, "int_max").as_int(), 1);
    CHECK_EQ(m.at(0, "small_int").as_int(), -7);
    CHECK_EQ(m.at(1, "small_int").as_int(), 3);
    CHECK_EQ(m.at(0, "float").get<double>(), 0.1);  // shortest round-trip text: exact
    CHECK_EQ(m.at(1, "float").get<double>(), -0.25);
    CHECK_EQ(m.at(0, "big_float").get<double>(), 1e300);
    CHECK_EQ(m.at(1, "big_float").get<double>(), -1e-300);
    CHECK_EQ(m.at(0, "whole_float").kind(), Kind::Float);
    CHECK_EQ(m.at(0, "whole_float").get<double>(), 2.0);
    CHECK(std::isnan(m.at(0, "nan").get<double>()));
    CHECK(m.at(0, "nan") == expman::Value(nan));  // NaN cells compare equal
    CHECK_EQ(m.at(0, "inf").get<double>(), inf);
    CHECK_EQ(m.at(0, "neg_inf").get<double>(), -inf);
    CHECK_EQ(m.at(0, "text").as_string(), std::string("plain"));
    CHECK_EQ(m.at(1, "text").as_string(), std::string("from std::string"));
    CHECK_EQ(m.at(0, "tricky").as_string(), tricky);
    CHECK_EQ(m.at(1, "tricky").as_string(), std::string("a,b"));
    CHECK_EQ(m.at(0, "unicode").as_string(), unicode);
    CHECK(m.at(0, "added_later").is_null());  // written before the column existed
    CHECK_EQ(m.at(1, "added_later").as_int(), 42);
    auto floats = m.column_f64("float");
    CHECK_EQ(floats.size(), std::size_t{2});
    CHECK_EQ(floats.at(1), -0.25);

    // The same file through Metrics::read (expman_metrics_read).
    auto again = expman::Metrics::read(exp.dir() / "metrics" / (exp.run_id() + ".csv"));
    CHECK(again.columns == m.columns);
    CHECK(again.types == m.types);
    CHECK(again.rows == m.rows);

    // Named tables, ranges of pairs, save_row(fields), clear_row and the f64 hot path.
    auto progress = exp.table("progress");
    std::map<std::string, double> as_map{{"loss", 0.75}, {"lr", 0.01}};
    progress.upd_row(as_map).save_row();
    std::vector<std::pair<std::string, expman::Value>> as_vector{{"loss", 0.5}, {"note", "v"}};
    progress.upd_row(as_vector).save_row();
    progress.save_row({{"loss", 0.25}, {"step", 3}});
    progress.upd_row({{"loss", 99.0}});
    progress.clear_row();  // dropped, never written
    progress.save_row();   // nothing pending: writes nothing
    progress.sync();
    auto hot = exp.table("progress").f64_row({"step", "loss"});
    CHECK_EQ(hot.size(), std::size_t{2});
    for (int step = 4; step <= 6; ++step) hot.save({double(step), 1.0 / step});
    std::vector<double> as_vec{7.0, 0.125};
    hot.save(as_vec);
    hot.save(std::array<double, 2>{8.0, 0.0625});
    auto p = exp.load_table("progress");
    CHECK_EQ(p.n_rows(), std::size_t{8});
    CHECK_EQ(p.at(0, "loss").as_double(), 0.75);
    CHECK_EQ(p.at(0, "lr").as_double(), 0.01);
    CHECK_EQ(p.at(1, "note").as_string(), std::string("v"));
    CHECK_EQ(p.at(2, "step").as_double(), 3.0);
    CHECK_EQ(p.at(3, "loss").as_double(), 0.25);
    CHECK_EQ(p.at(7, "loss").as_double(), 0.0625);
    CHECK_EQ(p.at(7, "run_id").as_string(), exp.run_id());

    // Field ids are stable per name and distinct (and carry their table: another table's id
    // is refused, see tests/ffi.rs).
    auto t = exp.table("ids");
    const auto first = t.field_id("first");
    CHECK(t.field_id("second") != first);
    CHECK_EQ(t.field_id("first"), first);

    // Text holding a NUL is kept whole (it was cut at the NUL); a parameter refuses it.
    using namespace std::string_literals;
    auto nul = exp.table("nul");
    nul.set("s", "a\0b"s);
    nul.save_row();
    const auto nul_rows = exp.load_table("nul");
    CHECK_EQ(nul_rows.at(0, "s").as_string(), "a\0b"s);
    bool refused = false;
    try {
        exp.set_param("p", "x\0y"s);
    } catch (const expman::Error& e) {
        refused = std::string(e.what()).find("NUL") != std::string::npos;
    }
    CHECK(refused);

    // config.json got the tags, description and GPU ids.
    auto config = check::read_file(exp.dir() / "config.json");
    CHECK(config.find("\"values\"") != std::string::npos);
    CHECK(config.find("every kind of cell") != std::string::npos);
    CHECK(config.find("\"gpu_ids\": [\n    0,\n    3\n  ]") != std::string::npos);
    CHECK_EQ(exp.name(), std::string("values"));

    exp.append_log("values test done");
    CHECK(check::read_file(exp.dir() / "logs" / "experiment.log").find("values test done") !=
          std::string::npos);
    exp.set_finished();
    return check::finish("values");
}
