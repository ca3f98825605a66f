//! The query language: one grammar for the UI's filter box, `EXP ls --where` and Python's
//! `where=`, parsed and evaluated here, and one sort order for `--sort`.
//!
//! ```
//! use expman::query::{FieldPath, FieldValue, Query, Record};
//!
//! struct Exp { name: &'static str, tags: Vec<String>, lr: f64, val_acc_max: f64 }
//!
//! impl Record for Exp {
//!     fn field(&self, path: &FieldPath) -> FieldValue<'_> {
//!         match path {
//!             FieldPath::Name => self.name.into(),
//!             FieldPath::Tag => self.tags.as_slice().into(),
//!             FieldPath::Param(p) if p == "lr" => self.lr.into(),
//!             FieldPath::Metric { column, .. } if column == "val_acc" => self.val_acc_max.into(),
//!             _ => FieldValue::Missing,
//!         }
//!     }
//! }
//!
//! let query = Query::parse("params.lr < 1e-3 and metrics.val_acc.max >= 0.85 and tag = cnn")?;
//! let exp = Exp { name: "resnet50", tags: vec!["CNN".into()], lr: 1e-4, val_acc_max: 0.9 };
//! assert!(query.matches(&exp));
//! assert_eq!(query.fields().len(), 3);
//! # Ok::<(), expman::query::QueryError>(())
//! ```
//!
//! The caller implements [`Record`] over whatever it holds, so this module does not depend on
//! how experiments are stored. A [`Query`] is compiled once (constants lowercased, numbers,
//! times and globs read) and evaluates without allocating in the common cases.
//!
#![doc = include_str!("GRAMMAR.md")]

mod error;
mod eval;
mod field;
mod glob;
mod lexer;
mod parser;
mod sort;
mod time;
mod value;

use std::fmt;
use std::time::SystemTime;

pub use error::QueryError;
pub use field::{AGGREGATES, Aggregate, Catalog, FIXED_FIELDS, FieldKind, FieldPath};
pub use sort::{SortKey, compare, sort};
pub use value::{FieldValue, Record};

use eval::{Context, Node, SEARCHED};
use parser::{Expr, Spanned};

/// A parsed and compiled query.
///
/// Two queries are equal when they parse to the same tree (`a  AND b` equals `a and b`), and
/// `Display` prints that tree as a canonical query that parses back to an equal one.
#[derive(Debug, Clone)]
pub struct Query {
    /// The text as given: spans point into it.
    source: String,
    expr: Expr,
    node: Node,
}

/// Settings for [`Query::parse_with`]: the clock and time zone that time literals are read in.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    now: SystemTime,
    utc_offset: Option<i32>,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions::new()
    }
}

impl ParseOptions {
    /// The present moment and this machine's time zone.
    pub fn new() -> ParseOptions {
        ParseOptions {
            now: SystemTime::now(),
            utc_offset: None,
        }
    }

    /// The moment `now` stands for (`now-2h` is two hours before it).
    pub fn now(mut self, now: SystemTime) -> ParseOptions {
        self.now = now;
        self
    }

    /// The time zone of dates written without one, in seconds east of UTC (the browser's, when
    /// the server parses the UI's filter); this machine's when not set.
    pub fn utc_offset(mut self, seconds_east: i32) -> ParseOptions {
        self.utc_offset = Some(seconds_east);
        self
    }
}

impl Query {
    /// Parses and compiles `text`, reading relative times against the present and dates in this
    /// machine's time zone. The empty query matches everything.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        Query::parse_with(text, ParseOptions::new())
    }

    /// [`Query::parse`] with the clock and time zone of `options`.
    pub fn parse_with(text: &str, options: ParseOptions) -> Result<Query, QueryError> {
        let expr = parser::parse(text)?;
        let node = Context {
            query: text,
            now: options.now,
            utc_offset: options.utc_offset,
        }
        .compile(&expr)?;
        Ok(Query {
            source: text.to_string(),
            expr,
            node,
        })
    }

    /// Whether `record` satisfies the query.
    pub fn matches<R: Record + ?Sized>(&self, record: &R) -> bool {
        self.node.matches(record)
    }

    /// Whether this is the empty query, which matches everything.
    pub fn is_empty(&self) -> bool {
        matches!(self.expr, Expr::All)
    }

    /// The fields the query reads, each once, in the order they first appear; a search word
    /// reads name, id, status, tag and description. For choosing what to load and for the UI.
    pub fn fields(&self) -> Vec<FieldPath> {
        let mut fields = Vec::new();
        walk_fields(&self.expr, &mut |field: &Spanned<FieldPath>| {
            if !fields.contains(&field.value) {
                fields.push(field.value.clone());
            }
        });
        fields
    }

    /// Checks the parameters and metric columns the query names against `catalog` (the ones
    /// that exist): the first unknown one is an error pointing at it, with the closest known
    /// field as a "did you mean". Parsing alone cannot know these names; the UI and `EXP ls`
    /// can, and a typo would otherwise silently match nothing.
    ///
    /// ```
    /// use expman::query::{Catalog, Query};
    /// let catalog = Catalog::new(["lr", "depth"], ["val_acc"]);
    /// let err = Query::parse("params.lrr < 0.1").unwrap().check(&catalog).unwrap_err();
    /// assert_eq!(err.message(), "no experiment has `params.lrr`; did you mean `params.lr`?");
    /// ```
    pub fn check(&self, catalog: &Catalog) -> Result<(), QueryError> {
        let mut unknown = None;
        walk_fields(&self.expr, &mut |field: &Spanned<FieldPath>| {
            if unknown.is_none() && field.end > field.start && !catalog.contains(&field.value) {
                unknown = Some(field.clone());
            }
        });
        let Some(field) = unknown else {
            return Ok(());
        };
        let hint = catalog
            .suggest(&field.value)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Err(QueryError::new(
            &self.source,
            field.start,
            field.end - field.start,
            format!("no experiment has `{}`{hint}", field.value),
        ))
    }
}

/// Calls `visit` on each field the query reads; search words visit the searched fields with an
/// empty span.
fn walk_fields(expr: &Expr, visit: &mut dyn FnMut(&Spanned<FieldPath>)) {
    match expr {
        Expr::All => {}
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| walk_fields(e, visit)),
        Expr::Not(inner) => walk_fields(inner, visit),
        Expr::Compare { field, .. } | Expr::In { field, .. } => visit(field),
        Expr::Search(word) => {
            let lowered = word.text.to_lowercase();
            let searched: &[FieldPath] = if word.quoted {
                &SEARCHED
            } else if lowered.starts_with("status:") {
                &[FieldPath::Status]
            } else if lowered.starts_with("tag:") {
                &[FieldPath::Tag]
            } else {
                &SEARCHED
            };
            for field in searched {
                visit(&Spanned {
                    value: field.clone(),
                    start: word.start,
                    end: word.start,
                });
            }
        }
    }
}

impl PartialEq for Query {
    fn eq(&self, other: &Query) -> bool {
        self.expr == other.expr
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}

impl std::str::FromStr for Query {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Query, QueryError> {
        Query::parse(text)
    }
}
