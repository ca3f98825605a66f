//! The last exception line in the end of a failed run's log: what a user looks for first when a
//! card says only "exited with code 1" (`ValueError: learning rate 0.5 diverged`, the last line
//! of a Python traceback). Read from the last [`WINDOW`] bytes of the log only, so a huge log
//! costs the listing no more than a small one.
//!
//! Recognised, the latest in the log winning:
//! - Python: the line that ends a traceback (the first unindented line after
//!   `Traceback (most recent call last):`, whatever the exception's name), and outside
//!   tracebacks any `Name: message` line whose name ends in `Error`, `Exception`, `Interrupt`,
//!   `Exit`, `Failure` or `Fault` (also Node.js, and Java's qualified names; Java's
//!   `Exception in thread "main" ...` and `Caused by: ...` lose their prefix);
//! - Rust: `thread 'main' panicked at src/main.rs:2:5:` and the message on the next line;
//! - C++: `terminate called after throwing an instance of 'std::runtime_error'` and its
//!   `what():` line;
//! - Go: `panic: ...` and `fatal error: ...`;
//! - the shell: `sh: 1: trian.py: not found`, `... command not found`, `Segmentation fault`.
//!
//! Lines may carry a prefix (`[rank0]: ` from torchrun): a traceback's lines are read with the
//! prefix its `Traceback` line had. Colours (ANSI escapes) and progress-bar redraws (`\r`) are
//! removed first.

use std::path::Path;

use super::tail::log_chunk;

/// How many bytes from the end of a log are searched.
pub(crate) const WINDOW: u64 = 64 * 1024;
/// The longest line reported; longer ones are cut, with an ellipsis.
const MAX_CHARS: usize = 300;

const TRACEBACK: &str = "Traceback (most recent call last):";
const NAME_ENDINGS: [&str; 6] = [
    "Error",
    "Exception",
    "Interrupt",
    "Exit",
    "Failure",
    "Fault",
];

/// The last exception line in the end of the log at `path`; `None` when the log cannot be read
/// or holds none.
pub(crate) fn in_log(path: &Path) -> Option<String> {
    let chunk = log_chunk(path, None, WINDOW).ok()?;
    last_exception(&chunk.text)
}

/// The last exception line in `text`.
pub(crate) fn last_exception(text: &str) -> Option<String> {
    let lines: Vec<String> = text.lines().map(clean).collect();
    let mut found: Option<(usize, String)> = None;
    let mut keep = |at: usize, line: String| {
        if found.as_ref().is_none_or(|(seen, _)| at >= *seen) {
            found = Some((at, line));
        }
    };
    for (i, line) in lines.iter().enumerate() {
        if let Some(prefix) = line.strip_suffix(TRACEBACK) {
            if let Some((at, end)) = traceback_end(&lines[i + 1..], prefix) {
                keep(i + 1 + at, end);
            }
        } else if let Some(hit) =
            one_line(line).or_else(|| two_lines(line, lines.get(i + 1).map(String::as_str)))
        {
            keep(i, hit);
        }
    }
    found.map(|(_, line)| shorten(line.trim()))
}

/// The exception line ending a Python traceback whose lines start with `prefix`: the first
/// non-empty line after the header that is not indented. Its index in `after`, and the line.
fn traceback_end(after: &[String], prefix: &str) -> Option<(usize, String)> {
    for (i, line) in after.iter().enumerate() {
        let line = line.strip_prefix(prefix).unwrap_or(line);
        if line.trim().is_empty() || line.starts_with([' ', '\t']) {
            continue;
        }
        return Some((i, line.to_string()));
    }
    None
}

/// An exception named in one line (any language above), without its prefixes.
fn one_line(line: &str) -> Option<String> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("panic: ") {
        return Some(format!("panic: {rest}"));
    }
    if line.starts_with("fatal error: ") || is_shell_failure(line) {
        return Some(line.to_string());
    }
    let line = java_prefix(line);
    let name = line.split_once(": ").map_or(line, |(name, _)| name);
    is_exception_name(name).then(|| line.to_string())
}

/// An exception spread over two lines: a Rust panic (Rust 1.73 and later put the message on the
/// next line) or an uncaught C++ exception.
fn two_lines(line: &str, next: Option<&str>) -> Option<String> {
    let next = next.map(str::trim).unwrap_or_default();
    if let Some(at) = line.find("' panicked at ") {
        // Before Rust 1.73 the message came first, quoted, on the same line.
        let place = line[at + "' panicked at ".len()..].trim_end_matches(':');
        return Some(if next.is_empty() || place.starts_with('\'') {
            format!("panicked at {place}")
        } else {
            format!("panicked at {place}: {next}")
        });
    }
    let thrown = line.strip_prefix("terminate called after throwing an instance of ")?;
    let name = thrown.trim_matches('\'');
    Some(match next.strip_prefix("what():") {
        Some(what) => format!("{name}: {}", what.trim()),
        None => name.to_string(),
    })
}

/// Java's lines before the exception itself: `Exception in thread "main" `, `Caused by: `.
fn java_prefix(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("Caused by: ") {
        return rest;
    }
    if let Some(rest) = line.strip_prefix("Exception in thread \"")
        && let Some((_, exception)) = rest.split_once("\" ")
    {
        return exception;
    }
    line
}

/// `ValueError`, `java.lang.IllegalStateException`, `KeyboardInterrupt`: a dotted identifier
/// whose last part ends like an exception's name (not `ERROR`: log levels are not exceptions).
fn is_exception_name(name: &str) -> bool {
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'));
    let last = name.rsplit('.').next().unwrap_or(name);
    plain && NAME_ENDINGS.iter().any(|ending| last.ends_with(ending))
}

/// What a shell prints when the command itself could not run or died of a signal.
fn is_shell_failure(line: &str) -> bool {
    let shell = ["sh: ", "bash: ", "zsh: ", "dash: "]
        .iter()
        .any(|s| line.starts_with(s));
    let reason = [
        "not found",
        "No such file or directory",
        "Permission denied",
    ]
    .iter()
    .any(|r| line.ends_with(r));
    (shell && reason) || line.starts_with("Segmentation fault") || line.starts_with("Bus error")
}

/// The line as a terminal shows it: colours removed, and only what follows the last bare `\r`
/// (a progress bar's redraws).
fn clean(line: &str) -> String {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.rsplit('\r').next().unwrap_or(line);
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // CSI (ESC [ ... final byte) or OSC (ESC ] ... BEL); anything else: drop the ESC.
        match chars.peek() {
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                for c in chars.by_ref() {
                    if c == '\x07' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= MAX_CHARS {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX_CHARS - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::last_exception;

    fn found(log: &str) -> Option<String> {
        last_exception(log)
    }

    #[test]
    fn the_last_line_of_a_python_traceback() {
        let log = "epoch 1 loss=0.3\n\
                   Traceback (most recent call last):\n  \
                   File \"train.py\", line 12, in <module>\n    \
                   raise ValueError(f\"learning rate {lr} diverged\")\n\
                   ValueError: learning rate 0.5 diverged\n";
        assert_eq!(
            found(log).as_deref(),
            Some("ValueError: learning rate 0.5 diverged")
        );
        // A name that looks like nothing special, a message over two lines, Python 3.11's
        // carets, and chained exceptions: the last one raised wins.
        let log = "Traceback (most recent call last):\n  File \"a.py\", line 1\n    \
                   x()\n    ^^^\nKeyError: 'lr'\n\nDuring handling of the above exception, \
                   another exception occurred:\n\nTraceback (most recent call last):\n  \
                   File \"a.py\", line 3\n__main__.Diverged: loss is nan\nat step 7\n";
        assert_eq!(
            found(log).as_deref(),
            Some("__main__.Diverged: loss is nan")
        );
        // torchrun's prefixes, and colours.
        let log = "[rank0]: Traceback (most recent call last):\n[rank0]:   File \"t.py\"\n\
                   [rank0]: \x1b[31mtorch.OutOfMemoryError\x1b[0m: CUDA out of memory.\n";
        assert_eq!(
            found(log).as_deref(),
            Some("torch.OutOfMemoryError: CUDA out of memory.")
        );
        assert_eq!(
            found("Traceback (most recent call last):\n  File \"x.py\"\nKeyboardInterrupt\n")
                .as_deref(),
            Some("KeyboardInterrupt")
        );
    }

    #[test]
    fn other_languages_and_the_shell() {
        let cases = [
            (
                "thread 'main' panicked at src/main.rs:4:5:\nlearning rate diverged\n\
                 note: run with `RUST_BACKTRACE=1`\n",
                "panicked at src/main.rs:4:5: learning rate diverged",
            ),
            (
                "Exception in thread \"main\" java.lang.IllegalStateException: bad state\n\
                 \tat Main.main(Main.java:3)\nCaused by: java.io.IOException: disk full\n\
                 \t... 1 more\n",
                "java.io.IOException: disk full",
            ),
            (
                "terminate called after throwing an instance of 'std::runtime_error'\n  \
                 what():  cannot open data.bin\nAborted (core dumped)\n",
                "std::runtime_error: cannot open data.bin",
            ),
            (
                "panic: runtime error: index out of range [5] with length 3\n\n\
                 goroutine 1 [running]:\nmain.main()\n",
                "panic: runtime error: index out of range [5] with length 3",
            ),
            (
                "/app/train.js:3\n    throw new TypeError('lr must be a number');\n    ^\n\n\
                 TypeError: lr must be a number\n    at Object.<anonymous> (/app/train.js:3:11)\n",
                "TypeError: lr must be a number",
            ),
            (
                "thread 'main' panicked at 'lr diverged', src/main.rs:4:5\nnote: run with\n",
                "panicked at 'lr diverged', src/main.rs:4:5",
            ),
            ("sh: 1: trian.py: not found\n", "sh: 1: trian.py: not found"),
        ];
        for (log, expected) in cases {
            assert_eq!(found(log).as_deref(), Some(expected), "{log}");
        }
    }

    #[test]
    fn ordinary_lines_are_no_exceptions() {
        for log in [
            "",
            "epoch 3: loss=0.2\nERROR: could not reach the tracker, retrying\nstep: 5\n",
            "Error rate: 0.3\nerrors: 2\nNo Exceptions today\n",
            "100%|██████████| 10/10\r",
        ] {
            assert_eq!(found(log), None, "{log:?}");
        }
        let long = format!("ValueError: {}\n", "x".repeat(1000));
        assert_eq!(found(&long).unwrap().chars().count(), 300);
    }
}
