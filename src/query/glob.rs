//! Glob patterns for `~`: `*` any run of characters, `?` one character, `[abc]`, `[a-z]`,
//! `[!abc]` (or `[^abc]`) one character of (or not of) a set. Case is ignored. A pattern must
//! match the whole value: `resnet*` matches `ResNet-50`, not `my-resnet`.
//!
//! Patterns are compiled once; the common shapes (`abc`, `abc*`, `*abc`, `*abc*`) skip the
//! general matcher.

use super::value::{contains_ignoring_case, eq_ignoring_case, lower};

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Glob {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Char(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Compiles `pattern`; the error gives the character offset (in `pattern`) of an unclosed
    /// `[` and what to write.
    pub(crate) fn new(pattern: &str) -> Result<Glob, (usize, String)> {
        let chars: Vec<char> = pattern.chars().collect();
        // One character's lowercase form; sets compare single characters.
        let low = |c: char| c.to_lowercase().next().unwrap_or(c);
        let mut parts = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if parts.last() != Some(&Part::Star) {
                        parts.push(Part::Star);
                    }
                }
                '?' => parts.push(Part::Any),
                '[' => {
                    let open = i;
                    i += 1;
                    let negated = matches!(chars.get(i), Some('!' | '^'));
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    // A `]` right after the opening is a member, as in shell globs: `[]]`.
                    let mut first = true;
                    loop {
                        match chars.get(i) {
                            None => {
                                return Err((
                                    open,
                                    "this `[` has no closing `]`; write `[[]` to match a `[`"
                                        .to_string(),
                                ));
                            }
                            Some(']') if !first => break,
                            Some(&c) => {
                                if chars.get(i + 1) == Some(&'-')
                                    && chars.get(i + 2).is_some_and(|&d| d != ']')
                                {
                                    ranges.push((low(c), low(chars[i + 2])));
                                    i += 3;
                                } else {
                                    ranges.push((low(c), low(c)));
                                    i += 1;
                                }
                            }
                        }
                        first = false;
                    }
                    parts.push(Part::Set { negated, ranges });
                }
                c => parts.extend(c.to_lowercase().map(Part::Char)),
            }
            i += 1;
        }
        Ok(Glob::shape(parts))
    }

    fn shape(parts: Vec<Part>) -> Glob {
        let literal = |parts: &[Part]| -> Option<String> {
            parts
                .iter()
                .map(|p| match p {
                    Part::Char(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        let n = parts.len();
        let star_at = |i: usize| parts.get(i) == Some(&Part::Star);
        let shaped = match (n > 0 && star_at(0), n > 0 && star_at(n - 1)) {
            (false, false) => literal(&parts).map(Glob::Exact),
            (false, true) => literal(&parts[..n - 1]).map(Glob::Prefix),
            (true, false) => literal(&parts[1..]).map(Glob::Suffix),
            (true, true) if n >= 2 => literal(&parts[1..n - 1]).map(Glob::Contains),
            // A lone `*`.
            (true, true) => Some(Glob::Contains(String::new())),
        };
        shaped.unwrap_or(Glob::General(parts))
    }

    /// Whether the whole of `text` matches, ignoring case.
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Glob::Exact(s) => eq_ignoring_case(text, s),
            Glob::Prefix(s) => starts_with_ignoring_case(text, s),
            Glob::Suffix(s) => ends_with_ignoring_case(text, s),
            Glob::Contains(s) => contains_ignoring_case(text, s),
            Glob::General(parts) => {
                if text.is_ascii() {
                    let bytes: Vec<char> = text
                        .bytes()
                        .map(|b| b.to_ascii_lowercase() as char)
                        .collect();
                    general(parts, &bytes)
                } else {
                    let chars: Vec<char> = lower(text).chars().collect();
                    general(parts, &chars)
                }
            }
        }
    }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    if text.is_ascii() {
        text.len() >= prefix.len()
            && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    } else {
        lower(text).starts_with(prefix)
    }
}

fn ends_with_ignoring_case(text: &str, suffix: &str) -> bool {
    if text.is_ascii() {
        text.len() >= suffix.len()
            && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    } else {
        lower(text).ends_with(suffix)
    }
}

/// The classic linear-time wildcard match: on a mismatch, go back to the last `*` and let it
/// take one more character.
fn general(parts: &[Part], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match parts.get(p) {
            Some(Part::Star) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(Part::Char(c)) => *c == text[t],
            Some(Part::Any) => true,
            Some(Part::Set { negated, ranges }) => {
                ranges
                    .iter()
                    .any(|&(lo, hi)| lo <= text[t] && text[t] <= hi)
                    != *negated
            }
            None => false,
        };
        if step {
            p += 1;
            t += 1;
        } else if let Some((star, from)) = backtrack {
            p = star + 1;
            t = from + 1;
            backtrack = Some((star, from + 1));
        } else {
            return false;
        }
    }
    parts[p..].iter().all(|part| *part == Part::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().matches(text)
    }

    #[test]
    fn shapes() {
        assert_eq!(Glob::new("ResNet").unwrap(), Glob::Exact("resnet".into()));
        assert_eq!(Glob::new("res*").unwrap(), Glob::Prefix("res".into()));
        assert_eq!(Glob::new("*net").unwrap(), Glob::Suffix("net".into()));
        assert_eq!(Glob::new("**net**").unwrap(), Glob::Contains("net".into()));
        assert_eq!(Glob::new("*").unwrap(), Glob::Contains(String::new()));
        assert!(matches!(Glob::new("r?s*").unwrap(), Glob::General(_)));
    }

    #[test]
    fn whole_value_case_ignored() {
        assert!(matches("resnet*", "ResNet-50"));
        assert!(!matches("resnet*", "my-resnet"));
        assert!(matches("*resnet*", "my-ResNet-50"));
        assert!(matches("*-50", "resnet-50"));
        assert!(matches("*", ""));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("ÉTÉ*", "été 2025"));
    }

    #[test]
    fn general_patterns() {
        assert!(matches("run_?", "run_7"));
        assert!(!matches("run_?", "run_17"));
        assert!(matches("run_[0-9][0-9]", "run_17"));
        assert!(!matches("run_[!0-9]*", "run_17"));
        assert!(matches("run_[^0-9]*", "run_x"));
        assert!(matches("a*b*c", "a__b__b__c"));
        assert!(!matches("a*b*c", "a__b__b__"));
        assert!(matches("[[]x]", "[x]"));
        assert!(matches("[]]", "]"));
        assert!(matches("[a-]", "-"));
        assert!(matches("*[*]*", "a*b"));
        assert!(!matches("*[*]*", "ab"));
        assert!(matches("?é*", "xÉy"));
        assert!(matches("*a*a*a*a*a*b", &format!("{}b", "a".repeat(10_000))));
    }

    #[test]
    fn unclosed_set_is_an_error_at_the_bracket() {
        let (at, message) = Glob::new("ab[cd").unwrap_err();
        assert_eq!(at, 2);
        assert!(message.contains("`[[]`"));
    }
}
