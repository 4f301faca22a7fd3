//! Packages found in images and file systems, with the identity advisories are matched on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The package universe a name and version belong to. It decides which advisories apply and how
/// versions are ordered; OS ecosystems are further qualified by the [`Distro`] of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ecosystem {
    /// dpkg packages (Debian, Ubuntu, distroless).
    Deb,
    /// apk packages (Alpine, Wolfi).
    Apk,
    /// rpm packages (RHEL, Fedora, CentOS, Rocky, Alma, Amazon Linux, SUSE, …).
    Rpm,
    PyPI,
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "crates.io")]
    Cargo,
    Go,
    Maven,
    RubyGems,
    Packagist,
    NuGet,
}

impl Ecosystem {
    /// Whether versions come from an OS package manager (matched with the scan's distro).
    pub fn is_os(self) -> bool {
        matches!(self, Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm)
    }

    /// The OSV ecosystem name for language ecosystems (OS ones depend on the distro, see
    /// [`Distro::osv_ecosystem`]).
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Deb => "Debian",
            Ecosystem::Apk => "Alpine",
            Ecosystem::Rpm => "Red Hat",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "crates.io",
            Ecosystem::Go => "Go",
            Ecosystem::Maven => "Maven",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::Packagist => "Packagist",
            Ecosystem::NuGet => "NuGet",
        }
    }

    /// The package-url type (`pkg:<type>/…`).
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::PyPI => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Go => "golang",
            Ecosystem::Maven => "maven",
            Ecosystem::RubyGems => "gem",
            Ecosystem::Packagist => "composer",
            Ecosystem::NuGet => "nuget",
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// The operating system of a scanned root, from `/etc/os-release` and its older friends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Distro {
    /// os-release `ID`: `debian`, `ubuntu`, `alpine`, `rhel`, `rocky`, `almalinux`, `amzn`, …
    pub id: String,
    /// os-release `VERSION_ID` (`12`, `3.19.1`, `9.3`), or the contents of `alpine-release` etc.
    pub version_id: Option<String>,
    /// os-release `VERSION_CODENAME` (`bookworm`), where the distro has one.
    pub codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

impl Distro {
    /// The release key advisories of this distro are published under: Debian codename
    /// (`bookworm`), Alpine branch (`v3.19`), or the major version for rpm distros (`9`).
    pub fn release_key(&self) -> Option<String> {
        match self.id.as_str() {
            "debian" => self.codename.clone().or_else(|| {
                self.version_id
                    .as_deref()
                    .and_then(|v| debian_codename(v.split('.').next().unwrap_or(v)))
                    .map(str::to_string)
            }),
            // Ubuntu advisories (OSV `Ubuntu:22.04:LTS`) are keyed by release number.
            "ubuntu" => self.version_id.clone().or_else(|| self.codename.clone()),
            "alpine" | "wolfi" => {
                let v = self.version_id.as_deref()?;
                let mut parts = v.split('.');
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) if !b.is_empty() => Some(format!("v{a}.{b}")),
                    _ => Some(format!("v{v}")),
                }
            }
            _ => self
                .version_id
                .as_deref()
                .map(|v| v.split('.').next().unwrap_or(v).to_string()),
        }
    }
}

fn debian_codename(major: &str) -> Option<&'static str> {
    Some(match major {
        "7" => "wheezy",
        "8" => "jessie",
        "9" => "stretch",
        "10" => "buster",
        "11" => "bullseye",
        "12" => "bookworm",
        "13" => "trixie",
        "14" => "forky",
        _ => return None,
    })
}

/// Where in the image a package was found: the layer that last wrote its evidence and the path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PackageLocation {
    /// `sha256:…` of the (compressed) layer blob, or `None` for a plain root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    /// Absolute path inside the image of the file the package was read from.
    pub path: String,
}

/// One installed package. OS packages carry the source package name and version too, since distro
/// advisories are published per source package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    pub location: PackageLocation,
}

impl Package {
    /// A package with its purl computed from the ecosystem, name and version.
    pub fn new(
        ecosystem: Ecosystem,
        name: impl Into<String>,
        version: impl Into<String>,
        location: PackageLocation,
    ) -> Self {
        let name = name.into();
        let version = version.into();
        let purl = purl(ecosystem, None, &name, &version, &[]);
        Package {
            name,
            version,
            ecosystem,
            purl,
            source_name: None,
            source_version: None,
            arch: None,
            license: None,
            location,
        }
    }

    /// Recomputes the purl with the distro qualifier (`distro=debian-12`) and namespace, for OS
    /// packages once the distro of the scan is known.
    pub fn qualify_os_purl(&mut self, distro: &Distro) {
        if !self.ecosystem.is_os() {
            return;
        }
        let distro_q = match &distro.version_id {
            Some(v) => format!("{}-{}", distro.id, v),
            None => distro.id.clone(),
        };
        let mut qualifiers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &self.arch {
            qualifiers.push(("arch", a));
        }
        qualifiers.push(("distro", &distro_q));
        // The purl spec carries an rpm epoch as a qualifier, not inside the version.
        let mut version = self.version.as_str();
        if self.ecosystem == Ecosystem::Rpm
            && let Some((epoch, rest)) = version.split_once(':')
            && !epoch.is_empty()
            && epoch.bytes().all(|b| b.is_ascii_digit())
        {
            qualifiers.push(("epoch", epoch));
            version = rest;
        }
        self.purl = purl(
            self.ecosystem,
            Some(&distro.id),
            &self.name,
            version,
            &qualifiers,
        );
    }
}

/// Builds a package URL (<https://github.com/package-url/purl-spec>). `namespace` overrides the
/// one derived from the name (OS vendor for deb/apk/rpm); Maven names are `group:artifact`, Go and
/// npm scoped names keep their `/`.
pub fn purl(
    ecosystem: Ecosystem,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut out = format!("pkg:{}/", ecosystem.purl_type());
    let (ns, short): (Option<String>, String) = match ecosystem {
        Ecosystem::Maven => match name.split_once(':') {
            Some((g, a)) => (Some(g.to_string()), a.to_string()),
            None => (None, name.to_string()),
        },
        Ecosystem::Npm | Ecosystem::Go | Ecosystem::Packagist => match name.rsplit_once('/') {
            Some((n, s)) => (Some(n.to_string()), s.to_string()),
            None => (None, name.to_string()),
        },
        Ecosystem::PyPI => (None, name.to_ascii_lowercase().replace('_', "-")),
        _ => (namespace.map(str::to_string), name.to_string()),
    };
    if let Some(ns) = ns {
        let segments: Vec<String> = ns.split('/').map(percent_encode).collect();
        out.push_str(&segments.join("/"));
        out.push('/');
    }
    out.push_str(&percent_encode(&short));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&percent_encode(version));
    }
    let mut qs: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qs.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in qs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            purl(Ecosystem::Npm, None, "@babel/core", "7.0.0", &[]),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            purl(
                Ecosystem::Maven,
                None,
                "org.apache.logging.log4j:log4j-core",
                "2.14.1",
                &[]
            ),
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
        );
        assert_eq!(
            purl(Ecosystem::Go, None, "golang.org/x/net", "v0.1.0", &[]),
            "pkg:golang/golang.org/x/net@v0.1.0"
        );
        assert_eq!(
            purl(Ecosystem::PyPI, None, "PyYAML", "5.3", &[]),
            "pkg:pypi/pyyaml@5.3"
        );
        let mut p = Package::new(
            Ecosystem::Deb,
            "libc6",
            "2.36-9+deb12u4",
            PackageLocation::default(),
        );
        p.arch = Some("amd64".into());
        let d = Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
        };
        p.qualify_os_purl(&d);
        assert_eq!(
            p.purl,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(d.release_key().as_deref(), Some("bookworm"));
    }

    #[test]
    fn release_keys() {
        let alpine = Distro {
            id: "alpine".into(),
            version_id: Some("3.19.1".into()),
            codename: None,
            pretty_name: None,
        };
        assert_eq!(alpine.release_key().as_deref(), Some("v3.19"));
        let deb = Distro {
            id: "debian".into(),
            version_id: Some("11".into()),
            codename: None,
            pretty_name: None,
        };
        assert_eq!(deb.release_key().as_deref(), Some("bullseye"));
        let ubuntu = Distro {
            id: "ubuntu".into(),
            version_id: Some("22.04".into()),
            codename: Some("jammy".into()),
            pretty_name: None,
        };
        assert_eq!(ubuntu.release_key().as_deref(), Some("22.04"));
    }

    #[test]
    fn rpm_epoch_is_a_qualifier() {
        let mut p = Package::new(
            Ecosystem::Rpm,
            "openssl-libs",
            "1:1.0.2k-19.el7",
            PackageLocation::default(),
        );
        p.arch = Some("x86_64".into());
        let d = Distro {
            id: "centos".into(),
            version_id: Some("7".into()),
            codename: None,
            pretty_name: None,
        };
        p.qualify_os_purl(&d);
        assert_eq!(
            p.purl,
            "pkg:rpm/centos/openssl-libs@1.0.2k-19.el7?arch=x86_64&distro=centos-7&epoch=1"
        );
    }
}
