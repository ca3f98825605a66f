//! Writers killed with SIGKILL: at random instants (many of them inside a header widening or
//! in the middle of a multi-page row), and while holding the table's lock.
//!
//! Children acknowledge each row in their own file *after* `save_row` returned, with one plain
//! `write(2)`; the parent then checks that every acknowledged row is on disk exactly once, the
//! table parses, no row is glued to a torn fragment, and the next writer carries on.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    Guarded, LOCK_MODES, Reports, Rng, Scripted, child_command, row_map, wait_with_deadline,
};
use expman::{Metrics, SyncPolicy, TableWriter, Value, read_table};

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        "victim" => victim(),
        "survivor" => survivor(),
        "scripted" => common::scripted_writer(),
        other => panic!("unknown role {other}"),
    });
}

/// Who wrote a row: victim `k` (killed, or the last clean writer) or the long-lived survivor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Writer {
    Victim(u64),
    Survivor,
}

/// A row's unique id, as written in its `id` cell: `v<k>s<seq>` or `S<seq>`.
fn row_id(writer: Writer, seq: u64) -> String {
    match writer {
        Writer::Victim(k) => format!("v{k}s{seq}"),
        Writer::Survivor => format!("S{seq}"),
    }
}

fn parse_row_id(id: &str) -> (Writer, u64) {
    if let Some(seq) = id.strip_prefix('S') {
        return (Writer::Survivor, seq.parse().unwrap());
    }
    let (k, seq) = id[1..].split_once('s').unwrap();
    (Writer::Victim(k.parse().unwrap()), seq.parse().unwrap())
}

/// The `pad` cell: every fourth row of a victim is ~9 KB of quoted lines, so its single
/// `write(2)` spans several pages (a SIGKILL can tear it between pages, and a newline inside
/// the quotes must not be mistaken for the end of the row); the others hold a comma and quotes.
fn pad(writer: Writer, seq: u64) -> String {
    let id = row_id(writer, seq);
    if matches!(writer, Writer::Victim(_)) && seq % 4 == 1 {
        (0..150)
            .map(|line| format!("{id} line {line:03}, \"quoted\" text text text text\n"))
            .collect()
    } else {
        format!("{id}, \"short\"")
    }
}

/// Victims bring a new field every 3 rows, so a good share of their time goes to widenings.
fn new_field(k: u64, seq: u64) -> String {
    format!("v{k}_f{}", seq / 3)
}

/// Exactly the user cells of a row (the non-empty ones besides timestamp and run_id).
fn expected_cells(writer: Writer, seq: u64) -> HashMap<String, Value> {
    let pad = pad(writer, seq);
    let mut cells = HashMap::from([
        ("id".to_string(), Value::Str(row_id(writer, seq))),
        ("len".to_string(), Value::Int(pad.len() as i64)),
        ("pad".to_string(), Value::Str(pad)),
    ]);
    if let Writer::Victim(k) = writer {
        cells.insert(new_field(k, seq), Value::Int(seq as i64));
    }
    cells
}

fn save(writer: &mut TableWriter, who: Writer, seq: u64) {
    for (name, value) in expected_cells(who, seq) {
        writer.set(&name, value).unwrap();
    }
    writer.save_row().unwrap();
}

/// Writes rows until killed (or `EXPMAN_TEST_ROWS` rows), acknowledging each after `save_row`
/// returned; reports `ready` after the first so the parent kills it mid-stream, not at start.
fn victim() {
    let k: u64 = common::env("EXPMAN_TEST_WRITER").parse().unwrap();
    let limit: u64 = std::env::var("EXPMAN_TEST_ROWS").map_or(u64::MAX, |n| n.parse().unwrap());
    let mut writer = TableWriter::new(
        common::env("EXPMAN_TEST_TABLE"),
        "run_0001",
        SyncPolicy::WriteThrough,
    );
    let mut acks = common::open_ack(Path::new(&common::env("EXPMAN_TEST_ACK")));
    for seq in 0..limit {
        save(&mut writer, Writer::Victim(k), seq);
        common::ack(&mut acks, &row_id(Writer::Victim(k), seq));
        if seq == 0 {
            common::report("ready");
        }
    }
}

/// Writes a row about every millisecond, never widening, until told to stop on stdin: a writer
/// that holds the table open across all the kills (and the widenings of the victims).
fn survivor() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = stop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        stop_reader.store(true, std::sync::atomic::Ordering::Release);
    });
    let mut writer = TableWriter::new(
        common::env("EXPMAN_TEST_TABLE"),
        "run_0002",
        SyncPolicy::WriteThrough,
    );
    let mut acks = common::open_ack(Path::new(&common::env("EXPMAN_TEST_ACK")));
    let mut seq = 0;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        save(&mut writer, Writer::Survivor, seq);
        common::ack(&mut acks, &row_id(Writer::Survivor, seq));
        if seq == 0 {
            common::report("ready");
        }
        seq += 1;
        // Pacing only (keeps the file small); nothing waits on it.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Checks every row of the table is exactly what its writer wrote (nothing shifted, truncated
/// or glued); returns the row ids with how often each occurs.
fn check_table(table: &Metrics, path: &Path) -> BTreeMap<(Writer, u64), usize> {
    let mut seen = BTreeMap::new();
    for row in &table.rows {
        let mut cells = row_map(&table.columns, row);
        cells.remove("timestamp").expect("a timestamp");
        cells.remove("run_id").expect("a run id");
        let Some(Value::Str(id)) = cells.get("id") else {
            panic!("a row without a readable id in {}: {row:?}", path.display());
        };
        let (writer, seq) = parse_row_id(id);
        assert_eq!(
            cells,
            expected_cells(writer, seq),
            "row {id} of {} is damaged (glued to a torn fragment?)",
            path.display()
        );
        *seen.entry((writer, seq)).or_insert(0) += 1;
    }
    seen
}

struct Files {
    _dir: tempfile::TempDir,
    table: PathBuf,
    acks: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        Files {
            table: dir.path().join("metrics.csv"),
            acks: dir.path().join("acks"),
            _dir: dir,
        }
    }

    fn ack_path(&self, writer: Writer) -> PathBuf {
        match writer {
            Writer::Victim(k) => self.acks.with_extension(format!("v{k}")),
            Writer::Survivor => self.acks.with_extension("survivor"),
        }
    }

    /// Starts victim `k`, waiting until it has saved its first row.
    fn start_victim(&self, mode: &str, k: u64, rows: Option<u64>) -> Guarded {
        std::fs::create_dir_all(self.acks.parent().unwrap()).unwrap();
        let mut cmd = child_command("child", "victim");
        cmd.env("EXPMAN_LOCK", mode)
            .env("EXPMAN_TEST_TABLE", &self.table)
            .env("EXPMAN_TEST_WRITER", k.to_string())
            .env("EXPMAN_TEST_ACK", self.ack_path(Writer::Victim(k)))
            .stdout(Stdio::piped());
        if let Some(rows) = rows {
            cmd.env("EXPMAN_TEST_ROWS", rows.to_string());
        }
        let mut child = Guarded::spawn(&mut cmd);
        let started = Reports::of(&mut child).next(&format!("victim {k} starting"));
        assert_eq!(started, "ready");
        child
    }

    /// Checks the final table against every writer's acknowledgements: each acknowledged row
    /// is there exactly once, and a killed writer has at most its one unacknowledged row in
    /// flight on disk besides.
    fn check_against_acks(&self, writers: impl IntoIterator<Item = Writer>, clean: &[Writer]) {
        let table = read_table(&self.table).expect("the table parses");
        let seen = check_table(&table, &self.table);
        for (id, count) in &seen {
            assert_eq!(
                *count,
                1,
                "row {} is on disk {count} times",
                row_id(id.0, id.1)
            );
        }
        for writer in writers {
            let acked = common::read_acks(&self.ack_path(writer));
            let on_disk: Vec<u64> = seen
                .keys()
                .filter(|(w, _)| *w == writer)
                .map(|(_, s)| *s)
                .collect();
            // Rows are written in order, so disk holds 0..n: the acknowledged ones, plus the
            // one whose save_row was cut short by the kill, if its write got through.
            let n = on_disk.len() as u64;
            assert_eq!(
                on_disk,
                (0..n).collect::<Vec<_>>(),
                "{writer:?}: rows missing from disk"
            );
            let extra = if clean.contains(&writer) { 0 } else { 1 };
            assert!(
                acked.len() as u64 <= n && n <= acked.len() as u64 + extra,
                "{writer:?}: {} rows acknowledged but {n} on disk",
                acked.len()
            );
            for (seq, id) in acked.iter().enumerate() {
                assert_eq!(
                    *id,
                    row_id(writer, seq as u64),
                    "{writer:?}: acknowledgement file"
                );
            }
        }
    }
}

fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL a child");
    child.wait().expect("reap a child");
}

/// SIGKILL 30 writers per lock mode at random instants while another process keeps writing.
///
/// Victims widen the header every three rows and write multi-page rows with quoted newlines, so
/// kills land in widenings (a temporary file left behind), mid-row (a torn tail), and between a
/// widening's rename and the moment the other writers learn of it. After each kill the table
/// must parse; at the end every acknowledged row of every writer is there exactly once, intact,
/// and a last writer run to completion continues the table cleanly.
#[test]
fn random_sigkills_lose_no_acknowledged_row() {
    const KILLS: u64 = 30;
    let mut rng = Rng::from_env("random_sigkills_lose_no_acknowledged_row");
    for mode in LOCK_MODES {
        let files = Files::new();
        let mut survivor = Guarded::spawn(
            child_command("child", "survivor")
                .env("EXPMAN_LOCK", mode)
                .env("EXPMAN_TEST_TABLE", &files.table)
                .env("EXPMAN_TEST_ACK", files.ack_path(Writer::Survivor))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        assert_eq!(
            Reports::of(&mut survivor).next("the survivor starting"),
            "ready"
        );

        let (mut in_widening, mut torn) = (0, 0);
        for k in 0..KILLS {
            let mut victim = files.start_victim(mode, k, None);
            let wait = rng.below(25);
            let start = Instant::now();
            // Spin rather than sleep: the kill instant is the random part.
            while start.elapsed() < Duration::from_millis(wait) {
                std::hint::spin_loop();
            }
            sigkill(&mut victim);
            let tmp = files.table.with_file_name(".metrics.csv.rewrite.tmp");
            in_widening += usize::from(tmp.exists());
            let bytes = std::fs::read(&files.table).unwrap();
            torn += usize::from(bytes.last() != Some(&b'\n'));
            let table = read_table(&files.table).unwrap_or_else(|e| {
                panic!("[{mode}] after kill {k} the table does not parse: {e}")
            });
            check_table(&table, &files.table);
        }

        use std::io::Write;
        writeln!(survivor.stdin.as_mut().unwrap(), "stop").unwrap();
        let status = wait_with_deadline(&mut survivor, Duration::from_secs(20), "the survivor");
        common::assert_success(status, "the survivor");

        // A last writer, not killed, widens and appends on top of whatever the kills left.
        let mut last = files.start_victim(mode, KILLS, Some(12));
        let status = wait_with_deadline(&mut last, Duration::from_secs(20), "the last writer");
        common::assert_success(status, "the last writer");

        let writers = (0..=KILLS).map(Writer::Victim).chain([Writer::Survivor]);
        files.check_against_acks(writers, &[Writer::Survivor, Writer::Victim(KILLS)]);
        assert!(
            !files
                .table
                .with_file_name(".metrics.csv.rewrite.tmp")
                .exists()
        );
        let survivor_rows = common::read_acks(&files.ack_path(Writer::Survivor)).len();
        eprintln!(
            "[{mode}] {KILLS} kills: {in_widening} inside a widening, {torn} left a torn tail; \
             the survivor saved {survivor_rows} rows meanwhile"
        );
    }
}

/// The owner word of a table's shared lock (`metrics/.<table>.lock`: magic, owner, generation;
/// see `store::shm`): the owner's pid in the high 32 bits, 0 when free.
fn lock_owner_pid(table: &Path) -> u32 {
    let name = table.file_name().unwrap().to_str().unwrap();
    let file = std::fs::File::open(table.with_file_name(format!(".{name}.lock"))).unwrap();
    let mut word = [0u8; 8];
    file.read_exact_at(&mut word, 8).unwrap();
    (u64::from_ne_bytes(word) >> 32) as u32
}

/// Stops `child` at a random instant while it holds the table's shared lock (it writes rows in
/// a loop, so it does most of the time); returns with the child stopped.
fn stop_while_holding_the_lock(child: &Child, table: &Path, rng: &mut Rng) {
    for _ in 0..10_000 {
        stop(child);
        if lock_owner_pid(table) == child.id() {
            return;
        }
        // SAFETY: signalling our own child, whose pid is not reaped yet.
        unsafe { assert_eq!(libc::kill(child.id() as libc::pid_t, libc::SIGCONT), 0) };
        for _ in 0..rng.below(20_000) {
            std::hint::spin_loop();
        }
    }
    panic!("never caught the writer holding the lock");
}

/// A torn, unacknowledged row as a writer killed mid-`write(2)` leaves it: the cut falls
/// after a newline inside a quoted cell (the hard case), or right on one.
const TORN_TAILS: [&str; 3] = [
    "2026-01-01T00:00:00.000000,run_9999,\"torn\nhalf of a cell",
    "2026-01-01T00:00:00.000000,run_9999,\"torn\n",
    "2026-01-01T00:00:00.000000,run_9999,no newline at all",
];

/// The previous owner dies mid-row: its torn tail must never be glued to the next row, by
/// whichever writer comes next. That includes one that held the file from before the dead
/// writer's last widening, and a fresh one. Under `shm` the dead writer is killed while holding
/// the lock, whose word still names it, and the next writer must take the lock over.
#[test]
fn torn_tail_of_a_dead_writer_is_never_glued_to_the_next_row() {
    let mut rng = Rng::from_env("torn_tail_of_a_dead_writer_is_never_glued_to_the_next_row");
    for mode in LOCK_MODES {
        for (t, torn) in TORN_TAILS.iter().enumerate() {
            let files = Files::new();
            // `old` opens the table first, so it holds the file from before the victim's
            // widenings (its first row adds a field).
            let mut old = Scripted::start("child", &files.table, "run_0003", Some(mode));
            assert_eq!(old.cmd("save id=s:old1"), "ok");
            let mut victim = files.start_victim(mode, 0, None);
            stop_while_holding_the_lock_or_not(&victim, &files.table, mode, &mut rng);
            let whole = read_table(&files.table).unwrap();
            let mut tail = std::fs::OpenOptions::new()
                .append(true)
                .open(&files.table)
                .unwrap();
            std::io::Write::write_all(&mut tail, torn.as_bytes()).unwrap();
            // Readers skip the torn row: it is no row at all, not a row with half a cell.
            assert_eq!(
                read_table(&files.table).unwrap(),
                whole,
                "[{mode}] torn tail {t}"
            );
            sigkill(&mut victim);
            if mode == "shm" {
                assert_eq!(
                    lock_owner_pid(&files.table),
                    victim.id(),
                    "the lock word records the dead owner"
                );
            }

            let (first, second) = if t % 2 == 0 {
                ("old", "fresh")
            } else {
                ("fresh", "old")
            };
            let mut fresh = Scripted::start("child", &files.table, "run_0004", Some(mode));
            for who in [first, second] {
                let writer = if who == "old" { &mut old } else { &mut fresh };
                assert_eq!(
                    writer.cmd(&format!("save id=s:{who}2")),
                    "ok",
                    "[{mode}] {who}"
                );
            }
            old.exit();
            fresh.exit();
            if mode == "shm" {
                assert_eq!(lock_owner_pid(&files.table), 0, "the lock is free again");
            }

            let table = read_table(&files.table).unwrap();
            let id = table.column_index("id").unwrap();
            let (victim_rows, other): (Vec<_>, Vec<_>) = table
                .rows
                .iter()
                .partition(|row| matches!(&row[id], Value::Str(s) if s.starts_with('v')));
            let other: Vec<&Value> = other.iter().map(|row| &row[id]).collect();
            let s = |v: &str| Value::Str(v.into());
            let mut want = vec![s("old1"), s(&format!("{first}2")), s(&format!("{second}2"))];
            // The tail was written by this test, not by the victim's `write(2)`: the next
            // writer may cut it only where the lock's record proves it part of the victim's
            // unfinished append (the victim was stopped inside one); otherwise every byte stays
            // and the fragment becomes a row of its own, closed, never glued to the next one.
            let text = std::fs::read_to_string(&files.table).unwrap();
            let fragment_cell = torn.splitn(3, ',').nth(2).unwrap().trim_start_matches('"');
            if text.contains("torn") || text.contains("no newline") {
                want.push(s(fragment_cell));
            }
            assert_eq!(other.len(), want.len(), "[{mode}] torn tail {t}: {other:?}");
            want.sort_by_key(|v| v.to_string());
            let mut got: Vec<Value> = other.into_iter().cloned().collect();
            got.sort_by_key(|v| v.to_string());
            assert_eq!(got, want, "[{mode}] torn tail {t}");
            let victim_table = Metrics {
                rows: victim_rows.into_iter().cloned().collect(),
                ..table.clone()
            };
            check_table(&victim_table, &files.table);
        }
    }
}

/// Under `shm`, stops the victim while it owns the lock (so it dies owning it); under `flock`
/// the kernel drops the lock of a dead process, so any instant will do.
fn stop_while_holding_the_lock_or_not(victim: &Child, table: &Path, mode: &str, rng: &mut Rng) {
    if mode == "shm" {
        stop_while_holding_the_lock(victim, table, rng);
    } else {
        stop(victim);
    }
}

/// Stops `child` with SIGSTOP and returns once it is stopped. (A `write(2)` to a file in
/// progress completes first: SIGSTOP, unlike SIGKILL, tears nothing.)
fn stop(child: &Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling and waiting for our own child, whose pid is not reaped yet; WUNTRACED
    // reports the stop without reaping it.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGSTOP), 0);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, libc::WUNTRACED), pid);
        assert!(libc::WIFSTOPPED(status));
    }
}

/// Killing a writer that holds the shared lock, many times: the lock word keeps the dead pid,
/// the next writer takes the lock over within a bounded time, and no acknowledged row is lost.
#[test]
fn sigkill_while_holding_the_shared_lock_is_taken_over() {
    let mut rng = Rng::from_env("sigkill_while_holding_the_shared_lock_is_taken_over");
    let files = Files::new();
    for k in 0..8 {
        let mut victim = files.start_victim("shm", k, None);
        stop_while_holding_the_lock(&victim, &files.table, &mut rng);
        sigkill(&mut victim);
        assert_eq!(
            lock_owner_pid(&files.table),
            victim.id(),
            "the lock word names the dead owner"
        );
    }
    // The next writer must not wait forever on a lock whose owner is gone.
    let started = Instant::now();
    let mut next = files.start_victim("shm", 8, Some(6));
    let status = wait_with_deadline(
        &mut next,
        Duration::from_secs(20),
        "the writer after the kills",
    );
    common::assert_success(status, "the writer after the kills");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(lock_owner_pid(&files.table), 0);
    files.check_against_acks((0..=8).map(Writer::Victim), &[Writer::Victim(8)]);
}
