//! The paths that only one backend takes (Flex's convolution gradients, `flex_conv`; LibTorch's
//! autograd, `torch_autograd`): how they tell a generic backend's tensor apart by its type, and
//! the one switch that turns them all off (`bench-trainer --burn-gradients`).

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether the backends' own gradients are taken (the default): Flex's convolution gradients,
/// PyTorch's for LibTorch's convolutions, batch norms and ReLUs. Off, Burn's generic ones run, as
/// before those paths existed.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// See [`set_enabled`].
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// `value` as type `T` when it is one (a tensor of the backend's type, checked by `TypeId`), else
/// `value` back.
pub fn cast<T: 'static, U: 'static>(value: U) -> Result<T, U> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        Ok(*(Box::new(value) as Box<dyn Any>).downcast::<T>().expect("same TypeId"))
    } else {
        Err(value)
    }
}

/// `value` as type `T`, where a [`cast`] of another value already showed that the backend is the
/// one `T` belongs to (a model's weights after its input, a result back to the input's type).
pub fn same<T: 'static, U: 'static>(value: U) -> T {
    cast(value).unwrap_or_else(|_| unreachable!("{} is not {}", std::any::type_name::<U>(), std::any::type_name::<T>()))
}
