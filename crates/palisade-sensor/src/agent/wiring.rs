//! `run` and `check` with the concrete stages: the eBPF [`KernelSensor`], the [`Enricher`] with
//! its [`PodCache`], and the node rules' [`NodeDetector`].
//!
//! Order of start: rules, publisher, health endpoint, attribution (and the pod watcher), then the
//! kernel programs. Everything that is a configuration problem therefore fails before anything is
//! loaded into the kernel, on any machine, and a machine without BPF fails last, with the message
//! of what to grant.

use super::{
    AgentConfig, AgentError, AgentMetrics, AgentSummary, DetectStage, EnrichStage, HealthServer,
    KernelStage, KubernetesAccess, Sample, run_pipeline,
};
use crate::attrib::{AttribConfig, AttribCounters, Enricher, PodCache};
use crate::kernel::event::KernelEvent;
use crate::kernel::{KernelConfig, KernelError, KernelSensor, ProbeState};
use crate::publish::Publisher;
use palisade_detect::alert::{AggregationMode, DetectAlert};
use palisade_detect::node::{NodeEvent, NodeSchema};
use palisade_detect::pipeline::{DetectorConfig, NodeDetector};
use palisade_detect::rule::RuleSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the sensor announces once the programs are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyInfo {
    pub node: String,
    pub rules: usize,
    pub probes_attached: usize,
    pub probes_total: usize,
    /// Probes not attached, with the reason.
    pub probes_unavailable: Vec<(String, String)>,
    pub health_addr: Option<SocketAddr>,
}

impl KernelStage for KernelSensor {
    fn poll_records(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(KernelEvent),
    ) -> Result<usize, AgentError> {
        self.poll(timeout, sink).map_err(kernel_error)
    }

    fn samples(&self) -> Vec<Sample> {
        let c = self.counters();
        let mut out = Vec::new();
        for (kind, n) in &c.records_by_kind {
            out.push(
                Sample::new(
                    "palisade_sensor_kernel_records_by_kind_total",
                    "Records decoded from the ring buffer, by kind.",
                    "counter",
                    *n as f64,
                )
                .label("kind", *kind),
            );
        }
        for (kind, n) in &c.ring_drops_by_kind {
            out.push(
                Sample::new(
                    "palisade_sensor_kernel_ringbuf_dropped_total",
                    "Records lost in the kernel because the ring buffer was full, by kind.",
                    "counter",
                    *n as f64,
                )
                .label("kind", *kind),
            );
        }
        out.push(Sample::new(
            "palisade_sensor_kernel_ringbuf_dropped_all_total",
            "Records lost in the kernel because the ring buffer was full (all kinds).",
            "counter",
            c.ring_drops as f64,
        ));
        for (cpu, n) in c.ring_drops_per_cpu.iter().enumerate() {
            out.push(
                Sample::new(
                    "palisade_sensor_kernel_ringbuf_dropped_by_cpu_total",
                    "Records lost in the kernel because the ring buffer was full, by CPU.",
                    "counter",
                    *n as f64,
                )
                .label("cpu", cpu.to_string()),
            );
        }
        for (kind, n) in &c.filtered_by_kind {
            out.push(
                Sample::new(
                    "palisade_sensor_kernel_filtered_total",
                    "Calls the in-kernel filters looked at and discarded, by kind.",
                    "counter",
                    *n as f64,
                )
                .label("kind", *kind),
            );
        }
        out.push(Sample::new(
            "palisade_sensor_kernel_decode_errors_total",
            "Ring-buffer records that could not be decoded (skipped).",
            "counter",
            c.decode_errors as f64,
        ));
        for probe in self.probes() {
            out.push(
                Sample::new(
                    "palisade_sensor_probe_attached",
                    "1 when the probe collecting this signal is attached, 0 when unavailable.",
                    "gauge",
                    if probe.attached() { 1.0 } else { 0.0 },
                )
                .label("probe", probe.name)
                .label("program", probe.program),
            );
        }
        out
    }
}

impl EnrichStage for Enricher {
    fn enrich_record(&mut self, event: KernelEvent) -> NodeEvent {
        self.enrich(event)
    }

    fn samples(&self) -> Vec<Sample> {
        attrib_samples(&self.counters())
    }
}

fn attrib_samples(c: &AttribCounters) -> Vec<Sample> {
    let family = |name: &str, help: &'static str, label: &str, pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|(value, n)| Sample::new(name, help, "counter", *n as f64).label(label, *value))
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    out.extend(family(
        "palisade_sensor_attrib_events_total",
        "Events attributed, by target (container, host, or a cgroup that could not be placed).",
        "target",
        &[
            ("container", c.container_events),
            ("host", c.host_events),
            ("unknown", c.unknown_cgroup_events),
        ],
    ));
    out.extend(family(
        "palisade_sensor_attrib_pod_lookups_total",
        "Container events whose pod the cache knew (hit) or not (miss).",
        "result",
        &[("hit", c.pod_hits), ("miss", c.pod_misses)],
    ));
    out.push(Sample::new(
        "palisade_sensor_attrib_dns_parse_errors_total",
        "DNS payloads without a readable question (the event is kept, query empty).",
        "counter",
        c.dns_parse_errors as f64,
    ));
    out.extend(family(
        "palisade_sensor_attrib_cgroup_cache_total",
        "cgroup id cache: hits, misses, how misses were resolved, evictions, tree walks.",
        "result",
        &[
            ("hit", c.cgroups.hits),
            ("miss", c.cgroups.misses),
            ("resolved_via_proc", c.cgroups.resolved_via_proc),
            ("unknown", c.cgroups.unknown),
            ("eviction", c.cgroups.evictions),
            ("walk", c.cgroups.walks),
            ("walk_error", c.cgroups.walk_errors),
        ],
    ));
    out.extend(family(
        "palisade_sensor_attrib_process_table_total",
        "Process table: hits, misses, reads from /proc, evictions, processes seeded.",
        "result",
        &[
            ("hit", c.processes.hits),
            ("miss", c.processes.misses),
            ("read_from_proc", c.processes.read_from_proc),
            ("eviction", c.processes.evictions),
            ("seeded", c.processes.seeded),
        ],
    ));
    out.extend(family(
        "palisade_sensor_attrib_pod_watch_total",
        "Pod source: full lists (API server lists or kubelet /pods reads), watch events applied, failed requests (retried).",
        "kind",
        &[
            ("list", c.pods.lists),
            ("watch_event", c.pods.watch_events),
            ("error", c.pods.errors),
        ],
    ));
    out.push(Sample::new(
        "palisade_sensor_attrib_pod_cache_dropped_total",
        "Pods not cached because the cache was full.",
        "counter",
        c.pods.dropped_pods as f64,
    ));
    out.push(Sample::new(
        "palisade_sensor_attrib_pods",
        "Pods of this node in the cache.",
        "gauge",
        c.pods.pods as f64,
    ));
    out.push(Sample::new(
        "palisade_sensor_attrib_containers",
        "Containers of this node in the cache.",
        "gauge",
        c.pods.containers as f64,
    ));
    out
}

impl DetectStage for NodeDetector {
    fn detect(&mut self, event: &NodeEvent, out: &mut Vec<DetectAlert>) {
        self.process_event(event, out);
    }

    fn tick(&mut self, now_nanos: i64, out: &mut Vec<DetectAlert>) {
        NodeDetector::tick(self, now_nanos, out);
    }

    fn finish(&mut self, out: &mut Vec<DetectAlert>) {
        NodeDetector::finish(self, out);
    }

    fn samples(&self) -> Vec<Sample> {
        let stats = self.stats();
        vec![
            Sample::new(
                "palisade_sensor_rules_evaluated_events_total",
                "Events evaluated against the node rules.",
                "counter",
                stats.events_evaluated as f64,
            ),
            Sample::new(
                "palisade_sensor_rule_matches_total",
                "Rule matches before aggregation.",
                "counter",
                stats.matches as f64,
            ),
        ]
    }
}

fn kernel_error(e: KernelError) -> AgentError {
    let not_permitted = matches!(
        e,
        KernelError::NotPermitted { .. } | KernelError::Unsupported { .. }
    );
    AgentError::Kernel {
        message: e.to_string(),
        not_permitted,
    }
}

/// The kernel configuration of an agent configuration: the default prefix lists plus
/// `--sensitive-prefix`.
pub fn kernel_config(config: &AgentConfig) -> KernelConfig {
    let mut kernel = KernelConfig {
        ring_buffer_bytes: config.ring_buffer_bytes,
        ..KernelConfig::default()
    };
    for prefix in &config.sensitive_prefixes {
        if !kernel.sensitive_prefixes.contains(prefix) {
            kernel.sensitive_prefixes.push(prefix.clone());
        }
    }
    kernel
}

/// The node rules: built-in plus `config.rules`.
pub fn load_rules(config: &AgentConfig) -> Result<Arc<RuleSet<NodeSchema>>, AgentError> {
    let builtin = palisade_detect::builtin::node_rule_sources();
    RuleSet::<NodeSchema>::from_dirs(&builtin, &config.rules)
        .map(Arc::new)
        .map_err(|e| AgentError::Rules(format!("rules do not load:\n{e}")))
}

/// Runs the sensor until `config.stop` is set (SIGTERM/SIGINT in the CLI), then drains and
/// returns what happened.
pub fn run(config: AgentConfig) -> Result<AgentSummary, AgentError> {
    let rules = load_rules(&config)?;
    let rule_count = rules.rules().len();
    let metrics = Arc::new(AgentMetrics::new());
    let heartbeat_metrics = Arc::clone(&metrics);
    let publisher = Publisher::start(
        config.publisher.clone(),
        Some(Box::new(move || heartbeat_metrics.heartbeat())),
    )?;
    let health = match config.health_addr {
        Some(addr) => Some(HealthServer::start(
            addr,
            Arc::clone(&metrics),
            Some(publisher.handle()),
        )?),
        None => None,
    };
    let health_addr = health.as_ref().map(HealthServer::local_addr);
    let pods = PodCache::new();
    let _watcher = match &config.kubernetes {
        KubernetesAccess::Disabled => None,
        KubernetesAccess::Kubelet(source) => Some(
            pods.poll_kubelet(source.clone())
                .map_err(|e| AgentError::Attrib(e.to_string()))?,
        ),
        access => {
            let options = palisade_kube::ClusterOptions {
                kubeconfig: match access {
                    KubernetesAccess::Kubeconfig(path) => Some(path.clone()),
                    _ => None,
                },
                ..palisade_kube::ClusterOptions::default()
            };
            match pods.watch_node(&options, &config.node_name) {
                Ok(watcher) => Some(watcher),
                Err(e) if *access == KubernetesAccess::Auto => {
                    tracing::warn!(
                        "no Kubernetes API ({e}): events carry container and pod ids from the \
                         cgroup only"
                    );
                    None
                }
                Err(e) => return Err(AgentError::Attrib(e.to_string())),
            }
        }
    };
    let enricher = Enricher::new(
        AttribConfig {
            cgroup_root: config.cgroup_root.clone().unwrap_or_default(),
            proc_root: config.proc_root.clone(),
            node_name: config.node_name.clone(),
            cluster: config.cluster.clone(),
            boot_to_unix_nanos: Some(crate::kernel::boot_to_unix_offset_nanos()),
            ..AttribConfig::default()
        },
        pods,
    )
    .map_err(|e| AgentError::Attrib(e.to_string()))?;
    let detector = NodeDetector::new(
        rules,
        DetectorConfig {
            mode: AggregationMode::Immediate,
            ..DetectorConfig::default()
        },
    );
    let kernel_config = kernel_config(&config);
    let ready = config.ready.clone();
    let node = config.node_name.clone();
    let make_kernel = move || {
        let sensor = KernelSensor::start(&kernel_config).map_err(kernel_error)?;
        let probes = sensor.probes();
        let info = ReadyInfo {
            node,
            rules: rule_count,
            probes_attached: probes.iter().filter(|p| p.attached()).count(),
            probes_total: probes.len(),
            probes_unavailable: probes
                .iter()
                .filter_map(|p| match &p.state {
                    ProbeState::Unavailable { reason } => {
                        Some((p.name.to_string(), reason.clone()))
                    }
                    ProbeState::Attached | ProbeState::NotApplicable { .. } => None,
                })
                .collect(),
            health_addr,
        };
        for (probe, reason) in &info.probes_unavailable {
            tracing::warn!("probe {probe} unavailable: {reason}");
        }
        if let Some(ready) = ready {
            let _ = ready.send(info);
        }
        Ok(sensor)
    };
    let summary = run_pipeline(
        make_kernel,
        Box::new(enricher),
        Box::new(detector),
        publisher,
        Arc::clone(&metrics),
        Arc::clone(&config.stop),
        config.pipeline.clone(),
    );
    drop(health);
    summary
}

/// One line of `palisade sensor check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// What `palisade sensor check` found; `ok` when the sensor can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub lines: Vec<CheckLine>,
    pub ok: bool,
}

/// Whether BTF is present, BPF is permitted (by loading the programs for real), which probes
/// attach, and whether the cgroup v2 mount for attribution is there.
pub fn check(config: &AgentConfig) -> CheckReport {
    let mut lines = Vec::new();
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    lines.push(CheckLine {
        what: "kernel BTF (/sys/kernel/btf/vmlinux)".into(),
        ok: btf,
        detail: if btf {
            "present".into()
        } else {
            "missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y".into()
        },
    });
    let started = KernelSensor::start(&kernel_config(config));
    let kernel_ok = started.is_ok();
    match started {
        Ok(sensor) => {
            lines.push(CheckLine {
                what: "BPF permitted, programs loaded".into(),
                ok: true,
                detail: "yes".into(),
            });
            for probe in sensor.probes() {
                let (ok, detail) = match &probe.state {
                    ProbeState::Attached => (true, format!("attached ({})", probe.program)),
                    ProbeState::Unavailable { reason } => {
                        (false, format!("unavailable ({}): {reason}", probe.program))
                    }
                    ProbeState::NotApplicable { reason } => (
                        true,
                        format!("not applicable ({}): {reason}", probe.program),
                    ),
                };
                lines.push(CheckLine {
                    what: format!("probe {}", probe.name),
                    ok,
                    detail,
                });
            }
        }
        Err(e) => lines.push(CheckLine {
            what: "BPF permitted, programs loaded".into(),
            ok: false,
            detail: e.to_string(),
        }),
    }
    let cgroup = match &config.cgroup_root {
        Some(root) if root.join("cgroup.procs").exists() => Ok(root.display().to_string()),
        Some(root) => Err(format!("{} is not a cgroup2 mount", root.display())),
        None => crate::attrib::cgroup::detect_cgroup2_mount()
            .map(|p| p.display().to_string())
            .map_err(|e| e.to_string()),
    };
    lines.push(CheckLine {
        what: "cgroup v2 mount (container attribution)".into(),
        ok: cgroup.is_ok(),
        detail: match cgroup {
            Ok(path) => path,
            Err(e) => e,
        },
    });
    CheckReport {
        ok: btf && kernel_ok,
        lines,
    }
}
