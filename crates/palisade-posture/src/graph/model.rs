//! The graph itself: interned strings, typed nodes and edges, adjacency lists by node id.

use palisade_kube::SourceLocation;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Index of a node in [`SecurityGraph::nodes`].
pub type NodeId = u32;
/// Index of an edge in [`SecurityGraph::edges`].
pub type EdgeId = u32;
/// Index of an interned string (see [`SecurityGraph::str`]).
pub type Sym = u32;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// The one node standing for everything outside the cluster.
    Internet,
    Service,
    Ingress,
    /// A top-level workload: a Deployment (with its ReplicaSets and Pods), a StatefulSet, a bare Pod, ...
    Workload,
    Container,
    Image,
    Vulnerability,
    ServiceAccount,
    /// A dangerous ability a service account holds ("cluster-admin", "read secrets cluster-wide").
    Permission,
    Secret,
    /// A cluster node (host access targets it).
    Node,
    Namespace,
}

impl NodeKind {
    pub const ALL: [NodeKind; 12] = [
        NodeKind::Internet,
        NodeKind::Service,
        NodeKind::Ingress,
        NodeKind::Workload,
        NodeKind::Container,
        NodeKind::Image,
        NodeKind::Vulnerability,
        NodeKind::ServiceAccount,
        NodeKind::Permission,
        NodeKind::Secret,
        NodeKind::Node,
        NodeKind::Namespace,
    ];

    /// The name used in queries and output.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Internet => "internet",
            NodeKind::Service => "service",
            NodeKind::Ingress => "ingress",
            NodeKind::Workload => "workload",
            NodeKind::Container => "container",
            NodeKind::Image => "image",
            NodeKind::Vulnerability => "vulnerability",
            NodeKind::ServiceAccount => "serviceaccount",
            NodeKind::Permission => "permission",
            NodeKind::Secret => "secret",
            NodeKind::Node => "node",
            NodeKind::Namespace => "namespace",
        }
    }

    /// Parses a kind name as written in a query (case-insensitive).
    pub fn parse(s: &str) -> Option<NodeKind> {
        let lower = s.to_ascii_lowercase();
        NodeKind::ALL.into_iter().find(|k| k.as_str() == lower)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an edge means; always read "from <kind> to".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Internet → Service / Ingress / Workload (hostNetwork, hostPort).
    Exposes,
    /// Ingress → Service, Service → Workload.
    RoutesTo,
    /// Workload → Container.
    Runs,
    /// Container → Image.
    UsesImage,
    /// Image → Vulnerability.
    HasVulnerability,
    /// Workload → ServiceAccount.
    RunsAs,
    /// ServiceAccount → Permission.
    Can,
    /// Workload → Secret (volumes, env, imagePullSecrets).
    Mounts,
    /// Permission → Secret.
    CanRead,
    /// Workload → Node.
    HostAccess,
    /// Namespaced node → Namespace.
    InNamespace,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 11] = [
        EdgeKind::Exposes,
        EdgeKind::RoutesTo,
        EdgeKind::Runs,
        EdgeKind::UsesImage,
        EdgeKind::HasVulnerability,
        EdgeKind::RunsAs,
        EdgeKind::Can,
        EdgeKind::Mounts,
        EdgeKind::CanRead,
        EdgeKind::HostAccess,
        EdgeKind::InNamespace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Exposes => "exposes",
            EdgeKind::RoutesTo => "routes_to",
            EdgeKind::Runs => "runs",
            EdgeKind::UsesImage => "uses_image",
            EdgeKind::HasVulnerability => "has_vulnerability",
            EdgeKind::RunsAs => "runs_as",
            EdgeKind::Can => "can",
            EdgeKind::Mounts => "mounts",
            EdgeKind::CanRead => "can_read",
            EdgeKind::HostAccess => "host_access",
            EdgeKind::InNamespace => "in_namespace",
        }
    }

    /// Parses an edge kind as written in a query (case-insensitive, `-` accepted for `_`).
    pub fn parse(s: &str) -> Option<EdgeKind> {
        let lower = s.to_ascii_lowercase().replace('-', "_");
        EdgeKind::ALL.into_iter().find(|k| k.as_str() == lower)
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed property value; strings are interned.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    Str(Sym),
    Num(f64),
    Bool(bool),
    List(Vec<Sym>),
}

/// The Kubernetes object a node was made from, for findings (resource and file/line).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub source: Option<SourceLocation>,
}

/// One node: identity plus a few typed properties.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub name: Sym,
    pub namespace: Option<Sym>,
    /// Index into [`SecurityGraph::origins`] for nodes made from one object.
    pub origin: Option<u32>,
    /// Sorted by property name symbol on [`SecurityGraph::finish`]; few per node.
    pub props: Vec<(Sym, PropValue)>,
}

/// One directed edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    pub kind: EdgeKind,
}

/// String interner: every name, namespace and property string is stored once.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    strings: Vec<Box<str>>,
    index: HashMap<Box<str>, Sym>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.strings.len() as Sym;
        self.strings.push(s.into());
        self.index.insert(s.into(), id);
        id
    }

    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }

    pub fn get(&self, sym: Sym) -> &str {
        self.strings.get(sym as usize).map(|s| &**s).unwrap_or("")
    }
}

/// The security graph of one inventory.
#[derive(Debug, Clone, Default)]
pub struct SecurityGraph {
    /// Cluster name of the inventory, for findings.
    pub cluster: Option<String>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub origins: Vec<Origin>,
    pub(crate) strings: Interner,
    /// Outgoing and incoming edge ids per node.
    pub(crate) out_edges: Vec<Vec<EdgeId>>,
    pub(crate) in_edges: Vec<Vec<EdgeId>>,
    /// Node ids per kind (indexed by `NodeKind as usize`).
    pub(crate) by_kind: Vec<Vec<NodeId>>,
    node_index: HashMap<(NodeKind, Option<Sym>, Sym), NodeId>,
    edge_index: std::collections::HashSet<Edge>,
}

impl SecurityGraph {
    /// An empty graph (see [`SecurityGraph::build`] for the usual way to get one).
    pub fn new(cluster: Option<String>) -> Self {
        SecurityGraph {
            cluster,
            by_kind: vec![Vec::new(); NodeKind::ALL.len()],
            ..Default::default()
        }
    }

    pub fn intern(&mut self, s: &str) -> Sym {
        self.strings.intern(s)
    }

    /// The text of an interned string.
    pub fn str(&self, sym: Sym) -> &str {
        self.strings.get(sym)
    }

    /// The symbol of a string if the graph holds it.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.strings.lookup(s)
    }

    /// The node of this kind, namespace and name, created on first use.
    pub fn node(&mut self, kind: NodeKind, namespace: Option<&str>, name: &str) -> NodeId {
        let ns = namespace.map(|n| self.strings.intern(n));
        let name = self.strings.intern(name);
        if let Some(&id) = self.node_index.get(&(kind, ns, name)) {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            kind,
            name,
            namespace: ns,
            origin: None,
            props: Vec::new(),
        });
        self.out_edges.push(Vec::new());
        self.in_edges.push(Vec::new());
        self.by_kind[kind.index()].push(id);
        self.node_index.insert((kind, ns, name), id);
        id
    }

    /// A new node that [`SecurityGraph::find`] does not index (several nodes may share a name,
    /// e.g. one vulnerability id rated differently in two images).
    pub fn add_node(&mut self, kind: NodeKind, namespace: Option<&str>, name: &str) -> NodeId {
        let namespace = namespace.map(|n| self.strings.intern(n));
        let name = self.strings.intern(name);
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            kind,
            name,
            namespace,
            origin: None,
            props: Vec::new(),
        });
        self.out_edges.push(Vec::new());
        self.in_edges.push(Vec::new());
        self.by_kind[kind.index()].push(id);
        id
    }

    /// Looks a node up without creating it.
    pub fn find(&self, kind: NodeKind, namespace: Option<&str>, name: &str) -> Option<NodeId> {
        let ns = match namespace {
            Some(n) => Some(self.strings.lookup(n)?),
            None => None,
        };
        let name = self.strings.lookup(name)?;
        self.node_index.get(&(kind, ns, name)).copied()
    }

    /// Adds an edge once (a second identical edge is ignored).
    pub fn edge(&mut self, from: NodeId, kind: EdgeKind, to: NodeId) {
        let e = Edge { from, to, kind };
        if !self.edge_index.insert(e) {
            return;
        }
        let id = self.edges.len() as EdgeId;
        self.edges.push(e);
        self.out_edges[from as usize].push(id);
        self.in_edges[to as usize].push(id);
    }

    /// Records the object a node came from.
    pub fn set_origin(&mut self, node: NodeId, origin: Origin) {
        let idx = self.origins.len() as u32;
        self.origins.push(origin);
        self.nodes[node as usize].origin = Some(idx);
    }

    /// Sets (or replaces) a property.
    pub fn set(&mut self, node: NodeId, name: &str, value: PropValue) {
        let key = self.strings.intern(name);
        let props = &mut self.nodes[node as usize].props;
        match props.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => props.push((key, value)),
        }
    }

    pub fn set_str(&mut self, node: NodeId, name: &str, value: &str) {
        let v = self.strings.intern(value);
        self.set(node, name, PropValue::Str(v));
    }

    pub fn set_bool(&mut self, node: NodeId, name: &str, value: bool) {
        self.set(node, name, PropValue::Bool(value));
    }

    pub fn set_num(&mut self, node: NodeId, name: &str, value: f64) {
        self.set(node, name, PropValue::Num(value));
    }

    pub fn set_list<'s>(
        &mut self,
        node: NodeId,
        name: &str,
        values: impl IntoIterator<Item = &'s str>,
    ) {
        let list = values.into_iter().map(|v| self.strings.intern(v)).collect();
        self.set(node, name, PropValue::List(list));
    }

    /// Adds one string to a list property (creating it), keeping it free of duplicates.
    pub fn push_list(&mut self, node: NodeId, name: &str, value: &str) {
        let key = self.strings.intern(name);
        let v = self.strings.intern(value);
        let props = &mut self.nodes[node as usize].props;
        match props.iter_mut().find(|(k, _)| *k == key) {
            Some((_, PropValue::List(list))) => {
                if !list.contains(&v) {
                    list.push(v);
                }
            }
            Some(slot) => slot.1 = PropValue::List(vec![v]),
            None => props.push((key, PropValue::List(vec![v]))),
        }
    }

    /// Drops the lookup tables only needed while building.
    pub fn finish(&mut self) {
        self.node_index.shrink_to_fit();
        self.edge_index = Default::default();
        for n in &mut self.nodes {
            n.props.shrink_to_fit();
        }
    }

    /// A stored property of a node (not the built-in `kind`, `name`, `namespace`).
    pub fn prop(&self, node: NodeId, name: &str) -> Option<&PropValue> {
        let key = self.strings.lookup(name)?;
        self.nodes
            .get(node as usize)?
            .props
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    pub fn prop_bool(&self, node: NodeId, name: &str) -> bool {
        matches!(self.prop(node, name), Some(PropValue::Bool(true)))
    }

    pub fn prop_num(&self, node: NodeId, name: &str) -> Option<f64> {
        match self.prop(node, name) {
            Some(PropValue::Num(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn prop_str(&self, node: NodeId, name: &str) -> Option<&str> {
        match self.prop(node, name) {
            Some(PropValue::Str(s)) => Some(self.str(*s)),
            _ => None,
        }
    }

    /// Nodes of one kind.
    pub fn nodes_of(&self, kind: NodeKind) -> &[NodeId] {
        self.by_kind
            .get(kind.index())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Outgoing edges of a node, as (edge id, edge).
    pub fn out(&self, node: NodeId) -> impl Iterator<Item = (EdgeId, Edge)> + '_ {
        self.out_edges
            .get(node as usize)
            .into_iter()
            .flatten()
            .map(|&e| (e, self.edges[e as usize]))
    }

    /// Incoming edges of a node, as (edge id, edge).
    pub fn incoming(&self, node: NodeId) -> impl Iterator<Item = (EdgeId, Edge)> + '_ {
        self.in_edges
            .get(node as usize)
            .into_iter()
            .flatten()
            .map(|&e| (e, self.edges[e as usize]))
    }

    /// Targets of outgoing edges of one kind.
    pub fn targets(&self, node: NodeId, kind: EdgeKind) -> impl Iterator<Item = NodeId> + '_ {
        self.out(node)
            .filter(move |(_, e)| e.kind == kind)
            .map(|(_, e)| e.to)
    }

    /// The edge id from `from` to `to` of this kind, if any.
    pub fn edge_between(&self, from: NodeId, kind: EdgeKind, to: NodeId) -> Option<EdgeId> {
        self.out(from)
            .find(|(_, e)| e.kind == kind && e.to == to)
            .map(|(id, _)| id)
    }

    pub fn node_kind(&self, node: NodeId) -> NodeKind {
        self.nodes[node as usize].kind
    }

    pub fn node_name(&self, node: NodeId) -> &str {
        self.str(self.nodes[node as usize].name)
    }

    pub fn node_namespace(&self, node: NodeId) -> Option<&str> {
        self.nodes[node as usize].namespace.map(|s| self.str(s))
    }

    /// `kind namespace/name` (or `kind name`) for people.
    pub fn label(&self, node: NodeId) -> String {
        let n = &self.nodes[node as usize];
        match n.namespace {
            Some(ns) => format!("{} {}/{}", n.kind, self.str(ns), self.str(n.name)),
            None => format!("{} {}", n.kind, self.str(n.name)),
        }
    }

    /// The object a node came from, if it came from one.
    pub fn origin(&self, node: NodeId) -> Option<&Origin> {
        self.origins
            .get(self.nodes.get(node as usize)?.origin? as usize)
    }

    /// A node reference for output.
    pub fn node_ref(&self, node: NodeId) -> NodeRef {
        let n = &self.nodes[node as usize];
        NodeRef {
            id: node,
            kind: n.kind,
            namespace: n.namespace.map(|s| self.str(s).to_string()),
            name: self.str(n.name).to_string(),
            object_kind: self.origin(node).map(|o| o.kind.clone()),
        }
    }

    /// Every property of a node as JSON, including `kind`, `name` and `namespace`.
    pub fn properties_json(&self, node: NodeId) -> serde_json::Map<String, serde_json::Value> {
        let n = &self.nodes[node as usize];
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), n.kind.as_str().into());
        m.insert("name".into(), self.str(n.name).into());
        if let Some(ns) = n.namespace {
            m.insert("namespace".into(), self.str(ns).into());
        }
        let mut props: Vec<_> = n.props.iter().collect();
        props.sort_by(|a, b| self.str(a.0).cmp(self.str(b.0)));
        for (k, v) in props {
            m.insert(self.str(*k).to_string(), self.value_json(v));
        }
        m
    }

    pub(crate) fn value_json(&self, v: &PropValue) -> serde_json::Value {
        match v {
            PropValue::Str(s) => self.str(*s).into(),
            PropValue::Num(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            PropValue::Bool(b) => (*b).into(),
            PropValue::List(l) => l.iter().map(|s| self.str(*s)).collect::<Vec<_>>().into(),
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }
}

/// A node as it appears in query results and attack paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    pub id: NodeId,
    pub kind: NodeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `Deployment`, `Pod`, `Service`, ... for nodes made from one object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_kind: Option<String>,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.object_kind.as_deref().unwrap_or(self.kind.as_str());
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_edges_are_deduplicated() {
        let mut g = SecurityGraph::new(None);
        let a = g.node(NodeKind::Workload, Some("prod"), "web");
        let b = g.node(NodeKind::Workload, Some("prod"), "web");
        let c = g.node(NodeKind::ServiceAccount, Some("prod"), "web");
        assert_eq!(a, b);
        g.edge(a, EdgeKind::RunsAs, c);
        g.edge(a, EdgeKind::RunsAs, c);
        assert_eq!(g.edge_count(), 1);
        assert_eq!(g.targets(a, EdgeKind::RunsAs).collect::<Vec<_>>(), vec![c]);
        assert_eq!(g.incoming(c).count(), 1);
        g.set_bool(a, "privileged", true);
        g.push_list(a, "ports", "80");
        g.push_list(a, "ports", "80");
        g.push_list(a, "ports", "443");
        assert!(g.prop_bool(a, "privileged"));
        assert_eq!(
            g.properties_json(a)["ports"],
            serde_json::json!(["80", "443"])
        );
        assert_eq!(g.label(a), "workload prod/web");
        assert_eq!(g.find(NodeKind::Workload, Some("prod"), "web"), Some(a));
        assert_eq!(g.find(NodeKind::Workload, None, "web"), None);
        assert_eq!(g.nodes_of(NodeKind::Workload), &[a]);
    }

    #[test]
    fn kinds_parse_from_query_names() {
        assert_eq!(
            NodeKind::parse("ServiceAccount"),
            Some(NodeKind::ServiceAccount)
        );
        assert_eq!(EdgeKind::parse("runs-as"), Some(EdgeKind::RunsAs));
        assert_eq!(EdgeKind::parse("bogus"), None);
    }
}
