//! Workload checks: the Kubernetes data-plane recommendations of Defender for Containers, every
//! control of the Pod Security Standards baseline and restricted profiles (and the CIS Kubernetes
//! Benchmark 5.2.x items they match), and a few hygiene checks, on the pod template of every
//! workload kind, including init and ephemeral containers.
//!
//! Controller-owned Pods are skipped (their owner is checked), and so are workloads in excluded
//! namespaces. Checks read fields in place: nothing is allocated for a field that passes.

use crate::check::{Category, CheckInfo, Evidence, PostureFinding};
use crate::config::{IdRule, IdRuleKind, Parameters, PostureConfig};
use crate::pod::{Container, ContainerKind, PodTemplate};
use crate::quantity::quantity_of;
use palisade_kube::{Inventory, KubeObject};
use serde_json::{Map, Value};
use std::collections::HashMap;

const WORKLOAD: Category = Category::Workload;

macro_rules! check {
    ($($t:tt)*) => { crate::check::declare_check!(WORKLOAD; $($t)*); };
}

check!(
    HOST_NAMESPACES,
    "pod.host-namespaces",
    "Pod shares the host's process or IPC namespace",
    Medium,
    "Remove hostPID and hostIPC from the pod spec (or set them to false); use kubectl debug or a node agent for host-level inspection.",
    [
        "Defender: Containers sharing sensitive host namespaces should be avoided",
        "PSS baseline: Host Namespaces",
        "CIS 5.2.3",
        "CIS 5.2.4"
    ],
    []
);
check!(
    HOST_NETWORK,
    "pod.host-network",
    "Pod uses the host's network namespace",
    Medium,
    "Set hostNetwork to false and expose the workload through a Service; keep host networking for node-level network agents in an excluded namespace.",
    [
        "Defender: Usage of host networking and ports should be restricted",
        "PSS baseline: Host Namespaces",
        "CIS 5.2.5"
    ],
    []
);
check!(
    HOST_PORTS,
    "container.host-ports",
    "Container binds a host port outside the allowed range",
    Medium,
    "Remove hostPort from the container ports and publish the port through a Service, or widen parameters.hostPortRange if the port is intended.",
    [
        "Defender: Usage of host networking and ports should be restricted",
        "PSS baseline: Host Ports",
        "CIS 5.2.13"
    ],
    ["hostPortRange"]
);
check!(
    HOST_PATH,
    "pod.host-path",
    "Pod mounts a host path that is not allowed",
    Medium,
    "Replace hostPath volumes with emptyDir, ConfigMap, Secret or PersistentVolumeClaim volumes; if node access is required, list the prefix in parameters.allowedHostPaths and mount it read-only.",
    [
        "Defender: Usage of pod HostPath volume mounts should be restricted to a known list to restrict node access from compromised containers",
        "PSS baseline: HostPath Volumes",
        "CIS 5.2.12"
    ],
    ["allowedHostPaths"]
);
check!(
    RUNTIME_SOCKET,
    "pod.container-runtime-socket",
    "Pod mounts the container runtime socket",
    High,
    "Do not mount the Docker, containerd or CRI-O socket (or the directory holding it): whoever reaches it controls every container on the node. Build images with a rootless builder instead.",
    ["PSS baseline: HostPath Volumes", "CIS 5.2.12"],
    []
);
check!(
    PRIVILEGED,
    "container.privileged",
    "Privileged container",
    Medium,
    "Set securityContext.privileged to false and grant only the specific capabilities the container needs.",
    [
        "Defender: Privileged containers should be avoided",
        "PSS baseline: Privileged Containers",
        "CIS 5.2.2"
    ],
    []
);
check!(
    PRIVILEGE_ESCALATION,
    "container.privilege-escalation",
    "Container may gain more privileges than its parent process",
    Medium,
    "Set securityContext.allowPrivilegeEscalation to false (it defaults to true), and do not run the container privileged or with CAP_SYS_ADMIN.",
    [
        "Defender: Container with privilege escalation should be avoided",
        "PSS restricted: Privilege Escalation",
        "CIS 5.2.6"
    ],
    []
);
check!(
    READ_ONLY_ROOT,
    "container.read-only-root-filesystem",
    "Container root filesystem is writable",
    Medium,
    "Set securityContext.readOnlyRootFilesystem to true and mount emptyDir volumes where the application needs to write.",
    ["Defender: Immutable (read-only) root filesystem should be enforced for containers"],
    []
);
check!(
    AUTOMOUNT_TOKEN,
    "pod.automount-service-account-token",
    "Service account token is mounted automatically",
    High,
    "Set automountServiceAccountToken: false on the pod (or on its ServiceAccount) unless the workload calls the Kubernetes API; if it does, mount a projected token explicitly.",
    [
        "Defender: Kubernetes clusters should disable automounting API credentials",
        "CIS 5.1.6"
    ],
    []
);
check!(
    DEFAULT_NAMESPACE,
    "pod.default-namespace",
    "Workload runs in the default namespace",
    Low,
    "Create a namespace per application or team and move the workload there, so RBAC, network policies and quotas can be scoped to it.",
    [
        "Defender: Kubernetes clusters should not use the default namespace",
        "CIS 5.7.4"
    ],
    []
);
check!(
    CAP_SYS_ADMIN,
    "container.cap-sys-admin",
    "Container is granted CAP_SYS_ADMIN",
    High,
    "Remove SYS_ADMIN (and ALL) from securityContext.capabilities.add; CAP_SYS_ADMIN is close to full root on the node.",
    ["Defender: Kubernetes clusters should not grant CAPSYSADMIN security capabilities"],
    []
);
check!(
    CAPABILITIES_ALLOWED,
    "container.capabilities-not-allowed",
    "Container adds a capability that is not allowed",
    Medium,
    "Remove the capability from securityContext.capabilities.add, or add it to parameters.allowedCapabilities if the workload really needs it.",
    [
        "Defender: Least privileged Linux capabilities should be enforced for containers",
        "PSS baseline: Capabilities",
        "CIS 5.2.9"
    ],
    ["allowedCapabilities"]
);
check!(
    CAPABILITIES_DROP,
    "container.capabilities-drop",
    "Container does not drop the required capabilities",
    Medium,
    "Add ALL to securityContext.capabilities.drop and add back only the capabilities the process needs (usually none, sometimes NET_BIND_SERVICE).",
    [
        "Defender: Least privileged Linux capabilities should be enforced for containers",
        "PSS restricted: Capabilities",
        "CIS 5.2.8",
        "CIS 5.2.10"
    ],
    ["requiredDropCapabilities"]
);
check!(
    CAPABILITIES_RESTRICTED,
    "container.capabilities-restricted-add",
    "Container adds a capability other than NET_BIND_SERVICE",
    Medium,
    "Under the restricted profile only NET_BIND_SERVICE may be added; remove the other entries of securityContext.capabilities.add.",
    ["PSS restricted: Capabilities", "CIS 5.2.9"],
    []
);
check!(
    APPARMOR_UNCONFINED,
    "container.apparmor-unconfined",
    "Container runs without AppArmor confinement",
    Medium,
    "Remove the unconfined AppArmor profile; leave it unset or use RuntimeDefault or a Localhost profile.",
    ["PSS baseline: AppArmor"],
    []
);
check!(
    APPARMOR_PROFILE,
    "container.apparmor-profile",
    "Container does not use an allowed AppArmor profile",
    High,
    "Set securityContext.appArmorProfile (type RuntimeDefault or Localhost) on the pod or container, or the container.apparmor.security.beta.kubernetes.io annotation on older clusters, to a profile listed in parameters.allowedAppArmorProfiles.",
    ["Defender: Containers should only use allowed AppArmor profiles"],
    ["allowedAppArmorProfiles"]
);
check!(
    SELINUX,
    "pod.selinux-options",
    "SELinux options that may break isolation",
    Medium,
    "Remove seLinuxOptions.user and seLinuxOptions.role, and use one of the container SELinux types (container_t, container_init_t, container_kvm_t, container_engine_t) or none.",
    ["PSS baseline: SELinux"],
    []
);
check!(
    PROC_MOUNT,
    "container.proc-mount",
    "Container unmasks /proc",
    Medium,
    "Remove securityContext.procMount or set it to Default, so the kernel paths under /proc stay masked.",
    ["PSS baseline: /proc Mount Type"],
    []
);
check!(
    SECCOMP_UNCONFINED,
    "container.seccomp-unconfined",
    "Container runs without seccomp filtering",
    Medium,
    "Set seccompProfile.type to RuntimeDefault (or Localhost) instead of Unconfined, at pod or container level.",
    ["PSS baseline: Seccomp"],
    []
);
check!(
    SECCOMP_REQUIRED,
    "container.seccomp-required",
    "Container has no seccomp profile",
    Medium,
    "Set spec.securityContext.seccompProfile.type to RuntimeDefault for the whole pod (or Localhost with a reviewed profile).",
    ["PSS restricted: Seccomp", "CIS 5.7.2"],
    []
);
check!(
    SYSCTLS,
    "pod.unsafe-sysctls",
    "Pod sets sysctls outside the safe set",
    Medium,
    "Remove the sysctl from spec.securityContext.sysctls or set it on the node; only namespaced sysctls in the safe set are allowed.",
    ["PSS baseline: Sysctls"],
    []
);
check!(
    VOLUME_TYPES,
    "pod.volume-types",
    "Pod uses a volume type outside the restricted list",
    Medium,
    "Use configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volumes; reach other storage through a PersistentVolumeClaim.",
    ["PSS restricted: Volume Types"],
    []
);
check!(
    HOST_PROCESS,
    "pod.windows-host-process",
    "Windows HostProcess container",
    High,
    "Remove windowsOptions.hostProcess; HostProcess containers run as processes on the Windows node with host access.",
    ["PSS baseline: HostProcess", "CIS 5.2.11"],
    []
);
check!(
    RUN_AS_NON_ROOT,
    "container.run-as-non-root",
    "Container is not required to run as a non-root user",
    Medium,
    "Set securityContext.runAsNonRoot: true on the pod (or every container) and build the image with a non-root USER.",
    ["PSS restricted: Running as Non-root", "CIS 5.2.7"],
    []
);
check!(
    RUN_AS_USER_ROOT,
    "container.run-as-user-root",
    "Container runs as user id 0",
    High,
    "Set runAsUser to a non-zero id (or remove it and rely on a non-root USER in the image together with runAsNonRoot: true).",
    ["PSS restricted: Running as Non-root user", "CIS 5.2.7"],
    []
);
check!(
    USER_GROUP_IDS,
    "container.user-group-ids",
    "Container runs with user or group ids outside the approved ranges",
    High,
    "Set runAsNonRoot: true, and runAsUser, runAsGroup, supplementalGroups and fsGroup to ids within the ranges of the runAsUser, runAsGroup, supplementalGroups and fsGroup parameters.",
    [
        "Defender: Running containers as root user should be avoided",
        "CIS 5.2.7"
    ],
    ["runAsUser", "runAsGroup", "supplementalGroups", "fsGroup"]
);
check!(
    TRUSTED_REGISTRY,
    "container.trusted-registry",
    "Image is not from a trusted registry",
    High,
    "Pull the image from one of the registries in parameters.allowedRegistries (mirror it there first if needed).",
    ["Defender: Container images should be deployed from trusted registries only"],
    ["allowedRegistries"]
);
check!(
    RESOURCE_LIMITS,
    "container.resource-limits",
    "Container CPU or memory limit missing or too high",
    Medium,
    "Set resources.limits.cpu and resources.limits.memory, at or below parameters.maxCpu and parameters.maxMemory.",
    ["Defender: Container CPU and memory limits should be enforced"],
    ["maxCpu", "maxMemory"]
);
check!(
    ALLOWED_PORTS,
    "container.allowed-ports",
    "Container listens on a port that is not allowed",
    Medium,
    "Change the container port to one listed in parameters.allowedServicePorts, or add it there.",
    ["Defender: Services should listen on allowed ports only"],
    ["allowedServicePorts"]
);
check!(
    IMAGE_TAG,
    "container.image-tag",
    "Image is not pinned to a version",
    Low,
    "Reference the image by an immutable version tag or, better, by digest (image@sha256:...), never by latest or without a tag.",
    [],
    []
);
check!(
    LIVENESS_PROBE,
    "container.liveness-probe",
    "Container has no liveness probe",
    Low,
    "Add a livenessProbe so the kubelet restarts the container when it stops responding.",
    [],
    []
);
check!(
    READINESS_PROBE,
    "container.readiness-probe",
    "Container has no readiness probe",
    Informational,
    "Add a readinessProbe so traffic only reaches the container once it can serve.",
    [],
    []
);
check!(
    SECRET_IN_ENV,
    "container.secret-in-env",
    "Secret-looking environment variable holds a literal value",
    Low,
    "Move the value into a Secret and reference it with valueFrom.secretKeyRef, or better mount the Secret as a file.",
    ["CIS 5.4.1"],
    []
);

/// The checks of this module.
pub const CHECKS: &[CheckInfo] = &[
    HOST_NAMESPACES,
    HOST_NETWORK,
    HOST_PORTS,
    HOST_PATH,
    RUNTIME_SOCKET,
    PRIVILEGED,
    PRIVILEGE_ESCALATION,
    READ_ONLY_ROOT,
    AUTOMOUNT_TOKEN,
    DEFAULT_NAMESPACE,
    CAP_SYS_ADMIN,
    CAPABILITIES_ALLOWED,
    CAPABILITIES_DROP,
    CAPABILITIES_RESTRICTED,
    APPARMOR_UNCONFINED,
    APPARMOR_PROFILE,
    SELINUX,
    PROC_MOUNT,
    SECCOMP_UNCONFINED,
    SECCOMP_REQUIRED,
    SYSCTLS,
    VOLUME_TYPES,
    HOST_PROCESS,
    RUN_AS_NON_ROOT,
    RUN_AS_USER_ROOT,
    USER_GROUP_IDS,
    TRUSTED_REGISTRY,
    RESOURCE_LIMITS,
    ALLOWED_PORTS,
    IMAGE_TAG,
    LIVENESS_PROBE,
    READINESS_PROBE,
    SECRET_IN_ENV,
];

/// Sysctls the Pod Security Standards baseline allows.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Volume sources the restricted profile allows.
pub const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// SELinux types the baseline profile allows (besides none).
pub const ALLOWED_SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Host paths that hold (or are) a container runtime socket.
const RUNTIME_SOCKET_PATHS: &[&str] = &[
    "/",
    "/run",
    "/var/run",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd",
    "/run/containerd",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio",
    "/run/crio",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/k3s/containerd",
    "/var/run/k3s/containerd/containerd.sock",
];

/// Parameters turned into the form the checks use, once per run.
struct Settings<'a> {
    params: &'a Parameters,
    max_cpu: Option<f64>,
    max_memory: Option<f64>,
}

impl<'a> Settings<'a> {
    fn new(params: &'a Parameters) -> Self {
        Settings {
            params,
            max_cpu: params
                .max_cpu
                .as_deref()
                .and_then(crate::quantity::parse_quantity),
            max_memory: params
                .max_memory
                .as_deref()
                .and_then(crate::quantity::parse_quantity),
        }
    }
}

/// ServiceAccount automount settings, by (namespace, name).
fn automount_settings<'a>(
    accounts: impl Iterator<Item = &'a KubeObject>,
) -> HashMap<(&'a str, &'a str), Option<bool>> {
    accounts
        .filter(|sa| sa.kind == "ServiceAccount")
        .map(|sa| {
            (
                (sa.namespace.as_deref().unwrap_or(""), sa.name.as_str()),
                sa.value
                    .get("automountServiceAccountToken")
                    .and_then(Value::as_bool),
            )
        })
        .collect()
}

/// Checks one object the way admission sees it: unlike a scan, a controller-owned Pod is checked
/// too (anyone creating a Pod can write `ownerReferences`), and namespace exclusions are left to
/// the caller. `service_accounts` supply the ServiceAccount automount settings.
pub fn check_admission_object<'a>(
    object: &KubeObject,
    config: &PostureConfig,
    service_accounts: impl Iterator<Item = &'a KubeObject>,
) -> Vec<PostureFinding> {
    let Some(template) = PodTemplate::of(object) else {
        return Vec::new();
    };
    let settings = Settings::new(&config.parameters);
    let accounts = automount_settings(service_accounts);
    let mut run = Run {
        cluster: None,
        settings: &settings,
        accounts: &accounts,
        out: Vec::new(),
    };
    run.workload(&template);
    run.out
}

/// Runs this module's checks.
pub fn check(inventory: &Inventory, config: &PostureConfig) -> Vec<PostureFinding> {
    let settings = Settings::new(&config.parameters);
    let accounts = automount_settings(inventory.of_kind("ServiceAccount"));
    let mut run = Run {
        cluster: inventory.cluster.as_deref(),
        settings: &settings,
        accounts: &accounts,
        out: Vec::new(),
    };
    for object in &inventory.objects {
        if config.is_excluded_namespace(object.namespace.as_deref()) {
            continue;
        }
        let Some(template) = PodTemplate::of(object) else {
            continue;
        };
        if template.is_owned_pod() {
            continue;
        }
        run.workload(&template);
    }
    run.out
}

/// Checks one workload (exposed for the admission path and for benchmarks).
pub fn check_workload(
    object: &KubeObject,
    config: &PostureConfig,
    cluster: Option<&str>,
) -> Vec<PostureFinding> {
    let inventory = Inventory {
        cluster: cluster.map(str::to_string),
        objects: vec![object.clone()],
        warnings: Vec::new(),
    };
    check(&inventory, config)
}

struct Run<'a> {
    cluster: Option<&'a str>,
    settings: &'a Settings<'a>,
    accounts: &'a HashMap<(&'a str, &'a str), Option<bool>>,
    out: Vec<PostureFinding>,
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

/// `CAP_SYS_ADMIN` and `sys_admin` both name SYS_ADMIN.
fn cap_name(s: &str) -> &str {
    match s.get(..4) {
        Some(prefix) if s.len() > 4 && prefix.eq_ignore_ascii_case("cap_") => &s[4..],
        _ => s,
    }
}

fn cap_eq(a: &str, b: &str) -> bool {
    cap_name(a).eq_ignore_ascii_case(cap_name(b))
}

/// Where a setting came from: the container's own securityContext or the pod's.
#[derive(Clone, Copy)]
enum Level {
    Container,
    Pod,
}

/// A securityContext field as it applies to a container: its own value, else the pod's.
fn effective<'a>(
    t: &PodTemplate<'a>,
    c: &Container<'a>,
    field: &str,
) -> Option<(&'a Value, Level)> {
    match c.security(field).filter(|v| !v.is_null()) {
        Some(v) => Some((v, Level::Container)),
        None => t
            .spec
            .get("securityContext")
            .and_then(|sc| sc.get(field))
            .filter(|v| !v.is_null())
            .map(|v| (v, Level::Pod)),
    }
}

fn effective_path(t: &PodTemplate<'_>, c: &Container<'_>, level: Level, field: &str) -> String {
    match level {
        Level::Container => t.container_path(c, &format!("securityContext.{field}")),
        Level::Pod => t.path(&format!("securityContext.{field}")),
    }
}

fn is_windows(t: &PodTemplate<'_>) -> bool {
    t.spec
        .get("os")
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str)
        == Some("windows")
}

impl<'a> Run<'a> {
    fn emit(
        &mut self,
        info: &'static CheckInfo,
        t: &PodTemplate<'_>,
        container: Option<&str>,
        message: String,
        evidence: Vec<Evidence>,
    ) {
        self.out
            .push(info.finding(t.object, self.cluster, container, message, evidence));
    }

    fn workload(&mut self, t: &PodTemplate<'_>) {
        let windows = is_windows(t);
        self.pod_level(t);
        for c in t.containers() {
            self.container(t, &c, windows);
        }
    }

    fn pod_level(&mut self, t: &PodTemplate<'_>) {
        let what = WhatDisplay(t.object);
        // Host namespaces.
        let mut ev = Vec::new();
        for field in ["hostPID", "hostIPC"] {
            if is_true(t.field(field)) {
                ev.push(Evidence::new(t.path(field), true));
            }
        }
        if !ev.is_empty() {
            let names: Vec<&str> = ["hostPID", "hostIPC"]
                .into_iter()
                .filter(|f| is_true(t.field(f)))
                .collect();
            self.emit(
                &HOST_NAMESPACES,
                t,
                None,
                format!(
                    "{what} sets {}: its containers see or share the node's processes",
                    names.join(" and ")
                ),
                ev,
            );
        }
        if is_true(t.field("hostNetwork")) {
            self.emit(
                &HOST_NETWORK,
                t,
                None,
                format!("{what} uses the node's network namespace (hostNetwork: true)"),
                vec![Evidence::new(t.path("hostNetwork"), true)],
            );
        }

        // Volumes: hostPath, runtime sockets, types.
        for (i, vol) in array(t.field("volumes")).enumerate() {
            let Some(vol) = vol.as_object() else { continue };
            let name = vol.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some(path) = vol
                .get("hostPath")
                .and_then(|h| h.get("path"))
                .and_then(Value::as_str)
            {
                self.host_path(t, i, name, path);
            }
            if let Some(kind) = vol
                .keys()
                .find(|k| *k != "name" && !RESTRICTED_VOLUME_TYPES.contains(&k.as_str()))
            {
                let path = t.path(&format!("volumes[{i}].{kind}"));
                self.emit(
                    &VOLUME_TYPES,
                    t,
                    None,
                    format!("{what} uses a {kind} volume ({name}), not allowed under the restricted profile"),
                    vec![Evidence::new(path, vol.get(kind).cloned().unwrap_or(Value::Null))],
                );
            }
        }

        // Sysctls.
        let sc = t.field("securityContext");
        for (i, s) in array(sc.and_then(|s| s.get("sysctls"))).enumerate() {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("");
            if !SAFE_SYSCTLS.contains(&name) {
                self.emit(
                    &SYSCTLS,
                    t,
                    None,
                    format!("{what} sets sysctl {name}, which is not in the safe set"),
                    vec![Evidence::new(
                        t.path(&format!("securityContext.sysctls[{i}].name")),
                        name,
                    )],
                );
            }
        }

        // Pod-level SELinux options.
        if let Some(opts) = sc.and_then(|s| s.get("seLinuxOptions")) {
            self.selinux(t, None, opts, &t.path("securityContext.seLinuxOptions"));
        }

        // HostProcess anywhere in the pod.
        let mut hp = Vec::new();
        if is_true(
            sc.and_then(|s| s.get("windowsOptions"))
                .and_then(|w| w.get("hostProcess")),
        ) {
            hp.push(Evidence::new(
                t.path("securityContext.windowsOptions.hostProcess"),
                true,
            ));
        }
        for c in t.containers() {
            if is_true(
                c.security("windowsOptions")
                    .and_then(|w| w.get("hostProcess")),
            ) {
                hp.push(Evidence::new(
                    t.container_path(&c, "securityContext.windowsOptions.hostProcess"),
                    true,
                ));
            }
        }
        if !hp.is_empty() {
            self.emit(
                &HOST_PROCESS,
                t,
                None,
                format!("{what} runs Windows HostProcess containers with access to the node"),
                hp,
            );
        }

        // Service account token.
        self.automount(t);

        // Default namespace.
        if t.object.namespace.as_deref() == Some("default") {
            self.emit(
                &DEFAULT_NAMESPACE,
                t,
                None,
                format!("{what} is deployed in the default namespace"),
                vec![Evidence::new("metadata.namespace", "default")],
            );
        }

        // Pod-level group ids (supplementalGroups, fsGroup).
        let p = self.settings.params;
        let mut ev = Vec::new();
        let mut problems = Vec::new();
        let supplemental = sc.and_then(|s| s.get("supplementalGroups"));
        match (
            p.supplemental_groups.rule,
            supplemental.and_then(Value::as_array),
        ) {
            (IdRuleKind::RunAsAny | IdRuleKind::MustRunAsNonRoot, _) => {}
            (IdRuleKind::MustRunAs, None) => {
                problems.push("sets no supplementalGroups".to_string());
                ev.push(Evidence::new(
                    t.path("securityContext.supplementalGroups"),
                    Value::Null,
                ));
            }
            (_, Some(groups)) => {
                for (i, g) in groups.iter().enumerate() {
                    match g.as_i64() {
                        Some(id) if p.supplemental_groups.in_ranges(id) => {}
                        _ => {
                            problems.push(format!(
                                "has supplemental group {g} outside the allowed ranges"
                            ));
                            ev.push(Evidence::new(
                                t.path(&format!("securityContext.supplementalGroups[{i}]")),
                                g.clone(),
                            ));
                        }
                    }
                }
            }
            (IdRuleKind::MayRunAs, None) => {}
        }
        let fs_group = sc.and_then(|s| s.get("fsGroup")).filter(|v| !v.is_null());
        if let Some(problem) = id_problem(&p.fs_group, fs_group, "fsGroup") {
            problems.push(problem);
            ev.push(Evidence::new(
                t.path("securityContext.fsGroup"),
                fs_group.cloned().unwrap_or(Value::Null),
            ));
        }
        if !problems.is_empty() {
            self.emit(
                &USER_GROUP_IDS,
                t,
                None,
                format!("{what} {}", problems.join("; ")),
                ev,
            );
        }
    }

    fn host_path(&mut self, t: &PodTemplate<'_>, index: usize, name: &str, path: &str) {
        let what = WhatDisplay(t.object);
        let normalized = normalize_path(path);
        if RUNTIME_SOCKET_PATHS.contains(&normalized) {
            self.emit(
                &RUNTIME_SOCKET,
                t,
                None,
                format!("{what} mounts host path {path} (volume {name}), which holds the container runtime socket"),
                vec![Evidence::new(t.path(&format!("volumes[{index}].hostPath.path")), path)],
            );
        }
        let allowed = self
            .settings
            .params
            .allowed_host_paths
            .iter()
            .find(|a| path_has_prefix(normalized, normalize_path(&a.path_prefix)));
        match allowed {
            None => self.emit(
                &HOST_PATH,
                t,
                None,
                format!("{what} mounts host path {path} (volume {name}), which is not in the allowed list"),
                vec![Evidence::new(t.path(&format!("volumes[{index}].hostPath.path")), path)],
            ),
            Some(a) if a.read_only => {
                // Every mount of the volume must be read-only.
                let mut ev = Vec::new();
                let mut containers = Vec::new();
                for c in t.containers() {
                    for (m_index, m) in array(c.spec.get("volumeMounts")).enumerate() {
                        if m.get("name").and_then(Value::as_str) == Some(name)
                            && !is_true(m.get("readOnly"))
                        {
                            ev.push(Evidence::new(
                                t.container_path(&c, &format!("volumeMounts[{m_index}].readOnly")),
                                m.get("readOnly").cloned().unwrap_or(Value::Null),
                            ));
                            containers.push(c.name);
                        }
                    }
                }
                if !ev.is_empty() {
                    self.emit(
                        &HOST_PATH,
                        t,
                        None,
                        format!(
                            "{what} mounts host path {path} (volume {name}) writable in {}; only read-only mounts of {} are allowed",
                            containers.join(", "),
                            a.path_prefix
                        ),
                        ev,
                    );
                }
            }
            Some(_) => {}
        }
    }

    fn automount(&mut self, t: &PodTemplate<'_>) {
        let what = WhatDisplay(t.object);
        match t.field("automountServiceAccountToken").and_then(Value::as_bool) {
            Some(false) => {}
            Some(true) => self.emit(
                &AUTOMOUNT_TOKEN,
                t,
                None,
                format!("{what} mounts the token of service account {} (automountServiceAccountToken: true)", t.service_account()),
                vec![Evidence::new(t.path("automountServiceAccountToken"), true)],
            ),
            None => {
                let sa = t.service_account();
                let ns = t.object.namespace.as_deref().unwrap_or("");
                match self.accounts.get(&(ns, sa)) {
                    Some(Some(false)) => {}
                    Some(Some(true)) => self.emit(
                        &AUTOMOUNT_TOKEN,
                        t,
                        None,
                        format!("{what} mounts the token of service account {sa}, which sets automountServiceAccountToken: true"),
                        vec![
                            Evidence::new(t.path("automountServiceAccountToken"), Value::Null),
                            Evidence::new(format!("ServiceAccount {sa}: automountServiceAccountToken"), true),
                        ],
                    ),
                    _ => self.emit(
                        &AUTOMOUNT_TOKEN,
                        t,
                        None,
                        format!("{what} mounts the token of service account {sa}: neither the pod nor the service account disables automounting"),
                        vec![Evidence::new(t.path("automountServiceAccountToken"), Value::Null)],
                    ),
                }
            }
        }
    }

    fn selinux(
        &mut self,
        t: &PodTemplate<'_>,
        c: Option<&Container<'_>>,
        opts: &Value,
        path: &str,
    ) {
        let mut ev = Vec::new();
        let mut problems = Vec::new();
        if let Some(ty) = opts.get("type").and_then(Value::as_str)
            && !ty.is_empty()
            && !ALLOWED_SELINUX_TYPES.contains(&ty)
        {
            problems.push(format!("SELinux type {ty}"));
            ev.push(Evidence::new(format!("{path}.type"), ty));
        }
        for field in ["user", "role"] {
            if let Some(v) = opts.get(field).and_then(Value::as_str)
                && !v.is_empty()
            {
                problems.push(format!("SELinux {field} {v}"));
                ev.push(Evidence::new(format!("{path}.{field}"), v));
            }
        }
        if !problems.is_empty() {
            let what = WhatDisplay(t.object);
            let message = match c {
                Some(c) => format!(
                    "Container {} of {what} sets {}",
                    c.name,
                    problems.join(", ")
                ),
                None => format!("{what} sets {} for all its containers", problems.join(", ")),
            };
            self.emit(&SELINUX, t, c.map(|c| c.name), message, ev);
        }
    }

    fn container(&mut self, t: &PodTemplate<'_>, c: &Container<'_>, windows: bool) {
        let s = self.settings;
        let p = s.params;
        let what = WhatDisplay(t.object);
        let cname = Some(c.name);
        let privileged = is_true(c.security("privileged"));
        let caps = c.security("capabilities");
        let add: Vec<&str> = array(caps.and_then(|c| c.get("add")))
            .filter_map(Value::as_str)
            .collect();
        let drop = caps.and_then(|c| c.get("drop"));

        if privileged {
            self.emit(
                &PRIVILEGED,
                t,
                cname,
                format!("Container {} of {what} runs privileged, with all capabilities and access to host devices", c.name),
                vec![Evidence::new(t.container_path(c, "securityContext.privileged"), true)],
            );
        }

        // Capabilities.
        let sys_admin = add
            .iter()
            .position(|a| cap_eq(a, "SYS_ADMIN") || a.eq_ignore_ascii_case("ALL"));
        if let Some(i) = sys_admin {
            self.emit(
                &CAP_SYS_ADMIN,
                t,
                cname,
                format!(
                    "Container {} of {what} adds {}, which grants CAP_SYS_ADMIN",
                    c.name, add[i]
                ),
                vec![Evidence::new(
                    t.container_path(c, &format!("securityContext.capabilities.add[{i}]")),
                    add[i],
                )],
            );
        }
        let not_allowed: Vec<usize> = add
            .iter()
            .enumerate()
            .filter(|(_, a)| !p.allowed_capabilities.iter().any(|x| cap_eq(x, a)))
            .map(|(i, _)| i)
            .collect();
        if !not_allowed.is_empty() {
            let names: Vec<&str> = not_allowed.iter().map(|&i| add[i]).collect();
            self.emit(
                &CAPABILITIES_ALLOWED,
                t,
                cname,
                format!(
                    "Container {} of {what} adds capabilities that are not allowed: {}",
                    c.name,
                    names.join(", ")
                ),
                not_allowed
                    .iter()
                    .map(|&i| {
                        Evidence::new(
                            t.container_path(c, &format!("securityContext.capabilities.add[{i}]")),
                            add[i],
                        )
                    })
                    .collect(),
            );
        }
        if !windows {
            let drops = || array(drop).filter_map(Value::as_str);
            let drops_all = drops().any(|d| d.eq_ignore_ascii_case("ALL"));
            let missing: Vec<&str> = if drops_all {
                Vec::new()
            } else {
                p.required_drop_capabilities
                    .iter()
                    .map(String::as_str)
                    .filter(|r| !drops().any(|d| cap_eq(d, r)))
                    .collect()
            };
            if !missing.is_empty() {
                self.emit(
                    &CAPABILITIES_DROP,
                    t,
                    cname,
                    format!(
                        "Container {} of {what} does not drop {}",
                        c.name,
                        missing.join(", ")
                    ),
                    vec![Evidence::new(
                        t.container_path(c, "securityContext.capabilities.drop"),
                        drop.cloned().unwrap_or(Value::Null),
                    )],
                );
            }
            let extra: Vec<usize> = add
                .iter()
                .enumerate()
                .filter(|(_, a)| !cap_eq(a, "NET_BIND_SERVICE"))
                .map(|(i, _)| i)
                .collect();
            if !extra.is_empty() {
                let names: Vec<&str> = extra.iter().map(|&i| add[i]).collect();
                self.emit(
                    &CAPABILITIES_RESTRICTED,
                    t,
                    cname,
                    format!("Container {} of {what} adds {}; the restricted profile allows only NET_BIND_SERVICE", c.name, names.join(", ")),
                    extra
                        .iter()
                        .map(|&i| {
                            Evidence::new(
                                t.container_path(c, &format!("securityContext.capabilities.add[{i}]")),
                                add[i],
                            )
                        })
                        .collect(),
                );
            }

            // Privilege escalation: unset means allowed; privileged and CAP_SYS_ADMIN imply it.
            let ape = c
                .security("allowPrivilegeEscalation")
                .and_then(Value::as_bool);
            if ape != Some(false) || privileged || sys_admin.is_some() {
                let mut ev = vec![Evidence::new(
                    t.container_path(c, "securityContext.allowPrivilegeEscalation"),
                    ape.map(Value::Bool).unwrap_or(Value::Null),
                )];
                let reason = if privileged {
                    ev.push(Evidence::new(
                        t.container_path(c, "securityContext.privileged"),
                        true,
                    ));
                    "runs privileged, which always allows privilege escalation"
                } else if sys_admin.is_some() {
                    "has CAP_SYS_ADMIN, which always allows privilege escalation"
                } else if ape == Some(true) {
                    "sets allowPrivilegeEscalation: true"
                } else {
                    "does not set allowPrivilegeEscalation: false (it defaults to true)"
                };
                self.emit(
                    &PRIVILEGE_ESCALATION,
                    t,
                    cname,
                    format!("Container {} of {what} {reason}", c.name),
                    ev,
                );
            }

            // Seccomp.
            self.seccomp(t, c);
        }

        if !is_true(c.security("readOnlyRootFilesystem")) {
            self.emit(
                &READ_ONLY_ROOT,
                t,
                cname,
                format!(
                    "Container {} of {what} can write to its root filesystem",
                    c.name
                ),
                vec![Evidence::new(
                    t.container_path(c, "securityContext.readOnlyRootFilesystem"),
                    c.security("readOnlyRootFilesystem")
                        .cloned()
                        .unwrap_or(Value::Null),
                )],
            );
        }

        // Host ports.
        for (i, port) in array(c.spec.get("ports")).enumerate() {
            let Some(hp) = port.get("hostPort").and_then(Value::as_i64) else {
                continue;
            };
            if hp == 0 {
                continue;
            }
            let allowed = p
                .host_port_range
                .is_some_and(|r| i64::from(r.min) <= hp && hp <= i64::from(r.max));
            if !allowed {
                self.emit(
                    &HOST_PORTS,
                    t,
                    cname,
                    match p.host_port_range {
                        Some(r) => format!(
                            "Container {} of {what} binds host port {hp}, outside the allowed range {}-{}",
                            c.name, r.min, r.max
                        ),
                        None => format!(
                            "Container {} of {what} binds host port {hp} (no host ports are allowed)",
                            c.name
                        ),
                    },
                    vec![Evidence::new(
                        t.container_path(c, &format!("ports[{i}].hostPort")),
                        hp,
                    )],
                );
            }
        }
        if !p.allowed_service_ports.is_empty() {
            for (i, port) in array(c.spec.get("ports")).enumerate() {
                let Some(cp) = port.get("containerPort").and_then(Value::as_u64) else {
                    continue;
                };
                if !p.allowed_service_ports.iter().any(|&a| u64::from(a) == cp) {
                    self.emit(
                        &ALLOWED_PORTS,
                        t,
                        cname,
                        format!(
                            "Container {} of {what} listens on port {cp}, which is not allowed",
                            c.name
                        ),
                        vec![Evidence::new(
                            t.container_path(c, &format!("ports[{i}].containerPort")),
                            cp,
                        )],
                    );
                }
            }
        }

        // AppArmor.
        if !windows {
            self.apparmor(t, c);
        }

        // SELinux, /proc.
        if let Some(opts) = c.security("seLinuxOptions") {
            let path = t.container_path(c, "securityContext.seLinuxOptions");
            self.selinux(t, Some(c), opts, &path);
        }
        if let Some(pm) = c.security("procMount").and_then(Value::as_str)
            && pm != "Default"
        {
            self.emit(
                &PROC_MOUNT,
                t,
                cname,
                format!(
                    "Container {} of {what} sets procMount: {pm}, exposing unmasked /proc",
                    c.name
                ),
                vec![Evidence::new(
                    t.container_path(c, "securityContext.procMount"),
                    pm,
                )],
            );
        }

        // Users and groups.
        self.users(t, c);

        // Images.
        let image = c.image();
        if !p.allowed_registries.is_empty() && !image_is_trusted(image, &p.allowed_registries) {
            self.emit(
                &TRUSTED_REGISTRY,
                t,
                cname,
                format!("Container {} of {what} uses image {image}, which is not from an allowed registry", c.name),
                vec![Evidence::new(t.container_path(c, "image"), image)],
            );
        }
        if let Some(problem) = image_tag_problem(image) {
            self.emit(
                &IMAGE_TAG,
                t,
                cname,
                format!(
                    "Container {} of {what} uses image {image}, {problem}",
                    c.name
                ),
                vec![Evidence::new(t.container_path(c, "image"), image)],
            );
        }

        // Resources (ephemeral containers cannot set them).
        if c.kind != ContainerKind::Ephemeral {
            self.limits(t, c);
        }

        // Probes: long-running regular containers only.
        if c.kind == ContainerKind::Regular && runs_continuously(t) {
            if c.spec.get("livenessProbe").is_none_or(Value::is_null) {
                self.emit(
                    &LIVENESS_PROBE,
                    t,
                    cname,
                    format!("Container {} of {what} has no liveness probe", c.name),
                    vec![Evidence::new(
                        t.container_path(c, "livenessProbe"),
                        Value::Null,
                    )],
                );
            }
            if c.spec.get("readinessProbe").is_none_or(Value::is_null) {
                self.emit(
                    &READINESS_PROBE,
                    t,
                    cname,
                    format!("Container {} of {what} has no readiness probe", c.name),
                    vec![Evidence::new(
                        t.container_path(c, "readinessProbe"),
                        Value::Null,
                    )],
                );
            }
        }

        // Literal secrets in env.
        for (i, env) in array(c.spec.get("env")).enumerate() {
            let Some(name) = env.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Some(value) = env.get("value").and_then(Value::as_str) else {
                continue;
            };
            if secret_like_name(name) && literal_secret_value(value) {
                self.emit(
                    &SECRET_IN_ENV,
                    t,
                    cname,
                    format!(
                        "Container {} of {what} sets {name} to a literal value in its spec",
                        c.name
                    ),
                    vec![Evidence::new(
                        t.container_path(c, &format!("env[{i}].value")),
                        format!("<redacted: {} characters>", value.chars().count()),
                    )],
                );
            }
        }
    }

    fn seccomp(&mut self, t: &PodTemplate<'_>, c: &Container<'_>) {
        // Field first (container, then pod), then the legacy annotations. Nothing is allocated
        // unless a finding is made.
        let source = match effective(t, c, "seccompProfile") {
            Some((v, level)) => match v.get("type").and_then(Value::as_str) {
                Some(ty) => SeccompSource::Field(ty, level),
                None => SeccompSource::None,
            },
            None => match container_annotation(t, SECCOMP_CONTAINER_ANNOTATION, c.name) {
                Some((key, v)) => SeccompSource::Annotation(key, v),
                None => match t.annotation(SECCOMP_POD_ANNOTATION) {
                    Some(v) => SeccompSource::Annotation(SECCOMP_POD_ANNOTATION, v),
                    None => SeccompSource::None,
                },
            },
        };
        let profile = match source {
            SeccompSource::Field(ty, _) => Some(ty),
            SeccompSource::Annotation(_, v) => Some(match v {
                "runtime/default" | "docker/default" => "RuntimeDefault",
                "unconfined" => "Unconfined",
                v if v.starts_with("localhost/") => "Localhost",
                other => other,
            }),
            SeccompSource::None => None,
        };
        if matches!(profile, Some("RuntimeDefault" | "Localhost")) {
            return;
        }
        let what = WhatDisplay(t.object);
        let (path, value) = match source {
            SeccompSource::Field(ty, level) => (
                effective_path(t, c, level, "seccompProfile.type"),
                Value::from(ty),
            ),
            SeccompSource::Annotation(key, v) => (
                format!("{}.annotations[{key}]", metadata_path(t)),
                Value::from(v),
            ),
            SeccompSource::None => (t.path("securityContext.seccompProfile"), Value::Null),
        };
        match profile {
            Some("Unconfined") => {
                self.emit(
                    &SECCOMP_UNCONFINED,
                    t,
                    Some(c.name),
                    format!("Container {} of {what} runs with seccomp Unconfined", c.name),
                    vec![Evidence::new(path.clone(), value.clone())],
                );
                self.emit(
                    &SECCOMP_REQUIRED,
                    t,
                    Some(c.name),
                    format!("Container {} of {what} has seccomp Unconfined; RuntimeDefault or Localhost is required", c.name),
                    vec![Evidence::new(path, value)],
                );
            }
            Some(other) => self.emit(
                &SECCOMP_REQUIRED,
                t,
                Some(c.name),
                format!("Container {} of {what} has seccomp profile {other}; RuntimeDefault or Localhost is required", c.name),
                vec![Evidence::new(path, value)],
            ),
            None => self.emit(
                &SECCOMP_REQUIRED,
                t,
                Some(c.name),
                format!("Container {} of {what} has no seccomp profile, neither on the pod nor on the container", c.name),
                vec![Evidence::new(path, value)],
            ),
        }
    }

    fn apparmor(&mut self, t: &PodTemplate<'_>, c: &Container<'_>) {
        // The container's field wins, then its annotation, then the pod's field.
        let source = if let Some(p) = c.security("appArmorProfile").filter(|v| !v.is_null()) {
            AppArmorSource::ContainerField(p)
        } else if let Some((key, a)) = container_annotation(t, APPARMOR_ANNOTATION, c.name) {
            AppArmorSource::Annotation(key, a)
        } else if let Some(p) = t
            .spec
            .get("securityContext")
            .and_then(|s| s.get("appArmorProfile"))
            .filter(|v| !v.is_null())
        {
            AppArmorSource::PodField(p)
        } else {
            AppArmorSource::None
        };
        let profile = match source {
            AppArmorSource::ContainerField(p) | AppArmorSource::PodField(p) => {
                Some(AppArmorProfile::of_field(p))
            }
            AppArmorSource::Annotation(_, a) => Some(AppArmorProfile(a, "")),
            AppArmorSource::None => None,
        };
        let unconfined = profile.is_some_and(|p| p.is("unconfined"));
        let allowed = profile.is_some_and(|p| {
            self.settings
                .params
                .allowed_app_armor_profiles
                .iter()
                .any(|a| p.matches(a))
        });
        if allowed && !unconfined {
            return;
        }
        let what = WhatDisplay(t.object);
        let (path, value) = match source {
            AppArmorSource::ContainerField(p) => (
                t.container_path(c, "securityContext.appArmorProfile"),
                p.clone(),
            ),
            AppArmorSource::Annotation(key, a) => (
                format!("{}.annotations[{key}]", metadata_path(t)),
                Value::from(a),
            ),
            AppArmorSource::PodField(p) => (t.path("securityContext.appArmorProfile"), p.clone()),
            AppArmorSource::None => (
                t.container_path(c, "securityContext.appArmorProfile"),
                Value::Null,
            ),
        };
        if unconfined {
            self.emit(
                &APPARMOR_UNCONFINED,
                t,
                Some(c.name),
                format!(
                    "Container {} of {what} runs with AppArmor unconfined",
                    c.name
                ),
                vec![Evidence::new(path.clone(), value.clone())],
            );
        }
        if allowed {
            return;
        }
        match profile {
            Some(p) => self.emit(
                &APPARMOR_PROFILE,
                t,
                Some(c.name),
                format!(
                    "Container {} of {what} uses AppArmor profile {}{}, which is not allowed",
                    c.name, p.0, p.1
                ),
                vec![Evidence::new(path, value)],
            ),
            None => self.emit(
                &APPARMOR_PROFILE,
                t,
                Some(c.name),
                format!("Container {} of {what} sets no AppArmor profile", c.name),
                vec![Evidence::new(path, value)],
            ),
        }
    }

    fn users(&mut self, t: &PodTemplate<'_>, c: &Container<'_>) {
        let what = WhatDisplay(t.object);
        let p = self.settings.params;
        let non_root = effective(t, c, "runAsNonRoot");
        let user = effective(t, c, "runAsUser");
        let group = effective(t, c, "runAsGroup");

        // PSS restricted: runAsNonRoot must be true (pod or container, container wins).
        match non_root {
            Some((Value::Bool(true), _)) => {}
            Some((v, level)) => self.emit(
                &RUN_AS_NON_ROOT,
                t,
                Some(c.name),
                format!("Container {} of {what} sets runAsNonRoot: {v}", c.name),
                vec![Evidence::new(effective_path(t, c, level, "runAsNonRoot"), v.clone())],
            ),
            None => self.emit(
                &RUN_AS_NON_ROOT,
                t,
                Some(c.name),
                format!("Container {} of {what} does not set runAsNonRoot: true (pod or container), so it may run as root", c.name),
                vec![Evidence::new(t.container_path(c, "securityContext.runAsNonRoot"), Value::Null)],
            ),
        }
        if let Some((v, level)) = user
            && v.as_i64() == Some(0)
        {
            self.emit(
                &RUN_AS_USER_ROOT,
                t,
                Some(c.name),
                format!("Container {} of {what} runs as user id 0 (root)", c.name),
                vec![Evidence::new(effective_path(t, c, level, "runAsUser"), 0)],
            );
        }

        // Defender: approved user and group ids.
        let mut problems = Vec::new();
        let mut ev = Vec::new();
        let user_v = user.map(|(v, _)| v);
        let user_problem = match p.run_as_user.rule {
            IdRuleKind::MustRunAsNonRoot => {
                let nonroot_true = matches!(non_root, Some((Value::Bool(true), _)));
                match user_v.and_then(Value::as_i64) {
                    Some(0) => Some("runs as user id 0".to_string()),
                    Some(_) => None,
                    None if nonroot_true => None,
                    None => {
                        Some("neither sets runAsNonRoot: true nor a non-zero runAsUser".to_string())
                    }
                }
            }
            _ => id_problem(&p.run_as_user, user_v, "runAsUser"),
        };
        if let Some(problem) = user_problem {
            problems.push(problem);
            ev.push(match user {
                Some((v, level)) => {
                    Evidence::new(effective_path(t, c, level, "runAsUser"), v.clone())
                }
                None => Evidence::new(
                    t.container_path(c, "securityContext.runAsUser"),
                    Value::Null,
                ),
            });
        }
        if let Some(problem) = id_problem(&p.run_as_group, group.map(|(v, _)| v), "runAsGroup") {
            problems.push(problem);
            ev.push(match group {
                Some((v, level)) => {
                    Evidence::new(effective_path(t, c, level, "runAsGroup"), v.clone())
                }
                None => Evidence::new(
                    t.container_path(c, "securityContext.runAsGroup"),
                    Value::Null,
                ),
            });
        }
        if !problems.is_empty() {
            self.emit(
                &USER_GROUP_IDS,
                t,
                Some(c.name),
                format!("Container {} of {what} {}", c.name, problems.join("; ")),
                ev,
            );
        }
    }

    fn limits(&mut self, t: &PodTemplate<'_>, c: &Container<'_>) {
        let what = WhatDisplay(t.object);
        let s = self.settings;
        let limits = c
            .spec
            .get("resources")
            .and_then(|r| r.get("limits"))
            .and_then(Value::as_object);
        let mut problems = Vec::new();
        let mut ev = Vec::new();
        for (resource, max, param) in [
            ("cpu", s.max_cpu, s.params.max_cpu.as_deref()),
            ("memory", s.max_memory, s.params.max_memory.as_deref()),
        ] {
            match limits.and_then(|l| l.get(resource)) {
                None | Some(Value::Null) => {
                    problems.push(format!("no {resource} limit"));
                    ev.push(Evidence::new(
                        t.container_path(c, &format!("resources.limits.{resource}")),
                        Value::Null,
                    ));
                }
                Some(v) => match (quantity_of(v), max) {
                    (None, _) => {
                        problems.push(format!("an unreadable {resource} limit {v}"));
                        ev.push(Evidence::new(
                            t.container_path(c, &format!("resources.limits.{resource}")),
                            v.clone(),
                        ));
                    }
                    (Some(q), Some(max)) if q > max => {
                        problems.push(format!(
                            "a {resource} limit of {} above the maximum {}",
                            value_text(v),
                            param.unwrap_or("")
                        ));
                        ev.push(Evidence::new(
                            t.container_path(c, &format!("resources.limits.{resource}")),
                            v.clone(),
                        ));
                    }
                    _ => {}
                },
            }
        }
        if !problems.is_empty() {
            self.emit(
                &RESOURCE_LIMITS,
                t,
                Some(c.name),
                format!(
                    "Container {} of {what} has {}",
                    c.name,
                    problems.join(" and ")
                ),
                ev,
            );
        }
    }
}

/// `Deployment prod/web` in messages, without building the string unless a message is made.
struct WhatDisplay<'a>(&'a KubeObject);

impl std::fmt::Display for WhatDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.0.kind, ns, self.0.name),
            None => write!(f, "{} {}", self.0.kind, self.0.name),
        }
    }
}

fn metadata_path(t: &PodTemplate<'_>) -> &'static str {
    match t.spec_path.strip_suffix(".spec") {
        Some("spec.template") => "spec.template.metadata",
        Some("spec.jobTemplate.spec.template") => "spec.jobTemplate.spec.template.metadata",
        _ => "metadata",
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why an id breaks a rule (`None` when it does not).
fn id_problem(rule: &IdRule, value: Option<&Value>, field: &str) -> Option<String> {
    match (rule.rule, value) {
        (IdRuleKind::RunAsAny, _) => None,
        (IdRuleKind::MustRunAsNonRoot, Some(v)) if v.as_i64() == Some(0) => {
            Some(format!("sets {field} 0"))
        }
        (IdRuleKind::MustRunAsNonRoot, _) => None,
        (IdRuleKind::MustRunAs, None) => Some(format!("sets no {field}")),
        (IdRuleKind::MayRunAs, None) => None,
        (_, Some(v)) => match v.as_i64() {
            Some(id) if rule.in_ranges(id) => None,
            _ => Some(format!("sets {field} {v}, outside the allowed ranges")),
        },
    }
}

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_CONTAINER_ANNOTATION: &str = "container.seccomp.security.alpha.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";

/// The pod annotation `<prefix><container name>`, found without building the key.
fn container_annotation<'a>(
    t: &PodTemplate<'a>,
    prefix: &str,
    container: &str,
) -> Option<(&'a str, &'a str)> {
    t.metadata?
        .get("annotations")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.strip_prefix(prefix) == Some(container))
        .and_then(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

#[derive(Clone, Copy)]
enum SeccompSource<'a> {
    Field(&'a str, Level),
    Annotation(&'a str, &'a str),
    None,
}

#[derive(Clone, Copy)]
enum AppArmorSource<'a> {
    ContainerField(&'a Value),
    Annotation(&'a str, &'a str),
    PodField(&'a Value),
    None,
}

/// An AppArmor profile name in the annotation form, as two parts so that `localhost/<profile>`
/// need not be built: (`runtime/default`, ``), (`localhost/`, `k8s-nginx`), (`unconfined`, ``).
#[derive(Clone, Copy)]
struct AppArmorProfile<'a>(&'a str, &'a str);

impl<'a> AppArmorProfile<'a> {
    fn of_field(p: &'a Value) -> AppArmorProfile<'a> {
        match p.get("type").and_then(Value::as_str) {
            Some("RuntimeDefault") => AppArmorProfile("runtime/default", ""),
            Some("Unconfined") => AppArmorProfile("unconfined", ""),
            Some("Localhost") => AppArmorProfile(
                "localhost/",
                p.get("localhostProfile")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            Some(other) => AppArmorProfile(other, ""),
            None => AppArmorProfile("", ""),
        }
    }

    fn is(&self, name: &str) -> bool {
        name.len() == self.0.len() + self.1.len()
            && name.starts_with(self.0)
            && &name[self.0.len()..] == self.1
    }

    /// Whether a pattern of `allowedAppArmorProfiles` (exact, or a prefix ending in `*`) allows it.
    fn matches(&self, pattern: &str) -> bool {
        match pattern.strip_suffix('*') {
            None => self.is(pattern),
            Some(prefix) if prefix.len() <= self.0.len() => self.0.starts_with(prefix),
            Some(prefix) => {
                prefix.starts_with(self.0) && self.1.starts_with(&prefix[self.0.len()..])
            }
        }
    }
}

fn normalize_path(p: &str) -> &str {
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() && p.starts_with('/') {
        "/"
    } else {
        trimmed
    }
}

/// Prefix on whole path components: `/var/log` is a prefix of `/var/log/pods`, not of `/var/logs`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// The image reference with its registry spelled out: `nginx` → `docker.io/library/nginx`.
pub fn normalize_image(image: &str) -> std::borrow::Cow<'_, str> {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        std::borrow::Cow::Borrowed(image)
    } else if image.contains('/') {
        std::borrow::Cow::Owned(format!("docker.io/{image}"))
    } else {
        std::borrow::Cow::Owned(format!("docker.io/library/{image}"))
    }
}

fn image_is_trusted(image: &str, allowed: &[String]) -> bool {
    let normalized = normalize_image(image);
    let alias = normalized
        .strip_prefix("docker.io/")
        .map(|rest| format!("index.docker.io/{rest}"));
    allowed.iter().any(|a| {
        let a = a.trim();
        let matches = |img: &str| {
            if a.ends_with('/') {
                img.starts_with(a)
            } else {
                img == a
                    || (img.starts_with(a)
                        && matches!(img.as_bytes().get(a.len()), Some(b'/' | b':' | b'@')))
            }
        };
        !a.is_empty() && (matches(&normalized) || alias.as_deref().is_some_and(matches))
    })
}

/// Why an image reference is not pinned (`None` when it has a digest or a version tag).
fn image_tag_problem(image: &str) -> Option<&'static str> {
    if image.is_empty() {
        return None;
    }
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        None => Some("which has no tag (it means latest)"),
        Some((_, "latest")) => Some("tagged latest, which moves"),
        Some(_) => None,
    }
}

/// Whether pods of this workload are expected to run until stopped (probes matter).
fn runs_continuously(t: &PodTemplate<'_>) -> bool {
    match t.object.kind.as_str() {
        "Job" | "CronJob" => false,
        _ => t
            .field("restartPolicy")
            .and_then(Value::as_str)
            .is_none_or(|p| p == "Always"),
    }
}

const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CREDENTIAL",
    "AUTH_KEY",
];

fn secret_like_name(name: &str) -> bool {
    let upper = |w: &str| {
        name.as_bytes()
            .windows(w.len())
            .any(|win| win.eq_ignore_ascii_case(w.as_bytes()))
    };
    if !SECRET_WORDS.iter().any(|w| upper(w)) {
        return false;
    }
    // A variable naming where the secret is, not the secret itself.
    let lower = name.to_ascii_lowercase();
    ![
        "_file", "_path", "_dir", "_ref", "_name", "_url", "_enabled", "_length", "_ttl",
        "_expiry", "_timeout",
    ]
    .iter()
    .any(|s| lower.ends_with(s))
}

fn literal_secret_value(value: &str) -> bool {
    let v = value.trim();
    !(v.is_empty()
        || v.len() < 4
        || v.starts_with("$(")
        || v.starts_with('/')
        || v.eq_ignore_ascii_case("true")
        || v.eq_ignore_ascii_case("false")
        || v.bytes().all(|b| b.is_ascii_digit()))
}

/// Pod labels of a template, for callers that match selectors.
pub fn template_labels<'a>(t: &PodTemplate<'a>) -> Option<&'a Map<String, Value>> {
    t.metadata?.get("labels")?.as_object()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Vec<PostureFinding> {
        let o = KubeObject::from_value(v, None).unwrap();
        check_workload(&o, &PostureConfig::default(), None)
    }

    fn ids(f: &[PostureFinding]) -> Vec<&str> {
        f.iter().map(|f| f.check_id.as_ref()).collect()
    }

    fn hardened() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
              "spec": {"automountServiceAccountToken": false,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
                  "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"},
                  "appArmorProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "web", "image": "registry.example.com/shop/web:1.4.2",
                  "ports": [{"containerPort": 8080}],
                  "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                  "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                  "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                  "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]}}}]}}}})
    }

    #[test]
    fn hardened_deployment_is_clean() {
        let f = run(hardened());
        assert!(f.is_empty(), "{:?}", ids(&f));
    }

    #[test]
    fn privilege_escalation_implied_by_privileged_and_sys_admin() {
        let mut d = hardened();
        d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
            json!(["CAP_SYS_ADMIN"]);
        let f = run(d);
        let pe = f
            .iter()
            .find(|f| f.check_id == "container.privilege-escalation")
            .unwrap();
        assert!(pe.message.contains("CAP_SYS_ADMIN"));
        assert_eq!(pe.resource.container.as_deref(), Some("web"));
        assert!(ids(&f).contains(&"container.cap-sys-admin"));
    }

    #[test]
    fn image_helpers() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx");
        assert_eq!(
            normalize_image("bitnami/redis:7"),
            "docker.io/bitnami/redis:7"
        );
        assert_eq!(normalize_image("ghcr.io/a/b"), "ghcr.io/a/b");
        assert_eq!(normalize_image("localhost:5000/a"), "localhost:5000/a");
        let allowed = vec!["ghcr.io/acme".to_string(), "docker.io/library/".to_string()];
        assert!(image_is_trusted("ghcr.io/acme/api:1", &allowed));
        assert!(!image_is_trusted("ghcr.io/acme-evil/api:1", &allowed));
        assert!(image_is_trusted("nginx:1.27", &allowed));
        assert!(!image_is_trusted("bitnami/redis", &allowed));
        assert_eq!(image_tag_problem("nginx@sha256:abc"), None);
        assert_eq!(image_tag_problem("nginx:1.27"), None);
        assert!(image_tag_problem("nginx").is_some());
        assert!(image_tag_problem("localhost:5000/app").is_some());
        assert!(image_tag_problem("repo/app:latest").is_some());
    }

    #[test]
    fn capability_names() {
        assert!(cap_eq("CAP_SYS_ADMIN", "sys_admin"));
        assert!(!cap_eq("CAP_SYS_ADMIN", "NET_ADMIN"));
        // Multi-byte text never panics.
        assert_eq!(cap_name("cap\u{e9}x"), "cap\u{e9}x");
        assert_eq!(cap_name("\u{e9}\u{e9}\u{e9}"), "\u{e9}\u{e9}\u{e9}");
    }

    #[test]
    fn apparmor_profile_patterns() {
        let local = AppArmorProfile("localhost/", "k8s-nginx");
        assert!(local.matches("localhost/*"));
        assert!(local.matches("localhost/k8s-nginx"));
        assert!(local.matches("localhost/k8s-*"));
        assert!(!local.matches("localhost/other"));
        assert!(!local.matches("runtime/default"));
        assert!(local.matches("*"));
        let field = json!({"type": "RuntimeDefault"});
        let rd = AppArmorProfile::of_field(&field);
        assert!(rd.matches("runtime/default") && !rd.matches("localhost/*"));
        assert!(AppArmorProfile::of_field(&json!({"type": "Unconfined"})).is("unconfined"));
        assert!(AppArmorProfile("unconfined", "").is("unconfined"));
    }

    #[test]
    fn paths_and_names() {
        assert!(path_has_prefix("/var/log/pods", "/var/log"));
        assert!(!path_has_prefix("/var/logs", "/var/log"));
        assert!(path_has_prefix("/etc", "/"));
        assert_eq!(normalize_path("/var/run/"), "/var/run");
        assert_eq!(normalize_path("/"), "/");
        assert!(secret_like_name("DB_PASSWORD"));
        assert!(secret_like_name("github_token"));
        assert!(!secret_like_name("DB_PASSWORD_FILE"));
        assert!(!secret_like_name("LOG_LEVEL"));
        assert!(literal_secret_value("hunter22"));
        assert!(!literal_secret_value("$(DB_PASS)"));
        assert!(!literal_secret_value("3600"));
    }
}
