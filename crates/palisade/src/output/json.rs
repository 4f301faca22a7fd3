//! `--format json`: the stable `palisade.scan/v1` document (documented in docs/json-schema.md).

use super::ScanReport;
use palisade_core::{CvssScore, Ecosystem, Package, PackageLocation, Severity};
use palisade_vuln::matcher::FixStatus;
use serde::Serialize;

/// The schema id; bumped only on incompatible changes.
pub const SCHEMA: &str = "palisade.scan/v1";

/// The document, with fields in the documented order.
#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    target: Target<'a>,
    distro: Option<DistroOut<'a>>,
    db: Option<DbOut<'a>>,
    summary: Summary,
    packages: &'a [Package],
    vulnerabilities: Vec<Vuln<'a>>,
    ignored: Vec<Ignored<'a>>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct Target<'a> {
    kind: &'a str,
    name: &'a str,
    digest: Option<&'a str>,
    platform: Option<&'a str>,
    layers: &'a [String],
}

#[derive(Serialize)]
struct DistroOut<'a> {
    id: &'a str,
    version_id: Option<&'a str>,
    codename: Option<&'a str>,
}

#[derive(Serialize)]
struct DbOut<'a> {
    built_at: &'a str,
    sources: Vec<SourceOut<'a>>,
}

#[derive(Serialize)]
struct SourceOut<'a> {
    name: &'a str,
    location: &'a str,
    advisories: u64,
    fetched_at: &'a str,
}

#[derive(Serialize)]
struct Summary {
    packages: usize,
    vulnerabilities: usize,
    ignored: usize,
    by_severity: BySeverity,
}

#[derive(Serialize)]
struct BySeverity {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    informational: usize,
    unknown: usize,
}

#[derive(Serialize)]
struct PackageRef<'a> {
    name: &'a str,
    version: &'a str,
    ecosystem: Ecosystem,
    purl: &'a str,
    source_name: Option<&'a str>,
    location: &'a PackageLocation,
}

impl<'a> PackageRef<'a> {
    fn of(p: &'a Package) -> Self {
        PackageRef {
            name: &p.name,
            version: &p.version,
            ecosystem: p.ecosystem,
            purl: &p.purl,
            source_name: p.source_name.as_deref(),
            location: &p.location,
        }
    }
}

#[derive(Serialize)]
struct Vuln<'a> {
    id: &'a str,
    aliases: &'a [String],
    package: PackageRef<'a>,
    installed_version: &'a str,
    fixed_version: Option<&'a str>,
    status: FixStatus,
    severity: Severity,
    cvss: &'a [CvssScore],
    summary: Option<&'a str>,
    references: &'a [String],
    sources: &'a [String],
    published: Option<&'a str>,
}

#[derive(Serialize)]
struct Ignored<'a> {
    id: &'a str,
    aliases: &'a [String],
    package: PackageRef<'a>,
    reason: &'a str,
}

fn document(r: &ScanReport) -> Document<'_> {
    let t = &r.sbom.target;
    let counts = r.by_severity();
    let n = |s: Severity| counts.get(&s).copied().unwrap_or(0);
    Document {
        schema: SCHEMA,
        target: Target {
            kind: &t.kind,
            name: &t.name,
            digest: t.digest.as_deref(),
            platform: t.platform.as_deref(),
            layers: &t.layers,
        },
        distro: r.sbom.distro.as_ref().map(|d| DistroOut {
            id: &d.id,
            version_id: d.version_id.as_deref(),
            codename: d.codename.as_deref(),
        }),
        db: r.db.as_ref().map(|m| DbOut {
            built_at: &m.built_at,
            sources: m
                .sources
                .iter()
                .map(|s| SourceOut {
                    name: &s.name,
                    location: &s.location,
                    advisories: s.advisories,
                    fetched_at: &s.fetched_at,
                })
                .collect(),
        }),
        summary: Summary {
            packages: r.sbom.packages.len(),
            vulnerabilities: r.matches.len(),
            ignored: r.ignored.len(),
            by_severity: BySeverity {
                critical: n(Severity::Critical),
                high: n(Severity::High),
                medium: n(Severity::Medium),
                low: n(Severity::Low),
                informational: n(Severity::Informational),
                unknown: n(Severity::Unknown),
            },
        },
        packages: &r.sbom.packages,
        vulnerabilities: r
            .matches
            .iter()
            .map(|m| {
                let a = &m.advisory;
                Vuln {
                    id: &a.id,
                    aliases: &a.aliases,
                    package: PackageRef::of(&m.package),
                    installed_version: &m.installed_version,
                    fixed_version: m.fixed_version.as_deref(),
                    status: m.status,
                    severity: m.severity,
                    cvss: &a.cvss,
                    summary: a.summary.as_deref(),
                    references: &a.references,
                    sources: &a.sources,
                    published: a.published.as_deref(),
                }
            })
            .collect(),
        ignored: r
            .ignored
            .iter()
            .map(|i| Ignored {
                id: &i.matched.advisory.id,
                aliases: &i.matched.advisory.aliases,
                package: PackageRef::of(&i.matched.package),
                reason: &i.reason,
            })
            .collect(),
        warnings: &r.warnings,
    }
}

/// Renders the scan report as a JSON value (object keys sorted).
#[cfg(test)]
pub fn render(r: &ScanReport) -> serde_json::Value {
    serde_json::to_value(document(r)).unwrap_or(serde_json::Value::Null)
}

/// The report as pretty-printed JSON text with fields in the documented order (serialising the
/// typed document directly; a `Value` map would sort the keys).
pub fn to_string_pretty(r: &ScanReport) -> serde_json::Result<String> {
    let mut s = serde_json::to_string_pretty(&document(r))?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testdata::report;
    use serde_json::Value;

    #[test]
    fn text_keeps_documented_field_order() {
        let s = to_string_pretty(&report()).unwrap();
        let pos = |k: &str| s.find(&format!("\"{k}\":")).unwrap();
        assert!(
            s.trim_start()
                .starts_with("{\n  \"schema\": \"palisade.scan/v1\"")
        );
        assert!(pos("target") < pos("distro"));
        assert!(pos("summary") < pos("packages"));
        assert!(pos("packages") < pos("vulnerabilities"));
        assert!(pos("vulnerabilities") < pos("warnings"));
        // Text and value agree.
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, render(&report()));
    }

    #[test]
    fn follows_the_v1_schema() {
        let v = render(&report());
        // Round-trip through text, as consumers read it.
        let v: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(v["schema"], "palisade.scan/v1");
        assert_eq!(v["target"]["kind"], "image");
        assert_eq!(v["target"]["digest"], "sha256:m");
        assert_eq!(v["target"]["layers"][1], "sha256:l2");
        assert_eq!(v["distro"]["codename"], "bullseye");
        assert_eq!(v["db"]["sources"][0]["name"], "osv:npm");
        assert_eq!(v["summary"]["packages"], 2);
        assert_eq!(v["summary"]["vulnerabilities"], 2);
        let by = v["summary"]["by_severity"].as_object().unwrap();
        assert_eq!(by.len(), 6);
        assert_eq!(by["critical"], 1);
        assert_eq!(by["low"], 1);
        assert_eq!(by["unknown"], 0);
        let x = &v["vulnerabilities"][0];
        assert_eq!(x["id"], "CVE-2019-10744");
        assert_eq!(x["aliases"][0], "GHSA-jf85-cpcp-j695");
        assert_eq!(x["package"]["name"], "lodash");
        assert_eq!(x["package"]["ecosystem"], "npm");
        assert_eq!(x["package"]["purl"], "pkg:npm/lodash@4.17.4");
        assert_eq!(x["package"]["source_name"], Value::Null);
        assert_eq!(x["package"]["location"]["layer_digest"], "sha256:l2");
        assert_eq!(
            x["package"]["location"]["path"],
            "/opt/nodeapp/node_modules/lodash/package.json"
        );
        assert_eq!(x["installed_version"], "4.17.4");
        assert_eq!(x["fixed_version"], "4.17.12");
        assert_eq!(x["status"], "fixed");
        assert_eq!(x["severity"], "critical");
        assert_eq!(x["cvss"][0]["version"], "3.1");
        assert_eq!(x["cvss"][0]["base_score"], 9.1);
        assert_eq!(x["sources"][0], "osv");
        assert_eq!(x["published"], "2019-07-26T00:15:11Z");
        let y = &v["vulnerabilities"][1];
        assert_eq!(y["fixed_version"], Value::Null);
        assert_eq!(y["status"], "not_fixed");
        assert_eq!(y["package"]["source_name"], "openssl");
        assert_eq!(v["packages"][0]["name"], "libssl1.1");
        assert_eq!(v["warnings"][0], "a warning");
    }
}
