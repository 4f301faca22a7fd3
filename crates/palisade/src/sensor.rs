//! `palisade sensor run|check`: argument handling and wiring only; the eBPF programs,
//! attribution, rules and the publisher live in `palisade_sensor` and `palisade_detect`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use palisade_core::spool::SpoolLimits;
use palisade_sensor::agent::{
    AgentConfig, AgentError, EventSelection, KubernetesAccess, ReadyInfo, check, drop_summary, run,
};
use palisade_sensor::attrib::KubeletSource;
use palisade_sensor::publish::{PublisherConfig, Sink};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Exit status: BPF is not permitted here or the kernel lacks what the programs need.
pub const EXIT_BPF: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Run the node sensor: eBPF programs watch processes, network and files; events are
    /// attributed to pods, judged by the node rules, and alerts (and events) are published to a
    /// backend, a file or stdout as JSON lines. Stops cleanly on SIGTERM/SIGINT (exit 0); exit 2
    /// on a usage or configuration error, 3 when BPF is not permitted.
    Run(Box<RunArgs>),
    /// Check whether the sensor can run here: BPF permitted, kernel BTF present, each probe
    /// attached or not (exit 0 when it can, 3 when it cannot).
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsArg {
    /// Alerts only.
    None,
    /// Alerts, and each event that raised one.
    AlertsContext,
    /// Every event.
    All,
}

impl From<EventsArg> for EventSelection {
    fn from(arg: EventsArg) -> Self {
        match arg {
            EventsArg::None => EventSelection::None,
            EventsArg::AlertsContext => EventSelection::AlertsContext,
            EventsArg::All => EventSelection::All,
        }
    }
}

/// Where the sensor looks on the node.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// Sensitive path prefix watched in the kernel, added to the built-in list (repeatable).
    #[arg(long = "sensitive-prefix", value_name = "PATH")]
    pub sensitive_prefixes: Vec<String>,
    /// The cgroup v2 mount (default: found in /proc/self/mountinfo).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// The host's /proc (e.g. /host/proc when mounted so in a pod).
    #[arg(long, default_value = "/proc", value_name = "DIR")]
    pub proc_root: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// JSON lines to FILE (appended), or `-` for stdout (the default without --backend).
    #[arg(short, long, value_name = "PATH", conflicts_with = "backend")]
    pub output: Option<String>,
    /// Backend ingest URL (https://…; http only on loopback): batches are POSTed there.
    #[arg(long, value_name = "URL", requires = "token_file")]
    pub backend: Option<String>,
    /// File holding the backend's bearer token (a mounted Secret).
    #[arg(long, value_name = "FILE", requires = "backend")]
    pub token_file: Option<PathBuf>,
    /// CA bundle (PEM) to trust for the backend instead of the system roots.
    #[arg(long, value_name = "FILE", requires = "backend")]
    pub ca_file: Option<PathBuf>,
    /// Which node events are published besides alerts.
    #[arg(long, value_enum, default_value_t = EventsArg::AlertsContext)]
    pub events: EventsArg,
    /// Node name in events and batches (default: $NODE_NAME, else the host name).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Cluster name in events and batches.
    #[arg(long, env = "PALISADE_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    /// Rule files or directories (`*.yaml`) added to the built-in node rules; a rule with an
    /// existing id replaces it (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Health endpoint: /healthz, /readyz, /metrics (Prometheus).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub health_addr: SocketAddr,
    /// Keep batches in DIR while the backend is unreachable (delivered in order later).
    #[arg(long, value_name = "DIR", requires = "backend")]
    pub spool_dir: Option<PathBuf>,
    /// Spool size cap; beyond it batches are dropped and counted.
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub spool_max_bytes: u64,
    /// Kubeconfig for pod metadata (default: in-cluster service account, else $KUBECONFIG).
    #[arg(long, value_name = "FILE", conflicts_with = "no_kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// No Kubernetes API: attribute to container and pod ids from the cgroup only.
    #[arg(long)]
    pub no_kubernetes: bool,
    /// Read this node's pods from its kubelet instead of the API server, e.g.
    /// https://$(NODE_IP):10250 (the service account needs `get` on `nodes/proxy`).
    #[arg(long, value_name = "URL", conflicts_with_all = ["no_kubernetes", "kubeconfig"])]
    pub kubelet_url: Option<String>,
    /// Bearer token for the kubelet (default: the pod's service-account token, when mounted).
    #[arg(long, value_name = "FILE", requires = "kubelet_url")]
    pub kubelet_token_file: Option<PathBuf>,
    /// CA bundle that signed the kubelet's serving certificate (default: the system roots).
    #[arg(
        long,
        value_name = "FILE",
        requires = "kubelet_url",
        conflicts_with = "kubelet_insecure_tls"
    )]
    pub kubelet_ca_file: Option<PathBuf>,
    /// Accept the kubelet's serving certificate unverified (kubelets often serve a self-signed one).
    #[arg(long, requires = "kubelet_url")]
    pub kubelet_insecure_tls: bool,
    /// How often the kubelet's pod list is read (also re-read when a container is not found).
    #[arg(long, default_value = "10s", value_parser = crate::detect::parse_span, requires = "kubelet_url")]
    pub kubelet_interval: Duration,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Records waiting in memory for the publisher; beyond it they are dropped and counted.
    #[arg(long, default_value_t = 65_536, value_name = "RECORDS")]
    pub queue_records: usize,
    /// A batch is sent at this many records or this age (e.g. 1s, 500ms).
    #[arg(long, default_value_t = 2000, value_name = "RECORDS")]
    pub batch_records: usize,
    #[arg(long, default_value = "1s", value_parser = crate::detect::parse_span)]
    pub batch_age: Duration,
    /// At shutdown, how long undelivered batches may still be sent before they are spooled.
    #[arg(long, default_value = "10s", value_parser = crate::detect::parse_span)]
    pub drain_timeout: Duration,
    /// The kernel ring buffer in MiB (a power of two): a bigger one rides out longer bursts and
    /// costs twice its size in RSS; records that do not fit are dropped and counted.
    #[arg(long, default_value_t = 8, value_name = "MIB")]
    pub ring_buffer_mib: u32,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub node: NodeArgs,
}

pub fn cmd_sensor(command: SensorCommand) -> Result<u8> {
    match command {
        SensorCommand::Run(args) => cmd_run(*args),
        SensorCommand::Check(args) => cmd_check(&args),
    }
}

fn node_name(explicit: Option<&str>) -> String {
    if let Some(name) = explicit.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-node".to_string())
}

fn sink(args: &RunArgs) -> Result<Sink> {
    if let Some(url) = &args.backend {
        let Some(token_file) = &args.token_file else {
            bail!("--backend needs --token-file");
        };
        let token = std::fs::read_to_string(token_file)
            .with_context(|| format!("cannot read the token file {}", token_file.display()))?;
        if token.trim().is_empty() {
            bail!("the token file {} is empty", token_file.display());
        }
        if let Some(ca) = &args.ca_file
            && !ca.is_file()
        {
            bail!("the CA file {} does not exist", ca.display());
        }
        return Ok(Sink::Http {
            url: url.clone(),
            token: token.trim().to_string(),
            ca: args.ca_file.clone(),
        });
    }
    match args.output.as_deref() {
        None | Some("-") => Ok(Sink::Stdout),
        Some("") => bail!("--output needs a path or `-`"),
        Some(path) => Ok(Sink::File(PathBuf::from(path))),
    }
}

fn agent_config(args: &RunArgs) -> Result<AgentConfig> {
    let node = node_name(args.node_name.as_deref());
    let mut publisher = PublisherConfig::new(sink(args)?, node.clone());
    publisher.cluster = args.cluster.clone();
    if args.queue_records == 0 || args.batch_records == 0 {
        bail!("--queue-records and --batch-records must be at least 1");
    }
    if !args.ring_buffer_mib.is_power_of_two() || args.ring_buffer_mib > 1024 {
        bail!(
            "--ring-buffer-mib {}: a power of two from 1 to 1024",
            args.ring_buffer_mib
        );
    }
    publisher.queue_max_records = args.queue_records;
    publisher.batch_max_records = args.batch_records;
    publisher.batch_max_age = args.batch_age;
    publisher.spool_dir = args.spool_dir.clone();
    publisher.spool = SpoolLimits {
        max_bytes: args.spool_max_bytes,
        segment_bytes: (args.spool_max_bytes / 16).clamp(64 << 10, 8 << 20),
    };
    for rules in &args.rules {
        if !rules.exists() {
            bail!("--rules {}: no such file or directory", rules.display());
        }
    }
    let mut config = AgentConfig::new(node, publisher);
    config.cluster = args.cluster.clone();
    config.rules = args.rules.clone();
    config.pipeline.events = args.events.into();
    config.pipeline.drain_timeout = args.drain_timeout;
    config.health_addr = Some(args.health_addr);
    config.sensitive_prefixes = args.node.sensitive_prefixes.clone();
    config.cgroup_root = args.node.cgroup_root.clone();
    config.proc_root = args.node.proc_root.clone();
    config.ring_buffer_bytes = args.ring_buffer_mib << 20;
    config.kubernetes = if args.no_kubernetes {
        KubernetesAccess::Disabled
    } else if let Some(url) = &args.kubelet_url {
        KubernetesAccess::Kubelet(kubelet_source(url, args)?)
    } else if let Some(path) = &args.kubeconfig {
        if !path.is_file() {
            bail!("--kubeconfig {}: no such file", path.display());
        }
        KubernetesAccess::Kubeconfig(path.clone())
    } else {
        KubernetesAccess::Auto
    };
    for prefix in &config.sensitive_prefixes {
        if !prefix.starts_with('/') {
            bail!("--sensitive-prefix {prefix}: a prefix is an absolute path");
        }
    }
    Ok(config)
}

/// The service-account token kubelet requests carry by default (mounted in every pod).
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

fn kubelet_source(url: &str, args: &RunArgs) -> Result<KubeletSource> {
    let token_file = match &args.kubelet_token_file {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(SERVICE_ACCOUNT_TOKEN)).filter(|p| p.is_file()),
    };
    let token = match token_file {
        Some(path) => {
            let token = std::fs::read_to_string(&path)
                .with_context(|| format!("--kubelet-token-file: cannot read {}", path.display()))?;
            if token.trim().is_empty() {
                bail!("--kubelet-token-file: {} is empty", path.display());
            }
            Some(token.trim().to_string())
        }
        None => None,
    };
    let ca_pem = match &args.kubelet_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("--kubelet-ca-file: cannot read {}", path.display()))?,
        ),
        None => None,
    };
    Ok(KubeletSource {
        url: url.to_string(),
        token,
        ca_pem,
        insecure_skip_tls_verify: args.kubelet_insecure_tls,
        interval: args.kubelet_interval,
    })
}

fn cmd_run(args: RunArgs) -> Result<u8> {
    crate::allocator::lean_for_daemon();
    let config = agent_config(&args)?;
    let stop = Arc::new(AtomicBool::new(false));
    palisade_sensor::agent::stop_on_signals(Arc::clone(&stop))
        .context("cannot install the SIGTERM/SIGINT handlers")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<ReadyInfo>();
    let config = AgentConfig {
        stop,
        ready: Some(ready_tx),
        ..config
    };
    let node = config.node_name.clone();
    // Announce readiness on stderr (stdout may carry the JSON lines).
    let announcer = std::thread::spawn(move || {
        if let Ok(info) = ready_rx.recv() {
            eprintln!(
                "palisade sensor: ready on {}: {} rules, {} of {} probes attached{}",
                info.node,
                info.rules,
                info.probes_attached,
                info.probes_total,
                info.health_addr
                    .map(|a| format!(", health on http://{a}"))
                    .unwrap_or_default()
            );
        }
    });
    let result = run(config);
    let _ = announcer.join();
    match result {
        Ok(summary) => {
            let drops = drop_summary(&summary.publisher);
            eprintln!(
                "palisade sensor: stopped on {node} after {:.1}s: {} kernel records, {} events, {} alerts, {} records delivered; userspace drops {}, publisher drops {}",
                summary.ran_for.as_secs_f64(),
                summary.kernel_records,
                summary.events,
                summary.alerts,
                summary.publisher.records_delivered,
                summary.userspace_dropped,
                if drops.is_empty() {
                    "0".to_string()
                } else {
                    drops
                },
            );
            Ok(crate::EXIT_OK)
        }
        // BPF not permitted, or the kernel lacks what the programs need: the message says what
        // to grant or fix.
        Err(AgentError::Kernel {
            message,
            not_permitted: true,
        }) => {
            eprintln!("error: {message}");
            Ok(EXIT_BPF)
        }
        Err(e) => Err(e.into()),
    }
}

fn cmd_check(args: &CheckArgs) -> Result<u8> {
    let mut config = AgentConfig::new(node_name(None), PublisherConfig::new(Sink::Stdout, ""));
    config.sensitive_prefixes = args.node.sensitive_prefixes.clone();
    config.cgroup_root = args.node.cgroup_root.clone();
    config.proc_root = args.node.proc_root.clone();
    let report = check(&config);
    let mut out = String::new();
    for line in &report.lines {
        outln!(
            out,
            "{:<4} {:<44} {}",
            if line.ok { "ok" } else { "FAIL" },
            line.what,
            line.detail
        );
    }
    outln!(
        out,
        "{}",
        if report.ok {
            "the sensor can run here"
        } else {
            "the sensor cannot run here (see above)"
        }
    );
    print!("{out}");
    Ok(if report.ok { crate::EXIT_OK } else { EXIT_BPF })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: SensorCommand,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut full = vec!["x", "run"];
        full.extend_from_slice(args);
        match Wrapper::try_parse_from(full)?.command {
            SensorCommand::Run(args) => Ok(*args),
            SensorCommand::Check(_) => unreachable!(),
        }
    }

    #[test]
    fn sinks_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "abc\n").unwrap();
        let args = parse(&[
            "--backend",
            "https://backend.example/api/v1/sensor/batches",
            "--token-file",
            token.to_str().unwrap(),
            "--node-name",
            "n1",
            "--events",
            "all",
        ])
        .unwrap();
        let config = agent_config(&args).unwrap();
        assert_eq!(
            config.publisher.sink,
            Sink::Http {
                url: "https://backend.example/api/v1/sensor/batches".into(),
                token: "abc".into(),
                ca: None
            }
        );
        assert_eq!(config.node_name, "n1");
        assert_eq!(config.pipeline.events, EventSelection::All);
        let args = parse(&["--output", "-", "--node-name", "n1"]).unwrap();
        assert_eq!(agent_config(&args).unwrap().publisher.sink, Sink::Stdout);
        let args = parse(&["--output", "/tmp/x.jsonl", "--node-name", "n1"]).unwrap();
        assert_eq!(
            agent_config(&args).unwrap().publisher.sink,
            Sink::File("/tmp/x.jsonl".into())
        );
        assert!(parse(&["--output", "-", "--backend", "https://b"]).is_err());
        assert!(parse(&["--backend", "https://b"]).is_err());
        let args = parse(&["--sensitive-prefix", "relative/path"]).unwrap();
        assert!(agent_config(&args).is_err());
        std::fs::write(&token, "  \n").unwrap();
        let args = parse(&[
            "--backend",
            "https://b",
            "--token-file",
            token.to_str().unwrap(),
        ])
        .unwrap();
        assert!(
            agent_config(&args)
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
    }
}
