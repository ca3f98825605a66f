//! The syntax tree compiled for evaluation (constants lowercased, numbers and times read, globs
//! compiled, each value typed by its field), and the evaluation itself.

use std::cmp::Ordering;
use std::time::SystemTime;

use super::error::QueryError;
use super::field::{FieldKind, FieldPath, closest};
use super::glob::Glob;
use super::lexer::{Op, short};
use super::parser::{Expr, Literal, Spanned};
use super::time::{self, Interval};
use super::value::{
    FieldValue, Number, Record, cmp_ignoring_case, contains_ignoring_case, eq_ignoring_case, lower,
    number_text,
};

/// The states of `status`, lowercase.
pub(crate) const STATUSES: [&str; 4] = ["pending", "running", "finished", "error"];

/// The fields a search word looks in: the board's filter looked in the name, id, status and
/// tags; the description joins them.
pub(crate) const SEARCHED: [FieldPath; 5] = [
    FieldPath::Name,
    FieldPath::Id,
    FieldPath::Status,
    FieldPath::Tag,
    FieldPath::Description,
];

/// A compiled query.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// `field <test>`, its result flipped when `negated` (`!=`, `!~`, `not in`).
    Test {
        field: FieldPath,
        test: Test,
        negated: bool,
    },
    /// A search word, lowercased.
    Search(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Compare(Cmp, Value),
    In(Vec<Value>),
    Glob(Glob),
}

/// `=` and the orderings; `!=` is a negated `=`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A query's constant, read the way its field needs.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Lowercased text.
    Text(String),
    Number(Number),
    Time(Interval),
}

pub(crate) struct Context<'q> {
    pub query: &'q str,
    pub now: SystemTime,
    pub utc_offset: Option<i32>,
}

impl Context<'_> {
    fn error(&self, start: usize, end: usize, message: String) -> QueryError {
        QueryError::new(self.query, start, end - start, message)
    }

    pub(crate) fn compile(&self, expr: &Expr) -> Result<Node, QueryError> {
        Ok(match expr {
            Expr::All => Node::All,
            Expr::And(items) => Node::And(self.compile_all(items)?),
            Expr::Or(items) => Node::Or(self.compile_all(items)?),
            Expr::Not(inner) => Node::Not(Box::new(self.compile(inner)?)),
            Expr::Compare { field, op, value } => {
                let (cmp, negated) = match op.value {
                    Op::Eq => (Cmp::Eq, false),
                    Op::Ne => (Cmp::Eq, true),
                    Op::Lt => (Cmp::Lt, false),
                    Op::Le => (Cmp::Le, false),
                    Op::Gt => (Cmp::Gt, false),
                    Op::Ge => (Cmp::Ge, false),
                    Op::Glob | Op::NotGlob => {
                        return Ok(Node::Test {
                            field: field.value.clone(),
                            test: Test::Glob(self.glob(field, op, value)?),
                            negated: op.value == Op::NotGlob,
                        });
                    }
                };
                let checked = matches!(cmp, Cmp::Eq);
                Node::Test {
                    field: field.value.clone(),
                    test: Test::Compare(cmp, self.value(field, value, checked)?),
                    negated,
                }
            }
            Expr::In {
                field,
                negated,
                values,
            } => Node::Test {
                field: field.value.clone(),
                test: Test::In(
                    values
                        .iter()
                        .map(|v| self.value(field, v, true))
                        .collect::<Result<_, _>>()?,
                ),
                negated: *negated,
            },
            Expr::Search(word) => search(word),
        })
    }

    fn compile_all(&self, items: &[Expr]) -> Result<Vec<Node>, QueryError> {
        items.iter().map(|e| self.compile(e)).collect()
    }

    /// The constant `literal` as `field` needs it. `checked`: an equality, where a status must
    /// be one of the four.
    fn value(
        &self,
        field: &Spanned<FieldPath>,
        literal: &Literal,
        checked: bool,
    ) -> Result<Value, QueryError> {
        let fail = |message: String| self.error(literal.start, literal.end, message);
        match field.value.kind() {
            FieldKind::Number => match Number::parse(literal.text.trim()) {
                Some(n) => Ok(Value::Number(n)),
                None => Err(fail(format!(
                    "expected a number for `{}`, found `{}`",
                    field.value,
                    short(&literal.text)
                ))),
            },
            FieldKind::Time => time::parse(literal.text.trim(), self.now, self.utc_offset)
                .map(Value::Time)
                .map_err(|m| fail(format!("{m}, found `{}`", short(&literal.text)))),
            FieldKind::Any if !literal.quoted => match Number::parse(&literal.text) {
                Some(n) => Ok(Value::Number(n)),
                None => Ok(Value::Text(lower(&literal.text))),
            },
            _ => {
                let text = lower(&literal.text);
                if checked && field.value == FieldPath::Status && !STATUSES.contains(&&*text) {
                    let hint = closest(&text, STATUSES.into_iter())
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    return Err(fail(format!(
                        "unknown status `{}`; {hint}the statuses are pending, running, finished and error (use `~` for a pattern)",
                        short(&literal.text)
                    )));
                }
                Ok(Value::Text(text))
            }
        }
    }

    fn glob(
        &self,
        field: &Spanned<FieldPath>,
        op: &Spanned<Op>,
        literal: &Literal,
    ) -> Result<Glob, QueryError> {
        match field.value.kind() {
            FieldKind::Number | FieldKind::Time => {
                return Err(self.error(
                    op.start,
                    op.end,
                    format!(
                        "`{}` matches text, and `{}` is a {}; compare it with = != < <= > >=",
                        op.value.as_str(),
                        field.value,
                        if field.value.kind() == FieldKind::Time {
                            "time"
                        } else {
                            "number"
                        }
                    ),
                ));
            }
            _ => {}
        }
        Glob::new(&literal.text).map_err(|(at, message)| {
            // The offset is in the pattern's characters; a bare word maps one to one onto the
            // query, a string after its opening quote (escapes aside).
            let skip = usize::from(literal.quoted);
            let start = self.query[literal.start..]
                .char_indices()
                .nth(at + skip)
                .map_or(literal.start, |(i, _)| literal.start + i);
            self.error(start, start + 1, message)
        })
    }
}

/// A search word; `status:x` and `tag:x` keep the board's old meaning (the status starts with
/// `x`, a tag contains `x`).
fn search(word: &Literal) -> Node {
    if !word.quoted {
        let lowered = lower(&word.text);
        if let Some(prefix) = lowered.strip_prefix("status:") {
            return Node::Test {
                field: FieldPath::Status,
                test: Test::Glob(Glob::Prefix(prefix.to_string())),
                negated: false,
            };
        }
        if let Some(part) = lowered.strip_prefix("tag:") {
            return Node::Test {
                field: FieldPath::Tag,
                test: Test::Glob(Glob::Contains(part.to_string())),
                negated: false,
            };
        }
    }
    Node::Search(lower(&word.text))
}

impl Node {
    pub(crate) fn matches<R: Record + ?Sized>(&self, record: &R) -> bool {
        match self {
            Node::All => true,
            Node::And(items) => items.iter().all(|n| n.matches(record)),
            Node::Or(items) => items.iter().any(|n| n.matches(record)),
            Node::Not(inner) => !inner.matches(record),
            Node::Test {
                field,
                test,
                negated,
            } => test.holds(&record.field(field)) != *negated,
            Node::Search(word) => SEARCHED.iter().any(|f| match record.field(f) {
                FieldValue::Str(s) => contains_ignoring_case(&s, word),
                FieldValue::List(items) => items.iter().any(|s| contains_ignoring_case(s, word)),
                other => number_text(&other).is_some_and(|s| contains_ignoring_case(&s, word)),
            }),
        }
    }
}

impl Test {
    /// Whether the test holds for `value`. A missing value passes no test; a list passes when
    /// any element does.
    fn holds(&self, value: &FieldValue<'_>) -> bool {
        match value {
            FieldValue::Missing => false,
            FieldValue::List(items) => items
                .iter()
                .any(|s| self.holds_one(&FieldValue::from(&**s))),
            one => self.holds_one(one),
        }
    }

    fn holds_one(&self, value: &FieldValue<'_>) -> bool {
        match self {
            Test::Compare(cmp, constant) => compare(*cmp, value, constant),
            Test::In(constants) => constants.iter().any(|c| compare(Cmp::Eq, value, c)),
            Test::Glob(glob) => match value {
                FieldValue::Str(s) => glob.matches(s),
                other => number_text(other).is_some_and(|s| glob.matches(&s)),
            },
        }
    }
}

fn compare(cmp: Cmp, value: &FieldValue<'_>, constant: &Value) -> bool {
    match constant {
        Value::Time(interval) => {
            let at = match value {
                FieldValue::Time(t) => time::micros(*t),
                FieldValue::Str(s) => match time::parse_rfc3339(s) {
                    Some(at) => at,
                    None => return false,
                },
                _ => return false,
            };
            match cmp {
                Cmp::Eq => interval.start <= at && at < interval.end,
                Cmp::Lt => at < interval.start,
                Cmp::Le => at < interval.end,
                Cmp::Gt => at >= interval.end,
                Cmp::Ge => at >= interval.start,
            }
        }
        Value::Number(n) => {
            let number = match value {
                FieldValue::Int(i) => Number::from(*i),
                FieldValue::Float(x) => Number::from(*x),
                FieldValue::Str(s) => match Number::parse(s.trim()) {
                    Some(n) => n,
                    None => return false,
                },
                _ => return false,
            };
            number.cmp(n).is_some_and(|o| ordering_holds(cmp, o))
        }
        Value::Text(text) => {
            if let (Cmp::Eq, FieldValue::Str(s)) = (cmp, value) {
                return eq_ignoring_case(s, text);
            }
            let ordering = match value {
                FieldValue::Str(s) => cmp_ignoring_case(s, text),
                other => match number_text(other) {
                    Some(s) => cmp_ignoring_case(&s, text),
                    None => return false,
                },
            };
            ordering_holds(cmp, ordering)
        }
    }
}

fn ordering_holds(cmp: Cmp, ordering: Ordering) -> bool {
    match cmp {
        Cmp::Eq => ordering.is_eq(),
        Cmp::Lt => ordering.is_lt(),
        Cmp::Le => ordering.is_le(),
        Cmp::Gt => ordering.is_gt(),
        Cmp::Ge => ordering.is_ge(),
    }
}
