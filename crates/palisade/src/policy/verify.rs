//! `palisade policy verify`: gator-style suites, one line per suite and one per failing case
//! (every case with `-v`), or the `palisade.policy-verify/v1` JSON.

use super::{VerifyArgs, VerifyFormat};
use crate::scan::emit;
use crate::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use anyhow::Result;
use palisade_policy::suite::{
    CaseReport, Filter, Outcome, RunOptions, SuiteReport, Tally, discover, run_suite,
};
use serde_json::json;

/// JSON schema id of the verify report.
pub const SCHEMA: &str = "palisade.policy-verify/v1";

pub fn cmd_verify(args: &VerifyArgs, verbose: bool) -> Result<u8> {
    let filter = match Filter::parse(args.run.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    let mut suites = Vec::new();
    let mut input_errors = Vec::new();
    for target in &args.suites {
        match discover(target) {
            Ok(found) if found.is_empty() => {
                input_errors.push(format!("{target}: no test suites found"));
            }
            Ok(found) => suites.extend(found),
            Err(e) => input_errors.push(e.to_string()),
        }
    }
    let mut options = RunOptions {
        filter,
        ..RunOptions::default()
    };
    options.settings.providers = super::providers(args.vulns.as_deref())?;
    let reports: Vec<SuiteReport> = suites.iter().map(|s| run_suite(s, &options)).collect();
    let mut total = Tally::default();
    for r in &reports {
        total.merge(r.tally());
    }
    let text = match args.format {
        VerifyFormat::Table => render_table(&reports, &input_errors, total, verbose),
        VerifyFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json!({
                "schema": SCHEMA,
                "summary": {
                    "suites": reports.len(),
                    "suites_passed": reports.iter().filter(|r| r.tally().ok()).count(),
                    "cases": total,
                },
                "suites": reports,
                "errors": input_errors,
            }))?;
            s.push('\n');
            s
        }
    };
    emit(args.output.as_deref(), &text)?;
    if !input_errors.is_empty() {
        if args.format == VerifyFormat::Json {
            for e in &input_errors {
                eprintln!("error: {e}");
            }
        }
        return Ok(EXIT_ERROR);
    }
    Ok(if total.ok() { EXIT_OK } else { EXIT_FINDINGS })
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS ",
        Outcome::Fail => "FAIL ",
        Outcome::Skip => "SKIP ",
        Outcome::Error => "ERROR",
    }
}

fn millis(d: std::time::Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

fn render_case(out: &mut String, test: &str, c: &CaseReport, verbose: bool) {
    let interesting = matches!(c.outcome, Outcome::Fail | Outcome::Error);
    if !interesting && !verbose {
        return;
    }
    outln!(
        out,
        "    {} {test}/{} (line {}, {})",
        label(c.outcome),
        c.name,
        c.line,
        millis(c.duration)
    );
    if let Some(reason) = &c.reason {
        outln!(out, "          {reason}");
    }
    for f in &c.failures {
        outln!(out, "          {f}");
    }
    if c.outcome == Outcome::Fail || !c.violations.is_empty() {
        if c.violations.is_empty() {
            outln!(out, "          violations: none");
        } else {
            outln!(out, "          violations ({}):", c.violations.len());
            for v in &c.violations {
                outln!(out, "            - {v}");
            }
        }
    }
}

fn render_table(
    reports: &[SuiteReport],
    input_errors: &[String],
    total: Tally,
    verbose: bool,
) -> String {
    let mut out = String::new();
    for e in input_errors {
        outln!(out, "ERROR {e}");
    }
    for r in reports {
        let tally = r.tally();
        let outcome = if r.outcome == Outcome::Skip {
            Outcome::Skip
        } else if tally.error > 0 {
            Outcome::Error
        } else if tally.fail > 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        outln!(
            out,
            "{} {} ({} passed, {} failed, {} errors, {} skipped; {})",
            label(outcome),
            r.path,
            tally.pass,
            tally.fail,
            tally.error,
            tally.skip,
            millis(r.duration)
        );
        for t in &r.tests {
            let show_test = verbose || matches!(t.outcome, Outcome::Fail | Outcome::Error);
            if show_test {
                outln!(
                    out,
                    "  {} {} (line {}, {})",
                    label(t.outcome),
                    t.name,
                    t.line,
                    millis(t.duration)
                );
                if let Some(reason) = &t.reason {
                    outln!(out, "        {reason}");
                }
            }
            for c in &t.cases {
                render_case(&mut out, &t.name, c, verbose);
            }
        }
    }
    let passed = reports.iter().filter(|r| r.tally().ok()).count();
    outln!(
        out,
        "{} suite(s): {passed} passed, {} failed; cases: {} passed, {} failed, {} errors, {} skipped",
        reports.len(),
        reports.len() - passed,
        total.pass,
        total.fail,
        total.error,
        total.skip
    );
    out
}
