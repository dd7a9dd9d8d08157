//! Every way authentication can fail, each with a stable code partners can act on.

use serde::Serialize;

/// Every way authentication can fail, each with a stable code partners can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing required header(s): {}", .0.join(", "))]
    MissingHeaders(Vec<&'static str>),
    #[error("{0}")]
    TokenInvalid(&'static str),
    #[error("the access token has expired; refresh it at /api/v1/auth/refresh")]
    TokenExpired,
    #[error("{0}")]
    TokenRevoked(&'static str),
    #[error(
        "this token was already refreshed; as a precaution every token of its login is now revoked, log in again"
    )]
    TokenReused,
    #[error("the token expired more than the refresh window ago; log in again")]
    RefreshWindowClosed,
    #[error(
        "the login behind this token is older than the absolute session lifetime; log in again"
    )]
    SessionExpired,
    #[error("X-CLIENT-ID does not match the client id of the access token")]
    ClientIdMismatch,
    #[error("{0}")]
    TimestampInvalid(String),
    #[error(
        "X-TIMESTAMP is {skew_seconds} s away from server time; at most {tolerance_seconds} s is allowed"
    )]
    TimestampOutOfWindow {
        skew_seconds: i64,
        tolerance_seconds: u64,
    },
    #[error("{}", .diagnosis.as_ref().and_then(|d| d.mistake.as_ref()).map_or(*reason, |m| m.hint.as_str()))]
    SignatureInvalid {
        reason: &'static str,
        string_to_sign: String,
        /// Filled in by the extractor, which can read the partner's keys.
        diagnosis: Option<Box<Diagnosis>>,
    },
    #[error(
        "this partner must sign with version 2 (X-SIGNATURE-VERSION: 2, covering method, path, query and body)"
    )]
    SignatureV2Required,
    #[error("X-SIGNATURE-VERSION must be 1 or 2")]
    SignatureVersionUnsupported,
    #[error(
        "this version 2 signature was already used; a v2 signature on a create or change is good for one request: sign each request anew"
    )]
    SignatureReplayed,
    #[error("invalid client credentials")]
    InvalidCredentials,
    #[error("this partner is disabled; contact the integration team")]
    PartnerDisabled,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeaders(_) => "MISSING_HEADER",
            Self::TokenInvalid(_) => "TOKEN_INVALID",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::TokenRevoked(_) => "TOKEN_REVOKED",
            Self::TokenReused => "TOKEN_REUSED",
            Self::RefreshWindowClosed => "REFRESH_WINDOW_EXPIRED",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::ClientIdMismatch => "CLIENT_ID_MISMATCH",
            Self::TimestampInvalid(_) => "TIMESTAMP_INVALID",
            Self::TimestampOutOfWindow { .. } => "TIMESTAMP_OUT_OF_WINDOW",
            Self::SignatureInvalid { .. } => "SIGNATURE_INVALID",
            Self::SignatureV2Required => "SIGNATURE_V2_REQUIRED",
            Self::SignatureVersionUnsupported => "SIGNATURE_VERSION_UNSUPPORTED",
            Self::SignatureReplayed => "SIGNATURE_REPLAYED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::PartnerDisabled => "PARTNER_DISABLED",
        }
    }

    /// The `WWW-Authenticate: Bearer` challenge (RFC 6750 section 3): a token
    /// that is no good says `error="invalid_token"`, so OAuth client
    /// libraries that read the header know to refresh or log in again; other
    /// refusals (no token, the signature, the login) carry the bare scheme.
    pub fn bearer_challenge(&self) -> &'static str {
        match self {
            Self::TokenExpired => {
                "Bearer realm=\"sales-order-api\", error=\"invalid_token\", error_description=\"the access token expired\""
            }
            Self::TokenInvalid(_)
            | Self::TokenRevoked(_)
            | Self::TokenReused
            | Self::RefreshWindowClosed
            | Self::SessionExpired => "Bearer realm=\"sales-order-api\", error=\"invalid_token\"",
            _ => "Bearer realm=\"sales-order-api\"",
        }
    }
}

/// Why a signature did not verify, as far as the server can tell (see
/// `diagnosis`, which works it out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The partner's active keys, each of which the signature was checked against.
    pub keys_tried: Vec<KeyTried>,
    /// The mistake found, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mistake: Option<Mistake>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyTried {
    pub key_id: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mistake {
    /// Stable: `HEX_NOT_BASE64`, `NOT_BASE64`, `SIGNATURE_WRONG_LENGTH`,
    /// `TRAILING_NEWLINE`, `SIGNED_V2_STRING`, `SIGNED_V1_STRING`,
    /// `SIGNED_BODY`, `SIGNED_WITHOUT_QUERY`, `SIGNED_DECODED_QUERY`,
    /// `SIGNED_LOWERCASE_METHOD`, `SIGNED_OTHER_BODY_DIGEST`,
    /// `SIGNED_OTHER_TIMESTAMP`, `SIGNED_TIMESTAMP_IN_OTHER_UNIT`,
    /// `REVOKED_KEY`, and when none of those: `SIGNED_OTHER_STRING` (the
    /// right key, another string) or `UNKNOWN_KEY` (none of the partner's keys).
    pub code: &'static str,
    /// What happened and how to fix it.
    pub hint: String,
}
