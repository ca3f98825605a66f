// expman.hpp: the C++17 API of expman, a header-only RAII wrapper over the C ABI (<expman.h>).
//
//     #include <expman.hpp>
//
//     auto exp = expman::Experiment::create("my_experiment", "./train --lr 0.01", "./experiments",
//                                           {"deep-learning"});
//     exp.upd_row({{"model", "logreg"}, {"lr", 0.01}});
//     exp.save_row();
//     for (int epoch = 1; epoch <= 10; ++epoch) {
//         exp.upd_row({{"epoch", epoch}, {"loss", loss}, {"acc", acc}});
//         exp.save_row();
//     }
//     exp.set_finished();  // or let the destructor do it, see Experiment::~Experiment
//
// Every failure of the library throws expman::Error, which carries the C status code and the
// library's message (naming the path, field or value and what to do). Handles are owned by
// std::unique_ptr with the C free function as deleter; Experiment moves and never copies.
// Table and F64Row are non-owning views that stay valid while the experiment that gave them out
// lives (moving the Experiment object does not invalidate them).
//
// Thread-safety follows the C ABI: one Experiment may be used from several threads (the library
// locks), but the pending row of a table is shared, so build each row from one thread.
//
// Linking: CMake target expman::expman (bindings/cpp/CMakeLists.txt), or by hand:
// -I<expman>/bindings/cpp/include -I<expman>/include -L<dir of libexpman> -lexpman.
#ifndef EXPMAN_HPP
#define EXPMAN_HPP

#include <expman.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace expman {

/// The C status codes (expman_status), as a scoped enum.
enum class Status : std::int32_t {
    Ok = EXPMAN_OK,
    NullArgument = EXPMAN_ERR_NULL,
    InvalidUtf8 = EXPMAN_ERR_UTF8,
    Panic = EXPMAN_ERR_PANIC,
    BadArgument = EXPMAN_ERR_ARGUMENT,
    Io = EXPMAN_ERR_IO,
    InvalidName = EXPMAN_ERR_INVALID_NAME,
    InvalidValue = EXPMAN_ERR_INVALID_VALUE,
    Corrupt = EXPMAN_ERR_CORRUPT,
    NotFound = EXPMAN_ERR_NOT_FOUND,
    InvalidState = EXPMAN_ERR_INVALID_STATE,
    Config = EXPMAN_ERR_CONFIG,
    Unsupported = EXPMAN_ERR_UNSUPPORTED,
};

/// A failed expman call: the status code and the library's message for it.
class Error : public std::runtime_error {
public:
    Error(Status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}

    /// Which kind of failure (the C status code).
    Status status() const noexcept { return status_; }
    /// The C status code as an integer.
    std::int32_t code() const noexcept { return static_cast<std::int32_t>(status_); }

private:
    Status status_;
};

namespace detail {

/// Throws the calling thread's last error when `status` is not EXPMAN_OK.
inline void check(expman_status status) {
    if (status == EXPMAN_OK) {
        return;
    }
    const char* message = expman_last_error();
    std::string text = message != nullptr && *message != '\0'
                           ? std::string(message)
                           : "expman error " + std::to_string(status);
    throw Error(static_cast<Status>(status), text);
}

/// A borrowed C string for a name argument: a literal, a `const char*` or a `std::string`
/// (which must outlive the call; a temporary lives until the end of the full expression).
class CStr {
public:
    CStr(const char* s) noexcept : s_(s) {}                 // NOLINT: implicit on purpose
    CStr(const std::string& s) noexcept : s_(s.c_str()) {}  // NOLINT: implicit on purpose
    const char* get() const noexcept { return s_; }

private:
    const char* s_;
};

inline std::string copy_c(const char* s) { return s != nullptr ? std::string(s) : std::string(); }

struct ExperimentDeleter {
    void operator()(expman_experiment* exp) const noexcept { expman_experiment_free(exp); }
};
struct MetricsDeleter {
    void operator()(expman_metrics* m) const noexcept { expman_metrics_free(m); }
};
struct StringDeleter {
    void operator()(char* s) const noexcept { expman_string_free(s); }
};

}  // namespace detail

/// The version of the loaded library, such as "0.1.0".
inline std::string version() { return detail::copy_c(expman_version()); }
/// The ABI version of the loaded library; EXPMAN_ABI_VERSION is the one this header expects.
inline std::uint32_t abi_version() noexcept { return expman_abi_version(); }
/// The optional features of the loaded library: a bitmask of EXPMAN_FEATURE_*.
inline std::uint32_t features() noexcept { return expman_features(); }

/// One cell value: null, bool, 64-bit integer, double or UTF-8 text.
///
/// Constructible (implicitly) from nullptr, bool, any integer type, float/double, const char*,
/// std::string and std::string_view, so fields can be written as `{"loss", 0.1}`.
class Value {
public:
    /// The kind of a value; the numbers are EXPMAN_VALUE_* (and EXPMAN_TYPE_* for columns).
    enum class Kind : std::int32_t {
        Null = EXPMAN_VALUE_NULL,
        Bool = EXPMAN_VALUE_BOOL,
        Int = EXPMAN_VALUE_INT,
        Float = EXPMAN_VALUE_FLOAT,
        Str = EXPMAN_VALUE_STR,
    };
    /// What is stored; the variant's index is the Kind.
    using Storage = std::variant<std::monostate, bool, std::int64_t, double, std::string>;

    Value() noexcept = default;
    Value(std::nullptr_t) noexcept {}                           // NOLINT: implicit on purpose
    Value(bool b) noexcept : v_(b) {}                           // NOLINT
    Value(double f) noexcept : v_(f) {}                         // NOLINT
    Value(float f) noexcept : v_(static_cast<double>(f)) {}     // NOLINT
    /// Text; a NULL pointer is a null value.
    Value(const char* s) {  // NOLINT: implicit on purpose
        if (s != nullptr) v_ = std::string(s);
    }
    Value(std::string s) noexcept : v_(std::move(s)) {}         // NOLINT
    Value(std::string_view s) : v_(std::string(s)) {}           // NOLINT
    /// Any integer type but bool. An unsigned value above INT64_MAX throws Error(BadArgument).
    template <class T,
              std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Value(T i) : v_(to_i64(i)) {}  // NOLINT

    Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
    bool is_null() const noexcept { return kind() == Kind::Null; }
    const Storage& storage() const noexcept { return v_; }

    /// The value as T (bool, std::int64_t, double or std::string); throws std::bad_variant_access
    /// when it holds another kind.
    template <class T>
    const T& get() const {
        return std::get<T>(v_);
    }
    bool as_bool() const { return std::get<bool>(v_); }
    std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
    const std::string& as_string() const { return std::get<std::string>(v_); }
    /// A number as double (ints converted); NaN for null, bool and text.
    double as_double() const noexcept {
        if (const auto* f = std::get_if<double>(&v_)) return *f;
        if (const auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*i);
        return std::numeric_limits<double>::quiet_NaN();
    }

    /// Same kind and same value (NaN equals NaN here, as cells do in a table).
    friend bool operator==(const Value& a, const Value& b) noexcept {
        if (a.kind() == Kind::Float && b.kind() == Kind::Float) {
            double x = std::get<double>(a.v_), y = std::get<double>(b.v_);
            return x == y || (std::isnan(x) && std::isnan(y));
        }
        return a.v_ == b.v_;
    }
    friend bool operator!=(const Value& a, const Value& b) noexcept { return !(a == b); }

    /// The C view of this value; borrows the string, so keep the Value alive while it is used.
    expman_value to_c() const noexcept {
        expman_value c{};
        c.kind = static_cast<std::int32_t>(kind());
        switch (kind()) {
            case Kind::Null: break;
            case Kind::Bool: c.i = std::get<bool>(v_) ? 1 : 0; break;
            case Kind::Int: c.i = std::get<std::int64_t>(v_); break;
            case Kind::Float: c.f = std::get<double>(v_); break;
            case Kind::Str:
                c.s = std::get<std::string>(v_).data();
                c.s_len = std::get<std::string>(v_).size();
                break;
        }
        return c;
    }

    /// Copies a C value (as returned by expman_metrics_get).
    static Value from_c(const expman_value& c) {
        switch (c.kind) {
            case EXPMAN_VALUE_BOOL: return Value(c.i != 0);
            case EXPMAN_VALUE_INT: return Value(static_cast<std::int64_t>(c.i));
            case EXPMAN_VALUE_FLOAT: return Value(c.f);
            case EXPMAN_VALUE_STR:
                return Value(c.s != nullptr ? std::string(c.s, c.s_len) : std::string());
            default: return Value();
        }
    }

private:
    template <class T>
    static std::int64_t to_i64(T i) {
        if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
            if (i > static_cast<T>(std::numeric_limits<std::int64_t>::max())) {
                throw Error(Status::BadArgument,
                            "expman::Value: the unsigned integer " + std::to_string(i) +
                                " does not fit int64_t; store it as a double or a string");
            }
        }
        return static_cast<std::int64_t>(i);
    }

    Storage v_;
};

/// A field of a row: a name and a value, for `upd_row({{"loss", 0.1}, {"acc", 0.9}})`.
/// The name is borrowed, so use Field only as an argument (names must outlive the call).
struct Field {
    detail::CStr name;
    Value value;
};

/// A table read back: column names (timestamp and run_id first), their inferred types and the
/// rows. Cells of columns added after a row was written are null.
struct Metrics {
    std::vector<std::string> columns;
    std::vector<Value::Kind> types;
    std::vector<std::vector<Value>> rows;

    std::size_t n_rows() const noexcept { return rows.size(); }
    std::size_t n_columns() const noexcept { return columns.size(); }

    /// The index of a column, if there is one of that name.
    std::optional<std::size_t> column_index(std::string_view name) const noexcept {
        for (std::size_t i = 0; i < columns.size(); ++i) {
            if (columns[i] == name) return i;
        }
        return std::nullopt;
    }

    /// The cell of `row` in column `name`; throws std::out_of_range for either.
    const Value& at(std::size_t row, std::string_view name) const {
        auto col = column_index(name);
        if (!col) throw std::out_of_range("expman::Metrics: no column named " + std::string(name));
        return rows.at(row).at(*col);
    }

    /// One column as doubles (ints converted; null, bool and text as NaN); throws
    /// std::out_of_range when there is no such column.
    std::vector<double> column_f64(std::string_view name) const {
        auto col = column_index(name);
        if (!col) throw std::out_of_range("expman::Metrics: no column named " + std::string(name));
        std::vector<double> out;
        out.reserve(rows.size());
        for (const auto& row : rows) out.push_back(row[*col].as_double());
        return out;
    }

    /// Reads any metrics CSV file (metrics/<run_id>.csv or a named table).
    [[nodiscard]] static Metrics read(const std::filesystem::path& csv_path) {
        expman_metrics* raw = nullptr;
        detail::check(expman_metrics_read(csv_path.c_str(), &raw));
        return from_c(raw);
    }

    /// Takes ownership of a C handle, copies it out and frees it.
    static Metrics from_c(expman_metrics* raw) {
        std::unique_ptr<expman_metrics, detail::MetricsDeleter> m(raw);
        Metrics out;
        const std::size_t n_cols = expman_metrics_n_columns(m.get());
        const std::size_t n_rows = expman_metrics_n_rows(m.get());
        out.columns.reserve(n_cols);
        out.types.reserve(n_cols);
        for (std::size_t c = 0; c < n_cols; ++c) {
            out.columns.push_back(detail::copy_c(expman_metrics_column_name(m.get(), c)));
            out.types.push_back(static_cast<Value::Kind>(expman_metrics_column_type(m.get(), c)));
        }
        out.rows.resize(n_rows);
        for (std::size_t r = 0; r < n_rows; ++r) {
            out.rows[r].reserve(n_cols);
            for (std::size_t c = 0; c < n_cols; ++c) {
                expman_value v{};
                detail::check(expman_metrics_get(m.get(), r, c, &v));
                out.rows[r].push_back(Value::from_c(v));
            }
        }
        return out;
    }
};

/// The hot path for all-double rows: the field ids are looked up once, and each save() sets
/// every field and saves the row in one C call (expman_table_save_row_f64). Fields set on the
/// table before (set/upd_row) are saved in the same row. A view: valid while its experiment
/// lives.
class F64Row {
public:
    /// The number of fields (and of values each save() takes).
    std::size_t size() const noexcept { return ids_.size(); }

    /// Saves one row; `n` must equal size().
    void save(const double* values, std::size_t n) const {
        if (n != ids_.size()) {
            throw Error(Status::BadArgument,
                        "expman::F64Row::save: got " + std::to_string(n) + " values for " +
                            std::to_string(ids_.size()) +
                            " fields; pass one value per field, in the order given");
        }
        detail::check(expman_table_save_row_f64(table_, ids_.data(), values, n));
    }
    void save(std::initializer_list<double> values) const { save(values.begin(), values.size()); }
    void save(const std::vector<double>& values) const { save(values.data(), values.size()); }
    template <std::size_t N>
    void save(const std::array<double, N>& values) const {
        save(values.data(), N);
    }

private:
    friend class Table;
    F64Row(expman_table* table, std::vector<std::uint32_t> ids)
        : table_(table), ids_(std::move(ids)) {}

    expman_table* table_;
    std::vector<std::uint32_t> ids_;
};

/// A metrics table of an experiment: the run's own (Experiment::metrics()) or a named one
/// (Experiment::table("progress")). A non-owning view, cheap to copy: valid while the
/// experiment that gave it out lives.
class Table {
public:
    /// Sets one field of the pending row, with the C setter of the value's kind.
    Table& set(detail::CStr name, const Value& value) {
        const char* n = name.get();
        switch (value.kind()) {
            case Value::Kind::Null: detail::check(expman_table_set_null(t_, n)); break;
            case Value::Kind::Bool: detail::check(expman_table_set_bool(t_, n, value.as_bool())); break;
            case Value::Kind::Int: detail::check(expman_table_set_i64(t_, n, value.as_int())); break;
            case Value::Kind::Float:
                detail::check(expman_table_set_f64(t_, n, value.get<double>()));
                break;
            case Value::Kind::Str: {
                // By id with the length: text may hold a NUL, where expman_table_set_str()
                // would stop (and the rest of the text was silently lost).
                std::uint32_t id = 0;
                detail::check(expman_table_field_id(t_, n, &id));
                const expman_value c = value.to_c();
                detail::check(expman_table_set_values(t_, &id, &c, 1));
                break;
            }
        }
        return *this;
    }

    /// Merges fields into the pending row: `upd_row({{"loss", 0.1}, {"acc", 0.9}})`. Like the
    /// Rust API's upd_row, fields are set in order: when one is refused (a bad name), the ones
    /// before it stay set in the pending row.
    Table& upd_row(std::initializer_list<Field> fields) {
        for (const auto& f : fields) set(f.name, f.value);
        return *this;
    }
    /// Merges fields from any range of (name, value) pairs, such as a std::map<std::string,
    /// double> or a std::vector<std::pair<std::string, expman::Value>>.
    template <class Range>
    Table& upd_row(const Range& fields) {
        for (const auto& [name, value] : fields) set(detail::CStr(name), Value(value));
        return *this;
    }

    /// Appends the pending row to the table's CSV file and clears it.
    void save_row() { detail::check(expman_table_save_row(t_)); }
    /// Sets the fields, then saves the row.
    void save_row(std::initializer_list<Field> fields) {
        upd_row(fields);
        save_row();
    }
    /// Drops the pending row without saving it.
    void clear_row() { detail::check(expman_table_clear_row(t_)); }
    /// fsyncs the rows this table has written, whatever the sync policy.
    void sync() { detail::check(expman_table_sync(t_)); }

    /// The id of a field (registering it): ids are dense from 0 per table.
    std::uint32_t field_id(detail::CStr name) {
        std::uint32_t id = 0;
        detail::check(expman_table_field_id(t_, name.get(), &id));
        return id;
    }

    /// The hot-path helper for rows of doubles; see F64Row.
    F64Row f64_row(std::initializer_list<detail::CStr> names) {
        std::vector<std::uint32_t> ids;
        ids.reserve(names.size());
        for (const auto& n : names) ids.push_back(field_id(n));
        return F64Row(t_, std::move(ids));
    }
    F64Row f64_row(const std::vector<std::string>& names) {
        std::vector<std::uint32_t> ids;
        ids.reserve(names.size());
        for (const auto& n : names) ids.push_back(field_id(n));
        return F64Row(t_, std::move(ids));
    }

    /// The C handle (borrowed from the experiment).
    expman_table* raw() const noexcept { return t_; }

private:
    friend class Experiment;
    explicit Table(expman_table* t) noexcept : t_(t) {}

    expman_table* t_;
};

/// How hard save_row works to keep a row through a power loss (see expman_experiment_set_sync).
enum class Sync : std::int32_t {
    /// The default: a saved row survives a killed process, not a power cut.
    WriteThrough = EXPMAN_SYNC_WRITE_THROUGH,
    /// fsync after every row.
    EveryRow = EXPMAN_SYNC_EVERY_ROW,
    /// fsync at most once per interval.
    Interval = EXPMAN_SYNC_INTERVAL,
};

/// One experiment directory and the run this process works on. Moves only.
///
/// Destruction. An Experiment that started its run (create() or open(), not attach()) and whose
/// run is still Running as far as this object knows (neither set_finished() nor set_error() was
/// called through it since the last set_running()) ends the run when destroyed:
///   - as Error ("...destroyed while an exception was propagating") when the destructor runs
///     during stack unwinding, that is, std::uncaught_exceptions() is greater than when the
///     object was constructed;
///   - as Finished otherwise.
/// A failure there cannot be reported (destructors do not throw); call set_finished() yourself
/// to see it. An attached Experiment never changes the run's status on destruction: it belongs
/// to whoever created the run (the scheduler, which records the job's exit code). That includes
/// create() under the scheduler: like the Rust and Python APIs, it attaches when
/// EXPMAN_EXPERIMENT_DIR and EXPMAN_RUN_ID are both set. Explicit set_finished()/set_error()
/// calls always go through.
class Experiment {
public:
    /// Creates `<base_dir>/<name>_<date>__<time>/` and its first run (run_0001), Running in this
    /// process. Throws Error (InvalidName for a bad name, Io, ...).
    [[nodiscard]] static Experiment create(const std::string& name, const std::string& command,
                             const std::filesystem::path& base_dir,
                             const std::vector<std::string>& tags = {},
                             const std::string& description = {},
                             const std::vector<std::uint32_t>& gpu_ids = {}) {
        std::vector<const char*> c_tags;
        c_tags.reserve(tags.size());
        for (const auto& t : tags) c_tags.push_back(t.c_str());
        expman_experiment* raw = nullptr;
        detail::check(expman_experiment_create(
            name.c_str(), command.c_str(), base_dir.c_str(), c_tags.empty() ? nullptr : c_tags.data(),
            c_tags.size(), description.c_str(), gpu_ids.empty() ? nullptr : gpu_ids.data(),
            gpu_ids.size(), &raw));
        // The C call attaches instead when the scheduler's variables are set (see the class
        // comment); the library says which happened.
        std::unique_ptr<expman_experiment, detail::ExperimentDeleter> handle(raw);
        bool attached = false;
        detail::check(expman_experiment_attached(raw, &attached));
        return Experiment(handle.release(), !attached);
    }

    /// Starts the next run of the existing experiment directory `dir` (resume, retry).
    [[nodiscard]] static Experiment open(const std::filesystem::path& dir) {
        expman_experiment* raw = nullptr;
        detail::check(expman_experiment_open(dir.c_str(), &raw));
        return Experiment(raw, true);
    }

    /// Attaches to the existing run `run_id` of `dir`, as a job launched by the scheduler does.
    /// The run's status stays with whoever created it (see the destructor).
    [[nodiscard]] static Experiment attach(const std::filesystem::path& dir, const std::string& run_id) {
        expman_experiment* raw = nullptr;
        detail::check(expman_experiment_attach(dir.c_str(), run_id.c_str(), &raw));
        return Experiment(raw, false);
    }

    Experiment(Experiment&& other) noexcept
        : handle_(std::move(other.handle_)),
          owns_status_(other.owns_status_),
          ended_(other.ended_),
          uncaught_(std::uncaught_exceptions()) {}

    /// Ends this object's current run as the destructor would, then takes over `other`'s.
    Experiment& operator=(Experiment&& other) noexcept {
        if (this != &other) {
            close();
            handle_ = std::move(other.handle_);
            owns_status_ = other.owns_status_;
            ended_ = other.ended_;
        }
        return *this;
    }

    Experiment(const Experiment&) = delete;
    Experiment& operator=(const Experiment&) = delete;

    /// See the class comment.
    ~Experiment() { close(); }

    /// Whether this object holds an experiment (false once moved from).
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    /// The run id, such as "run_0001" (the seed's current_run_id).
    std::string run_id() const { return detail::copy_c(expman_experiment_run_id(get())); }
    /// The experiment directory.
    std::filesystem::path dir() const {
        return std::filesystem::path(detail::copy_c(expman_experiment_dir(get())));
    }
    /// The experiment's name.
    std::string name() const { return detail::copy_c(expman_experiment_name(get())); }

    /// The run's own table, metrics/<run_id>.csv.
    Table metrics() {
        expman_table* t = nullptr;
        detail::check(expman_experiment_metrics(get(), &t));
        return Table(t);
    }
    /// The named table metrics/<name>.csv (for example "progress"), created on the first row.
    Table table(const std::string& name) {
        expman_table* t = nullptr;
        detail::check(expman_experiment_table(get(), name.c_str(), &t));
        return Table(t);
    }

    /// Sets one field of the run's pending row.
    Experiment& set(detail::CStr name, const Value& value) {
        metrics().set(name, value);
        return *this;
    }
    /// Merges fields into the run's pending row: `upd_row({{"loss", 0.1}, {"acc", 0.9}})`.
    Experiment& upd_row(std::initializer_list<Field> fields) {
        metrics().upd_row(fields);
        return *this;
    }
    /// Merges fields from any range of (name, value) pairs.
    template <class Range>
    Experiment& upd_row(const Range& fields) {
        metrics().upd_row(fields);
        return *this;
    }
    /// Appends the pending row to metrics/<run_id>.csv and clears it.
    void save_row() { metrics().save_row(); }
    /// Sets the fields and saves the row.
    void save_row(std::initializer_list<Field> fields) { metrics().save_row(fields); }
    /// The hot-path helper for rows of doubles on the run's own table; see F64Row.
    F64Row f64_row(std::initializer_list<detail::CStr> names) { return metrics().f64_row(names); }
    F64Row f64_row(const std::vector<std::string>& names) { return metrics().f64_row(names); }

    /// Records the hyperparameter `name` (dots nest: "optimizer.lr") in config.json's "params"
    /// and in this run's own record in status.json: `exp.set_param("lr", 0.01)`. The value is
    /// anything Value takes: a double or float, any integer type (kept an integer), bool, or
    /// text (a string literal is text, never bool). A null value, a non-finite double and a
    /// bad name throw Error (InvalidValue, InvalidName) naming the parameter; nothing is
    /// written then.
    Experiment& set_param(detail::CStr name, const Value& value) {
        expman_experiment* exp = get();
        const char* n = name.get();
        switch (value.kind()) {
            case Value::Kind::Null:
                throw Error(Status::InvalidValue,
                            std::string("expman::Experiment::set_param: parameter ") +
                                (n != nullptr ? n : "(null)") +
                                " has no value (null); parameters are numbers, booleans or text");
            case Value::Kind::Bool:
                detail::check(expman_experiment_set_param_bool(exp, n, value.as_bool()));
                break;
            case Value::Kind::Int:
                detail::check(expman_experiment_set_param_i64(exp, n, value.as_int()));
                break;
            case Value::Kind::Float:
                detail::check(expman_experiment_set_param_f64(exp, n, value.get<double>()));
                break;
            case Value::Kind::Str:
                if (value.as_string().find('\0') != std::string::npos) {
                    // The C setter takes a NUL-terminated string: the rest would be lost.
                    throw Error(Status::InvalidValue,
                                std::string("expman::Experiment::set_param: parameter ") +
                                    (n != nullptr ? n : "(null)") +
                                    " holds a NUL character, which parameters cannot hold");
                }
                detail::check(expman_experiment_set_param_str(exp, n, value.as_string().c_str()));
                break;
        }
        return *this;
    }
    /// Records several hyperparameters: `set_params({{"lr", 0.01}, {"depth", 18}})`, one
    /// set_param() each, in order (one refused stops the rest; those before it are recorded).
    Experiment& set_params(std::initializer_list<Field> params) {
        for (const auto& p : params) set_param(p.name, p.value);
        return *this;
    }
    /// Records hyperparameters given as a JSON object, nested objects flattened with dots
    /// (`{"optimizer": {"lr": 0.01}}` records optimizer.lr), all or nothing: a bad name or
    /// value throws Error naming it and records none.
    Experiment& log_params_json(const std::string& json) {
        detail::check(expman_experiment_log_params_json(get(), json.c_str()));
        return *this;
    }
    /// The run's hyperparameters as a JSON object of flattened names to values, sorted by name
    /// (integers without a fraction, floats with one): config.json's, overridden by what this
    /// run recorded as its own.
    [[nodiscard]] std::string params_json() const {
        char* raw = nullptr;
        detail::check(expman_experiment_params_json(get(), &raw));
        std::unique_ptr<char, detail::StringDeleter> owned(raw);
        return std::string(owned.get());
    }

    /// Reads this run's metrics back.
    [[nodiscard]] Metrics load_metrics() { return load(nullptr); }
    /// Reads a named table (or another run's table, "run_0002") back.
    [[nodiscard]] Metrics load_table(const std::string& name) { return load(name.c_str()); }

    /// Durability of saved rows, for every table of this experiment.
    void set_sync(Sync mode, std::uint64_t interval_ms = 0) {
        detail::check(expman_experiment_set_sync(get(), static_cast<std::int32_t>(mode), interval_ms));
    }
    /// Marks the run Running in process `pid`.
    void set_running(std::uint32_t pid) {
        detail::check(expman_experiment_set_running(get(), pid));
        ended_ = false;
    }
    /// Marks the run Finished.
    void set_finished() {
        detail::check(expman_experiment_set_finished(get()));
        ended_ = true;
    }
    /// Marks the run Error with a message.
    void set_error(const std::string& message) {
        detail::check(expman_experiment_set_error(get(), message.c_str()));
        ended_ = true;
    }
    /// Appends a timestamped line to logs/experiment.log.
    void append_log(const std::string& message) {
        detail::check(expman_experiment_append_log(get(), message.c_str()));
    }
    /// Tees this process's stdout and stderr (fds 1 and 2: std::cout, printf, child processes)
    /// into logs/<run_id>.log while they still reach the terminal, so a run started by hand has
    /// its output in the log the UI shows. Stops with stop_capture(), the destructor, a later
    /// capture (one per process) or the process's exit; nothing printed before is lost. A no-op
    /// in a job launched by `EXP run`, whose output is in the log already. std::cout's buffer
    /// is flushed first, so what it holds stays out of the log.
    void capture_output() {
        std::cout.flush();
        std::cerr.flush();
        detail::check(expman_experiment_capture_output(get()));
    }
    /// Stops the capture of capture_output() once everything printed before (std::cout's
    /// buffer included) is in the log.
    void stop_capture() {
        std::cout.flush();
        std::cerr.flush();
        detail::check(expman_experiment_stop_capture(get()));
    }

    /// Whether this object started the run (create/open) rather than attached to it.
    bool owns_status() const noexcept { return owns_status_; }
    /// The C handle, still owned by this object.
    expman_experiment* raw() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with expman_experiment_free); the
    /// destructor then does nothing.
    expman_experiment* release() noexcept { return handle_.release(); }

private:
    Experiment(expman_experiment* raw, bool owns_status) noexcept
        : handle_(raw), owns_status_(owns_status), uncaught_(std::uncaught_exceptions()) {}

    expman_experiment* get() const {
        if (!handle_) {
            throw Error(Status::InvalidState,
                        "expman::Experiment: this object was moved from; use the object it "
                        "was moved to");
        }
        return handle_.get();
    }

    Metrics load(const char* table) {
        expman_metrics* raw = nullptr;
        detail::check(expman_experiment_load_metrics(get(), table, &raw));
        return Metrics::from_c(raw);
    }

    /// Ends a run this object started and still considers Running, then frees the handle.
    void close() noexcept {
        if (handle_ && owns_status_ && !ended_) {
            if (std::uncaught_exceptions() > uncaught_) {
                (void)expman_experiment_set_error(
                    handle_.get(),
                    "expman::Experiment destroyed while an exception was propagating (the C++ "
                    "program left the experiment's scope by an exception)");
            } else {
                (void)expman_experiment_set_finished(handle_.get());
            }
            ended_ = true;
        }
        if (handle_) {
            // Freeing stops an output capture: what the C++ streams hold goes in first.
            try {
                std::cout.flush();
                std::cerr.flush();
            } catch (...) {
            }
        }
        handle_.reset();
    }

    std::unique_ptr<expman_experiment, detail::ExperimentDeleter> handle_;
    bool owns_status_ = false;
    bool ended_ = false;
    int uncaught_ = 0;
};

}  // namespace expman

#endif  // EXPMAN_HPP
