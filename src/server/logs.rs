//! Logs of any size: pages by byte range (forward from an offset, or back from one by whole
//! lines, down to the first byte), search over the whole file, and the whole file as a
//! download. Every read is of a bounded piece at a known offset; nothing holds a file whole.
//!
//! The shapes are in `API.md` and the README's "Series and logs API".

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memchr::{memchr, memmem, memrchr};
use serde_json::json;

use super::reply::Reply;
use super::tail::{LogChunk, log_chunk};
use super::target::Query;
use crate::error::IoContext;

/// The page length when none is asked for (the length of today's tail).
const DEFAULT_PAGE: u64 = 65536;
/// The longest page: a page of control bytes is six times as long in JSON (`\u0001`), and each
/// answer is built whole in memory while a slow client reads it. The UI asks for 256 KiB.
const MAX_PAGE: u64 = 1 << 20;
/// Matches listed when `max` is not given, and the most a request may ask for.
const DEFAULT_MATCHES: usize = 100;
const MAX_MATCHES: usize = 10_000;
/// Bytes read at a time while searching.
const SEARCH_CHUNK: usize = 4 << 20;
/// A line longer than this is searched in pieces that overlap by [`OVERLAP`] bytes, so the
/// buffer stays bounded however the file is made (a 1 GB line, a binary file).
const LONG_LINE: usize = 16 << 20;
const OVERLAP: usize = 64 << 10;
/// Bytes of context kept on each side of a match in its snippet.
const SNIPPET_BEFORE: usize = 120;
const SNIPPET_AFTER: usize = 240;
/// The largest compiled search pattern (a pattern is the client's; its size is bounded).
const REGEX_SIZE: usize = 4 << 20;

/// Answers `GET .../logs/<file>` for the log at `path` (already confined), named `name`.
pub(crate) fn answer(path: &Path, name: &str, query: &Query) -> Result<Reply, Reply> {
    let error = |e: crate::Error| Reply::from_error(&e);
    if flag(query, "download")? {
        let file = crate::store::open_regular(path)
            .at("open the log", path)
            .map_err(error)?;
        let len = file.metadata().at("stat", path).map_err(error)?.len();
        return Ok(Reply::download(file, len, name));
    }
    if let Some(text) = query.get("search") {
        return search(path, text, query);
    }
    let length = match query.get("length") {
        Some(_) => query.number::<u64>("length", "a byte count")?,
        None => query.number::<u64>("max", "a byte count")?,
    }
    .unwrap_or(DEFAULT_PAGE)
    .clamp(1, MAX_PAGE);
    if let Some(before) = query.number::<u64>("before", "a byte offset")? {
        let page = page_before(path, before, length).map_err(error)?;
        return Ok(Reply::json(200, &page));
    }
    let offset = query.number::<u64>("offset", "a byte offset")?;
    let chunk = log_chunk(path, offset, length).map_err(error)?;
    Ok(Reply::json(200, &chunk))
}

/// A boolean parameter: absent, `0`/`false`, or `1`/`true`.
fn flag(query: &Query, key: &str) -> Result<bool, Reply> {
    match query.get(key) {
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => Err(Reply::error(
            400,
            format!("{key}={other:?} is not accepted: give 1 or 0"),
        )),
    }
}

/// The page of whole lines that ends at `before` (clamped to the file's size), at most
/// `length` bytes: it starts at the first line start inside the window, so paging back with
/// `before = start` walks the file line by line to byte 0. A line longer than `length` is
/// returned in pieces (the page then starts inside it, at a character boundary:
/// `line_start` is false).
pub(crate) fn page_before(path: &Path, before: u64, length: u64) -> crate::Result<LogChunk> {
    let file = crate::store::open_regular(path).at("open the log", path)?;
    let size = file.metadata().at("stat", path)?.len();
    let end = before.min(size);
    let window = end.saturating_sub(length);
    let mut bytes = vec![0u8; (end - window) as usize];
    file.read_exact_at(&mut bytes, window).at("read", path)?;
    // Whether the window starts a line: the byte before it is a newline (or there is none).
    let mut previous = [0u8; 1];
    let at_line = window == 0 || {
        file.read_exact_at(&mut previous, window - 1)
            .at("read", path)?;
        previous[0] == b'\n'
    };
    let mut skip = 0usize;
    if !at_line {
        match memchr(b'\n', &bytes) {
            // The bytes before the first newline are the end of a line that starts earlier.
            Some(i) if i + 1 < bytes.len() => skip = i + 1,
            // No line starts in the window: a piece of a long line, from a character boundary.
            _ => {
                while skip < bytes.len().min(3) && (bytes[skip] & 0xC0) == 0x80 {
                    skip += 1;
                }
            }
        }
    }
    let start = window + skip as u64;
    let line_start = (at_line && skip == 0) || (skip > 0 && bytes[skip - 1] == b'\n');
    Ok(LogChunk {
        start,
        end,
        size,
        text: String::from_utf8_lossy(&bytes[skip..]).into_owned(),
        line_start: Some(line_start),
    })
}

/// What is searched for.
enum Matcher {
    // Boxed: the finder's tables are several times the regex's handle.
    Literal(Box<memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Matcher {
    /// The first match inside one line, starting at or after `at` (a line start) in
    /// `haystack`: (start, end).
    ///
    /// A regex that can run across line ends (`a[\s\S]*`, `(?s)x.*`, `[^z]*`) would, asked for
    /// the leftmost match, scan to the end of the buffer for every line it finds: quadratic in
    /// the log's size, minutes of CPU for a 1 MB log from one request. So the earliest-ending
    /// match is found first (it stops at the first end it sees); no line before the one that
    /// end is in holds a match of its own, and that one line alone is searched for one.
    fn find(&self, haystack: &[u8], mut at: usize) -> Option<(usize, usize)> {
        let regex = match self {
            Matcher::Literal(finder) => {
                return finder
                    .find(&haystack[at..])
                    .map(|i| (at + i, at + i + finder.needle().len()));
            }
            Matcher::Regex(regex) => regex,
        };
        while at <= haystack.len() {
            let end = regex.shortest_match_at(haystack, at)?;
            // The line holding the match's last byte (or its place, for an empty match).
            let last = if end > at { end - 1 } else { end };
            let line_start = memrchr(b'\n', &haystack[at..last]).map_or(at, |i| at + i + 1);
            let line_end = memchr(b'\n', &haystack[last..]).map_or(haystack.len(), |i| last + i);
            if let Some(m) = regex.find_at(&haystack[..line_end], line_start) {
                return Some((m.start(), m.end()));
            }
            at = line_end + 1;
        }
        None
    }
}

/// One matching line.
#[derive(serde::Serialize)]
struct Match {
    /// 1-based line number.
    line: u64,
    /// Byte offset of the line's first byte.
    offset: u64,
    /// Byte offset of the first match in the line.
    r#match: u64,
    /// The line around the match (invalid UTF-8 replaced), without its line end.
    text: String,
}

/// `?search=`: every line of the whole file holding a match, counted; the first `max` at or
/// after byte `from` listed.
fn search(path: &Path, text: &str, query: &Query) -> Result<Reply, Reply> {
    let regex = flag(query, "regex")?;
    let ignore_case = flag(query, "ignore_case")?;
    let max = match query.get("max") {
        None => DEFAULT_MATCHES,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_MATCHES).contains(&n) => n,
            _ => {
                return Err(Reply::error(
                    400,
                    format!(
                        "max={v:?} is not accepted: give a count of matches from 1 to {MAX_MATCHES}"
                    ),
                ));
            }
        },
    };
    let from = query.number::<u64>("from", "a byte offset")?.unwrap_or(0);
    if text.is_empty() {
        return Err(Reply::error(
            400,
            "search is empty: give the text to look for",
        ));
    }
    let matcher = if regex || ignore_case {
        let pattern = if regex {
            text.to_string()
        } else {
            regex::escape(text)
        };
        let compiled = regex::bytes::RegexBuilder::new(&pattern)
            .multi_line(true)
            // `$` before a CRLF line end too, as in a log written on Windows.
            .crlf(true)
            .case_insensitive(ignore_case)
            .size_limit(REGEX_SIZE)
            .build()
            .map_err(|e| {
                Reply::error(
                    400,
                    format!("search={text:?} is not a regular expression we can run: {e}"),
                )
            })?;
        Matcher::Regex(compiled)
    } else {
        if text.contains('\n') {
            return Err(Reply::error(
                400,
                "search holds a line break: matches are within one line",
            ));
        }
        Matcher::Literal(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()))
    };
    let file = crate::store::open_regular(path)
        .at("open the log", path)
        .map_err(|e| Reply::from_error(&e))?;
    let found = scan(&file, &matcher, from, max)
        .map_err(|e| Reply::from_error(&crate::Error::io("search", path, e)))?;
    Ok(Reply::json(
        200,
        &json!({
            "search": text,
            "regex": regex,
            "ignore_case": ignore_case,
            "from": from,
            "size": found.size,
            "count": found.count,
            "truncated": found.listed < found.count_after_from,
            "matches": found.matches,
        }),
    ))
}

struct Found {
    size: u64,
    count: u64,
    count_after_from: u64,
    listed: u64,
    matches: Vec<Match>,
}

/// Streams through the file (its size when opened) in chunks that end at line ends.
fn scan(file: &File, matcher: &Matcher, from: u64, max: usize) -> std::io::Result<Found> {
    let size = file.metadata()?.len();
    let mut found = Found {
        size,
        count: 0,
        count_after_from: 0,
        listed: 0,
        matches: Vec::new(),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(SEARCH_CHUNK * 2);
    // Offset of buf[0], and of the next byte to read.
    let (mut buf_start, mut read_at) = (0u64, 0u64);
    // Newlines before buf[0]; where the line holding buf[0] starts; whether that line (when it
    // started in an earlier piece) was already counted.
    let mut lines_before = 0u64;
    let mut line_start = 0u64;
    let mut line_counted = false;
    loop {
        let want = SEARCH_CHUNK.min((size - read_at) as usize);
        let old = buf.len();
        buf.resize(old + want, 0);
        file.read_exact_at(&mut buf[old..], read_at)?;
        read_at += want as u64;
        let eof = read_at == size;
        let region = match memrchr(b'\n', &buf) {
            _ if eof => buf.len(),
            Some(i) => i + 1,
            None if buf.len() >= LONG_LINE => buf.len() - OVERLAP,
            None => continue,
        };
        let carried = line_counted;
        let mut last_counted = false;
        let (mut at, mut counted, mut lines) = (0usize, 0usize, 0u64);
        while at < region {
            let Some((start, _)) = matcher.find(&buf, at) else {
                break;
            };
            if start >= region {
                break;
            }
            let ls = memrchr(b'\n', &buf[..start]).map_or(0, |i| i + 1);
            let le = memchr(b'\n', &buf[start..region]).map_or(region, |i| start + i);
            if le == region {
                last_counted = true;
            }
            if ls == 0 && carried {
                at = le + 1;
                continue;
            }
            lines += memchr::memchr_iter(b'\n', &buf[counted..ls]).count() as u64;
            counted = ls;
            let offset = if ls == 0 {
                line_start
            } else {
                buf_start + ls as u64
            };
            found.count += 1;
            if offset >= from {
                found.count_after_from += 1;
                if found.matches.len() < max {
                    found.matches.push(Match {
                        line: lines_before + lines + 1,
                        offset,
                        r#match: buf_start + start as u64,
                        text: snippet(&buf, ls, start, le),
                    });
                    found.listed += 1;
                }
            }
            at = le + 1;
        }
        lines += memchr::memchr_iter(b'\n', &buf[counted..region]).count() as u64;
        lines_before += lines;
        match memrchr(b'\n', &buf[..region]) {
            Some(i) => {
                line_start = buf_start + i as u64 + 1;
                line_counted = last_counted && i + 1 < region;
            }
            None => line_counted = carried || last_counted,
        }
        buf.drain(..region);
        buf_start += region as u64;
        if eof {
            break;
        }
    }
    Ok(found)
}

/// The text of the line `[ls, le)` around a match at `at`, cut at character boundaries.
fn snippet(buf: &[u8], ls: usize, at: usize, le: usize) -> String {
    let mut s = ls.max(at.saturating_sub(SNIPPET_BEFORE));
    while s < at && (buf[s] & 0xC0) == 0x80 {
        s += 1;
    }
    let mut e = le.min(at + SNIPPET_AFTER);
    while e > at && e < le && (buf[e] & 0xC0) == 0x80 {
        e -= 1;
    }
    let piece = &buf[s..e];
    let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
    String::from_utf8_lossy(piece).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(found: &Found) -> Vec<u64> {
        found.matches.iter().map(|m| m.line).collect()
    }

    #[test]
    fn a_match_in_a_line_longer_than_the_buffer_is_counted_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let mut text = b"first needle\n".to_vec();
        text.extend(std::iter::repeat_n(b'a', LONG_LINE + 10));
        text.extend_from_slice(b"needle");
        text.extend(std::iter::repeat_n(b'b', LONG_LINE));
        text.extend_from_slice(b"needle\nlast needle\n");
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let finder = Matcher::Literal(Box::new(memmem::Finder::new(b"needle").into_owned()));
        let found = scan(&file, &finder, 0, 10).unwrap();
        assert_eq!(found.count, 3);
        assert_eq!(lines_of(&found), vec![1, 2, 3]);
        assert_eq!(found.matches[1].offset, 13);
        assert_eq!(found.matches[1].r#match, 13 + LONG_LINE as u64 + 10);
    }
}
