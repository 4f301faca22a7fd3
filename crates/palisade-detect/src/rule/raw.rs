//! The YAML shapes of rule files, before compilation. Every struct denies unknown keys so a typo
//! (`conditon:`) is a load error instead of a rule that silently never fires.

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// One YAML document of a rule file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDoc {
    #[serde(default)]
    pub lists: BTreeMap<String, Spanned<Value>>,
    #[serde(default)]
    pub macros: BTreeMap<String, Spanned<Value>>,
    #[serde(default)]
    pub rules: Vec<Spanned<Value>>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One rule as written.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub remediation: Option<String>,
    pub severity: Option<String>,
    #[serde(default)]
    pub tactics: Vec<String>,
    #[serde(default)]
    pub techniques: Vec<String>,
    pub source: Option<String>,
    #[serde(rename = "match")]
    pub index: Option<BTreeMap<String, OneOrMany>>,
    pub condition: Option<Value>,
    #[serde(default)]
    pub exceptions: Vec<RawException>,
    pub output: Option<String>,
    pub subject: Option<String>,
    pub resource: Option<String>,
    #[serde(default)]
    pub evidence: Vec<String>,
    pub enabled: Option<bool>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub threshold: Option<RawThreshold>,
    pub rarity: Option<RawRarity>,
    /// `append: true` adds `exceptions` to an existing rule instead of defining one.
    pub append: Option<bool>,
}

/// A named exception.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawException {
    pub name: Option<String>,
    pub condition: Value,
}

/// `threshold: {count, window, group_by, mode, max_keys}`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThreshold {
    pub count: u64,
    pub window: String,
    #[serde(default)]
    pub group_by: Vec<String>,
    /// `sliding` (default) or `fixed` (buckets aligned on multiples of the window).
    pub mode: Option<String>,
    pub max_keys: Option<usize>,
}

/// `rarity: {learning, key, value, max_keys, max_values_per_key}`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRarity {
    pub learning: String,
    #[serde(default)]
    pub key: Vec<String>,
    pub value: Vec<String>,
    pub max_keys: Option<usize>,
    pub max_values_per_key: Option<usize>,
}

/// Parses `30s`, `10m`, `2h`, `7d` (also `500ms`) into nanoseconds; zero is refused.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("bad duration {text:?}: missing unit (s, m, h, d)"))?;
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected a number then s, m, h or d"))?;
    let unit_nanos: i64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => {
            return Err(format!(
                "bad duration {text:?}: unknown unit {unit:?} (s, m, h, d)"
            ));
        }
    };
    let nanos = n
        .checked_mul(unit_nanos)
        .ok_or_else(|| format!("bad duration {text:?}: too long"))?;
    if nanos == 0 {
        return Err(format!("bad duration {text:?}: must be longer than zero"));
    }
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("10m"), Ok(600_000_000_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000_000_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        for bad in ["", "10", "m", "10x", "0s", "-1s", "1.5h", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
