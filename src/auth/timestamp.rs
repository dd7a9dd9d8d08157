//! `X-TIMESTAMP`: unix seconds (canonical), unix milliseconds (13 digits), or
//! RFC 3339 with an offset as SNAP BI sends it (`2024-03-01T08:27:49+07:00`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::AuthError;

/// Parses a timestamp header into unix milliseconds.
pub fn parse(text: &str) -> Result<i64, AuthError> {
    let invalid = || {
        AuthError::TimestampInvalid(
            "X-TIMESTAMP must be unix seconds, unix milliseconds or RFC 3339 with an offset \
             (e.g. 1704067200 or 2024-03-01T08:27:49+07:00)"
                .into(),
        )
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let value: i64 = text.parse().map_err(|_| invalid())?;
        return match text.len() {
            1..=11 => value.checked_mul(1000).ok_or_else(invalid),
            13 => Ok(value),
            _ => Err(invalid()),
        };
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid())
}

/// Refuses a timestamp further than `tolerance` from `now` in either direction.
pub fn check_window(
    text: &str,
    now: OffsetDateTime,
    tolerance: std::time::Duration,
) -> Result<(), AuthError> {
    let sent_ms = parse(text)?;
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let skew_ms = sent_ms.saturating_sub(now_ms);
    let tolerance_ms = i64::try_from(tolerance.as_millis()).unwrap_or(i64::MAX);
    if skew_ms.abs() > tolerance_ms {
        return Err(AuthError::TimestampOutOfWindow {
            skew_seconds: skew_ms / 1000,
            tolerance_seconds: tolerance.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_forms_name_the_same_instant() {
        assert_eq!(parse("1704067200").unwrap(), 1_704_067_200_000);
        assert_eq!(parse("1704067200000").unwrap(), 1_704_067_200_000);
        assert_eq!(
            parse("2024-01-01T07:00:00+07:00").unwrap(),
            1_704_067_200_000
        );
        assert_eq!(parse("2024-01-01T00:00:00.5Z").unwrap(), 1_704_067_200_500);
    }

    #[test]
    fn garbage_is_invalid() {
        for bad in [
            "",
            "abc",
            "-1",
            "170406720000",
            "170406720000000",
            "2024-01-01T00:00:00",
            "1e9",
            " 1704067200",
        ] {
            assert!(
                matches!(parse(bad), Err(AuthError::TimestampInvalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_window_is_symmetric_and_inclusive() {
        let now = OffsetDateTime::from_unix_timestamp(1_704_067_200).unwrap();
        let five_min = std::time::Duration::from_secs(300);
        assert!(check_window("1704067500", now, five_min).is_ok());
        assert!(check_window("1704066900", now, five_min).is_ok());
        assert!(check_window("1704067501", now, five_min).is_err());
        assert!(check_window("1704066899", now, five_min).is_err());
    }
}
