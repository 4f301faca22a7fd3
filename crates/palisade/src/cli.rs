//! Command-line arguments (clap derive). Parsing only; the commands live in their own modules.

use clap::{Args, Parser, Subcommand, ValueEnum};
use palisade_core::Severity;
use std::path::PathBuf;

/// Palisade: container security. Scans images and file systems for vulnerable packages.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Advisory database file (default: <user cache dir>/palisade/advisories.db).
    #[arg(long, global = true, env = "PALISADE_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan an image or a file system for vulnerable packages.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// Write the software bill of materials of an image or file system.
    Sbom(SbomArgs),
    /// Manage the local advisory database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Measure scan time and memory.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Which users, groups and service accounts may perform VERB on RESOURCE (RBAC, effective).
    WhoCan(WhoCanArgs),
    /// Hunt for risk in the security graph: built-in attack-path queries or your own.
    Explore(ExploreArgs),
    /// Gatekeeper-compatible policies: verify suites, test manifests, audit, constraint CRDs.
    #[command(subcommand)]
    Policy(crate::policy::PolicyCommand),
    /// Admission control: the validating webhook and its registration.
    #[command(subcommand)]
    Admission(crate::admission::AdmissionCommand),
    /// Threat detection from Kubernetes audit logs: offline files, the audit webhook, rules.
    #[command(subcommand)]
    Detect(crate::detect::DetectCommand),
    /// The node sensor: eBPF runtime detection on a node (run, check).
    #[command(subcommand)]
    Sensor(crate::sensor::SensorCommand),
    /// List the posture checks with their ids, severities, controls and parameters.
    Checks {
        #[arg(short, long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Scan a container image: a registry reference (`registry/repo:tag`), an OCI layout
    /// (`oci:PATH[:tag]`), a `docker save` tarball (`docker-archive:PATH`) or an OCI archive
    /// (`oci-archive:PATH`).
    Image {
        /// The image: `registry/repo:tag`, `oci:PATH[:tag]`, `docker-archive:PATH` or
        /// `oci-archive:PATH`.
        #[arg(value_name = "REF")]
        reference: String,
        #[command(flatten)]
        image: ImageArgs,
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Scan a root file system (an unpacked image, a mounted disk, or `/` for this host).
    Fs {
        /// Root directory of the file system.
        path: PathBuf,
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Check Kubernetes manifests (files, directories, `-` for stdin; rendered Helm or Kustomize
    /// output) for misconfigurations, dangerous RBAC, control-plane settings and attack paths.
    Manifests {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        posture: PostureArgs,
    },
    /// Check a live cluster through its API (read-only; Secrets as metadata only).
    Cluster {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// List only this namespace's namespaced objects (cluster-scoped objects are always read).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Also write the inventory read from the cluster (a JSON `List` that `scan manifests` reads).
        #[arg(long, value_name = "FILE")]
        save_inventory: Option<PathBuf>,
        #[command(flatten)]
        posture: PostureArgs,
    },
}

/// How to reach a cluster.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Name findings carry for this cluster (default: the context name).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// Objects per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub page_size: u32,
}

/// Where the objects of `who-can` and `explore` come from: manifests with `-f`, else a cluster.
#[derive(Debug, Args, Clone, Default)]
pub struct KubeSourceArgs {
    /// Read objects from manifests instead of a cluster (repeatable; `-` for stdin).
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PostureFormat {
    Table,
    Json,
    Sarif,
}

/// Options of the posture scans.
#[derive(Debug, Args, Clone)]
pub struct PostureArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = PostureFormat::Table)]
    pub format: PostureFormat,
    /// Write the report to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Table layout.
    #[arg(long, value_enum, default_value_t = crate::posture::report::GroupBy::Resource)]
    pub group_by: crate::posture::report::GroupBy,
    /// Posture config (YAML): check parameters, excluded namespaces, disabled checks, severities.
    #[arg(long, value_name = "FILE", env = "PALISADE_POSTURE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Exceptions file (YAML) with reasons and expiry dates.
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// Vulnerability results (`palisade scan image --format json` files, or a directory of them)
    /// to attach to images in the security graph.
    #[arg(long, value_name = "PATH")]
    pub vulns: Vec<PathBuf>,
    /// Skip the security graph and attack paths.
    #[arg(long)]
    pub no_attack_paths: bool,
    /// Report only these severities (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "S[,S]")]
    pub severity: Vec<Severity>,
    /// Report only these categories (workload, exposure, rbac, control-plane, attack-path).
    #[arg(long, value_delimiter = ',', value_name = "C[,C]")]
    pub category: Vec<String>,
    /// Exit with status 1 when a reported finding is at least this severe.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
}

#[derive(Debug, Args)]
pub struct WhoCanArgs {
    /// The verb: get, list, watch, create, update, patch, delete, deletecollection, use, bind,
    /// escalate, impersonate, approve, `*`.
    pub verb: String,
    /// The resource, optionally with its API group and subresource: `secrets`, `pods/exec`,
    /// `deployments.apps`, `clusterroles.rbac.authorization.k8s.io`.
    pub resource: String,
    /// The namespace of the request (default: the whole cluster, i.e. cluster-wide grants only).
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub source: KubeSourceArgs,
    #[arg(long = "format", value_enum, default_value_t = StatusFormat::Table)]
    pub format: StatusFormat,
}

#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// A query (see docs/explore.md) or the name of a built-in query; none lists the built-ins.
    pub query: Option<String>,
    /// List the built-in queries.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub source: KubeSourceArgs,
    /// Vulnerability results to attach (as for `scan manifests --vulns`).
    #[arg(long, value_name = "PATH")]
    pub vulns: Vec<PathBuf>,
    /// Posture config (YAML).
    #[arg(long, value_name = "FILE", env = "PALISADE_POSTURE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long = "format", value_enum, default_value_t = ExploreFormat::Table)]
    pub format: ExploreFormat,
    /// Write to a file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExploreFormat {
    Table,
    Json,
    Dot,
}

/// Options of every scan.
#[derive(Debug, Args, Clone)]
pub struct ScanArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Write the report to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report only these severities (comma-separated: critical,high,medium,low,informational,unknown).
    #[arg(long, value_delimiter = ',', value_name = "S[,S]")]
    pub severity: Vec<Severity>,
    /// Leave out vulnerabilities with no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Accepted vulnerabilities (YAML with id, package, reason, expires; or one id per line).
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Vec<PathBuf>,
    /// Exit with status 1 when a reported vulnerability is at least this severe.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Do not warn when the advisory database is older than a day (air-gapped copies).
    #[arg(long)]
    pub offline_db: bool,
}

/// How to reach registries.
#[derive(Debug, Args, Clone, Default)]
pub struct ImageArgs {
    /// Allow plain HTTP and unverified TLS (loopback test registries).
    #[arg(long)]
    pub insecure: bool,
    /// Registry user name.
    #[arg(long, env = "PALISADE_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password or token.
    #[arg(long, env = "PALISADE_REGISTRY_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Platform to pick from a multi-platform image (`os/arch[/variant]`).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Layer cache directory (default: <user cache dir>/palisade/blobs).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Docker config with registry credentials (default: ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Sarif,
    Cyclonedx,
    Spdx,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// What to catalog: an image reference as for `scan image`, or `fs:PATH` / an existing
    /// directory for a root file system.
    pub target: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
    pub format: SbomFormat,
    /// Write to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub image: ImageArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    Cyclonedx,
    Spdx,
    /// Palisade's own package list (the `packages` of `scan --format json`).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Download the public advisory sources and rebuild the database.
    Update,
    /// Build the database offline from advisory files, directories or zip archives
    /// (OSV JSON/YAML, Debian security tracker, Alpine secdb).
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Show what the database holds and how old it is.
    Status {
        #[arg(short, long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Drive `admission serve` over HTTPS on loopback at fixed rates (open loop); report
    /// latency percentiles, errors and the server's peak memory.
    Admission(crate::admission::BenchAdmissionArgs),
    /// Generate an audit log (1M events by default) and measure single-thread detection
    /// throughput and peak memory; with --webhook, load-test `detect serve` too.
    Detect(crate::detect::BenchDetectArgs),
    /// Run `sensor run` (this binary, real eBPF programs) and measure its CPU and memory idle and
    /// under exec and open storms, drops, and the slowdown of exec- and syscall-heavy workloads.
    /// Needs root.
    Sensor(crate::sensor_bench::BenchSensorArgs),
    /// Scan the same target several times in this process; report wall time and peak memory.
    Scan {
        /// An image reference as for `scan image`, or `fs:PATH`.
        target: String,
        /// Number of scans.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Give every run an empty layer cache (cold scans: registry pulls included).
        #[arg(long)]
        cold: bool,
        #[arg(short, long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Run the posture engine (checks, RBAC, graph, attack paths) on a generated inventory and
    /// report objects per second and peak memory.
    Posture {
        /// Workload objects to generate (Deployments, their Services, ConfigMaps, ...).
        #[arg(long, default_value_t = 20000)]
        objects: u32,
        /// RBAC objects to generate (Roles, ClusterRoles, bindings, service accounts).
        #[arg(long, default_value_t = 2000)]
        rbac: u32,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        #[arg(short, long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
        /// Also write the generated manifests to this file (to time `scan manifests` on them).
        #[arg(long, value_name = "FILE")]
        write_manifests: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_scan_flags() {
        let cli = Cli::try_parse_from([
            "palisade",
            "--db",
            "/tmp/x.db",
            "scan",
            "image",
            "oci:/tmp/l:1",
            "--severity",
            "critical,high",
            "--fail-on",
            "high",
            "--format",
            "json",
            "--ignore-unfixed",
        ])
        .unwrap();
        let Command::Scan(ScanCommand::Image {
            reference, scan, ..
        }) = cli.command
        else {
            panic!("not scan image");
        };
        assert_eq!(reference, "oci:/tmp/l:1");
        assert_eq!(scan.severity, vec![Severity::Critical, Severity::High]);
        assert_eq!(scan.fail_on, Some(Severity::High));
        assert_eq!(scan.format, ScanFormat::Json);
        assert!(scan.ignore_unfixed);
        assert!(
            Cli::try_parse_from(["palisade", "scan", "fs", "/", "--severity", "severe"]).is_err()
        );
    }
}
