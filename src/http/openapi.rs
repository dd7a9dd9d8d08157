//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, Object, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, Number, OpenApi};

use super::error::FieldError;
use super::error::{ErrorBody, ErrorEnvelope};
use crate::domain::order::{
    FRACTION_DIGITS, MAX_PRODUCTS, MAX_QUANTITY, ORDER_TEXT, PRICE_LIMIT, PRODUCT_TEXT, Text,
    WHITE_SPACE,
};
use crate::domain::{Event, EventType, Order, OrderLine, OrderStatus};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sales Order API",
        version = "1.0",
        description = include_str!("../../docs/api-guide.md"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(Order, OrderLine, OrderStatus, Event, EventType, ErrorEnvelope, ErrorBody, FieldError)),
    tags(
        (name = "Authentication", description = "Obtain and refresh access tokens."),
        (name = "Sales Orders", description = "Endpoints for creating and managing sales orders submitted by authorized partner applications."),
        (name = "Webhooks", description = "Endpoints your events are POSTed to, signed as the Standard Webhooks specification describes."),
        (name = "Events", description = "Every change to your orders, in order and without gaps: read the feed (with long polling), or receive it by webhook."),
    )
)]
pub struct ApiDoc;

/// What a signed route's 401 can say: the description of that answer on
/// every operation that needs the signature headers.
pub const SIGNED_ROUTE_401: &str = "An authentication check failed; `error.code` says which and `message` how to fix it: \
`MISSING_HEADER`, `TOKEN_INVALID`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`, `CLIENT_ID_MISMATCH`, \
`TIMESTAMP_INVALID`, `TIMESTAMP_OUT_OF_WINDOW`, `SIGNATURE_INVALID`, `SIGNATURE_V2_REQUIRED`, \
`SIGNATURE_VERSION_UNSUPPORTED`, `SIGNATURE_REPLAYED` or `PARTNER_DISABLED`. On `SIGNATURE_INVALID`, `details[0]` holds the \
string the server verified, the keys it tried and, when it recognises one, the mistake made.";

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

/// States the request bodies' rules (`domain::order`, unknown fields refused)
/// in their schemas, so clients and schema-driven tools know exactly which
/// bodies are accepted. Applied to the finished document: the body schemas are
/// collected from the routes, after `ApiDoc`'s own modifiers have run.
pub struct RequestBodyRules;

impl Modify for RequestBodyRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in [
            "CreateSalesOrderRequest",
            "ProductDto",
            "LoginRequest",
            "RefreshRequest",
            "BatchRequest",
        ] {
            if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(name) {
                body.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
        // Credentials and tokens: any string that is not blank.
        for (body, fields) in [
            ("LoginRequest", &["client_id", "client_secret"][..]),
            ("RefreshRequest", &["token"][..]),
        ] {
            if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(body) {
                for field in fields {
                    if let Some(RefOr::T(Schema::Object(field))) = body.properties.get_mut(*field) {
                        field.min_length = Some(1);
                        field.pattern = Some(format!("[^{WHITE_SPACE}]"));
                    }
                }
            }
        }
        if let Some(RefOr::T(Schema::Object(order))) =
            components.schemas.get_mut("CreateSalesOrderRequest")
        {
            constrain_text(order, &ORDER_TEXT);
            // The codes ISO 4217 has, as the parser checks them.
            let mut codes: Vec<serde_json::Value> =
                crate::domain::Currency::codes().map(Into::into).collect();
            codes.push(serde_json::Value::Null);
            if let Some(RefOr::T(Schema::Object(currency))) = order.properties.get_mut("currency") {
                currency.pattern = None;
                currency.enum_values = Some(codes);
            }
            if let Some(RefOr::T(Schema::Array(products))) = order.properties.get_mut("products") {
                products.min_items = Some(1);
                products.max_items = Some(MAX_PRODUCTS);
            }
        }
        if let Some(RefOr::T(Schema::Object(line))) = components.schemas.get_mut("ProductDto") {
            constrain_text(line, &PRODUCT_TEXT);
            let step = Number::Float(10f64.powi(-(FRACTION_DIGITS as i32)));
            let quantity = ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some(format!(
                    "Quantity: greater than 0, at most {MAX_QUANTITY}, at most \
                     {FRACTION_DIGITS} fraction digits. A JSON number or a numeric string."
                )))
                .exclusive_minimum(Some(0))
                .maximum(Some(Number::Int(MAX_QUANTITY as isize)))
                .multiple_of(Some(step.clone()));
            line.properties
                .insert("quantity".to_owned(), quantity.build().into());
            let unit_price = ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                .description(Some(format!(
                    "Unit price: at least 0, less than {PRICE_LIMIT}, at most \
                     {FRACTION_DIGITS} fraction digits. A JSON number or a numeric string."
                )))
                .minimum(Some(0))
                .exclusive_maximum(Some(Number::Int(PRICE_LIMIT as isize)))
                .multiple_of(Some(step));
            line.properties
                .insert("unit_price".to_owned(), unit_price.build().into());
        }
    }
}

fn constrain_text(schema: &mut Object, rules: &[(&str, Text, bool)]) {
    for (name, rule, required) in rules {
        if let Some(RefOr::T(Schema::Object(field))) = schema.properties.get_mut(*name) {
            field.max_length = Some(rule.max_chars);
            field.min_length = required.then_some(1);
            field.pattern = Some(rule.pattern(*required));
        }
    }
}
