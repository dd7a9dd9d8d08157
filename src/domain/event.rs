//! Order events: what changed, as partners read it from the feed and, later,
//! from webhooks.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::order::{Order, OrderStatus};

/// What happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.amended")]
    OrderAmended,
    #[serde(rename = "order.accepted")]
    OrderAccepted,
    #[serde(rename = "order.rejected")]
    OrderRejected,
    #[serde(rename = "order.fulfilled")]
    OrderFulfilled,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
}

impl EventType {
    pub const ALL: [Self; 6] = [
        Self::OrderCreated,
        Self::OrderAmended,
        Self::OrderAccepted,
        Self::OrderRejected,
        Self::OrderFulfilled,
        Self::OrderCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "order.created",
            Self::OrderAmended => "order.amended",
            Self::OrderAccepted => "order.accepted",
            Self::OrderRejected => "order.rejected",
            Self::OrderFulfilled => "order.fulfilled",
            Self::OrderCancelled => "order.cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The event an order's arrival in `status` makes.
    pub fn entering(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Received => Self::OrderCreated,
            OrderStatus::Accepted => Self::OrderAccepted,
            OrderStatus::Rejected => Self::OrderRejected,
            OrderStatus::Fulfilled => Self::OrderFulfilled,
            OrderStatus::Cancelled => Self::OrderCancelled,
        }
    }
}

/// One change to one of the partner's orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Opaque identifier; also the `webhook-id` of its deliveries.
    #[schema(example = "evt_3f9c2a7e0b6d4c1a8e5f7a9b0c1d2e3f")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The partner's events count 1, 2, 3, … with no gaps, in commit order.
    #[schema(example = 42)]
    pub sequence: i64,
    /// RFC 3339, UTC: when the change was made.
    #[schema(example = "2026-11-24T08:27:49.024Z")]
    pub created_at: String,
    /// `true` for live data (sandbox partners' events will say `false`).
    pub livemode: bool,
    /// `{"order": Order}`: the order as it was right after the change.
    #[schema(value_type = EventData)]
    pub data: Box<RawValue>,
}

/// What an event carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventData<'a> {
    /// The order as it was right after the change.
    #[schema(value_type = Order)]
    pub order: &'a Order,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_wire_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(EventType::parse("order.deleted"), None);
    }
}
