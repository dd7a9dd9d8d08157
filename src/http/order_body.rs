//! The create body as JSON, read into a [`NewOrder`]: the raw JSON is walked
//! (so decimals keep their exact digits), unknown and server-owned fields are
//! refused by name, every field is checked against the domain's rules
//! (`domain::order::rules`), and every offending field is reported at once
//! with its path.

use serde_json::value::RawValue;

use super::error::FieldError;
use super::json_fields::Fields;
use crate::domain::order::MAX_PRODUCTS;
use crate::domain::{
    Address, Code, Currency, NewOrder, NewOrderLine, Notes, Quantity, SalesName, UnitPrice, Uom,
};

/// Why a create body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum OrderBodyError {
    /// Not JSON at all.
    Syntax(String),
    /// JSON, but some fields break the rules.
    Invalid(Vec<FieldError>),
}

/// Fields the partner sends on an order.
pub const ORDER_FIELDS: [&str; 7] = [
    "customer_code",
    "site_code",
    "sales_name",
    "address",
    "purchase_order_no",
    "currency",
    "products",
];
/// Fields the partner sends on a product line.
pub const PRODUCT_FIELDS: [&str; 5] = ["product_code", "quantity", "uom", "unit_price", "notes"];
/// Fields only the server sets; naming them in a request is refused, not ignored.
const SERVER_ORDER_FIELDS: [&str; 9] = [
    "id",
    "order_number",
    "client_id",
    "status",
    "status_reason",
    "total_amount",
    "version",
    "created_at",
    "updated_at",
];
const SERVER_PRODUCT_FIELDS: [&str; 2] = ["line_no", "line_amount"];

/// Reads and checks a create body: every offending field is reported at once,
/// with its path. An order without a `currency` is in `default_currency`.
pub fn parse(body: &[u8], default_currency: &Currency) -> Result<NewOrder, OrderBodyError> {
    // Syntax first, so a broken document gets a parser message, not field noise.
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| OrderBodyError::Syntax(format!("request body is not valid JSON: {e}")))?;
    let mut errors = Vec::new();
    let Some(object) = Fields::read(raw, "", &mut errors) else {
        return Err(OrderBodyError::Invalid(errors));
    };
    object.refuse_others(&ORDER_FIELDS, &SERVER_ORDER_FIELDS, &mut errors);
    if object.get("orders").is_some() {
        // A batch sent to the single create: say where it goes, not only
        // that every field of an order is missing.
        return Err(OrderBodyError::Invalid(vec![FieldError::new(
            "orders",
            "is not a field of one order; send several orders to POST /api/v1/sales-orders/batch",
        )]));
    }

    let customer_code = object.text::<Code>("customer_code", &mut errors);
    let site_code = object.text::<Code>("site_code", &mut errors);
    let sales_name = object.text::<SalesName>("sales_name", &mut errors);
    let address = object.text::<Address>("address", &mut errors);
    let purchase_order_no = object.optional_text::<Code>("purchase_order_no", &mut errors);
    let currency = parse_currency(object.get("currency"), default_currency, &mut errors);
    let products = parse_products(object.get("products"), &mut errors);

    match (
        customer_code,
        site_code,
        sales_name,
        address,
        currency,
        products,
    ) {
        (
            Some(customer_code),
            Some(site_code),
            Some(sales_name),
            Some(address),
            Some(currency),
            Some(products),
        ) if errors.is_empty() => Ok(NewOrder {
            customer_code,
            site_code,
            sales_name,
            address,
            purchase_order_no: purchase_order_no.flatten(),
            currency,
            products,
            livemode: true,
        }),
        _ => Err(OrderBodyError::Invalid(errors)),
    }
}

/// `currency`: absent, null or blank means the default.
fn parse_currency(
    raw: Option<&RawValue>,
    default: &Currency,
    errors: &mut Vec<FieldError>,
) -> Option<Currency> {
    let Some(raw) = raw else {
        return Some(default.clone());
    };
    let Ok(sent) = serde_json::from_str::<Option<String>>(raw.get()) else {
        errors.push(FieldError::new("currency", "must be a string"));
        return None;
    };
    match sent.as_deref().map(str::trim) {
        None | Some("") => Some(default.clone()),
        Some(code) => Currency::parse(code)
            .map_err(|message| errors.push(FieldError::new("currency", message)))
            .ok(),
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
    let product_code = object.text::<Code>("product_code", errors);
    let quantity = object
        .decimal("quantity", true, errors)
        .flatten()
        .and_then(|quantity| object.checked("quantity", Quantity::parse(quantity), errors));
    let uom = object.optional_text::<Uom>("uom", errors);
    let unit_price = object
        .decimal("unit_price", false, errors)
        .and_then(|price| match price {
            Some(price) => object
                .checked("unit_price", UnitPrice::parse(price), errors)
                .map(Some),
            None => Some(None),
        });
    let notes = object.optional_text::<Notes>("notes", errors);
    Some(NewOrderLine {
        product_code: product_code?,
        quantity: quantity?,
        uom: uom?,
        unit_price: unit_price?,
        notes: notes?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::{ORDER_TEXT, PRODUCT_TEXT};

    /// Orders in the default currency, as `serve` starts without a flag.
    fn parse(body: &[u8]) -> Result<NewOrder, OrderBodyError> {
        super::parse(body, &Currency::default())
    }

    #[test]
    fn an_order_without_currency_is_in_the_default_one_and_a_bad_code_is_named() {
        let usd = Currency::parse("USD").unwrap();
        let body = |currency: &str| VALID.replacen('{', &format!("{{{currency}"), 1);
        assert_eq!(super::parse(VALID.as_bytes(), &usd).unwrap().currency, usd);
        assert_eq!(
            super::parse(body(r#""currency": null,"#).as_bytes(), &usd)
                .unwrap()
                .currency,
            usd
        );
        assert_eq!(
            parse(body(r#""currency": " EUR ","#).as_bytes())
                .unwrap()
                .currency
                .as_str(),
            "EUR"
        );
        for (sent, message) in [
            (r#""currency": "eur","#, "three capital letters"),
            (r#""currency": "XYZ","#, "not an ISO 4217 currency code"),
            (r#""currency": 840,"#, "must be a string"),
        ] {
            let errors = errors_of(&body(sent));
            assert_eq!(errors.len(), 1, "{sent}: {errors:?}");
            assert_eq!(errors[0].field, "currency");
            assert!(errors[0].message.contains(message), "{sent}: {errors:?}");
        }
    }

    fn errors_of(body: &str) -> Vec<FieldError> {
        match parse(body.as_bytes()) {
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
                let rejects = |value: &str| match parse(with_field(product, name, value).as_bytes())
                {
                    Err(OrderBodyError::Invalid(errors)) => {
                        errors.iter().any(|error| error.field == path)
                    }
                    _ => false,
                };
                let accepts =
                    |value: &str| parse(with_field(product, name, value).as_bytes()).is_ok();
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

    #[test]
    fn order_text_is_stored_in_nfc() {
        let body = VALID
            .replace("John Doe", r"Jose\u0301")
            .replace("PO-1", r"PO-A\u030a");
        let order = parse(body.as_bytes()).unwrap();
        assert_eq!(order.sales_name.as_str(), "Jos\u{e9}");
        assert_eq!(
            order.purchase_order_no.as_ref().map(Code::as_str),
            Some("PO-\u{c5}")
        );
    }

    #[test]
    fn a_valid_order_is_trimmed_and_exact() {
        let order = parse(VALID.as_bytes()).unwrap();
        assert_eq!(order.customer_code.as_str(), "CUST-001");
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
        assert!(matches!(parse(b"{\"a\":"), Err(OrderBodyError::Syntax(_))));
        assert!(matches!(parse(b"[1]"), Err(OrderBodyError::Invalid(_))));
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
        assert!(parse(with("1000000000", "0").as_bytes()).is_ok());
        assert!(parse(with("0.0001", "999999999999999.9999").as_bytes()).is_ok());
        assert!(parse(with("1000000000.0001", "0").as_bytes()).is_err());
        assert!(parse(with("1", "1000000000000000").as_bytes()).is_err());
    }
}
