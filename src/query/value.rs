//! What a record answers for a field, and the text rules shared by matching and sorting.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::time::SystemTime;

use super::field::FieldPath;

/// One experiment as a query sees it. The caller implements it over whatever it holds (the
/// server's index, a loaded `config.json` and summary, a Python dict), so the query language
/// does not depend on how experiments are stored.
///
/// ```
/// use expman::query::{FieldPath, FieldValue, Query, Record};
///
/// struct Exp { name: String, lr: f64 }
///
/// impl Record for Exp {
///     fn field(&self, path: &FieldPath) -> FieldValue<'_> {
///         match path {
///             FieldPath::Name => FieldValue::from(self.name.as_str()),
///             FieldPath::Param(p) if p == "lr" => FieldValue::Float(self.lr),
///             _ => FieldValue::Missing,
///         }
///     }
/// }
///
/// let query = Query::parse("name ~ resnet* and params.lr < 1e-3").unwrap();
/// assert!(query.matches(&Exp { name: "resnet50".into(), lr: 1e-4 }));
/// assert!(!query.matches(&Exp { name: "resnet50".into(), lr: 1e-2 }));
/// ```
pub trait Record {
    /// The value of `path`, or [`FieldValue::Missing`] when this experiment has none (a
    /// parameter it did not record, a metric column its latest run lacks).
    fn field(&self, path: &FieldPath) -> FieldValue<'_>;
}

impl<R: Record + ?Sized> Record for &R {
    fn field(&self, path: &FieldPath) -> FieldValue<'_> {
        (**self).field(path)
    }
}

/// A record's value for one field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue<'a> {
    /// No value: see the crate's query docs for how comparisons treat it.
    Missing,
    /// An integer.
    Int(i64),
    /// A floating-point number (NaN is a number that equals nothing and is ordered after every
    /// other number).
    Float(f64),
    /// A boolean, compared as the text `true` or `false`.
    Bool(bool),
    /// Text. A string that reads wholly as a number also compares as one against a number in
    /// the query, and an RFC 3339 string as a time against a time.
    Str(Cow<'a, str>),
    /// A list of texts (the tags).
    List(Cow<'a, [String]>),
    /// A point in time.
    Time(SystemTime),
}

impl<'a> From<&'a str> for FieldValue<'a> {
    fn from(text: &'a str) -> FieldValue<'a> {
        FieldValue::Str(Cow::Borrowed(text))
    }
}

impl From<String> for FieldValue<'_> {
    fn from(text: String) -> FieldValue<'static> {
        FieldValue::Str(Cow::Owned(text))
    }
}

impl<'a> From<&'a [String]> for FieldValue<'a> {
    fn from(list: &'a [String]) -> FieldValue<'a> {
        FieldValue::List(Cow::Borrowed(list))
    }
}

impl From<i64> for FieldValue<'_> {
    fn from(n: i64) -> FieldValue<'static> {
        FieldValue::Int(n)
    }
}

impl From<f64> for FieldValue<'_> {
    fn from(x: f64) -> FieldValue<'static> {
        FieldValue::Float(x)
    }
}

impl From<bool> for FieldValue<'_> {
    fn from(b: bool) -> FieldValue<'static> {
        FieldValue::Bool(b)
    }
}

impl From<SystemTime> for FieldValue<'_> {
    fn from(t: SystemTime) -> FieldValue<'static> {
        FieldValue::Time(t)
    }
}

impl<'a, T: Into<FieldValue<'a>>> From<Option<T>> for FieldValue<'a> {
    fn from(value: Option<T>) -> FieldValue<'a> {
        value.map_or(FieldValue::Missing, Into::into)
    }
}

/// A number read from a query or from a record's text: an integer when it is one, for exact
/// comparison of large integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Number {
    pub float: f64,
    pub int: Option<i64>,
}

impl Number {
    /// Reads text that is wholly a decimal number (`18`, `-0.5`, `1e-3`, `.5`); not `inf`,
    /// `nan`, hex or anything with spaces, which are words.
    pub(crate) fn parse(text: &str) -> Option<Number> {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        let starts_like_a_number = digits.starts_with(|c: char| c.is_ascii_digit())
            || (digits.starts_with('.') && digits[1..].starts_with(|c: char| c.is_ascii_digit()));
        if !starts_like_a_number {
            return None;
        }
        let float: f64 = text.parse().ok()?;
        Some(Number {
            float,
            int: text.parse().ok(),
        })
    }

    pub(crate) fn cmp(&self, other: &Number) -> Option<Ordering> {
        match (self.int, other.int) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => self.float.partial_cmp(&other.float),
        }
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        Number {
            float: n as f64,
            int: Some(n),
        }
    }
}

impl From<f64> for Number {
    fn from(x: f64) -> Number {
        Number {
            float: x,
            int: None,
        }
    }
}

/// The lowercase form of `text`, the same rule everywhere a query ignores case.
pub(crate) fn lower(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.chars().flat_map(char::to_lowercase).collect()
    }
}

/// `text` compared with `lowered` (already [`lower`]ed), ignoring case in `text`, without
/// allocating.
pub(crate) fn cmp_ignoring_case(text: &str, lowered: &str) -> Ordering {
    if text.is_ascii() {
        text.bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(lowered.bytes())
    } else {
        text.chars()
            .flat_map(char::to_lowercase)
            .cmp(lowered.chars())
    }
}

/// Whether `text` equals `lowered` (already [`lower`]ed), ignoring case in `text`: the length
/// check first, since most values differ in length.
pub(crate) fn eq_ignoring_case(text: &str, lowered: &str) -> bool {
    if text.is_ascii() {
        text.len() == lowered.len() && text.as_bytes().eq_ignore_ascii_case(lowered.as_bytes())
    } else {
        cmp_ignoring_case(text, lowered).is_eq()
    }
}

/// Whether `lowered` (already [`lower`]ed) occurs in `text`, ignoring case in `text`.
pub(crate) fn contains_ignoring_case(text: &str, lowered: &str) -> bool {
    let (hay, needle) = (text.as_bytes(), lowered.as_bytes());
    let Some(&first) = needle.first() else {
        return true;
    };
    if !text.is_ascii() {
        return lower(text).contains(lowered);
    }
    if hay.len() < needle.len() {
        return false;
    }
    // Candidates are the places where the first byte occurs in either case; memchr finds them
    // with SIMD.
    let starts = &hay[..=hay.len() - needle.len()];
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), starts)
        .any(|i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// A number as text, for comparing it with a text in the query (`params.depth ~ "1*"`).
pub(crate) fn number_text(value: &FieldValue<'_>) -> Option<String> {
    match value {
        FieldValue::Int(n) => Some(n.to_string()),
        FieldValue::Float(x) => Some(x.to_string()),
        FieldValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_decimal_words_only() {
        for yes in ["18", "-0.5", "+3", "1e-3", "1E3", ".5", "-.5", "1.", "007"] {
            assert!(Number::parse(yes).is_some(), "{yes}");
        }
        for no in [
            "inf", "-inf", "nan", "NaN", "0x10", "1e", "", "-", "1 ", " 1", "1,5", "e3",
        ] {
            assert!(Number::parse(no).is_none(), "{no}");
        }
        assert_eq!(Number::parse("18").unwrap().int, Some(18));
        assert_eq!(Number::parse("18.0").unwrap().int, None);
    }

    #[test]
    fn large_integers_compare_exactly() {
        let a = Number::from(9_007_199_254_740_993i64);
        let b = Number::from(9_007_199_254_740_992i64);
        assert_eq!(a.cmp(&b), Some(Ordering::Greater));
        assert_eq!(
            Number::from(2i64).cmp(&Number::from(2.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(Number::from(f64::NAN).cmp(&Number::from(1.0)), None);
    }

    #[test]
    fn case_is_ignored_in_ascii_and_beyond() {
        assert_eq!(cmp_ignoring_case("ResNet", "resnet"), Ordering::Equal);
        assert_eq!(cmp_ignoring_case("ÉTÉ", &lower("été")), Ordering::Equal);
        assert_eq!(cmp_ignoring_case("abc", "abd"), Ordering::Less);
        assert!(contains_ignoring_case("My ResNet-50", "resnet"));
        assert!(contains_ignoring_case("Überlauf", &lower("ÜBER")));
        assert!(!contains_ignoring_case("vit", "resnet"));
        assert!(contains_ignoring_case("x", ""));
        assert!(contains_ignoring_case("RESNET", "resnet"));
        assert!(contains_ignoring_case("aaab", "ab"));
        assert!(!contains_ignoring_case("ab", "abc"));
        assert!(contains_ignoring_case("x-50", "-50"));
        assert!(eq_ignoring_case("Finished", "finished"));
        assert!(!eq_ignoring_case("Finished", "finishe"));
        assert!(eq_ignoring_case("ÉTÉ", &lower("été")));
    }
}
