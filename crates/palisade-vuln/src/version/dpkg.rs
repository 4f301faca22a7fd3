//! Debian package versions (`[epoch:]upstream[-revision]`), ordered as `dpkg --compare-versions`.
//!
//! Hard errors follow dpkg's own parser (empty parts, a non-numeric or oversized epoch, embedded
//! spaces); dpkg only warns about odd characters or an upstream part not starting with a digit and
//! still compares such versions, so they are accepted here too.

use super::{VersionError, VersionScheme};
use std::cmp::Ordering;

/// A parsed Debian version borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgVersion<'a> {
    pub epoch: u32,
    pub upstream: &'a str,
    /// Empty when the version has no `-revision` (which dpkg orders like `-0`).
    pub revision: &'a str,
}

impl<'a> DpkgVersion<'a> {
    /// Parses with dpkg's rules; surrounding whitespace is ignored as dpkg does.
    pub fn parse(input: &'a str) -> Result<Self, VersionError> {
        let err = |reason: &str| VersionError::new(VersionScheme::Dpkg, input, reason);
        let s = input.trim();
        if s.is_empty() {
            return Err(err("version string is empty"));
        }
        if s.bytes().any(|c| c.is_ascii_whitespace()) {
            return Err(err("version string has embedded spaces"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(err("epoch in version is empty"));
                }
                if !e.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(err("epoch in version is not number"));
                }
                let epoch: u32 = e
                    .parse()
                    .ok()
                    .filter(|&n: &u32| n <= i32::MAX as u32)
                    .ok_or_else(|| err("epoch in version is too big"))?;
                if rest.is_empty() {
                    return Err(err("nothing after colon in version number"));
                }
                (epoch, rest)
            }
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(err("revision number is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("version number is empty"));
        }
        Ok(DpkgVersion {
            epoch,
            upstream,
            revision,
        })
    }
}

impl Ord for DpkgVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| verrevcmp(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

impl PartialOrd for DpkgVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two Debian versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(DpkgVersion::parse(a)?.cmp(&DpkgVersion::parse(b)?))
}

/// Weight of one byte in a non-digit run: end of string and digits 0, `~` below everything,
/// letters by their code, everything else after all letters.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's comparison of one version part: alternating non-digit runs (compared byte by byte by
/// [`weight`]) and digit runs (compared numerically).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let wa = weight(a.get(i).copied());
            let wb = weight(b.get(j).copied());
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn documented_orderings() {
        assert_eq!(c("1.0~rc1", "1.0"), Less);
        assert_eq!(c("1.0~~", "1.0~~a"), Less);
        assert_eq!(c("1.0~", "1.0"), Less);
        assert_eq!(c("1.0", "1.0a"), Less);
        assert_eq!(c("1.0a", "1.0+"), Less);
        assert_eq!(c("1.0+", "1.0."), Less);
        assert_eq!(c("1:0.1", "2.0"), Greater);
        assert_eq!(c("0:1.0", "1.0"), Equal);
        assert_eq!(c("1.0", "1.0-0"), Equal);
        assert_eq!(c("1.00", "1.0"), Equal);
        assert_eq!(c("1.2.3-1", "1.2.3-1+deb11u1"), Less);
        assert_eq!(c("1.2.3-1+deb11u1", "1.2.3-1+deb11u2"), Less);
        assert_eq!(c("2.36-9+deb12u4", "2.36-9+deb12u14"), Less);
        assert_eq!(c("1.9", "1.10"), Less);
        assert_eq!(c("7.88.1-10+deb12u5", "7.74.0-1.3+deb11u7"), Greater);
        assert_eq!(c("1.2-3-4", "1.2-3-5"), Less);
        assert_eq!(c(" 1.0 ", "1.0"), Equal);
    }

    #[test]
    fn splits_epoch_and_last_hyphen() {
        let v = DpkgVersion::parse("2:1.2-3-4").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (2, "1.2-3", "4"));
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        for bad in [
            "",
            " ",
            "1 0",
            ":1.0",
            "a:1.0",
            "1:",
            "1.0-",
            "-1",
            "99999999999:1",
        ] {
            assert!(compare(bad, "1").is_err(), "{bad:?}");
        }
    }
}
