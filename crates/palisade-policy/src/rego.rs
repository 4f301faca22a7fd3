//! One regorus engine per template: the template's Rego and libs, the builtins Gatekeeper's OPA
//! offers that regorus lacks (the deprecated `any`, `all`, `re_match`, `set_diff` and casts, which
//! public templates still use), and `external_data`.

use crate::external::{self, ExternalDataProvider};
use crate::template::{RegoVersion, Template, TemplateError};
use regorus::{Engine, Value as RegoValue};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Units of interpreter work between two reads of the clock for the execution timer.
const TIMER_CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(32) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// A compiled template, cloned into each evaluator.
#[derive(Clone)]
pub(crate) struct CompiledTemplate {
    pub engine: Engine,
    /// `data.<package>.violation`.
    pub violation_rule: String,
}

/// Compiles a template's Rego and libs. Errors name the template and the Rego line.
pub(crate) fn compile(
    template: &Template,
    providers: &Arc<Vec<Arc<dyn ExternalDataProvider>>>,
    inventory: Option<&RegoValue>,
    timeout: Option<Duration>,
) -> Result<CompiledTemplate, TemplateError> {
    let compile_error = |message: String| TemplateError::Compile {
        name: template.name.clone(),
        message,
    };
    let mut engine = Engine::new();
    engine.set_rego_v0(template.rego_version == RegoVersion::V0);
    engine.set_strict_builtin_errors(false);
    if let Some(limit) = timeout {
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit,
            // Reading the clock on every unit of work costs more than the Rego itself.
            check_interval: TIMER_CHECK_INTERVAL,
        });
    }
    add_compat_builtins(&mut engine, providers).map_err(|e| compile_error(format!("{e:#}")))?;
    let package = engine
        .add_policy(
            format!("{}/template.rego", template.name),
            template.rego.clone(),
        )
        .map_err(|e| compile_error(format!("{e:#}")))?;
    if !package.starts_with("data.") || package == "data" {
        return Err(compile_error("the Rego has no package".into()));
    }
    for (i, lib) in template.libs.iter().enumerate() {
        let lib_package = engine
            .add_policy(format!("{}/lib-{i}.rego", template.name), lib.clone())
            .map_err(|e| compile_error(format!("{e:#}")))?;
        if !(lib_package == "data.lib" || lib_package.starts_with("data.lib.")) {
            return Err(compile_error(format!(
                "lib {i} has package `{}`: libs must be in packages under `lib`",
                lib_package.trim_start_matches("data.")
            )));
        }
        if lib_package == package {
            return Err(compile_error(
                "a lib shares the template's package".to_string(),
            ));
        }
    }
    if package == "data.lib" || package.starts_with("data.lib.") {
        return Err(compile_error(
            "the template's package must not be under `lib` (that is for libs)".into(),
        ));
    }
    let declares_violation = engine
        .has_declared_rule_rooted_at(&format!("{}/template.rego", template.name), "violation")
        .unwrap_or(false);
    if !declares_violation {
        return Err(compile_error(
            "the Rego declares no `violation` rule (Gatekeeper needs `violation[{\"msg\": msg}]`)"
                .into(),
        ));
    }
    if let Some(inv) = inventory {
        let mut data = RegoValue::new_object();
        if let Ok(map) = data.as_object_mut() {
            map.insert(RegoValue::from("inventory"), inv.clone());
        }
        engine
            .add_data(data)
            .map_err(|e| compile_error(format!("inventory: {e:#}")))?;
    }
    let violation_rule = format!("{package}.violation");
    // Surface errors that only show when rules are analysed (unknown functions, unsafe vars)
    // now, with an empty input, rather than on the first admission request.
    engine.set_input(RegoValue::new_object());
    if let Err(e) = engine.eval_rule(violation_rule.clone()) {
        let message = format!("{e:#}");
        if is_static_error(&message) {
            return Err(compile_error(message));
        }
    }
    Ok(CompiledTemplate {
        engine,
        violation_rule,
    })
}

/// Errors of the policy itself rather than of the (empty) input used to find them.
fn is_static_error(message: &str) -> bool {
    [
        "unknown function",
        "unsafe var",
        "could not find",
        "not a valid",
        "recursion",
        "undefined function",
        "var `",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

fn collection_items(v: &RegoValue) -> Option<Vec<RegoValue>> {
    match v {
        RegoValue::Array(a) => Some(a.iter().cloned().collect()),
        RegoValue::Set(s) => Some(s.iter().cloned().collect()),
        RegoValue::Object(o) => Some(o.values().cloned().collect()),
        _ => None,
    }
}

fn add_compat_builtins(
    engine: &mut Engine,
    providers: &Arc<Vec<Arc<dyn ExternalDataProvider>>>,
) -> anyhow::Result<()> {
    let truth = RegoValue::from(true);
    let t = truth.clone();
    engine.add_extension(
        "any".into(),
        1,
        Box::new(move |args: Vec<RegoValue>| {
            Ok(match args.first().and_then(collection_items) {
                Some(items) => RegoValue::from(items.contains(&t)),
                None => RegoValue::Undefined,
            })
        }),
    )?;
    let t = truth;
    engine.add_extension(
        "all".into(),
        1,
        Box::new(move |args: Vec<RegoValue>| {
            Ok(match args.first().and_then(collection_items) {
                Some(items) => RegoValue::from(items.iter().all(|i| *i == t)),
                None => RegoValue::Undefined,
            })
        }),
    )?;
    engine.add_extension(
        "re_match".into(),
        2,
        Box::new(|args: Vec<RegoValue>| {
            let (Some(RegoValue::String(p)), Some(RegoValue::String(s))) =
                (args.first(), args.get(1))
            else {
                return Ok(RegoValue::Undefined);
            };
            let re = regex::Regex::new(p)?;
            Ok(RegoValue::from(re.is_match(s)))
        }),
    )?;
    engine.add_extension(
        "set_diff".into(),
        2,
        Box::new(|args: Vec<RegoValue>| {
            let (Some(RegoValue::Set(a)), Some(RegoValue::Set(b))) = (args.first(), args.get(1))
            else {
                return Ok(RegoValue::Undefined);
            };
            let diff: std::collections::BTreeSet<RegoValue> =
                a.iter().filter(|x| !b.contains(x)).cloned().collect();
            Ok(RegoValue::from(diff))
        }),
    )?;
    engine.add_extension(
        "cast_array".into(),
        1,
        Box::new(|args: Vec<RegoValue>| {
            Ok(match args.first() {
                Some(v @ RegoValue::Array(_)) => v.clone(),
                Some(RegoValue::Set(s)) => RegoValue::from(s.iter().cloned().collect::<Vec<_>>()),
                _ => RegoValue::Undefined,
            })
        }),
    )?;
    engine.add_extension(
        "cast_set".into(),
        1,
        Box::new(|args: Vec<RegoValue>| {
            Ok(match args.first() {
                Some(v @ RegoValue::Set(_)) => v.clone(),
                Some(RegoValue::Array(a)) => RegoValue::from(
                    a.iter()
                        .cloned()
                        .collect::<std::collections::BTreeSet<RegoValue>>(),
                ),
                _ => RegoValue::Undefined,
            })
        }),
    )?;
    for (name, wanted) in [
        ("cast_string", "string"),
        ("cast_boolean", "boolean"),
        ("cast_null", "null"),
        ("cast_object", "object"),
    ] {
        engine.add_extension(
            name.into(),
            1,
            Box::new(move |args: Vec<RegoValue>| {
                let v = args.first().cloned().unwrap_or(RegoValue::Undefined);
                let ok = matches!(
                    (&v, wanted),
                    (RegoValue::String(_), "string")
                        | (RegoValue::Bool(_), "boolean")
                        | (RegoValue::Null, "null")
                        | (RegoValue::Object(_), "object")
                );
                Ok(if ok { v } else { RegoValue::Undefined })
            }),
        )?;
    }
    let providers = Arc::clone(providers);
    engine.add_extension(
        "external_data".into(),
        1,
        Box::new(move |args: Vec<RegoValue>| {
            let request: serde_json::Value = match args.first() {
                Some(v) => serde_json::to_value(v)?,
                None => serde_json::Value::Null,
            };
            let response = external::answer(&providers, &request);
            Ok(RegoValue::from(response))
        }),
    )?;
    Ok(())
}
