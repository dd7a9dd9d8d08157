//! The order event feed: each change writes its event, numbered per partner
//! without gaps in commit order, read with `after`, `limit` and `wait`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use sales_order_api::domain::{Actor, OrderStatus};
use sales_order_api::store::{OrderRef, StatusChange, Transition};
use serde_json::Value;

use crate::cli::cli;
use crate::helpers::*;

const ORDERS: &str = "/api/v1/sales-orders";
const EVENTS: &str = "/api/v1/events";

async fn created(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"].clone()
}

/// A page of the feed: its events and `next_after`.
async fn feed(app: &TestApp, session: &Session<'_>, query: &str) -> (Vec<Value>, i64) {
    let response = app.get(session, &format!("{EVENTS}{query}")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Events retrieved successfully");
    let events = body["data"].as_array().unwrap().clone();
    (events, body["next_after"].as_i64().unwrap())
}

async fn order(app: &TestApp, session: &Session<'_>, id: &str) -> Value {
    let response = app.get(session, &format!("{ORDERS}/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"].clone()
}

fn set_status(app: &TestApp, order: &str, status: &str) {
    let mut args = vec!["order", "set-status", order, status];
    if status == "rejected" {
        args.extend(["--reason", "out of stock"]);
    }
    let output = cli(&app.database_url, &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_writes_its_event_carrying_the_order_as_it_became() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let first = created(app.create_order(&session, &order_body("PO-1")).await).await;
    let second = created(app.create_order(&session, &order_body("PO-2")).await).await;
    let third = created(app.create_order(&session, &order_body("PO-3")).await).await;
    let as_created = [first.clone(), second.clone(), third.clone()];
    let (unchanged, _) = feed(&app, &session, "").await;
    let carried: Vec<&Value> = unchanged.iter().map(|e| &e["data"]["order"]).collect();
    assert_eq!(carried, as_created.iter().collect::<Vec<_>>());
    let [first, second, third] = [&first, &second, &third].map(|o| o["id"].as_str().unwrap());
    let response = app
        .signed(&session, Method::POST, &format!("{ORDERS}/{first}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json::<Value>().await.unwrap()["data"].clone();
    set_status(&app, second, "accepted");
    set_status(&app, second, "fulfilled");
    set_status(&app, third, "rejected");

    let (events, next_after) = feed(&app, &session, "").await;

    let seen: Vec<(i64, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["sequence"].as_i64().unwrap(),
                e["type"].as_str().unwrap(),
                e["data"]["order"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "order.created", first),
            (2, "order.created", second),
            (3, "order.created", third),
            (4, "order.cancelled", first),
            (5, "order.accepted", second),
            (6, "order.fulfilled", second),
            (7, "order.rejected", third),
        ]
    );
    assert_eq!(next_after, 7);
    for event in &events {
        assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
        assert_eq!(event["livemode"], true);
        assert!(event["created_at"].as_str().unwrap().ends_with('Z'));
    }
    // The order as it was right after each change, exactly as the API shows it.
    assert_eq!(events[3]["data"]["order"], cancelled);
    assert_eq!(
        events[5]["data"]["order"],
        order(&app, &session, second).await
    );
    assert_eq!(
        events[6]["data"]["order"],
        order(&app, &session, third).await
    );
    assert_eq!(events[4]["data"]["order"]["status"], "accepted");
    assert_eq!(events[0]["data"]["order"]["status"], "received");
    // Each creation as it was, though every order has changed since.
    let carried: Vec<&Value> = events[..3].iter().map(|e| &e["data"]["order"]).collect();
    assert_eq!(carried, as_created.iter().collect::<Vec<_>>());
    assert_eq!(app.rows("order_events").await, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_pages_with_after_and_limit_and_one_event_reads_by_id() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let other = app.register("other-client", TestKey::partner_b()).await;
    let session = app.session(&partner).await;
    let other_session = app.session(&other).await;
    for n in 0..5 {
        created(
            app.create_order(&session, &order_body(&format!("PO-{n}")))
                .await,
        )
        .await;
    }
    created(app.create_order(&other_session, &order_body("PO-X")).await).await;

    let (page, next_after) = feed(&app, &session, "?after=1&limit=2").await;
    let sequences: Vec<i64> = page
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!((sequences, next_after), (vec![2, 3], 3));
    let (rest, next_after) = feed(&app, &session, "?after=3").await;
    assert_eq!((rest.len(), next_after), (2, 5));
    let (none, next_after) = feed(&app, &session, "?after=5").await;
    assert_eq!(
        (none.len(), next_after),
        (0, 5),
        "no events: next_after is after"
    );

    // Another partner's feed is its own, numbered from 1.
    let (theirs, _) = feed(&app, &other_session, "").await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["sequence"], 1);

    let id = page[0]["id"].as_str().unwrap();
    let response = app.get(&session, &format!("{EVENTS}/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["data"], page[0]);
    let body = expect_error(
        app.get(&other_session, &format!("{EVENTS}/{id}")).await,
        404,
        "EVENT_NOT_FOUND",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains(id));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_feed_parameters_get_a_400_naming_each_one() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;

    let body = expect_error(
        app.get(&session, &format!("{EVENTS}?after=-1&limit=501&wait=31"))
            .await,
        400,
        "INVALID_QUERY",
    )
    .await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["after", "limit", "wait"]);
    for query in ["?limit=0", "?wait=abc", "?after=1.5", "?limit="] {
        expect_error(
            app.get(&session, &format!("{EVENTS}{query}")).await,
            400,
            "INVALID_QUERY",
        )
        .await;
    }
    let body = expect_error(
        app.get(&session, &format!("{EVENTS}?since=1")).await,
        400,
        "INVALID_QUERY",
    )
    .await;
    assert!(body.to_string().contains("since"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_answers_within_a_second_of_a_commit_and_otherwise_when_wait_ends() {
    let one = TestApp::spawn().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;

    // Nothing new: held for `wait`, then answered empty.
    let started = Instant::now();
    let (events, next_after) = feed(&one, &session, "?wait=1").await;
    assert_eq!((events.len(), next_after), (0, 0));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "held for wait"
    );

    // A partner's create, then an operator's change made by the CLI.
    let order = created(one.create_order(&session, &order_body("PO-1")).await).await;
    let id = order["id"].as_str().unwrap().to_owned();
    for (after, writer) in [(1, "api"), (2, "operator")] {
        let waiting = async {
            let (events, _) = feed(&one, &session, &format!("?after={after}&wait=20")).await;
            (events, Instant::now())
        };
        let change = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer == "api" {
                created(one.create_order(&session, &order_body("PO-2")).await).await;
            } else {
                let (database_url, id) = (one.database_url.clone(), id.clone());
                tokio::task::spawn_blocking(move || {
                    let output = cli(&database_url, &["order", "set-status", &id, "accepted"]);
                    assert!(output.status.success());
                })
                .await
                .unwrap();
            }
            Instant::now()
        };
        let ((events, answered), committed) = tokio::join!(waiting, change);
        assert_eq!(events.len(), 1, "{writer}: {events:?}");
        assert_eq!(events[0]["sequence"], after + 1);
        let delay = answered.saturating_duration_since(committed);
        assert!(
            delay < Duration::from_secs(1),
            "{writer}: answered {delay:?} after the commit"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_on_one_instance_wakes_for_a_commit_on_another() {
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;

    let waiting = async {
        let (events, _) = feed(&two, &session, "?wait=20").await;
        (events, Instant::now())
    };
    let change = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        created(one.create_order(&session, &order_body("PO-1")).await).await;
        Instant::now()
    };
    let ((events, answered), committed) = tokio::join!(waiting, change);

    assert_eq!(events.len(), 1);
    let delay = answered.saturating_duration_since(committed);
    assert!(
        delay < Duration::from_secs(1),
        "answered {delay:?} after the commit"
    );
}

/// Many writers on two instances, one partner, and a reader following the
/// feed as a partner would: every event is seen once, numbered 1..N in a
/// row, and every change has its event.
#[tokio::test(flavor = "multi_thread")]
async fn the_sequence_has_no_gaps_in_commit_order_under_concurrent_writers_on_two_instances() {
    const WRITERS: usize = 16;
    const ORDERS_EACH: usize = 15;
    let one = TestApp::spawn().await;
    let two = one.sibling().await;
    let partner = one.register("versuni-client-001", TestKey::vectors()).await;
    let session = one.session(&partner).await;
    let total_changes = WRITERS * ORDERS_EACH + WRITERS; // each writer cancels one order

    let writers = (0..WRITERS).map(|w| {
        let (app, session) = (if w % 2 == 0 { &one } else { &two }, &session);
        async move {
            let mut first = None;
            for n in 0..ORDERS_EACH {
                let order = created(
                    app.create_order(session, &order_body(&format!("PO-{w}-{n}")))
                        .await,
                )
                .await;
                first.get_or_insert(order["id"].as_str().unwrap().to_owned());
            }
            let path = format!("{ORDERS}/{}/cancel", first.unwrap());
            let response = app
                .signed(session, Method::POST, &path)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    let reader = async {
        let mut seen = Vec::new();
        let mut after = 0;
        while seen.len() < total_changes {
            let (events, next_after) =
                feed(&two, &session, &format!("?after={after}&limit=7&wait=10")).await;
            assert!(!events.is_empty(), "the feed stalled at {after}");
            for event in &events {
                let sequence = event["sequence"].as_i64().unwrap();
                assert_eq!(sequence, after + 1, "no gap, no repeat");
                after = sequence;
                seen.push(event.clone());
            }
            assert_eq!(next_after, after);
        }
        seen
    };
    let (_, seen) = tokio::join!(futures::future::join_all(writers), reader);

    assert_eq!(seen.len(), total_changes);
    let ids: BTreeSet<&str> = seen.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), total_changes, "every event once");
    let creates: BTreeSet<&str> = seen
        .iter()
        .filter(|e| e["type"] == "order.created")
        .map(|e| e["data"]["order"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(creates.len(), WRITERS * ORDERS_EACH);
    let cancels = seen
        .iter()
        .filter(|e| e["type"] == "order.cancelled")
        .count();
    assert_eq!(cancels, WRITERS);
    assert_eq!(one.rows("order_events").await, total_changes as i64);
    let (rest, _) = feed(&one, &session, &format!("?after={}", total_changes)).await;
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_list_filters_by_when_orders_last_changed() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let old = created(app.create_order(&session, &order_body("PO-OLD")).await).await;
    let untouched = created(app.create_order(&session, &order_body("PO-SAME")).await).await;
    app.advance_clock(Duration::from_secs(3600));
    let cutoff = app.time();
    app.advance_clock(Duration::from_secs(60));
    // Through the store, on the test's clock (the CLI reads the real one).
    let accept = StatusChange {
        to: OrderStatus::Accepted,
        reason: None,
        actor: Actor::Operator,
        actor_name: "ops",
        if_version: None,
    };
    let moved = app
        .state
        .store
        .change_status(
            OrderRef::operator(old["id"].as_str().unwrap()),
            accept,
            app.state.clock.now(),
        )
        .await
        .unwrap();
    assert!(matches!(moved, Transition::Changed(_)));
    let new = created(app.create_order(&session, &order_body("PO-NEW")).await).await;
    let format = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };

    let ids = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let response = app
        .get(
            &session,
            &format!("{ORDERS}?updated_from={}", format(cutoff)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed = ids(response.json().await.unwrap());
    assert_eq!(
        changed,
        [new["id"].as_str().unwrap(), old["id"].as_str().unwrap()]
    );
    let response = app
        .get(&session, &format!("{ORDERS}?updated_to={}", format(cutoff)))
        .await;
    assert_eq!(
        ids(response.json().await.unwrap()),
        [untouched["id"].as_str().unwrap()]
    );

    let body = expect_error(
        app.get(
            &session,
            &format!(
                "{ORDERS}?updated_from={}&updated_to={}",
                format(cutoff),
                format(cutoff)
            ),
        )
        .await,
        400,
        "INVALID_QUERY",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "updated_to");
    expect_error(
        app.get(&session, &format!("{ORDERS}?updated_from=yesterday"))
            .await,
        400,
        "INVALID_QUERY",
    )
    .await;
}
