//! Identifiers the server mints: opaque, unguessable, prefixed by kind.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source is unavailable");
    bytes
}

/// A random identifier: `prefix` + 128 random bits in lowercase hex.
fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<16>()))
}

pub fn new_order_id() -> String {
    random_id("so_")
}

pub fn new_key_id() -> String {
    random_id("key_")
}

pub fn new_token_id() -> String {
    random_id("tok_")
}

pub fn new_session_id() -> String {
    random_id("ses_")
}

pub fn new_client_id() -> String {
    format!("client-{}", hex::encode(random_bytes::<8>()))
}

/// A client secret: 256 random bits, URL-safe base64 (43 characters).
pub fn new_client_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The human-readable order number shown next to the opaque id.
pub fn order_number(seq: i64) -> String {
    format!("SO-{seq:08}")
}

/// The inverse of [`order_number`], for operators who type `SO-00000042`.
pub fn parse_order_number(text: &str) -> Option<i64> {
    text.strip_prefix("SO-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secrets_carry_256_bits() {
        let secret = new_client_secret();
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
        assert_ne!(secret, new_client_secret());
    }

    #[test]
    fn order_numbers_round_trip() {
        assert_eq!(order_number(42), "SO-00000042");
        assert_eq!(parse_order_number("SO-00000042"), Some(42));
    }
}
