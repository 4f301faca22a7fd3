//! CVSS base scores over every vector in the advisory data (OSV `severity` entries of RustSec,
//! the Go vulnerability database and PyPA; RustSec's native `cvss = ...` fields): every vector
//! must parse, and every v3.x score must equal an independent implementation of the FIRST v3.0 /
//! v3.1 base equations written here.

use palisade_vuln::cvss::score;
use std::collections::BTreeSet;
use std::path::Path;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/advisories"
);

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every `CVSS:…` vector and every OSV `CVSS_V2` score string in the data.
fn vectors() -> BTreeSet<String> {
    let mut files = Vec::new();
    for sub in ["rustsec", "golang-vulndb", "pypa"] {
        walk(&Path::new(DATA).join(sub), &mut files);
    }
    let mut set = BTreeSet::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut rest = text.as_str();
        while let Some(i) = rest.find("CVSS:") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.')))
                .unwrap_or(tail.len());
            set.insert(tail[..end].trim_end_matches(['.', '/']).to_string());
            rest = &tail[end..];
        }
        for line in text.lines() {
            if let Some(i) = line.find("AV:") {
                let v = line[i..].trim_end_matches(['"', ',', ')']);
                if v.contains("Au:") && !line[..i].ends_with('/') {
                    set.insert(v.to_string());
                }
            }
        }
    }
    set
}

fn roundup(x: f64) -> f64 {
    // CVSS v3.1 Appendix A: round up to one decimal without floating-point surprises.
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        ((i / 10_000) as f64 + 1.0) / 10.0
    }
}

/// The FIRST CVSS v3.x base equations, independent of the `cvss` crate.
fn v3_reference(vector: &str) -> f64 {
    let m = |k: &str| {
        vector
            .split('/')
            .find_map(|p| p.strip_prefix(&format!("{k}:")))
            .unwrap()
    };
    let changed = m("S") == "C";
    let av: f64 = match m("AV") {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        _ => 0.2,
    };
    let ac = match m("AC") {
        "L" => 0.77,
        _ => 0.44,
    };
    let pr = match (m("PR"), changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        _ => 0.5,
    };
    let ui = match m("UI") {
        "N" => 0.85,
        _ => 0.62,
    };
    let cia = |k: &str| -> f64 {
        match m(k) {
            "H" => 0.56,
            "L" => 0.22,
            _ => 0.0,
        }
    };
    let iss: f64 = 1.0 - (1.0 - cia("C")) * (1.0 - cia("I")) * (1.0 - cia("A"));
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let expl = 8.22 * av * ac * pr * ui;
    let up = |x: f64| {
        if vector.starts_with("CVSS:3.0/") {
            (x * 10.0).ceil() / 10.0
        } else {
            roundup(x)
        }
    };
    if impact <= 0.0 {
        0.0
    } else if changed {
        up((1.08 * (impact + expl)).min(10.0))
    } else {
        up((impact + expl).min(10.0))
    }
}

#[test]
fn every_vector_in_the_data_parses_and_v3_matches_the_spec_equations() {
    let all = vectors();
    let (mut v2, mut v3, mut v4) = (0, 0, 0);
    let mut failures = Vec::new();
    for v in &all {
        match score(v) {
            Ok(s) => {
                assert!((0.0..=10.0).contains(&s.base_score), "{v}");
                match s.version.as_str() {
                    "2.0" => v2 += 1,
                    "3.0" | "3.1" => {
                        v3 += 1;
                        let want = v3_reference(v);
                        assert!(
                            (s.base_score - want).abs() < 1e-9,
                            "{v}: {} vs reference {want}",
                            s.base_score
                        );
                    }
                    _ => v4 += 1,
                }
            }
            Err(e) => failures.push(format!("{v}: {e}")),
        }
    }
    eprintln!(
        "cvss: {} distinct vectors parsed (v2 {v2}, v3 {v3}, v4 {v4})",
        all.len() - failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(v3 > 100 && v4 > 10, "v3 {v3}, v4 {v4}");
}

#[test]
fn v4_examples_from_real_advisories_and_the_spec() {
    // Scores as shown by the FIRST CVSS v4.0 calculator.
    for (v, want) in [
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            9.3,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
            8.2,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
            8.7,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
            8.7,
        ),
        (
            "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            8.5,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
            0.0,
        ),
    ] {
        assert_eq!(score(v).unwrap().base_score, want, "{v}");
    }
}
