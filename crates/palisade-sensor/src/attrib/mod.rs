//! Attribution and enrichment (part attrib): cgroup id → container → pod, process lineage, and
//! the conversion of kernel records into node events.
//!
//! - [`cgroup`]: container ids and pod uids from cgroup paths (containerd, CRI-O, Docker,
//!   podman layouts), and the [`Attributor`] that maps cgroup v2 ids to paths.
//! - [`pods`]: the [`PodCache`] of this node's pods, watched through the Kubernetes API.
//! - [`proctable`]: the bounded [`ProcessTable`] for parents and ancestors.
//! - [`decode`]: capability, namespace, ptrace, open-flag and DNS decoders.
//! - [`enrich`]: the [`Enricher`] that turns a `KernelEvent` into a `NodeEvent`.

pub mod cgroup;
pub mod decode;
pub mod enrich;
pub mod pods;
pub mod proctable;

pub use cgroup::{Attributor, CgroupCounters, Runtime, parse_container_id, parse_pod_uid};
pub use enrich::{AttribCounters, Enricher};
pub use pods::{KubeletSource, PodCache, PodCacheCounters, PodContainer, PodRef, PodWatcher};
pub use proctable::{ProcessCounters, ProcessTable};

use std::path::PathBuf;
use std::time::Duration;

/// Where the enricher reads the host, and how much it keeps.
#[derive(Debug, Clone)]
pub struct AttribConfig {
    /// The cgroup2 mount. Empty: detected from `/proc/self/mountinfo` when the enricher starts
    /// (`/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on hybrid ones).
    pub cgroup_root: PathBuf,
    /// The host's `/proc` (`/host/proc` when the sensor's pod mounts it there).
    pub proc_root: PathBuf,
    /// The node's name (`node` of every event, and the pod watch's `spec.nodeName`).
    pub node_name: String,
    pub cluster: Option<String>,
    /// Nanoseconds to add to a kernel boot-clock time to get Unix time. `None`: measured when
    /// the enricher starts (CLOCK_REALTIME − CLOCK_BOOTTIME).
    pub boot_to_unix_nanos: Option<i64>,
    /// When the sensor started, in boot-clock nanoseconds: host binaries written after this are
    /// drift. `None`: when the enricher starts.
    pub sensor_start_boot_ns: Option<u64>,
    /// Processes the table keeps.
    pub max_processes: usize,
    /// cgroups the attributor keeps.
    pub max_cgroups: usize,
    /// Ancestors reported above the parent.
    pub max_ancestors: usize,
    /// Shortest time between two walks of the cgroup tree on misses.
    pub cgroup_walk_interval: Duration,
    /// Read every process under `proc_root` when starting.
    pub seed_processes: bool,
}

impl Default for AttribConfig {
    fn default() -> Self {
        AttribConfig {
            cgroup_root: PathBuf::new(),
            proc_root: PathBuf::from("/proc"),
            node_name: String::new(),
            cluster: None,
            boot_to_unix_nanos: None,
            sensor_start_boot_ns: None,
            max_processes: 32_768,
            max_cgroups: 8_192,
            max_ancestors: 8,
            cgroup_walk_interval: Duration::from_millis(500),
            seed_processes: true,
        }
    }
}

/// Why attribution could not start.
#[derive(Debug, thiserror::Error)]
pub enum AttribError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no cgroup2 mount in /proc/self/mountinfo: mount cgroup2 (or pass --cgroup-root) so events can be attributed to containers"
    )]
    NoCgroup2,
    #[error("{0} is not a cgroup2 mount (no cgroup.procs in it)")]
    NotCgroup2(String),
    #[error("cannot start the pod watcher: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot connect to Kubernetes for pod attribution: {0}")]
    Kubernetes(#[source] Box<palisade_kube::ClusterError>),
    #[error("cannot read pods from the kubelet: {0}")]
    Kubelet(String),
}
