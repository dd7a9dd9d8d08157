//! Several instances of the service on one database, as behind a load
//! balancer: every piece of shared state must hold across them.

use sales_order_api::config::Settings;
use serde_json::Value;

use crate::cli::{cli, create_partner};
use crate::helpers::*;

const ORDERS: &str = "/api/v1/sales-orders";

async fn status_of(response: reqwest::Response) -> u16 {
    response.status().as_u16()
}

fn token_of(body: &Value) -> String {
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_and_an_order_from_one_instance_are_honoured_by_another() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;

    let response = one.create_order(&session, &order_body("PO-1")).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();

    // The token was signed with the key both instances read from the database.
    let response = two
        .get(
            &session,
            &format!("{ORDERS}/{}", created["data"]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["data"],
        created["data"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_refreshed_on_one_instance_is_reuse_on_another_and_revokes_the_lineage_on_both() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let first = one.session(&partner).await;
    let response = one.refresh(&first.token).await;
    assert_eq!(response.status(), 200);
    let second = Session {
        partner: &partner,
        token: token_of(&response.json().await.unwrap()),
    };
    assert_eq!(status_of(two.get(&second, ORDERS).await).await, 200);

    // Past the 30 s in which a lost refresh answer is given again.
    two.advance_clock(std::time::Duration::from_secs(31));
    expect_error(two.refresh(&first.token).await, 401, "TOKEN_REUSED").await;

    for app in [&one, &two] {
        expect_error(app.get(&second, ORDERS).await, 401, "TOKEN_REVOKED").await;
        expect_error(app.refresh(&second.token).await, 401, "TOKEN_REVOKED").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_refreshes_of_one_token_split_across_two_instances_succeed_exactly_once() {
    // No grace for a lost refresh answer: the others are reuse.
    let strict = |settings: &mut Settings| settings.refresh_grace = std::time::Duration::ZERO;
    let one = TestApp::spawn_with(strict).await;
    let two = TestApp::start_on(&one, strict).await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    let attempts = (0..8).map(|i| [&one, &two][i % 2].refresh(&session.token));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_racing_creates_of_one_po_split_across_two_instances_create_one_order() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    let body = order_body("PO-RACE");
    let attempts = (0..32).map(|i| [&one, &two][i % 2].create_order(&session, &body));
    let responses = futures::future::join_all(attempts).await;

    let mut created = Vec::new();
    let mut existing = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            201 => created.push(response.json::<Value>().await.unwrap()["data"]["id"].clone()),
            409 => existing.push(
                response.json::<Value>().await.unwrap()["error"]["details"][0]["existing_id"]
                    .clone(),
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(existing.len(), 31);
    assert!(existing.iter().all(|id| *id == created[0]));
    let listed: Value = two.get(&session, ORDERS).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn order_numbers_from_two_instances_never_collide() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    let bodies: Vec<Value> = (0..20).map(|i| order_body(&format!("PO-{i}"))).collect();
    let attempts = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| [&one, &two][i % 2].create_order(&session, body));
    let mut numbers = Vec::new();
    for response in futures::future::join_all(attempts).await {
        assert_eq!(response.status(), 201);
        let order: Value = response.json().await.unwrap();
        numbers.push(order["data"]["order_number"].as_str().unwrap().to_owned());
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_changes_on_the_command_line_reach_every_instance_within_a_second() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let instances = [&one, &two];
    let created = create_partner(
        &one.database_url,
        "versuni-client-001",
        "vectors/published-sample-public-key.pem",
    );
    let first_key = created["key_id"].as_str().unwrap();
    let partner = Partner {
        client_id: "versuni-client-001".into(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
        key: TestKey::vectors(),
    };
    let rotated = Partner {
        client_id: partner.client_id.clone(),
        secret: partner.secret.clone(),
        key: TestKey::new(ROTATED_PRIVATE, ROTATED_PUBLIC_PKCS1),
    };
    let session = one.session(&partner).await;
    let with_rotated_key = Session {
        partner: &rotated,
        token: session.token.clone(),
    };
    let args = |args: &[&str]| {
        let output = cli(&one.database_url, args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };

    // A second key: signatures made with it start to count everywhere.
    let rotated_key = fixture("keys/rotated-public-pkcs1.pem")
        .display()
        .to_string();
    args(&[
        "partner",
        "add-key",
        "versuni-client-001",
        "--public-key",
        &rotated_key,
    ]);
    for app in instances {
        within_a_second("the added key is accepted", || async {
            status_of(app.get(&with_rotated_key, ORDERS).await).await == 200
        })
        .await;
    }

    // The first key revoked: its signatures stop counting everywhere.
    args(&["partner", "revoke-key", "versuni-client-001", first_key]);
    for app in instances {
        within_a_second("the revoked key is refused", || async {
            status_of(app.get(&session, ORDERS).await).await == 401
        })
        .await;
    }

    // The partner disabled: refused everywhere, then allowed again.
    args(&["partner", "disable", "versuni-client-001"]);
    for app in instances {
        within_a_second("the disabled partner is refused", || async {
            status_of(app.get(&with_rotated_key, ORDERS).await).await == 401
        })
        .await;
        expect_error(
            app.login(&partner.client_id, &partner.secret).await,
            401,
            "PARTNER_DISABLED",
        )
        .await;
    }
    // Enabled again: a new login is served everywhere; tokens from before
    // the disable are not (disabling ended the partner's logins).
    args(&["partner", "enable", "versuni-client-001"]);
    let fresh = one.session(&rotated).await;
    for app in instances {
        within_a_second("the enabled partner is served", || async {
            status_of(app.get(&fresh, ORDERS).await).await == 200
        })
        .await;
        within_a_second(
            "the token from before the disable stays refused",
            || async {
                status_and_code(app.get(&with_rotated_key, ORDERS).await).await
                    == (401, "TOKEN_REVOKED".into())
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crossed_purchase_orders_from_two_instances_are_each_created_once_without_a_deadlock() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    // Each instance wants the same twenty numbers, one in the opposite order
    // of the other, three times over: their batches cross on every number.
    let numbers: Vec<String> = (0..20).map(|n| format!("PO-X{n:02}")).collect();
    let bodies: Vec<(usize, Value)> = (0..3)
        .flat_map(|_| {
            numbers
                .iter()
                .map(|po| (0, order_body(po)))
                .chain(numbers.iter().rev().map(|po| (1, order_body(po))))
                .collect::<Vec<_>>()
        })
        .collect();
    let attempts = bodies
        .iter()
        .map(|(instance, body)| [&one, &two][*instance].create_order(&session, body));
    let responses = futures::future::join_all(attempts).await;

    let mut statuses = std::collections::BTreeMap::new();
    for response in responses {
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses, [(201, 20), (409, 100)].into(), "{statuses:?}");
    let listed: Value = two
        .get(&session, &format!("{ORDERS}?limit=100"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 20);
}
