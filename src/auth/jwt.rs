//! Access tokens: HS256 JWTs that this server both issues and verifies.
//!
//! The algorithm is pinned to HS256 (a token announcing `none`, RS256 or anything
//! else is refused before its signature is looked at), and there is no clock
//! leeway: a token is expired from the second its `exp` is reached.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::AuthError;

/// What a token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub client_id: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The login this token descends from; refresh keeps it, reuse revokes it.
    pub sid: String,
    /// When that login happened (unix seconds), for the absolute lifetime.
    pub auth_time: i64,
    /// The partner's secret generation at login; a rotation invalidates older tokens.
    pub secret_version: i64,
}

impl Claims {
    /// Expired from the second `exp` is reached: no leeway.
    pub fn is_expired_at(&self, now: i64) -> bool {
        now >= self.exp
    }

    /// Issued later than `now` (beyond a minute of clock skew between
    /// instances): never by this server. With the lifetime cap this bounds
    /// what a leaked signing key can mint to one token lifetime from now.
    pub fn is_issued_after(&self, now: i64) -> bool {
        self.iat > now.saturating_add(60)
    }
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The longest `exp - iat` this server issues (the configured TTL).
    max_lifetime: i64,
}

impl TokenKeys {
    /// Keys for tokens that live at most `max_lifetime`.
    pub fn new(secret: &[u8], max_lifetime: std::time::Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            max_lifetime: i64::try_from(max_lifetime.as_secs()).unwrap_or(i64::MAX),
        }
    }

    pub fn issue(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// Checks the signature and shape, not the expiry: callers decide what expiry
    /// means (an error for API calls, a window for refresh).
    pub fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                AuthError::TokenInvalid(match e.kind() {
                    ErrorKind::InvalidSignature => "the access token's signature is not valid",
                    ErrorKind::InvalidAlgorithm => "the access token must be signed with HS256",
                    _ => "the access token is malformed",
                })
            })?
            .claims;
        if claims.sub != claims.client_id {
            return Err(AuthError::TokenInvalid(
                "the access token's claims are inconsistent",
            ));
        }
        // A valid signature is not enough: whoever holds the signing key (a
        // leaked copy of the database, say) could mint a token for years.
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime {
            return Err(AuthError::TokenInvalid(
                "the access token lives longer than this server's token lifetime; log in again",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "c".into(),
            client_id: "c".into(),
            iat: 0,
            exp,
            jti: "tok_1".into(),
            sid: "ses_1".into(),
            auth_time: 0,
            secret_version: 1,
        }
    }

    const TTL: std::time::Duration = std::time::Duration::from_secs(100);

    #[test]
    fn a_token_is_expired_the_second_exp_is_reached() {
        let keys = TokenKeys::new(b"k", TTL);
        let token = keys.issue(&claims(100)).unwrap();
        let claims = keys.decode(&token).unwrap();
        assert!(!claims.is_expired_at(99));
        assert!(claims.is_expired_at(100));
    }

    #[test]
    fn a_token_that_lives_longer_than_the_ttl_is_refused_though_its_signature_verifies() {
        let keys = TokenKeys::new(b"k", TTL);
        let token = keys.issue(&claims(101)).unwrap();

        assert!(matches!(
            keys.decode(&token),
            Err(AuthError::TokenInvalid(_))
        ));
        assert!(keys.decode(&keys.issue(&claims(100)).unwrap()).is_ok());
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = TokenKeys::new(b"k", TTL);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).unwrap());
        let token = format!("{header}.{payload}.");
        assert!(matches!(
            keys.decode(&token),
            Err(AuthError::TokenInvalid(_))
        ));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = TokenKeys::new(b"guessed", TTL).issue(&claims(100)).unwrap();
        assert!(matches!(
            TokenKeys::new(b"real", TTL).decode(&token),
            Err(AuthError::TokenInvalid(_))
        ));
    }
}
