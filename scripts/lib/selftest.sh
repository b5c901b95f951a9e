#!/usr/bin/env bash
# selftest.sh - prove services.sh works end to end: registry (TLS + auth)
# <- skopeo push of a hand-built OCI image -> containerd pull/check/mount,
# plus `ctr images import` of a docker-archive; then verify that
# stop_services leaves no process and no mount behind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=services.sh
. "$here/services.sh"
# shellcheck source=oci.sh
. "$here/oci.sh"

require_tools docker-registry containerd ctr skopeo openssl curl perl || exit 0
[ "$(id -u)" = 0 ] || { echo "SKIP: containerd needs root"; exit 0; }

# Short path: the containerd socket lives under it (sun_path limit).
work=$(mktemp -d /tmp/ferry-svc.XXXXXX)
ferry_svc_init "$work"
trap 'stop_services; rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "start services"
start_registry
start_containerd
reg=$FERRY_REGISTRY
creds=$FERRY_REGISTRY_USER:$FERRY_REGISTRY_PASS
ctr_() { ctr --address "$FERRY_CTR_ADDRESS" "$@"; }
# Our own policy, so the test does not depend on /etc/containers/policy.json.
policy=$work/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"

step "auth is enforced"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$FERRY_REGISTRY_CA" "https://$reg/v2/")
[ "$code" = 401 ] || fail "anonymous /v2/ gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$FERRY_REGISTRY_CA" -u "$creds" "https://$reg/v2/")
[ "$code" = 200 ] || fail "authenticated /v2/ gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$FERRY_REGISTRY_CA" -u "$FERRY_REGISTRY_USER:wrong" "https://$reg/v2/")
[ "$code" = 401 ] || fail "wrong password gave $code"
curl -s -o /dev/null --cacert "$FERRY_REGISTRY_CA" "https://localhost:${reg#*:}/v2/" ||
  fail "cert not valid for localhost"

step "build OCI layout + skopeo push"
digest=$(make_oci_image "$work/oci" v1 "hello from ferry selftest")
echo "manifest $digest"
skopeo --policy "$policy" copy --quiet \
  --dest-cert-dir "$FERRY_REGISTRY_CERT_DIR" --dest-creds "$creds" \
  "oci:$work/oci:v1" "docker://$reg/x/y:v1"
# Same push via the authfile rather than explicit creds.
skopeo --policy "$policy" copy --quiet \
  --dest-cert-dir "$FERRY_REGISTRY_CERT_DIR" --authfile "$FERRY_REGISTRY_AUTHFILE" \
  "oci:$work/oci:v1" "docker://$reg/x/y:v1-authfile"
got=$(curl -s --cacert "$FERRY_REGISTRY_CA" -u "$creds" -o /dev/null -w '%header{docker-content-digest}' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' "https://$reg/v2/x/y/manifests/v1" 2>/dev/null) ||
  got=$(curl -s -D - -o /dev/null --cacert "$FERRY_REGISTRY_CA" -u "$creds" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "https://$reg/v2/x/y/manifests/v1" |
    tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
[ "$got" = "$digest" ] || fail "registry digest $got != $digest"

step "DOCKER_CONFIG via use_registry_auth (skopeo without --authfile/--creds)"
(
  use_registry_auth
  skopeo --policy "$policy" inspect --raw --cert-dir "$FERRY_REGISTRY_CERT_DIR" \
    "docker://$reg/x/y:v1" >/dev/null
) || fail "skopeo did not pick up DOCKER_CONFIG"

step "ctr pull / check / mount (native)"
ref=$reg/x/y:v1
sn=$FERRY_CTR_SNAPSHOTTER
ctr_ images pull --snapshotter "$sn" --hosts-dir "$FERRY_CTR_HOSTS_DIR" --user "$creds" "$ref" >"$work/logs/pull.log"
ctr_ images check | tee "$work/logs/check.log"
grep -F "$ref" "$work/logs/check.log" | grep -q 'complete' || fail "image not complete"
mnt=$work/mnt
mkdir -p "$mnt"
ctr_ images mount --snapshotter "$sn" "$ref" "$mnt" >/dev/null
[ "$(cat "$mnt/hello.txt")" = "hello from ferry selftest" ] || fail "mounted content wrong"
ctr_ images unmount --snapshotter "$sn" --rm "$mnt" >/dev/null
# Leave one mount behind on purpose so stop_services' unmount is exercised.
ctr_ images mount --snapshotter "$sn" "$ref" "$mnt" >/dev/null
[ "$(_svc_mounts_under "$work")" = "$mnt" ] || fail "expected exactly one mount at $mnt"

step "overlayfs snapshotter (informational)"
mnt2=$work/mnt-overlay
mkdir -p "$mnt2"
if ctr_ images mount --snapshotter overlayfs "$ref" "$mnt2" >/dev/null 2>"$work/logs/overlay.log"; then
  echo "overlayfs: works"
  ctr_ images unmount --snapshotter overlayfs --rm "$mnt2" >/dev/null
else
  echo "overlayfs: NOT usable here: $(tail -n1 "$work/logs/overlay.log")"
fi

step "docker-archive import via stdin"
skopeo --policy "$policy" copy --quiet "oci:$work/oci:v1" "docker-archive:$work/img.tar:x/y:v1"
ctr_ -n test images import --snapshotter "$sn" --all-platforms - <"$work/img.tar"
ctr_ -n test images ls -q | tee "$work/logs/import.log"
grep -qx 'docker.io/x/y:v1' "$work/logs/import.log" || fail "imported image missing"
ctr_ -n test images check | grep -q complete || fail "imported image incomplete"

step "stop + verify cleanup"
pids="$(cat "$work"/pids/*.pid)"
stop_services
for p in $pids; do
  if kill -0 "$p" 2>/dev/null; then fail "pid $p still running"; fi
done
left=$(_svc_mounts_under "$work")
[ -z "$left" ] || fail "mounts left: $left"
ls "$work"/pids/*.pid >/dev/null 2>&1 && fail "pid files left"
echo
echo "PASS: services selftest"
