//! Access tokens: HS256 JWTs that this server both issues and verifies.
//!
//! The algorithm is pinned to HS256 (a token announcing `none`, RS256 or anything
//! else is refused before its signature is looked at), and there is no clock
//! leeway: a token is expired from the second its `exp` is reached.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;

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

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
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
        Ok(claims)
    }

    /// Decodes a token for an API call: it must also be unexpired at `now`.
    pub fn verify_access(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        if now >= claims.exp {
            return Err(AuthError::TokenExpired);
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

    #[test]
    fn a_token_is_expired_the_second_exp_is_reached() {
        let keys = TokenKeys::new(b"k");
        let token = keys.issue(&claims(100)).unwrap();
        assert!(keys.verify_access(&token, 99).is_ok());
        assert_eq!(
            keys.verify_access(&token, 100),
            Err(AuthError::TokenExpired)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = TokenKeys::new(b"k");
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
        let token = TokenKeys::new(b"guessed").issue(&claims(i64::MAX)).unwrap();
        assert!(matches!(
            TokenKeys::new(b"real").decode(&token),
            Err(AuthError::TokenInvalid(_))
        ));
    }
}
