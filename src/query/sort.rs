//! `--sort [-]FIELD`: one ordering of experiments for the CLI, the UI and Python.

use std::cmp::Ordering;
use std::fmt;

use super::error::QueryError;
use super::field::{FieldKind, FieldPath, parse_field};
use super::time;
use super::value::{FieldValue, Number, Record, lower, number_text};

/// One sort key: a field, ascending unless written with a leading `-`.
///
/// Values sort as follows, whatever the direction: numbers (integers and floats together,
/// and texts that read wholly as numbers) before times before texts; texts ignoring case first
/// and by case to break ties; tags as their comma-joined text. NaN comes after every number and
/// missing values come last, in both directions. `-` reverses the order of the present values
/// only.
///
/// ```
/// use expman::query::{FieldPath, SortKey};
/// let key = SortKey::parse("-metrics.val_acc.max").unwrap();
/// assert!(key.descending());
/// assert_eq!(key.to_string(), "-metrics.val_acc.max");
/// assert_eq!(SortKey::parse("+name").unwrap().field(), &FieldPath::Name);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    field: FieldPath,
    descending: bool,
}

impl SortKey {
    /// A key on `field`.
    pub fn new(field: FieldPath, descending: bool) -> SortKey {
        SortKey { field, descending }
    }

    /// Reads `[-|+]FIELD`; errors point into `text` like a query's.
    pub fn parse(text: &str) -> Result<SortKey, QueryError> {
        let trimmed = text.trim_start();
        let lead = text.len() - trimmed.len();
        let (descending, skip) = match trimmed.as_bytes().first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let word = trimmed[skip..].trim_end();
        if word.is_empty() {
            return Err(QueryError::new(
                text,
                text.len(),
                0,
                "expected a field to sort by, as in `name` or `-metrics.val_acc.max` (descending)",
            ));
        }
        Ok(SortKey {
            field: parse_field(text, word, lead + skip)?,
            descending,
        })
    }

    /// The field.
    pub fn field(&self) -> &FieldPath {
        &self.field
    }

    /// Whether the order is reversed (missing values stay last).
    pub fn descending(&self) -> bool {
        self.descending
    }

    /// Orders two records by this key alone.
    pub fn compare<R: Record + ?Sized>(&self, a: &R, b: &R) -> Ordering {
        self.cell(a).cmp(&self.cell(b))
    }

    fn cell<R: Record + ?Sized>(&self, record: &R) -> Cell {
        Cell::new(
            record.field(&self.field),
            self.field.kind(),
            self.descending,
        )
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        write!(f, "{}", self.field)
    }
}

/// Orders two records by `keys`, the first deciding unless equal, then the next.
pub fn compare<R: Record + ?Sized>(a: &R, b: &R, keys: &[SortKey]) -> Ordering {
    keys.iter()
        .map(|k| k.compare(a, b))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Sorts `records` by `keys` (stable: equal records keep their order). Each record's values are
/// read once.
pub fn sort<R: Record>(records: &mut [R], keys: &[SortKey]) {
    if keys.is_empty() {
        return;
    }
    records.sort_by_cached_key(|r| keys.iter().map(|k| k.cell(r)).collect::<Vec<_>>());
}

/// A value ready for ordering, with its key's direction.
#[derive(Debug, PartialEq)]
struct Cell {
    /// 0: a value, 1: NaN, 2: missing.
    tier: u8,
    value: Present,
    descending: bool,
}

#[derive(Debug, PartialEq)]
enum Present {
    None,
    Number(Number),
    Time(i64),
    /// Lowercase first, the original to break ties (`None` when it is the lowercase one: most
    /// names are, and this saves an allocation per record).
    Text(String, Option<String>),
}

impl Present {
    fn class(&self) -> u8 {
        match self {
            Present::None => 0,
            Present::Number(_) => 1,
            Present::Time(_) => 2,
            Present::Text(..) => 3,
        }
    }
}

impl Cell {
    fn new(value: FieldValue<'_>, kind: FieldKind, descending: bool) -> Cell {
        let present = |value| Cell {
            tier: 0,
            value,
            descending,
        };
        let text = |s: String| {
            let lowered = lower(&s);
            let original = (lowered != s).then_some(s);
            present(Present::Text(lowered, original))
        };
        match value {
            FieldValue::Missing => Cell {
                tier: 2,
                value: Present::None,
                descending,
            },
            FieldValue::Float(x) if x.is_nan() => Cell {
                tier: 1,
                value: Present::None,
                descending,
            },
            FieldValue::Int(n) => present(Present::Number(n.into())),
            FieldValue::Float(x) => present(Present::Number(x.into())),
            FieldValue::Time(t) => present(Present::Time(time::micros(t))),
            FieldValue::Str(s) => {
                if kind == FieldKind::Time
                    && let Some(at) = time::parse_rfc3339(&s)
                {
                    return present(Present::Time(at));
                }
                if kind != FieldKind::Text
                    && let Some(n) = Number::parse(s.trim())
                {
                    return present(Present::Number(n));
                }
                text(s.into_owned())
            }
            FieldValue::List(items) if items.is_empty() => {
                Cell::new(FieldValue::Missing, kind, descending)
            }
            FieldValue::List(items) => text(items.join(", ")),
            bool @ FieldValue::Bool(_) => text(number_text(&bool).unwrap_or_default()),
        }
    }
}

impl Eq for Cell {}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cell {
    fn cmp(&self, other: &Self) -> Ordering {
        self.tier.cmp(&other.tier).then_with(|| {
            let order = match (&self.value, &other.value) {
                (Present::Number(a), Present::Number(b)) => {
                    a.cmp(b).unwrap_or_else(|| a.float.total_cmp(&b.float))
                }
                (Present::Time(a), Present::Time(b)) => a.cmp(b),
                (Present::Text(al, a), Present::Text(bl, b)) => al
                    .cmp(bl)
                    .then_with(|| a.as_deref().unwrap_or(al).cmp(b.as_deref().unwrap_or(bl))),
                (a, b) => a.class().cmp(&b.class()),
            };
            if self.descending {
                order.reverse()
            } else {
                order
            }
        })
    }
}
