//! The literal prefilter: one scan per field and event instead of one per rule.
//!
//! Many conditions cannot hold unless a field contains one of a few literals: `contains:`,
//! `prefix:`, `suffix:`, plain-string `eq`/`in` and literal globs all need their text to occur in
//! the field. At load time each rule's condition yields such a requirement when it has one — a
//! set of (field, literal) pairs of which at least one must occur for the condition to hold. At
//! run time the engine scans each field that a candidate rule's requirement names once, with one
//! ASCII-case-insensitive Aho-Corasick automaton over the literals of all rules on that field,
//! and skips the candidates none of whose literals occurred. Rules without a requirement are
//! always evaluated.
//!
//! A requirement is derived only where the condition cannot hold without it:
//! - a field test requires the literals of any one of its positive string operators (every
//!   operator must hold); negated operators (`ne`, `not_in`), `exists`, numbers, CIDRs and
//!   regexes yield nothing;
//! - `eq`/`in` only when every operand is a plain string (not one that also compares as a number
//!   or boolean, no `null`) and the test is case-sensitive (Unicode lowercasing can turn
//!   non-ASCII characters into ASCII ones, which an ASCII-case-insensitive scan would miss);
//! - `prefix`/`suffix`/`contains` when case-sensitive or ASCII-case-insensitive (the scan is
//!   ASCII-case-insensitive, so it finds at least what those tests find), not when the patterns
//!   need Unicode folding;
//! - `all` requires what any one of its items requires; `any` requires the union of what each
//!   branch requires, and nothing when one branch requires nothing; `not`, `any_of`/`all_of` and
//!   a bare rule require nothing;
//! - exceptions only suppress matches, and stateful memory is only consulted once the condition
//!   holds, so neither changes which rules can be skipped.
//!
//! The scan finds a superset of what the operators test (a prefix anywhere in the value, a
//! literal across any element of a list), so it may keep a rule that then does not match, never
//! drop one that would.

use super::index::FxHashMap;
use crate::event::Event;
use crate::rule::condition::{FieldRef, Matcher, Node, Op};
use crate::value::Val;
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use std::collections::HashMap;

/// One (field, literal) pair of a requirement.
#[derive(Debug, Clone)]
pub(crate) struct Need<'a, F> {
    pub path: &'a str,
    pub field: &'a F,
    pub literal: &'a str,
    /// The value must equal the literal (an `eq`/`in` test), not merely contain it.
    pub exact: bool,
}

/// What a condition requires: at least one of the pairs occurs. `None`: nothing derivable.
/// An empty list: the condition can never hold.
pub(crate) type Requirement<'a, F> = Option<Vec<Need<'a, F>>>;

/// The requirement of `node`. `index_paths` are fields the rule index already narrows on: a
/// requirement on them is kept only when nothing better is found.
pub(crate) fn requirement<'a, F>(node: &'a Node<F>, index_paths: &[&str]) -> Requirement<'a, F> {
    match node {
        Node::Test(t) => {
            let (Some(path), FieldRef::Event(field)) = (t.path.as_deref(), &t.field) else {
                return None;
            };
            best(
                t.ops.iter().map(|op| match op {
                    Op::Any(m) => matcher_literals(m).map(|lits| {
                        lits.into_iter()
                            .map(|(literal, exact)| Need {
                                path,
                                field,
                                literal,
                                exact,
                            })
                            .collect()
                    }),
                    Op::None(_) | Op::Exists(_) => None,
                }),
                index_paths,
            )
        }
        Node::All(items) => best(
            items.iter().map(|n| requirement(n, index_paths)),
            index_paths,
        ),
        Node::Any(items) => {
            let mut union = Vec::new();
            for item in items {
                union.extend(requirement(item, index_paths)?);
            }
            Some(union)
        }
        Node::Not(_) | Node::AnyOf(..) | Node::AllOf(..) | Node::True => None,
    }
}

/// The most selective of several alternative requirements (each alone is required): off the
/// index fields first, then the longest shortest literal.
fn best<'a, F>(
    alternatives: impl Iterator<Item = Requirement<'a, F>>,
    index_paths: &[&str],
) -> Requirement<'a, F> {
    let score = |req: &[Need<'a, F>]| {
        (
            req.iter().all(|n| !index_paths.contains(&n.path)),
            // An exact value is as selective as a long literal.
            req.iter()
                .map(|n| if n.exact { 16 } else { n.literal.len().min(16) })
                .min()
                .unwrap_or(usize::MAX),
            std::cmp::Reverse(req.len()),
        )
    };
    alternatives.flatten().max_by_key(|req| score(req))
}

/// The literals one of which a string must contain (`false`) or equal (`true`) for `m` to match
/// it; `None` when `m` can match without any (numbers, CIDRs, regexes, Unicode-folded tests, an
/// empty pattern).
fn matcher_literals(m: &Matcher) -> Option<Vec<(&str, bool)>> {
    use crate::rule::condition::Fold;
    fn non_empty(items: Vec<&str>, exact: bool) -> Option<Vec<(&str, bool)>> {
        items
            .iter()
            .all(|s| !s.is_empty())
            .then(|| items.into_iter().map(|s| (s, exact)).collect())
    }
    match m {
        Matcher::Equal { set, icase: false }
            if set.nums.is_empty() && set.bools.is_empty() && !set.null =>
        {
            non_empty(set.strs.items(), true)
        }
        Matcher::Equal { .. } => None,
        Matcher::Prefix { items, icase } | Matcher::Suffix { items, icase } => {
            if *icase == Fold::Unicode {
                None
            } else {
                non_empty(items.iter().map(String::as_str).collect(), false)
            }
        }
        Matcher::Contains {
            fold: false,
            patterns,
            ..
        } => non_empty(patterns.iter().map(String::as_str).collect(), false),
        Matcher::Contains { fold: true, .. } => None,
        Matcher::Union(parts) => {
            let mut out = Vec::new();
            for part in parts {
                out.extend(matcher_literals(part)?);
            }
            Some(out)
        }
        Matcher::Regex(_) | Matcher::Compare { .. } | Matcher::Cidr(_) => None,
    }
}

/// One scanned field: its automaton and, per pattern, the rules it keeps.
#[derive(Debug, Clone)]
struct FieldScan<F> {
    field: F,
    /// `None` when the field has no substring literals, or the automaton could not be built (its
    /// rules are then not gated).
    automaton: Option<(DFA, StateID)>,
    /// Per pattern: bitset of the rules whose requirement includes it on this field.
    pattern_rules: Vec<Vec<u64>>,
    /// Exact values (from `eq`/`in`) → bitset of the rules requiring the field to equal them.
    exact: FxHashMap<Box<str>, Vec<u64>>,
}

/// The compiled prefilter of a rule set.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter<F> {
    fields: Vec<FieldScan<F>>,
    /// Per rule: `Some(fields to scan)` when the rule has a requirement.
    rules: Vec<Option<Box<[u16]>>>,
    words: usize,
}

impl<F: Clone> Prefilter<F> {
    /// Builds the prefilter from each rule's requirement (in rule order).
    pub(crate) fn build<'a>(requirements: Vec<Requirement<'a, F>>) -> Prefilter<F>
    where
        F: 'a,
    {
        let n_rules = requirements.len();
        let words = n_rules.div_ceil(64).max(1);
        // path -> (field, literal -> pattern position, per pattern bitset)
        struct Build<F> {
            field: F,
            patterns: Vec<String>,
            positions: HashMap<String, usize>,
            rules: Vec<Vec<u64>>,
            exact: FxHashMap<Box<str>, Vec<u64>>,
        }
        let mut order: Vec<String> = Vec::new();
        let mut by_path: HashMap<String, Build<F>> = HashMap::new();
        let mut rules = Vec::with_capacity(n_rules);
        for (r, req) in requirements.into_iter().enumerate() {
            let Some(needs) = req else {
                rules.push(None);
                continue;
            };
            let mut fields: Vec<u16> = Vec::new();
            let mut usable = true;
            for need in &needs {
                let b = by_path.entry(need.path.to_string()).or_insert_with(|| {
                    order.push(need.path.to_string());
                    Build {
                        field: need.field.clone(),
                        patterns: Vec::new(),
                        positions: HashMap::new(),
                        rules: Vec::new(),
                        exact: FxHashMap::default(),
                    }
                });
                if need.exact {
                    b.exact
                        .entry(need.literal.into())
                        .or_insert_with(|| vec![0; words])[r / 64] |= 1 << (r % 64);
                } else {
                    // The scan is ASCII-case-insensitive: fold the key so `Foo` and `foo` share a
                    // pattern (both are found either way).
                    let key = need.literal.to_ascii_lowercase();
                    let pos = match b.positions.get(&key) {
                        Some(&p) => p,
                        None => {
                            b.patterns.push(key.clone());
                            b.rules.push(vec![0; words]);
                            b.positions.insert(key, b.patterns.len() - 1);
                            b.patterns.len() - 1
                        }
                    };
                    b.rules[pos][r / 64] |= 1 << (r % 64);
                }
                match order.iter().position(|p| p == need.path) {
                    Some(f) if f <= usize::from(u16::MAX) => {
                        let f = f as u16;
                        if !fields.contains(&f) {
                            fields.push(f);
                        }
                    }
                    _ => usable = false,
                }
            }
            rules.push(usable.then(|| fields.into_boxed_slice()));
        }
        let mut fields = Vec::with_capacity(order.len());
        for path in &order {
            let Some(b) = by_path.remove(path) else {
                continue;
            };
            let automaton = if b.patterns.is_empty() {
                None
            } else {
                // Stepped byte by byte in `mark`: every state reports all patterns ending at
                // that byte (standard semantics), i.e. an overlapping search without per-match
                // restarts.
                let built = DFA::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .start_kind(StartKind::Unanchored)
                    .build(&b.patterns)
                    .ok()
                    .and_then(|dfa| {
                        let start = dfa.start_state(Anchored::No).ok()?;
                        Some((dfa, start))
                    });
                if built.is_none() {
                    // No automaton for this field: its rules are always evaluated.
                    let f = fields.len() as u16;
                    for rule in rules.iter_mut() {
                        if rule.as_ref().is_some_and(|fs| fs.contains(&f)) {
                            *rule = None;
                        }
                    }
                }
                built
            };
            fields.push(FieldScan {
                field: b.field,
                automaton,
                pattern_rules: b.rules,
                exact: b.exact,
            });
        }
        Prefilter {
            fields,
            rules,
            words,
        }
    }
}

impl<F> Prefilter<F> {
    pub(crate) fn debug_fields(&self, f: &[u16]) -> Vec<String>
    where
        F: std::fmt::Debug,
    {
        f.iter()
            .map(|&i| {
                format!(
                    "{:?}/{}/{}",
                    self.fields[i as usize].field,
                    self.fields[i as usize].exact.len(),
                    self.fields[i as usize].pattern_rules.len()
                )
            })
            .collect()
    }
    /// Words of a rule bitset.
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// Whether rule `r` is gated by a requirement.
    #[inline]
    pub(crate) fn gated(&self, r: usize) -> bool {
        matches!(self.rules.get(r), Some(Some(_)))
    }

    /// Number of rules with a requirement.
    pub(crate) fn gated_rules(&self) -> usize {
        self.rules.iter().filter(|r| r.is_some()).count()
    }

    /// The fields to scan for a candidate list (ascending, without repeats).
    pub(crate) fn fields_for(&self, candidates: &[u32]) -> Box<[u16]> {
        let mut out: Vec<u16> = Vec::new();
        for &r in candidates {
            if let Some(Some(fields)) = self.rules.get(r as usize) {
                out.extend(fields.iter().copied());
            }
        }
        out.sort_unstable();
        out.dedup();
        out.into_boxed_slice()
    }

    /// Sets in `present` the bit of every rule one of whose literals occurs in `fields` of
    /// `event`. `present` has [`Prefilter::words`] words and is cleared first.
    #[inline]
    pub(crate) fn mark<E>(&self, event: &E, fields: &[u16], present: &mut [u64])
    where
        E: Event,
        E::Schema: crate::event::EventSchema<Field = F>,
    {
        present.iter_mut().for_each(|w| *w = 0);
        for &f in fields {
            let Some(scan) = self.fields.get(usize::from(f)) else {
                continue;
            };
            let value = event.get(&scan.field);
            let mut or = |bits: &[u64]| {
                for (p, b) in present.iter_mut().zip(bits) {
                    *p |= b;
                }
            };
            scan_strings(&value, &mut |s| {
                if !scan.exact.is_empty()
                    && let Some(bits) = scan.exact.get(s)
                {
                    or(bits);
                }
                if let Some((dfa, start)) = &scan.automaton {
                    let mut sid = *start;
                    for &byte in s.as_bytes() {
                        sid = dfa.next_state(Anchored::No, sid, byte);
                        if dfa.is_special(sid) {
                            if dfa.is_dead(sid) {
                                break;
                            }
                            if dfa.is_match(sid) {
                                for i in 0..dfa.match_len(sid) {
                                    let pattern = dfa.match_pattern(sid, i).as_usize();
                                    if let Some(bits) = scan.pattern_rules.get(pattern) {
                                        or(bits);
                                    }
                                }
                            }
                        }
                    }
                }
            });
        }
    }
}

/// Calls `f` on every string a matcher could test in `value`: the value itself, elements of
/// lists and JSON arrays (nested ones too: more text only keeps more rules).
fn scan_strings(value: &Val<'_>, f: &mut impl FnMut(&str)) {
    match value {
        Val::Str(s) => f(s),
        Val::List(items) => items.iter().for_each(|i| scan_strings(i, f)),
        Val::Json(v) => scan_json(v, f),
        Val::Missing | Val::Null | Val::Bool(_) | Val::Int(_) | Val::Float(_) => {}
    }
}

fn scan_json(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|i| scan_json(i, f)),
        // String matchers never test objects (their values are not elements), nor numbers.
        _ => {}
    }
}
