//! Why a signature did not verify. Only on the failure path: the digest the
//! signature holds is recovered once per key (the RSA public operation, a
//! few microseconds for RSA-2048), then compared with the SHA-256 of each
//! string partners most often sign by mistake (a newline, the other version,
//! the body, other timestamps and units, the v2 query, method and body digest
//! written differently): about 10 000 hashes at most, a few milliseconds,
//! for the few failures a second a client gets explained. The first match
//! names the mistake; with none, the answer still says whether the key was
//! right (another string) or not (another key). A valid signature costs
//! nothing here.
//!
//! Nothing here is secret: the string the server verified, the key ids and
//! fingerprints are the partner's own, and the signature is never echoed.

use base64::Engine;

pub use super::error::{Diagnosis, KeyTried, Mistake};
use super::request::SignedRequest;
use super::signature;
use crate::store::KeyRecord;

/// Failed signatures explained per second and client (bursts of ten times
/// that): plenty for a developer, and a cap on what a stolen token without
/// the key can make the server do. Beyond it, the error is plain.
pub const PER_SECOND: u32 = 5;

/// The longest string to sign tried in other timestamp units, and the
/// longest body tried re-serialized.
const MAX_GUESSED_LEN: usize = 1024;
const MAX_RESPACED_BODY: usize = 64 * 1024;

/// Seconds either side of `X-TIMESTAMP` tried as the one actually signed:
/// a client that reads the clock twice, once to sign and once for the
/// header, is usually off by one or two.
const TIMESTAMP_SLIP: i64 = 5;
/// Seconds either side of the instant sent that the unit guesses cover.
const UNIT_GUESS_NEAR: i64 = 2;

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
    Diagnosis {
        keys_tried,
        mistake: find_mistake(request, expected, &active, &revoked),
    }
}

fn find_mistake(
    request: &SignedRequest<'_>,
    expected: &str,
    active: &[&KeyRecord],
    revoked: &[&KeyRecord],
) -> Option<Mistake> {
    // Hex digits are also base64 characters, so a hex signature decodes as
    // base64 too, into the wrong bytes: try it as hex first.
    if let Ok(raw) = hex::decode(request.signature) {
        let digests = signed_digests(active, &raw);
        if digests
            .iter()
            .any(|(_, digest)| *digest == sha256(expected))
        {
            return Some(Mistake::new(
                "HEX_NOT_BASE64",
                "X-SIGNATURE is the right signature written in hex; send it in base64 \
                 (e.g. `openssl dgst -sha256 -sign private.pem | base64 -w0`)",
            ));
        }
    }
    let Some(raw) = signature::decode(request.signature) else {
        return Some(Mistake::new(
            "NOT_BASE64",
            "X-SIGNATURE is not base64; send the signature bytes base64-encoded",
        ));
    };
    if !active.is_empty()
        && let Some(length) = modulus_len(active[0])
        && active
            .iter()
            .all(|key| modulus_len(key).is_some_and(|len| len != raw.len()))
    {
        return Some(Mistake::new(
            "SIGNATURE_WRONG_LENGTH",
            format!(
                "X-SIGNATURE decodes to {} bytes, but a signature by your {}-bit key is {length} \
                 bytes: it was cut short, padded, or is not the RSA signature itself",
                raw.len(),
                length * 8
            ),
        ));
    }
    let digests = signed_digests(active, &raw);
    if !digests.is_empty() {
        let signed = |message: &str| {
            let digest = sha256(message);
            digests.iter().any(|(_, signed)| *signed == digest)
        };
        if let Some(mistake) = string_mistake(request, expected, &signed) {
            return Some(mistake);
        }
    }
    if let Some((key, digest)) = signed_digests(revoked, &raw).first() {
        let over = if *digest == sha256(expected) {
            ""
        } else {
            " (over another string than string_to_sign, too)"
        };
        return Some(Mistake::new(
            "REVOKED_KEY",
            format!(
                "the request was signed with key {} ({}), which has been revoked{over}; \
                 sign with a key that is still active",
                key.key_id, key.fingerprint
            ),
        ));
    }
    // Nothing common explains it: say what is known instead of guessing.
    Some(match digests.first() {
        Some((key, _)) => Mistake::new(
            "SIGNED_OTHER_STRING",
            format!(
                "the signature was made with your active key {} ({}), but over another string \
                 than string_to_sign, and none of these, which we tried: {}. Compare your \
                 string with string_to_sign byte by byte",
                key.key_id,
                key.fingerprint,
                ruled_out(request, expected).join("; ")
            ),
        ),
        None => Mistake::new(
            "UNKNOWN_KEY",
            "the signature was made with none of your keys, active or revoked (see keys_tried), \
             or was damaged on the way; sign with the private key whose public key was \
             registered: compare its fingerprint \
             (`openssl pkey -in private.pem -pubout -outform DER | sha256sum`)",
        ),
    })
}

/// What [`string_mistake`] tried for `request` and did not find, as the
/// partner would say it: exactly the guesses made, so the answer never
/// rules out more than was checked.
fn ruled_out(request: &SignedRequest<'_>, expected: &str) -> Vec<String> {
    let mut tried = vec![
        "string_to_sign with a newline after it".to_owned(),
        format!("the version {} string", if request.v2 { 1 } else { 2 }),
    ];
    if !request.body.is_empty() && std::str::from_utf8(request.body).is_ok() {
        tried.push("the body itself".to_owned());
    }
    if request.v2 {
        if request.path_and_query.contains('?') {
            tried.push(
                "string_to_sign with the path without its query, or with it percent-decoded"
                    .to_owned(),
            );
        }
        tried.push("string_to_sign with the method in lower case".to_owned());
        // As `other_body_digests` makes them.
        let mut digests = vec!["in upper-case hex or base64"];
        if !request.body.is_empty() {
            digests.push("of an empty body");
            digests.push("of the body with a newline after it");
        }
        // An empty body has no other spacing.
        if !request.body.is_empty()
            && request.body.len() <= MAX_RESPACED_BODY
            && std::str::from_utf8(request.body).is_ok()
        {
            digests.push("of the body without spaces and line breaks");
            digests.push("of the body with a space after each `,` and `:`");
        }
        tried.push(format!(
            "string_to_sign with the body digest {}",
            digests.join(", ")
        ));
    }
    if !slipped_timestamps(request.timestamp).is_empty() {
        tried.push(format!(
            "string_to_sign with a timestamp up to {TIMESTAMP_SLIP} seconds either side of X-TIMESTAMP"
        ));
    }
    if expected.len() <= MAX_GUESSED_LEN {
        let units = match unix(request.timestamp) {
            Some(_) if request.timestamp.len() == 13 => "unix seconds",
            Some(_) => "unix milliseconds",
            None => "unix seconds or milliseconds",
        };
        if !timestamps_in_other_units(request.timestamp).is_empty() {
            tried.push(format!(
                "string_to_sign with X-TIMESTAMP's instant ({UNIT_GUESS_NEAR} seconds either side) \
                 written in {units}"
            ));
        }
    }
    tried
}

/// The mistakes in what was signed, found by trying the strings partners
/// most often sign instead of `expected` with `signed` (one SHA-256 each:
/// the signed digest is recovered once per key).
fn string_mistake(
    request: &SignedRequest<'_>,
    expected: &str,
    signed: &dyn Fn(&str) -> bool,
) -> Option<Mistake> {
    if signed(&format!("{expected}\n")) {
        return Some(Mistake::new(
            "TRAILING_NEWLINE",
            "the signed string ends with a newline; sign the string_to_sign without one \
             (in a shell use `printf '%s'`, not `echo`)",
        ));
    }
    let digest = signature::body_digest(request.body);
    let v2_with = |timestamp: &str, method: &str, path_and_query: &str, digest: &str| {
        signature::string_to_sign_v2(request.client_id, timestamp, method, path_and_query, digest)
    };
    let v2_over =
        |timestamp: &str| v2_with(timestamp, request.method, request.path_and_query, &digest);
    let v1 = signature::string_to_sign(request.client_id, request.timestamp);
    if !request.v2 && signed(&v2_over(request.timestamp)) {
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
    if !request.body.is_empty() && std::str::from_utf8(request.body).is_ok_and(signed) {
        return Some(Mistake::new(
            "SIGNED_BODY",
            "the JSON body was signed; sign the string_to_sign shown here instead \
             (the body is covered through its SHA-256 only in version 2)",
        ));
    }
    if request.v2
        && let Some(mistake) = v2_mistake(request, &digest, &v2_with, signed)
    {
        return Some(mistake);
    }
    let sign_at = |timestamp: &str| {
        if request.v2 {
            v2_over(timestamp)
        } else {
            signature::string_to_sign(request.client_id, timestamp)
        }
    };
    for other in slipped_timestamps(request.timestamp) {
        if signed(&sign_at(&other)) {
            return Some(Mistake::other_timestamp(&other, request.timestamp));
        }
    }
    // Thousands of guesses, each as long as the string: only for strings of
    // a usual length (a v2 query can make it 64 KiB).
    let unit_guesses = if expected.len() <= MAX_GUESSED_LEN {
        timestamps_in_other_units(request.timestamp)
    } else {
        Vec::new()
    };
    for (other, unit) in unit_guesses {
        if signed(&sign_at(&other)) {
            return Some(Mistake::new(
                "SIGNED_TIMESTAMP_IN_OTHER_UNIT",
                format!(
                    "the signature is over timestamp {other} ({unit}), but X-TIMESTAMP says {}; \
                     sign exactly the text you send in X-TIMESTAMP (unix seconds, unix \
                     milliseconds and RFC 3339 are all accepted, as long as both are the same)",
                    request.timestamp
                ),
            ));
        }
    }
    None
}

/// What v2 partners most often get wrong in the method, path or body digest.
fn v2_mistake(
    request: &SignedRequest<'_>,
    digest: &str,
    v2_with: &dyn Fn(&str, &str, &str, &str) -> String,
    signed: &dyn Fn(&str) -> bool,
) -> Option<Mistake> {
    let (timestamp, method, path_and_query) =
        (request.timestamp, request.method, request.path_and_query);
    if let Some((path, query)) = path_and_query.split_once('?') {
        if signed(&v2_with(timestamp, method, path, digest)) {
            return Some(Mistake::new(
                "SIGNED_WITHOUT_QUERY",
                format!(
                    "the path was signed without its query string; sign `{path_and_query}`, \
                     the path and query exactly as sent"
                ),
            ));
        }
        let decoded = url::form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        if decoded != query
            && signed(&v2_with(
                timestamp,
                method,
                &format!("{path}?{decoded}"),
                digest,
            ))
        {
            return Some(Mistake::new(
                "SIGNED_DECODED_QUERY",
                format!(
                    "the query string was signed percent-decoded; sign `{path_and_query}`, \
                     exactly as sent on the wire"
                ),
            ));
        }
    }
    let lowercase = method.to_ascii_lowercase();
    if signed(&v2_with(timestamp, &lowercase, path_and_query, digest)) {
        return Some(Mistake::new(
            "SIGNED_LOWERCASE_METHOD",
            format!("the method was signed as `{lowercase}`; sign it in capitals, `{method}`"),
        ));
    }
    for (other, how) in other_body_digests(request.body, digest) {
        if signed(&v2_with(timestamp, method, path_and_query, &other)) {
            return Some(Mistake::new(
                "SIGNED_OTHER_BODY_DIGEST",
                format!(
                    "the body digest signed is {how}; sign the lowercase hex SHA-256 of the exact \
                     bytes you send (`{digest}` for this body): serialize the body once and \
                     both hash and send those bytes"
                ),
            ));
        }
    }
    None
}

/// Digests a v2 partner may have signed instead of `digest` (the lowercase
/// hex SHA-256 of `body`), and how each was made.
fn other_body_digests(body: &[u8], digest: &str) -> Vec<(String, &'static str)> {
    let raw = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let mut others = vec![
        (digest.to_ascii_uppercase(), "in upper-case hex"),
        (
            base64::engine::general_purpose::STANDARD.encode(raw.as_ref()),
            "in base64, not hex",
        ),
    ];
    if !body.is_empty() {
        others.push((signature::body_digest(b""), "of an empty body"));
        let mut with_newline = body.to_vec();
        with_newline.push(b'\n');
        others.push((
            signature::body_digest(&with_newline),
            "of the body with a newline after it",
        ));
    }
    if body.len() <= MAX_RESPACED_BODY
        && let Ok(text) = std::str::from_utf8(body)
    {
        let compact = respaced(text, "", "");
        for (spaced, how) in [
            (
                compact.clone(),
                "of the body without its spaces and line breaks (the JSON was serialized again after hashing)",
            ),
            (
                respaced(&compact, " ", " "),
                "of the body with a space after each `,` and `:` (Python's `json.dumps` default; the JSON was serialized again after hashing)",
            ),
        ] {
            if spaced.as_bytes() != body {
                others.push((signature::body_digest(spaced.as_bytes()), how));
            }
        }
    }
    others
}

/// `json` with the white space between its tokens removed, then `after_comma`
/// after each `,` and `after_colon` after each `:` (never inside strings).
fn respaced(json: &str, after_comma: &str, after_colon: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            ' ' | '\n' | '\r' | '\t' => {}
            ',' => {
                out.push(c);
                out.push_str(after_comma);
            }
            ':' => {
                out.push(c);
                out.push_str(after_colon);
            }
            _ => out.push(c),
        }
    }
    out
}

fn sha256(message: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The length in bytes of `key`'s modulus: the length of its signatures.
fn modulus_len(key: &KeyRecord) -> Option<usize> {
    aws_lc_rs::rsa::PublicKey::from_der(&key.spki_der)
        .ok()
        .map(|key| key.modulus_len())
}

/// The SHA-256 digest each of `keys` signed in `raw`, for the keys that made
/// it. Undoing the RSA operation once per key (`raw`^e mod n, checked for
/// the PKCS #1 v1.5 SHA-256 layout) recovers the digest, so each guess
/// after that costs a hash, not a verification: enough to try the thousand
/// millisecond readings of one second.
fn signed_digests<'k>(keys: &[&'k KeyRecord], raw: &[u8]) -> Vec<(&'k KeyRecord, [u8; 32])> {
    keys.iter()
        .filter_map(|key| Some((*key, recover_digest(&key.spki_der, raw)?)))
        .collect()
}

/// DigestInfo for SHA-256 (RFC 8017, 9.2 note 1), before the digest.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn recover_digest(spki_der: &[u8], raw: &[u8]) -> Option<[u8; 32]> {
    use aws_lc_rs::rsa::PublicKeyComponents;
    use num_bigint::BigUint;
    let key = aws_lc_rs::rsa::PublicKey::from_der(spki_der).ok()?;
    let length = key.modulus_len();
    if raw.len() != length {
        return None;
    }
    let components = PublicKeyComponents::<Vec<u8>>::from(&key);
    let n = BigUint::from_bytes_be(&components.n);
    let signature = BigUint::from_bytes_be(raw);
    if signature >= n {
        return None;
    }
    let message = signature
        .modpow(&BigUint::from_bytes_be(&components.e), &n)
        .to_bytes_be();
    // EM = 0x00 0x01 PS (0xff …) 0x00 DigestInfo digest; the leading zero is
    // dropped by `to_bytes_be`.
    let padding = length.checked_sub(3 + SHA256_DIGEST_INFO.len() + 32)?;
    let (head, rest) = message.split_at_checked(1 + padding + 1)?;
    let layout_ok = message.len() == length - 1
        && head[0] == 0x01
        && head[1..=padding].iter().all(|byte| *byte == 0xff)
        && head[padding + 1] == 0x00
        && rest.starts_with(&SHA256_DIGEST_INFO);
    if !layout_ok {
        return None;
    }
    rest[SHA256_DIGEST_INFO.len()..].try_into().ok()
}

/// A few seconds either side of unix seconds sent: a client that reads the
/// clock twice, once to sign and once for the header.
fn slipped_timestamps(sent: &str) -> Vec<String> {
    match unix(sent) {
        Some(seconds) if sent.len() <= 11 => (1..=TIMESTAMP_SLIP)
            .flat_map(|slip| [seconds - slip, seconds + slip])
            .map(|t| t.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The instant sent, and a second or two either side, written in the other
/// units a client may have signed: seconds for milliseconds sent,
/// milliseconds (every one of those seconds) for seconds sent, and both for
/// RFC 3339 sent.
fn timestamps_in_other_units(sent: &str) -> Vec<(String, &'static str)> {
    let seconds = |at: i64| {
        (at - UNIT_GUESS_NEAR..=at + UNIT_GUESS_NEAR).map(|s| (s.to_string(), "unix seconds"))
    };
    let milliseconds = |at: i64| {
        (at - UNIT_GUESS_NEAR..=at + UNIT_GUESS_NEAR).flat_map(|s| {
            (0..1000).map(move |ms| ((s * 1000 + ms).to_string(), "unix milliseconds"))
        })
    };
    match unix(sent) {
        Some(ms) if sent.len() == 13 => seconds(ms / 1000).collect(),
        Some(s) => milliseconds(s).collect(),
        None => {
            match time::OffsetDateTime::parse(sent, &time::format_description::well_known::Rfc3339)
            {
                Ok(at) => {
                    let s = at.unix_timestamp();
                    seconds(s).chain(milliseconds(s)).collect()
                }
                Err(_) => Vec::new(),
            }
        }
    }
}

/// Digits only, as a number that leaves room for the guesses around it.
fn unix(sent: &str) -> Option<i64> {
    if sent.is_empty() || sent.len() > 13 || !sent.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    sent.parse().ok()
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
    fn no_mistake_found_says_exactly_what_was_ruled_out() {
        let active = partner("key_active", false);
        let keys = [active.record.clone()];
        let other = STANDARD.encode(sign(&active.key, b"acme|something else"));
        let hint = |request: &SignedRequest<'_>| {
            let mistake = diagnose(request, &request.string_to_sign(), &keys).mistake;
            let mistake = mistake.unwrap();
            assert_eq!(mistake.code, "SIGNED_OTHER_STRING");
            mistake.hint
        };

        // v1 in unix seconds: every guess made for it, and no v2 ones.
        let v1 = hint(&request("1764000000", false, &other));
        for tried in [
            "string_to_sign with a newline after it",
            "the version 2 string",
            "the body itself",
            "a timestamp up to 5 seconds either side of X-TIMESTAMP",
            "X-TIMESTAMP's instant (2 seconds either side) written in unix milliseconds",
        ] {
            assert!(v1.contains(tried), "{tried}: {v1}");
        }
        assert!(!v1.contains("query") && !v1.contains("digest"), "{v1}");

        // RFC 3339 sent: no seconds-either-side guesses were made.
        let rfc = hint(&request("2025-11-24T16:00:00Z", false, &other));
        assert!(!rfc.contains("up to 5 seconds"), "{rfc}");
        assert!(
            rfc.contains("written in unix seconds or milliseconds"),
            "{rfc}"
        );

        // v2 with a query too long for the unit guesses: they are not claimed.
        let long_path = format!("/api/v1/sales-orders?q={}", "a".repeat(2000));
        let mut v2 = request("1764000000", true, &other);
        v2.path_and_query = &long_path;
        let v2 = hint(&v2);
        for tried in [
            "the version 1 string",
            "the path without its query, or with it percent-decoded",
            "the method in lower case",
            "of the body without spaces and line breaks, of the body with a space after each",
            "a timestamp up to 5 seconds either side of X-TIMESTAMP",
        ] {
            assert!(v2.contains(tried), "{tried}: {v2}");
        }
        assert!(!v2.contains("written in unix"), "{v2}");

        // A v2 GET has no body: only the digest guesses made for one are claimed.
        let mut get = request("1764000000", true, &other);
        (get.method, get.body) = ("GET", b"");
        let get = hint(&get);
        assert!(
            get.contains("the body digest in upper-case hex or base64;"),
            "{get}"
        );
        assert!(
            !get.contains("the body with a newline")
                && !get.contains("an empty body")
                && !get.contains("the body itself"),
            "{get}"
        );
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
                "SIGNED_TIMESTAMP_IN_OTHER_UNIT",
            ),
            (
                "2025-11-24T16:00:00Z",
                false,
                b64(&active.key, "acme|1764000000"),
                "SIGNED_TIMESTAMP_IN_OTHER_UNIT",
            ),
            (ts, false, b64(&old.key, "acme|1764000000"), "REVOKED_KEY"),
        ];
        for (timestamp, v2, signature, code) in &cases {
            let request = request(timestamp, *v2, signature);
            assert_eq!(mistake(&request, &keys), Some(*code), "{code}");
        }
    }

    #[test]
    fn unit_query_method_and_body_digest_mistakes_are_named() {
        let active = partner("key_active", false);
        let keys = [active.record.clone()];
        let b64 = |message: &str| STANDARD.encode(sign(&active.key, message.as_bytes()));
        let v2 = |timestamp: &str, method: &str, path: &str, digest: &str| {
            b64(&signature::string_to_sign_v2(
                "acme", timestamp, method, path, digest,
            ))
        };
        let digest = signature::body_digest(BODY);
        let pretty = br#"{"customer_code": "C"}"#;
        let with_query = |v2, signature: &str, path: &'static str| {
            let mut request = request("1764000000", v2, "");
            request.path_and_query = path;
            (request, signature.to_owned())
        };
        // A v2 create signed over another digest of its body.
        let signed_with_digest = |digest: &str| {
            with_query(
                true,
                &v2("1764000000", "POST", "/api/v1/sales-orders", digest),
                "/api/v1/sales-orders",
            )
        };
        let cases = [
            // Milliseconds signed, seconds sent: 1764000000 then 1764000001.387.
            (
                with_query(false, &b64("acme|1764000001387"), "/api/v1/sales-orders"),
                "SIGNED_TIMESTAMP_IN_OTHER_UNIT",
            ),
            (
                with_query(
                    true,
                    &v2("1764000000", "POST", "/api/v1/sales-orders", &digest),
                    "/api/v1/sales-orders?dry=1",
                ),
                "SIGNED_WITHOUT_QUERY",
            ),
            (
                with_query(
                    true,
                    &v2("1764000000", "POST", "/api/v1/sales-orders?q=a b", &digest),
                    "/api/v1/sales-orders?q=a%20b",
                ),
                "SIGNED_DECODED_QUERY",
            ),
            (
                with_query(
                    true,
                    &v2("1764000000", "post", "/api/v1/sales-orders", &digest),
                    "/api/v1/sales-orders",
                ),
                "SIGNED_LOWERCASE_METHOD",
            ),
            (
                signed_with_digest(&digest.to_uppercase()),
                "SIGNED_OTHER_BODY_DIGEST",
            ),
            (
                signed_with_digest(&signature::body_digest(pretty)),
                "SIGNED_OTHER_BODY_DIGEST",
            ),
            (
                signed_with_digest(&signature::body_digest(b"")),
                "SIGNED_OTHER_BODY_DIGEST",
            ),
            (
                with_query(false, &b64("acme|something else"), "/api/v1/sales-orders"),
                "SIGNED_OTHER_STRING",
            ),
            (
                with_query(false, "not base64!", "/api/v1/sales-orders"),
                "NOT_BASE64",
            ),
            (
                with_query(false, &STANDARD.encode([7u8; 64]), "/api/v1/sales-orders"),
                "SIGNATURE_WRONG_LENGTH",
            ),
        ];
        for ((mut request, signature), code) in cases {
            request.signature = &signature;
            assert_eq!(mistake(&request, &keys), Some(code), "{code}");
        }
        // Milliseconds sent, seconds signed.
        let signature = b64("acme|1764000000");
        let request = request("1764000001999", false, &signature);
        assert_eq!(
            mistake(&request, &keys),
            Some("SIGNED_TIMESTAMP_IN_OTHER_UNIT")
        );
    }

    #[test]
    fn the_recovered_digest_is_the_one_signed_and_only_for_the_key_that_signed() {
        let active = partner("key_active", false);
        let stranger = partner("key_stranger", false);
        let raw = sign(&active.key, b"acme|1764000000");
        assert_eq!(
            recover_digest(&active.record.spki_der, &raw),
            Some(sha256("acme|1764000000"))
        );
        assert_eq!(recover_digest(&stranger.record.spki_der, &raw), None);
        assert_eq!(recover_digest(&active.record.spki_der, &raw[1..]), None);
    }

    #[test]
    fn the_python_and_javascript_spacings_of_a_body_are_tried() {
        let pretty = "{\n  \"a\": [1, 2],\n  \"b\": \"x, y: z\"\n}";
        assert_eq!(respaced(pretty, "", ""), r#"{"a":[1,2],"b":"x, y: z"}"#);
        assert_eq!(
            respaced(r#"{"a":[1,2],"b":"q\"x, y"}"#, " ", " "),
            r#"{"a": [1, 2], "b": "q\"x, y"}"#
        );
    }

    #[test]
    fn a_signature_by_an_unknown_key_says_so_and_lists_the_keys_tried() {
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
        assert_eq!(diagnosis.mistake.unwrap().code, "UNKNOWN_KEY");
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
