//! The matcher over real advisory data (shared/data/advisories), through the real importers and
//! DB: each case states what the advisory data says about one installed package.

use palisade_core::{Distro, Ecosystem, Package, PackageLocation};
use palisade_vuln::db::{AdvisoryDb, DbBuilder};
use palisade_vuln::import::import_path;
use palisade_vuln::matcher::{FixStatus, MatchOptions, VulnerabilityMatch, match_packages_report};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/advisories"
);

fn data(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

fn build_db(dir: &Path, inputs: &[PathBuf]) -> AdvisoryDb {
    let mut builder = DbBuilder::new();
    for input in inputs {
        let stats = import_path(input, &mut |r| builder.add(r))
            .unwrap_or_else(|e| panic!("import {}: {e}", input.display()));
        assert!(
            stats.advisories > 0,
            "{}: nothing imported",
            input.display()
        );
    }
    let path = dir.join("advisories.db");
    builder.write(&path).unwrap();
    AdvisoryDb::open(&path).unwrap()
}

fn pkg(eco: Ecosystem, name: &str, version: &str) -> Package {
    Package::new(
        eco,
        name,
        version,
        PackageLocation {
            layer_digest: None,
            path: "/test".into(),
        },
    )
}

fn os_pkg(eco: Ecosystem, name: &str, version: &str, source: &str) -> Package {
    let mut p = pkg(eco, name, version);
    p.source_name = Some(source.into());
    p
}

/// Every id (reported id and aliases) of the matches of one package → the fixed version.
fn ids_of<'a>(
    matches: &'a [VulnerabilityMatch],
    package: &str,
) -> BTreeMap<&'a str, Option<&'a str>> {
    let mut out = BTreeMap::new();
    for m in matches.iter().filter(|m| m.package.name == package) {
        for id in std::iter::once(&m.advisory.id).chain(&m.advisory.aliases) {
            out.insert(id.as_str(), m.fixed_version.as_deref());
        }
    }
    out
}

#[test]
fn language_ecosystems() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_db(
        dir.path(),
        &[
            data("pypa/vulns/jinja2"),
            data("golang-vulndb/data/osv/GO-2023-2102.json"),
            data("golang-vulndb/data/osv/GO-2023-2185.json"),
        ],
    );
    let packages = vec![
        pkg(Ecosystem::PyPI, "Jinja2", "2.10"),
        pkg(Ecosystem::Go, "stdlib", "go1.21.3"),
        pkg(Ecosystem::Go, "golang.org/x/net", "v0.10.0"),
        pkg(Ecosystem::PyPI, "jinja2", "3.1.4"),
    ];
    let r = match_packages_report(&db, &packages, None, &MatchOptions::default()).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // PyPA: Jinja2 2.10 is affected by exactly these two (the 2014/2016 ones were fixed earlier).
    let jinja: Vec<(&str, Option<&str>)> = r
        .matches
        .iter()
        .filter(|m| m.package.name == "Jinja2")
        .map(|m| (m.advisory.id.as_str(), m.fixed_version.as_deref()))
        .collect();
    let mut jinja_sorted = jinja.clone();
    jinja_sorted.sort();
    assert_eq!(
        jinja_sorted,
        vec![
            ("CVE-2019-10906", Some("2.10.1")),
            ("CVE-2020-28493", Some("2.11.3")),
        ]
    );
    let m = r
        .matches
        .iter()
        .find(|m| m.advisory.id == "CVE-2019-10906")
        .unwrap();
    assert!(m.advisory.aliases.iter().any(|a| a == "PYSEC-2019-217"));
    assert!(
        m.advisory
            .aliases
            .iter()
            .any(|a| a == "GHSA-462w-v97r-4m45")
    );
    assert_eq!(m.status, FixStatus::Fixed);
    // A fixed release is clean.
    assert!(r.matches.iter().all(|m| m.package.version != "3.1.4"));

    // Go standard library: go1.21.3 already has the GO-2023-2102 fix (1.21.3), not GO-2023-2185's.
    let std_ids = ids_of(&r.matches, "stdlib");
    assert_eq!(std_ids.get("CVE-2023-45283"), Some(&Some("1.21.4")));
    assert!(!std_ids.contains_key("CVE-2023-39325"), "{std_ids:?}");
    // Go module with a `v` version against a SEMVER range.
    let net = ids_of(&r.matches, "golang.org/x/net");
    assert_eq!(net.get("CVE-2023-39325"), Some(&Some("0.17.0")));
    assert!(net.contains_key("GO-2023-2102"));
    assert_eq!(
        r.matches
            .iter()
            .filter(|m| m.package.name == "golang.org/x/net")
            .count(),
        1,
        "GO-2023-2102 and its aliases are one vulnerability"
    );
}

#[test]
fn alpine_by_origin_and_branch() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_db(
        dir.path(),
        &[data("alpine-secdb-json/alpine/v3.18/main.json")],
    );
    let distro = Distro {
        id: "alpine".into(),
        version_id: Some("3.18.4".into()),
        codename: None,
        pretty_name: None,
    };
    let p = os_pkg(Ecosystem::Apk, "libssl3", "3.1.2-r0", "openssl");
    let r = match_packages_report(&db, &[p], Some(&distro), &MatchOptions::default()).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let cves: BTreeMap<&str, Option<&str>> = ids_of(&r.matches, "libssl3")
        .into_iter()
        .filter(|(id, _)| id.starts_with("CVE-"))
        .collect();
    // secdb v3.18 openssl secfixes after 3.1.2-r0, and nothing else (3.1.2-r0 fixes CVE-2023-3817;
    // the "0" entries were never vulnerable in Alpine).
    let expected: BTreeMap<&str, Option<&str>> = [
        ("CVE-2023-5363", "3.1.4-r0"),
        ("CVE-2023-5678", "3.1.4-r1"),
        ("CVE-2023-6129", "3.1.4-r3"),
        ("CVE-2023-6237", "3.1.4-r4"),
        ("CVE-2024-0727", "3.1.4-r5"),
        ("CVE-2024-2511", "3.1.4-r6"),
        ("CVE-2024-4603", "3.1.5-r0"),
        ("CVE-2024-5535", "3.1.6-r0"),
        ("CVE-2024-4741", "3.1.6-r0"),
        ("CVE-2024-6119", "3.1.7-r0"),
        ("CVE-2024-9143", "3.1.7-r1"),
    ]
    .into_iter()
    .map(|(c, f)| (c, Some(f)))
    .collect();
    assert_eq!(cves, expected);

    // Another branch's advisories do not apply.
    let edge = Distro {
        version_id: Some("3.17.1".into()),
        ..distro
    };
    let p = os_pkg(Ecosystem::Apk, "libssl3", "3.1.2-r0", "openssl");
    let r = match_packages_report(&db, &[p], Some(&edge), &MatchOptions::default()).unwrap();
    assert!(r.matches.is_empty());
}

#[test]
fn debian_by_source_package_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_db(dir.path(), &[data("debian-security-tracker/data/DSA/list")]);
    let bullseye = Distro {
        id: "debian".into(),
        version_id: Some("11".into()),
        codename: Some("bullseye".into()),
        pretty_name: None,
    };
    // A binNMU of the binary package: the source version is what DSA-5343-1 names.
    let mut p = os_pkg(
        Ecosystem::Deb,
        "libssl1.1",
        "1.1.1n-0+deb11u3+b1",
        "openssl",
    );
    p.source_version = Some("1.1.1n-0+deb11u3".into());
    let r = match_packages_report(
        &db,
        std::slice::from_ref(&p),
        Some(&bullseye),
        &MatchOptions::default(),
    )
    .unwrap();
    let ids = ids_of(&r.matches, "libssl1.1");
    assert_eq!(
        ids.get("CVE-2023-0286"),
        Some(&Some("1.1.1n-0+deb11u4")),
        "{ids:?}"
    );
    // The fixed source version is clean.
    let mut fixed = p.clone();
    fixed.version = "1.1.1n-0+deb11u4".into();
    fixed.source_version = None;
    let r =
        match_packages_report(&db, &[fixed], Some(&bullseye), &MatchOptions::default()).unwrap();
    let ids = ids_of(&r.matches, "libssl1.1");
    assert!(!ids.contains_key("CVE-2023-0286"), "{ids:?}");
}
