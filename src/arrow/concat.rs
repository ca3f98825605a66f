//! Concatenating the arrays this module makes (arrow-select would do it, at the price of
//! two minutes of compiling for a build without Parquet).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, NullArray, PrimitiveArray, StringArray,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

/// The arrays one after the other. All have the same type, one of those `read_table` and
/// `read_dir` make: Null, Int64, Float64, Boolean, Utf8, or Int32 dictionaries of Utf8 that
/// share their dictionary.
pub(crate) fn arrays(parts: &[&ArrayRef]) -> Result<ArrayRef, String> {
    let Some(first) = parts.first() else {
        return Err("nothing to concatenate".into());
    };
    let len = parts.iter().map(|p| p.len()).sum();
    Ok(match first.data_type() {
        DataType::Null => Arc::new(NullArray::new(len)),
        DataType::Int64 => Arc::new(primitive::<Int64Type>(parts, len)),
        DataType::Float64 => Arc::new(primitive::<Float64Type>(parts, len)),
        DataType::Boolean => {
            let mut values = BooleanBufferBuilder::new(len);
            for part in parts {
                values.append_buffer(part.as_boolean().values());
            }
            Arc::new(BooleanArray::new(values.finish(), nulls(parts, len)))
        }
        DataType::Utf8 => {
            let mut offsets: Vec<i32> = Vec::with_capacity(len + 1);
            offsets.push(0);
            let mut data = Vec::new();
            for part in parts {
                let text = part.as_string::<i32>();
                let own = text.value_offsets();
                let (start, end) = (own[0] as usize, own[own.len() - 1] as usize);
                let base = i32::try_from(data.len()).map_err(|_| "more than 2 GiB of text")?;
                offsets.extend(own[1..].iter().map(|&o| o - own[0] + base));
                data.extend_from_slice(&text.value_data()[start..end]);
            }
            i32::try_from(data.len()).map_err(|_| "more than 2 GiB of text")?;
            Arc::new(
                StringArray::try_new(
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    Buffer::from_vec(data),
                    nulls(parts, len),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        DataType::Dictionary(key, _) if **key == DataType::Int32 => {
            let dictionaries: Vec<&DictionaryArray<Int32Type>> = parts
                .iter()
                .map(|p| p.as_dictionary::<Int32Type>())
                .collect();
            let values = dictionaries[0].values();
            if dictionaries
                .iter()
                .any(|d| !Arc::ptr_eq(d.values(), values) && d.values() != values)
            {
                return Err("dictionaries differ between batches".into());
            }
            let keys: Vec<ArrayRef> = dictionaries
                .iter()
                .map(|d| Arc::new(d.keys().clone()) as ArrayRef)
                .collect();
            let keys = primitive::<Int32Type>(&keys.iter().collect::<Vec<_>>(), len);
            Arc::new(DictionaryArray::try_new(keys, Arc::clone(values)).map_err(|e| e.to_string())?)
        }
        other => return Err(format!("unexpected column type {other}")),
    })
}

fn primitive<T: ArrowPrimitiveType>(parts: &[&ArrayRef], len: usize) -> PrimitiveArray<T> {
    let mut values = Vec::with_capacity(len);
    for part in parts {
        values.extend_from_slice(part.as_primitive::<T>().values());
    }
    PrimitiveArray::new(values.into(), nulls(parts, len))
}

fn nulls(parts: &[&ArrayRef], len: usize) -> Option<arrow_buffer::NullBuffer> {
    let mut nulls = NullBufferBuilder::new(len);
    for part in parts {
        match part.nulls() {
            Some(buffer) => nulls.append_buffer(buffer),
            None => nulls.append_n_non_nulls(part.len()),
        }
    }
    nulls.finish()
}
