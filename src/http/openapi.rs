//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorEnvelope};
use crate::domain::{FieldError, Order, OrderLine, OrderStatus};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sales Order API",
        version = "1.0",
        description = include_str!("../../docs/api-guide.md"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(Order, OrderLine, OrderStatus, ErrorEnvelope, ErrorBody, FieldError)),
    tags(
        (name = "Authentication", description = "Obtain and refresh access tokens."),
        (name = "Sales Orders", description = "Endpoints for creating and managing sales orders submitted by authorized partner applications."),
    )
)]
pub struct ApiDoc;

/// The four schemes, named as in the partner documents.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "JWT-auth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /api/v1/auth/login"))
                    .build(),
            ),
        );
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        components.add_security_scheme(
            "X-CLIENT-ID",
            header(
                "X-CLIENT-ID",
                "Your client_id; must equal the token's client_id",
            ),
        );
        components.add_security_scheme(
            "X-TIMESTAMP",
            header("X-TIMESTAMP", "Unix seconds (or unix milliseconds, or RFC 3339 with offset); within ±5 minutes of server time"),
        );
        components.add_security_scheme(
            "X-SIGNATURE",
            header(
                "X-SIGNATURE",
                "base64(SHA256withRSA(private key, StringToSign)). v1: StringToSign = X-CLIENT-ID + \"|\" + X-TIMESTAMP. \
                 v2 (send X-SIGNATURE-VERSION: 2): X-CLIENT-ID + \"|\" + X-TIMESTAMP + \"|\" + METHOD + \"|\" + path?query + \"|\" + hex(sha256(raw body)).",
            ),
        );
    }
}
