//! OS detection: which distro and release a merged root is, so OS packages are matched against
//! the right advisories (bookworm vs bullseye, Alpine v3.19, RHEL 9).
//!
//! `/etc/os-release` (falling back to `/usr/lib/os-release`, per os-release(5)) is read first; the
//! older release files (`alpine-release`, `debian_version`, `lsb-release`, `redhat-release`,
//! `centos-release`, `system-release`) are used when it is missing, and `debian_version` also
//! fills in a Debian os-release without `VERSION_ID` (testing/sid).

use crate::fs::ImageFs;
use palisade_core::Distro;
use std::collections::HashMap;

/// Release files read, in the order they are consulted.
const FILES: &[&str] = &[
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/alpine-release",
    "/etc/debian_version",
    "/etc/lsb-release",
    "/etc/redhat-release",
    "/etc/centos-release",
    "/etc/rocky-release",
    "/etc/almalinux-release",
    "/etc/oracle-release",
    "/etc/fedora-release",
    "/etc/system-release",
];

/// Release files are tiny; anything bigger is not one (and is not read).
const MAX_RELEASE_FILE: usize = 64 * 1024;

/// Whether the OS detector needs this path kept.
pub fn wants(path: &str) -> bool {
    FILES.contains(&path)
}

fn read<'a>(fs: &'a ImageFs, path: &str) -> Option<&'a str> {
    let data = fs.read(path)?;
    if data.len() > MAX_RELEASE_FILE {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// The distro of a merged root, if it can be told.
pub fn detect(fs: &ImageFs) -> Option<Distro> {
    let os_release = read(fs, "/etc/os-release")
        .or_else(|| read(fs, "/usr/lib/os-release"))
        .and_then(|t| from_os_release(&parse_os_release(t)));
    if let Some(mut d) = os_release {
        if d.id == "debian"
            && d.version_id.is_none()
            && let Some(v) = read(fs, "/etc/debian_version").and_then(from_debian_version)
        {
            d.version_id = v.version_id;
            if d.codename.is_none() {
                d.codename = v.codename;
            }
        }
        return Some(d);
    }
    if let Some(v) = read(fs, "/etc/alpine-release").and_then(first_line) {
        return Some(Distro {
            id: "alpine".into(),
            version_id: Some(v.to_string()),
            codename: None,
            pretty_name: None,
        });
    }
    // lsb-release before debian_version: Ubuntu has both, and its debian_version names the
    // Debian release it branched from.
    if let Some(d) = read(fs, "/etc/lsb-release").and_then(from_lsb_release) {
        return Some(d);
    }
    if let Some(d) = read(fs, "/etc/debian_version").and_then(from_debian_version) {
        return Some(d);
    }
    for f in &FILES[5..] {
        if let Some(d) = read(fs, f).and_then(from_redhat_release) {
            return Some(d);
        }
    }
    None
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Parses os-release(5) / lsb-release assignments: `KEY=value`, values optionally in single or
/// double quotes; inside double quotes (and unquoted) `\` escapes `$ " \ `` ` ``; comments and
/// malformed lines are ignored.
pub fn parse_os_release(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        out.insert(key.to_string(), unquote(raw.trim()));
    }
    out
}

fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => match chars.next() {
                Some(n @ ('$' | '"' | '\\' | '`' | '\'')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            (_, c) => out.push(c),
        }
    }
    out
}

fn non_empty(m: &HashMap<String, String>, k: &str) -> Option<String> {
    m.get(k)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A [`Distro`] from parsed os-release fields; `None` without an `ID`.
pub fn from_os_release(m: &HashMap<String, String>) -> Option<Distro> {
    let id = non_empty(m, "ID")?.to_ascii_lowercase();
    let mut codename = non_empty(m, "VERSION_CODENAME");
    if codename.is_none() && id == "ubuntu" {
        codename = non_empty(m, "UBUNTU_CODENAME");
    }
    if codename.is_none() && id == "debian" {
        // Older Debian os-release: VERSION="9 (stretch)".
        codename = non_empty(m, "VERSION").and_then(|v| {
            let (_, rest) = v.split_once('(')?;
            let name = rest.split(')').next()?.trim();
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()))
                .then(|| name.to_string())
        });
    }
    Some(Distro {
        id,
        version_id: non_empty(m, "VERSION_ID"),
        codename,
        pretty_name: non_empty(m, "PRETTY_NAME"),
    })
}

/// `/etc/debian_version`: `11.7` (a point release) or `bookworm/sid` (testing).
pub fn from_debian_version(text: &str) -> Option<Distro> {
    let v = first_line(text)?;
    let (version_id, codename) = if v.chars().next()?.is_ascii_digit() {
        let major = v.split('.').next().unwrap_or(v);
        let d = Distro {
            id: "debian".into(),
            version_id: Some(major.to_string()),
            codename: None,
            pretty_name: None,
        };
        (Some(major.to_string()), d.release_key())
    } else {
        let name = v.split('/').next().unwrap_or(v).trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase()) {
            return None;
        }
        (None, Some(name.to_string()))
    };
    Some(Distro {
        id: "debian".into(),
        version_id,
        codename,
        pretty_name: None,
    })
}

/// `/etc/lsb-release`: `DISTRIB_ID`, `DISTRIB_RELEASE`, `DISTRIB_CODENAME`.
pub fn from_lsb_release(text: &str) -> Option<Distro> {
    let m = parse_os_release(text);
    Some(Distro {
        id: non_empty(&m, "DISTRIB_ID")?.to_ascii_lowercase(),
        version_id: non_empty(&m, "DISTRIB_RELEASE"),
        codename: non_empty(&m, "DISTRIB_CODENAME"),
        pretty_name: non_empty(&m, "DISTRIB_DESCRIPTION"),
    })
}

/// `/etc/redhat-release` and friends: `CentOS Linux release 7.9.2009 (Core)`, `Red Hat
/// Enterprise Linux Server release 7.9 (Maipo)`, `Amazon Linux release 2 (Karoo)`, ….
pub fn from_redhat_release(text: &str) -> Option<Distro> {
    let line = first_line(text)?;
    let lower = line.to_ascii_lowercase();
    let id = [
        ("red hat enterprise linux", "rhel"),
        ("centos", "centos"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
        ("oracle linux", "ol"),
        ("fedora", "fedora"),
        ("amazon linux", "amzn"),
        ("scientific linux", "scientific"),
    ]
    .iter()
    .find(|(needle, _)| lower.starts_with(needle))
    .map(|(_, id)| *id)?;
    let version = lower
        .split_once(" release ")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string);
    Some(Distro {
        id: id.into(),
        version_id: version,
        codename: None,
        pretty_name: Some(line.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{EntryKind, FileEntry};
    use std::sync::Arc;

    fn fs_with(files: &[(&str, &str)]) -> ImageFs {
        let mut fs = ImageFs::new(40);
        for (p, c) in files {
            fs.insert(
                p.to_string(),
                FileEntry {
                    layer: None,
                    mode: 0o644,
                    kind: EntryKind::File(Arc::from(c.as_bytes())),
                },
            );
        }
        fs
    }

    const BOOKWORM: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

    #[test]
    fn debian_os_release() {
        let d = detect(&fs_with(&[("/etc/os-release", BOOKWORM)])).unwrap();
        assert_eq!(d.id, "debian");
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        assert_eq!(
            d.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn usr_lib_fallback_and_symlink() {
        let mut fs = fs_with(&[("/usr/lib/os-release", BOOKWORM)]);
        assert_eq!(detect(&fs).unwrap().id, "debian");
        fs.insert(
            "/etc/os-release".into(),
            FileEntry {
                layer: None,
                mode: 0o777,
                kind: EntryKind::Symlink("../usr/lib/os-release".into()),
            },
        );
        assert_eq!(detect(&fs).unwrap().codename.as_deref(), Some("bookworm"));
    }

    #[test]
    fn quoting_and_escapes() {
        let m = parse_os_release(
            "# comment\nA=\"a \\\"quoted\\\" \\$var \\\\ x\"\nB='single $x \\n'\nC=plain\nbad line\nD=\"\"\n",
        );
        assert_eq!(m["A"], "a \"quoted\" $var \\ x");
        assert_eq!(m["B"], "single $x \\n");
        assert_eq!(m["C"], "plain");
        assert_eq!(m["D"], "");
        assert!(!m.contains_key("bad line"));
    }

    #[test]
    fn old_debian_without_codename() {
        let d = detect(&fs_with(&[(
            "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 8 (jessie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"8\"\nVERSION=\"8 (jessie)\"\nID=debian\n",
        )]))
        .unwrap();
        assert_eq!(d.codename.as_deref(), Some("jessie"));
        assert_eq!(d.release_key().as_deref(), Some("jessie"));
    }

    #[test]
    fn debian_testing_fills_from_debian_version() {
        let d = detect(&fs_with(&[
            (
                "/etc/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nNAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=trixie\nID=debian\n",
            ),
            ("/etc/debian_version", "trixie/sid\n"),
        ]))
        .unwrap();
        assert_eq!(d.codename.as_deref(), Some("trixie"));
        assert_eq!(d.version_id, None);
    }

    #[test]
    fn debian_version_only() {
        let d = detect(&fs_with(&[("/etc/debian_version", "11.7\n")])).unwrap();
        assert_eq!(d.version_id.as_deref(), Some("11"));
        assert_eq!(d.codename.as_deref(), Some("bullseye"));
        let d = detect(&fs_with(&[("/etc/debian_version", "bookworm/sid\n")])).unwrap();
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        assert_eq!(d.release_key().as_deref(), Some("bookworm"));
    }

    #[test]
    fn alpine() {
        let d = detect(&fs_with(&[("/etc/alpine-release", "3.19.1\n")])).unwrap();
        assert_eq!(d.id, "alpine");
        assert_eq!(d.release_key().as_deref(), Some("v3.19"));
        let d = detect(&fs_with(&[(
            "/etc/os-release",
            "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n",
        )]))
        .unwrap();
        assert_eq!(d.version_id.as_deref(), Some("3.18.4"));
    }

    #[test]
    fn ubuntu_lsb_release_wins_over_debian_version() {
        let d = detect(&fs_with(&[
            ("/etc/debian_version", "bookworm/sid\n"),
            (
                "/etc/lsb-release",
                "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.3 LTS\"\n",
            ),
        ]))
        .unwrap();
        assert_eq!(d.id, "ubuntu");
        assert_eq!(d.codename.as_deref(), Some("jammy"));
    }

    #[test]
    fn redhat_family_release_files() {
        let cases = [
            (
                "/etc/redhat-release",
                "CentOS Linux release 7.9.2009 (Core)\n",
                "centos",
                "7.9.2009",
            ),
            (
                "/etc/redhat-release",
                "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
                "rhel",
                "7.9",
            ),
            (
                "/etc/centos-release",
                "CentOS release 6.10 (Final)\n",
                "centos",
                "6.10",
            ),
            (
                "/etc/system-release",
                "Amazon Linux release 2 (Karoo)\n",
                "amzn",
                "2",
            ),
            (
                "/etc/system-release",
                "Amazon Linux AMI release 2018.03\n",
                "amzn",
                "2018.03",
            ),
            (
                "/etc/redhat-release",
                "Rocky Linux release 9.3 (Blue Onyx)\n",
                "rocky",
                "9.3",
            ),
        ];
        for (path, text, id, version) in cases {
            let d = detect(&fs_with(&[(path, text)])).unwrap();
            assert_eq!(d.id, id, "{text}");
            assert_eq!(d.version_id.as_deref(), Some(version), "{text}");
        }
        let amzn = detect(&fs_with(&[(
            "/etc/system-release",
            "Amazon Linux release 2 (Karoo)\n",
        )]))
        .unwrap();
        assert_eq!(amzn.release_key().as_deref(), Some("2"));
    }

    #[test]
    fn nothing_to_tell() {
        assert_eq!(detect(&fs_with(&[])), None);
        assert_eq!(detect(&fs_with(&[("/etc/os-release", "NAME=foo\n")])), None);
        assert_eq!(
            detect(&fs_with(&[("/etc/redhat-release", "something else\n")])),
            None
        );
    }

    #[test]
    fn wants_release_files_only() {
        assert!(wants("/etc/os-release"));
        assert!(wants("/etc/system-release"));
        assert!(!wants("/etc/passwd"));
    }
}
