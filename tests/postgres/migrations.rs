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

/// The release before order changes: its migrations, a cancelled order
/// holding PO-1 and a received one holding PO-2, with a line and a key.
async fn database_before_order_changes(url: &str) {
    let migrations = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0010" {
            std::fs::copy(&path, migrations.path().join(name)).unwrap();
        }
    }
    let mut connection = PgConnection::connect(url).await.unwrap();
    sqlx::migrate::Migrator::new(migrations.path())
        .await
        .unwrap()
        .run(&mut connection)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO partners (client_id, name, secret_hash, created_at, updated_at)
             VALUES ('p', 'P', '-', now(), now());
         INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name,
                                   address, purchase_order_no, total_amount, created_at, updated_at)
             VALUES ('so_1', 'p', 'cancelled', 'C', 'S', 'N', 'A', 'PO-1', 12.50, now(), now()),
                    ('so_2', 'p', 'received', 'C', 'S', 'N', 'A', 'PO-2', NULL, now(), now());
         INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, unit_price, line_amount)
             VALUES (1, 1, 'X', 2.5, 5, 12.50);
         INSERT INTO idempotency_keys (client_id, key, request_hash, order_seq, created_at)
             VALUES ('p', 'k1', '\\x01', 2, now());",
    )
    .execute(&mut connection)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_before_order_changes_keeps_its_orders_and_frees_cancelled_numbers() {
    let (database, url) = TestDatabase::create().await;
    database_before_order_changes(&url).await;
    let app = TestApp::start(Arc::new(database), url.clone(), |_| {}).await;
    let store = &app.state.store;
    let old = store
        .order(sales_order_api::store::OrderRef::operator("so_1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((old.version, old.currency.as_str()), (1, "IDR"));
    assert_eq!(
        old.products[0].line_amount.as_ref().unwrap().to_string(),
        "12.5"
    );

    let order = |po: &str| {
        let mut body = order_body(po);
        body["products"] = serde_json::json!([{"product_code": "X", "quantity": 1}]);
        sales_order_api::http::order_body::parse(body.to_string().as_bytes(), &Default::default())
            .unwrap()
    };
    let p = client("p");
    let now = app.state.clock.now();
    let reused = store
        .insert_order(&p, order("PO-1"), None, now)
        .await
        .unwrap();
    assert!(
        matches!(reused, sales_order_api::store::InsertOrder::Created(_)),
        "{reused:?}"
    );
    let taken = store
        .insert_order(&p, order("PO-2"), None, now)
        .await
        .unwrap();
    assert!(
        matches!(&taken, sales_order_api::store::InsertOrder::DuplicatePurchaseOrder { existing_id } if existing_id == "so_2"),
        "{taken:?}"
    );
}
