//! What every handler, extractor and middleware can reach: the services the
//! application builds once and shares. Owned by the HTTP edge, which is what
//! uses it; `app` fills it in.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::audit::AuditLog;
use crate::auth::cache::AuthCache;
use crate::auth::jwt::TokenKeys;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::secret::SecretVerifier;
use crate::auth::throttle::LoginThrottle;
use crate::clock::Clock;
use crate::config::Settings;
use crate::store::Store;

/// What every handler can reach. Cloned for every extractor and middleware
/// of every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub store: Store,
    pub tokens: Arc<TokenKeys>,
    pub secrets: SecretVerifier,
    pub login_throttle: Arc<LoginThrottle>,
    pub rate_limiter: Arc<RateLimiter>,
    /// Bounds the extra work of explaining failed signatures, per client.
    pub diagnoses: Arc<RateLimiter>,
    pub auth_cache: AuthCache,
    pub audit: AuditLog,
    pub clock: Arc<Clock>,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
}
