//! Operational routes: liveness, readiness, metrics; and the example
//! clients the guide at `/docs` links to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::error::ApiError;
use super::state::AppState;

/// Alive: the process answers. Says nothing about the database.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready: the database answers within two seconds.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok((StatusCode::OK, Json(serde_json::json!({"status": "ready"})))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            Err(ApiError::Unavailable)
        }
        Err(_) => Err(ApiError::Unavailable),
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The example clients of `examples/`, built into the binary so that a
/// partner who has only the `/docs` page can download and run one.
const EXAMPLES: [(&str, &str, &str); 9] = [
    (
        "client.sh",
        "text/x-shellscript",
        include_str!("../../examples/bash/client.sh"),
    ),
    (
        "client.py",
        "text/x-python",
        include_str!("../../examples/python/client.py"),
    ),
    (
        "requirements.txt",
        "text/plain",
        include_str!("../../examples/python/requirements.txt"),
    ),
    (
        "Client.java",
        "text/x-java",
        include_str!("../../examples/java/Client.java"),
    ),
    (
        "client.mjs",
        "text/javascript",
        include_str!("../../examples/node/client.mjs"),
    ),
    (
        "webhook_receiver.py",
        "text/x-python",
        include_str!("../../examples/python/webhook_receiver.py"),
    ),
    (
        "webhook-receiver.mjs",
        "text/javascript",
        include_str!("../../examples/node/webhook-receiver.mjs"),
    ),
    (
        "package.json",
        "application/json",
        include_str!("../../examples/node/package.json"),
    ),
    (
        "package-lock.json",
        "application/json",
        include_str!("../../examples/node/package-lock.json"),
    ),
];

pub async fn example(Path(name): Path<String>) -> Result<impl IntoResponse, StatusCode> {
    let (_, media_type, text) = EXAMPLES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok((
        [(header::CONTENT_TYPE, format!("{media_type}; charset=utf-8"))],
        *text,
    ))
}
