//! Alpine apk versions, ordered as apk-tools does:
//! `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}`.
//!
//! Pre-release suffixes `_alpha < _beta < _pre < _rc` sort before the plain release, which sorts
//! before the post-release suffixes `_cvs < _svn < _git < _hg < _p`. A component after a dot that
//! has a leading zero (on either side) is compared as a string, as in Gentoo. When one version
//! is a prefix of the other, the longer one is newer unless it continues with a pre-release
//! suffix.

use super::{VersionError, VersionScheme, cmp_digits};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

/// Suffix ranks; `NONE` (the plain release) is the pivot between pre and post releases.
const SUFFIXES: [(&str, u8); 9] = [
    ("alpha", 1),
    ("beta", 2),
    ("pre", 3),
    ("rc", 4),
    ("cvs", 6),
    ("svn", 7),
    ("git", 8),
    ("hg", 9),
    ("p", 10),
];
const SUFFIX_NONE: u8 = 5;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a [u8],
    suffix: u8,
}

/// Splits a version into tokens, rejecting anything apk-tools would not validate.
fn tokenize(input: &str) -> Result<Vec<Token<'_>>, VersionError> {
    let err = |reason: &str| VersionError::new(VersionScheme::Apk, input, reason);
    let s = input.as_bytes();
    let mut out = Vec::with_capacity(8);
    let digits_at = |k: usize| s[k..].iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits_at(0);
    if n == 0 {
        return Err(err("must start with a digit"));
    }
    out.push(Token {
        kind: Kind::InitialDigit,
        text: &s[..n],
        suffix: 0,
    });
    let mut i = n;
    let mut last = Kind::InitialDigit;
    while i < s.len() {
        let c = s[i];
        let tok = match c {
            b'a'..=b'z' => {
                if last > Kind::Digit {
                    return Err(err("letter in an unexpected place"));
                }
                i += 1;
                Token {
                    kind: Kind::Letter,
                    text: &s[i - 1..i],
                    suffix: 0,
                }
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if last > Kind::Digit {
                        return Err(err("'.' in an unexpected place"));
                    }
                    i += 1;
                }
                let kind = match last {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => return Err(err("digits in an unexpected place")),
                };
                let n = digits_at(i);
                if n == 0 {
                    return Err(err("expected digits"));
                }
                i += n;
                Token {
                    kind,
                    text: &s[i - n..i],
                    suffix: 0,
                }
            }
            b'_' => {
                if last > Kind::SuffixNo {
                    return Err(err("suffix in an unexpected place"));
                }
                i += 1;
                let n = s[i..].iter().take_while(|c| c.is_ascii_lowercase()).count();
                let word = &s[i..i + n];
                i += n;
                let rank = SUFFIXES
                    .iter()
                    .find(|(name, _)| name.as_bytes() == word)
                    .map(|&(_, r)| r)
                    .ok_or_else(|| err("unknown suffix"))?;
                Token {
                    kind: Kind::Suffix,
                    text: word,
                    suffix: rank,
                }
            }
            b'~' => {
                if last >= Kind::CommitHash {
                    return Err(err("'~' in an unexpected place"));
                }
                i += 1;
                let n = s[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
                if n == 0 {
                    return Err(err("empty commit hash after '~'"));
                }
                i += n;
                Token {
                    kind: Kind::CommitHash,
                    text: &s[i - n..i],
                    suffix: 0,
                }
            }
            b'-' => {
                if last >= Kind::RevisionNo || s.get(i + 1) != Some(&b'r') {
                    return Err(err("'-' must introduce the final -rN"));
                }
                i += 2;
                let n = digits_at(i);
                if n == 0 {
                    return Err(err("empty revision number"));
                }
                i += n;
                Token {
                    kind: Kind::RevisionNo,
                    text: &s[i - n..i],
                    suffix: 0,
                }
            }
            _ => return Err(err("unexpected character")),
        };
        last = tok.kind;
        out.push(tok);
    }
    Ok(out)
}

fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit if a.text[0] == b'0' || b.text[0] == b'0' => a.text.cmp(b.text),
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNo | Kind::RevisionNo => {
            cmp_digits(a.text, b.text)
        }
        Kind::Letter => a.text.cmp(b.text),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        Kind::CommitHash | Kind::End => a.text.cmp(b.text),
    }
}

/// Checks a version is valid by apk-tools' rules.
pub fn validate(v: &str) -> Result<(), VersionError> {
    tokenize(v).map(|_| ())
}

/// Orders two apk versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let ta = tokenize(a)?;
    let tb = tokenize(b)?;
    let end = Token {
        kind: Kind::End,
        text: b"",
        suffix: 0,
    };
    let mut k = 0;
    loop {
        let x = ta.get(k).copied().unwrap_or(end);
        let y = tb.get(k).copied().unwrap_or(end);
        if x.kind != y.kind {
            // One side stops or changes shape: the longer wins unless it goes on with a
            // pre-release suffix; otherwise the lower token kind is the newer version.
            if x.kind == Kind::Suffix && x.suffix < SUFFIX_NONE {
                return Ok(Ordering::Less);
            }
            if y.kind == Kind::Suffix && y.suffix < SUFFIX_NONE {
                return Ok(Ordering::Greater);
            }
            return Ok(y.kind.cmp(&x.kind));
        }
        if x.kind == Kind::End {
            return Ok(Ordering::Equal);
        }
        let ord = token_cmp(&x, &y);
        if ord != Ordering::Equal {
            return Ok(ord);
        }
        k += 1;
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
    fn suffix_order() {
        let chain = [
            "1.0_alpha",
            "1.0_alpha1",
            "1.0_alpha2",
            "1.0_beta",
            "1.0_pre1",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p1",
            "1.0_p2",
            "1.0a",
            "1.0.1",
            "1.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(c(w[1], w[0]), Greater, "{} > {}", w[1], w[0]);
        }
    }

    #[test]
    fn revisions_and_numbers() {
        assert_eq!(c("1.2.3-r0", "1.2.3-r1"), Less);
        assert_eq!(c("1.2.3-r10", "1.2.3-r9"), Greater);
        assert_eq!(c("1.2.3", "1.2.3-r0"), Less);
        assert_eq!(c("1.10", "1.9"), Greater);
        assert_eq!(c("1.0", "1"), Greater);
        assert_eq!(c("1.2.3_rc1-r0", "1.2.3-r0"), Less);
        assert_eq!(c("3.0.8-r0", "3.0.10-r0"), Less);
        assert_eq!(c("1.1.1t-r0", "1.1.1u-r0"), Less);
        assert_eq!(c("010", "10"), Equal);
    }

    #[test]
    fn leading_zero_components_compare_as_strings() {
        assert_eq!(c("1.01", "1.1"), Less);
        assert_eq!(c("1.001", "1.01"), Less);
        assert_eq!(c("1.09", "1.1"), Less);
        assert_eq!(c("2023.01", "2023.1"), Less);
    }

    #[test]
    fn commit_hash() {
        assert_eq!(c("1.0~abc", "1.0~abd"), Less);
        assert_eq!(c("1.0~abc", "1.0"), Greater);
        assert_eq!(c("1.0~abc-r1", "1.0-r1"), Greater);
        assert_eq!(c("1.0_git1~abc", "1.0_git1~abc-r1"), Less);
    }

    #[test]
    fn invalid() {
        for bad in [
            "",
            "a",
            "1.",
            "1..2",
            "1_foo",
            "1-1",
            "1-r",
            "1.0A",
            "1ab",
            "1_p1a",
            "1-r1.2",
            "1~",
            "1~xyz",
            "1 0",
            "1.0-r1-r2",
        ] {
            assert!(compare(bad, "1").is_err(), "{bad:?}");
        }
    }
}
