//! How a time and a decimal are stored, the same way on both databases where
//! the database allows it.
//!
//! - A time is a `timestamptz` on PostgreSQL; SQLite has no time type, so it is
//!   fixed-width RFC 3339 UTC text with milliseconds (`2026-11-24T08:27:49.024Z`),
//!   whose text order is time order. Both keep milliseconds, the precision
//!   the API shows, so a value written and read back is the same on both.
//! - A decimal is `numeric` on PostgreSQL and its exact text on SQLite (no
//!   decimal type there either); never a float.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};
use time::OffsetDateTime;

use crate::domain::{ClientId, Decimal};

/// A point in time as the store keeps it: UTC, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(to_millis(at.to_offset(time::UtcOffset::UTC)))
    }

    /// The first instant the store can hold at or after `at`. Stored times
    /// are whole milliseconds, so a bound with a finer part, rounded up,
    /// selects exactly the rows the bound itself would.
    pub fn at_or_after(at: OffsetDateTime) -> Self {
        let down = Self::new(at);
        if down.0 < at {
            Self(down.0 + time::Duration::milliseconds(1))
        } else {
            down
        }
    }

    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    /// RFC 3339 UTC with milliseconds, as the API shows it.
    pub fn rfc3339(self) -> String {
        rfc3339(self.0)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(at: OffsetDateTime) -> Self {
        Self::new(at)
    }
}

/// Cuts `at` to the millisecond, the precision the API shows.
pub fn to_millis(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(u32::from(at.millisecond()) * 1_000_000)
        .unwrap_or(at)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T08:27:49.024Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.rfc3339(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|error| format!("stored time {text:?}: {error}"))?;
        Ok(Self::new(at))
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self::new(<OffsetDateTime as Decode<Postgres>>::decode(
            value,
        )?))
    }
}

impl Type<Sqlite> for Decimal {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Decimal {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Decimal {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Decimal::parse_stored(text).ok_or_else(|| format!("bad stored decimal {text:?}").into())
    }
}

impl Type<Postgres> for Decimal {
    fn type_info() -> PgTypeInfo {
        <bigdecimal::BigDecimal as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Decimal {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(self.as_bigdecimal(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for Decimal {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Decimal::from_bigdecimal(
            <bigdecimal::BigDecimal as Decode<Postgres>>::decode(value)?,
        ))
    }
}

/// A client id is text on both databases; one read back is checked again.
impl Type<Sqlite> for ClientId {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for ClientId {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.as_str().to_owned(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for ClientId {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(ClientId::parse(<&str as Decode<Sqlite>>::decode(value)?)?)
    }
}

impl Type<Postgres> for ClientId {
    fn type_info() -> PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for ClientId {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.as_str(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for ClientId {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(ClientId::parse(<&str as Decode<Postgres>>::decode(value)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_time_is_fixed_width_utc_text_to_the_millisecond() {
        let at = time::macros::datetime!(2026-11-24 09:27:49.024_999 +01:00);
        assert_eq!(Timestamp::new(at).rfc3339(), "2026-11-24T08:27:49.024Z");
        let whole = time::macros::datetime!(2026-11-24 08:27:49 UTC);
        assert_eq!(Timestamp::new(whole).rfc3339(), "2026-11-24T08:27:49.000Z");
    }

    #[test]
    fn a_bound_finer_than_a_millisecond_rounds_up_to_the_next_stored_instant() {
        let fine = time::macros::datetime!(2026-11-24 08:27:49.024_001 UTC);
        assert_eq!(
            Timestamp::at_or_after(fine).rfc3339(),
            "2026-11-24T08:27:49.025Z"
        );
        let whole = time::macros::datetime!(2026-11-24 08:27:49.024 UTC);
        assert_eq!(
            Timestamp::at_or_after(whole).rfc3339(),
            "2026-11-24T08:27:49.024Z"
        );
    }
}
