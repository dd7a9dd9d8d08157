//! Partner identity: client ids and the RSA public keys partners register.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::RsaParameters;

/// A partner's client id: 1–64 characters of `A-Z a-z 0-9 . _ -`.
///
/// `|` is excluded on purpose: it separates the fields of the string to sign.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 64 {
            return Err("a client id must be 1 to 64 characters".into());
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err("a client id may contain only letters, digits, '.', '_' and '-'".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ClientId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

/// Hashes and compares as its text, so maps keyed by it can be searched with a `&str`.
impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for ClientId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

/// Smallest RSA modulus we accept, as SPEC requires.
pub const MIN_RSA_BITS: u32 = 2048;

/// A validated RSA public key, kept as X.509 SubjectPublicKeyInfo DER.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    bits: u32,
}

impl PublicKey {
    /// Parses a PEM file as an operator would hand it in: SPKI (`BEGIN PUBLIC KEY`)
    /// or PKCS#1 (`BEGIN RSA PUBLIC KEY`). Private keys and anything else are refused
    /// with a message that says what was found.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let blocks = pem::parse_many(text).map_err(|e| format!("not a valid PEM file: {e}"))?;
        let Some(block) = blocks.first() else {
            return Err("no PEM block found: expected '-----BEGIN PUBLIC KEY-----'".into());
        };
        match block.tag() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Self::from_der(block.contents()),
            tag if tag.contains("PRIVATE KEY") => Err(
                "this is a PRIVATE key, which must never leave the partner: register the public \
                 key instead (`openssl pkey -in private.pem -pubout -out public.pem`)"
                    .into(),
            ),
            tag => Err(format!(
                "expected an RSA public key ('BEGIN PUBLIC KEY' or 'BEGIN RSA PUBLIC KEY'), found '{tag}'"
            )),
        }
    }

    /// Parses SPKI or PKCS#1 DER.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|_| "not an RSA public key (only RSA keys are supported)".to_string())?;
        let bits = RsaParameters::public_modulus_len(key.as_ref())
            .map_err(|_| "not a valid RSA public key".to_string())?;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "RSA keys must have at least {MIN_RSA_BITS} bits; this one has {bits}"
            ));
        }
        let spki = key
            .as_der()
            .map_err(|_| "could not encode the RSA public key".to_string())?;
        Ok(Self {
            spki_der: spki.as_ref().to_vec(),
            bits,
        })
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `SHA256:` + hex of SHA-256 over the SPKI DER, as partners can compute with
    /// `openssl pkey -pubin -outform DER | sha256sum`.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.spki_der)
    }
}

pub fn fingerprint(spki_der: &[u8]) -> String {
    format!(
        "SHA256:{}",
        hex::encode(digest::digest(&digest::SHA256, spki_der))
    )
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(RSA-{}, {})", self.bits, self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_refuse_the_signature_separator() {
        assert!(ClientId::parse("versuni-client-001").is_ok());
        assert!(ClientId::parse("a|b").is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn junk_is_refused_as_not_pem() {
        assert!(PublicKey::from_pem(b"hello").is_err());
    }
}
