//! Compiled conditions: a tree of typed nodes whose matchers (hash sets, automata, regexes, CIDR
//! lists) are built once at load time, so judging an event only reads fields and compares.

use crate::engine::index::FxHasher;
use crate::event::{Event, EventSchema};
use crate::path::JsonPath;
use crate::value::Val;
use aho_corasick::AhoCorasick;
use ipnet::IpNet;
use regex::Regex;
use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

/// Where a field test reads its value: from the event, or (inside `any_of`/`all_of`) from the
/// element being iterated.
#[derive(Debug, Clone)]
pub(crate) enum FieldRef<F> {
    /// An event field compiled by the schema (also `$.`-prefixed paths inside `where`).
    Event(F),
    /// A JSON path relative to the current element.
    Elem(JsonPath),
    /// `@`: the current element itself.
    ElemSelf,
}

impl<F> FieldRef<F> {
    /// Reads the value for `event`, with `elem` the element of the innermost `any_of`/`all_of`.
    #[inline]
    pub(crate) fn read<'e, E>(&self, event: &'e E, elem: Option<&Val<'e>>) -> Val<'e>
    where
        E: Event,
        E::Schema: EventSchema<Field = F>,
    {
        match self {
            FieldRef::Event(f) => event.get(f),
            FieldRef::Elem(path) => match elem {
                Some(Val::Json(v)) => path.lookup(v),
                Some(other) if path.is_root() => other.clone(),
                _ => Val::Missing,
            },
            FieldRef::ElemSelf => elem.cloned().unwrap_or(Val::Missing),
        }
    }
}

/// A condition node.
#[derive(Debug, Clone)]
pub(crate) enum Node<F> {
    Test(Box<FieldTest<F>>),
    All(Vec<Node<F>>),
    Any(Vec<Node<F>>),
    Not(Box<Node<F>>),
    AnyOf(FieldRef<F>, Box<Node<F>>),
    AllOf(FieldRef<F>, Box<Node<F>>),
    /// A rule without a condition (its `match:` block alone decides).
    True,
}

impl<F> Node<F> {
    /// Judges the node on `event`; `elem` is the current `any_of`/`all_of` element, if any.
    pub(crate) fn eval<'e, E>(&self, event: &'e E, elem: Option<&Val<'e>>) -> bool
    where
        E: Event,
        E::Schema: EventSchema<Field = F>,
    {
        match self {
            Node::Test(t) => t.eval(event, elem),
            Node::All(nodes) => nodes.iter().all(|n| n.eval(event, elem)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(event, elem)),
            Node::Not(n) => !n.eval(event, elem),
            Node::AnyOf(path, cond) => {
                let value = path.read(event, elem);
                let mut any = false;
                for_each_element(&value, &mut |item| {
                    if cond.eval(event, Some(item)) {
                        any = true;
                        return false;
                    }
                    true
                });
                any
            }
            Node::AllOf(path, cond) => {
                let value = path.read(event, elem);
                let mut seen = false;
                let mut all = true;
                for_each_element(&value, &mut |item| {
                    seen = true;
                    if !cond.eval(event, Some(item)) {
                        all = false;
                        return false;
                    }
                    true
                });
                seen && all
            }
            Node::True => true,
        }
    }
}

/// Calls `f` for each element of an array (native list or JSON array) or each value of a JSON
/// object, until `f` returns false. Scalars and Missing have no elements.
fn for_each_element<'e>(value: &Val<'e>, f: &mut dyn FnMut(&Val<'e>) -> bool) {
    match value {
        Val::List(items) => {
            for item in items {
                if !f(item) {
                    return;
                }
            }
        }
        Val::Strs(items) => {
            for item in items.iter() {
                if !f(&Val::Str(item)) {
                    return;
                }
            }
        }
        Val::Json(serde_json::Value::Array(items)) => {
            for item in items {
                if !f(&Val::from_json(item)) {
                    return;
                }
            }
        }
        Val::Json(serde_json::Value::Object(map)) => {
            for item in map.values() {
                if !f(&Val::from_json(item)) {
                    return;
                }
            }
        }
        _ => {}
    }
}

/// One `{field: PATH, op: VALUE...}` node: every op must hold.
#[derive(Debug, Clone)]
pub(crate) struct FieldTest<F> {
    pub field: FieldRef<F>,
    pub ops: Vec<Op>,
    /// The event field's path (without a `$.` root) when `field` reads the event: the literal
    /// prefilter groups required literals by it.
    pub path: Option<Box<str>>,
}

impl<F> FieldTest<F> {
    fn eval<'e, E>(&self, event: &'e E, elem: Option<&Val<'e>>) -> bool
    where
        E: Event,
        E::Schema: EventSchema<Field = F>,
    {
        let value = self.field.read(event, elem);
        self.ops.iter().all(|op| op.eval(&value))
    }
}

/// One operator of a field test.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// `exists: true|false` (present and not null).
    Exists(bool),
    /// A positive matcher (`eq`, `in`, `prefix`, …): holds if the value, or any element of an
    /// array value, matches. Missing: false.
    Any(Matcher),
    /// A negated matcher (`ne`, `not_in`): holds if no element matches. Missing: true.
    None(Matcher),
}

impl Op {
    #[inline]
    pub(crate) fn eval(&self, value: &Val<'_>) -> bool {
        match self {
            Op::Exists(want) => {
                let present = !matches!(value, Val::Missing | Val::Null);
                present == *want
            }
            Op::Any(m) => m.matches_any(value),
            Op::None(m) => !m.matches_any(value),
        }
    }
}

/// A set of strings, lowercased when the test is case-insensitive.
#[derive(Debug, Clone)]
pub(crate) enum StrSet {
    Small(Vec<Box<str>>),
    /// Fx-hashed: keys are the rule author's values, the set never grows at run time.
    Hashed(HashSet<Box<str>, BuildHasherDefault<FxHasher>>),
}

impl StrSet {
    pub(crate) fn new(items: Vec<String>) -> StrSet {
        if items.len() <= 8 {
            StrSet::Small(items.into_iter().map(String::into_boxed_str).collect())
        } else {
            StrSet::Hashed(items.into_iter().map(String::into_boxed_str).collect())
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            StrSet::Small(v) => v.is_empty(),
            StrSet::Hashed(h) => h.is_empty(),
        }
    }

    /// The strings of the set.
    pub(crate) fn items(&self) -> Vec<&str> {
        match self {
            StrSet::Small(v) => v.iter().map(|s| &**s).collect(),
            StrSet::Hashed(h) => h.iter().map(|s| &**s).collect(),
        }
    }

    #[inline]
    fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(v) => v.iter().any(|i| &**i == s),
            StrSet::Hashed(h) => h.contains(s),
        }
    }
}

/// Equality against a set of scalars (`eq` is a set of one).
#[derive(Debug, Clone)]
pub(crate) struct ScalarSet {
    pub strs: StrSet,
    pub nums: Vec<f64>,
    pub bools: Vec<bool>,
    pub null: bool,
}

/// What a positive operator compares a scalar with.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Equal {
        set: ScalarSet,
        icase: bool,
    },
    Prefix {
        items: Vec<String>,
        icase: Fold,
    },
    Suffix {
        items: Vec<String>,
        icase: Fold,
    },
    /// Built ASCII-case-insensitive when `icase` and every pattern is ASCII: no folding needed.
    Contains {
        automaton: AhoCorasick,
        fold: bool,
        /// The patterns the automaton was built from (lowercased under `icase`).
        patterns: Vec<String>,
    },
    /// Any of several matchers (a glob list split into literal tests and one regex).
    Union(Vec<Matcher>),
    /// Globs and regexes, both compiled into one regex (alternation of the patterns), with the
    /// literals one of which every match contains (see [`super::literals`]), for the prefilter.
    Regex {
        re: Regex,
        literals: Option<Vec<String>>,
    },
    Compare {
        op: CmpOp,
        bound: f64,
    },
    Cidr(Vec<IpNet>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// How a case-insensitive string test compares: patterns are stored lowercased; ASCII patterns
/// compare byte-wise ignoring ASCII case (no allocation), others lowercase the value first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    Exact,
    Ascii,
    Unicode,
}

impl Fold {
    /// The folding a pattern list needs.
    pub(crate) fn for_patterns(icase: bool, items: &[String]) -> Fold {
        if !icase {
            Fold::Exact
        } else if items.iter().all(|p| p.is_ascii()) {
            Fold::Ascii
        } else {
            Fold::Unicode
        }
    }
}

fn starts_with_ascii_icase(s: &str, p: &str) -> bool {
    s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
}

fn ends_with_ascii_icase(s: &str, p: &str) -> bool {
    s.len() >= p.len() && s.as_bytes()[s.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
}

/// Lowercases `s` only when it has characters that lowercasing changes.
#[inline]
fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Numbers, and strings that parse as numbers, as f64.
#[inline]
fn as_number(value: &Val<'_>) -> Option<f64> {
    match value {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        Val::Str(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Val::Json(serde_json::Value::Number(n)) => n.as_f64(),
        Val::Json(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

impl Matcher {
    /// Holds if `value`, or any element of an array `value`, matches.
    fn matches_any(&self, value: &Val<'_>) -> bool {
        match value {
            Val::Missing => false,
            Val::List(items) => items.iter().any(|i| self.matches_scalar(i)),
            Val::Strs(items) => items.iter().any(|s| self.matches_scalar(&Val::Str(s))),
            Val::Json(serde_json::Value::Array(items)) => items
                .iter()
                .any(|i| self.matches_scalar(&Val::from_json(i))),
            other => self.matches_scalar(other),
        }
    }

    fn matches_scalar(&self, value: &Val<'_>) -> bool {
        if let Val::Json(v) = value
            && !v.is_array()
            && !v.is_object()
        {
            return self.matches_scalar(&Val::from_json(v));
        }
        match self {
            Matcher::Equal { set, icase } => match value {
                Val::Str(s) => {
                    if !set.strs.is_empty() {
                        let hit = if *icase {
                            set.strs.contains(&fold(s))
                        } else {
                            set.strs.contains(s)
                        };
                        if hit {
                            return true;
                        }
                    }
                    if !set.bools.is_empty() {
                        let b = if s.eq_ignore_ascii_case("true") {
                            Some(true)
                        } else if s.eq_ignore_ascii_case("false") {
                            Some(false)
                        } else {
                            None
                        };
                        if b.is_some_and(|b| set.bools.contains(&b)) {
                            return true;
                        }
                    }
                    !set.nums.is_empty() && as_number(value).is_some_and(|n| set.nums.contains(&n))
                }
                Val::Int(_) | Val::Float(_) => {
                    as_number(value).is_some_and(|n| set.nums.contains(&n))
                }
                Val::Bool(b) => set.bools.contains(b),
                Val::Null => set.null,
                _ => false,
            },
            Matcher::Prefix { items, icase } => match (value.as_str(), icase) {
                (Some(s), Fold::Exact) => items.iter().any(|p| s.starts_with(p.as_str())),
                (Some(s), Fold::Ascii) => items.iter().any(|p| starts_with_ascii_icase(s, p)),
                (Some(s), Fold::Unicode) => {
                    let s = fold(s);
                    items.iter().any(|p| s.starts_with(p.as_str()))
                }
                (None, _) => false,
            },
            Matcher::Suffix { items, icase } => match (value.as_str(), icase) {
                (Some(s), Fold::Exact) => items.iter().any(|p| s.ends_with(p.as_str())),
                (Some(s), Fold::Ascii) => items.iter().any(|p| ends_with_ascii_icase(s, p)),
                (Some(s), Fold::Unicode) => {
                    let s = fold(s);
                    items.iter().any(|p| s.ends_with(p.as_str()))
                }
                (None, _) => false,
            },
            Matcher::Contains {
                automaton,
                fold: true,
                ..
            } => value
                .as_str()
                .is_some_and(|s| automaton.is_match(fold(s).as_ref())),
            Matcher::Contains { automaton, .. } => {
                value.as_str().is_some_and(|s| automaton.is_match(s))
            }
            Matcher::Union(matchers) => matchers.iter().any(|m| m.matches_scalar(value)),
            Matcher::Regex { re, .. } => value.as_str().is_some_and(|s| re.is_match(s)),
            Matcher::Compare { op, bound } => match as_number(value) {
                Some(n) => match op {
                    CmpOp::Gt => n > *bound,
                    CmpOp::Gte => n >= *bound,
                    CmpOp::Lt => n < *bound,
                    CmpOp::Lte => n <= *bound,
                },
                None => false,
            },
            Matcher::Cidr(nets) => match value.as_str().and_then(parse_ip) {
                Some(ip) => nets.iter().any(|n| n.contains(&ip)),
                None => false,
            },
        }
    }
}

/// An IP address, also in the `[v6]:port` and `v4:port` forms some sources log.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    match s.rsplit_once(':') {
        Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => ip.parse().ok(),
        _ => None,
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare address (a /32 or /128).
pub(crate) fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Translates a glob (`*` any run, `?` one character, `[abc]`/`[!a-z]` classes) into a regex
/// matching the whole string; `*` crosses `/` (globs here match values, not file paths).
pub(crate) fn glob_to_regex(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                // Find the closing bracket; a `]` right after `[` or `[!` is literal.
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '!' || chars[j] == '^') {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str(r"\[");
                } else {
                    out.push('[');
                    let mut k = i + 1;
                    if chars[k] == '!' || chars[k] == '^' {
                        out.push('^');
                        k += 1;
                    }
                    while k < j {
                        let c = chars[k];
                        if matches!(c, '\\' | '[' | ']' | '&' | '~' | '^') {
                            out.push('\\');
                        }
                        out.push(c);
                        k += 1;
                    }
                    out.push(']');
                    i = j;
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(glob: &str) -> Regex {
        Regex::new(&format!("(?s)^(?:{})$", glob_to_regex(glob))).expect("valid")
    }

    #[test]
    fn globs_translate() {
        assert!(re("*/xmrig*").is_match("docker.io/xmrig:latest"));
        assert!(!re("*/xmrig*").is_match("xmrig"));
        assert!(re("a?c").is_match("abc"));
        assert!(!re("a?c").is_match("abbc"));
        assert!(re("v[0-9]").is_match("v7"));
        assert!(!re("v[!0-9]").is_match("v7"));
        assert!(re("v[!0-9]").is_match("vx"));
        assert!(re("a[]]b").is_match("a]b"));
        assert!(re("a[b").is_match("a[b"));
        assert!(re("x.y+(z)").is_match("x.y+(z)"));
        assert!(!re("x.y").is_match("xzy"));
        assert!(re("*").is_match("line\nbreak"));
    }

    #[test]
    fn ips_and_cidrs_parse() {
        assert_eq!(parse_ip("10.1.2.3"), "10.1.2.3".parse().ok());
        assert_eq!(parse_ip("10.1.2.3:443"), "10.1.2.3".parse().ok());
        assert_eq!(parse_ip("[::1]:443"), "::1".parse().ok());
        assert_eq!(parse_ip("not-an-ip"), None);
        let net = parse_cidr("10.1.2.3/8").expect("valid");
        assert!(net.contains(&"10.200.0.1".parse::<IpAddr>().expect("ip")));
        assert!(parse_cidr("192.168.1.1").is_some());
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }
}
