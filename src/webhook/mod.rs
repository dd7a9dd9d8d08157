//! Webhooks going out: where they may go ([`address`]), how they are signed
//! ([`signature`]), and the worker that delivers them ([`delivery`]).

pub mod address;
pub mod delivery;
pub mod signature;
