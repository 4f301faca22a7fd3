# Palisade bundle library: the pod spec inside every workload kind, its containers, and the
# helpers every Palisade template shares. Rego v0 (as Gatekeeper evaluates templates).
package lib.palisade.pods

import future.keywords.in

# The object under review. Deletions are never denied: Gatekeeper hands the deleted object to
# templates as `object` too, and removing a non-compliant workload must stay possible.
review_object := o {
  not input.review.operation == "DELETE"
  o := input.review.object
}

kind := review_object.kind

# The kinds whose pod template sits at spec.template.
template_kinds := {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}

# The pod spec (undefined for kinds without one, so every rule using it is too). One rule per
# layout, without else: these run for every constraint of every request.
spec := s {
  review_object.kind == "Pod"
  s := review_object.spec
  is_object(s)
}

spec := s {
  template_kinds[review_object.kind]
  s := review_object.spec.template.spec
  is_object(s)
}

spec := s {
  review_object.kind == "CronJob"
  s := review_object.spec.jobTemplate.spec.template.spec
  is_object(s)
}

spec := s {
  review_object.kind == "PodTemplate"
  s := review_object.template.spec
  is_object(s)
}

# Where the pod's metadata sits (for the `field` of violation details).
metadata_path := "metadata" {
  kind == "Pod"
} else := "spec.template.metadata" {
  template_kinds[kind]
} else := "spec.jobTemplate.spec.template.metadata" {
  kind == "CronJob"
} else := "template.metadata" {
  kind == "PodTemplate"
}

# `spec.template.spec` and friends.
spec_path := "spec" {
  kind == "Pod"
} else := concat("", [trim_suffix(metadata_path, "metadata"), "spec"])

# The pod's metadata: the object's own for a Pod, the template's otherwise.
pod_metadata := m {
  kind == "Pod"
  m := review_object.metadata
  is_object(m)
} else := m {
  template_kinds[kind]
  m := review_object.spec.template.metadata
  is_object(m)
} else := m {
  kind == "CronJob"
  m := review_object.spec.jobTemplate.spec.template.metadata
  is_object(m)
} else := m {
  kind == "PodTemplate"
  m := review_object.template.metadata
  is_object(m)
} else := {}

annotations := a {
  a := pod_metadata.annotations
  is_object(a)
} else := {}

# Namespace and name as written, else as the AdmissionRequest gives them; generateName when
# the name is still empty (Pods of a ReplicaSet at admission).
namespace := ns {
  ns := review_object.metadata.namespace
  is_string(ns)
  ns != ""
} else := ns {
  ns := input.review.namespace
  is_string(ns)
  ns != ""
} else := ""

name := n {
  n := review_object.metadata.name
  is_string(n)
  n != ""
} else := n {
  n := review_object.metadata.generateName
  is_string(n)
  n != ""
} else := n {
  n := input.review.name
  is_string(n)
} else := ""

# `Deployment shop/web` (`ClusterRole x` without a namespace), as posture findings name objects.
what := sprintf("%s %s/%s", [review_object.kind, namespace, name]) {
  namespace != ""
} else := sprintf("%s %s", [review_object.kind, name])

# Windows pods: Linux-only controls (capabilities, privilege escalation, seccomp, AppArmor) skip them.
windows {
  spec.os.name == "windows"
}

# Every container of the pod: init, regular and ephemeral, with its list and index (its path in
# the object is `container_path(c)`, built only for violations).
containers[c] {
  xs := spec.initContainers
  is_array(xs)
  some i, x in xs
  is_object(x)
  c := {"list": "initContainers", "index": i, "name": object.get(x, "name", ""), "spec": x}
}

containers[c] {
  xs := spec.containers
  is_array(xs)
  some i, x in xs
  is_object(x)
  c := {"list": "containers", "index": i, "name": object.get(x, "name", ""), "spec": x}
}

containers[c] {
  xs := spec.ephemeralContainers
  is_array(xs)
  some i, x in xs
  is_object(x)
  c := {"list": "ephemeralContainers", "index": i, "name": object.get(x, "name", ""), "spec": x}
}

# `spec.template.spec.containers[0]`
container_path(c) := concat("", [spec_path, ".", c.list, "[", format_int(c.index, 10), "]"])

string_or(v, d) := v {
  is_string(v)
} else := d

# A field of a container's securityContext.
security(c, field) := v {
  v := c.spec.securityContext[field]
}

# A securityContext field as it applies to a container: its own non-null value, else the pod's.
effective(c, field) := v {
  v := c.spec.securityContext[field]
  v != null
} else := v {
  v := spec.securityContext[field]
  v != null
}

# The path of the value `effective` returned (the container's path when neither level sets it).
effective_path(c, field) := p {
  c.spec.securityContext[field] != null
  p := sprintf("%s.securityContext.%s", [container_path(c), field])
} else := p {
  spec.securityContext[field] != null
  p := sprintf("%s.securityContext.%s", [spec_path, field])
} else := sprintf("%s.securityContext.%s", [container_path(c), field])

is_true(v) {
  v == true
}

# Values as posture prints them: strings bare, everything else as JSON.
text(v) := v {
  is_string(v)
} else := json.marshal(v)

# The parameters, or posture's default when a parameter is not set.
param(key, default_value) := object.get(object.get(input, "parameters", {}), key, default_value)

# What every violation carries in `details`.
details(check_id, container, field) := {"checkId": check_id, "container": container, "field": field}

# A whole-number id (user, group), as posture reads them.
is_id(v) {
  is_number(v)
  floor(v) == v
}

# Whether an id is within one of `ranges` ([{min, max}]).
in_ranges(id, ranges) {
  some r in ranges
  r.min <= id
  id <= r.max
}

# `CAP_SYS_ADMIN`, `sys_admin` and `SYS_ADMIN` name the same capability.
cap_name(s) := upper(substring(s, 4, -1)) {
  count(s) > 4
  lower(substring(s, 0, 4)) == "cap_"
} else := upper(s)

cap_eq(a, b) {
  cap_name(a) == cap_name(b)
}

# obj[key] when it is an array, else [] (posture reads malformed lists as empty).
list(obj, key) := v {
  v := obj[key]
  is_array(v)
} else := []

# The capabilities a container adds and drops (strings only).
added_caps(c) := [a | some a in list(c.spec.securityContext.capabilities, "add"); is_string(a)] {
  is_object(c.spec.securityContext.capabilities)
} else := []

dropped_caps(c) := [a | some a in list(c.spec.securityContext.capabilities, "drop"); is_string(a)] {
  is_object(c.spec.securityContext.capabilities)
} else := []

# SYS_ADMIN itself, or ALL.
grants_sys_admin(a) {
  cap_eq(a, "SYS_ADMIN")
}

grants_sys_admin(a) {
  upper(a) == "ALL"
}

adds_sys_admin(c) {
  some a in added_caps(c)
  grants_sys_admin(a)
}

# The pod's service account (`default` when unset, as the API server fills it in).
service_account := sa {
  raw := object.get(spec, "serviceAccountName", object.get(spec, "serviceAccount", ""))
  is_string(raw)
  raw != ""
  sa := raw
} else := "default"

# `/var/run/` is `/var/run`; `/` stays `/`.
normalize_path(p) := "/" {
  trim_right(p, "/") == ""
  startswith(p, "/")
} else := trim_right(p, "/")

# Prefix on whole path components: `/var/log` is a prefix of `/var/log/pods`, not of `/var/logs`.
path_has_prefix(path, prefix) {
  prefix == "/"
  startswith(path, "/")
}

path_has_prefix(path, prefix) {
  prefix != "/"
  path == prefix
}

path_has_prefix(path, prefix) {
  prefix != "/"
  startswith(path, prefix)
  substring(path, count(prefix), 1) == "/"
}
