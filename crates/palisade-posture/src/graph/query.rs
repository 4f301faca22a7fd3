//! The `palisade explore` query language: path patterns over node kinds, properties and edges.
//! The reference is docs/explore.md.
//!
//! ```text
//! w:workload[exposed=true] -runs_as-> sa:serviceaccount[cluster_admin=true]
//!     where w.namespace != "kube-system" return w, sa.name limit 50
//! ```

use super::dot;
use super::model::{EdgeId, EdgeKind, NodeId, NodeKind, NodeRef, PropValue, SecurityGraph};
use palisade_core::Severity;
use regex::Regex;
use serde::Serialize;
use std::collections::HashSet;
use std::fmt;

/// Results stop at this many rows unless the query says `limit`.
pub const DEFAULT_LIMIT: usize = 10_000;
/// Longest variable-length hop range accepted (`-*1..6->`).
pub const MAX_HOPS: u32 = 6;

/// A query that does not parse, with the 1-based line and column where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}column {column}: {message}", if *.line > 1 { format!("line {line}, ") } else { String::new() })]
pub struct QueryError {
    /// 1 for one-line queries.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl QueryError {
    /// The faulty line of the query with a caret under the column, then the message.
    pub fn render(&self, query: &str) -> String {
        format!(
            "{}\n{}^\n{}",
            query.lines().nth(self.line.saturating_sub(1)).unwrap_or(""),
            " ".repeat(self.column.saturating_sub(1)),
            self
        )
    }
}

/// A built-in query `palisade explore NAME` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NamedQuery {
    pub name: &'static str,
    pub description: &'static str,
    pub query: &'static str,
}

/// The built-in queries (`palisade explore --list`).
pub const BUILTIN: &[NamedQuery] = &[
    NamedQuery {
        name: "exposed-critical",
        description: "Internet-exposed workloads running an image with a critical vulnerability",
        query: "w:workload[exposed=true] -runs-> c:container -uses_image-> i:image -has_vulnerability-> v:vulnerability[severity=critical] return w, c.container, i, v, v.cvss, v.fixed_versions",
    },
    NamedQuery {
        name: "exposed-remote-exploitable",
        description: "Internet-exposed workloads with a high or critical vulnerability whose CVSS attack vector is Network",
        query: "w:workload[exposed=true] -runs-> container -uses_image-> i:image -has_vulnerability-> v:vulnerability[severity>=high and network=true] return w, i, v, v.cvss",
    },
    NamedQuery {
        name: "privileged-exposed",
        description: "Internet-exposed workloads that are privileged or have host access",
        query: "w:workload[exposed=true and (privileged=true or host_access=true)] return w, w.privileged, w.host_access, w.exposure",
    },
    NamedQuery {
        name: "secrets-readers",
        description: "Workloads whose service account can read Secrets",
        query: "w:workload -runs_as-> sa:serviceaccount -can-> p:permission[ability=read-secrets] return w, sa, p.scope",
    },
    NamedQuery {
        name: "cluster-admin-workloads",
        description: "Workloads running as a service account that is cluster-admin",
        query: "w:workload -runs_as-> sa:serviceaccount[cluster_admin=true] return w, sa",
    },
    NamedQuery {
        name: "dangerous-permissions",
        description: "Workloads whose service account holds any dangerous permission",
        query: "w:workload -runs_as-> sa:serviceaccount -can-> p:permission return w, sa, p",
    },
    NamedQuery {
        name: "metadata-reachable",
        description: "Workloads that can reach the cloud metadata endpoint 169.254.169.254 (no NetworkPolicy egress restriction)",
        query: "w:workload[metadata_reachable=true] return w, w.host_network, w.egress_policies",
    },
    NamedQuery {
        name: "internet-to-node",
        description: "Paths from the internet to a node through an exposed workload with host access",
        query: "internet -exposes|routes_to*1..3-> w:workload -host_access-> n:node return w, n, w.host_access_reasons",
    },
    NamedQuery {
        name: "mounted-secrets",
        description: "Secrets mounted or referenced by exposed workloads",
        query: "w:workload[exposed=true] -mounts-> s:secret return w, s",
    },
    NamedQuery {
        name: "vulnerable-images",
        description: "Images with critical vulnerabilities and the workloads running them",
        query: "w:workload -runs-> container -uses_image-> i:image[critical_count>0] return w, i, i.critical_count, i.fixable_count",
    },
];

/// A built-in query by name.
pub fn builtin(name: &str) -> Option<&'static NamedQuery> {
    BUILTIN.iter().find(|q| q.name == name)
}

// ---------------------------------------------------------------- AST

/// A parsed query.
#[derive(Debug, Clone)]
pub struct Query {
    nodes: Vec<NodePat>,
    edges: Vec<EdgePat>,
    filter: Option<Expr>,
    returns: Vec<ReturnItem>,
    limit: Option<usize>,
}

#[derive(Debug, Clone)]
struct NodePat {
    alias: Option<String>,
    kind: Option<NodeKind>,
    pred: Option<Expr>,
}

#[derive(Debug, Clone)]
struct EdgePat {
    /// Empty: any kind.
    kinds: Vec<EdgeKind>,
    min: u32,
    max: u32,
    /// `<-kind-`: followed against its direction.
    reverse: bool,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        var: Option<usize>,
        prop: String,
        op: Op,
        value: Literal,
    },
    In {
        var: Option<usize>,
        prop: String,
        values: Vec<Literal>,
    },
    Exists {
        var: Option<usize>,
        prop: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
}

#[derive(Debug, Clone)]
enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    /// `/regex/` or a glob string used with `~` (compiled at parse time).
    Pattern(Regex),
}

#[derive(Debug, Clone)]
enum ReturnItem {
    Node(usize),
    Prop(usize, String),
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Regex(String),
    Sym(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    col: usize,
}

fn err<T>(col: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        line: 1,
        column: col,
        message: message.into(),
    })
}

fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym2 = ["->", "<-", "!=", "<=", ">=", "==", "..", "!~"]
            .into_iter()
            .find(|s| *s == two);
        if let Some(s) = sym2 {
            out.push(Token {
                tok: Tok::Sym(s),
                col,
            });
            i += 2;
            continue;
        }
        let sym1 = match c {
            '-' => Some("-"),
            '[' => Some("["),
            ']' => Some("]"),
            '(' => Some("("),
            ')' => Some(")"),
            ',' => Some(","),
            ':' => Some(":"),
            '=' => Some("="),
            '<' => Some("<"),
            '>' => Some(">"),
            '~' => Some("~"),
            '*' => Some("*"),
            '|' => Some("|"),
            _ => None,
        };
        if let Some(s) = sym1 {
            out.push(Token {
                tok: Tok::Sym(s),
                col,
            });
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' || c == '/' {
            let quote = c;
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return err(
                            col,
                            if quote == '/' {
                                "unterminated regular expression (missing closing `/`)"
                            } else {
                                "unterminated string"
                            },
                        );
                    }
                    Some('\\') if chars.get(j + 1) == Some(&quote) => {
                        s.push(quote);
                        j += 2;
                    }
                    Some('\\') if quote != '/' && chars.get(j + 1) == Some(&'\\') => {
                        s.push('\\');
                        j += 2;
                    }
                    Some(&ch) if ch == quote => break,
                    Some(&ch) => {
                        s.push(ch);
                        j += 1;
                    }
                }
            }
            out.push(Token {
                tok: if quote == '/' {
                    Tok::Regex(s)
                } else {
                    Tok::Str(s)
                },
                col,
            });
            i = j + 1;
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || (chars[j] == '.' && chars.get(j + 1).is_some_and(|n| n.is_ascii_digit())))
            {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            let n = text
                .parse::<f64>()
                .or_else(|_| err(col, format!("bad number `{text}`")))?;
            out.push(Token {
                tok: Tok::Num(n),
                col,
            });
            i = j;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() {
                let ch = chars[j];
                let inner_dash = ch == '-'
                    && chars.get(j + 1).is_some_and(|n| n.is_alphanumeric())
                    && chars[j - 1].is_alphanumeric();
                if ch.is_alphanumeric() || ch == '_' || ch == '.' || ch == '/' || inner_dash {
                    j += 1;
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Ident(chars[i..j].iter().collect()),
                col,
            });
            i = j;
            continue;
        }
        return err(col, format!("unexpected character `{c}`"));
    }
    out.push(Token {
        tok: Tok::End,
        col: chars.len() + 1,
    });
    Ok(out)
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    aliases: Vec<Option<String>>,
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "where" | "return" | "limit" | "and" | "or" | "not" | "in" | "exists"
    )
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn col(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].col
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        self.pos += 1;
        t
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x.eq_ignore_ascii_case(kw))
    }

    fn expect_sym(&mut self, s: &str, what: &str) -> Result<(), QueryError> {
        if self.is_sym(s) {
            self.pos += 1;
            Ok(())
        } else {
            err(
                self.col(),
                format!("expected `{s}` {what}, found {}", describe(self.peek())),
            )
        }
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        let mut nodes = vec![self.node()?];
        let mut edges = Vec::new();
        while self.is_sym("-") || self.is_sym("<-") {
            edges.push(self.edge()?);
            nodes.push(self.node()?);
        }
        let filter = if self.is_kw("where") {
            self.pos += 1;
            Some(self.expr(false)?)
        } else {
            None
        };
        let mut returns = Vec::new();
        if self.is_kw("return") {
            self.pos += 1;
            loop {
                returns.push(self.return_item()?);
                if self.is_sym(",") {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        let mut limit = None;
        if self.is_kw("limit") {
            self.pos += 1;
            let col = self.col();
            match self.next().tok {
                Tok::Num(n) if n >= 1.0 && n.fract() == 0.0 => limit = Some(n as usize),
                other => {
                    return err(
                        col,
                        format!(
                            "expected a positive whole number after `limit`, found {}",
                            describe(&other)
                        ),
                    );
                }
            }
        }
        if !matches!(self.peek(), Tok::End) {
            return err(
                self.col(),
                format!(
                    "expected an edge (`-kind->`), `where`, `return`, `limit` or the end of the query, found {}",
                    describe(self.peek())
                ),
            );
        }
        Ok(Query {
            nodes,
            edges,
            filter,
            returns,
            limit,
        })
    }

    fn node(&mut self) -> Result<NodePat, QueryError> {
        let mut alias = None;
        if let (Tok::Ident(a), Tok::Sym(":")) = (self.peek().clone(), self.peek_at(1).clone()) {
            let col = self.col();
            if a.contains('.') || a.contains('-') || a.contains('/') || is_keyword(&a) {
                return err(
                    col,
                    format!("`{a}` cannot be a name: use letters, digits and `_`"),
                );
            }
            if self.aliases.iter().flatten().any(|x| *x == a) {
                return err(col, format!("name `{a}` is used twice"));
            }
            alias = Some(a);
            self.pos += 2;
        }
        let col = self.col();
        let kind = match self.next().tok {
            Tok::Sym("*") => None,
            Tok::Ident(k) if k.eq_ignore_ascii_case("any") => None,
            Tok::Ident(k) => match NodeKind::parse(&k) {
                Some(kind) => Some(kind),
                None => {
                    return err(
                        col,
                        format!(
                            "unknown node kind `{k}` (one of: {}, or `*`)",
                            NodeKind::ALL.map(NodeKind::as_str).join(", ")
                        ),
                    );
                }
            },
            other => {
                return err(
                    col,
                    format!("expected a node kind, found {}", describe(&other)),
                );
            }
        };
        self.aliases.push(alias.clone());
        let pred = if self.is_sym("[") {
            self.pos += 1;
            let e = self.expr(true)?;
            self.expect_sym("]", "to close the node's conditions")?;
            Some(e)
        } else {
            None
        };
        Ok(NodePat { alias, kind, pred })
    }

    fn edge(&mut self) -> Result<EdgePat, QueryError> {
        let reverse = self.is_sym("<-");
        self.pos += 1;
        let mut kinds = Vec::new();
        let mut any = false;
        if self.is_sym("*") {
            self.pos += 1;
            any = true;
        } else {
            loop {
                let col = self.col();
                match self.next().tok {
                    Tok::Ident(k) => match EdgeKind::parse(&k) {
                        Some(e) => kinds.push(e),
                        None => {
                            return err(
                                col,
                                format!(
                                    "unknown edge kind `{k}` (one of: {}, or `*`)",
                                    EdgeKind::ALL.map(EdgeKind::as_str).join(", ")
                                ),
                            );
                        }
                    },
                    other => {
                        return err(
                            col,
                            format!("expected an edge kind or `*`, found {}", describe(&other)),
                        );
                    }
                }
                if self.is_sym("|") {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if self.is_sym("*") {
                self.pos += 1;
                any = true; // a hop range follows (or `*` alone: 1..MAX_HOPS)
            }
        }
        let (mut min, mut max) = (1, 1);
        if let Tok::Num(n) = *self.peek() {
            let col = self.col();
            self.pos += 1;
            min = hop_count(n, col)?;
            max = min;
            if self.is_sym("..") {
                self.pos += 1;
                let col = self.col();
                match self.next().tok {
                    Tok::Num(m) => max = hop_count(m, col)?,
                    other => {
                        return err(
                            col,
                            format!("expected the upper hop bound, found {}", describe(&other)),
                        );
                    }
                }
            }
            if max < min {
                return err(col, format!("hop range {min}..{max} is empty"));
            }
            if max > MAX_HOPS {
                return err(col, format!("at most {MAX_HOPS} hops are allowed"));
            }
        } else if any && !kinds.is_empty() {
            max = MAX_HOPS;
        }
        if reverse {
            self.expect_sym("-", "to end the edge (`<-kind-`)")?;
        } else {
            self.expect_sym("->", "to end the edge (`-kind->`)")?;
        }
        Ok(EdgePat {
            kinds,
            min,
            max,
            reverse,
        })
    }

    fn return_item(&mut self) -> Result<ReturnItem, QueryError> {
        let col = self.col();
        match self.next().tok {
            Tok::Ident(name) => match name.split_once('.') {
                Some((alias, prop)) => {
                    Ok(ReturnItem::Prop(self.alias(alias, col)?, prop.to_string()))
                }
                None => Ok(ReturnItem::Node(self.alias(&name, col)?)),
            },
            other => err(
                col,
                format!(
                    "expected a name or `name.property` to return, found {}",
                    describe(&other)
                ),
            ),
        }
    }

    fn alias(&self, name: &str, col: usize) -> Result<usize, QueryError> {
        self.aliases
            .iter()
            .position(|a| a.as_deref() == Some(name))
            .ok_or_else(|| QueryError {
                line: 1,
                column: col,
                message: format!("unknown name `{name}`: give a node a name with `{name}:kind`"),
            })
    }

    fn expr(&mut self, in_node: bool) -> Result<Expr, QueryError> {
        let mut left = self.and_expr(in_node)?;
        while self.is_kw("or") {
            self.pos += 1;
            let right = self.and_expr(in_node)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, in_node: bool) -> Result<Expr, QueryError> {
        let mut left = self.unary(in_node)?;
        while self.is_kw("and") || self.is_sym(",") {
            self.pos += 1;
            let right = self.unary(in_node)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, in_node: bool) -> Result<Expr, QueryError> {
        if self.is_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary(in_node)?)));
        }
        if self.is_sym("(") {
            self.pos += 1;
            let e = self.expr(in_node)?;
            self.expect_sym(")", "to close the parenthesis")?;
            return Ok(e);
        }
        let col = self.col();
        let (var, prop) = match self.next().tok {
            Tok::Ident(name) if !is_keyword(&name) => {
                if in_node {
                    (None, name)
                } else {
                    match name.split_once('.') {
                        Some((alias, prop)) => (Some(self.alias(alias, col)?), prop.to_string()),
                        None => {
                            return err(
                                col,
                                format!("`{name}`: in `where`, name the node too (`w.{name}`)"),
                            );
                        }
                    }
                }
            }
            other => {
                return err(
                    col,
                    format!("expected a property name, found {}", describe(&other)),
                );
            }
        };
        if self.is_kw("exists") {
            self.pos += 1;
            return Ok(Expr::Exists { var, prop });
        }
        if self.is_kw("in") {
            self.pos += 1;
            self.expect_sym("[", "to start the list after `in`")?;
            let mut values = Vec::new();
            loop {
                values.push(self.literal(false)?);
                if self.is_sym(",") {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            self.expect_sym("]", "to close the list")?;
            return Ok(Expr::In { var, prop, values });
        }
        let col = self.col();
        let op = match self.next().tok {
            Tok::Sym("=") | Tok::Sym("==") => Op::Eq,
            Tok::Sym("!=") => Op::Ne,
            Tok::Sym("<") => Op::Lt,
            Tok::Sym("<=") => Op::Le,
            Tok::Sym(">") => Op::Gt,
            Tok::Sym(">=") => Op::Ge,
            Tok::Sym("~") => Op::Match,
            Tok::Sym("!~") => Op::NotMatch,
            other => {
                return err(
                    col,
                    format!(
                        "expected an operator (=, !=, <, <=, >, >=, ~, !~, in, exists) after `{prop}`, found {}",
                        describe(&other)
                    ),
                );
            }
        };
        let value = self.literal(matches!(op, Op::Match | Op::NotMatch))?;
        Ok(Expr::Cmp {
            var,
            prop,
            op,
            value,
        })
    }

    fn literal(&mut self, pattern: bool) -> Result<Literal, QueryError> {
        let col = self.col();
        let lit = match self.next().tok {
            Tok::Str(s) if pattern => Literal::Pattern(glob_regex(&s).or_else(|e| err(col, e))?),
            Tok::Ident(s) if pattern => Literal::Pattern(glob_regex(&s).or_else(|e| err(col, e))?),
            Tok::Regex(r) if pattern => Literal::Pattern(
                Regex::new(&r).or_else(|e| err(col, format!("invalid regular expression: {e}")))?,
            ),
            Tok::Regex(_) => return err(col, "a `/regex/` only goes with `~` or `!~`"),
            Tok::Num(_) if pattern => return err(col, "`~` needs a glob string or a /regex/"),
            Tok::Str(s) => Literal::Str(s),
            Tok::Num(n) => Literal::Num(n),
            Tok::Ident(s) if s == "true" => Literal::Bool(true),
            Tok::Ident(s) if s == "false" => Literal::Bool(false),
            Tok::Ident(s) if !is_keyword(&s) => Literal::Str(s),
            other => return err(col, format!("expected a value, found {}", describe(&other))),
        };
        Ok(lit)
    }
}

fn hop_count(n: f64, col: usize) -> Result<u32, QueryError> {
    if n.fract() != 0.0 || n < 1.0 {
        return err(col, "hop counts are whole numbers from 1");
    }
    Ok(n as u32)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Num(n) => format!("number {n}"),
        Tok::Regex(r) => format!("regex /{r}/"),
        Tok::Sym(s) => format!("`{s}`"),
        Tok::End => "the end of the query".to_string(),
    }
}

/// A glob (`*` any run, `?` one character) as an anchored regular expression.
fn glob_regex(glob: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

/// Parses a query; errors carry the column.
pub fn parse(src: &str) -> Result<Query, QueryError> {
    if src.trim().is_empty() {
        return err(1, "empty query");
    }
    let run = || {
        let mut p = Parser {
            toks: lex(src)?,
            pos: 0,
            aliases: Vec::new(),
        };
        p.query()
    };
    // Positions are counted over the whole text; report them by line.
    run().map_err(|mut e| {
        let mut line = 1;
        let mut line_start = 0;
        for (i, c) in src.chars().enumerate() {
            if i + 1 >= e.column {
                break;
            }
            if c == '\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        e.line = line;
        e.column -= line_start;
        e
    })
}

// ---------------------------------------------------------------- evaluation

/// One match: the node bound to each pattern position, plus every node and edge walked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    /// One node per pattern node, in pattern order.
    pub nodes: Vec<NodeId>,
    /// Every node on the matched path (including the ones variable-length hops passed through).
    pub path_nodes: Vec<NodeId>,
    pub path_edges: Vec<EdgeId>,
}

/// A result cell: a node, or a property value (JSON `null` when the node has no such property).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Node(NodeRef),
    Value(serde_json::Value),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Node(n) => n.fmt(f),
            Cell::Value(v) => f.write_str(&value_text(v)),
        }
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The answer to a query: named columns and rows of cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// True when the limit cut the results short.
    pub truncated: bool,
    /// The matched paths, for DOT output.
    #[serde(skip)]
    pub matches: Vec<Match>,
}

impl QueryResult {
    /// The matched subgraph in Graphviz DOT.
    pub fn to_dot(&self, graph: &SecurityGraph) -> String {
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for m in &self.matches {
            nodes.extend(&m.path_nodes);
            edges.extend(&m.path_edges);
        }
        dot::subgraph(graph, &nodes, &edges)
    }

    /// Rows as JSON objects keyed by column name.
    pub fn to_json_rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(
                        row.iter()
                            .map(|c| serde_json::to_value(c).unwrap_or_default()),
                    )
                    .collect()
            })
            .collect()
    }
}

impl Query {
    /// Column names this query returns.
    pub fn columns(&self) -> Vec<String> {
        self.return_items()
            .iter()
            .map(|item| match item {
                ReturnItem::Node(i) => self.position_name(*i),
                ReturnItem::Prop(i, p) => format!("{}.{p}", self.position_name(*i)),
            })
            .collect()
    }

    fn position_name(&self, i: usize) -> String {
        if let Some(a) = &self.nodes[i].alias {
            return a.clone();
        }
        let kind = self.nodes[i].kind.map(NodeKind::as_str).unwrap_or("node");
        let same = self
            .nodes
            .iter()
            .filter(|n| n.alias.is_none() && n.kind.map(NodeKind::as_str).unwrap_or("node") == kind)
            .count();
        if same > 1 {
            format!("{kind}{i}")
        } else {
            kind.to_string()
        }
    }

    fn return_items(&self) -> Vec<ReturnItem> {
        if !self.returns.is_empty() {
            return self.returns.clone();
        }
        let named: Vec<_> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alias.is_some())
            .map(ReturnItem::Node)
            .collect();
        if named.is_empty() {
            (0..self.nodes.len()).map(ReturnItem::Node).collect()
        } else {
            named
        }
    }
}

/// Runs a query on a graph.
pub fn run(graph: &SecurityGraph, query: &Query) -> QueryResult {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let mut state = Search {
        graph,
        query,
        limit,
        seen: HashSet::new(),
        matches: Vec::new(),
        truncated: false,
        bound: Vec::with_capacity(query.nodes.len()),
        path_nodes: Vec::new(),
        path_edges: Vec::new(),
    };
    let start = &query.nodes[0];
    let candidates: Vec<NodeId> = match start.kind {
        Some(k) => graph.nodes_of(k).to_vec(),
        None => (0..graph.node_count() as NodeId).collect(),
    };
    for n in candidates {
        if state.truncated {
            break;
        }
        if node_matches(graph, start, n) {
            state.bound.push(n);
            state.path_nodes.push(n);
            state.step(0);
            state.bound.pop();
            state.path_nodes.pop();
        }
    }
    let items = query.return_items();
    let rows = state
        .matches
        .iter()
        .map(|m| {
            items
                .iter()
                .map(|item| match item {
                    ReturnItem::Node(i) => Cell::Node(graph.node_ref(m.nodes[*i])),
                    ReturnItem::Prop(i, p) => Cell::Value(
                        lookup(graph, m.nodes[*i], p)
                            .map(|v| v.to_json(graph))
                            .unwrap_or(serde_json::Value::Null),
                    ),
                })
                .collect()
        })
        .collect();
    QueryResult {
        columns: query.columns(),
        rows,
        truncated: state.truncated,
        matches: state.matches,
    }
}

/// Parses and runs a query, or a built-in query by name.
pub fn run_text(graph: &SecurityGraph, text: &str) -> Result<QueryResult, QueryError> {
    let src = builtin(text.trim()).map(|q| q.query).unwrap_or(text);
    Ok(run(graph, &parse(src)?))
}

struct Search<'g> {
    graph: &'g SecurityGraph,
    query: &'g Query,
    limit: usize,
    seen: HashSet<Vec<NodeId>>,
    matches: Vec<Match>,
    truncated: bool,
    bound: Vec<NodeId>,
    path_nodes: Vec<NodeId>,
    path_edges: Vec<EdgeId>,
}

impl Search<'_> {
    /// Extends the match from pattern node `i` (bound, last in `path_nodes`) along edge `i`.
    fn step(&mut self, i: usize) {
        if self.truncated {
            return;
        }
        if i == self.query.edges.len() {
            self.complete();
            return;
        }
        let from = *self.path_nodes.last().unwrap_or(&0);
        self.hop(i, from, 1);
    }

    fn hop(&mut self, i: usize, from: NodeId, depth: u32) {
        let pat = &self.query.edges[i];
        let g = self.graph;
        let list = if pat.reverse {
            g.in_edges.get(from as usize)
        } else {
            g.out_edges.get(from as usize)
        };
        let Some(list) = list else { return };
        for &eid in list {
            if self.truncated {
                return;
            }
            let e = g.edges[eid as usize];
            if !pat.kinds.is_empty() && !pat.kinds.contains(&e.kind) {
                continue;
            }
            let next = if pat.reverse { e.from } else { e.to };
            if self.path_nodes.contains(&next) {
                continue; // simple paths only
            }
            self.path_nodes.push(next);
            self.path_edges.push(eid);
            if depth >= pat.min && node_matches(g, &self.query.nodes[i + 1], next) {
                self.bound.push(next);
                self.step(i + 1);
                self.bound.pop();
            }
            if depth < pat.max {
                self.hop(i, next, depth + 1);
            }
            self.path_nodes.pop();
            self.path_edges.pop();
        }
    }

    fn complete(&mut self) {
        if let Some(filter) = &self.query.filter
            && !eval(self.graph, filter, None, &self.bound)
        {
            return;
        }
        if !self.seen.insert(self.bound.clone()) {
            return;
        }
        if self.matches.len() >= self.limit {
            self.truncated = true;
            return;
        }
        self.matches.push(Match {
            nodes: self.bound.clone(),
            path_nodes: self.path_nodes.clone(),
            path_edges: self.path_edges.clone(),
        });
    }
}

fn node_matches(g: &SecurityGraph, pat: &NodePat, n: NodeId) -> bool {
    if let Some(k) = pat.kind
        && g.node_kind(n) != k
    {
        return false;
    }
    match &pat.pred {
        Some(e) => eval(g, e, Some(n), &[]),
        None => true,
    }
}

/// A property value as the evaluator sees it (built-ins included).
enum Value<'g> {
    Str(&'g str),
    Num(f64),
    Bool(bool),
    List(Vec<&'g str>),
}

impl Value<'_> {
    fn to_json(&self, _g: &SecurityGraph) -> serde_json::Value {
        match self {
            Value::Str(s) => (*s).into(),
            Value::Num(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Bool(b) => (*b).into(),
            Value::List(l) => l.clone().into(),
        }
    }
}

fn lookup<'g>(g: &'g SecurityGraph, n: NodeId, prop: &str) -> Option<Value<'g>> {
    match prop {
        "kind" => return Some(Value::Str(g.node_kind(n).as_str())),
        "name" => return Some(Value::Str(g.node_name(n))),
        "namespace" => return g.node_namespace(n).map(Value::Str),
        "object_kind" => return g.origin(n).map(|o| Value::Str(o.kind.as_str())),
        _ => {}
    }
    Some(match g.prop(n, prop)? {
        PropValue::Str(s) => Value::Str(g.str(*s)),
        PropValue::Num(x) => Value::Num(*x),
        PropValue::Bool(b) => Value::Bool(*b),
        PropValue::List(l) => Value::List(l.iter().map(|s| g.str(*s)).collect()),
    })
}

fn eval(g: &SecurityGraph, e: &Expr, node: Option<NodeId>, bound: &[NodeId]) -> bool {
    let target = |var: &Option<usize>| -> Option<NodeId> {
        match var {
            Some(i) => bound.get(*i).copied(),
            None => node,
        }
    };
    match e {
        Expr::And(a, b) => eval(g, a, node, bound) && eval(g, b, node, bound),
        Expr::Or(a, b) => eval(g, a, node, bound) || eval(g, b, node, bound),
        Expr::Not(a) => !eval(g, a, node, bound),
        Expr::Exists { var, prop } => target(var).and_then(|n| lookup(g, n, prop)).is_some(),
        Expr::In { var, prop, values } => match target(var).and_then(|n| lookup(g, n, prop)) {
            Some(v) => values.iter().any(|lit| compare(&v, Op::Eq, lit)),
            None => false,
        },
        Expr::Cmp {
            var,
            prop,
            op,
            value,
        } => match target(var).and_then(|n| lookup(g, n, prop)) {
            Some(v) => compare(&v, *op, value),
            None => matches!(op, Op::Ne | Op::NotMatch),
        },
    }
}

fn compare(v: &Value<'_>, op: Op, lit: &Literal) -> bool {
    match v {
        Value::List(items) => match op {
            Op::Ne => !items
                .iter()
                .any(|s| compare_scalar(&Value::Str(s), Op::Eq, lit)),
            Op::NotMatch => !items
                .iter()
                .any(|s| compare_scalar(&Value::Str(s), Op::Match, lit)),
            _ => items
                .iter()
                .any(|s| compare_scalar(&Value::Str(s), op, lit)),
        },
        scalar => compare_scalar(scalar, op, lit),
    }
}

fn compare_scalar(v: &Value<'_>, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let text;
    let as_text: &str = match v {
        Value::Str(s) => s,
        Value::Num(n) => {
            text = n.to_string();
            &text
        }
        Value::Bool(b) => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        Value::List(_) => return false,
    };
    if let Literal::Pattern(re) = lit {
        return match op {
            Op::Match => re.is_match(as_text),
            Op::NotMatch => !re.is_match(as_text),
            _ => false,
        };
    }
    let ord: Option<Ordering> = match (v, lit) {
        (Value::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (Value::Num(a), Literal::Str(s)) => s.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b)),
        (Value::Str(a), Literal::Num(b)) => a.parse::<f64>().ok().and_then(|x| x.partial_cmp(b)),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Bool(_), Literal::Str(s)) => Some(as_text.cmp(s.as_str())),
        (Value::Str(a), Literal::Str(b)) => match (severity_rank(a), severity_rank(b)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some((*a).cmp(b.as_str())),
        },
        (Value::Str(a), Literal::Bool(b)) => Some((*a).cmp(if *b { "true" } else { "false" })),
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Ne, None) => true,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

fn severity_rank(s: &str) -> Option<Severity> {
    Severity::ALL
        .into_iter()
        .find(|x| x.as_str().eq_ignore_ascii_case(s))
}

/// A list (or scalar) property as comma-separated text.
pub(crate) fn list_text(g: &SecurityGraph, v: &PropValue) -> String {
    value_text(&g.value_json(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::EdgeKind;

    /// internet → svc → web (exposed, privileged) → sa (cluster-admin); db (not exposed) → sa2.
    fn graph() -> SecurityGraph {
        let mut g = SecurityGraph::new(None);
        let i = g.node(NodeKind::Internet, None, "internet");
        let svc = g.node(NodeKind::Service, Some("prod"), "web");
        let web = g.node(NodeKind::Workload, Some("prod"), "web");
        let db = g.node(NodeKind::Workload, Some("prod"), "db");
        let sa = g.node(NodeKind::ServiceAccount, Some("prod"), "web");
        let sa2 = g.node(NodeKind::ServiceAccount, Some("prod"), "db");
        g.edge(i, EdgeKind::Exposes, svc);
        g.edge(svc, EdgeKind::RoutesTo, web);
        g.edge(web, EdgeKind::RunsAs, sa);
        g.edge(db, EdgeKind::RunsAs, sa2);
        g.set_bool(web, "exposed", true);
        g.set_bool(web, "privileged", true);
        g.set_num(web, "replicas", 3.0);
        g.set_list(web, "labels", ["app=web", "tier=front"]);
        g.set_bool(db, "exposed", false);
        g.set_num(db, "replicas", 1.0);
        g.set_bool(sa, "cluster_admin", true);
        g.set_bool(sa2, "cluster_admin", false);
        g
    }

    fn count(q: &str) -> usize {
        run(
            &graph(),
            &parse(q).unwrap_or_else(|e| panic!("{}", e.render(q))),
        )
        .rows
        .len()
    }

    #[test]
    fn predicates() {
        assert_eq!(count("workload"), 2);
        assert_eq!(count("workload[exposed=true]"), 1);
        assert_eq!(count("workload[exposed!=true]"), 1);
        assert_eq!(count("workload[replicas>1]"), 1);
        assert_eq!(count("workload[replicas>=1, replicas<=3]"), 2);
        assert_eq!(count("workload[replicas<1]"), 0);
        assert_eq!(count("workload[name in [db, other]]"), 1);
        assert_eq!(count("workload[labels = \"tier=front\"]"), 1);
        assert_eq!(count("workload[labels ~ \"app=*\"]"), 1);
        assert_eq!(count("workload[labels !~ /^app=/]"), 1);
        assert_eq!(count("workload[privileged exists]"), 1);
        assert_eq!(count("workload[not privileged exists]"), 1);
        // Missing properties: comparisons fail, `!=` holds.
        assert_eq!(count("workload[privileged = false]"), 0);
        assert_eq!(count("workload[privileged != true]"), 1);
        assert_eq!(count("workload[exposed=true or name=db]"), 2);
        assert_eq!(
            count("workload[(exposed=true or name=db) and replicas=1]"),
            1
        );
        assert_eq!(count("*[namespace=prod]"), 5);
        assert_eq!(count("any[kind=internet]"), 1);
    }

    #[test]
    fn edges_and_hops() {
        assert_eq!(
            count("workload -runs_as-> serviceaccount[cluster_admin=true]"),
            1
        );
        assert_eq!(count("internet -exposes-> workload"), 0);
        assert_eq!(count("internet -*2-> workload"), 1);
        assert_eq!(count("internet -*1..3-> *"), 3);
        assert_eq!(count("internet -exposes|routes_to*-> w:workload"), 1);
        assert_eq!(
            count("serviceaccount <-runs_as- workload[exposed=false]"),
            1
        );
        let r = run(
            &graph(),
            &parse("i:internet -*1..3-> sa:serviceaccount where sa.cluster_admin = true return sa.name, i").unwrap(),
        );
        assert_eq!(r.columns, vec!["sa.name", "i"]);
        assert_eq!(r.rows[0][0].to_string(), "web");
        assert_eq!(r.matches[0].path_edges.len(), 3);
        assert_eq!(r.matches[0].path_nodes.len(), 4);
        // Default columns: named nodes, else every node by kind.
        let r = run(
            &graph(),
            &parse("workload -runs_as-> serviceaccount").unwrap(),
        );
        assert_eq!(r.columns, vec!["workload", "serviceaccount"]);
        let r = run(&graph(), &parse("* -*-> *").unwrap());
        assert_eq!(r.columns, vec!["node0", "node1"]);
        assert_eq!(r.rows.len(), 4);
    }

    #[test]
    fn parse_errors_point_at_the_column() {
        let e = |q: &str| parse(q).unwrap_err();
        assert_eq!(e("workload[exposed=true").column, 22);
        assert!(e("workload[exposed=true").message.contains("`]`"));
        let bad_kind = e("workload -runs_as-> pony");
        assert_eq!(bad_kind.column, 21);
        assert!(bad_kind.message.contains("unknown node kind `pony`"));
        assert_eq!(e("workload -flies-> node").column, 11);
        assert_eq!(e("workload -runs_as- node").column, 18);
        assert_eq!(e("w:workload where x.name = a").column, 18);
        assert!(e("w:workload where name = a").message.contains("w.name"));
        assert_eq!(e("workload[name ~ /(/]").column, 17);
        assert_eq!(e("workload[name = \"abc").column, 17);
        assert_eq!(e("workload -*3..1-> node").column, 12);
        assert_eq!(e("workload -*1..9-> node").column, 12);
        assert_eq!(e("workload return w").column, 17);
        assert_eq!(e("w:workload limit 0").column, 18);
        assert_eq!(e("w:workload w:node").column, 12);
        assert_eq!(
            e("w:workload -runs_as-> w:serviceaccount").message,
            "name `w` is used twice"
        );
        assert_eq!(e("workload[name = /x/]").column, 17);
        assert_eq!(e("").column, 1);
        assert_eq!(e("workload $").column, 10);
        let multi = e("w:workload\n  where w.name = a\n  return x");
        assert_eq!((multi.line, multi.column), (3, 10));
        assert_eq!(
            multi.to_string(),
            "line 3, column 10: unknown name `x`: give a node a name with `x:kind`"
        );
        assert!(
            multi
                .render("w:workload\n  where w.name = a\n  return x")
                .starts_with("  return x\n         ^\n")
        );
        let rendered = e("workload -runs_as-> pony").render("workload -runs_as-> pony");
        assert!(rendered.contains("\n                    ^\n"));
    }

    #[test]
    fn builtin_queries_parse_and_are_unique() {
        for q in BUILTIN {
            parse(q.query).unwrap_or_else(|e| panic!("{}: {}", q.name, e.render(q.query)));
            assert_eq!(BUILTIN.iter().filter(|o| o.name == q.name).count(), 1);
        }
        assert!(builtin("exposed-critical").is_some());
        assert!(builtin("nope").is_none());
    }

    #[test]
    fn severity_names_compare_by_rank() {
        let mut g = SecurityGraph::new(None);
        for (id, sev) in [("a", "low"), ("b", "high"), ("c", "critical")] {
            let v = g.node(NodeKind::Vulnerability, None, id);
            g.set_str(v, "severity", sev);
        }
        let r = run(
            &g,
            &parse("v:vulnerability[severity >= high] return v.name").unwrap(),
        );
        assert_eq!(r.rows.len(), 2);
        let r = run(&g, &parse("v:vulnerability[severity < medium]").unwrap());
        assert_eq!(r.rows.len(), 1);
    }
}
