//! The database going away and coming back, for real: a throwaway PostgreSQL
//! cluster of the test's own (initdb + pg_ctl on a free port) is stopped under
//! a running service and started again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use crate::helpers::*;

/// A private PostgreSQL cluster in a temporary directory.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn create() -> Self {
        let bin = pg_bindir();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // PostgreSQL refuses to run as root; the cluster then belongs to `postgres`.
        if running_as_root() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let cluster = Self { bin, dir, port };
        run(cluster
            .pg("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(cluster.data()));
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A PostgreSQL program, run as `postgres` when we are root.
    fn pg(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .pg("pg_ctl")
            .args(["start", "-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data()));
    }

    fn stop(&self) {
        run(self
            .pg("pg_ctl")
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(self.data()));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Where `initdb` and `pg_ctl` live: Debian keeps them off PATH in
/// `/usr/lib/postgresql/VERSION/bin` (newest wins); elsewhere `pg_config` says.
fn pg_bindir() -> PathBuf {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .max_by_key(|bin| {
            let version = bin.parent().and_then(Path::file_name);
            version.and_then(|v| v.to_str()?.parse::<u32>().ok())
        });
    debian
        .or_else(|| {
            let output = Command::new("pg_config").arg("--bindir").output().ok()?;
            Some(PathBuf::from(String::from_utf8(output.stdout).ok()?.trim()))
        })
        .filter(|bin| bin.join("initdb").exists())
        .expect("PostgreSQL's server programs (initdb, pg_ctl) are installed")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn while_the_database_is_down_calls_get_a_503_envelope_and_the_service_recovers_without_a_restart()
 {
    let cluster = tokio::task::spawn_blocking(Cluster::create).await.unwrap();
    let app = TestApp::start(
        Arc::new(TestDatabase::Unmanaged),
        cluster.url(),
        |settings| {
            settings.request_timeout = REQUEST_TIMEOUT;
        },
    )
    .await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let response = app.create_order(&session, &order_body("PO-BEFORE")).await;
    assert_eq!(response.status(), 201);
    let before: Value = response.json().await.unwrap();

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();

    // Each call is answered, not left hanging: the pool gives up connecting
    // after its acquire timeout (5 s), before the request timeout (10 s here)
    // would cut the request off.
    let timed = async |call: reqwest::RequestBuilder| {
        let started = Instant::now();
        let response = call.send().await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(8), "took {took:?}");
        assert_eq!(response.headers()["retry-after"], "1");
        expect_error(response, 503, "SERVICE_UNAVAILABLE").await;
    };
    timed(app.client.get(app.url("/readyz"))).await;
    timed(
        app.signed(&session, reqwest::Method::POST, "/api/v1/sales-orders")
            .json(&order_body("PO-DURING")),
    )
    .await;
    timed(app.signed(&session, reqwest::Method::GET, "/api/v1/sales-orders")).await;
    timed(
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&serde_json::json!({
                "client_id": partner.client_id,
                "client_secret": partner.secret,
            })),
    )
    .await;
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the process itself stays alive");

    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.start();
        cluster
    })
    .await
    .unwrap();

    // No restart: the pool replaces its dead connections on its own.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again after 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.create_order(&session, &order_body("PO-AFTER"))
            .await
            .status(),
        201
    );
    let response = app
        .get(
            &session,
            &format!(
                "/api/v1/sales-orders/{}",
                before["data"]["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["data"],
        before["data"]
    );
    let listed: Value = app
        .get(&session, "/api/v1/sales-orders")
        .await
        .json()
        .await
        .unwrap();
    let numbers: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["purchase_order_no"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["PO-AFTER", "PO-BEFORE"],
        "nothing half-written during the outage"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_the_server_ended_while_idle_are_replaced_before_a_request_gets_them() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let response = app.create_order(&session, &order_body("PO-BEFORE")).await;
    assert_eq!(response.status(), 201);

    // What a server restart or an idle-session timeout does to the pool:
    // every connection of this database ends while nobody uses it.
    let mut admin = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        ended >= 2,
        "the reader and writer connections were open: {ended}"
    );
    // Long enough for the pool to check a connection before handing it out.
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let response = app.create_order(&session, &order_body("PO-AFTER")).await;
    assert_eq!(
        response.status(),
        201,
        "the writer's connection was replaced"
    );
    let response = app.get(&session, "/api/v1/sales-orders").await;
    assert_eq!(
        response.status(),
        200,
        "the readers' connections were replaced"
    );
}
