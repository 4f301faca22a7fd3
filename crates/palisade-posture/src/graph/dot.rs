//! Graphviz DOT output of the whole graph or of a matched subgraph.

use super::model::{EdgeId, NodeId, NodeKind, SecurityGraph};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The subgraph made of these nodes and edges (the edges' ends are included too).
pub fn subgraph(graph: &SecurityGraph, nodes: &[NodeId], edges: &[EdgeId]) -> String {
    let edges: BTreeSet<EdgeId> = edges
        .iter()
        .copied()
        .filter(|e| (*e as usize) < graph.edges.len())
        .collect();
    let mut node_set: BTreeSet<NodeId> = nodes
        .iter()
        .copied()
        .filter(|n| (*n as usize) < graph.nodes.len())
        .collect();
    for e in &edges {
        let edge = graph.edges[*e as usize];
        node_set.insert(edge.from);
        node_set.insert(edge.to);
    }
    let mut out = String::from(
        "digraph palisade {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    for n in &node_set {
        let kind = graph.node_kind(*n);
        let (shape, color) = style(kind);
        let label = graph.node_ref(*n).to_string();
        let _ = writeln!(
            out,
            "  n{n} [label=\"{}\", shape={shape}, style=filled, fillcolor=\"{color}\"];",
            escape(&label)
        );
    }
    for e in &edges {
        let edge = graph.edges[*e as usize];
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"];",
            edge.from,
            edge.to,
            edge.kind.as_str()
        );
    }
    out.push_str("}\n");
    out
}

/// Several attack paths in one picture.
pub fn paths(graph: &SecurityGraph, paths: &[super::paths::AttackPath]) -> String {
    let nodes: Vec<NodeId> = paths.iter().flat_map(|p| p.nodes.iter().copied()).collect();
    let edges: Vec<EdgeId> = paths.iter().flat_map(|p| p.edges.iter().copied()).collect();
    subgraph(graph, &nodes, &edges)
}

/// The whole graph (small graphs only: every node and edge).
pub fn whole(graph: &SecurityGraph) -> String {
    let nodes: Vec<NodeId> = (0..graph.node_count() as NodeId).collect();
    let edges: Vec<EdgeId> = (0..graph.edge_count() as EdgeId).collect();
    subgraph(graph, &nodes, &edges)
}

fn style(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Internet => ("doubleoctagon", "#f4cccc"),
        NodeKind::Service | NodeKind::Ingress => ("box", "#fce5cd"),
        NodeKind::Workload => ("box3d", "#cfe2f3"),
        NodeKind::Container => ("component", "#d9ead3"),
        NodeKind::Image => ("folder", "#d9d2e9"),
        NodeKind::Vulnerability => ("octagon", "#ea9999"),
        NodeKind::ServiceAccount => ("ellipse", "#fff2cc"),
        NodeKind::Permission => ("diamond", "#ffd966"),
        NodeKind::Secret => ("note", "#f9cb9c"),
        NodeKind::Node => ("box", "#b7b7b7"),
        NodeKind::Namespace => ("tab", "#eeeeee"),
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::EdgeKind;

    #[test]
    fn dot_lists_nodes_and_labelled_edges() {
        let mut g = SecurityGraph::new(None);
        let i = g.node(NodeKind::Internet, None, "internet");
        let w = g.node(NodeKind::Workload, Some("prod"), "we\"b");
        g.edge(i, EdgeKind::Exposes, w);
        let dot = whole(&g);
        assert!(dot.starts_with("digraph palisade {"));
        assert!(dot.contains("n0 -> n1 [label=\"exposes\"]"));
        assert!(dot.contains("workload prod/we\\\"b"));
        let only_edge = subgraph(&g, &[], &[0]);
        assert!(only_edge.contains("n0 [") && only_edge.contains("n1 ["));
    }
}
