//! CVSS base scores computed from vectors (v2.0, v3.0, v3.1, v4.0), so severity never depends on
//! a number an advisory source claims.
//!
//! Parsing and the FIRST equations come from the `cvss` crate; this module picks the version,
//! accepts the spellings advisories use (v2 vectors with or without parentheses or a
//! `CVSS:2.0/` prefix), and for v4.0 scores only the base metric group (CVSS-B), dropping threat,
//! environmental and supplemental metrics after validating them.

use palisade_core::CvssScore;
use std::str::FromStr;
use thiserror::Error;

/// Longest vector accepted; a full v4.0 vector with every optional metric is under 300 bytes.
const MAX_VECTOR_LEN: usize = 512;

/// A vector that cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CvssError {
    #[error("CVSS vector is empty")]
    Empty,
    #[error("CVSS vector longer than {MAX_VECTOR_LEN} bytes")]
    TooLong,
    #[error("unsupported CVSS version in {0:?}")]
    UnsupportedVersion(String),
    #[error("invalid CVSS vector {vector:?}: {reason}")]
    Invalid { vector: String, reason: String },
}

/// The v4.0 base metrics: the only ones that enter the CVSS-B score.
const V4_BASE: [&str; 11] = [
    "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
];

/// The v3.x base metrics, all mandatory.
const V3_BASE: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];

/// Fails unless every metric in `keys` appears in the vector (the parser alone tolerates gaps).
fn require(v: &str, keys: &[&str]) -> Result<(), CvssError> {
    let present: Vec<&str> = v
        .split('/')
        .skip(1)
        .filter_map(|m| m.split_once(':').map(|(k, _)| k))
        .collect();
    match keys.iter().find(|k| !present.contains(k)) {
        Some(k) => Err(CvssError::Invalid {
            vector: v.to_string(),
            reason: format!("base metric {k} is missing"),
        }),
        None => Ok(()),
    }
}

/// Computes the base score of a CVSS v2.0, v3.0, v3.1 or v4.0 vector.
pub fn score(vector: &str) -> Result<CvssScore, CvssError> {
    let v = vector.trim();
    if v.is_empty() {
        return Err(CvssError::Empty);
    }
    if v.len() > MAX_VECTOR_LEN {
        return Err(CvssError::TooLong);
    }
    let invalid = |e: &dyn std::fmt::Display| CvssError::Invalid {
        vector: v.to_string(),
        reason: e.to_string(),
    };
    let (version, base) = if let Some(rest) = v.strip_prefix("CVSS:") {
        let (ver, _) = rest.split_once('/').unwrap_or((rest, ""));
        match ver {
            "3.0" | "3.1" => {
                require(v, &V3_BASE)?;
                let parsed = cvss::v3::Vector::from_str(v).map_err(|e| invalid(&e))?;
                (ver, parsed.base_score().value())
            }
            "4.0" => {
                require(v, &V4_BASE)?;
                (ver, v4_base_score(v).map_err(|e| invalid(&e))?)
            }
            "2.0" => {
                let body = &rest[ver.len()..].trim_start_matches('/');
                ("2.0", v2_score(body).map_err(|e| invalid(&e))?)
            }
            _ => return Err(CvssError::UnsupportedVersion(v.to_string())),
        }
    } else {
        let body = v
            .strip_prefix('(')
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or(v);
        ("2.0", v2_score(body).map_err(|e| invalid(&e))?)
    };
    if !(0.0..=10.0).contains(&base) {
        return Err(invalid(&format!("score {base} out of range")));
    }
    Ok(CvssScore {
        version: version.to_string(),
        vector: v.to_string(),
        base_score: (base * 10.0).round() / 10.0,
    })
}

fn v2_score(body: &str) -> Result<f64, cvss::Error> {
    Ok(cvss::v2::Vector::from_str(body)?.score().value())
}

fn v4_base_score(v: &str) -> Result<f64, cvss::Error> {
    // Validate the whole vector (unknown metrics, bad values, duplicates) first.
    cvss::v4::Vector::from_str(v)?;
    let base: Vec<&str> = v
        .split('/')
        .skip(1)
        .filter(|m| m.split_once(':').is_some_and(|(k, _)| V4_BASE.contains(&k)))
        .collect();
    let base_vector = format!("CVSS:4.0/{}", base.join("/"));
    Ok(cvss::v4::Vector::from_str(&base_vector)?.score().value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> f64 {
        score(v).unwrap().base_score
    }

    #[test]
    fn published_examples() {
        // CVSS v4.0: FIRST calculator / specification examples.
        assert_eq!(
            s("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            9.3
        );
        assert_eq!(
            s("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H"),
            10.0
        );
        assert_eq!(
            s("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N"),
            0.0
        );
        // v3.1 specification examples (CVE-2014-0160 Heartbleed 7.5, CVE-2013-1937 6.1).
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"), 7.5);
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), 6.1);
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), 9.8);
        assert_eq!(s("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"), 10.0);
        assert_eq!(s("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H"), 5.5);
        // v2 guide examples: CVE-2002-0392 7.8, CVE-2003-0818 10.0, CVE-2003-0062 6.2.
        assert_eq!(s("AV:N/AC:L/Au:N/C:N/I:N/A:C"), 7.8);
        assert_eq!(s("AV:N/AC:L/Au:N/C:C/I:C/A:C"), 10.0);
        assert_eq!(s("AV:L/AC:H/Au:N/C:C/I:C/A:C"), 6.2);
        assert_eq!(s("(AV:N/AC:L/Au:N/C:P/I:P/A:P)"), 7.5);
    }

    #[test]
    fn temporal_and_threat_metrics_do_not_change_the_base_score() {
        assert_eq!(
            s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/E:U/RL:O/RC:U"),
            7.5
        );
        assert_eq!(
            s("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U"),
            9.3
        );
        assert_eq!(s("AV:N/AC:L/Au:N/C:P/I:P/A:P/E:U/RL:OF/RC:UC"), 7.5);
    }

    #[test]
    fn versions_reported() {
        assert_eq!(
            score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
                .unwrap()
                .version,
            "3.0"
        );
        assert_eq!(score("AV:N/AC:L/Au:N/C:P/I:P/A:P").unwrap().version, "2.0");
    }

    #[test]
    fn invalid_vectors() {
        for bad in [
            "",
            "CVSS:3.1/AV:N",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:9.9/AV:N",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:Q",
            "AV:N/AC:L",
            "garbage",
        ] {
            assert!(score(bad).is_err(), "{bad:?}");
        }
        assert_eq!(score(&"A".repeat(600)), Err(CvssError::TooLong));
    }
}
