//! `palisade bench posture`: the posture engine's throughput and memory on a generated inventory.

use crate::bench::peak_rss_bytes;
use crate::cli::StatusFormat;
use crate::scan::emit;
use anyhow::Result;
use palisade_kube::Inventory;
use palisade_kube::manifest::{ManifestLimits, parse_manifests};
use palisade_posture::graph::{self, SecurityGraph};
use palisade_posture::rbac::RbacIndex;
use palisade_posture::{PostureConfig, controlplane, exposure, rbac, synthetic, workload};
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
pub fn run(
    objects: u32,
    rbac: u32,
    runs: u32,
    format: StatusFormat,
    write_manifests: Option<&std::path::Path>,
) -> Result<()> {
    // The generated objects as one multi-document YAML file; the engine then runs on what the
    // manifest loader read back, so only one inventory is alive at a time, as in a real scan.
    let yaml = {
        let generated = synthetic::inventory(objects as usize, rbac as usize);
        let mut yaml = String::new();
        for o in &generated.objects {
            yaml.push_str("---\n");
            yaml.push_str(&yaml_serde::to_string(&o.value)?);
        }
        yaml
    };
    if let Some(path) = write_manifests {
        std::fs::write(path, &yaml)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    let input_peak = peak_rss_bytes().unwrap_or(0);
    // Start the peak-memory count again (Linux: writing 5 to clear_refs resets VmHWM), so the
    // figure is the engine's and not the generator's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let config = PostureConfig::default();
    let mut t = Timings::default();
    let (mut n, mut findings, mut path_count) = (0, 0, 0);
    for _ in 0..runs {
        let start = Instant::now();
        let parsed = parse_manifests(&yaml, "bench.yaml", &ManifestLimits::default());
        t.load.push(start.elapsed());
        anyhow::ensure!(
            parsed.errors.is_empty(),
            "generated YAML did not load: {:?}",
            parsed.errors.first()
        );
        let inventory = Inventory {
            cluster: None,
            objects: parsed.objects,
            warnings: parsed.warnings,
        };
        n = inventory.objects.len();

        let start = Instant::now();
        let mut all = workload::check(&inventory, &config);
        t.workload.push(start.elapsed());
        let start = Instant::now();
        all.extend(exposure::check(&inventory, &config));
        t.exposure.push(start.elapsed());
        let start = Instant::now();
        all.extend(rbac::check(&inventory, &config));
        t.rbac_checks.push(start.elapsed());
        let start = Instant::now();
        all.extend(controlplane::check(&inventory, &config));
        t.controlplane.push(start.elapsed());
        findings = all.len();
        drop(all);

        let start = Instant::now();
        let index = RbacIndex::build(&inventory);
        t.rbac_index.push(start.elapsed());
        let start = Instant::now();
        let g = SecurityGraph::build(&inventory, &index, None, &config);
        t.graph.push(start.elapsed());
        let start = Instant::now();
        path_count = graph::attack_paths(&g).len();
        t.paths.push(start.elapsed());
    }
    let peak = peak_rss_bytes().unwrap_or(0);
    let ms = |v: &[Duration]| best(v).as_secs_f64() * 1e3;
    let rate = |v: &[Duration]| per_second(n, best(v));
    let checks_ms = ms(&t.workload) + ms(&t.exposure) + ms(&t.rbac_checks) + ms(&t.controlplane);
    let graph_ms = ms(&t.rbac_index) + ms(&t.graph) + ms(&t.paths);
    let text = match format {
        StatusFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json!({
                "objects": n,
                "rbac_objects": rbac,
                "runs": runs,
                "yaml_bytes": yaml.len(),
                "manifest_load_ms": ms(&t.load),
                "manifest_objects_per_s": rate(&t.load),
                "workload_checks_ms": ms(&t.workload),
                "workload_checks_objects_per_s": rate(&t.workload),
                "exposure_checks_ms": ms(&t.exposure),
                "rbac_checks_ms": ms(&t.rbac_checks),
                "control_plane_checks_ms": ms(&t.controlplane),
                "all_checks_ms": checks_ms,
                "findings": findings,
                "rbac_index_ms": ms(&t.rbac_index),
                "graph_build_ms": ms(&t.graph),
                "attack_paths_ms": ms(&t.paths),
                "graph_and_paths_ms": graph_ms,
                "attack_paths": path_count,
                "peak_rss_bytes": peak,
                "peak_rss_counts_generation": !reset,
                "generation_peak_rss_bytes": input_peak,
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
            let line = |out: &mut String, label: &str, v: &[Duration], with_rate: bool| {
                if with_rate {
                    outln!(
                        out,
                        "  {label:<20} {:>9.1} ms  {:>10.0} objects/s",
                        ms(v),
                        rate(v)
                    );
                } else {
                    outln!(out, "  {label:<20} {:>9.1} ms", ms(v));
                }
            };
            line(&mut out, "manifest loading", &t.load, true);
            outln!(
                out,
                "  {:<20} ({:.1} MB of YAML)",
                "",
                yaml.len() as f64 / 1e6
            );
            line(&mut out, "workload checks", &t.workload, true);
            line(&mut out, "exposure checks", &t.exposure, true);
            line(&mut out, "RBAC checks", &t.rbac_checks, false);
            line(&mut out, "control-plane checks", &t.controlplane, false);
            outln!(
                out,
                "  {:<20} {checks_ms:>9.1} ms  ({findings} findings)",
                "all checks"
            );
            line(&mut out, "RBAC index", &t.rbac_index, false);
            line(&mut out, "graph build", &t.graph, false);
            line(&mut out, "attack paths", &t.paths, false);
            outln!(
                out,
                "  {:<20} {graph_ms:>9.1} ms  ({path_count} paths)",
                "graph + paths"
            );
            outln!(
                out,
                "  {:<20} {:>9.1} MB{}",
                "peak memory",
                peak as f64 / 1e6,
                if reset {
                    format!(
                        " (generating the input took {:.1} MB)",
                        input_peak as f64 / 1e6
                    )
                } else {
                    " (includes generating the input)".to_string()
                }
            );
            out
        }
    };
    emit(None, &text)
}

#[derive(Default)]
struct Timings {
    load: Vec<Duration>,
    workload: Vec<Duration>,
    exposure: Vec<Duration>,
    rbac_checks: Vec<Duration>,
    controlplane: Vec<Duration>,
    rbac_index: Vec<Duration>,
    graph: Vec<Duration>,
    paths: Vec<Duration>,
}
