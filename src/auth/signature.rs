//! `X-SIGNATURE`: SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256, Java's name)
//! of `client_id|timestamp` (v1, the seeds') or of
//! `client_id|timestamp|METHOD|path?query|hex(sha256(body))` (v2, chosen with
//! `X-SIGNATURE-VERSION: 2`), checked against every active key of the partner
//! so that keys can rotate with overlap.

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::error::AuthError;

/// A base64 RSA-8192 signature is 1368 characters; anything longer is not one.
const MAX_SIGNATURE_LEN: usize = 1400;

/// The v1 string to sign, built from the two header values exactly as received.
pub fn string_to_sign(client_id: &str, timestamp: &str) -> String {
    format!("{client_id}|{timestamp}")
}

/// The v2 string to sign: v1 plus the method, the path and query exactly as
/// sent, and the lowercase hex SHA-256 of the raw body (of nothing when empty).
pub fn string_to_sign_v2(
    client_id: &str,
    timestamp: &str,
    method: &str,
    path_and_query: &str,
    body_sha256_hex: &str,
) -> String {
    format!("{client_id}|{timestamp}|{method}|{path_and_query}|{body_sha256_hex}")
}

/// Lowercase hex SHA-256, as v2 signs the body.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body))
}

/// Decodes standard, URL-safe, padded or unpadded base64.
pub fn decode(signature: &str) -> Option<Vec<u8>> {
    if signature.len() > MAX_SIGNATURE_LEN {
        return None;
    }
    [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
        .into_iter()
        .find_map(|engine| engine.decode(signature).ok())
}

/// Parses stored public keys (SPKI DER) once, for many verifications. Keys
/// are checked when registered, so one that does not parse is skipped.
pub fn parse_keys<'k>(spkis: impl IntoIterator<Item = &'k [u8]>) -> Vec<ParsedPublicKey> {
    spkis
        .into_iter()
        .filter_map(|spki| ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki).ok())
        .collect()
}

/// Verifies `signature` (base64) over `message` against each key in turn,
/// returning the index of the key that matched.
pub fn verify(
    keys: &[ParsedPublicKey],
    message: &str,
    signature: &str,
) -> Result<usize, AuthError> {
    let invalid = |reason| AuthError::SignatureInvalid {
        reason,
        string_to_sign: message.to_owned(),
        diagnosis: None,
    };
    let raw = decode(signature).ok_or_else(|| invalid("X-SIGNATURE is not valid base64"))?;
    if let Some(index) = keys
        .iter()
        .position(|key| key.verify_sig(message.as_bytes(), &raw).is_ok())
    {
        return Ok(index);
    }
    if !keys.is_empty() {
        Err(invalid(
            "X-SIGNATURE does not verify against any active public key of this partner; \
             sign exactly the string_to_sign shown here with SHA256withRSA",
        ))
    } else {
        Err(invalid(
            "this partner has no active public key; ask the integration team to register one",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_base64_flavour_decodes_to_the_same_bytes() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let expected = Some(bytes.clone());
        for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            assert_eq!(decode(&engine.encode(&bytes)), expected);
        }
        assert_eq!(decode("not base64!"), None);
    }

    #[test]
    fn no_keys_means_a_precise_reason() {
        let err = verify(&[], "c|1", "AAAA").unwrap_err();
        assert!(err.to_string().contains("no active public key"));
    }
}
