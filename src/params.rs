//! Hyperparameters: the flat, typed name → value map an experiment records in `config.json`
//! under `"params"`, and the one place that turns nested input (a Python dict, a TOML table,
//! the `EXPMAN_PARAMS` JSON a scheduled job receives) into it.
//!
//! Names are flattened with dots (`{"optimizer": {"lr": 0.1}}` becomes `optimizer.lr`), values
//! are integers, floats, booleans or strings. Lists and nulls are refused with an error naming
//! the parameter, so a query such as `params.lr < 1e-3` always compares like with like.
//!
//! ```
//! use expman::params::{ParamValue, Params, flatten_json};
//!
//! let nested = serde_json::json!({"lr": 0.01, "optimizer": {"name": "adam", "beta1": 0.9}});
//! let params: Params = flatten_json(&nested)?;
//! assert_eq!(params["optimizer.name"], ParamValue::Str("adam".into()));
//! assert_eq!(params.keys().collect::<Vec<_>>(), ["lr", "optimizer.beta1", "optimizer.name"]);
//! # Ok::<(), expman::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Value;

/// The environment variable that hands a scheduled job its parameters as a JSON object; an
/// [`Experiment`](crate::Experiment) created inside the job records them by itself.
pub const ENV_PARAMS: &str = "EXPMAN_PARAMS";

/// Longest accepted parameter name in bytes (the same cap as a field name).
pub const MAX_PARAM_NAME_LEN: usize = 256;

/// Parameters by flattened name, sorted (so `config.json` and listings are stable).
pub type Params = BTreeMap<String, ParamValue>;

/// One parameter value.
///
/// In JSON an integer is written without a fraction and a float always with one (`18` vs
/// `18.0`), so the type survives a round trip through `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// `true` / `false`.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A finite 64-bit float (JSON has no NaN or infinity).
    Float(f64),
    /// UTF-8 text.
    Str(String),
}

/// Read by hand rather than derived (`untagged`), so that a value of another kind, such as an
/// object typed into `config.json`, is named in the error with what a parameter may be.
impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = ParamValue;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a parameter value: a number, a string or true/false (a nested one is \
                     written under a dotted name, as \"optimizer.lr\": 0.001)",
                )
            }

            fn visit_bool<E>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Bool(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Int(v))
            }

            fn visit_u64<E>(self, v: u64) -> Result<ParamValue, E> {
                // Beyond i64 it can only be a float, as the derived reading made it.
                Ok(i64::try_from(v).map_or(ParamValue::Float(v as f64), ParamValue::Int))
            }

            fn visit_f64<E>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::Float(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::Str(v.to_string()))
            }

            fn visit_string<E>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::Str(v))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl ParamValue {
    /// The value as a number, for comparisons and axes (booleans are 0/1; text is `None`).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Bool(b) => Some(f64::from(u8::from(b))),
            ParamValue::Int(i) => Some(i as f64),
            ParamValue::Float(f) => Some(f),
            ParamValue::Str(_) => None,
        }
    }

    /// The same value as a table cell.
    pub fn to_value(&self) -> Value {
        match self {
            ParamValue::Bool(b) => Value::Bool(*b),
            ParamValue::Int(i) => Value::Int(*i),
            ParamValue::Float(f) => Value::Float(*f),
            ParamValue::Str(s) => Value::Str(s.clone()),
        }
    }

    /// A table cell as a parameter; an empty cell and non-finite floats have none.
    pub fn from_value(value: &Value) -> Option<ParamValue> {
        match value {
            Value::Null => None,
            Value::Bool(b) => Some(ParamValue::Bool(*b)),
            Value::Int(i) => Some(ParamValue::Int(*i)),
            Value::Float(f) if f.is_finite() => Some(ParamValue::Float(*f)),
            Value::Float(_) => None,
            Value::Str(s) => Some(ParamValue::Str(s.clone())),
        }
    }
}

impl fmt::Display for ParamValue {
    /// How a value appears in an experiment name, a command (`{lr}`) or a table cell: integers
    /// plainly, floats in shortest round-trip form (`0.001`, `1e-5`), booleans as
    /// `true`/`false`, text as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x:?}"),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

impl From<bool> for ParamValue {
    fn from(value: bool) -> ParamValue {
        ParamValue::Bool(value)
    }
}
impl From<i64> for ParamValue {
    fn from(value: i64) -> ParamValue {
        ParamValue::Int(value)
    }
}
impl From<i32> for ParamValue {
    fn from(value: i32) -> ParamValue {
        ParamValue::Int(value.into())
    }
}
impl From<u32> for ParamValue {
    fn from(value: u32) -> ParamValue {
        ParamValue::Int(value.into())
    }
}
impl From<f64> for ParamValue {
    fn from(value: f64) -> ParamValue {
        ParamValue::Float(value)
    }
}
impl From<f32> for ParamValue {
    fn from(value: f32) -> ParamValue {
        ParamValue::Float(value.into())
    }
}
impl From<&str> for ParamValue {
    fn from(value: &str) -> ParamValue {
        ParamValue::Str(value.to_string())
    }
}
impl From<String> for ParamValue {
    fn from(value: String) -> ParamValue {
        ParamValue::Str(value)
    }
}

/// Checks a flattened parameter name and value: a name that is empty, has an empty segment
/// (`a..b`, `.a`), a control character, or more than 256 bytes, and a non-finite float, are
/// refused with an error naming the parameter.
pub fn validate(name: &str, value: &ParamValue) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty; give each parameter a name such as \"lr\"")
    } else if name.split('.').any(str::is_empty) {
        Some("a dotted name has an empty part; write nested names as \"optimizer.lr\"")
    } else if name.chars().any(char::is_control) {
        Some("the name contains a control character (newline, tab, ...)")
    } else if name.len() > MAX_PARAM_NAME_LEN {
        Some("the name is longer than 256 bytes")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::invalid_name("parameter name", name, reason));
    }
    if let ParamValue::Float(f) = value
        && !f.is_finite()
    {
        return Err(invalid_param(
            name,
            format!("{f} is not finite; parameters must be finite numbers, booleans or text"),
        ));
    }
    Ok(())
}

/// Flattens a JSON object into parameters: nested objects join their keys with dots; numbers,
/// booleans and strings are values; arrays and `null` are refused, naming the parameter.
pub fn flatten_json(json: &serde_json::Value) -> Result<Params> {
    let serde_json::Value::Object(map) = json else {
        return Err(invalid_param(
            "",
            format!(
                "parameters must be a JSON object of names to values, not {}",
                crate::error::quote(&json.to_string())
            ),
        ));
    };
    let mut params = Params::new();
    flatten_into(&mut params, "", map)?;
    Ok(params)
}

fn flatten_into(
    params: &mut Params,
    prefix: &str,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    for (key, value) in map {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let param = match value {
            serde_json::Value::Object(inner) => {
                flatten_into(params, &name, inner)?;
                continue;
            }
            serde_json::Value::Bool(b) => ParamValue::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => ParamValue::Int(i),
                None => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => ParamValue::Str(s.clone()),
            serde_json::Value::Null | serde_json::Value::Array(_) => {
                return Err(invalid_param(
                    &name,
                    format!(
                        "{} is not a number, boolean or string; record a list as separate \
                         parameters or as one string",
                        crate::error::quote(&value.to_string())
                    ),
                ));
            }
        };
        validate(&name, &param)?;
        params.insert(name, param);
    }
    Ok(())
}

/// Reads the `EXPMAN_PARAMS` JSON text (see [`ENV_PARAMS`]).
pub fn parse_env(text: &str) -> Result<Params> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::config(
            ENV_PARAMS,
            format!(
                "is not valid JSON ({e}); the scheduler sets it to a JSON object of parameters"
            ),
        )
    })?;
    flatten_json(&json)
}

fn invalid_param(name: &str, reason: String) -> Error {
    ErrorKind::InvalidValue {
        field: format!("parameter {name}"),
        reason,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_ints_and_floats_apart() {
        let params: Params =
            serde_json::from_str(r#"{"a": 18, "b": 18.0, "c": true, "d": "x"}"#).expect("parses");
        assert_eq!(params["a"], ParamValue::Int(18));
        assert_eq!(params["b"], ParamValue::Float(18.0));
        assert_eq!(
            serde_json::to_string(&params).expect("serializes"),
            r#"{"a":18,"b":18.0,"c":true,"d":"x"}"#
        );
    }

    #[test]
    fn floats_round_trip_exactly_through_json() {
        // serde_json's default float parser may be off by one ulp (found through
        // Lightning's params); `float_roundtrip` makes config.json give back what was logged.
        let lr = 0.9296180107064481_f64;
        let text = serde_json::to_string(&ParamValue::Float(lr)).expect("serializes");
        let back: ParamValue = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, ParamValue::Float(lr), "{text}");
    }

    #[test]
    fn nested_objects_flatten_and_lists_are_refused() {
        let nested = serde_json::json!({"opt": {"lr": 1e-3, "sched": {"kind": "cos"}}});
        let params = flatten_json(&nested).expect("flattens");
        assert_eq!(params["opt.sched.kind"], ParamValue::Str("cos".into()));
        let err = flatten_json(&serde_json::json!({"layers": [1, 2]})).expect_err("a list");
        assert!(err.to_string().contains("layers"), "{err}");
        assert!(validate("a..b", &ParamValue::Int(1)).is_err());
        assert!(validate("lr", &ParamValue::Float(f64::NAN)).is_err());
    }

    #[test]
    fn a_value_of_another_kind_in_json_says_what_a_parameter_may_be() {
        // As a hand edit of config.json leaves it: an object, a list, a null.
        for text in [
            r#"{"opt": {"lr": 1}}"#,
            r#"{"layers": [1, 2]}"#,
            r#"{"x": null}"#,
        ] {
            let err = serde_json::from_str::<Params>(text)
                .expect_err(text)
                .to_string();
            assert!(
                err.contains("expected a parameter value: a number, a string or true/false"),
                "{text}: {err}"
            );
        }
        let big: Params = serde_json::from_str(r#"{"seed": 18446744073709551615}"#).unwrap();
        assert_eq!(big["seed"], ParamValue::Float(18446744073709551615.0));
    }

    #[test]
    fn display_is_what_names_and_commands_show() {
        assert_eq!(ParamValue::Float(0.001).to_string(), "0.001");
        assert_eq!(ParamValue::Float(1e-5).to_string(), "1e-5");
        assert_eq!(ParamValue::Float(2.0).to_string(), "2.0");
        assert_eq!(ParamValue::Int(50).to_string(), "50");
    }
}
