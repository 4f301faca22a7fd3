//! A small typed schema with index dimensions for tests: fields `verb`, `resource`, `user`,
//! `code` and JSON below `obj.`; dimensions `verb` and `resource`.

use crate::event::{Event, EventSchema};
use crate::path::JsonPath;
use crate::value::Val;

pub(crate) struct TestSchema;

#[derive(Debug, Clone)]
pub(crate) enum TestField {
    Verb,
    Resource,
    User,
    Code,
    Obj(JsonPath),
}

impl EventSchema for TestSchema {
    type Field = TestField;
    const SOURCE: &'static str = "test";
    const INDEX_DIMENSIONS: &'static [&'static str] = &["verb", "resource"];

    fn compile_field(path: &str) -> Result<TestField, String> {
        match path {
            "verb" => Ok(TestField::Verb),
            "resource" => Ok(TestField::Resource),
            "user" => Ok(TestField::User),
            "code" => Ok(TestField::Code),
            "obj" => Ok(TestField::Obj(JsonPath::default())),
            _ => match path.strip_prefix("obj.") {
                Some(rest) => JsonPath::parse(rest)
                    .map(TestField::Obj)
                    .map_err(|e| e.to_string()),
                None => Err(format!(
                    "unknown field {path:?} (known: verb, resource, user, code, obj.*)"
                )),
            },
        }
    }

    fn default_subject_field() -> &'static str {
        "user"
    }

    fn default_resource_field() -> &'static str {
        "resource"
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TestEvent {
    pub verb: String,
    pub resource: Option<String>,
    pub user: String,
    pub code: i64,
    pub obj: serde_json::Value,
    pub time: i64,
}

impl TestEvent {
    pub(crate) fn new(verb: &str, resource: Option<&str>, user: &str) -> TestEvent {
        TestEvent {
            verb: verb.to_string(),
            resource: resource.map(str::to_string),
            user: user.to_string(),
            code: 200,
            obj: serde_json::Value::Null,
            time: 0,
        }
    }
}

impl Event for TestEvent {
    type Schema = TestSchema;

    fn get(&self, field: &TestField) -> Val<'_> {
        match field {
            TestField::Verb => Val::Str(&self.verb),
            TestField::Resource => self
                .resource
                .as_deref()
                .map(Val::Str)
                .unwrap_or(Val::Missing),
            TestField::User => Val::Str(&self.user),
            TestField::Code => Val::Int(self.code),
            TestField::Obj(p) => p.lookup(&self.obj),
        }
    }

    fn index_value(&self, dimension: usize) -> Option<&str> {
        match dimension {
            0 => Some(&self.verb),
            1 => self.resource.as_deref(),
            _ => None,
        }
    }

    fn time_nanos(&self) -> i64 {
        self.time
    }

    fn event_id(&self) -> &str {
        ""
    }
}
