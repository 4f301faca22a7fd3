//! Memory of stateful rules (thresholds and rarity), bounded: each rule keeps at most its
//! `max_keys` keys and all rules together at most the engine's global cap, evicting the least
//! recently used key (counted) when full. Time is event time, so replaying a log gives the same
//! alerts as watching it live.

use crate::rule::StatefulSpec;
use std::collections::{HashMap, VecDeque};

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct LruNode<V> {
    key: Box<str>,
    value: V,
    prev: usize,
    next: usize,
}

/// A map that remembers use order: `get_mut` refreshes, `pop_lru` drops the stalest key.
#[derive(Debug)]
pub(crate) struct Lru<V> {
    map: HashMap<Box<str>, usize>,
    nodes: Vec<Option<LruNode<V>>>,
    free: Vec<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }
}

impl<V> Lru<V> {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = match &self.nodes[i] {
            Some(n) => (n.prev, n.next),
            None => return,
        };
        match prev {
            NIL => self.head = next,
            p => {
                if let Some(n) = self.nodes[p].as_mut() {
                    n.next = next;
                }
            }
        }
        match next {
            NIL => self.tail = prev,
            n => {
                if let Some(node) = self.nodes[n].as_mut() {
                    node.prev = prev;
                }
            }
        }
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        if let Some(n) = self.nodes[i].as_mut() {
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            if let Some(n) = self.nodes[old].as_mut() {
                n.prev = i;
            }
        } else {
            self.tail = i;
        }
        self.head = i;
    }

    /// The value of `key`, marked as most recently used.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = *self.map.get(key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        self.nodes[i].as_mut().map(|n| &mut n.value)
    }

    /// Inserts a key that is not present, as most recently used.
    pub(crate) fn insert(&mut self, key: &str, value: V) -> Option<&mut V> {
        let node = LruNode {
            key: key.into(),
            value,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.map.insert(key.into(), i);
        self.push_front(i);
        self.nodes[i].as_mut().map(|n| &mut n.value)
    }

    /// Drops the least recently used key; false when empty.
    pub(crate) fn pop_lru(&mut self) -> bool {
        let i = self.tail;
        if i == NIL {
            return false;
        }
        self.unlink(i);
        if let Some(node) = self.nodes[i].take() {
            self.map.remove(&node.key);
        }
        self.free.push(i);
        true
    }

    /// Entries from least to most recently used.
    pub(crate) fn iter_lru(&self) -> impl Iterator<Item = (&str, &V)> {
        let mut i = self.tail;
        std::iter::from_fn(move || {
            if i == NIL {
                return None;
            }
            let node = self.nodes[i].as_ref()?;
            i = node.prev;
            Some((&*node.key, &node.value))
        })
    }
}

/// One group of a threshold rule.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Sliding mode: times of counted events inside the window, ascending.
    times: VecDeque<i64>,
    /// After firing, events before this time are not counted (the rule re-arms after a window).
    suppressed_until: i64,
    /// Fixed mode: the current bucket's start, count and whether it fired.
    bucket_start: i64,
    bucket_count: u64,
    bucket_fired: bool,
}

/// One key of a rarity rule: when learning started and the values seen.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seen {
    pub first_seen: i64,
    /// Value → last use tick (for evicting the stalest value when full).
    pub values: HashMap<String, u64>,
}

#[derive(Debug)]
enum RuleState {
    Threshold(Lru<Window>),
    Rarity(Lru<Seen>),
}

impl RuleState {
    fn len(&self) -> usize {
        match self {
            RuleState::Threshold(l) => l.len(),
            RuleState::Rarity(l) => l.len(),
        }
    }

    fn pop_lru(&mut self) -> bool {
        match self {
            RuleState::Threshold(l) => l.pop_lru(),
            RuleState::Rarity(l) => l.pop_lru(),
        }
    }
}

/// What a stateful rule decided about one event that met its condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Not (yet, or no longer) alert-worthy.
    Quiet,
    /// The threshold was reached: `count` events within the window.
    ThresholdReached { count: u64 },
    /// A value never seen for this key after learning.
    Rare,
}

/// All stateful memory of one engine.
#[derive(Debug)]
pub(crate) struct StateStore {
    rules: Vec<Option<RuleState>>,
    total: usize,
    max_total: usize,
    tick: u64,
    pub evictions: u64,
    pub value_evictions: u64,
}

impl StateStore {
    pub(crate) fn new(n_rules: usize, max_total: usize) -> StateStore {
        StateStore {
            rules: (0..n_rules).map(|_| None).collect(),
            total: 0,
            max_total: max_total.max(1),
            tick: 0,
            evictions: 0,
            value_evictions: 0,
        }
    }

    pub(crate) fn keys(&self) -> usize {
        self.total
    }

    /// Frees room for one new key of `rule`: its own cap first, then the global cap (taken from
    /// the rule holding the most keys, so one noisy rule cannot starve the others).
    fn make_room(&mut self, rule: usize, per_rule_cap: usize) {
        if let Some(Some(state)) = self.rules.get_mut(rule)
            && state.len() >= per_rule_cap
            && state.pop_lru()
        {
            self.total -= 1;
            self.evictions += 1;
        }
        while self.total >= self.max_total {
            let Some(biggest) = self
                .rules
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.len())))
                .max_by_key(|(_, n)| *n)
                .map(|(i, _)| i)
            else {
                break;
            };
            let popped = self.rules[biggest].as_mut().is_some_and(|s| s.pop_lru());
            if !popped {
                break;
            }
            self.total -= 1;
            self.evictions += 1;
        }
    }

    /// Feeds one event (that met the rule's condition) with group `key` and, for rarity, `value`.
    pub(crate) fn observe<F>(
        &mut self,
        rule: usize,
        spec: &StatefulSpec<F>,
        time: i64,
        key: &str,
        value: &str,
    ) -> Verdict {
        self.tick += 1;
        match spec {
            StatefulSpec::Threshold {
                count,
                window_nanos,
                fixed,
                max_keys,
                ..
            } => {
                let known = matches!(&self.rules[rule], Some(RuleState::Threshold(l)) if l.map.contains_key(key));
                if !known {
                    self.make_room(rule, *max_keys);
                    self.total += 1;
                }
                let lru = match &mut self.rules[rule] {
                    Some(RuleState::Threshold(l)) => l,
                    slot => {
                        *slot = Some(RuleState::Threshold(Lru::default()));
                        match slot {
                            Some(RuleState::Threshold(l)) => l,
                            _ => return Verdict::Quiet,
                        }
                    }
                };
                let window = if known {
                    lru.get_mut(key)
                } else {
                    lru.insert(key, Window::default())
                };
                let Some(w) = window else {
                    return Verdict::Quiet;
                };
                threshold_step(w, time, *count, *window_nanos, *fixed)
            }
            StatefulSpec::Rarity {
                learning_nanos,
                max_keys,
                max_values_per_key,
                ..
            } => {
                let known = matches!(&self.rules[rule], Some(RuleState::Rarity(l)) if l.map.contains_key(key));
                if !known {
                    self.make_room(rule, *max_keys);
                    self.total += 1;
                }
                let tick = self.tick;
                let lru = match &mut self.rules[rule] {
                    Some(RuleState::Rarity(l)) => l,
                    slot => {
                        *slot = Some(RuleState::Rarity(Lru::default()));
                        match slot {
                            Some(RuleState::Rarity(l)) => l,
                            _ => return Verdict::Quiet,
                        }
                    }
                };
                let seen = if known {
                    lru.get_mut(key)
                } else {
                    lru.insert(
                        key,
                        Seen {
                            first_seen: time,
                            values: HashMap::new(),
                        },
                    )
                };
                let Some(seen) = seen else {
                    return Verdict::Quiet;
                };
                if let Some(t) = seen.values.get_mut(value) {
                    *t = tick;
                    return Verdict::Quiet;
                }
                let learning = time < seen.first_seen.saturating_add(*learning_nanos);
                if seen.values.len() >= *max_values_per_key {
                    // Forget the stalest value to stay bounded.
                    if let Some(stale) = seen
                        .values
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(v, _)| v.clone())
                    {
                        seen.values.remove(&stale);
                        self.value_evictions += 1;
                    }
                }
                seen.values.insert(value.to_string(), tick);
                if learning {
                    Verdict::Quiet
                } else {
                    Verdict::Rare
                }
            }
        }
    }

    /// The rarity memory of `rule` (for saving), least recently used first.
    pub(crate) fn rarity_entries(&self, rule: usize) -> Vec<(String, Seen)> {
        match self.rules.get(rule) {
            Some(Some(RuleState::Rarity(l))) => l
                .iter_lru()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Restores one rarity key (from a saved state), within the caps.
    pub(crate) fn restore_rarity(&mut self, rule: usize, max_keys: usize, key: &str, seen: Seen) {
        if matches!(&self.rules[rule], Some(RuleState::Rarity(l)) if l.map.contains_key(key)) {
            return;
        }
        self.make_room(rule, max_keys);
        if !matches!(self.rules[rule], Some(RuleState::Rarity(_))) {
            self.rules[rule] = Some(RuleState::Rarity(Lru::default()));
        }
        if let Some(RuleState::Rarity(l)) = &mut self.rules[rule] {
            l.insert(key, seen);
            self.total += 1;
        }
    }
}

/// One event of a threshold group at `time`.
fn threshold_step(w: &mut Window, time: i64, count: u64, window: i64, fixed: bool) -> Verdict {
    if fixed {
        let start = time.div_euclid(window).saturating_mul(window);
        if start != w.bucket_start || (w.bucket_count == 0 && !w.bucket_fired) {
            if start < w.bucket_start && w.bucket_count > 0 {
                // A late event from an earlier bucket: that bucket is closed.
                return Verdict::Quiet;
            }
            w.bucket_start = start;
            w.bucket_count = 0;
            w.bucket_fired = false;
        }
        if w.bucket_fired {
            return Verdict::Quiet;
        }
        w.bucket_count += 1;
        if w.bucket_count >= count {
            w.bucket_fired = true;
            return Verdict::ThresholdReached {
                count: w.bucket_count,
            };
        }
        return Verdict::Quiet;
    }
    if time < w.suppressed_until {
        return Verdict::Quiet;
    }
    match w.times.back() {
        Some(&last) if time < last => {
            let pos = w.times.partition_point(|&t| t <= time);
            w.times.insert(pos, time);
        }
        _ => w.times.push_back(time),
    }
    let newest = w.times.back().copied().unwrap_or(time);
    let horizon = newest.saturating_sub(window);
    while w.times.front().is_some_and(|&t| t <= horizon) {
        w.times.pop_front();
    }
    let n = w.times.len() as u64;
    if n >= count {
        w.times.clear();
        w.suppressed_until = newest.saturating_add(window);
        return Verdict::ThresholdReached { count: n };
    }
    Verdict::Quiet
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn lru_evicts_stalest_and_refreshes_on_use() {
        let mut l: Lru<u32> = Lru::default();
        l.insert("a", 1);
        l.insert("b", 2);
        l.insert("c", 3);
        assert_eq!(l.get_mut("a").copied(), Some(1));
        assert!(l.pop_lru());
        assert!(l.get_mut("b").is_none(), "b was the least recently used");
        let order: Vec<&str> = l.iter_lru().map(|(k, _)| k).collect();
        assert_eq!(order, vec!["c", "a"]);
        assert!(l.pop_lru());
        assert!(l.pop_lru());
        assert!(!l.pop_lru());
        assert_eq!(l.len(), 0);
        l.insert("d", 4);
        assert_eq!(l.get_mut("d").copied(), Some(4));
    }

    #[test]
    fn sliding_threshold_fires_once_then_rearms_after_window() {
        let mut w = Window::default();
        let step = |w: &mut Window, t| threshold_step(w, t, 3, 10 * S, false);
        assert_eq!(step(&mut w, 0), Verdict::Quiet);
        assert_eq!(step(&mut w, S), Verdict::Quiet);
        assert_eq!(step(&mut w, 2 * S), Verdict::ThresholdReached { count: 3 });
        // Suppressed until 12 s.
        for t in 3..12 {
            assert_eq!(step(&mut w, t * S), Verdict::Quiet, "t={t}");
        }
        assert_eq!(step(&mut w, 12 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 13 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 14 * S), Verdict::ThresholdReached { count: 3 });
    }

    #[test]
    fn sliding_threshold_forgets_old_events() {
        let mut w = Window::default();
        let step = |w: &mut Window, t| threshold_step(w, t, 3, 10 * S, false);
        assert_eq!(step(&mut w, 0), Verdict::Quiet);
        assert_eq!(step(&mut w, 9 * S), Verdict::Quiet);
        // The event at 0 is out of the window at 10 s.
        assert_eq!(step(&mut w, 10 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 11 * S), Verdict::ThresholdReached { count: 3 });
        // Out-of-order events are placed by time.
        let mut w = Window::default();
        assert_eq!(step(&mut w, 5 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 3 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 4 * S), Verdict::ThresholdReached { count: 3 });
    }

    #[test]
    fn fixed_threshold_counts_per_bucket() {
        let mut w = Window::default();
        let step = |w: &mut Window, t| threshold_step(w, t, 2, 10 * S, true);
        assert_eq!(step(&mut w, 9 * S), Verdict::Quiet);
        // 10 s starts a new bucket: the count restarts.
        assert_eq!(step(&mut w, 10 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 11 * S), Verdict::ThresholdReached { count: 2 });
        assert_eq!(step(&mut w, 12 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 21 * S), Verdict::Quiet);
        assert_eq!(step(&mut w, 22 * S), Verdict::ThresholdReached { count: 2 });
    }
}
