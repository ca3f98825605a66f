//! Parameters and sweeps of a scheduler entry: `params = {...}` and `[experiments.sweep]`
//! (`grid`, `zip`, `random`), turned into one experiment per point.
//!
//! - **Names** of parameters are flattened with dots by [`crate::params::flatten_json`] itself
//!   (nested tables and TOML's dotted keys both give `optimizer.lr`), so the scheduler and every
//!   binding name a parameter the same way.
//! - **Order of points**: grid × zip × random, the grid's first key varying slowest and its
//!   last fastest (keys in the order the file writes them), then the zip's rows, then the
//!   random draws.
//! - **Random draws** are reproducible on every machine and version: each swept parameter has
//!   its own SplitMix64 stream seeded with `seed XOR FNV-1a-64(name)` (so adding a parameter or
//!   raising `n` keeps the earlier draws), uniform floats use the top 53 bits, integer ranges
//!   and choices use rejection sampling (no modulo bias), and float draws are rounded to 6
//!   significant digits (short names, and the last-ulp differences of `ln`/`exp` between
//!   platforms' maths libraries cannot show). No crate: the generator is 10 lines, and a
//!   crate's stream may change between its versions.
//! - **Point names** are the entry's name plus `_name=value` per swept parameter (see
//!   [`point_names`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::config_slurm::Located;
use crate::error::quote;
use crate::params::{ParamValue, Params, flatten_json, validate};
use crate::store::validate_name;

/// Longest experiment name (`store::validate_name`'s limit).
const MAX_NAME_LEN: usize = 200;

/// Most experiments one entry's sweep may make, and one config in all: more is surely a
/// mistake (a list too many in a grid), and would only fill the disk with Pending experiments
/// (and the memory of planning them: five entries of 100,000 took 1.8 GB).
pub(super) const MAX_POINTS: u64 = 100_000;

/// Significant digits kept of a random float.
const RANDOM_DIGITS: usize = 6;

/// A TOML value with the position of every nested value (serde's `toml::Value` keeps none),
/// for errors that point at the element that is wrong.
#[derive(Debug, Clone)]
pub(super) enum RawValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// TOML's date/time values, which parameters do not take.
    Datetime(String),
    Array(Vec<Spanned<RawValue>>),
    /// Keys in the order the file writes them.
    Table(Vec<(String, Spanned<RawValue>)>),
}

/// The marker key under which the `toml` crate hands a date/time to serde.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<RawValue, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom(format!("{v} is larger than a 64-bit integer")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries: Vec<(String, Spanned<RawValue>)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == TOML_DATETIME_KEY {
                return Ok(RawValue::Datetime(map.next_value::<String>()?));
            }
            entries.push((key, map.next_value::<Spanned<RawValue>>()?));
        }
        // The parser hands tables over sorted by key; the file's order is the user's.
        entries.sort_by_key(|(_, v)| v.span().start);
        Ok(RawValue::Table(entries))
    }
}

impl RawValue {
    /// What it is, for messages ("a list", "a table", ...).
    fn kind(&self) -> &'static str {
        match self {
            RawValue::Bool(_) => "a boolean",
            RawValue::Int(_) => "an integer",
            RawValue::Float(_) => "a float",
            RawValue::Str(_) => "a string",
            RawValue::Datetime(_) => "a date/time",
            RawValue::Array(_) => "a list",
            RawValue::Table(_) => "a table",
        }
    }

    fn as_table(&self) -> Option<&[(String, Spanned<RawValue>)]> {
        match self {
            RawValue::Table(entries) => Some(entries),
            _ => None,
        }
    }
}

/// `[experiments.sweep]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    grid: Option<Spanned<RawValue>>,
    zip: Option<Spanned<RawValue>>,
    random: Option<Spanned<RawValue>>,
}

/// A result whose error points into the file.
type Checked<T> = std::result::Result<T, Located>;

/// The leaves of the (nested) table `table`, with their flattened names, in file order:
/// tables are walked, `is_leaf` values end the walk, anything else is `refuse`d.
///
/// Names come from [`flatten_json`] (each leaf stands in as a numbered token), so they are
/// exactly what the bindings and `EXPMAN_PARAMS` give for the same nesting.
fn leaves<'a>(
    table: &'a Spanned<RawValue>,
    what: &str,
    is_leaf: &dyn Fn(&RawValue) -> bool,
    refuse: &dyn Fn(&str, &RawValue) -> String,
) -> Checked<Vec<(String, &'a Spanned<RawValue>)>> {
    let Some(entries) = table.get_ref().as_table() else {
        return Err((
            Some(table.span()),
            format!(
                "{what} must be a table such as {{ lr = ... }}, not {}",
                table.get_ref().kind()
            ),
        ));
    };
    let mut found: Vec<&'a Spanned<RawValue>> = Vec::new();
    let json = to_json(entries, is_leaf, refuse, &mut found)?;
    let flat = flatten_json(&json).map_err(|e| (Some(table.span()), format!("{what}: {e}")))?;
    let mut named: Vec<Option<String>> = vec![None; found.len()];
    for (name, token) in flat {
        if let ParamValue::Str(token) = token
            && let Some(index) = token
                .strip_prefix('\0')
                .and_then(|i| i.parse::<usize>().ok())
        {
            named[index] = Some(name);
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for (leaf, name) in found.into_iter().zip(named) {
        let Some(name) = name else {
            return Err((
                Some(leaf.span()),
                format!(
                    "{what} names one parameter twice (a quoted dotted key such as \"a.b\" and \
                     a nested table a = {{ b = ... }} are the same name); keep one of them"
                ),
            ));
        };
        out.push((name, leaf));
    }
    Ok(out)
}

fn to_json<'a>(
    entries: &'a [(String, Spanned<RawValue>)],
    is_leaf: &dyn Fn(&RawValue) -> bool,
    refuse: &dyn Fn(&str, &RawValue) -> String,
    found: &mut Vec<&'a Spanned<RawValue>>,
) -> Checked<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for (key, value) in entries {
        let json = if is_leaf(value.get_ref()) {
            found.push(value);
            serde_json::Value::String(format!("\0{}", found.len() - 1))
        } else if let Some(inner) = value.get_ref().as_table() {
            to_json(inner, is_leaf, refuse, found)?
        } else {
            return Err((Some(value.span()), refuse(key, value.get_ref())));
        };
        map.insert(key.clone(), json);
    }
    Ok(serde_json::Value::Object(map))
}

/// One scalar as a parameter value: integers, floats (finite), booleans and strings.
///
/// `fixed` says the value is a fixed parameter, where a list is most likely meant as a sweep.
fn scalar(
    value: &Spanned<RawValue>,
    what: &dyn Fn() -> String,
    fixed: bool,
) -> Checked<ParamValue> {
    match value.get_ref() {
        RawValue::Bool(b) => Ok(ParamValue::Bool(*b)),
        RawValue::Int(i) => Ok(ParamValue::Int(*i)),
        RawValue::Float(f) if f.is_finite() => Ok(ParamValue::Float(*f)),
        RawValue::Float(f) => Err((
            Some(value.span()),
            format!("{} is {f}, but parameters must be finite numbers", what()),
        )),
        RawValue::Str(s) => Ok(ParamValue::Str(s.clone())),
        other => Err((
            Some(value.span()),
            format!(
                "{} is {}, but a parameter is a number, boolean or string{}",
                what(),
                other.kind(),
                match other {
                    RawValue::Datetime(text) => format!("; write it as a string: \"{text}\""),
                    RawValue::Array(_) if fixed =>
                        "; to try several values, put the list in [experiments.sweep] grid".into(),
                    _ => String::new(),
                }
            ),
        )),
    }
}

/// `params = { lr = 0.01, optimizer = { name = "adam" } }`: the fixed parameters of an entry.
pub(super) fn fixed_params(
    entry: &str,
    raw: &Spanned<RawValue>,
) -> Checked<Vec<(String, ParamValue, Range<usize>)>> {
    let what = format!("experiment {entry:?}: params");
    let found = leaves(
        raw,
        &what,
        &|v| !matches!(v, RawValue::Table(_)),
        &|_, _| unreachable!("every non-table is a leaf"),
    )?;
    let mut params = Vec::with_capacity(found.len());
    for (name, leaf) in found {
        let value = scalar(leaf, &|| format!("{what}: {name}"), true)?;
        validate(&name, &value).map_err(|e| (Some(leaf.span()), format!("{what}: {e}")))?;
        params.push((name, value, leaf.span()));
    }
    Ok(params)
}

/// One point of a sweep: the swept parameters in the order of the spec.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Point(pub(super) Vec<(String, ParamValue)>);

/// The points of `[experiments.sweep]` (see the module documentation for their order), after
/// checking the spec against the entry's fixed parameters (`fixed`: no name in both).
pub(super) fn expand(
    entry: &str,
    sweep: &Spanned<RawSweep>,
    fixed: &[(String, ParamValue, Range<usize>)],
) -> Checked<Vec<Point>> {
    let spec = sweep.get_ref();
    if spec.grid.is_none() && spec.zip.is_none() && spec.random.is_none() {
        return Err((
            Some(sweep.span()),
            format!(
                "experiment {entry:?} has an empty [experiments.sweep]; give it grid = {{...}}, \
                 zip = {{...}} and/or random = {{...}}"
            ),
        ));
    }
    // Every swept name once, and none also fixed.
    let mut names: HashMap<String, Range<usize>> = fixed
        .iter()
        .map(|(name, _, span)| (name.clone(), span.clone()))
        .collect();
    let mut claim = |name: &str, span: Range<usize>, kind: &str| -> Checked<()> {
        if names.contains_key(name) {
            let place = if fixed.iter().any(|(n, _, _)| n == name) {
                "in params"
            } else {
                "earlier in the sweep"
            };
            return Err((
                Some(span),
                format!(
                    "experiment {entry:?}: parameter {name:?} of sweep {kind} is also set \
                     {place}; a parameter is either fixed or swept once"
                ),
            ));
        }
        names.insert(name.to_string(), span);
        Ok(())
    };
    // Checked and counted first, expanded only when the count is sane.
    let grid = match &spec.grid {
        Some(grid) => {
            let lists = lists(entry, "grid", grid)?;
            for (name, _, span) in &lists {
                claim(name, span.clone(), "grid")?;
            }
            let count = lists
                .iter()
                .try_fold(1u64, |n, (_, values, _)| n.checked_mul(values.len() as u64));
            Some((lists, count))
        }
        None => None,
    };
    let zip = match &spec.zip {
        Some(zip) => {
            let lists = lists(entry, "zip", zip)?;
            for (name, _, span) in &lists {
                claim(name, span.clone(), "zip")?;
            }
            Some(zipped(entry, &lists)?)
        }
        None => None,
    };
    let random = match &spec.random {
        Some(random) => {
            let spec = random_spec(entry, random)?;
            for (name, _, span) in &spec.dists {
                claim(name, span.clone(), "random")?;
            }
            Some(spec)
        }
        None => None,
    };
    // Each axis's size (`None` inside: beyond 64 bits), and their product.
    let sizes = [
        grid.as_ref().map(|(_, count)| *count),
        zip.as_ref().map(|points| Some(points.len() as u64)),
        random.as_ref().map(|spec| Some(spec.n)),
    ];
    let total = sizes
        .iter()
        .flatten()
        .try_fold(1u64, |n, size| size.and_then(|s| n.checked_mul(s)));
    if total.is_none_or(|total| total > MAX_POINTS) {
        let shown =
            |size: Option<u64>| size.map_or_else(|| "over 2^64".to_string(), |n| n.to_string());
        let axes: Vec<String> = ["grid", "zip", "random"]
            .iter()
            .zip(sizes)
            .filter_map(|(kind, size)| size.map(|size| format!("{kind} {}", shown(size))))
            .collect();
        return Err((
            Some(sweep.span()),
            format!(
                "experiment {entry:?}: the sweep makes {} experiments ({}), more than the \
                 {MAX_POINTS} one entry may make; sweep fewer values",
                shown(total),
                axes.join(" × ")
            ),
        ));
    }
    let mut axes: Vec<Vec<Point>> = Vec::new();
    axes.extend(grid.map(|(lists, _)| product(&lists)));
    axes.extend(zip);
    axes.extend(random.map(|spec| draw(&spec)));
    // grid × zip × random, the earlier axis varying slowest.
    let mut points = vec![Point(Vec::new())];
    for axis in axes {
        points = points
            .iter()
            .flat_map(|p| {
                axis.iter().map(move |q| {
                    let mut joined = p.0.clone();
                    joined.extend(q.0.iter().cloned());
                    Point(joined)
                })
            })
            .collect();
    }
    Ok(points)
}

/// A swept parameter: its name, its values, where it is written.
type List = (String, Vec<ParamValue>, Range<usize>);

/// `grid = {...}` or `zip = {...}`: a non-empty list of scalars per parameter.
fn lists(entry: &str, kind: &str, table: &Spanned<RawValue>) -> Checked<Vec<List>> {
    let what = format!("experiment {entry:?}: sweep {kind}");
    let found = leaves(
        table,
        &what,
        &|v| matches!(v, RawValue::Array(_)),
        &|key, v| {
            format!(
                "{what}: {key} is {}, but {kind} takes a list of values per parameter, such as \
                 {key} = [0.1, 0.01]",
                v.kind()
            )
        },
    )?;
    if found.is_empty() {
        return Err((
            Some(table.span()),
            format!("{what} is empty; give it at least one parameter = [values]"),
        ));
    }
    let mut out = Vec::new();
    for (name, leaf) in found {
        let RawValue::Array(items) = leaf.get_ref() else {
            unreachable!("leaves are lists")
        };
        if items.is_empty() {
            return Err((
                Some(leaf.span()),
                format!("{what}: {name} = [] has no values; give at least one"),
            ));
        }
        let values = items
            .iter()
            .map(|item| {
                let value = scalar(item, &|| format!("{what}: an element of {name}"), false)?;
                validate(&name, &value).map_err(|e| (Some(item.span()), format!("{what}: {e}")))?;
                Ok(value)
            })
            .collect::<Checked<Vec<_>>>()?;
        out.push((name, values, leaf.span()));
    }
    Ok(out)
}

/// The Cartesian product, the first list varying slowest.
fn product(lists: &[List]) -> Vec<Point> {
    let mut points = vec![Point(Vec::new())];
    for (name, values, _) in lists {
        points = points
            .iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut next = p.0.clone();
                    next.push((name.clone(), v.clone()));
                    Point(next)
                })
            })
            .collect();
    }
    points
}

/// Element-wise: the i-th values of every list, which must all have the same length.
fn zipped(entry: &str, lists: &[List]) -> Checked<Vec<Point>> {
    let (first, first_values, _) = &lists[0];
    for (name, values, span) in &lists[1..] {
        if values.len() != first_values.len() {
            return Err((
                Some(span.clone()),
                format!(
                    "experiment {entry:?}: sweep zip pairs values element-wise, but {first} has \
                     {} values and {name} has {}; give every zip list the same length (or use \
                     grid for every combination)",
                    first_values.len(),
                    values.len()
                ),
            ));
        }
    }
    Ok((0..first_values.len())
        .map(|i| {
            Point(
                lists
                    .iter()
                    .map(|(name, values, _)| (name.clone(), values[i].clone()))
                    .collect(),
            )
        })
        .collect())
}

/// How `random` draws one parameter.
#[derive(Debug, Clone)]
enum Distribution {
    /// One of these, each as likely.
    Choice(Vec<ParamValue>),
    /// A float in `[low, high)`.
    Uniform(f64, f64),
    /// A float whose logarithm is uniform in `[ln low, ln high)`.
    LogUniform(f64, f64),
    /// An integer in `[low, high]`.
    IntUniform(i64, i64),
}

const DISTRIBUTIONS: [&str; 3] = ["uniform", "log_uniform", "int_uniform"];

/// A checked `random = {...}`.
struct RandomSpec {
    /// How many points.
    n: u64,
    /// The seed every parameter's stream starts from.
    seed: u64,
    /// Each parameter's name, distribution and place in the file.
    dists: Vec<(String, Distribution, Range<usize>)>,
}

/// `random = { n = 16, seed = 1, lr = { log_uniform = [1e-4, 1e-1] }, depth = [18, 34] }`.
fn random_spec(entry: &str, table: &Spanned<RawValue>) -> Checked<RandomSpec> {
    let what = format!("experiment {entry:?}: sweep random");
    let Some(entries) = table.get_ref().as_table() else {
        return Err((
            Some(table.span()),
            format!("{what} must be a table such as {{ n = 8, seed = 1, lr = [0.1, 0.01] }}"),
        ));
    };
    let count = |key: &str, min: i64| -> Checked<Option<u64>> {
        let Some((_, value)) = entries.iter().find(|(k, _)| k == key) else {
            return Ok(None);
        };
        match value.get_ref() {
            RawValue::Int(i) if *i >= min => Ok(Some(*i as u64)),
            other => Err((
                Some(value.span()),
                format!(
                    "{what}: {key} = {} but it must be an integer of at least {min}",
                    show(other)
                ),
            )),
        }
    };
    let Some(n) = count("n", 1)? else {
        return Err((
            Some(table.span()),
            format!("{what} needs n = <how many points to draw>, e.g. n = 16"),
        ));
    };
    let seed = count("seed", 0)?.unwrap_or(0);
    let rest: Vec<(String, Spanned<RawValue>)> = entries
        .iter()
        .filter(|(k, _)| k != "n" && k != "seed")
        .cloned()
        .collect();
    let rest = Spanned::new(table.span(), RawValue::Table(rest));
    let is_dist = |v: &RawValue| match v {
        RawValue::Array(_) => true,
        RawValue::Table(t) => t.iter().any(|(k, _)| DISTRIBUTIONS.contains(&k.as_str())),
        _ => false,
    };
    let found = leaves(&rest, &what, &is_dist, &|key, v| {
        format!(
            "{what}: {key} is {}, but random takes a list to choose from (depth = [18, 34]) or \
             a distribution (lr = {{ log_uniform = [1e-4, 1e-1] }}, dropout = {{ uniform = \
             [0.0, 0.5] }}, layers = {{ int_uniform = [2, 8] }})",
            v.kind()
        )
    })?;
    if found.is_empty() {
        return Err((
            Some(table.span()),
            format!(
                "{what} has no parameter to draw; add e.g. lr = {{ log_uniform = [1e-4, 1e-1] }}"
            ),
        ));
    }
    let mut out = Vec::new();
    for (name, leaf) in found {
        // A typo of a distribution reads as a nested parameter: `lr = { unifrom = [...] }`.
        if let Some(last) = name.rsplit('.').next()
            && let Some(close) = DISTRIBUTIONS
                .iter()
                .find(|d| last != **d && strsim::damerau_levenshtein(last, d) <= 2)
        {
            return Err((
                Some(leaf.span()),
                format!("{what}: unknown distribution `{last}` in {name}; did you mean `{close}`?"),
            ));
        }
        let dist = distribution(&what, &name, leaf)?;
        out.push((name, dist, leaf.span()));
    }
    Ok(RandomSpec {
        n,
        seed,
        dists: out,
    })
}

/// A value as written, short, for messages.
fn show(value: &RawValue) -> String {
    match value {
        RawValue::Bool(b) => b.to_string(),
        RawValue::Int(i) => i.to_string(),
        RawValue::Float(f) => format!("{f:?}"),
        RawValue::Str(s) => quote(s).to_string(),
        other => other.kind().to_string(),
    }
}

fn distribution(what: &str, name: &str, leaf: &Spanned<RawValue>) -> Checked<Distribution> {
    let at = |span: Range<usize>, message: String| (Some(span), format!("{what}: {message}"));
    match leaf.get_ref() {
        RawValue::Array(items) => {
            if items.is_empty() {
                return Err(at(
                    leaf.span(),
                    format!("{name} = [] has nothing to choose from; give at least one value"),
                ));
            }
            let values = items
                .iter()
                .map(|item| {
                    let value = scalar(item, &|| format!("{what}: an element of {name}"), false)?;
                    validate(name, &value).map_err(|e| at(item.span(), e.to_string()))?;
                    Ok(value)
                })
                .collect::<Checked<Vec<_>>>()?;
            Ok(Distribution::Choice(values))
        }
        RawValue::Table(entries) => {
            if entries.len() != 1 {
                return Err(at(
                    leaf.span(),
                    format!(
                        "{name} mixes a distribution with other keys; write exactly one of {} \
                         = [low, high]",
                        DISTRIBUTIONS.join(", ")
                    ),
                ));
            }
            let (kind, bounds) = &entries[0];
            let pair = match bounds.get_ref() {
                RawValue::Array(items) if items.len() == 2 => items,
                other => {
                    return Err(at(
                        bounds.span(),
                        format!(
                            "{name}: {kind} takes [low, high], not {}",
                            match other {
                                RawValue::Array(items) => format!("a list of {}", items.len()),
                                other => other.kind().to_string(),
                            }
                        ),
                    ));
                }
            };
            let bad_bounds =
                |why: &str| at(bounds.span(), format!("{name}: {kind} = [low, high] {why}"));
            if kind == "int_uniform" {
                let (RawValue::Int(low), RawValue::Int(high)) =
                    (pair[0].get_ref(), pair[1].get_ref())
                else {
                    return Err(bad_bounds("takes two integers"));
                };
                if low > high {
                    return Err(bad_bounds(&format!("has low {low} above high {high}")));
                }
                if high.checked_sub(*low).is_none_or(|w| w == i64::MAX) {
                    return Err(bad_bounds("spans more than the 64-bit integers"));
                }
                return Ok(Distribution::IntUniform(*low, *high));
            }
            let number = |v: &RawValue| match v {
                RawValue::Int(i) => Some(*i as f64),
                RawValue::Float(f) if f.is_finite() => Some(*f),
                _ => None,
            };
            let (Some(low), Some(high)) = (number(pair[0].get_ref()), number(pair[1].get_ref()))
            else {
                return Err(bad_bounds("takes two finite numbers"));
            };
            if low >= high {
                return Err(bad_bounds(&format!(
                    "needs low < high, but low is {low:?} and high {high:?}"
                )));
            }
            if kind == "log_uniform" {
                if low <= 0.0 {
                    return Err(bad_bounds(&format!(
                        "needs positive bounds (it draws the logarithm), but low is {low:?}"
                    )));
                }
                Ok(Distribution::LogUniform(low, high))
            } else {
                Ok(Distribution::Uniform(low, high))
            }
        }
        _ => unreachable!("leaves are lists or tables"),
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014; the seeding generator of xoshiro): 64 bits of state,
/// one addition and a mix per number; fixed here, so a seed means the same points everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1) from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An integer in [0, bound), without modulo bias (rejection, as OpenBSD's
    /// `arc4random_uniform`); `bound` is at least 1.
    fn below(&mut self, bound: u64) -> u64 {
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let x = self.next_u64();
            if x >= threshold {
                return x % bound;
            }
        }
    }
}

/// FNV-1a, 64 bits: a parameter's name as part of its stream's seed, and the stable hash of a
/// point name's suffix.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `x` rounded to [`RANDOM_DIGITS`] significant digits (Rust's float formatting is exact and
/// the same everywhere).
fn round_digits(x: f64) -> f64 {
    format!("{x:.prec$e}", prec = RANDOM_DIGITS - 1)
        .parse()
        .unwrap_or(x)
}

/// `n` points, each parameter drawn from its own stream.
fn draw(spec: &RandomSpec) -> Vec<Point> {
    let columns: Vec<Vec<(String, ParamValue)>> = spec
        .dists
        .iter()
        .map(|(name, dist, _)| {
            let mut rng = SplitMix64(spec.seed ^ fnv1a(name.as_bytes()));
            (0..spec.n)
                .map(|_| (name.clone(), sample(&mut rng, dist)))
                .collect()
        })
        .collect();
    (0..spec.n as usize)
        .map(|i| Point(columns.iter().map(|c| c[i].clone()).collect()))
        .collect()
}

fn sample(rng: &mut SplitMix64, dist: &Distribution) -> ParamValue {
    match dist {
        Distribution::Choice(values) => values[rng.below(values.len() as u64) as usize].clone(),
        Distribution::Uniform(low, high) => {
            let x = low + (high - low) * rng.unit();
            ParamValue::Float(round_digits(x).clamp(*low, *high))
        }
        Distribution::LogUniform(low, high) => {
            let (a, b) = (low.ln(), high.ln());
            let x = (a + (b - a) * rng.unit()).exp();
            ParamValue::Float(round_digits(x).clamp(*low, *high))
        }
        Distribution::IntUniform(low, high) => {
            let width = high.abs_diff(*low) + 1;
            ParamValue::Int(low.wrapping_add(rng.below(width) as i64))
        }
    }
}

/// The experiment names of `points` of the entry `entry`, one each, all different:
/// `<entry>_<name>=<value>_...` over the swept parameters in spec order, values as they print
/// ([`ParamValue`]'s `Display`: `0.001`, `1e-5`, `18`, `true`, text as is).
///
/// Characters an experiment name cannot hold (`/`, `\`, control characters, a second `.` in a
/// row) become `_`. A name that needed that, or that would exceed 200 bytes, or that another
/// point of the entry also gets, instead ends in `_h<16 hex digits>`, a hash of the point's
/// parameters (cut to fit); a point that repeats an earlier one exactly (a random choice drawn
/// twice) ends in `_rep<k>`.
pub(super) fn point_names(entry: &str, points: &[Point]) -> Vec<String> {
    let plain: Vec<(String, bool)> = points
        .iter()
        .map(|point| {
            let mut name = entry.to_string();
            let mut lossy = false;
            for (key, value) in &point.0 {
                let (key, k_lossy) = sanitize(key);
                let (value, v_lossy) = sanitize(&value.to_string());
                lossy |= k_lossy || v_lossy;
                name.push_str(&format!("_{key}={value}"));
            }
            (name, lossy)
        })
        .collect();
    // Plain names that distinct points share (string values can make `a_b=c` twice).
    let canonical: Vec<String> = points
        .iter()
        .map(|point| {
            let pairs: Vec<(&str, &ParamValue)> =
                point.0.iter().map(|(k, v)| (k.as_str(), v)).collect();
            serde_json::to_string(&pairs).unwrap_or_default()
        })
        .collect();
    let mut variants: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for ((name, _), canonical) in plain.iter().zip(&canonical) {
        variants.entry(name).or_default().insert(canonical);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut names = Vec::with_capacity(points.len());
    for ((name, lossy), canonical) in plain.iter().zip(&canonical) {
        let clash = variants[name.as_str()].len() > 1;
        let mut name = if *lossy || clash || name.len() > MAX_NAME_LEN {
            let suffix = format!("_h{:016x}", fnv1a(canonical.as_bytes()));
            format!("{}{suffix}", cut(name, MAX_NAME_LEN - suffix.len() - 8))
        } else {
            name.clone()
        };
        // The same parameters twice: the later ones are repeats.
        let repeat = seen.entry(name.clone()).or_default();
        *repeat += 1;
        if *repeat > 1 {
            name = format!("{}_rep{repeat}", cut(&name, MAX_NAME_LEN - 8));
        }
        names.push(name);
    }
    names
}

/// `text` with what an experiment name cannot hold replaced by `_`, and whether anything was.
fn sanitize(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut lossy = false;
    for c in text.chars() {
        let bad = c == '/' || c == '\\' || c.is_control() || (c == '.' && out.ends_with('.'));
        lossy |= bad;
        out.push(if bad { '_' } else { c });
    }
    (out, lossy)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Checks a generated name the way every experiment name is checked (a bug here must not make
/// a directory outside the base directory).
pub(super) fn check_point_name(name: &str) -> crate::error::Result<()> {
    validate_name("experiment name", name)
}

/// The params of a point: the fixed ones and the swept ones.
pub(super) fn merged(fixed: &[(String, ParamValue, Range<usize>)], point: &Point) -> Params {
    fixed
        .iter()
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .chain(point.0.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs for seed 0 of the reference implementation (Vigna's splitmix64.c).
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn names_are_plain_when_they_can_be_and_unique_always() {
        let p = |pairs: &[(&str, ParamValue)]| {
            Point(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            )
        };
        let points = [
            p(&[("lr", 0.01.into()), ("depth", 18.into())]),
            p(&[("lr", "a/b".into()), ("depth", 18.into())]),
            p(&[("lr", "a_b".into()), ("depth", 18.into())]),
            p(&[("lr", 0.01.into()), ("depth", 18.into())]),
        ];
        let names = point_names("resnet", &points);
        assert_eq!(names[0], "resnet_lr=0.01_depth=18");
        assert!(
            names[1].starts_with("resnet_lr=a_b_depth=18_h"),
            "{names:?}"
        );
        assert!(
            names[2].starts_with("resnet_lr=a_b_depth=18_h"),
            "{names:?}"
        );
        assert_ne!(names[1], names[2]);
        assert_eq!(names[3], format!("{}_rep2", names[0]));
        let long = p(&[("text", "x".repeat(500).into())]);
        let name = &point_names("e", &[long])[0];
        assert!(name.len() <= MAX_NAME_LEN, "{}", name.len());
        assert!(check_point_name(name).is_ok());
    }
}
