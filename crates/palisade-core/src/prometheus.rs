//! The Prometheus text exposition format (0.0.4), written by hand: the audit webhook and the
//! node sensor export a few dozen samples each, which does not need a metrics registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `# HELP` and `# TYPE` lines of a family.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// An unlabelled counter with its header.
pub fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// An unlabelled gauge with its header.
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// One labelled sample line: `labels` are (name, value) pairs, values escaped here.
pub fn labelled(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    out.push('{');
    for (i, (key, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"{}\"", escape_label(v));
    }
    let _ = writeln!(out, "}} {value}");
}

/// Label values escape `\`, `"` and newlines.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Reads one sample from a rendered exposition: `name` with exactly `labels` (`""` for none).
/// For tests, benchmarks and summaries.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// The samples of a labelled family, keyed by the full label text.
pub fn family(text: &str, name: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{name}{{");
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((labels.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let mut out = String::new();
        counter(&mut out, "x_total", "Things.", 3);
        gauge(&mut out, "y", "Level.", 1.5);
        header(&mut out, "z_total", "counter", "By kind.");
        labelled(&mut out, "z_total", &[("kind", "a\"b"), ("rule", "r")], 2.0);
        assert!(out.contains("# TYPE x_total counter\nx_total 3\n"));
        assert_eq!(sample(&out, "y", ""), Some(1.5));
        assert_eq!(
            sample(&out, "z_total", "kind=\"a\\\"b\",rule=\"r\""),
            Some(2.0)
        );
        assert_eq!(family(&out, "z_total").len(), 1);
        assert_eq!(escape_label("a\\b\nc"), "a\\\\b\\nc");
    }
}
