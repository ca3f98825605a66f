//! GPU selection for bindings (`gpu_ids="auto"`): the free GPUs with the most free memory.

use super::{c_slice_mut, expman_status, ffi_status};

/// Picks `count` GPUs with the most free memory (NVML, or the inventory in
/// EXPMAN_GPU_INVENTORY) and writes their indices, ascending, to `out` (room for `count`).
/// Fails with EXPMAN_ERR_INVALID_STATE when no GPU inventory is available (no driver, or a build
/// without the `gpu` feature) or fewer than `count` GPUs exist, and EXPMAN_ERR_CONFIG for a
/// malformed EXPMAN_GPU_INVENTORY file; the last error says which.
///
/// # Safety
/// `out` is NULL (with `count` 0) or points to `count` writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_gpu_pick(count: usize, out: *mut u32) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        let out = unsafe { c_slice_mut(out, count, "out") }?;
        out.copy_from_slice(&crate::gpu::pick_now(count)?);
        Ok(())
    }
}
