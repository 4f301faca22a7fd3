//! RubyGems versions, ordered like `Gem::Version#<=>`: segments split on `.` and letter/digit
//! boundaries (`-` means `.pre.`), any letter makes a prerelease, trailing zero segments are
//! ignored in both the release and the prerelease part, a string segment sorts before a number.

use super::{VersionError, VersionScheme, cmp_digits};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg<'a> {
    Num(&'a str),
    Str(&'a str),
}

impl Seg<'_> {
    fn is_zero(&self) -> bool {
        matches!(self, Seg::Num(n) if n.bytes().all(|c| c == b'0'))
    }
}

/// `Gem::Version`'s validity pattern: `digits(.alnum+)*(-[alnum-]+(.[alnum-]+)*)?`, or blank.
fn validate(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let (main, pre) = match s.split_once('-') {
        Some((m, p)) => (m, Some(p)),
        None => (s, None),
    };
    let mut parts = main.split('.');
    let first = parts.next().unwrap_or("");
    if first.is_empty() || !first.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    if !parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric())) {
        return false;
    }
    match pre {
        None => true,
        Some(p) => p
            .split('.')
            .all(|x| !x.is_empty() && x.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')),
    }
}

fn canonical(s: &str) -> Vec<Seg<'_>> {
    let b = s.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            segs.push(Seg::Num(&s[start..i]));
        } else if b[i].is_ascii_alphabetic() {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            segs.push(Seg::Str(&s[start..i]));
        } else {
            // `.` and `-` only separate; `-` stands for `.pre.`, which the caller inserts.
            i += 1;
        }
    }
    if segs.is_empty() {
        segs.push(Seg::Num("0"));
    }
    let split = segs
        .iter()
        .position(|s| matches!(s, Seg::Str(_)))
        .unwrap_or(segs.len());
    let mut string_part = segs.split_off(split);
    while segs.last().is_some_and(Seg::is_zero) {
        segs.pop();
    }
    while string_part.last().is_some_and(Seg::is_zero) {
        string_part.pop();
    }
    segs.extend(string_part);
    segs
}

/// Orders two gem versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let prep = |v: &str| -> Result<String, VersionError> {
        let t = v.trim_matches(|c: char| c.is_ascii_whitespace());
        if !validate(t) {
            return Err(VersionError::new(
                VersionScheme::RubyGems,
                v,
                "malformed version number string",
            ));
        }
        Ok(t.replace('-', ".pre."))
    };
    let (sa, sb) = (prep(a)?, prep(b)?);
    let (ca, cb) = (canonical(&sa), canonical(&sb));
    let zero = Seg::Num("0");
    for k in 0..ca.len().max(cb.len()) {
        let x = ca.get(k).unwrap_or(&zero);
        let y = cb.get(k).unwrap_or(&zero);
        let o = match (x, y) {
            (Seg::Num(p), Seg::Num(q)) => cmp_digits(p.as_bytes(), q.as_bytes()),
            (Seg::Str(_), Seg::Num(_)) => Ordering::Less,
            (Seg::Num(_), Seg::Str(_)) => Ordering::Greater,
            (Seg::Str(p), Seg::Str(q)) => p.cmp(q),
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn gem_version_semantics() {
        let chain = [
            "1.0.a", "1.0.a1", "1.0.a2", "1.0.b1", "1.0.rc1", "1.0", "1.0.1", "1.1", "2",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(c(w[1], w[0]), Greater);
        }
        assert_eq!(c("1.0", "1"), Equal);
        assert_eq!(c("1.0.0", "1"), Equal);
        assert_eq!(c("1.0.a", "1.a"), Equal);
        assert_eq!(c("1.0-beta", "1.0.pre.beta"), Equal);
        assert_eq!(c("1.0.0-rc1", "1.0.0"), Less);
        assert_eq!(c("5.2.4.3", "5.2.4.10"), Less);
        assert_eq!(c("1.9.b", "1.9.B"), Greater);
        assert_eq!(c("", "0"), Equal);
        assert_eq!(c(" 1.2 ", "1.2"), Equal);
    }

    #[test]
    fn invalid() {
        for bad in ["a", "1..2", "1.2.", "1 2", "1.2_3", "-1", "1.2-", "junk"] {
            assert!(compare(bad, "1").is_err(), "{bad:?}");
        }
    }
}
