//! Builds one DB from everything in `shared/data/advisories`, reopens it and looks packages up.
//! Prints the import time, DB size and open time (no timed assertions: CI machines vary).

use palisade_vuln::RangeEvent;
use palisade_vuln::db::{AdvisoryDb, DbBuilder, DbError};
use std::path::PathBuf;
use std::time::Instant;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/advisories/"
    ))
    .join(rel)
}

const SOURCES: &[&str] = &[
    "rustsec/osv/crates",
    "pypa/vulns",
    "golang-vulndb/data/osv",
    "debian-security-tracker/data",
    "alpine-secdb-json/alpine",
];

#[test]
fn all_shared_data_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisories.db");

    let t = Instant::now();
    let mut b = DbBuilder::new();
    let mut total = 0;
    for s in SOURCES {
        let stats = b.import_path(&data(s)).unwrap();
        assert_eq!(stats.error_count, 0, "{s}: {:?}", stats.errors);
        total += stats.advisories;
    }
    let import_time = t.elapsed();
    let t = Instant::now();
    let meta = b.write(&path).unwrap();
    let write_time = t.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();

    // Open several times; report the best and the first.
    let mut open_times = Vec::new();
    let mut db = None;
    for _ in 0..5 {
        let t = Instant::now();
        db = Some(AdvisoryDb::open(&path).unwrap());
        open_times.push(t.elapsed());
    }
    let db = db.unwrap();
    eprintln!(
        "shared data: {total} records imported in {import_time:?}, DB written in {write_time:?}: \
         {size} bytes, {} advisories, {} affected entries, {} package keys; open: first \
         {:?}, best {:?}",
        meta.advisories,
        meta.affected_packages,
        db.package_count(),
        open_times[0],
        open_times.iter().min().unwrap()
    );
    db.verify().unwrap();
    assert_eq!(db.metadata(), &meta);
    // Withdrawn advisories and ones naming no package we match are left out.
    assert!(meta.advisories < total);
    let names: Vec<_> = meta.sources.iter().map(|s| s.name.as_str()).collect();
    for n in [
        "osv:crates.io",
        "osv:PyPI",
        "osv:Go",
        "debian-dsa",
        "debian-dla",
        "alpine-secdb:v3.19/main",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }

    let t = Instant::now();
    let c = db.lookup("PyPI", "requests").unwrap();
    eprintln!(
        "lookup PyPI/requests: {} candidates in {:?}",
        c.len(),
        t.elapsed()
    );
    let pysec = c
        .iter()
        .find(|c| c.advisory.id == "PYSEC-2018-28")
        .expect("PYSEC-2018-28 for requests");
    assert_eq!(
        pysec.advisory.aliases,
        vec!["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"]
    );
    assert!(pysec.affected.versions.contains(&"2.19.1".to_string()));
    assert_eq!(
        pysec.affected.ranges[0].events[1],
        RangeEvent::Fixed("2.20.0".into())
    );

    let c = db.lookup("crates.io", "openssl").unwrap();
    assert!(c.iter().any(|c| c.advisory.id == "RUSTSEC-2016-0001"));
    let c = db.lookup("Go", "stdlib").unwrap();
    assert!(c.iter().any(|c| c.advisory.id == "GO-2023-1568"));
    assert!(c.len() > 100);

    let c = db.lookup("debian:bullseye", "xorg-server").unwrap();
    let dsa = c.iter().find(|c| c.advisory.id == "DSA-5380-1").unwrap();
    assert_eq!(dsa.advisory.aliases, vec!["CVE-2023-1393"]);
    assert_eq!(
        dsa.affected.ranges[0].events[1],
        RangeEvent::Fixed("2:1.20.11-1+deb11u6".into())
    );
    // The same source package in buster comes from the DLA list.
    let c = db.lookup("debian:buster", "xorg-server").unwrap();
    assert!(c.iter().any(|c| c.advisory.id == "DLA-3372-1"));

    let c = db.lookup("alpine:v3.19", "aom").unwrap();
    let a = c
        .iter()
        .find(|c| c.advisory.id == "CVE-2021-30473")
        .unwrap();
    assert_eq!(
        a.affected.ranges[0].events[1],
        RangeEvent::Fixed("3.1.1-r0".into())
    );
    // The same CVE from several Alpine branches is kept per branch.
    assert!(!db.lookup("alpine:v3.18", "aom").unwrap().is_empty());

    // Withdrawn: RUSTSEC-2019-0031 (spin) is not returned.
    for (eco, name) in db
        .packages()
        .map(|k| k.unwrap())
        .filter(|(e, _)| e == "crates.io")
    {
        for c in db.lookup(&eco, &name).unwrap() {
            assert_ne!(c.advisory.id, "RUSTSEC-2019-0031", "{name}");
            assert!(!c.advisory.withdrawn);
        }
    }
    assert!(db.lookup("PyPI", "no-such-package-xyz").unwrap().is_empty());
    assert!(db.lookup("npm", "requests").unwrap().is_empty());
}

#[test]
fn failed_write_keeps_old_db_and_bad_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisories.db");
    let mut b = DbBuilder::new();
    b.import_path(&data("rustsec/osv/crates")).unwrap();
    let meta = b.write(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    // Importing a missing path fails before anything is written.
    let mut b = DbBuilder::new();
    assert!(b.import_path(&dir.path().join("missing")).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(AdvisoryDb::open(&path).unwrap().metadata(), &meta);
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    for (name, bytes) in [
        ("empty", Vec::new()),
        ("text", b"hello, this is not a database at all".to_vec()),
        ("truncated", before[..before.len() / 2].to_vec()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        match AdvisoryDb::open(&p) {
            Err(DbError::Invalid { message, .. }) => {
                assert!(message.contains("palisade db update"), "{name}: {message}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // A DB from a future schema version.
    let mut future = before.clone();
    future[8] = 2;
    let p = dir.path().join("future");
    std::fs::write(&p, future).unwrap();
    let e = AdvisoryDb::open(&p).unwrap_err().to_string();
    assert!(e.contains("schema version 2"), "{e}");
}
