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
//! verified (and could still be refreshed), or a login for a client id that
//! exists. Even so, a stolen token could be made to write a refusal per
//! request: at most 60 refusals a minute are stored per partner, and the rest
//! are summed up in one `refusals_suppressed` event when the minute is over,
//! so the partner's activity stays complete in count. Anyone can send a
//! request with no headers at all, and storing each refusal let one client
//! write 38 500 rows in 8 s. Those refusals are counted in metrics
//! (`audit_unattributed_total`, by kind) and logged at most once a minute per
//! source address (an IPv6 client by its /64), naming how many there were, in
//! a map of bounded size swept at most once a minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::domain::AuditKind;
use crate::store::{AuditEvent, Store};
use crate::sync::lock;

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
/// The pause after each batch: caps audit commits at ten a second.
const PACE: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<AuditEvent>,
    unattributed: Arc<Mutex<Tallies>>,
    refusals: Arc<Budgets>,
}

/// Every partner's refusal budget for its current minute.
#[derive(Debug)]
struct Budgets {
    by_client: Mutex<HashMap<String, Budget>>,
    clock: Arc<Clock>,
}

/// Refusals stored per partner and minute.
const REFUSALS_PER_MINUTE: u32 = 60;
/// Partners whose refusal budgets are kept at once (only partners with a
/// verified token or a known client id have one, so this is plenty).
const BUDGETS: usize = 10_000;

/// One partner's stored and suppressed refusals in the current minute.
#[derive(Debug, Clone)]
struct Budget {
    started_ms: i64,
    stored: u32,
    suppressed: u64,
    /// The kinds suppressed, for the summary.
    kinds: Vec<AuditKind>,
}

/// Source addresses whose unattributed refusals are tallied at once; past
/// this, stale tallies are swept, and new addresses are only counted.
const TALLIED_ADDRESSES: usize = 10_000;
/// How often each address's tally is logged at most.
const TALLY_WINDOW_MS: i64 = 60_000;

/// Unattributed refusals by source network, swept of ended minutes now and then.
#[derive(Debug)]
struct Tallies {
    map: HashMap<IpAddr, Tally>,
    swept_ms: i64,
}

impl Default for Tallies {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            swept_ms: i64::MIN,
        }
    }
}

/// Where a refusal comes from, for the tally: the address, or for IPv6 its
/// /64, which one client holds whole and can pick addresses from at will.
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::from(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
    }
}

/// Unattributed refusals from one address since its tally was last logged.
#[derive(Debug, Clone, Copy)]
struct Tally {
    started_ms: i64,
    refused: u64,
}

impl AuditLog {
    /// Starts the writer; it ends when every `AuditLog` clone is gone.
    pub fn start(store: Store, clock: Arc<Clock>) -> Self {
        let (queue, mut events) = mpsc::channel::<AuditEvent>(QUEUE);
        let refusals = Arc::new(Budgets {
            by_client: Mutex::default(),
            clock,
        });
        // The writer holds the budgets, not an `AuditLog`: a sender of its
        // own would keep its queue, and so the task, alive forever.
        let budgets = refusals.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    received = events.recv_many(&mut batch, BATCH) => if received == 0 {
                        return;
                    },
                    _ = every_minute.tick() => batch.extend(budgets.ended()),
                }
                if batch.is_empty() {
                    continue;
                }
                if let Err(error) = store.record_audit(&batch).await {
                    tracing::warn!(%error, lost = batch.len(), "audit events could not be written");
                }
                batch.clear();
                tokio::time::sleep(PACE).await;
            }
        });
        Self {
            queue,
            unattributed: Arc::default(),
            refusals,
        }
    }

    /// A refusal tied to a partner: stored within the partner's budget of
    /// [`REFUSALS_PER_MINUTE`], beyond it counted for the minute's summary.
    pub fn record_refusal(&self, event: AuditEvent) {
        let Some(client_id) = event.client_id.clone() else {
            return self.record(event);
        };
        let refusals = &self.refusals;
        let now_ms = refusals.clock.unix_now().saturating_mul(1000);
        let mut budgets = lock(&refusals.by_client);
        if budgets.len() >= BUDGETS && !budgets.contains_key(&client_id) {
            let ended = refusals.take_ended(&mut budgets, now_ms);
            drop(budgets);
            ended.into_iter().for_each(|summary| self.record(summary));
            budgets = lock(&refusals.by_client);
        }
        let budget = budgets.entry(client_id.clone()).or_insert(Budget {
            started_ms: now_ms,
            stored: 0,
            suppressed: 0,
            kinds: Vec::new(),
        });
        let mut summary = None;
        if now_ms - budget.started_ms >= 60_000 {
            summary = refusals.summary(&client_id, budget);
            *budget = Budget {
                started_ms: now_ms,
                stored: 0,
                suppressed: 0,
                kinds: Vec::new(),
            };
        }
        let store = budget.stored < REFUSALS_PER_MINUTE;
        if store {
            budget.stored += 1;
        } else {
            budget.suppressed += 1;
            if !budget.kinds.contains(&event.kind) {
                budget.kinds.push(event.kind);
            }
            metrics::counter!("audit_refusals_suppressed_total", "kind" => event.kind.as_str())
                .increment(1);
        }
        drop(budgets);
        if let Some(summary) = summary {
            self.record(summary);
        }
        if store {
            self.record(event);
        }
    }

    /// A refusal that no partner can be named for: counted, never stored.
    /// The first from an address in a minute is logged with the number the
    /// address had in the minute before, so a flood's source is visible.
    pub fn unattributed(&self, kind: AuditKind, source: Option<IpAddr>, now_ms: i64) {
        metrics::counter!("audit_unattributed_total", "kind" => kind.as_str()).increment(1);
        let Some(source) = source.map(network) else {
            return;
        };
        let mut tallies = lock(&self.unattributed);
        if tallies.map.len() >= TALLIED_ADDRESSES && !tallies.map.contains_key(&source) {
            // Swept at most once a window: a full map of fresh tallies must
            // not cost a full scan per refusal.
            if now_ms.saturating_sub(tallies.swept_ms) < TALLY_WINDOW_MS {
                return;
            }
            tallies.swept_ms = now_ms;
            tallies
                .map
                .retain(|_, tally| now_ms - tally.started_ms < TALLY_WINDOW_MS);
            if tallies.map.len() >= TALLIED_ADDRESSES {
                return;
            }
        }
        let tally = tallies.map.entry(source).or_insert(Tally {
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
        lock(&self.unattributed)
            .map
            .get(&network(source))
            .map_or(0, |tally| tally.refused)
    }

    pub fn record(&self, event: AuditEvent) {
        if self.queue.try_send(event).is_err() {
            metrics::counter!("audit_events_dropped_total").increment(1);
        }
    }
}

impl Budgets {
    /// Summaries of the budgets whose minute is over, which are forgotten.
    fn ended(&self) -> Vec<AuditEvent> {
        let now_ms = self.clock.unix_now().saturating_mul(1000);
        self.take_ended(&mut lock(&self.by_client), now_ms)
    }

    fn take_ended(&self, budgets: &mut HashMap<String, Budget>, now_ms: i64) -> Vec<AuditEvent> {
        let mut summaries = Vec::new();
        budgets.retain(|client_id, budget| {
            let ended = now_ms - budget.started_ms >= 60_000;
            if ended {
                summaries.extend(self.summary(client_id, budget));
            }
            !ended
        });
        summaries
    }

    /// The event that sums up a minute's suppressed refusals, if there were any.
    fn summary(&self, client_id: &str, budget: &Budget) -> Option<AuditEvent> {
        (budget.suppressed > 0).then(|| {
            let kinds: Vec<&str> = budget.kinds.iter().map(|kind| kind.as_str()).collect();
            AuditEvent {
                at: self.clock.now(),
                client_id: Some(client_id.to_owned()),
                kind: AuditKind::RefusalsSuppressed,
                code: None,
                reason: Some(format!(
                    "{} more refusals ({}) in the minute after {} were counted, not stored one by one",
                    budget.suppressed,
                    kinds.join(", "),
                    crate::store::rfc3339(
                        time::OffsetDateTime::from_unix_timestamp(budget.started_ms / 1000)
                            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                    ),
                )),
                source: None,
                request_id: None,
                actor: "partner".to_owned(),
            }
        })
    }
}
