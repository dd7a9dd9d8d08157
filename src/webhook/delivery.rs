//! The delivery worker: fills the outbox from new events, claims due
//! deliveries and POSTs them, signed, recording every attempt.
//!
//! Each instance runs one. Work is shared across instances through the
//! database (see `store::webhooks`): a delivery is claimed by one instance
//! for one attempt. Attempts run concurrently up to a bound, with at most a
//! few per endpoint and per partner, so slow or dead endpoints hold only
//! their share of the workers and never delay another partner's deliveries,
//! nor order intake, which does not wait for any of this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, mpsc};

use super::{address, signature};
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::WebhookSettings;
use crate::domain::AuditKind;
use crate::domain::ids::random_bytes;
use crate::domain::webhook::{DISABLE_AFTER, retry_after};
use crate::store::{AfterAttempt, Attempted, AuditEvent, Claimed, Store};

/// The worker looks for due deliveries at least this often (retries come
/// due with time, and another process's events wake no one here).
const POLL: Duration = Duration::from_secs(1);
/// How long the worker waits after an event before its next round.
const GATHER: Duration = Duration::from_millis(5);
/// Endpoints whose cursors one dispatch moves, and events each.
const DISPATCH_ENDPOINTS: u32 = 100;
const DISPATCH_EVENTS: u32 = 500;

/// The client deliveries are sent with: no redirects, no proxy from the
/// environment, names resolved only to allowed addresses (unless insecure).
pub fn client(options: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("sales-order-api/", env!("CARGO_PKG_VERSION"))),
    );
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .default_headers(headers);
    if !options.allow_insecure {
        builder = builder.dns_resolver(Arc::new(address::Guarded));
    }
    Ok(builder.build()?)
}

struct Worker {
    store: Store,
    clock: Arc<Clock>,
    audit: AuditLog,
    options: WebhookSettings,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    /// Attempts in flight per endpoint and per partner.
    in_flight: Mutex<InFlight>,
    finished: Notify,
    /// Finished attempts, to the recorder.
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// While no endpoint is enabled anywhere there is nothing to dispatch or
/// send: a round is then one query, and rounds woken by events (hundreds a
/// second under load) are skipped until [`POLL`] has passed since it was
/// found none, or an endpoint was registered or enabled through this
/// instance (the store's endpoints generation moved). An endpoint enabled
/// elsewhere (another instance, the operator's command) is seen within POLL.
#[derive(Debug, Default)]
struct NoneEnabled(Option<(Instant, u64)>);

impl NoneEnabled {
    fn worth_a_look(&self, generation: u64, now: Instant) -> bool {
        match self.0 {
            Some((since, seen)) => seen != generation || now.duration_since(since) >= POLL,
            None => true,
        }
    }

    fn found(&mut self, generation: u64, at: Instant) {
        self.0 = Some((at, generation));
    }

    fn forget(&mut self) {
        self.0 = None;
    }
}

/// Attempts in flight, counted per endpoint and per partner; an entry goes
/// with its last attempt.
#[derive(Default)]
struct InFlight {
    endpoints: HashMap<String, usize>,
    partners: HashMap<String, usize>,
}

impl InFlight {
    /// Counts the delivery in unless its endpoint or partner has its share.
    fn admit(&mut self, delivery: &Claimed, options: &WebhookSettings) -> bool {
        let endpoint = self
            .endpoints
            .get(&delivery.endpoint_id)
            .copied()
            .unwrap_or(0);
        let partner = self.partners.get(&delivery.client_id).copied().unwrap_or(0);
        if endpoint >= options.per_endpoint || partner >= options.per_partner {
            return false;
        }
        *self
            .endpoints
            .entry(delivery.endpoint_id.clone())
            .or_default() += 1;
        *self.partners.entry(delivery.client_id.clone()).or_default() += 1;
        true
    }

    fn release(&mut self, endpoint_id: &str, client_id: &str) {
        for (map, key) in [
            (&mut self.endpoints, endpoint_id),
            (&mut self.partners, client_id),
        ] {
            if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
    }

    /// Those at their share, to leave out of the next claim.
    fn full(map: &HashMap<String, usize>, share: usize) -> Vec<String> {
        map.iter()
            .filter(|(_, count)| **count >= share)
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// A finished attempt, on its way to the database.
struct Outcome {
    delivery: Claimed,
    at: OffsetDateTime,
    status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    retry_at: Option<OffsetDateTime>,
}

/// Attempts recorded in one transaction at most.
const RECORD_BATCH: usize = 256;

/// Starts this instance's worker; it runs until the task is aborted.
pub fn start(
    store: Store,
    clock: Arc<Clock>,
    audit: AuditLog,
    options: WebhookSettings,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (outcomes, recorded) = mpsc::unbounded_channel();
    let worker = Arc::new(Worker {
        client: client(&options)?,
        permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
        in_flight: Mutex::default(),
        finished: Notify::new(),
        outcomes,
        store,
        clock,
        audit,
        options,
    });
    let recorder = tokio::spawn(worker.clone().record(recorded));
    let run = worker.run();
    // One handle for both: aborting it stops the recorder too.
    Ok(tokio::spawn(async move {
        let _recorder = AbortOnDrop(recorder);
        run.await;
    }))
}

/// Aborts a task when dropped (when the task holding it is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let mut events = self.store.any_event();
        let mut none_enabled = NoneEnabled::default();
        loop {
            let generation = self.store.endpoints_generation();
            if none_enabled.worth_a_look(generation, Instant::now()) {
                match self.store.any_enabled_endpoint().await {
                    Ok(true) => {
                        none_enabled.forget();
                        self.round().await;
                    }
                    Ok(false) => none_enabled.found(generation, Instant::now()),
                    Err(error) => {
                        tracing::warn!(%error, "looking for webhook endpoints failed");
                        none_enabled.forget();
                    }
                }
            }
            tokio::select! {
                // Under load events commit hundreds of times a second: a
                // moment's wait gathers them into one round.
                () = events.changed() => tokio::time::sleep(GATHER).await,
                () = self.finished.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Queues the events endpoints are behind on, then sends what is due.
    async fn round(self: &Arc<Self>) {
        let now = self.clock.now();
        if let Err(error) = self
            .store
            .dispatch(now, DISPATCH_ENDPOINTS, DISPATCH_EVENTS)
            .await
        {
            tracing::warn!(%error, "queueing webhook deliveries failed");
        }
        // Now again: the lease must not count the dispatch's time.
        if let Err(error) = self.claim_and_send(self.clock.now()).await {
            tracing::warn!(%error, "claiming webhook deliveries failed");
        }
    }

    async fn claim_and_send(self: &Arc<Self>, now: OffsetDateTime) -> anyhow::Result<()> {
        let free = self.permits.available_permits();
        if free == 0 {
            return Ok(());
        }
        let (busy_endpoints, busy_partners) = {
            let in_flight = self.lock();
            (
                InFlight::full(&in_flight.endpoints, self.options.per_endpoint),
                InFlight::full(&in_flight.partners, self.options.per_partner),
            )
        };
        // The lease outlasts the attempt: its timeout, and time to record it.
        let lease = self.options.timeout + Duration::from_secs(30);
        let claimed = self
            .store
            .claim_deliveries(
                now,
                now + lease,
                u32::try_from(free).unwrap_or(u32::MAX),
                &busy_endpoints,
                &busy_partners,
            )
            .await?;
        for delivery in claimed {
            let admitted = self.lock().admit(&delivery, &self.options);
            if !admitted {
                // Its endpoint or partner has its share in flight: due again
                // at once, for the next round.
                self.store
                    .release_delivery(delivery.delivery_id, now)
                    .await?;
                continue;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                self.finish(&delivery.endpoint_id, &delivery.client_id);
                self.store
                    .release_delivery(delivery.delivery_id, now)
                    .await?;
                continue;
            };
            let worker = self.clone();
            tokio::spawn(async move {
                let (endpoint_id, client_id) =
                    (delivery.endpoint_id.clone(), delivery.client_id.clone());
                worker.attempt(delivery).await;
                worker.finish(&endpoint_id, &client_id);
                drop(permit);
            });
        }
        Ok(())
    }

    fn finish(&self, endpoint_id: &str, client_id: &str) {
        self.lock().release(endpoint_id, client_id);
        self.finished.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// One attempt; its outcome goes to the recorder whatever it is.
    async fn attempt(&self, delivery: Claimed) {
        let started = Instant::now();
        let outcome = self.send(&delivery).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = self.clock.now();
        let (status, error) = match outcome {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        let succeeded = status.is_some_and(|status| (200..300).contains(&status));
        let retry_at = if succeeded {
            None
        } else {
            retry_after(delivery.attempts + 1, jitter()).map(|wait| now + wait)
        };
        let label = match (succeeded, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "retrying",
            (false, None) => "given_up",
        };
        metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
        metrics::histogram!("webhook_attempt_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        // The recorder lives as long as the worker.
        let _ = self.outcomes.send(Outcome {
            delivery,
            at: now,
            status,
            error,
            duration_ms,
            retry_at,
        });
    }

    /// Records finished attempts, as many as are waiting in one transaction:
    /// one commit for many deliveries. An attempt that fails to be recorded
    /// is made again when its lease ends: at least once.
    async fn record(self: Arc<Self>, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let attempts: Vec<Attempted> = batch
                .iter()
                .map(|outcome| Attempted {
                    claimed: &outcome.delivery,
                    at: outcome.at,
                    status: outcome.status,
                    error: outcome.error.as_deref(),
                    duration_ms: outcome.duration_ms,
                    retry_at: outcome.retry_at,
                    disable_if_failing_since: outcome.at - DISABLE_AFTER,
                })
                .collect();
            match self.store.record_attempts(&attempts).await {
                Ok(results) => {
                    for (outcome, result) in batch.iter().zip(results) {
                        if result == AfterAttempt::Disabled {
                            self.disabled(&outcome.delivery, outcome.at);
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, attempts = batch.len(), "recording webhook attempts failed")
                }
            }
            drop(attempts);
            batch.clear();
        }
    }

    fn disabled(&self, delivery: &Claimed, at: OffsetDateTime) {
        tracing::warn!(endpoint = %delivery.endpoint_id, "webhook endpoint disabled after failing for 5 days");
        self.audit.record(AuditEvent {
            at,
            client_id: Some(delivery.client_id.clone()),
            kind: AuditKind::WebhookEndpointDisabled,
            code: None,
            reason: Some(format!(
                "endpoint {} disabled: every delivery failed for 5 days",
                delivery.endpoint_id
            )),
            source: None,
            request_id: None,
            actor: "server".into(),
        });
    }

    /// POSTs the delivery; its status, or why there was none.
    async fn send(&self, delivery: &Claimed) -> Result<u16, String> {
        let url = Url::parse(&delivery.url).map_err(|error| format!("invalid URL: {error}"))?;
        address::check_url(&url, self.options.allow_insecure)?;
        // Receivers compare this with their own clocks, so it is the real
        // time even when tests move the server's clock.
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let secrets: Vec<_> = delivery.secrets.iter().collect();
        let body = delivery.payload.as_bytes();
        let signature = signature::header(&secrets, &delivery.event_id, timestamp, body);
        let response = self
            .client
            .post(url)
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|error| self.describe(&error))?;
        Ok(response.status().as_u16())
    }

    /// Why a request got no answer, in words for the partner.
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "no answer within {}",
                humantime::format_duration(self.options.timeout)
            );
        }
        let mut text = String::from(if error.is_connect() {
            "could not connect"
        } else {
            "request failed"
        });
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// A number from -1 to 1, to spread retries.
fn jitter() -> f64 {
    let [byte] = random_bytes::<1>();
    f64::from(byte) / 127.5 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_no_endpoint_enabled_the_worker_looks_again_only_after_poll_or_a_new_endpoint() {
        let start = Instant::now();
        let mut none = NoneEnabled::default();
        assert!(none.worth_a_look(7, start), "nothing known yet");
        none.found(7, start);
        let soon = start + POLL / 2;
        assert!(!none.worth_a_look(7, soon), "events alone wake no look");
        assert!(none.worth_a_look(8, soon), "an endpoint registered here");
        assert!(none.worth_a_look(7, start + POLL), "POLL passed");
        none.forget();
        assert!(none.worth_a_look(7, soon), "endpoints were found");
    }
}
