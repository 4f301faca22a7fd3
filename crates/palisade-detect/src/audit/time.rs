//! Audit timestamps to Unix nanoseconds, without allocating: RFC 3339 with any fraction
//! (`2024-01-01T00:00:00.123456Z`, `+02:00` offsets) and Panther's `2022-11-29 00:09:04.38`
//! (UTC, space separator, no zone).

/// Nanoseconds since the Unix epoch, or `None` when `text` is not such a timestamp.
pub(crate) fn parse_timestamp_nanos(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut v: i64 = 0;
        for &c in b.get(range)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            nanos += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let (h, m) = match b.len() - i {
                6 if b[i + 3] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                5 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                3 => (num(i + 1..i + 3)?, 0),
                _ => return None,
            };
            let s = h * 3600 + m * 60;
            if sign == b'+' { s } else { -s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp_nanos as p;

    #[test]
    fn parses_rfc3339_and_panther_forms() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("2024-01-01T00:00:00Z"), Some(1_704_067_200_000_000_000));
        assert_eq!(
            p("2024-01-01T00:00:00.123456Z"),
            Some(1_704_067_200_123_456_000)
        );
        assert_eq!(
            p("2024-01-01T02:00:00+02:00"),
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(
            p("2023-12-31T23:00:00-01:00"),
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(p("2025-12-22T10:30:00.0000000Z"), p("2025-12-22T10:30:00Z"));
        assert_eq!(p("2022-11-29 00:09:04.38"), Some(1_669_680_544_380_000_000));
        assert_eq!(
            p("2024-02-29T12:00:00.000000001Z"),
            Some(1_709_208_000_000_000_001)
        );
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00Q",
            "2024-01-01T00:00:00.Z",
            "2024-01-01",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
