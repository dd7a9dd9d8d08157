//! A webhook receiver for the fan-out benchmark (`benches/webhooks.sh`):
//! answers every POST with 204, and counts deliveries and the time from each
//! event's `created_at` (when its change was made, just before its commit)
//! to its arrival. Prints a JSON summary when it gets SIGTERM or SIGINT.
//! It verifies nothing: the test suite and the example receivers do that.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
struct Args {
    /// Where to listen, e.g. 127.0.0.1:18383.
    #[arg(long)]
    listen: SocketAddr,
}

#[derive(Default)]
struct Tally {
    deliveries: u64,
    distinct: std::collections::HashSet<String>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Commit to arrival, microseconds.
    latency: Option<Histogram<u64>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tally = Arc::new(Mutex::new(Tally {
        latency: Some(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        ..Tally::default()
    }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let serving = {
        let tally = tally.clone();
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tally = tally.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let tally = tally.clone();
                        async move { receive(request, &tally).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = serving => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    let tally = tally.lock().unwrap_or_else(|poison| poison.into_inner());
    let seconds = match (tally.first, tally.last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let latency = tally.latency.as_ref().expect("made above");
    let ms = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "deliveries": tally.deliveries,
            "distinct_webhook_ids": tally.distinct.len(),
            "seconds_first_to_last": seconds,
            "deliveries_per_second": if seconds > 0.0 { tally.deliveries as f64 / seconds } else { 0.0 },
            "commit_to_delivery_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": latency.max() as f64 / 1000.0},
        })
    );
    Ok(())
}

async fn receive(
    request: Request<Incoming>,
    tally: &Mutex<Tally>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let arrived = OffsetDateTime::now_utc();
    let created = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| {
            let text = event["created_at"].as_str()?.to_owned();
            OffsetDateTime::parse(&text, &Rfc3339).ok()
        });
    let mut tally = tally.lock().unwrap_or_else(|poison| poison.into_inner());
    let now = Instant::now();
    tally.first.get_or_insert(now);
    tally.last = Some(now);
    tally.deliveries += 1;
    tally.distinct.insert(id);
    if let (Some(created), Some(latency)) = (created, tally.latency.as_mut()) {
        let micros = (arrived - created).whole_microseconds().max(1);
        let _ = latency.record(u64::try_from(micros).unwrap_or(u64::MAX));
    }
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
