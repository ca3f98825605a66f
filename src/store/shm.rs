//! A cross-process lock and generation counter in a small memory-mapped file.
//!
//! Why not flock for every row: on these machines a flock/unlock pair costs about 1 µs and an
//! fstat 0.5 µs, more than the `write(2)` of the row itself, and the goal is a row in at most
//! 1.5× the bare write. Here an uncontended lock is one compare-and-swap and one store in shared
//! memory, and "was the table replaced?" is one load of the generation counter.
//!
//! The lock word holds the owner's pid and the low 32 bits of its start time, so a waiter can
//! tell a dead owner (SIGKILL in the middle of a row) from a slow one, even after pid reuse, and
//! take the lock over; the new owner is told so and repairs the table's tail.
//!
//! Shared memory is only coherent on one machine, so this is used on local filesystems; on
//! network filesystems (NFS, Lustre, GPFS, CIFS, Ceph, FUSE, ...) writers fall back to flock
//! (see [`local_filesystem`]). This is the one module outside `ffi` that needs `unsafe`: every
//! use is an mmap of a file we created, or an atomic inside that mapping.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::process::ProcessId;
use crate::error::{Error, IoContext, Result};

const MAGIC: u64 = u64::from_le_bytes(*b"EXPMLCK1");
const MAP_LEN: usize = 4096;

/// The layout of the mapped page. All fields start as zero: unlocked, generation 0, nothing
/// known about the table (so a lock file of an older expman, which had only the first three
/// fields, reads as "nothing known").
#[repr(C)]
struct Control {
    magic: AtomicU64,
    owner: AtomicU64,
    generation: AtomicU64,
    /// The inode of the table file that the next three fields describe (0: none).
    inode: AtomicU64,
    /// Where the last acknowledged append to that file ended.
    committed_end: AtomicU64,
    /// Where the append in flight (or the last one) started.
    inflight_start: AtomicU64,
    /// Its length; 0 once it is committed.
    inflight_len: AtomicU64,
    /// Its first bytes (up to [`PREFIX_MAX`]), eight to a word in little-endian order: what a
    /// fragment must match before it is cut as ours.
    inflight_prefix: [AtomicU64; PREFIX_WORDS],
}

/// How many of an append's first bytes are recorded to recognise a fragment of it: a row
/// starts with its microsecond timestamp and run id, so 64 bytes tell one append from any
/// other bytes, at the cost of eight stores per row.
pub(crate) const PREFIX_MAX: usize = PREFIX_WORDS * 8;
const PREFIX_WORDS: usize = 8;
const _: () = assert!(std::mem::size_of::<Control>() <= MAP_LEN);

/// Where the table record (inode, committed end, append in flight) starts in a lock file.
pub(crate) const MARK_OFFSET: u64 = 24;

// The flock-mode record (`store::mark`) reads and writes these fields at this offset.
const _: () = assert!(std::mem::offset_of!(Control, inode) == MARK_OFFSET as usize);

/// What the lock holders recorded about the table file, read under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableMark {
    /// The table file's inode (0: nothing recorded).
    pub(crate) inode: u64,
    /// End of the last acknowledged append.
    pub(crate) committed_end: u64,
    /// Start and length of an append that began and was never committed (length 0: none).
    pub(crate) inflight: (u64, u64),
}

impl TableMark {
    /// Whether `size` bytes of file `inode` end exactly where the last acknowledged append did.
    pub(crate) fn ends_at(&self, inode: u64, size: u64) -> bool {
        self.inode != 0 && self.inode == inode && self.committed_end == size
    }

    /// The bytes from the committed end to `size`, when they are provably part of an append
    /// that an expman writer began there and never acknowledged: `Some(true)` when that append
    /// is in whole (`size` is its end), `Some(false)` when it is a torn fragment of it.
    pub(crate) fn unacknowledged(&self, inode: u64, size: u64) -> Option<bool> {
        let (start, len) = self.inflight;
        let provable = self.inode != 0
            && self.inode == inode
            && len > 0
            && start == self.committed_end
            && size > start
            && size <= start + len;
        provable.then_some(size == start + len)
    }
}

/// A lock shared by every process that maps the same file.
pub(crate) struct SharedLock {
    control: *const Control,
    /// Our owner token, computed once: reading /proc for it on every row would cost more
    /// than the row.
    token: u64,
    _file: File,
}

// SAFETY: the mapping is shared memory accessed only through atomics; the pointer stays valid
// until Drop unmaps it.
unsafe impl Send for SharedLock {}
// SAFETY: as for Send: every access through `&SharedLock` is an atomic operation.
unsafe impl Sync for SharedLock {}

/// Proof that the lock is held; released on drop.
pub(crate) struct SharedGuard<'a> {
    lock: &'a SharedLock,
    token: u64,
    /// The previous owner died holding the lock: its last write may be torn.
    pub(crate) took_over: bool,
}

impl SharedLock {
    /// Opens (creating if needed) the lock file at `path` and maps it.
    pub(crate) fn open(path: &Path) -> Result<SharedLock> {
        let file = super::lock::open_lock_file(path)?;
        // The page must have real blocks before it is mapped: a sparse page on a full disk
        // would be allocated by the first store into the mapping, and the kernel answers a
        // failed allocation there with SIGBUS, killing the training process. posix_fallocate
        // allocates zeros (the unlocked state) and never changes bytes already there, so two
        // processes doing it at once lose nothing; on a full disk it fails with ENOSPC here.
        let len = file.metadata().at("stat", path)?.len();
        if len < MAP_LEN as u64 {
            // SAFETY: a valid open descriptor; the range is within what the call accepts.
            let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, MAP_LEN as libc::off_t) };
            if rc != 0 {
                return Err(Error::io(
                    "allocate the lock file (is the disk full?)",
                    path,
                    std::io::Error::from_raw_os_error(rc),
                ));
            }
        }
        // SAFETY: a shared read-write mapping of a regular file of at least MAP_LEN bytes that we
        // keep open; the result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::io("map", path, std::io::Error::last_os_error()));
        }
        let me = ProcessId::current();
        let lock = SharedLock {
            control: ptr.cast::<Control>(),
            token: token(me.pid, me.start_time.unwrap_or(0)),
            _file: file,
        };
        let magic = lock.control().magic.load(Ordering::Acquire);
        if magic == 0 {
            let _ = lock.control().magic.compare_exchange(
                0,
                MAGIC,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        } else if magic != MAGIC {
            return Err(Error::corrupt(
                path,
                None,
                "not an expman lock file; delete it while no process writes this table",
            ));
        }
        Ok(lock)
    }

    fn control(&self) -> &Control {
        // SAFETY: `control` points into a live MAP_LEN-byte mapping, page-aligned, and Control
        // is AtomicU64s only (at most MAP_LEN bytes, asserted above), valid for any bit pattern.
        unsafe { &*self.control }
    }

    /// The table's generation: bumped each time the table file is replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.control().generation.load(Ordering::Acquire)
    }

    /// Records that the table file was replaced. Call while holding the lock.
    pub(crate) fn bump_generation(&self) {
        self.control().generation.fetch_add(1, Ordering::AcqRel);
    }

    /// What the lock holders recorded about the table file. Call while holding the lock.
    pub(crate) fn mark(&self) -> TableMark {
        let c = self.control();
        TableMark {
            inode: c.inode.load(Ordering::Acquire),
            committed_end: c.committed_end.load(Ordering::Acquire),
            inflight: (
                c.inflight_start.load(Ordering::Acquire),
                c.inflight_len.load(Ordering::Acquire),
            ),
        }
    }

    /// Records that an append of `bytes` starts at `start` (the committed end), so that whoever
    /// takes the lock over from us can prove a fragment of it ours: its offset, its length and
    /// its first bytes. Call while holding the lock.
    pub(crate) fn begin_append(&self, start: u64, bytes: &[u8]) {
        let c = self.control();
        // Length first: until the start matches the committed end, the record proves nothing.
        c.inflight_len.store(bytes.len() as u64, Ordering::Release);
        let prefix = &bytes[..bytes.len().min(PREFIX_MAX)];
        for (word, chunk) in c.inflight_prefix.iter().zip(prefix.chunks(8)) {
            let mut le = [0u8; 8];
            le[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(le), Ordering::Relaxed);
        }
        c.inflight_start.store(start, Ordering::Release);
    }

    /// The first bytes of the append in flight (see [`begin_append`](Self::begin_append)).
    /// Call while holding the lock.
    pub(crate) fn inflight_prefix(&self) -> Vec<u8> {
        let c = self.control();
        let len = (c.inflight_len.load(Ordering::Acquire) as usize).min(PREFIX_MAX);
        let mut bytes = Vec::with_capacity(len + 8);
        for word in &c.inflight_prefix[..len.div_ceil(8)] {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    /// Records that file `inode` now ends, acknowledged, at `end`. Call while holding the lock.
    pub(crate) fn commit(&self, inode: u64, end: u64) {
        let c = self.control();
        c.inode.store(inode, Ordering::Release);
        c.committed_end.store(end, Ordering::Release);
        c.inflight_len.store(0, Ordering::Release);
    }

    /// Blocks until the lock is held.
    pub(crate) fn lock(&self) -> SharedGuard<'_> {
        let token = self.token;
        let owner = &self.control().owner;
        let mut spins = 0u32;
        let mut last_check = Instant::now();
        loop {
            let current = owner.load(Ordering::Relaxed);
            if current == 0 {
                if owner
                    .compare_exchange_weak(0, token, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return SharedGuard {
                        lock: self,
                        token,
                        took_over: false,
                    };
                }
                continue;
            }
            // Held: spin briefly, then yield, then sleep; every 10 ms check the owner is alive.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if spins < 256 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            if last_check.elapsed() >= Duration::from_millis(10) {
                last_check = Instant::now();
                if !owner_alive(current)
                    && owner
                        .compare_exchange(current, token, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return SharedGuard {
                        lock: self,
                        token,
                        took_over: true,
                    };
                }
            }
        }
    }
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.control().owner.compare_exchange(
            self.token,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in `open`; no reference into it outlives self
        // (guards borrow self).
        unsafe {
            libc::munmap(self.control as *mut libc::c_void, MAP_LEN);
        }
    }
}

fn token(pid: u32, start_time: u64) -> u64 {
    (u64::from(pid) << 32) | (start_time & 0xffff_ffff)
}

fn owner_alive(token: u64) -> bool {
    let pid = (token >> 32) as u32;
    // A zombie is dead: it holds no lock and will write nothing more, and a parent that logs
    // to the same table as its killed worker must not wait for itself to reap it.
    match super::process::state_and_start(pid) {
        None => !cfg!(target_os = "linux") && ProcessId::of(pid).is_some(),
        Some((state, start)) => state != 'Z' && (start & 0xffff_ffff) == (token & 0xffff_ffff),
    }
}

/// Whether `dir` is on a local filesystem, where shared memory is coherent between all writers.
/// `EXPMAN_LOCK=flock` or `EXPMAN_LOCK=shm` overrides the detection.
pub(crate) fn local_filesystem(dir: &Path) -> bool {
    match std::env::var("EXPMAN_LOCK").as_deref() {
        Ok("flock") => return false,
        Ok("shm") => return true,
        _ => {}
    }
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a NUL-terminated path and a pointer to writable storage for one statfs.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)] // f_type is not i64 on every target
    // SAFETY: statfs returned 0, so it filled the struct.
    let kind = unsafe { stat.assume_init() }.f_type as i64;
    const NETWORK: [i64; 12] = [
        0x6969,                 // NFS
        0x517B,                 // SMB
        0xFF53_4D42_u32 as i64, // CIFS
        0xFE53_4D42_u32 as i64, // SMB2
        0x0BD0_0BD0,            // Lustre
        0x4750_4653,            // GPFS
        0x00C3_6400,            // Ceph
        0x6573_5546,            // FUSE (sshfs, s3fs, ...)
        0x5346_414F,            // AFS
        0x1983_0326,            // BeeGFS
        0x0102_1997,            // 9P
        0x6B41_4653,            // kAFS
    ];
    !NETWORK.contains(&kind)
}
