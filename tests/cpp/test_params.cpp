// Hyperparameters from C++: set_param with every C++ type a training script has at hand (a
// string literal records text, not bool; an int stays an int), set_params, JSON, read-back,
// config.json's typed text, and errors that name the parameter and write nothing.
#include "check.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

using expman::Status;

int main(int argc, char** argv) {
    auto base = check::setup(argc, argv);
    unsetenv("EXPMAN_PARAMS");
    auto exp = expman::Experiment::create("params", "test_params", base);
    CHECK_EQ(exp.params_json(), std::string("{}"));

    const std::string model = "resnet";
    exp.set_param("lr", 0.01)
        .set_param("ratio", 2.0)
        .set_param("scale", 0.5f)
        .set_param("depth", 18)
        .set_param("steps", std::int64_t{1} << 40)
        .set_param("workers", 8u)
        .set_param("batch", std::size_t{256})
        .set_param("pretrained", true)
        .set_param("opt.name", "adam")  // a literal: text, not bool
        .set_param("model", model)
        .set_param("norm", std::string_view("batch"));
    exp.set_params({{"seed", -7}, {"aug", false}});
    exp.log_params_json(R"({"sched": {"kind": "cos", "warmup": 5}})");

    const std::string expected =
        R"({"aug":false,"batch":256,"depth":18,"lr":0.01,"model":"resnet","norm":"batch",)"
        R"("opt.name":"adam","pretrained":true,"ratio":2.0,"scale":0.5,"sched.kind":"cos",)"
        R"("sched.warmup":5,"seed":-7,"steps":1099511627776,"workers":8})";
    CHECK_EQ(exp.params_json(), expected);
    const std::string config = check::read_file(exp.dir() / "config.json");
    CHECK(config.find("\"depth\": 18,\n") != std::string::npos);
    CHECK(config.find("\"ratio\": 2.0,\n") != std::string::npos);
    CHECK(config.find("\"opt.name\": \"adam\",\n") != std::string::npos);
    CHECK(check::read_file(exp.dir() / "status.json").find("\"seed\": -7") != std::string::npos);

    // Errors: thrown with the status, naming the parameter; nothing written.
    const std::string before = check::read_file(exp.dir() / "config.json");
    CHECK_THROWS_EXPMAN(exp.set_param("lr", std::numeric_limits<double>::quiet_NaN()),
                        Status::InvalidValue, "parameter lr");
    CHECK_THROWS_EXPMAN(exp.set_param("lr", std::numeric_limits<double>::infinity()),
                        Status::InvalidValue, "not finite");
    CHECK_THROWS_EXPMAN(exp.set_param("a..b", 1), Status::InvalidName, "a..b");
    CHECK_THROWS_EXPMAN(exp.set_param("", true), Status::InvalidName, "empty");
    CHECK_THROWS_EXPMAN(exp.set_param("nothing", nullptr), Status::InvalidValue, "nothing");
    CHECK_THROWS_EXPMAN(exp.set_param("huge", std::numeric_limits<std::uint64_t>::max()),
                        Status::BadArgument, "int64_t");
    CHECK_THROWS_EXPMAN(exp.log_params_json(R"({"ok": 1, "layers": [1, 2]})"),
                        Status::InvalidValue, "layers");
    CHECK_THROWS_EXPMAN(exp.log_params_json("{oops"), Status::InvalidValue, "not valid JSON");
    CHECK_EQ(check::read_file(exp.dir() / "config.json"), before);
    CHECK_EQ(exp.params_json(), expected);
    exp.set_finished();

    // A second run that changes lr: config.json has the new value, history the old one.
    const auto dir = exp.dir();
    {
        auto second = expman::Experiment::open(dir);
        second.set_param("lr", 0.001);
        CHECK(second.params_json().find("\"lr\":0.001") != std::string::npos);
    }
    const std::string status = check::read_file(dir / "status.json");
    const auto history = status.find("\"history\"");
    CHECK(history != std::string::npos);
    CHECK(status.find("\"lr\": 0.01", history) != std::string::npos);
    CHECK(status.find("\"lr\": 0.001") < history);
    CHECK(check::read_file(dir / "config.json").find("\"lr\": 0.001") != std::string::npos);

    // A moved-from object throws instead of crashing.
    auto moved = std::move(exp);
    CHECK_THROWS_EXPMAN(exp.set_param("x", 1), Status::InvalidState, "moved");
    return check::finish("cpp_params");
}
