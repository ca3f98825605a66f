//! The seam where tests make file operations fail: every write-side operation on a metrics
//! table or a state file asks `check` (or `write_limit`) first.
//!
//! Without the `fault-injection` feature both are inlined no-ops. With it, a test installs a
//! [`FaultInjector`] on its thread, which sees each operation in order and may fail it (ENOSPC,
//! EIO, ...) or shorten a write, the way redb's fuzzer backend does; the test then walks the
//! failure over every operation of a scenario and checks what survived.

use std::path::Path;

/// A file operation about to happen, as the fault injector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Opening or creating a file.
    Open,
    /// fstat or statx to find a file's size (and link count).
    Stat,
    /// Reading.
    Read,
    /// One `write(2)`.
    Write,
    /// Copying a table's rows into its widened replacement.
    Copy,
    /// Truncating (cutting a torn fragment or undoing a failed append).
    Truncate,
    /// fsync of a file or a directory.
    Sync,
    /// Renaming a file over another.
    Rename,
    /// Removing a file.
    Remove,
}

/// What an injector does to one operation.
#[derive(Debug)]
pub enum Fault {
    /// The operation fails with this error and does nothing.
    Fail(std::io::Error),
    /// A write puts at most this many bytes in (then the writer sees a short write).
    ShortWrite(usize),
}

/// Decides the fate of each file operation on the thread it is installed on.
pub trait FaultInjector {
    /// Called before `op` on `path`; `None` lets it run normally.
    fn before(&mut self, op: IoOp, path: &Path) -> Option<Fault>;
}

#[cfg(feature = "fault-injection")]
mod active {
    use super::{Fault, FaultInjector, IoOp};
    use std::cell::RefCell;
    use std::path::Path;

    thread_local! {
        static INJECTOR: RefCell<Option<Box<dyn FaultInjector>>> = const { RefCell::new(None) };
    }

    /// Uninstalls the injector when dropped.
    pub struct Installed(());

    impl Drop for Installed {
        fn drop(&mut self) {
            INJECTOR.with(|slot| slot.borrow_mut().take());
        }
    }

    /// Installs `injector` for the calling thread until the returned guard is dropped.
    pub fn install(injector: Box<dyn FaultInjector>) -> Installed {
        INJECTOR.with(|slot| *slot.borrow_mut() = Some(injector));
        Installed(())
    }

    pub(crate) fn ask(op: IoOp, path: &Path) -> Option<Fault> {
        INJECTOR.with(|slot| slot.borrow_mut().as_mut()?.before(op, path))
    }
}

#[cfg(feature = "fault-injection")]
pub use active::{Installed, install};

/// Fails when an injected fault says so; otherwise (and always without the feature) `Ok`.
#[inline(always)]
pub(crate) fn check(op: IoOp, path: &Path) -> std::io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(fault) = active::ask(op, path) {
        return match fault {
            Fault::Fail(e) => Err(e),
            Fault::ShortWrite(_) => Ok(()),
        };
    }
    let _ = (op, path);
    Ok(())
}

/// How many of `len` bytes the next write may put in: `len`, unless a fault shortens or fails it.
#[inline(always)]
pub(crate) fn write_limit(path: &Path, len: usize) -> std::io::Result<usize> {
    #[cfg(feature = "fault-injection")]
    if let Some(fault) = active::ask(IoOp::Write, path) {
        return match fault {
            Fault::Fail(e) => Err(e),
            Fault::ShortWrite(n) => Ok(n.min(len)),
        };
    }
    let _ = path;
    Ok(len)
}
