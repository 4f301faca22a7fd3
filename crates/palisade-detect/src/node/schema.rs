//! Rule field paths for node events: every [`NodeEvent`] field compiled once into a [`NodeField`]
//! and read in place by `impl Event for NodeEvent`, so judging an event never serialises it.

use super::{NodeEvent, NodeEventKind};
use crate::event::{Event, EventSchema};
use crate::value::Val;

/// The schema rules with `source: node` are compiled against.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeSchema;

/// A compiled node field path. Besides the serialised fields of [`NodeEvent`] there are a few
/// derived ones that rules need often and would otherwise spell with regexes: basenames
/// (`process.name`, `process.parent.name`, `file.name`) and the aggregation `origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeField {
    Id,
    TimeNanos,
    EventType,
    Node,
    Cluster,
    Host,
    /// The container id, or the node name for host processes (the default alert subject).
    Origin,
    ProcessPid,
    ProcessTid,
    ProcessPpid,
    ProcessUid,
    ProcessGid,
    ProcessEuid,
    ProcessComm,
    ProcessExe,
    /// Basename of `process.exe` (or `process.comm` when the exe is unknown).
    ProcessName,
    ProcessArgs,
    /// `process.args[N]`.
    ProcessArg(usize),
    ProcessCmdline,
    ProcessArgsTruncated,
    ProcessCwd,
    ProcessCapEffective,
    ProcessCapabilities,
    ProcessCgroupId,
    ProcessPidNs,
    ProcessMntNs,
    ProcessStdio,
    /// `process.stdio[N]` (0 stdin, 1 stdout, 2 stderr).
    ProcessStdioAt(usize),
    ProcessExeDeleted,
    ProcessExeMemfd,
    ProcessExeDrift,
    ProcessExeWrittenBy,
    ProcessExeWrittenMsAgo,
    ProcessExeUpperLayer,
    ParentPid,
    ParentComm,
    ParentExe,
    /// Basename of `process.parent.exe` (or the parent's comm).
    ParentName,
    ParentCmdline,
    ProcessAncestors,
    /// `process.ancestors[N]`.
    ProcessAncestor(usize),
    ContainerId,
    ContainerRuntime,
    ContainerName,
    ContainerImage,
    ContainerImageId,
    ContainerPodName,
    ContainerPodNamespace,
    ContainerPodUid,
    ContainerPrivileged,
    ContainerStartedNanos,
    FilePath,
    /// Basename of `file.path`.
    FileName,
    FileFlags,
    FileAccess,
    FileMode,
    FileWrittenRecently,
    NetFamily,
    NetProtocol,
    NetSrcIp,
    NetSrcPort,
    NetDstIp,
    NetDstPort,
    NetDirection,
    DnsQuery,
    DnsQtype,
    DnsServer,
    NamespaceSyscall,
    NamespaceTypes,
    NamespaceFlags,
    ModuleName,
    ModuleSyscall,
    MountSource,
    MountTarget,
    MountFstype,
    MountFlags,
    MemfdName,
    MemfdFlags,
    PtraceRequest,
    PtraceTargetPid,
    PtraceTargetComm,
}

/// Every plain field path and its accessor (indexed paths `process.args[N]`,
/// `process.stdio[N]`, `process.ancestors[N]` are parsed separately).
const FIELDS: &[(&str, NodeField)] = {
    use NodeField as F;
    &[
        ("id", F::Id),
        ("time_nanos", F::TimeNanos),
        ("event.type", F::EventType),
        ("node", F::Node),
        ("cluster", F::Cluster),
        ("host", F::Host),
        ("origin", F::Origin),
        ("process.pid", F::ProcessPid),
        ("process.tid", F::ProcessTid),
        ("process.ppid", F::ProcessPpid),
        ("process.uid", F::ProcessUid),
        ("process.gid", F::ProcessGid),
        ("process.euid", F::ProcessEuid),
        ("process.comm", F::ProcessComm),
        ("process.exe", F::ProcessExe),
        ("process.name", F::ProcessName),
        ("process.args", F::ProcessArgs),
        ("process.cmdline", F::ProcessCmdline),
        ("process.args_truncated", F::ProcessArgsTruncated),
        ("process.cwd", F::ProcessCwd),
        ("process.cap_effective", F::ProcessCapEffective),
        ("process.capabilities", F::ProcessCapabilities),
        ("process.cgroup_id", F::ProcessCgroupId),
        ("process.pid_ns", F::ProcessPidNs),
        ("process.mnt_ns", F::ProcessMntNs),
        ("process.stdio", F::ProcessStdio),
        ("process.exe_deleted", F::ProcessExeDeleted),
        ("process.exe_memfd", F::ProcessExeMemfd),
        ("process.exe_drift", F::ProcessExeDrift),
        ("process.exe_written_by", F::ProcessExeWrittenBy),
        ("process.exe_written_ms_ago", F::ProcessExeWrittenMsAgo),
        ("process.exe_upper_layer", F::ProcessExeUpperLayer),
        ("process.parent.pid", F::ParentPid),
        ("process.parent.comm", F::ParentComm),
        ("process.parent.exe", F::ParentExe),
        ("process.parent.name", F::ParentName),
        ("process.parent.cmdline", F::ParentCmdline),
        ("process.ancestors", F::ProcessAncestors),
        ("container.id", F::ContainerId),
        ("container.runtime", F::ContainerRuntime),
        ("container.name", F::ContainerName),
        ("container.image", F::ContainerImage),
        ("container.image_id", F::ContainerImageId),
        ("container.pod_name", F::ContainerPodName),
        ("container.pod_namespace", F::ContainerPodNamespace),
        ("container.pod_uid", F::ContainerPodUid),
        ("container.privileged", F::ContainerPrivileged),
        ("container.started_nanos", F::ContainerStartedNanos),
        ("file.path", F::FilePath),
        ("file.name", F::FileName),
        ("file.flags", F::FileFlags),
        ("file.access", F::FileAccess),
        ("file.mode", F::FileMode),
        ("file.written_recently", F::FileWrittenRecently),
        ("net.family", F::NetFamily),
        ("net.protocol", F::NetProtocol),
        ("net.src_ip", F::NetSrcIp),
        ("net.src_port", F::NetSrcPort),
        ("net.dst_ip", F::NetDstIp),
        ("net.dst_port", F::NetDstPort),
        ("net.direction", F::NetDirection),
        ("dns.query", F::DnsQuery),
        ("dns.qtype", F::DnsQtype),
        ("dns.server", F::DnsServer),
        ("namespace.syscall", F::NamespaceSyscall),
        ("namespace.types", F::NamespaceTypes),
        ("namespace.flags", F::NamespaceFlags),
        ("module.name", F::ModuleName),
        ("module.syscall", F::ModuleSyscall),
        ("mount.source", F::MountSource),
        ("mount.target", F::MountTarget),
        ("mount.fstype", F::MountFstype),
        ("mount.flags", F::MountFlags),
        ("memfd.name", F::MemfdName),
        ("memfd.flags", F::MemfdFlags),
        ("ptrace.request", F::PtraceRequest),
        ("ptrace.target_pid", F::PtraceTargetPid),
        ("ptrace.target_comm", F::PtraceTargetComm),
    ]
};

/// The field paths rules may name, for error messages and documentation.
pub fn field_paths() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|(p, _)| *p).chain([
        "process.args[N]",
        "process.stdio[N]",
        "process.ancestors[N]",
    ])
}

/// `root[N]` → N.
fn indexed(path: &str, root: &str) -> Option<usize> {
    path.strip_prefix(root)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .trim()
        .parse()
        .ok()
}

impl EventSchema for NodeSchema {
    type Field = NodeField;
    const SOURCE: &'static str = "node";
    /// `event.type` first; `process.name` second, taken from the conditions of rules that
    /// require it (most exec rules name the programs they judge), so an exec of an ordinary
    /// program only reaches the rules that read the command line.
    const INDEX_DIMENSIONS: &'static [&'static str] = &["event.type", "process.name"];
    const DERIVE_INDEX_FROM_CONDITIONS: bool = true;

    fn compile_field(path: &str) -> Result<NodeField, String> {
        if let Some((_, f)) = FIELDS.iter().find(|(p, _)| *p == path) {
            return Ok(*f);
        }
        if let Some(i) = indexed(path, "process.args") {
            return Ok(NodeField::ProcessArg(i));
        }
        if let Some(i) = indexed(path, "process.stdio") {
            return Ok(NodeField::ProcessStdioAt(i));
        }
        if let Some(i) = indexed(path, "process.ancestors") {
            return Ok(NodeField::ProcessAncestor(i));
        }
        Err(format!(
            "unknown node field {path:?}; known fields: {}",
            field_paths().collect::<Vec<_>>().join(", ")
        ))
    }

    fn default_subject_field() -> &'static str {
        "origin"
    }

    fn default_resource_field() -> &'static str {
        "process.exe"
    }
}

#[inline]
fn s(v: &str) -> Val<'_> {
    Val::Str(v)
}

#[inline]
fn opt_s(v: &Option<String>) -> Val<'_> {
    match v {
        Some(v) => Val::Str(v),
        None => Val::Missing,
    }
}

#[inline]
fn int<T: Into<i64>>(v: T) -> Val<'static> {
    Val::Int(v.into())
}

#[inline]
fn u64v(v: u64) -> Val<'static> {
    match i64::try_from(v) {
        Ok(i) => Val::Int(i),
        Err(_) => Val::Float(v as f64),
    }
}

#[inline]
fn list(items: &[String]) -> Val<'_> {
    Val::Strs(items)
}

#[inline]
fn at(items: &[String], i: usize) -> Val<'_> {
    match items.get(i) {
        Some(v) => Val::Str(v),
        None => Val::Missing,
    }
}

/// The last `/`-separated component (the whole string when there is none).
#[inline]
pub(crate) fn basename(path: &str) -> &str {
    // A plain backwards loop: paths are short, and rules read names often.
    match path.bytes().rposition(|b| b == b'/') {
        Some(p) => path.get(p + 1..).unwrap_or(""),
        None => path,
    }
}

/// Reads a field of an optional part; `Missing` when the event has no such part.
macro_rules! part {
    ($opt:expr, $p:ident => $val:expr) => {
        match &$opt {
            Some($p) => $val,
            None => Val::Missing,
        }
    };
}

impl Event for NodeEvent {
    type Schema = NodeSchema;

    fn get(&self, field: &NodeField) -> Val<'_> {
        use NodeField as F;
        let p = &self.process;
        match *field {
            F::Id => s(&self.id),
            F::TimeNanos => Val::Int(self.time_nanos),
            F::EventType => s(self.kind.as_str()),
            F::Node => s(&self.node),
            F::Cluster => opt_s(&self.cluster),
            F::Host => Val::Bool(self.host),
            F::Origin => match &self.container {
                Some(c) => s(&c.id),
                None => s(&self.node),
            },
            F::ProcessPid => int(p.pid),
            F::ProcessTid => int(p.tid),
            F::ProcessPpid => int(p.ppid),
            F::ProcessUid => int(p.uid),
            F::ProcessGid => int(p.gid),
            F::ProcessEuid => int(p.euid),
            F::ProcessComm => s(&p.comm),
            F::ProcessExe => s(&p.exe),
            F::ProcessName => s(self.process_name()),
            F::ProcessArgs => list(&p.args),
            F::ProcessArg(i) => at(&p.args, i),
            F::ProcessCmdline => s(&p.cmdline),
            F::ProcessArgsTruncated => Val::Bool(p.args_truncated),
            F::ProcessCwd => opt_s(&p.cwd),
            F::ProcessCapEffective => u64v(p.cap_effective),
            F::ProcessCapabilities => list(&p.capabilities),
            F::ProcessCgroupId => u64v(p.cgroup_id),
            F::ProcessPidNs => int(p.pid_ns),
            F::ProcessMntNs => int(p.mnt_ns),
            F::ProcessStdio => list(&p.stdio),
            F::ProcessStdioAt(i) => at(&p.stdio, i),
            F::ProcessExeDeleted => Val::Bool(p.exe_deleted),
            F::ProcessExeMemfd => Val::Bool(p.exe_memfd),
            F::ProcessExeDrift => Val::Bool(p.exe_drift),
            F::ProcessExeWrittenBy => opt_s(&p.exe_written_by),
            F::ProcessExeWrittenMsAgo => match p.exe_written_ms_ago {
                Some(ms) => u64v(ms),
                None => Val::Missing,
            },
            F::ProcessExeUpperLayer => Val::Bool(p.exe_upper_layer),
            F::ParentPid => int(p.parent.pid),
            F::ParentComm => s(&p.parent.comm),
            F::ParentExe => s(&p.parent.exe),
            F::ParentName => {
                if p.parent.exe.is_empty() {
                    s(&p.parent.comm)
                } else {
                    s(basename(&p.parent.exe))
                }
            }
            F::ParentCmdline => s(&p.parent.cmdline),
            F::ProcessAncestors => list(&p.ancestors),
            F::ProcessAncestor(i) => at(&p.ancestors, i),
            F::ContainerId => part!(self.container, c => s(&c.id)),
            F::ContainerRuntime => part!(self.container, c => s(&c.runtime)),
            F::ContainerName => part!(self.container, c => opt_s(&c.name)),
            F::ContainerImage => part!(self.container, c => opt_s(&c.image)),
            F::ContainerImageId => part!(self.container, c => opt_s(&c.image_id)),
            F::ContainerPodName => part!(self.container, c => opt_s(&c.pod_name)),
            F::ContainerPodNamespace => part!(self.container, c => opt_s(&c.pod_namespace)),
            F::ContainerPodUid => part!(self.container, c => opt_s(&c.pod_uid)),
            F::ContainerPrivileged => {
                part!(self.container, c => c.privileged.map_or(Val::Missing, Val::Bool))
            }
            F::ContainerStartedNanos => {
                part!(self.container, c => c.started_nanos.map_or(Val::Missing, Val::Int))
            }
            F::FilePath => part!(self.file, f => s(&f.path)),
            F::FileName => part!(self.file, f => s(basename(&f.path))),
            F::FileFlags => part!(self.file, f => int(f.flags)),
            F::FileAccess => part!(self.file, f => s(&f.access)),
            F::FileMode => part!(self.file, f => int(f.mode)),
            F::FileWrittenRecently => part!(self.file, f => Val::Bool(f.written_recently)),
            F::NetFamily => part!(self.net, n => s(&n.family)),
            F::NetProtocol => part!(self.net, n => s(&n.protocol)),
            F::NetSrcIp => part!(self.net, n => s(&n.src_ip)),
            F::NetSrcPort => part!(self.net, n => int(n.src_port)),
            F::NetDstIp => part!(self.net, n => s(&n.dst_ip)),
            F::NetDstPort => part!(self.net, n => int(n.dst_port)),
            F::NetDirection => part!(self.net, n => s(&n.direction)),
            F::DnsQuery => part!(self.dns, d => s(&d.query)),
            F::DnsQtype => part!(self.dns, d => s(&d.qtype)),
            F::DnsServer => part!(self.dns, d => s(&d.server)),
            F::NamespaceSyscall => part!(self.namespace, n => s(&n.syscall)),
            F::NamespaceTypes => part!(self.namespace, n => list(&n.types)),
            F::NamespaceFlags => part!(self.namespace, n => u64v(n.flags)),
            F::ModuleName => part!(self.module, m => s(&m.name)),
            F::ModuleSyscall => part!(self.module, m => s(&m.syscall)),
            F::MountSource => part!(self.mount, m => s(&m.source)),
            F::MountTarget => part!(self.mount, m => s(&m.target)),
            F::MountFstype => part!(self.mount, m => s(&m.fstype)),
            F::MountFlags => part!(self.mount, m => u64v(m.flags)),
            F::MemfdName => part!(self.memfd, m => s(&m.name)),
            F::MemfdFlags => part!(self.memfd, m => int(m.flags)),
            F::PtraceRequest => part!(self.ptrace, t => s(&t.request)),
            F::PtraceTargetPid => part!(self.ptrace, t => int(t.target_pid)),
            F::PtraceTargetComm => part!(self.ptrace, t => s(&t.target_comm)),
        }
    }

    #[inline]
    fn index_value(&self, dimension: usize) -> Option<&str> {
        match dimension {
            0 => Some(self.kind.as_str()),
            1 => Some(self.process_name()),
            _ => None,
        }
    }

    fn time_nanos(&self) -> i64 {
        self.time_nanos
    }

    fn event_id(&self) -> &str {
        &self.id
    }
}

impl NodeEvent {
    /// Basename of the executable, or the task name when the executable is unknown (the
    /// `process.name` field and the second index dimension).
    #[inline]
    pub fn process_name(&self) -> &str {
        if self.process.exe.is_empty() {
            &self.process.comm
        } else {
            basename(&self.process.exe)
        }
    }
}

impl NodeEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [NodeEventKind; 13] = [
        NodeEventKind::Exec,
        NodeEventKind::Exit,
        NodeEventKind::Connect,
        NodeEventKind::Accept,
        NodeEventKind::Dns,
        NodeEventKind::Open,
        NodeEventKind::Unlink,
        NodeEventKind::Ptrace,
        NodeEventKind::Namespace,
        NodeEventKind::Module,
        NodeEventKind::Mount,
        NodeEventKind::Memfd,
        NodeEventKind::Chmod,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{ContainerInfo, FileInfo, NetInfo};

    /// Every serialised field of a fully populated event compiles, and reading it through the
    /// compiled accessor gives the value serde writes: the accessors cannot drift from the model.
    #[test]
    fn every_serialised_field_compiles_and_reads_what_serde_writes() {
        let mut event: NodeEvent = serde_json::from_value(serde_json::json!({
            "id": "n1-ab-7", "time_nanos": 42, "event.type": "connect", "node": "n1",
            "cluster": "c1", "host": false,
            "process": {"pid": 10, "tid": 11, "ppid": 9, "uid": 1000, "gid": 1000, "euid": 0,
                "comm": "curl", "exe": "/usr/bin/curl", "args": ["curl", "-s", "x"],
                "cmdline": "curl -s x", "args_truncated": true, "cwd": "/tmp",
                "cap_effective": 2_199_023_255_551_u64, "capabilities": ["CAP_SYS_ADMIN"],
                "cgroup_id": 77, "pid_ns": 4_026_531_836_u32, "mnt_ns": 4_026_531_841_u32,
                "stdio": ["socket_inet", "pipe", "tty"], "exe_deleted": true,
                "exe_memfd": true, "exe_drift": true, "exe_written_by": "wget",
                "exe_written_ms_ago": 1500, "exe_upper_layer": true,
                "parent": {"pid": 9, "comm": "sh", "exe": "/bin/sh", "cmdline": "sh -c x"},
                "ancestors": ["containerd-shim", "systemd"]},
            "container": {"id": "abc", "runtime": "containerd", "name": "web", "image": "nginx",
                "image_id": "sha256:1", "pod_name": "web-1", "pod_namespace": "shop",
                "pod_uid": "u-1", "privileged": true, "started_nanos": 5},
            "file": {"path": "/etc/shadow", "flags": 2, "access": "write", "mode": 493,
                "written_recently": true},
            "net": {"family": "ipv4", "protocol": "tcp", "src_ip": "10.0.0.2", "src_port": 5000,
                "dst_ip": "169.254.169.254", "dst_port": 80, "direction": "outbound"},
            "dns": {"query": "pool.example", "qtype": "A", "server": "10.96.0.10"},
            "namespace": {"syscall": "unshare", "types": ["net"], "flags": 1_073_741_824_u64},
            "module": {"name": "evil", "syscall": "finit_module"},
            "mount": {"source": "/dev/sda1", "target": "/mnt", "fstype": "ext4", "flags": 1},
            "memfd": {"name": "x", "flags": 1},
            "ptrace": {"request": "attach", "target_pid": 12, "target_comm": "sshd"}
        }))
        .expect("fixture event");
        let doc = serde_json::to_value(&event).expect("serialise");
        let mut checked = 0;
        for (path, _) in FIELDS {
            let field = NodeSchema::compile_field(path).expect("compiles");
            let got = crate::rule::template::val_json(&event.get(&field));
            let mut node = Some(&doc);
            if *path == "event.type" {
                node = doc.get("event.type");
            } else {
                for key in path.split('.') {
                    node = node.and_then(|n| n.get(key));
                }
            }
            match node {
                Some(want) => {
                    assert_eq!(got.as_ref(), Some(want), "{path}");
                    checked += 1;
                }
                None => assert!(
                    matches!(
                        *path,
                        "origin" | "process.name" | "process.parent.name" | "file.name"
                    ),
                    "{path} is not a serialised field"
                ),
            }
        }
        // Every leaf of the serialised document is reachable by some path.
        fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        let p = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        leaves(&p, v, out);
                    }
                }
                _ => out.push(prefix.to_string()),
            }
        }
        let mut all = Vec::new();
        leaves("", &doc, &mut all);
        for leaf in &all {
            assert!(
                NodeSchema::compile_field(leaf).is_ok(),
                "serialised field {leaf} has no accessor"
            );
        }
        assert_eq!(checked, all.len());

        let name = NodeSchema::compile_field("process.name").expect("compiles");
        assert_eq!(event.get(&name), Val::Str("curl"));
        let arg = NodeSchema::compile_field("process.args[1]").expect("compiles");
        assert_eq!(event.get(&arg), Val::Str("-s"));
        let stdin = NodeSchema::compile_field("process.stdio[0]").expect("compiles");
        assert_eq!(event.get(&stdin), Val::Str("socket_inet"));
        let origin = NodeSchema::compile_field("origin").expect("compiles");
        assert_eq!(event.get(&origin), Val::Str("abc"));
        event.container = None;
        assert_eq!(event.get(&origin), Val::Str("n1"));
        assert_eq!(event.index_value(0), Some("connect"));
        assert_eq!(event.event_id(), "n1-ab-7");
    }

    #[test]
    fn unknown_paths_are_errors_that_list_the_known_fields() {
        for bad in [
            "process.exee",
            "net.port",
            "container",
            "process.args[x]",
            "",
        ] {
            let err = NodeSchema::compile_field(bad).expect_err(bad);
            assert!(err.contains("process.cmdline"), "{err}");
        }
    }

    /// Rules are indexed by the `process.name` their condition requires, and only then: a
    /// case-insensitive or negated test, or an `any` with a branch that does not pin the name,
    /// leaves the rule a candidate for every program (the condition still decides).
    #[test]
    fn process_name_index_is_derived_only_from_required_equalities() {
        use crate::engine::{Engine, EngineConfig};
        use crate::rule::{RuleSet, RuleSource};
        let text = r#"
lists:
  tools: [curl, wget]
macros:
  is_tool: {field: process.name, in: {list: tools}}
rules:
  - {id: A, title: a, severity: low, source: node, match: {event.type: exec}, condition: {all: [{macro: is_tool}, {field: process.cmdline, contains: x}]}}
  - {id: B, title: b, severity: low, source: node, match: {event.type: exec}, condition: {field: process.name, eq: CURL, icase: true}}
  - {id: C, title: c, severity: low, source: node, match: {event.type: exec}, condition: {any: [{field: process.name, eq: curl}, {field: process.comm, eq: curl}]}}
  - {id: D, title: d, severity: low, source: node, match: {event.type: exec}, condition: {any: [{field: process.name, eq: curl}, {field: process.name, in: [nc]}]}}
  - {id: E, title: e, severity: low, source: node, match: {event.type: exec}, condition: {field: process.name, not_in: [curl]}}
"#;
        let rules = std::sync::Arc::new(
            RuleSet::<NodeSchema>::load(&[RuleSource::new("t.yaml", text)]).expect("loads"),
        );
        let mut engine = Engine::new(rules, EngineConfig::default());
        let exec = |exe: &str| NodeEvent {
            process: crate::node::ProcessInfo {
                exe: exe.to_string(),
                comm: basename(exe).to_string(),
                cmdline: format!("{exe} x"),
                ..Default::default()
            },
            ..NodeEvent::default()
        };
        let mut out = Vec::new();
        for exe in ["/usr/bin/curl", "/bin/ls", "/bin/nc", "/usr/bin/Curl"] {
            engine.evaluate(&exec(exe), &mut out);
        }
        let stats = engine.stats();
        let evals: Vec<(String, u64)> = stats
            .rules
            .iter()
            .map(|r| (r.id.clone(), r.evaluations))
            .collect();
        assert_eq!(
            evals,
            [("A", 1), ("B", 4), ("C", 4), ("D", 2), ("E", 4)].map(|(id, n)| (id.to_string(), n))
        );
        let fired: Vec<&str> = out
            .iter()
            .map(|m| ["A", "B", "C", "D", "E"][m.rule])
            .collect();
        assert_eq!(fired, ["A", "B", "C", "D", "E", "D", "E", "B", "E"]);
    }

    #[test]
    fn absent_parts_read_as_missing() {
        let event = NodeEvent {
            container: Some(ContainerInfo::default()),
            file: Some(Box::new(FileInfo::default())),
            net: Some(Box::new(NetInfo::default())),
            ..NodeEvent::default()
        };
        for path in [
            "dns.query",
            "ptrace.target_pid",
            "container.pod_name",
            "process.cwd",
        ] {
            let f = NodeSchema::compile_field(path).expect("compiles");
            assert_eq!(event.get(&f), Val::Missing, "{path}");
        }
        let f = NodeSchema::compile_field("net.dst_port").expect("compiles");
        assert_eq!(event.get(&f), Val::Int(0));
        let f = NodeSchema::compile_field("process.name").expect("compiles");
        assert_eq!(event.get(&f), Val::Str(""));
    }
}
