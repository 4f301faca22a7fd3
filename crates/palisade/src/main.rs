//! The `palisade` command: parses arguments and wires sources → engines → outputs. No scanning
//! logic lives here.

/// `writeln!` into a `String` buffer (infallible), so reports are written to stdout in one piece
/// and a closed pipe is handled in one place ([`scan::emit`]).
macro_rules! outln {
    ($buf:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($arg)*);
    }};
}

mod admission;
mod allocator;
mod bench;
mod cli;
mod db;
mod detect;
mod output;
mod policy;
mod posture;
mod progress;
mod scan;
mod sensor;
mod sensor_bench;
mod target;

use clap::Parser;
use cli::{Cli, Command, DbCommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Exit status: no finding at or above `--fail-on`.
pub const EXIT_OK: u8 = 0;
/// Exit status: findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: usage or input error (clap uses 2 for usage errors too).
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    // One TLS backend for every HTTP client in the process; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let show_progress = progress::wanted(cli.quiet);
    let db_path = || db::resolve_path(cli.db.as_deref());
    match cli.command {
        Command::Scan(cli::ScanCommand::Manifests { paths, posture }) => {
            posture::cmd_scan_manifests(&paths, &posture)
        }
        Command::Scan(cli::ScanCommand::Cluster {
            cluster,
            namespace,
            save_inventory,
            posture,
        }) => {
            let rt = runtime()?;
            posture::cmd_scan_cluster(
                &cluster,
                namespace,
                save_inventory.as_deref(),
                &posture,
                &rt,
            )
        }
        Command::Scan(cmd) => {
            let rt = runtime()?;
            scan::cmd_scan(&db_path()?, cmd, show_progress, &rt)
        }
        Command::Sbom(args) => {
            let rt = runtime()?;
            scan::cmd_sbom(args, show_progress, &rt)?;
            Ok(EXIT_OK)
        }
        Command::Db(DbCommand::Update) => {
            let rt = runtime()?;
            db::cmd_update(&db_path()?, show_progress, &rt)?;
            Ok(EXIT_OK)
        }
        Command::Db(DbCommand::Import { paths }) => {
            db::cmd_import(&db_path()?, &paths, show_progress)?;
            Ok(EXIT_OK)
        }
        Command::Db(DbCommand::Status { format }) => {
            db::cmd_status(&db_path()?, format)?;
            Ok(EXIT_OK)
        }
        Command::Policy(cmd) => policy::run(cmd, cli.verbose),
        Command::WhoCan(args) => {
            let rt = runtime()?;
            posture::cmd_who_can(&args, &rt)
        }
        Command::Explore(args) => {
            let rt = runtime()?;
            posture::cmd_explore(&args, &rt)
        }
        Command::Checks { format } => posture::cmd_checks(format),
        Command::Admission(cmd) => {
            let rt = runtime()?;
            admission::cmd_admission(cmd, &rt)
        }
        Command::Detect(cmd) => detect::cmd_detect(cmd, show_progress),
        Command::Sensor(cmd) => sensor::cmd_sensor(cmd),
        Command::Bench(cmd) => {
            let rt = runtime()?;
            bench::cmd_bench(&db_path()?, cmd, &rt)?;
            Ok(EXIT_OK)
        }
    }
}
