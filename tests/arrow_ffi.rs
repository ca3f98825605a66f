//! The Arrow C stream of the C ABI, imported back with arrow-rs's own C stream reader: the
//! same batches as the Rust API, errors through the status and last error, and every byte
//! released (a counting global allocator sees the process return to where it was).
//!
//! One test function: the allocator counts all threads, so nothing else may run beside it.
#![cfg(feature = "arrow")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{CStr, CString, c_void};
use std::sync::atomic::{AtomicIsize, Ordering};

use expman::arrow::arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use expman::arrow::arrow_array::{RecordBatch, RecordBatchReader};
use expman::arrow::{self, Selection};
use expman::ffi::{
    EXPMAN_ERR_CONFIG, EXPMAN_ERR_IO, EXPMAN_ERR_NULL, EXPMAN_OK, expman_arrow_read_dir,
    expman_arrow_read_table, expman_last_error,
};
use expman::{Experiment, Value};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, counting the bytes held.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn last_error() -> String {
    // SAFETY: never NULL, valid until the next call on this thread.
    unsafe { CStr::from_ptr(expman_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn c(path: &std::path::Path) -> CString {
    CString::new(path.to_str().unwrap()).unwrap()
}

/// Imports a stream the C ABI filled and reads all of it.
fn import(stream: &mut FFI_ArrowArrayStream) -> Vec<RecordBatch> {
    // SAFETY: a stream expman just exported; from_raw moves it out (release set to NULL).
    let reader = unsafe { RecordBatchStreamReader::from_raw(stream) }.unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert!(batches.iter().all(|b| b.schema() == schema));
    batches
}

#[test]
fn c_streams_match_the_rust_api_fail_cleanly_and_release_everything() {
    let base = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 0..3i64 {
        let mut exp = Experiment::builder(format!("e{i}"), base.path())
            .tags(["t"])
            .create()
            .unwrap();
        for step in 0..20_000i64 {
            exp.upd_row([
                ("step", Value::Int(step)),
                ("loss", Value::Float(1.0 / (step + 1) as f64)),
                (
                    "note",
                    Value::from(if step % 7 == 0 { "a,b\nc" } else { "x" }),
                ),
            ])
            .unwrap();
            exp.save_row().unwrap();
        }
        exp.set_finished().unwrap();
        paths.push(exp.layout().table_path("run_0001"));
    }
    let table_path = c(&paths[0]);
    let base_c = c(base.path());

    // The same batches as the Rust API.
    let mut stream = FFI_ArrowArrayStream::empty();
    let status =
        unsafe { expman_arrow_read_table(table_path.as_ptr(), (&raw mut stream).cast::<c_void>()) };
    assert_eq!(status, EXPMAN_OK, "{}", last_error());
    let imported = import(&mut stream);
    let direct = arrow::read_table_chunks(&paths[0], 0).unwrap();
    assert_eq!(imported, direct.batches());

    let finished = CString::new("finished").unwrap();
    let tag = CString::new("t").unwrap();
    let glob = CString::new("e*").unwrap();
    let mut stream = FFI_ArrowArrayStream::empty();
    let status = unsafe {
        expman_arrow_read_dir(
            base_c.as_ptr(),
            glob.as_ptr(),
            finished.as_ptr(),
            tag.as_ptr(),
            (&raw mut stream).cast::<c_void>(),
        )
    };
    assert_eq!(status, EXPMAN_OK, "{}", last_error());
    let imported = import(&mut stream);
    let direct = arrow::read_dir(base.path(), &Selection::new()).unwrap();
    assert_eq!(imported, direct.batches());
    assert_eq!(
        imported.iter().map(RecordBatch::num_rows).sum::<usize>(),
        60_000
    );

    // Failures: a status, a message, and the stream left untouched.
    let mut stream = FFI_ArrowArrayStream::empty();
    let out = (&raw mut stream).cast::<c_void>();
    let missing = CString::new("/nonexistent/run_0001.csv").unwrap();
    assert_eq!(
        unsafe { expman_arrow_read_table(missing.as_ptr(), out) },
        EXPMAN_ERR_IO
    );
    assert!(
        last_error().starts_with("expman_arrow_read_table: "),
        "{}",
        last_error()
    );
    assert!(stream.release().is_none());
    assert_eq!(
        unsafe { expman_arrow_read_table(std::ptr::null(), out) },
        EXPMAN_ERR_NULL
    );
    assert_eq!(
        unsafe { expman_arrow_read_table(table_path.as_ptr(), std::ptr::null_mut()) },
        EXPMAN_ERR_NULL
    );
    let done = CString::new("done").unwrap();
    let status = unsafe {
        expman_arrow_read_dir(
            base_c.as_ptr(),
            std::ptr::null(),
            done.as_ptr(),
            std::ptr::null(),
            out,
        )
    };
    assert_eq!(status, EXPMAN_ERR_CONFIG);
    assert!(last_error().contains("Finished"), "{}", last_error());
    assert!(stream.release().is_none());

    // Nothing is kept: export, import, drop, many times over, and the heap is where it was
    // (a stream never imported is released through its own callback, as C would).
    let cycle = || {
        let mut stream = FFI_ArrowArrayStream::empty();
        let status = unsafe {
            expman_arrow_read_dir(
                base_c.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                (&raw mut stream).cast::<c_void>(),
            )
        };
        assert_eq!(status, EXPMAN_OK);
        drop(import(&mut stream));
        let mut stream = FFI_ArrowArrayStream::empty();
        let status = unsafe {
            expman_arrow_read_table(table_path.as_ptr(), (&raw mut stream).cast::<c_void>())
        };
        assert_eq!(status, EXPMAN_OK);
        let release = stream
            .release()
            .expect("an exported stream has a release callback");
        // SAFETY: the stream is ours and released exactly once, as the C interface says.
        unsafe { release(&raw mut stream) };
        assert!(
            stream.release().is_none(),
            "release marks the stream released"
        );
    };
    cycle(); // warm up: thread-locals, the last-error slot, lazily made statics
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..5 {
        cycle();
    }
    let after = LIVE.load(Ordering::SeqCst);
    assert!(
        (after - before).abs() < 64 << 10,
        "{} bytes still allocated after 5 export/import/release cycles",
        after - before
    );
}
