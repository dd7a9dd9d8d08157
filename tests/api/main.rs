//! Integration suite: each test starts the real server on port 0 over a fresh
//! SQLite database and speaks HTTP to it.

mod helpers;

mod auth;
mod cli;
mod errors;
mod interop;
mod orders;
mod service;
mod signing;
