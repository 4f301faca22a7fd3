//! `palisade admission serve|webhook-config` and `palisade bench admission`: argument handling
//! and wiring only; the server lives in `palisade_policy::webhook`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use palisade_policy::webhook::{
    CertFiles, DecisionLog, FailurePolicy, Metrics, PollSettings, RegistrationOptions,
    ReloadingResolver, SelfSigned, WebhookOptions, WebhookParts, WebhookServer, load_policy_set,
    loaded, sample_policies, sample_review, watch_paths, webhook_configuration,
};
use palisade_policy::{PolicySet, PolicySettings};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum AdmissionCommand {
    /// Run the HTTPS validating admission webhook (POST /validate, /healthz, /readyz, /metrics).
    Serve(ServeArgs),
    /// Print the ValidatingWebhookConfiguration registering the webhook for the kinds the
    /// constraints match.
    WebhookConfig(WebhookConfigArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailurePolicyArg {
    /// Admit the request (with a warning) when the constraints cannot decide.
    Ignore,
    /// Deny the request (code 500) when the constraints cannot decide.
    Fail,
}

impl From<FailurePolicyArg> for FailurePolicy {
    fn from(arg: FailurePolicyArg) -> Self {
        match arg {
            FailurePolicyArg::Ignore => FailurePolicy::Ignore,
            FailurePolicyArg::Fail => FailurePolicy::Fail,
        }
    }
}

/// Where policies come from and how they are compiled.
#[derive(Debug, Args, Clone)]
pub struct PolicySourceArgs {
    /// ConstraintTemplates, constraints and Gatekeeper Configs (files or directories; repeatable).
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Namespaces no constraint applies to (`kube-*` prefix and `*-system` suffix globs;
    /// repeatable), in addition to Gatekeeper Config objects.
    #[arg(long = "exempt-namespace", value_name = "NS")]
    pub exempt_namespaces: Vec<String>,
}

impl PolicySourceArgs {
    fn settings(&self, eval_timeout: Option<Duration>) -> PolicySettings {
        PolicySettings {
            exempt_namespaces: self.exempt_namespaces.clone(),
            eval_timeout,
            ..PolicySettings::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: PolicySourceArgs,
    /// Read templates and constraints from the cluster (kube-rs watch) instead of files.
    #[arg(long, conflicts_with = "policies")]
    pub from_cluster: bool,
    /// Address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Serving certificate chain (PEM); reloaded when the file changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "self_signed"
    )]
    pub cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Generate a CA and a serving certificate; print the CA bundle for the webhook
    /// configuration.
    #[arg(long)]
    pub self_signed: bool,
    /// Names of the generated serving certificate (DNS names or IP addresses; repeatable).
    /// Default: localhost, 127.0.0.1 and ::1.
    #[arg(long = "dns-name", value_name = "NAME", requires = "self_signed")]
    pub dns_names: Vec<String>,
    /// Also write the generated CA certificate (PEM) to FILE.
    #[arg(long, value_name = "FILE", requires = "self_signed")]
    pub ca_bundle_out: Option<PathBuf>,
    /// Per-request evaluation deadline (e.g. 2500ms, 2.5s).
    #[arg(long, default_value = "2.5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// What to answer when the constraints cannot decide in time or at all.
    #[arg(long, value_enum, default_value_t = FailurePolicyArg::Ignore)]
    pub failure_policy: FailurePolicyArg,
    /// Largest AdmissionReview body accepted (413 beyond).
    #[arg(long, default_value_t = 3 * 1024 * 1024, value_name = "BYTES")]
    pub max_request_bytes: usize,
    /// Evaluation threads (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Requests that may wait for a worker; beyond, the failure policy answers at once.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Write a JSON line per decision to FILE (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// How often policy files and certificate files are checked for changes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    #[command(flatten)]
    pub cluster: crate::cli::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct WebhookConfigArgs {
    #[command(flatten)]
    pub source: PolicySourceArgs,
    /// `clientConfig.url` (e.g. https://127.0.0.1:8443/validate).
    #[arg(long, value_name = "URL", required_unless_present = "service")]
    pub url: Option<String>,
    /// `clientConfig.service` as NAMESPACE/NAME[:PORT] (port 443 by default).
    #[arg(long, value_name = "NS/NAME[:PORT]", conflicts_with = "url")]
    pub service: Option<String>,
    /// CA bundle (PEM) for `caBundle`.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    #[arg(long, default_value = "palisade")]
    pub name: String,
    #[arg(long, value_enum, default_value_t = FailurePolicyArg::Ignore)]
    pub failure_policy: FailurePolicyArg,
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub timeout_seconds: u32,
    /// Send only namespaces with this label (KEY=VALUE; repeatable).
    #[arg(long = "namespace-label", value_name = "KEY=VALUE")]
    pub namespace_labels: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConfigFormat {
    Yaml,
    Json,
}

/// `palisade bench admission`: an open-loop load generator against `admission serve`.
#[derive(Debug, Args)]
pub struct BenchAdmissionArgs {
    /// Request rates to drive, one after the other (requests per second).
    #[arg(long, value_delimiter = ',', default_value = "200,500,1000")]
    pub rates: Vec<u32>,
    /// Measured time per rate.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before each rate.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Constraints of the generated sample set (ignored with -p).
    #[arg(long, default_value_t = 50)]
    pub constraints: usize,
    /// Policies to serve instead of the generated sample set.
    #[arg(short = 'p', long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Server workers (default: one per CPU).
    #[arg(long)]
    pub workers: Option<u16>,
}

/// `2.5s`, `2500ms`, `1m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 2.5s, 500ms)"))?;
    if !value.is_finite() || value <= 0.0 || value * scale > 86_400.0 {
        return Err(format!(
            "`{text}`: a duration must be positive and at most a day"
        ));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

pub fn cmd_admission(command: AdmissionCommand, rt: &tokio::runtime::Runtime) -> Result<u8> {
    match command {
        AdmissionCommand::Serve(args) => rt.block_on(serve(args)),
        AdmissionCommand::WebhookConfig(args) => webhook_config(&args),
    }
}

fn load_once(source: &PolicySourceArgs) -> Result<PolicySet> {
    if source.policies.is_empty() {
        bail!("no policies: give templates and constraints with -p PATH");
    }
    load_policy_set(&source.policies, &source.settings(None))
        .map_err(|e| anyhow::anyhow!("policies do not load:\n{e}"))
}

fn webhook_config(args: &WebhookConfigArgs) -> Result<u8> {
    let set = load_once(&args.source)?;
    let service = match &args.service {
        None => None,
        Some(text) => {
            let (namespace, rest) = text
                .split_once('/')
                .with_context(|| format!("--service {text}: expected NAMESPACE/NAME[:PORT]"))?;
            let (name, port) = match rest.split_once(':') {
                Some((name, port)) => (
                    name,
                    port.parse::<u16>()
                        .with_context(|| format!("--service {text}: bad port"))?,
                ),
                None => (rest, 443),
            };
            Some((namespace.to_string(), name.to_string(), port))
        }
    };
    let ca_pem = match &args.ca_bundle {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => None,
    };
    let mut namespace_labels = Vec::new();
    for label in &args.namespace_labels {
        let (k, v) = label
            .split_once('=')
            .with_context(|| format!("--namespace-label {label}: expected KEY=VALUE"))?;
        namespace_labels.push((k.to_string(), v.to_string()));
    }
    let options = RegistrationOptions {
        name: args.name.clone(),
        url: args.url.clone(),
        service,
        ca_pem,
        failure_policy: args.failure_policy.into(),
        timeout_seconds: args.timeout_seconds,
        exempt_namespaces: args.source.exempt_namespaces.clone(),
        namespace_labels,
        ..RegistrationOptions::default()
    };
    let config = webhook_configuration(&set, &options);
    let text = match args.format {
        ConfigFormat::Json => serde_json::to_string_pretty(&config)? + "\n",
        ConfigFormat::Yaml => yaml_serde::to_string(&config)?,
    };
    let globs: Vec<&String> = args
        .source
        .exempt_namespaces
        .iter()
        .filter(|n| n.contains('*'))
        .collect();
    if !globs.is_empty() {
        eprintln!(
            "note: exempt namespace patterns {globs:?} cannot be expressed in a namespaceSelector; \
             the webhook exempts them itself (or label such namespaces {}=true)",
            palisade_policy::webhook::IGNORE_LABEL
        );
    }
    crate::scan::emit(None, &text)?;
    Ok(crate::EXIT_OK)
}

async fn serve(args: ServeArgs) -> Result<u8> {
    let metrics = Arc::new(Metrics::new());

    // TLS first: a bad certificate is a startup error, before any policy work.
    let (resolver, cert_watch) = if args.self_signed {
        let names = if args.dns_names.is_empty() {
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
        } else {
            args.dns_names.clone()
        };
        let generated = SelfSigned::generate(&names, 365)?;
        if let Some(path) = &args.ca_bundle_out {
            std::fs::write(path, &generated.ca_pem)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!(
            "# CA of the generated serving certificate ({}):\n{}# caBundle:\n{}",
            names.join(", "),
            generated.ca_pem,
            generated.ca_bundle_base64()
        );
        (
            Arc::new(ReloadingResolver::new(generated.certified_key()?)),
            None,
        )
    } else {
        let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
            bail!("give --cert FILE --key FILE, or --self-signed");
        };
        let files = CertFiles::load(cert, key)?;
        let resolver = Arc::clone(&files.resolver);
        (resolver, Some(files.watch(args.reload_interval)))
    };

    let settings = args.source.settings(Some(args.timeout));
    let policies = if args.from_cluster {
        let options = palisade_kube::live::ClusterOptions {
            kubeconfig: args.cluster.kubeconfig.clone(),
            context: args.cluster.context.clone(),
            namespace: None,
            page_size: args.cluster.page_size,
            cluster_name: args.cluster.cluster_name.clone(),
        };
        let source = palisade_policy::live::watch_cluster(&options, settings)
            .await
            .context("reading templates and constraints from the cluster")?;
        loaded(source)
    } else {
        if args.source.policies.is_empty() {
            bail!("no policies: give templates and constraints with -p PATH (or --from-cluster)");
        }
        let paths = args.source.policies.clone();
        let source = watch_paths(
            paths,
            PollSettings {
                interval: args.reload_interval,
                debounce: Duration::from_millis(500).min(args.reload_interval),
            },
            Arc::clone(&metrics),
            move |paths: &[PathBuf]| load_policy_set(paths, &settings),
        )
        .map_err(|e| anyhow::anyhow!("policies do not load:\n{e}"))?;
        loaded(source)
    };
    if let Some(set) = policies.borrow().as_ref() {
        eprintln!(
            "palisade admission: {} templates, {} constraints",
            set.templates().count(),
            set.constraints().len()
        );
    }

    let decision_log = match &args.decision_log {
        Some(path) => Some(
            DecisionLog::open(path, Arc::clone(&metrics))
                .with_context(|| format!("cannot open the decision log {}", path.display()))?,
        ),
        None => None,
    };
    let mut options = WebhookOptions {
        listen: args.listen,
        max_request_bytes: args.max_request_bytes,
        timeout: args.timeout,
        failure_policy: args.failure_policy.into(),
        queue_capacity: args.queue,
        ..WebhookOptions::default()
    };
    if let Some(workers) = args.workers {
        options.workers = usize::from(workers);
    }
    let server = WebhookServer::bind(
        options,
        WebhookParts {
            tls: resolver,
            policies,
            metrics,
            decision_log,
            namespaces: None,
        },
    )
    .await?;
    let addr = server.local_addr()?;
    eprintln!("palisade admission: listening on https://{addr}/validate");
    server.run(shutdown_signal()).await;
    if let Some(task) = cert_watch {
        task.abort();
    }
    eprintln!("palisade admission: stopped");
    Ok(crate::EXIT_OK)
}

/// Ctrl-C or SIGTERM (what Kubernetes sends).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

// ------------------------------------------------------------------------------------ bench

/// Peak resident set size of a process (Linux `VmHWM`), in bytes.
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

struct ServerProcess {
    child: std::process::Child,
    addr: SocketAddr,
    ca_pem: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `palisade admission serve --self-signed` on a free loopback port.
fn start_server(policies: &[PathBuf], workers: Option<u16>, dir: &Path) -> Result<ServerProcess> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("cannot find the palisade executable")?;
    let ca_path = dir.join("ca.pem");
    let mut command = std::process::Command::new(exe);
    command
        .args([
            "admission",
            "serve",
            "--self-signed",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--ca-bundle-out")
        .arg(&ca_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for p in policies {
        command.arg("-p").arg(p);
    }
    if let Some(w) = workers {
        command.arg("--workers").arg(w.to_string());
    }
    let mut child = command.spawn().context("cannot start admission serve")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut addr = None;
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("palisade admission: listening on https://") {
            addr = rest
                .trim_end_matches("/validate")
                .parse::<SocketAddr>()
                .ok();
            break;
        }
        seen.push(line);
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let Some(addr) = addr else {
        let _ = child.kill();
        bail!("admission serve did not start:\n{}", seen.join("\n"));
    };
    let ca_pem = std::fs::read_to_string(&ca_path).context("CA bundle not written")?;
    Ok(ServerProcess {
        child,
        addr,
        ca_pem,
    })
}

fn client(ca_pem: &str) -> Result<reqwest::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(15))
        .build()?)
}

struct RateResult {
    rate: u32,
    sent: usize,
    errors: usize,
    denied: usize,
    achieved: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Sends at `rate` for `duration` on a fixed schedule (open loop: a slow answer does not delay
/// the next request); latency counts from the scheduled send time.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    rate: u32,
    duration: Duration,
) -> (Vec<Duration>, usize, usize) {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let client = client.clone();
        let url = url.to_string();
        let body = bodies[i % bodies.len()].clone();
        tasks.spawn(async move {
            let result = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let outcome = match result {
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(bytes) => Some(memchr_denied(&bytes)),
                    Err(_) => None,
                },
                _ => None,
            };
            (scheduled.elapsed(), outcome)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let (mut errors, mut denied) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((latency, Some(was_denied))) => {
                latencies.push(latency);
                denied += usize::from(was_denied);
            }
            _ => errors += 1,
        }
    }
    (latencies, errors, denied)
}

/// Whether an AdmissionReview response body denies (without parsing it: the generator must
/// stay cheap next to the server it measures).
fn memchr_denied(body: &[u8]) -> bool {
    const DENIED: &[u8] = b"\"allowed\":false";
    body.windows(DENIED.len()).any(|w| w == DENIED)
}

pub fn cmd_bench_admission(args: BenchAdmissionArgs, rt: &tokio::runtime::Runtime) -> Result<()> {
    let dir = tempfile_dir()?;
    let policies = if args.policies.is_empty() {
        let path = dir.join("policies.yaml");
        std::fs::write(&path, sample_policies(args.constraints))?;
        vec![path]
    } else {
        args.policies.clone()
    };
    let server = start_server(&policies, args.workers, &dir)?;
    let client = client(&server.ca_pem)?;
    let url = format!("https://localhost:{}/validate", server.addr.port());
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..1000)
            .map(|i| serde_json::to_vec(&sample_review(i)))
            .collect::<Result<_, _>>()?,
    );
    let mut results = Vec::new();
    for &rate in &args.rates {
        if rate == 0 {
            bail!("--rates: a rate must be positive");
        }
        rt.block_on(drive(&client, &url, &bodies, rate, args.warmup));
        let started = Instant::now();
        let (mut latencies, errors, denied) =
            rt.block_on(drive(&client, &url, &bodies, rate, args.duration));
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        results.push(RateResult {
            rate,
            sent: latencies.len() + errors,
            errors,
            denied,
            achieved: (latencies.len() + errors) as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
        });
    }
    let rss = peak_rss_of(server.child.id());
    let metrics = rt.block_on(async {
        client
            .get(format!("https://localhost:{}/metrics", server.addr.port()))
            .send()
            .await?
            .text()
            .await
    })?;
    let constraints = metrics
        .lines()
        .find_map(|l| l.strip_prefix("palisade_policy_constraints "))
        .unwrap_or("?")
        .to_string();
    let mut out = String::new();
    outln!(
        out,
        "admission webhook over HTTPS on loopback: {constraints} constraints, {}s per rate (+{:?} warm-up), open loop, keep-alive",
        args.duration.as_secs_f64(),
        args.warmup
    );
    outln!(
        out,
        "{:>6} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "rate/s",
        "achieved",
        "sent",
        "denied",
        "errors",
        "p50",
        "p99",
        "max"
    );
    for r in &results {
        outln!(
            out,
            "{:>6} {:>9.1} {:>7} {:>7} {:>7} {:>7.2}ms {:>7.2}ms {:>7.2}ms",
            r.rate,
            r.achieved,
            r.sent,
            r.denied,
            r.errors,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.max.as_secs_f64() * 1000.0
        );
    }
    match rss {
        Some(bytes) => outln!(
            out,
            "server peak RSS: {:.1} MB",
            bytes as f64 / (1024.0 * 1024.0)
        ),
        None => outln!(out, "server peak RSS: unknown (no /proc)"),
    }
    crate::scan::emit(None, &out)?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("palisade-bench-admission-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert!(memchr_denied(br#"{"response":{"allowed":false}}"#));
        assert!(!memchr_denied(br#"{"response":{"allowed":true}}"#));
    }
}
