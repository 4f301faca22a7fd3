//! The rule index: for each index dimension of the schema (e.g. verb, resource, stage), which
//! rules admit which value. An event's candidate rules are the intersection over dimensions, so
//! the cost of an event grows with the rules that could match it, not with all loaded rules.
//!
//! Values are interned per dimension: every value some rule names gets a small id, every other
//! value (and "no value") shares id 0. The candidate list therefore depends only on the tuple of
//! ids, which the engine caches (a few hundred distinct tuples in practice).

use crate::event::Event;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A small multiplicative hasher (the Fx construction) for the engine's hot maps: keys are
/// short index values and integer tuples chosen by rule authors and the engine, not by an
/// attacker who could aim for collisions in a map that grows (each map here is bounded).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A HashMap with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A fixed-size bitset over rule positions.
type Bits = Vec<u64>;

#[derive(Debug, Clone)]
struct DimIndex {
    /// Value → id (1-based; 0 is "any other value").
    ids: FxHashMap<Box<str>, u32>,
    /// Per id: the rules admitting that value (the wildcard rules included).
    admits: Vec<Bits>,
    /// Per id − 1: the value.
    names: Vec<Box<str>>,
}

/// Value → rule bitsets for every index dimension.
#[derive(Debug, Clone)]
pub(crate) struct RuleIndex {
    n_rules: usize,
    dims: Vec<DimIndex>,
    /// Mixed-radix multipliers turning an id tuple into one `u64` cache key; `None` when the
    /// product of the dimensions' cardinalities does not fit.
    radix: Option<Vec<u64>>,
}

impl RuleIndex {
    /// Builds the index from each rule's per-dimension admitted values (`None` = any).
    pub(crate) fn build<'a>(
        n_dims: usize,
        rules: impl Iterator<Item = &'a [Option<Vec<String>>]>,
    ) -> RuleIndex {
        let rules: Vec<&[Option<Vec<String>>]> = rules.collect();
        let n_rules = rules.len();
        let words = n_rules.div_ceil(64);
        let mut dims = Vec::with_capacity(n_dims);
        for d in 0..n_dims {
            let mut ids: FxHashMap<Box<str>, u32> = FxHashMap::default();
            let mut wildcard: Bits = vec![0; words];
            for (r, dims_of_rule) in rules.iter().enumerate() {
                match dims_of_rule.get(d).and_then(|v| v.as_ref()) {
                    None => wildcard[r / 64] |= 1 << (r % 64),
                    Some(values) => {
                        for v in values {
                            let next = ids.len() as u32 + 1;
                            ids.entry(v.as_str().into()).or_insert(next);
                        }
                    }
                }
            }
            let mut admits = vec![wildcard.clone(); ids.len() + 1];
            for (r, dims_of_rule) in rules.iter().enumerate() {
                if let Some(values) = dims_of_rule.get(d).and_then(|v| v.as_ref()) {
                    for v in values {
                        if let Some(&id) = ids.get(v.as_str()) {
                            admits[id as usize][r / 64] |= 1 << (r % 64);
                        }
                    }
                }
            }
            let mut names: Vec<(u32, Box<str>)> =
                ids.iter().map(|(k, &v)| (v, k.clone())).collect();
            names.sort_unstable_by_key(|(id, _)| *id);
            let names = names.into_iter().map(|(_, k)| k).collect();
            dims.push(DimIndex { ids, admits, names });
        }
        let mut radix = Some(Vec::with_capacity(n_dims));
        let mut product: u64 = 1;
        for dim in &dims {
            if let Some(r) = radix.as_mut() {
                r.push(product);
            }
            match product.checked_mul(dim.admits.len() as u64) {
                Some(p) => product = p,
                None => radix = None,
            }
        }
        RuleIndex {
            n_rules,
            dims,
            radix,
        }
    }

    /// Writes the event's id per dimension into `ids`; returns the cache key of that tuple.
    #[inline]
    pub(crate) fn ids_of<E: Event>(&self, event: &E, ids: &mut Vec<u32>) -> Option<u64> {
        ids.clear();
        for (d, dim) in self.dims.iter().enumerate() {
            let id = match event.index_value(d) {
                Some(v) if !dim.ids.is_empty() => dim.ids.get(v).copied().unwrap_or(0),
                _ => 0,
            };
            ids.push(id);
        }
        self.radix.as_ref().map(|radix| {
            ids.iter()
                .zip(radix)
                .map(|(&id, &m)| u64::from(id) * m)
                .sum()
        })
    }

    /// The value of dimension `dim` that id `id` stands for; `None` for id 0 (any other value).
    pub(crate) fn value(&self, dim: usize, id: u32) -> Option<&str> {
        let i = (id as usize).checked_sub(1)?;
        self.dims.get(dim)?.names.get(i).map(|s| &**s)
    }

    /// The rules (positions, ascending) admitted by every dimension's id.
    pub(crate) fn candidates(&self, ids: &[u32], out: &mut Vec<u32>) {
        out.clear();
        let words = self.n_rules.div_ceil(64);
        for w in 0..words {
            let mut word = if w + 1 == words && !self.n_rules.is_multiple_of(64) {
                (1u64 << (self.n_rules % 64)) - 1
            } else {
                u64::MAX
            };
            for (dim, &id) in self.dims.iter().zip(ids) {
                word &= dim.admits[id as usize][w];
            }
            while word != 0 {
                let bit = word.trailing_zeros();
                out.push((w * 64) as u32 + bit);
                word &= word - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(list: &[Option<&[&str]>]) -> Vec<Option<Vec<String>>> {
        list.iter()
            .map(|o| o.map(|v| v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn intersects_dimensions_with_wildcards() {
        let rules = [
            dims(&[Some(&["create"]), Some(&["pods"])]),
            dims(&[Some(&["create", "update"]), None]),
            dims(&[None, None]),
            dims(&[None, Some(&["secrets"])]),
        ];
        let index = RuleIndex::build(2, rules.iter().map(|r| r.as_slice()));
        let id = |d: usize, v: &str| index.dims[d].ids.get(v).copied().unwrap_or(0);
        let mut out = Vec::new();
        index.candidates(&[id(0, "create"), id(1, "pods")], &mut out);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(index.value(0, id(0, "update")), Some("update"));
        assert_eq!(index.value(1, id(1, "secrets")), Some("secrets"));
        assert_eq!(index.value(0, 0), None);
        index.candidates(&[id(0, "get"), id(1, "secrets")], &mut out);
        assert_eq!(out, vec![2, 3]);
        index.candidates(&[id(0, "update"), id(1, "nodes")], &mut out);
        assert_eq!(out, vec![1, 2]);
        index.candidates(&[0, 0], &mut out);
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn many_rules_span_words() {
        let rules: Vec<Vec<Option<Vec<String>>>> = (0..150)
            .map(|i| vec![Some(vec![format!("v{}", i % 3)])])
            .collect();
        let index = RuleIndex::build(1, rules.iter().map(|r| r.as_slice()));
        let id = index.dims[0].ids.get("v1").copied().unwrap_or(0);
        let mut out = Vec::new();
        index.candidates(&[id], &mut out);
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|r| r % 3 == 1));
        let empty = RuleIndex::build(0, std::iter::empty());
        empty.candidates(&[], &mut out);
        assert!(out.is_empty());
        let all = RuleIndex::build(0, rules.iter().map(|r| r.as_slice()));
        all.candidates(&[], &mut out);
        assert_eq!(out.len(), 150);
    }
}
