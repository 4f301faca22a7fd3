//! Writing alerts: JSON lines with ECS-style field names (SIEMs map them without knowing our
//! rules) and CEF for syslog collectors.

use super::DetectAlert;
use palisade_core::Severity;
use std::io::Write;

/// How alerts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertFormat {
    /// One JSON object per line, ECS-style dotted keys.
    #[default]
    Json,
    /// One ArcSight Common Event Format line per alert.
    Cef,
}

/// ECS `event.severity` (0-100): informational 10, low 25, medium 50, high 75, critical 100,
/// unknown 0.
pub fn ecs_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Unknown => 0,
        Severity::Informational => 10,
        Severity::Low => 25,
        Severity::Medium => 50,
        Severity::High => 75,
        Severity::Critical => 100,
    }
}

/// CEF severity (0-10) within the spec's bands (0-3 low, 4-6 medium, 7-8 high, 9-10 very high):
/// informational 1, low 3, medium 5, high 8, critical 10, unknown 0.
pub fn cef_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Unknown => 0,
        Severity::Informational => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// Writes one alert as one line (newline-terminated).
pub fn write_alert(
    alert: &DetectAlert,
    format: AlertFormat,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        AlertFormat::Json => {
            let doc = json_document(alert);
            serde_json::to_writer(&mut *w, &doc)?;
            w.write_all(b"\n")
        }
        AlertFormat::Cef => {
            let mut line = cef_line(alert);
            line.push('\n');
            w.write_all(line.as_bytes())
        }
    }
}

fn json_document(a: &DetectAlert) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("@timestamp", json!(a.first_seen));
    put("event.kind", json!("alert"));
    put("event.module", json!("palisade"));
    put("event.dataset", json!(a.dataset));
    put("rule.id", json!(a.rule_id));
    put("rule.name", json!(a.alert.title));
    put("rule.description", json!(a.description));
    put("rule.remediation", json!(a.alert.remediation));
    put("event.severity", json!(ecs_severity(a.alert.severity)));
    put("palisade.severity", json!(a.alert.severity.as_str()));
    put("threat.framework", json!("MITRE ATT&CK"));
    put(
        "threat.tactic.id",
        json!(a.alert.tactics.iter().map(|t| &t.id).collect::<Vec<_>>()),
    );
    put(
        "threat.tactic.name",
        json!(a.alert.tactics.iter().map(|t| &t.name).collect::<Vec<_>>()),
    );
    put(
        "threat.technique.id",
        json!(a.alert.techniques.iter().map(|t| &t.id).collect::<Vec<_>>()),
    );
    put(
        "threat.technique.name",
        json!(
            a.alert
                .techniques
                .iter()
                .map(|t| &t.name)
                .collect::<Vec<_>>()
        ),
    );
    let c = &a.context;
    for (key, value) in [
        ("user.name", &c.user_name),
        ("source.ip", &c.source_ip),
        ("user_agent.original", &c.user_agent),
        ("orchestrator.cluster.name", &c.cluster),
        ("orchestrator.namespace", &c.namespace),
        ("orchestrator.resource.type", &c.resource_type),
        ("orchestrator.resource.name", &c.resource_name),
    ] {
        if let Some(v) = value {
            put(key, json!(v));
        }
    }
    // Node-sensor context (ECS names), present only for sources that have it.
    if c.pod_name.is_some() {
        put("orchestrator.resource.type", json!("pod"));
    }
    for (key, value) in [
        ("host.name", &c.node),
        ("container.id", &c.container_id),
        ("container.name", &c.container_name),
        ("container.image.name", &c.container_image),
        ("container.runtime", &c.container_runtime),
        ("orchestrator.resource.name", &c.pod_name),
        ("orchestrator.resource.id", &c.pod_uid),
        ("process.executable", &c.process_exe),
        ("process.command_line", &c.process_cmdline),
        ("process.parent.executable", &c.parent_exe),
    ] {
        if let Some(v) = value {
            put(key, json!(v));
        }
    }
    if let Some(pid) = &c.process_pid {
        match pid.parse::<u64>() {
            Ok(n) => put("process.pid", json!(n)),
            Err(_) => put("process.pid", json!(pid)),
        }
    }
    put("message", json!(a.message));
    put("event.count", json!(a.count));
    put("event.start", json!(a.first_seen));
    put("event.end", json!(a.last_seen));
    put("event.id", json!(a.event_ids));
    put("palisade.subject", json!(a.subject));
    put("palisade.resource", json!(a.resource));
    put("palisade.source", json!(a.source));
    if !a.tags.is_empty() {
        put("tags", json!(a.tags));
    }
    if a.update {
        put("palisade.update", json!(true));
    }
    put("palisade.evidence", a.alert.evidence.clone());
    Value::Object(m)
}

/// Escapes a CEF header field: `\` and `|`; line breaks (not allowed in a header) become spaces.
pub(crate) fn cef_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a CEF extension value: `\`, `=`, and line breaks as `\n` / `\r`.
pub(crate) fn cef_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn cef_line(a: &DetectAlert) -> String {
    let mut line = format!(
        "CEF:0|Palisade|Palisade|{}|{}|{}|{}|",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&a.rule_id),
        cef_header(&a.alert.title),
        cef_severity(a.alert.severity)
    );
    let c = &a.context;
    let millis = |nanos: i64| (nanos / 1_000_000).to_string();
    let tactics = a
        .alert
        .tactics
        .iter()
        .map(|t| format!("{} {}", t.id, t.name))
        .collect::<Vec<_>>()
        .join(", ");
    let techniques = a
        .alert
        .techniques
        .iter()
        .map(|t| format!("{} {}", t.id, t.name))
        .collect::<Vec<_>>()
        .join(", ");
    let fields: [(&str, Option<String>); 9] = [
        ("rt", Some(millis(a.last_seen_nanos))),
        ("suser", c.user_name.clone()),
        ("src", c.source_ip.clone()),
        ("requestClientApplication", c.user_agent.clone()),
        ("cnt", Some(a.count.to_string())),
        ("start", Some(millis(a.first_seen_nanos))),
        ("end", Some(millis(a.last_seen_nanos))),
        ("msg", Some(a.message.clone())),
        ("externalId", a.event_ids.first().cloned()),
    ];
    let custom: [(&str, &str, Option<String>); 5] = [
        ("cs1", "namespace", c.namespace.clone()),
        (
            "cs2",
            "resource",
            match (&c.resource_type, &c.resource_name) {
                (Some(t), Some(n)) => Some(format!("{t}/{n}")),
                (Some(t), None) => Some(t.clone()),
                (None, Some(n)) => Some(n.clone()),
                (None, None) => None,
            },
        ),
        (
            "cs3",
            "mitreTactics",
            Some(tactics).filter(|s| !s.is_empty()),
        ),
        (
            "cs4",
            "mitreTechniques",
            Some(techniques).filter(|s| !s.is_empty()),
        ),
        ("cs5", "cluster", c.cluster.clone()),
    ];
    let mut first = true;
    let mut push = |key: &str, value: &str| {
        if !first {
            line.push(' ');
        }
        first = false;
        line.push_str(key);
        line.push('=');
        line.push_str(&cef_value(value));
    };
    for (key, value) in &fields {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            push(key, v);
        }
    }
    for (key, label, value) in &custom {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            push(&format!("{key}Label"), label);
            push(key, v);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escaping_follows_the_spec() {
        assert_eq!(cef_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(cef_header("a=b\nc"), "a=b c");
        assert_eq!(cef_value(r"a=b\c|d"), r"a\=b\\c|d");
        assert_eq!(cef_value("line1\nline2\r"), r"line1\nline2\r");
    }

    #[test]
    fn severities_are_ordered() {
        let mut last = (0, 0);
        for s in Severity::ALL {
            let now = (ecs_severity(s), cef_severity(s));
            assert!(now.0 >= last.0 && now.1 >= last.1);
            assert!(now.0 <= 100 && now.1 <= 10);
            last = now;
        }
        assert_eq!(cef_severity(Severity::Critical), 10);
    }
}
