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
//!
//! Only what can be tied to a partner is stored: a request whose token
//! verified, or a login for a client id that exists. Anyone can send a
//! request with no headers at all, and storing each refusal let one client
//! write 38 500 rows in 8 s. Those refusals are counted in metrics
//! (`audit_unattributed_total`, by kind) and logged at most once a minute per
//! source address, naming how many there were, in a map of bounded size.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::domain::AuditKind;
use crate::store::{AuditEvent, Store};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
/// The pause after each batch: caps audit commits at ten a second.
const PACE: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<AuditEvent>,
    unattributed: Arc<Mutex<HashMap<IpAddr, Tally>>>,
}

/// Source addresses whose unattributed refusals are tallied at once; past
/// this, stale tallies are swept, and new addresses are only counted.
const TALLIED_ADDRESSES: usize = 10_000;
/// How often each address's tally is logged at most.
const TALLY_WINDOW_MS: i64 = 60_000;

/// Unattributed refusals from one address since its tally was last logged.
#[derive(Debug, Clone, Copy)]
struct Tally {
    started_ms: i64,
    refused: u64,
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
        Self {
            queue,
            unattributed: Arc::default(),
        }
    }

    /// A refusal that no partner can be named for: counted, never stored.
    /// The first from an address in a minute is logged with the number the
    /// address had in the minute before, so a flood's source is visible.
    pub fn unattributed(&self, kind: AuditKind, source: Option<IpAddr>, now_ms: i64) {
        metrics::counter!("audit_unattributed_total", "kind" => kind.as_str()).increment(1);
        let Some(source) = source else { return };
        let mut tallies = self
            .unattributed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tallies.len() >= TALLIED_ADDRESSES && !tallies.contains_key(&source) {
            tallies.retain(|_, tally| now_ms - tally.started_ms < TALLY_WINDOW_MS);
            if tallies.len() >= TALLIED_ADDRESSES {
                return;
            }
        }
        let tally = tallies.entry(source).or_insert(Tally {
            started_ms: now_ms,
            refused: 0,
        });
        if now_ms - tally.started_ms >= TALLY_WINDOW_MS {
            tracing::warn!(%source, refused = tally.refused, kind = kind.as_str(), "requests refused without a verifiable partner");
            *tally = Tally {
                started_ms: now_ms,
                refused: 0,
            };
        } else if tally.refused == 0 {
            tracing::warn!(%source, kind = kind.as_str(), "requests refused without a verifiable partner; counting this address for a minute");
        }
        tally.refused = tally.refused.saturating_add(1);
    }

    /// Unattributed refusals tallied for `source` in its current minute.
    pub fn unattributed_from(&self, source: IpAddr) -> u64 {
        self.unattributed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&source)
            .map_or(0, |tally| tally.refused)
    }

    pub fn record(&self, event: AuditEvent) {
        if self.queue.try_send(event).is_err() {
            metrics::counter!("audit_events_dropped_total").increment(1);
        }
    }
}

/// What an API response means for the audit, by route, status and error code.
/// (Throttling is recorded where it starts, not per refused request.)
pub fn kind_of(route: &str, status: u16, code: Option<&str>) -> Option<AuditKind> {
    const LOGIN: &str = "/api/v1/auth/login";
    const REFRESH: &str = "/api/v1/auth/refresh";
    let orders = route.starts_with("/api/v1/sales-orders");
    Some(match (route, status) {
        (LOGIN, 200) => AuditKind::LoginSucceeded,
        (LOGIN, 401) => AuditKind::LoginFailed,
        (REFRESH, 200) => AuditKind::TokenRefreshed,
        (REFRESH, 401) if code == Some("TOKEN_REUSED") => AuditKind::TokenReuseDetected,
        (REFRESH, 401) => AuditKind::RefreshRefused,
        (_, 401) if orders && code == Some("SIGNATURE_INVALID") => AuditKind::SignatureFailed,
        (_, 401) if orders => AuditKind::RequestRefused,
        _ => return None,
    })
}
