//! SPDX 2.3 JSON rendering of an [`Sbom`]: one SPDX package for the scanned target, which the
//! document DESCRIBES, and one per found package (purl as a PACKAGE-MANAGER external ref), which
//! the target CONTAINS.

use super::Sbom;
use super::cyclonedx::{TOOL_NAME, TOOL_VERSION, uuid_from_hash};
use palisade_core::Package;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Renders an SPDX 2.3 JSON document.
pub fn render(sbom: &Sbom) -> Value {
    let created = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    let mut h = Sha256::new();
    h.update(sbom.target.name.as_bytes());
    h.update(created.as_bytes());
    h.update(
        time::OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_le_bytes(),
    );
    h.update(std::process::id().to_le_bytes());
    let uuid = uuid_from_hash(&h.finalize());
    let uuid = uuid.trim_start_matches("urn:uuid:");
    let doc_name = if sbom.target.name.is_empty() {
        "palisade-sbom".to_string()
    } else {
        sbom.target.name.clone()
    };

    let mut target = json!({
        "SPDXID": "SPDXRef-Target",
        "name": doc_name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": if sbom.target.kind == "filesystem" { "FILE" } else { "CONTAINER" },
    });
    if let Some(d) = &sbom.target.digest {
        target["versionInfo"] = json!(d);
        if let Some(hex) = d.strip_prefix("sha256:") {
            target["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
        }
    }
    let mut packages = vec![target];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Target",
    })];
    if let Some(d) = &sbom.distro {
        packages.push(json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": d.id,
            "versionInfo": d.version_id.clone().unwrap_or_default(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Target",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-OperatingSystem",
        }));
    }
    for (i, p) in sbom.packages.iter().enumerate() {
        let id = spdx_id(i, p);
        packages.push(package(&id, p));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Target",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": doc_name,
        "documentNamespace": format!("https://palisade.invalid/spdx/{}-{uuid}", sanitize(&doc_name)),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// `SPDXRef-Package-<n>-<name>`, restricted to the characters SPDX ids allow.
fn spdx_id(i: usize, p: &Package) -> String {
    format!("SPDXRef-Package-{i}-{}", sanitize(&p.name))
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() { "x".into() } else { out }
}

fn package(id: &str, p: &Package) -> Value {
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": p.purl,
        }],
    });
    let mut info = format!("found at {}", p.location.path);
    if let Some(l) = &p.location.layer_digest {
        info.push_str(&format!(" in layer {l}"));
    }
    v["sourceInfo"] = json!(info);
    if let Some(l) = p.license.as_deref().filter(|l| !l.trim().is_empty()) {
        // Catalogued license text is not always a valid SPDX expression: record it as a comment.
        v["licenseComments"] = json!(format!("declared by the package metadata: {l}"));
    }
    if let Some(s) = &p.source_name {
        v["comment"] = json!(format!(
            "source package {s}{}",
            p.source_version
                .as_deref()
                .map(|sv| format!(" {sv}"))
                .unwrap_or_default()
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanTarget;
    use palisade_core::{Ecosystem, PackageLocation};

    #[test]
    fn document_shape() {
        let mut p = Package::new(
            Ecosystem::PyPI,
            "Jinja2",
            "2.10",
            PackageLocation {
                layer_digest: Some("sha256:aa".into()),
                path: "/usr/lib/python3/site-packages/Jinja2-2.10.dist-info/METADATA".into(),
            },
        );
        p.license = Some("BSD".into());
        let sbom = Sbom {
            target: ScanTarget {
                kind: "image".into(),
                name: "reg/x:1".into(),
                digest: Some("sha256:0123".into()),
                ..ScanTarget::default()
            },
            distro: None,
            packages: vec![p],
            warnings: vec![],
        };
        let d = render(&sbom);
        assert_eq!(d["spdxVersion"], "SPDX-2.3");
        assert_eq!(d["SPDXID"], "SPDXRef-DOCUMENT");
        let pkgs = d["packages"].as_array().unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[1]["SPDXID"], "SPDXRef-Package-0-Jinja2");
        assert_eq!(
            pkgs[1]["externalRefs"][0]["referenceCategory"],
            "PACKAGE-MANAGER"
        );
        assert_eq!(
            pkgs[1]["externalRefs"][0]["referenceLocator"],
            "pkg:pypi/jinja2@2.10"
        );
        let rels = d["relationships"].as_array().unwrap();
        assert_eq!(rels[0]["relationshipType"], "DESCRIBES");
        assert_eq!(rels[1]["relatedSpdxElement"], "SPDXRef-Package-0-Jinja2");
        assert!(
            d["documentNamespace"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        assert_eq!(sanitize("@babel/core"), "-babel-core");
    }
}
