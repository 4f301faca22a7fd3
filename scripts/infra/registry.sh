#!/usr/bin/env bash
# Local OCI registries for the end-to-end tests, using Debian's docker-registry (CNCF distribution 2.8):
#   127.0.0.1:${PALISADE_REGISTRY_PORT:-5000}       anonymous
#   127.0.0.1:${PALISADE_REGISTRY_AUTH_PORT:-5001}  htpasswd basic auth (bcrypt), user ciuser / password cipass
# usage: registry.sh start|stop|status
# State (config, storage, logs, pid files) lives under $PALISADE_INFRA (default /var/tmp/palisade-infra).
set -euo pipefail
INFRA=${PALISADE_INFRA:-/var/tmp/palisade-infra}
PORT=${PALISADE_REGISTRY_PORT:-5000}
AUTH_PORT=${PALISADE_REGISTRY_AUTH_PORT:-5001}
RUN=$INFRA/run
mkdir -p "$INFRA/logs" "$RUN" "$INFRA/registry-data" "$INFRA/registry-auth-data"

wait_status() { # url expected-code
  local code
  for _ in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [ "$code" = "$2" ] && return 0
    sleep 0.1
  done
  echo "registry.sh: $1 did not answer $2 (last: ${code:-none}); see $INFRA/logs/" >&2
  return 1
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() { # name port storage [auth]
  cat > "$INFRA/$1.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $3
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$2
  secret: palisade-ci-only
YML
  if [ "${4:-}" = auth ]; then
    cat >> "$INFRA/$1.yml" <<YML
auth:
  htpasswd:
    realm: palisade-ci
    path: $INFRA/registry.htpasswd
YML
  fi
}

start_one() { # name port storage [auth]
  if alive "$1"; then return 0; fi
  if port_busy "$2"; then
    echo "registry.sh: 127.0.0.1:$2 is already in use by another process; set PALISADE_REGISTRY_PORT/PALISADE_REGISTRY_AUTH_PORT" >&2
    return 1
  fi
  write_config "$@"
  # setsid: its own process group, so the caller's Ctrl-C handling and our stop stay independent.
  setsid docker-registry serve "$INFRA/$1.yml" > "$INFRA/logs/$1.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$1.pid"
}

case "${1:-start}" in
start)
  command -v docker-registry >/dev/null || { echo "registry.sh: docker-registry not installed (apt-get install docker-registry)" >&2; exit 1; }
  command -v htpasswd >/dev/null || { echo "registry.sh: htpasswd not installed (apt-get install apache2-utils)" >&2; exit 1; }
  # The registry only accepts bcrypt entries.
  htpasswd -Bbn ciuser cipass > "$INFRA/registry.htpasswd"
  start_one registry "$PORT" "$INFRA/registry-data"
  start_one registry-auth "$AUTH_PORT" "$INFRA/registry-auth-data" auth
  wait_status "http://127.0.0.1:$PORT/v2/" 200
  wait_status "http://127.0.0.1:$AUTH_PORT/v2/" 401
  code=$(curl -s -o /dev/null -w '%{http_code}' -u ciuser:cipass "http://127.0.0.1:$AUTH_PORT/v2/")
  [ "$code" = 200 ] || { echo "registry.sh: ciuser/cipass rejected by :$AUTH_PORT ($code)" >&2; exit 1; }
  echo "registries up: 127.0.0.1:$PORT (anonymous), 127.0.0.1:$AUTH_PORT (basic auth ciuser/cipass)"
  ;;
stop)
  for p in registry registry-auth; do
    if alive "$p"; then
      pid=$(cat "$RUN/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$p.pid"
  done
  ;;
status)
  for p in registry registry-auth; do
    if alive "$p"; then echo "$p: running (pid $(cat "$RUN/$p.pid"))"; else echo "$p: stopped"; fi
  done
  ;;
*)
  echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
