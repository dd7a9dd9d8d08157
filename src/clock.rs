//! The server's one source of "now".
//!
//! Every expiry, window and timestamp check reads this clock, so the test suite
//! can move time forward (a token expiring, a refresh window closing) without
//! sleeping, or stop it (a rate that refills with time, measured without
//! depending on how fast the machine is). In production the offset is always
//! zero and the clock never stops.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Debug)]
pub struct Clock {
    offset_seconds: AtomicI64,
    /// Unix nanoseconds the clock stands still at, or [`RUNNING`].
    frozen_at: AtomicI64,
}

const RUNNING: i64 = i64::MIN;

impl Default for Clock {
    fn default() -> Self {
        Self {
            offset_seconds: AtomicI64::new(0),
            frozen_at: AtomicI64::new(RUNNING),
        }
    }
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let frozen_at = self.frozen_at.load(Ordering::Relaxed);
        let now = if frozen_at == RUNNING {
            OffsetDateTime::now_utc()
        } else {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(frozen_at))
                .unwrap_or_else(|_| OffsetDateTime::now_utc())
        };
        now + time::Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// Stops this clock where it is (`advance` still moves it). Only tests
    /// call this.
    pub fn freeze(&self) {
        let now = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0);
        self.frozen_at.store(now, Ordering::Relaxed);
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
