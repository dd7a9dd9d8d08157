//! Where an order is in its life, who moved it there, and its history.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// One entry of an order's history: its creation, a status change or an
/// amendment.
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
    /// The version the entry made; `None` for entries from before versions.
    pub version: Option<i64>,
    /// What an amendment changed; `None` for every other entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<super::Amendment>,
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
}
