//! `--format json`: the stable `palisade.scan/v1` document (documented in docs/json-schema.md).

use super::ScanReport;
use palisade_core::Package;
use serde_json::{Value, json};

/// The schema id; bumped only on incompatible changes.
pub const SCHEMA: &str = "palisade.scan/v1";

/// Renders the scan report.
pub fn render(r: &ScanReport) -> Value {
    let t = &r.sbom.target;
    let target = json!({
        "kind": t.kind,
        "name": t.name,
        "digest": t.digest,
        "platform": t.platform,
        "layers": t.layers,
    });
    let distro = match &r.sbom.distro {
        Some(d) => json!({"id": d.id, "version_id": d.version_id, "codename": d.codename}),
        None => Value::Null,
    };
    let db = match &r.db {
        Some(m) => json!({
            "built_at": m.built_at,
            "sources": m.sources.iter().map(|s| json!({
                "name": s.name, "location": s.location, "advisories": s.advisories, "fetched_at": s.fetched_at,
            })).collect::<Vec<_>>(),
        }),
        None => Value::Null,
    };
    let by_severity: serde_json::Map<String, Value> = r
        .by_severity()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let vulnerabilities: Vec<Value> = r
        .matches
        .iter()
        .map(|m| {
            let a = &m.advisory;
            json!({
                "id": a.id,
                "aliases": a.aliases,
                "package": package_ref(&m.package),
                "installed_version": m.installed_version,
                "fixed_version": m.fixed_version,
                "status": m.status,
                "severity": m.severity,
                "cvss": a.cvss,
                "summary": a.summary,
                "references": a.references,
                "sources": a.sources,
                "published": a.published,
            })
        })
        .collect();
    let ignored: Vec<Value> = r
        .ignored
        .iter()
        .map(|i| {
            json!({
                "id": i.matched.advisory.id,
                "aliases": i.matched.advisory.aliases,
                "package": package_ref(&i.matched.package),
                "reason": i.reason,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "target": target,
        "distro": distro,
        "db": db,
        "summary": {
            "packages": r.sbom.packages.len(),
            "vulnerabilities": r.matches.len(),
            "ignored": r.ignored.len(),
            "by_severity": by_severity,
        },
        "packages": r.sbom.packages,
        "vulnerabilities": vulnerabilities,
        "ignored": ignored,
        "warnings": r.warnings,
    })
}

/// The identifying subset of a package repeated in each vulnerability.
fn package_ref(p: &Package) -> Value {
    json!({
        "name": p.name,
        "version": p.version,
        "ecosystem": p.ecosystem,
        "purl": p.purl,
        "source_name": p.source_name,
        "location": p.location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testdata::report;

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
