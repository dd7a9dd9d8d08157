//! The integration suite of `tests/api`, file for file, on PostgreSQL: each
//! test creates its own database on the server named by `TEST_DATABASE_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and drops it at the
//! end. Then the tests only a shared server makes sense for: instances
//! migrating one empty database at once, and the server going away.
//!
//! Without `TEST_DATABASE_URL` (read when this is compiled, see `build.rs`)
//! the suite is one ignored test whose name says so.

#[cfg(not(postgres_tests))]
#[test]
#[ignore = "PostgreSQL tests skipped: set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run them"]
fn postgresql_tests_skipped_because_test_database_url_is_not_set() {}

#[cfg(postgres_tests)]
const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[cfg(postgres_tests)]
#[path = "../api/helpers.rs"]
mod helpers;

#[cfg(postgres_tests)]
#[path = "../api/audit.rs"]
mod audit;
#[cfg(postgres_tests)]
#[path = "../api/auth.rs"]
mod auth;
#[cfg(postgres_tests)]
#[path = "../api/batches.rs"]
mod batches;
#[cfg(postgres_tests)]
#[path = "../api/cancellation.rs"]
mod cancellation;
#[cfg(postgres_tests)]
#[path = "../api/changes.rs"]
mod changes;
#[cfg(postgres_tests)]
#[path = "../api/cli.rs"]
mod cli;
#[cfg(postgres_tests)]
#[path = "../api/errors.rs"]
mod errors;
#[cfg(postgres_tests)]
#[path = "../api/events.rs"]
mod events;
#[cfg(postgres_tests)]
#[path = "../api/export.rs"]
mod export;
#[cfg(postgres_tests)]
#[path = "../api/hardening.rs"]
mod hardening;
#[cfg(postgres_tests)]
#[path = "../api/instances.rs"]
mod instances;
#[cfg(postgres_tests)]
#[path = "../api/interop.rs"]
mod interop;
#[cfg(postgres_tests)]
#[path = "../api/manage.rs"]
mod manage;
#[cfg(postgres_tests)]
#[path = "../api/orders.rs"]
mod orders;
#[cfg(postgres_tests)]
#[path = "../api/sandbox.rs"]
mod sandbox;
#[cfg(postgres_tests)]
#[path = "../api/service.rs"]
mod service;
#[cfg(postgres_tests)]
#[path = "../api/signing.rs"]
mod signing;
#[cfg(postgres_tests)]
#[path = "../api/unicode.rs"]
mod unicode;
#[cfg(postgres_tests)]
#[path = "../api/webhooks.rs"]
mod webhooks;

#[cfg(postgres_tests)]
mod migrations;
#[cfg(postgres_tests)]
mod outage;
