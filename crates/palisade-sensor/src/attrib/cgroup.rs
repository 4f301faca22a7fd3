//! cgroup v2 ids → cgroup paths → containers.
//!
//! The kernel stamps every record with the id of the task's cgroup v2 directory, which is that
//! directory's inode number in the cgroup2 mount. Container runtimes name the directories they
//! create after the container id, so the path tells the container (and, under `kubepods`, the
//! pod uid) without asking anyone.
//!
//! Layouts read (the deepest matching path component wins, so a container nested in a node
//! container — kind, or Docker-in-Docker — attributes to the inner one):
//! - containerd, systemd driver: `…/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`
//! - containerd, cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>` (also `/k8s.io/<id>`)
//! - CRI-O: `…/crio-<id>.scope` (cgroupfs: `…/crio-<id>`); `crio-conmon-<id>` is the monitor
//!   process, not the container
//! - Docker: `…/docker-<id>.scope` (systemd), `/docker/<id>` (cgroupfs)
//! - podman: `…/libpod-<id>.scope`, `/libpod_parent/libpod-<id>`; `libpod-conmon-` is not a
//!   container

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The container runtime a cgroup path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
    /// A 64-hex container id under no parent we recognise.
    Unknown,
}

impl Runtime {
    /// The string used in `container.runtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

/// Whether `s` is a full container id: 64 hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container named by one path component, given the components above it.
fn component_container(component: &str, ancestors: &[&str]) -> Option<(Runtime, String)> {
    let stem = component.strip_suffix(".scope").unwrap_or(component);
    let prefixed = [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ];
    for (prefix, runtime) in prefixed {
        if let Some(id) = stem.strip_prefix(prefix) {
            // `crio-conmon-<id>` and `libpod-conmon-<id>` fail the id test: not containers.
            return is_container_id(id).then(|| (runtime, id.to_ascii_lowercase()));
        }
    }
    if component.ends_with(".scope") || !is_container_id(component) {
        return None;
    }
    // A bare id (cgroupfs drivers): the parent directories tell the runtime.
    let runtime = if ancestors.contains(&"docker") {
        Runtime::Docker
    } else if ancestors
        .iter()
        .any(|a| *a == "kubepods" || a.starts_with("kubepods") || *a == "k8s.io")
    {
        Runtime::Containerd
    } else {
        Runtime::Unknown
    };
    Some((runtime, component.to_ascii_lowercase()))
}

/// The container id a cgroup path names, and its runtime: the deepest component that is one.
pub fn parse_container_id(cgroup_path: &str) -> Option<(Runtime, String)> {
    parse_cgroup_path(cgroup_path).container
}

/// The pod uid a cgroup path names (`kubepods-…-pod<uid with _>.slice` or `pod<uid>`), with
/// dashes: the nearest pod directory above the container, or the deepest one when there is no
/// container.
pub fn parse_pod_uid(cgroup_path: &str) -> Option<String> {
    parse_cgroup_path(cgroup_path).pod_uid
}

/// What a cgroup path says about the workload in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupAttribution {
    pub container: Option<(Runtime, String)>,
    pub pod_uid: Option<String>,
}

/// Reads container and pod uid from a cgroup path in one pass.
pub fn parse_cgroup_path(cgroup_path: &str) -> CgroupAttribution {
    let components: Vec<&str> = cgroup_path.split('/').filter(|c| !c.is_empty()).collect();
    let mut container = None;
    let mut container_at = components.len();
    for index in (0..components.len()).rev() {
        if let Some(found) = component_container(components[index], &components[..index]) {
            container = Some(found);
            container_at = index;
            break;
        }
    }
    let pod_uid = components[..container_at]
        .iter()
        .rev()
        .find_map(|c| component_pod_uid(c));
    CgroupAttribution { container, pod_uid }
}

fn component_pod_uid(component: &str) -> Option<String> {
    let candidate = if let Some(slice) = component.strip_suffix(".slice") {
        // kubepods-pod<uid>.slice, kubepods-besteffort-pod<uid>.slice
        if !slice.starts_with("kubepods") {
            return None;
        }
        let (_, uid) = slice.rsplit_once("-pod")?;
        uid.replace('_', "-")
    } else {
        component.strip_prefix("pod")?.to_string()
    };
    is_uuid(&candidate).then(|| candidate.to_ascii_lowercase())
}

/// 8-4-4-4-12 hex digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The first cgroup2 mount point in a `/proc/<pid>/mountinfo` text.
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split(' ').next()?;
        if fstype != "cgroup2" {
            return None;
        }
        let mount_point = left.split(' ').nth(4)?;
        Some(PathBuf::from(unescape_mountinfo(mount_point)))
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One cgroup the attributor knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    /// Path relative to the cgroup2 mount, starting with `/` (`/` is the root cgroup).
    pub path: String,
    pub attribution: CgroupAttribution,
}

/// Counters of the cgroup cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupCounters {
    pub hits: u64,
    pub misses: u64,
    /// Misses resolved through `/proc/<pid>/cgroup` without walking the tree.
    pub resolved_via_proc: u64,
    /// Full walks of the cgroup2 tree.
    pub walks: u64,
    /// Ids neither the process nor a walk could place (cgroup already removed).
    pub unknown: u64,
    pub evictions: u64,
    /// Directories a walk could not read.
    pub walk_errors: u64,
}

struct Slot {
    entry: CgroupEntry,
    last_used: u64,
}

/// cgroup id → [`CgroupEntry`]: cached, bounded, refreshed on a miss (first from the process's
/// own `/proc/<pid>/cgroup`, then by walking the cgroup2 tree at most once per
/// `min_walk_interval`), with a short negative cache so a storm from a vanished cgroup does not
/// walk the tree over and over.
pub struct Attributor {
    root: PathBuf,
    proc_root: PathBuf,
    capacity: usize,
    min_walk_interval: Duration,
    entries: HashMap<u64, Slot>,
    negative: HashMap<u64, Instant>,
    last_walk: Option<Instant>,
    tick: u64,
    counters: CgroupCounters,
}

impl Attributor {
    /// An attributor over the cgroup2 mount at `root`, reading processes under `proc_root`.
    pub fn new(
        root: PathBuf,
        proc_root: PathBuf,
        capacity: usize,
        min_walk_interval: Duration,
    ) -> Attributor {
        Attributor {
            root,
            proc_root,
            capacity: capacity.max(16),
            min_walk_interval,
            entries: HashMap::new(),
            negative: HashMap::new(),
            last_walk: None,
            tick: 0,
            counters: CgroupCounters::default(),
        }
    }

    /// The cgroup2 mount this attributor reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cgroup with id `cgroup_id`, `pid` being a process that was in it (used to resolve a
    /// miss cheaply). `None` when the cgroup is gone and was never seen.
    pub fn resolve(&mut self, cgroup_id: u64, pid: u32) -> Option<CgroupEntry> {
        self.tick += 1;
        if let Some(slot) = self.entries.get_mut(&cgroup_id) {
            slot.last_used = self.tick;
            self.counters.hits += 1;
            return Some(slot.entry.clone());
        }
        self.counters.misses += 1;
        if let Some(entry) = self.lookup_proc(cgroup_id, pid) {
            self.counters.resolved_via_proc += 1;
            self.insert(cgroup_id, entry.clone());
            return Some(entry);
        }
        if let Some(since) = self.negative.get(&cgroup_id)
            && since.elapsed() < self.min_walk_interval.max(Duration::from_secs(2))
        {
            self.counters.unknown += 1;
            return None;
        }
        let walk_due = self
            .last_walk
            .is_none_or(|t| t.elapsed() >= self.min_walk_interval);
        if walk_due {
            self.walk();
            if let Some(slot) = self.entries.get_mut(&cgroup_id) {
                slot.last_used = self.tick;
                return Some(slot.entry.clone());
            }
        }
        self.counters.unknown += 1;
        if self.negative.len() >= self.capacity {
            self.negative.clear();
        }
        self.negative.insert(cgroup_id, Instant::now());
        None
    }

    /// Counters so far.
    pub fn counters(&self) -> CgroupCounters {
        self.counters
    }

    /// Cached cgroups.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads `/proc/<pid>/cgroup`'s v2 line and checks that the directory's inode is the id.
    fn lookup_proc(&self, cgroup_id: u64, pid: u32) -> Option<CgroupEntry> {
        if pid == 0 {
            return None;
        }
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim_end();
        let dir = self.root.join(path.trim_start_matches('/'));
        let meta = std::fs::metadata(&dir).ok()?;
        (meta.ino() == cgroup_id).then(|| entry_for(path))
    }

    /// Walks the whole cgroup2 tree, caching every directory.
    fn walk(&mut self) {
        self.counters.walks += 1;
        self.last_walk = Some(Instant::now());
        let mut found = Vec::new();
        let mut stack = vec![(self.root.clone(), String::from("/"))];
        while let Some((dir, rel)) = stack.pop() {
            let meta = match std::fs::metadata(&dir) {
                Ok(meta) => meta,
                Err(_) => {
                    self.counters.walk_errors += 1;
                    continue;
                }
            };
            found.push((meta.ino(), entry_for(&rel)));
            let Ok(children) = std::fs::read_dir(&dir) else {
                self.counters.walk_errors += 1;
                continue;
            };
            for child in children.flatten() {
                if child.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = child.file_name().to_string_lossy().into_owned();
                    let child_rel = if rel == "/" {
                        format!("/{name}")
                    } else {
                        format!("{rel}/{name}")
                    };
                    stack.push((child.path(), child_rel));
                }
            }
        }
        for (id, entry) in found {
            self.negative.remove(&id);
            match self.entries.get_mut(&id) {
                Some(slot) => slot.entry = entry,
                None => self.insert(id, entry),
            }
        }
    }

    fn insert(&mut self, id: u64, entry: CgroupEntry) {
        if self.entries.len() >= self.capacity {
            // Evict the least recently used eighth in one pass, so the scan is amortised.
            let mut ages: Vec<(u64, u64)> = self
                .entries
                .iter()
                .map(|(k, s)| (s.last_used, *k))
                .collect();
            ages.sort_unstable();
            let evict = (self.capacity / 8).max(1);
            for (_, key) in ages.into_iter().take(evict) {
                self.entries.remove(&key);
                self.counters.evictions += 1;
            }
        }
        self.entries.insert(
            id,
            Slot {
                entry,
                last_used: self.tick,
            },
        );
    }
}

fn entry_for(path: &str) -> CgroupEntry {
    let path = if path.is_empty() { "/" } else { path };
    CgroupEntry {
        path: path.to_string(),
        attribution: parse_cgroup_path(path),
    }
}

/// The cgroup2 mount of this process's mount namespace (`/proc/self/mountinfo`).
pub fn detect_cgroup2_mount() -> Result<PathBuf, super::AttribError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| {
        super::AttribError::Read {
            path: "/proc/self/mountinfo".into(),
            source,
        }
    })?;
    find_cgroup2_mount(&text).ok_or(super::AttribError::NoCgroup2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";
    const UID: &str = "8d3f1c2a-5b6e-4f70-9a1b-2c3d4e5f6a7b";

    #[test]
    fn containerd_systemd_and_cgroupfs() {
        let uid_ = UID.replace('-', "_");
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
        );
        let got = parse_cgroup_path(&systemd);
        assert_eq!(got.container, Some((Runtime::Containerd, ID.to_string())));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        let guaranteed =
            format!("/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope");
        assert_eq!(parse_pod_uid(&guaranteed).as_deref(), Some(UID));
        let cgroupfs = format!("/kubepods/besteffort/pod{UID}/{ID}");
        let got = parse_cgroup_path(&cgroupfs);
        assert_eq!(got.container, Some((Runtime::Containerd, ID.to_string())));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(
            parse_container_id(&format!("/k8s.io/{ID}")),
            Some((Runtime::Containerd, ID.to_string()))
        );
    }

    #[test]
    fn crio_docker_podman() {
        let uid_ = UID.replace('-', "_");
        let crio = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-{ID}.scope"
        );
        let got = parse_cgroup_path(&crio);
        assert_eq!(got.container, Some((Runtime::CriO, ID.to_string())));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        let conmon = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/crio-conmon-{ID}.scope"
        );
        let got = parse_cgroup_path(&conmon);
        assert_eq!(got.container, None, "conmon is not the container");
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(
            parse_container_id(&format!("/system.slice/docker-{ID}.scope")),
            Some((Runtime::Docker, ID.to_string()))
        );
        assert_eq!(
            parse_container_id(&format!("/docker/{ID}")),
            Some((Runtime::Docker, ID.to_string()))
        );
        assert_eq!(
            parse_container_id(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some((Runtime::Podman, ID.to_string()))
        );
        assert_eq!(
            parse_container_id(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            parse_container_id(&format!("/libpod_parent/libpod-{ID}")),
            Some((Runtime::Podman, ID.to_string()))
        );
        assert_eq!(
            parse_container_id(&format!("/somewhere/{}", ID.to_uppercase())),
            Some((Runtime::Unknown, ID.to_string()))
        );
    }

    #[test]
    fn nested_container_wins_and_host_paths_are_not_containers() {
        let outer = "a".repeat(64);
        let nested = format!(
            "/system.slice/docker-{outer}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(
            parse_container_id(&nested),
            Some((Runtime::Containerd, ID.to_string()))
        );
        for host in [
            "/",
            "",
            "/system.slice/sshd.service",
            "/user.slice/user-0.slice/session-1.scope",
            "/kubepods.slice/kubepods-burstable.slice",
            "/docker",
            &format!("/docker/{}", &ID[..63]),
            &format!("/system.slice/docker-{ID}x.scope"),
        ] {
            assert_eq!(parse_container_id(host), None, "{host}");
        }
        assert_eq!(parse_pod_uid("/kubepods/podnot-a-uid/x"), None);
        assert_eq!(parse_pod_uid("/system.slice/foo-pod.slice"), None);
    }

    #[test]
    fn mountinfo_cgroup2() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find_cgroup2_mount(text),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let escaped = "41 31 0:38 / /mnt/my\\040cgroup rw shared:1 - cgroup2 none rw\n";
        assert_eq!(
            find_cgroup2_mount(escaped),
            Some(PathBuf::from("/mnt/my cgroup"))
        );
        assert_eq!(find_cgroup2_mount("garbage\n1 2 3\n"), None);
    }
}
