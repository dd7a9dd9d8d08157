//! Types that can only hold valid values: the edge parses into them, the core trusts them.

pub mod audit;
pub mod decimal;
pub mod event;
pub mod ids;
pub mod order;
pub mod partner;
pub mod webhook;

pub use audit::AuditKind;
pub use decimal::Decimal;
pub use event::{Event, EventType};
pub use order::{
    Actor, Address, Amendment, Code, Currency, NewOrder, NewOrderLine, Notes, Order, OrderEvent,
    OrderLine, OrderStatus, Quantity, SalesName, TextField, UnitPrice, Uom,
};
pub use partner::{ClientId, PublicKey};
