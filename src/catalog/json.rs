//! The JSON shape of summaries: numbers as JSON numbers, and the non-finite ones, which JSON
//! lacks, as the strings `"NaN"`, `"inf"` and `"-inf"` (what pandas writes and reads).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::metrics::{ColumnSummary, RunSummary};

/// Metric summaries by column, serialized as `{"last", "min", "max", "count", "min_step",
/// "max_step"}` objects.
pub type Metrics = BTreeMap<String, Summary>;

/// A [`ColumnSummary`] with its JSON shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary(pub ColumnSummary);

/// The metric summaries of `run`.
pub fn metrics_of(run: &RunSummary) -> Metrics {
    run.metrics()
        .map(|(name, summary)| (name.to_string(), Summary(summary.clone())))
        .collect()
}

/// `x` as JSON: a number when finite, else `"NaN"`, `"inf"` or `"-inf"`.
pub fn number(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::Value::from(x)
    } else {
        serde_json::Value::String(non_finite(x).to_string())
    }
}

fn non_finite(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// Serializes an `f64` with the rule of [`number`].
struct Number(f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            serializer.serialize_f64(self.0)
        } else {
            serializer.serialize_str(non_finite(self.0))
        }
    }
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = &self.0;
        let mut s = serializer.serialize_struct("Summary", 6)?;
        s.serialize_field("last", &Number(c.last))?;
        s.serialize_field("min", &Number(c.min))?;
        s.serialize_field("max", &Number(c.max))?;
        s.serialize_field("count", &c.count)?;
        s.serialize_field("min_step", &Number(c.min_step))?;
        s.serialize_field("max_step", &Number(c.max_step))?;
        s.end()
    }
}
