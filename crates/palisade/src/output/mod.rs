//! Scan reports: the human table, the `palisade.scan/v1` JSON, SARIF 2.1.0 and CycloneDX.

pub mod json;
pub mod sarif;
pub mod table;

use palisade_core::{Advisory, Severity};
use palisade_image::Sbom;
use palisade_image::sbom::cyclonedx::{self, VulnerabilityRef};
use palisade_vuln::db::DbMetadata;
use palisade_vuln::matcher::{IgnoredMatch, VulnerabilityMatch};
use serde_json::Value;
use std::collections::BTreeMap;

/// Everything a scan produced, as the renderers need it.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    pub sbom: Sbom,
    pub db: Option<DbMetadata>,
    pub matches: Vec<VulnerabilityMatch>,
    pub ignored: Vec<IgnoredMatch>,
    /// Scan, matching and DB warnings, in that order.
    pub warnings: Vec<String>,
}

impl ScanReport {
    /// Count of matches per severity, every severity present (zero when none).
    pub fn by_severity(&self) -> BTreeMap<Severity, usize> {
        let mut m: BTreeMap<Severity, usize> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for v in &self.matches {
            *m.entry(v.severity).or_default() += 1;
        }
        m
    }

    /// Whether some reported vulnerability is at least `threshold` (the `--fail-on` check).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.matches.iter().any(|m| m.severity >= threshold)
    }

    /// The CycloneDX BOM with a `vulnerabilities` section.
    pub fn cyclonedx(&self) -> Value {
        let refs: Vec<VulnerabilityRef<'_>> = self
            .matches
            .iter()
            .map(|m| VulnerabilityRef {
                package: &m.package,
                advisory: &m.advisory,
                installed_version: &m.installed_version,
                fixed_version: m.fixed_version.as_deref(),
            })
            .collect();
        cyclonedx::render(&self.sbom, Some(&refs))
    }
}

/// The score a severity stands for: the highest CVSS v3/v4 base score, else v2, else a
/// representative value of the severity band (for SARIF `security-severity`).
pub fn score(advisory: &Advisory, severity: Severity) -> f64 {
    let best = |v2: bool| {
        advisory
            .cvss
            .iter()
            .filter(|c| c.version.starts_with('2') == v2)
            .map(|c| c.base_score)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
    };
    best(false)
        .or_else(|| best(true))
        .unwrap_or(match severity {
            Severity::Critical => 9.5,
            Severity::High => 8.0,
            Severity::Medium => 5.5,
            Severity::Low => 2.0,
            Severity::Informational | Severity::Unknown => 0.0,
        })
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::*;
    use palisade_core::{CvssScore, Distro, Ecosystem, Package, PackageLocation};
    use palisade_image::ScanTarget;
    use palisade_vuln::db::SourceInfo;
    use palisade_vuln::matcher::FixStatus;

    /// A realistic report: lodash with a critical CVE (fixed), openssl with an unfixed one.
    pub fn report() -> ScanReport {
        let lodash = Package::new(
            Ecosystem::Npm,
            "lodash",
            "4.17.4",
            PackageLocation {
                layer_digest: Some("sha256:l2".into()),
                path: "/opt/nodeapp/node_modules/lodash/package.json".into(),
            },
        );
        let mut ssl = Package::new(
            Ecosystem::Deb,
            "libssl1.1",
            "1.1.1n-0+deb11u3",
            PackageLocation {
                layer_digest: Some("sha256:l1".into()),
                path: "/var/lib/dpkg/status".into(),
            },
        );
        ssl.source_name = Some("openssl".into());
        let m1 = VulnerabilityMatch {
            package: lodash.clone(),
            advisory: Advisory {
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
            installed_version: "4.17.4".into(),
            fixed_version: Some("4.17.12".into()),
            status: FixStatus::Fixed,
            severity: Severity::Critical,
        };
        let m2 = VulnerabilityMatch {
            package: ssl.clone(),
            advisory: Advisory {
                id: "CVE-2023-99999".into(),
                severity: Severity::Low,
                sources: vec!["debian-tracker".into()],
                ..Advisory::default()
            },
            installed_version: "1.1.1n-0+deb11u3".into(),
            fixed_version: None,
            status: FixStatus::NotFixed,
            severity: Severity::Low,
        };
        ScanReport {
            sbom: Sbom {
                target: ScanTarget {
                    kind: "image".into(),
                    name: "127.0.0.1:5000/x:1".into(),
                    digest: Some("sha256:m".into()),
                    platform: Some("linux/amd64".into()),
                    layers: vec!["sha256:l1".into(), "sha256:l2".into()],
                    ..ScanTarget::default()
                },
                distro: Some(Distro {
                    id: "debian".into(),
                    version_id: Some("11".into()),
                    codename: Some("bullseye".into()),
                    pretty_name: None,
                }),
                packages: vec![ssl, lodash],
                warnings: vec!["a warning".into()],
            },
            db: Some(DbMetadata {
                schema_version: 1,
                built_at: "2025-01-01T00:00:00Z".into(),
                sources: vec![SourceInfo {
                    name: "osv:npm".into(),
                    location: "/data/npm".into(),
                    advisories: 10,
                    fetched_at: "2025-01-01T00:00:00Z".into(),
                }],
                advisories: 10,
                affected_packages: 12,
            }),
            matches: vec![m1, m2],
            ignored: vec![],
            warnings: vec!["a warning".into()],
        }
    }

    #[test]
    fn fail_on_and_counts() {
        let r = report();
        assert!(r.fails(Severity::Critical));
        assert!(r.fails(Severity::Low));
        let counts = r.by_severity();
        assert_eq!(counts[&Severity::Critical], 1);
        assert_eq!(counts[&Severity::Low], 1);
        assert_eq!(counts[&Severity::High], 0);
        let mut only_low = r.clone();
        only_low.matches.remove(0);
        assert!(!only_low.fails(Severity::Medium));
        assert_eq!(score(&r.matches[0].advisory, Severity::Critical), 9.1);
        assert_eq!(score(&r.matches[1].advisory, Severity::Low), 2.0);
    }

    #[test]
    fn cyclonedx_affects_reference_components() {
        let r = report();
        let bom = r.cyclonedx();
        let comps: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        let vulns = bom["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulns.len(), 2);
        for v in vulns {
            for a in v["affects"].as_array().unwrap() {
                assert!(comps.contains(&a["ref"].as_str().unwrap()));
            }
        }
    }
}
