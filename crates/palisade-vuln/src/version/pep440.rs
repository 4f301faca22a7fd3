//! PyPI versions, ordered by PEP 440 (epochs, pre/post/dev releases, local versions; `1.0.0`
//! equals `1.0`). Parsing and ordering come from `pep440_rs`, which is checked against Python's
//! `packaging.version.Version` in the oracle tests.

use super::{VersionError, VersionScheme};
use pep440_rs::Version;
use std::cmp::Ordering;
use std::str::FromStr;

/// Parses a PEP 440 version (normalising spellings such as `1.0-RC1` or `v1.0`).
pub fn parse(v: &str) -> Result<Version, VersionError> {
    Version::from_str(v).map_err(|e| VersionError::new(VersionScheme::Pep440, v, e.to_string()))
}

/// Orders two PEP 440 versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse(a)?.cmp(&parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn pep440_examples() {
        let chain = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(c(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn normalisation() {
        assert_eq!(c("1.0.0", "1.0"), Equal);
        assert_eq!(c("1.0-RC1", "1.0rc1"), Equal);
        assert_eq!(c("v2.0", "2.0"), Equal);
        assert_eq!(c("1.0-1", "1.0.post1"), Equal);
        assert_eq!(c("0!1.0", "1.0"), Equal);
    }

    #[test]
    fn invalid() {
        for bad in ["", "abc", "1.0-foo", "1..0", "1.0+", "=1.0"] {
            assert!(compare(bad, "1").is_err(), "{bad:?}");
        }
    }
}
