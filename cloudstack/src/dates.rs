//! CloudStack timestamps: `2025-01-01T12:00:00+0000` (what `created` fields and ngine-io/cs's
//! `expires` look like), and the other forms the server accepts for `expires`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `time` (UTC) as `yyyy-MM-dd'T'HH:mm:ss+0000`.
pub fn format(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+0000",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Parses an `expires` value into seconds since the epoch. Accepts the forms CloudStack's
/// `DateUtil.parseTZDateString` does: `2025-01-01T12:00:00+0000`, `...+00:00`, `...Z`, an
/// optional fraction (`...:00.123456+0000`), and the legacy `...:00Z+0000`.
pub fn parse(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b'T' | b't') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let separators_ok =
        bytes[4] == b'-' && bytes[7] == b'-' && bytes[13] == b':' && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let had_z = rest.starts_with(['Z', 'z']);
    if had_z {
        rest = &rest[1..];
    }
    let offset = match rest {
        "" if had_z => 0,
        "" => return None,
        _ => parse_offset(rest)?,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Seconds since the epoch for `time` (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> i64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// `+HHMM`, `-HHMM` or `+HH:MM`, in seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_cloudstack() {
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00+0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3_723); // 2026-01-01 01:02:03
        assert_eq!(format(t), "2026-01-01T01:02:03+0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format(leap), "2000-02-29T00:00:00+0000");
    }

    #[test]
    fn parses_every_accepted_form() {
        let t = 1_767_225_600 + 3_723;
        for text in [
            "2026-01-01T01:02:03+0000",
            "2026-01-01T01:02:03+00:00",
            "2026-01-01T01:02:03Z",
            "2026-01-01T01:02:03.123456+0000",
            "2026-01-01T01:02:03Z+0000",
            "2026-01-01T02:02:03+0100",
            "2025-12-31T23:02:03-02:00",
            "2026-01-01t01:02:03+0000",
        ] {
            assert_eq!(parse(text), Some(t), "{text}");
        }
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01T01:02:03",
            "2026-13-01T01:02:03Z",
            "2026-01-01T01:02:03+01",
            "2026/01/01T01:02:03Z",
            "2026-01-01T01:02:03.Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for seconds in [0_u64, 86_399, 951_868_799, 4_102_444_800] {
            let time = UNIX_EPOCH + Duration::from_secs(seconds);
            assert_eq!(parse(&format(time)), Some(unix_seconds(time)));
        }
    }
}
