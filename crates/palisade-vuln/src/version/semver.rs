//! SemVer 2.0 precedence (npm, crates.io, OSV `SEMVER` ranges), leniently parsed: a leading `v`
//! or `=` is tolerated, build metadata is ignored, and versions with fewer or more than three
//! numeric parts (`1.2`, `1.2.3.4`) are padded with zeros instead of rejected, because real
//! advisories and lock files contain them.

use super::{VersionError, VersionScheme, cmp_digits};
use std::cmp::Ordering;

/// Most numeric parts accepted in the core (`1.2.3.4`).
const MAX_CORE_PARTS: usize = 4;

/// A parsed version: numeric core parts and prerelease identifiers, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVersion<'a> {
    /// Digit strings of the core, e.g. `["1", "2", "3"]`.
    pub core: Vec<&'a str>,
    /// Prerelease identifiers; empty for a release.
    pub pre: Vec<&'a str>,
    /// Whether prerelease identifiers compare ASCII case-insensitively (NuGet).
    pub ignore_case: bool,
}

impl<'a> SemVersion<'a> {
    /// Parses a SemVer-like version for `scheme` (used in error messages).
    pub fn parse(input: &'a str, scheme: VersionScheme) -> Result<Self, VersionError> {
        let err = |reason: &str| VersionError::new(scheme, input, reason);
        let mut s = input.trim();
        s = s.strip_prefix('=').unwrap_or(s).trim_start();
        s = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        let (main, build) = match s.split_once('+') {
            Some((m, b)) => (m, Some(b)),
            None => (s, None),
        };
        if let Some(b) = build
            && (b.is_empty()
                || !b
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'))
        {
            return Err(err("invalid build metadata"));
        }
        let (core, pre) = match main.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (main, None),
        };
        if core.is_empty() {
            return Err(err("empty version"));
        }
        let mut parts = Vec::with_capacity(3);
        for part in core.split('.') {
            if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err("version parts must be numbers"));
            }
            if parts.len() == MAX_CORE_PARTS {
                return Err(err("too many numeric parts"));
            }
            parts.push(part);
        }
        let mut ids = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                if id.is_empty() {
                    return Err(err("empty prerelease identifier"));
                }
                if !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                    return Err(err("invalid character in prerelease"));
                }
                ids.push(id);
            }
        }
        Ok(SemVersion {
            core: parts,
            pre: ids,
            ignore_case: false,
        })
    }
}

impl Ord for SemVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.core.len().max(other.core.len()).max(3);
        for k in 0..n {
            let a = self.core.get(k).copied().unwrap_or("0");
            let b = other.core.get(k).copied().unwrap_or("0");
            let ord = cmp_digits(a.as_bytes(), b.as_bytes());
            if ord != Ordering::Equal {
                return ord;
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        let ignore_case = self.ignore_case || other.ignore_case;
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let ord = cmp_identifier(a, b, ignore_case);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }
}

impl PartialOrd for SemVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Numeric identifiers compare numerically and sort before alphanumeric ones, which compare in
/// ASCII order.
fn cmp_identifier(a: &str, b: &str, ignore_case: bool) -> Ordering {
    let num = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (num(a), num(b)) {
        (true, true) => cmp_digits(a.as_bytes(), b.as_bytes()),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) if ignore_case => a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
        (false, false) => a.cmp(b),
    }
}

/// Orders two SemVer versions by precedence (build metadata ignored).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let va = SemVersion::parse(a, VersionScheme::Semver)?;
    let vb = SemVersion::parse(b, VersionScheme::Semver)?;
    Ok(va.cmp(&vb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn spec_precedence_examples() {
        // SemVer 2.0.0 section 11.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(c(w[1], w[0]), Greater);
        }
    }

    #[test]
    fn leniency() {
        assert_eq!(c("v1.2.3", "1.2.3"), Equal);
        assert_eq!(c("=1.2.3", "1.2.3"), Equal);
        assert_eq!(c("1.2.3+build.1", "1.2.3+build.2"), Equal);
        assert_eq!(c("1.2", "1.2.0"), Equal);
        assert_eq!(c("1", "1.0.0"), Equal);
        assert_eq!(c("1.2.3.4", "1.2.3"), Greater);
        assert_eq!(c("1.2.3.0", "1.2.3"), Equal);
        assert_eq!(c("1.2.3-Beta", "1.2.3-alpha"), Less); // ASCII: uppercase first
        assert_eq!(c("1.0.0-rc.10", "1.0.0-rc.9"), Greater);
        assert_eq!(c("1.0.0-x-y", "1.0.0-x"), Greater);
    }

    #[test]
    fn invalid() {
        for bad in [
            "",
            "v",
            "1.x",
            "1..2",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3.4.5",
            "a.b.c",
            "1.2.3-b@d",
            "1.2.3 4",
        ] {
            assert!(compare(bad, "1.0.0").is_err(), "{bad:?}");
        }
    }
}
