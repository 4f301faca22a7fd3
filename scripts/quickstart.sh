#!/usr/bin/env bash
# Palisade quick start: build the CLI, get an advisory database, scan an image.
#
#   scripts/quickstart.sh [TARGET [palisade scan flags...]]
#
# TARGET is a registry reference (debian:11, 127.0.0.1:5000/app:1 --insecure), an OCI layout
# (oci:PATH[:tag]), a docker save tarball (docker-archive:PATH), an OCI archive (oci-archive:PATH),
# or fs:PATH for a root file system. Without a TARGET it scans this host (fs:/).
#
# Environment:
#   PALISADE_DB           where the advisory database lives (default: the user's cache directory)
#   PALISADE_ADVISORIES   space-separated advisory files/directories to import instead of
#                         downloading (offline / air-gapped use)
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

if [ $# -ge 1 ] && { [ "$1" = "-h" ] || [ "$1" = "--help" ]; }; then
    usage
    exit 0
fi
[ $# -ge 1 ] || set -- fs:/

cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found: install Rust 1.95 or newer (rustup.rs), then run this again" >&2
    exit 2
fi

# The node sensor's eBPF programs are C compiled with clang at build time, and libbpf links
# libelf and zlib: install those build tools when they are missing (Debian/Ubuntu).
build_pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config)
missing=()
for p in "${build_pkgs[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "${PALISADE_NO_APT:-0}" != 1 ]; then
        echo "==> installing build tools: ${missing[*]}" >&2
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
        $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "error: missing build tools: ${missing[*]} (install them, then run this again)" >&2
        exit 2
    fi
fi

echo "==> building palisade (release)" >&2
cargo build --release --locked -p palisade
bin="${CARGO_TARGET_DIR:-target}/release/palisade"

fresh_db() {
    "$bin" db status --format json 2>/dev/null | grep -q '"stale": false'
}

if [ -n "${PALISADE_ADVISORIES:-}" ]; then
    echo "==> importing advisories from \$PALISADE_ADVISORIES" >&2
    # shellcheck disable=SC2086 # a list of paths, split on purpose
    "$bin" db import $PALISADE_ADVISORIES
elif fresh_db; then
    echo "==> advisory database is less than a day old; not updating" >&2
else
    echo "==> updating the advisory database (OSV, Debian security tracker, Alpine secdb)" >&2
    shared_data="$(cd .. && pwd)/shared/data/advisories"
    if ! "$bin" db update; then
        if [ -d "$shared_data" ]; then
            echo "==> download failed (offline?); importing the advisory snapshot at $shared_data" >&2
            "$bin" db import "$shared_data"
        else
        cat >&2 <<MSG
error: could not download the advisory databases (offline?).
Build the database from local advisory files instead, for example:
    $bin db import PATH...
or run this script with PALISADE_ADVISORIES="PATH ..." set. Accepted inputs: OSV JSON/YAML
files, directories or zip archives, the Debian security tracker JSON or DSA/DLA lists, Alpine
secdb JSON.
MSG
        exit 2
        fi
    fi
fi

echo "==> scanning $1" >&2
case "$1" in
    fs:*) target=${1#fs:}; shift; exec "$bin" scan fs "$target" "$@" ;;
    *) exec "$bin" scan image "$@" ;;
esac
