//! [`QueryError`]: where a query went wrong, and a caret under the spot.

use std::fmt;

/// How many characters of the query a rendering shows on each side of the caret: a query pasted
/// from a script may be long, and the line with the caret must still fit a terminal.
const WINDOW: usize = 60;

/// A query (or sort key) that cannot be parsed, or names a field that does not exist.
///
/// It knows the spot where parsing failed, as a 1-based [`column`](QueryError::column) in
/// characters (what an editor shows) and as a byte [`offset`](QueryError::offset) (for slicing).
/// `Display` writes one line, `column 12: expected a value after `<``; the alternate form
/// (`{:#}`) and [`render`](QueryError::render) add the query and a caret under the spot:
///
/// ```
/// let err = expman::query::Query::parse("params.lr <<< 1e-3").unwrap_err();
/// assert_eq!(err.column(), 12);
/// assert_eq!(
///     err.render(),
///     "column 12: expected a value after `<`\nparams.lr <<< 1e-3\n           ^"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    query: String,
    offset: usize,
    len: usize,
    message: String,
}

impl QueryError {
    /// An error about `query[offset..offset + len]`.
    pub(crate) fn new(
        query: &str,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> QueryError {
        let offset = floor_char_boundary(query, offset.min(query.len()));
        let end = floor_char_boundary(query, (offset + len).min(query.len()));
        QueryError {
            query: query.to_string(),
            offset,
            len: end - offset,
            message: message.into(),
        }
    }

    /// The 1-based column, in characters, where the query went wrong; one past the last
    /// character when the query ended too early.
    pub fn column(&self) -> usize {
        self.query[..self.offset].chars().count() + 1
    }

    /// The byte offset into the query where it went wrong (the query's length when it ended too
    /// early).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// How many bytes from [`offset`](QueryError::offset) the error is about (the unknown field,
    /// the bad value); 0 at the end of the query.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the error is about no text at all (the query ended too early).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What is wrong and what to write instead, without the column.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The query that failed.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Three lines: the message with its column, the query, and carets under the spot. Long
    /// queries are cut to a window around the spot; tabs and newlines show as spaces so the
    /// caret stays aligned.
    pub fn render(&self) -> String {
        format!("{self:#}")
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: {}",
            self.column(),
            crate::error::cap(&self.message)
        )?;
        if !f.alternate() {
            return Ok(());
        }
        let before: Vec<char> = self.query[..self.offset].chars().collect();
        let spot: Vec<char> = self.query[self.offset..self.offset + self.len]
            .chars()
            .collect();
        let after: Vec<char> = self.query[self.offset + self.len..].chars().collect();
        let (lead, before) = if before.len() > WINDOW {
            ("…", &before[before.len() - WINDOW..])
        } else {
            ("", &before[..])
        };
        let spot = &spot[..spot.len().min(WINDOW)];
        let (after, trail) = if after.len() > WINDOW {
            (&after[..WINDOW], "…")
        } else {
            (&after[..], "")
        };
        let show = |c: &char| if c.is_whitespace() { ' ' } else { *c };
        let line: String = before.iter().chain(spot).chain(after).map(show).collect();
        let pad = lead.chars().count() + before.len();
        write!(
            f,
            "\n{lead}{line}{trail}\n{}{}",
            " ".repeat(pad),
            "^".repeat(spot.len().max(1))
        )
    }
}

impl std::error::Error for QueryError {}

/// A query error becomes the crate's configuration error, with the caret rendering as its
/// message, so `EXP ls --where` and the bindings show it as they show any bad argument.
impl From<QueryError> for crate::Error {
    fn from(err: QueryError) -> crate::Error {
        crate::Error::config("query", err.render())
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_spot_and_spans_it() {
        let err = QueryError::new("nme = x", 0, 3, "unknown field");
        assert_eq!(err.render(), "column 1: unknown field\nnme = x\n^^^");
        let end = QueryError::new("a <", 3, 0, "expected a value");
        assert_eq!(end.column(), 4);
        assert_eq!(end.render(), "column 4: expected a value\na <\n   ^");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let err = QueryError::new("é = x y", 6, 1, "m");
        assert_eq!(err.column(), 6);
        assert!(err.render().ends_with("\n     ^"), "{}", err.render());
    }

    #[test]
    fn long_queries_show_a_window() {
        let query = format!("{} and x <", "a ".repeat(10_000));
        let err = QueryError::new(&query, query.len(), 0, "expected a value");
        let shown = err.render();
        assert!(shown.lines().all(|l| l.chars().count() < 200), "{shown}");
        assert!(shown.lines().nth(1).unwrap().starts_with('…'));
    }

    #[test]
    fn offsets_inside_a_character_move_to_its_start() {
        let err = QueryError::new("é", 1, 1, "m");
        assert_eq!(err.offset(), 0);
    }
}
