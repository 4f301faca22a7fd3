#!/usr/bin/env bash
# A real kube-apiserver for the live-cluster tests, with no kubelet or scheduler (pods stay Pending).
#
#   kube-apiserver.sh build   build v1.20 from Debian's *source* package `kubernetes` with Debian's Go, once;
#                             the binary is cached at $PALISADE_INFRA/bin/kube-apiserver (~10 min on 2 cores)
#   kube-apiserver.sh start   etcd on 127.0.0.1:$PALISADE_ETCD_PORT (2379) and the API server on
#                             https://127.0.0.1:$PALISADE_KUBE_PORT (6443); token auth: admin-token (system:masters),
#                             reader-token (no groups: for least-privilege tests); writes $PALISADE_INFRA/kubeconfig
#   kube-apiserver.sh stop
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
INFRA=${PALISADE_INFRA:-/var/tmp/palisade-infra}
PORT=${PALISADE_KUBE_PORT:-6443}
ETCD_PORT=${PALISADE_ETCD_PORT:-2379}
ETCD_PEER_PORT=$((ETCD_PORT + 1))
mkdir -p "$INFRA"/{logs,run,bin}
cd "$INFRA"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"

apt_need() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "${PALISADE_NO_APT:-0}" = 1 ]; then echo "missing packages: ${missing[*]} (PALISADE_NO_APT=1)" >&2; exit 1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

case "${1:-start}" in
build)
  if [ -x bin/kube-apiserver ]; then bin/kube-apiserver --version; exit 0; fi
  apt_need golang-go rsync jq make golang-github-modern-go-reflect2-dev etcd-server openssl dpkg-dev
  # deb-src without touching the system's apt configuration
  mkdir -p apt-alt/lists/partial apt-alt/cache/archives/partial k8s-src
  echo "deb-src http://deb.debian.org/debian bookworm main" > apt-alt/sources.list
  A=(-o "Dir::Etc::SourceList=$INFRA/apt-alt/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$INFRA/apt-alt/lists" -o "Dir::Cache=$INFRA/apt-alt/cache")
  apt-get "${A[@]}" update -q >/dev/null
  rm -rf k8s-src/kubernetes-*/
  (cd k8s-src && apt-get "${A[@]}" source --download-only kubernetes >/dev/null && tar xzf kubernetes_*.orig.tar.gz)
  SRC=$(ls -d "$INFRA"/k8s-src/kubernetes-*/ | head -1); cd "$SRC"
  # the vendored reflect2 1.0.1 crashes the apiserver under Go >= 1.18: use Debian's 1.0.2 source instead
  V=vendor/github.com/modern-go/reflect2; rm -rf "$V"; mkdir -p "$V"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$V/"
  rm -f "$V"/*_test.go
  # k8s 1.20 builds in GOPATH mode through its Makefile (which also generates the OpenAPI definitions)
  mkdir -p .go/src/k8s.io; ln -sfn ../../.. .go/src/k8s.io/kubernetes
  GOPATH=$PWD/.go CGO_ENABLED=0 make WHAT=cmd/kube-apiserver >"$INFRA/logs/kube-build.log" 2>&1 \
    || { tail -40 "$INFRA/logs/kube-build.log" >&2; exit 1; }
  cp _output/bin/kube-apiserver "$INFRA/bin/kube-apiserver.tmp" && mv "$INFRA/bin/kube-apiserver.tmp" "$INFRA/bin/kube-apiserver"
  cd "$INFRA" && rm -rf k8s-src   # 1+ GB of sources and objects
  bin/kube-apiserver --version ;;
start)
  apt_need etcd-server openssl curl
  "$SELF" stop >/dev/null 2>&1 || true
  rm -rf etcd-data kapi; mkdir -p kapi
  etcd --name ci --data-dir "$INFRA/etcd-data" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
       --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
       --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster "ci=http://127.0.0.1:$ETCD_PEER_PORT" \
       --unsafe-no-fsync > logs/etcd.log 2>&1 & echo $! > run/etcd.pid
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null && break; sleep 0.1; done
  openssl genrsa -out kapi/sa.key 2048 2>/dev/null
  { echo 'admin-token,admin,1,"system:masters"'; echo 'reader-token,palisade-reader,2'; } > kapi/tokens.csv
  bin/kube-apiserver --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --secure-port="$PORT" \
    --advertise-address=127.0.0.1 --cert-dir="$INFRA/kapi" --token-auth-file="$INFRA/kapi/tokens.csv" \
    --authorization-mode=RBAC --service-cluster-ip-range=10.96.0.0/16 \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$INFRA/kapi/sa.key" \
    --service-account-signing-key-file="$INFRA/kapi/sa.key" --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount > logs/kube-apiserver.log 2>&1 & echo $! > run/kube-apiserver.pid
  ok=0
  for _ in $(seq 1 300); do
    kill -0 "$(cat run/kube-apiserver.pid)" 2>/dev/null || { tail -30 logs/kube-apiserver.log >&2; echo "kube-apiserver exited" >&2; exit 1; }
    if [ "$(curl -sk "https://127.0.0.1:$PORT/readyz" -H 'Authorization: Bearer admin-token')" = ok ]; then ok=1; break; fi
    sleep 0.2
  done
  if [ $ok != 1 ]; then tail -30 logs/kube-apiserver.log >&2; echo "kube-apiserver did not become ready" >&2; exit 1; fi
  # the self-signed serving certificate's CA is the second PEM of the generated bundle
  awk '/BEGIN/{n++} n==2' kapi/apiserver.crt > kapi/ca.crt
  CA=$(base64 -w0 < kapi/ca.crt)
  cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: ci
  cluster: {server: "https://127.0.0.1:$PORT", certificate-authority-data: "$CA"}
users:
- name: admin
  user: {token: admin-token}
- name: reader
  user: {token: reader-token}
contexts:
- name: ci
  context: {cluster: ci, user: admin}
- name: ci-reader
  context: {cluster: ci, user: reader}
current-context: ci
KC
  echo "kube-apiserver ready on https://127.0.0.1:$PORT (kubeconfig $INFRA/kubeconfig)" ;;
stop)
  for p in kube-apiserver etcd; do
    if [ -f "run/$p.pid" ]; then
      pid=$(cat "run/$p.pid"); kill "$pid" 2>/dev/null || true
      # wait for the port to be released, so a restart does not talk to the old process
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "run/$p.pid"
    fi
  done ;;
*) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
