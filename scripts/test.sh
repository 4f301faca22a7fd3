#!/usr/bin/env bash
# Palisade's test command: everything CI runs, on a fresh Debian 12 machine or a developer's box.
#
#   scripts/test.sh            install what is missing (apt), start local registries, build and push
#                              the fixture images (cached), then cargo test / fmt / clippy / fuzz smoke
#
# Environment:
#   PALISADE_INFRA       state dir outside the clone (registries, image cache, tools); default /var/tmp/palisade-infra
#   CARGO_TARGET_DIR     default /var/tmp/palisade-target (kept between runs: incremental builds)
#   PALISADE_SHARED      the shared data dir; default ../shared beside the clone
#   PALISADE_NO_APT=1    never call apt-get (fail instead if something is missing)
#   PALISADE_SKIP_FUZZ=1 skip the fuzz smoke runs
#   PALISADE_SKIP_KUBE=1 skip the real kube-apiserver (its live-cluster tests then say SKIP; the audit
#                        webhook test detect_e2e starts its own etcd + kube-apiserver from the cached binary)
#   PALISADE_REGISTRY_PORT / PALISADE_REGISTRY_AUTH_PORT   default 5000 / 5001
#   PALISADE_KUBE_PORT / PALISADE_ETCD_PORT                 default 6443 / 2379
# Never prompts; exits non-zero on the first failure; stops the registries it started on exit.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ -d "$HOME/.cargo/bin" ] && export PATH=$HOME/.cargo/bin:$PATH
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
INFRA=${PALISADE_INFRA:-/var/tmp/palisade-infra}
export PALISADE_INFRA=$INFRA
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/palisade-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
mkdir -p "$INFRA" "$CARGO_TARGET_DIR"
T0=$(date +%s)
TIMINGS=()
SECTION=""
SECTION_T=0

section() {
  end_section
  SECTION=$1
  SECTION_T=$(date +%s)
  printf '\n==== %s ====\n' "$1"
}
end_section() {
  if [ -n "$SECTION" ]; then
    local d=$(( $(date +%s) - SECTION_T ))
    TIMINGS+=("$(printf '%5ss  %s' "$d" "$SECTION")")
    printf -- '---- %s: %ss\n' "$SECTION" "$d"
    SECTION=""
  fi
}
summary() {
  local rc=$1
  end_section
  printf '\n==== timings ====\n'
  for t in "${TIMINGS[@]}"; do echo "$t"; done
  printf '%5ss  total\n' "$(( $(date +%s) - T0 ))"
  if [ "$rc" = 0 ]; then echo "ALL PASSED"; else echo "FAILED (exit $rc) in: ${FAILED_IN:-?}"; fi
}
STARTED_REGISTRY=0
STARTED_KUBE=0
cleanup() {
  local rc=$?
  FAILED_IN=${FAILED_IN:-$SECTION}
  if [ "$STARTED_REGISTRY" = 1 ]; then
    scripts/infra/registry.sh stop || true
  fi
  if [ "$STARTED_KUBE" = 1 ]; then
    scripts/infra/kube-apiserver.sh stop || true
  fi
  summary "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------------ deps
section "dependencies (apt, only what is missing)"
APT_PKGS=(docker-registry apache2-utils umoci skopeo debootstrap rpm db5.3-util zstd python3 python3-pip
          golang-go curl ca-certificates python3-apt python3-venv python3-packaging ruby dpkg-dev
          php-cli php-composer-semver etcd-server golang-github-modern-go-reflect2-dev rsync jq make openssl
          clang llvm libelf-dev zlib1g-dev pkg-config)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]}"
  if [ "${PALISADE_NO_APT:-0}" = 1 ]; then echo "PALISADE_NO_APT=1: not installing" >&2; exit 1; fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian's package starts a system registry on :5000 where systemd runs; the tests start their
  # own (loopback, known config), so stop the one this install just started.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null \
     && systemctl is-active --quiet docker-registry 2>/dev/null; then
    echo "stopping and disabling the docker-registry system service apt just started (port 5000)"
    $SUDO systemctl disable --now docker-registry || true
  fi
else
  echo "all present: ${APT_PKGS[*]}"
fi
# Oracles and validators the tests compare against: npm's semver (version ordering), the PyPI
# packages cvss (CVSS scores), cyclonedx-python-lib and spdx-tools (SBOM schema validation).
if command -v npm >/dev/null; then
  [ -d "$(npm root -g)/semver" ] || npm install -g --no-audit --no-fund semver >/dev/null
else
  echo "npm not found: the semver oracle test will say SKIP" >&2
fi
if [ ! -x "$INFRA/venv/bin/python" ] || ! "$INFRA/venv/bin/python" -c 'import cvss, cyclonedx, spdx_tools' 2>/dev/null; then
  python3 -m venv "$INFRA/venv"
  "$INFRA/venv/bin/pip" install -q --disable-pip-version-check "cvss>=3,<4" "cyclonedx-python-lib[json-validation]" spdx-tools
fi
export PATH=$INFRA/venv/bin:$PATH
export PALISADE_SBOM_PYTHON=$INFRA/venv/bin/python PALISADE_REQUIRE_SBOM_VALIDATORS=1
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup, stable >= 1.95)" >&2; exit 1; }
cargo --version

# ------------------------------------------------------------------------------------ shared data
if [ -z "${PALISADE_SHARED:-}" ]; then
  PALISADE_SHARED=$(cd "$ROOT/.." && pwd)/shared
fi
if [ ! -d "$PALISADE_SHARED/data/advisories" ]; then
  echo "advisory test data not found at $PALISADE_SHARED/data/advisories (set PALISADE_SHARED)" >&2
  exit 1
fi
export PALISADE_SHARED=$(cd "$PALISADE_SHARED" && pwd)
echo "PALISADE_SHARED=$PALISADE_SHARED"

# ----------------------------------------------------------------------------------- registries
section "local registries (docker-registry on 127.0.0.1)"
scripts/infra/registry.sh start
STARTED_REGISTRY=1
export PALISADE_TEST_REGISTRY=127.0.0.1:${PALISADE_REGISTRY_PORT:-5000}
export PALISADE_TEST_REGISTRY_AUTH=127.0.0.1:${PALISADE_REGISTRY_AUTH_PORT:-5001}

# ------------------------------------------------------------------------------- fixture images
section "fixture images (cached by a hash of their build inputs)"
# Only what decides the images' contents: editing the test or registry scripts keeps the cache.
HASH=$(cd scripts/infra && find build-images.sh mkoci.py set-dpkg-versions.py npm-packages.txt fixture-src \
         -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
FIX=$INFRA/images/$HASH
if [ -f "$FIX/.complete" ]; then
  echo "cached: $FIX"
else
  echo "building into $FIX (first run on this machine or scripts changed; ~3 min)"
  rm -rf "$INFRA"/images/*.tmp   # left by an interrupted build
  scripts/infra/build-images.sh "$FIX.tmp"
  rm -rf "$FIX"
  mv "$FIX.tmp" "$FIX"
  touch "$FIX/.complete"
  # Keep only the newest two builds.
  ls -1dt "$INFRA"/images/*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf
fi
export PALISADE_TEST_FIXTURES=$FIX
scripts/infra/push-images.sh "$FIX"

# ------------------------------------------------------------------------------ kube-apiserver
if [ "${PALISADE_SKIP_KUBE:-0}" = 1 ]; then
  echo "PALISADE_SKIP_KUBE=1: no kube-apiserver; live-cluster tests will say SKIP"
else
  section "kube-apiserver (real v1.20 from Debian's source package; binary cached in \$PALISADE_INFRA/bin)"
  if [ ! -x "$INFRA/bin/kube-apiserver" ]; then
    echo "building kube-apiserver once on this machine (~10 min on 2 cores)"
  fi
  scripts/infra/kube-apiserver.sh build
  scripts/infra/kube-apiserver.sh start
  STARTED_KUBE=1
  export PALISADE_KUBECONFIG=$INFRA/kubeconfig PALISADE_REQUIRE_KUBE=1
fi

# ------------------------------------------------------------------------------------ disk space
# A long-lived target directory grows with every edit; below 15 GB free, drop its stale copies.
section "disk space (prune stale build artefacts when below 15 GB free)"
python3 scripts/infra/prune-target.py 15 5 "$CARGO_TARGET_DIR" \
  "${PALISADE_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR}-fuzz}"

# ------------------------------------------------------------------------------ shared target dir
# Test binaries keep the checkout's path (env!("CARGO_MANIFEST_DIR")) and cargo judges freshness by
# mtimes, so a target directory last built from another checkout of the same commits can hand this
# one binaries that read fixtures from the other checkout. When the checkout changes, mark the
# workspace's own sources as changed (third-party crates are reused).
claim_target_dir() {
  local stamp="$1/.palisade-checkout"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$ROOT" ]; then
    echo "$1 was last built from $(cat "$stamp" 2>/dev/null || echo 'an unknown checkout'): rebuilding the workspace crates"
    find "$ROOT/crates" "$ROOT/fuzz" -type f \( -name '*.rs' -o -name 'Cargo.toml' \) -exec touch {} +
    mkdir -p "$1" && echo "$ROOT" >"$stamp"
  fi
}
claim_target_dir "$CARGO_TARGET_DIR"
claim_target_dir "${PALISADE_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR}-fuzz}"

# ------------------------------------------------------------------------------------ cargo test
section "cargo test --workspace"
echo "PALISADE_TEST_REGISTRY=$PALISADE_TEST_REGISTRY PALISADE_TEST_REGISTRY_AUTH=$PALISADE_TEST_REGISTRY_AUTH"
echo "PALISADE_TEST_FIXTURES=$PALISADE_TEST_FIXTURES CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
cargo test --workspace --locked --no-fail-fast

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --------------------------------------------------------------------------------------- fuzzing
if [ "${PALISADE_SKIP_FUZZ:-0}" = 1 ]; then
  echo "PALISADE_SKIP_FUZZ=1: fuzz smoke runs skipped"
else
  section "fuzz smoke runs (cargo fuzz, -s none, 2000 runs each)"
  if ! command -v cargo-fuzz >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz from crates.io"
    cargo install --locked cargo-fuzz
  fi
  export PATH=$HOME/.cargo/bin:$PATH
  FUZZ_TARGET_DIR=${PALISADE_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR}-fuzz}
  (
    export CARGO_TARGET_DIR=$FUZZ_TARGET_DIR
    mapfile -t targets < <(cargo fuzz list)
    echo "targets: ${targets[*]}"
    cargo fuzz build -s none --dev
    for t in "${targets[@]}"; do
      start=$(date +%s)
      cargo fuzz run --dev -s none "$t" -- -runs=2000 -max_total_time=20 > "$INFRA/fuzz-$t.log" 2>&1 \
        || { tail -40 "$INFRA/fuzz-$t.log"; echo "fuzz target $t failed" >&2; exit 1; }
      printf '  %-24s ok (%ss)\n' "$t" "$(( $(date +%s) - start ))"
    done
  )
fi
end_section
