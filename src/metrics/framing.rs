//! Where records begin and end in CSV bytes, for any bytes a table file may hold.
//!
//! One state machine, the one that rust-csv, pandas and Python's `csv` module share: a `"` opens
//! a quoted cell only at the start of a field (elsewhere it is a literal character), `""` inside
//! a quoted cell is one quote, text after a closing quote continues the cell unquoted, and `\n`,
//! `\r` or `\r\n` outside quotes end a record. Every expman component that must know where a
//! record ends (the writer's tail check, the readers, the Arrow parser's splitting, the UI's
//! tails) asks this module, so none can drift from what a CSV reader will see.
//!
//! A quote-parity count (toggle on every `"`) agrees with this only for files whose quotes are
//! all at field starts or doubled inside quoted cells, as expman writes them; one stray `"` in a
//! hand-edited row flips it for the rest of the file. [`quotes_are_regular`] says whether the
//! cheap parity rule is exact for given bytes.

use memchr::{memchr, memchr3};

/// The state of a scan between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside quotes; `prev` (below) says whether a `"` would start a quoted cell.
    Unquoted,
    /// Inside a quoted cell.
    Quoted,
    /// Just after a `"` inside a quoted cell: it either doubles (`""`) or closes the cell.
    QuoteInQuoted,
}

/// How the scanned bytes end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// The last byte ended a record (or nothing was scanned): a new record may follow directly.
    Complete,
    /// A record without its line end, and no quoted cell open: it starts at this offset.
    OpenRecord(u64),
    /// A record inside a quoted cell that never closes: it starts at this offset.
    OpenQuote(u64),
}

/// An incremental scan over consecutive chunks of one byte stream, starting at a record
/// boundary (the first byte after a header line, say).
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    state: State,
    /// The last byte seen outside quotes (a `"` at the start of a field follows `,`, `\n`, `\r`).
    prev: u8,
    /// Stream offset of the next byte.
    pos: u64,
    /// Stream offset just past the last record terminator.
    complete: u64,
    /// Stream offset of the first byte of the record being scanned.
    record_start: u64,
}

impl Scanner {
    /// A scanner whose first byte is at stream offset `start`, a record boundary.
    pub(crate) fn new(start: u64) -> Scanner {
        Scanner {
            state: State::Unquoted,
            prev: b'\n',
            pos: start,
            complete: start,
            record_start: start,
        }
    }

    /// Scans the next chunk of the stream.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let base = self.pos;
        let mut i = 0;
        while i < chunk.len() {
            match self.state {
                State::Unquoted => {
                    let Some(k) = memchr3(b'"', b'\n', b'\r', &chunk[i..]) else {
                        self.prev = chunk[chunk.len() - 1];
                        i = chunk.len();
                        continue;
                    };
                    let j = i + k;
                    let before = if j > 0 { chunk[j - 1] } else { self.prev };
                    match chunk[j] {
                        b'"' if matches!(before, b',' | b'\n' | b'\r') => {
                            self.state = State::Quoted;
                        }
                        b'"' => {}
                        _ => self.end_record(base + j as u64 + 1),
                    }
                    self.prev = chunk[j];
                    i = j + 1;
                }
                State::Quoted => match memchr(b'"', &chunk[i..]) {
                    Some(k) => {
                        self.state = State::QuoteInQuoted;
                        i += k + 1;
                    }
                    None => i = chunk.len(),
                },
                State::QuoteInQuoted => {
                    let b = chunk[i];
                    match b {
                        b'"' => self.state = State::Quoted,
                        b'\n' | b'\r' => {
                            self.state = State::Unquoted;
                            self.end_record(base + i as u64 + 1);
                        }
                        _ => self.state = State::Unquoted,
                    }
                    self.prev = b;
                    i += 1;
                }
            }
        }
        self.pos = base + chunk.len() as u64;
    }

    fn end_record(&mut self, after: u64) {
        self.complete = after;
        self.record_start = after;
    }

    /// Stream offset just past the last complete record (the scan's start when there is none).
    pub(crate) fn complete_end(&self) -> u64 {
        self.complete
    }

    /// How the bytes scanned so far end.
    pub(crate) fn tail(&self) -> Tail {
        if self.complete == self.pos {
            Tail::Complete
        } else if self.state == State::Quoted {
            Tail::OpenQuote(self.record_start)
        } else {
            Tail::OpenRecord(self.record_start)
        }
    }
}

/// The length of the complete records at the start of `body` (which starts at a record
/// boundary) and how what follows them ends.
pub(crate) fn complete_prefix(body: &[u8]) -> (usize, Tail) {
    let mut scanner = Scanner::new(0);
    scanner.feed(body);
    (scanner.complete_end() as usize, scanner.tail())
}

/// The length of the complete records at the start of `body` (which starts at a record
/// boundary): [`complete_prefix`]'s, faster where the bytes allow. Without quotes it is the
/// last line end; with quotes as expman writes them (see [`quotes_are_regular`]) the quote
/// parity before a line end, walking back from the end; otherwise the full scan.
#[cfg_attr(not(feature = "arrow"), allow(dead_code))]
pub(crate) fn complete_len(body: &[u8]) -> usize {
    if memchr(b'"', body).is_none() {
        return memchr::memrchr2(b'\n', b'\r', body).map_or(0, |i| i + 1);
    }
    if !quotes_are_regular(body) {
        return complete_prefix(body).0;
    }
    let quotes = memchr::memchr_iter(b'"', body).count();
    let mut quotes_after = 0usize;
    let mut end = body.len();
    while let Some(i) = memchr::memrchr3(b'\n', b'\r', b'"', &body[..end]) {
        if body[i] == b'"' {
            quotes_after += 1;
        } else if (quotes - quotes_after).is_multiple_of(2) {
            return i + 1;
        }
        end = i;
    }
    0
}

/// The bytes to write before a new record so that it starts a record of its own after bytes
/// that end as `tail` with `last_byte`: nothing after a `\n`; a line end after a `\r` (so line
/// tools see the record on its own line too) or after an open record; a closing quote and a
/// line end inside an open quoted cell. Nothing before is ever removed.
///
/// Except when the open quoted cell `swallows_rows` (a stray `"` typed into an old row, with
/// the rest of the file after it): closing it would hide those rows inside one cell for good
/// (and a user who later deletes the stray quote would find our closing quote swallowing the
/// rows after it instead). Then the new record only starts a line of its own, readers report
/// the unclosed quote by its line, and deleting the stray quote brings back every row.
pub(crate) fn separator(tail: Tail, last_byte: Option<u8>, swallows_rows: bool) -> &'static [u8] {
    match tail {
        Tail::Complete if last_byte == Some(b'\r') => b"\n",
        Tail::Complete => b"",
        Tail::OpenQuote(_) if swallows_rows && last_byte == Some(b'\n') => b"",
        Tail::OpenRecord(_) | Tail::OpenQuote(_) if swallows_rows => b"\n",
        Tail::OpenRecord(_) => b"\n",
        Tail::OpenQuote(_) => b"\"\n",
    }
}

/// Whether counting quotes (a record ends at a line end after an even number of `"`) finds
/// exactly the records of [`Scanner`] in `body`: every `"` outside a quoted cell starts a
/// field, and every closing `"` is followed by a field or record end. True for everything
/// expman writes; costs time in the number of quotes only.
#[cfg_attr(not(feature = "arrow"), allow(dead_code))]
pub(crate) fn quotes_are_regular(body: &[u8]) -> bool {
    let mut inside = false;
    let mut i = 0;
    while let Some(k) = memchr(b'"', &body[i..]) {
        let j = i + k;
        if inside {
            match body.get(j + 1) {
                Some(b'"') => {
                    i = j + 2;
                    continue;
                }
                None | Some(b',' | b'\n' | b'\r') => inside = false,
                Some(_) => return false,
            }
        } else {
            if j > 0 && !matches!(body[j - 1], b',' | b'\n' | b'\r') {
                return false;
            }
            inside = true;
        }
        i = j + 1;
    }
    true
}

/// The 1-based line number of byte `offset` of `bytes`.
pub(crate) fn line_of(bytes: &[u8], offset: usize) -> u64 {
    memchr::memchr_iter(b'\n', &bytes[..offset.min(bytes.len())]).count() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records as rust-csv (csv-core) reads them: the reference this module must agree with.
    /// It also returns a last record that has no terminator.
    fn csv_records(body: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let mut records = Vec::new();
        let mut record = csv::ByteRecord::new();
        while let Ok(true) = reader.read_byte_record(&mut record) {
            records.push(record.iter().map(<[u8]>::to_vec).collect());
        }
        records
    }

    #[test]
    fn quotes_open_only_at_field_starts() {
        assert_eq!(complete_prefix(b"a,b\"c\nd,e\n"), (10, Tail::Complete));
        assert_eq!(complete_prefix(b"a,\"b\nc\"\nd"), (8, Tail::OpenRecord(8)));
        assert_eq!(complete_prefix(b"a,b\n\"c,d\ne"), (4, Tail::OpenQuote(4)));
        assert_eq!(complete_prefix(b"a,\"x\"\"y\"\n"), (9, Tail::Complete));
        assert_eq!(complete_prefix(b"a,\"x\"y\"z\n"), (9, Tail::Complete));
        assert_eq!(complete_prefix(b"a\r\nb\rc"), (5, Tail::OpenRecord(5)));
        assert_eq!(complete_prefix(b""), (0, Tail::Complete));
    }

    #[test]
    fn chunked_scans_equal_whole_scans() {
        let body = b"x,\"a\"\"\nb\",c\nd,e\"f\n\"g\r\n";
        let (whole, tail) = complete_prefix(body);
        for split in 0..=body.len() {
            let mut scanner = Scanner::new(0);
            scanner.feed(&body[..split]);
            scanner.feed(&body[split..]);
            assert_eq!(
                (scanner.complete_end() as usize, scanner.tail()),
                (whole, tail)
            );
        }
    }

    #[test]
    fn separators_keep_every_byte_and_start_a_record() {
        for (before, sep) in [
            (&b"a,b\n"[..], &b""[..]),
            (b"a,b\r", b"\n"),
            (b"a,b", b"\n"),
            (b"a,\"b", b"\"\n"),
            (b"a,\"b\"", b"\n"),
        ] {
            let (_, tail) = complete_prefix(before);
            assert_eq!(
                separator(tail, before.last().copied(), false),
                sep,
                "{before:?}"
            );
            let mut bytes = before.to_vec();
            bytes.extend_from_slice(sep);
            bytes.extend_from_slice(b"new,row\n");
            let records = csv_records(&bytes);
            assert_eq!(records.len(), csv_records(before).len() + 1, "{bytes:?}");
            assert_eq!(
                records.last(),
                Some(&vec![b"new".to_vec(), b"row".to_vec()])
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_rust_csv(body in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b',', b'"', b'\n', b'\r', b' ']), 0..40)) {
            let (end, tail) = complete_prefix(&body);
            proptest::prop_assert_eq!(complete_len(&body), end);
            let (all, complete) = (csv_records(&body), csv_records(&body[..end]));
            if tail == Tail::Complete {
                proptest::prop_assert_eq!(&all, &complete);
            } else {
                proptest::prop_assert_eq!(all.len(), complete.len() + 1);
                proptest::prop_assert_eq!(&all[..complete.len()], &complete[..]);
            }
            if quotes_are_regular(&body) {
                let parity_end = body
                    .iter()
                    .enumerate()
                    .scan(false, |inside, (i, &b)| {
                        if b == b'"' { *inside = !*inside; }
                        Some((i, b, *inside))
                    })
                    .filter(|&(_, b, inside)| !inside && (b == b'\n' || b == b'\r'))
                    .map(|(i, _, _)| i + 1)
                    .last()
                    .unwrap_or(0);
                proptest::prop_assert_eq!(parity_end, end);
            }
        }
    }
}
