//! Instances that start at the same moment on an empty database.

use std::sync::Arc;

use sqlx::{Connection, PgConnection, Row};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_starting_at_once_on_an_empty_database_migrate_it_once_and_share_one_key() {
    let (database, url) = TestDatabase::create().await;
    let database = Arc::new(database);
    let start = || TestApp::start(database.clone(), url.clone(), |_| {});
    // Each start runs the migrations and settles the token key; all race.
    let (one, two, three) = tokio::join!(start(), start(), start());

    let mut connection = PgConnection::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get(0);
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(applied, i64::try_from(shipped).unwrap());

    // One signing key won the race: a token from any instance works on all.
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    for issuer in [&one, &two, &three] {
        let session = issuer.session(&partner).await;
        for app in [&one, &two, &three] {
            assert_eq!(
                app.get(&session, "/api/v1/sales-orders").await.status(),
                200
            );
        }
    }
}
