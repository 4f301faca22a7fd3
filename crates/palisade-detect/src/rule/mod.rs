//! The YAML rule language: loading rule files (built-in, then user overrides), validating every
//! key, field path, list, macro, regex and MITRE id, and compiling conditions once for one
//! [`EventSchema`]. See `docs/rule-language.md` for the language itself.

pub(crate) mod compile;
pub(crate) mod condition;
pub(crate) mod literals;
pub(crate) mod raw;
pub(crate) mod template;
#[cfg(test)]
mod tests;

use crate::engine::ContextFields;
use crate::engine::index::RuleIndex;
use crate::engine::prefilter::{self, Prefilter};
use crate::event::EventSchema;
use compile::{CondCompiler, Named};
use condition::{FieldRef, Node};
use palisade_core::Severity;
use palisade_core::alert::{Tactic, Technique};
use raw::{RawDoc, RawException, RawRule, parse_duration};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use template::Template;

/// The `source:` a rule applies to when it names none.
pub const DEFAULT_SOURCE: &str = "audit";

/// Largest rule file read from disk.
const MAX_RULE_FILE_BYTES: u64 = 16 << 20;
/// Default bounds of stateful rules that name none.
const DEFAULT_MAX_KEYS: usize = 10_000;
const DEFAULT_MAX_VALUES_PER_KEY: usize = 1_000;

/// The text of one rule file and the name errors use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// A file path, or `builtin:<file>` for rules compiled into the binary.
    pub name: String,
    pub text: String,
}

impl RuleSource {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> RuleSource {
        RuleSource {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Reads a rule file from disk (at most 16 MiB).
    pub fn from_file(path: &Path) -> Result<RuleSource, RuleError> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| RuleError::new(&name, None, None, format!("cannot read: {e}"));
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_RULE_FILE_BYTES {
            return Err(RuleError::new(
                &name,
                None,
                None,
                format!(
                    "file is {} bytes, more than the {MAX_RULE_FILE_BYTES} allowed",
                    meta.len()
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| RuleError::new(&name, None, None, "not valid UTF-8".to_string()))?;
        Ok(RuleSource { name, text })
    }
}

/// Why rules did not load: which file, where in it, which rule, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    /// The [`RuleSource::name`] of the file.
    pub source_name: String,
    /// 1-based line of the rule (or of the YAML error), when known.
    pub line: Option<u64>,
    /// The rule id, list or macro name concerned, when there is one.
    pub rule: Option<String>,
    pub message: String,
}

impl RuleError {
    fn new(source: &str, line: Option<u64>, rule: Option<&str>, message: String) -> RuleError {
        RuleError {
            source_name: source.to_string(),
            line,
            rule: rule.map(str::to_string),
            message,
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source_name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ": rule {rule}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a rule says about itself: everything alerts and rule listings show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleMeta {
    pub id: String,
    pub title: String,
    pub description: String,
    pub remediation: String,
    pub severity: Severity,
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    pub tags: Vec<String>,
    /// Threshold or rarity rule (keeps state between events).
    pub stateful: bool,
    /// The schema source the rule applies to (`audit`, `node`, `json`).
    pub source: String,
    /// Where the effective definition is (`file:line`), so users see which override won.
    pub origin: String,
}

/// A stateful rule's parameters, compiled.
#[derive(Debug, Clone)]
pub(crate) enum StatefulSpec<F> {
    Threshold {
        count: u64,
        window_nanos: i64,
        group_by: Vec<FieldRef<F>>,
        /// Fixed buckets aligned on multiples of the window instead of a sliding window.
        fixed: bool,
        max_keys: usize,
    },
    Rarity {
        learning_nanos: i64,
        key: Vec<FieldRef<F>>,
        value: Vec<FieldRef<F>>,
        max_keys: usize,
        max_values_per_key: usize,
    },
}

/// One rule compiled for schema `S`.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule<S: EventSchema> {
    pub condition: Node<S::Field>,
    pub exceptions: Vec<Node<S::Field>>,
    pub output: Template<FieldRef<S::Field>>,
    pub subject: FieldRef<S::Field>,
    pub resource: FieldRef<S::Field>,
    pub evidence: Vec<(String, FieldRef<S::Field>)>,
    pub stateful: Option<StatefulSpec<S::Field>>,
    /// Per index dimension: the admitted values, or `None` for any.
    pub index: Vec<Option<Vec<String>>>,
}

/// A compiled, indexed set of rules for one event schema. Immutable once loaded: share it between
/// engines with an `Arc`.
#[derive(Debug)]
pub struct RuleSet<S: EventSchema> {
    metas: Vec<RuleMeta>,
    pub(crate) compiled: Vec<CompiledRule<S>>,
    pub(crate) index: RuleIndex,
    /// Literals each rule's condition cannot hold without, scanned once per field and event.
    pub(crate) prefilter: Prefilter<S::Field>,
    pub(crate) context: ContextFields<S::Field>,
}

/// One rule definition while sources are merged.
struct Entry {
    raw: RawRule,
    source: String,
    line: u64,
    enabled: bool,
    extra_exceptions: Vec<RawException>,
}

impl<S: EventSchema> RuleSet<S> {
    /// Loads `sources` in order: later definitions override earlier ones (see the module docs).
    /// Only rules whose `source:` is `S::SOURCE` are compiled; others are checked for shape and
    /// skipped.
    pub fn load(sources: &[RuleSource]) -> Result<Self, RuleError> {
        let mut lists: HashMap<String, Named> = HashMap::new();
        let mut macros: HashMap<String, Named> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut entries: HashMap<String, Entry> = HashMap::new();

        for src in sources {
            let docs = parse_docs(src)?;
            let mut defined_here: HashSet<String> = HashSet::new();
            for doc in docs {
                for (name, spanned) in doc.lists {
                    let line = spanned.referenced.line();
                    let ok = spanned
                        .value
                        .as_array()
                        .is_some_and(|items| items.iter().all(|i| !i.is_array() && !i.is_object()));
                    if !ok {
                        return Err(RuleError::new(
                            &src.name,
                            Some(line),
                            Some(&name),
                            "a list is a sequence of scalars (strings, numbers, booleans)"
                                .to_string(),
                        ));
                    }
                    let origin = format!("{}:{line}", src.name);
                    lists.insert(
                        name,
                        Named {
                            value: spanned.value,
                            origin,
                        },
                    );
                }
                for (name, spanned) in doc.macros {
                    let origin = format!("{}:{}", src.name, spanned.referenced.line());
                    macros.insert(
                        name,
                        Named {
                            value: spanned.value,
                            origin,
                        },
                    );
                }
                for spanned in doc.rules {
                    let line = spanned.referenced.line();
                    let value = spanned.value;
                    let err = |rule: Option<&str>, message: String| {
                        RuleError::new(&src.name, Some(line), rule, message)
                    };
                    let id = match value.get("id") {
                        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => id.clone(),
                        Some(_) => {
                            return Err(err(None, "rule `id` must be a non-empty string".into()));
                        }
                        None => return Err(err(None, "rule without an `id`".into())),
                    };
                    let keys: Vec<&str> = value
                        .as_object()
                        .map(|m| m.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let raw: RawRule = serde_json::from_value(value.clone()).map_err(|e| {
                        let mut error = err(Some(&id), e.to_string());
                        if let Some((line, column)) = precise_location(src, line) {
                            error.line = Some(line);
                            error.message = format!("{} (column {column})", error.message);
                        }
                        error
                    })?;
                    if raw.append == Some(true) {
                        if let Some(k) = keys
                            .iter()
                            .find(|k| !matches!(**k, "id" | "append" | "exceptions"))
                        {
                            return Err(err(
                                Some(&id),
                                format!(
                                    "`append: true` only adds `exceptions`; `{k}` is not allowed with it"
                                ),
                            ));
                        }
                        let entry = entries.get_mut(&id).ok_or_else(|| {
                            err(
                                Some(&id),
                                "`append: true` for a rule that is not defined".into(),
                            )
                        })?;
                        entry.extra_exceptions.extend(raw.exceptions);
                    } else if raw.enabled.is_some()
                        && keys.iter().all(|k| matches!(*k, "id" | "enabled"))
                    {
                        let entry = entries.get_mut(&id).ok_or_else(|| {
                            err(
                                Some(&id),
                                "`enabled:` alone toggles a rule, but no rule has this id".into(),
                            )
                        })?;
                        entry.enabled = raw.enabled.unwrap_or(true);
                    } else {
                        if !defined_here.insert(id.clone()) {
                            return Err(err(
                                Some(&id),
                                "duplicate rule id in this file".to_string(),
                            ));
                        }
                        let entry = Entry {
                            enabled: raw.enabled.unwrap_or(true),
                            raw,
                            source: src.name.clone(),
                            line,
                            extra_exceptions: Vec::new(),
                        };
                        if entries.insert(id.clone(), entry).is_none() {
                            order.push(id);
                        }
                    }
                }
            }
        }

        let mut metas = Vec::new();
        let mut compiled = Vec::new();
        let mut compiler = CondCompiler::<S>::new(&lists, &macros);
        for id in &order {
            let Some(entry) = entries.get(id) else {
                continue;
            };
            let source = entry.raw.source.as_deref().unwrap_or(DEFAULT_SOURCE);
            if source != S::SOURCE || !entry.enabled {
                continue;
            }
            let (meta, rule) = compile_rule::<S>(&mut compiler, entry).map_err(|message| {
                // Conditions are compiled from generic values; find the line of the part that
                // failed (`condition` or the n-th exception) by reading the file again.
                let line = sources
                    .iter()
                    .find(|s| s.name == entry.source)
                    .and_then(|s| part_line(s, id, &message))
                    .unwrap_or(entry.line);
                RuleError::new(&entry.source, Some(line), Some(id), message)
            })?;
            metas.push(meta);
            compiled.push(rule);
        }
        let index = RuleIndex::build(
            S::INDEX_DIMENSIONS.len(),
            compiled
                .iter()
                .map(|r: &CompiledRule<S>| r.index.as_slice()),
        );
        let prefilter = Prefilter::build(
            compiled
                .iter()
                .map(|r| prefilter::requirement(&r.condition, S::INDEX_DIMENSIONS, &[]))
                .collect(),
        );
        Ok(RuleSet {
            metas,
            compiled,
            index,
            prefilter,
            context: ContextFields::compile::<S>(),
        })
    }

    /// Loads `builtin` then every `*.yaml`/`*.yml` file of `user_paths` (directories are read
    /// in sorted order, not recursively; a path to a file is read as is).
    pub fn from_dirs(builtin: &[RuleSource], user_paths: &[PathBuf]) -> Result<Self, RuleError> {
        let mut sources = builtin.to_vec();
        for path in user_paths {
            let name = path.display().to_string();
            let meta = std::fs::metadata(path)
                .map_err(|e| RuleError::new(&name, None, None, format!("cannot read: {e}")))?;
            if meta.is_dir() {
                let mut files = Vec::new();
                let dir = std::fs::read_dir(path)
                    .map_err(|e| RuleError::new(&name, None, None, format!("cannot list: {e}")))?;
                for item in dir {
                    let item = item.map_err(|e| {
                        RuleError::new(&name, None, None, format!("cannot list: {e}"))
                    })?;
                    let p = item.path();
                    let is_yaml = p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml")
                    });
                    if is_yaml && p.is_file() {
                        files.push(p);
                    }
                }
                files.sort();
                for f in files {
                    sources.push(RuleSource::from_file(&f)?);
                }
            } else {
                sources.push(RuleSource::from_file(path)?);
            }
        }
        Self::load(&sources)
    }

    /// The loaded (enabled) rules; [`crate::engine::Match::rule`] indexes into this.
    pub fn rules(&self) -> &[RuleMeta] {
        &self.metas
    }

    /// The position of rule `id` in [`RuleSet::rules`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.metas.iter().position(|m| m.id == id)
    }

    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }
}

/// Every YAML document of a source; an empty source has none.
fn parse_docs(src: &RuleSource) -> Result<Vec<RawDoc>, RuleError> {
    if src
        .text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(Vec::new());
    }
    // YAML 1.2 booleans only: `n`, `on`, `yes` stay strings (field names, list values).
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let docs: Vec<Option<RawDoc>> = serde_saphyr::from_multiple_with_options(&src.text, options)
        .map_err(|e| {
            let line = e.location().map(|l| l.line());
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first).trim();
            // `line N column M: message` repeats the location the error carries.
            let message = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
                Some((_, rest)) => rest,
                None => first,
            };
            let message = match e.location() {
                Some(l) => format!("{message} (column {})", l.column()),
                None => message.to_string(),
            };
            RuleError::new(&src.name, line, None, message)
        })?;
    Ok(docs.into_iter().flatten().collect())
}

/// Where in the file a rule's shape error is: the rule was read as a generic value (to learn its id
/// first), so on error the file is read again strictly, which locates the offending key. Only a
/// location inside the rule (at or after its first line) is trusted.
fn precise_location(src: &RuleSource, rule_line: u64) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct StrictDoc {
        #[serde(default)]
        lists: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        macros: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        rules: Vec<RawRule>,
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let error =
        serde_saphyr::from_multiple_with_options::<Option<StrictDoc>>(&src.text, options).err()?;
    let location = error.location()?;
    (location.line() >= rule_line).then(|| (location.line(), location.column()))
}

/// The line where the `condition` or the failing exception of rule `id` starts in `src`, for
/// errors whose message starts with `condition` or `exceptions[N]`.
fn part_line(src: &RuleSource, id: &str, message: &str) -> Option<u64> {
    use serde::de::IgnoredAny;
    use serde_saphyr::Spanned;
    #[derive(serde::Deserialize)]
    struct LooseDoc {
        #[serde(default)]
        rules: Vec<LooseRule>,
    }
    #[derive(serde::Deserialize)]
    struct LooseRule {
        id: Option<String>,
        condition: Option<Spanned<IgnoredAny>>,
        #[serde(default)]
        exceptions: Vec<Spanned<IgnoredAny>>,
    }
    let exception = message
        .strip_prefix("exceptions[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    if exception.is_none() && !message.starts_with("condition") {
        return None;
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let docs: Vec<Option<LooseDoc>> =
        serde_saphyr::from_multiple_with_options(&src.text, options).ok()?;
    let rule = docs
        .into_iter()
        .flatten()
        .flat_map(|d| d.rules)
        .rfind(|r| r.id.as_deref() == Some(id))?;
    match exception {
        Some(n) => rule.exceptions.get(n).map(|e| e.referenced.line()),
        None => rule.condition.map(|c| c.referenced.line()),
    }
}

fn compile_rule<S: EventSchema>(
    compiler: &mut CondCompiler<'_, S>,
    entry: &Entry,
) -> Result<(RuleMeta, CompiledRule<S>), String> {
    let raw = &entry.raw;
    let title = raw
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .ok_or("missing `title`")?;
    let severity_text = raw.severity.as_deref().ok_or("missing `severity`")?;
    let severity: Severity = severity_text
        .parse()
        .ok()
        .filter(|s| *s != Severity::Unknown)
        .ok_or_else(|| {
            format!(
                "unknown severity {severity_text:?} (informational, low, medium, high, critical)"
            )
        })?;
    let mut tactics = Vec::new();
    for t in &raw.tactics {
        let name = crate::mitre::tactic_name(t)
            .ok_or_else(|| format!("unknown MITRE ATT&CK tactic id {t:?}"))?;
        tactics.push(Tactic {
            id: t.clone(),
            name: name.to_string(),
        });
    }
    let mut techniques = Vec::new();
    for t in &raw.techniques {
        let name = crate::mitre::technique_name(t)
            .ok_or_else(|| format!("unknown MITRE ATT&CK technique id {t:?}"))?;
        techniques.push(Technique {
            id: t.clone(),
            name: name.to_string(),
        });
    }

    let mut index: Vec<Option<Vec<String>>> = vec![None; S::INDEX_DIMENSIONS.len()];
    if let Some(m) = &raw.index {
        for (dim, values) in m {
            let pos = S::INDEX_DIMENSIONS
                .iter()
                .position(|d| d == dim)
                .ok_or_else(|| {
                    format!(
                        "match: unknown index dimension `{dim}` (source {} has: {})",
                        S::SOURCE,
                        if S::INDEX_DIMENSIONS.is_empty() {
                            "none".to_string()
                        } else {
                            S::INDEX_DIMENSIONS.join(", ")
                        }
                    )
                })?;
            let values = values.clone().into_vec();
            if values.is_empty() {
                return Err(format!(
                    "match.{dim}: empty list (omit the key to admit any value)"
                ));
            }
            index[pos] = Some(values);
        }
    }

    if S::DERIVE_INDEX_FROM_CONDITIONS
        && let Some(cond) = &raw.condition
    {
        for (pos, dim) in S::INDEX_DIMENSIONS.iter().enumerate() {
            if index[pos].is_none() {
                index[pos] = compiler.required_values(cond, dim, 0);
            }
        }
    }

    compiler.start_rule();
    let condition = match &raw.condition {
        Some(c) => compiler.node(c, "condition", false)?,
        None => Node::True,
    };
    let mut exceptions = Vec::new();
    for (i, e) in raw
        .exceptions
        .iter()
        .chain(&entry.extra_exceptions)
        .enumerate()
    {
        let at = match &e.name {
            Some(name) => format!("exceptions[{i}] ({name})"),
            None => format!("exceptions[{i}]"),
        };
        exceptions.push(compiler.node(&e.condition, &at, false)?);
    }
    let field = |path: &str, what: &str| {
        compiler
            .field(path, false)
            .map_err(|e| format!("{what}: {e}"))
    };
    let output_text = raw.output.clone().unwrap_or_else(|| title.clone());
    let output = Template::compile(&output_text, &|p| compiler.field(p, false))?;
    let subject = field(
        raw.subject.as_deref().unwrap_or(S::default_subject_field()),
        "subject",
    )?;
    let resource = field(
        raw.resource
            .as_deref()
            .unwrap_or(S::default_resource_field()),
        "resource",
    )?;
    let mut evidence = Vec::new();
    for path in &raw.evidence {
        evidence.push((path.clone(), field(path, "evidence")?));
    }
    let stateful = match (&raw.threshold, &raw.rarity) {
        (Some(_), Some(_)) => {
            return Err("a rule has at most one of `threshold` and `rarity`".into());
        }
        (Some(t), None) => {
            if t.count == 0 {
                return Err("threshold.count must be at least 1".into());
            }
            let window_nanos =
                parse_duration(&t.window).map_err(|e| format!("threshold.window: {e}"))?;
            let fixed = match t.mode.as_deref() {
                None | Some("sliding") => false,
                Some("fixed") => true,
                Some(other) => {
                    return Err(format!(
                        "threshold.mode: {other:?} is not `sliding` or `fixed`"
                    ));
                }
            };
            let mut group_by = Vec::new();
            for p in &t.group_by {
                group_by.push(field(p, "threshold.group_by")?);
            }
            Some(StatefulSpec::Threshold {
                count: t.count,
                window_nanos,
                group_by,
                fixed,
                max_keys: positive(t.max_keys, DEFAULT_MAX_KEYS, "threshold.max_keys")?,
            })
        }
        (None, Some(r)) => {
            let learning_nanos =
                parse_duration(&r.learning).map_err(|e| format!("rarity.learning: {e}"))?;
            if r.value.is_empty() {
                return Err("rarity.value: name at least one field".into());
            }
            let mut key = Vec::new();
            for p in &r.key {
                key.push(field(p, "rarity.key")?);
            }
            let mut value = Vec::new();
            for p in &r.value {
                value.push(field(p, "rarity.value")?);
            }
            Some(StatefulSpec::Rarity {
                learning_nanos,
                key,
                value,
                max_keys: positive(r.max_keys, DEFAULT_MAX_KEYS, "rarity.max_keys")?,
                max_values_per_key: positive(
                    r.max_values_per_key,
                    DEFAULT_MAX_VALUES_PER_KEY,
                    "rarity.max_values_per_key",
                )?,
            })
        }
        (None, None) => None,
    };
    let meta = RuleMeta {
        id: raw.id.clone(),
        title,
        description: raw.description.clone().unwrap_or_default(),
        remediation: raw.remediation.clone().unwrap_or_default(),
        severity,
        tactics,
        techniques,
        tags: raw.tags.clone(),
        stateful: stateful.is_some(),
        source: S::SOURCE.to_string(),
        origin: format!("{}:{}", entry.source, entry.line),
    };
    Ok((
        meta,
        CompiledRule {
            condition,
            exceptions,
            output,
            subject,
            resource,
            evidence,
            stateful,
            index,
        },
    ))
}

fn positive(value: Option<usize>, default: usize, what: &str) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(0) => Err(format!("{what} must be at least 1")),
        Some(n) => Ok(n),
    }
}
