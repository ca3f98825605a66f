// A small, real training loop in C++ logging through expman's C++ API (bindings/cpp).
//
// Logistic regression trained by mini-batch gradient descent on generated data: N-dimensional
// points labelled by a hidden noisy linear rule (fixed seed, so every run sees the same data;
// about 99 % validation accuracy with the defaults). It logs one config row,
// then per epoch train/val loss and accuracy into metrics/<run_id>.csv, and the loss of every
// step into the named table metrics/progress.csv through the cached-field-id hot path.
//
// Build and run (from the repository root):
//     cmake -S tests/cpp -B target/cpp-tests && cmake --build target/cpp-tests --target cpp_train
//     target/cpp-tests/cpp_train --epochs 20 --lr 0.1 --base-dir ./experiments
// Exit status 0 when the best validation accuracy reaches --min-acc (default 0.95).
#include <expman.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {

struct Options {
    int epochs = 20;
    double lr = 0.1;
    int batch_size = 32;
    int n_samples = 2000;
    int n_features = 8;
    std::uint64_t seed = 42;
    double min_acc = 0.95;
    std::string base_dir = "./experiments";
};

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
    std::cerr << argv0 << ": " << problem << "\n"
              << "usage: " << argv0
              << " [--epochs N] [--lr X] [--batch-size N] [--samples N] [--features N]"
                 " [--seed N] [--min-acc X] [--base-dir DIR]\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (i + 1 >= argc) usage(argv[0], flag + " needs a value");
        const char* value = argv[++i];
        try {
            if (flag == "--epochs") o.epochs = std::stoi(value);
            else if (flag == "--lr") o.lr = std::stod(value);
            else if (flag == "--batch-size") o.batch_size = std::stoi(value);
            else if (flag == "--samples") o.n_samples = std::stoi(value);
            else if (flag == "--features") o.n_features = std::stoi(value);
            else if (flag == "--seed") o.seed = std::stoull(value);
            else if (flag == "--min-acc") o.min_acc = std::stod(value);
            else if (flag == "--base-dir") o.base_dir = value;
            else usage(argv[0], "unknown option " + flag);
        } catch (const std::logic_error&) {
            usage(argv[0], "bad value for " + flag + ": " + value);
        }
    }
    if (o.epochs < 1 || o.batch_size < 1 || o.n_samples < 10 || o.n_features < 1) {
        usage(argv[0], "epochs, batch size, samples and features must be positive");
    }
    return o;
}

/// splitmix64: a tiny generator whose output is the same with every compiler and library
/// (std::normal_distribution is not), so the data set is reproducible everywhere.
struct Rng {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    double normal() {  // Box-Muller
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

struct Dataset {
    std::size_t n = 0, d = 0;
    std::vector<double> x;  // n rows of d features
    std::vector<int> y;     // 0 or 1
    const double* row(std::size_t i) const { return &x[i * d]; }
};

/// Features x ~ N(0, 1) each scaled by 0.5..2, labels from a hidden linear rule with noise:
/// y = [w* . x + b* + noise > 0]. The noise flips labels near the boundary, so no line is
/// perfect.
Dataset make_data(std::size_t n, std::size_t d, Rng& rng) {
    std::vector<double> w_true(d), scale(d);
    for (std::size_t j = 0; j < d; ++j) {
        w_true[j] = rng.normal();
        scale[j] = 0.5 + 1.5 * rng.uniform();
    }
    const double b_true = 0.5;
    Dataset data;
    data.n = n;
    data.d = d;
    data.x.resize(n * d);
    data.y.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        double z = b_true + 0.25 * rng.normal();
        for (std::size_t j = 0; j < d; ++j) {
            const double x = scale[j] * rng.normal();
            data.x[i * d + j] = x;
            z += w_true[j] * x;
        }
        data.y[i] = z > 0 ? 1 : 0;
    }
    return data;
}

struct Model {
    std::vector<double> w;
    double b = 0.0;

    double logit(const double* x) const {
        return std::inner_product(w.begin(), w.end(), x, b);
    }
};

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

/// Binary cross-entropy from a logit, computed stably.
double bce(double z, int y) {
    // log(1 + e^z) - y z, without overflow for large |z|.
    double softplus = z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
    return softplus - y * z;
}

struct Eval {
    double loss = 0.0, acc = 0.0;
};

Eval evaluate(const Model& m, const Dataset& data, const std::vector<std::size_t>& idx) {
    Eval e;
    for (std::size_t i : idx) {
        double z = m.logit(data.row(i));
        e.loss += bce(z, data.y[i]);
        e.acc += ((z > 0) == (data.y[i] == 1)) ? 1.0 : 0.0;
    }
    e.loss /= static_cast<double>(idx.size());
    e.acc /= static_cast<double>(idx.size());
    return e;
}

std::string command_line(int argc, char** argv) {
    std::string cmd;
    for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
    return cmd;
}

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    try {
        Rng rng{opt.seed};
        const Dataset data = make_data(static_cast<std::size_t>(opt.n_samples),
                                        static_cast<std::size_t>(opt.n_features), rng);
        std::vector<std::size_t> order(data.n);
        std::iota(order.begin(), order.end(), 0);
        const std::size_t n_val = data.n / 5;
        std::vector<std::size_t> val(order.begin(), order.begin() + static_cast<long>(n_val));
        std::vector<std::size_t> train(order.begin() + static_cast<long>(n_val), order.end());

        auto exp = expman::Experiment::create("cpp_logreg", command_line(argc, argv), opt.base_dir,
                                              {"cpp", "logistic-regression"},
                                              "logistic regression on a noisy linear rule (C++ example)");
        // Its output goes to logs/<run_id>.log too (the UI's log view) until `exp` is destroyed.
        exp.capture_output();
        std::cout << "experiment " << exp.dir().string() << " run " << exp.run_id() << "\n";

        // The config row: strings and numbers.
        exp.upd_row({{"model", "logistic_regression"},
                     {"dataset", "synthetic_linear"},
                     {"n_train", train.size()},
                     {"n_val", val.size()},
                     {"n_features", opt.n_features},
                     {"lr", opt.lr},
                     {"batch_size", opt.batch_size},
                     {"epochs", opt.epochs},
                     {"seed", static_cast<std::int64_t>(opt.seed)}});
        exp.save_row();
        exp.append_log("training started");

        // Per-step losses go to metrics/progress.csv through the hot path: the field ids are
        // looked up once, each row is one C call.
        auto step_row = exp.table("progress").f64_row({"step", "epoch", "batch_loss"});

        Model model{std::vector<double>(data.d, 0.0), 0.0};
        std::vector<double> grad_w(data.d);
        double step = 0;
        for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
            const auto started = std::chrono::steady_clock::now();
            // Shuffle the training set (Fisher-Yates with our portable generator).
            for (std::size_t i = train.size() - 1; i > 0; --i) {
                std::swap(train[i], train[rng.next() % (i + 1)]);
            }
            for (std::size_t start = 0; start < train.size();
                 start += static_cast<std::size_t>(opt.batch_size)) {
                const std::size_t end =
                    std::min(train.size(), start + static_cast<std::size_t>(opt.batch_size));
                std::fill(grad_w.begin(), grad_w.end(), 0.0);
                double grad_b = 0.0, batch_loss = 0.0;
                for (std::size_t k = start; k < end; ++k) {
                    const std::size_t i = train[k];
                    const double z = model.logit(data.row(i));
                    const double err = sigmoid(z) - data.y[i];  // d(bce)/dz
                    for (std::size_t j = 0; j < data.d; ++j) grad_w[j] += err * data.row(i)[j];
                    grad_b += err;
                    batch_loss += bce(z, data.y[i]);
                }
                const double scale = opt.lr / static_cast<double>(end - start);
                for (std::size_t j = 0; j < data.d; ++j) model.w[j] -= scale * grad_w[j];
                model.b -= scale * grad_b;
                step += 1;
                step_row.save({step, double(epoch), batch_loss / static_cast<double>(end - start)});
            }
            const Eval tr = evaluate(model, data, train);
            const Eval va = evaluate(model, data, val);
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            if (!std::isfinite(tr.loss)) throw std::runtime_error("training diverged (loss is not finite)");

            exp.upd_row({{"epoch", epoch},
                         {"train_loss", tr.loss},
                         {"train_acc", tr.acc},
                         {"val_loss", va.loss},
                         {"val_acc", va.acc},
                         {"epoch_seconds", seconds}});
            exp.save_row();
            std::printf("epoch %3d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f\n", epoch,
                        opt.epochs, tr.loss, tr.acc, va.loss, va.acc);
        }

        // Read the metrics back, as the seed's README does with pandas.
        const expman::Metrics metrics = exp.load_metrics();
        std::size_t best_row = 0;
        double best_acc = -1.0;
        for (std::size_t r = 0; r < metrics.n_rows(); ++r) {
            const expman::Value& acc = metrics.at(r, "val_acc");
            if (!acc.is_null() && acc.as_double() > best_acc) {
                best_acc = acc.as_double();
                best_row = r;
            }
        }
        const auto progress_rows = exp.load_table("progress").n_rows();
        std::printf("best: epoch %lld, val_acc %.4f (%zu metric rows, %zu progress rows)\n",
                    static_cast<long long>(metrics.at(best_row, "epoch").as_int()), best_acc,
                    metrics.n_rows(), progress_rows);
        exp.append_log("training done, best val_acc " + std::to_string(best_acc));
        if (best_acc < opt.min_acc) {
            exp.set_error("validation accuracy " + std::to_string(best_acc) + " is below " +
                          std::to_string(opt.min_acc));
            std::cerr << "FAILED: best validation accuracy " << best_acc << " < " << opt.min_acc
                      << "\n";
            return 1;
        }
        // No set_finished(): leaving this scope marks the run Finished (and an exception
        // escaping it would have marked it Error).
        return 0;
    } catch (const expman::Error& e) {
        std::cerr << "expman error " << e.code() << ": " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
