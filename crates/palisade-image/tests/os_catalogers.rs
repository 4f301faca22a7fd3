//! OS detection and the OS package catalogers over whole roots, through the SBOM path
//! (`catalog_fs`): distro detected, packages found, purls qualified, layers attributed.

use palisade_core::Ecosystem;
use palisade_image::catalog::{Cataloger, apk, dpkg, rpm};
use palisade_image::fs::{EntryKind, FileEntry, ImageFs};
use palisade_image::sbom::{ScanTarget, catalog_fs};
use std::sync::Arc;

fn file(layer: &str, data: &[u8]) -> FileEntry {
    FileEntry {
        layer: Some(Arc::from(layer)),
        mode: 0o644,
        kind: EntryKind::File(Arc::from(data)),
    }
}

fn link(target: &str) -> FileEntry {
    FileEntry {
        layer: Some(Arc::from("sha256:base")),
        mode: 0o777,
        kind: EntryKind::Symlink(target.to_string()),
    }
}

fn os_catalogers() -> Vec<Box<dyn Cataloger>> {
    vec![
        Box::new(dpkg::DpkgCataloger),
        Box::new(apk::ApkCataloger),
        Box::new(rpm::RpmCataloger),
    ]
}

#[test]
fn debian_root() {
    let mut fs = ImageFs::new(40);
    fs.insert(
        "/usr/lib/os-release".into(),
        file(
            "sha256:base",
            b"PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"11\"\nVERSION=\"11 (bullseye)\"\nVERSION_CODENAME=bullseye\nID=debian\n",
        ),
    );
    fs.insert("/etc/os-release".into(), link("../usr/lib/os-release"));
    fs.insert("/etc/debian_version".into(), file("sha256:base", b"11.7\n"));
    // The status file as rewritten by a later layer (apt-get install in a Dockerfile).
    fs.insert(
        "/var/lib/dpkg/status".into(),
        file(
            "sha256:top",
            b"Package: libssl1.1\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 4123\nMaintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\nArchitecture: amd64\nMulti-Arch: same\nSource: openssl\nVersion: 1.1.1n-0+deb11u5\nDepends: libc6 (>= 2.25), debconf (>= 0.5) | debconf-2.0\nDescription: Secure Sockets Layer toolkit - shared libraries\n This package is part of the OpenSSL project's implementation of the SSL\n and TLS cryptographic protocols for secure communication over the\n Internet.\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.11.dfsg-2+deb11u2\nDescription: compression library - runtime\n\nPackage: libgnutls30\nStatus: deinstall ok config-files\nArchitecture: amd64\nSource: gnutls28\nVersion: 3.7.1-5+deb11u3\nDescription: GNU TLS library - main runtime library\n",
        ),
    );
    let sbom = catalog_fs(ScanTarget::default(), &fs, &os_catalogers(), Vec::new());
    let d = sbom.distro.as_ref().unwrap();
    assert_eq!(
        (
            d.id.as_str(),
            d.version_id.as_deref(),
            d.codename.as_deref()
        ),
        ("debian", Some("11"), Some("bullseye"))
    );
    assert!(sbom.warnings.is_empty(), "{:?}", sbom.warnings);
    assert_eq!(sbom.packages.len(), 2);
    let ssl = &sbom.packages[0];
    assert_eq!(ssl.name, "libssl1.1");
    assert_eq!(ssl.ecosystem, Ecosystem::Deb);
    assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
    assert_eq!(ssl.source_version.as_deref(), Some("1.1.1n-0+deb11u5"));
    assert_eq!(
        ssl.purl,
        "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u5?arch=amd64&distro=debian-11"
    );
    assert_eq!(ssl.location.layer_digest.as_deref(), Some("sha256:top"));
    assert_eq!(ssl.location.path, "/var/lib/dpkg/status");
    assert_eq!(sbom.packages[1].version, "1:1.2.11.dfsg-2+deb11u2");
}

#[test]
fn alpine_shaped_root() {
    let mut fs = ImageFs::new(40);
    fs.insert(
        "/etc/os-release".into(),
        file(
            "sha256:base",
            b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.17.3\nPRETTY_NAME=\"Alpine Linux v3.17\"\nHOME_URL=\"https://alpinelinux.org/\"\n",
        ),
    );
    fs.insert(
        "/etc/alpine-release".into(),
        file("sha256:base", b"3.17.3\n"),
    );
    fs.insert(
        "/lib/apk/db/installed".into(),
        file(
            "sha256:base",
            b"C:Q1x=\nP:busybox\nV:1.35.0-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\nC:Q1y=\nP:libssl3\nV:3.0.8-r3\nA:x86_64\nL:Apache-2.0\no:openssl\nF:lib\nR:libssl.so.3\n",
        ),
    );
    let sbom = catalog_fs(ScanTarget::default(), &fs, &os_catalogers(), Vec::new());
    let d = sbom.distro.as_ref().unwrap();
    assert_eq!(d.id, "alpine");
    assert_eq!(d.release_key().as_deref(), Some("v3.17"));
    assert_eq!(sbom.packages.len(), 2);
    let ssl = &sbom.packages[1];
    assert_eq!(ssl.ecosystem, Ecosystem::Apk);
    assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
    assert_eq!(
        ssl.purl,
        "pkg:apk/alpine/libssl3@3.0.8-r3?arch=x86_64&distro=alpine-3.17.3"
    );
}

#[test]
fn distroless_root() {
    let mut fs = ImageFs::new(40);
    fs.insert(
        "/etc/os-release".into(),
        file(
            "sha256:base",
            b"PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"12\"\nVERSION=\"Debian GNU/Linux 12 (bookworm)\"\nHOME_URL=\"https://github.com/GoogleContainerTools/distroless\"\n",
        ),
    );
    for (name, body) in [
        (
            "base-files",
            "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nMaintainer: Santiago Vila <sanvila@debian.org>\nInstalled-Size: 341\nEssential: yes\nPriority: required\nSection: admin\nDescription: Debian base system miscellaneous files\n",
        ),
        (
            "libc6",
            "Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\nMulti-Arch: same\nDescription: GNU C Library: Shared libraries\n",
        ),
        (
            "libssl3",
            "Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\nDescription: Secure Sockets Layer toolkit - shared libraries\n",
        ),
    ] {
        fs.insert(
            format!("/var/lib/dpkg/status.d/{name}"),
            file("sha256:base", body.as_bytes()),
        );
        fs.insert(
            format!("/var/lib/dpkg/status.d/{name}.md5sums"),
            file(
                "sha256:base",
                b"0123456789abcdef0123456789abcdef  usr/share/doc/x\n",
            ),
        );
    }
    let sbom = catalog_fs(ScanTarget::default(), &fs, &os_catalogers(), Vec::new());
    let d = sbom.distro.as_ref().unwrap();
    // No VERSION_CODENAME: taken from VERSION="… (bookworm)".
    assert_eq!(d.codename.as_deref(), Some("bookworm"));
    assert_eq!(d.release_key().as_deref(), Some("bookworm"));
    let names: Vec<_> = sbom.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["base-files", "libc6", "libssl3"]);
    assert_eq!(sbom.packages[2].source_name.as_deref(), Some("openssl"));
    assert_eq!(
        sbom.packages[2].location.path,
        "/var/lib/dpkg/status.d/libssl3"
    );
    assert_eq!(
        sbom.packages[2].location.layer_digest.as_deref(),
        Some("sha256:base")
    );
}

#[test]
fn the_files_detection_and_catalogers_need_are_kept() {
    use palisade_image::catalog::{FileMeta, all_catalogers, combined_interest};
    let catalogers = all_catalogers();
    let keep = |path: &str| {
        combined_interest(
            &catalogers,
            &FileMeta {
                path,
                size: 1000,
                mode: 0o644,
            },
        )
        .keep
    };
    for path in [
        "/etc/os-release",
        "/usr/lib/os-release",
        "/etc/alpine-release",
        "/etc/debian_version",
        "/etc/lsb-release",
        "/etc/redhat-release",
        "/etc/system-release",
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/status.d/libssl3",
        "/lib/apk/db/installed",
        "/usr/lib/apk/db/installed",
        "/var/lib/rpm/Packages",
        "/var/lib/rpm/rpmdb.sqlite",
        "/var/lib/rpm/rpmdb.sqlite-wal",
        "/usr/lib/sysimage/rpm/Packages.db",
    ] {
        assert!(keep(path), "{path} not kept");
    }
    for path in [
        "/var/lib/dpkg/status.d/libssl3.md5sums",
        "/var/lib/dpkg/status-old",
        "/var/lib/rpm/Name",
        "/var/lib/rpm/__db.001",
        "/etc/passwd",
    ] {
        assert!(!keep(path), "{path} kept");
    }
}
