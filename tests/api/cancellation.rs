//! A caller that goes away mid-write (a client hanging up, a timeout) must
//! not leave database state behind for the next user of the connection.

use std::sync::{Mutex, Once};

use sales_order_api::config::DatabaseUrl;
use sales_order_api::store::{InsertOrder, OrderRef, Store};
use sqlx::{Connection, PgConnection, Row};
use time::OffsetDateTime;

use crate::helpers::*;

/// What PostgreSQL told sqlx in notices (logged under `sqlx::postgres::notice`):
/// "there is already a transaction in progress" means a pooled connection was
/// handed out still inside someone else's transaction.
static NOTICES: Mutex<String> = Mutex::new(String::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        NOTICES
            .lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(bytes));
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_notices() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "sqlx::postgres::notice=warn",
            ))
            .with_writer(|| Capture)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Polls `future` until it has been pending `pendings` times, then drops it:
/// the caller going away at a chosen await point, as when a client hangs up.
async fn abandon_after<F: std::future::Future>(pendings: usize, future: F) {
    let mut future = std::pin::pin!(future);
    for _ in 0..pendings {
        if futures::poll!(future.as_mut()).is_ready() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_abandoned_at_any_await_point_leaves_no_transaction_behind() {
    capture_notices();
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    // One connection, so each call gets whatever the previous one left behind.
    let store = Store::connect(&DatabaseUrl::new(&app.database_url), 1)
        .await
        .unwrap();
    let order = |po: &str| {
        sales_order_api::http::order_body::parse(
            order_body(po).to_string().as_bytes(),
            &Default::default(),
        )
        .unwrap()
    };

    // Every await point of a create, new and duplicate, several times over.
    let client_id = partner.id();
    for attempt in 0..120 {
        let new = order(&format!("PO-{}", attempt % 40));
        let write = store.insert_order(&client_id, new, None, OffsetDateTime::now_utc());
        abandon_after(attempt % 12, write).await;
    }

    // The connection is clean: a write through it commits and is seen elsewhere
    // (SQLite's one writer would refuse to BEGIN inside a leftover transaction).
    let written = store
        .insert_order(
            &partner.id(),
            order("PO-LAST"),
            None,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let InsertOrder::Created(created) = written else {
        panic!("PO-LAST was not taken");
    };
    let seen = app
        .state
        .store
        .order(OrderRef::partner(&partner.id(), &created.id))
        .await
        .unwrap();
    assert!(
        seen.is_some(),
        "committed and visible to another connection"
    );

    if crate::BACKEND == Backend::Postgres {
        let mut connection = PgConnection::connect(&app.database_url).await.unwrap();
        let stuck: i64 = sqlx::query(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get(0);
        assert_eq!(stuck, 0, "a connection was left inside a transaction");
        let notices = NOTICES.lock().unwrap().clone();
        assert!(
            !notices.contains("transaction in progress"),
            "a connection was reused inside a stale transaction:\n{notices}"
        );
    }
}
