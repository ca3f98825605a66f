//! Run ids (`run_0001`, `run_0002`, ..., `run_9999`, `run_10000`): a leaf value type (their
//! allocation is in `allocate.rs`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A run number, displayed as `run_0001` (at least four digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(u32);

impl RunId {
    /// The first run.
    pub const FIRST: RunId = RunId(1);

    /// A run id from its number (1-based).
    pub fn new(number: u32) -> Result<RunId> {
        if number == 0 {
            return Err(Error::invalid_name(
                "run id",
                "run_0000",
                "run numbers start at 1",
            ));
        }
        Ok(RunId(number))
    }

    /// The run's number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The run after this one.
    pub fn next(self) -> RunId {
        RunId(self.0.saturating_add(1))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run_{:04}", self.0)
    }
}

impl FromStr for RunId {
    type Err = Error;

    fn from_str(s: &str) -> Result<RunId> {
        let bad = |reason: &str| Error::invalid_name("run id", s, reason);
        let digits = s
            .strip_prefix("run_")
            .ok_or_else(|| bad("run ids look like run_0001"))?;
        if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "run ids are run_ followed by at least four digits, e.g. run_0001",
            ));
        }
        if digits.len() > 4 && digits.starts_with('0') {
            return Err(bad(
                "run numbers above 9999 have no leading zeros, e.g. run_10000",
            ));
        }
        let number = digits
            .parse::<u32>()
            .map_err(|_| bad("the run number is too large"))?;
        RunId::new(number)
    }
}

impl serde::Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<RunId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
