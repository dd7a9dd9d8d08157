//! `serve`: run the HTTP server until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::Application;
use crate::config::{DatabaseUrl, Secret, Settings, TlsFiles};
use crate::domain::Currency;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SALES_ORDER_API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Lifetime of an access token (e.g. 12h, 30m).
    #[arg(long, env = "SALES_ORDER_API_TOKEN_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    token_ttl: Duration,
    /// Allowed distance between X-TIMESTAMP and server time.
    #[arg(long, env = "SALES_ORDER_API_TIMESTAMP_TOLERANCE", default_value = "5m", value_parser = humantime::parse_duration)]
    timestamp_tolerance: Duration,
    /// How long after expiry a token can still be refreshed.
    #[arg(long, env = "SALES_ORDER_API_REFRESH_WINDOW", default_value = "7days", value_parser = humantime::parse_duration)]
    refresh_window: Duration,
    /// How long after a refresh a retry with the same old token gets the same
    /// new token (its answer was lost) instead of revoking the login as
    /// reuse; 0s turns it off.
    #[arg(long, env = "SALES_ORDER_API_REFRESH_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    refresh_grace: Duration,
    /// How long after login a token lineage can be refreshed at all.
    #[arg(long, env = "SALES_ORDER_API_ABSOLUTE_LIFETIME", default_value = "30days", value_parser = humantime::parse_duration)]
    absolute_lifetime: Duration,
    /// HS256 signing key for access tokens (≥ 32 bytes). When unset, one is
    /// generated on first start and kept in the database.
    #[arg(long, env = "SALES_ORDER_API_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<Secret>,
    /// Database connections this instance may hold; on PostgreSQL a quarter
    /// of them (at least one, at most two) are the group-commit writers'. With PostgreSQL
    /// keep instances × this below the server's `max_connections`.
    #[arg(long, env = "SALES_ORDER_API_DATABASE_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    database_connections: u32,
    /// SQLite: how many concurrent order inserts may share one commit (one
    /// fsync). 1 commits each order alone.
    #[arg(long, env = "SALES_ORDER_API_SQLITE_MAX_BATCH", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    sqlite_max_batch: u32,
    /// A reverse proxy (IP address) whose X-Forwarded-For header names the
    /// real client; repeat for several. Others' X-Forwarded-For is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "SALES_ORDER_API_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve HTTPS with this PEM certificate chain (leaf first), for operators
    /// without a TLS-terminating proxy. Needs --tls-key.
    #[arg(long, env = "SALES_ORDER_API_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "SALES_ORDER_API_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where Prometheus reads /metrics: a listener of its own, never the
    /// API's port. `off` serves no metrics.
    #[arg(long, env = "SALES_ORDER_API_METRICS_LISTEN", default_value = "127.0.0.1:9464", value_parser = parse_metrics_listen)]
    metrics_listen: MetricsListen,
    /// Connections open at once. At the cap the longest-idle connection is
    /// closed to make room. Default: sized from the process's file limit.
    #[arg(long, env = "SALES_ORDER_API_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Time a client has for the TLS handshake and for a request's headers,
    /// and to start its next request on a kept-alive connection.
    #[arg(long, env = "SALES_ORDER_API_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    #[arg(long, env = "SALES_ORDER_API_IDLE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    idle_timeout: Duration,
    /// Lets partners register http:// webhook URLs and URLs that reach
    /// loopback, private or link-local addresses. For tests and closed
    /// networks only: it lets a partner make this server call inside its network.
    #[arg(long, env = "SALES_ORDER_API_ALLOW_INSECURE_WEBHOOKS")]
    allow_insecure_webhooks: bool,
    /// The currency (ISO 4217) of orders that do not name one.
    #[arg(long, env = "SALES_ORDER_API_DEFAULT_CURRENCY", default_value = "IDR", value_parser = Currency::parse)]
    default_currency: Currency,
    /// Where partners reach this server, as `/openapi.json` names it (e.g.
    /// `https://api.example.com` behind a proxy); default: the listening address.
    #[arg(long, env = "SALES_ORDER_API_PUBLIC_URL", value_parser = crate::config::parse_public_url)]
    public_url: Option<String>,
}

/// A duration of more than zero, e.g. `10s` (zero would close every connection).
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be more than zero, e.g. 10s".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// `--metrics-listen`: an address, or `off`.
#[derive(Debug, Clone, Copy)]
struct MetricsListen(Option<SocketAddr>);

fn parse_metrics_listen(text: &str) -> Result<MetricsListen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(MetricsListen(None));
    }
    text.parse()
        .map(|address| MetricsListen(Some(address)))
        .map_err(|_| format!("expected an address such as 127.0.0.1:9464, or off; got {text:?}"))
}

pub async fn run(args: ServeArgs, database_url: DatabaseUrl) -> anyhow::Result<()> {
    crate::telemetry::init_logging();
    let mut settings = Settings::new(args.listen, database_url);
    settings.token_ttl = args.token_ttl;
    settings.timestamp_tolerance = args.timestamp_tolerance;
    settings.refresh_window = args.refresh_window;
    settings.refresh_grace = args.refresh_grace;
    settings.absolute_lifetime = args.absolute_lifetime;
    settings.jwt_secret = args.jwt_secret;
    settings.database_connections = args.database_connections;
    settings.trusted_proxies = args.trusted_proxies;
    settings.sqlite_max_batch = args.sqlite_max_batch as usize;
    settings.metrics_listen = args.metrics_listen.0;
    settings.max_connections = args.max_connections.map(|cap| cap as usize);
    settings.header_read_timeout = args.header_read_timeout;
    settings.idle_timeout = args.idle_timeout;
    settings.webhooks.allow_insecure = args.allow_insecure_webhooks;
    settings.default_currency = args.default_currency;
    settings.public_url = args.public_url;
    if args.allow_insecure_webhooks {
        tracing::warn!(
            "--allow-insecure-webhooks: partners may register http:// and private-network webhook URLs"
        );
    }
    settings.tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| TlsFiles { cert, key });
    let database = settings.database_url.to_string();
    let app = Application::build(settings).await?;
    let scheme = if app.state().settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let metrics = app
        .metrics_addr()
        .map_or_else(|| "off".to_owned(), |address| address.to_string());
    tracing::info!(address = %app.local_addr(), scheme, %database, metrics, "sales-order-api listening");
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
