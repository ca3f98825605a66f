//! Listing experiments for bindings: a thin translation over [`crate::catalog::list`].

use std::ffi::c_char;

use super::{c_opt_str, c_out, c_path, expman_status, ffi_status, to_c_string};

/// Lists the experiments under `base_dir` that the query `where` matches (every one when
/// `where` is NULL or empty), sorted by `sort`: sort keys `[-]FIELD` separated by commas, the
/// first deciding (`"-metrics.val_acc.max,name"`; by directory name when NULL or empty).
/// Stores in `*out_json` a JSON array (UTF-8, NUL-terminated) with one object per experiment:
/// `id`, `name`, `status`, `error`, `tags`, `description`, `command`, `host`, `created_at`,
/// `runs`, `run_id`, `params` (effective parameters of the latest run) and `metrics` (per
/// column `last`, `min`, `max`, `count`, `min_step`, `max_step` of the latest run; non-finite
/// numbers as the strings "NaN", "inf", "-inf"). A query or sort key that does not parse, or
/// names a parameter or metric no experiment has, fails with EXPMAN_ERR_CONFIG and a last
/// error showing the spot; a missing `base_dir` with EXPMAN_ERR_NOT_FOUND. The caller owns
/// `*out_json` and releases it with expman_string_free(); it is written only on success.
/// Thread-safe.
///
/// # Safety
/// `base_dir` is NULL or a NUL-terminated path; `where` and `sort` are NULL or NUL-terminated
/// UTF-8; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_list_experiments_json(
    base_dir: *const c_char,
    r#where: *const c_char,
    sort: *const c_char,
    out_json: *mut *mut c_char,
) -> expman_status {
    ffi_status! {
        let out = c_out(out_json, "out_json")?;
        // SAFETY: the caller's promise above.
        let base = unsafe { c_path(base_dir, "base_dir") }?;
        // SAFETY: as above.
        let query = unsafe { c_opt_str(r#where, "where") }?;
        // SAFETY: as above.
        let sort = unsafe { c_opt_str(sort, "sort") }?.unwrap_or("");
        let keys: Vec<&str> = sort.split(',').filter(|k| !k.trim().is_empty()).collect();
        let records = crate::catalog::list(base, query, &keys)?;
        let json = serde_json::to_string(&records).map_err(|e| {
            crate::Error::invalid_state(format!("cannot encode the listing: {e}"))
        })?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(to_c_string(json.as_bytes()).into_raw()) };
        Ok(())
    }
}
