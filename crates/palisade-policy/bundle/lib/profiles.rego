# Palisade bundle library: the AppArmor and seccomp profile a container runs with, from the
# securityContext fields or the legacy annotations, in the order the kubelet applies them.
package lib.palisade.profiles

import data.lib.palisade.pods
import future.keywords.in

apparmor_annotation := "container.apparmor.security.beta.kubernetes.io/"

seccomp_container_annotation := "container.seccomp.security.alpha.kubernetes.io/"

seccomp_pod_annotation := "seccomp.security.alpha.kubernetes.io/pod"

# An appArmorProfile field in the annotation form: runtime/default, localhost/<name>, unconfined.
apparmor_field_name(f) := "runtime/default" {
  f.type == "RuntimeDefault"
} else := "unconfined" {
  f.type == "Unconfined"
} else := concat("", ["localhost/", pods.string_or(object.get(f, "localhostProfile", ""), "")]) {
  f.type == "Localhost"
} else := t {
  t := f.type
  is_string(t)
} else := ""

# {"profile", "field", "value"}: the container's field wins, then its annotation, then the pod's
# field; undefined when none is set.
apparmor(c) := r {
  f := c.spec.securityContext.appArmorProfile
  f != null
  r := {"profile": apparmor_field_name(f), "field": sprintf("%s.securityContext.appArmorProfile", [pods.container_path(c)]), "value": f}
} else := r {
  key := concat("", [apparmor_annotation, c.name])
  v := pods.annotations[key]
  is_string(v)
  r := {"profile": v, "field": sprintf("%s.annotations[%s]", [pods.metadata_path, key]), "value": v}
} else := r {
  f := pods.spec.securityContext.appArmorProfile
  f != null
  r := {"profile": apparmor_field_name(f), "field": sprintf("%s.securityContext.appArmorProfile", [pods.spec_path]), "value": f}
}

# Whether a pattern of allowedAppArmorProfiles (exact, or a prefix ending in `*`) allows a profile.
apparmor_matches(profile, pattern) {
  endswith(pattern, "*")
  startswith(profile, substring(pattern, 0, count(pattern) - 1))
}

apparmor_matches(profile, pattern) {
  not endswith(pattern, "*")
  profile == pattern
}

seccomp_annotation_type(v) := "RuntimeDefault" {
  v in {"runtime/default", "docker/default"}
} else := "Unconfined" {
  v == "unconfined"
} else := "Localhost" {
  startswith(v, "localhost/")
} else := v

# {"type", "field", "value"} of the seccomp profile: the field (container, then pod), then the
# legacy annotations (container, then pod); "type" is "" when nothing is set.
seccomp(c) := r {
  p := c.spec.securityContext.seccompProfile
  p != null
  r := seccomp_field(p, sprintf("%s.securityContext.seccompProfile.type", [pods.container_path(c)]))
} else := r {
  p := pods.spec.securityContext.seccompProfile
  p != null
  r := seccomp_field(p, sprintf("%s.securityContext.seccompProfile.type", [pods.spec_path]))
} else := r {
  key := concat("", [seccomp_container_annotation, c.name])
  v := pods.annotations[key]
  is_string(v)
  r := {"type": seccomp_annotation_type(v), "field": sprintf("%s.annotations[%s]", [pods.metadata_path, key]), "value": v}
} else := r {
  v := pods.annotations[seccomp_pod_annotation]
  is_string(v)
  r := {"type": seccomp_annotation_type(v), "field": sprintf("%s.annotations[%s]", [pods.metadata_path, seccomp_pod_annotation]), "value": v}
} else := {"type": "", "field": sprintf("%s.securityContext.seccompProfile", [pods.spec_path]), "value": null}

# A seccompProfile field without a string type counts as no profile (the annotations are not read).
seccomp_field(p, path) := {"type": t, "field": path, "value": t} {
  t := p.type
  is_string(t)
} else := {"type": "", "field": path, "value": null}
