//! Shared by the SQLite (`tests/api`) and PostgreSQL (`tests/postgres`) test
//! binaries; each uses a different part of it.
//!
//! Tests run on the multi-threaded runtime, as the server does: a test that
//! blocks on the CLI binary must not freeze the server's tasks, one of which
//! may hold SQLite's write lock (the audit writer) until it is polled again.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sales_order_api::Application;
use sales_order_api::config::{DatabaseUrl, Settings, TlsFiles};
use sales_order_api::domain::{ClientId, PublicKey, ids};
use sales_order_api::http::AppState;
use sales_order_api::usecase::partners;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const VECTOR_PRIVATE: &str =
    include_str!("../fixtures/vectors/published-sample-private-key.pem");
pub const VECTOR_PUBLIC: &str = include_str!("../fixtures/vectors/published-sample-public-key.pem");
pub const B_PRIVATE: &str = include_str!("../fixtures/keys/partner-b-private.pem");
pub const B_PUBLIC: &str = include_str!("../fixtures/keys/partner-b-public.pem");
pub const ROTATED_PRIVATE: &str = include_str!("../fixtures/keys/rotated-private.pem");
pub const ROTATED_PUBLIC_PKCS1: &str = include_str!("../fixtures/keys/rotated-public-pkcs1.pem");

pub fn fixture(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// An RSA private key for signing, as a partner holds it.
pub struct TestKey {
    pair: KeyPair,
    pub public_pem: &'static str,
}

impl TestKey {
    pub fn new(private_pem: &str, public_pem: &'static str) -> Self {
        let block = pem::parse(private_pem).unwrap();
        let pair = match block.tag() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(block.contents()),
            _ => KeyPair::from_der(block.contents()),
        }
        .unwrap();
        Self { pair, public_pem }
    }

    pub fn vectors() -> Self {
        Self::new(VECTOR_PRIVATE, VECTOR_PUBLIC)
    }

    pub fn partner_b() -> Self {
        Self::new(B_PRIVATE, B_PUBLIC)
    }

    pub fn sign(&self, message: &str) -> String {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .unwrap();
        STANDARD.encode(signature)
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    /// The listener serving `/metrics`.
    pub metrics_address: Option<SocketAddr>,
    /// `http://127.0.0.1:port`, or `https://localhost:port` when serving TLS.
    pub base_url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub database_url: String,
    /// Shared with sibling instances; the database goes when the last one does.
    database: Arc<TestDatabase>,
    /// Stops this instance ([`TestApp::stop`]).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Which store this test binary runs the suite on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The variable naming the PostgreSQL server the suite may create databases on.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// A database of the test's own, removed when the test ends.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Someone else's (a test's own PostgreSQL cluster): nothing to clean up.
    Unmanaged,
}

impl TestDatabase {
    /// A fresh, empty database on the backend this binary tests, and its URL.
    pub async fn create() -> (Self, String) {
        match crate::BACKEND {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (Self::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let admin_url = std::env::var(TEST_DATABASE_URL).unwrap_or_else(|_| {
                    panic!("{TEST_DATABASE_URL} must name a PostgreSQL server")
                });
                let name = format!("soa_test_{}", hex::encode(ids::random_bytes::<8>()));
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|error| {
                        panic!("cannot reach PostgreSQL at {TEST_DATABASE_URL}: {error}")
                    });
                // The name is ours (hex), so formatting it into SQL is safe.
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let url = with_database(&admin_url, &name);
                (Self::Postgres { admin_url, name }, url)
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Self::Postgres { admin_url, name } = self else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot block on async work;
        // a thread with its own runtime can. FORCE ends the servers' connections.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut admin).await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// `admin_url` with its database name replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A self-signed certificate for `localhost`, written as PEM files.
pub struct TestCertificate {
    pub cert_pem: String,
    dir: tempfile::TempDir,
}

impl TestCertificate {
    pub fn localhost() -> Self {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_pem = generated.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            generated.signing_key.serialize_pem(),
        )
        .unwrap();
        Self { cert_pem, dir }
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.dir.path().join("cert.pem"),
            key: self.dir.path().join("key.pem"),
        }
    }
}

/// A partner with its credentials.
pub struct Partner {
    pub client_id: String,
    pub secret: String,
    pub key: TestKey,
}

impl Partner {
    /// The client id as the store takes it.
    pub fn id(&self) -> ClientId {
        client(&self.client_id)
    }
}

/// A client id the test knows to be well formed, as the store takes it.
pub fn client(id: &str) -> ClientId {
    ClientId::parse(id).unwrap()
}

/// A partner holding a token, ready to sign requests.
pub struct Session<'p> {
    pub partner: &'p Partner,
    pub token: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let (database, url) = TestDatabase::create().await;
        Self::start(Arc::new(database), url, configure).await
    }

    /// An instance serving HTTPS with `certificate`, and a client that trusts
    /// that certificate alone.
    pub async fn spawn_tls(certificate: &TestCertificate) -> Self {
        let mut app = Self::spawn_with(|settings| settings.tls = Some(certificate.files())).await;
        app.base_url = format!("https://localhost:{}", app.address.port());
        let trusted = reqwest::Certificate::from_pem(certificate.cert_pem.as_bytes()).unwrap();
        app.client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tls_certs_only([trusted])
            .resolve("localhost", app.address)
            .build()
            .unwrap();
        app
    }

    /// Another instance of the service on this one's database, as a load
    /// balancer would have behind it: same data, nothing else shared.
    pub async fn sibling(&self) -> Self {
        Self::start(self.database.clone(), self.database_url.clone(), |_| {}).await
    }

    /// Another instance on `other`'s database, with settings of its own.
    pub async fn start_on(other: &TestApp, configure: impl FnOnce(&mut Settings)) -> Self {
        Self::start(
            other.database.clone(),
            other.database_url.clone(),
            configure,
        )
        .await
    }

    /// Starts an instance on `database_url`, which `database` keeps alive.
    pub async fn start(
        database: Arc<TestDatabase>,
        database_url: String,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings::new(
            "127.0.0.1:0".parse().unwrap(),
            DatabaseUrl::new(&database_url),
        );
        // Enough for the 32-way races, few enough for many tests at once on one
        // PostgreSQL server.
        settings.database_connections = 8;
        settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        configure(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the application starts");
        let address = app.local_addr();
        let metrics_address = app.metrics_addr();
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            // A dropped sender (the test ended) does not stop the instance.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            address,
            metrics_address,
            base_url: format!("http://{address}"),
            client,
            state,
            database_url,
            database,
            stop: Some(stop),
        }
    }

    /// Shuts this instance down as SIGTERM would: it stops taking requests
    /// and its webhook worker stops at once.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Rows in `table`, read straight from the database.
    pub async fn rows(&self, table: &str) -> i64 {
        // The table names are the tests' own constants.
        let sql = AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        match crate::BACKEND {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap()
            }
            Backend::Postgres => {
                let mut connection = PgConnection::connect(&self.database_url).await.unwrap();
                sqlx::query_scalar(sql)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap()
            }
        }
    }

    /// The Prometheus text from the metrics listener.
    pub async fn metrics(&self) -> String {
        let address = self.metrics_address.expect("metrics are served");
        let response = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Now on the server's clock, in unix seconds (as signatures carry it).
    pub fn now(&self) -> i64 {
        self.state.clock.unix_now()
    }

    /// Now on the server's clock.
    pub fn time(&self) -> time::OffsetDateTime {
        self.state.clock.now()
    }

    /// Registers a partner the way `partner create` does.
    pub async fn register(&self, client_id: &str, key: TestKey) -> Partner {
        self.register_as(client_id, key, false).await
    }

    /// A sandbox (test-mode) partner.
    pub async fn register_sandbox(&self, client_id: &str, key: TestKey) -> Partner {
        self.register_as(client_id, key, true).await
    }

    async fn register_as(&self, client_id: &str, key: TestKey, sandbox: bool) -> Partner {
        let public = PublicKey::from_pem(key.public_pem.as_bytes()).unwrap();
        let client = ClientId::parse(client_id).unwrap();
        let registered = partners::register(
            &self.state.store,
            client,
            client_id,
            &public,
            sandbox,
            self.time(),
        )
        .await
        .unwrap()
        .expect("a new client id");
        Partner {
            client_id: client_id.to_owned(),
            secret: registered.client_secret.expose().to_owned(),
            key,
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, client_id: &str, secret: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"client_id": client_id, "client_secret": secret}),
        )
        .await
    }

    pub async fn refresh(&self, token: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/refresh", &json!({"token": token}))
            .await
    }

    pub async fn session<'p>(&self, partner: &'p Partner) -> Session<'p> {
        let response = self.login(&partner.client_id, &partner.secret).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Session {
            partner,
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request carrying all four headers, signed now.
    pub fn signed(
        &self,
        session: &Session<'_>,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let timestamp = self.now().to_string();
        self.with_headers(
            session,
            method,
            path,
            &session.partner.client_id,
            &timestamp,
            None,
        )
    }

    /// A request with chosen header values: for hostile tests.
    pub fn with_headers(
        &self,
        session: &Session<'_>,
        method: reqwest::Method,
        path: &str,
        client_id: &str,
        timestamp: &str,
        signature: Option<String>,
    ) -> reqwest::RequestBuilder {
        let signature = signature.unwrap_or_else(|| {
            session
                .partner
                .key
                .sign(&format!("{client_id}|{timestamp}"))
        });
        self.client
            .request(method, self.url(path))
            .bearer_auth(&session.token)
            .header("X-CLIENT-ID", client_id)
            .header("X-TIMESTAMP", timestamp)
            .header("X-SIGNATURE", signature)
    }

    /// A request signed with v2 over `signed_body`, sending `sent_body` (the
    /// same, unless a test tampers with it).
    pub fn signed_v2(
        &self,
        session: &Session<'_>,
        method: reqwest::Method,
        path_and_query: &str,
        signed_body: &[u8],
        sent_body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let timestamp = self.now().to_string();
        let message = sales_order_api::auth::signature::string_to_sign_v2(
            &session.partner.client_id,
            &timestamp,
            method.as_str(),
            path_and_query,
            &sales_order_api::auth::signature::body_digest(signed_body),
        );
        let signature = session.partner.key.sign(&message);
        self.with_headers(
            session,
            method,
            path_and_query,
            &session.partner.client_id,
            &timestamp,
            Some(signature),
        )
        .header("X-SIGNATURE-VERSION", "2")
        .header("Content-Type", "application/json")
        .body(sent_body)
    }

    pub async fn create_order(&self, session: &Session<'_>, body: &Value) -> reqwest::Response {
        self.signed(session, reqwest::Method::POST, "/api/v1/sales-orders")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, session: &Session<'_>, path: &str) -> reqwest::Response {
        self.signed(session, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }
}

pub fn order_body(purchase_order_no: &str) -> Value {
    json!({
        "customer_code": "CUST-001",
        "site_code": "SITE-001",
        "sales_name": "John Doe",
        "address": "Jl. Sudirman No. 1, Jakarta",
        "purchase_order_no": purchase_order_no,
        "products": [
            {"product_code": "PRD-001", "quantity": 2, "uom": "PCS", "unit_price": 150000.5},
            {"product_code": "PRD-002", "quantity": "0.5", "unit_price": "10"}
        ]
    })
}

/// Asserts status and error code, and returns the envelope.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        request_id.as_deref(),
        "envelope echoes X-Request-Id"
    );
    body
}

/// Polls `check` until it holds, failing if that takes longer than SPEC's one
/// second for an operator change to reach every instance.
pub async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within a second: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Status and error code (empty when the body has none).
pub async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}
