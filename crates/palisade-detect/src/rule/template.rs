//! Output templates (`"pod {objectRef.name} created by {user.username}"`), compiled once: the
//! literal text is split from `{path}` placeholders whose fields the schema compiles at load.

use crate::value::Val;
use std::fmt::Write;

/// One piece of a template.
#[derive(Debug, Clone)]
pub(crate) enum Piece<F> {
    Text(String),
    Field(F),
}

/// A compiled template. `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone)]
pub(crate) struct Template<F> {
    pub pieces: Vec<Piece<F>>,
}

impl<F> Template<F> {
    /// Splits `text` and compiles each placeholder with `compile`.
    pub(crate) fn compile(
        text: &str,
        compile: &dyn Fn(&str) -> Result<F, String>,
    ) -> Result<Template<F>, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let brace = rest.as_bytes()[i];
            let after = &rest[i + 1..];
            if brace == b'}' {
                if let Some(r) = after.strip_prefix('}') {
                    literal.push('}');
                    rest = r;
                    continue;
                }
                return Err(format!(
                    "output: unmatched `}}` at byte {} (write `}}}}` for a brace)",
                    text.len() - rest.len() + i
                ));
            }
            if let Some(r) = after.strip_prefix('{') {
                literal.push('{');
                rest = r;
                continue;
            }
            let close = after.find('}').ok_or_else(|| {
                format!(
                    "output: unclosed `{{` at byte {}",
                    text.len() - rest.len() + i
                )
            })?;
            let path = after[..close].trim();
            let field = compile(path).map_err(|e| format!("output placeholder {{{path}}}: {e}"))?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field(field));
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// Renders with `read` giving each field's value.
    pub(crate) fn render<'e>(&self, read: &dyn Fn(&F) -> Val<'e>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => render_val(&read(f), &mut out),
            }
        }
        out
    }
}

/// Appends the text form of a value: Missing as `<none>`, arrays joined with `,`, objects as
/// compact JSON.
pub(crate) fn render_val(value: &Val<'_>, out: &mut String) {
    match value {
        Val::Missing => out.push_str("<none>"),
        Val::Null => out.push_str("null"),
        Val::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Val::Str(s) => out.push_str(s),
        Val::List(items) => {
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                render_val(item, out);
            }
        }
        Val::Strs(items) => {
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(item);
            }
        }
        Val::Json(serde_json::Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                render_val(&Val::from_json(item), out);
            }
        }
        Val::Json(serde_json::Value::String(s)) => out.push_str(s),
        Val::Json(other) => {
            let _ = write!(out, "{other}");
        }
    }
}

/// The value as a string (for subjects, resources and group keys): Missing is empty.
pub(crate) fn val_string(value: &Val<'_>) -> String {
    let mut out = String::new();
    if value.exists() {
        render_val(value, &mut out);
    }
    out
}

/// The value as JSON (for evidence); `None` when Missing.
pub(crate) fn val_json(value: &Val<'_>) -> Option<serde_json::Value> {
    Some(match value {
        Val::Missing => return None,
        Val::Null => serde_json::Value::Null,
        Val::Bool(b) => serde_json::Value::Bool(*b),
        Val::Int(i) => serde_json::Value::from(*i),
        Val::Float(f) => serde_json::Value::from(*f),
        Val::Str(s) => serde_json::Value::String((*s).to_string()),
        Val::Json(v) => (*v).clone(),
        Val::List(items) => serde_json::Value::Array(items.iter().filter_map(val_json).collect()),
        Val::Strs(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|s| serde_json::Value::String(s.clone()))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::JsonPath;
    use serde_json::json;

    fn compile(text: &str) -> Result<Template<JsonPath>, String> {
        Template::compile(text, &|p| JsonPath::parse(p).map_err(|e| e.to_string()))
    }

    #[test]
    fn renders_fields_missing_arrays_and_braces() {
        let doc = json!({"a": "x", "list": ["p", 2, true], "obj": {"k": 1}});
        let t = compile("a={a} l={list} o={obj} m={missing} {{lit}}").expect("compiles");
        let text = t.render(&|f: &JsonPath| f.lookup(&doc));
        assert_eq!(text, r#"a=x l=p,2,true o={"k":1} m=<none> {lit}"#);
    }

    #[test]
    fn rejects_unclosed_and_bad_placeholders() {
        assert!(compile("x {a").is_err());
        assert!(compile("x } y").is_err());
        let err = compile("{a..b}").err().unwrap_or_default();
        assert!(err.contains("{a..b}"), "{err}");
        assert!(compile("plain text").is_ok());
    }
}
