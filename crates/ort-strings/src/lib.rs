//! ONNX Runtime string tensors filled straight from borrowed bytes.
//!
//! `ort`'s safe constructor (`Tensor::from_string_array`) takes owned `'static` values and
//! makes a NUL-terminated copy of each before ONNX Runtime copies it once more: for a batch of
//! Arrow strings that is two allocations and three copies per cell beyond the model's own
//! work. [`string_tensor`] asks ONNX Runtime for each element's buffer at its final size
//! (`GetResizedStringTensorElementBuffer`) and copies the bytes there, once.
//!
//! This crate holds the `unsafe` code of tabssl's inference path, so that the core keeps
//! `unsafe_code = "forbid"`.

use std::ffi::CStr;
use std::ptr::{self, NonNull};

use ort::AsPointer;
use ort::memory::Allocator;
use ort::sys::{ONNXTensorElementDataType, OrtStatusPtr};
use ort::value::DynValue;

/// A string tensor of `shape` whose elements, in row-major order, are `values`; elements
/// after the last value are empty strings.
///
/// # Errors
/// When `shape` has a negative dimension, `values` yields more elements than `shape` holds,
/// or ONNX Runtime refuses an allocation.
pub fn string_tensor<'a>(shape: &[i64], values: impl IntoIterator<Item = &'a [u8]>) -> ort::Result<DynValue> {
    let elements = shape.iter().try_fold(1usize, |total, &d| {
        usize::try_from(d).ok().and_then(|d| total.checked_mul(d))
    });
    let elements = elements.ok_or_else(|| ort::Error::new(format!("invalid string tensor shape {shape:?}")))?;
    let api = ort::api();
    let mut allocator = Allocator::default();
    let mut value = ptr::null_mut();
    // SAFETY: the allocator and the shape outlive the call; `value` receives a new tensor
    // of empty strings, owned by us until `DynValue::from_ptr` takes it.
    check(unsafe {
        (api.CreateTensorAsOrtValue)(
            allocator.ptr_mut(),
            shape.as_ptr(),
            shape.len(),
            ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
            &mut value,
        )
    })?;
    let value = NonNull::new(value).ok_or_else(|| ort::Error::new("ONNX Runtime returned no string tensor"))?;
    // SAFETY: `value` is the tensor just created with `allocator`; from here on the
    // `DynValue` owns it and releases it on every path, errors included.
    let tensor: DynValue = unsafe { DynValue::from_ptr(value, Some(&allocator)) };
    for (index, bytes) in values.into_iter().enumerate() {
        if index >= elements {
            return Err(ort::Error::new(format!(
                "{} or more strings for a tensor of {elements}",
                index + 1
            )));
        }
        let mut buffer: *mut std::ffi::c_char = ptr::null_mut();
        // SAFETY: `index` is in bounds (checked above) of the live string tensor `value`;
        // ONNX Runtime resizes that element to `bytes.len()` and returns its buffer.
        check(unsafe { (api.GetResizedStringTensorElementBuffer)(value.as_ptr(), index, bytes.len(), &mut buffer) })?;
        if !bytes.is_empty() {
            // SAFETY: `buffer` holds exactly `bytes.len()` writable bytes (the element was
            // just resized to that length) and cannot overlap Arrow's buffer.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len()) };
        }
    }
    Ok(tensor)
}

/// An ONNX Runtime status as a result (the status is released).
fn check(status: OrtStatusPtr) -> ort::Result<()> {
    if status.0.is_null() {
        return Ok(());
    }
    let api = ort::api();
    // SAFETY: a non-null status carries a NUL-terminated message owned by the status; it
    // is copied before the status is released, exactly once.
    let message = unsafe { CStr::from_ptr((api.GetErrorMessage)(status.0)) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `status` is non-null and not used after this call.
    unsafe { (api.ReleaseStatus)(status.0) };
    Err(ort::Error::new(message))
}
