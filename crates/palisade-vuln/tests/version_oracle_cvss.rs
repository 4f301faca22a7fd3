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

/// Red Hat's Python `cvss` package (an independent implementation of all three specs) as the
/// oracle: one process reads vectors and prints base scores.
fn python_cvss() -> Option<std::process::Command> {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import cvss; cvss.CVSS4"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIP CVSS oracle: python3 package `cvss` (>= 3.0) not installed (pip install cvss)"
        );
        return None;
    }
    let mut c = std::process::Command::new("python3");
    c.args([
        "-c",
        "import sys\nfrom cvss import CVSS2, CVSS3, CVSS4\nfor l in sys.stdin:\n    v = l.strip()\n    \
         s = CVSS4(v).base_score if v.startswith('CVSS:4.0/') else (CVSS3(v).base_score if v.startswith('CVSS:3') else CVSS2(v).base_score)\n    \
         print(float(s))",
    ]);
    Some(c)
}

fn oracle_scores(mut cmd: std::process::Command, vectors: &[String]) -> Vec<f64> {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = vectors.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    let w = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success(), "python cvss failed");
    let scores: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(scores.len(), vectors.len());
    scores
}

/// Every combination of `choices`, joined as `KEY:VALUE/...`.
fn combinations(choices: &[(&str, &[&str])]) -> Vec<String> {
    let mut out = vec![String::new()];
    for (key, values) in choices {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for prefix in &out {
            for v in *values {
                let sep = if prefix.is_empty() { "" } else { "/" };
                next.push(format!("{prefix}{sep}{key}:{v}"));
            }
        }
        out = next;
    }
    out
}

fn compare_with_oracle(vectors: &[String]) -> usize {
    let Some(cmd) = python_cvss() else { return 0 };
    let want = oracle_scores(cmd, vectors);
    let mut bad = Vec::new();
    for (v, w) in vectors.iter().zip(&want) {
        let got = score(v).unwrap().base_score;
        if (got - w).abs() > 1e-9 {
            bad.push(format!("{v}: ours {got}, python cvss {w}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        vectors.len(),
        bad[..bad.len().min(20)].join("\n")
    );
    vectors.len()
}

#[test]
fn all_v2_and_v3_base_vectors_match_python_cvss_and_the_equations() {
    let v2 = combinations(&[
        ("AV", &["L", "A", "N"]),
        ("AC", &["H", "M", "L"]),
        ("Au", &["M", "S", "N"]),
        ("C", &["N", "P", "C"]),
        ("I", &["N", "P", "C"]),
        ("A", &["N", "P", "C"]),
    ]);
    let v3body = combinations(&[
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "R"]),
        ("S", &["U", "C"]),
        ("C", &["H", "L", "N"]),
        ("I", &["H", "L", "N"]),
        ("A", &["H", "L", "N"]),
    ]);
    let mut v3 = Vec::new();
    for body in &v3body {
        for ver in ["3.0", "3.1"] {
            let v = format!("CVSS:{ver}/{body}");
            let got = score(&v).unwrap().base_score;
            let want = v3_reference(&v);
            assert!((got - want).abs() < 1e-9, "{v}: {got} vs equations {want}");
            v3.push(v);
        }
    }
    let n = compare_with_oracle(&v2) + compare_with_oracle(&v3);
    eprintln!(
        "cvss: {} v2 and {} v3 vectors checked, {n} against python cvss",
        v2.len(),
        v3.len()
    );
}

#[test]
fn v4_vectors_match_python_cvss() {
    let all = combinations(&[
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("AT", &["N", "P"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "P", "A"]),
        ("VC", &["H", "L", "N"]),
        ("VI", &["H", "L", "N"]),
        ("VA", &["H", "L", "N"]),
        ("SC", &["H", "L", "N"]),
        ("SI", &["H", "L", "N"]),
        ("SA", &["H", "L", "N"]),
    ]);
    // A deterministic sample of the 104,976 base vectors, plus every v4 vector in the data
    // reduced to its base metrics.
    let mut vectors: Vec<String> = all
        .iter()
        .step_by(29)
        .map(|b| format!("CVSS:4.0/{b}"))
        .collect();
    for v in vectors_in_data()
        .iter()
        .filter(|v| v.starts_with("CVSS:4.0/"))
    {
        let base: Vec<&str> = v
            .split('/')
            .skip(1)
            .filter(|m| {
                [
                    "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
                ]
                .contains(&m.split(':').next().unwrap_or(""))
            })
            .collect();
        vectors.push(format!("CVSS:4.0/{}", base.join("/")));
    }
    let n = compare_with_oracle(&vectors);
    eprintln!(
        "cvss: {} v4 vectors, {n} checked against python cvss",
        vectors.len()
    );
}

fn vectors_in_data() -> BTreeSet<String> {
    vectors()
}
