//! UTC timestamps in the `xsd:dateTime` form that SAML uses.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC. Times before 1970 are written
/// as the epoch.
pub fn format_instant(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);

    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since.subsec_millis()
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn instant_is_utc_with_milliseconds() {
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);

        assert_eq!(format_instant(time), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn instant_handles_epoch_and_leap_day() {
        assert_eq!(format_instant(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");

        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_instant(leap_day), "2000-02-29T00:00:00.000Z");

        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(format_instant(before_epoch), "1970-01-01T00:00:00.000Z");
    }
}
