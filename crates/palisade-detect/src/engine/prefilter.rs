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
//!   operator must hold); negated operators (`ne`, `not_in`), `exists`, numbers and CIDRs yield
//!   nothing; a regex (or a glob) yields the literals one of which each of its matches contains,
//!   when there are such (see `rule::literals`);
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

use super::index::{FxHashMap, FxHasher};
use crate::event::Event;
use crate::rule::condition::{FieldRef, Matcher, Node, Op};
use crate::value::Val;
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::nfa::contiguous;
use aho_corasick::{Anchored, MatchKind, StartKind};
use std::collections::HashMap;
use std::hash::Hasher;

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

/// The requirement of `node` on events whose fields `known` (path, value) are known to hold
/// exactly those string values. `index_paths` are fields the rule index already narrows on: a
/// requirement on them is kept only when nothing better is found.
pub(crate) fn requirement<'a, F>(
    node: &'a Node<F>,
    index_paths: &[&str],
    known: &[(&str, &str)],
) -> Requirement<'a, F> {
    match node {
        Node::Test(t) => {
            let (Some(path), FieldRef::Event(field)) = (t.path.as_deref(), &t.field) else {
                return None;
            };
            let value = known.iter().find(|(p, _)| *p == path).map(|(_, v)| *v);
            best(
                t.ops.iter().map(|op| match op {
                    // A known string value decides a plain equality test: false is a requirement
                    // nothing meets, true requires nothing more.
                    Op::Any(Matcher::Equal { set, icase: false })
                        if value.is_some()
                            && set.nums.is_empty()
                            && set.bools.is_empty()
                            && !set.null =>
                    {
                        let v = value.unwrap_or_default();
                        (!set.strs.items().contains(&v)).then(Vec::new)
                    }
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
            items.iter().map(|n| requirement(n, index_paths, known)),
            index_paths,
        ),
        Node::Any(items) => {
            let mut union = Vec::new();
            for item in items {
                union.extend(requirement(item, index_paths, known)?);
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
            // An exact value is as selective as a literal twice its length (`read` is common,
            // `.bash_history` is not).
            req.iter()
                .map(|n| {
                    if n.exact {
                        (2 * n.literal.len()).min(16)
                    } else {
                        n.literal.len().min(16)
                    }
                })
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
        Matcher::Regex {
            literals: Some(literals),
            ..
        } => non_empty(literals.iter().map(String::as_str).collect(), false),
        Matcher::Regex { literals: None, .. } | Matcher::Compare { .. } | Matcher::Cidr(_) => None,
    }
}

/// A (field, literal) pair as the scan keys it: exact values as written, substrings ASCII-lowercased.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PairKey {
    path: Box<str>,
    exact: bool,
    literal: Box<str>,
}

impl PairKey {
    fn of<F>(need: &Need<'_, F>) -> PairKey {
        PairKey {
            path: need.path.into(),
            exact: need.exact,
            literal: if need.exact {
                need.literal.into()
            } else {
                need.literal.to_ascii_lowercase().into()
            },
        }
    }
}

/// An ASCII-case-insensitive multi-literal automaton stepped byte by byte: every state reports
/// all patterns ending at that byte (standard semantics), i.e. an overlapping search without
/// per-match restarts. A DFA (one table lookup per byte), or a contiguous NFA where the DFA
/// cannot be built (it is much smaller, and slower per byte).
#[derive(Debug, Clone)]
enum Scanner {
    Dfa(DFA, StateID),
    Nfa(contiguous::NFA, StateID),
}

impl Scanner {
    fn build(patterns: &[String]) -> Option<Scanner> {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            // No prefilter: start states are then not special, so the loop only branches on
            // matches.
            .prefilter(false)
            .build(patterns)
            .ok();
        if let Some(dfa) = dfa {
            let start = dfa.start_state(Anchored::No).ok()?;
            return Some(Scanner::Dfa(dfa, start));
        }
        let nfa = contiguous::NFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(patterns)
            .ok()?;
        let start = nfa.start_state(Anchored::No).ok()?;
        Some(Scanner::Nfa(nfa, start))
    }

    /// Calls `found` with the id of every pattern occurring in `bytes`.
    #[inline]
    fn scan(&self, bytes: &[u8], found: &mut impl FnMut(usize)) {
        match self {
            Scanner::Dfa(dfa, start) => step(dfa, *start, bytes, found),
            Scanner::Nfa(nfa, start) => step(nfa, *start, bytes, found),
        }
    }
}

#[inline]
fn step<A: Automaton>(aut: &A, start: StateID, bytes: &[u8], found: &mut impl FnMut(usize)) {
    let mut sid = start;
    for &byte in bytes {
        sid = aut.next_state(Anchored::No, sid, byte);
        if aut.is_special(sid) {
            if aut.is_dead(sid) {
                break;
            }
            if aut.is_match(sid) {
                for i in 0..aut.match_len(sid) {
                    found(aut.match_pattern(sid, i).as_usize());
                }
            }
        }
    }
}

/// One scanned field: its automaton and, per pattern, the rules it keeps.
#[derive(Debug, Clone)]
struct FieldScan<F> {
    field: F,
    /// `None` when the field has no substring literals, or the automaton could not be built (its
    /// rules are then not gated).
    automaton: Option<Scanner>,
    /// Per pattern: bitset of the rules whose requirement includes it on this field.
    pattern_rules: Vec<Vec<u64>>,
    /// Substring literals but no automaton (it could not be built): rules needing them are never
    /// skipped.
    broken: bool,
    /// Exact values (from `eq`/`in`) → bitset of the rules requiring the field to equal them.
    exact: FxHashMap<Box<str>, Vec<u64>>,
    /// A quick rejection before hashing a value: which lengths (bit `min(len, 63)`) and first
    /// bytes the exact values have.
    exact_filter: ExactFilter,
}

/// Lengths and first bytes of a set of strings: a string with a length or first byte none of
/// them has is not in the set (most values scanned, cheaper than hashing them).
#[derive(Debug, Clone, Default)]
struct ExactFilter {
    lengths: u64,
    first: [u64; 4],
}

impl ExactFilter {
    fn of<'a>(items: impl Iterator<Item = &'a str>) -> ExactFilter {
        let mut f = ExactFilter::default();
        for s in items {
            f.lengths |= 1 << s.len().min(63);
            if let Some(&b) = s.as_bytes().first() {
                f.first[usize::from(b >> 6)] |= 1 << (b & 63);
            }
        }
        f
    }

    #[inline]
    fn may_contain(&self, s: &str) -> bool {
        if self.lengths & (1 << s.len().min(63)) == 0 {
            return false;
        }
        match s.as_bytes().first() {
            Some(&b) => self.first[usize::from(b >> 6)] & (1 << (b & 63)) != 0,
            None => true,
        }
    }
}

/// The compiled prefilter of a rule set.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter<F> {
    fields: Vec<FieldScan<F>>,
    /// Field path → position in `fields`.
    paths: FxHashMap<Box<str>, u16>,
    /// Per rule: the pairs of its requirement on any event, which set its bit when they occur.
    rule_pairs: Vec<Option<Vec<PairKey>>>,
    words: usize,
}

impl<F: Clone> Prefilter<F> {
    /// Builds the prefilter from each rule's requirement on any event (in rule order).
    pub(crate) fn build<'a>(requirements: Vec<Requirement<'a, F>>) -> Prefilter<F>
    where
        F: 'a,
    {
        let n_rules = requirements.len();
        let rule_pairs: Vec<Option<Vec<PairKey>>> = requirements
            .iter()
            .map(|req| {
                req.as_ref().map(|needs| {
                    let mut keys: Vec<PairKey> = needs.iter().map(PairKey::of).collect();
                    keys.sort_unstable();
                    keys.dedup();
                    keys
                })
            })
            .collect();
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
        for (r, needs) in requirements.into_iter().enumerate() {
            for need in needs.iter().flatten() {
                if !by_path.contains_key(need.path) && order.len() > usize::from(u16::MAX) {
                    // Beyond the field numbering: rules needing this field stay ungated.
                    continue;
                }
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
            }
        }
        let mut fields = Vec::with_capacity(order.len());
        let mut paths = FxHashMap::default();
        for path in &order {
            let Some(b) = by_path.remove(path) else {
                continue;
            };
            let automaton = if b.patterns.is_empty() {
                None
            } else {
                Scanner::build(&b.patterns)
            };
            paths.insert(path.as_str().into(), fields.len() as u16);
            fields.push(FieldScan {
                broken: automaton.is_none() && !b.patterns.is_empty(),
                field: b.field,
                automaton,
                pattern_rules: b.rules,
                exact_filter: ExactFilter::of(b.exact.keys().map(|k| &**k)),
                exact: b.exact,
            });
        }
        Prefilter {
            fields,
            paths,
            rule_pairs,
            words,
        }
    }
}

impl<F> Prefilter<F> {
    /// Words of a rule bitset.
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// Plans the scan for one candidate list: `requirements` gives each candidate's requirement
    /// on the events of that list (narrower than on any event when index values decide some of
    /// its tests). Returns the fields to scan (ascending, no repeats) and the bitset of the
    /// candidates the scan decides. The narrower requirement is used only when each of its pairs
    /// is one of the rule's own (so an occurrence sets the rule's bit), else the rule's
    /// requirement on any event; a rule without one, or needing a field without an automaton,
    /// is always evaluated.
    pub(crate) fn plan<'a>(
        &self,
        requirements: impl Iterator<Item = (u32, Requirement<'a, F>)>,
    ) -> (Box<[u16]>, Box<[u64]>)
    where
        F: 'a,
    {
        let mut fields: Vec<u16> = Vec::new();
        let mut gated = vec![0u64; self.words];
        for (r, narrow) in requirements {
            let Some(Some(own)) = self.rule_pairs.get(r as usize) else {
                continue;
            };
            let narrow: Option<Vec<PairKey>> = narrow.and_then(|needs| {
                let keys: Vec<PairKey> = needs.iter().map(PairKey::of).collect();
                keys.iter()
                    .all(|k| own.binary_search(k).is_ok())
                    .then_some(keys)
            });
            let keys = narrow.as_deref().unwrap_or(own);
            let mut mine = Vec::with_capacity(keys.len());
            let mut usable = true;
            for key in keys {
                match self.paths.get(&key.path) {
                    Some(&f) if key.exact || !self.fields[usize::from(f)].broken => mine.push(f),
                    _ => usable = false,
                }
            }
            if !usable {
                continue;
            }
            fields.extend(mine);
            let r = r as usize;
            if let Some(w) = gated.get_mut(r / 64) {
                *w |= 1 << (r % 64);
            }
        }
        fields.sort_unstable();
        fields.dedup();
        (fields.into_boxed_slice(), gated.into_boxed_slice())
    }

    /// Sets in `present` the bit of every rule one of whose literals occurs in `fields` of
    /// `event`. `present` has [`Prefilter::words`] words and is cleared first. Values seen
    /// recently are looked up in `memo` instead of scanned again.
    #[inline]
    pub(crate) fn mark<E>(
        &self,
        event: &E,
        fields: &[u16],
        present: &mut [u64],
        memo: &mut ScanMemo,
    ) where
        E: Event,
        E::Schema: crate::event::EventSchema<Field = F>,
    {
        present.iter_mut().for_each(|w| *w = 0);
        for &f in fields {
            let Some(scan) = self.fields.get(usize::from(f)) else {
                continue;
            };
            let value = event.get(&scan.field);
            scan_strings(
                &value,
                &mut |s| match memo.slot(usize::from(f), s, self.words) {
                    Some((slot, true)) => or_into(present, &slot.bits),
                    Some((slot, false)) => {
                        scan.scan(s, &mut slot.bits);
                        or_into(present, &slot.bits);
                    }
                    None => scan.scan(s, present),
                },
            );
        }
    }
}

impl<F> FieldScan<F> {
    /// Sets in `out` the bits of the rules whose literals on this field occur in `s`.
    #[inline]
    fn scan(&self, s: &str, out: &mut [u64]) {
        if self.exact_filter.may_contain(s)
            && let Some(bits) = self.exact.get(s)
        {
            or_into(out, bits);
        }
        if let Some(scanner) = &self.automaton {
            scanner.scan(s.as_bytes(), &mut |pattern| {
                if let Some(bits) = self.pattern_rules.get(pattern) {
                    or_into(out, bits);
                }
            });
        }
    }
}

#[inline]
fn or_into(out: &mut [u64], bits: &[u64]) {
    for (o, b) in out.iter_mut().zip(bits) {
        *o |= b;
    }
}

/// Values longer than this are scanned every time: they are rarely repeated, and copying them
/// into the memo would cost more than it saves.
const MEMO_MAX_LEN: usize = 256;
/// Slots per field (a power of two): direct-mapped, a new value replaces the one in its slot.
const MEMO_SLOTS_LOG2: u32 = 9;

/// What the scan found in values seen recently, per field. Node and audit streams repeat the
/// same executables, command lines, paths, images and names over and over; looking a value up
/// (one hash and one comparison) costs a fraction of stepping an automaton through it byte by
/// byte, and a value not seen before costs one hash and one copy more than a plain scan. A
/// field whose values rarely repeat (fewer than one in [`MEMO_MIN_HIT_RATE`] found over a window)
/// is scanned directly for a while. Owned by an engine (one per thread); bounded: at most
/// [`MEMO_MAX_LEN`] bytes in each of 2^[`MEMO_SLOTS_LOG2`] slots per scanned field.
#[derive(Debug, Clone)]
pub(crate) struct ScanMemo {
    enabled: bool,
    fields: Vec<FieldMemo>,
    slots_log2: u32,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

/// Lookups per window over which a field's hit rate is judged.
const MEMO_WINDOW: u32 = 1024;
/// Below one hit in this many lookups, the field bypasses the memo.
const MEMO_MIN_HIT_RATE: u32 = 8;
/// Values scanned directly before a bypassed field tries the memo again.
const MEMO_BYPASS: u32 = 16 * MEMO_WINDOW;

#[derive(Debug, Clone, Default)]
struct FieldMemo {
    slots: Vec<MemoSlot>,
    window_lookups: u32,
    window_hits: u32,
    bypass: u32,
}

#[derive(Debug, Clone, Default)]
struct MemoSlot {
    valid: bool,
    hash: u64,
    text: String,
    bits: Vec<u64>,
}

impl ScanMemo {
    /// A memo; a disabled one memoises nothing (every value is scanned).
    pub(crate) fn new(enabled: bool) -> ScanMemo {
        ScanMemo {
            enabled,
            ..ScanMemo::with_slots(MEMO_SLOTS_LOG2)
        }
    }

    fn with_slots(slots_log2: u32) -> ScanMemo {
        ScanMemo {
            enabled: true,
            fields: Vec::new(),
            slots_log2: slots_log2.clamp(0, 16),
            hits: 0,
            misses: 0,
        }
    }

    /// The slot of `s` on `field` and whether it already holds the result for `s`; on a miss
    /// the slot is emptied and claimed for `s`, for the caller to fill. `None`: not memoised.
    #[inline]
    fn slot(&mut self, field: usize, s: &str, words: usize) -> Option<(&mut MemoSlot, bool)> {
        if !self.enabled || s.len() > MEMO_MAX_LEN {
            return None;
        }
        if self.fields.len() <= field {
            self.fields.resize_with(field + 1, FieldMemo::default);
        }
        let memo = &mut self.fields[field];
        if memo.bypass > 0 {
            memo.bypass -= 1;
            return None;
        }
        if memo.slots.is_empty() {
            memo.slots
                .resize_with(1 << self.slots_log2, MemoSlot::default);
        }
        let mut hasher = FxHasher::default();
        hasher.write(s.as_bytes());
        let hash = hasher.finish();
        // The multiply of the hash mixes into the high bits: index with those.
        let index = match self.slots_log2 {
            0 => 0,
            bits => (hash >> (64 - bits)) as usize,
        };
        let hit = {
            let slot = &memo.slots[index];
            slot.valid && slot.hash == hash && slot.text == s
        };
        memo.window_lookups += 1;
        if hit {
            memo.window_hits += 1;
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        if memo.window_lookups == MEMO_WINDOW {
            if memo.window_hits < MEMO_WINDOW / MEMO_MIN_HIT_RATE {
                memo.bypass = MEMO_BYPASS;
            }
            memo.window_lookups = 0;
            memo.window_hits = 0;
        }
        let slot = &mut memo.slots[index];
        if !hit {
            slot.valid = true;
            slot.hash = hash;
            slot.text.clear();
            slot.text.push_str(s);
            slot.bits.clear();
            slot.bits.resize(words, 0);
        }
        Some((slot, hit))
    }
}

/// Calls `f` on every string a matcher could test in `value`: the value itself, elements of
/// lists and JSON arrays (nested ones too: more text only keeps more rules).
fn scan_strings(value: &Val<'_>, f: &mut impl FnMut(&str)) {
    match value {
        Val::Str(s) => f(s),
        Val::List(items) => items.iter().for_each(|i| scan_strings(i, f)),
        Val::Strs(items) => items.iter().for_each(|s| f(s)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::json_event::{JsonEvent, JsonSchema};
    use crate::rule::{RuleSet, RuleSource};
    use serde_json::json;
    use std::sync::Arc;

    fn set(condition: serde_json::Value) -> RuleSet<JsonSchema> {
        let doc = json!({"rules": [{"id": "R", "title": "t", "severity": "low", "source": "json",
            "condition": condition}]});
        RuleSet::load(&[RuleSource::new("t.yaml", doc.to_string())]).expect("loads")
    }

    /// The requirement of a condition as sorted (path, literal, exact) triples.
    fn req(condition: serde_json::Value) -> Option<Vec<(String, String, bool)>> {
        let set = set(condition);
        let mut out: Vec<(String, String, bool)> =
            requirement(&set.compiled[0].condition, &[], &[])?
                .iter()
                .map(|n| (n.path.to_string(), n.literal.to_string(), n.exact))
                .collect();
        out.sort();
        Some(out)
    }

    fn t(path: &str, lit: &str, exact: bool) -> (String, String, bool) {
        (path.to_string(), lit.to_string(), exact)
    }

    #[test]
    fn requirements_only_where_the_condition_cannot_hold_without_them() {
        assert_eq!(
            req(json!({"field": "cmd", "contains": ["curl", "wget"]})),
            Some(vec![t("cmd", "curl", false), t("cmd", "wget", false)])
        );
        // Both operators must hold: either one's literal is a requirement.
        let both = req(json!({"field": "path", "prefix": "/etc/", "suffix": ".conf"}));
        assert!(
            both == Some(vec![t("path", "/etc/", false)])
                || both == Some(vec![t("path", ".conf", false)]),
            "{both:?}"
        );
        // `all`: any one item's requirement; `any`: the union, or nothing.
        assert_eq!(
            req(
                json!({"all": [{"field": "cmd", "regex": "x+"}, {"field": "user", "eq": "alice"}]})
            ),
            Some(vec![t("user", "alice", true)])
        );
        assert_eq!(
            req(
                json!({"any": [{"field": "cmd", "contains": "nc "}, {"field": "user", "in": ["bob"]}]})
            ),
            Some(vec![t("cmd", "nc ", false), t("user", "bob", true)])
        );
        assert_eq!(
            req(
                json!({"any": [{"field": "cmd", "contains": "nc "}, {"field": "cmd", "regex": "\\d+"}]})
            ),
            None
        );
        // A regex requires the literals one of which each of its matches contains.
        assert_eq!(
            req(
                json!({"any": [{"field": "cmd", "contains": "nc "}, {"field": "cmd", "regex": "x"}]})
            ),
            Some(vec![t("cmd", "nc ", false), t("cmd", "x", false)])
        );
        assert_eq!(
            req(json!({"field": "cmd", "regex": "\\b(curl|wget)\\s+-O", "icase": true})),
            Some(vec![t("cmd", "curl", false), t("cmd", "wget", false)])
        );
        // Negations, non-string equalities, case folding beyond ASCII, element tests: nothing.
        assert_eq!(req(json!({"not": {"field": "cmd", "contains": "x"}})), None);
        assert_eq!(req(json!({"field": "cmd", "ne": "x"})), None);
        assert_eq!(req(json!({"field": "cmd", "not_in": ["x", "y"]})), None);
        assert_eq!(
            req(json!({"field": "user", "eq": "Alice", "icase": true})),
            None
        );
        assert_eq!(req(json!({"field": "port", "eq": "443"})), None);
        assert_eq!(req(json!({"field": "flag", "eq": true})), None);
        // The string "true" only ever equals the string (a boolean value never matches it).
        assert_eq!(
            req(json!({"field": "flag", "eq": "true"})),
            Some(vec![t("flag", "true", true)])
        );
        assert_eq!(req(json!({"field": "x", "in": ["a", null]})), None);
        assert_eq!(
            req(json!({"field": "cmd", "contains": "straße", "icase": true})),
            None
        );
        assert_eq!(
            req(json!({"field": "cmd", "prefix": "É", "icase": true})),
            None
        );
        assert_eq!(req(json!({"field": "cmd", "exists": true})), None);
        assert_eq!(
            req(json!({"any_of": "items", "where": {"field": "@", "eq": "x"}})),
            None
        );
        // ASCII case-insensitive tests keep their (lowercased) literal: the scan ignores ASCII case.
        assert_eq!(
            req(json!({"field": "cmd", "contains": "XMRig", "icase": true})),
            Some(vec![t("cmd", "xmrig", false)])
        );
        // Literal globs are substring tests; other globs need the regex.
        assert_eq!(
            req(json!({"field": "img", "glob": ["*xmrig*", "miner*"]})),
            Some(vec![t("img", "miner", false), t("img", "xmrig", false)])
        );
        assert_eq!(
            req(json!({"field": "img", "glob": ["*xm?ig*"]})),
            Some(vec![t("img", "xm", false)])
        );
        assert_eq!(req(json!({"field": "img", "glob": ["*[a-z]*"]})), None);
        // An empty list matches nothing: a requirement nothing meets.
        assert_eq!(req(json!({"field": "ip", "in": []})), Some(vec![]));
    }

    #[test]
    fn known_index_values_decide_equalities() {
        let set = set(json!({"any": [
            {"all": [{"field": "kind", "eq": "exec"}, {"field": "cmd", "contains": "curl"}]},
            {"all": [{"field": "kind", "eq": "open"}, {"field": "path", "prefix": "/etc/"}]},
        ]}));
        let cond = &set.compiled[0].condition;
        let paths = |known: &[(&str, &str)]| -> Option<Vec<String>> {
            let mut v: Vec<String> = requirement(cond, &["kind"], known)?
                .iter()
                .map(|n| format!("{}={}", n.path, n.literal))
                .collect();
            v.sort();
            Some(v)
        };
        assert_eq!(
            paths(&[]),
            Some(vec!["cmd=curl".to_string(), "path=/etc/".to_string()])
        );
        assert_eq!(
            paths(&[("kind", "open")]),
            Some(vec!["path=/etc/".to_string()])
        );
        assert_eq!(paths(&[("kind", "dns")]), Some(vec![]));
    }

    #[test]
    fn skipped_rules_are_exactly_those_that_cannot_match() {
        let doc = json!({"rules": [
            {"id": "A", "title": "a", "severity": "low", "source": "json",
             "condition": {"field": "cmd", "contains": "XMRIG", "icase": true}},
            {"id": "B", "title": "b", "severity": "low", "source": "json",
             "condition": {"field": "args", "in": ["--donate-level"]}},
            {"id": "C", "title": "c", "severity": "low", "source": "json",
             "condition": {"all": [{"field": "path", "prefix": "/etc/"},
                                   {"not": {"field": "path", "suffix": ".bak"}}]}},
        ]});
        let set = Arc::new(
            RuleSet::<JsonSchema>::load(&[RuleSource::new("t.yaml", doc.to_string())])
                .expect("loads"),
        );
        let events = [
            json!({"cmd": "./XmRiG -o pool"}),
            json!({"cmd": "xmri g"}),
            json!({"args": ["x", "--donate-level"]}),
            json!({"args": "--donate-level"}),
            json!({"args": ["--donate-level=1"]}),
            json!({"path": "/etc/passwd"}),
            json!({"path": "/etc/passwd.bak"}),
            json!({"path": "/home/etc/"}),
            json!({"path": 17, "cmd": null}),
            json!({}),
        ];
        let fired = |prefilter: bool| {
            let config = EngineConfig {
                literal_prefilter: prefilter,
                ..Default::default()
            };
            let mut engine = Engine::new(Arc::clone(&set), config);
            let mut out = Vec::new();
            let per_event: Vec<Vec<usize>> = events
                .iter()
                .map(|e| {
                    engine.evaluate(&JsonEvent::new(e.clone()), &mut out);
                    out.drain(..).map(|m| m.rule).collect()
                })
                .collect();
            (per_event, engine.stats())
        };
        let (with, stats) = fired(true);
        let (without, plain) = fired(false);
        assert_eq!(with, without);
        assert_eq!(
            with,
            vec![
                vec![0],
                vec![],
                vec![1],
                vec![1],
                vec![],
                vec![2],
                vec![],
                vec![],
                vec![],
                vec![]
            ]
        );
        assert_eq!(plain.prefiltered, 0);
        // Every event where a rule's literal is absent skipped it: 30 candidates, 6 kept (A on
        // event 0; B, an exact value, on 2 and 3; C on 5, 6 and 7, whose `/etc/` is no prefix).
        assert_eq!((stats.evaluations, stats.prefiltered), (30, 24));
    }

    /// The memo returns what a scan returns: values repeated, replaced in their slot (one slot:
    /// every new value evicts the last), empty, longer than the memo keeps, and in lists.
    #[test]
    fn memo_gives_what_the_scan_gives() {
        let doc = json!({"rules": [
            {"id": "A", "title": "a", "severity": "low", "source": "json",
             "condition": {"field": "cmd", "contains": ["xmrig", "stratum+tcp"]}},
            {"id": "B", "title": "b", "severity": "low", "source": "json",
             "condition": {"field": "cmd", "in": ["", "sh"]}},
            {"id": "C", "title": "c", "severity": "low", "source": "json",
             "condition": {"field": "cmd", "suffix": "minerd"}},
        ]});
        let set: RuleSet<JsonSchema> =
            RuleSet::load(&[RuleSource::new("t.yaml", doc.to_string())]).expect("loads");
        let prefilter = &set.prefilter;
        let fields: Vec<u16> = (0..prefilter.fields.len() as u16).collect();
        let long = format!("{} xmrig", "a".repeat(MEMO_MAX_LEN));
        let values = [
            json!("xmrig -o stratum+tcp://pool"),
            json!("sh"),
            json!("xmrig -o stratum+tcp://pool"),
            json!(""),
            json!("./minerd"),
            json!(""),
            json!(long),
            json!(["sh", "ls", "minerd"]),
            json!("sh"),
            json!("sh"),
            json!(long),
            json!("ls"),
        ];
        for slots_log2 in [0, 1, MEMO_SLOTS_LOG2] {
            let mut memo = ScanMemo::with_slots(slots_log2);
            for round in 0..3 {
                for (i, v) in values.iter().enumerate() {
                    let event = JsonEvent::new(json!({"cmd": v}));
                    let mut remembered = vec![0; prefilter.words()];
                    let mut scanned = vec![0; prefilter.words()];
                    prefilter.mark(&event, &fields, &mut remembered, &mut memo);
                    prefilter.mark(&event, &fields, &mut scanned, &mut ScanMemo::new(false));
                    assert_eq!(
                        remembered, scanned,
                        "slots 2^{slots_log2}, round {round}, value {i}"
                    );
                }
            }
            assert!(
                memo.hits > 0 && memo.misses > 0,
                "{} {}",
                memo.hits,
                memo.misses
            );
        }
    }

    /// A field whose values never repeat stops using the memo after a window (no copies), and
    /// tries again later; answers stay those of a scan throughout.
    #[test]
    fn memo_steps_aside_for_values_that_never_repeat() {
        let set = set(json!({"field": "cmd", "contains": ["xmrig"]}));
        let prefilter = &set.prefilter;
        let fields: Vec<u16> = (0..prefilter.fields.len() as u16).collect();
        let mut memo = ScanMemo::new(true);
        let total = MEMO_WINDOW + MEMO_BYPASS + 10;
        for i in 0..total {
            let value = if i % 3 == 0 {
                format!("xmrig {i}")
            } else {
                format!("ls {i}")
            };
            let event = JsonEvent::new(json!({"cmd": value}));
            let (mut remembered, mut scanned) = (vec![0; 1], vec![0; 1]);
            prefilter.mark(&event, &fields, &mut remembered, &mut memo);
            prefilter.mark(&event, &fields, &mut scanned, &mut ScanMemo::new(false));
            assert_eq!(remembered, scanned, "value {i}");
            if i == MEMO_WINDOW {
                assert_eq!((memo.hits, memo.misses), (0, u64::from(MEMO_WINDOW)));
            }
        }
        // One window of copies, the bypass, then the memo is tried again.
        assert_eq!(memo.misses, u64::from(MEMO_WINDOW) + 10);
    }
}
