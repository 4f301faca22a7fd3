//! ConstraintTemplates (`templates.gatekeeper.sh` v1, v1beta1, v1alpha1): the constraint kind they
//! define, the parameter schema, and the Rego of the `admission.k8s.gatekeeper.sh` target.

use palisade_kube::{KubeObject, SourceLocation};
use serde_json::Value;
use std::collections::BTreeMap;

/// The API group of ConstraintTemplates.
pub const TEMPLATE_GROUP: &str = "templates.gatekeeper.sh";
/// The only target Gatekeeper's validating webhook and audit evaluate.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// Why a template cannot be used. Every message names the template.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    #[error("ConstraintTemplate {name}: {message}")]
    Invalid { name: String, message: String },
    #[error(
        "ConstraintTemplate {name}: has no Rego for target {ADMISSION_TARGET} (engines present: {engines}); only Rego templates are evaluated"
    )]
    NoRego { name: String, engines: String },
    #[error("ConstraintTemplate {name}: Rego does not compile: {message}")]
    Compile { name: String, message: String },
}

/// Which Rego syntax a template is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegoVersion {
    /// Gatekeeper's default (`violation[{"msg": msg}] { … }`).
    V0,
    /// Declared with `code: [{engine: Rego, source: {version: v1}}]`.
    V1,
}

/// A parsed ConstraintTemplate.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// `metadata.name` (the lowercase of `kind`).
    pub name: String,
    /// The constraint kind the template defines (`K8sRequiredLabels`).
    pub kind: String,
    /// `templates.gatekeeper.sh/v1`, …
    pub api_version: String,
    /// The `openAPIV3Schema` of `spec.parameters`, when declared.
    pub schema: Option<Value>,
    /// Whether unknown parameter fields are kept (legacy, non-structural schemas).
    pub preserve_unknown_fields: bool,
    pub rego: String,
    pub libs: Vec<String>,
    pub rego_version: RegoVersion,
    /// Whether the Rego reads `data.inventory` (only then is the inventory loaded into it).
    pub uses_inventory: bool,
    pub annotations: BTreeMap<String, String>,
    pub source: Option<SourceLocation>,
}

impl Template {
    /// Whether an object is a ConstraintTemplate.
    pub fn is_template(object: &KubeObject) -> bool {
        object.kind == "ConstraintTemplate"
            && object
                .api_version
                .split_once('/')
                .is_some_and(|(g, _)| g == TEMPLATE_GROUP)
    }

    /// Parses a ConstraintTemplate object.
    pub fn from_object(object: &KubeObject) -> Result<Template, TemplateError> {
        let name = object.name.clone();
        let invalid = |message: String| TemplateError::Invalid {
            name: name.clone(),
            message,
        };
        let version = object
            .api_version
            .split_once('/')
            .map(|(_, v)| v)
            .unwrap_or_default();
        if !matches!(version, "v1" | "v1beta1" | "v1alpha1") {
            return Err(invalid(format!(
                "unsupported apiVersion {} (expected {TEMPLATE_GROUP}/v1, v1beta1 or v1alpha1)",
                object.api_version
            )));
        }
        let spec = object
            .value
            .get("spec")
            .filter(|s| s.is_object())
            .ok_or_else(|| invalid("has no `spec`".into()))?;
        let crd_spec = spec.get("crd").and_then(|c| c.get("spec"));
        let kind = crd_spec
            .and_then(|c| c.get("names"))
            .and_then(|n| n.get("kind"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid("`spec.crd.spec.names.kind` is missing".into()))?
            .to_string();
        if !kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            || !kind.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid(format!(
                "kind `{kind}` must be alphanumeric and start with an upper-case letter"
            )));
        }
        if name != kind.to_lowercase() {
            return Err(invalid(format!(
                "metadata.name must be the lower-case kind `{}`",
                kind.to_lowercase()
            )));
        }
        let validation = crd_spec.and_then(|c| c.get("validation"));
        let schema = validation
            .and_then(|v| v.get("openAPIV3Schema"))
            .filter(|s| !s.is_null())
            .cloned();
        if let Some(s) = &schema
            && !s.is_object()
        {
            return Err(invalid("`openAPIV3Schema` must be a mapping".into()));
        }
        // v1 schemas are structural (unknown fields pruned) unless legacySchema says otherwise;
        // the beta and alpha versions defaulted to the legacy behaviour.
        let legacy = validation
            .and_then(|v| v.get("legacySchema"))
            .and_then(Value::as_bool)
            .unwrap_or(version != "v1");
        let targets = spec
            .get("targets")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("`spec.targets` is missing".into()))?;
        let target = targets
            .iter()
            .find(|t| t.get("target").and_then(Value::as_str) == Some(ADMISSION_TARGET))
            .ok_or_else(|| invalid(format!("has no target {ADMISSION_TARGET}")))?;
        let (rego, libs, rego_version) = rego_of_target(target, &name)?;
        let uses_inventory =
            rego.contains("data.inventory") || libs.iter().any(|l| l.contains("data.inventory"));
        let annotations = object
            .annotations()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Template {
            name,
            kind,
            api_version: object.api_version.clone(),
            schema,
            preserve_unknown_fields: legacy,
            rego,
            libs,
            rego_version,
            uses_inventory,
            annotations,
            source: object.source.clone(),
        })
    }

    /// `file:line` of the template for messages, or its name.
    pub fn origin(&self) -> String {
        match &self.source {
            Some(s) => format!("{}:{}", s.file, s.line),
            None => format!("ConstraintTemplate {}", self.name),
        }
    }
}

fn rego_of_target(
    target: &Value,
    name: &str,
) -> Result<(String, Vec<String>, RegoVersion), TemplateError> {
    let invalid = |message: String| TemplateError::Invalid {
        name: name.to_string(),
        message,
    };
    let libs_of = |v: Option<&Value>| -> Result<Vec<String>, TemplateError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid("`libs` entries must be strings".into()))
                })
                .collect(),
            Some(_) => Err(invalid("`libs` must be a list of strings".into())),
        }
    };
    let mut engines = Vec::new();
    if let Some(code) = target.get("code").and_then(Value::as_array) {
        for entry in code {
            let engine = entry.get("engine").and_then(Value::as_str).unwrap_or("");
            engines.push(engine.to_string());
            if engine != "Rego" {
                continue;
            }
            let source = entry
                .get("source")
                .ok_or_else(|| invalid("Rego `code` entry has no `source`".into()))?;
            let rego = source
                .get("rego")
                .and_then(Value::as_str)
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| invalid("Rego `code` entry has no `source.rego`".into()))?;
            let version = match source.get("version").and_then(Value::as_str) {
                None | Some("v0") => RegoVersion::V0,
                Some("v1") => RegoVersion::V1,
                Some(other) => {
                    return Err(invalid(format!(
                        "unknown Rego version `{other}` (expected v0 or v1)"
                    )));
                }
            };
            return Ok((rego.to_string(), libs_of(source.get("libs"))?, version));
        }
    }
    match target.get("rego").and_then(Value::as_str) {
        Some(rego) if !rego.trim().is_empty() => Ok((
            rego.to_string(),
            libs_of(target.get("libs"))?,
            RegoVersion::V0,
        )),
        _ => Err(TemplateError::NoRego {
            name: name.to_string(),
            engines: if engines.is_empty() {
                "none".into()
            } else {
                engines.join(", ")
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_kube::KubeObject;
    use serde_json::json;

    fn object(v: Value) -> KubeObject {
        KubeObject::from_value(v, None).unwrap()
    }

    #[test]
    fn parses_v1_template_with_code_block() {
        let t = Template::from_object(&object(json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "demorequired"},
            "spec": {"crd": {"spec": {"names": {"kind": "DemoRequired"},
                "validation": {"openAPIV3Schema": {"type": "object"}}}},
             "targets": [{"target": "admission.k8s.gatekeeper.sh",
                "rego": "package a\nviolation[{\"msg\": \"x\"}] { true }",
                "code": [{"engine": "K8sNativeValidation", "source": {}},
                         {"engine": "Rego", "source": {"version": "v1", "rego": "package a\nviolation contains {\"msg\": \"x\"} if { data.inventory }", "libs": ["package lib.x"]}}]}]}
        })))
        .unwrap();
        assert_eq!(t.kind, "DemoRequired");
        assert_eq!(t.rego_version, RegoVersion::V1);
        assert_eq!(t.libs, vec!["package lib.x"]);
        assert!(t.uses_inventory);
        assert!(!t.preserve_unknown_fields);
    }

    #[test]
    fn errors_name_the_template() {
        let base = json!({"apiVersion": "templates.gatekeeper.sh/v1beta1", "kind": "ConstraintTemplate",
            "metadata": {"name": "wrongname"},
            "spec": {"crd": {"spec": {"names": {"kind": "Demo"}}}, "targets": []}});
        let e = Template::from_object(&object(base))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ConstraintTemplate wrongname") && e.contains("`demo`"),
            "{e}"
        );
        let cel_only = json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "demo"},
            "spec": {"crd": {"spec": {"names": {"kind": "Demo"}}},
              "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [{"engine": "K8sNativeValidation"}]}]}});
        let e = Template::from_object(&object(cel_only))
            .unwrap_err()
            .to_string();
        assert!(e.contains("K8sNativeValidation"), "{e}");
    }
}
