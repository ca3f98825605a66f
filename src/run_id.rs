//! Run ids: the value type and their allocation (both live in `store`, where the files they
//! name are; this module is their public path, `expman::run_id`).

pub(crate) use crate::store::allocate_and;
pub use crate::store::{RunId, allocate};
