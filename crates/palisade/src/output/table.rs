//! The human report: one table grouped by package, most severe first within each package, and a
//! summary line. Colour only when asked (stdout is a terminal and `NO_COLOR` is unset).

use super::ScanReport;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use palisade_core::Severity;
use std::io::IsTerminal;

/// Whether to colour output written to stdout.
pub fn color_wanted() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

fn severity_cell(s: Severity, color: bool) -> Cell {
    let cell = Cell::new(s.as_str().to_uppercase());
    if !color {
        return cell;
    }
    match s {
        Severity::Critical => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        Severity::High => cell.fg(Color::Red),
        Severity::Medium => cell.fg(Color::Yellow),
        Severity::Low => cell.fg(Color::Blue),
        Severity::Informational | Severity::Unknown => cell.fg(Color::Grey),
    }
}

const TITLE_WIDTH: usize = 60;

fn title(s: Option<&str>) -> String {
    let s = s.unwrap_or("").trim();
    let first = s.lines().next().unwrap_or("");
    if first.chars().count() > TITLE_WIDTH {
        let cut: String = first.chars().take(TITLE_WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        first.to_string()
    }
}

/// Renders the report as text.
pub fn render(r: &ScanReport, color: bool) -> String {
    let mut out = String::new();
    let t = &r.sbom.target;
    out.push_str(&format!("{} ({})", t.name, t.kind));
    if let Some(d) = &r.sbom.distro {
        out.push_str(&format!(
            " — {} {}",
            d.id,
            d.version_id
                .as_deref()
                .or(d.codename.as_deref())
                .unwrap_or("")
        ));
    }
    out.push('\n');
    if r.matches.is_empty() {
        out.push_str(&format!(
            "No vulnerabilities found in {} packages.\n",
            r.sbom.packages.len()
        ));
    } else {
        let mut table = Table::new();
        table.load_style(presets::UTF8_FULL_CONDENSED);
        table.set_content_arrangement(ContentArrangement::Dynamic);
        if color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table.set_header(vec![
            "Package",
            "Installed",
            "Fixed",
            "Vulnerability",
            "Severity",
            "Title",
        ]);
        // Group by package identity (name, version, path), in the order matches come (input
        // package order, most severe first within a package).
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, m) in r.matches.iter().enumerate() {
            let key = format!(
                "{}\u{0}{}\u{0}{}",
                m.package.name, m.package.version, m.package.location.path
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        for (_, idx) in &groups {
            for (n, &i) in idx.iter().enumerate() {
                let m = &r.matches[i];
                let (pkg, installed) = if n == 0 {
                    (m.package.name.clone(), m.installed_version.clone())
                } else {
                    (String::new(), String::new())
                };
                table.add_row(vec![
                    Cell::new(pkg),
                    Cell::new(installed),
                    Cell::new(
                        m.fixed_version
                            .clone()
                            .unwrap_or_else(|| "no fix yet".into()),
                    ),
                    Cell::new(&m.advisory.id),
                    severity_cell(m.severity, color),
                    Cell::new(title(m.advisory.summary.as_deref())),
                ]);
            }
        }
        out.push_str(&table.to_string());
        out.push('\n');
        let counts = r.by_severity();
        let parts: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .filter(|s| counts.get(s).copied().unwrap_or(0) > 0)
            .map(|s| format!("{}: {}", s.as_str(), counts[s]))
            .collect();
        out.push_str(&format!(
            "Total: {} vulnerabilities in {} of {} packages ({})\n",
            r.matches.len(),
            groups.len(),
            r.sbom.packages.len(),
            parts.join(", ")
        ));
    }
    if !r.ignored.is_empty() {
        out.push_str(&format!(
            "{} vulnerabilities ignored by the ignore file.\n",
            r.ignored.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testdata::report;

    #[test]
    fn grouped_plain_table() {
        let mut r = report();
        let mut second = r.matches[0].clone();
        second.advisory.id = "CVE-2020-8203".into();
        second.severity = Severity::High;
        r.matches.insert(1, second);
        let s = render(&r, false);
        assert!(!s.contains('\u{1b}'), "no escape codes without colour");
        assert!(s.contains("CVE-2019-10744"));
        assert!(s.contains("CRITICAL"));
        assert!(s.contains("no fix yet"));
        // lodash named once for its two vulnerabilities.
        let lodash_rows = s
            .lines()
            .filter(|l| l.trim_start_matches('│').trim_start().starts_with("lodash"))
            .count();
        assert_eq!(lodash_rows, 1, "{s}");
        assert!(
            s.contains(
                "Total: 3 vulnerabilities in 2 of 2 packages (critical: 1, high: 1, low: 1)"
            ),
            "{s}"
        );
        let colored = render(&r, true);
        assert!(colored.contains('\u{1b}'));
        let mut empty = report();
        empty.matches.clear();
        assert!(render(&empty, false).contains("No vulnerabilities found in 2 packages."));
    }
}
