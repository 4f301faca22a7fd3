//! The ecosystem keys and package-name normalisation shared by importers and the matcher, so an
//! advisory and an installed package meet under the same key.

use palisade_core::{Distro, Ecosystem, Package};

/// The advisory ecosystem key for an installed package: the OSV name for language ecosystems,
/// `<distro id>:<release>` for OS packages (`None` when the distro is unknown).
pub fn ecosystem_key(package: &Package, distro: Option<&Distro>) -> Option<String> {
    if package.ecosystem.is_os() {
        let d = distro?;
        Some(format!("{}:{}", d.id, d.release_key()?))
    } else {
        Some(package.ecosystem.osv_name().to_string())
    }
}

/// Maps an OSV ecosystem string (`PyPI`, `Debian:12`, `Alpine:v3.18`, `Ubuntu:22.04:LTS`, …) to
/// our key, or `None` for ecosystems we do not match.
pub fn osv_ecosystem_key(osv: &str) -> Option<String> {
    let (base, rest) = match osv.split_once(':') {
        Some((b, r)) => (b, Some(r)),
        None => (osv, None),
    };
    let lang = match base {
        "PyPI" | "npm" | "crates.io" | "Go" | "Maven" | "RubyGems" | "Packagist" | "NuGet" => {
            Some(base)
        }
        _ => None,
    };
    if let Some(l) = lang {
        return Some(l.to_string());
    }
    let release = rest?;
    match base {
        "Debian" => {
            let codename = match release {
                "7" => "wheezy",
                "8" => "jessie",
                "9" => "stretch",
                "10" => "buster",
                "11" => "bullseye",
                "12" => "bookworm",
                "13" => "trixie",
                "14" => "forky",
                other => other,
            };
            Some(format!("debian:{codename}"))
        }
        "Alpine" => Some(format!(
            "alpine:{}",
            if release.starts_with('v') {
                release.to_string()
            } else {
                format!("v{release}")
            }
        )),
        "Ubuntu" => Some(format!(
            "ubuntu:{}",
            release.split(':').next().unwrap_or(release)
        )),
        "Rocky Linux" => Some(format!("rocky:{release}")),
        "AlmaLinux" => Some(format!("almalinux:{release}")),
        "Red Hat" => Some(format!("rhel:{release}")),
        _ => None,
    }
}

/// Normalises a package name for lookup: PEP 503 for PyPI (`Foo_Bar.baz` → `foo-bar-baz`), lower
/// case for ecosystems whose registries are case-insensitive, unchanged otherwise.
pub fn normalize_name(ecosystem_key: &str, name: &str) -> String {
    match ecosystem_key {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut last_sep = false;
            for ch in name.trim().chars() {
                if matches!(ch, '-' | '_' | '.') {
                    if !last_sep {
                        out.push('-');
                    }
                    last_sep = true;
                } else {
                    out.push(ch.to_ascii_lowercase());
                    last_sep = false;
                }
            }
            out
        }
        "NuGet" | "Packagist" | "crates.io" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// Our ecosystem for an advisory key, for choosing the version scheme.
pub fn ecosystem_of_key(key: &str) -> Option<Ecosystem> {
    Some(match key {
        "PyPI" => Ecosystem::PyPI,
        "npm" => Ecosystem::Npm,
        "crates.io" => Ecosystem::Cargo,
        "Go" => Ecosystem::Go,
        "Maven" => Ecosystem::Maven,
        "RubyGems" => Ecosystem::RubyGems,
        "Packagist" => Ecosystem::Packagist,
        "NuGet" => Ecosystem::NuGet,
        _ => match key.split_once(':')?.0 {
            "debian" | "ubuntu" => Ecosystem::Deb,
            "alpine" | "wolfi" => Ecosystem::Apk,
            _ => Ecosystem::Rpm,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            osv_ecosystem_key("Debian:12").as_deref(),
            Some("debian:bookworm")
        );
        assert_eq!(
            osv_ecosystem_key("Alpine:v3.18").as_deref(),
            Some("alpine:v3.18")
        );
        assert_eq!(osv_ecosystem_key("PyPI").as_deref(), Some("PyPI"));
        assert_eq!(
            osv_ecosystem_key("Ubuntu:22.04:LTS").as_deref(),
            Some("ubuntu:22.04")
        );
        assert_eq!(osv_ecosystem_key("Hackage"), None);
        assert_eq!(normalize_name("PyPI", "Jinja2"), "jinja2");
        assert_eq!(
            normalize_name("PyPI", "zope.interface__x"),
            "zope-interface-x"
        );
        assert_eq!(ecosystem_of_key("debian:bookworm"), Some(Ecosystem::Deb));
    }
}
