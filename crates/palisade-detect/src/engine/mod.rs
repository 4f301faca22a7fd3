//! The rule engine: judges events of one schema against a compiled [`RuleSet`], through the
//! index, conditions, exceptions and stateful memory, and describes each hit as a [`Match`].
//!
//! Nothing here knows about Kubernetes audit logs: the schema names fields and index dimensions,
//! so the node sensor reuses the engine with its own schema.

pub(crate) mod index;
pub(crate) mod prefilter;
pub(crate) mod state;
#[cfg(test)]
pub(crate) mod test_schema;
#[cfg(test)]
mod tests;

use crate::event::{Event, EventSchema};
use crate::rule::condition::FieldRef;
use crate::rule::template::{render_val, val_json, val_string};
use crate::rule::{CompiledRule, RuleSet, StatefulSpec};
use crate::value::Val;
use serde::Serialize;
use state::{Seen, StateStore, Verdict};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Engine limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most keys all stateful rules together remember (threshold groups + rarity keys); the
    /// least recently used is evicted beyond it.
    pub max_state_keys: usize,
    /// Most distinct index tuples whose candidate rules are cached.
    pub max_cached_tuples: usize,
    /// Skip candidate rules whose required literals do not occur in the event (one scan per
    /// field; see the prefilter module). Results are the same either way; off only to compare.
    pub literal_prefilter: bool,
    /// Remember what the prefilter's scan found in recent field values and look values up
    /// instead of scanning them again. Results are the same either way; off only to compare.
    pub prefilter_memo: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_state_keys: 100_000,
            max_cached_tuples: 16_384,
            literal_prefilter: true,
            prefilter_memo: true,
        }
    }
}

/// Context every alert wants when the schema has it (who, from where, on what), read for each
/// match from the first of a few well-known field paths that compile for the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MatchContext {
    pub user_name: Option<String>,
    /// The first source IP.
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// The kind of object acted on (audit: `objectRef.resource`, e.g. `pods`).
    pub resource_type: Option<String>,
    pub resource_name: Option<String>,
    /// The node the event happened on (node sensor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The container of the acting process (node sensor; absent for host processes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_image: Option<String>,
    /// The pod of that container (its namespace is `namespace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The acting process: pid (host pid namespace), executable, command line, parent executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_cmdline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_exe: Option<String>,
    /// The container runtime (`containerd`, `cri-o`, `docker`, `podman`) and the pod uid, which
    /// the sensor reads from the cgroup path even without access to the Kubernetes API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

/// Well-known paths per context slot, tried in order (a path the schema does not know is
/// skipped, so each source fills the slots it has).
const CONTEXT_PATHS: [&[&str]; 18] = [
    &["user.username", "user.name"],
    &["sourceIPs", "source.ip"],
    &["userAgent", "user_agent"],
    &["cluster"],
    &[
        "objectRef.namespace",
        "namespace",
        "container.pod_namespace",
    ],
    &["objectRef.resource", "resource_type"],
    &["objectRef.name", "resource_name"],
    &["node"],
    &["container.id"],
    &["container.name"],
    &["container.image"],
    &["container.pod_name"],
    &["process.pid"],
    &["process.exe"],
    &["process.cmdline"],
    &["process.parent.exe"],
    &["container.runtime"],
    &["container.pod_uid"],
];

/// The compiled context paths of a schema.
#[derive(Debug, Clone)]
pub(crate) struct ContextFields<F> {
    slots: Vec<Vec<F>>,
}

impl<F> ContextFields<F> {
    pub(crate) fn compile<S: EventSchema<Field = F>>() -> Self {
        ContextFields {
            slots: CONTEXT_PATHS
                .iter()
                .map(|paths| {
                    paths
                        .iter()
                        .filter_map(|p| S::compile_field(p).ok())
                        .collect()
                })
                .collect(),
        }
    }

    fn read<E: Event>(&self, event: &E) -> MatchContext
    where
        E::Schema: EventSchema<Field = F>,
    {
        let mut values = self.slots.iter().map(|fields| {
            fields.iter().find_map(|f| {
                let v = event.get(f);
                let first = match &v {
                    Val::List(items) => items.first().cloned().unwrap_or(Val::Missing),
                    Val::Strs(items) => items.first().map_or(Val::Missing, |s| Val::Str(s)),
                    Val::Json(serde_json::Value::Array(items)) => {
                        items.first().map(Val::from_json).unwrap_or(Val::Missing)
                    }
                    _ => v.clone(),
                };
                let s = val_string(&first);
                (!s.is_empty() && !matches!(first, Val::Null)).then_some(s)
            })
        });
        let mut next = || values.next().flatten();
        MatchContext {
            user_name: next(),
            source_ip: next(),
            user_agent: next(),
            cluster: next(),
            namespace: next(),
            resource_type: next(),
            resource_name: next(),
            node: next(),
            container_id: next(),
            container_name: next(),
            container_image: next(),
            pod_name: next(),
            process_pid: next(),
            process_exe: next(),
            process_cmdline: next(),
            parent_exe: next(),
            container_runtime: next(),
            pod_uid: next(),
        }
    }
}

/// One rule firing on one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// Position of the rule in [`RuleSet::rules`].
    pub rule: usize,
    pub time_nanos: i64,
    pub event_id: String,
    /// The rule's output template rendered for this event.
    pub output: String,
    /// Aggregation subject (who) and resource (on what).
    pub subject: String,
    pub resource: String,
    /// Evidence: the rule's `evidence` paths, and for stateful rules what tripped them.
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub context: MatchContext,
}

/// Per-rule counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    pub id: String,
    /// Events on which the rule was a candidate of the index (its condition was evaluated unless
    /// the literal prefilter ruled it out first).
    pub evaluations: u64,
    /// Of those, events where the literal prefilter showed the condition could not hold, so it
    /// was not evaluated.
    pub prefiltered: u64,
    pub matches: u64,
    /// Condition held but an exception suppressed it.
    pub suppressed: u64,
}

/// Engine counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    pub events: u64,
    pub evaluations: u64,
    /// Candidates the literal prefilter ruled out (included in `evaluations`).
    pub prefiltered: u64,
    pub matches: u64,
    pub suppressed: u64,
    /// Keys currently held by stateful rules.
    pub state_keys: u64,
    /// Keys evicted to stay within the caps (a threshold group or rarity key forgotten early).
    pub state_evictions: u64,
    /// Rarity values forgotten because a key reached `max_values_per_key`.
    pub value_evictions: u64,
    /// Field values the literal prefilter found in its memo of recent values, and values it
    /// scanned.
    pub prefilter_memo_hits: u64,
    pub prefilter_memo_misses: u64,
    pub rules: Vec<RuleStats>,
}

/// Why saved stateful memory could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("state file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// The candidate rules of one index tuple, the fields their required literals are in, and
/// which of them the literal scan decides.
#[derive(Debug, Clone, Default)]
struct Candidates {
    rules: Box<[u32]>,
    /// `rules` as a bitset (words of [`prefilter::Prefilter::words`]), so the rules to evaluate
    /// are found a word at a time: candidates not gated, or gated and present.
    bits: Box<[u64]>,
    fields: Box<[u16]>,
    gated: Box<[u64]>,
    /// Events judged with this list since it was cached: each was one evaluation of each of its
    /// rules (counted here once per event, not once per rule; see [`Engine::stats`]).
    hits: u64,
}

impl Candidates {
    fn fill<S: EventSchema>(&mut self, rules: &RuleSet<S>, ids: &[u32]) {
        let mut list = std::mem::take(&mut self.rules).into_vec();
        rules.index.candidates(ids, &mut list);
        // Index values that are also field values (see `DERIVE_INDEX_FROM_CONDITIONS`) decide
        // equality tests on those fields for every event of the tuple.
        let known: Vec<(&str, &str)> = if S::DERIVE_INDEX_FROM_CONDITIONS {
            S::INDEX_DIMENSIONS
                .iter()
                .zip(ids)
                .enumerate()
                .filter_map(|(d, (path, &id))| rules.index.value(d, id).map(|v| (*path, v)))
                .collect()
        } else {
            Vec::new()
        };
        let (fields, gated) = rules.prefilter.plan(list.iter().filter_map(|&r| {
            let rule = rules.compiled.get(r as usize)?;
            Some((
                r,
                prefilter::requirement(&rule.condition, S::INDEX_DIMENSIONS, &known),
            ))
        }));
        let mut bits = vec![0u64; rules.prefilter.words()];
        for &r in &list {
            if let Some(w) = bits.get_mut(r as usize / 64) {
                *w |= 1 << (r % 64);
            }
        }
        self.bits = bits.into_boxed_slice();
        self.fields = fields;
        self.gated = gated;
        self.rules = list.into_boxed_slice();
        self.hits = 0;
    }

    /// Adds this list's evaluations into per-rule counters.
    fn flush(&self, evaluations: &mut [u64]) {
        for &r in self.rules.iter() {
            if let Some(n) = evaluations.get_mut(r as usize) {
                *n += self.hits;
            }
        }
    }
}

/// Judges events against rules. Owns the stateful memory and candidate cache; one per thread.
pub struct Engine<S: EventSchema> {
    rules: Arc<RuleSet<S>>,
    config: EngineConfig,
    cache: index::FxHashMap<u64, Candidates>,
    ids: Vec<u32>,
    scratch: Candidates,
    /// Per rule: one of its required literals occurred in the current event.
    present: Vec<u64>,
    /// What the literal scan found in recently seen values.
    memo: prefilter::ScanMemo,
    state: StateStore,
    events: u64,
    /// Matches and suppressions per rule (evaluations and prefiltered are derived in `stats`).
    per_rule: Vec<RuleStats>,
    /// Per rule: candidate evaluations of lists no longer cached (see `Candidates::hits`).
    evaluations: Vec<u64>,
    /// Per rule: conditions evaluated (candidates the prefilter did not rule out).
    conditions: Vec<u64>,
}

impl<S: EventSchema> Engine<S> {
    pub fn new(rules: Arc<RuleSet<S>>, config: EngineConfig) -> Self {
        let per_rule: Vec<RuleStats> = rules
            .rules()
            .iter()
            .map(|m| RuleStats {
                id: m.id.clone(),
                ..Default::default()
            })
            .collect();
        let state = StateStore::new(rules.len(), config.max_state_keys);
        let present = vec![0; rules.prefilter.words()];
        let memo = prefilter::ScanMemo::new(config.prefilter_memo);
        Engine {
            rules,
            config,
            cache: index::FxHashMap::default(),
            ids: Vec::new(),
            scratch: Candidates::default(),
            present,
            memo,
            state,
            events: 0,
            evaluations: vec![0; per_rule.len()],
            conditions: vec![0; per_rule.len()],
            per_rule,
        }
    }

    /// The rules this engine judges with.
    pub fn rules(&self) -> &Arc<RuleSet<S>> {
        &self.rules
    }

    /// Appends one Match per rule that fires on `event`.
    pub fn evaluate<E: Event<Schema = S>>(&mut self, event: &E, out: &mut Vec<Match>) {
        let Engine {
            rules,
            config,
            cache,
            ids,
            scratch,
            present,
            memo,
            state,
            events,
            per_rule,
            evaluations,
            conditions,
        } = self;
        *events += 1;
        let index = &rules.index;
        let candidates: &Candidates = match index.ids_of(event, ids) {
            Some(key) => {
                if cache.len() >= config.max_cached_tuples && !cache.contains_key(&key) {
                    for c in cache.values() {
                        c.flush(evaluations);
                    }
                    cache.clear();
                }
                // One lookup when the tuple is cached (nearly always).
                let c = cache.entry(key).or_insert_with(|| {
                    scratch.fill(rules, ids);
                    scratch.clone()
                });
                c.hits += 1;
                c
            }
            None => {
                scratch.fill(rules, ids);
                scratch.hits = 1;
                scratch.flush(evaluations);
                scratch
            }
        };
        if candidates.rules.is_empty() {
            return;
        }
        let prefilter = config.literal_prefilter.then_some(&rules.prefilter);
        if let Some(p) = prefilter {
            p.mark(event, &candidates.fields, present, memo);
        }
        for (w, &word) in candidates.bits.iter().enumerate() {
            // Candidates the scan does not rule out: not gated, or one of their literals occurred.
            let mut word = match prefilter {
                Some(_) => {
                    let gated = candidates.gated.get(w).copied().unwrap_or(0);
                    let seen = present.get(w).copied().unwrap_or(0);
                    word & (!gated | seen)
                }
                None => word,
            };
            while word != 0 {
                let r = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let Some(rule) = rules.compiled.get(r) else {
                    continue;
                };
                if let Some(n) = conditions.get_mut(r) {
                    *n += 1;
                }
                if !rule.condition.eval(event, None) {
                    continue;
                }
                if rule.exceptions.iter().any(|e| e.eval(event, None)) {
                    per_rule[r].suppressed += 1;
                    continue;
                }
                let mut extra = serde_json::Map::new();
                if let Some(spec) = &rule.stateful
                    && !stateful_step(state, r, spec, event, &mut extra)
                {
                    continue;
                }
                per_rule[r].matches += 1;
                out.push(build_match(r, rule, rules, event, extra));
            }
        }
    }

    /// Counters since the engine started.
    pub fn stats(&self) -> EngineStats {
        let mut evaluations = self.evaluations.clone();
        for c in self.cache.values() {
            c.flush(&mut evaluations);
        }
        let rules: Vec<RuleStats> = self
            .per_rule
            .iter()
            .enumerate()
            .map(|(r, s)| {
                let evaluations = evaluations.get(r).copied().unwrap_or(0);
                let conditions = self.conditions.get(r).copied().unwrap_or(0);
                RuleStats {
                    evaluations,
                    prefiltered: evaluations.saturating_sub(conditions),
                    ..s.clone()
                }
            })
            .collect();
        EngineStats {
            events: self.events,
            evaluations: rules.iter().map(|r| r.evaluations).sum(),
            prefiltered: rules.iter().map(|r| r.prefiltered).sum(),
            matches: rules.iter().map(|r| r.matches).sum(),
            suppressed: rules.iter().map(|r| r.suppressed).sum(),
            state_keys: self.state.keys() as u64,
            state_evictions: self.state.evictions,
            value_evictions: self.state.value_evictions,
            prefilter_memo_hits: self.memo.hits,
            prefilter_memo_misses: self.memo.misses,
            rules,
        }
    }

    /// Writes what rarity rules have learned to `path` (JSON), so learning survives restarts.
    pub fn save_state(&self, path: &Path) -> Result<(), StateFileError> {
        let mut doc = serde_json::Map::new();
        for (r, meta) in self.rules.rules().iter().enumerate() {
            let entries = self.state.rarity_entries(r);
            if entries.is_empty() {
                continue;
            }
            let keys: serde_json::Map<String, serde_json::Value> = entries
                .into_iter()
                .filter_map(|(k, seen)| serde_json::to_value(seen).ok().map(|v| (k, v)))
                .collect();
            doc.insert(meta.id.clone(), serde_json::Value::Object(keys));
        }
        let text = serde_json::to_vec(&serde_json::json!({"version": 1, "rarity": doc})).map_err(
            |source| StateFileError::Json {
                path: path.display().to_string(),
                source,
            },
        )?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| StateFileError::Io {
                path: path.display().to_string(),
                source,
            })
    }

    /// Restores rarity memory written by [`Engine::save_state`]. Rules that no longer exist or
    /// are no longer rarity rules are ignored; caps apply.
    pub fn load_state(&mut self, path: &Path) -> Result<(), StateFileError> {
        let bytes = std::fs::read(path).map_err(|source| StateFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        #[derive(serde::Deserialize)]
        struct Saved {
            rarity: HashMap<String, HashMap<String, Seen>>,
        }
        let saved: Saved =
            serde_json::from_slice(&bytes).map_err(|source| StateFileError::Json {
                path: path.display().to_string(),
                source,
            })?;
        for (id, keys) in saved.rarity {
            let Some(r) = self.rules.position(&id) else {
                continue;
            };
            let Some(StatefulSpec::Rarity {
                max_keys,
                max_values_per_key,
                ..
            }) = self.rules.compiled.get(r).and_then(|c| c.stateful.as_ref())
            else {
                continue;
            };
            for (key, mut seen) in keys {
                if seen.values.len() > *max_values_per_key {
                    let mut values: Vec<(String, u64)> = seen.values.into_iter().collect();
                    values.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
                    values.truncate(*max_values_per_key);
                    seen.values = values.into_iter().collect();
                }
                self.state.restore_rarity(r, *max_keys, &key, seen);
            }
        }
        Ok(())
    }
}

/// Joins field values into a state key (unit separator between parts), in one allocation: this
/// runs on every event a stateful rule sees.
fn key_of<E: Event>(fields: &[FieldRef<<E::Schema as EventSchema>::Field>], event: &E) -> String {
    let mut key = String::with_capacity(64);
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            key.push('\u{1f}');
        }
        let value = f.read(event, None);
        if value.exists() {
            render_val(&value, &mut key);
        }
    }
    key
}

/// The display parts of a state key (only built when the rule fires).
fn parts_of<E: Event>(
    fields: &[FieldRef<<E::Schema as EventSchema>::Field>],
    event: &E,
) -> Vec<String> {
    fields
        .iter()
        .map(|f| val_string(&f.read(event, None)))
        .collect()
}

/// Runs the stateful part of a rule; true when it fires (with what tripped it in `extra`).
fn stateful_step<E: Event>(
    state: &mut StateStore,
    rule: usize,
    spec: &StatefulSpec<<E::Schema as EventSchema>::Field>,
    event: &E,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> bool {
    let time = event.time_nanos();
    match spec {
        StatefulSpec::Threshold {
            group_by,
            window_nanos,
            ..
        } => {
            let key = key_of(group_by, event);
            match state.observe(rule, spec, time, &key, "") {
                Verdict::ThresholdReached { count } => {
                    let parts = parts_of(group_by, event);
                    extra.insert(
                        "threshold".into(),
                        serde_json::json!({
                            "count": count,
                            "window_seconds": window_nanos / 1_000_000_000,
                            "group": parts,
                        }),
                    );
                    true
                }
                _ => false,
            }
        }
        StatefulSpec::Rarity {
            key,
            value,
            learning_nanos,
            ..
        } => {
            let k = key_of(key, event);
            let v = key_of(value, event);
            match state.observe(rule, spec, time, &k, &v) {
                Verdict::Rare => {
                    let (key_parts, value_parts) = (parts_of(key, event), parts_of(value, event));
                    extra.insert(
                        "rarity".into(),
                        serde_json::json!({
                            "key": key_parts,
                            "value": value_parts,
                            "learning_seconds": learning_nanos / 1_000_000_000,
                        }),
                    );
                    true
                }
                _ => false,
            }
        }
    }
}

fn build_match<S: EventSchema, E: Event<Schema = S>>(
    r: usize,
    rule: &CompiledRule<S>,
    rules: &RuleSet<S>,
    event: &E,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Match {
    let read = |f: &FieldRef<S::Field>| f.read(event, None);
    let output = rule.output.render(&read);
    let mut fields = serde_json::Map::new();
    for (name, f) in &rule.evidence {
        if let Some(v) = val_json(&read(f)) {
            fields.insert(name.clone(), v);
        }
    }
    fields.extend(extra);
    Match {
        rule: r,
        time_nanos: event.time_nanos(),
        event_id: event.event_id().to_string(),
        output,
        subject: val_string(&read(&rule.subject)),
        resource: val_string(&read(&rule.resource)),
        fields,
        context: rules.context.read(event),
    }
}
