//! CycloneDX 1.5 JSON rendering of an [`Sbom`], optionally with the vulnerabilities found (a VEX-
//! style `vulnerabilities` section), for tools that consume BOMs (Dependency-Track, …).

use super::Sbom;
use palisade_core::{Advisory, Package, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One vulnerability affecting one package of the SBOM, as the renderers need it.
#[derive(Debug, Clone, Copy)]
pub struct VulnerabilityRef<'a> {
    /// The affected package (found in `Sbom::packages` by equality, else by purl and path).
    pub package: &'a Package,
    pub advisory: &'a Advisory,
    pub installed_version: &'a str,
    /// `None`: no fix yet.
    pub fixed_version: Option<&'a str>,
}

/// The tool name and version recorded in BOM metadata.
pub const TOOL_NAME: &str = "palisade";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Renders a CycloneDX 1.5 JSON BOM. Every package is one component (purl, bom-ref, layer and path
/// as `palisade:*` properties); with `vulns`, each vulnerability id is one entry whose `affects`
/// names the components.
pub fn render(sbom: &Sbom, vulns: Option<&[VulnerabilityRef<'_>]>) -> Value {
    let refs = bom_refs(&sbom.packages);
    let mut components: Vec<Value> = Vec::with_capacity(sbom.packages.len() + 1);
    if let Some(d) = &sbom.distro {
        components.push(json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": d.id,
            "version": d.version_id.clone().unwrap_or_default(),
            "description": d.pretty_name.clone().unwrap_or_default(),
        }));
    }
    for (p, r) in sbom.packages.iter().zip(&refs) {
        components.push(component(p, r));
    }
    let target_kind = match sbom.target.kind.as_str() {
        "filesystem" => "file",
        _ => "container",
    };
    let mut target = json!({
        "type": target_kind,
        "bom-ref": "target",
        "name": sbom.target.name,
    });
    let mut target_props = Vec::new();
    if let Some(d) = &sbom.target.digest {
        target["version"] = json!(d);
        target_props.push(prop("palisade:image:digest", d));
    }
    if let Some(p) = &sbom.target.platform {
        target_props.push(prop("palisade:image:platform", p));
    }
    for l in &sbom.target.layers {
        target_props.push(prop("palisade:image:layer", l));
    }
    if !target_props.is_empty() {
        target["properties"] = Value::Array(target_props);
    }
    let mut depends: Vec<&str> = Vec::new();
    if sbom.distro.is_some() {
        depends.push("os");
    }
    depends.extend(refs.iter().map(String::as_str));
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(sbom),
        "version": 1,
        "metadata": {
            "timestamp": now_rfc3339(),
            "tools": {"components": [{"type": "application", "name": TOOL_NAME, "version": TOOL_VERSION}]},
            "component": target,
        },
        "components": components,
        "dependencies": [{"ref": "target", "dependsOn": depends}],
    });
    if let Some(v) = vulns {
        bom["vulnerabilities"] = Value::Array(vulnerabilities(sbom, &refs, v));
    }
    bom
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn component(p: &Package, bom_ref: &str) -> Value {
    let mut c = json!({
        "type": "library",
        "bom-ref": bom_ref,
        "name": p.name,
        "version": p.version,
        "purl": p.purl,
    });
    if let Some(l) = p.license.as_deref().filter(|l| !l.trim().is_empty()) {
        c["licenses"] = json!([{"license": {"name": l}}]);
    }
    let mut props = vec![prop("palisade:ecosystem", p.ecosystem.osv_name())];
    if let Some(d) = &p.location.layer_digest {
        props.push(prop("palisade:layer_digest", d));
    }
    if !p.location.path.is_empty() {
        props.push(prop("palisade:path", &p.location.path));
    }
    if let Some(s) = &p.source_name {
        props.push(prop("palisade:source_name", s));
    }
    if let Some(s) = &p.source_version {
        props.push(prop("palisade:source_version", s));
    }
    if let Some(a) = &p.arch {
        props.push(prop("palisade:arch", a));
    }
    c["properties"] = Value::Array(props);
    c
}

/// Unique, stable bom-refs: the purl, qualified by the location path (then an index) when two
/// packages share a purl (the same library installed twice).
pub fn bom_refs(packages: &[Package]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for p in packages {
        *count.entry(p.purl.as_str()).or_default() += 1;
    }
    let mut used = HashSet::new();
    packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let base = if p.purl.is_empty() {
                format!("pkg-{i}")
            } else if count.get(p.purl.as_str()).copied().unwrap_or(0) > 1 {
                format!("{}#{}", p.purl, p.location.path)
            } else {
                p.purl.clone()
            };
            let r = if used.contains(&base) {
                format!("{base}#{i}")
            } else {
                base
            };
            used.insert(r.clone());
            r
        })
        .collect()
}

/// Index of `p` in `packages`: by equality, else by purl and path.
pub fn package_index(packages: &[Package], p: &Package) -> Option<usize> {
    packages.iter().position(|q| q == p).or_else(|| {
        packages
            .iter()
            .position(|q| q.purl == p.purl && q.location.path == p.location.path)
    })
}

fn vulnerabilities(sbom: &Sbom, refs: &[String], vulns: &[VulnerabilityRef<'_>]) -> Vec<Value> {
    // One entry per id; affects lists every component it was found in.
    let mut by_id: BTreeMap<&str, Vec<&VulnerabilityRef<'_>>> = BTreeMap::new();
    for v in vulns {
        by_id.entry(v.advisory.id.as_str()).or_default().push(v);
    }
    let mut out = Vec::with_capacity(by_id.len());
    for (id, group) in by_id {
        let a = group[0].advisory;
        let mut affects: Vec<Value> = Vec::new();
        let mut fixes: Vec<String> = Vec::new();
        for v in &group {
            let Some(i) = package_index(&sbom.packages, v.package) else {
                continue;
            };
            let r = &refs[i];
            if affects.iter().any(|x| x["ref"] == json!(r)) {
                continue;
            }
            affects.push(json!({"ref": r, "versions": [{"version": v.installed_version, "status": "affected"}]}));
            if let Some(f) = v.fixed_version {
                let s = format!("{} {}", v.package.name, f);
                if !fixes.contains(&s) {
                    fixes.push(s);
                }
            }
        }
        let mut e = json!({
            "id": id,
            "source": source_of(id),
            "ratings": ratings(a),
            "affects": affects,
        });
        if !a.aliases.is_empty() {
            e["references"] = Value::Array(
                a.aliases
                    .iter()
                    .map(|al| json!({"id": al, "source": source_of(al)}))
                    .collect(),
            );
        }
        if let Some(s) = &a.summary {
            e["description"] = json!(s);
        }
        if let Some(p) = a.published.as_deref().filter(|p| is_rfc3339(p)) {
            e["published"] = json!(p);
        }
        if !a.references.is_empty() {
            e["advisories"] =
                Value::Array(a.references.iter().map(|u| json!({"url": u})).collect());
        }
        e["recommendation"] = json!(if fixes.is_empty() {
            "No fixed version is known yet.".to_string()
        } else {
            format!("Upgrade to {}.", fixes.join(", "))
        });
        out.push(e);
    }
    out
}

fn ratings(a: &Advisory) -> Value {
    let mut r: Vec<Value> = a
        .cvss
        .iter()
        .map(|c| {
            let method = match c.version.as_str() {
                "2.0" | "2" => "CVSSv2",
                "3.0" => "CVSSv3",
                "3.1" => "CVSSv31",
                "4.0" => "CVSSv4",
                _ => "other",
            };
            json!({
                "score": c.base_score,
                "severity": cdx_severity(score_severity(&c.version, c.base_score)),
                "method": method,
                "vector": c.vector,
            })
        })
        .collect();
    if r.is_empty() {
        r.push(json!({"severity": cdx_severity(a.severity), "method": "other"}));
    }
    Value::Array(r)
}

fn score_severity(version: &str, score: f64) -> Severity {
    let s = Severity::from_cvss_score(score);
    if version.starts_with('2') {
        s.min(Severity::High)
    } else {
        s
    }
}

fn cdx_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Informational => "info",
        Severity::Unknown => "unknown",
    }
}

fn source_of(id: &str) -> Value {
    let upper = id.to_ascii_uppercase();
    let (name, url) = if upper.starts_with("CVE-") {
        ("NVD", format!("https://nvd.nist.gov/vuln/detail/{id}"))
    } else if upper.starts_with("GHSA-") {
        ("GitHub", format!("https://github.com/advisories/{id}"))
    } else if upper.starts_with("DSA-") || upper.starts_with("DLA-") {
        (
            "Debian",
            "https://security-tracker.debian.org/tracker/".to_string() + id,
        )
    } else {
        ("OSV", format!("https://osv.dev/vulnerability/{id}"))
    };
    json!({"name": name, "url": url})
}

fn is_rfc3339(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// A unique `urn:uuid:` (version 4 layout) derived from the content and the current time.
fn serial_number(sbom: &Sbom) -> String {
    let mut h = Sha256::new();
    h.update(sbom.target.name.as_bytes());
    h.update(sbom.target.digest.as_deref().unwrap_or("").as_bytes());
    h.update(sbom.packages.len().to_le_bytes());
    h.update(
        time::OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_le_bytes(),
    );
    h.update(std::process::id().to_le_bytes());
    uuid_from_hash(&h.finalize())
}

/// Formats 16 bytes of a hash as an RFC 4122 version-4-style UUID.
pub(crate) fn uuid_from_hash(hash: &[u8]) -> String {
    let mut b = [0u8; 16];
    for (d, s) in b.iter_mut().zip(hash) {
        *d = *s;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanTarget;
    use palisade_core::{CvssScore, Distro, Ecosystem, PackageLocation};

    pub(crate) fn sample() -> Sbom {
        let mut lodash = Package::new(
            Ecosystem::Npm,
            "lodash",
            "4.17.4",
            PackageLocation {
                layer_digest: Some("sha256:aa".into()),
                path: "/app/node_modules/lodash/package.json".into(),
            },
        );
        lodash.license = Some("MIT".into());
        let mut lodash2 = lodash.clone();
        lodash2.location.path = "/other/node_modules/lodash/package.json".into();
        let mut ssl = Package::new(
            Ecosystem::Deb,
            "libssl3",
            "3.0.11-1~deb12u2",
            PackageLocation {
                layer_digest: Some("sha256:bb".into()),
                path: "/var/lib/dpkg/status".into(),
            },
        );
        ssl.source_name = Some("openssl".into());
        Sbom {
            target: ScanTarget {
                kind: "image".into(),
                name: "127.0.0.1:5000/x:1".into(),
                digest: Some("sha256:cc".into()),
                platform: Some("linux/amd64".into()),
                layers: vec!["sha256:aa".into(), "sha256:bb".into()],
                ..ScanTarget::default()
            },
            distro: Some(Distro {
                id: "debian".into(),
                version_id: Some("12".into()),
                codename: Some("bookworm".into()),
                pretty_name: None,
            }),
            packages: vec![lodash, lodash2, ssl],
            warnings: vec![],
        }
    }

    #[test]
    fn components_and_vulnerabilities() {
        let sbom = sample();
        let adv = Advisory {
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
        };
        let vulns = [
            VulnerabilityRef {
                package: &sbom.packages[0],
                advisory: &adv,
                installed_version: "4.17.4",
                fixed_version: Some("4.17.12"),
            },
            VulnerabilityRef {
                package: &sbom.packages[1],
                advisory: &adv,
                installed_version: "4.17.4",
                fixed_version: Some("4.17.12"),
            },
        ];
        let bom = render(&sbom, Some(&vulns));
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.5");
        assert!(
            bom["serialNumber"]
                .as_str()
                .unwrap()
                .starts_with("urn:uuid:")
        );
        let comps = bom["components"].as_array().unwrap();
        assert_eq!(comps.len(), 4);
        assert_eq!(comps[0]["type"], "operating-system");
        let refs: Vec<&str> = comps
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        let unique: HashSet<&&str> = refs.iter().collect();
        assert_eq!(unique.len(), refs.len(), "bom-refs unique: {refs:?}");
        assert_eq!(comps[1]["purl"], "pkg:npm/lodash@4.17.4");
        assert_eq!(comps[1]["licenses"][0]["license"]["name"], "MIT");
        let props = comps[1]["properties"].as_array().unwrap();
        assert!(props.contains(&json!({"name": "palisade:layer_digest", "value": "sha256:aa"})));
        assert!(props.contains(
            &json!({"name": "palisade:path", "value": "/app/node_modules/lodash/package.json"})
        ));
        let v = bom["vulnerabilities"].as_array().unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["id"], "CVE-2019-10744");
        assert_eq!(v[0]["ratings"][0]["method"], "CVSSv31");
        assert_eq!(v[0]["ratings"][0]["severity"], "critical");
        assert_eq!(v[0]["ratings"][0]["score"], 9.1);
        assert_eq!(v[0]["references"][0]["id"], "GHSA-jf85-cpcp-j695");
        let affects = v[0]["affects"].as_array().unwrap();
        assert_eq!(affects.len(), 2);
        for a in affects {
            assert!(refs.contains(&a["ref"].as_str().unwrap()));
        }
        assert_eq!(v[0]["recommendation"], "Upgrade to lodash 4.17.12.");
        // Without vulnerabilities: no section.
        assert!(render(&sbom, None).get("vulnerabilities").is_none());
    }
}
