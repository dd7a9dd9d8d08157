//! Exact decimal numbers for quantities and money.
//!
//! Parsed from the JSON text itself (never through `f64`), kept as arbitrary
//! precision, stored as text and written back as JSON numbers with exact digits,
//! so `0.1 × 3` is `0.3` and a 15-digit price survives a round trip.

use std::fmt;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// The largest exponent (`1e20`) accepted in a JSON number: beyond it a number is
/// far outside every range we allow, and expanding it would cost memory.
const MAX_EXPONENT: i64 = 20;
/// Longest numeric text accepted; real quantities and prices need < 25.
pub const MAX_TEXT_LEN: usize = 48;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(BigDecimal);

/// Why a JSON value is not an acceptable decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    NotANumber,
    OutOfRange,
}

impl Decimal {
    /// Parses a raw JSON value: a number (`1.25`) or a numeric string (`"1.25"`).
    pub fn from_json(raw: &RawValue) -> Result<Self, DecimalError> {
        let text = raw.get();
        if text.starts_with('"') {
            let inner: String = serde_json::from_str(text).map_err(|_| DecimalError::NotANumber)?;
            if !is_plain_decimal(&inner) {
                return Err(DecimalError::NotANumber);
            }
            Self::from_number_text(&inner)
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Self::from_number_text(text)
        } else {
            Err(DecimalError::NotANumber)
        }
    }

    /// Text that serde_json already accepted as a JSON number, or a plain decimal.
    fn from_number_text(text: &str) -> Result<Self, DecimalError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(DecimalError::OutOfRange);
        }
        if let Some(at) = text.find(['e', 'E']) {
            let exponent: i64 = text[at + 1..]
                .parse()
                .map_err(|_| DecimalError::NotANumber)?;
            if exponent.abs() > MAX_EXPONENT {
                return Err(DecimalError::OutOfRange);
            }
        }
        BigDecimal::from_str(text)
            .map(|value| Self(value.normalized()))
            .map_err(|_| DecimalError::NotANumber)
    }

    /// Parses text this service wrote itself (the store's columns).
    pub fn parse_stored(text: &str) -> Option<Self> {
        is_plain_decimal(text)
            .then(|| Self::from_number_text(text).ok())
            .flatten()
    }

    /// A value read back from a `numeric` column.
    pub fn from_bigdecimal(value: BigDecimal) -> Self {
        Self(value.normalized())
    }

    pub fn as_bigdecimal(&self) -> &BigDecimal {
        &self.0
    }

    pub fn from_integer(value: i64) -> Self {
        Self(BigDecimal::from(value))
    }

    /// Digits after the decimal point, ignoring trailing zeros (`1.50` has 1).
    pub fn fraction_digits(&self) -> i64 {
        self.0.fractional_digit_count().max(0)
    }

    pub fn is_positive(&self) -> bool {
        self.0.sign() == bigdecimal::num_bigint::Sign::Plus
    }

    pub fn is_negative(&self) -> bool {
        self.0.sign() == bigdecimal::num_bigint::Sign::Minus
    }

    /// The exact product; it never rounds, so it cannot fail either.
    pub fn times(&self, other: &Self) -> Self {
        Self((&self.0 * &other.0).normalized())
    }

    pub fn sum<'a>(values: impl IntoIterator<Item = &'a Self>) -> Self {
        let total = values
            .into_iter()
            .fold(BigDecimal::from(0), |acc, value| acc + &value.0);
        Self(total.normalized())
    }
}

/// `-?digits(.digits)?`: what a numeric string may look like.
fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_plain_string())
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}

impl Serialize for Decimal {
    /// A JSON number carrying the exact digits, not an `f64` approximation.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl utoipa::PartialSchema for Decimal {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some(
                "Exact decimal. Sent as a JSON number or a numeric string; returned as a JSON number with exact digits.",
            ))
            .examples([serde_json::json!(12.5)])
            .into()
    }
}

impl utoipa::ToSchema for Decimal {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Decimal, DecimalError> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        Decimal::from_json(&raw)
    }

    #[test]
    fn tenth_times_three_is_exactly_three_tenths() {
        let tenth = parse("0.1").unwrap();
        assert_eq!(tenth.times(&Decimal::from_integer(3)).to_string(), "0.3");
        assert_eq!(Decimal::sum([&tenth, &tenth, &tenth]).to_string(), "0.3");
    }

    #[test]
    fn numbers_and_numeric_strings_parse_to_the_same_value() {
        assert_eq!(parse("12.50").unwrap(), parse("\"12.5\"").unwrap());
        assert_eq!(parse("1e3").unwrap().to_string(), "1000");
    }

    #[test]
    fn fifteen_digit_prices_keep_every_digit() {
        let price = parse("999999999999999.9999").unwrap();
        assert_eq!(price.to_string(), "999999999999999.9999");
    }

    #[test]
    fn non_numbers_are_refused() {
        for bad in [
            "true", "null", "\"abc\"", "\"1e3\"", "\" 1\"", "\"1.\"", "[1]", "{}",
        ] {
            assert_eq!(parse(bad), Err(DecimalError::NotANumber), "{bad}");
        }
    }

    #[test]
    fn huge_exponents_are_refused_before_expansion() {
        assert_eq!(parse("1e999999999"), Err(DecimalError::OutOfRange));
        assert_eq!(parse("1e-999999999"), Err(DecimalError::OutOfRange));
    }

    #[test]
    fn serializes_as_a_json_number_with_exact_digits() {
        let value = parse("\"0.0001\"").unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), "0.0001");
    }

    #[test]
    fn fraction_digits_ignore_trailing_zeros() {
        assert_eq!(parse("1.50000").unwrap().fraction_digits(), 1);
        assert_eq!(parse("100").unwrap().fraction_digits(), 0);
    }
}
