//! The four-header check as plain values and verdicts: what a signed request
//! carried, what the server knows of its token and login, and whether that
//! passes. Nothing here reads a header or the database; the HTTP adapter
//! (`http::authenticate`) gathers the values, fetches the login and keys, and
//! calls these in order.

use std::time::Duration;

use aws_lc_rs::signature::ParsedPublicKey;
use time::OffsetDateTime;

use super::error::AuthError;
use super::jwt::Claims;
use super::{signature, timestamp};
use crate::store::SessionState;

/// What a signed request carried, as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'r> {
    pub client_id: &'r str,
    pub timestamp: &'r str,
    /// `X-SIGNATURE-VERSION: 2`: the method, path, query and body are signed too.
    pub v2: bool,
    pub method: &'r str,
    pub path_and_query: &'r str,
    pub body: &'r [u8],
    pub signature: &'r str,
}

impl SignedRequest<'_> {
    /// The string the partner must have signed: v1's `client_id|timestamp`,
    /// or v2's, which adds the method, path and query, and body digest.
    pub fn string_to_sign(&self) -> String {
        if self.v2 {
            signature::string_to_sign_v2(
                self.client_id,
                self.timestamp,
                self.method,
                self.path_and_query,
                &signature::body_digest(self.body),
            )
        } else {
            signature::string_to_sign(self.client_id, self.timestamp)
        }
    }

    /// The token is unexpired and names this client, and the timestamp is
    /// inside the window around `now`.
    pub fn check_token(
        &self,
        claims: &Claims,
        now: OffsetDateTime,
        tolerance: Duration,
    ) -> Result<(), AuthError> {
        if claims.is_issued_after(now.unix_timestamp()) {
            return Err(AuthError::TokenInvalid(
                "the access token was issued in the future; log in again",
            ));
        }
        if claims.is_expired_at(now.unix_timestamp()) {
            return Err(AuthError::TokenExpired);
        }
        if self.client_id != claims.client_id {
            return Err(AuthError::ClientIdMismatch);
        }
        timestamp::check_window(self.timestamp, now, tolerance)
    }

    /// The token's login still stands: it exists for this client, its partner
    /// is enabled, it was not revoked, the secret was not rotated since, and
    /// the request is signed the way the partner must sign. Returns the login.
    pub fn check_login<'s>(
        &self,
        claims: &Claims,
        login: Option<&'s SessionState>,
    ) -> Result<&'s SessionState, AuthError> {
        let login = login
            .filter(|login| login.client_id.as_str() == claims.client_id)
            .ok_or(AuthError::TokenRevoked(
                "the login behind this token no longer exists; log in again",
            ))?;
        // Disabling revokes the partner's logins too; while it lasts, say why.
        if !login.partner_enabled {
            return Err(AuthError::PartnerDisabled);
        }
        if login.revoked {
            return Err(AuthError::TokenRevoked(
                "this token's login was revoked; log in again",
            ));
        }
        if login.secret_version != claims.secret_version {
            return Err(AuthError::TokenRevoked(
                "the client secret was rotated after this token was issued; log in again",
            ));
        }
        if login.require_body_signature && !self.v2 {
            return Err(AuthError::SignatureV2Required);
        }
        Ok(login)
    }

    /// The signature verifies with one of `keys`; returns the string signed.
    pub fn verify(&self, keys: &[ParsedPublicKey]) -> Result<String, AuthError> {
        let message = self.string_to_sign();
        signature::verify(keys, &message, self.signature)?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: "acme".into(),
            client_id: "acme".into(),
            iat: 1_000,
            exp: 2_000,
            jti: "tok_1".into(),
            sid: "ses_1".into(),
            auth_time: 1_000,
            secret_version: 1,
        }
    }

    fn request(v2: bool) -> SignedRequest<'static> {
        SignedRequest {
            client_id: "acme",
            timestamp: "1500",
            v2,
            method: "GET",
            path_and_query: "/api/v1/sales-orders",
            body: b"",
            signature: "c2ln",
        }
    }

    fn login() -> SessionState {
        SessionState {
            client_id: crate::domain::ClientId::parse("acme").unwrap(),
            partner_enabled: true,
            secret_version: 1,
            revoked: false,
            require_body_signature: false,
            rate_limit: None,
            sandbox: false,
        }
    }

    #[test]
    fn a_token_is_checked_for_expiry_then_client_then_timestamp() {
        let at = |unix| OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let window = Duration::from_secs(300);
        assert_eq!(
            request(false).check_token(&claims(), at(2_000), window),
            Err(AuthError::TokenExpired)
        );
        let other = SignedRequest {
            client_id: "other",
            ..request(false)
        };
        assert_eq!(
            other.check_token(&claims(), at(1_500), window),
            Err(AuthError::ClientIdMismatch)
        );
        assert!(
            request(false)
                .check_token(&claims(), at(1_500), window)
                .is_ok()
        );
        assert!(matches!(
            request(false).check_token(&claims(), at(1_900), window),
            Err(AuthError::TimestampOutOfWindow { .. })
        ));
    }

    #[test]
    fn a_disabled_partner_is_told_so_before_its_revoked_login() {
        let disabled = SessionState {
            partner_enabled: false,
            revoked: true,
            ..login()
        };
        assert_eq!(
            request(false).check_login(&claims(), Some(&disabled)).err(),
            Some(AuthError::PartnerDisabled)
        );
        let revoked = SessionState {
            revoked: true,
            ..login()
        };
        assert!(matches!(
            request(false).check_login(&claims(), Some(&revoked)),
            Err(AuthError::TokenRevoked(_))
        ));
    }

    #[test]
    fn a_login_of_another_client_or_none_is_no_login() {
        let foreign = SessionState {
            client_id: crate::domain::ClientId::parse("other").unwrap(),
            ..login()
        };
        for login in [None, Some(&foreign)] {
            assert!(matches!(
                request(false).check_login(&claims(), login),
                Err(AuthError::TokenRevoked(_))
            ));
        }
    }

    #[test]
    fn a_rotated_secret_and_a_required_v2_are_refused() {
        let rotated = SessionState {
            secret_version: 2,
            ..login()
        };
        assert!(matches!(
            request(false).check_login(&claims(), Some(&rotated)),
            Err(AuthError::TokenRevoked(_))
        ));
        let strict = SessionState {
            require_body_signature: true,
            ..login()
        };
        assert_eq!(
            request(false).check_login(&claims(), Some(&strict)).err(),
            Some(AuthError::SignatureV2Required)
        );
        assert!(request(true).check_login(&claims(), Some(&strict)).is_ok());
    }

    #[test]
    fn the_string_to_sign_follows_the_version() {
        assert_eq!(request(false).string_to_sign(), "acme|1500");
        assert_eq!(
            request(true).string_to_sign(),
            "acme|1500|GET|/api/v1/sales-orders|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
