//! The column buffers of the C ABI (`expman_columns_*`), called as C calls them: types,
//! values, validity bytes, text (one value per cell and dictionary-encoded, with its
//! separator), every error through the status and the last error; and the Rust API behind
//! them on a table parsed in parallel parts, whose text stays as the file has it.

use std::ffi::{CStr, CString, c_void};
use std::path::Path;
use std::ptr;

use expman::FlatColumn;
use expman::ffi::{
    EXPMAN_ERR_ARGUMENT, EXPMAN_ERR_IO, EXPMAN_ERR_NULL, EXPMAN_OK, EXPMAN_TYPE_BOOL,
    EXPMAN_TYPE_FLOAT, EXPMAN_TYPE_INT, EXPMAN_TYPE_NULL, EXPMAN_TYPE_STR, expman_columns,
    expman_columns_free, expman_columns_n_columns, expman_columns_n_rows, expman_columns_name,
    expman_columns_read, expman_columns_text, expman_columns_type, expman_columns_valid,
    expman_columns_values, expman_last_error, expman_text,
};
use expman::metrics::read_columns;

fn last_error() -> String {
    // SAFETY: never NULL, valid until the next call on this thread.
    unsafe { CStr::from_ptr(expman_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn read(path: &Path) -> *mut expman_columns {
    let path = CString::new(path.to_str().unwrap()).unwrap();
    let mut out = ptr::null_mut();
    // SAFETY: a NUL-terminated path and a writable out-parameter.
    assert_eq!(
        unsafe { expman_columns_read(path.as_ptr(), &mut out) },
        EXPMAN_OK,
        "{}",
        last_error()
    );
    out
}

/// `n` values of `T` at `p`.
unsafe fn slice<'a, T>(p: *const T, n: usize) -> &'a [T] {
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(p, n) }
}

/// Each row's text (a dictionary's codes looked up), "-" for an empty cell of a dictionary.
fn text_cells(t: &expman_text, rows: usize) -> Vec<String> {
    let values = text_values(t);
    if t.codes.is_null() {
        return values;
    }
    // SAFETY: one code per row, as expman_columns_text described.
    unsafe { slice(t.codes, rows) }
        .iter()
        .map(|&k| usize::try_from(k).map_or("-".into(), |k| values[k].clone()))
        .collect()
}

fn text_values(t: &expman_text) -> Vec<String> {
    // SAFETY: the buffers expman_columns_text described.
    let (data, offsets) = unsafe { (slice(t.data, t.data_len), slice(t.offsets, t.n_values + 1)) };
    offsets
        .windows(2)
        .map(|w| String::from_utf8(data[w[0] as usize..w[1] as usize - 1].to_vec()).unwrap())
        .collect()
}

const TABLE: &str = "timestamp,run_id,step,loss,flag,note,code,empty\n\
    2026-01-01T00:00:00.000001,run_0001,1,0.5,true,\"a, b\",007,\n\
    2026-01-01T00:00:00.000002,run_0001,2,NaN,false,\"two\nlines\",1e5,\n\
    2026-01-01T00:00:00.000003,run_0001,3,,,,x,\n\
    2026-01-01T00:00:00.000004,run_0001,4,inf,TRUE,z,12,\n";

#[test]
fn columns_come_as_typed_buffers_with_validity_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run_0001.csv");
    std::fs::write(&path, TABLE).unwrap();
    let c = read(&path);
    // SAFETY: `c` is live until expman_columns_free below; every pointer read is borrowed
    // from it and read within the lengths the calls give.
    unsafe {
        assert_eq!(expman_columns_n_columns(c), 8);
        assert_eq!(expman_columns_n_rows(c), 4);
        assert_eq!(
            CStr::from_ptr(expman_columns_name(c, 2)).to_str(),
            Ok("step")
        );
        let types: Vec<i32> = (0..8).map(|i| expman_columns_type(c, i)).collect();
        assert_eq!(
            types,
            [
                EXPMAN_TYPE_STR,
                EXPMAN_TYPE_STR,
                EXPMAN_TYPE_INT,
                EXPMAN_TYPE_FLOAT,
                EXPMAN_TYPE_BOOL,
                EXPMAN_TYPE_STR,
                EXPMAN_TYPE_STR,
                EXPMAN_TYPE_NULL
            ]
        );

        let mut values: *const c_void = ptr::null();
        let mut valid: *const u8 = ptr::null();
        assert_eq!(expman_columns_values(c, 2, &mut values), EXPMAN_OK);
        assert_eq!(slice(values.cast::<i64>(), 4), [1, 2, 3, 4]);
        assert_eq!(expman_columns_valid(c, 2, &mut valid), EXPMAN_OK);
        assert!(valid.is_null(), "no empty cell");

        assert_eq!(expman_columns_values(c, 3, &mut values), EXPMAN_OK);
        let loss = slice(values.cast::<f64>(), 4);
        assert_eq!(loss[0], 0.5);
        assert!(loss[1].is_nan() && loss[2].is_nan() && loss[3] == f64::INFINITY);
        assert_eq!(expman_columns_valid(c, 3, &mut valid), EXPMAN_OK);
        assert_eq!(
            slice(valid, 4),
            [1, 1, 0, 1],
            "NaN is a value, the empty cell is not"
        );

        assert_eq!(expman_columns_values(c, 4, &mut values), EXPMAN_OK);
        assert_eq!(slice(values.cast::<u8>(), 4), [1, 0, 0, 1]);
        assert_eq!(expman_columns_valid(c, 4, &mut valid), EXPMAN_OK);
        assert_eq!(slice(valid, 4), [1, 1, 0, 1]);

        assert_eq!(expman_columns_values(c, 7, &mut values), EXPMAN_OK);
        assert!(values.is_null(), "a column of empty cells has no values");

        let mut t: expman_text = std::mem::zeroed();
        assert_eq!(expman_columns_text(c, 5, &mut t), EXPMAN_OK);
        assert_eq!(t.sep, 0x1f);
        assert_eq!(text_cells(&t, 4), ["a, b", "two\nlines", "-", "z"]);
        // Numbers in a text column keep the file's text.
        assert_eq!(expman_columns_text(c, 6, &mut t), EXPMAN_OK);
        assert_eq!(text_cells(&t, 4), ["007", "1e5", "x", "12"]);
        // A small table is all dictionaries; the values are the same either way.
        assert_eq!(expman_columns_text(c, 0, &mut t), EXPMAN_OK);
        assert_eq!(text_cells(&t, 4)[3], "2026-01-01T00:00:00.000004");
        // Text that repeats (or a small table's) is a dictionary.
        assert_eq!(expman_columns_text(c, 1, &mut t), EXPMAN_OK);
        assert_eq!(text_values(&t), ["run_0001"]);
        assert_eq!(slice(t.codes, 4), [0, 0, 0, 0]);

        // Errors: the wrong accessor, a column out of range, NULL pointers.
        assert_eq!(
            expman_columns_values(c, 5, &mut values),
            EXPMAN_ERR_ARGUMENT
        );
        assert!(last_error().contains("\"note\""), "{}", last_error());
        assert_eq!(expman_columns_text(c, 2, &mut t), EXPMAN_ERR_ARGUMENT);
        assert_eq!(expman_columns_valid(c, 8, &mut valid), EXPMAN_ERR_ARGUMENT);
        assert!(last_error().contains("column 8 is out of range"));
        assert_eq!(expman_columns_type(c, 8), -1);
        assert!(expman_columns_name(c, 8).is_null());
        assert_eq!(
            expman_columns_values(c, 2, ptr::null_mut()),
            EXPMAN_ERR_NULL
        );
        assert_eq!(
            expman_columns_values(ptr::null(), 2, &mut values),
            EXPMAN_ERR_NULL
        );
        assert_eq!(expman_columns_n_rows(ptr::null()), 0);
        expman_columns_free(c);
        expman_columns_free(ptr::null_mut());
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it_and_out_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = CString::new(dir.path().join("nope.csv").to_str().unwrap()).unwrap();
    let mut out = ptr::dangling_mut::<expman_columns>();
    // SAFETY: a NUL-terminated path and a writable out-parameter.
    assert_eq!(
        unsafe { expman_columns_read(path.as_ptr(), &mut out) },
        EXPMAN_ERR_IO
    );
    assert!(last_error().contains("nope.csv"), "{}", last_error());
    assert_eq!(out, ptr::dangling_mut());
    // SAFETY: NULL arguments are checked.
    assert_eq!(
        unsafe { expman_columns_read(ptr::null(), &mut out) },
        EXPMAN_ERR_NULL
    );
}

#[test]
fn a_large_table_is_joined_from_parts_with_its_text_as_written() {
    // More than 4 MiB: parsed in parts on two threads. `label` is numbers in the first part and
    // text in the last, so the first part is parsed again with it as text.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run_0001.csv");
    let n = 100_000;
    let mut text = String::from("timestamp,run_id,step,label,phase\n");
    for i in 0..n {
        let label = if i < n - 10 {
            format!("{i:06}")
        } else {
            format!("x{i}")
        };
        let phase = if i % 10 == 0 { "eval" } else { "train" };
        text.push_str(&format!(
            "2026-01-01T00:00:00.{i:06},run_0001,{i},{label},{phase}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 4 << 20);
    let table = read_columns(&path, 2).unwrap();
    assert_eq!(table.rows, n);
    let FlatColumn::Int { values, valid } = &table.columns[2] else {
        panic!("step: {:?}", table.columns[2].column_type());
    };
    assert!(valid.is_none());
    assert!(values.iter().enumerate().all(|(i, &v)| v == i as i64));
    let FlatColumn::Text(label) = &table.columns[3] else {
        panic!("label is text");
    };
    let at = |i: usize| {
        let (a, b) = (label.offsets[i] as usize, label.offsets[i + 1] as usize);
        std::str::from_utf8(&label.data[a..b - 1]).unwrap()
    };
    assert_eq!((at(42), at(n - 1)), ("000042", "x99999"));
    let FlatColumn::Text(phase) = &table.columns[4] else {
        panic!("phase is text");
    };
    let codes = phase
        .codes
        .as_ref()
        .expect("few distinct values: a dictionary");
    assert_eq!(codes.len(), n);
    assert_eq!((codes[0], codes[1], codes[10]), (0, 1, 0));
}
