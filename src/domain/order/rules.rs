//! The rules an order's fields follow: text lengths and characters (in
//! Unicode NFC), quantity and price bounds. The create-body parser at the
//! HTTP edge (`http::order_body`) applies them and the OpenAPI document states
//! them, both from these definitions.

use crate::domain::decimal::Decimal;

/// Lines an order holds at most.
pub const MAX_PRODUCTS: usize = 1000;

/// Length and character rules for one text field. Values are put in Unicode
/// NFC and trimmed first, so text that looks the same is stored the same (and
/// a purchase order number typed either way is one duplicate); a required
/// field must not be blank, an optional blank one counts as absent.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// Counted as sent or in NFC, as stored, whichever is fewer.
    pub max_chars: usize,
    /// Newlines and tabs are allowed in free text (addresses, notes), never in codes.
    pub multiline: bool,
    /// Invisible formatting characters (Unicode category Cf: zero-width
    /// spaces, direction overrides, tag characters) are allowed in free text,
    /// where scripts need them (the zero-width non-joiner in Persian, the
    /// joiner in emoji), never in codes, where they make two codes look
    /// alike yet differ.
    pub formatting: bool,
}

/// A character a text field refuses, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Control,
    Formatting,
}

impl Text {
    const fn code(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: false,
            formatting: false,
        }
    }
    const fn line(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: false,
            formatting: true,
        }
    }
    const fn multiline(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: true,
            formatting: true,
        }
    }

    /// Whether and why this rule refuses `c`.
    fn refuses(&self, c: char) -> Option<Refused> {
        if c.is_control() && !(self.multiline && matches!(c, '\n' | '\r' | '\t')) {
            Some(Refused::Control)
        } else if !self.formatting && is_formatting(c) {
            Some(Refused::Formatting)
        } else {
            None
        }
    }

    /// `sent` as stored (NFC, trimmed), `None` when blank, or why it breaks
    /// this rule.
    pub fn check(&self, sent: &str) -> Result<Option<String>, String> {
        let value = nfc(sent).trim().to_owned();
        if value.is_empty() {
            return Ok(None);
        }
        let sent_chars = sent.trim().chars().count();
        // Within the limit as sent (what the document's maxLength counts) or
        // as stored: NFC mostly shortens text, and the few characters it
        // lengthens must not turn a documented-valid value into a refusal.
        let chars = value.chars().count().min(sent_chars);
        if chars > self.max_chars {
            return Err(format!(
                "must be at most {} characters, got {chars}",
                self.max_chars
            ));
        }
        if value
            .chars()
            .any(|c| self.refuses(c) == Some(Refused::Control))
        {
            let message = if self.multiline {
                "must not contain control characters other than newlines and tabs"
            } else {
                "must not contain control characters"
            };
            return Err(message.to_owned());
        }
        let mut formatting: Vec<String> = Vec::new();
        for c in value
            .chars()
            .filter(|c| self.refuses(*c) == Some(Refused::Formatting))
        {
            let code = format!("U+{:04X}", u32::from(c));
            if !formatting.contains(&code) {
                formatting.push(code);
            }
        }
        if !formatting.is_empty() {
            return Err(format!(
                "must not contain invisible formatting characters ({})",
                formatting.join(", ")
            ));
        }
        Ok(Some(value))
    }

    /// The rule as an ECMA-262 regular expression, for the OpenAPI document:
    /// no control characters (but newlines and tabs where allowed), no
    /// formatting characters where refused and, when `required`, at least one
    /// character that is not white space.
    ///
    /// Only the formatting characters of the Basic Multilingual Plane are
    /// listed: the others (U+110BD, tag characters U+E0001 and
    /// U+E0020–U+E007F, …) have no escape that ECMA-262 without the `u` flag,
    /// with it, and Python's `re` (which schema fuzzers use) all read the same
    /// way. The document is thus a little looser than the validator there.
    pub fn pattern(&self, required: bool) -> String {
        const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
        // Controls except tab, newline and carriage return.
        const MULTILINE_CONTROL: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";
        let control = if self.multiline {
            MULTILINE_CONTROL
        } else {
            CONTROL
        };
        let formatting = if self.formatting {
            ""
        } else {
            FORMATTING_IN_BMP.as_str()
        };
        let allowed = format!("[^{control}{formatting}]");
        if required {
            format!("^{allowed}*[^{WHITE_SPACE}{CONTROL}{formatting}]{allowed}*$")
        } else {
            format!("^{allowed}*$")
        }
    }
}

/// Unicode general category Cf (Format).
pub fn is_formatting(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// The formatting characters of the Basic Multilingual Plane as ranges of a
/// regular-expression class (`\u00ad\u0600-\u0605…`), from the same table the
/// validator reads.
static FORMATTING_IN_BMP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in ('\0'..='\u{ffff}').filter(|c| is_formatting(*c)) {
        let code = u32::from(c);
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == code => *last = code,
            _ => ranges.push((code, code)),
        }
    }
    ranges
        .iter()
        .map(|&(first, last)| match last - first {
            0 => format!(r"\u{first:04x}"),
            1 => format!(r"\u{first:04x}\u{last:04x}"),
            _ => format!(r"\u{first:04x}-\u{last:04x}"),
        })
        .collect()
});

/// The characters `str::trim` removes (Unicode White_Space), spelled out for a
/// regular expression: engines disagree on what `\s` means.
pub const WHITE_SPACE: &str =
    r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

pub const CODE: Text = Text::code(64);
pub const SALES_NAME: Text = Text::line(200);
pub const ADDRESS: Text = Text::multiline(1000);
pub const UOM: Text = Text::code(16);
pub const NOTES: Text = Text::multiline(500);

/// Each text field of an order with its rule and whether it is required:
/// the create-body parser applies these and the OpenAPI document states them.
pub const ORDER_TEXT: [(&str, Text, bool); 5] = [
    ("customer_code", CODE, true),
    ("site_code", CODE, true),
    ("sales_name", SALES_NAME, true),
    ("address", ADDRESS, true),
    ("purchase_order_no", CODE, false),
];
/// The same for a product line.
pub const PRODUCT_TEXT: [(&str, Text, bool); 3] = [
    ("product_code", CODE, true),
    ("uom", UOM, false),
    ("notes", NOTES, false),
];
/// The largest quantity of a line.
pub const MAX_QUANTITY: i64 = 1_000_000_000;
/// Unit prices must stay below this.
pub const PRICE_LIMIT: i64 = 1_000_000_000_000_000;
/// Fraction digits allowed in quantities and prices.
pub const FRACTION_DIGITS: i64 = 4;

/// A line's quantity: more than 0, at most [`MAX_QUANTITY`], at most
/// [`FRACTION_DIGITS`] fraction digits.
pub fn check_quantity(quantity: &Decimal) -> Result<(), String> {
    if !quantity.is_positive() {
        Err("must be greater than 0".into())
    } else if quantity > &Decimal::from_integer(MAX_QUANTITY) {
        Err(format!("must be at most {MAX_QUANTITY}"))
    } else if quantity.fraction_digits() > FRACTION_DIGITS {
        Err(format!(
            "must have at most {FRACTION_DIGITS} fraction digits"
        ))
    } else {
        Ok(())
    }
}

/// A line's unit price: at least 0, below [`PRICE_LIMIT`], at most
/// [`FRACTION_DIGITS`] fraction digits.
pub fn check_unit_price(price: &Decimal) -> Result<(), String> {
    if price.is_negative() {
        Err("must be at least 0".into())
    } else if price >= &Decimal::from_integer(PRICE_LIMIT) {
        Err(format!("must be less than {PRICE_LIMIT}"))
    } else if price.fraction_digits() > FRACTION_DIGITS {
        Err(format!(
            "must have at most {FRACTION_DIGITS} fraction digits"
        ))
    } else {
        Ok(())
    }
}

/// `text` in Unicode Normalization Form C, the form order text is stored in:
/// a lookup by a partner's text must normalise it the same way. Most text
/// already is NFC, and is then only checked, not copied.
pub fn nfc(text: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if unicode_normalization::is_nfc(text) {
        text.into()
    } else {
        text.nfc().collect::<String>().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document's pattern and the validator refuse the same characters
    /// (outside the BMP only the validator can say it: see `Text::pattern`).
    #[test]
    fn the_published_patterns_refuse_exactly_the_characters_the_validator_refuses() {
        for rule in [CODE, SALES_NAME, ADDRESS] {
            let pattern = regex::Regex::new(&rule.pattern(true)).unwrap();
            for c in '\0'..='\u{ffff}' {
                assert_eq!(
                    pattern.is_match(&format!("a{c}b")),
                    rule.refuses(c).is_none(),
                    "{rule:?} and U+{:04X}",
                    u32::from(c)
                );
            }
        }
        assert!(FORMATTING_IN_BMP.starts_with(r"\u00ad\u0600-\u0605"));
        assert!(FORMATTING_IN_BMP.contains(r"\u200b-\u200f\u202a-\u202e"));
    }

    #[test]
    fn quantities_and_prices_are_bounded_as_spec_says() {
        let d = |text: &str| Decimal::parse_stored(text).unwrap();
        assert!(check_quantity(&d("0.0001")).is_ok());
        assert!(check_quantity(&d("0")).is_err());
        assert!(check_quantity(&d("1000000000")).is_ok());
        assert!(check_quantity(&d("1000000000.0001")).is_err());
        assert!(check_quantity(&d("1.00001")).is_err());
        assert!(check_unit_price(&d("0")).is_ok());
        assert!(check_unit_price(&d("-0.01")).is_err());
        assert!(check_unit_price(&d("999999999999999.9999")).is_ok());
        assert!(check_unit_price(&d("1000000000000000")).is_err());
    }
}
