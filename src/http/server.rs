//! The accept loop: HTTP/1.1 over plain TCP or TLS, with the limits that keep
//! a slow or idle client from holding the server hostage.
//!
//! `axum::serve` installs no timer, so hyper's header-read timeout never fires
//! there, and it accepts connections until the process runs out of file
//! descriptors: sixty connections trickling header bytes took a 64-fd server
//! off the air. Here every connection gets
//! - a header-read timeout (hyper's; it also runs while a kept-alive
//!   connection waits for its next request, and bounds the TLS handshake);
//! - an idle timeout: a connection with no request in flight for that long is
//!   closed;
//! - a place under a cap on open connections. At the cap, the connection that
//!   has waited on its client the longest (no request in flight, still sending
//!   headers, or still sending a request body) is closed to make room, so a
//!   new caller (a health check, a partner) is served while slow clients are
//!   what gives way. Only when the server itself is working on a request on
//!   every open connection is a newcomer turned away.
//!
//! A request is in flight from its headers until its answer is written; while
//! its body is still arriving it counts as waiting on the client.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::sync::lock;

/// Limits on every connection of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time for the TLS handshake and for a request's whole header block;
    /// also the longest wait for the next request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The default cap: what the process's file-descriptor limit leaves after
    /// the database connections (SQLite: the file, its WAL and SHM each) and a
    /// margin for everything else the process opens.
    pub fn default_max_connections(database_connections: u32) -> usize {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        // The metrics listener's connections, and 32 for everything else.
        let reserved = 3 * u64::from(database_connections) + METRICS_CONNECTIONS as u64 + 32;
        let cap = soft.saturating_sub(reserved).clamp(8, 65_536);
        usize::try_from(cap).unwrap_or(65_536)
    }
}

/// Connections the metrics listener keeps open at once: a scraper or two.
pub const METRICS_CONNECTIONS: usize = 16;

/// Serves `router` on `listener` until `stopping` turns true, then closes idle
/// connections at once and lets the others finish their request.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open = Arc::new(OpenConnections {
        name,
        ..OpenConnections::default()
    });
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors, or the peer gave up before accept: the
                // listener itself is fine; pause so a full table can drain.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stopping) => break,
        };
        // Reap finished tasks so the set holds only live connections.
        while tasks.try_join_next().is_some() {}
        let Some(connection) = open.admit(limits.max_connections) else {
            metrics::counter!("http_connections_refused_total", "listener" => name).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let task = ConnectionTask {
            router: router.clone(),
            peer,
            limits,
            connection,
            open: open.clone(),
            stopping: stopping.clone(),
        };
        let tls = tls.clone();
        tasks.spawn(task.run(stream, tls));
    }
    open.close_idle();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once `stopping` turns true (or its sender is gone). Returns
/// nothing, so no lock guard of the channel outlives it.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

/// What the accept loop knows of each open connection.
#[derive(Default)]
struct OpenConnections {
    /// The listener's name, a metric label.
    name: &'static str,
    next_id: AtomicU64,
    by_id: Mutex<HashMap<u64, Arc<Connection>>>,
}

struct Connection {
    id: u64,
    /// Requests from their headers until their answer is written.
    in_flight: AtomicUsize,
    /// Of those, requests whose body the client is still sending.
    awaiting_client: AtomicUsize,
    /// Milliseconds since `epoch` when a request last started or ended.
    last_active_ms: AtomicU64,
    epoch: Instant,
    close: Notify,
}

impl Connection {
    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(now, Ordering::Relaxed);
    }

    /// How long since the last request ended, with none in flight now.
    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| self.since_active())
    }

    /// How long the connection has been waiting on its client, when the
    /// server is doing nothing for it: no request, or only requests whose
    /// body is still arriving.
    fn waiting_on_client_for(&self) -> Option<Duration> {
        let in_flight = self.in_flight.load(Ordering::Acquire);
        (in_flight == self.awaiting_client.load(Ordering::Acquire)).then(|| self.since_active())
    }

    fn since_active(&self) -> Duration {
        self.epoch.elapsed().saturating_sub(Duration::from_millis(
            self.last_active_ms.load(Ordering::Relaxed),
        ))
    }
}

impl OpenConnections {
    /// A place for a new connection; at the cap, the longest-idle connection
    /// is told to close and gives up its place. `None` when all are busy.
    fn admit(&self, max: usize) -> Option<Arc<Connection>> {
        let mut by_id = lock(&self.by_id);
        if by_id.len() >= max {
            let longest_idle = by_id
                .values()
                .filter_map(|connection| Some((connection.waiting_on_client_for()?, connection.id)))
                .max()
                .map(|(_, id)| id)?;
            if let Some(evicted) = by_id.remove(&longest_idle) {
                evicted.close.notify_one();
                metrics::counter!("http_connections_evicted_total", "listener" => self.name)
                    .increment(1);
            }
        }
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            awaiting_client: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            close: Notify::new(),
        });
        by_id.insert(connection.id, connection.clone());
        metrics::gauge!("http_connections_open", "listener" => self.name).set(by_id.len() as f64);
        Some(connection)
    }

    fn remove(&self, id: u64) {
        let mut by_id = lock(&self.by_id);
        by_id.remove(&id);
        metrics::gauge!("http_connections_open", "listener" => self.name).set(by_id.len() as f64);
    }

    fn close_idle(&self) {
        for connection in lock(&self.by_id).values() {
            if connection.waiting_on_client_for().is_some() {
                connection.close.notify_one();
            }
        }
    }
}

struct ConnectionTask {
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    connection: Arc<Connection>,
    open: Arc<OpenConnections>,
    stopping: watch::Receiver<bool>,
}

impl ConnectionTask {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        // Gives the place back however the task ends, a panic included.
        let _registered = Registered {
            open: self.open.clone(),
            id: self.connection.id,
        };
        match tls {
            None => self.http(stream).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream));
                let stream = tokio::select! {
                    result = handshake => match result {
                        Ok(Ok(stream)) => Some(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            None
                        }
                        Err(_) => None,
                    },
                    () = self.connection.close.notified() => None,
                };
                if let Some(stream) = stream {
                    self.http(stream).await;
                }
            }
        }
    }

    async fn http<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = Tracked {
            router: self.router.clone(),
            peer: self.peer,
            connection: self.connection.clone(),
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        let serving = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(serving);
        let mut closing = false;
        let mut idle_check =
            tokio::time::interval((self.limits.idle_timeout / 4).max(Duration::from_millis(10)));
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Closing a connection that waits on its client (no request, or
            // only a body still arriving) means dropping it: hyper's graceful
            // shutdown waits for a header block that has started to arrive,
            // which is what a slow client never finishes. With the server
            // working on a request, that request finishes first.
            let close = tokio::select! {
                result = serving.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                () = self.connection.close.notified(), if !closing => true,
                () = stopped(&mut self.stopping), if !closing => true,
                _ = idle_check.tick(), if !closing => self
                    .connection
                    .idle_for()
                    .is_some_and(|idle| idle >= self.limits.idle_timeout),
            };
            if close {
                if self.connection.waiting_on_client_for().is_some() {
                    return;
                }
                serving.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The router for one connection: tells the handlers the peer's address and
/// the accept loop whether a request is in flight.
#[derive(Clone)]
struct Tracked {
    router: Router,
    peer: SocketAddr,
    connection: Arc<Connection>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(self.connection.clone());
        let connection = self.connection.clone();
        let mut request = request.map(|body| Body::new(ClientBody::new(body, connection)));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            // In flight until the answer's last byte is handed to hyper.
            Ok(response.map(|body| {
                Body::new(Answer {
                    body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A request body; until it has all arrived (or is dropped unread), its
/// connection counts as waiting on the client.
struct ClientBody {
    body: Incoming,
    awaiting: Option<Arc<Connection>>,
}

impl ClientBody {
    fn new(body: Incoming, connection: Arc<Connection>) -> Self {
        use hyper::body::Body as _;
        let awaiting = (!body.is_end_stream()).then(|| {
            connection.awaiting_client.fetch_add(1, Ordering::AcqRel);
            connection
        });
        Self { body, awaiting }
    }

    fn arrived(&mut self) {
        if let Some(connection) = self.awaiting.take() {
            connection.touch();
            connection.awaiting_client.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        self.arrived();
    }
}

impl hyper::body::Body for ClientBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(frame, std::task::Poll::Ready(None | Some(Err(_)))) {
            self.arrived();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body, holding its request in flight until it is written.
struct Answer {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Answer {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's place among the open ones, given back when dropped.
struct Registered {
    open: Arc<OpenConnections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.remove(self.id);
    }
}

/// Counts a request as in flight on its connection until dropped.
struct InFlight(Arc<Connection>);

impl InFlight {
    fn start(connection: Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        connection.touch();
        Self(connection)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let open = OpenConnections::default();
        let first = open.admit(2).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let second = open.admit(2).unwrap();
        second.touch();

        let third = open.admit(2).expect("an idle connection gives way");

        let ids: Vec<u64> = lock(&open.by_id).keys().copied().collect();
        assert!(!ids.contains(&first.id), "the longest idle went: {ids:?}");
        assert!(ids.contains(&second.id) && ids.contains(&third.id));
    }

    #[test]
    fn at_the_cap_with_every_connection_busy_a_newcomer_is_turned_away() {
        let open = OpenConnections::default();
        let busy = open.admit(1).unwrap();
        let _request = InFlight::start(busy.clone());

        assert!(open.admit(1).is_none());
    }
}
