//! Platforms (`os/arch[/variant]`) and choosing one manifest out of an index or manifest list.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ImageError;

/// The platform chosen when the user names none: what nearly every server runs.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// An image platform as written in indexes and image configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (as given to `--platform`); architecture aliases such as
    /// `x86_64` and `aarch64` are normalised to the names registries use.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let bad = |reason: &str| ImageError::InvalidReference {
            reference: s.to_string(),
            reason: format!("platform must be os/arch[/variant]: {reason}"),
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("wrong number of parts"));
        }
        if parts.iter().any(|p| p.is_empty() || p.len() > 64) {
            return Err(bad("empty or overlong part"));
        }
        if parts.iter().any(|p| {
            !p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        }) {
            return Err(bad("unexpected character"));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_arch(parts[1]),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// Whether an index entry for `other` satisfies a request for `self`. A request without a
    /// variant accepts any variant; `arm64` without a variant equals `arm64/v8`.
    pub fn matches(&self, other: &Platform) -> bool {
        if !self.os.eq_ignore_ascii_case(&other.os)
            || self.architecture != normalize_arch(&other.architecture)
        {
            return false;
        }
        match (&self.variant, &other.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }

    /// How exactly `other` matches a request without a variant: prefer the plain or default
    /// variant (`arm64` = `v8`, `arm` = `v7`), then anything.
    fn preference(&self, other: &Platform) -> u8 {
        if self.variant.is_some() {
            return 0;
        }
        match other.variant.as_deref() {
            None => 0,
            Some("v8") if self.architecture == "arm64" => 0,
            Some("v7") if self.architecture == "arm" => 0,
            Some(_) => 1,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Maps common architecture spellings (`uname -m`, Debian) to the OCI/Go names.
pub fn normalize_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" | "x64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" | "i486" | "i586" | "i686" | "x86" => "386".into(),
        "armhf" | "armel" => "arm".into(),
        other => other.to_string(),
    }
}

/// Picks the index entry for `wanted` (or [`DEFAULT_PLATFORM`]) among `(platform, item)` pairs.
/// Entries without a platform are only chosen when no entry has one and there is exactly one.
/// `reference` names the image in the error, which lists the platforms that are available.
pub fn select<'a, T>(
    reference: &str,
    entries: &'a [(Option<Platform>, T)],
    wanted: Option<&Platform>,
) -> Result<&'a T, ImageError> {
    let default;
    let want = match wanted {
        Some(w) => w,
        None => {
            default = Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
            };
            &default
        }
    };
    let with_platform: Vec<(&Platform, &T)> = entries
        .iter()
        .filter_map(|(p, t)| p.as_ref().map(|p| (p, t)))
        .collect();
    if with_platform.is_empty()
        && let [(_, only)] = entries
    {
        return Ok(only);
    }
    let best = with_platform
        .iter()
        .filter(|(p, _)| want.matches(p))
        .min_by_key(|(p, _)| want.preference(p));
    if let Some((_, t)) = best {
        return Ok(t);
    }
    let mut available: Vec<String> = with_platform
        .iter()
        .filter(|(p, _)| !(p.os == "unknown" && p.architecture == "unknown"))
        .map(|(p, _)| p.to_string())
        .collect();
    available.dedup();
    let available = if available.is_empty() {
        if entries.is_empty() {
            "none: the index is empty".to_string()
        } else {
            format!("{} entries without a platform", entries.len())
        }
    } else {
        available.join(", ")
    };
    Err(ImageError::PlatformNotFound {
        reference: reference.to_string(),
        platform: want.to_string(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_platforms() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("Linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/aarch64/v8").to_string(), "linux/arm64/v8");
        for bad in ["", "linux", "linux/", "a/b/c/d", "linux/am d64", "/amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_rules() {
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm/v7")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
    }

    #[test]
    fn selects_by_platform_and_lists_available() {
        let entries = vec![
            (Some(p("linux/arm/v6")), "armv6"),
            (Some(p("linux/arm/v7")), "armv7"),
            (Some(p("linux/amd64")), "amd64"),
            (Some(p("linux/arm64/v8")), "arm64"),
            (
                Some(Platform {
                    os: "unknown".into(),
                    architecture: "unknown".into(),
                    variant: None,
                }),
                "attestation",
            ),
        ];
        assert_eq!(*select("x", &entries, None).unwrap(), "amd64");
        assert_eq!(
            *select("x", &entries, Some(&p("linux/arm64"))).unwrap(),
            "arm64"
        );
        assert_eq!(
            *select("x", &entries, Some(&p("linux/arm"))).unwrap(),
            "armv7"
        );
        assert_eq!(
            *select("x", &entries, Some(&p("linux/arm/v6"))).unwrap(),
            "armv6"
        );
        let err = select("x", &entries, Some(&p("linux/s390x")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/s390x"), "{err}");
        assert!(
            err.contains("linux/arm/v6, linux/arm/v7, linux/amd64, linux/arm64/v8"),
            "{err}"
        );
        assert!(!err.contains("unknown"), "{err}");
    }

    #[test]
    fn single_entry_without_platform() {
        let entries = vec![(None, 1)];
        assert_eq!(*select("x", &entries, Some(&p("linux/arm64"))).unwrap(), 1);
        let two = vec![(None, 1), (None, 2)];
        assert!(select("x", &two, None).is_err());
        let empty: Vec<(Option<Platform>, i32)> = vec![];
        assert!(
            select("x", &empty, None)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
