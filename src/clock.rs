//! The server's one source of "now".
//!
//! Every expiry, window and timestamp check reads this clock, so the test suite
//! can move time forward (a token expiring, a refresh window closing) without
//! sleeping. In production the offset is always zero.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    pub fn unix_now(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves this clock forward. Only tests call this.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }
}
