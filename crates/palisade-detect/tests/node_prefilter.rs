//! The literal prefilter changes nothing but speed: the same events through one engine with the
//! prefilter and one without give the same matches, event by event — over the node benchmark's
//! generated mix, every node fixture and the benign corpus, and every audit fixture (built-in
//! audit rules plus the fixture overrides). The prefilter must also actually skip work on the
//! mix, or this would compare two identical paths.

#[allow(dead_code)]
#[path = "../benches/node_engine.rs"]
mod bench;

use palisade_detect::audit::{AuditSchema, InputFormat, ParseStats, parse_document};
use palisade_detect::builtin::{audit_rule_sources, node_rules};
use palisade_detect::engine::{Engine, EngineConfig, Match};
use palisade_detect::event::{Event, EventSchema};
use palisade_detect::node::{NodeEvent, NodeSchema};
use palisade_detect::rule::{RuleSet, RuleSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Two engines over the same rules, with and without the prefilter.
struct Pair<S: EventSchema> {
    with: Engine<S>,
    without: Engine<S>,
    a: Vec<Match>,
    b: Vec<Match>,
    events: usize,
    matches: usize,
}

impl<S: EventSchema> Pair<S> {
    fn new(rules: &Arc<RuleSet<S>>) -> Self {
        let off = EngineConfig {
            literal_prefilter: false,
            ..Default::default()
        };
        Pair {
            with: Engine::new(Arc::clone(rules), EngineConfig::default()),
            without: Engine::new(Arc::clone(rules), off),
            a: Vec::new(),
            b: Vec::new(),
            events: 0,
            matches: 0,
        }
    }

    fn judge<E: Event<Schema = S>>(&mut self, event: &E, what: &str) {
        self.with.evaluate(event, &mut self.a);
        self.without.evaluate(event, &mut self.b);
        assert_eq!(
            self.a,
            self.b,
            "{what}: event {} ({}) judged differently with the prefilter",
            self.events,
            event.event_id()
        );
        self.events += 1;
        self.matches += self.a.len();
        self.a.clear();
        self.b.clear();
    }

    /// The counters agree too, apart from the prefilter's own.
    fn check_stats(&self) {
        let (w, o) = (self.with.stats(), self.without.stats());
        assert_eq!(o.prefiltered, 0);
        assert_eq!(
            (w.events, w.evaluations, w.matches, w.suppressed),
            (o.events, o.evaluations, o.matches, o.suppressed)
        );
    }
}

#[test]
fn node_bench_mix_matches_are_identical_with_and_without_the_prefilter() {
    let rules = Arc::new(node_rules().expect("built-in node rules"));
    let mut pair = Pair::new(&rules);
    // Half the events carry a value not seen before: the prefilter's memo of recent values is
    // both found and missed, and replaced in its slots.
    for e in bench::events_with_unique(200_000, 50) {
        pair.judge(&e, "bench mix");
    }
    pair.check_stats();
    assert!(pair.matches > 0, "the mix raises matches");
    let stats = pair.with.stats();
    assert!(
        stats.prefiltered * 2 > stats.evaluations,
        "the prefilter skips most candidates on the mix: {} of {}",
        stats.prefiltered,
        stats.evaluations
    );
    assert!(
        stats.prefilter_memo_hits > 100_000 && stats.prefilter_memo_misses > 50_000,
        "memo found {} values and missed {}",
        stats.prefilter_memo_hits,
        stats.prefilter_memo_misses
    );
}

fn node_fixture_events() -> Vec<(String, NodeEvent)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node");
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("rules"))
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable"))
                .expect("fixture json");
        for kind in ["alert", "quiet"] {
            for case in doc[kind].as_array().into_iter().flatten() {
                let name = format!("{} {kind} {}", path.display(), case["name"]);
                let events = case["event"]
                    .as_object()
                    .map(|_| vec![case["event"].clone()])
                    .or_else(|| case["events"].as_array().cloned())
                    .unwrap_or_default();
                for e in events {
                    out.push((
                        name.clone(),
                        serde_json::from_value(e).expect("fixture event"),
                    ));
                }
            }
        }
    }
    let benign: Vec<NodeEvent> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("benign.json")).expect("benign corpus"),
    )
    .expect("benign parses");
    out.extend(benign.into_iter().map(|e| ("benign".to_string(), e)));
    out
}

#[test]
fn node_fixture_matches_are_identical_with_and_without_the_prefilter() {
    let rules: Arc<RuleSet<NodeSchema>> = Arc::new(node_rules().expect("built-in node rules"));
    let events = node_fixture_events();
    assert!(events.len() > 200, "{} fixture events", events.len());
    // One engine pair over all events (stateful rules see the whole sequence) …
    let mut pair = Pair::new(&rules);
    for (name, e) in &events {
        pair.judge(e, name);
    }
    pair.check_stats();
    assert!(
        pair.matches > 100,
        "fixtures raise matches: {}",
        pair.matches
    );
    // … and each event alone through a fresh pair (no memory from earlier events).
    for (name, e) in &events {
        let mut pair = Pair::new(&rules);
        pair.judge(e, name);
    }
}

#[test]
fn audit_fixture_matches_are_identical_with_and_without_the_prefilter() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    let yaml = |d: &Path| {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d)
            .expect("fixture dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        files
    };
    let mut sources = audit_rule_sources();
    for path in yaml(&dir.join("overrides")) {
        sources.push(RuleSource::from_file(&path).expect("override readable"));
    }
    let rules: Arc<RuleSet<AuditSchema>> = Arc::new(RuleSet::load(&sources).expect("rules"));
    let mut pair = Pair::new(&rules);
    let mut stats = ParseStats::default();
    for path in yaml(&dir) {
        let doc: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("readable"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for kind in ["alert", "quiet"] {
            for case in doc[kind].as_array().into_iter().flatten() {
                let events = case["event"]
                    .as_object()
                    .map(|_| vec![case["event"].clone()])
                    .or_else(|| case["events"].as_array().cloned())
                    .unwrap_or_default();
                let name = format!("{} {kind} {}", path.display(), case["name"]);
                for e in events {
                    let bytes = serde_json::to_vec(&e).expect("serialisable");
                    let _ = parse_document(&bytes, InputFormat::Auto, &mut stats, &mut |ev| {
                        pair.judge(ev, &name);
                    });
                }
            }
        }
    }
    pair.check_stats();
    assert!(pair.events > 100, "{} audit fixture events", pair.events);
    assert!(
        pair.matches > 50,
        "audit fixtures raise matches: {}",
        pair.matches
    );
}

/// Per-rule counters are kept per cached candidate list and per evaluated condition, and
/// derived on demand: an engine whose candidate cache is cleared all the time (two tuples at
/// most) reports exactly the counters and matches of one that never clears it.
#[test]
fn counters_survive_candidate_cache_clears() {
    let rules = Arc::new(node_rules().expect("built-in node rules"));
    let tiny = EngineConfig {
        max_cached_tuples: 2,
        ..Default::default()
    };
    let mut small = Engine::new(Arc::clone(&rules), tiny);
    let mut large = Engine::new(Arc::clone(&rules), EngineConfig::default());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, e) in bench::events(20_000).iter().enumerate() {
        small.evaluate(e, &mut a);
        large.evaluate(e, &mut b);
        assert_eq!(a, b, "event {i}");
        a.clear();
        b.clear();
        if i % 5_000 == 0 {
            assert_eq!(small.stats(), large.stats(), "after event {i}");
        }
    }
    let stats = large.stats();
    assert_eq!(small.stats(), stats);
    assert_eq!(stats.events, 20_000);
    assert!(stats.evaluations > stats.prefiltered && stats.prefiltered > 0);
    assert_eq!(
        stats.evaluations,
        stats.rules.iter().map(|r| r.evaluations).sum::<u64>()
    );
}
