//! Gatekeeper's external data: templates call `external_data({"provider": P, "keys": [...]})` and
//! get per-key answers from a provider outside the policy (Palisade's scan results, for example).

use serde_json::{Value, json};
use std::sync::Arc;

/// A source of per-key data for templates.
pub trait ExternalDataProvider: Send + Sync {
    /// The name templates pass as `provider`.
    fn name(&self) -> &str;
    /// One answer per key, in order: the value or an error message for that key.
    fn lookup(&self, keys: &[String]) -> Vec<(String, Result<Value, String>)>;
}

/// Answers one `external_data` call in Gatekeeper's response shape: `responses` (`[key, value]`
/// pairs), `errors` (`[key, message]` pairs), `status_code` and `system_error`.
pub(crate) fn answer(providers: &[Arc<dyn ExternalDataProvider>], request: &Value) -> Value {
    let system_error = |message: String| json!({"responses": [], "errors": [], "status_code": 400, "system_error": message});
    let Some(provider_name) = request.get("provider").and_then(Value::as_str) else {
        return system_error("external_data: the request has no `provider`".into());
    };
    let keys: Vec<String> = match request.get("keys") {
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| match k {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => return system_error("external_data: `keys` must be a list".into()),
    };
    let Some(provider) = providers.iter().find(|p| p.name() == provider_name) else {
        return json!({"responses": [], "errors": [], "status_code": 404,
            "system_error": format!("external data provider {provider_name:?} is not configured")});
    };
    let mut responses = Vec::new();
    let mut errors = Vec::new();
    for (key, result) in provider.lookup(&keys) {
        match result {
            Ok(v) => responses.push(json!([key, v])),
            Err(e) => errors.push(json!([key, e])),
        }
    }
    json!({"responses": responses, "errors": errors, "status_code": 200, "system_error": ""})
}
