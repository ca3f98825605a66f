//! Padding records with empty cells, so that a widened table stays rectangular.
//!
//! When a table gains columns, every earlier record must gain as many empty cells: strict CSV
//! readers (pyarrow, RFC 4180) refuse records shorter than the header. The widening already
//! rewrites the file, so the padding happens in that copy, in user space: records are found
//! with the framing rules of [`super::framing`] (a quoted cell may hold line ends; a `"` opens
//! one only at a field start), cells counted outside quotes, and `width - cells` commas go in
//! before each record's line end. Empty lines stay empty (CSV readers skip them), and records
//! that are already as wide are copied as they are. A record wider than the old header (a cell
//! added by hand) is noted, and the writer refuses the widening, which would give its extra
//! cells to the new columns.
//!
//! Lines without a quote or a lone `\r` (all of what expman writes for numbers) take a fast
//! path: one count of the commas in the line.

use memchr::memchr;

/// A streaming padder: feed it the body's bytes in order, in chunks of any size.
pub(crate) struct Padder {
    width: usize,
    /// The width records had before (the old header's).
    old_width: usize,
    /// Line ends passed so far, to name the line of a record too wide.
    lines: u64,
    /// The first record wider than `old_width`: its line (1 = the first body line) and cells.
    too_wide: Option<(u64, usize)>,
    /// Bytes of the current line not yet processed (a line cut by a chunk's end).
    carry: Vec<u8>,
    /// State of a record that continues past a line end (inside a quoted cell).
    open: Option<OpenRecord>,
}

/// Where the scan stands inside a record that spans lines (or a carried tail).
#[derive(Clone, Copy)]
struct OpenRecord {
    /// Delimiters outside quotes so far.
    commas: usize,
    /// No byte of the record yet.
    empty: bool,
    quoted: bool,
    /// A `"` inside a quoted cell: doubled (`""`) or closing, as the next byte tells.
    quote_pending: bool,
    /// The last byte outside quotes (a `"` after `,`, `\n`, `\r` opens a quoted cell).
    prev: u8,
}

impl OpenRecord {
    fn new(prev: u8) -> OpenRecord {
        OpenRecord {
            commas: 0,
            empty: true,
            quoted: false,
            quote_pending: false,
            prev,
        }
    }

    fn at_boundary(&self) -> bool {
        self.empty && !self.quoted && !self.quote_pending
    }
}

impl Padder {
    /// A padder from records of `old_width` cells to `width` cells per record.
    pub(crate) fn new(old_width: usize, width: usize) -> Padder {
        Padder {
            width,
            old_width,
            lines: 0,
            too_wide: None,
            carry: Vec::new(),
            open: None,
        }
    }

    /// Pads the complete lines of `chunk` (with what was carried from the last chunk) into
    /// `out`; keeps an unfinished last line for the next call.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(i) = memchr(b'\n', rest) else {
                self.carry.extend_from_slice(rest);
                return;
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&rest[..=i]);
            self.line(&line, out);
            rest = &rest[i + 1..];
        }
        while let Some(i) = memchr(b'\n', rest) {
            self.line(&rest[..=i], out);
            rest = &rest[i + 1..];
        }
        self.carry.extend_from_slice(rest);
    }

    /// Pads what is left: a last line without a line end is copied as it is (it is no
    /// complete record; the writer puts a line end after it before the new row).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.slow(&carry, out);
        }
    }

    /// One line, ending with `\n`.
    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if self.open.is_none() && memchr::memchr2(b'"', b'\r', body).is_none() {
            if body.is_empty() {
                out.extend_from_slice(line);
                return;
            }
            // Counting a byte in a plain loop vectorises; memchr_iter would stop at each.
            let commas = body.iter().filter(|&&b| b == b',').count();
            out.extend_from_slice(body);
            self.pad(commas, out);
            out.extend_from_slice(&line[body.len()..]);
            self.lines += 1;
            return;
        }
        self.slow(line, out);
    }

    /// The first record that had more cells than the old header (a hand edit): its line,
    /// counting the first line after the header as 1, and its cells. Padding it would have put
    /// its extra cells under the new columns.
    pub(crate) fn too_wide(&self) -> Option<(u64, usize)> {
        self.too_wide
    }

    /// Empty cells for a record of `commas + 1` cells.
    fn pad(&mut self, commas: usize, out: &mut Vec<u8>) {
        if commas + 1 > self.old_width && self.too_wide.is_none() {
            self.too_wide = Some((self.lines + 1, commas + 1));
        }
        for _ in commas + 1..self.width {
            out.push(b',');
        }
    }

    /// Byte by byte, with the framing rules, for lines with quotes or carriage returns.
    fn slow(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut r = self.open.take().unwrap_or(OpenRecord::new(b'\n'));
        for &b in bytes {
            if r.quote_pending {
                r.quote_pending = false;
                if b == b'"' {
                    out.push(b);
                    continue;
                }
                r.quoted = false;
                r.prev = b'"';
            }
            if r.quoted {
                r.quote_pending = b == b'"';
                self.lines += u64::from(b == b'\n');
                out.push(b);
                continue;
            }
            match b {
                // The `\n` of a `\r\n` whose `\r` ended the record.
                b'\n' if r.prev == b'\r' && r.empty => self.lines += 1,
                b'\n' | b'\r' => {
                    if !r.empty {
                        self.pad(r.commas, out);
                    }
                    if b == b'\n' {
                        self.lines += 1;
                    }
                    r = OpenRecord::new(b);
                    out.push(b);
                    continue;
                }
                b'"' if matches!(r.prev, b',' | b'\n' | b'\r') => r.quoted = true,
                b',' => r.commas += 1,
                _ => {}
            }
            r.empty = r.empty && b == b'\n';
            r.prev = b;
            out.push(b);
        }
        self.open = (!r.at_boundary()).then_some(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(body: &[u8], width: usize, chunk: usize) -> Vec<u8> {
        let mut padder = Padder::new(width, width);
        let mut out = Vec::new();
        for part in body.chunks(chunk.max(1)) {
            padder.feed(part, &mut out);
        }
        padder.finish(&mut out);
        out
    }

    #[test]
    fn records_get_empty_cells_up_to_the_width() {
        let body = b"a,1\nb,2,3\n\nc,\"x\ny\",\"q\"\"\"\r\nd,e\"f\n";
        let want = b"a,1,,\nb,2,3,\n\nc,\"x\ny\",\"q\"\"\",\r\nd,e\"f,,\n";
        for chunk in 1..body.len() + 1 {
            assert_eq!(pad(body, 4, chunk), want.to_vec(), "chunk {chunk}");
        }
    }

    #[test]
    fn wide_records_and_unterminated_tails_are_copied_as_they_are() {
        assert_eq!(pad(b"a,b,c,d,e\nf,g", 3, 64), b"a,b,c,d,e\nf,g".to_vec());
        assert_eq!(pad(b"a\rb\n", 2, 64), b"a,\rb,\n".to_vec());
    }

    proptest::proptest! {
        #[test]
        fn every_complete_record_reads_at_the_width(body in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b',', b'"', b'\n', b'\r']), 0..60),
            chunk in 1usize..16) {
            let width = 5;
            let (complete, _) = super::super::framing::complete_prefix(&body);
            let body = &body[..complete];
            let out = pad(body, width, chunk);
            let records = |bytes: &[u8]| {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(bytes);
                reader
                    .byte_records()
                    .map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            };
            let (before, after) = (records(body), records(&out));
            proptest::prop_assert_eq!(before.len(), after.len());
            for (b, a) in before.iter().zip(&after) {
                proptest::prop_assert_eq!(&a[..b.len()], &b[..]);
                proptest::prop_assert_eq!(a.len(), b.len().max(width));
                proptest::prop_assert!(a[b.len()..].iter().all(Vec::is_empty));
            }
        }
    }
}
