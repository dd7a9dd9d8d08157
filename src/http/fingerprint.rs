//! What an `Idempotency-Key` remembers of its request: a digest of the JSON
//! body by meaning, so a retry whose members come in another order, with
//! other spacing, other string escapes or `1.50` for `1.5` is the same
//! request, and one whose values differ is not (SPEC, "Partner
//! self-service").
//!
//! Numbers are compared by their exact decimal value, read from their text:
//! never through a double, which would make `0.1000000000000000001` and
//! `0.1` the same amount.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{Digest, SHA256, digest};
use serde_json::value::RawValue;

/// Levels of nesting read by meaning; deeper values (no order has them)
/// are compared as written. Each level reads its subtree once more, so this
/// bounds the work to a few passes over the body.
const MAX_DEPTH: usize = 6;

/// The digest of `body`'s canonical form, or of its bytes when it is not
/// JSON: an Idempotency-Key sent is never ignored.
pub fn of_json(body: &[u8]) -> Digest {
    let canonical = std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
        .map(|value| {
            let mut canonical = Vec::with_capacity(body.len());
            write_canonical(value.get(), &mut canonical, 0);
            canonical
        });
    digest(&SHA256, canonical.as_deref().unwrap_or(body))
}

/// Objects with their members sorted by name, strings re-escaped one way,
/// numbers as their exact value, no spaces. A value serde cannot read into
/// Rust (a lone surrogate `"\ud800"`) or deeper than [`MAX_DEPTH`] is kept
/// as written.
fn write_canonical(text: &str, out: &mut Vec<u8>, depth: usize) {
    if canonical_value(text, out, depth).is_err() {
        out.extend_from_slice(text.as_bytes());
    }
}

fn canonical_value(text: &str, out: &mut Vec<u8>, depth: usize) -> serde_json::Result<()> {
    if depth >= MAX_DEPTH {
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    match text.as_bytes().first() {
        Some(b'{') => {
            let members: BTreeMap<String, &RawValue> = serde_json::from_str(text)?;
            let mark = out.len();
            out.push(b'{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if let Err(error) = serde_json::to_writer(&mut *out, name) {
                    out.truncate(mark);
                    return Err(error);
                }
                out.push(b':');
                write_canonical(value.get(), out, depth + 1);
            }
            out.push(b'}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item.get(), out, depth + 1);
            }
            out.push(b']');
        }
        Some(b'"') => {
            let string: String = serde_json::from_str(text)?;
            serde_json::to_writer(&mut *out, &string)?;
        }
        Some(b'-' | b'0'..=b'9') => out.extend_from_slice(exact_number(text).as_bytes()),
        // true, false, null.
        _ => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// A JSON number as `digits e exponent` with no leading or trailing zeros
/// in `digits`, so equal values read the same. An exponent too large to
/// add to keeps the number's own text (no such number is ever equal to a
/// differently written one in an order).
fn exact_number(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let Ok(mut exponent) = exponent.parse::<i64>() else {
        return text.to_owned();
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let Ok(fraction_len) = i64::try_from(fraction.len()) else {
        return text.to_owned();
    };
    exponent = exponent.saturating_sub(fraction_len);
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    if trimmed.is_empty() {
        return "0".to_owned();
    }
    let Ok(zeros) = i64::try_from(digits.len() - trimmed.len()) else {
        return text.to_owned();
    };
    exponent = exponent.saturating_add(zeros);
    format!("{}{trimmed}e{exponent}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        of_json(a.as_bytes()).as_ref() == of_json(b.as_bytes()).as_ref()
    }

    #[test]
    fn member_order_spacing_and_escapes_do_not_change_the_meaning() {
        assert!(same(
            r#"{"a": 1, "b": [{"x": "A", "y": null}]}"#,
            "{ \"b\" : [ { \"y\":null,\"x\":\"\\u0041\" } ] ,\n\"a\":1 }"
        ));
    }

    #[test]
    fn numbers_are_compared_by_exact_value() {
        for (a, b) in [
            ("1.5", "1.50"),
            ("15", "1.5e1"),
            ("0", "-0.000"),
            ("120", "1.2E+2"),
            ("0.001", "1e-3"),
        ] {
            assert!(same(a, b), "{a} = {b}");
        }
        for (a, b) in [
            ("0.1", "0.1000000000000000001"),
            ("1.5", "-1.5"),
            ("12345678901234567890", "12345678901234567891"),
        ] {
            assert!(!same(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn different_values_order_of_items_and_types_differ() {
        assert!(!same(r#"{"a": [1, 2]}"#, r#"{"a": [2, 1]}"#));
        assert!(!same(r#"{"a": "1"}"#, r#"{"a": 1}"#));
        assert!(!same(r#"{"a": 1}"#, r#"{"a": 1, "b": null}"#));
        assert!(!same("{\"a\": 1}", "{\"a\":  1}x"));
    }

    #[test]
    fn a_lone_surrogate_or_deep_nesting_is_kept_as_written_never_dropped() {
        assert!(same(
            r#"{"b": "\ud800", "a": 1}"#,
            r#"{"a": 1, "b": "\ud800"}"#
        ));
        assert!(!same(r#"{"a": "\ud800"}"#, r#"{"a": "\udc00"}"#));
        let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(100), "]".repeat(100));
        assert!(!same(&deep("1"), &deep("2")));
        assert!(same(&deep("1"), &deep("1")));
    }

    #[test]
    fn a_huge_exponent_costs_nothing_and_stays_itself() {
        assert_eq!(
            exact_number("1e99999999999999999999"),
            "1e99999999999999999999"
        );
        assert_eq!(exact_number("1e999999999"), "1e999999999");
    }
}
