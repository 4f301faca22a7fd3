//! Validates the CycloneDX 1.5 and SPDX 2.3 documents Palisade writes with the reference tools:
//! `cyclonedx-python-lib[json-validation]` (the CycloneDX JSON schema, strict) and `spdx-tools`
//! (`pyspdxtools`), both from PyPI.
//!
//! The Python interpreter is `$PALISADE_SBOM_PYTHON` (default `python3`); `pyspdxtools` is looked
//! up beside it, then on PATH. When the tools are missing the test says so and passes, unless
//! `PALISADE_REQUIRE_SBOM_VALIDATORS=1` (CI), where a missing validator is a failure.

use palisade_core::{Advisory, CvssScore, Distro, Ecosystem, Package, PackageLocation, Severity};
use palisade_image::sbom::cyclonedx::{self, VulnerabilityRef};
use palisade_image::sbom::spdx;
use palisade_image::{Sbom, ScanTarget};
use std::path::{Path, PathBuf};
use std::process::Command;

fn required() -> bool {
    std::env::var("PALISADE_REQUIRE_SBOM_VALIDATORS").is_ok_and(|v| v == "1")
}

fn python() -> PathBuf {
    std::env::var_os("PALISADE_SBOM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn unavailable(what: &str) {
    assert!(
        !required(),
        "{what} is not installed but PALISADE_REQUIRE_SBOM_VALIDATORS=1"
    );
    eprintln!("skipping: {what} is not installed");
}

fn sample() -> Sbom {
    let loc = |layer: &str, path: &str| PackageLocation {
        layer_digest: Some(layer.into()),
        path: path.into(),
    };
    let mut ssl = Package::new(
        Ecosystem::Deb,
        "libssl1.1",
        "1.1.1n-0+deb11u3",
        loc("sha256:1111", "/var/lib/dpkg/status"),
    );
    ssl.source_name = Some("openssl".into());
    ssl.arch = Some("amd64".into());
    ssl.license = Some("OpenSSL".into());
    let distro = Distro {
        id: "debian".into(),
        version_id: Some("11".into()),
        codename: Some("bullseye".into()),
        pretty_name: Some("Debian GNU/Linux 11 (bullseye)".into()),
    };
    ssl.qualify_os_purl(&distro);
    let lodash = Package::new(
        Ecosystem::Npm,
        "lodash",
        "4.17.4",
        loc("sha256:2222", "/opt/app/node_modules/lodash/package.json"),
    );
    let mut lodash2 = lodash.clone();
    lodash2.location.path = "/opt/other/node_modules/lodash/package.json".into();
    let babel = Package::new(
        Ecosystem::Npm,
        "@babel/core",
        "7.0.0",
        loc(
            "sha256:2222",
            "/opt/app/node_modules/@babel/core/package.json",
        ),
    );
    let mut jinja = Package::new(
        Ecosystem::PyPI,
        "Jinja2",
        "2.10",
        loc(
            "sha256:2222",
            "/usr/lib/python3/dist-packages/Jinja2-2.10.dist-info/METADATA",
        ),
    );
    jinja.license = Some("BSD".into());
    Sbom {
        target: ScanTarget {
            kind: "image".into(),
            name: "127.0.0.1:5000/palisade/test:1".into(),
            digest: Some(
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            ),
            platform: Some("linux/amd64".into()),
            layers: vec!["sha256:1111".into(), "sha256:2222".into()],
            ..ScanTarget::default()
        },
        distro: Some(distro),
        packages: vec![ssl, lodash, lodash2, babel, jinja],
        warnings: vec![],
    }
}

fn advisories() -> Vec<Advisory> {
    vec![
        Advisory {
            id: "CVE-2019-10744".into(),
            aliases: vec!["GHSA-jf85-cpcp-j695".into()],
            summary: Some("Prototype Pollution in lodash".into()),
            severity: Severity::Critical,
            cvss: vec![CvssScore {
                version: "3.1".into(),
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H".into(),
                base_score: 9.1,
            }],
            references: vec!["https://github.com/advisories/GHSA-jf85-cpcp-j695".into()],
            published: Some("2019-07-26T00:15:11Z".into()),
            sources: vec!["osv".into()],
        },
        Advisory {
            id: "CVE-2023-0286".into(),
            aliases: vec!["DSA-5343-1".into()],
            severity: Severity::High,
            // A date that is not RFC 3339 must not leak into `published`.
            published: Some("2023-02-08".into()),
            sources: vec!["debian-tracker".into()],
            ..Advisory::default()
        },
    ]
}

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

const CDX_CHECK: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
with open(sys.argv[1]) as f:
    data = f.read()
err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(data)
if err is not None:
    print(err)
    sys.exit(1)
"#;

#[test]
fn cyclonedx_validates_against_the_1_5_schema() {
    let probe = Command::new(python())
        .args(["-c", "import cyclonedx.validation.json, jsonschema"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        unavailable("cyclonedx-python-lib[json-validation]");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sbom = sample();
    let advs = advisories();
    let vulns = [
        VulnerabilityRef {
            package: &sbom.packages[1],
            advisory: &advs[0],
            installed_version: "4.17.4",
            fixed_version: Some("4.17.12"),
        },
        VulnerabilityRef {
            package: &sbom.packages[2],
            advisory: &advs[0],
            installed_version: "4.17.4",
            fixed_version: Some("4.17.12"),
        },
        VulnerabilityRef {
            package: &sbom.packages[0],
            advisory: &advs[1],
            installed_version: "1.1.1n-0+deb11u3",
            fixed_version: None,
        },
    ];
    for (name, doc) in [
        ("bom.json", cyclonedx::render(&sbom, None)),
        ("vex.json", cyclonedx::render(&sbom, Some(&vulns))),
        ("empty.json", cyclonedx::render(&Sbom::default(), Some(&[]))),
    ] {
        let path = write(dir.path(), name, &doc);
        let o = Command::new(python())
            .args(["-c", CDX_CHECK])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name} is not valid CycloneDX 1.5: {}{}\n{doc:#}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn pyspdxtools() -> Option<PathBuf> {
    let beside = python().parent().map(|d| d.join("pyspdxtools"));
    if let Some(b) = beside.filter(|b| b.is_file()) {
        return Some(b);
    }
    Command::new("pyspdxtools")
        .arg("--help")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("pyspdxtools"))
}

#[test]
fn spdx_validates_with_spdx_tools() {
    let Some(tool) = pyspdxtools() else {
        unavailable("spdx-tools (pyspdxtools)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, sbom) in [
        ("image.spdx.json", sample()),
        ("empty.spdx.json", Sbom::default()),
    ] {
        let doc = spdx::render(&sbom);
        let path = write(dir.path(), name, &doc);
        let o = Command::new(&tool).arg("-i").arg(&path).output().unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && !out.to_lowercase().contains("invalid"),
            "{name} is not valid SPDX 2.3: {out}\n{doc:#}"
        );
    }
}
