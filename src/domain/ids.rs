//! Identifiers the server mints: opaque, unguessable, prefixed by kind.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source is unavailable");
    bytes
}

/// A random identifier: `prefix` + 128 random bits in lowercase hex.
fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<16>()))
}

/// `so_` + 48 bits of Unix milliseconds + 80 random bits, in hex (as UUIDv7
/// lays them out). Still unguessable, but ids made close in time sort close
/// together, so inserting one touches the same few pages of the id index
/// instead of a random page each: a group commit then writes far fewer index
/// pages to the WAL.
pub fn new_order_id() -> String {
    time_ordered_id("so_")
}

/// `prefix` + 48 bits of Unix milliseconds + 80 random bits, in hex: see
/// [`new_order_id`].
fn time_ordered_id(prefix: &str) -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let millis = u64::try_from(millis).unwrap_or_default() & 0xFFFF_FFFF_FFFF;
    format!("{prefix}{millis:012x}{}", hex::encode(random_bytes::<10>()))
}

/// The smallest event id made at `at` or later: ids below it were made before.
pub fn event_id_bound(at: time::OffsetDateTime) -> String {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    format!("evt_{:012x}", millis & 0xFFFF_FFFF_FFFF)
}

/// Time-ordered for the same reason as an order's id: events are written
/// in the group commit with their orders, and a random id would touch a
/// random page of the id index per event.
pub fn new_event_id() -> String {
    time_ordered_id("evt_")
}

/// An order's `order.created` event: the order's id with `evt_` in place of
/// `so_`, so the event is found from its order (its first change stores the
/// snapshot there, see `store::feed`) and the order from its event. It
/// begins with the order's time, like every event id.
pub fn created_event_id(order_id: &str) -> String {
    format!("evt_{}", order_id.strip_prefix("so_").unwrap_or(order_id))
}

/// The order whose `order.created` event is `event_id`.
pub fn created_order_id(event_id: &str) -> Option<String> {
    event_id
        .strip_prefix("evt_")
        .map(|rest| format!("so_{rest}"))
}

pub fn new_endpoint_id() -> String {
    random_id("we_")
}

pub fn new_key_id() -> String {
    random_id("key_")
}

pub fn new_token_id() -> String {
    random_id("tok_")
}

pub fn new_session_id() -> String {
    random_id("ses_")
}

pub fn new_client_id() -> String {
    format!("client-{}", hex::encode(random_bytes::<8>()))
}

/// A client secret: `sk_live_` (or `sk_test_` for a sandbox partner, so
/// nobody mistakes one for the other) and 256 random bits, URL-safe base64.
pub fn new_client_secret(sandbox: bool) -> String {
    let prefix = if sandbox { "sk_test_" } else { "sk_live_" };
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// The human-readable order number shown next to the opaque id.
pub fn order_number(seq: i64) -> String {
    format!("SO-{seq:08}")
}

/// The inverse of [`order_number`], for operators who type `SO-00000042`.
pub fn parse_order_number(text: &str) -> Option<i64> {
    text.strip_prefix("SO-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_sort_by_time_so_the_purge_bound_splits_them_exactly() {
        let now = time::OffsetDateTime::now_utc();
        let id = new_event_id();
        assert!(id.starts_with("evt_") && id.len() == 4 + 12 + 20, "{id}");
        assert!(id.as_str() >= event_id_bound(now).as_str());
        assert!(id < event_id_bound(now + time::Duration::seconds(1)));
        assert!(event_id_bound(now - time::Duration::days(31)) < event_id_bound(now));
    }

    #[test]
    fn an_orders_creation_event_and_the_order_name_each_other() {
        let order = new_order_id();
        let event = created_event_id(&order);
        assert!(
            event.starts_with("evt_") && event.len() == 4 + 12 + 20,
            "{event}"
        );
        assert_eq!(created_order_id(&event).as_deref(), Some(order.as_str()));
        // Purged with the events of its time.
        assert!(
            event < event_id_bound(time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        );
        assert_eq!(created_order_id("so_123"), None);
    }

    #[test]
    fn client_secrets_carry_256_bits_and_say_their_mode() {
        let secret = new_client_secret(false);
        let random = secret.strip_prefix("sk_live_").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
        assert_ne!(secret, new_client_secret(false));
        assert!(new_client_secret(true).starts_with("sk_test_"));
    }

    #[test]
    fn order_ids_sort_by_creation_and_carry_80_random_bits() {
        let first = new_order_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (second, third) = (new_order_id(), new_order_id());
        assert_eq!(first.len(), "so_".len() + 32);
        assert!(first < second, "{first} then {second}");
        assert_ne!(second[15..], third[15..], "different random parts");
    }

    #[test]
    fn order_numbers_round_trip() {
        assert_eq!(order_number(42), "SO-00000042");
        assert_eq!(parse_order_number("SO-00000042"), Some(42));
    }
}
