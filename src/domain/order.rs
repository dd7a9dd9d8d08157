//! Sales orders: the create body's rules, and the order as the API returns it.
//!
//! `NewOrder::parse` is the one place a create body is validated. It reads the
//! raw JSON (so decimals keep their exact digits), checks every field, and
//! reports every offending field at once with its path.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::decimal::{Decimal, DecimalError};

pub const MAX_PRODUCTS: usize = 1000;

/// One offending field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `products[0].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a create body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum OrderBodyError {
    /// Not JSON at all.
    Syntax(String),
    /// JSON, but some fields break the rules.
    Invalid(Vec<FieldError>),
}

/// A validated order, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub customer_code: String,
    pub site_code: String,
    pub sales_name: String,
    pub address: String,
    pub purchase_order_no: Option<String>,
    pub products: Vec<NewOrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderLine {
    pub product_code: String,
    pub quantity: Decimal,
    pub uom: Option<String>,
    pub unit_price: Option<Decimal>,
    pub notes: Option<String>,
}

impl NewOrderLine {
    /// `quantity × unit_price`, exact, when the line is priced.
    pub fn line_amount(&self) -> Option<Decimal> {
        self.unit_price
            .as_ref()
            .map(|price| self.quantity.times(price))
    }
}

impl NewOrder {
    /// The order total: `None` unless every line carries a price.
    pub fn total_amount(&self) -> Option<Decimal> {
        let amounts: Option<Vec<Decimal>> = self
            .products
            .iter()
            .map(NewOrderLine::line_amount)
            .collect();
        amounts.map(|amounts| Decimal::sum(&amounts))
    }

    /// The order as stored on arrival, whatever the store: `seq` is its
    /// position, which also gives the order number.
    pub fn received(&self, id: String, seq: i64, client_id: &str, created_at: String) -> Order {
        let products = self
            .products
            .iter()
            .enumerate()
            .map(|(index, line)| OrderLine {
                line_no: u32::try_from(index + 1).unwrap_or(u32::MAX),
                product_code: line.product_code.clone(),
                quantity: line.quantity.clone(),
                uom: line.uom.clone(),
                unit_price: line.unit_price.clone(),
                line_amount: line.line_amount(),
                notes: line.notes.clone(),
            })
            .collect();
        Order {
            id,
            order_number: super::ids::order_number(seq),
            client_id: client_id.to_owned(),
            status: OrderStatus::Received,
            status_reason: None,
            customer_code: self.customer_code.clone(),
            site_code: self.site_code.clone(),
            sales_name: self.sales_name.clone(),
            address: self.address.clone(),
            purchase_order_no: self.purchase_order_no.clone(),
            products,
            total_amount: self.total_amount(),
            created_at: created_at.clone(),
            updated_at: created_at,
        }
    }
}

/// Fields the partner sends on an order.
pub const ORDER_FIELDS: [&str; 6] = [
    "customer_code",
    "site_code",
    "sales_name",
    "address",
    "purchase_order_no",
    "products",
];
/// Fields the partner sends on a product line.
pub const PRODUCT_FIELDS: [&str; 5] = ["product_code", "quantity", "uom", "unit_price", "notes"];
/// Fields only the server sets; naming them in a request is refused, not ignored.
const SERVER_ORDER_FIELDS: [&str; 8] = [
    "id",
    "order_number",
    "client_id",
    "status",
    "status_reason",
    "total_amount",
    "created_at",
    "updated_at",
];
const SERVER_PRODUCT_FIELDS: [&str; 2] = ["line_no", "line_amount"];

impl NewOrder {
    pub fn parse(body: &[u8]) -> Result<Self, OrderBodyError> {
        // Syntax first, so a broken document gets a parser message, not field noise.
        let raw: &RawValue = serde_json::from_slice(body)
            .map_err(|e| OrderBodyError::Syntax(format!("request body is not valid JSON: {e}")))?;
        let mut errors = Vec::new();
        let Some(object) = Fields::read(raw, "", &mut errors) else {
            return Err(OrderBodyError::Invalid(errors));
        };
        object.refuse_others(&ORDER_FIELDS, &SERVER_ORDER_FIELDS, &mut errors);

        let customer_code = object.text("customer_code", CODE, &mut errors);
        let site_code = object.text("site_code", CODE, &mut errors);
        let sales_name = object.text("sales_name", SALES_NAME, &mut errors);
        let address = object.text("address", ADDRESS, &mut errors);
        let purchase_order_no = object.optional_text("purchase_order_no", CODE, &mut errors);
        let products = parse_products(object.get("products"), &mut errors);

        match (customer_code, site_code, sales_name, address, products) {
            (
                Some(customer_code),
                Some(site_code),
                Some(sales_name),
                Some(address),
                Some(products),
            ) if errors.is_empty() => Ok(Self {
                customer_code,
                site_code,
                sales_name,
                address,
                purchase_order_no: purchase_order_no.flatten(),
                products,
            }),
            _ => Err(OrderBodyError::Invalid(errors)),
        }
    }
}

fn parse_products(
    raw: Option<&RawValue>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<NewOrderLine>> {
    let raw = match raw {
        Some(raw) if raw.get() != "null" => raw,
        _ => {
            errors.push(FieldError::new("products", "is required"));
            return None;
        }
    };
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        errors.push(FieldError::new("products", "must be an array of products"));
        return None;
    };
    if items.is_empty() {
        errors.push(FieldError::new(
            "products",
            "must contain at least 1 product",
        ));
        return None;
    }
    if items.len() > MAX_PRODUCTS {
        errors.push(FieldError::new(
            "products",
            format!(
                "must contain at most {MAX_PRODUCTS} products, got {}",
                items.len()
            ),
        ));
        return None;
    }
    let before = errors.len();
    let lines: Vec<Option<NewOrderLine>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_product(item, &format!("products[{index}]"), errors))
        .collect();
    if errors.len() > before {
        return None;
    }
    lines.into_iter().collect()
}

fn parse_product(raw: &RawValue, path: &str, errors: &mut Vec<FieldError>) -> Option<NewOrderLine> {
    let object = Fields::read(raw, path, errors)?;
    object.refuse_others(&PRODUCT_FIELDS, &SERVER_PRODUCT_FIELDS, errors);
    let product_code = object.text("product_code", CODE, errors);
    let quantity = object.decimal("quantity", true, errors).flatten();
    let uom = object.optional_text("uom", UOM, errors);
    let unit_price = object.decimal("unit_price", false, errors);
    let notes = object.optional_text("notes", NOTES, errors);

    if let Some(quantity) = &quantity {
        if !quantity.is_positive() {
            errors.push(object.error("quantity", "must be greater than 0"));
        } else if quantity > &Decimal::from_integer(MAX_QUANTITY) {
            errors.push(object.error("quantity", format!("must be at most {MAX_QUANTITY}")));
        } else if quantity.fraction_digits() > FRACTION_DIGITS {
            errors.push(object.error(
                "quantity",
                format!("must have at most {FRACTION_DIGITS} fraction digits"),
            ));
        }
    }
    if let Some(Some(price)) = &unit_price {
        if price.is_negative() {
            errors.push(object.error("unit_price", "must be at least 0"));
        } else if price >= &Decimal::from_integer(PRICE_LIMIT) {
            errors.push(object.error("unit_price", format!("must be less than {PRICE_LIMIT}")));
        } else if price.fraction_digits() > FRACTION_DIGITS {
            errors.push(object.error(
                "unit_price",
                format!("must have at most {FRACTION_DIGITS} fraction digits"),
            ));
        }
    }
    Some(NewOrderLine {
        product_code: product_code?,
        quantity: quantity?,
        uom: uom?,
        unit_price: unit_price?,
        notes: notes?,
    })
}

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
fn is_formatting(c: char) -> bool {
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

const CODE: Text = Text::code(64);
const SALES_NAME: Text = Text::line(200);
const ADDRESS: Text = Text::multiline(1000);
const UOM: Text = Text::code(16);
const NOTES: Text = Text::multiline(500);

/// Each text field of an order with its rule and whether it is required:
/// `NewOrder::parse` applies these and the OpenAPI document states them.
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

/// A JSON object's members with their raw values, in document order.
struct Fields<'a> {
    path: String,
    members: Vec<(String, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    fn read(raw: &'a RawValue, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        let where_ = if path.is_empty() {
            "request body"
        } else {
            path
        };
        match serde_json::from_str::<Members<'a>>(raw.get()) {
            Ok(Members(members)) => {
                let mut seen = std::collections::HashSet::new();
                for (name, _) in &members {
                    if !seen.insert(name.as_str()) {
                        errors.push(FieldError::new(join(path, name), "appears more than once"));
                    }
                }
                Some(Self {
                    path: path.to_owned(),
                    members,
                })
            }
            Err(_) => {
                let field = if path.is_empty() { "" } else { path };
                errors.push(FieldError::new(
                    field,
                    format!("{where_} must be a JSON object"),
                ));
                None
            }
        }
    }

    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }

    fn error(&self, name: &str, message: impl Into<String>) -> FieldError {
        FieldError::new(join(&self.path, name), message)
    }

    fn refuse_others(&self, allowed: &[&str], server_owned: &[&str], errors: &mut Vec<FieldError>) {
        for (name, _) in &self.members {
            if allowed.contains(&name.as_str()) {
                continue;
            }
            let message = if server_owned.contains(&name.as_str()) {
                "is set by the server and cannot be sent".to_string()
            } else {
                format!(
                    "is not a known field; expected one of: {}",
                    allowed.join(", ")
                )
            };
            errors.push(self.error(name, message));
        }
    }

    /// A required text field, trimmed.
    fn text(&self, name: &str, rule: Text, errors: &mut Vec<FieldError>) -> Option<String> {
        match self.optional_text(name, rule, errors) {
            Some(Some(value)) => Some(value),
            Some(None) => {
                errors.push(self.error(name, "is required"));
                None
            }
            None => None,
        }
    }

    /// An optional text field: `Some(None)` when absent, null or blank, `None` when invalid.
    fn optional_text(
        &self,
        name: &str,
        rule: Text,
        errors: &mut Vec<FieldError>,
    ) -> Option<Option<String>> {
        let Some(raw) = self.get(name) else {
            return Some(None);
        };
        let Ok(value) = serde_json::from_str::<Option<String>>(raw.get()) else {
            errors.push(self.error(name, "must be a string"));
            return None;
        };
        let Some((value, sent_chars)) = value
            .map(|v| (nfc(&v).trim().to_owned(), v.trim().chars().count()))
            .filter(|(v, _)| !v.is_empty())
        else {
            return Some(None);
        };
        // Within the limit as sent (what the document's maxLength counts) or
        // as stored: NFC mostly shortens text, and the few characters it
        // lengthens must not turn a documented-valid value into a refusal.
        let chars = value.chars().count().min(sent_chars);
        if chars > rule.max_chars {
            errors.push(self.error(
                name,
                format!("must be at most {} characters, got {chars}", rule.max_chars),
            ));
            return None;
        }
        if value
            .chars()
            .any(|c| rule.refuses(c) == Some(Refused::Control))
        {
            let message = if rule.multiline {
                "must not contain control characters other than newlines and tabs"
            } else {
                "must not contain control characters"
            };
            errors.push(self.error(name, message));
            return None;
        }
        let mut formatting: Vec<String> = Vec::new();
        for c in value
            .chars()
            .filter(|c| rule.refuses(*c) == Some(Refused::Formatting))
        {
            let code = format!("U+{:04X}", u32::from(c));
            if !formatting.contains(&code) {
                formatting.push(code);
            }
        }
        if !formatting.is_empty() {
            errors.push(self.error(
                name,
                format!(
                    "must not contain invisible formatting characters ({})",
                    formatting.join(", ")
                ),
            ));
            return None;
        }
        Some(Some(value))
    }

    /// A decimal field: `Some(None)` when optional and absent or null, `None` when invalid.
    fn decimal(
        &self,
        name: &str,
        required: bool,
        errors: &mut Vec<FieldError>,
    ) -> Option<Option<Decimal>> {
        match self.get(name) {
            Some(raw) if raw.get() != "null" => match Decimal::from_json(raw) {
                Ok(value) => Some(Some(value)),
                Err(DecimalError::NotANumber) => {
                    errors.push(self.error(name, "must be a decimal number"));
                    None
                }
                Err(DecimalError::OutOfRange) => {
                    errors.push(self.error(name, "is out of range"));
                    None
                }
            },
            _ if required => {
                errors.push(self.error(name, "is required"));
                None
            }
            _ => Some(None),
        }
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

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Object members in document order, duplicates kept so they can be reported.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Received,
    Accepted,
    Fulfilled,
    Rejected,
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Accepted => "accepted",
            Self::Fulfilled => "fulfilled",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    /// SPEC's state machine: `received → accepted → fulfilled`,
    /// `received → rejected`, `received → cancelled`. No other move.
    pub fn can_move_to(self, to: Self) -> bool {
        matches!(
            (self, to),
            (
                Self::Received,
                Self::Accepted | Self::Rejected | Self::Cancelled
            ) | (Self::Accepted, Self::Fulfilled)
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Received,
            Self::Accepted,
            Self::Fulfilled,
            Self::Rejected,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// Who changed an order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Partner,
    Operator,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Partner, Self::Operator]
            .into_iter()
            .find(|actor| actor.as_str() == text)
    }
}

/// One entry of an order's history: its creation or a status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderEvent {
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: Actor,
    /// The partner's client id, or the operator's user name.
    pub actor_name: String,
    /// `None` for the creation.
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub reason: Option<String>,
}

/// A sales order as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    /// Opaque, unguessable identifier.
    #[schema(example = "so_3f9c2a7e0b6d4c1a8e5f7a9b0c1d2e3f")]
    pub id: String,
    /// Human-readable, sequential number.
    #[schema(example = "SO-00000042")]
    pub order_number: String,
    pub client_id: String,
    pub status: OrderStatus,
    /// Why the order is in its status (set by the operator, e.g. on rejection).
    pub status_reason: Option<String>,
    pub customer_code: String,
    pub site_code: String,
    pub sales_name: String,
    pub address: String,
    pub purchase_order_no: Option<String>,
    pub products: Vec<OrderLine>,
    /// Sum of the line amounts; null unless every line has a unit price.
    pub total_amount: Option<Decimal>,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-24T08:27:49.024Z")]
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLine {
    /// 1-based position of the line in the order.
    pub line_no: u32,
    pub product_code: String,
    pub quantity: Decimal,
    pub uom: Option<String>,
    pub unit_price: Option<Decimal>,
    /// `quantity × unit_price`, exact; null when the line has no price.
    pub line_amount: Option<Decimal>,
    pub notes: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_moves_spec_allows_are_allowed() {
        use OrderStatus::*;
        let all = [Received, Accepted, Fulfilled, Rejected, Cancelled];
        let allowed: Vec<(OrderStatus, OrderStatus)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_move_to(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Received, Accepted),
                (Received, Rejected),
                (Received, Cancelled),
                (Accepted, Fulfilled)
            ]
        );
    }

    fn errors_of(body: &str) -> Vec<FieldError> {
        match NewOrder::parse(body.as_bytes()) {
            Err(OrderBodyError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    const VALID: &str = r#"{"customer_code":" CUST-001 ","site_code":"SITE-001","sales_name":"John Doe",
        "address":"Jl. Sudirman No. 1\nJakarta","purchase_order_no":"PO-1",
        "products":[{"product_code":"P-1","quantity":2,"unit_price":"0.1"},{"product_code":"P-2","quantity":"1.5"}]}"#;

    /// `VALID` with one field of the order (or of its first line) replaced.
    fn with_field(product: bool, name: &str, value: &str) -> String {
        let mut body: serde_json::Value = serde_json::from_str(VALID).unwrap();
        let target = if product {
            &mut body["products"][0]
        } else {
            &mut body
        };
        target[name] = serde_json::Value::String(value.to_owned());
        body.to_string()
    }

    #[test]
    fn the_published_text_rules_are_the_rules_the_validator_applies() {
        let tables = [(false, &ORDER_TEXT[..]), (true, &PRODUCT_TEXT[..])];
        for (product, table) in tables {
            for (name, rule, required) in table {
                let path = if product {
                    format!("products[0].{name}")
                } else {
                    (*name).to_owned()
                };
                let rejects = |value: &str| match NewOrder::parse(
                    with_field(product, name, value).as_bytes(),
                ) {
                    Err(OrderBodyError::Invalid(errors)) => {
                        errors.iter().any(|error| error.field == path)
                    }
                    _ => false,
                };
                let accepts = |value: &str| {
                    NewOrder::parse(with_field(product, name, value).as_bytes()).is_ok()
                };
                assert!(accepts(&"x".repeat(rule.max_chars)), "{path} at its length");
                assert!(
                    rejects(&"x".repeat(rule.max_chars + 1)),
                    "{path} over its length"
                );
                assert!(rejects("a\u{7}b"), "{path} with a control character");
                assert_eq!(accepts("a\nb"), rule.multiline, "{path} with a newline");
                assert_eq!(rejects(" \u{3000} "), *required, "{path} blank");
                for invisible in ["a\u{200b}b", "\u{202e}ab", "ab\u{e0041}"] {
                    assert_eq!(
                        rejects(invisible),
                        !rule.formatting,
                        "{path} with {invisible:?}"
                    );
                }
                // Counted as stored: x + combining acute is one character in NFC,
                // and one past the limit when nothing composes it.
                let composed = format!("{}e\u{301}", "x".repeat(rule.max_chars - 1));
                assert!(accepts(&composed), "{path} composed at its length");
                // NFC lengthens a few characters (U+0958 becomes two): within
                // the limit as sent is within the document's maxLength.
                let lengthened = format!("{}\u{958}", "x".repeat(rule.max_chars - 1));
                assert!(accepts(&lengthened), "{path} lengthened by NFC");
                let lone = format!("{}\u{301}", "x".repeat(rule.max_chars));
                assert!(
                    rejects(&lone),
                    "{path} with a mark that composes with nothing"
                );
            }
        }
    }

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
    fn order_text_is_stored_in_nfc() {
        let body = VALID
            .replace("John Doe", r"Jose\u0301")
            .replace("PO-1", r"PO-A\u030a");
        let order = NewOrder::parse(body.as_bytes()).unwrap();
        assert_eq!(order.sales_name, "Jos\u{e9}");
        assert_eq!(order.purchase_order_no.as_deref(), Some("PO-\u{c5}"));
    }

    #[test]
    fn a_valid_order_is_trimmed_and_exact() {
        let order = NewOrder::parse(VALID.as_bytes()).unwrap();
        assert_eq!(order.customer_code, "CUST-001");
        assert_eq!(order.products[0].line_amount().unwrap().to_string(), "0.2");
        assert_eq!(order.total_amount(), None, "second line has no price");
    }

    #[test]
    fn every_offending_field_is_listed_with_its_path() {
        let errors = errors_of(
            r#"{"customer_code":"","site_code":"a\u0001","sales_name":1,"address":"x",
                "products":[{"product_code":"P","quantity":0},{"product_code":"Q","quantity":1.23456,"unit_price":-1}]}"#,
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "customer_code",
                "site_code",
                "sales_name",
                "products[0].quantity",
                "products[1].quantity",
                "products[1].unit_price"
            ]
        );
    }

    #[test]
    fn a_misspelled_field_is_refused_not_dropped() {
        let body = VALID.replace("purchase_order_no", "purchase_order_number");
        let errors = errors_of(&body);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "purchase_order_number");
    }

    #[test]
    fn server_owned_fields_are_refused() {
        let body = VALID.replacen('{', r#"{"status":"accepted","id":"x","#, 1);
        let errors = errors_of(&body);
        assert!(
            errors
                .iter()
                .all(|e| e.message.contains("set by the server"))
        );
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn duplicate_members_are_refused() {
        let body = VALID.replacen('{', r#"{"customer_code":"other","#, 1);
        assert_eq!(errors_of(&body)[0].message, "appears more than once");
    }

    #[test]
    fn broken_json_is_a_syntax_error() {
        assert!(matches!(
            NewOrder::parse(b"{\"a\":"),
            Err(OrderBodyError::Syntax(_))
        ));
        assert!(matches!(
            NewOrder::parse(b"[1]"),
            Err(OrderBodyError::Invalid(_))
        ));
    }

    #[test]
    fn products_must_number_between_one_and_a_thousand() {
        let empty = VALID.split("\"products\"").next().unwrap().to_owned() + r#""products":[]}"#;
        assert_eq!(
            errors_of(&empty)[0].message,
            "must contain at least 1 product"
        );
        let line = r#"{"product_code":"P","quantity":1}"#;
        let many = format!(
            "{}\"products\":[{}]}}",
            VALID.split("\"products\"").next().unwrap(),
            vec![line; 1001].join(",")
        );
        assert!(errors_of(&many)[0].message.contains("at most 1000"));
    }

    #[test]
    fn quantity_and_price_bounds_are_inclusive_where_spec_says() {
        let with = |quantity: &str, price: &str| {
            VALID.replace(
                r#""quantity":2,"unit_price":"0.1""#,
                &format!(r#""quantity":{quantity},"unit_price":{price}"#),
            )
        };
        assert!(NewOrder::parse(with("1000000000", "0").as_bytes()).is_ok());
        assert!(NewOrder::parse(with("0.0001", "999999999999999.9999").as_bytes()).is_ok());
        assert!(NewOrder::parse(with("1000000000.0001", "0").as_bytes()).is_err());
        assert!(NewOrder::parse(with("1", "1000000000000000").as_bytes()).is_err());
    }
}
