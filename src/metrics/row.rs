//! The row being built: registered fields, their handles, and the values set so far.

use std::collections::HashMap;

use super::value::write_text;
use super::{Value, validate_field};
use crate::error::Result;

/// A field registered with a [`TableWriter`](super::TableWriter): a cheap handle for the hot
/// path, so callers (and the C ABI) can set values without hashing the name every row.
///
/// The low 20 bits are the field's number in its writer; the bits above tag the
/// writer, so that an id handed to another table is refused instead of setting whichever of
/// its fields has the same number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldId(pub(crate) u32);

/// Bits of a [`FieldId`] that number the field: a table holds at most 2^20 fields.
const INDEX_BITS: u32 = 20;

impl FieldId {
    /// The handle's number (dense from 0, in registration order).
    pub fn index(self) -> usize {
        (self.0 & ((1 << INDEX_BITS) - 1)) as usize
    }

    fn tag(self) -> u32 {
        self.0 >> INDEX_BITS
    }
}

/// The tag of the next writer's ids (12 bits, wrapping).
static NEXT_TAG: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The fields a writer knows and the row it is building, with the run id every row carries.
pub(super) struct PendingRow {
    /// The run id, already formatted as a CSV cell.
    run_id_cell: String,
    names: Vec<String>,
    ids: HashMap<String, FieldId>,
    /// This row's tag in its ids (see [`FieldId`]).
    tag: u32,
    /// The field `field_id` expects to be asked for next (see there).
    next_guess: usize,
    values: Vec<Option<Value>>,
    touched: Vec<FieldId>,
}

impl PendingRow {
    pub(super) fn new(run_id: &str) -> PendingRow {
        let mut cell = Vec::new();
        write_text(run_id, &mut cell);
        PendingRow {
            run_id_cell: String::from_utf8(cell).unwrap_or_default(),
            names: Vec::new(),
            ids: HashMap::new(),
            tag: NEXT_TAG.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                % (1 << (32 - INDEX_BITS)),
            next_guess: 0,
            values: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// The handle of `name`, and whether it was registered just now.
    pub(super) fn field_id(&mut self, name: &str) -> Result<(FieldId, bool)> {
        // Loops set the same fields in the same order row after row: guess the field after the
        // last one asked for, and compare one string instead of hashing.
        if let Some(guess) = self.names.get(self.next_guess)
            && guess == name
        {
            let id = self.id(self.next_guess);
            self.next_guess += 1;
            return Ok((id, false));
        }
        if let Some(&id) = self.ids.get(name) {
            self.next_guess = id.index() + 1;
            return Ok((id, false));
        }
        validate_field(name)?;
        if self.names.len() >= 1 << INDEX_BITS {
            return Err(crate::Error::invalid_name(
                "field name",
                name,
                format!("a table holds at most {} fields", 1u32 << INDEX_BITS),
            ));
        }
        let id = self.id(self.names.len());
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        self.values.push(None);
        self.next_guess = id.index() + 1;
        Ok((id, true))
    }

    /// The id of field number `index`.
    fn id(&self, index: usize) -> FieldId {
        FieldId(self.tag << INDEX_BITS | index as u32)
    }

    /// Whether `id` is one of this row's fields (not another writer's).
    pub(super) fn owns(&self, id: FieldId) -> bool {
        id.tag() == self.tag && id.index() < self.names.len()
    }

    /// Sets a field by handle. Panics if `id` is not one of this row's.
    pub(super) fn set(&mut self, id: FieldId, value: Value) {
        assert!(
            self.owns(id),
            "field id {id:?} is not one of this table's: use the ids its own field_id() returned"
        );
        let slot = &mut self.values[id.index()];
        if slot.is_none() {
            self.touched.push(id);
        }
        *slot = Some(value);
    }

    pub(super) fn clear(&mut self) {
        for id in self.touched.drain(..) {
            self.values[id.index()] = None;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.touched.is_empty()
    }

    /// Every registered field's name, by handle.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// The fields set in this row, in the order they were first set.
    pub(super) fn touched(&self) -> &[FieldId] {
        &self.touched
    }

    /// The value of a field in this row.
    pub(super) fn value(&self, id: FieldId) -> Option<&Value> {
        self.values.get(id.index()).and_then(Option::as_ref)
    }

    pub(super) fn run_id_cell(&self) -> &str {
        &self.run_id_cell
    }
}
