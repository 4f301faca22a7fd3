//! `--format sarif`: SARIF 2.1.0 for code-scanning dashboards. One rule per vulnerability id, one
//! result per affected package, located at the file the package was read from.

use super::{ScanReport, score};
use palisade_core::Severity;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF result level for a severity.
pub(crate) fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Informational | Severity::Unknown => "note",
    }
}

/// Renders the report as a SARIF log with one run.
pub fn render(r: &ScanReport) -> Value {
    // Rules in first-seen order; the most severe assessment of an id wins its rule's severity.
    let mut order: Vec<&str> = Vec::new();
    let mut rules: BTreeMap<&str, (usize, Value)> = BTreeMap::new();
    for m in &r.matches {
        let id = m.advisory.id.as_str();
        let s = score(&m.advisory, m.severity);
        if let Some((_, existing)) = rules.get(id) {
            let old = existing["properties"]["security-severity"]
                .as_str()
                .and_then(|x| x.parse::<f64>().ok())
                .unwrap_or(0.0);
            if old >= s {
                continue;
            }
        }
        let title = m
            .advisory
            .summary
            .clone()
            .unwrap_or_else(|| format!("{id} in {}", m.package.name));
        let mut help = format!(
            "{title}\n\nPackage: {} {}",
            m.package.name, m.installed_version
        );
        match &m.fixed_version {
            Some(f) => help.push_str(&format!("\nFixed in: {f}")),
            None => help.push_str("\nNo fixed version is known yet."),
        }
        if !m.advisory.aliases.is_empty() {
            help.push_str(&format!("\nAliases: {}", m.advisory.aliases.join(", ")));
        }
        for u in &m.advisory.references {
            help.push_str(&format!("\n{u}"));
        }
        let mut rule = json!({
            "id": id,
            "name": rule_name(id),
            "shortDescription": {"text": title},
            "fullDescription": {"text": title},
            "help": {"text": help},
            "defaultConfiguration": {"level": level(m.severity)},
            "properties": {
                "security-severity": format!("{s:.1}"),
                "tags": ["security", "vulnerability", m.severity.as_str()],
            },
        });
        if let Some(u) = m.advisory.references.first() {
            rule["helpUri"] = json!(u);
        }
        let index = match rules.get(id) {
            Some((i, _)) => *i,
            None => {
                order.push(id);
                order.len() - 1
            }
        };
        rules.insert(id, (index, rule));
    }
    let rule_list: Vec<Value> = order
        .iter()
        .filter_map(|id| rules.get(id).map(|(_, r)| r.clone()))
        .collect();
    let results: Vec<Value> = r
        .matches
        .iter()
        .map(|m| {
            let id = m.advisory.id.as_str();
            let fix = match &m.fixed_version {
                Some(f) => format!("fixed in {f}"),
                None => "no fix yet".to_string(),
            };
            let uri = m.package.location.path.trim_start_matches('/');
            let uri = if uri.is_empty() { "." } else { uri };
            let mut result = json!({
                "ruleId": id,
                "ruleIndex": rules.get(id).map(|(i, _)| *i).unwrap_or(0),
                "level": level(m.severity),
                "message": {"text": format!(
                    "{} {} is affected by {id} ({}); {fix}",
                    m.package.name, m.installed_version, m.severity
                )},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": uri}},
                    "message": {"text": format!("{} in {}", m.package.purl, r.sbom.target.name)},
                }],
                "properties": {
                    "purl": m.package.purl,
                    "installed_version": m.installed_version,
                    "fixed_version": m.fixed_version,
                },
            });
            if let Some(l) = &m.package.location.layer_digest {
                result["properties"]["layer_digest"] = json!(l);
            }
            result
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/palisade",
                "rules": rule_list,
            }},
            "results": results,
            "properties": {"target": r.sbom.target.name},
        }],
    })
}

/// A PascalCase-ish rule name from the id (`CVE-2019-10744` → `Cve2019_10744`); SARIF names must
/// not equal the id, and code-scanning shows them.
pub(crate) fn rule_name(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    let mut upper = true;
    for (i, c) in id.chars().enumerate() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c.to_ascii_lowercase());
            }
            upper = false;
        } else if i > 0 {
            if !out.is_empty() && out.chars().last().is_some_and(|l| l.is_ascii_digit()) {
                out.push('_');
            }
            upper = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testdata::report;

    #[test]
    fn sarif_shape() {
        let mut r = report();
        // The same id in a second package: still one rule.
        let mut dup = r.matches[0].clone();
        dup.package.location.path = "/srv/node_modules/lodash/package.json".into();
        r.matches.push(dup);
        let v = render(&r);
        let v: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["id"], "CVE-2019-10744");
        assert_eq!(rules[0]["properties"]["security-severity"], "9.1");
        assert_eq!(
            rules[0]["helpUri"],
            "https://github.com/advisories/GHSA-jf85-cpcp-j695"
        );
        assert_eq!(rules[1]["properties"]["security-severity"], "2.0");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[1]["level"], "note");
        assert_eq!(results[1]["ruleIndex"], 1);
        assert_eq!(results[2]["ruleIndex"], 0);
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "opt/nodeapp/node_modules/lodash/package.json"
        );
        assert!(
            results[0]["message"]["text"]
                .as_str()
                .unwrap()
                .contains("fixed in 4.17.12")
        );
        assert_eq!(rule_name("CVE-2019-10744"), "Cve2019_10744");
    }
}
