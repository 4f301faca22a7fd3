//! End-to-end tests of the `palisade` binary against real images.
//!
//! `scripts/test.sh` starts two local registries (anonymous and htpasswd), builds the fixture images
//! from Debian packages, PyPI, npm and crates.io (see `scripts/infra/build-images.sh`), pushes them
//! and exports:
//!   PALISADE_TEST_REGISTRY        127.0.0.1:5000 (anonymous)
//!   PALISADE_TEST_REGISTRY_AUTH   127.0.0.1:5001 (ciuser / cipass)
//!   PALISADE_TEST_FIXTURES        the build-images.sh output (OCI layout, archives, root filesystems)
//!   PALISADE_SHARED               the shared data dir (advisories)
//! Without them these tests fail and say so, unless PALISADE_SKIP_INFRA_TESTS=1.
//!
//! The advisory database is built with `palisade db import` from the shared advisory snapshots plus
//! the hand-written npm advisories in `tests/fixtures/advisories`. The expected findings below were
//! looked up in that data by hand (and cross-checked with `scripts/infra/lookup-advisories.py`);
//! `docs/testing.md` lists them with their sources. The scan of the main image must report exactly
//! these: nothing more, nothing less.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

// ------------------------------------------------------------------------------------ expected

/// One expected advisory: its own id (DSA-, PYSEC-, GHSA-, RUSTSEC-, GO-) and the fixed version.
type Expect = (&'static str, &'static str);

/// debian-bullseye:vuln, binary packages whose dpkg status versions the build lowered, with the DSAs
/// (DSA/list, `[bullseye]` lines) whose fixed version is newer. Every other dpkg package is at the
/// current bullseye version and must have no finding at all.
const DEB_EXPECTED: &[(&str, &str, &[Expect])] = &[
    (
        "libssl1.1",
        "1.1.1k-1+deb11u1",
        &[
            ("DSA-5103-1", "1.1.1k-1+deb11u2"),
            ("DSA-5139-1", "1.1.1n-0+deb11u2"),
            ("DSA-5169-1", "1.1.1n-0+deb11u3"),
            ("DSA-5343-1", "1.1.1n-0+deb11u4"),
        ],
    ),
    (
        "zlib1g",
        "1:1.2.11.dfsg-2+deb11u1",
        &[("DSA-5218-1", "1:1.2.11.dfsg-2+deb11u2")],
    ),
    ("gzip", "1.10-4", &[("DSA-5122-1", "1.10-4+deb11u1")]),
    (
        "liblzma5",
        "5.2.5-2",
        &[("DSA-5123-1", "5.2.5-2.1~deb11u1")],
    ),
    ("dpkg", "1.20.9", &[("DSA-5147-1", "1.20.10")]),
    (
        "libgssapi-krb5-2",
        "1.18.3-6+deb11u1",
        &[("DSA-5286-1", "1.18.3-6+deb11u3")],
    ),
    (
        "libk5crypto3",
        "1.18.3-6+deb11u1",
        &[("DSA-5286-1", "1.18.3-6+deb11u3")],
    ),
    (
        "libkrb5-3",
        "1.18.3-6+deb11u1",
        &[("DSA-5286-1", "1.18.3-6+deb11u3")],
    ),
    (
        "libkrb5support0",
        "1.18.3-6+deb11u1",
        &[("DSA-5286-1", "1.18.3-6+deb11u3")],
    ),
    // util-linux: binary versions carry an epoch (bsdutils 1:2.36.1-8), the DSA names the source
    // version 2.36.1-8+deb11u1: matching must use the source version.
    (
        "bsdutils",
        "1:2.36.1-8",
        &[("DSA-5055-1", "2.36.1-8+deb11u1")],
    ),
    (
        "libblkid1",
        "2.36.1-8",
        &[("DSA-5055-1", "2.36.1-8+deb11u1")],
    ),
    (
        "libmount1",
        "2.36.1-8",
        &[("DSA-5055-1", "2.36.1-8+deb11u1")],
    ),
    (
        "libsmartcols1",
        "2.36.1-8",
        &[("DSA-5055-1", "2.36.1-8+deb11u1")],
    ),
    (
        "libuuid1",
        "2.36.1-8",
        &[("DSA-5055-1", "2.36.1-8+deb11u1")],
    ),
    ("mount", "2.36.1-8", &[("DSA-5055-1", "2.36.1-8+deb11u1")]),
    (
        "util-linux",
        "2.36.1-8",
        &[("DSA-5055-1", "2.36.1-8+deb11u1")],
    ),
];

/// CVEs of each expected DSA (its `{…}` line in DSA/list): they must appear as ids or aliases.
const DSA_CVES: &[(&str, &[&str])] = &[
    ("DSA-5103-1", &["CVE-2021-4160", "CVE-2022-0778"]),
    ("DSA-5139-1", &["CVE-2022-1292"]),
    ("DSA-5169-1", &["CVE-2022-2068"]),
    (
        "DSA-5343-1",
        &[
            "CVE-2022-2097",
            "CVE-2022-4304",
            "CVE-2022-4450",
            "CVE-2023-0215",
            "CVE-2023-0286",
        ],
    ),
    ("DSA-5218-1", &["CVE-2022-37434"]),
    ("DSA-5122-1", &["CVE-2022-1271"]),
    ("DSA-5123-1", &["CVE-2022-1271"]),
    ("DSA-5147-1", &["CVE-2022-1664"]),
    ("DSA-5286-1", &["CVE-2022-42898"]),
    ("DSA-5055-1", &["CVE-2021-3995", "CVE-2021-3996"]),
];

/// PyPI packages installed (pip --no-deps --target) and their PYSEC advisories (pypa/vulns).
const PYPI_EXPECTED: &[(&str, &str, &[Expect])] = &[
    (
        "requests",
        "2.19.0",
        &[("PYSEC-2018-28", "2.20.0"), ("PYSEC-2023-74", "2.31.0")],
    ),
    (
        "urllib3",
        "1.24.1",
        &[
            ("PYSEC-2019-132", "1.24.3"),
            ("PYSEC-2019-133", "1.24.2"),
            ("PYSEC-2020-148", "1.25.9"),
            ("PYSEC-2021-108", "1.26.5"),
            ("PYSEC-2023-192", "1.26.17"),
            ("PYSEC-2023-207", "1.24.2"),
            ("PYSEC-2023-212", "1.26.18"),
        ],
    ),
    (
        "pyyaml",
        "5.3",
        &[("PYSEC-2020-96", "5.3.1"), ("PYSEC-2021-142", "5.4")],
    ),
    (
        "jinja2",
        "2.10",
        &[("PYSEC-2019-217", "2.10.1"), ("PYSEC-2021-66", "2.11.3")],
    ),
    ("markupsafe", "1.1.1", &[]),
    ("idna", "2.7", &[("PYSEC-2024-60", "3.7")]),
    ("chardet", "3.0.4", &[]),
    (
        "certifi",
        "2018.8.24",
        &[
            ("PYSEC-2022-42986", "2022.12.7"),
            ("PYSEC-2023-135", "2023.7.22"),
        ],
    ),
];

/// npm advisories with findings (tests/fixtures/advisories/npm, transcribed from the GitHub
/// advisories). The other 50 npm packages of the image have no advisory in the test DB.
const NPM_EXPECTED: &[(&str, &str, &[Expect])] = &[
    (
        "lodash",
        "4.17.4",
        &[
            ("GHSA-29mw-wpgm-hmr9", "4.17.21"),
            ("GHSA-35jh-r3h4-6jhm", "4.17.21"),
            ("GHSA-4xc9-xhrj-v574", "4.17.11"),
            ("GHSA-fvqr-27wr-82fm", "4.17.5"),
            ("GHSA-jf85-cpcp-j695", "4.17.12"),
            ("GHSA-p6mc-m468-83gw", "4.17.19"),
            ("GHSA-x5rq-j2xg-h7qm", "4.17.11"),
        ],
    ),
    (
        "minimist",
        "1.2.0",
        &[
            ("GHSA-vh95-rmgr-6w4m", "1.2.3"),
            ("GHSA-xvch-5gv4-984h", "1.2.6"),
        ],
    ),
    ("qs", "6.5.1", &[("GHSA-hrpp-h998-j3pp", "6.5.3")]),
];

/// Crates in the cargo-auditable binary /usr/local/bin/rust-fixture and /opt/rustapp/Cargo.lock
/// (rustsec/osv/crates).
const CARGO_EXPECTED: &[(&str, &str, &[Expect])] = &[
    ("smallvec", "1.6.0", &[("RUSTSEC-2021-0003", "1.6.1")]),
    ("regex", "1.5.4", &[("RUSTSEC-2022-0013", "1.5.5")]),
    ("regex-syntax", "0.6.25", &[]),
    ("aho-corasick", "0.7.18", &[]),
    ("memchr", "2.4.1", &[]),
];

/// The Go toolchain Debian 12 ships (golang-1.19) and the standard-library advisories of
/// golang-vulndb that affect it (package `stdlib`, SEMVER ranges).
const GO_STDLIB_VERSION: &str = "1.19.8";
const GO_STDLIB_EXPECTED: &[Expect] = &[
    ("GO-2023-1751", "1.19.9"),
    ("GO-2023-1752", "1.19.9"),
    ("GO-2023-1753", "1.19.9"),
    ("GO-2023-1840", "1.19.10"),
    ("GO-2023-1878", "1.19.11"),
    ("GO-2023-1987", "1.19.12"),
    ("GO-2023-2041", "1.20.8"),
    ("GO-2023-2043", "1.20.8"),
    ("GO-2023-2102", "1.20.10"),
    ("GO-2023-2185", "1.20.11"),
    ("GO-2023-2186", "1.20.11"),
    ("GO-2023-2375", "1.20.0"),
    ("GO-2023-2382", "1.20.12"),
    ("GO-2024-2598", "1.21.8"),
    ("GO-2024-2599", "1.21.8"),
    ("GO-2024-2600", "1.21.8"),
    ("GO-2024-2609", "1.21.8"),
    ("GO-2024-2610", "1.21.8"),
    ("GO-2024-2687", "1.21.9"),
    ("GO-2024-2887", "1.21.11"),
    ("GO-2024-2888", "1.21.11"),
    ("GO-2024-2963", "1.21.12"),
    ("GO-2024-3105", "1.22.7"),
    ("GO-2024-3106", "1.22.7"),
    ("GO-2024-3107", "1.22.7"),
    ("GO-2025-3373", "1.22.11"),
    ("GO-2025-3420", "1.22.11"),
    ("GO-2025-3447", "1.22.12"),
    ("GO-2025-3503", "1.23.7"),
    ("GO-2025-3563", "1.23.8"),
    ("GO-2025-3750", "1.23.10"),
    ("GO-2025-3751", "1.23.10"),
    ("GO-2025-3849", "1.23.12"),
    ("GO-2025-3956", "1.23.12"),
    ("GO-2025-4006", "1.24.8"),
    ("GO-2025-4007", "1.24.9"),
    ("GO-2025-4008", "1.24.8"),
    ("GO-2025-4009", "1.24.8"),
    ("GO-2025-4010", "1.24.8"),
    ("GO-2025-4011", "1.24.8"),
    ("GO-2025-4012", "1.24.8"),
    ("GO-2025-4013", "1.24.8"),
    ("GO-2025-4014", "1.24.8"),
    ("GO-2025-4015", "1.24.8"),
    ("GO-2025-4155", "1.24.11"),
    ("GO-2025-4175", "1.24.11"),
    ("GO-2026-4337", "1.24.13"),
    ("GO-2026-4340", "1.24.12"),
    ("GO-2026-4341", "1.24.12"),
    ("GO-2026-4342", "1.24.12"),
    ("GO-2026-4403", "1.23.9"),
    ("GO-2026-4601", "1.25.8"),
    ("GO-2026-4602", "1.25.8"),
    ("GO-2026-4603", "1.25.8"),
    ("GO-2026-4864", "1.25.9"),
    ("GO-2026-4865", "1.25.9"),
    ("GO-2026-4869", "1.25.9"),
    ("GO-2026-4870", "1.25.9"),
    ("GO-2026-4918", "1.25.10"),
    ("GO-2026-4946", "1.25.9"),
    ("GO-2026-4947", "1.25.9"),
    ("GO-2026-4970", "1.25.12"),
    ("GO-2026-4971", "1.25.10"),
    ("GO-2026-4976", "1.25.10"),
    ("GO-2026-4977", "1.25.10"),
    ("GO-2026-4980", "1.25.10"),
    ("GO-2026-4981", "1.25.10"),
    ("GO-2026-4982", "1.25.10"),
    ("GO-2026-4986", "1.25.10"),
    ("GO-2026-5026", "1.25.13"),
    ("GO-2026-5037", "1.25.11"),
    ("GO-2026-5038", "1.25.11"),
    ("GO-2026-5039", "1.25.11"),
    ("GO-2026-5856", "1.25.12"),
    ("GO-2026-5972", "1.25.13"),
    ("GO-2026-6088", "1.25.13"),
    ("GO-2026-6089", "1.25.13"),
    ("GO-2026-6090", "1.25.13"),
    ("GO-2026-6091", "1.25.13"),
    ("GO-2026-6218", "1.25.13"),
];

/// alpine-synthetic:3.9 (Alpine secdb v3.9 main: secfixes newer than the installed version, by
/// origin package). zlib 1.2.11-r1 and apk-tools 2.10.3-r1 have none; busybox 1.29.3-r9 is one
/// release before its fix; openssl 1.1.1b-r1 is exactly the CVE-2019-1543 fix (not affected).
const OPENSSL_APK: &[Expect] = &[
    ("CVE-2019-1547", "1.1.1d-r0"),
    ("CVE-2019-1549", "1.1.1d-r0"),
    ("CVE-2019-1563", "1.1.1d-r0"),
    ("CVE-2019-1551", "1.1.1d-r2"),
    ("CVE-2020-1967", "1.1.1g-r0"),
    ("CVE-2020-1971", "1.1.1i-r0"),
    ("CVE-2021-23839", "1.1.1j-r0"),
    ("CVE-2021-23840", "1.1.1j-r0"),
    ("CVE-2021-23841", "1.1.1j-r0"),
    ("CVE-2021-3449", "1.1.1k-r0"),
    ("CVE-2021-3450", "1.1.1k-r0"),
];
const APK_EXPECTED: &[(&str, &str, &[Expect])] = &[
    (
        "musl",
        "1.1.20-r4",
        &[
            ("CVE-2019-14697", "1.1.20-r5"),
            ("CVE-2020-28928", "1.1.20-r6"),
        ],
    ),
    (
        "busybox",
        "1.29.3-r9",
        &[
            ("CVE-2018-20679", "1.29.3-r10"),
            ("CVE-2019-5747", "1.29.3-r10"),
        ],
    ),
    ("zlib", "1.2.11-r1", &[]),
    ("libcrypto1.1", "1.1.1b-r1", OPENSSL_APK),
    ("libssl1.1", "1.1.1b-r1", OPENSSL_APK),
    ("apk-tools", "2.10.3-r1", &[]),
];

/// Packages that a later layer of debian-bullseye:vuln deletes (whiteout file, opaque directory).
const WHITED_OUT: &[(&str, &str)] = &[("PyPI", "six"), ("npm", "left-pad")];

// --------------------------------------------------------------------------------- environment

struct Infra {
    registry: String,
    registry_auth: String,
    fixtures: PathBuf,
    shared: PathBuf,
}

/// The test infrastructure from `scripts/test.sh`, or `None` when the caller opted out.
fn infra() -> Option<&'static Infra> {
    static INFRA: OnceLock<Option<Infra>> = OnceLock::new();
    INFRA
        .get_or_init(|| {
            if std::env::var("PALISADE_SKIP_INFRA_TESTS").as_deref() == Ok("1") {
                eprintln!("PALISADE_SKIP_INFRA_TESTS=1: end-to-end registry tests skipped");
                return None;
            }
            let var = |k: &str| {
                std::env::var(k).unwrap_or_else(|_| {
                    panic!(
                        "{k} is not set: run scripts/test.sh (it starts the test registries, builds \
                         the fixture images and runs the tests), or set PALISADE_SKIP_INFRA_TESTS=1"
                    )
                })
            };
            let shared = std::env::var("PALISADE_SHARED")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
                });
            Some(Infra {
                registry: var("PALISADE_TEST_REGISTRY"),
                registry_auth: var("PALISADE_TEST_REGISTRY_AUTH"),
                fixtures: PathBuf::from(var("PALISADE_TEST_FIXTURES")),
                shared,
            })
        })
        .as_ref()
}

macro_rules! infra_or_skip {
    () => {
        match infra() {
            Some(i) => i,
            None => return,
        }
    };
}

fn tmp_root() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Builds the advisory DB once per test process with `palisade db import`.
fn db(infra: &Infra) -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let path = tmp_root().join("advisories.db");
        let _ = std::fs::remove_file(&path);
        let adv = infra.shared.join("data/advisories");
        let inputs = [
            adv.join("pypa/vulns"),
            adv.join("rustsec/osv/crates"),
            adv.join("golang-vulndb/data/osv"),
            adv.join("alpine-secdb-json/alpine"),
            adv.join("debian-security-tracker/data/DSA"),
            adv.join("debian-security-tracker/data/DLA"),
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/advisories"
            )),
        ];
        for i in &inputs {
            assert!(i.exists(), "advisory input {} missing", i.display());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .env("PALISADE_DB", &path)
            .arg("db")
            .arg("import")
            .args(&inputs)
            .output()
            .expect("run palisade db import");
        assert!(
            out.status.success(),
            "palisade db import failed ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            path.exists(),
            "db import wrote nothing at {}",
            path.display()
        );
        path
    })
}

/// Runs `palisade ARGS` against the test DB with a private layer cache.
fn palisade(infra: &Infra, args: &[&str]) -> Output {
    palisade_env(infra, args, &[])
}

fn palisade_env(infra: &Infra, args: &[&str], env: &[(&str, &str)]) -> Output {
    let cache = tmp_root().join("cache");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.env("PALISADE_DB", db(infra))
        .env("XDG_CACHE_HOME", tmp_root().join("xdg-cache"))
        .env_remove("PALISADE_REGISTRY_USERNAME")
        .env_remove("PALISADE_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", tmp_root().join("no-docker-config"))
        .env("HOME", tmp_root().join("home"))
        .args(args);
    // `--cache-dir` belongs to the commands that read images.
    if args.starts_with(&["scan", "image"]) || args.first() == Some(&"sbom") {
        cmd.arg("--cache-dir").arg(&cache);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run palisade")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout (first 2000 bytes)\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
            .chars()
            .take(2000)
            .collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a scan that must succeed (exit 0: no --fail-on) and parses its JSON.
fn scan_json(infra: &Infra, args: &[&str]) -> Value {
    let out = palisade(infra, args);
    assert_eq!(out.status.code(), Some(0), "{:?}: {}", args, describe(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: output is not JSON ({e}): {}", describe(&out)))
}

fn bullseye_ref(infra: &Infra) -> String {
    format!("{}/fixtures/debian-bullseye:vuln", infra.registry)
}

/// The registry scan of debian-bullseye:vuln, shared by several tests.
fn bullseye_scan(infra: &Infra) -> &'static Value {
    static SCAN: OnceLock<Value> = OnceLock::new();
    SCAN.get_or_init(|| {
        scan_json(
            infra,
            &[
                "scan",
                "image",
                &bullseye_ref(infra),
                "--insecure",
                "--format",
                "json",
            ],
        )
    })
}

fn fixture_file(infra: &Infra, name: &str) -> String {
    let p = infra.fixtures.join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Digest of a tag in the fixtures' OCI layout (images.txt written by build-images.sh:
/// layout tag, registry name, digest).
fn fixture_digest(infra: &Infra, tag: &str) -> String {
    fixture_file(infra, "images.txt")
        .lines()
        .find_map(|l| {
            let mut f = l.split('\t');
            let (t, _name, d) = (f.next()?, f.next()?, f.next()?);
            (t == tag).then(|| d.to_string())
        })
        .unwrap_or_else(|| panic!("{tag} not in images.txt"))
}

/// The layer digests of an image manifest in the fixtures' OCI layout.
fn fixture_layers(infra: &Infra, tag: &str) -> Vec<String> {
    let digest = fixture_digest(infra, tag);
    let hex = digest.trim_start_matches("sha256:");
    let blob = infra.fixtures.join("oci/blobs/sha256").join(hex);
    let manifest: Value = serde_json::from_slice(&std::fs::read(&blob).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------------------------ JSON helpers

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("`{key}` is not an array in {v}"))
}

/// Python names compare normalised (PEP 503).
fn norm(eco: &str, name: &str) -> String {
    if eco == "PyPI" {
        name.to_ascii_lowercase().replace(['_', '.'], "-")
    } else {
        name.to_string()
    }
}

/// (ecosystem, normalised name, version, path) of every package in a scan.
fn package_set(scan: &Value) -> BTreeSet<(String, String, String, String)> {
    arr(scan, "packages")
        .iter()
        .map(|p| {
            let eco = s(p, "ecosystem").to_string();
            (
                eco.clone(),
                norm(&eco, s(p, "name")),
                s(p, "version").to_string(),
                s(&p["location"], "path").to_string(),
            )
        })
        .collect()
}

/// Every id a finding is known by: its id and its aliases.
fn ids_of(v: &Value) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = v["aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.insert(s(v, "id").to_string());
    ids
}

fn strip_v(v: &str) -> &str {
    v.strip_prefix('v').unwrap_or(v)
}

/// A package instance in findings: ecosystem, normalised name, version, path.
type PkgKey = (String, String, String, String);

fn finding_pkg(v: &Value) -> PkgKey {
    let p = &v["package"];
    let eco = s(p, "ecosystem").to_string();
    (
        eco.clone(),
        norm(&eco, s(p, "name")),
        s(p, "version").to_string(),
        s(&p["location"], "path").to_string(),
    )
}

/// Groups findings by package instance.
fn findings_by_package(scan: &Value) -> BTreeMap<PkgKey, Vec<&Value>> {
    let mut m: BTreeMap<PkgKey, Vec<&Value>> = BTreeMap::new();
    for v in arr(scan, "vulnerabilities") {
        m.entry(finding_pkg(v)).or_default().push(v);
    }
    m
}

/// Checks that the findings of one package instance are exactly `expected` (by the advisory's own
/// id, which may be the finding's id or one of its aliases), each with its fixed version.
fn check_package_findings(
    what: &str,
    findings: &[&Value],
    prefix: &str,
    expected: &[Expect],
    errors: &mut Vec<String>,
) {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        let fixed = f["fixed_version"].as_str().unwrap_or("<none>").to_string();
        for id in ids_of(f) {
            if id.starts_with(prefix) {
                found.entry(id).or_default().insert(fixed.clone());
            }
        }
        // Every finding must be one of the expected advisories (nothing more).
        if !ids_of(f)
            .iter()
            .any(|id| expected.iter().any(|(e, _)| e == id))
        {
            errors.push(format!(
                "{what}: unexpected finding {} (aliases {:?})",
                s(f, "id"),
                f["aliases"]
            ));
        }
        let status = s(f, "status");
        let want_status = if f["fixed_version"].is_string() {
            "fixed"
        } else {
            "not_fixed"
        };
        if status != want_status {
            errors.push(format!(
                "{what}: {} has status {status:?}, expected {want_status:?}",
                s(f, "id")
            ));
        }
    }
    for (id, fixed) in expected {
        match found.get(*id) {
            None => errors.push(format!("{what}: missing {id} (fixed in {fixed})")),
            Some(fx) => {
                let fx: BTreeSet<&str> = fx.iter().map(|x| strip_v(x)).collect();
                if fx != BTreeSet::from([strip_v(fixed)]) {
                    errors.push(format!(
                        "{what}: {id} fixed_version {fx:?}, expected {fixed}"
                    ));
                }
            }
        }
    }
    let expected_ids: BTreeSet<&str> = expected.iter().map(|(i, _)| *i).collect();
    for id in found.keys() {
        if !expected_ids.contains(id.as_str()) {
            errors.push(format!("{what}: unexpected advisory {id}"));
        }
    }
    // One vulnerability is reported once per package: no id in two findings.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for f in findings {
        for id in ids_of(f) {
            *seen.entry(id).or_default() += 1;
        }
    }
    for (id, n) in seen {
        if n > 1 {
            errors.push(format!("{what}: {id} reported {n} times"));
        }
    }
}

fn fail_if(errors: Vec<String>) {
    assert!(
        errors.is_empty(),
        "{} problem(s):\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

/// Checks all findings of ecosystem `eco` in `scan` against `table` (packages not in the table
/// must have no finding). Returns how many package instances of the table were seen.
fn check_ecosystem(
    scan: &Value,
    eco: &str,
    prefix: &str,
    table: &[(&str, &str, &[Expect])],
    errors: &mut Vec<String>,
) -> usize {
    let by_pkg = findings_by_package(scan);
    let mut seen = 0;
    for (eco_p, name, version, path) in package_set(scan) {
        if eco_p != eco {
            continue;
        }
        let what = format!("{eco} {name} {version} ({path})");
        let findings = by_pkg
            .get(&(eco_p.clone(), name.clone(), version.clone(), path.clone()))
            .cloned()
            .unwrap_or_default();
        match table.iter().find(|(n, _, _)| norm(eco, n) == name) {
            Some((_, want_version, expected)) => {
                seen += 1;
                // Go versions may carry Go's `v` prefix (`v1.19.8`).
                if strip_v(&version) != strip_v(want_version) {
                    errors.push(format!("{what}: expected version {want_version}"));
                }
                check_package_findings(&what, &findings, prefix, expected, errors);
            }
            None => {
                for f in findings {
                    errors.push(format!(
                        "{what}: unexpected finding {} (aliases {:?})",
                        s(f, "id"),
                        f["aliases"]
                    ));
                }
            }
        }
    }
    // Findings whose package is not in the package list are an error too.
    let pkgs = package_set(scan);
    for key in by_pkg.keys() {
        if key.0 == eco && !pkgs.contains(key) {
            errors.push(format!("finding for {key:?}, which is not in `packages`"));
        }
    }
    seen
}

// ----------------------------------------------------------------------------------- the tests

#[test]
fn bullseye_from_registry_reports_exactly_the_expected_advisories() {
    let infra = infra_or_skip!();
    let scan = bullseye_scan(infra);
    let mut errors = Vec::new();

    assert_eq!(s(scan, "schema"), "palisade.scan/v1");
    let target = &scan["target"];
    assert_eq!(s(target, "kind"), "image");
    assert_eq!(
        s(target, "digest"),
        fixture_digest(infra, "bullseye-vuln"),
        "manifest digest"
    );
    assert_eq!(s(target, "platform"), "linux/amd64");
    let layers: Vec<String> = arr(target, "layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        layers,
        fixture_layers(infra, "bullseye-vuln"),
        "layer digests, in order"
    );
    assert_eq!(layers.len(), 3);

    let distro = &scan["distro"];
    assert_eq!(s(distro, "id"), "debian");
    assert_eq!(s(distro, "version_id"), "11");
    assert_eq!(s(distro, "codename"), "bullseye");

    // dpkg: exactly the packages dpkg-query lists in the built root, at their versions.
    let want_deb: BTreeSet<(String, String)> = fixture_file(infra, "bullseye-dpkg.txt")
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    let pkgs = package_set(scan);
    let got_deb: BTreeSet<(String, String)> = pkgs
        .iter()
        .filter(|p| p.0 == "Deb")
        .map(|p| (p.1.clone(), p.2.clone()))
        .collect();
    assert_eq!(got_deb, want_deb, "dpkg packages");
    assert!(want_deb.len() > 80, "{} dpkg packages", want_deb.len());
    for p in arr(scan, "packages") {
        if s(p, "ecosystem") == "Deb" {
            let src = p["source_name"].as_str();
            let (name, ver) = (s(p, "name"), s(p, "version"));
            if name == "bsdutils" {
                assert_eq!(src, Some("util-linux"), "bsdutils source");
                assert_eq!(p["source_version"].as_str(), Some("2.36.1-8"));
                assert_eq!(ver, "1:2.36.1-8");
            }
            if name == "libssl1.1" {
                assert_eq!(src, Some("openssl"), "libssl1.1 source");
            }
            let purl = s(p, "purl");
            assert!(
                purl.starts_with(&format!("pkg:deb/debian/{}@", name.replace('+', "%2B")))
                    && purl.contains("distro=debian-11"),
                "purl of {name}: {purl}"
            );
        }
    }

    // Language packages: the pinned sets, and nothing from the deleted paths.
    let names = |eco: &str| -> BTreeSet<(String, String)> {
        pkgs.iter()
            .filter(|p| p.0 == eco)
            .map(|p| (p.1.clone(), p.2.clone()))
            .collect()
    };
    let want_py: BTreeSet<(String, String)> = PYPI_EXPECTED
        .iter()
        .map(|(n, v, _)| (norm("PyPI", n), v.to_string()))
        .collect();
    assert_eq!(names("PyPI"), want_py, "PyPI packages");
    let want_npm: BTreeSet<(String, String)> = npm_fixture_packages();
    let got_npm: BTreeSet<(String, String)> = names("npm")
        .into_iter()
        .filter(|(n, _)| n != "palisade-fixture-app")
        .collect();
    assert_eq!(got_npm, want_npm, "npm packages");
    let got_cargo = names("crates.io");
    for (n, v, _) in CARGO_EXPECTED {
        assert!(
            got_cargo.contains(&(n.to_string(), v.to_string())),
            "crate {n} {v} missing: {got_cargo:?}"
        );
    }
    for (n, _) in &got_cargo {
        assert!(
            n == "palisade-rust-fixture" || CARGO_EXPECTED.iter().any(|(e, _, _)| e == n),
            "unexpected crate {n}"
        );
    }
    // Both the cargo-auditable binary and the Cargo.lock are catalogued.
    let cargo_paths: BTreeSet<&str> = pkgs
        .iter()
        .filter(|p| p.0 == "crates.io" && p.1 == "smallvec")
        .map(|p| p.3.as_str())
        .collect();
    assert!(
        cargo_paths.contains("/usr/local/bin/rust-fixture"),
        "smallvec from the cargo-auditable binary: {cargo_paths:?}"
    );
    assert!(
        cargo_paths.contains("/opt/rustapp/Cargo.lock"),
        "smallvec from Cargo.lock: {cargo_paths:?}"
    );
    let go_version = fixture_file(infra, "go-version.txt");
    assert_eq!(
        go_version.trim(),
        format!("go{GO_STDLIB_VERSION}"),
        "the Go toolchain that built the fixture changed: update GO_STDLIB_EXPECTED \
         (scripts/infra/lookup-advisories.py … osv Go stdlib VERSION)"
    );
    let go = names("Go");
    assert!(
        go.iter()
            .any(|(n, v)| n == "stdlib" && strip_v(v) == GO_STDLIB_VERSION),
        "Go stdlib {GO_STDLIB_VERSION} not found: {go:?}"
    );
    for (eco, name) in WHITED_OUT {
        assert!(
            !pkgs.iter().any(|p| p.0 == *eco && p.1 == norm(eco, name)),
            "{eco} {name} was deleted by a whiteout in the last layer but is reported"
        );
    }

    // Where packages were found: OS packages in the base layer, language packages in the second.
    for p in arr(scan, "packages") {
        let layer = s(&p["location"], "layer_digest");
        let want = if s(p, "ecosystem") == "Deb" {
            &layers[0]
        } else {
            &layers[1]
        };
        if layer != want {
            errors.push(format!(
                "{} {} at {}: layer {layer}, expected {want}",
                s(p, "ecosystem"),
                s(p, "name"),
                s(&p["location"], "path")
            ));
        }
    }

    // Findings, per ecosystem: exactly the expected ones.
    let n = check_ecosystem(scan, "Deb", "DSA-", DEB_EXPECTED, &mut errors);
    assert_eq!(n, DEB_EXPECTED.len(), "altered dpkg packages seen");
    for v in arr(scan, "vulnerabilities") {
        let ids = ids_of(v);
        for (dsa, cves) in DSA_CVES {
            if ids.contains(*dsa) {
                for cve in *cves {
                    if !ids.contains(*cve) {
                        errors.push(format!(
                            "{} {}: {dsa} finding lacks {cve} (ids {ids:?})",
                            s(&v["package"], "name"),
                            s(v, "installed_version")
                        ));
                    }
                }
            }
        }
    }
    let n = check_ecosystem(scan, "PyPI", "PYSEC-", PYPI_EXPECTED, &mut errors);
    assert_eq!(n, PYPI_EXPECTED.len(), "PyPI packages seen");
    check_ecosystem(scan, "npm", "GHSA-", NPM_EXPECTED, &mut errors);
    let n = check_ecosystem(scan, "crates.io", "RUSTSEC-", CARGO_EXPECTED, &mut errors);
    assert!(
        n >= 2 * CARGO_EXPECTED.len(),
        "crates seen {n} (binary + Cargo.lock)"
    );
    let go_table: &[(&str, &str, &[Expect])] = &[("stdlib", GO_STDLIB_VERSION, GO_STDLIB_EXPECTED)];
    let n = check_ecosystem(scan, "Go", "GO-", go_table, &mut errors);
    assert_eq!(n, 1, "one Go binary");
    // Nothing from other ecosystems.
    for v in arr(scan, "vulnerabilities") {
        let eco = s(&v["package"], "ecosystem");
        if !["Deb", "PyPI", "npm", "crates.io", "Go"].contains(&eco) {
            errors.push(format!("unexpected {eco} finding {}", s(v, "id")));
        }
        // Distro advisories compare the source version, which may be what is reported.
        let source_version = arr(scan, "packages")
            .iter()
            .find(|p| {
                s(p, "name") == s(&v["package"], "name")
                    && s(p, "version") == s(&v["package"], "version")
            })
            .and_then(|p| p["source_version"].as_str());
        let installed = s(v, "installed_version");
        if installed != s(&v["package"], "version") && Some(installed) != source_version {
            errors.push(format!(
                "{}: installed_version {} is neither the package version {} nor its source version",
                s(v, "id"),
                s(v, "installed_version"),
                s(&v["package"], "version")
            ));
        }
    }

    // Severity from CVSS vectors we know (our npm fixtures): base scores computed by palisade.
    for (ghsa, severity, score) in [
        ("GHSA-jf85-cpcp-j695", "critical", 9.1),
        ("GHSA-xvch-5gv4-984h", "critical", 9.8),
        ("GHSA-p6mc-m468-83gw", "high", 7.4),
        ("GHSA-35jh-r3h4-6jhm", "high", 7.2),
        ("GHSA-vh95-rmgr-6w4m", "medium", 5.6),
        ("GHSA-29mw-wpgm-hmr9", "medium", 5.3),
        ("GHSA-hrpp-h998-j3pp", "medium", 5.9),
    ] {
        let f = arr(scan, "vulnerabilities")
            .iter()
            .find(|v| ids_of(v).contains(ghsa));
        let Some(f) = f else { continue }; // already reported missing above
        if s(f, "severity") != severity {
            errors.push(format!(
                "{ghsa}: severity {:?}, expected {severity}",
                f["severity"]
            ));
        }
        let scores: Vec<f64> = f["cvss"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["base_score"].as_f64()).collect())
            .unwrap_or_default();
        if !scores.iter().any(|x| (x - score).abs() < 0.05) {
            errors.push(format!(
                "{ghsa}: CVSS base scores {scores:?}, expected {score}"
            ));
        }
    }

    // The summary agrees with the lists.
    let summary = &scan["summary"];
    assert_eq!(
        summary["packages"].as_u64(),
        Some(arr(scan, "packages").len() as u64)
    );
    assert_eq!(
        summary["vulnerabilities"].as_u64(),
        Some(arr(scan, "vulnerabilities").len() as u64)
    );
    let by_sev: u64 = [
        "critical",
        "high",
        "medium",
        "low",
        "informational",
        "unknown",
    ]
    .iter()
    .map(|k| summary["by_severity"][*k].as_u64().unwrap_or(0))
    .sum();
    assert_eq!(
        by_sev,
        arr(scan, "vulnerabilities").len() as u64,
        "by_severity sums to the total"
    );

    fail_if(errors);
}

/// (name, version) of the npm packages build-images.sh installs (scripts/infra/npm-packages.txt).
fn npm_fixture_packages() -> BTreeSet<(String, String)> {
    let list = include_str!("../../../scripts/infra/npm-packages.txt");
    list.lines()
        .filter_map(|l| {
            let (path, version) = l.split_once(' ')?;
            let name = path.rsplit("node_modules/").next()?;
            Some((name.to_string(), version.trim().to_string()))
        })
        .collect()
}

#[test]
fn docker_v2s2_manifest_gives_the_same_result() {
    let infra = infra_or_skip!();
    let reference = format!("{}/fixtures/debian-bullseye:vuln-v2s2", infra.registry);
    let v2 = scan_json(
        infra,
        &[
            "scan",
            "image",
            &reference,
            "--insecure",
            "--format",
            "json",
        ],
    );
    let oci = bullseye_scan(infra);
    assert_ne!(s(&v2["target"], "digest"), s(&oci["target"], "digest"));
    assert_eq!(package_set(&v2), package_set(oci));
    assert_eq!(vuln_set(&v2), vuln_set(oci));
}

/// (package name, version, id) of every finding.
fn vuln_set(scan: &Value) -> BTreeSet<(String, String, String)> {
    arr(scan, "vulnerabilities")
        .iter()
        .map(|v| {
            (
                s(&v["package"], "name").to_string(),
                s(&v["package"], "version").to_string(),
                s(v, "id").to_string(),
            )
        })
        .collect()
}

#[test]
fn oci_layout_docker_archive_and_oci_archive_inputs_match_the_registry() {
    let infra = infra_or_skip!();
    let reg = bullseye_scan(infra);
    let fx = &infra.fixtures;
    for reference in [
        format!("oci:{}:bullseye-vuln", fx.join("oci").display()),
        format!(
            "docker-archive:{}",
            fx.join("debian-bullseye-vuln.docker.tar").display()
        ),
        format!(
            "oci-archive:{}",
            fx.join("debian-bullseye-vuln.oci.tar").display()
        ),
    ] {
        let scan = scan_json(infra, &["scan", "image", &reference, "--format", "json"]);
        assert_eq!(
            package_set(&scan),
            package_set(reg),
            "packages from {reference}"
        );
        assert_eq!(vuln_set(&scan), vuln_set(reg), "findings from {reference}");
        assert_eq!(scan["distro"], reg["distro"], "distro from {reference}");
    }
}

#[test]
fn auth_registry_needs_credentials() {
    let infra = infra_or_skip!();
    let reference = format!("{}/fixtures/debian-bullseye:vuln", infra.registry_auth);

    let ok = scan_json(
        infra,
        &[
            "scan",
            "image",
            &reference,
            "--insecure",
            "--username",
            "ciuser",
            "--password",
            "cipass",
            "--format",
            "json",
        ],
    );
    assert_eq!(package_set(&ok), package_set(bullseye_scan(infra)));

    // Credentials from the environment.
    let out = palisade_env(
        infra,
        &[
            "scan",
            "image",
            &reference,
            "--insecure",
            "--format",
            "json",
        ],
        &[
            ("PALISADE_REGISTRY_USERNAME", "ciuser"),
            ("PALISADE_REGISTRY_PASSWORD", "cipass"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "env credentials: {}",
        describe(&out)
    );

    for (label, extra) in [
        ("no credentials", vec![]),
        (
            "wrong password",
            vec!["--username", "ciuser", "--password", "wrong"],
        ),
    ] {
        let mut args = vec![
            "scan",
            "image",
            reference.as_str(),
            "--insecure",
            "--format",
            "json",
        ];
        args.extend(extra);
        let out = palisade(infra, &args);
        assert_eq!(out.status.code(), Some(2), "{label}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        assert!(
            ["auth", "401", "unauthorized", "credential", "denied"]
                .iter()
                .any(|w| err.contains(w)),
            "{label}: error does not mention authentication: {err}"
        );
    }
}

#[test]
fn missing_image_fails_cleanly() {
    let infra = infra_or_skip!();
    let missing = format!("{}/fixtures/does-not-exist:1", infra.registry);
    let out = palisade(
        infra,
        &["scan", "image", &missing, "--insecure", "--format", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing image: {}",
        describe(&out)
    );
    assert!(!out.stderr.is_empty(), "missing image: no error message");
}

#[test]
fn fail_on_sets_the_exit_code() {
    let infra = infra_or_skip!();
    let reference = bullseye_ref(infra);
    for sev in ["high", "critical"] {
        let out = palisade(
            infra,
            &[
                "scan",
                "image",
                &reference,
                "--insecure",
                "--format",
                "json",
                "--fail-on",
                sev,
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "--fail-on {sev}: {}",
            describe(&out)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON is still written");
        assert_eq!(
            arr(&v, "vulnerabilities").len(),
            arr(bullseye_scan(infra), "vulnerabilities").len()
        );
    }
    // The rpm root has no advisories offline: nothing at or above high, exit 0.
    let rpm = infra.fixtures.join("rootfs/rpm");
    let out = palisade(
        infra,
        &[
            "scan",
            "fs",
            rpm.to_str().unwrap(),
            "--format",
            "json",
            "--fail-on",
            "high",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "clean root: {}", describe(&out));
}

#[test]
fn sarif_output_parses() {
    let infra = infra_or_skip!();
    let out = palisade(
        infra,
        &[
            "scan",
            "image",
            &bullseye_ref(infra),
            "--insecure",
            "--format",
            "sarif",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(s(&v, "version"), "2.1.0");
    let run = &arr(&v, "runs")[0];
    assert!(
        s(&run["tool"]["driver"], "name")
            .to_ascii_lowercase()
            .contains("palisade")
    );
    let results = arr(run, "results");
    assert!(!results.is_empty(), "no SARIF results");
    let json_ids: BTreeSet<String> = arr(bullseye_scan(infra), "vulnerabilities")
        .iter()
        .map(|v| s(v, "id").to_string())
        .collect();
    let sarif_ids: BTreeSet<String> = results.iter().map(|r| s(r, "ruleId").to_string()).collect();
    assert_eq!(sarif_ids, json_ids, "SARIF rule ids = JSON finding ids");
    for r in results {
        assert!(
            ["error", "warning", "note", "none"].contains(&s(r, "level")),
            "level {:?}",
            r["level"]
        );
        assert!(
            !s(&r["message"], "text").is_empty(),
            "result without message"
        );
    }
}

#[test]
fn sbom_cyclonedx_and_spdx_parse() {
    let infra = infra_or_skip!();
    let reference = bullseye_ref(infra);
    let out = palisade(
        infra,
        &["sbom", &reference, "--insecure", "--format", "cyclonedx"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let bom: Value = serde_json::from_slice(&out.stdout).expect("CycloneDX is JSON");
    assert_eq!(s(&bom, "bomFormat"), "CycloneDX");
    assert!(s(&bom, "specVersion").starts_with("1."));
    let purls: BTreeSet<&str> = arr(&bom, "components")
        .iter()
        .map(|c| s(c, "purl"))
        .collect();
    for want in [
        "pkg:npm/lodash@4.17.4",
        "pkg:pypi/requests@2.19.0",
        "pkg:cargo/smallvec@1.6.0",
    ] {
        assert!(purls.contains(want), "CycloneDX lacks {want}");
    }
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/libssl1.1@1.1.1k-1")),
        "CycloneDX lacks libssl1.1"
    );
    for p in arr(bullseye_scan(infra), "packages") {
        assert!(
            purls.contains(s(p, "purl")),
            "CycloneDX lacks {} (a package of the JSON scan)",
            s(p, "purl")
        );
    }

    let out = palisade(
        infra,
        &["sbom", &reference, "--insecure", "--format", "spdx"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let spdx: Value = serde_json::from_slice(&out.stdout).expect("SPDX is JSON");
    assert_eq!(s(&spdx, "spdxVersion"), "SPDX-2.3");
    assert!(
        arr(&spdx, "packages")
            .iter()
            .any(|p| s(p, "name") == "requests" && s(p, "versionInfo") == "2.19.0"),
        "SPDX lacks requests 2.19.0"
    );
}

#[test]
fn alpine_synthetic_gzip_zstd_v2s2_and_fs() {
    let infra = infra_or_skip!();
    let reg = infra.registry.as_str();
    let rootfs = infra.fixtures.join("rootfs/alpine");
    let inputs: Vec<Vec<String>> = vec![
        vec![
            "image".into(),
            format!("{reg}/fixtures/alpine-synthetic:3.9"),
            "--insecure".into(),
        ],
        vec![
            "image".into(),
            format!("{reg}/fixtures/alpine-synthetic:3.9-zstd"),
            "--insecure".into(),
        ],
        vec![
            "image".into(),
            format!("{reg}/fixtures/alpine-synthetic:3.9-v2s2"),
            "--insecure".into(),
        ],
        vec!["fs".into(), rootfs.display().to_string()],
    ];
    let mut first: Option<BTreeSet<(String, String, String)>> = None;
    for input in inputs {
        let mut args: Vec<&str> = vec!["scan"];
        args.extend(input.iter().map(String::as_str));
        args.extend(["--format", "json"]);
        let scan = scan_json(infra, &args);
        let what = input.join(" ");
        assert_eq!(s(&scan["distro"], "id"), "alpine", "{what}");
        assert_eq!(s(&scan["distro"], "version_id"), "3.9.4", "{what}");
        let apk: BTreeSet<(String, String)> = package_set(&scan)
            .into_iter()
            .filter(|p| p.0 == "Apk")
            .map(|p| (p.1, p.2))
            .collect();
        let want: BTreeSet<(String, String)> = APK_EXPECTED
            .iter()
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(apk, want, "{what}: apk packages");
        for p in arr(&scan, "packages") {
            if matches!(s(p, "name"), "libssl1.1" | "libcrypto1.1") {
                assert_eq!(p["source_name"].as_str(), Some("openssl"), "{what}: origin");
            }
        }
        let mut errors = Vec::new();
        check_ecosystem(&scan, "Apk", "CVE-", APK_EXPECTED, &mut errors);
        fail_if(errors);
        let vs = vuln_set(&scan);
        match &first {
            None => first = Some(vs),
            Some(f) => assert_eq!(&vs, f, "{what}: same findings as the first input"),
        }
        if input[0] == "image" && input[1].ends_with("-zstd") {
            assert_eq!(
                s(&scan["target"], "digest"),
                fixture_digest(infra, "alpine-3.9-zstd")
            );
        }
    }
}

#[test]
fn multi_platform_index_selects_by_platform() {
    let infra = infra_or_skip!();
    let reference = format!("{}/fixtures/multiarch:1", infra.registry);
    for (platform, arch, tag) in [
        ("linux/amd64", "x86_64", "multiarch-amd64"),
        ("linux/arm64", "aarch64", "multiarch-arm64"),
    ] {
        let scan = scan_json(
            infra,
            &[
                "scan",
                "image",
                &reference,
                "--insecure",
                "--platform",
                platform,
                "--format",
                "json",
            ],
        );
        // The index digest (what the reference names) or the selected manifest's digest.
        let digest = s(&scan["target"], "digest");
        assert!(
            digest == fixture_digest(infra, tag) || digest == fixture_digest(infra, "multiarch"),
            "{platform}: target.digest {digest} is neither the index nor the {tag} manifest"
        );
        assert!(
            s(&scan["target"], "platform").starts_with(platform),
            "{platform}: target.platform {:?}",
            scan["target"]["platform"]
        );
        let archs: BTreeSet<&str> = arr(&scan, "packages")
            .iter()
            .filter_map(|p| p["arch"].as_str())
            .collect();
        assert_eq!(archs, BTreeSet::from([arch]), "{platform}: package arch");
    }
    let out = palisade(
        infra,
        &[
            "scan",
            "image",
            &reference,
            "--insecure",
            "--platform",
            "linux/s390x",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "absent platform: {}",
        describe(&out)
    );
}

#[test]
fn rpm_root_lists_rpm_packages() {
    let infra = infra_or_skip!();
    let root = infra.fixtures.join("rootfs/rpm");
    let scan = scan_json(
        infra,
        &["scan", "fs", root.to_str().unwrap(), "--format", "json"],
    );
    assert!(
        matches!(s(&scan["target"], "kind"), "fs" | "filesystem"),
        "target.kind {:?}",
        scan["target"]["kind"]
    );
    assert_eq!(s(&scan["distro"], "id"), "rocky");
    assert_eq!(s(&scan["distro"], "version_id"), "9.3");
    // rpm-packages.txt: "name epoch:version-release arch" from `rpm -qa` on the built rpmdb.
    let want: BTreeSet<(String, String)> = fixture_file(infra, "rpm-packages.txt")
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let name = f.next()?.to_string();
            let evr = f.next()?;
            let (epoch, vr) = evr.split_once(':')?;
            let v = if epoch == "0" {
                vr.to_string()
            } else {
                format!("{epoch}:{vr}")
            };
            Some((name, v))
        })
        .collect();
    assert_eq!(want.len(), 5);
    let got: BTreeSet<(String, String)> = package_set(&scan)
        .into_iter()
        .filter(|p| p.0 == "Rpm")
        .map(|p| (p.1, p.2))
        .collect();
    assert_eq!(got, want, "rpm packages (epoch shown only when non-zero)");
    for p in arr(&scan, "packages") {
        assert_eq!(s(p, "ecosystem"), "Rpm");
        assert_eq!(s(&p["location"], "path"), "/var/lib/rpm/rpmdb.sqlite");
        assert!(
            s(p, "purl").starts_with("pkg:rpm/rocky/"),
            "purl {}",
            s(p, "purl")
        );
    }
    // No rpm advisory source is in the offline test data.
    assert_eq!(arr(&scan, "vulnerabilities").len(), 0);
}

#[test]
fn bookworm_base_has_no_distro_findings() {
    let infra = infra_or_skip!();
    let reference = format!("{}/fixtures/debian-bookworm:base", infra.registry);
    let scan = scan_json(
        infra,
        &[
            "scan",
            "image",
            &reference,
            "--insecure",
            "--format",
            "json",
        ],
    );
    assert_eq!(s(&scan["distro"], "codename"), "bookworm");
    let want: usize = fixture_file(infra, "bookworm-dpkg.txt").lines().count();
    let deb = arr(&scan, "packages")
        .iter()
        .filter(|p| s(p, "ecosystem") == "Deb")
        .count();
    assert_eq!(deb, want, "dpkg packages");
    let lang = arr(&scan, "packages").len() - deb;
    assert!(lang >= 50, "{lang} language packages");
    // The DSA list snapshot ends in 2023-03, before bookworm had any DSA: no Debian finding.
    for v in arr(&scan, "vulnerabilities") {
        assert_ne!(
            s(&v["package"], "ecosystem"),
            "Deb",
            "unexpected {}",
            s(v, "id")
        );
    }
    // The language layer is the same as bullseye's (only the Python path differs).
    let mut errors = Vec::new();
    check_ecosystem(&scan, "PyPI", "PYSEC-", PYPI_EXPECTED, &mut errors);
    check_ecosystem(&scan, "npm", "GHSA-", NPM_EXPECTED, &mut errors);
    check_ecosystem(&scan, "crates.io", "RUSTSEC-", CARGO_EXPECTED, &mut errors);
    fail_if(errors);
}
