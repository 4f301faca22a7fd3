//! Paths into JSON documents (`spec.containers[0].image`, `metadata.annotations["a.b/c"]`),
//! parsed once when a rule is loaded and followed without allocating when it is evaluated.

use crate::value::Val;
use std::fmt;

/// One step of a path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A parsed path below some JSON root. The empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonPath {
    steps: Vec<Step>,
}

/// Why a path does not parse; `position` is a byte offset into the path text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?} at byte {position}: {message}")]
pub struct PathError {
    pub path: String,
    pub position: usize,
    pub message: String,
}

impl JsonPath {
    /// Parses dotted keys, `["quoted key"]` (for keys with dots or slashes) and `[N]` indices.
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let err = |position: usize, message: &str| PathError {
            path: text.to_string(),
            position,
            message: message.to_string(),
        };
        let bytes = text.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        let mut expect_key = true;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    let close = text[i..]
                        .find(']')
                        .map(|p| p + i)
                        .ok_or_else(|| err(i, "unclosed '['"))?;
                    let inner = &text[i + 1..close];
                    if let Some(quoted) = inner
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                    {
                        steps.push(Step::Key(quoted.to_string()));
                    } else if let Ok(index) = inner.trim().parse::<usize>() {
                        steps.push(Step::Index(index));
                    } else {
                        return Err(err(i, "expected [\"key\"] or [index]"));
                    }
                    i = close + 1;
                    expect_key = false;
                }
                b'.' => {
                    if expect_key {
                        return Err(err(i, "empty key"));
                    }
                    i += 1;
                    expect_key = true;
                    if i == bytes.len() {
                        return Err(err(i, "path ends with '.'"));
                    }
                }
                _ => {
                    if !expect_key {
                        return Err(err(i, "expected '.' or '[' between steps"));
                    }
                    let end = text[i..]
                        .find(['.', '['])
                        .map(|p| p + i)
                        .unwrap_or(text.len());
                    let key = &text[i..end];
                    if key.is_empty() {
                        return Err(err(i, "empty key"));
                    }
                    steps.push(Step::Key(key.to_string()));
                    i = end;
                    expect_key = false;
                }
            }
        }
        Ok(JsonPath { steps })
    }

    /// The path made of `steps`.
    pub fn from_steps(steps: Vec<Step>) -> JsonPath {
        JsonPath { steps }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// Follows the path from `root`; `Missing` when any step is absent or of the wrong type.
    pub fn lookup<'a>(&self, root: &'a serde_json::Value) -> Val<'a> {
        match self.lookup_json(root) {
            Some(v) => Val::from_json(v),
            None => Val::Missing,
        }
    }

    /// Follows the path from `root` and returns the JSON node itself.
    pub fn lookup_json<'a>(&self, root: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        let mut node = root;
        for step in &self.steps {
            node = match (step, node) {
                (Step::Key(k), serde_json::Value::Object(map)) => map.get(k)?,
                (Step::Index(i), serde_json::Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, step) in self.steps.iter().enumerate() {
            match step {
                Step::Key(k) if k.contains(['.', '[', ']', '/']) => write!(f, "[{k:?}]")?,
                Step::Key(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_keys_quoted_keys_and_indices() {
        let p = JsonPath::parse(r#"metadata.annotations["authorization.k8s.io/decision"]"#)
            .expect("valid");
        assert_eq!(
            p.steps(),
            &[
                Step::Key("metadata".into()),
                Step::Key("annotations".into()),
                Step::Key("authorization.k8s.io/decision".into())
            ]
        );
        let p = JsonPath::parse("spec.containers[1].image").expect("valid");
        assert_eq!(p.steps()[2], Step::Index(1));
        assert_eq!(p.to_string(), "spec.containers[1].image");
        assert!(JsonPath::parse("").expect("root").is_root());
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["a..b", ".a", "a.", "a[", "a[x]", "a[0]b", "a[\"x]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn lookup_follows_objects_and_arrays() {
        let doc = json!({"spec": {"containers": [{"image": "a"}, {"image": "b", "n": 3}]}});
        let p = JsonPath::parse("spec.containers[1].image").expect("valid");
        assert_eq!(p.lookup(&doc), Val::Str("b"));
        let p = JsonPath::parse("spec.containers[1].n").expect("valid");
        assert_eq!(p.lookup(&doc), Val::Int(3));
        let p = JsonPath::parse("spec.containers[5].image").expect("valid");
        assert_eq!(p.lookup(&doc), Val::Missing);
        let p = JsonPath::parse("spec.containers.image").expect("valid");
        assert_eq!(p.lookup(&doc), Val::Missing);
    }
}
