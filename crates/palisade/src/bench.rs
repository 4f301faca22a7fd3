//! `palisade bench scan TARGET --runs N`: repeated in-process scans, wall time and peak RSS.

use crate::cli::{BenchCommand, StatusFormat};
use crate::db;
use crate::target::{Loader, TargetSpec};
use anyhow::{Context, Result};
use palisade_image::Limits;
use palisade_vuln::matcher::{MatchOptions, match_packages_report};
use std::path::Path;
use std::time::{Duration, Instant};

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
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

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n == 0 {
        return Duration::ZERO;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Runs the benchmark and prints the figures.
pub fn cmd_bench(db_path: &Path, cmd: BenchCommand, rt: &tokio::runtime::Runtime) -> Result<()> {
    let (target, runs, cold, format, image) = match cmd {
        BenchCommand::Scan {
            target,
            runs,
            cold,
            format,
            image,
        } => (target, runs, cold, format, image),
        BenchCommand::Admission(args) => return crate::admission::cmd_bench_admission(args, rt),
        BenchCommand::Detect(args) => return crate::detect::cmd_bench_detect(args, rt),
        BenchCommand::Sensor(args) => return crate::sensor_bench::run(args),
        BenchCommand::Posture {
            objects,
            rbac,
            runs,
            format,
            write_manifests,
        } => {
            return crate::posture::bench::run(
                objects,
                rbac,
                runs,
                format,
                write_manifests.as_deref(),
            );
        }
    };
    let spec = TargetSpec::parse_any(&target)?;
    let open_start = Instant::now();
    let advisories = db::open(db_path)?;
    let db_open = open_start.elapsed();
    let mut loader = Loader {
        image,
        limits: Limits::default(),
        show_progress: false,
    };
    let opts = MatchOptions::default();
    let mut totals = Vec::new();
    let mut matching = Vec::new();
    let (mut packages, mut vulns) = (0usize, 0usize);
    for run in 0..runs {
        let cold_dir = if cold {
            let d =
                std::env::temp_dir().join(format!("palisade-bench-{}-{run}", std::process::id()));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            loader.image.cache_dir = Some(d.clone());
            Some(d)
        } else {
            None
        };
        let start = Instant::now();
        let sbom = loader.load(&spec, rt);
        let load_time = start.elapsed();
        if let Some(d) = &cold_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        let sbom = sbom?;
        let m_start = Instant::now();
        let report =
            match_packages_report(&advisories, &sbom.packages, sbom.distro.as_ref(), &opts)?;
        let match_time = m_start.elapsed();
        matching.push(match_time);
        // Cache clean-up of cold runs is not part of the scan.
        totals.push(load_time + match_time);
        packages = sbom.packages.len();
        vulns = report.matches.len();
    }
    totals.sort();
    matching.sort();
    let match_median = median(&matching);
    let throughput = if match_median.as_secs_f64() > 0.0 {
        packages as f64 / match_median.as_secs_f64()
    } else {
        0.0
    };
    let rss = peak_rss_bytes();
    let mut buf = String::new();
    match format {
        StatusFormat::Json => {
            let v = serde_json::json!({
                "target": target,
                "runs": runs,
                "cold": cold,
                "db_open_ms": db_open.as_secs_f64() * 1e3,
                "wall_min_ms": totals[0].as_secs_f64() * 1e3,
                "wall_median_ms": median(&totals).as_secs_f64() * 1e3,
                "wall_max_ms": totals[totals.len() - 1].as_secs_f64() * 1e3,
                "match_median_ms": match_median.as_secs_f64() * 1e3,
                "match_packages_per_s": throughput,
                "packages": packages,
                "vulnerabilities": vulns,
                "peak_rss_bytes": rss,
            });
            outln!(buf, "{}", serde_json::to_string_pretty(&v)?);
        }
        StatusFormat::Table => {
            outln!(buf, "target:            {target}");
            outln!(
                buf,
                "runs:              {runs} ({})",
                if cold {
                    "cold: empty layer cache each run"
                } else {
                    "warm"
                }
            );
            outln!(buf, "packages:          {packages}");
            outln!(buf, "vulnerabilities:   {vulns}");
            outln!(
                buf,
                "db open:           {:.1} ms",
                db_open.as_secs_f64() * 1e3
            );
            outln!(
                buf,
                "scan wall time:    min {:.1} ms, median {:.1} ms, max {:.1} ms",
                totals[0].as_secs_f64() * 1e3,
                median(&totals).as_secs_f64() * 1e3,
                totals[totals.len() - 1].as_secs_f64() * 1e3
            );
            outln!(
                buf,
                "matching:          median {:.2} ms ({throughput:.0} packages/s)",
                match_median.as_secs_f64() * 1e3
            );
            match rss {
                Some(b) => outln!(
                    buf,
                    "peak RSS:          {:.1} MiB",
                    b as f64 / (1024.0 * 1024.0)
                ),
                None => outln!(buf, "peak RSS:          unknown (no /proc/self/status)"),
            }
        }
    }
    crate::scan::emit(None, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_and_median() {
        assert_eq!(
            parse_vm_hwm("Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t1 kB\n"),
            Some(123456 * 1024)
        );
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        let d = |ms| Duration::from_millis(ms);
        assert_eq!(median(&[d(1), d(5), d(9)]), d(5));
        assert_eq!(median(&[d(1), d(3)]), d(2));
    }
}
