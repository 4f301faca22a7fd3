//! rpm versions (`[epoch:]version[-release]`), ordered as rpm 4.x orders them: the epoch
//! numerically (absent = 0), then version and release with `rpmvercmp`, including `~` (sorts
//! before anything, for prereleases) and `^` (sorts after the base version but before any further
//! part, for snapshots). A missing release sorts before any release, as `rpm.vercmp` does.

use super::{VersionError, VersionScheme, cmp_digits};
use std::cmp::Ordering;

/// A parsed rpm EVR borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpmVersion<'a> {
    /// The epoch digits (empty means 0).
    pub epoch: &'a str,
    pub version: &'a str,
    pub release: Option<&'a str>,
}

impl<'a> RpmVersion<'a> {
    /// Splits like rpm's EVR parser: an epoch only when leading digits end in `:`, the release
    /// after the last `-`.
    pub fn parse(input: &'a str) -> Result<Self, VersionError> {
        let err = |reason: &str| VersionError::new(VersionScheme::Rpm, input, reason);
        let s = input.trim();
        if s.is_empty() {
            return Err(err("version string is empty"));
        }
        if s.bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(err("version has whitespace or control characters"));
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
            (&s[..digits], &s[digits + 1..])
        } else {
            ("", s)
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err(err("version part is empty"));
        }
        Ok(RpmVersion {
            epoch,
            version,
            release,
        })
    }
}

impl Ord for RpmVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(self.epoch.as_bytes(), other.epoch.as_bytes())
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(|| rpmvercmp(self.release.unwrap_or(""), other.release.unwrap_or("")))
    }
}

impl PartialOrd for RpmVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two rpm EVR strings.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(RpmVersion::parse(a)?.cmp(&RpmVersion::parse(b)?))
}

/// rpm's segment comparison of one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = ca.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let sa = i;
        while i < a.len() && class(&a[i]) {
            i += 1;
        }
        let sb = j;
        while j < b.len() && class(&b[j]) {
            j += 1;
        }
        let (seg_a, seg_b) = (&a[sa..i], &b[sb..j]);
        if seg_b.is_empty() {
            // Segments of different kinds: a number beats letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            cmp_digits(seg_a, seg_b)
        } else {
            seg_a.cmp(seg_b)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (i < a.len(), j < b.len()) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn rpmvercmp_cases() {
        assert_eq!(rpmvercmp("1.0", "1.0"), Equal);
        assert_eq!(rpmvercmp("1.0", "2.0"), Less);
        assert_eq!(rpmvercmp("2.0.1", "2.0"), Greater);
        assert_eq!(rpmvercmp("2.0.1a", "2.0.1"), Greater);
        assert_eq!(rpmvercmp("5.5p1", "5.5p2"), Less);
        assert_eq!(rpmvercmp("5.5p10", "5.5p1"), Greater);
        assert_eq!(rpmvercmp("10xyz", "10.1xyz"), Less);
        assert_eq!(rpmvercmp("xyz10", "xyz10.1"), Less);
        assert_eq!(rpmvercmp("1b.fc17", "1.fc17"), Less);
        assert_eq!(rpmvercmp("1.0a", "1.0.a"), Equal);
        assert_eq!(rpmvercmp("a", "1"), Less);
        assert_eq!(rpmvercmp("1.0~rc1", "1.0"), Less);
        assert_eq!(rpmvercmp("1.0~rc1", "1.0~rc2"), Less);
        assert_eq!(rpmvercmp("1.0~rc1~git123", "1.0~rc1"), Less);
        assert_eq!(rpmvercmp("1.0^", "1.0"), Greater);
        assert_eq!(rpmvercmp("1.0^git1", "1.0"), Greater);
        assert_eq!(rpmvercmp("1.0^git1", "1.01"), Less);
        assert_eq!(rpmvercmp("1.0^20160101", "1.0.1"), Less);
        assert_eq!(rpmvercmp("1.0~rc1^git1", "1.0~rc1"), Greater);
        assert_eq!(rpmvercmp("1.0", "1.0."), Equal);
        assert_eq!(rpmvercmp("001", "1"), Equal);
    }

    #[test]
    fn evr_ordering() {
        assert_eq!(c("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(c("0:1.0-1", "1.0-1"), Equal);
        assert_eq!(c("1.0-2", "1.0-10"), Less);
        assert_eq!(c("1.0", "1.0-1"), Less);
        assert_eq!(c("2.17-326.el7_9", "2.17-325.el7_9"), Greater);
        assert_eq!(c("1.1.1k-9.el8_7", "1.1.1k-12.el8_9"), Less);
    }

    #[test]
    fn rejects_empty() {
        assert!(compare("", "1").is_err());
        assert!(compare("1:", "1").is_err());
        assert!(compare("-1", "1").is_err());
        assert!(compare("1 2", "1").is_err());
    }
}
