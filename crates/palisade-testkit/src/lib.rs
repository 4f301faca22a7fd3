//! Test support shared by the workspace's integration tests (a dev-dependency only): child
//! processes that are killed when the test ends, however it ends; free ports; the locally cached
//! kube-apiserver; and a real etcd + kube-apiserver pair on free ports for tests that need a
//! cluster. Failures panic with what went wrong: this is test code.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) on drop, so a failing test leaves nothing running.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
}

impl Proc {
    /// Starts `command`; panics naming the program when it cannot start.
    pub fn spawn(name: &'static str, command: &mut Command) -> Proc {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child }
    }

    /// Panics when the process has exited, naming it and what the test was waiting for.
    pub fn assert_running(&mut self, waiting_for: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}) before {waiting_for}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// `program` on `$PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The cached kube-apiserver binary (`scripts/infra/kube-apiserver.sh build`): under
/// `$PALISADE_INFRA/bin`, beside `$PALISADE_KUBECONFIG`, or in the default infra directory.
pub fn kube_apiserver() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(infra) = std::env::var("PALISADE_INFRA") {
        candidates.push(PathBuf::from(infra).join("bin/kube-apiserver"));
    }
    if let Ok(kubeconfig) = std::env::var("PALISADE_KUBECONFIG")
        && let Some(dir) = Path::new(&kubeconfig).parent()
    {
        candidates.push(dir.join("bin/kube-apiserver"));
    }
    candidates.push(PathBuf::from("/var/tmp/palisade-infra/bin/kube-apiserver"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Skips the test with a message, or fails it when `PALISADE_REQUIRE_KUBE=1` (as in CI, where
/// the cluster tools are installed and a skip would hide a broken setup).
pub fn skip_or_fail(why: &str) {
    if std::env::var("PALISADE_REQUIRE_KUBE").as_deref() == Ok("1") {
        panic!("PALISADE_REQUIRE_KUBE=1 but {why}");
    }
    eprintln!("SKIP: {why} (scripts/infra/kube-apiserver.sh build caches the binary)");
}

/// Polls `ready` every 100 ms until it holds; panics after `timeout`.
pub fn poll(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`poll`], failing at once when `watched` exits.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    watched: &mut Proc,
    mut ready: impl FnMut() -> bool,
) {
    poll(what, timeout, || {
        watched.assert_running(what);
        ready()
    });
}

/// This process's peak resident memory (`VmHWM`), for benchmarks that report it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The last `lines` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The programs a local cluster needs.
pub struct ClusterTools {
    pub apiserver: PathBuf,
    pub etcd: PathBuf,
    pub openssl: PathBuf,
}

impl ClusterTools {
    /// The tools, or `None` after [`skip_or_fail`] says which one is missing.
    pub fn find() -> Option<ClusterTools> {
        let Some(apiserver) = kube_apiserver() else {
            skip_or_fail("no kube-apiserver binary in $PALISADE_INFRA/bin");
            return None;
        };
        let Some(etcd) = on_path("etcd") else {
            skip_or_fail("etcd is not installed");
            return None;
        };
        let Some(openssl) = on_path("openssl") else {
            skip_or_fail("openssl is not installed");
            return None;
        };
        Some(ClusterTools {
            apiserver,
            etcd,
            openssl,
        })
    }
}

/// A real etcd and kube-apiserver on free ports, with an admin (`system:masters`) who
/// authenticates with a static token. Both are killed when this is dropped.
pub struct Cluster {
    pub etcd: Proc,
    pub apiserver: Proc,
    /// The API server's HTTPS port on 127.0.0.1 (a self-signed certificate).
    pub port: u16,
    /// The admin's user name and bearer token.
    pub user: String,
    pub token: String,
    /// A kubeconfig for the admin (TLS verification off: the certificate is self-signed).
    pub kubeconfig: PathBuf,
    /// The API server's log.
    pub log: PathBuf,
}

impl Cluster {
    /// Starts etcd (waiting until it listens), then kube-apiserver with `extra_args` added (an
    /// audit webhook, …); state and logs go under `dir`, etcd keys under `/palisade-{name}`.
    /// The API server is started, not yet ready: callers poll it with what they need.
    pub fn start(dir: &Path, tools: &ClusterTools, name: &str, extra_args: &[String]) -> Cluster {
        let (client_port, peer_port) = (free_port(), free_port());
        let etcd_log = create(&dir.join("etcd.log"));
        let mut etcd = Proc::spawn(
            "etcd",
            Command::new(&tools.etcd)
                .args(["--name", name, "--data-dir"])
                .arg(dir.join("etcd"))
                .arg(format!(
                    "--listen-client-urls=http://127.0.0.1:{client_port}"
                ))
                .arg(format!(
                    "--advertise-client-urls=http://127.0.0.1:{client_port}"
                ))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
                ))
                .arg(format!(
                    "--initial-cluster={name}=http://127.0.0.1:{peer_port}"
                ))
                .arg("--unsafe-no-fsync")
                .stdout(Stdio::null())
                .stderr(etcd_log),
        );
        wait_for("etcd to listen", Duration::from_secs(60), &mut etcd, || {
            std::net::TcpStream::connect(("127.0.0.1", client_port)).is_ok()
        });

        let kapi = dir.join("kapi");
        std::fs::create_dir_all(&kapi)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", kapi.display()));
        let key = kapi.join("sa.key");
        let status = Command::new(&tools.openssl)
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
        assert!(status.success(), "openssl genrsa failed: {status}");
        let (user, token) = (format!("{name}-admin"), format!("{name}-admin-token"));
        let tokens = kapi.join("tokens.csv");
        write(&tokens, &format!("{token},{user},1,\"system:masters\"\n"));

        let port = free_port();
        let log = dir.join("kube-apiserver.log");
        let apiserver = Proc::spawn(
            "kube-apiserver",
            Command::new(&tools.apiserver)
                .arg(format!("--etcd-servers=http://127.0.0.1:{client_port}"))
                .arg(format!("--etcd-prefix=/palisade-{name}"))
                .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
                .arg(format!("--secure-port={port}"))
                .arg("--insecure-port=0")
                .arg(format!("--cert-dir={}", kapi.display()))
                .arg(format!("--token-auth-file={}", tokens.display()))
                .args([
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    "--service-account-issuer=https://kubernetes.default.svc",
                ])
                .arg(format!("--service-account-key-file={}", key.display()))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    key.display()
                ))
                .args([
                    "--allow-privileged=true",
                    "--disable-admission-plugins=ServiceAccount",
                ])
                .args(extra_args)
                .stdout(Stdio::null())
                .stderr(create(&log)),
        );
        let kubeconfig = dir.join("kubeconfig");
        write(
            &kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: admin\ncurrent-context: t\n"
            ),
        );
        Cluster {
            etcd,
            apiserver,
            port,
            user,
            token,
            kubeconfig,
            log,
        }
    }
}

fn create(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_dies_with_its_guard() {
        let mut sleeper = Proc::spawn("sleep", Command::new("sleep").arg("30"));
        sleeper.assert_running("the check");
        let pid = sleeper.child.id();
        drop(sleeper);
        // Gone, or the pid already reused by another program.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_ne!(comm, "sleep\n");
    }

    #[test]
    #[should_panic(expected = "exited")]
    fn waiting_stops_when_the_watched_process_exits() {
        let mut quick = Proc::spawn("true", &mut Command::new("true"));
        wait_for("never", Duration::from_secs(10), &mut quick, || false);
    }

    #[test]
    fn peak_rss_is_read() {
        let peak = peak_rss_bytes().unwrap_or(0);
        assert!(peak > 1024 * 1024, "{peak}");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("palisade-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        std::fs::write(&log, "a\nb\nc\n").unwrap();
        assert_eq!(log_tail(&log, 2), "b\nc");
        assert_eq!(log_tail(&dir.join("missing"), 2), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
