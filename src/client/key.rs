//! The partner's RSA key pair and the signature headers it makes: exactly
//! the strings the server verifies ([`crate::auth::signature`] builds both).

use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::auth::signature::{body_digest, string_to_sign, string_to_sign_v2};
use crate::domain::partner::PublicKey;

/// The partner's RSA private key.
pub struct PrivateKey(KeyPair);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(RSA-{})", self.0.public_modulus_len() * 8)
    }
}

impl PrivateKey {
    /// A new key of 2048, 3072 or 4096 bits.
    pub fn generate(bits: u32) -> anyhow::Result<Self> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => bail!("RSA keys are 2048, 3072 or 4096 bits"),
        };
        Ok(Self(KeyPair::generate(size).map_err(|_| {
            anyhow::anyhow!("the RSA key could not be generated")
        })?))
    }

    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(text: &[u8]) -> anyhow::Result<Self> {
        let block = pem::parse(text).context("the private key file is not PEM")?;
        match block.tag() {
            "PRIVATE KEY" | "RSA PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => bail!(
                "the private key is encrypted; decrypt it first (`openssl pkey -in key.pem -out private.pem`)"
            ),
            tag if tag.contains("PUBLIC KEY") => bail!(
                "this is a public key; signing needs the private key (the file `keygen` wrote as private.pem)"
            ),
            tag => bail!("expected 'BEGIN PRIVATE KEY' or 'BEGIN RSA PRIVATE KEY', found '{tag}'"),
        }
        KeyPair::from_pkcs8(block.contents())
            .or_else(|_| KeyPair::from_der(block.contents()))
            .map(Self)
            .map_err(|_| anyhow::anyhow!("not an RSA private key of 2048 bits or more"))
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?;
        Self::from_pem(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn bits(&self) -> usize {
        self.0.public_modulus_len() * 8
    }

    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        let der = self
            .0
            .as_der()
            .map_err(|_| anyhow::anyhow!("the private key could not be encoded"))?;
        Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref())))
    }

    /// The public half, as the server registers it (SPKI).
    pub fn public_key(&self) -> anyhow::Result<PublicKey> {
        let der = self
            .0
            .public_key()
            .as_der()
            .map_err(|_| anyhow::anyhow!("the public key could not be encoded"))?;
        PublicKey::from_der(der.as_ref()).map_err(anyhow::Error::msg)
    }

    /// Base64 SHA256withRSA (RSASSA-PKCS1-v1_5, SHA-256) of `message`.
    pub fn sign(&self, message: &str) -> String {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .expect("signing with a valid RSA key into a buffer of its size cannot fail");
        STANDARD.encode(signature)
    }
}

/// SPKI PEM of a public key: the file a partner sends to the operator.
pub fn public_key_pem(key: &PublicKey) -> String {
    pem::encode(&pem::Pem::new("PUBLIC KEY", key.spki_der()))
}

/// What v2 signs besides the client id and timestamp.
pub struct SignedPart<'b> {
    pub method: &'b str,
    /// Path and query exactly as sent, e.g. `/api/v1/sales-orders?limit=10`.
    pub path_and_query: &'b str,
    pub body: &'b [u8],
}

/// The signature headers of one request.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureHeaders {
    pub client_id: String,
    pub timestamp: String,
    pub signature: String,
    pub version: u8,
    pub string_to_sign: String,
}

impl SignatureHeaders {
    /// v1 over `client_id|timestamp`, or v2 when `part` is given.
    pub fn new(
        key: &PrivateKey,
        client_id: &str,
        timestamp: &str,
        part: Option<&SignedPart<'_>>,
    ) -> Self {
        let (string_to_sign, version) = match part {
            None => (string_to_sign(client_id, timestamp), 1),
            Some(part) => (
                string_to_sign_v2(
                    client_id,
                    timestamp,
                    part.method,
                    part.path_and_query,
                    &body_digest(part.body),
                ),
                2,
            ),
        };
        Self {
            client_id: client_id.to_owned(),
            timestamp: timestamp.to_owned(),
            signature: key.sign(&string_to_sign),
            version,
            string_to_sign,
        }
    }

    /// `(name, value)` of each header, in the order the seeds list them.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            ("X-CLIENT-ID", self.client_id.clone()),
            ("X-TIMESTAMP", self.timestamp.clone()),
            ("X-SIGNATURE", self.signature.clone()),
            ("X-SIGNATURE-VERSION", self.version.to_string()),
        ]
    }
}

/// Unix seconds now: the canonical `X-TIMESTAMP`.
pub fn timestamp_now() -> String {
    time::OffsetDateTime::now_utc().unix_timestamp().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_the_server_verifies() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = key.public_key().unwrap();
        let headers = SignatureHeaders::new(&key, "acme", "1764000000", None);
        let keys = crate::auth::signature::parse_keys([public.spki_der()]);
        assert_eq!(
            crate::auth::signature::verify(&keys, "acme|1764000000", &headers.signature),
            Ok(0)
        );
        let reread = PrivateKey::from_pem(key.to_pem().unwrap().as_bytes()).unwrap();
        assert_eq!(reread.public_key().unwrap(), public);
    }

    #[test]
    fn v2_signs_method_path_and_body_digest() {
        let key = PrivateKey::generate(2048).unwrap();
        let part = SignedPart {
            method: "POST",
            path_and_query: "/api/v1/sales-orders",
            body: b"{}",
        };
        let headers = SignatureHeaders::new(&key, "acme", "1764000000", Some(&part));
        assert_eq!(headers.version, 2);
        assert_eq!(
            headers.string_to_sign,
            format!(
                "acme|1764000000|POST|/api/v1/sales-orders|{}",
                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
            )
        );
    }

    #[test]
    fn a_public_key_is_refused_as_a_signing_key_with_a_reason() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = public_key_pem(&key.public_key().unwrap());
        let error = PrivateKey::from_pem(public.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("this is a public key"));
    }
}
