//! `palisade bench posture`: the posture engine's throughput and memory on a generated inventory.

use crate::bench::peak_rss_bytes;
use crate::cli::StatusFormat;
use crate::scan::emit;
use anyhow::Result;
use palisade_kube::manifest::{ManifestLimits, parse_manifests};
use palisade_posture::graph::{self, SecurityGraph};
use palisade_posture::rbac::RbacIndex;
use palisade_posture::{PostureConfig, synthetic};
use serde_json::json;
use std::time::{Duration, Instant};

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn per_second(n: usize, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// Generates the inventory, then times each stage `runs` times (best run reported).
pub fn run(objects: u32, rbac: u32, runs: u32, format: StatusFormat) -> Result<()> {
    let inventory = synthetic::inventory(objects as usize, rbac as usize);
    let n = inventory.objects.len();
    let config = PostureConfig::default();
    // The same objects as one multi-document YAML file, for the manifest loader's rate.
    let mut yaml = String::new();
    for o in &inventory.objects {
        yaml.push_str("---\n");
        yaml.push_str(&yaml_serde::to_string(&o.value)?);
    }
    let (mut load, mut checks, mut rbac_t, mut graph_t, mut paths_t) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut findings, mut path_count) = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let parsed = parse_manifests(&yaml, "bench.yaml", &ManifestLimits::default());
        load.push(t.elapsed());
        anyhow::ensure!(
            parsed.objects.len() == n,
            "loader read {} of {n} objects",
            parsed.objects.len()
        );
        drop(parsed);

        let t = Instant::now();
        findings = palisade_posture::analyze(&inventory, &config).len();
        checks.push(t.elapsed());

        let t = Instant::now();
        let index = RbacIndex::build(&inventory);
        rbac_t.push(t.elapsed());

        let t = Instant::now();
        let g = SecurityGraph::build(&inventory, &index, None, &config);
        graph_t.push(t.elapsed());
        let t = Instant::now();
        path_count = graph::attack_paths(&g).len();
        paths_t.push(t.elapsed());
    }
    let peak = peak_rss_bytes().unwrap_or(0);
    let (load, checks, rbac_b, graph_b, paths_b) = (
        best(&load),
        best(&checks),
        best(&rbac_t),
        best(&graph_t),
        best(&paths_t),
    );
    let text = match format {
        StatusFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json!({
                "objects": n,
                "rbac_objects": rbac,
                "runs": runs,
                "yaml_bytes": yaml.len(),
                "manifest_load_ms": load.as_secs_f64() * 1e3,
                "manifest_objects_per_s": per_second(n, load),
                "checks_ms": checks.as_secs_f64() * 1e3,
                "checks_objects_per_s": per_second(n, checks),
                "findings": findings,
                "rbac_index_ms": rbac_b.as_secs_f64() * 1e3,
                "graph_build_ms": graph_b.as_secs_f64() * 1e3,
                "attack_paths_ms": paths_b.as_secs_f64() * 1e3,
                "attack_paths": path_count,
                "peak_rss_bytes": peak,
            }))?;
            s.push('\n');
            s
        }
        StatusFormat::Table => {
            let mut out = String::new();
            outln!(
                out,
                "posture engine on {n} generated objects ({rbac} RBAC), best of {runs} run(s), one thread"
            );
            outln!(
                out,
                "  manifest loading   {:>9.1} ms  {:>10.0} objects/s  ({:.1} MB of YAML)",
                load.as_secs_f64() * 1e3,
                per_second(n, load),
                yaml.len() as f64 / 1e6
            );
            outln!(
                out,
                "  checks             {:>9.1} ms  {:>10.0} objects/s  ({findings} findings)",
                checks.as_secs_f64() * 1e3,
                per_second(n, checks)
            );
            outln!(
                out,
                "  RBAC index         {:>9.1} ms",
                rbac_b.as_secs_f64() * 1e3
            );
            outln!(
                out,
                "  graph build        {:>9.1} ms",
                graph_b.as_secs_f64() * 1e3
            );
            outln!(
                out,
                "  attack paths       {:>9.1} ms  ({path_count} paths)",
                paths_b.as_secs_f64() * 1e3
            );
            outln!(
                out,
                "  graph + paths      {:>9.1} ms",
                (rbac_b + graph_b + paths_b).as_secs_f64() * 1e3
            );
            outln!(out, "  peak memory        {:>9.1} MB", peak as f64 / 1e6);
            out
        }
    };
    emit(None, &text)
}
