//! What can happen to a partner's access, as the activity audit records it.

use serde::Serialize;

/// The kind of an audit event. Stored and shown by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    // Partners, through the API.
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    TokenRefreshed,
    TokenReuseDetected,
    RefreshRefused,
    SignatureFailed,
    RequestRefused,
    RateLimited,
    /// More refusals in a minute than are stored one by one.
    RefusalsSuppressed,
    // The operator, at the command line.
    PartnerCreated,
    PartnerDisabled,
    PartnerEnabled,
    SessionsRevoked,
    SecretRotated,
    KeyAdded,
    KeyRevoked,
    SettingsChanged,
    // Webhook endpoints: disabled by the server after failing for days, or
    // disabled and enabled again by the partner or the operator.
    WebhookEndpointDisabled,
    WebhookEndpointEnabled,
}

impl AuditKind {
    const ALL: [Self; 20] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::TokenRefreshed,
        Self::TokenReuseDetected,
        Self::RefreshRefused,
        Self::SignatureFailed,
        Self::RequestRefused,
        Self::RateLimited,
        Self::RefusalsSuppressed,
        Self::PartnerCreated,
        Self::PartnerDisabled,
        Self::PartnerEnabled,
        Self::SessionsRevoked,
        Self::SecretRotated,
        Self::KeyAdded,
        Self::KeyRevoked,
        Self::SettingsChanged,
        Self::WebhookEndpointDisabled,
        Self::WebhookEndpointEnabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::TokenRefreshed => "token_refreshed",
            Self::TokenReuseDetected => "token_reuse_detected",
            Self::RefreshRefused => "refresh_refused",
            Self::SignatureFailed => "signature_failed",
            Self::RequestRefused => "request_refused",
            Self::RateLimited => "rate_limited",
            Self::RefusalsSuppressed => "refusals_suppressed",
            Self::PartnerCreated => "partner_created",
            Self::PartnerDisabled => "partner_disabled",
            Self::PartnerEnabled => "partner_enabled",
            Self::SessionsRevoked => "sessions_revoked",
            Self::SecretRotated => "secret_rotated",
            Self::KeyAdded => "key_added",
            Self::KeyRevoked => "key_revoked",
            Self::SettingsChanged => "settings_changed",
            Self::WebhookEndpointDisabled => "webhook_endpoint_disabled",
            Self::WebhookEndpointEnabled => "webhook_endpoint_enabled",
        }
    }

    /// A request refused: what a stolen token could repeat at will, so what
    /// the audit stores within a per-partner budget. A detected token reuse
    /// is not: it revokes the login, so it cannot repeat, and its source and
    /// request id must survive a flood of other refusals.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::LoginFailed | Self::RefreshRefused | Self::SignatureFailed | Self::RequestRefused
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_stored_name_and_serialises_as_it() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(AuditKind::parse("made_up"), None);
    }
}
