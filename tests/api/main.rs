//! Integration suite: each test starts the real server on port 0 over a fresh
//! SQLite database and speaks HTTP to it. `tests/postgres` runs these same
//! files again on PostgreSQL.

const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod helpers;

mod audit;
mod auth;
mod batches;
mod cancellation;
mod changes;
mod cli;
mod errors;
mod events;
mod export;
mod hardening;
mod instances;
mod interop;
mod kit;
mod manage;
mod orders;
mod sandbox;
mod service;
mod signing;
mod tls;
mod unicode;
mod webhooks;
