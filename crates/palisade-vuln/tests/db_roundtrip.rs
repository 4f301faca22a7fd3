//! Property tests of the DB file: every record written is found by lookup exactly as written,
//! and damaged files never panic (open fails, or lookups return typed errors).

use palisade_vuln::db::{AdvisoryDb, DbBuilder};
use palisade_vuln::{AdvisoryRecord, AffectedPackage, AffectedRange, RangeEvent, RangeKind};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn record() -> impl Strategy<Value = AdvisoryRecord> {
    (
        "[A-Z]{2,5}-[0-9]{1,4}",
        prop::collection::vec(
            (
                prop::sample::select(vec!["npm", "PyPI", "debian:bookworm", "alpine:v3.19"]),
                "[a-z][a-z0-9._-]{0,12}",
                "[0-9]{1,2}\\.[0-9]{1,2}",
            ),
            1..4,
        ),
        prop::option::of(".{0,40}"),
    )
        .prop_map(|(id, pkgs, summary)| AdvisoryRecord {
            id,
            source: "osv".into(),
            summary,
            affected: pkgs
                .into_iter()
                .map(|(e, n, v)| AffectedPackage {
                    ecosystem: e.to_string(),
                    name: n,
                    ranges: vec![AffectedRange {
                        kind: RangeKind::Ecosystem,
                        events: vec![RangeEvent::Introduced("0".into()), RangeEvent::Fixed(v)],
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lookups_return_what_was_written(records in prop::collection::vec(record(), 0..40)) {
        // Expected state after "last wins" merging by id, then per package.
        let mut by_id: BTreeMap<String, AdvisoryRecord> = BTreeMap::new();
        let mut b = DbBuilder::new();
        for r in &records {
            b.add(r.clone());
            let merged = match by_id.remove(&r.id) {
                None => r.clone(),
                Some(old) => {
                    let mut m = r.clone();
                    let mut kept: Vec<_> = old.affected.into_iter()
                        .filter(|a| !r.affected.iter().any(|n| n.ecosystem == a.ecosystem && n.name == a.name))
                        .collect();
                    kept.extend(r.affected.clone());
                    m.affected = kept;
                    m
                }
            };
            by_id.insert(r.id.clone(), merged);
        }
        let (bytes, meta) = b.to_bytes().unwrap();
        prop_assert_eq!(meta.advisories as usize, by_id.len());
        let db = AdvisoryDb::from_bytes(Path::new("p"), bytes).unwrap();
        db.verify().unwrap();
        let mut expected: BTreeMap<(String, String), Vec<(String, AffectedPackage)>> = BTreeMap::new();
        for r in by_id.values() {
            for a in &r.affected {
                expected.entry((a.ecosystem.clone(), a.name.clone())).or_default().push((r.id.clone(), a.clone()));
            }
        }
        prop_assert_eq!(db.package_count(), expected.len());
        for ((e, n), want) in &expected {
            let got: Vec<_> = db.lookup(e, n).unwrap().into_iter()
                .map(|c| (c.advisory.id.clone(), c.affected)).collect();
            prop_assert_eq!(&got, want);
            for (id, _) in want {
                let c = db.lookup(e, n).unwrap();
                let adv = &c.iter().find(|c| &c.advisory.id == id).unwrap().advisory;
                prop_assert_eq!(&adv.summary, &by_id[id].summary);
            }
        }
    }

    #[test]
    fn damaged_files_never_panic(records in prop::collection::vec(record(), 1..10),
                                 flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                 cut in prop::option::of(any::<prop::sample::Index>())) {
        let mut b = DbBuilder::new();
        for r in records { b.add(r); }
        let (mut bytes, _) = b.to_bytes().unwrap();
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= v | 1;
        }
        if let Some(c) = cut { let n = c.index(bytes.len()); bytes.truncate(n); }
        if let Ok(db) = AdvisoryDb::from_bytes(Path::new("p"), bytes) {
            let _ = db.verify();
            let keys: Vec<_> = db.packages().filter_map(Result::ok).collect();
            for (e, n) in keys { let _ = db.lookup(&e, &n); }
            for (e, n) in [("npm", "a"), ("PyPI", "zz"), ("debian:bookworm", "")] { let _ = db.lookup(e, n); }
        }
    }
}
