//! sales-order-api: signed sales-order intake for authorised partner systems.
//!
//! The HTTP edge (`http`) parses and authenticates, the domain (`domain`) holds
//! only valid orders and keys, and the store (`store`) is the single seam to the
//! database. `app` wires them together for both `main` and the test suite.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod usecase;
pub mod webhook;

pub use app::Application;
pub use config::Settings;
