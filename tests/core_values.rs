//! Cell values written by `save_row` and read back by `read_table`: exact round trips, and text
//! that pandas reads as the same values.
//!
//! The reader infers each column's type from all of its cells, as pandas does. So a column
//! holding only `"12"` reads back as the integer 12, and `"true"` as a bool: a string only
//! round-trips as a string in a column that also holds a non-numeric, non-boolean string. The
//! string tests below therefore write each hostile string beside an anchor row (`"anchor"`) in
//! the same column. An empty string reads back as null (pandas reads `""` as NaN too).

use std::path::Path;

use expman::{ColumnType, SyncPolicy, TableWriter, Value, read_table};
use proptest::prelude::*;

/// Writes one row per value into column `v` of a new table, and reads the table back.
fn round_trip(dir: &Path, values: &[Value]) -> (Vec<Value>, ColumnType, Vec<u8>) {
    let path = dir.join("t.csv");
    let _ = std::fs::remove_file(&path);
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    for value in values {
        writer.set("v", value.clone()).unwrap();
        writer.save_row().unwrap();
    }
    let table = read_table(&path).unwrap();
    assert_eq!(table.columns, ["timestamp", "run_id", "v"]);
    let column = table.column("v").unwrap().cloned().collect();
    (column, table.types[2], std::fs::read(&path).unwrap())
}

/// Floats compare by bits, so -0.0 and NaN are checked exactly too.
fn same_float(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Strings made of the characters that break naive CSV: separators, quotes, CR/LF, spaces at
/// either end, and non-ASCII text, mixed with anything else proptest comes up with.
fn hostile_string() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("\"\"".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("日本語".to_string()),
        Just("é🦀".to_string()),
        Just("NaN".to_string()),
        Just("true".to_string()),
        Just("1e5".to_string()),
        any::<String>(),
    ];
    // Not empty: an empty string reads back as null (see `nulls_and_look_alike_strings`).
    proptest::collection::vec(pieces, 1..8)
        .prop_map(|p| p.concat())
        .prop_filter("not empty", |s| !s.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn i64_round_trips(values in proptest::collection::vec(any::<i64>(), 1..5)) {
        let dir = tempfile::tempdir().unwrap();
        let (back, ty, _) = round_trip(dir.path(), &values.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>());
        prop_assert_eq!(ty, ColumnType::Int);
        prop_assert_eq!(back, values.into_iter().map(Value::Int).collect::<Vec<_>>());
    }

    /// Any finite f64 (including -0.0, subnormals, integral values like 3.0, and extremes)
    /// comes back with the same bits, and the column stays Float even when every value is
    /// integral.
    #[test]
    fn finite_f64_round_trips_exactly(values in proptest::collection::vec(
        prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
            Just(-0.0), Just(f64::MIN_POSITIVE), Just(5e-324), Just(f64::MAX), Just(f64::MIN),
        ],
        1..5,
    )) {
        let dir = tempfile::tempdir().unwrap();
        let (back, ty, _) = round_trip(dir.path(), &values.iter().map(|&f| Value::Float(f)).collect::<Vec<_>>());
        prop_assert_eq!(ty, ColumnType::Float);
        for (got, want) in back.iter().zip(&values) {
            prop_assert!(matches!(got, Value::Float(f) if same_float(*f, *want)), "{got:?} != {want:?}");
        }
    }

    #[test]
    fn bools_round_trip(values in proptest::collection::vec(any::<bool>(), 1..5)) {
        let dir = tempfile::tempdir().unwrap();
        let (back, ty, _) = round_trip(dir.path(), &values.iter().map(|&b| Value::Bool(b)).collect::<Vec<_>>());
        prop_assert_eq!(ty, ColumnType::Bool);
        prop_assert_eq!(back, values.into_iter().map(Value::Bool).collect::<Vec<_>>());
    }

    /// Hostile strings come back unchanged (in a string column, see the module comment), and
    /// every row keeps its place: none splits into two or swallows the next.
    #[test]
    fn hostile_strings_round_trip(values in proptest::collection::vec(hostile_string(), 1..5)) {
        let dir = tempfile::tempdir().unwrap();
        let mut cells = vec![Value::Str("anchor".into())];
        cells.extend(values.iter().cloned().map(Value::Str));
        cells.push(Value::Str("after".into()));
        let (back, ty, _) = round_trip(dir.path(), &cells);
        prop_assert_eq!(ty, ColumnType::Str);
        prop_assert_eq!(back, cells);
    }

    /// Field names are text too: commas, quotes, spaces and non-ASCII survive the header.
    #[test]
    fn hostile_field_names_round_trip(name in hostile_string().prop_filter(
        "names with control characters and reserved names are refused (see core_errors)",
        |n| !n.chars().any(char::is_control) && !["timestamp", "run_id", "first"].contains(&n.as_str()),
    )) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
        writer.set("first", 1).unwrap();
        writer.save_row().unwrap();
        writer.set(&name, 2).unwrap();
        writer.save_row().unwrap(); // widens the header with `name`
        let table = read_table(&path).unwrap();
        prop_assert_eq!(&table.columns, &["timestamp", "run_id", "first", name.as_str()]);
        prop_assert_eq!(table.column(&name).unwrap().cloned().collect::<Vec<_>>(), [Value::Null, Value::Int(2)]);
    }
}

/// NaN and the infinities read back as such, beside ordinary numbers in the same column.
#[test]
fn nan_and_infinities_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -0.0];
    let (back, ty, _) = round_trip(dir.path(), &values.map(Value::Float));
    assert_eq!(ty, ColumnType::Float);
    for (got, want) in back.iter().zip(values) {
        assert!(
            matches!(got, Value::Float(f) if same_float(*f, want)),
            "{got:?} != {want}"
        );
    }
}

/// Null cells are empty, a string that is empty reads back as null (as in pandas), and a
/// string that looks like a number stays a string beside real text.
#[test]
fn nulls_and_look_alike_strings() {
    let dir = tempfile::tempdir().unwrap();
    let cells = [
        Value::Str("anchor".into()),
        Value::Null,
        Value::Str(String::new()),
        Value::Str("12".into()),
        Value::Str("true".into()),
        Value::Str("NaN".into()),
    ];
    let (back, ty, _) = round_trip(dir.path(), &cells);
    assert_eq!(ty, ColumnType::Str);
    assert_eq!(
        back,
        [
            Value::Str("anchor".into()),
            Value::Null,
            Value::Null,
            Value::Str("12".into()),
            Value::Str("true".into()),
            Value::Str("NaN".into()),
        ]
    );
}

/// The bytes on disk are what pandas' default `read_csv` parses back to the same values,
/// checked without Python: its NaN spelling, its infinity spelling, its booleans, shortest
/// round-trip floats, RFC 4180 quoting, a plain header, and ISO-8601 timestamps.
#[test]
fn text_is_what_pandas_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    let row: [(&str, Value); 12] = [
        ("nan", Value::Float(f64::NAN)),
        ("inf", Value::Float(f64::INFINITY)),
        ("ninf", Value::Float(f64::NEG_INFINITY)),
        ("tenth", Value::Float(0.1)),
        ("three", Value::Float(3.0)),
        ("big", Value::Float(1e300)),
        ("imin", Value::Int(i64::MIN)),
        ("yes", Value::Bool(true)),
        ("no", Value::Bool(false)),
        ("null", Value::Null),
        ("quoted", Value::Str("a,\"b\"\nc".into())),
        ("plain", Value::Str(" spaced ".into())),
    ];
    writer.upd_row(row.clone()).unwrap();
    writer.save_row().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    assert_eq!(
        header,
        "timestamp,run_id,nan,inf,ninf,tenth,three,big,imin,yes,no,null,quoted,plain"
    );
    let (timestamp, rest) = body.split_once(',').unwrap();
    // 2025-09-26T14:30:15 like the seed's example, optionally with fractional seconds.
    let (seconds, fraction) = timestamp.split_at(19.min(timestamp.len()));
    let shape: String = seconds
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-ddTdd:dd:dd", "{timestamp}");
    assert!(
        fraction.is_empty()
            || fraction
                .strip_prefix('.')
                .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())),
        "{timestamp}"
    );
    assert_eq!(
        rest,
        "run_0001,NaN,inf,-inf,0.1,3.0,1e300,-9223372036854775808,true,false,,\"a,\"\"b\"\"\nc\", spaced \n"
    );
}
