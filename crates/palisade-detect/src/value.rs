//! Field values as the rule engine sees them, borrowed from the event wherever possible.

/// One value read from an event by a compiled field. Borrowed from the event so evaluating a rule
/// allocates nothing in the common case.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// The field is not present on this event (distinct from an explicit JSON `null`).
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// A subtree of a JSON document (request/response objects, annotations): arrays and objects
    /// are navigated further by relative paths.
    Json(&'a serde_json::Value),
    /// A list the event model holds natively (user groups, source IPs, argv).
    List(Vec<Val<'a>>),
    /// A list of strings the event model holds natively (argv, capabilities), borrowed as it is:
    /// reading it allocates nothing. Behaves exactly like a `List` of `Str`.
    Strs(&'a [String]),
}

impl<'a> Val<'a> {
    /// A JSON subtree as a `Val`, scalars unwrapped so comparisons see strings and numbers.
    pub fn from_json(value: &'a serde_json::Value) -> Val<'a> {
        match value {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => n.as_f64().map(Val::Float).unwrap_or(Val::Null),
            },
            serde_json::Value::String(s) => Val::Str(s),
            other => Val::Json(other),
        }
    }

    /// True unless the field is absent.
    pub fn exists(&self) -> bool {
        !matches!(self, Val::Missing)
    }

    /// The string form of a scalar (numbers and booleans are not strings: `None`).
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Val::Str(s) => Some(s),
            Val::Json(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }
}
