//! Output capture: the process's stdout and stderr (file descriptors 1 and 2) teed into a run's
//! log, `logs/<run_id>.log`, while they still reach the terminal.
//!
//! A run started by `EXP run` already has its output in its log (the scheduler's supervisor
//! points the job's fds 1 and 2 there). A run started by hand (`python train.py`) gets the same
//! through [`Experiment::capture_output`](crate::Experiment::capture_output), which the Python
//! binding calls when it creates an experiment. It works on the descriptors, not on a language's
//! stream objects, so output from C extensions and child processes is captured too:
//!
//! 1. for each of fds 1 and 2, a copy of the original descriptor is kept and a pipe is put in its
//!    place (`dup2`); a descriptor that already is the run log (a job the scheduler launched) is
//!    left alone;
//! 2. one reader thread waits on both pipes and writes each chunk it reads to the original
//!    descriptor (the terminal) and to the log (opened in append mode, so it interleaves with
//!    other appenders by whole chunks);
//! 3. stopping puts the original descriptors back (only where the pipe is still in place: a
//!    test runner or another tool that redirected a descriptor since keeps its redirection),
//!    then wakes the reader, which drains what the pipes still hold and exits; the stop returns
//!    once everything written before it is in the log.
//!
//! The descriptors belong to the process, so one capture is active at a time: starting one
//! stops the previous (a script that runs several experiments one after another gets each
//! run's output in that run's log). A forked child inherits the pipes, so its output reaches
//! the parent's reader; it never stops the parent's capture.
//!
//! At exit: the C ABI registers an `atexit` hook that flushes C's stdio buffers and stops the
//! capture, so nothing written before `exit` is lost (Python's interpreter flushes its own
//! streams and prints an uncaught exception's traceback before that). A Rust program's capture
//! stops when its [`Experiment`](crate::Experiment) is dropped; `std::process::exit` skips
//! that, so call [`stop_capture`](crate::Experiment::stop_capture) first.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::fstat;
use rustix::io::Errno;

use crate::error::{Error, Result};

/// The capture running in this process, if any.
static ACTIVE: Mutex<Option<Active>> = Mutex::new(None);
/// Identifies captures, so a handle stops only its own.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long a stop keeps draining a pipe that a child process still writes into.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Which standard descriptor a stream replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    Out,
    Err,
}

impl Std {
    /// The identity (device, inode) of what the descriptor refers to now.
    fn identity(self) -> Option<(u64, u64)> {
        let stat = match self {
            Std::Out => fstat(std::io::stdout()),
            Std::Err => fstat(std::io::stderr()),
        };
        stat.ok().map(|s| identity(&s))
    }

    fn replace_with(self, fd: impl AsFd) -> rustix::io::Result<()> {
        match self {
            Std::Out => rustix::stdio::dup2_stdout(fd),
            Std::Err => rustix::stdio::dup2_stderr(fd),
        }
    }

    /// A close-on-exec copy of the descriptor as it is now.
    fn copy(self) -> rustix::io::Result<OwnedFd> {
        match self {
            Std::Out => rustix::io::fcntl_dupfd_cloexec(std::io::stdout(), 3),
            Std::Err => rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3),
        }
    }
}

/// What a descriptor refers to: (device, inode).
// The field types differ across platforms (i32 and u64 on macOS, both u64 on Linux).
#[allow(clippy::unnecessary_cast)]
fn identity(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// One replaced descriptor.
struct Redirect {
    which: Std,
    /// The descriptor as it was, put back when the capture stops.
    original: OwnedFd,
    /// The pipe that took its place, to tell whether it is still there.
    pipe: (u64, u64),
}

/// The capture in progress.
struct Active {
    id: u64,
    /// The process that started it: a forked child sees the parent's capture in its copy of
    /// this memory, but the reader thread exists only in the parent.
    pid: u32,
    log: PathBuf,
    redirects: Vec<Redirect>,
    /// Written to wake the reader for the stop.
    wake: OwnedFd,
    reader: JoinHandle<()>,
}

/// What the reader thread reads from and writes to.
struct Reader {
    /// Read ends of the pipes (non-blocking), each with the original descriptor its output
    /// goes back to.
    streams: Vec<(OwnedFd, OwnedFd)>,
    wake: OwnedFd,
    log: File,
}

/// Starts teeing fds 1 and 2 into `log` (created if missing, appended to). Stops the capture
/// already running in this process first. Returns the new capture's id, or `None` when both
/// descriptors already are that log (a job the scheduler launched): nothing to do.
pub(crate) fn start(log: &Path) -> Result<Option<u64>> {
    let mut active = lock();
    stop_locked(&mut active)?;
    let file = crate::store::open_log(log)?;
    let log_id = fstat(&file)
        .map(|s| identity(&s))
        .map_err(|e| Error::io("inspect", log, e.into()))?;
    // The errno says what failed; the action says what it was for.
    let sys = |e: Errno| Error::io("capture stdout and stderr into", log, e.into());

    let mut redirects = Vec::new();
    let mut streams = Vec::new();
    for which in [Std::Out, Std::Err] {
        match which.identity() {
            // Already the log: the scheduler's supervisor captures this descriptor.
            Some(id) if id == log_id => continue,
            // Closed: there is nothing to tee (and putting a pipe there would open it).
            None => continue,
            Some(_) => {}
        }
        let original = which.copy().map_err(sys)?;
        let terminal = rustix::io::fcntl_dupfd_cloexec(&original, 3).map_err(sys)?;
        let (read, write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(sys)?;
        // Only the read end: writers must block on a full pipe, never see EAGAIN.
        rustix::io::ioctl_fionbio(&read, true).map_err(sys)?;
        let pipe = fstat(&write).map(|s| identity(&s)).map_err(sys)?;
        redirects.push(Redirect {
            which,
            original,
            pipe,
        });
        streams.push((read, terminal, write));
    }
    if streams.is_empty() {
        return Ok(None);
    }
    let (wake_read, wake) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("create the wake-up pipe for", log, e.into()))?;
    // Nothing is redirected until everything that can fail has succeeded.
    for (redirect, (_, _, write)) in redirects.iter().zip(&streams) {
        if let Err(e) = redirect.which.replace_with(write) {
            restore(&redirects);
            return Err(sys(e));
        }
    }
    // Our own write ends close here: the pipes now live on fds 1 and 2 (and in children
    // started from now on), so the reader sees end-of-file once those are all gone.
    let reader = Reader {
        streams: streams
            .into_iter()
            .map(|(read, terminal, _write)| (read, terminal))
            .collect(),
        wake: wake_read,
        log: file,
    };
    let thread = std::thread::Builder::new()
        .name("expman-capture".into())
        .spawn(move || reader.run());
    let reader = match thread {
        Ok(thread) => thread,
        Err(e) => {
            restore(&redirects);
            return Err(Error::io("start the output capture thread for", log, e));
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    *active = Some(Active {
        id,
        pid: std::process::id(),
        log: log.to_path_buf(),
        redirects,
        wake,
        reader,
    });
    Ok(Some(id))
}

/// Stops capture `id` if it is still the active one (a later capture may have replaced it).
/// Returns once everything written to fds 1 and 2 before the call is in the log.
pub(crate) fn stop(id: u64) -> Result<()> {
    let mut active = lock();
    if active.as_ref().is_some_and(|a| a.id == id) {
        stop_locked(&mut active)?;
    }
    Ok(())
}

/// Stops whatever capture is active (the exit hook).
pub(crate) fn stop_any() -> Result<()> {
    stop_locked(&mut lock())
}

/// The log the active capture of this process writes to, if any.
pub(crate) fn active_log() -> Option<PathBuf> {
    lock()
        .as_ref()
        .filter(|a| a.pid == std::process::id())
        .map(|a| a.log.clone())
}

fn lock() -> std::sync::MutexGuard<'static, Option<Active>> {
    // A panic while holding it leaves a consistent Option: keep going.
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn stop_locked(active: &mut Option<Active>) -> Result<()> {
    let Some(capture) = active.take() else {
        return Ok(());
    };
    if capture.pid != std::process::id() {
        // Inherited through fork: the reader thread is the parent's. Leave the descriptors
        // as they are (the parent reads them) and forget the handles without closing them
        // twice or joining a thread this process does not have.
        std::mem::forget(capture);
        return Ok(());
    }
    // What Rust code printed and still buffers goes in before the pipes are taken away.
    let _ = std::io::stdout().flush();
    restore(&capture.redirects);
    let _ = rustix::io::write(&capture.wake, b"x");
    if capture.reader.join().is_err() {
        return Err(Error::invalid_state(format!(
            "the thread copying this process's output into {} panicked; the end of the \
             output may be missing from that log",
            capture.log.display()
        )));
    }
    Ok(())
}

/// Puts the original descriptors back where the pipes still are.
fn restore(redirects: &[Redirect]) {
    for redirect in redirects {
        if redirect.which.identity() == Some(redirect.pipe) {
            let _ = redirect.which.replace_with(&redirect.original);
        }
    }
}

impl Reader {
    fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut open: Vec<bool> = vec![true; self.streams.len()];
        while let Some(stopping) = self.copy_ready(&mut buf, &mut open, true) {
            if stopping {
                let writers_left = self.drain(&mut buf, &open);
                if writers_left.contains(&true) {
                    let _ = self.log.flush();
                    self.follow_detached(writers_left);
                    return;
                }
                break;
            }
            if !open.iter().any(|o| *o) {
                // Every writer is gone (the descriptors were redirected elsewhere since):
                // nothing more can arrive; wait for the stop only.
                let mut byte = [0u8; 1];
                let _ = rustix::io::read(&self.wake, &mut byte);
                break;
            }
        }
        let _ = self.log.flush();
    }

    /// Waits until an open pipe (or, with `watch_wake`, the wake-up pipe) is readable and
    /// copies what the readable pipes hold, marking those at end-of-file closed in `open`.
    /// Returns whether the wake-up came, `None` when waiting failed.
    fn copy_ready(&mut self, buf: &mut [u8], open: &mut [bool], watch_wake: bool) -> Option<bool> {
        let indices: Vec<usize> = (0..self.streams.len()).filter(|&i| open[i]).collect();
        let mut fds: Vec<PollFd<'_>> = indices
            .iter()
            .map(|&i| PollFd::new(&self.streams[i].0, PollFlags::IN))
            .collect();
        if watch_wake {
            fds.push(PollFd::new(&self.wake, PollFlags::IN));
        }
        loop {
            match poll(&mut fds, None) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(_) => return None,
            }
        }
        let woken = watch_wake && fds.last().is_some_and(|fd| !fd.revents().is_empty());
        let ready: Vec<bool> = fds[..indices.len()]
            .iter()
            .map(|fd| !fd.revents().is_empty())
            .collect();
        drop(fds);
        for (i, ready) in indices.into_iter().zip(ready) {
            if ready && !self.copy_available(i, buf) {
                open[i] = false;
            }
        }
        Some(woken)
    }

    /// Copies what pipe `i` holds now; false at end-of-file (or an error reading it).
    fn copy_available(&mut self, i: usize, buf: &mut [u8]) -> bool {
        loop {
            match rustix::io::read(&self.streams[i].0, &mut *buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let chunk = &buf[..n];
                    // The terminal may be gone (a closed pipe): the log still gets it.
                    let _ = write_all(&self.streams[i].1, chunk);
                    let _ = self.log.write_all(chunk);
                }
                Err(Errno::AGAIN) => return true,
                Err(Errno::INTR) => {}
                Err(_) => return false,
            }
        }
    }

    /// After the stop: what the pipes still hold (everything written before the descriptors
    /// were put back), bounded in time against a child that keeps writing. Returns, per
    /// stream, whether a writer still holds it (a subprocess started during the capture).
    fn drain(&mut self, buf: &mut [u8], open: &[bool]) -> Vec<bool> {
        let deadline = Instant::now() + DRAIN_LIMIT;
        let mut writers_left = vec![false; self.streams.len()];
        for i in (0..self.streams.len()).filter(|&i| open[i]) {
            writers_left[i] = true; // until end-of-file says otherwise
            while Instant::now() < deadline {
                match rustix::io::read(&self.streams[i].0, &mut *buf) {
                    Ok(0) => {
                        writers_left[i] = false;
                        break;
                    }
                    Err(Errno::AGAIN) => break,
                    Ok(n) => {
                        let _ = write_all(&self.streams[i].1, &buf[..n]);
                        let _ = self.log.write_all(&buf[..n]);
                    }
                    Err(Errno::INTR) => {}
                    Err(_) => {
                        writers_left[i] = false;
                        break;
                    }
                }
            }
        }
        writers_left
    }

    /// Pipes that subprocesses still write to when the capture stops: closing their read ends
    /// would kill those processes with a broken pipe (a notebook cell run again, a server the
    /// script started). A thread of their own keeps copying them to the terminal and the log
    /// until the last writer is gone; the stop does not wait for it.
    fn follow_detached(mut self, writers_left: Vec<bool>) {
        let streams: Vec<(OwnedFd, OwnedFd)> = std::mem::take(&mut self.streams)
            .into_iter()
            .zip(writers_left)
            .filter_map(|(stream, left)| left.then_some(stream))
            .collect();
        let mut rest = Reader { streams, ..self };
        let _ = std::thread::Builder::new()
            .name("expman-capture-rest".into())
            .spawn(move || rest.follow_to_end());
    }

    /// Copies the pipes until every one reaches end-of-file.
    fn follow_to_end(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut open = vec![true; self.streams.len()];
        while open.contains(&true) && self.copy_ready(&mut buf, &mut open, false).is_some() {}
        let _ = self.log.flush();
    }
}

/// `write_all` on a raw descriptor (the terminal copy), retrying short writes.
fn write_all(fd: &OwnedFd, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
