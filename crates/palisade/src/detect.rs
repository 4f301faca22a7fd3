//! `palisade detect audit|serve|webhook-config|rules` and `palisade bench detect`: argument
//! handling and wiring only; parsing, rules, the engine and the server live in
//! `palisade_detect`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use palisade_core::Severity;
use palisade_core::tls::{CertFiles, ReloadingResolver, SelfSigned};
use palisade_detect::alert::{AggregationMode, AlertFormat, DetectAlert, write_alert};
use palisade_detect::audit::AuditSchema;
use palisade_detect::audit::parse::InputFormat;
use palisade_detect::pipeline::{Detector, DetectorConfig, DetectorStats};
use palisade_detect::rule::RuleSet;
use palisade_detect::server::output::{AlertWriter, Syslog};
use palisade_detect::server::{AuditServer, ServeOptions, ServeParts};
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Detect threats in an audit log: a file or `-` (stdin) of native audit.k8s.io events
    /// (JSON lines or EventLists), EKS CloudWatch, GKE Cloud Logging or AKS diagnostic exports.
    /// Exit status 1 when alerts at or above --fail-on fired.
    Audit(AuditArgs),
    /// Run the audit webhook backend kube-apiserver posts its events to
    /// (POST /audit, /healthz, /readyz, /metrics).
    Serve(Box<ServeArgs>),
    /// Print the kubeconfig for kube-apiserver's --audit-webhook-config-file and a sample audit
    /// policy for --audit-policy-file.
    WebhookConfig(WebhookConfigArgs),
    /// List the rules (built-in and --rules) with ids, severities and MITRE ATT&CK mappings.
    Rules(RulesArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertFormatArg {
    /// One JSON object per line (ECS-style field names).
    Json,
    /// ArcSight Common Event Format, one line per alert.
    Cef,
    /// A table at the end (offline only).
    Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormatArg {
    /// Recognise each document's shape.
    Auto,
    /// audit.k8s.io Event / EventList JSON.
    Native,
    /// EKS control-plane logs as exported from CloudWatch Logs.
    Eks,
    /// GKE Cloud Logging AuditLog entries (protoPayload).
    Gke,
    /// AKS diagnostic records (kube-audit, kube-audit-admin).
    Aks,
}

impl From<InputFormatArg> for InputFormat {
    fn from(arg: InputFormatArg) -> Self {
        match arg {
            InputFormatArg::Auto => InputFormat::Auto,
            InputFormatArg::Native => InputFormat::Native,
            InputFormatArg::Eks => InputFormat::Eks,
            InputFormatArg::Gke => InputFormat::Gke,
            InputFormatArg::Aks => InputFormat::Aks,
        }
    }
}

/// Where rules come from.
#[derive(Debug, Args, Clone)]
pub struct RuleArgs {
    /// Rule files or directories (`*.yaml`, `*.yml`) added to the built-in rules; a rule with an
    /// existing id replaces it (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit log file, or `-` for stdin.
    pub input: String,
    /// Keep reading as the file grows (survives rotation by rename or truncation).
    #[arg(long, short = 'F')]
    pub follow: bool,
    #[arg(short, long, value_enum, default_value_t = AlertFormatArg::Table)]
    pub format: AlertFormatArg,
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Exit 1 when an alert at or above this severity fired (default: any alert).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Aggregation window: repeats of a rule on one subject and resource within it are one
    /// alert with a count (e.g. 30s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_span)]
    pub window: Duration,
    /// Write alerts to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, default_value = "0.0.0.0:8444", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Serving certificate chain (PEM); reloaded when the file changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Generate a CA and a serving certificate; write ca.crt, tls.crt and tls.key into DIR
    /// (ca.crt is what `detect webhook-config --ca` takes).
    #[arg(long, value_name = "DIR")]
    pub tls_self_signed: Option<PathBuf>,
    /// Names of the generated certificate (DNS names or IPs; repeatable). Default: localhost,
    /// 127.0.0.1, ::1.
    #[arg(long = "dns-name", value_name = "NAME", requires = "tls_self_signed")]
    pub dns_names: Vec<String>,
    /// Alerts to FILE (appended), or `-` for stdout.
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: String,
    #[arg(short, long, value_enum, default_value_t = ServeFormat::Json)]
    pub format: ServeFormat,
    /// Also send alerts as CEF in RFC 5424 syslog messages (udp://HOST:PORT or tcp://HOST:PORT,
    /// TCP with octet counting).
    #[arg(long, value_name = "URL")]
    pub syslog: Option<String>,
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Aggregation window (the first match alerts at once; repeats within it are summed).
    #[arg(long, default_value = "5m", value_parser = parse_span)]
    pub window: Duration,
    /// Largest batch body accepted (413 beyond).
    #[arg(long, default_value_t = 32 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// In-memory queue bound in batches.
    #[arg(long, default_value_t = 1024)]
    pub queue_batches: usize,
    /// In-memory queue bound in bytes.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub queue_bytes: usize,
    /// Spool batches to DIR when the queue is full (and drain them in order later).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Spool size cap; beyond it batches are dropped and counted.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub spool_max_bytes: u64,
    /// Spool segment file size.
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub spool_segment_bytes: u64,
    /// Detection threads (stateful rules and aggregation are per thread).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// At shutdown, how long queued batches may still be processed before the rest is spooled.
    #[arg(long, default_value = "10s", value_parser = parse_span)]
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServeFormat {
    Json,
    Cef,
}

#[derive(Debug, Args)]
pub struct WebhookConfigArgs {
    /// URL of `detect serve` as the API server reaches it (e.g. https://10.0.0.5:8444/audit).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// CA certificate (PEM) that signed the server's certificate (embedded in the kubeconfig).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Write the kubeconfig to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Write the audit policy to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub policy_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[arg(short, long, value_enum, default_value_t = crate::cli::StatusFormat::Table)]
    pub format: crate::cli::StatusFormat,
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// `palisade bench detect`.
#[derive(Debug, Args)]
pub struct BenchDetectArgs {
    /// Events to generate and evaluate (single thread, all built-in rules).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Also load-test `detect serve` in this process: concurrent clients post EventList
    /// batches for --duration.
    #[arg(long)]
    pub webhook: bool,
    /// Measured time of the webhook load test.
    #[arg(long, default_value = "10s", value_parser = parse_span)]
    pub duration: Duration,
    /// Concurrent webhook clients (each posts, waits for the 200, posts again).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Events per posted batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Serve HTTPS (generated certificate) instead of plain HTTP on loopback.
    #[arg(long)]
    pub tls: bool,
    /// Total batches per second over all clients (open loop, fixed schedule); 0: each client
    /// posts again as soon as it has its answer (saturation).
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `500ms`, `30s`, `5m`, `2h`, `7d`, or plain seconds.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = text.strip_suffix('d') {
        (n, 86_400.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 5m, 1h)"))?;
    if !value.is_finite() || value <= 0.0 || value * scale > 366.0 * 86_400.0 {
        return Err(format!(
            "`{text}`: a duration must be positive and at most a year"
        ));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

pub fn cmd_detect(command: DetectCommand, show_progress: bool) -> Result<u8> {
    match command {
        DetectCommand::Audit(args) => audit(&args, show_progress),
        DetectCommand::Serve(args) => {
            let rt = crate::runtime()?;
            rt.block_on(serve(*args))
        }
        DetectCommand::WebhookConfig(args) => webhook_config(&args),
        DetectCommand::Rules(args) => rules(&args),
    }
}

fn load_rules(args: &RuleArgs) -> Result<Arc<RuleSet<AuditSchema>>> {
    let builtin = palisade_detect::builtin::audit_rule_sources();
    let set = RuleSet::<AuditSchema>::from_dirs(&builtin, &args.rules)
        .map_err(|e| anyhow::anyhow!("rules do not load:\n{e}"))?;
    Ok(Arc::new(set))
}

// ------------------------------------------------------------------------------------ audit

/// Alerts of an offline run: streamed as JSON/CEF, or kept for the table.
struct OfflineOutput {
    format: AlertFormatArg,
    out: Box<dyn Write>,
    kept: Vec<DetectAlert>,
    error: Option<std::io::Error>,
}

impl OfflineOutput {
    fn take(&mut self, alerts: &mut Vec<DetectAlert>) {
        for alert in alerts.drain(..) {
            let written = match self.format {
                AlertFormatArg::Json => write_alert(&alert, AlertFormat::Json, &mut self.out),
                AlertFormatArg::Cef => write_alert(&alert, AlertFormat::Cef, &mut self.out),
                AlertFormatArg::Table => {
                    self.kept.push(alert);
                    Ok(())
                }
            };
            if let Err(e) = written
                && self.error.is_none()
            {
                self.error = Some(e);
            }
        }
    }
}

fn audit(args: &AuditArgs, show_progress: bool) -> Result<u8> {
    let rules = load_rules(&args.rules)?;
    let mut detector = Detector::new(
        Arc::clone(&rules),
        DetectorConfig {
            window: args.window,
            mode: AggregationMode::Windowed,
            ..DetectorConfig::default()
        },
    );
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut output = OfflineOutput {
        format: args.format,
        out,
        kept: Vec::new(),
        error: None,
    };
    let format: InputFormat = args.input_format.into();
    let started = Instant::now();
    if args.follow {
        if args.input == "-" {
            bail!("--follow needs a file, not stdin");
        }
        follow(&mut detector, Path::new(&args.input), format, &mut output)?;
    } else if args.input == "-" {
        let stdin = std::io::stdin().lock();
        detector
            .process_reader(BufReader::with_capacity(1 << 20, stdin), format, &mut |a| {
                output.take(a)
            })
            .context("reading stdin")?;
    } else {
        let path = Path::new(&args.input);
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = (show_progress && total > 0).then(|| progress_bar(total, path));
        let reader: Box<dyn Read> = match &bar {
            Some(bar) => Box::new(bar.wrap_read(file)),
            None => Box::new(file),
        };
        detector
            .process_reader(
                BufReader::with_capacity(1 << 20, reader),
                format,
                &mut |a| output.take(a),
            )
            .with_context(|| format!("reading {}", path.display()))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    let mut rest = Vec::new();
    detector.finish(&mut rest);
    output.take(&mut rest);
    let elapsed = started.elapsed();
    let stats = detector.stats();
    if args.format == AlertFormatArg::Table {
        let table = alert_table(&output.kept);
        writeln!(output.out, "{table}").ok();
    }
    match output.out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing alerts"),
        Ok(()) => {}
    }
    if let Some(e) = output.error
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing alerts");
    }
    eprintln!("{}", summary(&stats, elapsed));
    // Input that held no readable audit event at all is an input error, not a clean result: a
    // pipeline must not read "exit 0" as "nothing suspicious" when it fed the wrong file.
    if stats.events == 0 && stats.parse_error_total() > 0 {
        anyhow::bail!(
            "no audit event could be read from {} ({} unusable documents); is it an audit log \
             (native JSON lines, EKS, GKE or AKS export)?",
            args.input,
            stats.parse_error_total()
        );
    }
    let threshold = args.fail_on.unwrap_or(Severity::Unknown);
    if stats.alerts_at_least(threshold) > 0 {
        Ok(crate::EXIT_FINDINGS)
    } else {
        Ok(crate::EXIT_OK)
    }
}

fn progress_bar(total: u64, path: &Path) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(path.display().to_string());
    bar
}

fn follow(
    detector: &mut Detector,
    path: &Path,
    format: InputFormat,
    output: &mut OfflineOutput,
) -> Result<()> {
    use palisade_detect::audit::follow::{FollowOptions, follow};
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Ctrl-C ends following; the aggregates are flushed and the summary printed.
        let _ = ctrlc_flag(stop);
    }
    let mut alerts = Vec::new();
    let mut last_tick = Instant::now();
    let options = FollowOptions {
        from_start: true,
        ..FollowOptions::default()
    };
    follow(path, &options, &stop, &mut |line: &[u8]| {
        detector.process_document(line, format, &mut alerts);
        if last_tick.elapsed() >= Duration::from_secs(1) {
            detector.tick(palisade_detect::server::queue::unix_nanos(), &mut alerts);
            last_tick = Instant::now();
        }
        output.take(&mut alerts);
        let _ = output.out.flush();
    })
    .with_context(|| format!("following {}", path.display()))?;
    Ok(())
}

/// Sets `stop` on Ctrl-C or SIGTERM (a small runtime on its own thread). SIGTERM is registered
/// before this returns, so a signal sent right after start is never lost to the default action.
fn ctrlc_flag(stop: Arc<std::sync::atomic::AtomicBool>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    #[cfg(unix)]
    let mut terminate = rt.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                #[cfg(unix)]
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
            });
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })?;
    Ok(())
}

fn alert_table(alerts: &[DetectAlert]) -> String {
    if alerts.is_empty() {
        return "no alerts".to_string();
    }
    let mut sorted: Vec<&DetectAlert> = alerts.iter().collect();
    sorted.sort_by(|a, b| {
        b.alert
            .severity
            .cmp(&a.alert.severity)
            .then_with(|| a.first_seen.cmp(&b.first_seen))
    });
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "Severity",
        "Rule",
        "Count",
        "First seen",
        "Subject",
        "MITRE",
        "Message",
    ]);
    for a in sorted {
        let mitre: Vec<&str> = a.alert.techniques.iter().map(|t| t.id.as_str()).collect();
        table.add_row(vec![
            a.alert.severity.to_string(),
            a.rule_id.clone(),
            a.count.to_string(),
            // Events without any timestamp (some exports) have no time to show.
            if a.first_seen_nanos == 0 {
                "-".to_string()
            } else {
                a.first_seen.clone()
            },
            a.subject.clone(),
            mitre.join(","),
            a.message.clone(),
        ]);
    }
    table.to_string()
}

fn summary(stats: &DetectorStats, elapsed: Duration) -> String {
    let rate = stats.events as f64 / elapsed.as_secs_f64().max(1e-9);
    let mut text = format!(
        "palisade detect: {} events in {:.2}s ({:.0} events/s), {} alerts",
        stats.events,
        elapsed.as_secs_f64(),
        rate,
        stats.alerts_total()
    );
    let errors = stats.parse_error_total();
    if errors > 0 {
        let kinds: Vec<String> = stats
            .parse_errors
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        text.push_str(&format!(
            "; {errors} parse errors ({}), skipped",
            kinds.join(", ")
        ));
    }
    text
}

// ------------------------------------------------------------------------------------ serve

async fn serve(args: ServeArgs) -> Result<u8> {
    let rules = load_rules(&args.rules)?;
    let (tls, cert_watch) = serving_tls(&args)?;
    let out: Box<dyn Write + Send> = if args.output == "-" {
        Box::new(std::io::stdout())
    } else {
        let path = Path::new(&args.output);
        Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ))
    };
    let syslog = match &args.syslog {
        Some(url) => Some(Syslog::connect(url)?),
        None => None,
    };
    let format = match args.format {
        ServeFormat::Json => AlertFormat::Json,
        ServeFormat::Cef => AlertFormat::Cef,
    };
    let options = ServeOptions {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        queue: palisade_detect::server::queue::QueueLimits {
            max_batches: args.queue_batches,
            max_bytes: args.queue_bytes,
        },
        spool_dir: args.spool_dir.clone(),
        spool: palisade_detect::server::spool::SpoolLimits {
            max_bytes: args.spool_max_bytes,
            segment_bytes: args.spool_segment_bytes,
        },
        workers: usize::from(args.workers),
        drain_timeout: args.drain_timeout,
        input_format: args.input_format.into(),
        detector: DetectorConfig {
            window: args.window,
            mode: AggregationMode::Immediate,
            ..DetectorConfig::default()
        },
        ..ServeOptions::default()
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let rule_count = rules.rules().len();
    let server = AuditServer::bind(
        options,
        ServeParts {
            rules,
            tls,
            output: AlertWriter::new(format, out, syslog),
        },
    )
    .await?;
    let addr = server.local_addr()?;
    eprintln!("palisade detect: {rule_count} rules");
    eprintln!("palisade detect: listening on {scheme}://{addr}/audit");
    let report = server.run(shutdown_signal()).await;
    if let Some(task) = cert_watch {
        task.abort();
    }
    eprintln!(
        "palisade detect: stopped ({} batches processed{}{})",
        report.batches_processed,
        if report.spooled_at_exit > 0 {
            format!(", {} spooled for the next start", report.spooled_at_exit)
        } else {
            String::new()
        },
        if report.dropped_at_exit > 0 {
            format!(", {} dropped", report.dropped_at_exit)
        } else {
            String::new()
        }
    );
    Ok(crate::EXIT_OK)
}

type TlsSetup = (
    Option<Arc<ReloadingResolver>>,
    Option<tokio::task::JoinHandle<()>>,
);

fn serving_tls(args: &ServeArgs) -> Result<TlsSetup> {
    if let Some(dir) = &args.tls_self_signed {
        let names = if args.dns_names.is_empty() {
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
        } else {
            args.dns_names.clone()
        };
        let generated = SelfSigned::generate(&names, 365)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (file, text) in [
            ("ca.crt", &generated.ca_pem),
            ("tls.crt", &generated.cert_pem),
            ("tls.key", &generated.key_pem),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        eprintln!(
            "palisade detect: generated a CA and a serving certificate for {} in {} (give ca.crt to `detect webhook-config --ca`)",
            names.join(", "),
            dir.display()
        );
        return Ok((
            Some(Arc::new(ReloadingResolver::new(generated.certified_key()?))),
            None,
        ));
    }
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let files = CertFiles::load(cert, key)?;
            let resolver = Arc::clone(&files.resolver);
            Ok((Some(resolver), Some(files.watch(Duration::from_secs(5)))))
        }
        _ => {
            if !args.listen.ip().is_loopback() {
                eprintln!(
                    "palisade detect: warning: serving plain HTTP on {} (audit events carry secrets' metadata and request bodies); use --tls-cert/--tls-key or --tls-self-signed",
                    args.listen
                );
            }
            Ok((None, None))
        }
    }
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

// --------------------------------------------------------------------------- webhook-config

/// The audit policy we recommend: request bodies where the rules read them (workloads, RBAC,
/// webhooks, services, CSRs), metadata only for secrets and token reviews (never their
/// contents), metadata elsewhere, and no RequestReceived stage (it doubles the volume and
/// carries nothing the later stages lack).
pub const SAMPLE_AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
# One event per request, at completion (or when a watch/exec response starts).
omitStages:
  - RequestReceived
rules:
  # Never log the contents of secrets, config data of tokens or token reviews.
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "serviceaccounts/token"]
      - group: "authentication.k8s.io"
        resources: ["tokenreviews"]
  # High-volume, low-value reads by the control plane: metadata is enough.
  - level: Metadata
    verbs: ["get", "list", "watch"]
  # Writes the rules look into: workloads, pods and their exec/attach, services, RBAC,
  # admission webhooks, certificate requests, config maps (CoreDNS).
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["pods", "pods/exec", "pods/attach", "pods/ephemeralcontainers", "pods/portforward",
                    "services", "replicationcontrollers", "configmaps", "namespaces", "nodes/proxy",
                    "serviceaccounts"]
      - group: "apps"
        resources: ["deployments", "daemonsets", "statefulsets", "replicasets"]
      - group: "batch"
        resources: ["jobs", "cronjobs"]
      - group: "rbac.authorization.k8s.io"
        resources: ["roles", "rolebindings", "clusterroles", "clusterrolebindings"]
      - group: "admissionregistration.k8s.io"
        resources: ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
      - group: "certificates.k8s.io"
        resources: ["certificatesigningrequests", "certificatesigningrequests/approval"]
      - group: "networking.k8s.io"
        resources: ["ingresses"]
  # Everything else: who did what to which object.
  - level: Metadata
"#;

/// The kubeconfig-format file for `--audit-webhook-config-file`.
pub fn webhook_kubeconfig(url: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    let mut cluster = format!("    server: \"{url}\"\n");
    if let Some(ca) = ca_pem {
        let encoded = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
        cluster.push_str(&format!("    certificate-authority-data: \"{encoded}\"\n"));
    }
    format!(
        "# kube-apiserver --audit-webhook-config-file: where audit batches go (palisade detect serve)\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: palisade-detect\n  cluster:\n{cluster}\
         users:\n\
         - name: kube-apiserver\n  user: {{}}\n\
         contexts:\n\
         - name: palisade-detect\n  context:\n    cluster: palisade-detect\n    user: kube-apiserver\n\
         current-context: palisade-detect\n"
    )
}

fn webhook_config(args: &WebhookConfigArgs) -> Result<u8> {
    if !(args.url.starts_with("https://") || args.url.starts_with("http://")) {
        bail!("--url {}: expected an http(s):// URL", args.url);
    }
    let ca = match &args.ca {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => None,
    };
    if let Some(ca) = &ca
        && !ca.contains("-----BEGIN CERTIFICATE-----")
    {
        bail!("--ca: no PEM certificate in the file");
    }
    if args.url.starts_with("http://") {
        eprintln!(
            "note: a plain http:// URL sends audit events unencrypted; use it on loopback only"
        );
    }
    let kubeconfig = webhook_kubeconfig(&args.url, ca.as_deref());
    let mut stdout = String::new();
    match &args.kubeconfig_out {
        Some(path) => std::fs::write(path, &kubeconfig)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => stdout.push_str(&kubeconfig),
    }
    match &args.policy_out {
        Some(path) => std::fs::write(path, SAMPLE_AUDIT_POLICY)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            if !stdout.is_empty() {
                stdout.push_str("---\n");
            }
            stdout
                .push_str("# kube-apiserver --audit-policy-file: what is logged, at which level\n");
            stdout.push_str(SAMPLE_AUDIT_POLICY);
        }
    }
    if !stdout.is_empty() {
        crate::scan::emit(None, &stdout)?;
    }
    eprintln!(
        "kube-apiserver flags: --audit-webhook-config-file=<kubeconfig> --audit-policy-file=<policy> \
         --audit-webhook-batch-max-wait=5s (default 30s; alerts wait for the batch)"
    );
    Ok(crate::EXIT_OK)
}

// ------------------------------------------------------------------------------------ rules

fn rules(args: &RulesArgs) -> Result<u8> {
    let set = load_rules(&args.rules)?;
    let text = match args.format {
        crate::cli::StatusFormat::Json => {
            let list: Vec<serde_json::Value> = set
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "title": r.title,
                        "severity": r.severity,
                        "description": r.description,
                        "remediation": r.remediation,
                        "tactics": r.tactics,
                        "techniques": r.techniques,
                        "tags": r.tags,
                        "stateful": r.stateful,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&list)? + "\n"
        }
        crate::cli::StatusFormat::Table => {
            let mut table = comfy_table::Table::new();
            table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(vec!["Id", "Severity", "Tactics", "Techniques", "Title"]);
            for r in set.rules() {
                let tactics: Vec<&str> = r.tactics.iter().map(|t| t.id.as_str()).collect();
                let techniques: Vec<&str> = r.techniques.iter().map(|t| t.id.as_str()).collect();
                table.add_row(vec![
                    r.id.clone(),
                    r.severity.to_string(),
                    tactics.join(","),
                    techniques.join(","),
                    r.title.clone(),
                ]);
            }
            format!("{table}\n{} rules\n", set.rules().len())
        }
    };
    crate::scan::emit(None, &text)?;
    Ok(crate::EXIT_OK)
}

// ------------------------------------------------------------------------------------ bench

fn rss_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "?".to_string(),
        |b| format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    )
}

pub fn cmd_bench_detect(args: BenchDetectArgs, rt: &tokio::runtime::Runtime) -> Result<()> {
    use palisade_detect::generate::{AuditGenerator, GeneratorConfig};
    let rules = load_rules(&RuleArgs { rules: Vec::new() })?;
    let mut out = String::new();
    let rss_before = rss_bytes("VmRSS:");
    let mut generator = AuditGenerator::new(GeneratorConfig {
        seed: args.seed,
        ..GeneratorConfig::default()
    });
    let mut detector = Detector::new(
        Arc::clone(&rules),
        DetectorConfig {
            mode: AggregationMode::Windowed,
            ..DetectorConfig::default()
        },
    );
    // Generated and evaluated in chunks so the log never sits in memory whole; only the
    // evaluation is timed.
    const CHUNK: u64 = 20_000;
    let mut chunk = Vec::with_capacity(32 << 20);
    let mut busy = Duration::ZERO;
    let mut alerts = 0u64;
    let mut remaining = args.events;
    while remaining > 0 {
        let n = remaining.min(CHUNK);
        chunk.clear();
        generator.write_lines(n as usize, &mut chunk);
        let started = Instant::now();
        detector.process_reader(&chunk[..], InputFormat::Native, &mut |a| {
            alerts += a.len() as u64;
            a.clear();
        })?;
        busy += started.elapsed();
        remaining -= n;
    }
    let mut rest = Vec::new();
    let started = Instant::now();
    detector.finish(&mut rest);
    busy += started.elapsed();
    alerts += rest.len() as u64;
    let generated = generator.stats();
    let stats = detector.stats();
    let secs = busy.as_secs_f64().max(1e-9);
    outln!(
        out,
        "palisade detect: parse + evaluate + aggregate, one thread, {} rules (all built-in)",
        rules.rules().len()
    );
    outln!(
        out,
        "{:<28} {}",
        "events",
        format_args!(
            "{} ({:.1} MB, {} reads, {} writes, {} suspicious)",
            generated.events,
            generated.bytes as f64 / 1e6,
            generated.reads,
            generated.writes,
            generated.suspicious
        )
    );
    outln!(out, "{:<28} {:.2}s", "evaluation time", secs);
    outln!(
        out,
        "{:<28} {:.0} events/s ({:.0} MB/s)",
        "throughput (per core)",
        generated.events as f64 / secs,
        generated.bytes as f64 / 1e6 / secs
    );
    outln!(
        out,
        "{:<28} {} ns",
        "per event",
        (secs * 1e9 / generated.events.max(1) as f64).round()
    );
    outln!(
        out,
        "{:<28} {} matches, {} alerts, {} parse errors",
        "result",
        stats.matches,
        alerts,
        stats.parse_error_total()
    );
    outln!(
        out,
        "{:<28} {} (RSS before {})",
        "peak RSS (VmHWM)",
        mb(rss_bytes("VmHWM:")),
        mb(rss_before)
    );
    crate::scan::emit(None, &out)?;
    if args.webhook {
        drop(detector);
        let text = rt.block_on(bench_webhook(&args, rules))?;
        crate::scan::emit(None, &text)?;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn bench_webhook(args: &BenchDetectArgs, rules: Arc<RuleSet<AuditSchema>>) -> Result<String> {
    use palisade_detect::generate::{AuditGenerator, GeneratorConfig};
    use palisade_detect::server::metrics::sample;
    let dir = tempfile_dir()?;
    let (tls, ca) = if args.tls {
        let generated = SelfSigned::generate(&["localhost".into(), "127.0.0.1".into()], 1)?;
        (
            Some(Arc::new(ReloadingResolver::new(generated.certified_key()?))),
            Some(generated.ca_pem),
        )
    } else {
        (None, None)
    };
    let server = AuditServer::bind(
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            spool_dir: Some(dir.join("spool")),
            spool: palisade_detect::server::spool::SpoolLimits {
                max_bytes: 256 << 20,
                ..Default::default()
            },
            detector: DetectorConfig::default(),
            ..ServeOptions::default()
        },
        ServeParts {
            rules,
            tls,
            output: AlertWriter::new(AlertFormat::Json, Box::new(std::io::sink()), None),
        },
    )
    .await?;
    let addr = server.local_addr()?;
    let metrics = server.metrics();
    let ingest = server.ingest();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    // Bodies generated up front (the generator must not be what limits the clients).
    let mut generator = AuditGenerator::new(GeneratorConfig {
        seed: args.seed + 1,
        ..GeneratorConfig::default()
    });
    let bodies: Arc<Vec<bytes_body::Body>> = Arc::new(
        (0..256)
            .map(|_| {
                let mut body = Vec::new();
                generator.write_event_list(args.batch.max(1), &mut body);
                bytes_body::Body::from(body)
            })
            .collect(),
    );
    let body_bytes: usize = bodies.iter().map(bytes_body::Body::len).sum::<usize>() / bodies.len();
    let client = bench_client(ca.as_deref())?;
    let scheme = if ca.is_some() { "https" } else { "http" };
    let host = if ca.is_some() {
        "localhost"
    } else {
        "127.0.0.1"
    };
    let url = format!("{scheme}://{host}:{}/audit", addr.port());

    // Warm-up: connections and the first allocations.
    for body in bodies.iter().take(8) {
        client.post(&url).body(body.to_vec()).send().await?;
    }
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    let clients = args.clients.max(1);
    // Open loop: each client sends on its own fixed schedule; latency counts from the
    // scheduled time, so a slow answer is not hidden by a later send.
    let interval =
        (args.rate > 0).then(|| Duration::from_secs_f64(clients as f64 / f64::from(args.rate)));
    for c in 0..clients {
        let client = client.clone();
        let url = url.clone();
        let bodies = Arc::clone(&bodies);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = c * 31;
            let mut n = 0u32;
            let offset = interval.map(|iv| iv.mul_f64(c as f64 / clients as f64));
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].to_vec();
                i += 1;
                let sent = match (interval, offset) {
                    (Some(iv), Some(offset)) => {
                        let at = started + offset + iv * n;
                        n += 1;
                        if at >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    _ => Instant::now(),
                };
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        });
    }
    // RSS and queue samples every second while the clients run.
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1).min(deadline - Instant::now())).await;
        let gauges = ingest.gauges();
        samples.push((
            started.elapsed(),
            rss_bytes("VmRSS:"),
            gauges.queue_batches,
            gauges.spool_bytes,
            metrics.detector_stats().events_evaluated,
        ));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Ok((l, e)) = joined {
            latencies.extend(l);
            errors += e;
        }
    }
    let load_elapsed = started.elapsed();
    let processed_at_end_of_load = metrics.detector_stats().events_evaluated;
    // Let the workers catch up with what was queued or spooled, then stop the server.
    let catch_up = Instant::now();
    while !ingest.is_empty() && catch_up.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text_metrics = {
        let response = client
            .get(format!("{scheme}://{host}:{}/metrics", addr.port()))
            .send()
            .await?;
        response.text().await?
    };
    let _ = stop_tx.send(());
    let report = serving.await.unwrap_or_default();
    latencies.sort_unstable();
    let requests = latencies.len();
    let secs = load_elapsed.as_secs_f64();
    let mut out = String::new();
    outln!(
        out,
        "\ndetect serve over {} on loopback: {} clients posting EventLists of {} events (~{:.0} KB) for {:.0}s, {}, keep-alive",
        scheme.to_uppercase(),
        args.clients,
        args.batch,
        body_bytes as f64 / 1024.0,
        args.duration.as_secs_f64(),
        if args.rate > 0 {
            format!("open loop at {} batches/s", args.rate)
        } else {
            "closed loop (saturation)".to_string()
        }
    );
    outln!(
        out,
        "{:<28} {} ({:.0}/s, {:.0} events/s offered), {} errors",
        "batches acknowledged",
        requests,
        requests as f64 / secs,
        (requests * args.batch) as f64 / secs,
        errors
    );
    outln!(
        out,
        "{:<28} p50 {}  p95 {}  p99 {}  max {}",
        "ack latency (client)",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    let get = |name: &str, labels: &str| sample(&text_metrics, name, labels).unwrap_or(0.0);
    outln!(
        out,
        "{:<28} p50 {}  p99 {}  (histogram bucket bounds: body read + enqueue)",
        "ack latency (server)",
        server_quantile(&text_metrics, 0.50),
        server_quantile(&text_metrics, 0.99)
    );
    outln!(
        out,
        "{:<28} {:.0} events/s during the load ({} events evaluated in all)",
        "processed",
        processed_at_end_of_load as f64 / secs,
        get("palisade_detect_events_evaluated_total", "")
    );
    outln!(
        out,
        "{:<28} queued {}, spooled {}, unspooled {}, dropped {} (queue_full {}, spool_full {}, too_large {})",
        "batches",
        get("palisade_detect_batches_queued_total", ""),
        get("palisade_detect_batches_spooled_total", ""),
        get("palisade_detect_batches_unspooled_total", ""),
        palisade_detect::server::metrics::family(
            &text_metrics,
            "palisade_detect_dropped_batches_total"
        )
        .values()
        .map(|v| *v as u64)
        .sum::<u64>(),
        get(
            "palisade_detect_dropped_batches_total",
            "reason=\"queue_full\""
        ),
        get(
            "palisade_detect_dropped_batches_total",
            "reason=\"spool_full\""
        ),
        get(
            "palisade_detect_dropped_batches_total",
            "reason=\"too_large\""
        ),
    );
    outln!(
        out,
        "{:<28} {} alerts, {} parse errors, {} batches processed",
        "detection",
        palisade_detect::server::metrics::family(&text_metrics, "palisade_detect_alerts_total")
            .values()
            .map(|v| *v as u64)
            .sum::<u64>(),
        palisade_detect::server::metrics::family(
            &text_metrics,
            "palisade_detect_parse_errors_total"
        )
        .values()
        .map(|v| *v as u64)
        .sum::<u64>(),
        report.batches_processed
    );
    outln!(out, "RSS over time (this process: server + clients):");
    outln!(
        out,
        "  {:>6} {:>10} {:>8} {:>12} {:>14}",
        "t",
        "RSS",
        "queue",
        "spool bytes",
        "evaluated"
    );
    for (t, rss, queue, spool, evaluated) in &samples {
        outln!(
            out,
            "  {:>5.0}s {:>10} {:>8} {:>12} {:>14}",
            t.as_secs_f64(),
            mb(*rss),
            queue,
            spool,
            evaluated
        );
    }
    outln!(
        out,
        "{:<28} {}",
        "peak RSS (VmHWM)",
        mb(rss_bytes("VmHWM:"))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// The upper bound of the acknowledgement histogram bucket holding quantile `q`.
fn server_quantile(metrics: &str, q: f64) -> String {
    let buckets = palisade_detect::server::metrics::family(
        metrics,
        "palisade_detect_ack_latency_seconds_bucket",
    );
    let mut bounds: Vec<(f64, f64)> = buckets
        .iter()
        .filter_map(|(labels, n)| {
            let bound = labels.strip_prefix("le=\"")?.strip_suffix('"')?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, *n))
        })
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = bounds.last().map_or(0.0, |b| b.1);
    match bounds.iter().find(|(_, n)| *n >= q * total) {
        Some((bound, _)) if bound.is_finite() => format!("≤ {:.2} ms", bound * 1000.0),
        Some(_) => "> 2.5 s".to_string(),
        None => "?".to_string(),
    }
}

/// Shared, cheaply cloned request bodies.
mod bytes_body {
    use std::sync::Arc;

    #[derive(Clone)]
    pub struct Body(Arc<Vec<u8>>);

    impl Body {
        pub fn len(&self) -> usize {
            self.0.len()
        }
        pub fn to_vec(&self) -> Vec<u8> {
            self.0.as_ref().clone()
        }
    }

    impl From<Vec<u8>> for Body {
        fn from(v: Vec<u8>) -> Self {
            Body(Arc::new(v))
        }
    }
}

fn bench_client(ca_pem: Option<&str>) -> Result<reqwest::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30));
    if let Some(ca) = ca_pem {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder = builder.tls_backend_preconfigured(config);
    }
    Ok(builder.build()?)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("palisade-bench-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_span("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_span("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_span("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_span("0s").is_err());
        assert!(parse_span("soon").is_err());
    }

    #[test]
    fn kubeconfig_embeds_the_ca_and_policy_is_valid_yaml() {
        let text = webhook_kubeconfig("https://10.0.0.5:8444/audit", Some("PEM"));
        let v: serde_json::Value = yaml_serde::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://10.0.0.5:8444/audit"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(v["current-context"], "palisade-detect");
        let policy: serde_json::Value = yaml_serde::from_str(SAMPLE_AUDIT_POLICY).unwrap();
        assert_eq!(policy["kind"], "Policy");
        assert_eq!(policy["omitStages"][0], "RequestReceived");
        let rules = policy["rules"].as_array().unwrap();
        assert_eq!(rules[0]["level"], "Metadata");
        assert_eq!(rules[0]["resources"][0]["resources"][0], "secrets");
        assert_eq!(rules.last().unwrap()["level"], "Metadata");
        assert!(
            rules.iter().any(|r| r["level"] == "RequestResponse"
                && r.to_string().contains("clusterrolebindings"))
        );
    }
}
