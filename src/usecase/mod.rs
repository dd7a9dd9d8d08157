//! What the service does on behalf of whoever asks, whether the HTTP API or
//! the operator's command line: each use case once, called by both.
//!
//! Policy that must hold inside a transaction (the status state machine,
//! refresh-token reuse, purchase-order duplicates) is decided in the store,
//! once for both databases; a use case here composes the steps around it
//! (minting ids and secrets, hashing, choosing what to store).

pub mod partners;
