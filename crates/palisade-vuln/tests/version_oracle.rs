//! Version ordering checked against the package managers' own implementations (oracles):
//! `dpkg --compare-versions`, rpm's `rpm.vercmp`, Python's `packaging.version`, npm's `semver`
//! and Ruby's `Gem::Version`, over real version strings from the advisory data in `shared/data`
//! and over generated ones (proptest). An oracle part is skipped, with a message saying why, only
//! when its program is missing; the test script of the project installs them all.

use palisade_vuln::version::{VersionScheme, compare};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/advisories"
);

/// Deterministic pseudo-random numbers for sampling pairs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random pairs plus neighbours in a sorted list (versions of one package sit together).
fn sample_pairs(versions: &[String], n: usize, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let a = &versions[rng.below(versions.len())];
        let b = &versions[rng.below(versions.len())];
        out.push((a.clone(), b.clone()));
        let k = rng.below(versions.len().saturating_sub(1).max(1));
        if k + 1 < versions.len() {
            out.push((versions[k].clone(), versions[k + 1].clone()));
        }
    }
    out
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` with `pairs` as tab-separated lines on stdin; each output line is -1, 0, 1 or E.
fn run_oracle(mut cmd: Command, pairs: &[(String, String)]) -> Vec<Option<Ordering>> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn oracle");
    let mut input = String::new();
    for (a, b) in pairs {
        input.push_str(a);
        input.push('\t');
        input.push_str(b);
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("oracle output");
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "oracle failed: {:?}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    let res: Vec<Option<Ordering>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.trim() {
            "-1" => Some(Ordering::Less),
            "0" => Some(Ordering::Equal),
            "1" => Some(Ordering::Greater),
            "E" => None,
            other => panic!("oracle said {other:?}"),
        })
        .collect();
    assert_eq!(res.len(), pairs.len(), "oracle answered every pair");
    res
}

/// Compares every pair with ours and the oracle; pairs the oracle rejects must fail for us too
/// unless `lenient` (we accept more than the oracle, e.g. padded versions).
fn check(
    scheme: VersionScheme,
    pairs: &[(String, String)],
    oracle: &[Option<Ordering>],
    lenient: bool,
) -> usize {
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for ((a, b), want) in pairs.iter().zip(oracle) {
        let got = compare(scheme, a, b).ok();
        match want {
            Some(w) => {
                compared += 1;
                if got != Some(*w) {
                    mismatches.push(format!("{a:?} vs {b:?}: ours {got:?}, oracle {w:?}"));
                }
            }
            None if !lenient && got.is_some() => {
                mismatches.push(format!("{a:?} vs {b:?}: oracle rejects, ours {got:?}"))
            }
            None => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "{scheme:?}: {} of {} pairs disagree, e.g.\n{}",
        mismatches.len(),
        pairs.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    compared
}

// ---------------------------------------------------------------- dpkg

fn dpkg_oracle() -> Option<Command> {
    if !have("dpkg") {
        eprintln!("SKIP dpkg oracle: `dpkg` not installed");
        return None;
    }
    let mut c = Command::new("bash");
    c.arg("-c").arg(
        "while IFS=$'\\t' read -r a b; do \
           if dpkg --compare-versions \"$a\" lt \"$b\" 2>/dev/null; then echo -1; \
           elif dpkg --compare-versions \"$a\" eq \"$b\" 2>/dev/null; then echo 0; \
           elif dpkg --compare-versions \"$a\" gt \"$b\" 2>/dev/null; then echo 1; \
           else echo E; fi; done",
    );
    Some(c)
}

fn debian_versions() -> Vec<String> {
    let mut set = BTreeSet::new();
    for list in ["DSA/list", "DLA/list"] {
        let path = Path::new(DATA)
            .join("debian-security-tracker/data")
            .join(list);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        for line in text.lines() {
            // `\t[bullseye] - apr-util 1.6.1-5+deb11u1` (optionally followed by a note).
            let Some(rest) = line.strip_prefix('\t') else {
                continue;
            };
            let Some((_, after)) = rest.split_once("- ") else {
                continue;
            };
            let mut words = after.split_whitespace();
            let (Some(_pkg), Some(ver)) = (words.next(), words.next()) else {
                continue;
            };
            if ver.starts_with('<') {
                continue;
            }
            set.insert(ver.to_string());
        }
    }
    if let Ok(out) = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}\\n"])
        .output()
    {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if !l.is_empty() {
                set.insert(l.to_string());
            }
        }
    }
    set.into_iter().collect()
}

#[test]
fn dpkg_real_versions_match_dpkg() {
    let versions = debian_versions();
    assert!(
        versions.len() > 5000,
        "only {} versions found",
        versions.len()
    );
    // Every real version parses.
    let bad: Vec<_> = versions
        .iter()
        .filter(|v| compare(VersionScheme::Dpkg, v, "0").is_err())
        .collect();
    assert!(bad.is_empty(), "unparsed: {bad:?}");
    // Sort all of them with our order; every neighbour pair must be <= by dpkg.
    let mut sorted = versions.clone();
    sorted.sort_by(|a, b| compare(VersionScheme::Dpkg, a, b).unwrap());
    let Some(cmd) = dpkg_oracle() else { return };
    let mut pairs: Vec<(String, String)> = sample_pairs(&sorted, 1000, 0x5eed_d9c6);
    let mut rng = Rng(7);
    for _ in 0..600 {
        let k = rng.below(sorted.len() - 1);
        pairs.push((sorted[k].clone(), sorted[k + 1].clone()));
    }
    let oracle = run_oracle(cmd, &pairs);
    let n = check(VersionScheme::Dpkg, &pairs, &oracle, false);
    eprintln!(
        "dpkg: {n} real pairs agree with dpkg --compare-versions ({} versions)",
        versions.len()
    );
}

fn dpkg_part() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9][0-9a-zA-Z.+~]{0,8}").unwrap()
}

fn dpkg_version() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0u32..3),
        dpkg_part(),
        proptest::option::of(proptest::string::string_regex("[0-9a-zA-Z.+~]{1,6}").unwrap()),
    )
        .prop_map(|(e, u, r)| {
            let mut s = String::new();
            if let Some(e) = e {
                s.push_str(&format!("{e}:"));
            }
            s.push_str(&u);
            if let Some(r) = r {
                s.push('-');
                s.push_str(&r);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn dpkg_generated_versions_match_dpkg(pairs in proptest::collection::vec((dpkg_version(), dpkg_version()), 120)) {
        if let Some(cmd) = dpkg_oracle() {
            let oracle = run_oracle(cmd, &pairs);
            let n = check(VersionScheme::Dpkg, &pairs, &oracle, false);
            prop_assert!(n * 2 > pairs.len(), "oracle rejected most pairs: {}", n);
        }
    }
}

// ---------------------------------------------------------------- rpm

fn rpm_compare_with_oracle(pairs: &[(String, String)]) -> Option<Vec<Option<Ordering>>> {
    if !have("rpm") {
        eprintln!("SKIP rpm oracle: `rpm` not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("pairs.txt");
    let mut text = String::new();
    for (a, b) in pairs {
        text.push_str(&format!("{a}\t{b}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let script = format!(
        "%{{lua: for l in io.lines('{}') do local a, b = l:match('^(.-)\\t(.*)$'); io.write(rpm.vercmp(a, b), '\\n') end}}",
        file.display()
    );
    let out = Command::new("rpm")
        .arg("--eval")
        .arg(script)
        .output()
        .expect("run rpm");
    assert!(out.status.success(), "rpm --eval failed");
    let res: Vec<Option<Ordering>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Some(l.trim().parse::<i32>().unwrap().cmp(&0)))
        .collect();
    assert_eq!(res.len(), pairs.len(), "rpm answered every pair");
    Some(res)
}

fn rpm_version() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0u32..3),
        proptest::string::string_regex("[0-9a-z][0-9a-zA-Z._+~^]{0,8}").unwrap(),
        proptest::option::of(
            proptest::string::string_regex("[0-9a-z][0-9a-zA-Z._+~^]{0,5}").unwrap(),
        ),
    )
        .prop_map(|(e, v, r)| {
            let mut s = String::new();
            if let Some(e) = e {
                s.push_str(&format!("{e}:"));
            }
            s.push_str(&v);
            if let Some(r) = r {
                s.push('-');
                s.push_str(&r);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn rpm_generated_versions_match_rpmvercmp(pairs in proptest::collection::vec((rpm_version(), rpm_version()), 300)) {
        if let Some(oracle) = rpm_compare_with_oracle(&pairs) {
            let n = check(VersionScheme::Rpm, &pairs, &oracle, false);
            prop_assert!(n * 2 > pairs.len(), "oracle rejected most pairs: {}", n);
        }
    }
}

#[test]
fn rpm_real_style_versions_match_rpmvercmp() {
    let versions: Vec<String> = [
        "2.17-326.el7_9",
        "2.17-325.el7_9",
        "1:1.1.1k-9.el8_7",
        "1:1.1.1k-12.el8_9",
        "1:3.0.7-24.el9",
        "3.0.7-24.el9",
        "4.18.0-477.10.1.el8_8",
        "4.18.0-477.27.1.el8_8",
        "7.76.1-26.el9_3.2",
        "7.76.1-26.el9",
        "1.0~rc1-1",
        "1.0-1",
        "1.0^git20230101-1",
        "2.9.13-3.fc38",
        "2.9.14-1.fc38",
        "0.9.8e-fips-rhel5",
        "1.2.3a-1",
        "1.2.3-1a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut pairs = Vec::new();
    for a in &versions {
        for b in &versions {
            pairs.push((a.clone(), b.clone()));
        }
    }
    if let Some(oracle) = rpm_compare_with_oracle(&pairs) {
        let n = check(VersionScheme::Rpm, &pairs, &oracle, false);
        eprintln!("rpm: {n} pairs agree with rpm.vercmp");
    }
}

// ---------------------------------------------------------------- PEP 440

fn python_packaging() -> Option<Command> {
    let script = r#"
import sys
try:
    from packaging.version import Version, InvalidVersion
except ImportError:
    from pip._vendor.packaging.version import Version, InvalidVersion
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        x, y = Version(a), Version(b)
        print(-1 if x < y else (1 if x > y else 0))
    except InvalidVersion:
        print("E")
"#;
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py)
            .args(["-c", "import sys\ntry:\n import packaging.version\nexcept ImportError:\n import pip._vendor.packaging.version"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            let mut c = Command::new(py);
            c.args(["-c", script]);
            return Some(c);
        }
    }
    eprintln!("SKIP PEP 440 oracle: no python3 with `packaging` (or pip's vendored copy)");
    None
}

fn pypi_versions() -> Vec<String> {
    let mut set = BTreeSet::new();
    let root = Path::new(DATA).join("pypa/vulns");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let mut in_versions = false;
            for line in text.lines() {
                let t = line.trim_start();
                if t.starts_with("versions:") {
                    in_versions = true;
                    continue;
                }
                if in_versions {
                    if let Some(v) = t.strip_prefix("- ") {
                        set.insert(v.trim().trim_matches(['"', '\'']).to_string());
                        continue;
                    }
                    in_versions = false;
                }
                for key in ["introduced: ", "fixed: "] {
                    if let Some(v) = t
                        .strip_prefix(key)
                        .or_else(|| t.strip_prefix(&format!("- {key}")))
                    {
                        set.insert(v.trim().trim_matches(['"', '\'']).to_string());
                    }
                }
            }
        }
    }
    set.into_iter().collect()
}

#[test]
fn pep440_real_versions_match_packaging() {
    let versions = pypi_versions();
    assert!(versions.len() > 10_000, "only {} versions", versions.len());
    let Some(cmd) = python_packaging() else {
        return;
    };
    // Validity first: each version against itself.
    let selves: Vec<(String, String)> = versions.iter().map(|v| (v.clone(), v.clone())).collect();
    let valid = run_oracle(cmd, &selves);
    let good: Vec<String> = versions
        .iter()
        .zip(&valid)
        .filter(|(_, o)| o.is_some())
        .map(|(v, _)| v.clone())
        .collect();
    let n0 = check(VersionScheme::Pep440, &selves, &valid, false);
    let mut sorted = good.clone();
    sorted.sort_by(|a, b| compare(VersionScheme::Pep440, a, b).unwrap());
    let pairs = sample_pairs(&sorted, 4000, 0x9e37_79b9);
    let oracle = run_oracle(python_packaging().unwrap(), &pairs);
    let n = check(VersionScheme::Pep440, &pairs, &oracle, false);
    eprintln!("pep440: {n0} versions validated, {n} pairs agree with packaging.version");
}

fn pep440_version() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0u32..3),
        proptest::collection::vec(0u32..12, 1..5),
        proptest::option::of((prop_oneof!["a", "b", "rc", "alpha", "c", "pre"], 0u32..4)),
        proptest::option::of(0u32..3),
        proptest::option::of(0u32..3),
        proptest::option::of(
            proptest::string::string_regex("[a-z0-9]{1,3}(\\.[a-z0-9]{1,3}){0,2}").unwrap(),
        ),
    )
        .prop_map(|(epoch, rel, pre, post, dev, local)| {
            let mut s = String::new();
            if let Some(e) = epoch {
                s.push_str(&format!("{e}!"));
            }
            s.push_str(&rel.iter().map(u32::to_string).collect::<Vec<_>>().join("."));
            if let Some((k, n)) = pre {
                s.push_str(&format!("{k}{n}"));
            }
            if let Some(p) = post {
                s.push_str(&format!(".post{p}"));
            }
            if let Some(d) = dev {
                s.push_str(&format!(".dev{d}"));
            }
            if let Some(l) = local {
                s.push('+');
                s.push_str(&l);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn pep440_generated_versions_match_packaging(pairs in proptest::collection::vec((pep440_version(), pep440_version()), 300)) {
        if let Some(cmd) = python_packaging() {
            let oracle = run_oracle(cmd, &pairs);
            let n = check(VersionScheme::Pep440, &pairs, &oracle, false);
            prop_assert!(n * 2 > pairs.len(), "oracle rejected most pairs: {}", n);
        }
    }
}

// ---------------------------------------------------------------- SemVer (npm)

fn node_semver() -> Option<Command> {
    if !have("node") {
        eprintln!("SKIP semver oracle: `node` not installed");
        return None;
    }
    let root = Command::new("npm")
        .args(["root", "-g"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let probe = Command::new("node")
        .env("NODE_PATH", &root)
        .args(["-e", "require('semver')"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !probe {
        eprintln!(
            "SKIP semver oracle: npm package `semver` not installed globally (npm install -g semver)"
        );
        return None;
    }
    let mut c = Command::new("node");
    c.env("NODE_PATH", root).args([
        "-e",
        "const semver = require('semver'); const rl = require('readline').createInterface({input: process.stdin});\
         const out = []; rl.on('line', l => { const [a, b] = l.split('\\t');\
         const x = semver.valid(a), y = semver.valid(b); out.push(x && y ? String(semver.compare(x, y)) : 'E'); });\
         rl.on('close', () => process.stdout.write(out.join('\\n') + '\\n'));",
    ]);
    Some(c)
}

fn rustsec_versions() -> Vec<String> {
    let mut set = BTreeSet::new();
    let dir = Path::new(DATA).join("rustsec/osv/crates");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for aff in json["affected"].as_array().into_iter().flatten() {
            for r in aff["ranges"].as_array().into_iter().flatten() {
                for ev in r["events"].as_array().into_iter().flatten() {
                    for k in ["introduced", "fixed", "last_affected"] {
                        if let Some(v) = ev[k].as_str() {
                            set.insert(v.to_string());
                        }
                    }
                }
            }
        }
    }
    set.into_iter().collect()
}

#[test]
fn semver_real_versions_match_npm_semver() {
    let versions = rustsec_versions();
    assert!(versions.len() > 500, "only {} versions", versions.len());
    let bad: Vec<_> = versions
        .iter()
        .filter(|v| compare(VersionScheme::Semver, v, "0.0.0").is_err())
        .collect();
    assert!(bad.is_empty(), "unparsed crates.io versions: {bad:?}");
    let Some(cmd) = node_semver() else { return };
    let mut sorted = versions.clone();
    sorted.sort_by(|a, b| compare(VersionScheme::Semver, a, b).unwrap());
    let pairs = sample_pairs(&sorted, 3000, 0xabcdef);
    let oracle = run_oracle(cmd, &pairs);
    let n = check(VersionScheme::Semver, &pairs, &oracle, true);
    eprintln!("semver: {n} real pairs agree with npm semver");
}

fn semver_version() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(0u32..20, 3),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![
                (0u32..20).prop_map(|n| n.to_string()),
                proptest::string::string_regex("[a-zA-Z-][0-9a-zA-Z-]{0,4}").unwrap()
            ],
            1..4,
        )),
        proptest::option::of(proptest::string::string_regex("[0-9a-z]{1,4}").unwrap()),
        proptest::bool::ANY,
    )
        .prop_map(|(core, pre, build, v)| {
            let mut s = if v { "v".to_string() } else { String::new() };
            s.push_str(
                &core
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            );
            if let Some(p) = pre {
                s.push('-');
                s.push_str(&p.join("."));
            }
            if let Some(b) = build {
                s.push('+');
                s.push_str(&b);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn semver_generated_versions_match_npm_semver(pairs in proptest::collection::vec((semver_version(), semver_version()), 300)) {
        if let Some(cmd) = node_semver() {
            let oracle = run_oracle(cmd, &pairs);
            let n = check(VersionScheme::Semver, &pairs, &oracle, false);
            prop_assert!(n * 2 > pairs.len(), "oracle rejected most pairs: {}", n);
        }
    }
}

// ---------------------------------------------------------------- RubyGems

fn ruby_gem_version() -> Option<Command> {
    if !have("ruby") {
        eprintln!("SKIP RubyGems oracle: `ruby` not installed (apt-get install ruby)");
        return None;
    }
    let mut c = Command::new("ruby");
    c.args([
        "-e",
        "STDIN.each_line { |l| a, b = l.chomp.split(\"\\t\", 2); b ||= '';\
         if Gem::Version.correct?(a) && Gem::Version.correct?(b) then puts(Gem::Version.new(a) <=> Gem::Version.new(b)) else puts 'E' end }",
    ]);
    Some(c)
}

fn gem_version() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9]{1,2}(\\.([0-9]{1,2}|[a-zA-Z]{1,3}[0-9]?|0)){0,4}(-[a-z0-9]{1,3}(\\.[a-z0-9]{1,2})?)?").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn rubygems_generated_versions_match_gem_version(pairs in proptest::collection::vec((gem_version(), gem_version()), 300)) {
        if let Some(cmd) = ruby_gem_version() {
            let oracle = run_oracle(cmd, &pairs);
            let n = check(VersionScheme::RubyGems, &pairs, &oracle, false);
            prop_assert!(n * 2 > pairs.len(), "oracle rejected most pairs: {}", n);
        }
    }
}

// ---------------------------------------------------------------- apk, Go: real data must parse

#[test]
fn alpine_secdb_versions_are_valid_apk_versions() {
    let dir = Path::new(DATA).join("alpine-secdb-json/alpine");
    let mut n = 0;
    let mut bad = Vec::new();
    for branch in std::fs::read_dir(&dir).unwrap() {
        for f in std::fs::read_dir(branch.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            for pkg in json["packages"].as_array().into_iter().flatten() {
                for (ver, _) in pkg["pkg"]["secfixes"].as_object().into_iter().flatten() {
                    n += 1;
                    if compare(VersionScheme::Apk, ver, "0").is_err() {
                        bad.push(ver.clone());
                    }
                }
            }
        }
    }
    assert!(n > 10_000, "only {n} versions");
    // apk-tools accepts every version it built packages with; the secdb's hand-written
    // `secfixes` also hold a few typos apk itself rejects (`6.6.2p1-r0`, `4.8.0.-r1`,
    // `0.8.21.r2`), so those are listed, and everything else must parse.
    bad.sort();
    bad.dedup();
    eprintln!(
        "apk: {} distinct of {n} secdb versions invalid: {bad:?}",
        bad.len()
    );
    assert!(bad.len() < 30, "too many invalid: {bad:?}");
    for typo in ["6.6.2p1-r0", "4.8.0.-r1", "0.8.21.r2", "1.11-20-r0"] {
        assert!(bad.iter().any(|b| b == typo), "{typo} should be rejected");
    }
}

#[test]
fn go_vulndb_versions_parse() {
    let dir = Path::new(DATA).join("golang-vulndb/data/osv");
    let mut n = 0;
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        for aff in json["affected"].as_array().into_iter().flatten() {
            for r in aff["ranges"].as_array().into_iter().flatten() {
                for ev in r["events"].as_array().into_iter().flatten() {
                    for k in ["introduced", "fixed"] {
                        if let Some(v) = ev[k].as_str() {
                            n += 1;
                            if compare(VersionScheme::Go, v, "0").is_err() {
                                bad.push(v.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(n > 5000, "only {n}");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        compare(VersionScheme::Go, "go1.20.3", "1.20.4").unwrap(),
        Ordering::Less
    );
}

/// Throughput figure for the report (`cargo test --test version_oracle -- --ignored
/// --nocapture throughput`); it prints and asserts nothing about time.
#[test]
#[ignore]
fn throughput() {
    for (scheme, versions) in [
        (VersionScheme::Dpkg, debian_versions()),
        (VersionScheme::Pep440, pypi_versions()),
    ] {
        let good: Vec<String> = versions
            .into_iter()
            .filter(|v| compare(scheme, v, v).is_ok())
            .collect();
        let pairs = sample_pairs(&good, 200_000, 42);
        let start = std::time::Instant::now();
        let mut less = 0usize;
        for (a, b) in &pairs {
            if compare(scheme, a, b) == Ok(Ordering::Less) {
                less += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{scheme:?}: {} compares in {secs:.3} s = {:.0} compares/s ({less} less)",
            pairs.len(),
            pairs.len() as f64 / secs
        );
    }
}

// ---------------------------------------------------------------- Composer

fn php_composer() -> Option<Command> {
    const AUTOLOAD: &str = "/usr/share/php/Composer/Semver/autoload.php";
    if !have("php") || !Path::new(AUTOLOAD).exists() {
        eprintln!(
            "SKIP Composer oracle: needs `php` and composer/semver at {AUTOLOAD} (apt-get install php-cli php-composer-semver)"
        );
        return None;
    }
    let mut c = Command::new("php");
    c.arg("-r").arg(format!(
        "require '{AUTOLOAD}'; $p = new Composer\\Semver\\VersionParser;\
         while (($l = fgets(STDIN)) !== false) {{ [$a, $b] = explode(\"\\t\", rtrim($l, \"\\n\"));\
         try {{ $x = $p->normalize($a); $y = $p->normalize($b); }} catch (Exception $e) {{ echo \"E\\n\"; continue; }}\
         echo (Composer\\Semver\\Comparator::lessThan($x, $y) ? -1 : (Composer\\Semver\\Comparator::equalTo($x, $y) ? 0 : 1)), \"\\n\"; }}"
    ));
    Some(c)
}

fn composer_version() -> impl Strategy<Value = String> {
    (
        proptest::bool::ANY,
        proptest::collection::vec(0u32..12, 1..5),
        proptest::option::of((
            proptest::sample::select(vec!["", ".", "-", "_"]),
            proptest::sample::select(vec![
                "alpha", "a", "beta", "b", "RC", "rc", "patch", "pl", "p", "stable", "Beta",
            ]),
            proptest::option::of((proptest::sample::select(vec!["", ".", "-"]), 0u32..12)),
        )),
        proptest::option::of(proptest::sample::select(vec!["-dev", ".dev", "dev"])),
    )
        .prop_map(|(v, parts, modifier, dev)| {
            let mut s = if v { "v".to_string() } else { String::new() };
            s.push_str(
                &parts
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            );
            if let Some((sep, stab, num)) = modifier {
                s.push_str(sep);
                s.push_str(stab);
                if let Some((nsep, n)) = num {
                    s.push_str(nsep);
                    s.push_str(&n.to_string());
                }
            }
            if let Some(d) = dev {
                s.push_str(d);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn composer_generated_versions_match_composer_semver(pairs in proptest::collection::vec((composer_version(), composer_version()), 300)) {
        if let Some(cmd) = php_composer() {
            let oracle = run_oracle(cmd, &pairs);
            let n = check(VersionScheme::Composer, &pairs, &oracle, false);
            prop_assert!(n * 2 > pairs.len(), "oracle rejected most pairs: {}", n);
        }
    }
}

#[test]
fn composer_table_matches_composer_semver() {
    let versions: Vec<String> = [
        "1.0.0",
        "1.0",
        "v1.0.0",
        "1.0.0-RC1",
        "1.0.0-rc.2",
        "1.0.0-beta",
        "1.0.0-alpha2",
        "1.0.0-p1",
        "1.0.0-patch2",
        "1.0.0-dev",
        "1.0.x-dev",
        "2.*-dev",
        "1.0.0.1",
        "5.4.10",
        "5.4.9",
        "2021-01-01",
        "2021.01.02",
        "20210101",
        "1.0.0+build.7",
        "1.0.0@beta",
        "1.0.0-beta2-dev",
        "1.0.0-stable",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut pairs = Vec::new();
    for a in &versions {
        for b in &versions {
            pairs.push((a.clone(), b.clone()));
        }
    }
    if let Some(cmd) = php_composer() {
        let oracle = run_oracle(cmd, &pairs);
        let n = check(VersionScheme::Composer, &pairs, &oracle, false);
        eprintln!("composer: {n} pairs agree with composer/semver");
    }
}

// ---------------------------------------------------------------- robustness

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    /// Arbitrary input never panics, and comparisons that succeed are antisymmetric.
    #[test]
    fn arbitrary_input_never_panics(a in "[ -~]{0,40}|\\PC{0,20}", b in "[0-9a-zA-Z.~^+_:-]{0,30}") {
        for scheme in [
            VersionScheme::Dpkg, VersionScheme::Apk, VersionScheme::Rpm, VersionScheme::Pep440,
            VersionScheme::Semver, VersionScheme::Go, VersionScheme::Maven,
            VersionScheme::RubyGems, VersionScheme::NuGet, VersionScheme::Composer,
        ] {
            let ab = compare(scheme, &a, &b);
            let ba = compare(scheme, &b, &a);
            if let (Ok(x), Ok(y)) = (&ab, &ba) {
                prop_assert_eq!(*x, y.reverse(), "{:?} {:?} {:?}", scheme, a, b);
            }
            if let Ok(x) = compare(scheme, &b, &b) {
                prop_assert_eq!(x, Ordering::Equal, "{:?} {:?}", scheme, b);
            }
        }
        let _ = palisade_vuln::cvss::score(&a);
        let _ = palisade_vuln::cvss::score(&format!("CVSS:4.0/{b}"));
        let _ = palisade_vuln::cvss::score(&format!("CVSS:3.1/{b}"));
    }
}
