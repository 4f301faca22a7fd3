//! Hostile rule files: mutated, truncated, deeply nested and exponentially expanding ones load or
//! fail with an error naming the file, never crash or hang (the fuzz target's body, run on a
//! deterministic corpus in every test run).

use palisade_detect::engine::{Engine, EngineConfig};
use palisade_detect::json_event::{JsonEvent, JsonSchema};
use palisade_detect::rule::{RuleSet, RuleSource};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const VALID: &str = r#"
lists:
  l: [a, "b*", 3]
macros:
  m: {any: [{field: verb, in: {list: l}}, {field: n, gte: 40}]}
rules:
  - id: R1
    title: t
    severity: high
    source: json
    tactics: [TA0004]
    condition:
      all:
        - macro: m
        - any_of: list
          where: {field: "@", glob: {list: l}, icase: true}
        - {field: s, cidr: [10.0.0.0/8]}
    exceptions: [{name: e, condition: {field: user.username, regex: "^sys"}}]
    output: "{verb} {list} {nested.a[0].b}"
    threshold: {count: 2, window: 1m, group_by: [verb]}
  - id: R2
    title: t
    severity: low
    source: json
    condition: {not: {field: x, contains: [q, r]}}
    rarity: {learning: 1s, key: [verb], value: [n]}
"#;

fn exercise(text: &str) {
    match RuleSet::<JsonSchema>::load(&[RuleSource::new("hostile.yaml", text)]) {
        Ok(set) => {
            let set = Arc::new(set);
            let config = EngineConfig {
                max_state_keys: 16,
                ..Default::default()
            };
            let mut engine = Engine::new(set.clone(), config);
            let mut out = Vec::new();
            for (i, doc) in [
                json!({"verb": "create", "user": {"username": "a"}, "list": [1, "two", "B1"],
                       "n": 42, "s": "10.0.0.1", "b": true}),
                json!({"nested": {"a": [{"b": [{"c": "d"}]}]}}),
                json!(null),
            ]
            .into_iter()
            .enumerate()
            {
                engine.evaluate(&JsonEvent::new(doc).at(i as i64), &mut out);
            }
            assert!(out.iter().all(|m| m.rule < set.rules().len()));
        }
        Err(e) => assert!(e.to_string().starts_with("hostile.yaml"), "{e}"),
    }
}

#[test]
fn the_valid_seed_loads_and_fires() {
    let set = RuleSet::<JsonSchema>::load(&[RuleSource::new("seed.yaml", VALID)]).expect("loads");
    assert_eq!(set.len(), 2);
    exercise(VALID);
}

#[test]
fn mutated_and_truncated_rule_files_never_crash() {
    let bytes = VALID.as_bytes();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"{}[]:,-'\"*?@$.\n #&!|>0123456789abcxyz\\";
    for cut in (0..bytes.len()).step_by(7) {
        if let Ok(text) = std::str::from_utf8(&bytes[..cut]) {
            exercise(text);
        }
    }
    for _ in 0..1500 {
        let mut m = bytes.to_vec();
        for _ in 0..(1 + rnd() % 4) {
            let pos = (rnd() as usize) % m.len();
            match rnd() % 3 {
                0 => m[pos] = alphabet[(rnd() as usize) % alphabet.len()],
                1 => {
                    m.remove(pos);
                }
                _ => m.insert(pos, alphabet[(rnd() as usize) % alphabet.len()]),
            }
        }
        if let Ok(text) = std::str::from_utf8(&m) {
            exercise(text);
        }
    }
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 5_000;
    let cond = format!(
        "{}{{field: a, eq: 1}}{}",
        "{not: ".repeat(depth),
        "}".repeat(depth)
    );
    let text = format!(
        "rules:\n  - {{id: D, title: t, severity: low, source: json, condition: {cond}}}\n"
    );
    let started = Instant::now();
    let err = RuleSet::<JsonSchema>::load(&[RuleSource::new("deep.yaml", &text)])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("deep.yaml:2"), "{err}");
    assert!(started.elapsed().as_secs() < 10);
    // Deep through macros (each shallow YAML): the condition depth limit.
    let mut text = String::from("macros:\n  m0: {field: a, eq: 1}\n");
    for i in 1..100 {
        text.push_str(&format!("  m{i}: {{not: {{macro: m{}}}}}\n", i - 1));
    }
    text.push_str(
        "rules:\n  - {id: D, title: t, severity: low, source: json, condition: {macro: m99}}\n",
    );
    let err = RuleSet::<JsonSchema>::load(&[RuleSource::new("deep.yaml", &text)])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("rule D") && err.contains("nested more than 64"),
        "{err}"
    );
}

#[test]
fn exponential_macro_expansion_is_bounded() {
    let mut text = String::from("macros:\n  m0: {field: a, eq: 1}\n");
    for i in 1..16 {
        let p = i - 1;
        text.push_str(&format!(
            "  m{i}: {{any: [{{macro: m{p}}}, {{macro: m{p}}}, {{macro: m{p}}}, {{macro: m{p}}}]}}\n"
        ));
    }
    text.push_str(
        "rules:\n  - {id: X, title: t, severity: low, source: json, condition: {macro: m15}}\n",
    );
    let started = Instant::now();
    let err = RuleSet::<JsonSchema>::load(&[RuleSource::new("bomb.yaml", &text)])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("more than 100000 nodes"), "{err}");
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let mut text = String::from("lists:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            std::iter::repeat_n(prev.as_str(), 10)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let started = Instant::now();
    let result = RuleSet::<JsonSchema>::load(&[RuleSource::new("laughs.yaml", &text)]);
    assert!(result.is_err());
    assert!(started.elapsed().as_secs() < 10);
}
