//! From the YAML form of a condition (read as JSON values) to compiled [`Node`]s. Errors are
//! plain messages prefixed with where in the condition they are (`condition.all[1].in`); the rule
//! loader adds the file, line and rule id.

use super::condition::{CmpOp, FieldRef, FieldTest, Matcher, Node, Op, ScalarSet, StrSet};
use super::condition::{Fold, glob_to_regex, parse_cidr};
use super::literals::required_literals;
use crate::event::EventSchema;
use crate::path::JsonPath;
use aho_corasick::AhoCorasick;
use regex::RegexBuilder;
use serde_json::Value;
use std::collections::HashMap;
use std::marker::PhantomData;

/// A named list or macro and where it was (last) defined.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub value: Value,
    pub origin: String,
}

/// Largest compiled regex (bytes of program), so a hostile rule cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Deepest condition nesting accepted (macros included).
const MAX_DEPTH: usize = 64;
/// Most condition nodes per rule after macro expansion.
const MAX_NODES: usize = 100_000;

const FIELD_OPS: &[&str] = &[
    "eq", "ne", "in", "not_in", "prefix", "suffix", "contains", "glob", "regex", "exists", "gt",
    "gte", "lt", "lte", "cidr",
];
const NODE_KEYS: &str = "field, all, any, not, macro, any_of, all_of";

/// Compiles conditions for schema `S` against the loaded lists and macros.
pub(crate) struct CondCompiler<'a, S> {
    lists: &'a HashMap<String, Named>,
    macros: &'a HashMap<String, Named>,
    stack: Vec<String>,
    depth: usize,
    /// Nodes compiled for the current rule (macros expand inline: bounded against blow-up).
    nodes: usize,
    _schema: PhantomData<S>,
}

impl<'a, S: EventSchema> CondCompiler<'a, S> {
    pub(crate) fn new(
        lists: &'a HashMap<String, Named>,
        macros: &'a HashMap<String, Named>,
    ) -> Self {
        CondCompiler {
            lists,
            macros,
            stack: Vec::new(),
            depth: 0,
            nodes: 0,
            _schema: PhantomData,
        }
    }

    /// Starts the node budget of a new rule.
    pub(crate) fn start_rule(&mut self) {
        self.nodes = 0;
    }

    /// Compiles a field path: event fields through the schema; inside `where`, relative JSON
    /// paths, `@` (the element) and `$.`-rooted event fields.
    pub(crate) fn field(&self, path: &str, in_where: bool) -> Result<FieldRef<S::Field>, String> {
        if let Some(rest) = path.strip_prefix("$.") {
            return S::compile_field(rest).map(FieldRef::Event);
        }
        if in_where {
            if path == "@" {
                return Ok(FieldRef::ElemSelf);
            }
            let rel = path.strip_prefix("@.").unwrap_or(path);
            return JsonPath::parse(rel)
                .map(FieldRef::Elem)
                .map_err(|e| e.to_string());
        }
        if path == "@" || path.starts_with("@.") {
            return Err(format!(
                "field {path:?}: `@` names the element of any_of/all_of and is only valid inside `where`"
            ));
        }
        S::compile_field(path).map(FieldRef::Event)
    }

    /// The values a condition requires field `path` to equal, when it does: the condition is a
    /// case-sensitive `eq`/`in` test of `path` on plain strings, an `all` with such a test among
    /// its items, an `any` whose every branch requires it (the union), or a macro that does.
    /// Used to index rules by a dimension their condition already restricts; `None` when the
    /// condition does not pin the field (or a value could also match as a number or boolean).
    pub(crate) fn required_values(
        &self,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Option<Vec<String>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let map = value.as_object()?;
        if map.get("field").and_then(Value::as_str) == Some(path) {
            let mut values = None;
            for (key, v) in map {
                match key.as_str() {
                    "field" => {}
                    // A case-insensitive test admits values the index would not.
                    "icase" if v != &Value::Bool(false) => return None,
                    "icase" => {}
                    "eq" | "in" => {
                        let items = self.list(v, path).ok()?;
                        let mut out = Vec::with_capacity(items.len());
                        for item in items {
                            let s = item.as_str()?;
                            let ambiguous = s.trim().parse::<f64>().is_ok()
                                || s.eq_ignore_ascii_case("true")
                                || s.eq_ignore_ascii_case("false");
                            if ambiguous {
                                return None;
                            }
                            out.push(s.to_string());
                        }
                        values = Some(out);
                    }
                    // Other operators narrow further; the equality alone is still required.
                    _ => {}
                }
            }
            return values;
        }
        if map.len() != 1 {
            return None;
        }
        if let Some(items) = map.get("all").and_then(Value::as_array) {
            return items
                .iter()
                .find_map(|item| self.required_values(item, path, depth + 1));
        }
        if let Some(items) = map.get("any").and_then(Value::as_array) {
            let mut union: Vec<String> = Vec::new();
            for item in items {
                for v in self.required_values(item, path, depth + 1)? {
                    if !union.contains(&v) {
                        union.push(v);
                    }
                }
            }
            return (!items.is_empty()).then_some(union);
        }
        if let Some(name) = map.get("macro").and_then(Value::as_str) {
            let def = self.macros.get(name)?;
            return self.required_values(&def.value, path, depth + 1);
        }
        None
    }

    /// Compiles one condition node found at `at` (for messages).
    pub(crate) fn node(
        &mut self,
        value: &Value,
        at: &str,
        in_where: bool,
    ) -> Result<Node<S::Field>, String> {
        if self.depth >= MAX_DEPTH {
            let short: String = at.chars().take(120).collect();
            return Err(format!(
                "{short}…: condition nested more than {MAX_DEPTH} levels deep"
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "{at}: condition has more than {MAX_NODES} nodes once macros are expanded"
            ));
        }
        self.depth += 1;
        let result = self.node_inner(value, at, in_where);
        self.depth -= 1;
        result
    }

    fn node_inner(
        &mut self,
        value: &Value,
        at: &str,
        in_where: bool,
    ) -> Result<Node<S::Field>, String> {
        let map = match value {
            Value::Object(map) => map,
            other => {
                return Err(format!(
                    "{at}: a condition is a mapping with one of {NODE_KEYS}, found {}",
                    kind(other)
                ));
            }
        };
        if map.contains_key("field") {
            return self.field_test(map, at, in_where);
        }
        for key in map.keys() {
            if FIELD_OPS.contains(&key.as_str()) || key == "icase" {
                return Err(format!(
                    "{at}: operator `{key}` needs a `field:` in the same node"
                ));
            }
        }
        let structural: Vec<&String> = map.keys().filter(|k| k.as_str() != "where").collect();
        if structural.len() != 1 {
            return Err(format!(
                "{at}: a condition node has exactly one of {NODE_KEYS}, found {}",
                if structural.is_empty() {
                    "none".to_string()
                } else {
                    structural
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
        let key = structural[0].as_str();
        let body = &map[key];
        if map.contains_key("where") && key != "any_of" && key != "all_of" {
            return Err(format!(
                "{at}: `where` belongs with any_of/all_of, not `{key}`"
            ));
        }
        match key {
            "all" | "any" => {
                let items = body
                    .as_array()
                    .ok_or_else(|| format!("{at}.{key}: expected a list of conditions"))?;
                if items.is_empty() {
                    return Err(format!("{at}.{key}: empty list of conditions"));
                }
                let mut nodes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    nodes.push(self.node(item, &format!("{at}.{key}[{i}]"), in_where)?);
                }
                Ok(if key == "all" {
                    Node::All(nodes)
                } else {
                    Node::Any(nodes)
                })
            }
            "not" => Ok(Node::Not(Box::new(self.node(
                body,
                &format!("{at}.not"),
                in_where,
            )?))),
            "macro" => {
                let name = body
                    .as_str()
                    .ok_or_else(|| format!("{at}.macro: expected a macro name"))?;
                let def = self
                    .macros
                    .get(name)
                    .ok_or_else(|| format!("{at}: unknown macro `{name}`"))?;
                if self.stack.iter().any(|m| m == name) {
                    let mut cycle = self.stack.clone();
                    cycle.push(name.to_string());
                    return Err(format!("{at}: macro cycle {}", cycle.join(" -> ")));
                }
                self.stack.push(name.to_string());
                let result = self.node(&def.value, &format!("macro `{name}`"), in_where);
                self.stack.pop();
                result.map_err(|e| {
                    if e.contains("(defined in ") {
                        e
                    } else {
                        format!("{e} (defined in {})", def.origin)
                    }
                })
            }
            "any_of" | "all_of" => {
                let path = body
                    .as_str()
                    .ok_or_else(|| format!("{at}.{key}: expected a field path"))?;
                let field = self
                    .field(path, in_where)
                    .map_err(|e| format!("{at}.{key}: {e}"))?;
                let cond = map
                    .get("where")
                    .ok_or_else(|| format!("{at}: `{key}` needs a `where:` condition"))?;
                let cond = Box::new(self.node(cond, &format!("{at}.where"), true)?);
                Ok(if key == "any_of" {
                    Node::AnyOf(field, cond)
                } else {
                    Node::AllOf(field, cond)
                })
            }
            other => Err(format!(
                "{at}: unknown key `{other}` (expected one of {NODE_KEYS})"
            )),
        }
    }

    fn field_test(
        &mut self,
        map: &serde_json::Map<String, Value>,
        at: &str,
        in_where: bool,
    ) -> Result<Node<S::Field>, String> {
        let path = map
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.field: expected a field path string"))?;
        let field = self
            .field(path, in_where)
            .map_err(|e| format!("{at}.field: {e}"))?;
        let icase = match map.get("icase") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "{at}.icase: expected true or false, found {}",
                    kind(other)
                ));
            }
        };
        let mut ops = Vec::new();
        for (key, value) in map {
            if key == "field" || key == "icase" {
                continue;
            }
            let here = format!("{at}.{key}");
            let op = match key.as_str() {
                "eq" => Op::Any(self.equal(std::slice::from_ref(value), icase, &here)?),
                "ne" => Op::None(self.equal(std::slice::from_ref(value), icase, &here)?),
                "in" => Op::Any(self.equal(&self.list(value, &here)?, icase, &here)?),
                "not_in" => Op::None(self.equal(&self.list(value, &here)?, icase, &here)?),
                "prefix" => {
                    let items = self.strings(value, icase, &here)?;
                    let icase = Fold::for_patterns(icase, &items);
                    Op::Any(Matcher::Prefix { items, icase })
                }
                "suffix" => {
                    let items = self.strings(value, icase, &here)?;
                    let icase = Fold::for_patterns(icase, &items);
                    Op::Any(Matcher::Suffix { items, icase })
                }
                "contains" => {
                    let items = self.strings(value, icase, &here)?;
                    Op::Any(contains_matcher(&items, icase, &here)?)
                }
                "glob" | "regex" => {
                    let mut items = self.strings(value, false, &here)?;
                    // Globs that are plain `*literal*`, `literal*`, `*literal` tests skip the regex.
                    let mut literal_tests = Vec::new();
                    if key == "glob" {
                        literal_tests = split_literal_globs(&mut items, icase, &here)?;
                    }
                    let alternation = items
                        .iter()
                        .map(|p| {
                            if key == "glob" {
                                format!("(?:^{}$)", glob_to_regex(p))
                            } else {
                                format!("(?:{p})")
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("|");
                    // An empty list matches nothing (`\b\B` cannot hold at any position).
                    let alternation = if items.is_empty() {
                        r"\b\B".to_string()
                    } else {
                        alternation
                    };
                    // Check each pattern alone first so the error names the bad one.
                    if key == "regex" {
                        for p in &items {
                            RegexBuilder::new(p)
                                .size_limit(REGEX_SIZE_LIMIT)
                                .build()
                                .map_err(|e| format!("{here}: bad regex {p:?}: {e}"))?;
                        }
                    }
                    let pattern = format!("(?s){alternation}");
                    let re = RegexBuilder::new(&pattern)
                        .case_insensitive(icase)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| format!("{here}: {e}"))?;
                    let re = Matcher::Regex {
                        re,
                        literals: required_literals(&pattern, icase),
                    };
                    if literal_tests.is_empty() {
                        Op::Any(re)
                    } else {
                        if !items.is_empty() {
                            literal_tests.push(re);
                        }
                        Op::Any(Matcher::Union(literal_tests))
                    }
                }
                "exists" => match value {
                    Value::Bool(b) => Op::Exists(*b),
                    other => {
                        return Err(format!(
                            "{here}: expected true or false, found {}",
                            kind(other)
                        ));
                    }
                },
                "gt" | "gte" | "lt" | "lte" => {
                    let bound = match value {
                        Value::Number(n) => n.as_f64(),
                        Value::String(s) => s.trim().parse::<f64>().ok(),
                        _ => None,
                    }
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| format!("{here}: expected a number, found {value}"))?;
                    let op = match key.as_str() {
                        "gt" => CmpOp::Gt,
                        "gte" => CmpOp::Gte,
                        "lt" => CmpOp::Lt,
                        _ => CmpOp::Lte,
                    };
                    Op::Any(Matcher::Compare { op, bound })
                }
                "cidr" => {
                    let items = self.strings(value, false, &here)?;
                    let mut nets = Vec::with_capacity(items.len());
                    for item in &items {
                        nets.push(
                            parse_cidr(item).ok_or_else(|| format!("{here}: bad CIDR {item:?}"))?,
                        );
                    }
                    Op::Any(Matcher::Cidr(nets))
                }
                other => {
                    return Err(format!(
                        "{at}: unknown key `{other}` in a field test (operators: {}, icase)",
                        FIELD_OPS.join(", ")
                    ));
                }
            };
            ops.push(op);
        }
        if ops.is_empty() {
            return Err(format!("{at}: field test on {path:?} has no operator"));
        }
        let path = match field {
            FieldRef::Event(_) => Some(path.strip_prefix("$.").unwrap_or(path).into()),
            _ => None,
        };
        Ok(Node::Test(Box::new(FieldTest { field, ops, path })))
    }

    /// A list operand: an array (items may be `{list: NAME}`, spliced in), a `{list: NAME}`, or
    /// a single scalar.
    fn list(&self, value: &Value, at: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        match value {
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(_) => out.extend(self.list_ref(item, at)?),
                        Value::Array(_) => {
                            return Err(format!("{at}: nested lists are not allowed"));
                        }
                        scalar => out.push(scalar.clone()),
                    }
                }
            }
            Value::Object(_) => out.extend(self.list_ref(value, at)?),
            scalar => out.push(scalar.clone()),
        }
        Ok(out)
    }

    fn list_ref(&self, value: &Value, at: &str) -> Result<Vec<Value>, String> {
        let map = value
            .as_object()
            .ok_or_else(|| format!("{at}: expected a list"))?;
        let name = match (map.len(), map.get("list")) {
            (1, Some(Value::String(name))) => name,
            _ => {
                return Err(format!(
                    "{at}: expected a value, a list, or {{list: NAME}}, found {value}"
                ));
            }
        };
        let def = self
            .lists
            .get(name)
            .ok_or_else(|| format!("{at}: unknown list `{name}`"))?;
        match &def.value {
            Value::Array(items) => Ok(items.clone()),
            _ => Err(format!("{at}: list `{name}` is not a list")),
        }
    }

    /// String operands (one string or a list), lowercased when `icase`. An empty list is valid
    /// and matches nothing: lists users fill in (trusted or threat-intel ranges) ship empty.
    fn strings(&self, value: &Value, icase: bool, at: &str) -> Result<Vec<String>, String> {
        let items = self.list(value, at)?;
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(if icase { s.to_lowercase() } else { s.clone() }),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(format!("{at}: expected strings, found {}", kind(other))),
            })
            .collect()
    }

    fn equal(&self, values: &[Value], icase: bool, at: &str) -> Result<Matcher, String> {
        let mut strs = Vec::new();
        let mut nums = Vec::new();
        let mut bools = Vec::new();
        let mut null = false;
        for v in values {
            match v {
                Value::String(s) => {
                    // Canonical integers also compare with numeric fields (`eq: "443"`).
                    if let Ok(i) = s.parse::<i64>()
                        && i.to_string() == *s
                    {
                        nums.push(i as f64);
                    }
                    strs.push(if icase { s.to_lowercase() } else { s.clone() });
                }
                Value::Number(n) => {
                    let f = n
                        .as_f64()
                        .ok_or_else(|| format!("{at}: number {n} out of range"))?;
                    nums.push(f);
                    strs.push(n.to_string());
                }
                Value::Bool(b) => bools.push(*b),
                Value::Null => null = true,
                other => {
                    return Err(format!(
                        "{at}: expected a scalar (string, number, bool, null), found {}",
                        kind(other)
                    ));
                }
            }
        }
        Ok(Matcher::Equal {
            set: ScalarSet {
                strs: StrSet::new(strs),
                nums,
                bools,
                null,
            },
            icase,
        })
    }
}

/// A substring matcher; ASCII patterns under `icase` match ASCII-case-insensitively without
/// lowercasing each value.
fn contains_matcher(items: &[String], icase: bool, at: &str) -> Result<Matcher, String> {
    let fold = Fold::for_patterns(icase, items);
    let automaton = AhoCorasick::builder()
        .ascii_case_insensitive(fold == Fold::Ascii)
        .build(items)
        .map_err(|e| format!("{at}: {e}"))?;
    Ok(Matcher::Contains {
        automaton,
        fold: fold == Fold::Unicode,
        patterns: items.to_vec(),
    })
}

/// Moves the globs that are literal tests (`*lit*` → contains, `lit*` → prefix, `*lit` → suffix)
/// out of `globs` into string matchers; what remains needs the regex.
fn split_literal_globs(
    globs: &mut Vec<String>,
    icase: bool,
    at: &str,
) -> Result<Vec<Matcher>, String> {
    let is_literal = |t: &str| !t.is_empty() && !t.contains(['*', '?', '[', ']', '\\']);
    let (mut contains, mut prefix, mut suffix) = (Vec::new(), Vec::new(), Vec::new());
    globs.retain(|g| {
        let fold = |t: &str| {
            if icase {
                t.to_lowercase()
            } else {
                t.to_string()
            }
        };
        if let Some(inner) = g.strip_prefix('*').and_then(|t| t.strip_suffix('*'))
            && is_literal(inner)
        {
            contains.push(fold(inner));
            false
        } else if let Some(head) = g.strip_suffix('*')
            && is_literal(head)
        {
            prefix.push(fold(head));
            false
        } else if let Some(tail) = g.strip_prefix('*')
            && is_literal(tail)
        {
            suffix.push(fold(tail));
            false
        } else {
            true
        }
    });
    let mut out = Vec::new();
    if !contains.is_empty() {
        out.push(contains_matcher(&contains, icase, at)?);
    }
    if !prefix.is_empty() {
        let icase = Fold::for_patterns(icase, &prefix);
        out.push(Matcher::Prefix {
            items: prefix,
            icase,
        });
    }
    if !suffix.is_empty() {
        let icase = Fold::for_patterns(icase, &suffix);
        out.push(Matcher::Suffix {
            items: suffix,
            icase,
        });
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
