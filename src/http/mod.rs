//! The HTTP API: one module per resource, the error envelope, and the router.

pub mod activity;
pub mod audit_note;
pub mod auth;
pub mod authenticate;
mod docs;
pub mod error;
pub mod events;
mod examples;
pub mod extract;
mod fingerprint;
mod json_fields;
pub mod middleware;
pub mod openapi;
pub mod order_batch;
pub mod order_body;
pub mod orders;
pub mod sandbox;
pub mod server;
pub mod service;
mod state;
pub mod tls;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::{AppState, Services};

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes_and_document().1
}

fn api_routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut document) = api_routes().split_for_parts();
    openapi::RequestBodyRules.modify(&mut document);
    openapi::CommonHeaders.modify(&mut document);
    // utoipa copies Cargo's `license`, which says nothing to a partner.
    document.info.license = None;
    examples::add(&mut document);
    (routes, document)
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::get_order, orders::amend_order))
        .merge(
            // The one route whose body may be larger than `body_limit`.
            OpenApiRouter::new()
                .routes(routes!(order_batch::submit_batch))
                .route_layer(axum::Extension(extract::BatchBody)),
        )
        .routes(routes!(orders::cancel_order))
        .routes(routes!(events::list_events))
        .routes(routes!(events::get_event))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(webhooks::get_endpoint, webhooks::delete_endpoint))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test_endpoint))
        .routes(routes!(webhooks::enable_endpoint))
        .routes(routes!(activity::list_activity))
        .routes(routes!(sandbox::set_status))
}

/// `/metrics` alone, for its own listener: counts are for the operator, not
/// for whoever can reach the API's port.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(service::metrics))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let (api, mut document) = api_routes_and_document();
    let settings = state.settings.clone();
    document.servers = Some(vec![utoipa::openapi::Server::new(settings.public_url())]);
    let envelope_state = state.clone();
    Router::new()
        .merge(api)
        .route("/healthz", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/examples/{file}", get(service::example))
        .merge(docs::router(document))
        .route_layer(axum::middleware::from_fn(middleware::record_route))
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            envelope_state,
            middleware::envelope,
        ))
}
