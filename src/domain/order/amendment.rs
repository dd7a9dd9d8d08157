//! What an amendment changed: the order's fields and lines, before → after,
//! as its history entry keeps it.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Order, OrderLine};

/// The difference between an order and its amended self. Lines are matched
/// by `line_no` (their place, numbered from 1): a line in both with other
/// content is changed, one only in the amended order added, one only in the
/// old removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Amendment {
    /// Order fields whose value changed.
    pub fields: Vec<FieldChange>,
    pub lines_added: Vec<LineSummary>,
    pub lines_removed: Vec<LineSummary>,
    pub lines_changed: Vec<LineChange>,
}

/// One field, before → after (`null`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A line added or removed, as it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineSummary {
    pub line_no: u32,
    pub product_code: String,
    pub quantity: String,
    pub unit_price: Option<String>,
}

/// A line whose content changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineChange {
    pub line_no: u32,
    pub fields: Vec<FieldChange>,
}

impl Amendment {
    pub fn between(before: &Order, after: &Order) -> Self {
        let mut fields = Vec::new();
        let mut compare = |field: &str, from: Option<String>, to: Option<String>| {
            if from != to {
                fields.push(FieldChange {
                    field: field.to_owned(),
                    from,
                    to,
                });
            }
        };
        compare(
            "customer_code",
            Some(before.customer_code.clone()),
            Some(after.customer_code.clone()),
        );
        compare(
            "site_code",
            Some(before.site_code.clone()),
            Some(after.site_code.clone()),
        );
        compare(
            "sales_name",
            Some(before.sales_name.clone()),
            Some(after.sales_name.clone()),
        );
        compare(
            "address",
            Some(before.address.clone()),
            Some(after.address.clone()),
        );
        compare(
            "purchase_order_no",
            before.purchase_order_no.clone(),
            after.purchase_order_no.clone(),
        );
        compare(
            "currency",
            Some(before.currency.clone()),
            Some(after.currency.clone()),
        );
        compare(
            "total_amount",
            before.total_amount.as_ref().map(ToString::to_string),
            after.total_amount.as_ref().map(ToString::to_string),
        );

        // Lines are numbered 1, 2, 3, … in order on both sides, so lines
        // of the same number stand at the same place.
        let kept = before.products.len().min(after.products.len());
        let lines_removed = before.products[kept..]
            .iter()
            .map(LineSummary::of)
            .collect();
        let lines_added = after.products[kept..].iter().map(LineSummary::of).collect();
        let lines_changed = before.products[..kept]
            .iter()
            .zip(&after.products[..kept])
            .filter_map(|(previous, line)| {
                let fields = line_fields(previous, line);
                (!fields.is_empty()).then_some(LineChange {
                    line_no: line.line_no,
                    fields,
                })
            })
            .collect();
        Self {
            fields,
            lines_added,
            lines_removed,
            lines_changed,
        }
    }

    /// Whether the amended order reads exactly as before.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.lines_added.is_empty()
            && self.lines_removed.is_empty()
            && self.lines_changed.is_empty()
    }
}

fn line_fields(before: &OrderLine, after: &OrderLine) -> Vec<FieldChange> {
    let decimal = |value: &Option<crate::domain::Decimal>| value.as_ref().map(ToString::to_string);
    [
        (
            "product_code",
            Some(before.product_code.clone()),
            Some(after.product_code.clone()),
        ),
        (
            "quantity",
            Some(before.quantity.to_string()),
            Some(after.quantity.to_string()),
        ),
        ("uom", before.uom.clone(), after.uom.clone()),
        (
            "unit_price",
            decimal(&before.unit_price),
            decimal(&after.unit_price),
        ),
        ("notes", before.notes.clone(), after.notes.clone()),
    ]
    .into_iter()
    .filter(|(_, from, to)| from != to)
    .map(|(field, from, to)| FieldChange {
        field: field.to_owned(),
        from,
        to,
    })
    .collect()
}

impl LineSummary {
    fn of(line: &OrderLine) -> Self {
        Self {
            line_no: line.line_no,
            product_code: line.product_code.clone(),
            quantity: line.quantity.to_string(),
            unit_price: line.unit_price.as_ref().map(ToString::to_string),
        }
    }
}

/// `none` for an absent value, else the value quoted, so a blank and an
/// absent one read differently.
fn shown(value: &Option<String>) -> String {
    value
        .as_ref()
        .map_or_else(|| "none".to_owned(), |value| format!("{value:?}"))
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} → {}",
            self.field,
            shown(&self.from),
            shown(&self.to)
        )
    }
}

impl fmt::Display for LineSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {} × {}",
            self.line_no, self.product_code, self.quantity
        )?;
        if let Some(price) = &self.unit_price {
            write!(f, " at {price}")?;
        }
        Ok(())
    }
}

/// One change per line of text, for `order show`.
impl fmt::Display for Amendment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<String> = self.fields.iter().map(ToString::to_string).collect();
        lines.extend(self.lines_added.iter().map(|line| format!("added {line}")));
        lines.extend(
            self.lines_removed
                .iter()
                .map(|line| format!("removed {line}")),
        );
        for line in &self.lines_changed {
            for change in &line.fields {
                lines.push(format!("line {}: {change}", line.line_no));
            }
        }
        f.write_str(&lines.join("\n"))
    }
}
