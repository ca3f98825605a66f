//! The fast reader: a table's CSV bytes parsed straight into typed column buffers, in
//! parallel for a large file, with no value made per cell. Every build has it; the `arrow`
//! feature wraps its buffers as Arrow arrays ([`crate::arrow`]), and [`read_columns`] joins
//! them into one buffer per column for bindings that wrap memory (numpy, C arrays).
//!
//! Column types follow [`crate::read_table`]'s rules; the text of numbers in a column that
//! also holds text is the file's (`007` stays `007`).

mod column;
mod flat;
pub(crate) mod parse;
pub(crate) mod pool;

#[cfg(feature = "arrow")]
pub(crate) use column::{Bits, Column, Validity};
pub use flat::read_columns;
