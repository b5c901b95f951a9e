# shellcheck shell=bash
# services.sh - start/stop real services on loopback for ferry e2e tests.
#
# Source this file, then:
#   require_tools docker-registry openssl curl || exit 0   # skip if missing
#   ferry_svc_init "$(mktemp -d)"
#   trap stop_services EXIT
#   start_registry     # exports FERRY_REGISTRY{,_USER,_PASS,_CA,_CERT_DIR,_AUTHFILE}, FERRY_CTR_HOSTS_DIR
#   start_containerd   # exports FERRY_CTR_ADDRESS (needs root)
#   start_dockerd      # exports DOCKER_HOST (needs root), a private daemon
#   use_registry_auth  # optional: export DOCKER_CONFIG (go-containerregistry, skopeo)
#
# Everything (certs, configs, data, logs, pid files) lives under the work dir;
# nothing global (/run/containerd, /var/lib/containerd, /etc/...) is touched.
# Servers bind to 127.0.0.1 only, and are stopped by recorded PID.
# Safe to use under `set -euo pipefail`.

FERRY_SVC_DIR=${FERRY_SVC_DIR:-}

_svc_log() { printf '[services] %s\n' "$*" >&2; }
_svc_die() { printf '[services] ERROR: %s\n' "$*" >&2; return 1; }

# require_tools TOOL... : all tools must be on PATH. In CI a missing tool is a
# hard failure (exit 1) so a broken runner cannot silently skip the e2e suite;
# locally we print SKIP and return 1 so the caller can `|| exit 0`.
require_tools() {
  local t missing=()
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${CI:-}" = "true" ]; then
    for t in "${missing[@]}"; do printf 'FAIL: missing required tool %s (CI=true)\n' "$t" >&2; done
    exit 1
  fi
  for t in "${missing[@]}"; do printf 'SKIP: missing %s\n' "$t"; done
  return 1
}

# ferry_svc_init DIR : DIR is created if needed and canonicalised, because
# stop_services matches mount points under it textually in mountinfo.
ferry_svc_init() {
  [ $# -eq 1 ] || _svc_die "usage: ferry_svc_init DIR" || return 1
  mkdir -p "$1/pids" "$1/logs"
  FERRY_SVC_DIR=$(realpath "$1")
  export FERRY_SVC_DIR
}

_svc_need_init() {
  [ -n "$FERRY_SVC_DIR" ] || _svc_die "call ferry_svc_init DIR first"
}

# _svc_free_port : ask the kernel for a free loopback port (perl is
# Essential on Debian, so no python dependency). There is a small race
# between closing it and the server binding; start_registry retries.
_svc_free_port() {
  perl -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "bind: $!"; print $s->sockport, "\n"'
}

# _svc_bcrypt PASSWORD : bcrypt hash, at cost FERRY_SVC_BCRYPT_COST (10;
# distribution checks it on every request, which at 10 costs tens of ms of
# CPU each: a run of thousands of requests lowers it), via libcrypt (libxcrypt supports $2b$),
# reached through perl's crypt(). Avoids needing apache2-utils (htpasswd)
# or python3-bcrypt. Go's x/crypto/bcrypt (used by distribution) accepts $2b$.
_svc_bcrypt() {
  local salt hash
  # 22 chars from the bcrypt base64 alphabet; base64 -> map +/ to ./
  salt=$(head -c 16 /dev/urandom | base64 | tr -d '=\n' | tr '+/' './' | cut -c1-22)
  hash=$(PW="$1" SALT="$salt" COST=$(printf '%02d' "${FERRY_SVC_BCRYPT_COST:-10}") perl -e 'print crypt($ENV{PW}, "\$2b\$" . $ENV{COST} . "\$" . $ENV{SALT})')
  case $hash in
    \$2b\$*) printf '%s\n' "$hash" ;;
    *) _svc_die "libcrypt has no bcrypt support (got '$hash')" ;;
  esac
}

# _svc_start NAME LOGFILE CMD... : start CMD in the background with its
# output in LOGFILE, record its PID in pids/NAME.pid.
_svc_start() {
  local name=$1 log=$2
  shift 2
  "$@" </dev/null >"$log" 2>&1 &
  echo $! >"$FERRY_SVC_DIR/pids/$name.pid"
}

_svc_pid() { cat "$FERRY_SVC_DIR/pids/$1.pid" 2>/dev/null; }

_svc_alive() {
  local pid
  pid=$(_svc_pid "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# _svc_stop_pid NAME : TERM, wait up to 10s, then KILL.
_svc_stop_pid() {
  local name=$1 pid
  pid=$(_svc_pid "$name") || return 0
  rm -f "$FERRY_SVC_DIR/pids/$name.pid"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      _svc_log "$name (pid $pid) ignored TERM, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Reap it if it is our child, so no zombie outlives the test.
  wait "$pid" 2>/dev/null || true
}

# _svc_fail NAME LOGFILE MSG : report a start failure with the log tail.
_svc_fail() {
  _svc_log "$3; last lines of $2:"
  tail -n 30 "$2" >&2 || true
  _svc_stop_pid "$1"
  return 1
}

# ---------------------------------------------------------------- registry

# _svc_gen_certs DIR : self-signed CA + server cert valid for 127.0.0.1 and
# localhost. Writes ca.pem, server.pem, server-key.pem.
_svc_gen_certs() {
  local d=$1
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
    -subj "/CN=ferry test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=127.0.0.1" \
    -keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null
  # Go refuses certs without SANs, so the extensions are required.
  printf '%s\n' \
    "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
    -CAcreateserial -days 2 -sha256 -extfile "$d/server.ext" \
    -out "$d/server.pem" 2>/dev/null
}

# _svc_write_registry_config PORT
_svc_write_registry_config() {
  local port=$1 r=$FERRY_SVC_DIR/registry
  cat >"$r/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $r/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $r/certs/server.pem
    key: $r/certs/server-key.pem
auth:
  htpasswd:
    realm: ferry-test
    path: $r/htpasswd
validation:
  manifests:
    urls:
      allow:
        - '^https?://'
EOF
}

# start_registry : distribution with TLS + htpasswd auth on a free loopback
# port. Exports:
#   FERRY_REGISTRY           127.0.0.1:PORT
#   FERRY_REGISTRY_USER/PASS credentials
#   FERRY_REGISTRY_CA        CA pem (e.g. SSL_CERT_FILE for Go clients)
#   FERRY_REGISTRY_CERT_DIR  certs.d-style dir with ca.crt (skopeo --*-cert-dir)
#   FERRY_REGISTRY_AUTHFILE  docker config.json (skopeo --authfile)
#   FERRY_DOCKER_CONFIG      dir holding that config.json (see use_registry_auth)
#   FERRY_CTR_HOSTS_DIR      containerd hosts dir (ctr --hosts-dir)
start_registry() {
  _svc_need_init || return 1
  local r=$FERRY_SVC_DIR/registry log=$FERRY_SVC_DIR/logs/registry.log
  local user=ferry pass port attempt code
  mkdir -p "$r/data"
  _svc_gen_certs "$r/certs"
  pass=$(openssl rand -hex 12)
  printf '%s:%s\n' "$user" "$(_svc_bcrypt "$pass")" >"$r/htpasswd"

  # Retry on a new port if another process grabbed ours in the meantime.
  for attempt in 1 2 3; do
    port=$(_svc_free_port)
    _svc_write_registry_config "$port"
    _svc_start registry "$log" docker-registry serve "$r/config.yml"
    for _ in $(seq 1 150); do
      _svc_alive registry || break
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        --cacert "$r/certs/ca.pem" "https://127.0.0.1:$port/v2/" 2>/dev/null) || code=000
      [ "$code" = 401 ] && break
      sleep 0.1
    done
    if [ "${code:-}" = 401 ]; then break; fi
    if ! _svc_alive registry && grep -q 'address already in use' "$log"; then
      _svc_log "port $port taken, retrying ($attempt)"
      _svc_stop_pid registry
      continue
    fi
    if _svc_alive registry; then
      _svc_fail registry "$log" "registry did not answer 401 on /v2/ (last code ${code:-none})"
    else
      _svc_fail registry "$log" "registry exited during startup"
    fi
    return 1
  done
  [ "${code:-}" = 401 ] || { _svc_fail registry "$log" "registry failed to start"; return 1; }

  local host=127.0.0.1:$port
  # certs.d layout: ca.crt is what skopeo/containers-image and docker expect;
  # hosts.toml in the same dir is what containerd's --hosts-dir expects.
  local certdir=$FERRY_SVC_DIR/certs.d/$host
  mkdir -p "$certdir" "$FERRY_SVC_DIR/docker"
  cp "$r/certs/ca.pem" "$certdir/ca.crt"
  cat >"$certdir/hosts.toml" <<EOF
server = "https://$host"

[host."https://$host"]
  capabilities = ["pull", "resolve", "push"]
  ca = "$certdir/ca.crt"
EOF
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" \
    "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" >"$FERRY_SVC_DIR/docker/config.json"
  chmod 600 "$FERRY_SVC_DIR/docker/config.json"

  export FERRY_REGISTRY=$host
  export FERRY_REGISTRY_USER=$user
  export FERRY_REGISTRY_PASS=$pass
  export FERRY_REGISTRY_CA=$r/certs/ca.pem
  export FERRY_REGISTRY_CERT_DIR=$certdir
  export FERRY_REGISTRY_AUTHFILE=$FERRY_SVC_DIR/docker/config.json
  export FERRY_DOCKER_CONFIG=$FERRY_SVC_DIR/docker
  export FERRY_CTR_HOSTS_DIR=$FERRY_SVC_DIR/certs.d
  _svc_log "registry up at https://$host (pid $(_svc_pid registry))"
}

# use_registry_auth : point DOCKER_CONFIG at our config.json so
# go-containerregistry's authn.DefaultKeychain (and skopeo, which falls back
# to it) find the credentials. Opt-in because it hides the user's own config.
use_registry_auth() {
  [ -n "${FERRY_DOCKER_CONFIG:-}" ] || _svc_die "start_registry first" || return 1
  export DOCKER_CONFIG=$FERRY_DOCKER_CONFIG
}

# -------------------------------------------------------------- containerd

# start_containerd : private containerd (root, state, sockets all under the
# work dir, CRI disabled). Exports:
#   FERRY_CTR_ADDRESS      grpc socket (ctr --address / containerd.New)
#   FERRY_CTR_SNAPSHOTTER  "native": works everywhere (overlayfs needs kernel
#                          support and fails inside some containers). Note ctr
#                          pull/import unpack into overlayfs unless told
#                          --snapshotter "$FERRY_CTR_SNAPSHOTTER".
start_containerd() {
  _svc_need_init || return 1
  [ "$(id -u)" = 0 ] || _svc_die "start_containerd needs root" || return 1
  local c=$FERRY_SVC_DIR/containerd log=$FERRY_SVC_DIR/logs/containerd.log
  local sock=$c/containerd.sock
  # sun_path is 108 bytes; containerd fails obscurely past that (and the
  # ttrpc socket adds ".ttrpc").
  [ ${#sock} -le 100 ] || _svc_die "socket path too long (${#sock} > 100): $sock; use a shorter work dir" || return 1
  mkdir -p "$c/root" "$c/state" "$c/opt"
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
# CRI would want CNI, /etc/cni, kubelet dirs... and we only need images.
# aufs/btrfs/devmapper/zfs snapshotters only add warnings to the log.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$sock"
  uid = 0
  gid = 0

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  # Default is /opt/containerd, a global path.
  [plugins."io.containerd.internal.v1.opt"]
    path = "$c/opt"
EOF
  _svc_start containerd "$log" containerd --config "$c/config.toml"
  for _ in $(seq 1 150); do
    _svc_alive containerd || break
    ctr --address "$sock" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  ctr --address "$sock" version >/dev/null 2>&1 ||
    { _svc_fail containerd "$log" "containerd did not come up"; return 1; }
  export FERRY_CTR_ADDRESS=$sock
  export FERRY_CTR_SNAPSHOTTER=native
  _svc_log "containerd up at $sock (pid $(_svc_pid containerd))"
}

# ----------------------------------------------------------------- dockerd

# start_dockerd : a Docker daemon of its own: socket, data root, exec root
# and pid file under the work dir, vfs storage (no overlay mounts to leak),
# no iptables rules and no bridge, so nothing on the host changes. It runs
# its own containerd (under the exec root). Exports DOCKER_HOST.
start_dockerd() {
  _svc_need_init || return 1
  [ "$(id -u)" = 0 ] || _svc_die "start_dockerd needs root" || return 1
  local d=$FERRY_SVC_DIR/docker log=$FERRY_SVC_DIR/logs/dockerd.log
  local sock=$d/docker.sock
  [ ${#sock} -le 100 ] || _svc_die "socket path too long (${#sock} > 100): $sock; use a shorter work dir" || return 1
  mkdir -p "$d/data" "$d/exec"
  echo '{}' >"$d/daemon.json" # not /etc/docker/daemon.json
  _svc_start dockerd "$log" dockerd --host "unix://$sock" --data-root "$d/data" --exec-root "$d/exec" \
    --pidfile "$d/dockerd.pid" --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --config-file "$d/daemon.json"
  for _ in $(seq 1 300); do
    _svc_alive dockerd || break
    DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 && break
    sleep 0.1
  done
  DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 ||
    { _svc_fail dockerd "$log" "dockerd did not come up"; return 1; }
  export DOCKER_HOST=unix://$sock
  _svc_log "dockerd up at $sock (pid $(_svc_pid dockerd))"
}

# ----------------------------------------------------------------- cleanup

# _svc_mounts_under DIR : mount points at or below DIR, deepest first.
# mountinfo escapes space/tab/newline/backslash as octal; printf %b decodes.
_svc_mounts_under() {
  local dir=$1 mp
  while read -r mp; do
    mp=$(printf '%b' "$mp")
    case $mp in "$dir" | "$dir"/*) printf '%s\n' "$mp" ;; esac
  done < <(awk '{print $5}' /proc/self/mountinfo) | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}

# stop_services : stop everything started here (dockerd, registry, containerd) by PID,
# then unmount whatever is still mounted under the work dir (e.g. a
# `ctr images mount` the test forgot). Idempotent; meant for `trap ... EXIT`.
# Never fails, so it cannot mask the test's own exit status.
stop_services() {
  [ -n "${FERRY_SVC_DIR:-}" ] || return 0
  local name mp
  # dockerd and containerd first: they may hold mounts.
  for name in dockerd containerd registry; do
    _svc_stop_pid "$name" || true
  done
  while IFS= read -r mp; do
    [ -n "$mp" ] || continue
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null ||
      _svc_log "could not unmount $mp"
  done < <(_svc_mounts_under "$FERRY_SVC_DIR")
  return 0
}
