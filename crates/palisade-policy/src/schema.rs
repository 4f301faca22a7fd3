//! Constraint parameters checked against the template's `openAPIV3Schema` the way the API server
//! checks a custom resource: type errors are errors, unknown fields are pruned with a warning
//! (what `kubectl` shows as "unknown field"), nulls of non-nullable fields are dropped and
//! `default`s are filled in. Templates then see exactly what they would see in a cluster.

use serde_json::{Map, Value};

/// The outcome of checking one value: errors make the constraint unusable, warnings do not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks `value` (at `path`, e.g. `spec.parameters`) against `schema`, pruning and defaulting in
/// place. `preserve_unknown` keeps unknown fields at the top level (legacy, non-structural
/// schemas of `v1beta1` templates).
pub fn check(
    schema: &Value,
    value: &mut Value,
    path: &str,
    preserve_unknown: bool,
) -> SchemaReport {
    let mut report = SchemaReport::default();
    walk(schema, value, path, preserve_unknown, &mut report);
    report
}

fn walk(schema: &Value, value: &mut Value, path: &str, preserve: bool, out: &mut SchemaReport) {
    let Some(s) = schema.as_object() else {
        return;
    };
    let preserve = preserve || flag(s, "x-kubernetes-preserve-unknown-fields");
    if value.is_null() {
        if !flag(s, "nullable") && !preserve && s.contains_key("type") {
            out.errors.push(format!("{path}: must not be null"));
        }
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(value.is_string() || is_integer(value)) {
            out.errors.push(format!(
                "{path}: must be an integer or a string, got {}",
                type_name(value)
            ));
        }
    } else if let Some(ty) = s.get("type").and_then(Value::as_str)
        && !type_matches(ty, value)
    {
        out.errors.push(format!(
            "{path}: must be {} {ty}, got {} {}",
            article(ty),
            type_name(value),
            short(value)
        ));
        return;
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(short).collect();
        out.errors.push(format!(
            "{path}: {} is not one of [{}]",
            short(value),
            list.join(", ")
        ));
    }
    match value {
        Value::String(text) => check_string(s, text, path, out),
        Value::Number(_) => check_number(s, value, path, out),
        Value::Array(items) => check_array(s, items, path, preserve, out),
        Value::Object(map) => check_object(s, map, path, preserve, out),
        _ => {}
    }
    for (key, all) in [("allOf", true), ("anyOf", false), ("oneOf", false)] {
        if let Some(Value::Array(branches)) = s.get(key) {
            let mut passing = 0;
            let mut first_errors = Vec::new();
            for branch in branches {
                let mut copy = value.clone();
                let mut sub = SchemaReport::default();
                walk(branch, &mut copy, path, true, &mut sub);
                if sub.errors.is_empty() {
                    passing += 1;
                } else if first_errors.is_empty() {
                    first_errors = sub.errors;
                }
            }
            let ok = match key {
                "allOf" => passing == branches.len(),
                "anyOf" => passing > 0,
                _ => passing == 1,
            };
            if !ok {
                let _ = all;
                out.errors.push(format!(
                    "{path}: does not satisfy {key}{}",
                    first_errors
                        .first()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if let Some(not) = s.get("not") {
        let mut copy = value.clone();
        let mut sub = SchemaReport::default();
        walk(not, &mut copy, path, true, &mut sub);
        if sub.errors.is_empty() {
            out.errors
                .push(format!("{path}: must not match the `not` schema"));
        }
    }
}

fn check_string(s: &Map<String, Value>, text: &str, path: &str, out: &mut SchemaReport) {
    let len = text.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        out.errors
            .push(format!("{path}: must be at least {min} characters long"));
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        out.errors
            .push(format!("{path}: must be at most {max} characters long"));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(text) => out.errors.push(format!(
                "{path}: {text:?} does not match the pattern {pattern:?}"
            )),
            Ok(_) => {}
            Err(e) => out.errors.push(format!(
                "{path}: the schema's pattern {pattern:?} is invalid: {e}"
            )),
        }
    }
}

fn check_number(s: &Map<String, Value>, value: &Value, path: &str, out: &mut SchemaReport) {
    let Some(n) = value.as_f64() else { return };
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            out.errors.push(format!(
                "{path}: must be {} {min}",
                if exclusive {
                    "greater than"
                } else {
                    "at least"
                }
            ));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            out.errors.push(format!(
                "{path}: must be {} {max}",
                if exclusive { "less than" } else { "at most" }
            ));
        }
    }
    if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (n / m).fract().abs() > f64::EPSILON
    {
        out.errors
            .push(format!("{path}: must be a multiple of {m}"));
    }
}

fn check_array(
    s: &Map<String, Value>,
    items: &mut [Value],
    path: &str,
    preserve: bool,
    out: &mut SchemaReport,
) {
    let len = items.len() as u64;
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && len < min
    {
        out.errors
            .push(format!("{path}: must have at least {min} items"));
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && len > max
    {
        out.errors
            .push(format!("{path}: must have at most {max} items"));
    }
    if flag(s, "uniqueItems") {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                out.errors
                    .push(format!("{path}[{i}]: duplicate item {}", short(item)));
            }
        }
    }
    if let Some(item_schema) = s.get("items") {
        let item_preserve = preserve && item_schema.get("properties").is_none();
        for (i, item) in items.iter_mut().enumerate() {
            walk(
                item_schema,
                item,
                &format!("{path}[{i}]"),
                item_preserve,
                out,
            );
        }
    }
}

fn check_object(
    s: &Map<String, Value>,
    map: &mut Map<String, Value>,
    path: &str,
    preserve: bool,
    out: &mut SchemaReport,
) {
    let properties = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties");
    if let Some(props) = properties {
        for (key, prop_schema) in props {
            if !map.contains_key(key)
                && let Some(default) = prop_schema.get("default")
            {
                map.insert(key.clone(), default.clone());
            }
        }
    }
    let mut unknown = Vec::new();
    let mut null_fields = Vec::new();
    for (key, child) in map.iter_mut() {
        let child_path = format!("{path}.{key}");
        let child_schema = properties.and_then(|p| p.get(key));
        match (child_schema, additional) {
            (Some(cs), _) => {
                if child.is_null() && !cs.get("nullable").and_then(Value::as_bool).unwrap_or(false)
                {
                    null_fields.push(key.clone());
                    continue;
                }
                walk(cs, child, &child_path, false, out)
            }
            (None, Some(a @ Value::Object(_))) => walk(a, child, &child_path, false, out),
            (None, Some(Value::Bool(true))) => {}
            (None, Some(Value::Bool(false))) => out
                .errors
                .push(format!("{child_path}: field not declared in the schema")),
            _ if preserve => {}
            _ if properties.is_none() && !s.contains_key("type") => {}
            _ => unknown.push(key.clone()),
        }
    }
    for key in null_fields {
        map.remove(&key);
    }
    for key in unknown {
        map.remove(&key);
        out.warnings.push(format!(
            "{path}.{key}: unknown field (not in the template's schema), ignored"
        ));
    }
    if let Some(Value::Array(required)) = s.get("required") {
        for key in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(key) {
                out.errors
                    .push(format!("{path}.{key}: required field is missing"));
            }
        }
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        out.errors
            .push(format!("{path}: must have at least {min} fields"));
    }
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && (map.len() as u64) > max
    {
        out.errors
            .push(format!("{path}: must have at most {max} fields"));
    }
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn article(ty: &str) -> &'static str {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "repos": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "array", "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "allowedRegex": {"type": "string"}}}},
            "mode": {"type": "string", "enum": ["audit", "enforce"], "default": "audit"},
            "limit": {"type": "integer", "minimum": 1},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "port": {"x-kubernetes-int-or-string": true}
        }, "required": ["repos"]})
    }

    #[test]
    fn valid_parameters_get_defaults() {
        let mut v = json!({"repos": ["a/"], "free": {"x": {"y": 1}}, "port": "http"});
        let r = check(&schema(), &mut v, "spec.parameters", false);
        assert_eq!(r, SchemaReport::default());
        assert_eq!(v["mode"], "audit");
        assert_eq!(v["free"]["x"]["y"], 1);
    }

    #[test]
    fn type_enum_minimum_and_required_errors_name_the_path() {
        let mut v = json!({"labels": [{"key": 5}], "mode": "loud", "limit": 0, "port": 1.5});
        let r = check(&schema(), &mut v, "spec.parameters", false);
        let all = r.errors.join("\n");
        assert!(
            all.contains("spec.parameters.labels[0].key: must be a string, got integer 5"),
            "{all}"
        );
        assert!(
            all.contains("spec.parameters.mode: \"loud\" is not one of"),
            "{all}"
        );
        assert!(
            all.contains("spec.parameters.limit: must be at least 1"),
            "{all}"
        );
        assert!(
            all.contains("spec.parameters.repos: required field is missing"),
            "{all}"
        );
        assert!(
            all.contains("spec.parameters.port: must be an integer or a string"),
            "{all}"
        );
    }

    #[test]
    fn unknown_fields_are_pruned_with_a_warning_unless_preserved() {
        let mut v = json!({"repos": [], "repoz": ["typo"]});
        let r = check(&schema(), &mut v, "spec.parameters", false);
        assert!(r.errors.is_empty());
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("spec.parameters.repoz: unknown field"));
        assert!(v.get("repoz").is_none());
        let mut legacy = json!({"repos": [], "repoz": ["typo"]});
        let r = check(&schema(), &mut legacy, "spec.parameters", true);
        assert!(r.warnings.is_empty());
        assert!(legacy.get("repoz").is_some());
    }

    #[test]
    fn integers_written_as_floats_are_integers() {
        let mut v = json!({"repos": [], "limit": 3.0});
        assert!(check(&schema(), &mut v, "p", false).errors.is_empty());
    }
}
