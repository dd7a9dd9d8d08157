//! The activity audit: security-relevant events (logins, refreshes, refused
//! requests and why, throttling, operator changes) written to the database
//! with time, partner, source address and request id. Never a secret, token
//! or signature: events are built from error codes and messages, which never
//! carry them.
//!
//! Requests hand events to a bounded queue and go on; one background task
//! writes them in batches, at most ten commits a second, so auditing never
//! takes more than a sliver of the database's write capacity from orders.
//! Under a flood of bad requests the queue fills and further events are
//! dropped and counted (`audit_events_dropped_total`). Repeated 429s are not
//! events at all: throttling is recorded once, when it starts.

use tokio::sync::mpsc;

use crate::http::middleware::RequestContext;
use crate::store::{AuditEvent, Store};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
/// The pause after each batch: caps audit commits at ten a second.
const PACE: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<AuditEvent>,
}

impl AuditLog {
    /// Starts the writer; it ends when every `AuditLog` clone is gone.
    pub fn start(store: Store) -> Self {
        let (queue, mut events) = mpsc::channel::<AuditEvent>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while events.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(error) = store.record_events(&batch).await {
                    tracing::warn!(%error, lost = batch.len(), "audit events could not be written");
                }
                batch.clear();
                tokio::time::sleep(PACE).await;
            }
        });
        Self { queue }
    }

    /// An event about the request behind `context`, now.
    pub fn record_request(
        &self,
        context: Option<&RequestContext>,
        at: String,
        client_id: &str,
        kind: &str,
        reason: String,
    ) {
        self.record(AuditEvent {
            at,
            client_id: Some(client_id.to_owned()),
            kind: kind.to_owned(),
            code: None,
            reason: Some(reason),
            source: context
                .and_then(|context| context.client_address)
                .map(|address| address.to_string()),
            request_id: context.map(|context| context.request_id.clone()),
            actor: "partner".to_owned(),
        });
    }

    pub fn record(&self, event: AuditEvent) {
        if self.queue.try_send(event).is_err() {
            metrics::counter!("audit_events_dropped_total").increment(1);
        }
    }
}

/// What an API response means for the audit, by route, status and error code.
/// (Throttling is recorded where it starts, not per refused request.)
pub fn kind_of(route: &str, status: u16, code: Option<&str>) -> Option<&'static str> {
    const LOGIN: &str = "/api/v1/auth/login";
    const REFRESH: &str = "/api/v1/auth/refresh";
    let orders = route.starts_with("/api/v1/sales-orders");
    Some(match (route, status) {
        (LOGIN, 200) => "login_succeeded",
        (LOGIN, 401) => "login_failed",
        (REFRESH, 200) => "token_refreshed",
        (REFRESH, 401) if code == Some("TOKEN_REUSED") => "token_reuse_detected",
        (REFRESH, 401) => "refresh_refused",
        (_, 401) if orders && code == Some("SIGNATURE_INVALID") => "signature_failed",
        (_, 401) if orders => "request_refused",
        _ => return None,
    })
}
