//! What an outside security review found, each as the probe that found it:
//! made-up methods growing the metrics, slow clients holding connections,
//! slow bodies answered as our fault.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, client};

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_made_up_methods_leave_the_metrics_small() {
    let app = TestApp::spawn().await;
    for i in 0..1000 {
        // Distinct, long, and valid HTTP tokens: what hyper accepts as a method.
        let name = format!("PROBE{i:04}{}", "X".repeat(60));
        let method = reqwest::Method::from_bytes(name.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/api/v1/sales-orders"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }

    let text = app.metrics().await;

    assert!(
        !text.contains("PROBE0999"),
        "a made-up method became a label"
    );
    assert!(
        text.contains(r#"method="other""#),
        "made-up methods are counted as other"
    );
    assert!(
        text.len() < 64 * 1024,
        "/metrics is {} bytes after 1 000 made-up methods",
        text.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_not_served_on_the_api_port() {
    let app = TestApp::spawn().await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();

    assert_eq!(response.status(), 404);
    assert!(app.metrics().await.contains("http_requests_total"));
}

/// A connection that sends the start of a request, then a header byte every
/// `every`, as slowloris does; it never finishes its header block.
async fn trickle(address: std::net::SocketAddr, every: Duration) -> tokio::task::JoinHandle<()> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if stream.write_all(b"X").await.is_err() {
                return;
            }
        }
    })
}

/// Seconds until the server closes `stream`, up to `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_cut_off_at_the_header_read_timeout() {
    let app = TestApp::spawn_with(|settings| {
        settings.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickler = tokio::spawn(async move {
        while writer.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let started = Instant::now();
    let mut buffer = [0; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;

    trickler.abort();
    assert!(
        closed.is_ok(),
        "still open after 5 s of trickled headers (timeout 1 s)"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(|settings| {
        settings.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));

    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;

    let closed = closed.expect("the idle connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_slow_connections_give_way_and_healthz_answers() {
    let app = TestApp::spawn_with(|settings| {
        settings.max_connections = Some(8);
        // Long, so that only the cap can make room within the test.
        settings.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(trickle(app.address, Duration::from_millis(200)).await);
    }

    let started = Instant::now();
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("http_connections_evicted_total"),
        "{metrics}"
    );
    for task in slow {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_bodies_that_never_arrive_give_way_and_healthz_answers() {
    let app = TestApp::spawn_with(|settings| {
        settings.max_connections = Some(8);
        settings.body_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        stream
            .write_all(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .await
            .unwrap();
        slow.push(stream);
    }

    let started = Instant::now();
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_trickles_in_gets_408_request_timeout_not_a_5xx() {
    let app = TestApp::spawn_with(|settings| {
        settings.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"client_id\"",
        )
        .await
        .unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;

    assert!(read.is_ok(), "no answer within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"REQUEST_TIMEOUT""#), "{answer}");
}

/// The review's probe as it was run: a server with 64 file descriptors and
/// 60 connections trickling header bytes. Before the cap, accept() ran out of
/// descriptors and /healthz went unanswered.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_64_file_descriptors_still_answers_healthz_under_60_slow_connections() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("fd.db").display());
    let mut server = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_sales-order-api"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args(["--database-url", &database, "--database-connections", "4"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(server.stderr.take().unwrap());
    let address = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "the server stopped");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(address) = entry["fields"]["address"].as_str() {
            break address.parse::<std::net::SocketAddr>().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in log.lines() {});
    let mut slow = Vec::new();
    for _ in 0..60 {
        slow.push(trickle(address, Duration::from_millis(500)).await);
    }

    let answer = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;

    let _ = server.kill();
    let _ = server.wait();
    for task in slow {
        task.abort();
    }
    assert_eq!(answer.expect("/healthz answers").status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_bare_requests_store_no_audit_rows_but_are_counted() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let bare = |_| async {
        app.client
            .get(app.url("/api/v1/sales-orders"))
            .send()
            .await
            .unwrap()
            .status()
    };
    let statuses = futures::future::join_all((0..2000).map(bare)).await;
    assert!(statuses.iter().all(|status| *status == 401));
    for i in 0..20 {
        let made_up = format!("made-up-client-{i}");
        assert_eq!(app.login(&made_up, "guess").await.status(), 401);
    }
    // What a partner's activity needs is still stored: a login failure for
    // a known client id.
    assert_eq!(app.login(&partner.client_id, "guess").await.status(), 401);

    let deadline = Instant::now() + Duration::from_secs(5);
    while app.rows("audit_events").await < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The writer batches every 100 ms: give stragglers the time to land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(
        app.rows("audit_events").await,
        1,
        "only the known partner's failed login is stored"
    );
    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    assert!(app.state.audit.unattributed_from(localhost) >= 2020);
    assert!(
        app.metrics()
            .await
            .contains(r#"audit_unattributed_total{kind="request_refused"}"#)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forty_concurrent_wrong_secrets_for_one_client_id_run_argon2_at_most_eleven_times() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let guess = |_| async { app.login(&partner.client_id, "guess").await.status() };

    let statuses = futures::future::join_all((0..40).map(guess)).await;

    let checked = statuses.iter().filter(|status| **status == 401).count();
    let throttled = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(checked, 11, "{statuses:?}");
    assert_eq!(throttled, 29, "{statuses:?}");
}

/// A create without a purchase order number, signed with v2: nothing but
/// the signature tells a replay from a new order.
fn v2_create<'a>(app: &TestApp, session: &crate::helpers::Session<'a>) -> reqwest::Request {
    let mut body = crate::helpers::order_body("unused");
    body["purchase_order_no"] = serde_json::Value::Null;
    let bytes = serde_json::to_vec(&body).unwrap();
    app.signed_v2(
        session,
        reqwest::Method::POST,
        "/api/v1/sales-orders",
        &bytes,
        bytes.clone(),
    )
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captured_v2_request_sent_three_times_creates_one_order() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    let captured = v2_create(&app, &session);

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let replay = captured.try_clone().unwrap();
        let response = app.client.execute(replay).await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 401 {
            crate::helpers::expect_error(response, 401, "SIGNATURE_REPLAYED").await;
        }
    }

    assert_eq!(statuses, [201, 401, 401]);
    assert_eq!(app.rows("sales_orders").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_replay_is_refused_by_another_instance_too() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    let captured = v2_create(&app, &session);
    let mut replay = captured.try_clone().unwrap();
    *replay.url_mut() = sibling.url("/api/v1/sales-orders").parse().unwrap();

    assert_eq!(app.client.execute(captured).await.unwrap().status(), 201);
    let response = app.client.execute(replay).await.unwrap();

    crate::helpers::expect_error(response, 401, "SIGNATURE_REPLAYED").await;
    assert_eq!(app.rows("sales_orders").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn used_v2_signatures_are_forgotten_once_their_window_has_passed() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    let first = app.client.execute(v2_create(&app, &session)).await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(
        app.state.purge_signatures().await.unwrap(),
        0,
        "still in its window"
    );

    app.advance_clock(Duration::from_secs(11 * 60));

    assert_eq!(app.state.purge_signatures().await.unwrap(), 1);
    assert_eq!(app.rows("used_signatures").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v1_signature_is_still_reused_by_design() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    let timestamp = app.now().to_string();
    let signature = partner
        .key
        .sign(&format!("{}|{timestamp}", partner.client_id));
    for po in ["PO-V1-1", "PO-V1-2", "PO-V1-3"] {
        let response = app
            .with_headers(
                &session,
                reqwest::Method::POST,
                "/api/v1/sales-orders",
                &partner.client_id,
                &timestamp,
                Some(signature.clone()),
            )
            .json(&crate::helpers::order_body(po))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_issued_before_a_disable_stay_dead_after_enable() {
    let app = TestApp::spawn().await;
    let created = crate::cli::create_partner(
        &app.database_url,
        "versuni-client-001",
        "vectors/published-sample-public-key.pem",
    );
    let partner = crate::helpers::Partner {
        client_id: "versuni-client-001".into(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
        key: crate::helpers::TestKey::vectors(),
    };
    let session = app.session(&partner).await;
    assert_eq!(
        app.get(&session, "/api/v1/sales-orders").await.status(),
        200
    );
    for command in ["disable", "enable"] {
        let output = crate::cli::cli(
            &app.database_url,
            &["partner", command, "versuni-client-001"],
        );
        assert!(output.status.success());
    }

    crate::helpers::within_a_second("the old token is refused", || async {
        app.get(&session, "/api/v1/sales-orders").await.status() == 401
    })
    .await;
    crate::helpers::expect_error(app.refresh(&session.token).await, 401, "TOKEN_REVOKED").await;
    let fresh = app.session(&partner).await;
    assert_eq!(app.get(&fresh, "/api/v1/sales-orders").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_sessions_ends_every_login_of_a_partner_that_stays_enabled() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let first = app.session(&partner).await;
    let second = app.session(&partner).await;

    let output = crate::cli::json_of(&crate::cli::cli(
        &app.database_url,
        &["partner", "revoke-sessions", "versuni-client-001", "--json"],
    ));

    assert_eq!(output["sessions_revoked"], 2);
    for session in [&first, &second] {
        crate::helpers::within_a_second("the token is refused", || async {
            app.get(session, "/api/v1/sales-orders").await.status() == 401
        })
        .await;
        let response = app.get(session, "/api/v1/sales-orders").await;
        crate::helpers::expect_error(response, 401, "TOKEN_REVOKED").await;
    }
    let again = app.session(&partner).await;
    assert_eq!(app.get(&again, "/api/v1/sales-orders").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_lives_longer_than_the_configured_ttl_is_refused() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    // Same signing key, same login; only the lifetime is longer than 12 h.
    let mut claims = app
        .state
        .tokens
        .decode(&session.token)
        .expect("a token of ours");
    claims.exp = claims.iat + 12 * 3600 + 1;
    let long_lived = crate::helpers::Session {
        partner: &partner,
        token: app.state.tokens.issue(&claims).unwrap(),
    };

    let response = app.get(&long_lived, "/api/v1/sales-orders").await;

    let body = crate::helpers::expect_error(response, 401, "TOKEN_INVALID").await;
    assert!(
        body["message"].as_str().unwrap().contains("lifetime"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_sqlite_database_and_its_wal_and_shm_are_readable_by_their_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    if crate::BACKEND != crate::helpers::Backend::Sqlite {
        return;
    }
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    let response = app
        .create_order(&session, &crate::helpers::order_body("PO-MODE-1"))
        .await;
    assert_eq!(response.status(), 201);

    let file = app.database_url.strip_prefix("sqlite://").unwrap();
    for path in [
        file.to_owned(),
        format!("{file}-wal"),
        format!("{file}-shm"),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path} has mode {mode:o}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_command_says_so_when_the_database_is_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    if crate::BACKEND != crate::helpers::Backend::Sqlite {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite://{}", path.display());

    let output = crate::cli::cli(&url, &["partner", "list"]);

    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("open.db (mode 644) readable by others"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_of_an_expired_token_of_ours_is_in_its_partners_activity() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    app.advance_clock(Duration::from_secs(13 * 3600));

    let response = app.get(&session, "/api/v1/sales-orders").await;

    crate::helpers::expect_error(response, 401, "TOKEN_EXPIRED").await;
    let store = &app.state.store;
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let events = store
            .audit_events(
                &client("versuni-client-001"),
                &sales_order_api::store::AuditQuery::latest(10),
            )
            .await
            .unwrap();
        if let Some(event) = events
            .into_iter()
            .find(|e| e.kind == sales_order_api::domain::AuditKind::RequestRefused)
        {
            break event;
        }
        assert!(Instant::now() < deadline, "no request_refused event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.code.as_deref(), Some("TOKEN_EXPIRED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stolen_token_can_store_at_most_sixty_refusals_a_minute_and_the_rest_are_summed_up() {
    let app = TestApp::spawn().await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    forged_requests(&app, &session, 100).await;

    let store = &app.state.store;
    let stored = |kind| async move {
        let events = store
            .audit_events(
                &client("versuni-client-001"),
                &sales_order_api::store::AuditQuery::latest(1000),
            )
            .await
            .unwrap();
        events.iter().filter(|e| e.kind == kind).count()
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    use sales_order_api::domain::AuditKind;
    assert_eq!(stored(AuditKind::SignatureFailed).await, 60);

    // The next minute's first refusal brings the summary of the last.
    app.advance_clock(Duration::from_secs(61));
    let timestamp = app.now().to_string();
    let response = app
        .with_headers(
            &session,
            reqwest::Method::GET,
            "/api/v1/sales-orders",
            &partner.client_id,
            &timestamp,
            Some(forged_signature()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let events = stored_events(&app).await;
    let summary = events
        .iter()
        .find(|e| e.kind == AuditKind::RefusalsSuppressed)
        .expect("a summary of the suppressed refusals");
    assert!(
        summary
            .reason
            .as_deref()
            .unwrap()
            .starts_with("40 more refusals (signature_failed)"),
        "{summary:?}"
    );
    assert_eq!(stored(AuditKind::SignatureFailed).await, 61);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_change_is_audited_even_when_its_output_has_no_reader() {
    let app = TestApp::spawn().await;
    app.register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sales-order-api"))
        .args(["--database-url", &app.database_url])
        .args(["partner", "disable", "versuni-client-001"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());

    let status = child.wait().unwrap();

    assert!(status.success());
    let events = app
        .state
        .store
        .audit_events(
            &client("versuni-client-001"),
            &sales_order_api::store::AuditQuery::latest(10),
        )
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == sales_order_api::domain::AuditKind::PartnerDisabled),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_that_finishes_after_a_disable_starts_no_session() {
    let app = TestApp::spawn().await;
    app.register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    // The disable lands while the secret is being checked: the session the
    // login then starts must not exist.
    let store = &app.state.store;
    assert!(
        store
            .set_partner_enabled(&client("versuni-client-001"), false, app.time())
            .await
            .unwrap()
    );
    let token = sales_order_api::store::TokenRow {
        jti: "tok_race",
        session_id: "ses_race",
        issued_at: app.time(),
        expires_at: app.time() + time::Duration::hours(1),
    };

    let started = store
        .start_session(&client("versuni-client-001"), &token)
        .await
        .unwrap();

    assert!(!started);
    assert!(store.session_state("ses_race").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_reuse_is_recorded_whole_even_after_a_flood_of_refusals() {
    // No grace for a lost refresh answer: the second refresh is reuse at once.
    let app =
        TestApp::spawn_with(|settings| settings.refresh_grace = std::time::Duration::ZERO).await;
    let partner = app
        .register("versuni-client-001", crate::helpers::TestKey::vectors())
        .await;
    let session = app.session(&partner).await;
    // The minute's budget of stored refusals is spent.
    forged_requests(&app, &session, 80).await;

    let body = serde_json::json!({"token": session.token});
    let refresh = || app.post_json("/api/v1/auth/refresh", &body);
    assert_eq!(refresh().await.status(), 200);
    let reused = refresh().await;
    assert_eq!(reused.status(), 401);
    let request_id = reused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let events = stored_events(&app).await;
    use sales_order_api::domain::AuditKind;
    let reuse = events
        .iter()
        .find(|e| e.kind == AuditKind::TokenReuseDetected)
        .expect("the reuse is stored, not only counted");
    assert_eq!(reuse.request_id.as_deref(), Some(request_id.as_str()));
    assert!(reuse.source.is_some());
}

/// A signature made without the partner's key (the size of an RSA-2048 one).
fn forged_signature() -> String {
    "AAAA".repeat(86)
}

/// Sends `count` requests at once with a valid token and a forged signature
/// (a stolen token without the key); each is refused.
async fn forged_requests(app: &TestApp, session: &crate::helpers::Session<'_>, count: usize) {
    let timestamp = app.now().to_string();
    let refuse = |_| async {
        app.with_headers(
            session,
            reqwest::Method::GET,
            "/api/v1/sales-orders",
            &session.partner.client_id,
            &timestamp,
            Some(forged_signature()),
        )
        .send()
        .await
        .unwrap()
        .status()
    };
    let statuses = futures::future::join_all((0..count).map(refuse)).await;
    assert!(statuses.iter().all(|status| *status == 401));
}

/// The partner's stored audit events, once the audit writer has had time to
/// write what was queued.
async fn stored_events(app: &TestApp) -> Vec<sales_order_api::store::AuditEvent> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.state
        .store
        .audit_events(
            &client("versuni-client-001"),
            &sales_order_api::store::AuditQuery::latest(1000),
        )
        .await
        .unwrap()
}
