//! Opening the files of an experiment directory for reading, which anyone who can write there
//! may have replaced: only regular files are read (opening a FIFO blocks until a writer comes,
//! which froze the web UI's index and handlers for good), and small files only up to a bound
//! (a 1 GB `status.json` was read whole by every listing).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest `config.json` or `status.json` read: a run's record takes a few hundred bytes,
/// so this holds tens of thousands of runs.
pub(crate) const STATE_FILE_LIMIT: u64 = 16 << 20;

/// Opens `path` for reading if it is a regular file (symlinks followed). A FIFO, socket or
/// device is refused without blocking: `O_NONBLOCK` makes the open itself return at once, and
/// it changes nothing for the reads of a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file (a FIFO, socket or device)"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}; expman reads only regular files here"),
    ))
}

/// The bytes of the regular file at `path`, refused when it holds more than `limit` bytes.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it holds {len} bytes, more than the {limit} such a file can hold; it is not one expman wrote: restore or remove it"
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // A file that grows after the check is cut at the bound.
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_directory_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("status.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let err = open_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = read_bounded(dir.path(), 10).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn a_file_over_the_bound_is_refused_and_one_within_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        let err = read_bounded(&path, 9).unwrap_err();
        assert!(err.to_string().contains("10 bytes"), "{err}");
    }
}
