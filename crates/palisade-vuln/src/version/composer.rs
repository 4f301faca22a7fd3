//! Composer (Packagist) versions: normalised the way Composer's `VersionParser::normalize` does
//! (`v` prefix dropped, four numeric parts, `-p`/`-pl` → `-patch`, `a`/`b`/`rc` → `alpha`/`beta`/`RC`,
//! `-dev`, `1.0.x-dev` branches, date versions) and then ordered by PHP's `version_compare`, as
//! Composer orders them: `dev < alpha < beta < RC < release < patch`. Named branches
//! (`dev-main`) have no order and are rejected.

use super::{VersionError, VersionScheme, cmp_digits};
use std::cmp::Ordering;

const STABILITIES: [&str; 9] = [
    "stable", "beta", "b", "rc", "alpha", "a", "patch", "pl", "p",
];

fn expand_stability(s: &str) -> &'static str {
    match s {
        "a" | "alpha" => "alpha",
        "b" | "beta" => "beta",
        "p" | "pl" | "patch" => "patch",
        "rc" => "RC",
        _ => "stable",
    }
}

/// Parses Composer's modifier suffix `[._-]?(stability(([.-]?\d+)*))?([.-]?dev)?` to the end of
/// `rest` (already lowercased); returns the normalised suffix.
fn modifier(rest: &str) -> Option<String> {
    let candidates: &[&str] = match rest.as_bytes().first() {
        Some(b'.' | b'_' | b'-') => &[&rest[1..], rest],
        _ => &[rest],
    };
    for &r in candidates {
        // No stability at all: only an optional dev marker may follow.
        if let Some(dev) = dev_tail(r) {
            return Some(if dev { "-dev".into() } else { String::new() });
        }
        for stab in STABILITIES {
            let Some(after) = r.strip_prefix(stab) else {
                continue;
            };
            let b = after.as_bytes();
            let mut i = 0;
            let mut num = String::new();
            loop {
                let mut j = i;
                if matches!(b.get(j), Some(b'.' | b'-')) {
                    j += 1;
                }
                let n = b[j.min(b.len())..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if n == 0 {
                    break;
                }
                num.push_str(&after[i..j + n]);
                i = j + n;
            }
            let Some(dev) = dev_tail(&after[i..]) else {
                continue;
            };
            let mut out = String::new();
            if stab != "stable" {
                out.push('-');
                out.push_str(expand_stability(stab));
                out.push_str(num.trim_start_matches(['.', '-']));
            } else if !num.is_empty() || dev {
                // Composer returns early for `stable` and keeps nothing else.
                return Some(String::new());
            }
            if dev {
                out.push_str("-dev");
            }
            return Some(out);
        }
    }
    None
}

/// `Some(has_dev)` when `s` is empty or exactly `[.-]?dev`.
fn dev_tail(s: &str) -> Option<bool> {
    match s {
        "" => Some(false),
        "dev" | ".dev" | "-dev" => Some(true),
        _ => None,
    }
}

/// Normalises a Composer version string.
pub fn normalize(input: &str) -> Result<String, VersionError> {
    let err = |reason: &str| VersionError::new(VersionScheme::Composer, input, reason);
    let mut v = input.trim().to_ascii_lowercase();
    if let Some((left, _)) = v.split_once(" as ") {
        v = left.trim().to_string();
    }
    if let Some(at) = v.rfind('@') {
        v.truncate(at);
    }
    if matches!(v.as_str(), "master" | "trunk" | "default") || v.starts_with("dev-") {
        return Err(err("branch names have no version order"));
    }
    if let Some((left, right)) = v.split_once('+')
        && !left.is_empty()
        && !right.is_empty()
        && !right.contains(char::is_whitespace)
    {
        v = left.to_string();
    }
    if v.is_empty() || !v.is_ascii() || v.contains(char::is_whitespace) {
        return Err(err("empty or malformed version"));
    }
    let s = v.strip_prefix('v').unwrap_or(&v);
    // Classical `major(.minor(.patch(.build)))modifier`, major at most five digits.
    let b = s.as_bytes();
    let major = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if (1..=5).contains(&major) {
        let mut parts = vec![&s[..major]];
        let mut i = major;
        while parts.len() < 4 && b.get(i) == Some(&b'.') {
            let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                break;
            }
            parts.push(&s[i + 1..i + 1 + n]);
            i += 1 + n;
        }
        if let Some(m) = modifier(&s[i..]) {
            let mut out = parts.join(".");
            for _ in parts.len()..4 {
                out.push_str(".0");
            }
            return Ok(out + &m);
        }
    }
    // Date versions: `YYYY(sep?NN){1,6}(sep?N{1,3}){0,2}` with `.`/`:`/`-` separators.
    if major >= 4 {
        let end = b
            .iter()
            .take_while(|c| c.is_ascii_digit() || matches!(c, b'.' | b':' | b'-'))
            .count();
        let mut cut = end;
        while cut > 4 {
            let date = &s[..cut];
            if date.ends_with(|c: char| c.is_ascii_digit())
                && let Some(m) = modifier(&s[cut..])
            {
                let digits = date.bytes().filter(u8::is_ascii_digit).count();
                if digits >= 6 {
                    let norm: String = date
                        .chars()
                        .map(|c| if c.is_ascii_digit() { c } else { '.' })
                        .collect();
                    return Ok(norm + &m);
                }
            }
            cut -= 1;
        }
    }
    // Numbered dev branches: `1.0.x-dev`, `2.*-dev`.
    if let Some(name) = s
        .strip_suffix("dev")
        .map(|n| n.strip_suffix(['.', '-']).unwrap_or(n))
    {
        let mut parts: Vec<String> = Vec::new();
        for p in name.split('.') {
            if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) {
                parts.push(p.to_string());
            } else if matches!(p, "x" | "*") && !parts.is_empty() {
                parts.push("9999999".into());
            } else {
                parts.clear();
                break;
            }
        }
        if !parts.is_empty() && parts.len() <= 4 {
            while parts.len() < 4 {
                parts.push("9999999".into());
            }
            return Ok(parts.join(".") + "-dev");
        }
    }
    Err(err("not a Composer version"))
}

/// PHP's `php_canonicalize_version`: `-`, `_`, `+` and other punctuation become `.`, and a `.`
/// separates every digit/non-digit transition.
fn canonicalize(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = String::with_capacity(b.len() * 2);
    let Some(&first) = b.first() else {
        return out;
    };
    out.push(first as char);
    let mut lp = first;
    let isdig = |c: u8| c.is_ascii_digit();
    let isndig = |c: u8| !c.is_ascii_digit() && c != b'.';
    for &c in &b[1..] {
        let last_dot = out.ends_with('.');
        if matches!(c, b'-' | b'_' | b'+') {
            if !last_dot {
                out.push('.');
            }
        } else if (isndig(lp) && isdig(c)) || (isdig(lp) && isndig(c)) {
            if !last_dot {
                out.push('.');
            }
            out.push(c as char);
        } else if !c.is_ascii_alphanumeric() {
            if !last_dot {
                out.push('.');
            }
        } else {
            out.push(c as char);
        }
        lp = c;
    }
    out
}

fn special_order(form: &str) -> i32 {
    const FORMS: [(&str, i32); 10] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("RC", 3),
        ("rc", 3),
        ("#", 4),
        ("pl", 5),
        ("p", 5),
    ];
    FORMS
        .iter()
        .find(|(name, _)| form.starts_with(name))
        .map_or(-1, |&(_, o)| o)
}

/// PHP's `version_compare` without an operator.
pub fn php_version_compare(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let (ca, cb) = (canonicalize(a), canonicalize(b));
    let pa: Vec<&str> = ca.split('.').collect();
    let pb: Vec<&str> = cb.split('.').collect();
    let digit = |s: &str| s.as_bytes().first().is_some_and(u8::is_ascii_digit);
    let lead_digits = |s: &str| {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        s[..n].to_string()
    };
    for k in 0..pa.len().max(pb.len()) {
        let o = match (pa.get(k), pb.get(k)) {
            (Some(x), Some(y)) => match (digit(x), digit(y)) {
                (true, true) => cmp_digits(lead_digits(x).as_bytes(), lead_digits(y).as_bytes()),
                (false, false) => special_order(x).cmp(&special_order(y)),
                (true, false) => 4.cmp(&special_order(y)),
                (false, true) => special_order(x).cmp(&4),
            },
            (Some(x), None) => {
                if digit(x) {
                    Ordering::Greater
                } else {
                    special_order(x).cmp(&4)
                }
            }
            (None, Some(y)) => {
                if digit(y) {
                    Ordering::Less
                } else {
                    4.cmp(&special_order(y))
                }
            }
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Orders two Composer versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(php_version_compare(&normalize(a)?, &normalize(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn normalisation_matches_composer() {
        for (raw, norm) in [
            ("1.0.0", "1.0.0.0"),
            ("v1.2", "1.2.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0-RC1", "1.0.0.0-RC1"),
            ("1.0.0-rc.2", "1.0.0.0-RC2"),
            ("1.0-beta.1", "1.0.0.0-beta1"),
            ("1.0.0-p1", "1.0.0.0-patch1"),
            ("1.0.0-pl2", "1.0.0.0-patch2"),
            ("1.0.0-patch3", "1.0.0.0-patch3"),
            ("1.0.0a1", "1.0.0.0-alpha1"),
            ("1.0.0-dev", "1.0.0.0-dev"),
            ("1.0.0-beta2-dev", "1.0.0.0-beta2-dev"),
            ("1.0.0-stable", "1.0.0.0"),
            ("1.0.0+build.7", "1.0.0.0"),
            ("1.0.0@beta", "1.0.0.0"),
            ("1.0.x-dev", "1.0.9999999.9999999-dev"),
            ("20210101", "20210101"),
            ("2021-01-01", "2021.01.01"),
            ("2010.10.10", "2010.10.10.0"),
        ] {
            assert_eq!(normalize(raw).unwrap(), norm, "{raw}");
        }
    }

    #[test]
    fn ordering() {
        let chain = [
            "1.0.0-dev",
            "1.0.0-alpha1",
            "1.0.0-alpha2",
            "1.0.0-beta1",
            "1.0.0-RC1",
            "1.0.0-rc2",
            "1.0.0",
            "1.0.0-p1",
            "1.0.0-patch2",
            "1.0.1",
            "1.1",
            "v2.0.0",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(c(w[1], w[0]), Greater);
        }
        assert_eq!(c("1.0", "1.0.0.0"), Equal);
        assert_eq!(c("v1.0.0", "1.0.0"), Equal);
        assert_eq!(c("5.4.10", "5.4.9"), Greater);
    }

    #[test]
    fn php_version_compare_rules() {
        assert_eq!(php_version_compare("1.0.0", "1.0"), Greater);
        assert_eq!(php_version_compare("1.0rc1", "1.0"), Less);
        assert_eq!(php_version_compare("1.0pl1", "1.0"), Greater);
        assert_eq!(php_version_compare("1.0-dev", "1.0alpha"), Less);
        assert_eq!(php_version_compare("1.0.0", "1.0.0"), Equal);
    }

    #[test]
    fn invalid() {
        for bad in ["", "dev-main", "master", "foo", "1.0.0-bogus", "1.0 .0"] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?}");
        }
    }
}
