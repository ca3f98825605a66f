//! Reading a process tree and the host's memory from `/proc`, with no dependency beyond std.
//!
//! Two files per process (`stat`, `io`) plus one `children` file per thread, each read into a
//! reused buffer: a sample of a tree of K processes is a few system calls per process.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Totals over the processes of one tree at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TreeTotals {
    /// Processes in the tree (the root included).
    pub processes: u32,
    /// Threads over all of them.
    pub threads: u64,
    /// CPU time in clock ticks: each process's own (`utime + stime`) plus that of its
    /// children it has waited for (`cutime + cstime`), so a child's time stays in the total
    /// after it ends (it moves to its parent's `cutime`), never counted twice.
    pub cpu_ticks: u64,
    /// Resident pages summed over the processes (pages shared between them count once per
    /// process, as `ps` and `top` count them).
    pub rss_pages: u64,
    /// Bytes the tree made the storage layer read and write (`/proc/<pid>/io` `read_bytes`,
    /// `write_bytes`; a waited-for child's count is in its parent's). `None` when some
    /// process's `io` file is unreadable (another user's, or a kernel without task I/O
    /// accounting): a partial sum would look like a drop.
    pub io: Option<(u64, u64)>,
}

/// Reads `/proc` for one process tree; holds the buffers between samples.
pub(crate) struct ProcReader {
    buf: Vec<u8>,
    path: String,
    pids: Vec<u32>,
    /// Whether `/proc/<pid>/task/<tid>/children` exists (Linux >= 3.5 with
    /// CONFIG_PROC_CHILDREN, which every mainstream distribution enables); otherwise the tree
    /// is found by reading every process's parent.
    children_files: bool,
}

impl ProcReader {
    pub(crate) fn new() -> ProcReader {
        let me = std::process::id();
        ProcReader {
            buf: Vec::with_capacity(4096),
            path: String::with_capacity(64),
            pids: Vec::new(),
            children_files: Path::new(&format!("/proc/{me}/task/{me}/children")).exists(),
        }
    }

    /// The totals of `root` and all its descendants, or `None` when `root` no longer exists
    /// or has ended (a zombie not yet waited for: the run's process is done, and a row of it
    /// would show no memory). Processes that end while they are being read are left out.
    pub(crate) fn tree(&mut self, root: u32) -> Option<TreeTotals> {
        let mut pids = std::mem::take(&mut self.pids);
        pids.clear();
        pids.push(root);
        if self.children_files {
            self.descendants_by_children(&mut pids);
        } else {
            self.descendants_by_scan(&mut pids);
        }
        let mut totals = TreeTotals {
            io: Some((0, 0)),
            ..TreeTotals::default()
        };
        for (i, &pid) in pids.iter().enumerate() {
            let stat = match self.stat(pid) {
                Some(stat) if i > 0 || !stat.ended => stat,
                _ if i == 0 => {
                    self.pids = pids;
                    return None;
                }
                _ => continue, // ended in between
            };
            totals.processes += 1;
            totals.threads += stat.threads;
            totals.cpu_ticks += stat.cpu_ticks;
            totals.rss_pages += stat.rss_pages;
            totals.io = match (totals.io, self.io(pid)) {
                (Some((r, w)), Some((dr, dw))) => Some((r + dr, w + dw)),
                _ => None,
            };
        }
        self.pids = pids;
        Some(totals)
    }

    /// Appends every descendant of the pids already in `pids`, reading each thread's
    /// `children` file (a child belongs to the thread that forked it).
    fn descendants_by_children(&mut self, pids: &mut Vec<u32>) {
        let mut next = 0;
        while next < pids.len() {
            let pid = pids[next];
            next += 1;
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let name = task.file_name();
                let Some(tid) = name.to_str() else { continue };
                self.path.clear();
                self.path.push_str("/proc/");
                push_u32(&mut self.path, pid);
                self.path.push_str("/task/");
                self.path.push_str(tid);
                self.path.push_str("/children");
                if read_into(&self.path, &mut self.buf).is_err() {
                    continue;
                }
                for child in self.buf.split(|b| b.is_ascii_whitespace()) {
                    if let Some(child) = parse_u64(child)
                        && let Ok(child) = u32::try_from(child)
                        && !pids.contains(&child)
                    {
                        pids.push(child);
                    }
                }
            }
        }
    }

    /// Appends every descendant of `pids[0]` by reading the parent of every process on the
    /// host (the fallback without `children` files).
    fn descendants_by_scan(&mut self, pids: &mut Vec<u32>) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let mut parents: Vec<(u32, u32)> = Vec::new();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(stat) = self.stat(pid) {
                parents.push((pid, stat.ppid));
            }
        }
        let mut next = 0;
        while next < pids.len() {
            let parent = pids[next];
            next += 1;
            for &(pid, ppid) in &parents {
                if ppid == parent && !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }

    /// The fields of `/proc/<pid>/stat` the sampler uses.
    fn stat(&mut self, pid: u32) -> Option<Stat> {
        self.path.clear();
        self.path.push_str("/proc/");
        push_u32(&mut self.path, pid);
        self.path.push_str("/stat");
        read_into(&self.path, &mut self.buf).ok()?;
        parse_stat(&self.buf)
    }

    /// `read_bytes` and `write_bytes` of `/proc/<pid>/io`.
    fn io(&mut self, pid: u32) -> Option<(u64, u64)> {
        self.path.clear();
        self.path.push_str("/proc/");
        push_u32(&mut self.path, pid);
        self.path.push_str("/io");
        read_into(&self.path, &mut self.buf).ok()?;
        let text = &self.buf[..];
        Some((field(text, b"read_bytes:")?, field(text, b"write_bytes:")?))
    }

    /// `MemAvailable` of `/proc/meminfo`, in bytes (`None` on kernels before 3.14).
    pub(crate) fn mem_available(&mut self) -> Option<u64> {
        read_into("/proc/meminfo", &mut self.buf).ok()?;
        field(&self.buf, b"MemAvailable:").map(|kib| kib * 1024)
    }
}

/// What the sampler takes from `/proc/<pid>/stat`.
#[derive(Debug, PartialEq)]
pub(crate) struct Stat {
    /// State `Z` (zombie) or `X` (dead): the process has exited.
    pub ended: bool,
    pub ppid: u32,
    pub cpu_ticks: u64,
    pub threads: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = memchr::memrchr(b')', text)?;
    // After ")": field 3 (state) is index 0, so field N is index N - 3.
    let mut fields = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = fields.next()?; // field 3
    let mut nth = |skip: usize| -> Option<u64> { parse_u64(fields.nth(skip)?) };
    let ppid = nth(0)?; // field 4
    let utime = nth(9)?; // field 14
    let stime = nth(0)?; // 15
    // cutime and cstime are signed in the kernel's format but never negative in practice.
    let cutime = nth(0)?; // 16
    let cstime = nth(0)?; // 17
    let threads = nth(2)?; // 20
    let rss = nth(3)?; // 24
    Some(Stat {
        ended: matches!(state, b"Z" | b"X"),
        ppid: u32::try_from(ppid).ok()?,
        cpu_ticks: utime + stime + cutime + cstime,
        threads,
        rss_pages: rss,
    })
}

/// The number after `name` at the start of a line of a `name: value` file (`/proc/<pid>/io`,
/// `/proc/meminfo`); at a line start so that `write_bytes:` never matches
/// `cancelled_write_bytes:`.
fn field(text: &[u8], name: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find_iter(text, name).find(|&at| at == 0 || text[at - 1] == b'\n')?;
    let rest = &text[at + name.len()..];
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let value = rest[..end]
        .split(|b| b.is_ascii_whitespace())
        .find(|f| !f.is_empty())?;
    parse_u64(value)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

fn push_u32(path: &mut String, n: u32) {
    path.push_str(itoa::Buffer::new().format(n));
}

/// Reads the whole file into `buf` (cleared first). `/proc` files report size 0, so this
/// reads until end-of-file rather than trusting the metadata.
fn read_into(path: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    File::open(path)?.read_to_end(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let line = b"4242 (a) b (c) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 6 0 \
                     12345 987654321 2048 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 \
                     0 0 0 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                ended: false,
                ppid: 17,
                cpu_ticks: 250 + 50 + 7 + 3,
                threads: 6,
                rss_pages: 2048,
            }
        );
        assert_eq!(parse_stat(b"garbage"), None);
        let zombie = b"7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0 0";
        assert!(parse_stat(zombie).unwrap().ended);
    }

    #[test]
    fn fields_of_name_value_files() {
        let io = b"cancelled_write_bytes: 1\nrchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n\
                   cancelled_write_bytes: 0\n";
        assert_eq!(field(io, b"read_bytes:"), Some(4096));
        assert_eq!(field(io, b"write_bytes:"), Some(8192));
        let meminfo = b"MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(field(meminfo, b"MemAvailable:"), Some(8_000_000));
        assert_eq!(field(meminfo, b"Missing:"), None);
    }

    #[test]
    fn this_process_is_a_tree_of_at_least_one() {
        let mut reader = ProcReader::new();
        let totals = reader.tree(std::process::id()).unwrap();
        assert!(totals.processes >= 1);
        assert!(totals.threads >= 1);
        assert!(totals.rss_pages > 0);
        assert!(reader.mem_available().unwrap() > 0);
        // No process has pid 0 in /proc.
        assert_eq!(reader.tree(0), None);
    }
}
