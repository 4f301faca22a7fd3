//! End-to-end tests of the `palisade` binary over real advisory data and generated root file
//! systems: import a DB, scan, check every output format and the exit codes.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const JINJA2_ADVISORIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/advisories/pypa/vulns/jinja2"
);

fn palisade(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env_remove("PALISADE_DB")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .output()
        .expect("run palisade")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\nstdout: {}\nstderr: {}",
            o.status,
            stdout(o),
            stderr(o)
        )
    })
}

/// A Debian 11 root with one Python distribution installed.
fn rootfs_with_python(dir: &Path, name: &str, version: &str) -> PathBuf {
    let root = dir.join("root");
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\nID=debian\n",
    )
    .unwrap();
    let dist = root.join(format!(
        "usr/lib/python3/dist-packages/{name}-{version}.dist-info"
    ));
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(
        dist.join("METADATA"),
        format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test package\n\n"
        ),
    )
    .unwrap();
    root
}

/// Imports `inputs` into a fresh DB in `dir`; returns the DB path.
fn import(home: &Path, inputs: &[&str]) -> PathBuf {
    let db = home.join("advisories.db");
    let mut args = vec!["--db", db.to_str().unwrap(), "db", "import"];
    args.extend_from_slice(inputs);
    let o = palisade(home, &args);
    assert!(
        o.status.success(),
        "db import failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    db
}

#[test]
fn help_lists_the_commands() {
    let home = tempfile::tempdir().unwrap();
    let o = palisade(home.path(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for cmd in ["scan", "sbom", "db", "bench"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    let o = palisade(home.path(), &["scan", "image", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("oci:PATH"));
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["--no-such-flag"][..],
        &["scan"],
        &["scan", "image"],
        &["scan", "fs", "/", "--severity", "severe"],
        &["scan", "fs", "/", "--format", "xml"],
        &["db", "import"],
        &["bench", "scan", "fs:/", "--runs", "0"],
    ] {
        let o = palisade(home.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn missing_db_is_an_actionable_input_error() {
    let home = tempfile::tempdir().unwrap();
    let root = rootfs_with_python(home.path(), "Jinja2", "2.10");
    let db = home.path().join("nope.db");
    let o = palisade(
        home.path(),
        &[
            "--db",
            db.to_str().unwrap(),
            "scan",
            "fs",
            root.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("palisade db import"), "{err}");
    assert!(err.contains("palisade db update"), "{err}");
}

#[test]
fn bad_ignore_file_is_an_input_error() {
    let home = tempfile::tempdir().unwrap();
    let root = rootfs_with_python(home.path(), "Jinja2", "2.10");
    let ignore = home.path().join("ignore.yaml");
    std::fs::write(&ignore, "ignore:\n  - id: CVE-2019-10906\n").unwrap();
    let db = home.path().join("any.db");
    let o = palisade(
        home.path(),
        &[
            "--db",
            db.to_str().unwrap(),
            "scan",
            "fs",
            root.to_str().unwrap(),
            "--ignore-file",
            ignore.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("reason"), "{}", stderr(&o));
}

/// Jinja2 2.10 against the real PyPA advisories for jinja2: exactly CVE-2019-10906 (fixed in
/// 2.10.1) and CVE-2020-28493 (fixed in 2.11.3); the 2014/2016 ones were fixed before 2.10.
#[test]
fn scan_fs_reports_real_pypa_advisories() {
    let home = tempfile::tempdir().unwrap();
    let db = import(home.path(), &[JINJA2_ADVISORIES]);
    let root = rootfs_with_python(home.path(), "Jinja2", "2.10");
    let o = palisade(
        home.path(),
        &[
            "--db",
            db.to_str().unwrap(),
            "scan",
            "fs",
            root.to_str().unwrap(),
            "--format",
            "json",
            "--offline-db",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["schema"], "palisade.scan/v1");
    assert_eq!(v["target"]["kind"], "filesystem");
    assert_eq!(v["distro"]["id"], "debian");
    let vulns = v["vulnerabilities"].as_array().unwrap();
    let mut found: Vec<(String, String)> = vulns
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["fixed_version"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("CVE-2019-10906".to_string(), "2.10.1".to_string()),
            ("CVE-2020-28493".to_string(), "2.11.3".to_string()),
        ],
        "{v:#}"
    );
    let first = vulns.iter().find(|x| x["id"] == "CVE-2019-10906").unwrap();
    let aliases: Vec<&str> = first["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(aliases.contains(&"PYSEC-2019-217"), "{aliases:?}");
    assert!(aliases.contains(&"GHSA-462w-v97r-4m45"), "{aliases:?}");
    assert_eq!(first["package"]["name"], "Jinja2");
    assert_eq!(first["package"]["ecosystem"], "PyPI");
    assert_eq!(first["installed_version"], "2.10");
    assert_eq!(first["status"], "fixed");
    assert!(
        first["package"]["location"]["path"]
            .as_str()
            .unwrap()
            .contains("Jinja2-2.10.dist-info"),
        "{first:#}"
    );
    assert_eq!(v["summary"]["vulnerabilities"], 2);
    assert!(v["db"]["sources"].as_array().is_some_and(|s| !s.is_empty()));

    // A fixed version reports nothing.
    let clean = tempfile::tempdir().unwrap();
    let root = rootfs_with_python(clean.path(), "Jinja2", "3.1.4");
    let o = palisade(
        home.path(),
        &[
            "--db",
            db.to_str().unwrap(),
            "scan",
            "fs",
            root.to_str().unwrap(),
            "--format",
            "json",
            "--fail-on",
            "low",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["vulnerabilities"].as_array().unwrap().len(), 0);
}

/// A generated OSV advisory with known severity, to check the filters, exit codes and formats.
fn generated_osv(dir: &Path) -> PathBuf {
    let osv = dir.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    let adv = serde_json::json!({
        "schema_version": "1.6.0",
        "id": "GHSA-test-0001-0001",
        "modified": "2024-01-01T00:00:00Z",
        "published": "2023-06-01T00:00:00Z",
        "aliases": ["CVE-2099-0001"],
        "summary": "Remote code execution in examplepkg",
        "details": "Generated for the palisade CLI tests.",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": "examplepkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.4.2"}]}]
        }],
        "references": [{"type": "WEB", "url": "https://example.invalid/advisory"}]
    });
    std::fs::write(
        osv.join("GHSA-test-0001-0001.json"),
        serde_json::to_vec_pretty(&adv).unwrap(),
    )
    .unwrap();
    osv
}

#[test]
fn fail_on_ignore_file_and_formats() {
    let home = tempfile::tempdir().unwrap();
    let osv = generated_osv(home.path());
    let db = import(home.path(), &[osv.to_str().unwrap()]);
    let dbs = db.to_str().unwrap();
    let root = rootfs_with_python(home.path(), "examplepkg", "1.3.0");
    let roots = root.to_str().unwrap();
    let scan = |extra: &[&str]| {
        let mut args = vec!["--db", dbs, "scan", "fs", roots, "--offline-db"];
        args.extend_from_slice(extra);
        palisade(home.path(), &args)
    };

    // Table: human report, exit 1 with --fail-on critical (9.8 → critical).
    let o = scan(&["--fail-on", "critical"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("CVE-2099-0001"), "{table}");
    assert!(table.contains("1.4.2"), "{table}");
    assert!(table.contains("CRITICAL"), "{table}");
    assert!(!table.contains('\u{1b}'), "no colour when not a TTY");

    // Severity filter drops it; --fail-on then passes.
    let o = scan(&[
        "--severity",
        "low,medium",
        "--fail-on",
        "low",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["summary"]["vulnerabilities"], 0);

    // Ignore file: moved to `ignored` with its reason.
    let ignore = home.path().join("palisade-ignore.yaml");
    std::fs::write(
        &ignore,
        "ignore:\n  - id: GHSA-test-0001-0001\n    package: examplepkg\n    reason: not reachable in this image\n    expires: 2999-01-01\n",
    )
    .unwrap();
    let o = scan(&[
        "--ignore-file",
        ignore.to_str().unwrap(),
        "--fail-on",
        "low",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["summary"]["vulnerabilities"], 0);
    assert_eq!(v["ignored"][0]["id"], "CVE-2099-0001");
    assert_eq!(v["ignored"][0]["reason"], "not reachable in this image");

    // Expired entries stop applying and warn.
    std::fs::write(
        &ignore,
        "ignore:\n  - id: CVE-2099-0001\n    reason: was fine last year\n    expires: 2000-01-01\n",
    )
    .unwrap();
    let o = scan(&[
        "--ignore-file",
        ignore.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(v["summary"]["vulnerabilities"], 1);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("expired")),
        "{v:#}"
    );

    // SARIF.
    let o = scan(&["--format", "sarif"]);
    let v = json(&o);
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(
        v["runs"][0]["tool"]["driver"]["rules"][0]["id"],
        "CVE-2099-0001"
    );
    assert_eq!(
        v["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["security-severity"],
        "9.8"
    );
    assert_eq!(v["runs"][0]["results"][0]["level"], "error");

    // CycloneDX with vulnerabilities, and SPDX.
    let o = scan(&["--format", "cyclonedx"]);
    let v = json(&o);
    assert_eq!(v["bomFormat"], "CycloneDX");
    assert_eq!(v["vulnerabilities"][0]["id"], "CVE-2099-0001");
    assert!(
        v["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purl"] == "pkg:pypi/examplepkg@1.3.0")
    );
    let o = scan(&["--format", "spdx"]);
    assert_eq!(json(&o)["spdxVersion"], "SPDX-2.3");

    // `sbom` of a directory.
    let o = palisade(home.path(), &["sbom", roots, "--format", "spdx"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert!(
        v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "examplepkg")
    );

    // Status reads back what import wrote.
    let o = palisade(
        home.path(),
        &["--db", dbs, "db", "status", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["advisories"], 1);
}
