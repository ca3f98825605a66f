//! A parsed column (see [`crate::metrics::columnar`]) as an Arrow array: its buffers are
//! wrapped as they are, no value is copied.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, new_null_array};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use crate::ColumnType;
use crate::metrics::columnar::{Bits, Column, Validity};

/// The Arrow type of an inferred column type.
pub(crate) fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Null => DataType::Null,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Str => DataType::Utf8,
    }
}

/// `column` as an Arrow array of type `ty`, which must be `unify(column's type, ty)`. Errors
/// only when text does not fit Arrow's 32-bit offsets or is not UTF-8.
pub(crate) fn array(column: Column, ty: ColumnType) -> Result<ArrayRef, String> {
    Ok(match column.cast(ty) {
        Column::Null(n) => new_null_array(&data_type(ty), n),
        Column::Int(values, valid) => Arc::new(Int64Array::new(values.into(), nulls(valid))),
        Column::Float(values, valid, _) => Arc::new(Float64Array::new(values.into(), nulls(valid))),
        Column::Bool(values, valid) => Arc::new(BooleanArray::new(bits(values), nulls(valid))),
        Column::Str(offsets, data, valid) => {
            if i32::try_from(data.len()).is_err() {
                return Err(format!(
                    "a text column holds {} bytes, more than an Arrow string array can (2 GiB)",
                    data.len()
                ));
            }
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            Arc::new(
                StringArray::try_new(offsets, Buffer::from_vec(data), nulls(valid))
                    .map_err(|e| format!("text that is not UTF-8 ({e})"))?,
            )
        }
    })
}

fn bits(bits: Bits) -> BooleanBuffer {
    let (bytes, len) = bits.into_parts();
    BooleanBuffer::new(Buffer::from_vec(bytes), 0, len)
}

fn nulls(valid: Validity) -> Option<NullBuffer> {
    valid.finish().map(|valid| NullBuffer::new(bits(valid)))
}
