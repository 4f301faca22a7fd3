//! What a template sees as `input.review`: one Kubernetes AdmissionRequest, either received from
//! the API server (the webhook) or built from a stored object (audit and `gator`-style tests), in
//! exactly the shape Gatekeeper builds, so templates written for Gatekeeper behave the same here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Why a body is not a usable AdmissionReview or an object cannot be reviewed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not an AdmissionReview: {0}")]
    NotAdmissionReview(String),
    #[error(
        "unsupported AdmissionReview apiVersion `{0}` (expected admission.k8s.io/v1 or v1beta1)"
    )]
    UnsupportedVersion(String),
    #[error("AdmissionReview has no `request`")]
    MissingRequest,
    #[error("invalid AdmissionRequest: {0}")]
    InvalidRequest(String),
    #[error("object cannot be reviewed: {0}")]
    InvalidObject(String),
}

/// `group`, `version`, `kind` as in `request.kind`; the core group is `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

impl GroupVersionKind {
    /// Splits an `apiVersion` (`apps/v1`, `v1`) and a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        GroupVersionKind {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    /// `group/version` (or `version` for the core group), the key `data.inventory` uses.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// One review: the identity of the object under review pulled out for matching, and the whole
/// request kept as JSON because that JSON is the template's `input.review`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRequest {
    /// `request.uid` (empty for reviews of stored objects).
    pub uid: String,
    pub kind: GroupVersionKind,
    pub name: String,
    /// `generateName` of the object, for `match.name` globs on objects named by the server.
    pub generate_name: String,
    pub namespace: Option<String>,
    /// `None` for reviews of stored objects (audit, tests), where Gatekeeper sets no operation.
    pub operation: Option<Operation>,
    pub dry_run: bool,
    /// `request.userInfo.username`, for logs.
    pub username: String,
    /// The request exactly as templates see it (`input.review`).
    pub json: Value,
    /// The object's Namespace, for `namespaceSelector`; set by whoever knows it (the evaluator
    /// fills it from the inventory when it is `None`).
    pub namespace_object: Option<Value>,
}

impl ReviewRequest {
    /// Builds a review from the `request` member of an AdmissionReview.
    pub fn from_admission_request(request: Value) -> Result<Self, ReviewError> {
        let Value::Object(map) = request else {
            return Err(ReviewError::InvalidRequest(
                "`request` is not an object".into(),
            ));
        };
        let uid = match map.get("uid") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => return Err(ReviewError::InvalidRequest("`uid` is not a string".into())),
        };
        let kind: GroupVersionKind = match map.get("kind") {
            Some(v @ Value::Object(_)) => serde_json::from_value(v.clone())
                .map_err(|e| ReviewError::InvalidRequest(format!("`kind`: {e}")))?,
            _ => {
                return Err(ReviewError::InvalidRequest(
                    "`kind` (group, version, kind) is missing".into(),
                ));
            }
        };
        if kind.kind.is_empty() {
            return Err(ReviewError::InvalidRequest("`kind.kind` is empty".into()));
        }
        let operation = match map.get("operation") {
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v @ Value::String(_)) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|_| ReviewError::InvalidRequest(format!("unknown operation {v}")))?,
            ),
            None | Some(Value::Null) => None,
            Some(v) => {
                return Err(ReviewError::InvalidRequest(format!(
                    "`operation` is not a string: {v}"
                )));
            }
        };
        for field in ["object", "oldObject"] {
            match map.get(field) {
                None | Some(Value::Null) | Some(Value::Object(_)) => {}
                Some(_) => {
                    return Err(ReviewError::InvalidRequest(format!(
                        "`{field}` is not an object"
                    )));
                }
            }
        }
        let reviewed = match (operation, map.get("object")) {
            (_, Some(o @ Value::Object(_))) => Some(o),
            _ => map.get("oldObject").filter(|o| o.is_object()),
        };
        let string_field = |key: &str| -> String {
            map.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_default()
        };
        let mut name = string_field("name");
        if name.is_empty()
            && let Some(o) = reviewed
        {
            name = metadata_str(o, "name").unwrap_or_default().to_string();
        }
        let generate_name = reviewed
            .and_then(|o| metadata_str(o, "generateName"))
            .unwrap_or_default()
            .to_string();
        let namespace = Some(string_field("namespace")).filter(|s| !s.is_empty());
        let dry_run = map.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
        let username = map
            .get("userInfo")
            .and_then(|u| u.get("username"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut map = map;
        // The API server sends the object being deleted as `oldObject`; like Gatekeeper, hand it
        // to templates as `object` too, so policies written against `object` see deletions.
        if operation == Some(Operation::Delete)
            && !map.get("object").is_some_and(Value::is_object)
            && let Some(old) = map.get("oldObject").filter(|o| o.is_object()).cloned()
        {
            map.insert("object".into(), old);
        }
        Ok(ReviewRequest {
            uid,
            kind,
            name,
            generate_name,
            namespace,
            operation,
            dry_run,
            username,
            json: Value::Object(map),
            namespace_object: None,
        })
    }

    /// Builds the review Gatekeeper's audit and `gator` build for a stored object: kind, name,
    /// namespace and object, with no operation and no user.
    pub fn from_object(object: Value) -> Result<Self, ReviewError> {
        if !object.is_object() {
            return Err(ReviewError::InvalidObject("not a mapping".into()));
        }
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ReviewError::InvalidObject("missing `apiVersion`".into()))?;
        let kind_name = object
            .get("kind")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ReviewError::InvalidObject("missing `kind`".into()))?;
        let kind = GroupVersionKind::from_api_version(api_version, kind_name);
        let name = metadata_str(&object, "name")
            .unwrap_or_default()
            .to_string();
        let generate_name = metadata_str(&object, "generateName")
            .unwrap_or_default()
            .to_string();
        let namespace = metadata_str(&object, "namespace")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        // The JSON shape of a Go AdmissionRequest holding only these fields (empty uid,
        // operation and userInfo are serialised, the rest omitted), as templates see it.
        let mut json = Map::new();
        json.insert("uid".into(), Value::String(String::new()));
        json.insert(
            "kind".into(),
            json!({"group": kind.group, "version": kind.version, "kind": kind.kind}),
        );
        json.insert(
            "resource".into(),
            json!({"group": "", "version": "", "resource": ""}),
        );
        if !name.is_empty() {
            json.insert("name".into(), Value::String(name.clone()));
        }
        if let Some(ns) = &namespace {
            json.insert("namespace".into(), Value::String(ns.clone()));
        }
        json.insert("operation".into(), Value::String(String::new()));
        json.insert("userInfo".into(), json!({}));
        json.insert("object".into(), object);
        Ok(ReviewRequest {
            uid: String::new(),
            kind,
            name,
            generate_name,
            namespace,
            operation: None,
            dry_run: false,
            username: String::new(),
            json: Value::Object(json),
            namespace_object: None,
        })
    }

    /// The object under review: `object`, or `oldObject` when there is none (DELETE).
    pub fn object(&self) -> Option<&Value> {
        match self.json.get("object") {
            Some(o @ Value::Object(_)) => Some(o),
            _ => self.json.get("oldObject").filter(|o| o.is_object()),
        }
    }

    /// Labels of the object under review.
    pub fn labels(&self) -> Option<&Map<String, Value>> {
        self.object()?.get("metadata")?.get("labels")?.as_object()
    }

    /// Whether the object under review is a Namespace (core group).
    pub fn is_namespace(&self) -> bool {
        self.kind.kind == "Namespace" && self.kind.group.is_empty()
    }
}

fn metadata_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(key)?.as_str()
}

/// The AdmissionReview API versions the webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionVersion {
    V1,
    V1beta1,
}

impl AdmissionVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            AdmissionVersion::V1 => "admission.k8s.io/v1",
            AdmissionVersion::V1beta1 => "admission.k8s.io/v1beta1",
        }
    }
}

/// A parsed AdmissionReview.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionReview {
    pub version: AdmissionVersion,
    pub request: ReviewRequest,
}

/// Parses an AdmissionReview body (`admission.k8s.io/v1` or `v1beta1`).
pub fn parse_admission_review(body: &[u8]) -> Result<AdmissionReview, ReviewError> {
    let value: Value = serde_json::from_slice(body)?;
    admission_review_from_value(value)
}

/// [`parse_admission_review`] on an already parsed value (suites keep AdmissionReviews as YAML).
pub fn admission_review_from_value(value: Value) -> Result<AdmissionReview, ReviewError> {
    let Value::Object(mut map) = value else {
        return Err(ReviewError::NotAdmissionReview(
            "the body is not a JSON object".into(),
        ));
    };
    match map.get("kind").and_then(Value::as_str) {
        Some("AdmissionReview") => {}
        Some(other) => {
            return Err(ReviewError::NotAdmissionReview(format!(
                "kind is `{other}`"
            )));
        }
        None => return Err(ReviewError::NotAdmissionReview("no `kind`".into())),
    }
    let version = match map.get("apiVersion").and_then(Value::as_str) {
        Some("admission.k8s.io/v1") => AdmissionVersion::V1,
        Some("admission.k8s.io/v1beta1") => AdmissionVersion::V1beta1,
        Some(other) => return Err(ReviewError::UnsupportedVersion(other.to_string())),
        None => return Err(ReviewError::UnsupportedVersion(String::new())),
    };
    let request = match map.remove("request") {
        Some(Value::Null) | None => return Err(ReviewError::MissingRequest),
        Some(r) => r,
    };
    Ok(AdmissionReview {
        version,
        request: ReviewRequest::from_admission_request(request)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_review_and_keeps_request_json() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind":{"group":"apps","version":"v1","kind":"Deployment"},
            "resource":{"group":"apps","version":"v1","resource":"deployments"},
            "name":"web","namespace":"prod","operation":"CREATE",
            "userInfo":{"username":"alice","groups":["dev"]},
            "object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}}},
            "dryRun":true}}"#;
        let review = parse_admission_review(body).unwrap();
        assert_eq!(review.version, AdmissionVersion::V1);
        let r = review.request;
        assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(r.kind.group_version(), "apps/v1");
        assert_eq!(r.operation, Some(Operation::Create));
        assert!(r.dry_run);
        assert_eq!(r.username, "alice");
        assert_eq!(r.namespace.as_deref(), Some("prod"));
        assert_eq!(r.labels().unwrap()["app"], "web");
        assert_eq!(r.json["userInfo"]["groups"][0], "dev");
    }

    #[test]
    fn delete_reviews_the_old_object() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{
            "uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"DELETE","namespace":"a",
            "oldObject":{"metadata":{"name":"p","labels":{"x":"y"}}},"object":null}}"#;
        let review = parse_admission_review(body).unwrap();
        assert_eq!(review.version, AdmissionVersion::V1beta1);
        assert_eq!(review.request.name, "p");
        assert_eq!(review.request.labels().unwrap()["x"], "y");
        assert_eq!(review.request.json["object"]["metadata"]["name"], "p");
    }

    #[test]
    fn clear_errors_for_bad_bodies() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "not JSON"),
            (b"[]", "not a JSON object"),
            (br#"{"kind":"Pod"}"#, "kind is `Pod`"),
            (br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2"}"#, "unsupported"),
            (br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#, "no `request`"),
            (
                br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"1","kind":{"kind":"Pod","version":"v1"},"operation":"EXPLODE"}}"#,
                "unknown operation",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_admission_review(body).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn object_review_has_gatekeeper_shape() {
        let obj = json!({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i","namespace":"n"}});
        let r = ReviewRequest::from_object(obj).unwrap();
        assert_eq!(r.kind.group, "networking.k8s.io");
        assert_eq!(r.json["operation"], "");
        assert_eq!(r.json["namespace"], "n");
        assert_eq!(r.json["object"]["kind"], "Ingress");
        assert!(r.operation.is_none());
        assert!(ReviewRequest::from_object(json!({"kind":"Pod"})).is_err());
    }
}
