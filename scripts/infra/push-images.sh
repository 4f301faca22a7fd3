#!/usr/bin/env bash
# Pushes the fixture images of a build-images.sh output dir to the local test registries with skopeo:
#   127.0.0.1:5000/fixtures/<name>  (anonymous)     every image named in images.txt; bullseye-vuln and
#                                                   alpine-3.9 also as Docker v2s2 manifests (<tag>-v2s2)
#   127.0.0.1:5001/fixtures/<name>  (ciuser/cipass) bullseye-vuln and alpine-3.9
# Idempotent: blobs already in the registry are not uploaded again.
# usage: push-images.sh FIXTURES_DIR
set -euo pipefail
FIX=${1:?usage: push-images.sh FIXTURES_DIR}
REG=127.0.0.1:${PALISADE_REGISTRY_PORT:-5000}
AUTH=127.0.0.1:${PALISADE_REGISTRY_AUTH_PORT:-5001}
L=$FIX/oci
copy() { # src dest [extra skopeo args]
  local src=$1 dst=$2; shift 2
  skopeo copy -q --retry-times 2 --dest-tls-verify=false "$@" "$src" "$dst"
}
while IFS=$'\t' read -r tag name _; do
  [ "$name" != - ] || continue
  extra=()
  if [ "$tag" = multiarch ]; then extra=(--all); fi
  copy "oci:$L:$tag" "docker://$REG/fixtures/$name" "${extra[@]}"
  echo "pushed $REG/fixtures/$name"
  case $tag in
    bullseye-vuln|alpine-3.9)
      copy "oci:$L:$tag" "docker://$REG/fixtures/$name-v2s2" --format v2s2
      echo "pushed $REG/fixtures/$name-v2s2 (Docker v2 schema 2)"
      copy "oci:$L:$tag" "docker://$AUTH/fixtures/$name" --dest-creds ciuser:cipass
      echo "pushed $AUTH/fixtures/$name (basic auth)"
      ;;
  esac
done < "$FIX/images.txt"
