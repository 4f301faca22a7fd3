//! Imports each public dataset in `shared/data/advisories` completely and checks counts against
//! the dataset README and specific advisories field by field.

use palisade_core::Severity;
use palisade_vuln::import::{ImportStats, import_path};
use palisade_vuln::{AdvisoryRecord, RangeEvent, RangeKind};
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/advisories/"
    ))
    .join(rel)
}

fn import_all(path: &Path) -> (Vec<AdvisoryRecord>, ImportStats) {
    let mut out = Vec::new();
    let stats = import_path(path, &mut |r| out.push(r)).unwrap();
    (out, stats)
}

fn find<'a>(recs: &'a [AdvisoryRecord], id: &str) -> &'a AdvisoryRecord {
    recs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} not imported"))
}

fn intro(v: &str) -> RangeEvent {
    RangeEvent::Introduced(v.into())
}
fn fixed(v: &str) -> RangeEvent {
    RangeEvent::Fixed(v.into())
}

#[test]
fn rustsec_osv() {
    let (recs, stats) = import_all(&data("rustsec/osv/crates"));
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
    assert_eq!(stats.advisories, 1206);
    assert_eq!(stats.files, 1206);
    assert_eq!(stats.skipped_withdrawn, 13);
    assert_eq!(stats.sources.get("osv:crates.io"), Some(&1206));

    let r = find(&recs, "RUSTSEC-2016-0001");
    assert_eq!(r.source, "osv");
    assert_eq!(r.aliases, vec!["CVE-2016-10931", "GHSA-34p9-f4q3-c4r7"]);
    assert_eq!(
        r.summary.as_deref(),
        Some("SSL/TLS MitM vulnerability due to insecure defaults")
    );
    assert_eq!(r.published.as_deref(), Some("2016-11-05T12:00:00Z"));
    assert_eq!(r.cvss.len(), 1);
    assert_eq!(r.cvss[0].version, "3.0");
    assert_eq!(
        r.cvss[0].vector,
        "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"
    );
    assert!((r.cvss[0].base_score - 8.1).abs() < 1e-9);
    assert!(!r.withdrawn);
    assert_eq!(r.affected.len(), 1);
    let a = &r.affected[0];
    assert_eq!(
        (a.ecosystem.as_str(), a.name.as_str()),
        ("crates.io", "openssl")
    );
    assert_eq!(a.ranges.len(), 1);
    assert_eq!(a.ranges[0].kind, RangeKind::Semver);
    assert_eq!(a.ranges[0].events, vec![intro("0.0.0-0"), fixed("0.9.0")]);
    assert!(
        r.references
            .contains(&"https://rustsec.org/advisories/RUSTSEC-2016-0001.html".to_string())
    );

    // Unmaintained advisories are kept, flagged informational.
    let r = find(&recs, "RUSTSEC-2016-0004");
    assert_eq!(r.severity, Some(Severity::Informational));
    // Withdrawn ones are imported and marked.
    assert!(find(&recs, "RUSTSEC-2019-0031").withdrawn);
}

#[test]
fn pypa_yaml() {
    let (recs, stats) = import_all(&data("pypa/vulns"));
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
    assert_eq!(stats.advisories, 2661);
    assert_eq!(stats.skipped_withdrawn, 10);

    let r = find(&recs, "PYSEC-2018-28");
    assert_eq!(r.aliases, vec!["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"]);
    assert!(r.summary.as_deref().unwrap().starts_with(
        "The Requests package before 2.20.0 for Python sends an HTTP Authorization header"
    ));
    assert_eq!(r.published.as_deref(), Some("2018-10-09T17:29:00Z"));
    assert_eq!(r.modified.as_deref(), Some("2021-06-16T00:03:24.800813Z"));
    assert_eq!(r.references.len(), 10);
    let a = &r.affected[0];
    assert_eq!(
        (a.ecosystem.as_str(), a.name.as_str()),
        ("PyPI", "requests")
    );
    // The GIT range is skipped; the ECOSYSTEM range is kept.
    assert_eq!(a.ranges.len(), 1);
    assert_eq!(a.ranges[0].kind, RangeKind::Ecosystem);
    assert_eq!(a.ranges[0].events, vec![intro("0"), fixed("2.20.0")]);
    assert!(a.versions.contains(&"2.19.1".to_string()));
    assert!(a.versions.contains(&"0.12.01".to_string()));
    assert!(!a.versions.contains(&"2.20.0".to_string()));
    assert_eq!(a.versions.len(), 134);
}

#[test]
fn golang_vulndb() {
    let (recs, stats) = import_all(&data("golang-vulndb/data/osv"));
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
    assert_eq!(stats.advisories, 4291);
    assert_eq!(stats.skipped_withdrawn, 17);

    let r = find(&recs, "GO-2023-1568");
    assert_eq!(r.aliases, vec!["CVE-2022-41722"]);
    assert_eq!(
        r.summary.as_deref(),
        Some("Path traversal on Windows in path/filepath")
    );
    let a = &r.affected[0];
    assert_eq!((a.ecosystem.as_str(), a.name.as_str()), ("Go", "stdlib"));
    assert_eq!(a.ranges[0].kind, RangeKind::Semver);
    assert_eq!(
        a.ranges[0].events,
        vec![
            intro("0"),
            fixed("1.19.6"),
            intro("1.20.0-0"),
            fixed("1.20.1")
        ]
    );
    // Module paths keep their case.
    assert!(recs.iter().any(|r| r.affected.iter().any(
        |a| a.name.starts_with("github.com/") && a.name.chars().any(|c| c.is_ascii_uppercase())
    )));
}

#[test]
fn debian_dsa_list() {
    let path = data("debian-security-tracker/data/DSA/list");
    let text = std::fs::read_to_string(&path).unwrap();
    let headers = text.lines().filter(|l| l.starts_with('[')).count();
    let (recs, stats) = import_all(&path);
    assert_eq!(stats.advisories as usize, headers);
    assert_eq!(headers, 5406);
    assert_eq!(stats.sources.get("debian-dsa"), Some(&5406));
    // Every line of the list is understood (NOTE: lines are skipped on purpose).
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);

    let r = find(&recs, "DSA-4000-1");
    assert_eq!(r.source, "debian-dsa");
    assert_eq!(r.aliases.len(), 14);
    assert_eq!(r.aliases[0], "CVE-2017-12176");
    assert_eq!(r.published.as_deref(), Some("2017-10-17T00:00:00Z"));
    assert_eq!(r.summary.as_deref(), Some("xorg-server - security update"));
    assert_eq!(r.affected.len(), 2);
    assert_eq!(r.affected[0].ecosystem, "debian:jessie");
    assert_eq!(r.affected[0].name, "xorg-server");
    assert_eq!(
        r.affected[0].ranges[0].events,
        vec![intro("0"), fixed("2:1.16.4-1+deb8u2")]
    );
    assert_eq!(r.affected[1].ecosystem, "debian:stretch");
    assert_eq!(
        r.affected[1].ranges[0].events,
        vec![intro("0"), fixed("2:1.19.2-1+deb9u2")]
    );

    // One DSA fixing several source packages.
    let r = find(&recs, "DSA-3156-1");
    let names: Vec<_> = r.affected.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["liblivemedia", "vlc", "mplayer"]);
    assert_eq!(
        r.affected[2].ranges[0].events,
        vec![intro("0"), fixed("2:1.0~rc4.dfsg1+svn34540-1+deb7u1")]
    );

    // `<not-affected>` gives no entry; `<end-of-life>` is affected with no fix.
    let not_affected_pkg = recs
        .iter()
        .flat_map(|r| r.affected.iter())
        .filter(|a| a.ecosystem == "debian:lenny" && a.name == "tex-common")
        .count();
    assert_eq!(not_affected_pkg, 0);
    assert!(
        recs.iter()
            .flat_map(|r| r.affected.iter())
            .any(|a| a.ecosystem == "debian:jessie"
                && a.name == "virtualbox"
                && a.ranges[0].events == vec![intro("0")])
    );
}

#[test]
fn debian_dla_list() {
    let path = data("debian-security-tracker/data/DLA/list");
    let (recs, stats) = import_all(&path);
    assert_eq!(stats.advisories, 3534);
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
    assert_eq!(stats.sources.get("debian-dla"), Some(&3534));
    let r = find(&recs, "DLA-3369-1");
    assert_eq!(r.source, "debian-dla");
    assert_eq!(r.aliases.len(), 6);
    assert_eq!(r.affected[0].ecosystem, "debian:buster");
    assert_eq!(r.affected[0].name, "runc");
    assert_eq!(
        r.affected[0].ranges[0].events,
        vec![intro("0"), fixed("1.0.0~rc6+dfsg1-3+deb10u2")]
    );
}

#[test]
fn debian_tracker_directory_skips_non_advisory_files() {
    // The whole data dir: DSA and DLA lists imported, config.json / CPE lists skipped.
    let (_, stats) = import_all(&data("debian-security-tracker/data"));
    assert_eq!(stats.advisories, 5406 + 3534);
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
    assert!(stats.skipped_files >= 1);
}

#[test]
fn debian_tracker_json_fixture() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/debian-tracker-sample.json"
    ));
    let (recs, stats) = import_all(&path);
    // CVE-2099-0001 has a malformed release table: counted, not fatal.
    assert_eq!(stats.error_count, 1, "{:?}", stats.errors);
    let ids: Vec<_> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "CVE-2023-38545",
            "CVE-2023-38546",
            "CVE-2024-0741",
            "TEMP-0000000-6E1C0F"
        ]
    );
    let r = find(&recs, "CVE-2023-38545");
    assert_eq!(r.source, "debian-tracker");
    assert_eq!(r.summary.as_deref(), Some("SOCKS5 heap buffer overflow"));
    // bullseye has fixed_version 0: not affected, so no entry.
    let rel: Vec<_> = r.affected.iter().map(|a| a.ecosystem.as_str()).collect();
    assert_eq!(rel, vec!["debian:bookworm", "debian:sid"]);
    assert_eq!(
        r.affected[0].ranges[0].events,
        vec![intro("0"), fixed("7.88.1-10+deb12u4")]
    );
    assert_eq!(r.affected[0].severity, Some(Severity::High));
    assert_eq!(r.affected[1].severity, None);
    assert_eq!(r.severity, Some(Severity::High));

    let r = find(&recs, "CVE-2023-38546");
    let bullseye = r
        .affected
        .iter()
        .find(|a| a.ecosystem == "debian:bullseye")
        .unwrap();
    assert_eq!(bullseye.ranges[0].events, vec![intro("0")]);
    assert_eq!(bullseye.severity, Some(Severity::Low));

    // One CVE, two source packages, two releases each.
    let r = find(&recs, "CVE-2024-0741");
    let pairs: Vec<_> = r
        .affected
        .iter()
        .map(|a| (a.ecosystem.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("debian:bookworm", "firefox-esr"),
            ("debian:bullseye", "firefox-esr"),
            ("debian:bookworm", "thunderbird"),
            ("debian:bullseye", "thunderbird"),
        ]
    );
    assert_eq!(r.affected[3].severity, Some(Severity::Informational));

    // Undetermined: not imported as affected.
    assert!(find(&recs, "TEMP-0000000-6E1C0F").affected.is_empty());
}

#[test]
fn alpine_secdb() {
    let root = data("alpine-secdb-json/alpine");
    let (recs, stats) = import_all(&root);
    assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
    assert_eq!(stats.files, 41);

    // Count (fixed version, id) pairs independently of the importer: every item of every
    // secfixes list, minus version "0" (never affected).
    let mut pairs = 0u64;
    let mut zero = 0u64;
    for dir in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap();
            for p in v["packages"].as_array().unwrap() {
                for (ver, ids) in p["pkg"]["secfixes"].as_object().unwrap() {
                    let n = ids.as_array().map(|a| a.len()).unwrap_or(0) as u64;
                    if ver == "0" {
                        zero += n;
                    } else {
                        pairs += n;
                    }
                }
            }
        }
    }
    assert_eq!(pairs + zero, 85_270);
    let affected: u64 = recs.iter().map(|r| r.affected.len() as u64).sum();
    // 287 ids are listed under two fixed versions of the same package in one file; those keep
    // one entry each (counted separately with a one-off script over the same files).
    assert_eq!(pairs, 84_717);
    assert_eq!(affected, pairs - 287);

    let v319: Vec<_> = recs
        .iter()
        .filter(|r| r.affected.iter().any(|a| a.ecosystem == "alpine:v3.19"))
        .collect();
    let r = v319
        .iter()
        .find(|r| r.id == "CVE-2021-30473")
        .expect("aom secfix in v3.19");
    assert_eq!(r.source, "alpine-secdb");
    let a = r
        .affected
        .iter()
        .find(|a| a.ecosystem == "alpine:v3.19")
        .unwrap();
    assert_eq!(a.name, "aom");
    assert_eq!(a.ranges[0].events, vec![intro("0"), fixed("3.1.1-r0")]);
    assert!(stats.sources.contains_key("alpine-secdb:v3.19/main"));
    assert!(stats.sources.contains_key("alpine-secdb:edge/community"));
}
