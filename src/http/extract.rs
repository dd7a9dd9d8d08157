//! Body extractors whose rejections are `ApiError`s, so malformed input gets
//! the API's envelope and a precise code instead of axum's plain-text defaults.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::error::FieldError;
use super::state::AppState;

/// Marks a route whose body may be as large as a batch of orders
/// (`Settings::batch_body_limit`) instead of `Settings::body_limit`.
#[derive(Debug, Clone, Copy)]
pub struct BatchBody;

/// The raw bytes of a JSON request body: content type checked, size bounded.
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let settings = &state.settings;
        read_body(
            request.into_body(),
            settings.body_limit,
            settings.body_read_timeout,
        )
        .await
        .map(Self)
    }
}

impl JsonBody {
    /// A body the signed-request extractor already read, if it was sent as JSON.
    pub fn signed(headers: &HeaderMap, body: Bytes) -> Result<Self, ApiError> {
        if is_json(headers) {
            Ok(Self(body))
        } else {
            Err(ApiError::UnsupportedMediaType)
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads a whole request body, at most `limit` bytes, within `deadline`: a
/// body that trickles in is the client's fault (408), not a slow server's.
pub async fn read_body(
    body: axum::body::Body,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::RequestTimeout(deadline.as_secs().max(1))),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::InvalidJson(format!("the request body could not be read: {error}"))
            })
        }
    }
}

impl JsonBody {
    /// Reads a flat object of required string fields, refusing unknown ones and
    /// listing every problem at once. For the small auth bodies.
    pub fn string_fields<const N: usize>(
        &self,
        names: [&'static str; N],
    ) -> Result<[String; N], ApiError> {
        self.string_fields_and(names, None)
            .map(|(values, _)| values)
    }

    /// [`Self::string_fields`], and the value of the one `optional` field
    /// if it is there, of any JSON type (the caller checks it).
    pub fn string_fields_and<const N: usize>(
        &self,
        names: [&'static str; N],
        optional: Option<&'static str>,
    ) -> Result<([String; N], Option<Value>), ApiError> {
        let value: Value = serde_json::from_slice(&self.0)
            .map_err(|e| ApiError::InvalidJson(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(mut object) = value else {
            return Err(ApiError::Validation(vec![FieldError::new(
                "",
                "request body must be a JSON object",
            )]));
        };
        let mut errors = Vec::new();
        let values = names.map(|name| take_string(&mut object, name, &mut errors));
        let extra = optional.and_then(|name| object.remove(name));
        let known: Vec<&str> = names.iter().copied().chain(optional).collect();
        for unknown in object.keys() {
            errors.push(FieldError::new(
                unknown.as_str(),
                format!(
                    "is not a known field; expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        if errors.is_empty() {
            Ok((values, extra))
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

fn take_string(
    object: &mut Map<String, Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> String {
    match object.remove(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => return text,
        Some(Value::String(_) | Value::Null) | None => {
            errors.push(FieldError::new(name, "is required"))
        }
        Some(_) => errors.push(FieldError::new(name, "must be a string")),
    }
    String::new()
}

/// Bad query parameters named in one answer, at most.
const MAX_QUERY_ERRORS: usize = 10;

/// A route's query parameters, by name: what [`Params`] accepts.
pub trait KnownParams {
    const NAMES: &'static [&'static str];
}

/// Query parameters whose rejection names each parameter at fault in the
/// envelope's words: an unknown name (with the names the route takes) or a
/// name given twice. Take it as `Result<Params<T>, ApiError>` so the
/// signature is checked first.
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: KnownParams + serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut seen: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        let mut errors = Vec::new();
        for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
            // Each name is told once, and only the first few: the query is
            // read before the signature is checked.
            if errors.len() == MAX_QUERY_ERRORS
                || errors.iter().any(|error: &FieldError| error.field == name)
            {
                continue;
            }
            if !T::NAMES.contains(&name.as_ref()) {
                errors.push(FieldError::new(
                    name.as_ref(),
                    format!(
                        "is not a parameter of this route; it takes: {}",
                        T::NAMES.join(", ")
                    ),
                ));
            } else if seen.contains(&name) {
                errors.push(FieldError::new(
                    name.as_ref(),
                    "is given twice; give it once",
                ));
            } else {
                seen.push(name);
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::InvalidQuery(errors));
        }
        // Every parameter is read as text and checked by the route, so with
        // the names known this fails only on what serde_urlencoded refuses
        // that the loop above let through.
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(params)| Self(params))
            .map_err(|_| {
                ApiError::InvalidQuery(vec![FieldError::new(
                    "query",
                    "could not be read as name=value pairs of UTF-8 text",
                )])
            })
    }
}
