//! The fields of a new order as types that hold only valid values: each is
//! made by checking what was sent against its rule (`rules`), so an order
//! assembled from them cannot break one.

use std::fmt;

use super::rules::{self, Text};
use crate::domain::decimal::Decimal;

/// A text field checked against its rule: as stored (NFC, trimmed), never
/// blank. Its value is private to this module, so `parse` is the only way
/// to make one.
pub trait TextField: Sized {
    const RULE: Text;

    /// The value as it will be stored, `None` when blank, or why `sent`
    /// breaks the rule.
    fn parse(sent: &str) -> Result<Option<Self>, String>;
}

/// Declares a text type held to one rule; the types differ only in it.
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl TextField for $name {
            const RULE: Text = $rule;

            fn parse(sent: &str) -> Result<Option<Self>, String> {
                Ok(Self::RULE.check(sent)?.map(Self))
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_field!(
    /// A customer, site, product or purchase-order code.
    Code,
    rules::CODE
);
text_field!(
    /// The salesperson's name: one line.
    SalesName,
    rules::SALES_NAME
);
text_field!(
    /// The delivery address: may span lines.
    Address,
    rules::ADDRESS
);
text_field!(
    /// A unit of measure.
    Uom,
    rules::UOM
);
text_field!(
    /// Free notes on a line: may span lines.
    Notes,
    rules::NOTES
);

/// A line's quantity: more than 0, within the limits of `rules::check_quantity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity(Decimal);

impl Quantity {
    pub fn parse(value: Decimal) -> Result<Self, String> {
        rules::check_quantity(&value).map(|()| Self(value))
    }

    pub fn get(&self) -> &Decimal {
        &self.0
    }
}

/// A line's unit price: at least 0, within the limits of `rules::check_unit_price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPrice(Decimal);

impl UnitPrice {
    pub fn parse(value: Decimal) -> Result<Self, String> {
        rules::check_unit_price(&value).map(|()| Self(value))
    }

    pub fn get(&self) -> &Decimal {
        &self.0
    }
}

/// An order's currency: an ISO 4217 code such as `IDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(&'static str);

impl Currency {
    /// Three capital letters naming a currency of ISO 4217 (trimmed first,
    /// as every text field is).
    pub fn parse(sent: &str) -> Result<Self, String> {
        let code = sent.trim();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(
                "must be an ISO 4217 currency code: three capital letters, e.g. IDR".into(),
            );
        }
        iso_currency::Currency::from_code(code)
            .map(|currency| Self(currency.code()))
            .ok_or_else(|| format!("{code} is not an ISO 4217 currency code"))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// Every code [`Currency::parse`] takes, for the API document.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        use iso_currency::IntoEnumIterator;
        iso_currency::Currency::iter().map(|currency| currency.code())
    }
}

impl Default for Currency {
    /// SPEC's default: the Indonesian rupiah.
    fn default() -> Self {
        Self("IDR")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_currency_is_an_iso_4217_code_in_capitals() {
        assert_eq!(Currency::parse(" USD ").unwrap().as_str(), "USD");
        assert_eq!(Currency::default().as_str(), "IDR");
        for refused in ["usd", "US", "USDT", "U$D", ""] {
            assert!(
                Currency::parse(refused)
                    .unwrap_err()
                    .contains("three capital letters"),
                "{refused}"
            );
        }
        assert_eq!(
            Currency::parse("ABC").unwrap_err(),
            "ABC is not an ISO 4217 currency code"
        );
        // The codes the API document lists are the ones taken.
        let codes: Vec<&str> = Currency::codes().collect();
        assert!(codes.len() > 150 && codes.contains(&"IDR"), "{codes:?}");
        assert!(codes.iter().all(|code| Currency::parse(code).is_ok()));
    }
}
