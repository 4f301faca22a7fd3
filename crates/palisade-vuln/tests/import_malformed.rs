//! Hostile and malformed importer inputs: each ends in a counted error or a typed `ImportError`,
//! never a panic, hang or unbounded allocation.

use palisade_vuln::AdvisoryRecord;
use palisade_vuln::import::{ImportError, ImportStats, MAX_ADVISORY_FILE, import_path};
use std::io::Write;
use std::path::Path;

fn import(path: &Path) -> Result<(Vec<AdvisoryRecord>, ImportStats), ImportError> {
    let mut out = Vec::new();
    let stats = import_path(path, &mut |r| out.push(r))?;
    Ok((out, stats))
}

const GOOD: &str = r#"{"id":"GHSA-good","modified":"2024-01-01T00:00:00Z",
  "affected":[{"package":{"ecosystem":"npm","name":"lodash"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.12"}]}]}]}"#;

#[test]
fn bad_files_in_a_tree_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("good.json"), GOOD).unwrap();
    std::fs::write(d.join("truncated.json"), &GOOD[..GOOD.len() / 2]).unwrap();
    std::fs::write(
        d.join("wrongtype.json"),
        r#"{"id": 5, "affected": "x", "modified": 1}"#,
    )
    .unwrap();
    std::fs::write(d.join("noid.yaml"), "summary: nothing\n").unwrap();
    std::fs::write(d.join("binary.yaml"), [0xffu8, 0xfe, 0, 1, 2, 3]).unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(
        d.join("deep.json"),
        format!("{{\"id\":\"X\",\"affected\":{deep}}}"),
    )
    .unwrap();
    std::fs::write(d.join("deep.yaml"), format!("id: X\naffected: {deep}\n")).unwrap();
    // Billion laughs: YAML aliases that would expand to 10^9 nodes.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        laughs.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 10].join(",")
        ));
    }
    laughs.push_str("id: BOMB\n");
    std::fs::write(d.join("laughs.yaml"), laughs).unwrap();
    std::fs::write(d.join("README.md"), "# not data").unwrap();
    std::fs::write(d.join("config.json"), r#"{"repositories": {}}"#).unwrap();
    // A symlink loop and a link out of the tree are not followed.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(d, d.join("loop")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("out")).unwrap();
    }
    let (recs, stats) = import(d).unwrap();
    assert_eq!(recs.len(), 1, "{:?}", stats.errors);
    assert_eq!(recs[0].id, "GHSA-good");
    assert_eq!(stats.error_count, 7, "{:?}", stats.errors);
    assert!(stats.skipped_files >= 2);
}

#[test]
fn unrecognised_or_missing_top_level_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "hello").unwrap();
    assert!(matches!(import(&p), Err(ImportError::Invalid { .. })));
    assert!(matches!(
        import(&dir.path().join("missing")),
        Err(ImportError::Io { .. })
    ));
    // A file that claims to be a tracker export but is broken is an error for the whole input.
    let p = dir.path().join("tracker.json");
    std::fs::write(&p, r#"{"curl": {"CVE-2020-1": {"releases": {"#).unwrap();
    assert!(matches!(import(&p), Err(ImportError::Invalid { .. })));
    let p = dir.path().join("secdb.json");
    std::fs::write(&p, r#"{"distroversion": "v3 19 x", "packages": []}"#).unwrap();
    assert!(matches!(import(&p), Err(ImportError::Invalid { .. })));
}

fn zip_bytes(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data, deflate) in entries {
            let method = if *deflate {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(method)
                .large_file(data.len() > u32::MAX as usize);
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn zip_archives() {
    let dir = tempfile::tempdir().unwrap();
    // A bomb entry (compresses to ~40 KB, inflates past the per-entry cap), a non-JSON entry,
    // a broken JSON entry and a good one.
    let bomb = vec![b' '; MAX_ADVISORY_FILE as usize + 1024];
    let z = zip_bytes(&[
        ("bomb.json", &bomb, true),
        ("notes.txt", b"ignored", false),
        ("bad.json", b"{\"id\":", false),
        ("good.json", GOOD.as_bytes(), true),
    ]);
    assert!(z.len() < 1_000_000);
    let p = dir.path().join("all.zip");
    std::fs::write(&p, &z).unwrap();
    let (recs, stats) = import(&p).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(stats.error_count, 2, "{:?}", stats.errors);
    assert!(stats.errors[0].contains("cap"), "{:?}", stats.errors);
    assert_eq!(stats.skipped_files, 1);

    // A flipped byte in a stored entry fails its CRC: counted, the rest imported.
    let good2 = GOOD.replace("GHSA-good", "GHSA-two");
    let z = zip_bytes(&[
        ("a.json", GOOD.as_bytes(), false),
        ("b.json", good2.as_bytes(), false),
    ]);
    let at = z
        .windows(9)
        .position(|w| w == b"GHSA-good")
        .expect("stored entry content");
    let mut corrupt = z.clone();
    corrupt[at + 5] = b'X';
    let p = dir.path().join("crc.zip");
    std::fs::write(&p, &corrupt).unwrap();
    let (recs, stats) = import(&p).unwrap();
    assert_eq!(recs.len(), 1, "{:?}", stats.errors);
    assert_eq!(recs[0].id, "GHSA-two");
    assert_eq!(stats.error_count, 1);

    // Not a zip at all despite the magic: the input as a whole is invalid.
    let p = dir.path().join("fake.zip");
    std::fs::write(&p, b"PK\x03\x04garbage").unwrap();
    assert!(matches!(import(&p), Err(ImportError::Invalid { .. })));
    // Truncated archive (central directory cut off).
    let p = dir.path().join("trunc.zip");
    std::fs::write(&p, &z[..z.len() - 30]).unwrap();
    assert!(matches!(import(&p), Err(ImportError::Invalid { .. })));
}

#[test]
fn debian_list_odd_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("list");
    std::fs::write(
        &p,
        "[01 Apr 2023] DLA-1-1 foo - security update\n\
         \t{CVE-2023-1}\n\
         \t[buster] - foo\n\
         \t[buster - foo 1.0\n\
         \t[buster] - foo 1.0-1 (bug #1; high)\n\
         [not a date] DLA-2-1 bar - x\n\
         \t[buster] - bar 2.0\n",
    )
    .unwrap();
    let (recs, stats) = import(&p).unwrap();
    // Two bad package lines, the bad header, and the orphan line after it.
    assert_eq!(stats.error_count, 4, "{:?}", stats.errors);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.id, "DLA-1-1");
    assert_eq!(r.affected.len(), 1);
    assert_eq!(r.severity, Some(palisade_core::Severity::High));
}
