//! Why a signature did not verify. Only on the failure path: the signature
//! is tried against the strings and keys partners most often sign by mistake,
//! and the first that verifies names the mistake. Each guess is one RSA
//! verification: at most 14 per active key (hex, newline, the other version,
//! the body, ten other timestamps) and one per revoked key, about 0.2 ms with
//! one RSA-2048 key. A valid signature costs nothing here.
//!
//! Nothing here is secret: the string the server verified, the key ids and
//! fingerprints are the partner's own, and the signature is never echoed.

use aws_lc_rs::signature::ParsedPublicKey;

pub use super::error::{Diagnosis, KeyTried, Mistake};
use super::request::SignedRequest;
use super::signature;
use crate::store::KeyRecord;

/// Failed signatures explained per second and client (bursts of ten times
/// that): plenty for a developer, and a cap on what a stolen token without
/// the key can make the server do. Beyond it, the error is plain.
pub const PER_SECOND: u32 = 5;

/// Seconds either side of `X-TIMESTAMP` tried as the one actually signed:
/// a client that reads the clock twice, once to sign and once for the
/// header, is usually off by one or two.
const TIMESTAMP_SLIP: i64 = 5;

impl Mistake {
    fn new(code: &'static str, hint: impl Into<String>) -> Self {
        Self {
            code,
            hint: hint.into(),
        }
    }

    pub fn other_timestamp(signed: &str, sent: &str) -> Self {
        Self::new(
            "SIGNED_OTHER_TIMESTAMP",
            format!(
                "the signature is over timestamp {signed}, but X-TIMESTAMP says {sent}; \
                 read the clock once and use the same value in the string and the header"
            ),
        )
    }
}

/// Checks `request` against the partner's keys (active and revoked), after
/// the signature failed to verify over `expected`, the string it should sign.
pub fn diagnose(request: &SignedRequest<'_>, expected: &str, keys: &[KeyRecord]) -> Diagnosis {
    let (active, revoked): (Vec<&KeyRecord>, Vec<&KeyRecord>) =
        keys.iter().partition(|key| key.revoked_at.is_none());
    let keys_tried = active
        .iter()
        .map(|key| KeyTried {
            key_id: key.key_id.clone(),
            fingerprint: key.fingerprint.clone(),
        })
        .collect();
    let parsed =
        |keys: &[&KeyRecord]| signature::parse_keys(keys.iter().map(|key| key.spki_der.as_slice()));
    Diagnosis {
        keys_tried,
        mistake: find_mistake(
            request,
            expected,
            &parsed(&active),
            &revoked,
            &parsed(&revoked),
        ),
    }
}

fn find_mistake(
    request: &SignedRequest<'_>,
    expected: &str,
    active: &[ParsedPublicKey],
    revoked: &[&KeyRecord],
    revoked_parsed: &[ParsedPublicKey],
) -> Option<Mistake> {
    let verifies = |keys: &[ParsedPublicKey], message: &[u8], signature: &[u8]| {
        keys.iter()
            .position(|key| key.verify_sig(message, signature).is_ok())
    };
    // Hex digits are also base64 characters, so a hex signature decodes as
    // base64 too, into the wrong bytes: try it as hex first.
    if let Ok(raw) = hex::decode(request.signature)
        && verifies(active, expected.as_bytes(), &raw).is_some()
    {
        return Some(Mistake::new(
            "HEX_NOT_BASE64",
            "X-SIGNATURE is the right signature written in hex; send it in base64 \
             (e.g. `openssl dgst -sha256 -sign private.pem | base64 -w0`)",
        ));
    }
    let raw = signature::decode(request.signature)?;
    let signed = |message: &str| verifies(active, message.as_bytes(), &raw).is_some();

    if signed(&format!("{expected}\n")) {
        return Some(Mistake::new(
            "TRAILING_NEWLINE",
            "the signed string ends with a newline; sign the string_to_sign without one \
             (in a shell use `printf '%s'`, not `echo`)",
        ));
    }
    let digest = signature::body_digest(request.body);
    let v2_over = |timestamp: &str| {
        signature::string_to_sign_v2(
            request.client_id,
            timestamp,
            request.method,
            request.path_and_query,
            &digest,
        )
    };
    let v1 = signature::string_to_sign(request.client_id, request.timestamp);
    let v2 = v2_over(request.timestamp);
    if !request.v2 && signed(&v2) {
        return Some(Mistake::new(
            "SIGNED_V2_STRING",
            "the version 2 string (with method, path and body digest) was signed, but the \
             request has no `X-SIGNATURE-VERSION: 2` header; add it, or sign the version 1 string",
        ));
    }
    if request.v2 && signed(&v1) {
        return Some(Mistake::new(
            "SIGNED_V1_STRING",
            "the version 1 string `client_id|timestamp` was signed, but the request says \
             `X-SIGNATURE-VERSION: 2`; sign the version 2 string shown here, or drop the header",
        ));
    }
    if !request.body.is_empty() && verifies(active, request.body, &raw).is_some() {
        return Some(Mistake::new(
            "SIGNED_BODY",
            "the JSON body was signed; sign the string_to_sign shown here instead \
             (the body is covered through its SHA-256 only in version 2)",
        ));
    }
    for other in other_timestamps(request.timestamp) {
        let message = if request.v2 {
            v2_over(&other)
        } else {
            signature::string_to_sign(request.client_id, &other)
        };
        if signed(&message) {
            return Some(Mistake::other_timestamp(&other, request.timestamp));
        }
    }
    if let Some(index) = verifies(revoked_parsed, expected.as_bytes(), &raw) {
        return Some(Mistake::new(
            "REVOKED_KEY",
            format!(
                "the request was signed with key {} ({}), which has been revoked; \
                 sign with a key that is still active",
                revoked[index].key_id, revoked[index].fingerprint
            ),
        ));
    }
    None
}

/// Timestamps a client may have signed instead of the one it sent: the same
/// instant in unix seconds (for milliseconds or RFC 3339 sent), and a few
/// seconds either side (for unix seconds sent).
fn other_timestamps(sent: &str) -> Vec<String> {
    let mut others = Vec::new();
    if sent.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(number) = sent.parse::<i64>() {
            if sent.len() == 13 {
                others.push((number / 1000).to_string());
            } else {
                for slip in (1..=TIMESTAMP_SLIP).flat_map(|s| [-s, s]) {
                    others.push((number + slip).to_string());
                }
            }
        }
    } else if let Ok(at) =
        time::OffsetDateTime::parse(sent, &time::format_description::well_known::Rfc3339)
    {
        others.push(at.unix_timestamp().to_string());
    }
    others
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    struct Partner {
        key: KeyPair,
        record: KeyRecord,
    }

    fn partner(key_id: &str, revoked: bool) -> Partner {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let spki_der = key.public_key().as_der().unwrap().as_ref().to_vec();
        let record = KeyRecord {
            key_id: key_id.into(),
            client_id: crate::domain::ClientId::parse("acme").unwrap(),
            fingerprint: crate::domain::partner::fingerprint(&spki_der),
            spki_der,
            bits: 2048,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            revoked_at: revoked.then_some(time::OffsetDateTime::UNIX_EPOCH),
        };
        Partner { key, record }
    }

    fn sign(key: &KeyPair, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut signature,
        )
        .unwrap();
        signature
    }

    const BODY: &[u8] = br#"{"customer_code":"C"}"#;

    fn request<'r>(timestamp: &'r str, v2: bool, signature: &'r str) -> SignedRequest<'r> {
        SignedRequest {
            client_id: "acme",
            timestamp,
            v2,
            method: "POST",
            path_and_query: "/api/v1/sales-orders",
            body: BODY,
            signature,
        }
    }

    fn mistake(request: &SignedRequest<'_>, keys: &[KeyRecord]) -> Option<&'static str> {
        diagnose(request, &request.string_to_sign(), keys)
            .mistake
            .map(|mistake| mistake.code)
    }

    #[test]
    fn each_common_mistake_is_named() {
        let active = partner("key_active", false);
        let old = partner("key_old", true);
        let keys = [active.record.clone(), old.record.clone()];
        let b64 = |key: &KeyPair, message: &str| STANDARD.encode(sign(key, message.as_bytes()));
        let ts = "1764000000";
        let v2 = signature::string_to_sign_v2(
            "acme",
            ts,
            "POST",
            "/api/v1/sales-orders",
            &signature::body_digest(BODY),
        );
        let hex_signature = hex::encode(sign(&active.key, b"acme|1764000000"));
        let body_signature = STANDARD.encode(sign(&active.key, BODY));
        let cases = [
            (ts, false, hex_signature, "HEX_NOT_BASE64"),
            (
                ts,
                false,
                b64(&active.key, "acme|1764000000\n"),
                "TRAILING_NEWLINE",
            ),
            (ts, false, b64(&active.key, &v2), "SIGNED_V2_STRING"),
            (
                ts,
                true,
                b64(&active.key, "acme|1764000000"),
                "SIGNED_V1_STRING",
            ),
            (ts, false, body_signature, "SIGNED_BODY"),
            (
                ts,
                false,
                b64(&active.key, "acme|1763999998"),
                "SIGNED_OTHER_TIMESTAMP",
            ),
            (
                "1764000000123",
                false,
                b64(&active.key, "acme|1764000000"),
                "SIGNED_OTHER_TIMESTAMP",
            ),
            (
                "2025-11-24T16:00:00Z",
                false,
                b64(&active.key, "acme|1764000000"),
                "SIGNED_OTHER_TIMESTAMP",
            ),
            (ts, false, b64(&old.key, "acme|1764000000"), "REVOKED_KEY"),
        ];
        for (timestamp, v2, signature, code) in &cases {
            let request = request(timestamp, *v2, signature);
            assert_eq!(mistake(&request, &keys), Some(*code), "{code}");
        }
    }

    #[test]
    fn a_signature_by_an_unknown_key_names_no_mistake_but_lists_the_keys_tried() {
        let active = partner("key_active", false);
        let old = partner("key_old", true);
        let stranger = partner("key_stranger", false);
        let signature = STANDARD.encode(sign(&stranger.key, b"acme|1764000000"));
        let request = request("1764000000", false, &signature);
        let diagnosis = diagnose(
            &request,
            "acme|1764000000",
            &[active.record.clone(), old.record],
        );
        assert_eq!(diagnosis.mistake, None);
        assert_eq!(
            diagnosis.keys_tried,
            vec![KeyTried {
                key_id: "key_active".into(),
                fingerprint: active.record.fingerprint,
            }]
        );
    }

    #[test]
    fn the_revoked_key_is_named_by_id_and_fingerprint() {
        let old = partner("key_old", true);
        let signature = STANDARD.encode(sign(&old.key, b"acme|1764000000"));
        let diagnosis = diagnose(
            &request("1764000000", false, &signature),
            "acme|1764000000",
            std::slice::from_ref(&old.record),
        );
        let hint = diagnosis.mistake.unwrap().hint;
        assert!(hint.contains("key_old") && hint.contains(&old.record.fingerprint));
        assert!(diagnosis.keys_tried.is_empty());
    }
}
