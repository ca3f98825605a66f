//! Single file operations of the append protocol, each through the fault seam.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::framing::{Scanner, Tail};
use crate::error::{Error, IoContext, Result};
use crate::store::faults::{self, IoOp};

/// Scans the bytes from `from` (a record boundary) to `size`: how they end, and their last
/// byte (`None` when there are none).
pub(super) fn scan_tail(
    file: &File,
    path: &Path,
    from: u64,
    size: u64,
) -> Result<(Tail, Option<u8>)> {
    let mut scanner = Scanner::new(from);
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut pos, mut last) = (from, None);
    while pos < size {
        let n = ((size - pos) as usize).min(chunk.len());
        faults::check(IoOp::Read, path).at("read the end of", path)?;
        file.read_exact_at(&mut chunk[..n], pos)
            .at("read the end of", path)?;
        scanner.feed(&chunk[..n]);
        last = Some(chunk[n - 1]);
        pos += n as u64;
    }
    Ok((scanner.tail(), last))
}

/// Tells the user that the table ends with a record expman cannot account for, which it keeps.
/// Best effort: a closed stderr is no reason to fail a save.
pub(super) fn warn_unterminated(file: &File, path: &Path, tail: Tail, swallows_rows: bool) {
    let (start, what) = match tail {
        Tail::Complete => return,
        Tail::OpenRecord(start) => (start, "has no line end"),
        Tail::OpenQuote(start) if swallows_rows => (
            start,
            "opens a quoted cell that never closes and holds the rows after it: a stray `\"`? \
             Readers will name this line until it is removed",
        ),
        Tail::OpenQuote(start) => (
            start,
            "opens a quoted cell that never closes (expman adds the closing `\"`)",
        ),
    };
    let line = line_number(file, start).map_or(String::new(), |n| format!(" line {n}"));
    let _ = writeln!(
        std::io::stderr(),
        "expman: warning: {}{line}: the last record {what}; it was not written by expman's \
         protocol (a hand edit, another program, or a writer killed on a network filesystem). \
         Every byte of it is kept; new rows start on the next line.",
        path.display()
    );
}

/// The 1-based line on which byte `offset` of `file` lies.
pub(super) fn line_number(file: &File, offset: u64) -> Option<u64> {
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut pos, mut lines) = (0u64, 1u64);
    while pos < offset {
        let n = ((offset - pos) as usize).min(chunk.len());
        file.read_exact_at(&mut chunk[..n], pos).ok()?;
        lines += memchr::memchr_iter(b'\n', &chunk[..n]).count() as u64;
        pos += n as u64;
    }
    Some(lines)
}

/// The size and link count of the open `file`, from one `statx` that asks for nothing else.
/// Asking for its times too (as `fstat` and std's `metadata` do) makes the kernel keep them
/// fine-grained (multigrain timestamps, Linux 6.13+): every later append then updates the inode
/// and journals it, which tripled the cost of `save_row` on ext4.
pub(super) fn size_and_links(file: &File, path: &Path) -> Result<(u64, u64)> {
    use rustix::fs::{AtFlags, StatxFlags, statx};
    faults::check(IoOp::Stat, path).at("stat", path)?;
    let stat = statx(
        file,
        c"",
        AtFlags::EMPTY_PATH,
        StatxFlags::SIZE | StatxFlags::NLINK,
    )
    .map_err(std::io::Error::from)
    .at("stat", path)?;
    Ok((stat.stx_size, u64::from(stat.stx_nlink)))
}

pub(super) fn truncate(file: &File, path: &Path, len: u64) -> Result<()> {
    faults::check(IoOp::Truncate, path).at("cut a torn last row from", path)?;
    file.set_len(len).at("cut a torn last row from", path)
}

/// Writes all of `bytes` to a file nobody else sees yet (a widening's temporary copy).
pub(super) fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        let limit = faults::write_limit(path, bytes.len() - written).at("write", path)?;
        match file.write(&bytes[written..written + limit]) {
            Ok(0) => {
                return Err(Error::io(
                    "write",
                    path,
                    std::io::ErrorKind::WriteZero.into(),
                ));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("write", path, e)),
        }
    }
    Ok(())
}
