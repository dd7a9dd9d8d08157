//! Sales orders: a validated new order and the order as stored and returned.
//! The rules its fields follow are in `rules`; the create body is read and
//! checked against them at the HTTP edge (`http::order_body`).

mod amendment;
mod fields;
mod rules;
mod status;

use serde::Serialize;
use utoipa::ToSchema;

use super::decimal::Decimal;

pub use amendment::{Amendment, FieldChange, LineChange, LineSummary};
pub use fields::{Address, Code, Currency, Notes, Quantity, SalesName, TextField, UnitPrice, Uom};
pub use rules::*;
pub use status::{Actor, OrderEvent, OrderStatus};

/// A validated order, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub customer_code: Code,
    pub site_code: Code,
    pub sales_name: SalesName,
    pub address: Address,
    pub purchase_order_no: Option<Code>,
    pub currency: Currency,
    pub products: Vec<NewOrderLine>,
    /// `false` for a sandbox partner's order (set from the partner, never
    /// from the body).
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderLine {
    pub product_code: Code,
    pub quantity: Quantity,
    pub uom: Option<Uom>,
    pub unit_price: Option<UnitPrice>,
    pub notes: Option<Notes>,
}

impl NewOrderLine {
    /// `quantity × unit_price`, exact, when the line is priced.
    pub fn line_amount(&self) -> Option<Decimal> {
        self.unit_price
            .as_ref()
            .map(|price| self.quantity.get().times(price.get()))
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
        Order {
            id,
            order_number: super::ids::order_number(seq),
            client_id: client_id.to_owned(),
            livemode: self.livemode,
            status: OrderStatus::Received,
            status_reason: None,
            customer_code: self.customer_code.to_string(),
            site_code: self.site_code.to_string(),
            sales_name: self.sales_name.to_string(),
            address: self.address.to_string(),
            purchase_order_no: self.purchase_order_no.as_ref().map(Code::to_string),
            currency: self.currency.to_string(),
            products: self.lines(),
            total_amount: self.total_amount(),
            version: 1,
            created_at: created_at.clone(),
            updated_at: created_at,
        }
    }

    /// `current` with this content instead of its own, changed at `at`: the
    /// next version, its identity, status and creation kept.
    pub fn replacing(&self, current: &Order, at: String) -> Order {
        let content = self.received(String::new(), 0, "", String::new());
        Order {
            id: current.id.clone(),
            order_number: current.order_number.clone(),
            client_id: current.client_id.clone(),
            livemode: current.livemode,
            status: current.status,
            status_reason: current.status_reason.clone(),
            version: current.version + 1,
            created_at: current.created_at.clone(),
            updated_at: at,
            ..content
        }
    }

    /// The lines as stored, numbered from 1.
    fn lines(&self) -> Vec<OrderLine> {
        self.products
            .iter()
            .enumerate()
            .map(|(index, line)| OrderLine {
                line_no: u32::try_from(index + 1).unwrap_or(u32::MAX),
                product_code: line.product_code.to_string(),
                quantity: line.quantity.get().clone(),
                uom: line.uom.as_ref().map(Uom::to_string),
                unit_price: line.unit_price.as_ref().map(|price| price.get().clone()),
                line_amount: line.line_amount(),
                notes: line.notes.as_ref().map(Notes::to_string),
            })
            .collect()
    }
}

#[cfg(test)]
impl NewOrder {
    /// A valid one-line order with `purchase_order_no` (if any), as the
    /// create-body parser would give it: for the store's tests.
    pub fn example(purchase_order_no: Option<&str>) -> Self {
        fn text<T: TextField>(value: &str) -> T {
            T::parse(value).unwrap().unwrap()
        }
        Self {
            customer_code: text("C"),
            site_code: text("S"),
            sales_name: text("N"),
            address: text("A"),
            purchase_order_no: purchase_order_no.map(text),
            currency: Currency::default(),
            livemode: true,
            products: vec![NewOrderLine {
                product_code: text("P"),
                quantity: Quantity::parse(Decimal::from_integer(1)).unwrap(),
                uom: None,
                unit_price: None,
                notes: None,
            }],
        }
    }
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
    /// `false` for a sandbox partner's orders: test data, never fulfilled.
    #[schema(example = true)]
    pub livemode: bool,
    pub status: OrderStatus,
    /// Why the order is in its status (set by the operator, e.g. on rejection).
    pub status_reason: Option<String>,
    pub customer_code: String,
    pub site_code: String,
    pub sales_name: String,
    pub address: String,
    pub purchase_order_no: Option<String>,
    /// ISO 4217 code of the prices' currency.
    #[schema(example = "IDR")]
    pub currency: String,
    pub products: Vec<OrderLine>,
    /// Sum of the line amounts; null unless every line has a unit price.
    pub total_amount: Option<Decimal>,
    /// 1 at creation, +1 on every change; single-order answers carry it as
    /// `ETag: "<version>"`, for `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-24T08:27:49.024Z")]
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLine {
    /// 1-based position of the line in the order.
    #[schema(minimum = 1)]
    pub line_no: u32,
    pub product_code: String,
    pub quantity: Decimal,
    pub uom: Option<String>,
    pub unit_price: Option<Decimal>,
    /// `quantity × unit_price`, exact; null when the line has no price.
    pub line_amount: Option<Decimal>,
    pub notes: Option<String>,
}
