//! Go versions: module versions (`v1.2.3`, pseudo-versions such as
//! `v0.0.0-20210101000000-abcdef123456`, `+incompatible`) follow SemVer precedence; standard
//! library versions appear in OSV without the `v` (`1.19.8`) and in binaries as toolchain strings
//! (`go1.19.8`, `go1.20`, `go1.21rc2`), which are mapped to SemVer (`1.20.0`, `1.21.0-rc.2`).

use super::semver::SemVersion;
use super::{VersionError, VersionScheme};
use std::cmp::Ordering;

/// A Go version in SemVer form: the toolchain spelling converted, anything else unchanged.
pub fn to_semver(input: &str) -> Result<String, VersionError> {
    let err = |reason: &str| VersionError::new(VersionScheme::Go, input, reason);
    let s = input.trim();
    let Some(rest) = s.strip_prefix("go") else {
        return Ok(s.to_string());
    };
    // `go1.22.1 X:boringcrypto`: experiments after a space do not change the version.
    let rest = rest.split_whitespace().next().unwrap_or("");
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, pre) = rest.split_at(num_end);
    let parts: Vec<&str> = num.split('.').collect();
    if num.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(err("malformed toolchain version"));
    }
    let mut out = parts.join(".");
    for _ in parts.len()..3 {
        out.push_str(".0");
    }
    if !pre.is_empty() {
        let kind_end = pre
            .find(|c: char| !c.is_ascii_lowercase())
            .unwrap_or(pre.len());
        let (kind, n) = pre.split_at(kind_end);
        if !matches!(kind, "alpha" | "beta" | "rc")
            || n.is_empty()
            || !n.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(err("toolchain prerelease must be betaN or rcN"));
        }
        out.push('-');
        out.push_str(kind);
        out.push('.');
        out.push_str(n);
    }
    Ok(out)
}

/// Orders two Go versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let sa = to_semver(a)?;
    let sb = to_semver(b)?;
    let va = SemVersion::parse(&sa, VersionScheme::Go).map_err(|e| rename(e, a))?;
    let vb = SemVersion::parse(&sb, VersionScheme::Go).map_err(|e| rename(e, b))?;
    Ok(va.cmp(&vb))
}

fn rename(e: VersionError, original: &str) -> VersionError {
    VersionError::new(VersionScheme::Go, original, e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn module_versions() {
        assert_eq!(c("v1.2.3", "v1.2.4"), Less);
        assert_eq!(c("v2.0.0+incompatible", "v2.0.0"), Equal);
        assert_eq!(c("v0.0.0-20210101000000-abcdef123456", "v0.0.1"), Less);
        assert_eq!(
            c(
                "v0.0.0-20210101000000-abcdef123456",
                "v0.0.0-20220101000000-abcdef123456"
            ),
            Less
        );
        // Pseudo-version derived from a tag sorts after it but before the next release.
        assert_eq!(c("v1.2.4-0.20210101000000-abcdef123456", "v1.2.3"), Greater);
        assert_eq!(c("v1.2.4-0.20210101000000-abcdef123456", "v1.2.4"), Less);
        assert_eq!(
            c("v1.2.4-pre.0.20210101000000-abcdef123456", "v1.2.4-pre"),
            Greater
        );
    }

    #[test]
    fn toolchain_versions() {
        assert_eq!(to_semver("go1.21rc2").unwrap(), "1.21.0-rc.2");
        assert_eq!(to_semver("go1.20").unwrap(), "1.20.0");
        assert_eq!(to_semver("go1.9beta2").unwrap(), "1.9.0-beta.2");
        assert_eq!(c("go1.19.8", "1.19.8"), Equal);
        assert_eq!(c("go1.19.7", "1.19.8"), Less);
        assert_eq!(c("go1.21rc2", "1.21.0"), Less);
        assert_eq!(c("go1.21rc2", "go1.21rc10"), Less);
        assert_eq!(c("go1.20", "1.20.1"), Less);
        assert_eq!(c("go1.22.1 X:boringcrypto", "1.22.1"), Equal);
        assert_eq!(c("go1.21beta1", "go1.21rc1"), Less);
    }

    #[test]
    fn invalid() {
        for bad in [
            "",
            "go",
            "go1.x",
            "go1.21foo1",
            "golang",
            "v1.2.3.4.5",
            "devel +abc",
        ] {
            assert!(compare(bad, "v1.0.0").is_err(), "{bad:?}");
        }
    }
}
