//! Times in queries: ISO dates and times at the precision written, and `now-2h`.
//!
//! A time literal is an interval: `2025-09-26` is that whole day, `2025-09-26T14:30` that
//! minute, `2025-09` that month. Comparisons are made at the literal's precision:
//! `created = 2025-09-26` holds for any moment of the day, `created > 2025-09-26` from the next
//! day on, `created >= 2025-09-26` from the day's start. Relative times (`now`, `now-2h`,
//! `now-1d12h`) are instants, fixed when the query is parsed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};

/// A half-open interval of microseconds since the Unix epoch, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interval {
    pub start: i64,
    pub end: i64,
}

/// Microseconds since the Unix epoch (negative before it).
pub(crate) fn micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// An RFC 3339 time (as `config.json` stores `created_at`) in microseconds since the epoch.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Reads a time literal; `now` is the parse time, `offset` the time zone (seconds east of UTC)
/// for dates written without one, `None` for this machine's.
pub(crate) fn parse(
    text: &str,
    now: SystemTime,
    offset: Option<i32>,
) -> Result<Interval, &'static str> {
    const EXPECTED: &str = "expected a date (2025-09-26), a date and time (2025-09-26T14:30) or a time relative to now (now-2h)";
    let lower = text.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("now") {
        let now = micros(now);
        let at = if rest.is_empty() {
            now
        } else {
            let (sign, amount) = match rest.split_at(1) {
                ("-", amount) => (-1, amount),
                ("+", amount) => (1, amount),
                _ => return Err(EXPECTED),
            };
            let span = duration(amount).ok_or(
                "expected a duration after `now-`: a number and a unit (s, m, h, d, w), as in now-2h or now-1d12h",
            )?;
            let span = i64::try_from(span.as_micros()).unwrap_or(i64::MAX);
            now.saturating_add(sign * span)
        };
        return Ok(Interval {
            start: at,
            end: at.saturating_add(1),
        });
    }
    if duration(lower.trim_start_matches(['-', '+'])).is_some() {
        return Err("write a time relative to now as `now-2h` (now minus two hours)");
    }
    absolute(text, offset).ok_or(EXPECTED)
}

/// `2h`, `90m`, `1d12h`, `1.5h`: numbers each followed by a unit.
fn duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// How much of a date and time was written.
#[derive(Clone, Copy)]
enum Precision {
    Month,
    Day,
    Minute,
    Second,
    Exact,
}

/// `2025-09`, `2025-09-26`, `2025-09-26T14:30`, `2025-09-26 14:30:15.5`, each with an optional
/// `Z` or `±HH:MM`.
fn absolute(text: &str, default_offset: Option<i32>) -> Option<Interval> {
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i32 = digits(parts.next()?, 4)?.try_into().ok()?;
    let month = digits(parts.next()?, 2)?;
    let day = parts.next().map(|d| digits(d, 2));
    if parts.next().is_some() {
        return None;
    }
    let (date, mut precision) = match day {
        None => (NaiveDate::from_ymd_opt(year, month, 1)?, Precision::Month),
        Some(day) => (NaiveDate::from_ymd_opt(year, month, day?)?, Precision::Day),
    };
    let mut explicit = None;
    let mut clock = NaiveTime::MIN;
    if let Some(time) = time {
        if matches!(precision, Precision::Month) {
            return None;
        }
        let (time, offset) = split_offset(time)?;
        explicit = offset;
        let mut fields = time.split(':');
        let hour = digits(fields.next()?, 2)?;
        let minute = digits(fields.next()?, 2)?;
        let (second, micro) = match fields.next() {
            None => {
                precision = Precision::Minute;
                (0, 0)
            }
            Some(s) => match s.split_once('.') {
                None => {
                    precision = Precision::Second;
                    (digits(s, 2)?, 0)
                }
                Some((s, fraction)) => {
                    precision = Precision::Exact;
                    if fraction.is_empty()
                        || fraction.len() > 9
                        || !fraction.bytes().all(|b| b.is_ascii_digit())
                    {
                        return None;
                    }
                    let micro = format!("{fraction:0<6}")[..6].parse().ok()?;
                    (digits(s, 2)?, micro)
                }
            },
        };
        if fields.next().is_some() {
            return None;
        }
        clock = NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?;
    }
    let start = NaiveDateTime::new(date, clock);
    let end = match precision {
        Precision::Month => {
            let (y, m) = if date.month() == 12 {
                (year + 1, 1)
            } else {
                (year, date.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1)?.and_time(NaiveTime::MIN)
        }
        Precision::Day => start + chrono::Duration::days(1),
        Precision::Minute => start + chrono::Duration::minutes(1),
        Precision::Second => start + chrono::Duration::seconds(1),
        Precision::Exact => start + chrono::Duration::microseconds(1),
    };
    let to_micros = |naive: NaiveDateTime| -> Option<i64> {
        let offset = match explicit.or(default_offset) {
            Some(seconds) => FixedOffset::east_opt(seconds)?,
            None => Local
                .offset_from_local_datetime(&naive)
                .earliest()
                .map_or_else(
                    // A wall time skipped by a daylight-saving jump: use the offset after it.
                    || Local.offset_from_utc_datetime(&naive).fix(),
                    |o| o.fix(),
                ),
        };
        Some((naive - offset).and_utc().timestamp_micros())
    };
    Some(Interval {
        start: to_micros(start)?,
        end: to_micros(end)?,
    })
}

/// Splits `14:30+02:00` into the clock and the offset in seconds (`Z` is 0).
fn split_offset(time: &str) -> Option<(&str, Option<i32>)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, Some(0)));
    }
    let Some(i) = time.find(['+', '-']) else {
        return Some((time, None));
    };
    let (clock, offset) = time.split_at(i);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let offset = &offset[1..];
    let (h, m) = match offset.split_once(':') {
        Some((h, m)) => (h, m),
        None if offset.len() == 4 => offset.split_at(2),
        None => (offset, "00"),
    };
    let seconds = digits(h, 2)? * 3600 + digits(m, 2)? * 60;
    Some((clock, Some(sign * i32::try_from(seconds).ok()?)))
}

/// Exactly `width` ASCII digits.
fn digits(text: &str, width: usize) -> Option<u32> {
    (text.len() == width && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: Option<i32> = Some(0);

    fn at(rfc3339: &str) -> i64 {
        parse_rfc3339(rfc3339).unwrap()
    }

    fn interval(text: &str) -> (i64, i64) {
        let i = parse(text, SystemTime::UNIX_EPOCH, UTC).unwrap();
        (i.start, i.end)
    }

    #[test]
    fn dates_are_intervals_at_their_precision() {
        assert_eq!(
            interval("2025-09-26"),
            (at("2025-09-26T00:00:00Z"), at("2025-09-27T00:00:00Z"))
        );
        assert_eq!(
            interval("2025-12"),
            (at("2025-12-01T00:00:00Z"), at("2026-01-01T00:00:00Z"))
        );
        assert_eq!(
            interval("2025-09-26T14:30"),
            (at("2025-09-26T14:30:00Z"), at("2025-09-26T14:31:00Z"))
        );
        assert_eq!(
            interval("2025-09-26 14:30:15"),
            (at("2025-09-26T14:30:15Z"), at("2025-09-26T14:30:16Z"))
        );
        assert_eq!(
            interval("2025-09-26T14:30:15.25").0,
            at("2025-09-26T14:30:15.25Z")
        );
    }

    #[test]
    fn explicit_offsets_win_over_the_default() {
        assert_eq!(
            interval("2025-09-26T14:30+02:00").0,
            at("2025-09-26T12:30:00Z")
        );
        assert_eq!(
            interval("2025-09-26T14:30-0130").0,
            at("2025-09-26T16:00:00Z")
        );
        assert_eq!(interval("2025-09-26t14:30z").0, at("2025-09-26T14:30:00Z"));
        let east = parse("2025-09-26", SystemTime::UNIX_EPOCH, Some(3600)).unwrap();
        assert_eq!(east.start, at("2025-09-25T23:00:00Z"));
    }

    #[test]
    fn relative_times_count_back_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let back = |text| parse(text, now, UTC).unwrap().start;
        assert_eq!(back("now"), 1_000_000_000_000);
        assert_eq!(back("now-2h"), (1_000_000 - 7200) * 1_000_000);
        assert_eq!(back("NOW-1d12h"), (1_000_000 - 129_600) * 1_000_000);
        assert_eq!(back("now-1.5h"), (1_000_000 - 5400) * 1_000_000);
        assert_eq!(back("now+30s"), (1_000_000 + 30) * 1_000_000);
        assert_eq!(back("now-2weeks"), (1_000_000 - 1_209_600) * 1_000_000);
    }

    #[test]
    fn bad_times_say_what_to_write() {
        let err = |text| parse(text, SystemTime::UNIX_EPOCH, UTC).unwrap_err();
        assert!(err("-2h").contains("now-2h"));
        assert!(err("2d").contains("now-2h"));
        assert!(err("now-2y").contains("unit"));
        assert!(err("now2h").contains("expected a date"));
        for bad in [
            "yesterday",
            "2025-13-01",
            "2025-02-30",
            "25-09-26",
            "2025-09-26T25:00",
            "2025-09T10:00",
            "2025-09-26T14",
            "2025-09-26T14:30:15.",
        ] {
            assert!(err(bad).contains("expected a date"), "{bad}");
        }
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        assert_eq!(micros(UNIX_EPOCH - Duration::from_secs(1)), -1_000_000);
        assert!(interval("1969-12-31").0 < 0);
    }
}
