#!/usr/bin/env python3
"""Regenerates bundle/<check-id>/template.yaml for every check (or the ids given as arguments).

The check's own Rego is the part of its template's `rego` after the `check_id := ...` line (write
a new check's template.yaml by hand with the header `package <name>` / imports / `check_id := "<id>"`,
then run this). Everything else comes from elsewhere, so the bundle has one source of truth:
  - title, severity, remediation, controls and parameter names from posture's check tables
    (crates/palisade-posture/src/{workload,exposure}.rs);
  - the shared libraries from bundle/lib/*.rego (copied into `libs`, as Gatekeeper requires);
  - the parameter schemas below, which follow posture's `Parameters` (config.rs).
Needs PyYAML. `cargo test -p palisade-policy` checks the result (bundle.rs tests, suites, parity).
"""
import os, re, sys, yaml

BUNDLE = os.path.dirname(os.path.abspath(__file__))
POSTURE = os.path.join(BUNDLE, "..", "..", "palisade-posture", "src")


def load_posture_checks():
    out = {}
    for f in ["workload.rs", "exposure.rs"]:
        s = open(os.path.join(POSTURE, f)).read()
        for m in re.finditer(r'check!\(\s*(\w+),\s*"([^"]+)",\s*"((?:[^"\\]|\\.)*)",\s*(\w+),\s*"((?:[^"\\]|\\.)*)",\s*\[(.*?)\],\s*\[(.*?)\]\s*\);', s, re.S):
            _, cid, title, sev, rem, controls, params = m.groups()
            out[cid] = dict(title=title, severity=sev.lower(), remediation=rem,
                            controls=re.findall(r'"([^"]+)"', controls), parameters=re.findall(r'"([^"]+)"', params))
    return out


META = load_posture_checks()

WORKLOAD_MATCH = [
    {"apiGroups": [""], "kinds": ["Pod", "ReplicationController", "PodTemplate"]},
    {"apiGroups": ["apps"], "kinds": ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"]},
    {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]},
]
SERVICE_MATCH = [{"apiGroups": [""], "kinds": ["Service"]}]
INGRESS_MATCH = [{"apiGroups": ["networking.k8s.io", "extensions"], "kinds": ["Ingress"]}]

STRINGS = {"type": "array", "items": {"type": "string"}}
PORTS = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 65535}}
RANGE = {"type": "object", "required": ["min", "max"], "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}
IDRULE = lambda d: {"type": "object", "description": d, "required": ["rule"], "properties": {
    "rule": {"type": "string", "enum": ["MustRunAs", "MayRunAs", "MustRunAsNonRoot", "RunAsAny"]},
    "ranges": {"type": "array", "items": RANGE}}}
QUANTITY = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?\s*$"
SCHEMAS = {
    "allowedRegistries": dict(STRINGS, description="Registries or registry/path prefixes images may come from (`registry.example.com/team/`); Docker Hub images are `docker.io/...`. Empty: the check is off."),
    "allowedCapabilities": dict(STRINGS, description="Capabilities containers may add (without CAP_). Default: the Pod Security Standards baseline list."),
    "requiredDropCapabilities": dict(STRINGS, description="Capabilities every container must drop. Default: [ALL]."),
    "allowedAppArmorProfiles": dict(STRINGS, description="AppArmor profiles containers may use: runtime/default, localhost/<name> (localhost/* for any local profile), unconfined. Default: runtime/default, localhost/*."),
    "allowedHostPaths": {"type": "array", "description": "hostPath prefixes pods may mount, on whole path components; with readOnly every mount of the volume must be read-only. Default: none.",
        "items": {"type": "object", "required": ["pathPrefix"], "properties": {"pathPrefix": {"type": "string"}, "readOnly": {"type": "boolean"}}}},
    "hostPortRange": {"type": "object", "description": "Host ports containers may bind (inclusive). Default: none.", "required": ["min", "max"],
        "properties": {"min": {"type": "integer", "minimum": 0, "maximum": 65535}, "max": {"type": "integer", "minimum": 0, "maximum": 65535}}},
    "allowedServicePorts": dict(PORTS, description="Ports Services may listen on and containers may declare. Empty: any port."),
    "deniedServicePorts": dict(PORTS, description="Ports that must not be reachable through a LoadBalancer, NodePort or external-IP Service. Default: SSH, telnet, Docker API, etcd, MySQL, PostgreSQL, Redis, Elasticsearch, kubelet, memcached and MongoDB ports."),
    "maxCpu": {"type": "string", "pattern": QUANTITY, "description": "Largest CPU limit, as a Kubernetes quantity (500m, 2). Default: none (only the presence of a limit is checked)."},
    "maxMemory": {"type": "string", "pattern": QUANTITY, "description": "Largest memory limit, as a Kubernetes quantity (512Mi, 2G). Default: none."},
    "runAsUser": IDRULE("User ids containers may run as. Default: rule MustRunAsNonRoot."),
    "runAsGroup": IDRULE("Primary group ids. Default: MustRunAs 1-65535 (MustRunAs needs at least one range)."),
    "supplementalGroups": IDRULE("Supplemental group ids. Default: MayRunAs 1-65535."),
    "fsGroup": IDRULE("fsGroup ids. Default: MayRunAs 1-65535."),
}

GATE_META = {
    "title": "Image has vulnerabilities at or above the gate's severity, or a denied CVE",
    "severity": "high",
    "remediation": "Rebuild the image on a patched base or upgrade the vulnerable packages to their fixed versions, rescan it (palisade scan image --format json into the results directory), or add a time-bound exemption with a reason.",
    "controls": ["Defender: gated deployment of vulnerable container images"],
    "parameters": ["minSeverity", "deniedCves", "exemptions", "unscannedImages"],
}
SCHEMAS.update({
    "minSeverity": {"type": "string", "enum": ["critical", "high", "medium", "low", "informational", "unknown"],
        "description": "Findings at or above this severity gate the image. Default: critical."},
    "deniedCves": dict(STRINGS, description="Vulnerability ids (CVE or alias) that gate an image whatever their severity."),
    "exemptions": {"type": "array", "description": "Time-bound exemptions: an image (exact, or a prefix ending in *) and/or a vulnerability id, until expires (RFC 3339), with a reason. Expired exemptions no longer apply.",
        "items": {"type": "object", "required": ["expires", "reason"], "properties": {
            "image": {"type": "string"}, "cve": {"type": "string"},
            "expires": {"type": "string"}, "reason": {"type": "string"}}}},
    "unscannedImages": {"type": "string", "enum": ["allow", "deny"],
        "description": "What to do with an image without a scan result (or when the results are unavailable). Default: allow."},
})

def kind_of(cid):
    if cid == "image.vulnerabilities": return "PalisadeVulnerabilityGate"
    return "Palisade" + "".join(p[:1].upper() + p[1:] for p in re.split(r"[.\-]", cid))

def match_of(cid):
    if cid.startswith("service."): return SERVICE_MATCH
    if cid.startswith("ingress."): return INGRESS_MATCH
    return WORKLOAD_MATCH

class Lit(str): pass
def lit_repr(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
yaml.add_representer(Lit, lit_repr)

def libs_for(body):
    libs = ["pods"]
    if "profiles." in body: libs.append("profiles")
    if "quantity." in body: libs.append("quantity")
    return libs

def check_rego(cid):
    """The check's own Rego: its template's rego after the `check_id := ...` line."""
    current = yaml.safe_load(open(f"{BUNDLE}/{cid}/template.yaml"))
    rego = current["spec"]["targets"][0]["rego"]
    marker = f'check_id := "{cid}"\n'
    if marker not in rego:
        sys.exit(f"{cid}: template rego has no line {marker.strip()!r}")
    return rego.split(marker, 1)[1].lstrip("\n")


def template(cid, body=None):
    if body is None:
        body = check_rego(cid)
    kind = kind_of(cid)
    name = kind.lower()
    libs = libs_for(body)
    imports = "".join(f"import data.lib.palisade.{l}\n" for l in libs)
    rego = f"package {name}\n\n{imports}import future.keywords.in\n\ncheck_id := \"{cid}\"\n\n{body}"
    m = GATE_META if cid == "image.vulnerabilities" else META[cid]
    props = {p: SCHEMAS[p] for p in m["parameters"]}
    schema = {"type": "object", "properties": props} if props else {"type": "object"}
    if cid == "image.vulnerabilities":
        desc = m["title"] + ". Scan results come from the `palisade-vulnerabilities` external data provider (Gatekeeper external data): the `palisade scan image --format json` reports of a directory, by image reference and digest. "
    else: desc = m["title"] + ". " + ("Controls: " + "; ".join(m["controls"]) + ". " if m["controls"] else "") + \
        f"Same check, parameters and defaults as `palisade scan` ({cid})."
    t = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": name, "annotations": {
            "palisade.io/check-id": cid,
            "palisade.io/severity": m["severity"],
            "palisade.io/remediation": m["remediation"],
            "metadata.gatekeeper.sh/title": m["title"],
            "metadata.gatekeeper.sh/version": "1.0.0",
            "description": desc,
        }},
        "spec": {
            "crd": {"spec": {"names": {"kind": kind}, "validation": {"openAPIV3Schema": schema}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": Lit(rego),
                         "libs": [Lit(open(f"{BUNDLE}/lib/{l}.rego").read()) for l in libs]}],
        },
    }
    return t

def write_template(cid):
    d = f"{BUNDLE}/{cid}"
    os.makedirs(d, exist_ok=True)
    text = template(cid)
    with open(f"{d}/template.yaml", "w") as f:
        f.write(f"# Palisade bundle: {cid}. Written by bundle/generate.py from the check's Rego, bundle/lib\n# and posture's check table; the libs must stay identical to bundle/lib (bundle.rs tests).\n")
        yaml.dump(text, f, sort_keys=False, width=120, allow_unicode=True)

if __name__ == "__main__":
    ids = sys.argv[1:] or sorted(d for d in os.listdir(BUNDLE) if os.path.exists(f"{BUNDLE}/{d}/template.yaml"))
    for cid in ids:
        write_template(cid)
    print(len(ids), "templates")
