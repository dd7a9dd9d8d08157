//! Locks that survive a panic: the maps and counters behind them (throttles,
//! tallies, open connections) stay usable if a thread panicked while holding
//! one, rather than every later request panicking too.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
