//! The activity audit: security-relevant events (logins, refreshes, refused
//! requests and why, throttling, operator changes) written to the database
//! with time, partner, source address and request id. Never a secret, token
//! or signature: events are built from error codes and messages, which never
//! carry them.
//!
//! Requests hand events to a bounded queue and go on; one background task
//! writes them in batches. Under a flood of bad requests the queue fills and
//! further events are dropped and counted (`audit_events_dropped_total`)
//! rather than letting the flood turn into one database write per request.

use tokio::sync::mpsc;

use crate::store::{AuditEvent, Store};

const QUEUE: usize = 10_000;
const BATCH: usize = 200;

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
            }
        });
        Self { queue }
    }

    pub fn record(&self, event: AuditEvent) {
        if self.queue.try_send(event).is_err() {
            metrics::counter!("audit_events_dropped_total").increment(1);
        }
    }
}

/// What an API response means for the audit, by route, status and error code.
pub fn kind_of(route: &str, status: u16, code: Option<&str>) -> Option<&'static str> {
    const LOGIN: &str = "/api/v1/auth/login";
    const REFRESH: &str = "/api/v1/auth/refresh";
    let orders = route.starts_with("/api/v1/sales-orders");
    Some(match (route, status) {
        (LOGIN, 200) => "login_succeeded",
        (LOGIN, 401) => "login_failed",
        (LOGIN, 429) => "login_throttled",
        (REFRESH, 200) => "token_refreshed",
        (REFRESH, 401) if code == Some("TOKEN_REUSED") => "token_reuse_detected",
        (REFRESH, 401) => "refresh_refused",
        (_, 401) if orders && code == Some("SIGNATURE_INVALID") => "signature_failed",
        (_, 401) if orders => "request_refused",
        (_, 429) if orders => "rate_limited",
        _ => return None,
    })
}
