//! Builds the service (store, keys, router) and serves it. `serve` and the test
//! suite both start the server through `Application::build`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::audit::AuditLog;
use crate::auth::cache::AuthCache;
use crate::auth::jwt::TokenKeys;
use crate::auth::secret::SecretVerifier;
use crate::auth::throttle::LoginThrottle;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::ids;
use crate::http::server::{self, ConnectionLimits};
use crate::http::{AppState, Services};
use crate::store::Store;

impl AppState {
    /// Forgets audit events older than their retention period.
    pub async fn purge_audit_events(&self) -> Result<u64, crate::store::StoreError> {
        let retention =
            time::Duration::try_from(self.settings.audit_retention).unwrap_or(time::Duration::MAX);
        self.store
            .purge_audit(self.clock.now().saturating_sub(retention))
            .await
    }

    /// Forgets order events older than their retention period.
    pub async fn purge_order_events(&self) -> Result<u64, crate::store::StoreError> {
        let retention =
            time::Duration::try_from(self.settings.event_retention).unwrap_or(time::Duration::MAX);
        self.store
            .purge_order_events(self.clock.now().saturating_sub(retention))
            .await
    }

    /// Forgets webhook delivery attempts as old as the events they delivered.
    pub async fn purge_webhook_attempts(&self) -> Result<u64, crate::store::StoreError> {
        let retention =
            time::Duration::try_from(self.settings.event_retention).unwrap_or(time::Duration::MAX);
        self.store
            .purge_attempts(self.clock.now().saturating_sub(retention))
            .await
    }

    /// Forgets v2 signatures whose timestamp window has passed.
    pub async fn purge_signatures(&self) -> Result<u64, crate::store::StoreError> {
        self.store.purge_signatures(self.clock.now()).await
    }

    /// Forgets Idempotency-Keys older than the retention period.
    pub async fn purge_idempotency_keys(&self) -> Result<u64, crate::store::StoreError> {
        let retention = time::Duration::try_from(self.settings.idempotency_retention)
            .unwrap_or(time::Duration::MAX);
        self.store
            .purge_idempotency_keys(self.clock.now().saturating_sub(retention))
            .await
    }
}

/// Logs what one purge removed, or why it failed.
fn log_purge(what: &'static str, result: Result<u64, crate::store::StoreError>) {
    match result {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, what, "expired rows purged"),
        Err(error) => tracing::warn!(%error, what, "purging expired rows failed"),
    }
}

/// Connections the API listener keeps open at once.
fn max_connections(settings: &Settings) -> usize {
    settings
        .max_connections
        .unwrap_or_else(|| ConnectionLimits::default_max_connections(settings.database_connections))
}

/// How often expired Idempotency-Keys, audit events and order events are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Application {
    listener: TcpListener,
    /// `/metrics`, on a listener of its own (see `Settings::metrics_listen`).
    metrics_listener: Option<TcpListener>,
    /// Present when the service terminates TLS itself.
    tls: Option<TlsAcceptor>,
    state: AppState,
}

/// How long open connections may keep a stopping server alive.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Application {
    /// Connects to and migrates the database, loads or creates the token key, and
    /// binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url, settings.database_connections).await?;
        store.migrate().await?;
        store.set_sqlite_max_batch(settings.sqlite_max_batch);
        let jwt_key = match &settings.jwt_secret {
            Some(secret) => {
                anyhow::ensure!(
                    secret.expose().len() >= 32,
                    "the JWT secret must be at least 32 bytes"
                );
                secret.expose().as_bytes().to_vec()
            }
            None => store.jwt_key(&ids::random_bytes::<32>()).await?,
        };
        let secrets = SecretVerifier::new(settings.max_concurrent_hashes)?;
        let tls = match &settings.tls {
            Some(files) => Some(crate::http::tls::acceptor(&files.cert, &files.key)?),
            None => None,
        };
        let listener = TcpListener::bind(settings.listen).await?;
        let metrics_listener = match settings.metrics_listen {
            Some(address) => Some(TcpListener::bind(address).await.map_err(|error| {
                anyhow::anyhow!(
                    "cannot listen for /metrics on {address} (--metrics-listen): {error}"
                )
            })?),
            None => None,
        };
        let clock = Arc::new(Clock::default());
        let audit = AuditLog::start(store.clone(), clock.clone());
        // A refused login is held for a moment on its connection: at most a
        // quarter of the connection cap, so held refusals cannot fill it.
        let mut login_limits = settings.login_limits;
        login_limits.max_held_refusals = login_limits
            .max_held_refusals
            .min(max_connections(&settings) / 4);
        let state = AppState::new(Services {
            store,
            tokens: Arc::new(TokenKeys::new(&jwt_key, settings.token_ttl)),
            secrets,
            login_throttle: Arc::new(LoginThrottle::new(login_limits)),
            rate_limiter: Arc::default(),
            diagnoses: Arc::default(),
            auth_cache: AuthCache::default(),
            audit,
            clock,
            settings: Arc::new(settings),
            metrics: crate::telemetry::metrics_handle(),
        });
        Ok(Self {
            listener,
            metrics_listener,
            tls,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|listener| {
            listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish for
    /// up to ten seconds.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Every instance purges; the DELETEs are idempotent, so they cannot clash.
        let state = self.state.clone();
        let purger = tokio::spawn(async move {
            let mut every = tokio::time::interval(PURGE_INTERVAL);
            loop {
                every.tick().await;
                log_purge("idempotency keys", state.purge_idempotency_keys().await);
                log_purge("audit events", state.purge_audit_events().await);
                log_purge("order events", state.purge_order_events().await);
                log_purge("webhook attempts", state.purge_webhook_attempts().await);
            }
        });
        let state = self.state.clone();
        let signature_purger = tokio::spawn(async move {
            // Used signatures pile up with every v2 request: purged as often
            // as they expire, not hourly.
            let period = state
                .settings
                .timestamp_tolerance
                .max(Duration::from_secs(60));
            let mut every = tokio::time::interval(period);
            loop {
                every.tick().await;
                log_purge("used v2 signatures", state.purge_signatures().await);
            }
        });
        let state = &self.state;
        let webhooks = crate::webhook::delivery::start(
            state.store.clone(),
            state.clock.clone(),
            state.audit.clone(),
            state.settings.webhooks.clone(),
        )?;
        let settings = self.state.settings.clone();
        let limits = ConnectionLimits {
            max_connections: max_connections(&settings),
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
        };
        let metrics_router = crate::http::metrics_router(self.state.clone());
        let router = crate::http::router(self.state);
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        // No new webhook attempt once stopping: one cut short is retried
        // when its lease ends, by this instance or another.
        let webhooks_stop = webhooks.abort_handle();
        tokio::spawn(async move {
            shutdown.await;
            webhooks_stop.abort();
            let _ = stopping_tx.send(true);
        });
        if let Some(listener) = self.metrics_listener {
            let limits = ConnectionLimits {
                max_connections: server::METRICS_CONNECTIONS,
                ..limits
            };
            tokio::spawn(server::serve(
                "metrics",
                listener,
                None,
                metrics_router,
                limits,
                stopping_rx.clone(),
            ));
        }
        let server = server::serve(
            "api",
            self.listener,
            self.tls,
            router,
            limits,
            stopping_rx.clone(),
        );
        let mut stopping = stopping_rx;
        tokio::select! {
            result = server => result?,
            () = async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => tracing::warn!("connections still open after the shutdown grace period; closing them"),
        }
        purger.abort();
        signature_purger.abort();
        webhooks.abort();
        Ok(())
    }
}
