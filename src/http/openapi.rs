//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, Object, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
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
        (name = "Sandbox", description = "Test mode: a sandbox client moves its own orders as the integration team would, to test its handling of every change."),
        (name = "Activity", description = "What happened to your access: logins, refusals, throttling and the integration team's changes."),
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
                .exclusive_minimum(Some(0))
                .maximum(Some(Number::Int(MAX_QUANTITY as isize)))
                .multiple_of(Some(step.clone()));
            line.properties.insert(
                "quantity".to_owned(),
                OneOfBuilder::new()
                    .item(quantity)
                    .item(decimal_string(QUANTITY_TEXT))
                    .description(Some(format!(
                        "Quantity: greater than 0, at most {MAX_QUANTITY}, at most \
                         {FRACTION_DIGITS} fraction digits. An exact decimal: a JSON number, \
                         or the same as a string (`\"12.5\"`) where your JSON library would \
                         round it through a double."
                    )))
                    .into(),
            );
            let unit_price = ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .exclusive_maximum(Some(Number::Int(PRICE_LIMIT as isize)))
                .multiple_of(Some(step));
            line.properties.insert(
                "unit_price".to_owned(),
                OneOfBuilder::new()
                    .item(unit_price)
                    .item(decimal_string(PRICE_TEXT))
                    .item(ObjectBuilder::new().schema_type(Type::Null))
                    .description(Some(format!(
                        "Unit price: at least 0, less than {PRICE_LIMIT}, at most \
                         {FRACTION_DIGITS} fraction digits, or null. An exact decimal: a JSON \
                         number, or the same as a string (`\"1500000.25\"`)."
                    )))
                    .into(),
            );
        }
    }
}

/// A quantity as a string, exactly as the parser takes one: plain decimal
/// digits (no sign, exponent or spaces), more than 0, at most
/// `MAX_QUANTITY` (10^9), at most four significant fraction digits (zeros
/// after them are only spelling).
const QUANTITY_TEXT: &str =
    r"^(?:0*[1-9][0-9]{0,8}(?:\.[0-9]{1,4}0*)?|0*1000000000(?:\.0+)?|0+\.[0-9]{0,3}[1-9]0*)$";
/// A unit price as a string: at least 0 (`-0` is 0), below `PRICE_LIMIT`
/// (10^15), at most four significant fraction digits.
const PRICE_TEXT: &str = r"^(?:0*[0-9]{1,15}(?:\.[0-9]{1,4}0*)?|-0+(?:\.0+)?)$";

fn decimal_string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(crate::domain::decimal::MAX_TEXT_LEN))
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

/// Declares what every operation's answers carry beyond its own handler's
/// words: on the signed routes the `X-SIGNATURE-VERSION` header read and the
/// rate-limit fields sent (on every answer after the signature checked out,
/// so not on 401), `Retry-After` on every 429 and 503, and the 503 itself on
/// every API route (each one reads or writes the database).
pub struct CommonHeaders;

impl Modify for CommonHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let signed = operation
                    .security
                    .as_ref()
                    .is_some_and(|security| !security.is_empty());
                if signed {
                    operation
                        .parameters
                        .get_or_insert_with(Vec::new)
                        .push(RefOr::T(signature_version()));
                }
                let responses = &mut operation.responses.responses;
                if path.starts_with("/api/") && !responses.contains_key("503") {
                    responses.insert(
                        "503".to_owned(),
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(
                                    "`SERVICE_UNAVAILABLE`: the database cannot be reached or is \
                                     busy, or the request took too long; a change may or may not \
                                     have been made: retry after `Retry-After` seconds, a create \
                                     with the same `Idempotency-Key`",
                                )
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(RefOr::Ref(Ref::from_schema_name(
                                            "ErrorEnvelope",
                                        ))))
                                        .build(),
                                )
                                .build(),
                        ),
                    );
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if matches!(status.as_str(), "429" | "503") {
                        response
                            .headers
                            .entry("Retry-After".to_owned())
                            .or_insert_with(|| {
                                RefOr::T(header(
                                    Type::Integer,
                                    "Seconds to wait before trying again",
                                ))
                            });
                    }
                    if signed && status != "401" {
                        response.headers.insert(
                            "RateLimit-Policy".to_owned(),
                            RefOr::T(header(
                                Type::String,
                                "Your rate limit (draft-ietf-httpapi-ratelimit-headers): \
                                 `\"default\";q=<requests>;w=1`, requests a second. \
                                 Absent when your client has no limit.",
                            )),
                        );
                        response.headers.insert(
                            "RateLimit".to_owned(),
                            RefOr::T(header(
                                Type::String,
                                "What is left of it: `\"default\";r=<requests you may send now>;\
                                 t=<seconds until the full burst is available again>`. The \
                                 budget holds ten seconds' worth, so `r` may exceed `q`.",
                            )),
                        );
                    }
                }
            }
        }
    }
}

fn header(kind: Type, description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(kind)))
        .description(Some(description))
        .build()
}

fn signature_version() -> Parameter {
    ParameterBuilder::new()
        .name("X-SIGNATURE-VERSION")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "`2` to sign the v2 string (method, path and query, body digest: see `X-SIGNATURE`); \
             absent or `1` for v1. Required as `2` for clients set to v2 only.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["1", "2"])),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::{PRICE_TEXT, QUANTITY_TEXT};
    use crate::domain::Decimal;
    use crate::domain::order::{check_quantity, check_unit_price};

    /// What the parser makes of `text` sent as a JSON string.
    fn accepted(text: &str, check: fn(&Decimal) -> Result<(), String>) -> bool {
        let json = serde_json::to_string(text).unwrap();
        let raw = RawValue::from_string(json).unwrap();
        Decimal::from_json(&raw).is_ok_and(|value| check(&value).is_ok())
    }

    proptest! {
        /// The schema's string patterns say yes exactly where the parser
        /// does, so schema-driven clients and tests agree with the server.
        #[test]
        fn the_decimal_string_patterns_match_the_parser(
            text in r"-?0{0,3}[0-9]{0,20}(\.[0-9]{0,7})?",
        ) {
            let quantity = regex::Regex::new(QUANTITY_TEXT).unwrap();
            let price = regex::Regex::new(PRICE_TEXT).unwrap();
            prop_assert_eq!(quantity.is_match(&text), accepted(&text, check_quantity), "quantity {}", text);
            prop_assert_eq!(price.is_match(&text), accepted(&text, check_unit_price), "price {}", text);
        }
    }

    #[test]
    fn the_decimal_string_patterns_take_the_edges_the_parser_takes() {
        let quantity = regex::Regex::new(QUANTITY_TEXT).unwrap();
        for text in ["0.0001", "1000000000", "1000000000.000", "12.5000", "007"] {
            assert!(
                quantity.is_match(text) && accepted(text, check_quantity),
                "{text}"
            );
        }
        for text in ["0", "0.00001", "1000000000.0001", "-1", "1e3", " 1", "1."] {
            assert!(
                !quantity.is_match(text) && !accepted(text, check_quantity),
                "{text}"
            );
        }
        let price = regex::Regex::new(PRICE_TEXT).unwrap();
        for text in ["0", "-0", "999999999999999.9999", "0.1000"] {
            assert!(
                price.is_match(text) && accepted(text, check_unit_price),
                "{text}"
            );
        }
        for text in ["1000000000000000", "-0.5", "0.12345"] {
            assert!(
                !price.is_match(text) && !accepted(text, check_unit_price),
                "{text}"
            );
        }
    }
}
