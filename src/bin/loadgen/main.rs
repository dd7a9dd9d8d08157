//! Load generator for the whole signed create path: `POST /api/v1/sales-orders`
//! with a bearer token and a fresh SHA256withRSA signature, one unique
//! purchase order per request, over keep-alive HTTP/1.1 connections.
//!
//! For each concurrency it warms up, then measures for a fixed time and
//! reports orders/s, p50/p99/p99.9 latency, errors (anything but 201) and the
//! server's peak RSS; it writes `results.json`, `results.md` and `chart.svg`.
//! `benches/load.sh` starts a server and runs it:
//!
//!     cargo run --release --features loadgen --bin loadgen -- --help

mod machine;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sales_order_api::auth::signature::string_to_sign;
use sales_order_api::client::PrivateKey;
use serde::Serialize;

use machine::{machine_cpu, peak_rss_kb};
use report::{chart, markdown};

#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the running server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
    /// Access token from /api/v1/auth/login.
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    token: String,
    /// The partner's RSA private key (PKCS#8 PEM), to sign with.
    #[arg(long)]
    private_key: PathBuf,
    /// Concurrencies to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    connections: Vec<usize>,
    /// Measured time per concurrency.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Product lines per order.
    #[arg(long, default_value_t = 2)]
    lines: usize,
    /// The server's process id, for its peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Where results.json, results.md and chart.svg go.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// A line describing the run (store, machine), written into the results.
    #[arg(long, default_value = "")]
    label: String,
    /// What each request does: create an order, get one by id (from --ids),
    /// list a page of 50 from a random position (below --max-seq), send
    /// --batch-size orders in one batch request (counted as that many
    /// orders), or send the create request's bytes to `/healthz`: the HTTP
    /// and TCP cost of a request with no work behind it.
    #[arg(long, value_enum, default_value = "create")]
    scenario: Scenario,
    /// For `get`: a file of order ids, one a line.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// For `list`: pages start below a random order number up to this.
    #[arg(long, default_value_t = 1)]
    max_seq: u64,
    /// For `batch`: orders in each `POST /api/v1/sales-orders/batch`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100))]
    batch_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Create,
    Batch,
    Get,
    List,
    Healthz,
}

#[derive(Debug, Serialize)]
struct Step {
    connections: usize,
    orders: u64,
    orders_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    errors: u64,
    server_peak_rss_kb: Option<u64>,
    /// Cores the whole machine kept busy while measuring (server, load
    /// generator and kernel), from /proc/stat.
    machine_busy_cores: Option<f64>,
}

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// What every connection task shares.
struct Shared {
    authority: String,
    client_id: String,
    authorization: String,
    signer: Signer,
    body: OrderBody,
    scenario: Scenario,
    ids: Vec<String>,
    max_seq: u64,
    batch_size: u64,
    phase: AtomicU8,
    next_order: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let authority = args
        .url
        .strip_prefix("http://")
        .context("--url must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
    let pem = std::fs::read(&args.private_key)
        .with_context(|| format!("reading {}", args.private_key.display()))?;
    let shared = Arc::new(Shared {
        authority,
        client_id: args.client_id.clone(),
        authorization: format!("Bearer {}", args.token),
        signer: Signer::new(&pem, &args.client_id)?,
        body: OrderBody::new(args.lines),
        scenario: args.scenario,
        ids: match &args.ids {
            Some(path) => std::fs::read_to_string(path)?
                .lines()
                .map(str::to_owned)
                .filter(|id| !id.is_empty())
                .collect(),
            None => Vec::new(),
        },
        max_seq: args.max_seq.max(1),
        batch_size: args.batch_size,
        phase: AtomicU8::new(WARMING),
        // Purchase orders unique across runs on the same database.
        next_order: AtomicU64::new(0),
    });

    anyhow::ensure!(
        shared.scenario != Scenario::Get || !shared.ids.is_empty(),
        "--scenario get needs --ids FILE"
    );
    let mut steps = Vec::new();
    println!(
        "{:>5} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8} {:>7} {:>10} {:>6}",
        "conns",
        "orders",
        "orders/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "peak RSS",
        "busy"
    );
    for &connections in &args.connections {
        let step = measure(
            &shared,
            connections,
            args.warmup,
            args.duration,
            args.server_pid,
        )
        .await;
        println!(
            "{:>5} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>7} {:>7} MB {:>6.2}",
            step.connections,
            step.orders,
            step.orders_per_second,
            step.p50_ms,
            step.p99_ms,
            step.p999_ms,
            step.max_ms,
            step.errors,
            step.server_peak_rss_kb.map_or(0, |kb| kb / 1024),
            step.machine_busy_cores.unwrap_or(f64::NAN),
        );
        steps.push(step);
    }

    std::fs::create_dir_all(&args.out)?;
    let results = serde_json::json!({ "label": args.label, "duration_s": args.duration.as_secs_f64(),
        "warmup_s": args.warmup.as_secs_f64(), "lines_per_order": args.lines, "steps": steps });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    std::fs::write(args.out.join("results.md"), markdown(&args.label, &steps))?;
    let title = match args.scenario {
        Scenario::Create => "Signed creates",
        Scenario::Batch => "Signed batches (orders/s)",
        Scenario::Get => "Signed get by id",
        Scenario::List => "Signed list pages",
        Scenario::Healthz => "Create-sized requests to /healthz",
    };
    chart(
        &args.out.join("chart.svg"),
        &format!("{title}: {}", args.label),
        &steps,
    )?;
    println!(
        "wrote {}/results.json, results.md and chart.svg",
        args.out.display()
    );
    Ok(())
}

async fn measure(
    shared: &Arc<Shared>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
) -> Step {
    shared.phase.store(WARMING, Ordering::SeqCst);
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    tokio::time::sleep(warmup).await;
    shared.phase.store(MEASURING, Ordering::SeqCst);
    let started = Instant::now();
    let cpu_before = machine_cpu();
    tokio::time::sleep(duration).await;
    let cpu_after = machine_cpu();
    shared.phase.store(STOPPED, Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();

    let mut latencies = new_histogram();
    let mut errors = 0;
    for task in tasks {
        let (histogram, failed) = task.await.expect("a connection task panicked");
        latencies
            .add(histogram)
            .expect("histograms of the same bounds add up");
        errors += failed;
    }
    let ms = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1000.0;
    // A batch request carries that many orders.
    let orders = match shared.scenario {
        Scenario::Batch => latencies.len() * shared.batch_size,
        _ => latencies.len(),
    };
    Step {
        connections,
        orders,
        orders_per_second: orders as f64 / elapsed,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: latencies.max() as f64 / 1000.0,
        errors,
        server_peak_rss_kb: server_pid.and_then(peak_rss_kb),
        machine_busy_cores: cpu_before.zip(cpu_after).map(|(before, after)| {
            after.cpus as f64 * (after.busy - before.busy) as f64
                / (after.total - before.total).max(1) as f64
        }),
    }
}

/// Latencies in microseconds, up to a minute, to three significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// One keep-alive connection sending creates back to back until stopped;
/// returns the measured latencies of 201s and the count of anything else.
async fn connection(shared: Arc<Shared>) -> (Histogram<u64>, u64) {
    let mut latencies = new_histogram();
    let mut errors = 0;
    'connect: while shared.phase.load(Ordering::Relaxed) != STOPPED {
        let Ok(stream) = tokio::net::TcpStream::connect(&shared.authority).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, driver)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            errors += 1;
            continue;
        };
        tokio::spawn(driver);
        loop {
            let phase = shared.phase.load(Ordering::Relaxed);
            if phase == STOPPED {
                break 'connect;
            }
            let request = shared.request();
            let started = Instant::now();
            let ok = match sender.send_request(request).await {
                Ok(response) => {
                    let expected = response.status() == shared.expected_status();
                    // Read the whole answer, as a client would, before the next request.
                    match response.into_body().collect().await {
                        // A batch is answered 200 even when orders in it
                        // fail: only one with none failed counts.
                        Ok(body) if shared.scenario == Scenario::Batch => {
                            expected && !body.to_bytes().windows(8).any(|w| w == b"\"error\":")
                        }
                        Ok(_) => expected,
                        Err(_) => false,
                    }
                }
                Err(_) => false,
            };
            if phase != MEASURING {
                continue;
            }
            if ok {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                latencies.saturating_record(micros.max(1));
            } else {
                errors += 1;
                continue 'connect;
            }
        }
    }
    (latencies, errors)
}

impl Shared {
    fn expected_status(&self) -> hyper::StatusCode {
        match self.scenario {
            Scenario::Create => hyper::StatusCode::CREATED,
            Scenario::Batch | Scenario::Get | Scenario::List | Scenario::Healthz => {
                hyper::StatusCode::OK
            }
        }
    }

    fn request(&self) -> hyper::Request<Full<Bytes>> {
        let n = self.next_order.fetch_add(1, Ordering::Relaxed);
        let (timestamp, signature) = self.signer.current();
        let (method, path, body) = match self.scenario {
            Scenario::Create => (
                hyper::Method::POST,
                "/api/v1/sales-orders".to_owned(),
                self.body.with_purchase_order(n),
            ),
            Scenario::Batch => {
                let first = n * self.batch_size;
                let orders: Vec<String> = (first..first + self.batch_size)
                    .map(|po| {
                        String::from_utf8_lossy(&self.body.with_purchase_order(po)).into_owned()
                    })
                    .collect();
                (
                    hyper::Method::POST,
                    "/api/v1/sales-orders/batch".to_owned(),
                    Bytes::from(format!("{{\"orders\": [{}]}}", orders.join(","))),
                )
            }
            Scenario::Healthz => (
                hyper::Method::GET,
                "/healthz".to_owned(),
                self.body.with_purchase_order(n),
            ),
            Scenario::Get => {
                let id = &self.ids[spread(n) as usize % self.ids.len()];
                (
                    hyper::Method::GET,
                    format!("/api/v1/sales-orders/{id}"),
                    Bytes::new(),
                )
            }
            Scenario::List => {
                // The API's cursor: base64url of "o1:<order number>".
                let before = 1 + spread(n) % self.max_seq;
                let cursor =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o1:{before}"));
                (
                    hyper::Method::GET,
                    format!("/api/v1/sales-orders?limit=50&cursor={cursor}"),
                    Bytes::new(),
                )
            }
        };
        hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .header("authorization", &self.authorization)
            .header("x-client-id", &self.client_id)
            .header("x-timestamp", timestamp)
            .header("x-signature", signature)
            .body(Full::new(body))
            .expect("a valid request")
    }
}

/// A cheap, well-spread pseudo-random number from a counter (splitmix64), so
/// reads hit the whole table rather than its hot end.
fn spread(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Signs `client_id|timestamp` once a second: every request of that second
/// reuses it, as a real client may.
struct Signer {
    key: PrivateKey,
    client_id: String,
    current: std::sync::Mutex<(i64, String)>,
}

impl Signer {
    fn new(pem: &[u8], client_id: &str) -> anyhow::Result<Self> {
        Ok(Self {
            key: PrivateKey::from_pem(pem)?,
            client_id: client_id.to_owned(),
            current: std::sync::Mutex::new((0, String::new())),
        })
    }

    fn current(&self) -> (String, String) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != now {
            let signature = self
                .key
                .sign(&string_to_sign(&self.client_id, &now.to_string()));
            *current = (now, signature);
        }
        (now.to_string(), current.1.clone())
    }
}

/// The create body with a slot for a unique purchase order number.
struct OrderBody {
    before: String,
    after: String,
}

impl OrderBody {
    fn new(lines: usize) -> Self {
        let products: Vec<_> = (0..lines)
            .map(|i| {
                serde_json::json!({"product_code": format!("PRD-{i:03}"), "quantity": 2,
                    "uom": "PCS", "unit_price": "150000.5"})
            })
            .collect();
        let body = serde_json::json!({
            "customer_code": "CUST-001", "site_code": "SITE-001", "sales_name": "John Doe",
            "address": "Jl. Sudirman No. 1, Jakarta", "purchase_order_no": "@PO@",
            "products": products,
        })
        .to_string();
        let (before, after) = body.split_once("@PO@").expect("the slot is in the body");
        // Distinct across runs against one database.
        let run = time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000_000;
        Self {
            before: format!("{before}LG-{run}-"),
            after: after.to_owned(),
        }
    }

    fn with_purchase_order(&self, n: u64) -> Bytes {
        Bytes::from(format!("{}{n}{}", self.before, self.after))
    }
}
