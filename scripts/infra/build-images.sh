#!/usr/bin/env bash
# Builds Palisade's end-to-end test images WITHOUT Docker, from Debian packages, PyPI, npm and
# crates.io, and writes them as one OCI image layout plus docker-archive / oci-archive tarballs and
# plain root filesystems. Content is pinned, so the advisories the tests expect stay the same.
#
# usage: build-images.sh OUT_DIR       (OUT_DIR must not exist yet or be empty; written atomically
#                                      by the caller: see scripts/test.sh)
# needs: debootstrap, python3 (+pip), curl, tar, zstd, golang-go, cargo, rpm (rpmbuild), skopeo,
#        network to the Debian mirror, PyPI, registry.npmjs.org and crates.io.
#
# OUT_DIR/
#   oci/                       OCI image layout with the tags listed below
#   debian-bullseye-vuln.docker.tar   docker-archive (docker save shape) of debian-bullseye:vuln
#   debian-bullseye-vuln.oci.tar      oci-archive of debian-bullseye:vuln
#   rootfs/rpm/                rpm-based root (os-release + sqlite rpmdb) for `scan fs`
#   rootfs/alpine/             the synthetic Alpine root, also usable with `scan fs`
#   images.txt                 "layout-tag<TAB>registry-name<TAB>digest" of every image in oci/
#   bullseye-dpkg.txt, bookworm-dpkg.txt, rpm-packages.txt, go-version.txt   what was installed
# Tags in oci/ (colon-free, so `oci:PATH:TAG` is unambiguous) and the names push-images.sh uses:
#   bullseye-vuln    fixtures/debian-bullseye:vuln       3 layers: OS (lowered dpkg versions),
#                                                        language packages, whiteouts
#   bookworm-base    fixtures/debian-bookworm:base       2 layers: unmodified bookworm minbase, the
#                                                        same language packages
#   alpine-3.9       fixtures/alpine-synthetic:3.9       1 layer (gzip)
#   alpine-3.9-zstd  fixtures/alpine-synthetic:3.9-zstd  the same root, zstd-compressed layer
#   multiarch        fixtures/multiarch:1                image index: linux/amd64 + linux/arm64/v8
#   multiarch-amd64, multiarch-arm64                     its two manifests
set -euo pipefail
OUT=${1:?usage: build-images.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$OUT/work
mkdir -p "$WORK" "$OUT/logs"
MIRROR=${PALISADE_DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CARGO_TOOLS=${PALISADE_INFRA:-/var/tmp/palisade-infra}/tools
step() { printf '  [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---------------------------------------------------------------- OS roots (debootstrap minbase)
debootstrap_root() { # suite dir
  step "debootstrap --variant=minbase $1 ($MIRROR)"
  if ! debootstrap --variant=minbase "$1" "$2" "$MIRROR" > "$OUT/logs/debootstrap-$1.log" 2>&1; then
    tail -20 "$OUT/logs/debootstrap-$1.log" >&2
    return 1
  fi
  # What an image build would drop: package caches, apt lists, device nodes, logs.
  rm -rf "$2"/var/cache/apt/archives/*.deb "$2"/var/cache/apt/*.bin "$2"/var/lib/apt/lists/*_* \
         "$2"/dev/* "$2"/proc/* "$2"/sys/* "$2"/var/log/*.log "$2"/var/log/apt/*
}

# ---------------------------------------------------------------- language packages (one layer)
PY_PKGS="requests==2.19.0 urllib3==1.24.1 PyYAML==5.3 Jinja2==2.10 MarkupSafe==1.1.1 idna==2.7 chardet==3.0.4 certifi==2018.8.24"

build_rust_fixture() {
  local src=$WORK/rustapp
  rm -rf "$src"; cp -r "$HERE/fixture-src/rustapp" "$src"
  if [ ! -x "$CARGO_TOOLS/bin/cargo-auditable" ]; then
    step "cargo install cargo-auditable (crates.io) into $CARGO_TOOLS"
    CARGO_TARGET_DIR="$CARGO_TOOLS/build" cargo install --locked --quiet --root "$CARGO_TOOLS" cargo-auditable \
      > "$OUT/logs/cargo-auditable.log" 2>&1 \
      || { tail -20 "$OUT/logs/cargo-auditable.log" >&2; return 1; }
    rm -rf "$CARGO_TOOLS/build"
  fi
  step "cargo auditable build (smallvec 1.6.0, regex 1.5.4, ...)"
  (cd "$src" && PATH="$CARGO_TOOLS/bin:$PATH" CARGO_TARGET_DIR="$WORK/rust-target" \
     cargo auditable build --release --locked --quiet) > "$OUT/logs/rust-fixture.log" 2>&1 \
     || { tail -20 "$OUT/logs/rust-fixture.log" >&2; return 1; }
  # The binary must really carry the audit data (section .dep-v0).
  python3 - "$WORK/rust-target/release/palisade-rust-fixture" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
if b".dep-v0" not in data:
    sys.exit("cargo auditable produced no .dep-v0 section")
PY
}

build_go_fixture() {
  step "go build (stdlib only, $(go version | awk '{print $3}'))"
  rm -rf "$WORK/goapp"; cp -r "$HERE/fixture-src/goapp" "$WORK/goapp"
  (cd "$WORK/goapp" && GOPROXY=off GOFLAGS=-mod=mod GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" CGO_ENABLED=0 \
     go build -trimpath -buildvcs=false -o "$WORK/go-fixture" .) > "$OUT/logs/go-fixture.log" 2>&1 \
     || { cat "$OUT/logs/go-fixture.log" >&2; return 1; }
  go version "$WORK/go-fixture" | awk '{print $2}' > "$OUT/go-version.txt"
}

fetch_npm() { # dest-app-dir
  step "npm packages from registry.npmjs.org ($(wc -l < "$HERE/npm-packages.txt") pinned)"
  local app=$1 cache=$WORK/npm-cache
  mkdir -p "$app" "$cache"
  printf '{\n  "name": "palisade-fixture-app",\n  "version": "1.0.0",\n  "private": true,\n  "dependencies": {\n    "express": "4.16.0",\n    "lodash": "4.17.4",\n    "minimist": "1.2.0"\n  }\n}\n' > "$app/package.json"
  while read -r path version; do
    [ -n "$path" ] || continue
    local name=${path##*node_modules/}
    local tgz=$cache/$name-$version.tgz
    if [ ! -s "$tgz" ]; then
      curl -sSfL --retry 3 -o "$tgz.tmp" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
      mv "$tgz.tmp" "$tgz"
    fi
    mkdir -p "$app/$path"
    tar -xzf "$tgz" -C "$app/$path" --strip-components=1 --no-same-owner --warning=no-unknown-keyword
    grep -q "\"version\": *\"$version\"" "$app/$path/package.json" \
      || { echo "npm $name: package.json does not say $version" >&2; return 1; }
  done < "$HERE/npm-packages.txt"
}

lang_layer() { # dir python-x.y
  local L=$1 SP=$1/usr/local/lib/python$2/site-packages
  step "PyPI packages for python$2: $PY_PKGS"
  mkdir -p "$SP"
  python3 -m pip install -q --disable-pip-version-check --no-deps --no-compile --target "$SP" $PY_PKGS \
    > "$OUT/logs/pip-$2.log" 2>&1 || { tail -20 "$OUT/logs/pip-$2.log" >&2; return 1; }
  rm -rf "$SP/bin"
  test -f "$SP/requests-2.19.0.dist-info/METADATA"
  # setuptools >= 75 writes the normalised name (pyyaml-5.3.dist-info), older ones PyYAML-5.3
  test -f "$SP/PyYAML-5.3.dist-info/METADATA" || test -f "$SP/pyyaml-5.3.dist-info/METADATA" \
    || test -f "$SP/PyYAML-5.3-py$2.egg-info/PKG-INFO"
  mkdir -p "$L/opt"
  cp -r "$NPM_APP" "$L/opt/nodeapp"
  mkdir -p "$L/usr/local/bin" "$L/opt/rustapp"
  install -m 0755 "$WORK/rust-target/release/palisade-rust-fixture" "$L/usr/local/bin/rust-fixture"
  cp "$HERE/fixture-src/rustapp/Cargo.lock" "$HERE/fixture-src/rustapp/Cargo.toml" "$L/opt/rustapp/"
  install -m 0755 "$WORK/go-fixture" "$L/usr/local/bin/go-fixture"
}

# ---------------------------------------------------------------- synthetic Alpine root
alpine_root() { # dir arch(apk) branch-version
  local R=$1 A=$2
  mkdir -p "$R/etc" "$R/lib/apk/db"
  echo "$3" > "$R/etc/alpine-release"
  printf 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=%s\nPRETTY_NAME="Alpine Linux v3.9"\nHOME_URL="https://alpinelinux.org/"\n' "$3" > "$R/etc/os-release"
  apk_entry() { # name version license origin
    printf 'C:Q1%s=\nP:%s\nV:%s\nA:%s\nS:100000\nI:250000\nT:%s (fixture)\nU:https://alpinelinux.org\nL:%s\no:%s\nm:Palisade fixture\nt:1556000000\nc:0000000000000000000000000000000000000000\n\n' \
      "$(printf '%s' "$1-$2-$A" | sha1sum | head -c 27)" "$1" "$2" "$A" "$1" "$3" "$4"
  }
  {
    apk_entry musl 1.1.20-r4 MIT musl
    apk_entry busybox 1.29.3-r9 GPL-2.0 busybox
    apk_entry zlib 1.2.11-r1 Zlib zlib
    apk_entry libcrypto1.1 1.1.1b-r1 OpenSSL openssl
    apk_entry libssl1.1 1.1.1b-r1 OpenSSL openssl
    apk_entry apk-tools 2.10.3-r1 GPL2 apk-tools
  } > "$R/lib/apk/db/installed"
}

# ---------------------------------------------------------------- rpm root (real rpmdb, sqlite)
rpm_root() { # dir
  local R=$1 TOP=$WORK/rpmbuild
  step "rpmbuild tiny noarch packages; rpm --justdb install into a sqlite rpmdb"
  mkdir -p "$R/etc" "$TOP/SPECS"
  printf 'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n' > "$R/etc/os-release"
  echo "Rocky Linux release 9.3 (Blue Onyx)" > "$R/etc/redhat-release"
  # name epoch version release license
  local pkgs="openssl-libs 1 3.0.7 24.el9 ASL-2.0
bash 0 5.1.8 6.el9_1 GPLv3+
zlib 0 1.2.11 40.el9 zlib
curl 0 7.76.1 26.el9_3.2 MIT
glibc 0 2.34 83.el9_3.7 LGPLv2+"
  local rpms=()
  while read -r name epoch version release license; do
    local epoch_line=""
    if [ "$epoch" != 0 ]; then epoch_line="Epoch: $epoch"; fi
    cat > "$TOP/SPECS/$name.spec" <<SPEC
Name: $name
Version: $version
Release: $release
$epoch_line
Summary: Palisade test fixture standing in for $name
License: $license
BuildArch: noarch

%description
An empty package with the identity of $name, for Palisade's rpmdb reader tests.

%prep
%build
%install
mkdir -p %{buildroot}/usr/share/palisade-fixture
echo $name > %{buildroot}/usr/share/palisade-fixture/$name

%files
/usr/share/palisade-fixture/$name
SPEC
    rpmbuild --quiet -bb --define "_topdir $TOP" --define "_source_payload w9.gzdio" \
      --define "_binary_payload w9.gzdio" "$TOP/SPECS/$name.spec" > "$OUT/logs/rpmbuild-$name.log" 2>&1 \
      || { cat "$OUT/logs/rpmbuild-$name.log" >&2; return 1; }
  done <<< "$pkgs"
  mapfile -t rpms < <(find "$TOP/RPMS" -name '*.rpm' | sort)
  mkdir -p "$R/var/lib/rpm"
  rpm --root "$R" --dbpath /var/lib/rpm --define '_db_backend sqlite' --initdb
  rpm --root "$R" --dbpath /var/lib/rpm --define '_db_backend sqlite' --justdb --nodeps --noscripts -i "${rpms[@]}"
  test -f "$R/var/lib/rpm/rpmdb.sqlite"
  rpm --root "$R" --dbpath /var/lib/rpm --define '_db_backend sqlite' -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\n' | sort > "$OUT/rpm-packages.txt"
  rm -f "$R"/var/lib/rpm/*-shm "$R"/var/lib/rpm/*-wal "$R"/var/lib/rpm/.rpm.lock
}

# ================================================================= build
L=$OUT/oci
NPM_APP=$WORK/nodeapp
fetch_npm "$NPM_APP"
build_rust_fixture
build_go_fixture

# --- debian-bullseye:vuln
B=$WORK/bullseye
debootstrap_root bullseye "$B/os"
step "lower dpkg versions below DSA fixes (openssl, zlib, gzip, xz-utils, dpkg, krb5, util-linux)"
python3 "$HERE/set-dpkg-versions.py" "$B/os/var/lib/dpkg/status" \
  libssl1.1=1.1.1k-1+deb11u1 \
  zlib1g=1:1.2.11.dfsg-2+deb11u1 \
  gzip=1.10-4 \
  liblzma5=5.2.5-2 \
  dpkg=1.20.9 \
  libgssapi-krb5-2=1.18.3-6+deb11u1 libk5crypto3=1.18.3-6+deb11u1 libkrb5-3=1.18.3-6+deb11u1 libkrb5support0=1.18.3-6+deb11u1 \
  bsdutils=1:2.36.1-8,2.36.1-8 libblkid1=2.36.1-8 libmount1=2.36.1-8 libsmartcols1=2.36.1-8 libuuid1=2.36.1-8 mount=2.36.1-8 util-linux=2.36.1-8
dpkg-query --admindir="$B/os/var/lib/dpkg" -W -f '${Package} ${Version} ${source:Package} ${source:Version}\n' | sort > "$OUT/bullseye-dpkg.txt"
mkdir -p "$B/lang"
lang_layer "$B/lang" 3.9
# Packages that the third layer deletes again: a scanner must not report them.
SP9=usr/local/lib/python3.9/site-packages
python3 -m pip install -q --disable-pip-version-check --no-deps --no-compile --target "$B/lang/$SP9" six==1.11.0 > "$OUT/logs/pip-six.log" 2>&1
mkdir -p "$B/lang/opt/oldapp/node_modules/left-pad"
printf '{\n  "name": "left-pad",\n  "version": "1.1.3",\n  "main": "index.js"\n}\n' > "$B/lang/opt/oldapp/node_modules/left-pad/package.json"
mkdir -p "$B/whiteout/$SP9" "$B/whiteout/opt/oldapp" "$B/whiteout/etc"
: > "$B/whiteout/$SP9/.wh.six-1.11.0.dist-info"
: > "$B/whiteout/$SP9/.wh.six.py"
: > "$B/whiteout/opt/oldapp/.wh..wh..opq"
echo "the old app was removed in this layer" > "$B/whiteout/opt/oldapp/README"
echo "palisade e2e fixture: debian-bullseye:vuln" > "$B/whiteout/etc/palisade-fixture"
step "OCI layout: debian-bullseye:vuln (3 gzip layers)"
python3 "$HERE/mkoci.py" image "$L" bullseye-vuln --arch amd64 "$B/os" "$B/lang" "$B/whiteout" > /dev/null

# --- debian-bookworm:base (benchmark image)
K=$WORK/bookworm
debootstrap_root bookworm "$K/os"
dpkg-query --admindir="$K/os/var/lib/dpkg" -W -f '${Package} ${Version} ${source:Package} ${source:Version}\n' | sort > "$OUT/bookworm-dpkg.txt"
mkdir -p "$K/lang"
lang_layer "$K/lang" 3.11
step "OCI layout: debian-bookworm:base (2 gzip layers)"
python3 "$HERE/mkoci.py" image "$L" bookworm-base --arch amd64 "$K/os" "$K/lang" > /dev/null

# --- synthetic Alpine, gzip and zstd; multi-platform index
step "synthetic Alpine 3.9 roots; gzip, zstd and multi-platform images"
alpine_root "$OUT/rootfs/alpine" x86_64 3.9.4
python3 "$HERE/mkoci.py" image "$L" alpine-3.9 --arch amd64 "$OUT/rootfs/alpine" > /dev/null
python3 "$HERE/mkoci.py" image "$L" alpine-3.9-zstd --arch amd64 --compression zstd "$OUT/rootfs/alpine" > /dev/null
alpine_root "$WORK/alpine-arm64" aarch64 3.9.4
python3 "$HERE/mkoci.py" image "$L" multiarch-amd64 --arch amd64 "$OUT/rootfs/alpine" > /dev/null
python3 "$HERE/mkoci.py" image "$L" multiarch-arm64 --arch arm64 --variant v8 "$WORK/alpine-arm64" > /dev/null
python3 "$HERE/mkoci.py" index "$L" multiarch multiarch-amd64 multiarch-arm64 > /dev/null

# --- rpm root
rpm_root "$OUT/rootfs/rpm"

# --- archives of the main image
step "docker-archive and oci-archive of debian-bullseye:vuln (skopeo)"
skopeo copy -q "oci:$L:bullseye-vuln" "docker-archive:$OUT/debian-bullseye-vuln.docker.tar:fixtures/debian-bullseye:vuln"
skopeo copy -q "oci:$L:bullseye-vuln" "oci-archive:$OUT/debian-bullseye-vuln.oci.tar:bullseye-vuln"

# images.txt: layout tag, registry name (fixtures/…, "-" when not pushed by itself), digest.
python3 - "$L" > "$OUT/images.txt" <<'PY'
import json, sys
names = {"bullseye-vuln": "debian-bullseye:vuln", "bookworm-base": "debian-bookworm:base",
         "alpine-3.9": "alpine-synthetic:3.9", "alpine-3.9-zstd": "alpine-synthetic:3.9-zstd",
         "multiarch": "multiarch:1"}
for m in json.load(open(sys.argv[1] + "/index.json"))["manifests"]:
    tag = m["annotations"]["org.opencontainers.image.ref.name"]
    print(tag, names.get(tag, "-"), m["digest"], sep="\t")
PY
rm -rf "$WORK"
step "fixtures written to $OUT"
