//! Field names: the fixed ones, `params.<name>` and `metrics.<column>.<aggregate>`; reading
//! them from a query, "did you mean", and completion for the UI.

use std::fmt;

use super::error::QueryError;
use super::lexer::short;

/// A field a query can test or a listing can sort by.
///
/// The caller's [`Record`](super::Record) answers each with a [`FieldValue`](super::FieldValue).
/// Written in a query as shown by `Display`: `name`, `params.optimizer.lr`,
/// `metrics.val_acc.max`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FieldPath {
    /// The experiment's name.
    Name,
    /// The experiment's id: its directory name, `<name>_<YYYY-MM-DD__HH-MM-SS>`.
    Id,
    /// The latest run's state: pending, running, finished or error.
    Status,
    /// The experiment's tags (a list: `tag = cnn` holds when any tag is `cnn`).
    Tag,
    /// The free-form description.
    Description,
    /// The command that runs the experiment.
    Command,
    /// The host that created the experiment.
    Host,
    /// When the experiment was created.
    Created,
    /// How many runs the experiment has.
    Runs,
    /// A parameter; nested names are joined with dots (`optimizer.lr`).
    Param(String),
    /// A summary of one numeric column of the latest run's metrics.
    Metric {
        /// The column, as in the metrics table's header.
        column: String,
        /// Which summary.
        aggregate: Aggregate,
    },
}

/// A summary of a metrics column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Aggregate {
    /// The last value.
    Last,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// How many values.
    Count,
}

/// The aggregates, as written in a query.
pub const AGGREGATES: [&str; 4] = ["last", "min", "max", "count"];

impl Aggregate {
    /// The aggregate's name in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Last => "last",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Count => "count",
        }
    }

    fn parse(name: &str) -> Option<Aggregate> {
        Some(match name.to_ascii_lowercase().as_str() {
            "last" => Aggregate::Last,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "count" => Aggregate::Count,
            _ => return None,
        })
    }
}

/// What kind of values a field holds; it decides how a query compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldKind {
    /// Text, compared without regard to case.
    Text,
    /// A list of texts; a comparison holds when it holds for any element.
    TextList,
    /// A number.
    Number,
    /// A point in time.
    Time,
    /// Whatever the experiment recorded (parameters): numbers compare as numbers when the query
    /// writes a number, everything else as text.
    Any,
}

/// The fields with a fixed name, as written in a query.
pub const FIXED_FIELDS: [&str; 9] = [
    "name",
    "id",
    "status",
    "tag",
    "description",
    "command",
    "host",
    "created",
    "runs",
];

impl FieldPath {
    /// What kind of values the field holds.
    pub fn kind(&self) -> FieldKind {
        match self {
            FieldPath::Name
            | FieldPath::Id
            | FieldPath::Status
            | FieldPath::Description
            | FieldPath::Command
            | FieldPath::Host => FieldKind::Text,
            FieldPath::Tag => FieldKind::TextList,
            FieldPath::Created => FieldKind::Time,
            FieldPath::Runs | FieldPath::Metric { .. } => FieldKind::Number,
            FieldPath::Param(_) => FieldKind::Any,
        }
    }

    /// Reads a field name as written in a query or a sort key (`name`, `params.lr`,
    /// `metrics.val_acc.max`).
    ///
    /// ```
    /// use expman::query::{Aggregate, FieldPath};
    /// assert_eq!(FieldPath::parse("params.optimizer.lr").unwrap(), FieldPath::Param("optimizer.lr".into()));
    /// assert_eq!(
    ///     FieldPath::parse("metrics.val_acc.max").unwrap(),
    ///     FieldPath::Metric { column: "val_acc".into(), aggregate: Aggregate::Max }
    /// );
    /// let err = FieldPath::parse("nme").unwrap_err();
    /// assert_eq!(err.message(), "unknown field `nme`; did you mean `name`?");
    /// ```
    pub fn parse(text: &str) -> Result<FieldPath, QueryError> {
        parse_field(text, text, 0)
    }

    fn fixed(name: &str) -> Option<FieldPath> {
        Some(match name.to_ascii_lowercase().as_str() {
            "name" => FieldPath::Name,
            "id" => FieldPath::Id,
            "status" => FieldPath::Status,
            "tag" => FieldPath::Tag,
            "description" => FieldPath::Description,
            "command" => FieldPath::Command,
            "host" => FieldPath::Host,
            "created" => FieldPath::Created,
            "runs" => FieldPath::Runs,
            _ => return None,
        })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fixed = match self {
            FieldPath::Name => "name",
            FieldPath::Id => "id",
            FieldPath::Status => "status",
            FieldPath::Tag => "tag",
            FieldPath::Description => "description",
            FieldPath::Command => "command",
            FieldPath::Host => "host",
            FieldPath::Created => "created",
            FieldPath::Runs => "runs",
            FieldPath::Param(name) => return write!(f, "params.{name}"),
            FieldPath::Metric { column, aggregate } => {
                return write!(f, "metrics.{column}.{}", aggregate.as_str());
            }
        };
        f.write_str(fixed)
    }
}

/// Reads the field `word`, which sits at byte `at` of `query` (for error positions).
pub(crate) fn parse_field(query: &str, word: &str, at: usize) -> Result<FieldPath, QueryError> {
    let err = |offset: usize, len: usize, message: String| {
        QueryError::new(query, at + offset, len, message)
    };
    if let Some(field) = FieldPath::fixed(word) {
        return Ok(field);
    }
    let (head, rest) = match word.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (word, None),
    };
    match (head.to_ascii_lowercase().as_str(), rest) {
        ("params", Some(name)) if valid_name(name) => Ok(FieldPath::Param(name.to_string())),
        ("params", _) => Err(err(
            0,
            word.len(),
            "expected a parameter name after `params.`, as in `params.lr` or `params.optimizer.lr`"
                .into(),
        )),
        ("metrics", Some(rest)) => {
            let Some((column, aggregate)) = rest.rsplit_once('.') else {
                return Err(err(
                    0,
                    word.len(),
                    format!(
                        "`{}` needs a summary: `.last`, `.min`, `.max` or `.count`, as in `{}.max`",
                        short(word),
                        short(word)
                    ),
                ));
            };
            if !valid_name(column) {
                return Err(err(
                    0,
                    word.len(),
                    "expected a metric column between `metrics.` and the summary, as in `metrics.val_acc.max`".into(),
                ));
            }
            match Aggregate::parse(aggregate) {
                Some(aggregate) => Ok(FieldPath::Metric {
                    column: column.to_string(),
                    aggregate,
                }),
                None => Err(err(
                    word.len() - aggregate.len(),
                    aggregate.len(),
                    format!(
                        "unknown summary `{}`; the summaries of a metric are last, min, max and count",
                        short(aggregate)
                    ),
                )),
            }
        }
        ("metrics", None) => Err(err(
            0,
            word.len(),
            "expected a metric after `metrics`, as in `metrics.val_acc.max`".into(),
        )),
        _ => Err(err(0, word.len(), unknown_field_message(word))),
    }
}

/// A parameter or column name: not empty, no empty segment (`a..b`, `a.`).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.split('.').all(|s| !s.is_empty())
}

fn unknown_field_message(word: &str) -> String {
    let mut candidates: Vec<String> = FIXED_FIELDS.iter().map(|s| s.to_string()).collect();
    // A misspelt prefix keeps the rest: `param.lr` → `params.lr`, `metric.acc.max` → ...
    if let Some((_, rest)) = word.split_once('.') {
        candidates.push(format!("params.{rest}"));
        if rest.contains('.') {
            candidates.push(format!("metrics.{rest}"));
        }
    }
    if let Some(best) = closest(word, candidates.iter().map(String::as_str)) {
        return format!("unknown field `{}`; did you mean `{best}`?", short(word));
    }
    if word.contains('.') {
        format!(
            "unknown field `{}`; the fields are {}, params.<name> and metrics.<column>.<last|min|max|count>",
            short(word),
            FIXED_FIELDS.join(", ")
        )
    } else {
        format!(
            "unknown field `{w}`; a parameter is `params.{w}`, a metric `metrics.{w}.last` (or .min, .max, .count)",
            w = short(word)
        )
    }
}

/// The candidate closest to `word` when it is close enough to be a typo of it: at most one edit
/// per three characters (case ignored), not counting a `params.` or `metrics.` both share (or
/// every parameter would be a typo of every other).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    // Edit distance is quadratic, and nothing that long is a typo of a field.
    if word.len() > 200 {
        return None;
    }
    let word = word.to_lowercase();
    let head = |s: &str| {
        ["params.", "metrics."]
            .into_iter()
            .find(|h| s.starts_with(h))
            .map_or(0, str::len)
    };
    candidates
        .filter(|c| c.len() <= 200)
        .filter_map(|c| {
            let lowered = c.to_lowercase();
            let distance = strsim::damerau_levenshtein(&word, &lowered);
            let shared = if head(&word) == head(&lowered) {
                head(&word)
            } else {
                0
            };
            let longest = word.chars().count().max(lowered.chars().count()) - shared;
            (distance > 0 && distance <= (longest / 3).max(1)).then_some((distance, c))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The parameters and metric columns that exist, for completion and for
/// [`Query::check`](super::Query::check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    params: Vec<String>,
    metrics: Vec<String>,
}

impl Catalog {
    /// A catalog of these parameter names (`optimizer.lr`, without `params.`) and metric columns
    /// (`val_acc`). Duplicates are dropped; the order is kept.
    pub fn new<P, M>(params: P, metrics: M) -> Catalog
    where
        P: IntoIterator,
        P::Item: Into<String>,
        M: IntoIterator,
        M::Item: Into<String>,
    {
        fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
            let mut seen = std::collections::HashSet::new();
            items.filter(|i| seen.insert(i.clone())).collect()
        }
        Catalog {
            params: dedup(params.into_iter().map(Into::into)),
            metrics: dedup(metrics.into_iter().map(Into::into)),
        }
    }

    /// The parameter names.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// The metric columns.
    pub fn metrics(&self) -> &[String] {
        &self.metrics
    }

    /// Whether the catalog knows `field` (fixed fields are always known).
    pub fn contains(&self, field: &FieldPath) -> bool {
        match field {
            FieldPath::Param(name) => self.params.iter().any(|p| p == name),
            FieldPath::Metric { column, .. } => self.metrics.iter().any(|m| m == column),
            _ => true,
        }
    }

    /// Every field name this catalog allows: the fixed fields, then `params.<name>` for each
    /// parameter, then `metrics.<column>.<aggregate>` for each column and summary.
    pub fn field_names(&self) -> impl Iterator<Item = String> + '_ {
        FIXED_FIELDS
            .iter()
            .map(|f| f.to_string())
            .chain(self.params.iter().map(|p| format!("params.{p}")))
            .chain(
                self.metrics
                    .iter()
                    .flat_map(|m| AGGREGATES.iter().map(move |a| format!("metrics.{m}.{a}"))),
            )
    }

    /// Field names that start with `prefix` (case ignored), for the UI's completion, in the
    /// order of [`field_names`](Catalog::field_names).
    ///
    /// ```
    /// use expman::query::Catalog;
    /// let catalog = Catalog::new(["lr", "optimizer.lr"], ["val_acc"]);
    /// assert_eq!(catalog.complete("params."), ["params.lr", "params.optimizer.lr"]);
    /// assert_eq!(catalog.complete("metrics.val_acc.m"), ["metrics.val_acc.min", "metrics.val_acc.max"]);
    /// assert_eq!(catalog.complete("sta"), ["status"]);
    /// ```
    pub fn complete(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.to_lowercase();
        self.field_names()
            .filter(|name| name.to_lowercase().starts_with(&prefix))
            .collect()
    }

    /// The known field closest to `field`, when it is close enough to be a typo of it.
    pub(crate) fn suggest(&self, field: &FieldPath) -> Option<String> {
        let names: Vec<String> = self.field_names().collect();
        closest(&field.to_string(), names.iter().map(String::as_str)).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(word: &str) -> String {
        FieldPath::parse(word).unwrap_err().message().to_string()
    }

    #[test]
    fn fixed_fields_read_in_any_case_and_print_canonically() {
        for name in FIXED_FIELDS {
            let field = FieldPath::parse(&name.to_uppercase()).unwrap();
            assert_eq!(field.to_string(), name);
        }
    }

    #[test]
    fn params_and_metrics_keep_their_dots() {
        assert_eq!(
            FieldPath::parse("PARAMS.Optimizer.LR").unwrap(),
            FieldPath::Param("Optimizer.LR".into())
        );
        assert_eq!(
            FieldPath::parse("metrics.a.b.COUNT").unwrap(),
            FieldPath::Metric {
                column: "a.b".into(),
                aggregate: Aggregate::Count
            }
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(message("nme"), "unknown field `nme`; did you mean `name`?");
        assert_eq!(message("tags"), "unknown field `tags`; did you mean `tag`?");
        assert_eq!(
            message("created_at"),
            "unknown field `created_at`; did you mean `created`?"
        );
        assert_eq!(
            message("param.lr"),
            "unknown field `param.lr`; did you mean `params.lr`?"
        );
        assert_eq!(
            message("metric.acc.max"),
            "unknown field `metric.acc.max`; did you mean `metrics.acc.max`?"
        );
        assert!(message("lr").contains("`params.lr`"), "{}", message("lr"));
        assert!(message("metrics.acc.mean").contains("last, min, max and count"));
        assert!(message("metrics.acc").contains("`metrics.acc.max`"));
        assert!(message("params.").contains("parameter name"));
        assert!(message("params.a..b").contains("parameter name"));
    }

    #[test]
    fn unknown_aggregate_points_at_the_aggregate() {
        let err = FieldPath::parse("metrics.acc.mean").unwrap_err();
        assert_eq!((err.offset(), err.len()), (12, 4));
    }

    #[test]
    fn catalog_completes_and_suggests() {
        let catalog = Catalog::new(["lr", "lr", "depth"], ["val_acc"]);
        assert_eq!(catalog.params(), ["lr", "depth"]);
        assert_eq!(catalog.complete("P"), ["params.lr", "params.depth"]);
        assert_eq!(catalog.complete("").len(), 9 + 2 + 4);
        assert_eq!(
            catalog.suggest(&FieldPath::Param("lrr".into())).as_deref(),
            Some("params.lr")
        );
        assert_eq!(
            catalog
                .suggest(&FieldPath::Metric {
                    column: "val_ac".into(),
                    aggregate: Aggregate::Max
                })
                .as_deref(),
            Some("metrics.val_acc.max")
        );
    }
}
