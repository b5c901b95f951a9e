#!/usr/bin/env bash
# e2e-faults.sh - ferry on a hostile network and under kill -9, against the
# real distribution registry (TLS + htpasswd) that lib/services.sh starts:
#   - through a fault-injecting proxy (registry/internal/faultproxy: 429 with
#     Retry-After, 500, 503, resets, truncated and stalled bodies, latency;
#     seeded, so a run replays) at 10% and 30% of requests: `bundle` must
#     give bundles byte-identical to a clean run, and `manifest create` +
#     `manifest verify` the same list digest as a clean run
#   - a hostile registry (stalls, a 64 GiB config, an endless manifest,
#     loopback foreign URL and redirect, https -> http redirect): each case
#     ends with a clear error in bounded time, under 100 MiB RSS, with
#     nothing at the output path
#   - a plain-HTTP registry asking for credentials gets none, nor any
#     request, unless --insecure-registry names it
#   - kill -9 at random moments of `bundle` and of in-place `reorder`: the
#     next run leaves no temp file and gives the same bytes
# Figures are printed as "N passed, M failed" lines. FAULT_RUNS (10) and
# KILLS (10 per command) size it; FAULT_SEED (1) picks the faults.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/e2e.sh
source scripts/lib/e2e.sh
e2e_begin faults go docker-registry openssl curl perl timeout /usr/bin/time cmp

runs=${FAULT_RUNS:-10}
kills=${KILLS:-10}
seed0=${FAULT_SEED:-1}
RANDOM=$seed0
go build -o "$work/faultsrv" ./registry/internal/faultproxy/faultsrv
faultsrv=$work/faultsrv

start_registry
export SSL_CERT_FILE=$FERRY_REGISTRY_CA
certs=$FERRY_SVC_DIR/registry/certs
reg=$FERRY_REGISTRY
pport=$(_svc_free_port)
proxy=127.0.0.1:$pport
# Credentials for the registry, reached directly and through the proxy.
mkdir -p "$work/docker"
auth=$(printf '%s:%s' "$FERRY_REGISTRY_USER" "$FERRY_REGISTRY_PASS" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"},"%s":{"auth":"%s"}}}\n' "$reg" "$auth" "$proxy" "$auth" >"$work/docker/config.json"
export DOCKER_CONFIG=$work/docker
net=(--response-timeout 1s --read-timeout 1s)

# wait_line LOG : until the server wrote its address.
wait_line() {
	for _ in $(seq 100); do
		grep -qE '^127\.0\.0\.1:[0-9]+' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$1" >&2
	return 1
}
start_proxy() { # RATE SEED
	local log=$work/logs/proxy-$1-$2.log
	_svc_start faultproxy "$log" "$faultsrv" proxy -listen "$proxy" -upstream "https://$reg" -ca "$FERRY_REGISTRY_CA" \
		-cert "$certs/server.pem" -key "$certs/server-key.pem" -rate "$1" -seed "$2" -stall 2s
	wait_line "$log"
}
stop_proxy() { _svc_stop_pid faultproxy; }

echo "== sample set"
"$ferry" sample push --registry "$reg" --size $((4 << 20)) >"$work/sample.txt"
imgs=(rancher/rke2-runtime:v1.31.2-rke2r1 rancher/mirrored-pause:3.6 rancher/rke2-windows-scratch:v1.31.2)
children=(rancher/rke2-runtime:v1.31.2-rke2r1-linux-amd64 rancher/rke2-runtime:v1.31.2-rke2r1-windows-1809 rancher/rke2-runtime:v1.31.2-rke2r1-windows-ltsc2022)
require=linux/amd64,windows/amd64:1809,windows/amd64:ltsc2022

# bundle_via HOST DIR : bundle the images for two Windows versions.
bundle_via() {
	local refs=() i
	for i in "${imgs[@]}"; do refs+=("$1/$i"); done
	timeout 600 "$ferry" bundle "${refs[@]}" --windows-version 1809,ltsc2022 -o "$2/{version}.tar.zst" \
		--cache "$2/cache" -q "${net[@]}" >/dev/null
}
# list_via HOST TAG : create and verify a list, print its digest.
list_via() {
	local refs=() i d
	for i in "${children[@]}"; do refs+=("$1/$i"); done
	d=$(timeout 600 "$ferry" manifest create "$1/faults/list:$2" "${refs[@]}" "${net[@]}") || return 1
	timeout 600 "$ferry" manifest verify "$1/faults/list:$2" --require "$require" "${net[@]}" >/dev/null || return 1
	echo "$d"
}

echo "== clean runs through the proxy"
start_proxy 0 0
t0=$(date +%s.%N)
bundle_via "$proxy" "$work/clean"
t1=$(date +%s.%N)
clean_list=$(list_via "$proxy" clean)
echo "     clean bundle $(perl -e "printf '%.1f', $t1 - $t0")s, list $(perl -e "printf '%.1f', $(date +%s.%N) - $t1")s"
stop_proxy
check "clean bundles written" test -s "$work/clean/1809.tar.zst" -a -s "$work/clean/ltsc2022.tar.zst"

# fault_runs RATE : RUNS bundles and RUNS lists through the proxy, one seed each.
fault_runs() {
	local rate=$1 want=$2 pct n ok_b=0 ok_l=0 start d
	pct=$(perl -e "print $rate * 100")
	start=$(date +%s)
	for n in $(seq "$runs"); do
		local s=$((seed0 * 1000 + n)) dir=$work/f-$rate-$n
		start_proxy "$rate" "$s"
		if bundle_via "$proxy" "$dir" 2>"$dir.err" &&
			cmp -s "$dir/1809.tar.zst" "$work/clean/1809.tar.zst" &&
			cmp -s "$dir/ltsc2022.tar.zst" "$work/clean/ltsc2022.tar.zst"; then
			ok_b=$((ok_b + 1))
		else
			echo "     bundle seed $s: $(tail -3 "$dir.err" 2>/dev/null)"
		fi
		if d=$(list_via "$proxy" "r$rate-$n" 2>"$dir.list.err") && [ "$d" = "$clean_list" ]; then
			ok_l=$((ok_l + 1))
		else
			echo "     list seed $s: $(tail -3 "$dir.list.err")"
		fi
		stop_proxy
		rm -rf "$dir"
	done
	echo "bundle at ${pct}% faults, byte-identical: $ok_b passed, $((runs - ok_b)) failed"
	echo "manifest create+verify at ${pct}% faults, same digest: $ok_l passed, $((runs - ok_l)) failed"
	echo "     ($(($(date +%s) - start)) s; faults injected: $(grep -ho 'fault [a-z0-9-]*' "$work"/logs/proxy-"$rate"-*.log | sort | uniq -c | tr -s ' \n' ' '))"
	[ "$want" = all ] && { [ "$ok_b" = "$runs" ] && ok "bundle at ${pct}%: all runs" || bad "bundle at ${pct}%: $ok_b/$runs"; }
	[ "$want" = all ] && { [ "$ok_l" = "$runs" ] && ok "manifest at ${pct}%: all runs" || bad "manifest at ${pct}%: $ok_l/$runs"; }
	[ "$want" = most ] && { [ "$ok_b" -ge $((runs * 9 / 10)) ] && ok "bundle at ${pct}%: >= 90%" || bad "bundle at ${pct}%: $ok_b/$runs"; }
	[ "$want" = most ] && { [ "$ok_l" -ge $((runs * 9 / 10)) ] && ok "manifest at ${pct}%: >= 90%" || bad "manifest at ${pct}%: $ok_l/$runs"; }
	return 0
}
echo "== faults at 10%"
fault_runs 0.1 all
echo "== faults at 30%"
fault_runs 0.3 most

source scripts/lib/faults-hostile.sh
source scripts/lib/faults-kill.sh

e2e_end
